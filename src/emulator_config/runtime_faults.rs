//! The `runtime.faults:` settings of the emulator (plain data): the runtime
//! WebSocket, the token endpoint and the webhook sink misbehave on purpose so
//! that the client's accounting can be tested. The emulator's
//! `runtime_faults` rolls the dice and counts every fault fired.
//!
//! ```yaml
//! emulator:
//!   runtime:
//!     faults:
//!       close_4001: 0.0      # per updateContext: close 4001 instead of answering
//!       close_4002: 0.0      # per updateContext: close 4002 instead of answering
//!       bad_length: 0.0      # per reply: the length header is one more than the payload
//!       undecodable: 0.0     # per reply: a payload that is neither msgpack nor JSON
//!       reject: 0.0          # per updateContext: contextRejected FORBIDDEN
//!       token_delay: 0ms     # a delay before every token answer
//!       token_error: 0.0     # per token request: HTTP 500
//!       token_malformed: 0.0 # per token request: 200 with a body that is not a token response
//!       webhook_delay: 0ms   # a delay before every webhook answer
//!       webhook_down: false  # the webhook sink answers 503 to everything
//! ```
//!
//! Every field defaults to off. Probabilities are checked to lie in 0..=1
//! while the YAML is read (errors carry line and column); delays use the
//! [`Delay`] forms of `update_delay`. The per-update faults are decided in
//! this order, at most one per update: `close_4001`, `close_4002`, `reject`;
//! an update hit by none is applied as usual, and its reply (like every
//! `contextRejected`/`context` reply) may then be spoiled by `bad_length` or,
//! failing that, `undecodable`. Heartbeat answers are never spoiled. The dice
//! of a connection are seeded from the emulator `seed` and the connection's
//! order; those of the token endpoint and the webhook sink from the `seed`.
//! Delays end early when the emulator shuts down.

use super::delay::Delay;
use serde::{Deserialize, Serialize};

pub use super::faults::Probability;

/// `runtime.faults:` — see the module doc for each field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeFaults {
    /// Per `updateContext`: close the connection with 4001 (token expired)
    /// instead of answering.
    pub close_4001: Probability,
    /// Per `updateContext`: close with 4002 (session expired / scope missing).
    pub close_4002: Probability,
    /// Per reply: the 4-byte length header says one byte more than follows.
    pub bad_length: Probability,
    /// Per reply: a payload that decodes in neither codec.
    pub undecodable: Probability,
    /// Per `updateContext`: `contextRejected` with code `FORBIDDEN`.
    pub reject: Probability,
    /// Before every token answer.
    pub token_delay: Delay,
    /// Per token request: HTTP 500.
    pub token_error: Probability,
    /// Per token request: HTTP 200 with a body that is not a token response.
    pub token_malformed: Probability,
    /// Before every webhook answer.
    pub webhook_delay: Delay,
    /// The webhook sink answers 503 to everything (nothing is counted as received).
    pub webhook_down: bool,
}

impl RuntimeFaults {
    /// The faults that are on, as `name value` (for `serve`'s banner).
    pub fn describe_active(&self) -> Vec<String> {
        let idle = RuntimeFaults::default();
        let mut on: Vec<String> = [
            ("close_4001", self.close_4001),
            ("close_4002", self.close_4002),
            ("bad_length", self.bad_length),
            ("undecodable", self.undecodable),
            ("reject", self.reject),
            ("token_error", self.token_error),
            ("token_malformed", self.token_malformed),
        ]
        .iter()
        .filter(|(_, p)| p.get() > 0.0)
        .map(|(name, p)| format!("runtime.faults.{name} {}", p.get()))
        .collect();
        if self.token_delay != idle.token_delay {
            on.push(format!("runtime.faults.token_delay {}", self.token_delay));
        }
        if self.webhook_delay != idle.webhook_delay {
            on.push(format!(
                "runtime.faults.webhook_delay {}",
                self.webhook_delay
            ));
        }
        if self.webhook_down {
            on.push("runtime.faults.webhook_down".to_string());
        }
        on
    }
}
