//! Message encodings of the runtime WebSocket: MessagePack (named maps, as
//! msgpackr produces them) and UTF-8 JSON, behind the one-method-pair
//! [`WireCodec`] trait; [`Codec`] picks one per connection (`codec=` in the URL).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a payload could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode as {codec}: {reason}")]
    Encode { codec: &'static str, reason: String },
    #[error("cannot decode {codec} payload: {reason}")]
    Decode { codec: &'static str, reason: String },
}

/// One message encoding.
pub trait WireCodec {
    const NAME: &'static str;
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError>;
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;
}

/// MessagePack with named maps (struct fields as map keys, like msgpackr).
pub struct MsgPack;

impl WireCodec for MsgPack {
    const NAME: &'static str = "msgpack";

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
        rmp_serde::to_vec_named(value).map_err(|e| CodecError::Encode {
            codec: Self::NAME,
            reason: e.to_string(),
        })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        check_msgpack_lengths(bytes).map_err(|reason| CodecError::Decode {
            codec: Self::NAME,
            reason,
        })?;
        rmp_serde::from_slice(bytes).map_err(|e| CodecError::Decode {
            codec: Self::NAME,
            reason: e.to_string(),
        })
    }
}

/// Walks the first MessagePack value of `bytes` without allocating and rejects
/// it when a declared length cannot fit in the bytes that follow (every array
/// item or map entry needs at least one byte). serde pre-allocates up to 1 MiB
/// per declared collection while buffering a tagged enum, so without this a
/// 5-byte `array32(0xFFFFFFFF)` header cost 1 MiB and nesting them cost 1 MiB
/// per level. Trailing bytes are left to rmp_serde as before.
fn check_msgpack_lengths(bytes: &[u8]) -> Result<(), String> {
    let mut at = 0usize;
    // Values still to read; each needs at least one byte.
    let mut pending: usize = 1;
    let remaining = |at: usize| bytes.len().saturating_sub(at);
    let be = |at: usize, width: usize| -> Result<usize, String> {
        let field = bytes
            .get(at..at + width)
            .ok_or_else(|| format!("truncated length at byte {at}"))?;
        Ok(field.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)))
    };
    while pending > 0 {
        let marker = *bytes
            .get(at)
            .ok_or_else(|| format!("truncated message: {pending} value(s) missing at byte {at}"))?;
        pending -= 1;
        at += 1;
        // (bytes to skip, items that follow) for this marker.
        let (skip, items) = match marker {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
            0x90..=0x9f => (0, usize::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (be(at, 1)?.saturating_add(1), 0),
            0xc5 | 0xda => (be(at, 2)?.saturating_add(2), 0),
            0xc6 | 0xdb => (be(at, 4)?.saturating_add(4), 0),
            0xc7 => (be(at, 1)?.saturating_add(2), 0),
            0xc8 => (be(at, 2)?.saturating_add(3), 0),
            0xc9 => (be(at, 4)?.saturating_add(5), 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (2, be(at, 2)?),
            0xdd => (4, be(at, 4)?),
            0xde => (2, be(at, 2)?.saturating_mul(2)),
            0xdf => (4, be(at, 4)?.saturating_mul(2)),
            0xc1 => return Err(format!("reserved marker 0xc1 at byte {}", at - 1)),
        };
        if skip > remaining(at) {
            return Err(format!(
                "value at byte {} declares {skip} bytes but only {} follow",
                at - 1,
                remaining(at)
            ));
        }
        at += skip;
        pending = pending.saturating_add(items);
        if pending > remaining(at) {
            return Err(format!(
                "collection at byte {} declares more items than the {} bytes that follow",
                at - 1 - skip,
                remaining(at)
            ));
        }
    }
    Ok(())
}

/// UTF-8 JSON.
pub struct Json;

impl WireCodec for Json {
    const NAME: &'static str = "json";

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::Encode {
            codec: Self::NAME,
            reason: e.to_string(),
        })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Decode {
            codec: Self::NAME,
            reason: e.to_string(),
        })
    }
}

/// The codec of one connection (scenario `runtime.codec`, URL `codec=`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    #[default]
    Msgpack,
    Json,
}

