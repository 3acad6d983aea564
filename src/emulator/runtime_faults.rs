//! Fault modes of the emulator's runtime side: the seeded dice that decide
//! when a `runtime.faults:` fault fires (settings and their order in
//! `emulator_config::runtime_faults`), and the counters of every fault fired
//! (compared by tests with what finalping reports). Delays end early when the
//! emulator shuts down.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use crate::emulator_config::runtime_faults::{Probability, RuntimeFaults};

/// What to do with one `updateContext` that decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateFault {
    Close4001,
    Close4002,
    Reject,
}

/// How to spoil one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyFault {
    BadLength,
    Undecodable,
}

/// What the token endpoint does with one request (after `token_delay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenFault {
    Error500,
    Malformed,
}

/// A payload that decodes in neither codec: `0xc1` is never used by
/// MessagePack and is not UTF-8/JSON either.
pub(crate) const UNDECODABLE_PAYLOAD: &[u8] = b"\xc1\xc1 not msgpack, not json";

/// `payload` framed with a length header one byte longer than the payload.
pub(crate) fn bad_length_frame(payload: &[u8]) -> Vec<u8> {
    let claimed = u32::try_from(payload.len())
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1);
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&claimed.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Counts of every fault fired since the emulator started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeFaultStats {
    /// Connections closed with 4001 instead of answering an update.
    pub closed_4001: u64,
    /// Connections closed with 4002 instead of answering an update.
    pub closed_4002: u64,
    /// Replies sent with a wrong length header.
    pub bad_length: u64,
    /// Replies sent as an undecodable payload.
    pub undecodable: u64,
    /// Updates answered `contextRejected` FORBIDDEN by the fault.
    pub rejected: u64,
    /// Token answers delayed (a non-zero `token_delay` drawn).
    pub token_delayed: u64,
    /// Token requests answered HTTP 500.
    pub token_errors: u64,
    /// Token requests answered with a malformed 200.
    pub token_malformed: u64,
    /// Webhook answers delayed (a non-zero `webhook_delay` drawn).
    pub webhook_delayed: u64,
    /// Webhook requests answered 503 (`webhook_down`).
    pub webhook_refused: u64,
}

/// The faults' settings, shared dice and counters.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub config: RuntimeFaults,
    /// Dice of the token endpoint and the webhook sink (connections have their own).
    rng: Mutex<StdRng>,
    closed_4001: AtomicU64,
    closed_4002: AtomicU64,
    bad_length: AtomicU64,
    undecodable: AtomicU64,
    rejected: AtomicU64,
    token_delayed: AtomicU64,
    token_errors: AtomicU64,
    token_malformed: AtomicU64,
    webhook_delayed: AtomicU64,
    webhook_refused: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl FaultState {
    pub fn new(config: RuntimeFaults, seed: u64) -> FaultState {
        FaultState {
            config,
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0001)),
            closed_4001: AtomicU64::new(0),
            closed_4002: AtomicU64::new(0),
            bad_length: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            token_delayed: AtomicU64::new(0),
            token_errors: AtomicU64::new(0),
            token_malformed: AtomicU64::new(0),
            webhook_delayed: AtomicU64::new(0),
            webhook_refused: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> RuntimeFaultStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RuntimeFaultStats {
            closed_4001: get(&self.closed_4001),
            closed_4002: get(&self.closed_4002),
            bad_length: get(&self.bad_length),
            undecodable: get(&self.undecodable),
            rejected: get(&self.rejected),
            token_delayed: get(&self.token_delayed),
            token_errors: get(&self.token_errors),
            token_malformed: get(&self.token_malformed),
            webhook_delayed: get(&self.webhook_delayed),
            webhook_refused: get(&self.webhook_refused),
        }
    }

    /// Decides (and counts) the fault of one decoded `updateContext`.
    pub fn on_update<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<UpdateFault> {
        let c = &self.config;
        if c.close_4001.roll(rng) {
            bump(&self.closed_4001);
            Some(UpdateFault::Close4001)
        } else if c.close_4002.roll(rng) {
            bump(&self.closed_4002);
            Some(UpdateFault::Close4002)
        } else if c.reject.roll(rng) {
            bump(&self.rejected);
            Some(UpdateFault::Reject)
        } else {
            None
        }
    }

    /// Decides (and counts) how one reply is spoiled, if at all.
    pub fn on_reply<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<ReplyFault> {
        let c = &self.config;
        if c.bad_length.roll(rng) {
            bump(&self.bad_length);
            Some(ReplyFault::BadLength)
        } else if c.undecodable.roll(rng) {
            bump(&self.undecodable);
            Some(ReplyFault::Undecodable)
        } else {
            None
        }
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut rng)
    }

    /// Waits the drawn `token_delay` (or until `stop`), then decides (and
    /// counts) the fault of one token request.
    pub async fn on_token_request(&self, stop: &CancellationToken) -> Option<TokenFault> {
        let delay = self.with_rng(|r| self.config.token_delay.sample(r));
        if !delay.is_zero() {
            bump(&self.token_delayed);
            wait(delay, stop).await;
        }
        let c = &self.config;
        let fault = self.with_rng(|r| {
            if c.token_error.roll(r) {
                Some(TokenFault::Error500)
            } else if c.token_malformed.roll(r) {
                Some(TokenFault::Malformed)
            } else {
                None
            }
        });
        match fault {
            Some(TokenFault::Error500) => bump(&self.token_errors),
            Some(TokenFault::Malformed) => bump(&self.token_malformed),
            None => {}
        }
        fault
    }

    /// Waits the drawn `webhook_delay` (or until `stop`); returns whether the
    /// sink is down (and counts it).
    pub async fn on_webhook(&self, stop: &CancellationToken) -> bool {
        let delay = self.with_rng(|r| self.config.webhook_delay.sample(r));
        if !delay.is_zero() {
            bump(&self.webhook_delayed);
            wait(delay, stop).await;
        }
        if self.config.webhook_down {
            bump(&self.webhook_refused);
        }
        self.config.webhook_down
    }
}

