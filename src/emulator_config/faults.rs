//! The Socket.IO `faults:` settings of the emulator: plain data, read from
//! YAML and checked there; the emulator (`emulator::faults`) draws and fires
//! them.
//!
//! ```yaml
//! faults:
//!   refuse: 0.0              # per connection: the WebSocket upgrade is answered HTTP 503
//!   no_endpoint_ready: 0.0   # per connection: joins "/" but never emits endpoint-ready
//!   close_mid_turn: 0.0      # per connection (raw): after the first output of the first turn, TCP closed without 41 or a close frame
//!   garbage_frame: 0.0       # per connection (raw): after the first output of the first turn, a text frame that is no Engine.IO packet
//!   truncated_frame: 0.0     # per connection (raw): after the first output of the first turn, `42["output",{"type":"outp`
//!   oversized_frame: 0.0     # per connection (raw): after the first output of the first turn, one frame above the client's limit
//!   no_pong: 0.0             # per connection (raw): EIO3 never answers pings; EIO4 never sends pings
//!   no_final_ping: 0.0       # per turn: outputs and typingOff, but no finalPing
//!   disconnect_mid_turn: 0.0 # per turn: after the first output, a namespace disconnect (41)
//!   output_error: 0.0        # per turn: an `output` of type error, then finalPing of type error
//!   ack_wait: {delay: 200ms} # or absent: each output waits for the client's ack (+ delay) before the next
//! ```
//!
//! Every probability is in `0..=1` (checked when the YAML is read, with its
//! position) and defaults to 0. Decisions are seeded from the emulator `seed`:
//! connection *n* (in order of arrival of WebSocket upgrades) always draws the
//! same numbers, so a run with the same seed and the same connection order
//! injects the same faults.
//!

use crate::duration::HumanDuration;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A probability in `0..=1`; anything else is rejected when deserialized.
#[derive(
    Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "f64", into = "f64")]
pub struct Probability(f64);

impl Probability {
    pub const NEVER: Probability = Probability(0.0);
    pub const ALWAYS: Probability = Probability(1.0);

    /// `p` if it is in `0..=1`.
    pub fn new(p: f64) -> Result<Probability, String> {
        if (0.0..=1.0).contains(&p) {
            Ok(Probability(p))
        } else {
            Err(format!(
                "a fault probability must be between 0 and 1 (e.g. 0.25 = one time in four, 1 = always), got {p}"
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// One draw: true with this probability. Draws nothing when it is 0.
    pub fn roll<R: Rng + ?Sized>(self, rng: &mut R) -> bool {
        self.0 > 0.0 && rng.random::<f64>() < self.0
    }
}

impl TryFrom<f64> for Probability {
    type Error = String;
    fn try_from(p: f64) -> Result<Self, String> {
        Probability::new(p)
    }
}

impl From<Probability> for f64 {
    fn from(p: Probability) -> f64 {
        p.0
    }
}

/// `ack_wait: {delay: 200ms}`: a server that processes acks slowly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AckWait {
    /// Extra wait after each ack arrived, before the next event.
    #[serde(default)]
    pub delay: HumanDuration,
}

/// The `faults:` block (see the module doc). All off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SocketIoFaults {
    pub refuse: Probability,
    pub no_endpoint_ready: Probability,
    pub no_final_ping: Probability,
    pub disconnect_mid_turn: Probability,
    pub close_mid_turn: Probability,
    pub garbage_frame: Probability,
    pub truncated_frame: Probability,
    pub oversized_frame: Probability,
    pub no_pong: Probability,
    pub output_error: Probability,
    pub ack_wait: Option<AckWait>,
}

/// Every Socket.IO fault, in the order of the `faults:` block: the one table
/// of their names (the YAML keys under `faults:`, which are also the fields of
/// the emulator's fault counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Refuse,
    NoEndpointReady,
    NoFinalPing,
    DisconnectMidTurn,
    CloseMidTurn,
    GarbageFrame,
    TruncatedFrame,
    OversizedFrame,
    NoPong,
    OutputError,
    /// Not a probability: every output with `ack_wait` waits for its ack.
    AckWait,
}

impl Fault {
    pub const ALL: [Fault; 11] = [
        Fault::Refuse,
        Fault::NoEndpointReady,
        Fault::NoFinalPing,
        Fault::DisconnectMidTurn,
        Fault::CloseMidTurn,
        Fault::GarbageFrame,
        Fault::TruncatedFrame,
        Fault::OversizedFrame,
        Fault::NoPong,
        Fault::OutputError,
        Fault::AckWait,
    ];

    /// The YAML key under `faults:`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Refuse => "refuse",
            Fault::NoEndpointReady => "no_endpoint_ready",
            Fault::NoFinalPing => "no_final_ping",
            Fault::DisconnectMidTurn => "disconnect_mid_turn",
            Fault::CloseMidTurn => "close_mid_turn",
            Fault::GarbageFrame => "garbage_frame",
            Fault::TruncatedFrame => "truncated_frame",
            Fault::OversizedFrame => "oversized_frame",
            Fault::NoPong => "no_pong",
            Fault::OutputError => "output_error",
            Fault::AckWait => "ack_wait",
        }
    }
}

impl SocketIoFaults {
    /// The faults that are on, as `faults.name p` / `faults.ack_wait delay`
    /// (for `serve`'s banner).
    pub fn describe_active(&self) -> Vec<String> {
        let mut on: Vec<String> = Fault::ALL
            .iter()
            .filter_map(|f| Some((f.name(), self.probability(*f)?)))
            .filter(|(_, p)| p.get() > 0.0)
            .map(|(name, p)| format!("faults.{name} {}", p.get()))
            .collect();
        if let Some(wait) = self.ack_wait {
            on.push(format!("faults.{} {}", Fault::AckWait.name(), wait.delay));
        }
        on
    }

    /// The probability of `fault` (`None` for `ack_wait`, which is none).
    pub fn probability(&self, fault: Fault) -> Option<Probability> {
        Some(match fault {
            Fault::Refuse => self.refuse,
            Fault::NoEndpointReady => self.no_endpoint_ready,
            Fault::NoFinalPing => self.no_final_ping,
            Fault::DisconnectMidTurn => self.disconnect_mid_turn,
            Fault::CloseMidTurn => self.close_mid_turn,
            Fault::GarbageFrame => self.garbage_frame,
            Fault::TruncatedFrame => self.truncated_frame,
            Fault::OversizedFrame => self.oversized_frame,
            Fault::NoPong => self.no_pong,
            Fault::OutputError => self.output_error,
            Fault::AckWait => return None,
        })
    }
}

/// Test support: asserts that the keys of `json` (a serialized struct with
/// one field per fault) are exactly the table's fault names.
#[cfg(test)]
pub(crate) fn assert_keys_are_fault_names(json: &serde_json::Value) {
    let keys: Vec<&str> = json
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
    names.sort_unstable();
    assert_eq!(keys, names, "{json}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's names are the YAML keys (serde's field names).
    #[test]
    fn fault_names_are_the_yaml_keys() {
        let all = SocketIoFaults {
            ack_wait: Some(AckWait {
                delay: HumanDuration::default(),
            }),
            ..Default::default()
        };
        assert_keys_are_fault_names(&serde_json::to_value(&all).unwrap());
        let on = SocketIoFaults {
            no_pong: Probability::ALWAYS,
            ..all
        };
        assert_eq!(
            on.describe_active(),
            ["faults.no_pong 1", "faults.ack_wait 0ms"]
        );
    }
}
