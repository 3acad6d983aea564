//! `replies:` in the emulator config: scripted replies picked by a regular
//! expression on the input text (plain data; `emulator::script` renders them).

use crate::pattern::Pattern;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `- { when: '^order for (\w+)', text: 'Order A-$1 placed', data: {order: {id: 'A-$1'}} }`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptedReply {
    /// Regular expression on the input's text.
    pub when: Pattern,
    /// Text of each output (`$1`… are the groups of `when`).
    #[serde(default)]
    pub text: String,
    /// Structured data of each output (`data.data` on the wire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// How many such outputs the turn has.
    #[serde(default = "one")]
    pub outputs: u32,
}

fn one() -> u32 {
    1
}
