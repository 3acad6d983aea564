//! Socket.IO fault modes of the emulator: the seeded decisions (which
//! connection, session or turn gets which fault) and the counters of faults
//! fired. The `faults:` settings live in `emulator_config::faults`; the
//! runtime-side faults in `runtime_faults`.
//!
//! **Per connection** (drawn at the HTTP upgrade, in this order; the first hit
//! wins and later ones are not applied): `refuse`, then the *raw* faults
//! `close_mid_turn`, `garbage_frame`, `truncated_frame`, `oversized_frame`,
//! `no_pong`, then `no_endpoint_ready`. socketioxide can neither write an
//! arbitrary frame, nor drop the transport without `41`, nor withhold
//! heartbeats, so a connection with a raw fault is served by a minimal
//! Engine.IO 3/4 server (`raw_socketio`) that plays the same bot turn plan
//! (`bot`: stall, degrade, context version, per-turn faults, `ack_wait`) and
//! fires its frame fault on the first turn, in place of that turn's fault. Raw faults apply only to
//! query sessions (not the inner handshake); polling requests get no faults.
//!
//! **Per turn** (drawn when a turn starts, on any connection, in this order;
//! first hit wins): `disconnect_mid_turn`, `no_final_ping`,
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

pub use crate::emulator_config::faults::{AckWait, Fault, Probability, SocketIoFaults};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

impl SocketIoFaults {
    /// True when some per-connection fault can fire.
    fn any_per_connection(&self) -> bool {
        let p = |f: Fault| self.probability(f).is_some_and(|p| p.get() > 0.0);
        p(Fault::Refuse) || p(Fault::NoEndpointReady) || RawFault::ALL.iter().any(|r| p(r.fault()))
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
        let roll = |f: Fault, rng: &mut StdRng| self.probability(f).is_some_and(|p| p.roll(rng));
        if roll(Fault::Refuse, &mut rng) {
            plan.refuse = true;
            return plan;
        }
        plan.raw = RawFault::ALL
            .into_iter()
            .find(|raw| roll(raw.fault(), &mut rng));
        if plan.raw.is_none() {
            plan.no_endpoint_ready = roll(Fault::NoEndpointReady, &mut rng);
        }
        plan
    }

    /// Draws the fault of one turn (at most one).
    pub(crate) fn roll_turn(&self, rng: &mut StdRng) -> Option<TurnFault> {
        TurnFault::ALL
            .into_iter()
            .find(|t| self.probability(t.fault()).is_some_and(|p| p.roll(rng)))
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

/// Faults only the raw Engine.IO server can produce, in the order drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawFault {
    CloseMidTurn,
    GarbageFrame,
    TruncatedFrame,
    OversizedFrame,
    NoPong,
}

impl RawFault {
    const ALL: [RawFault; 5] = [
        RawFault::CloseMidTurn,
        RawFault::GarbageFrame,
        RawFault::TruncatedFrame,
        RawFault::OversizedFrame,
        RawFault::NoPong,
    ];

    pub fn fault(self) -> Fault {
        match self {
            RawFault::CloseMidTurn => Fault::CloseMidTurn,
            RawFault::GarbageFrame => Fault::GarbageFrame,
            RawFault::TruncatedFrame => Fault::TruncatedFrame,
            RawFault::OversizedFrame => Fault::OversizedFrame,
            RawFault::NoPong => Fault::NoPong,
        }
    }

    /// Whether it spoils a turn (a frame or the connection) rather than the heartbeat.
    pub fn in_turn(self) -> bool {
        self != RawFault::NoPong
    }
}

/// Faults of one turn, in the order drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TurnFault {
    DisconnectMidTurn,
    NoFinalPing,
    OutputError,
}

impl TurnFault {
    const ALL: [TurnFault; 3] = [
        TurnFault::DisconnectMidTurn,
        TurnFault::NoFinalPing,
        TurnFault::OutputError,
    ];

    pub fn fault(self) -> Fault {
        match self {
            TurnFault::DisconnectMidTurn => Fault::DisconnectMidTurn,
            TurnFault::NoFinalPing => Fault::NoFinalPing,
            TurnFault::OutputError => Fault::OutputError,
        }
    }
}

const FAULTS: usize = Fault::ALL.len();

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
    /// How often `fault` fired.
    pub fn get(&self, fault: Fault) -> u64 {
        let mut copy = *self;
        *copy.slot(fault)
    }

    fn slot(&mut self, fault: Fault) -> &mut u64 {
        match fault {
            Fault::Refuse => &mut self.refuse,
            Fault::NoEndpointReady => &mut self.no_endpoint_ready,
            Fault::NoFinalPing => &mut self.no_final_ping,
            Fault::DisconnectMidTurn => &mut self.disconnect_mid_turn,
            Fault::CloseMidTurn => &mut self.close_mid_turn,
            Fault::GarbageFrame => &mut self.garbage_frame,
            Fault::TruncatedFrame => &mut self.truncated_frame,
            Fault::OversizedFrame => &mut self.oversized_frame,
            Fault::NoPong => &mut self.no_pong,
            Fault::OutputError => &mut self.output_error,
            Fault::AckWait => &mut self.ack_wait,
        }
    }

    /// Faults fired, `ack_wait` excluded (it is a slowdown, not a failure).
    pub fn failures(&self) -> u64 {
        Fault::ALL
            .iter()
            .filter(|f| **f != Fault::AckWait)
            .map(|f| self.get(*f))
            .sum()
    }
}

/// The live counters behind [`FaultCounts`].
#[derive(Debug, Default)]
pub(crate) struct FaultCounters([AtomicU64; FAULTS]);

impl FaultCounters {
    pub fn fired(&self, fault: Fault) {
        if let Some(c) = Fault::ALL
            .iter()
            .position(|f| *f == fault)
            .and_then(|i| self.0.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> FaultCounts {
        let mut counts = FaultCounts::default();
        for (fault, counter) in Fault::ALL.iter().zip(&self.0) {
            *counts.slot(*fault) = counter.load(Ordering::Relaxed);
        }
        counts
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
            refuse: Probability::new(0.2).unwrap(),
            close_mid_turn: Probability::new(0.2).unwrap(),
            garbage_frame: Probability::new(0.2).unwrap(),
            no_endpoint_ready: Probability::new(0.5).unwrap(),
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

    /// The counts' fields are the table's names, so the stats read like the YAML.
    #[test]
    fn count_fields_are_the_fault_names() {
        crate::emulator_config::faults::assert_keys_are_fault_names(
            &serde_json::to_value(FaultCounts::default()).unwrap(),
        );
        let c = FaultCounters::default();
        for (i, f) in Fault::ALL.iter().enumerate() {
            for _ in 0..=i {
                c.fired(*f);
            }
        }
        let s = c.snapshot();
        for (i, f) in Fault::ALL.iter().enumerate() {
            assert_eq!(s.get(*f), i as u64 + 1, "{}", f.name());
        }
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
