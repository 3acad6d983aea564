//! Runtime length-prefixed frames (`protocol::runtime::frame`): no panic on
//! arbitrary bytes, exact results for every header/body combination, a
//! declared length above the limit rejected before any allocation, and
//! `decode(encode(p)) == p`.

use super::alloc_probe::measure;
use super::support::config;
use finalping::protocol::runtime::frame::{
    decode, encode, heartbeat, heartbeat_ack, FrameError, Payload, DEFAULT_MAX_PAYLOAD, HEARTBEAT,
    HEARTBEAT_ACK,
};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn expected(payload: &[u8]) -> Payload<'_> {
    match payload {
        [HEARTBEAT] => Payload::Heartbeat,
        [HEARTBEAT_ACK] => Payload::HeartbeatAck,
        _ => Payload::Message(payload),
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_bytes_give_the_exact_result(
        message in proptest::collection::vec(any::<u8>(), 0..64),
        max in prop_oneof![0usize..80, Just(DEFAULT_MAX_PAYLOAD), Just(usize::MAX)],
    ) {
        let got = decode(&message, max);
        let Some((header, body)) = message.split_first_chunk::<4>() else {
            prop_assert_eq!(got, Err(FrameError::TooShort { len: message.len() }));
            return Ok(());
        };
        let declared = u64::from(u32::from_be_bytes(*header));
        if declared > max as u64 {
            prop_assert_eq!(got, Err(FrameError::TooLarge { declared, max }));
        } else if declared != body.len() as u64 {
            prop_assert_eq!(got, Err(FrameError::LengthMismatch { declared, actual: body.len() }));
        } else if body.is_empty() {
            prop_assert_eq!(got, Err(FrameError::Empty));
        } else {
            prop_assert_eq!(got, Ok(expected(body)));
        }
    }

    #[test]
    fn encode_decode_round_trips(payload in proptest::collection::vec(any::<u8>(), 1..2048)) {
        let frame = encode(&payload);
        prop_assert_eq!(frame.len(), payload.len() + 4);
        prop_assert_eq!(decode(&frame, payload.len()), Ok(expected(&payload)));
        prop_assert_eq!(decode(&frame, DEFAULT_MAX_PAYLOAD), Ok(expected(&payload)));
        // One byte under the limit is too large, whatever the body.
        prop_assert_eq!(
            decode(&frame, payload.len() - 1),
            Err(FrameError::TooLarge { declared: payload.len() as u64, max: payload.len() - 1 })
        );
    }

    /// Headers up to 0xFFFFFFFF over the limit, with tiny bodies: `TooLarge`,
    /// no allocation at all, and fast.
    #[test]
    fn huge_headers_are_rejected_before_allocating(
        declared in prop_oneof![Just(u32::MAX), Just(0x0200_0001u32), any::<u32>()],
        body in proptest::collection::vec(any::<u8>(), 0..8),
        max in prop_oneof![Just(DEFAULT_MAX_PAYLOAD), 0usize..1024],
    ) {
        prop_assume!(u64::from(declared) > max as u64);
        let mut message = declared.to_be_bytes().to_vec();
        message.extend_from_slice(&body);
        let start = Instant::now();
        let (got, allocs) = measure(|| decode(&message, max));
        let elapsed = start.elapsed();
        prop_assert_eq!(got, Err(FrameError::TooLarge { declared: u64::from(declared), max }));
        prop_assert_eq!(allocs.count, 0, "decode allocated {:?}", allocs);
        prop_assert!(elapsed < Duration::from_millis(100), "took {elapsed:?}");
    }
}

#[test]
fn heartbeats_are_exact_frames() {
    assert_eq!(decode(&heartbeat(), 1), Ok(Payload::Heartbeat));
    assert_eq!(decode(&heartbeat_ack(), 1), Ok(Payload::HeartbeatAck));
    assert_eq!(
        decode(&heartbeat(), 0),
        Err(FrameError::TooLarge {
            declared: 1,
            max: 0
        })
    );
}
