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
        rmp_serde::from_slice(bytes).map_err(|e| CodecError::Decode {
            codec: Self::NAME,
            reason: e.to_string(),
        })
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
