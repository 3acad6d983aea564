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

impl SocketIoFaults {
    /// The faults that are on, as `name p` / `ack_wait delay` (for `serve`'s banner).
    pub fn describe_active(&self) -> Vec<String> {
        let mut on: Vec<String> = self
            .probabilities()
            .iter()
            .filter(|(_, p)| p.get() > 0.0)
            .map(|(name, p)| format!("{name} {}", p.get()))
            .collect();
        if let Some(wait) = self.ack_wait {
            on.push(format!("faults.ack_wait {}", wait.delay));
        }
        on
    }

    /// The probabilities by YAML name.
    fn probabilities(&self) -> [(&'static str, Probability); 10] {
        [
            ("faults.refuse", self.refuse),
            ("faults.no_endpoint_ready", self.no_endpoint_ready),
            ("faults.no_final_ping", self.no_final_ping),
            ("faults.disconnect_mid_turn", self.disconnect_mid_turn),
            ("faults.close_mid_turn", self.close_mid_turn),
            ("faults.garbage_frame", self.garbage_frame),
            ("faults.truncated_frame", self.truncated_frame),
            ("faults.oversized_frame", self.oversized_frame),
            ("faults.no_pong", self.no_pong),
            ("faults.output_error", self.output_error),
        ]
    }
}
