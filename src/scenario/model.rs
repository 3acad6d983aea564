//! The scenario file's data model (serde, `deny_unknown_fields`). Every default
//! lives here, next to the field it belongs to; every validation rule is a
//! `deserialize_with` in `fields` (so errors carry the exact position).

use super::{fields, Template, TemplateValue};
use crate::duration::HumanDuration;
use crate::emulator::EmulatorConfig;
use crate::protocol::socketio::Eio;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A whole scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(deserialize_with = "fields::name")]
    pub name: String,
    #[serde(default)]
    pub target: Target,
    pub load: Load,
    /// What each VU does, in order; at least one `send`.
    #[serde(deserialize_with = "fields::steps")]
    pub steps: Vec<Step>,
    /// Settings for the embedded emulator, used only when `target.url` is absent.
    #[serde(default)]
    pub emulator: Option<EmulatorConfig>,
    /// Seed for think-time jitter and other randomness (CLI `--seed` overrides).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Where the turns go and how each session identifies itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Target {
    /// Endpoint URL (`https://host/<URLToken>` or `http://host`). Absent = embedded emulator.
    #[serde(deserialize_with = "fields::url")]
    pub url: Option<Template>,
    /// The Endpoint's URL token (secret-ish: redacted in logs and reports).
    pub url_token: Template,
    /// Engine.IO revision: 3 or 4.
    #[serde(deserialize_with = "fields::eio")]
    pub eio: Eio,
    pub emit_with_ack: bool,
    pub test_mode: bool,
    pub inner_handshake: bool,
    pub user_id: Template,
    pub session_id: Template,
    pub channel: String,
    #[serde(deserialize_with = "fields::positive_duration")]
    pub connect_timeout: HumanDuration,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            url: None,
            url_token: Template::literal("emulator-url-token"),
            eio: Eio::V3,
            emit_with_ack: true,
            test_mode: false,
            inner_handshake: false,
            user_id: Template::parse("finalping-vu-{{vu}}").unwrap_or_default(),
            session_id: Template::parse("{{uuid}}").unwrap_or_default(),
            channel: "finalping".to_string(),
            connect_timeout: HumanDuration(Duration::from_secs(10)),
        }
    }
}

/// Closed-model load: `vus` VUs, each looping the steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Concurrent VUs, >= 1.
    #[serde(deserialize_with = "fields::vus")]
    pub vus: u32,
    /// Stop starting iterations after this long (whichever of duration/iterations comes first).
    #[serde(default, deserialize_with = "fields::opt_positive_duration")]
    pub duration: Option<HumanDuration>,
    /// Iterations per VU (>= 1). Neither duration nor iterations = 1 iteration.
    #[serde(default, deserialize_with = "fields::iterations")]
    pub iterations: Option<u64>,
    /// Spread VU starts evenly over this time.
    #[serde(default, deserialize_with = "fields::duration")]
    pub ramp_up: HumanDuration,
    /// After the duration ends, in-flight turns get this long before they count as interrupted.
    #[serde(default = "default_grace", deserialize_with = "fields::duration")]
    pub grace: HumanDuration,
}

fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// One step of a VU script. YAML: `- connect`, `- send: {...}`, `- think: 1s..3s`,
/// `- disconnect` (Deserialize is hand-written in `fields` for precise errors;
/// Serialize produces the same form).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Open a session (new ids rendered from the templates); waits for `endpoint-ready`.
    Connect,
    /// One chat turn.
    Send(SendStep),
    /// Pause (fixed or a jittered range); the connection stays alive meanwhile.
    Think(ThinkTime),
    /// Leave the namespace and close.
    Disconnect,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// Optional name, used as a tag in reports.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub text: Template,
    #[serde(default)]
    pub data: Option<TemplateValue>,
    #[serde(default)]
    pub reset_flow: bool,
    /// Turn timeout: no `finalPing` by then = timeout.
    #[serde(
        default = "default_turn_timeout",
        deserialize_with = "fields::positive_duration"
    )]
    pub timeout: HumanDuration,
    #[serde(default)]
    pub expect: Option<Expect>,
}

fn default_turn_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// Checks on a finished turn; a failed check makes the turn an error (`expect_failed`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub min_outputs: Option<u32>,
    /// Some output's text must contain this (after template expansion).
    #[serde(default)]
    pub text_contains: Option<Template>,
}

/// `500ms` (fixed) or `1s..3s` (uniformly jittered in the range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}