impl Codec {
    /// The value of the `codec=` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Msgpack => MsgPack::NAME,
            Codec::Json => Json::NAME,
        }
    }

    /// Parses the `codec=` query value.
    pub fn from_query(value: &str) -> Option<Codec> {
        match value {
            "msgpack" => Some(Codec::Msgpack),
            "json" => Some(Codec::Json),
            _ => None,
        }
    }

    pub fn encode<T: Serialize>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        match self {
            Codec::Msgpack => MsgPack::encode(value),
            Codec::Json => Json::encode(value),
        }
    }

    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Codec::Msgpack => MsgPack::decode(bytes),
            Codec::Json => Json::decode(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::runtime::{ClientMessage, RejectCode, ServerMessage};
    use serde_json::json;

    fn update() -> ClientMessage {
        let mut session = serde_json::Map::new();
        session.insert("cart".into(), json!({"items": [1, 2, 3], "total": 9.5}));
        session.insert("flag".into(), json!(true));
        ClientMessage::UpdateContext {
            request_id: "r-1".into(),
            session_id: "s 1".into(),
            version: 7,
            context: [("session".to_string(), session)].into_iter().collect(),
        }
    }

    #[test]
    fn both_codecs_round_trip_client_and_server_messages() {
        let reject = ServerMessage::ContextRejected {
            request_id: "r-1".into(),
            session_id: "s".into(),
            code: RejectCode::VersionMismatch,
            message: "stale".into(),
            current_version: Some(9),
        };
        for codec in [Codec::Msgpack, Codec::Json] {
            let bytes = codec.encode(&update()).unwrap();
            assert_eq!(codec.decode::<ClientMessage>(&bytes).unwrap(), update());
            let bytes = codec.encode(&reject).unwrap();
            assert_eq!(codec.decode::<ServerMessage>(&bytes).unwrap(), reject);
        }
    }

    #[test]
    fn json_wire_shape_is_camel_case_with_type_tag() {
        let v: serde_json::Value =
            serde_json::from_slice(&Codec::Json.encode(&update()).unwrap()).unwrap();
        assert_eq!(v["type"], "updateContext");
        assert_eq!(v["requestId"], "r-1");
        assert_eq!(v["sessionId"], "s 1");
        assert_eq!(v["version"], 7);
    }

    #[test]
    fn msgpack_uses_named_maps_and_is_smaller() {
        let mp = Codec::Msgpack.encode(&update()).unwrap();
        let js = Codec::Json.encode(&update()).unwrap();
        // fixmap marker first, and the key "type" appears by name.
        assert_eq!(mp[0] & 0xf0, 0x80);
        assert!(mp.windows(4).any(|w| w == b"type"));
        assert!(mp.len() < js.len(), "{} vs {}", mp.len(), js.len());
    }

    #[test]
    fn huge_msgpack_lengths_are_rejected_before_deserializing() {
        // {"type":"context","context": array32(0xFFFFFFFF) nested 8 times}
        let mut bytes = b"\x82\xa4type\xa7context\xa7context".to_vec();
        for _ in 0..8 {
            bytes.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        }
        let e = Codec::Msgpack
            .decode::<ServerMessage>(&bytes)
            .unwrap_err()
            .to_string();
        assert!(e.contains("declares more items"), "{e}");
        for bad in [
            &b"\xdb\xff\xff\xff\xffab"[..],
            b"\xdf\x00\x00\x00\x02\x01",
            b"\x92\x01",
        ] {
            assert!(check_msgpack_lengths(bad).is_err(), "{bad:02x?}");
        }
        // Well-formed values (trailing bytes are rmp_serde's business) pass.
        for good in [
            &b"\x92\x01\xa1x"[..],
            b"\xc0",
            b"\x81\xa1k\xd7\x00\x01\x02\x03\x04\x05\x06\x07\x08",
            b"\x01\xff",
        ] {
            assert_eq!(check_msgpack_lengths(good), Ok(()), "{good:02x?}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [Codec::Msgpack, Codec::Json] {
            for bad in [
                &b""[..],
                b"\xc1",
                b"\x81\xa4type\xa3bad",
                b"{\"type\":1}",
                b"\xff\xff",
            ] {
                assert!(codec.decode::<ServerMessage>(bad).is_err());
            }
        }
        let unknown = json!({"type":"contextRejected","requestId":"r","sessionId":"s","code":"NEW_CODE","message":"m"});
        let m: ServerMessage = serde_json::from_value(unknown).unwrap();
        assert!(matches!(
            m,
            ServerMessage::ContextRejected {
                code: RejectCode::Unknown,
                ..
            }
        ));
    }
}
