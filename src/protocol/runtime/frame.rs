//! Length-prefixed binary frames: every WebSocket message is a 4-byte
//! big-endian length `N` followed by exactly `N` payload bytes. Payload
//! `[0x02]` is a heartbeat, `[0x03]` its answer (defined by us); anything else
//! is one encoded message. Decoding checks the header against the message and
//! the limit before anything is allocated; it never panics.

/// Heartbeat payload sent by the client.
pub const HEARTBEAT: u8 = 0x02;
/// Heartbeat answer sent by the server.
pub const HEARTBEAT_ACK: u8 = 0x03;
/// Default largest accepted payload: a 1 MiB update plus envelope and slack.
pub const DEFAULT_MAX_PAYLOAD: usize = 2 * 1024 * 1024;

/// What one frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    Heartbeat,
    HeartbeatAck,
    Message(&'a [u8]),
}

/// Why a binary message is not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes is shorter than its 4-byte length header")]
    TooShort { len: usize },
    #[error("frame header declares {declared} payload bytes but {actual} follow")]
    LengthMismatch { declared: u64, actual: usize },
    #[error("frame header declares {declared} payload bytes, more than the limit of {max}")]
    TooLarge { declared: u64, max: usize },
    #[error("frame with an empty payload")]
    Empty,
}

/// Wraps `payload` in a frame (header + payload).
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    // Payloads are bounded far below 4 GiB by the 1 MiB update limit.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The frame for a heartbeat: `00 00 00 01 02`.
pub fn heartbeat() -> Vec<u8> {
    encode(&[HEARTBEAT])
}

/// The frame for a heartbeat answer: `00 00 00 01 03`.
pub fn heartbeat_ack() -> Vec<u8> {
    encode(&[HEARTBEAT_ACK])
}

/// Splits one binary WebSocket message into its payload.
pub fn decode(message: &[u8], max_payload: usize) -> Result<Payload<'_>, FrameError> {
    let Some((header, body)) = message.split_first_chunk::<4>() else {
        return Err(FrameError::TooShort { len: message.len() });
    };
    let declared = u64::from(u32::from_be_bytes(*header));
    if declared > max_payload as u64 {
        return Err(FrameError::TooLarge {
            declared,
            max: max_payload,
        });
    }
    if declared != body.len() as u64 {
        return Err(FrameError::LengthMismatch {
            declared,
            actual: body.len(),
        });
    }
    match body {
        [] => Err(FrameError::Empty),
        [HEARTBEAT] => Ok(Payload::Heartbeat),
        [HEARTBEAT_ACK] => Ok(Payload::HeartbeatAck),
        _ => Ok(Payload::Message(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_frame_is_exact() {
        assert_eq!(heartbeat(), vec![0, 0, 0, 1, 2]);
        assert_eq!(decode(&heartbeat(), 16), Ok(Payload::Heartbeat));
        assert_eq!(decode(&heartbeat_ack(), 16), Ok(Payload::HeartbeatAck));
        // The known mistake: header bytes filled with 0x02.
        assert!(matches!(
            decode(&[2, 2, 2, 2, 2], 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn round_trip_and_errors() {
        let f = encode(b"hello");
        assert_eq!(decode(&f, 100), Ok(Payload::Message(b"hello")));
        assert_eq!(
            decode(&f[..7], 100),
            Err(FrameError::LengthMismatch {
                declared: 5,
                actual: 3
            })
        );
        assert_eq!(decode(&[0, 0], 100), Err(FrameError::TooShort { len: 2 }));
        assert_eq!(decode(&[0, 0, 0, 0], 100), Err(FrameError::Empty));
        let huge = [0xff, 0xff, 0xff, 0xff, 1];
        assert!(matches!(
            decode(&huge, 100),
            Err(FrameError::TooLarge { .. })
        ));
        let mut long = encode(b"abc");
        long.push(0);
        assert!(matches!(
            decode(&long, 100),
            Err(FrameError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap exhaustive sweep over short inputs.
        for len in 0..8usize {
            for seed in 0..=255u8 {
                let msg: Vec<u8> = (0..len).map(|i| seed.wrapping_mul(i as u8 + 7)).collect();
                let _ = decode(&msg, 64);
            }
        }
    }
}
