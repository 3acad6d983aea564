//! Socket.IO fault modes of the emulator: the `faults:` block, the seeded
//! decisions (which connection, session or turn gets which fault) and the
//! counters of faults fired. The runtime-side faults live elsewhere.
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
//! **Per connection** (drawn at the HTTP upgrade, in this order; the first hit
//! wins and later ones are not applied): `refuse`, then the *raw* faults
//! `close_mid_turn`, `garbage_frame`, `truncated_frame`, `oversized_frame`,
//! `no_pong`, then `no_endpoint_ready`. socketioxide can neither write an
//! arbitrary frame, nor drop the transport without `41`, nor withhold
//! heartbeats, so a connection with a raw fault is served by a minimal
//! Engine.IO 3/4 server (`raw_socketio`) that answers turns like the normal bot
//! (typing, outputs, finalPing, ack requests; no context version, no stall or
//! degrade) and fires its fault on the first turn. Raw faults apply only to
//! query sessions (not the inner handshake); polling requests get no faults.
//!
//! **Per turn** (drawn when a turn starts on a normal connection, in this
//! order; first hit wins): `disconnect_mid_turn`, `no_final_ping`,
//! `output_error`. `ack_wait` is not a probability: with it, every output of a
//! session with `emitWithAck=true` waits for its ack (bounded by `ack_timeout`)
//! plus `delay` before the next event.
//!
//! Each fault is counted once when it fires ([`FaultCounts`] in the emulator
//! stats): `refuse` at the refused upgrade, `no_endpoint_ready` when the
//! session is left waiting, the raw frame faults when their frame is written
//! (or the TCP connection dropped), `no_pong` at the first withheld pong/ping,
//! per-turn faults in their turn, `ack_wait` once per output whose ack was
//! awaited.

use crate::duration::HumanDuration;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

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

    /// True when some per-connection fault can fire.
    fn any_per_connection(&self) -> bool {
        [
            self.refuse,
            self.no_endpoint_ready,
            self.close_mid_turn,
            self.garbage_frame,
            self.truncated_frame,
            self.oversized_frame,
            self.no_pong,
        ]
        .iter()
        .any(|p| p.0 > 0.0)
    }

    /// Draws the per-connection decisions for connection number `index`.
    pub(crate) fn plan_connection(&self, seed: u64, index: u64) -> ConnectionPlan {
        let mut rng = StdRng::seed_from_u64(mix(seed, index));
        let turn_seed = rng.random::<u64>();
        let mut plan = ConnectionPlan {
            refuse: false,
            raw: None,
            no_endpoint_ready: false,
            turn_seed,
        };
        if !self.any_per_connection() {
            return plan;
        }
        if self.refuse.roll(&mut rng) {
            plan.refuse = true;
            return plan;
        }
        let raw = [
            (self.close_mid_turn, RawFault::CloseMidTurn),
            (self.garbage_frame, RawFault::GarbageFrame),
            (self.truncated_frame, RawFault::TruncatedFrame),
            (self.oversized_frame, RawFault::OversizedFrame),
            (self.no_pong, RawFault::NoPong),
        ];
        for (p, fault) in raw {
            if p.roll(&mut rng) {
                plan.raw = Some(fault);
                return plan;
            }
        }
        plan.no_endpoint_ready = self.no_endpoint_ready.roll(&mut rng);
        plan
    }

    /// Draws the fault of one turn (at most one).
    pub(crate) fn roll_turn(&self, rng: &mut StdRng) -> Option<TurnFault> {
        [
            (self.disconnect_mid_turn, TurnFault::DisconnectMidTurn),
            (self.no_final_ping, TurnFault::NoFinalPing),
            (self.output_error, TurnFault::OutputError),
        ]
        .into_iter()
        .find_map(|(p, fault)| p.roll(rng).then_some(fault))
    }
}

/// Seed of connection `index`'s fault draws: independent of the delay RNGs.
fn mix(seed: u64, index: u64) -> u64 {
    (seed ^ 0xFA01_7FA0_17FA_017F).wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What the gate decided for one WebSocket upgrade; handed to the namespace
/// handler as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionPlan {
    pub refuse: bool,
    /// Serve this connection with the raw server, which fires this fault.
    pub raw: Option<RawFault>,
    pub no_endpoint_ready: bool,
    /// Seed of the session's per-turn fault draws.
    pub turn_seed: u64,
}

impl ConnectionPlan {
    /// The session's per-turn fault RNG.
    pub fn turn_rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.turn_seed)
    }
}

/// Faults only the raw Engine.IO server can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawFault {
    CloseMidTurn,
    GarbageFrame,
    TruncatedFrame,
    OversizedFrame,
    NoPong,
}

/// Faults of one turn on a normal (socketioxide) connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TurnFault {
    DisconnectMidTurn,
    NoFinalPing,
    OutputError,
}

/// Every fault, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
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
    AckWait,
}

const FAULTS: usize = 11;

/// How often each fault fired since the emulator started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    pub refuse: u64,
    pub no_endpoint_ready: u64,
    pub no_final_ping: u64,
    pub disconnect_mid_turn: u64,
    pub close_mid_turn: u64,
    pub garbage_frame: u64,
    pub truncated_frame: u64,
    pub oversized_frame: u64,
    pub no_pong: u64,
    pub output_error: u64,
    /// Outputs whose ack was awaited (not a probability: every output with `ack_wait`).
    pub ack_wait: u64,
}

