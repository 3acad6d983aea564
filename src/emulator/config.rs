//! Emulator settings, from `finalping serve` flags, `--config emulator.yaml`, or a
//! scenario's `emulator:` block. Plain data; defaults match PROTOCOL.md §1.

use super::Delay;
use crate::duration::HumanDuration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmulatorConfig {
    /// Accept Engine.IO 3 clients (official client 4.x).
    pub eio3: bool,
    /// Accept Engine.IO 4 clients (official client 5.x, Webchat v3).
    pub eio4: bool,
    /// Also serve `<prefix>/socket.io/` (e.g. `/cognigy`), besides `/socket.io/`.
    pub path_prefix: Option<String>,
    /// Outputs per turn.
    pub outputs: u32,
    /// Delay between `processInput` and the first output.
    pub delay: Delay,
    /// Delay between consecutive outputs of one turn.
    pub output_gap: Delay,
    /// Emit `typingStatus` typingOn / typingOff around the outputs.
    pub typing: bool,
    /// Engine.IO ping interval announced in the open packet.
    pub ping_interval: HumanDuration,
    /// Engine.IO ping timeout announced in the open packet.
    pub ping_timeout: HumanDuration,
    /// Seed for the delay distributions (same seed → same delays per session order).
    pub seed: u64,
    /// URL tokens accepted; empty = accept any token.
    pub url_tokens: Vec<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            eio3: true,
            eio4: true,
            path_prefix: None,
            outputs: 1,
            delay: Delay::Fixed(HumanDuration(Duration::from_millis(20))),
            output_gap: Delay::Fixed(HumanDuration(Duration::ZERO)),
            typing: true,
            ping_interval: HumanDuration(Duration::from_secs(25)),
            ping_timeout: HumanDuration(Duration::from_secs(20)),
            seed: 1,
            url_tokens: Vec::new(),
        }
    }
}
impl EmulatorConfig {
    pub fn from_yaml_file(_p: &std::path::Path) -> Result<Self, String> {
        Err("todo".into())
    }
}