/// Sleeps `d`, or less if the emulator stops meanwhile.
async fn wait(d: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::runtime::{frame, Codec, ServerMessage};

    #[test]
    fn probabilities_are_checked_while_read() {
        let f: RuntimeFaults =
            serde_saphyr::from_str("close_4001: 0.5\nwebhook_down: true\ntoken_delay: 2s\n")
                .unwrap();
        assert_eq!(f.close_4001, Probability::new(0.5).unwrap());
        assert!(f.webhook_down);
        assert_eq!(f.token_delay.to_string(), "2s");
        for bad in ["reject: 1.5\n", "token_error: -0.1\n", "bad_length: .nan\n"] {
            let e = serde_saphyr::from_str::<RuntimeFaults>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("between 0 and 1") && e.contains("line 1"), "{e}");
        }
        let e = serde_saphyr::from_str::<RuntimeFaults>("close_4003: 1\n").unwrap_err();
        assert!(e.to_string().contains("close_4003"), "{e}");
    }

    #[test]
    fn the_emulator_config_carries_faults_with_positioned_errors() {
        use crate::emulator::EmulatorConfig;
        let c = EmulatorConfig::from_yaml_str(
            "runtime:\n  faults:\n    close_4001: 0.9\n    webhook_delay: uniform(1ms, 2ms)\n",
        )
        .unwrap();
        assert_eq!(c.runtime.faults.close_4001, Probability::new(0.9).unwrap());
        assert_eq!(
            EmulatorConfig::default().runtime.faults,
            RuntimeFaults::default()
        );
        let e = EmulatorConfig::from_yaml_str("runtime:\n  faults:\n    reject: 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("between 0 and 1"), "{e}");
    }

    #[test]
    fn dice_follow_the_probability_and_are_counted() {
        let state = FaultState::new(
            RuntimeFaults {
                close_4001: Probability::new(0.25).unwrap(),
                reject: Probability::new(1.0).unwrap(),
                ..Default::default()
            },
            7,
        );
        let mut rng = StdRng::seed_from_u64(1);
        let faults: Vec<_> = (0..4000).map(|_| state.on_update(&mut rng)).collect();
        let closes = faults
            .iter()
            .filter(|f| **f == Some(UpdateFault::Close4001))
            .count();
        assert!((800..1200).contains(&closes), "{closes}");
        assert_eq!(
            faults
                .iter()
                .filter(|f| **f == Some(UpdateFault::Reject))
                .count(),
            4000 - closes,
            "reject 1.0 takes every update not closed"
        );
        let s = state.stats();
        assert_eq!(
            (s.closed_4001, s.rejected),
            (closes as u64, 4000 - closes as u64)
        );
        assert_eq!(state.on_reply(&mut rng), None, "reply faults off");
        assert!(!Probability::new(0.0).unwrap().roll(&mut rng));
    }

    #[test]
    fn spoiled_replies_fail_to_decode_in_both_codecs() {
        let reply = ServerMessage::ContextUpdated {
            request_id: "r".into(),
            session_id: "s".into(),
            version: 1,
            previous: Default::default(),
        };
        for codec in [Codec::Msgpack, Codec::Json] {
            let payload = codec.encode(&reply).unwrap();
            assert!(frame::decode(&bad_length_frame(&payload), 1 << 20).is_err());
            assert!(codec.decode::<ServerMessage>(UNDECODABLE_PAYLOAD).is_err());
        }
        assert!(frame::decode(&frame::encode(UNDECODABLE_PAYLOAD), 1 << 20).is_ok());
    }
}