impl FaultCounts {
    /// Faults fired, `ack_wait` excluded (it is a slowdown, not a failure).
    pub fn failures(&self) -> u64 {
        self.refuse
            + self.no_endpoint_ready
            + self.no_final_ping
            + self.disconnect_mid_turn
            + self.close_mid_turn
            + self.garbage_frame
            + self.truncated_frame
            + self.oversized_frame
            + self.no_pong
            + self.output_error
    }
}

/// The live counters behind [`FaultCounts`].
#[derive(Debug, Default)]
pub(crate) struct FaultCounters([AtomicU64; FAULTS]);

impl FaultCounters {
    pub fn fired(&self, fault: Fault) {
        if let Some(c) = self.0.get(fault as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> FaultCounts {
        let get = |f: Fault| {
            self.0
                .get(f as usize)
                .map_or(0, |c| c.load(Ordering::Relaxed))
        };
        FaultCounts {
            refuse: get(Fault::Refuse),
            no_endpoint_ready: get(Fault::NoEndpointReady),
            no_final_ping: get(Fault::NoFinalPing),
            disconnect_mid_turn: get(Fault::DisconnectMidTurn),
            close_mid_turn: get(Fault::CloseMidTurn),
            garbage_frame: get(Fault::GarbageFrame),
            truncated_frame: get(Fault::TruncatedFrame),
            oversized_frame: get(Fault::OversizedFrame),
            no_pong: get(Fault::NoPong),
            output_error: get(Fault::OutputError),
            ack_wait: get(Fault::AckWait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::EmulatorConfig;

    #[test]
    fn yaml_block_loads() {
        let c = EmulatorConfig::from_yaml_str(
            "faults:\n  refuse: 0.25\n  no_pong: 1\n  ack_wait: {delay: 200ms}\n",
        )
        .unwrap();
        assert_eq!(c.faults.refuse.get(), 0.25);
        assert_eq!(c.faults.no_pong, Probability::ALWAYS);
        assert_eq!(
            c.faults.ack_wait.map(|a| a.delay.0),
            Some(std::time::Duration::from_millis(200))
        );
        assert_eq!(c.faults.output_error, Probability::NEVER);
        assert_eq!(
            EmulatorConfig::from_yaml_str("").unwrap().faults,
            SocketIoFaults::default()
        );
    }

    #[test]
    fn bad_probability_is_positioned_and_named() {
        let e = EmulatorConfig::from_yaml_str("outputs: 1\nfaults:\n  garbage_frame: 1.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
        assert!(e.contains("1.5"), "{e}");
        assert!(e.contains("line 3"), "no position in {e}");
        let e = EmulatorConfig::from_yaml_str("faults:\n  refuse: -0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("between 0 and 1") && e.contains("line 2"), "{e}");
        let e = EmulatorConfig::from_yaml_str("faults:\n  refuse_all: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("refuse_all"), "{e}");
        assert!(Probability::new(f64::NAN).is_err());
    }

    #[test]
    fn plans_are_seeded_and_exclusive() {
        let all = SocketIoFaults {
            refuse: Probability(0.2),
            close_mid_turn: Probability(0.2),
            garbage_frame: Probability(0.2),
            no_endpoint_ready: Probability(0.5),
            ..Default::default()
        };
        let plans: Vec<_> = (0..200).map(|i| all.plan_connection(7, i)).collect();
        let again: Vec<_> = (0..200).map(|i| all.plan_connection(7, i)).collect();
        assert_eq!(plans, again);
        let other: Vec<_> = (0..200).map(|i| all.plan_connection(8, i)).collect();
        assert_ne!(plans, other);
        for p in &plans {
            let hits =
                u8::from(p.refuse) + u8::from(p.raw.is_some()) + u8::from(p.no_endpoint_ready);
            assert!(hits <= 1, "{p:?}");
        }
        assert!(plans.iter().any(|p| p.refuse));
        assert!(plans.iter().any(|p| p.raw == Some(RawFault::CloseMidTurn)));
        assert!(plans.iter().any(|p| p.no_endpoint_ready));
        assert!(plans
            .iter()
            .any(|p| !p.refuse && p.raw.is_none() && !p.no_endpoint_ready));

        let off = SocketIoFaults::default();
        assert!(!off.plan_connection(1, 0).refuse);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(off.roll_turn(&mut rng), None);
        let always = SocketIoFaults {
            no_final_ping: Probability::ALWAYS,
            output_error: Probability::ALWAYS,
            ..Default::default()
        };
        assert_eq!(always.roll_turn(&mut rng), Some(TurnFault::NoFinalPing));
    }

    #[test]
    fn counters_count_each_fault() {
        let c = FaultCounters::default();
        c.fired(Fault::Refuse);
        c.fired(Fault::AckWait);
        c.fired(Fault::AckWait);
        c.fired(Fault::OutputError);
        let s = c.snapshot();
        assert_eq!((s.refuse, s.ack_wait, s.output_error), (1, 2, 1));
        assert_eq!(s.failures(), 2);
    }
}
