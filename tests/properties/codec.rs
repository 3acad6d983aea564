//! Runtime messages (`protocol::runtime`): MessagePack and JSON decoding of
//! `ClientMessage`/`ServerMessage` never panics (arbitrary bytes, arbitrary
//! JSON re-encoded, huge declared MessagePack lengths without large
//! allocations); arbitrary valid messages with nested context values
//! round-trip through both codecs; `Limits::check` gives exactly the
//! documented verdict; `normalize_json` is idempotent.

use super::alloc_probe::measure;
use super::support::{any_text, config, json_leaf, json_object, json_value, json_value_with};
use finalping::protocol::runtime::{
    normalize_json, ClientMessage, Codec, Context, LimitError, Limits, RejectCode, ServerMessage,
    SCOPES,
};
use proptest::prelude::*;
use serde_json::Value;

const CODECS: [Codec; 2] = [Codec::Msgpack, Codec::Json];

/// Decodes as both message kinds. For MessagePack, the codec's length pre-check
/// must not change the verdict of plain `rmp_serde` (it only fails earlier).
fn decode_both(codec: Codec, bytes: &[u8]) -> Result<(), TestCaseError> {
    let server = codec.decode::<ServerMessage>(bytes);
    let client = codec.decode::<ClientMessage>(bytes);
    if codec == Codec::Msgpack {
        let plain_server = rmp_serde::from_slice::<ServerMessage>(bytes);
        let plain_client = rmp_serde::from_slice::<ClientMessage>(bytes);
        prop_assert_eq!(
            server.is_ok(),
            plain_server.is_ok(),
            "{:02x?}: {:?}",
            bytes,
            server.err()
        );
        prop_assert_eq!(
            client.is_ok(),
            plain_client.is_ok(),
            "{:02x?}: {:?}",
            bytes,
            client.err()
        );
    }
    Ok(())
}

fn scope_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(SCOPES.to_vec()).prop_map(str::to_string),
        1 => any_text(8),
    ]
}

fn context(max_scopes: usize, max_vars: usize) -> impl Strategy<Value = Context> {
    proptest::collection::btree_map(scope_name(), json_object(max_vars), 0..=max_scopes)
}

fn reject_code() -> impl Strategy<Value = RejectCode> {
    proptest::sample::select(vec![
        RejectCode::VersionMismatch,
        RejectCode::LimitExceeded,
        RejectCode::InvalidScope,
        RejectCode::TooManyInFlight,
        RejectCode::BadPayload,
        RejectCode::Forbidden,
        RejectCode::Unknown,
    ])
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any_text(12), any_text(12), any::<u64>(), context(4, 5)).prop_map(
            |(request_id, session_id, version, context)| ClientMessage::UpdateContext {
                request_id,
                session_id,
                version,
                context,
            }
        ),
        (any_text(12), any_text(12)).prop_map(|(request_id, session_id)| {
            ClientMessage::GetContext {
                request_id,
                session_id,
            }
        }),
    ]
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let ids = (any_text(12), any_text(12));
    prop_oneof![
        (ids.clone(), any::<u64>(), context(3, 4)).prop_map(
            |((request_id, session_id), version, previous)| {
                ServerMessage::ContextUpdated {
                    request_id,
                    session_id,
                    version,
                    previous,
                }
            }
        ),
        (
            ids.clone(),
            reject_code(),
            any_text(24),
            proptest::option::of(any::<u64>())
        )
            .prop_map(
                |((request_id, session_id), code, message, current_version)| {
                    ServerMessage::ContextRejected {
                        request_id,
                        session_id,
                        code,
                        message,
                        current_version,
                    }
                }
            ),
        (ids, any::<u64>(), context(3, 4)).prop_map(
            |((request_id, session_id), version, context)| {
                ServerMessage::Context {
                    request_id,
                    session_id,
                    version,
                    context,
                }
            }
        ),
    ]
}

/// Objects shaped like messages: a known (or any) `type` and a random mix of
/// the real field names with arbitrary values.
fn message_like() -> impl Strategy<Value = Value> {
    let tag = prop_oneof![
        proptest::sample::select(vec![
            "updateContext",
            "getContext",
            "contextUpdated",
            "contextRejected",
            "context",
        ])
        .prop_map(str::to_string),
        any_text(8),
    ];
    let field = proptest::sample::select(vec![
        "requestId",
        "sessionId",
        "version",
        "context",
        "previous",
        "code",
        "message",
        "currentVersion",
        "type",
    ]);
    let any_float = any::<f64>().prop_map(Value::from).boxed();
    (
        tag,
        proptest::collection::vec((field, json_value_with(any_float)), 0..8),
    )
        .prop_map(|(tag, fields)| {
            let mut obj: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            obj.entry("type").or_insert(Value::String(tag));
            Value::Object(obj)
        })
}

/// MessagePack headers declaring up to 4 GiB of string, binary, array or map.
fn msgpack_huge_header() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(vec![
            0xdbu8, 0xc6, 0xdd, 0xdf, 0xda, 0xc5, 0xdc, 0xde, 0xd9, 0xc4,
        ]),
        prop_oneof![Just(u32::MAX), any::<u32>()],
        proptest::collection::vec(any::<u8>(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(marker, len, tail, nested)| {
            let mut out = Vec::new();
            if nested {
                // {"type": "context", "context": <huge>}
                out.push(0x82);
                out.extend_from_slice(b"\xa4type\xa7context\xa7context");
            }
            out.push(marker);
            let len_bytes = len.to_be_bytes();
            let width = match marker {
                0xd9 | 0xc4 => 1,
                0xda | 0xc5 | 0xdc | 0xde => 2,
                _ => 4,
            };
            out.extend_from_slice(&len_bytes[4 - width..]);
            out.extend_from_slice(&tail);
            out
        })
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        for codec in CODECS {
            decode_both(codec, &bytes)?;
        }
    }

    #[test]
    fn message_like_values_never_panic(value in message_like()) {
        for codec in CODECS {
            let bytes = codec.encode(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
            decode_both(codec, &bytes)?;
            // Truncated encodings too.
            for cut in [bytes.len() / 2, bytes.len().saturating_sub(1)] {
                decode_both(codec, bytes.get(..cut).unwrap_or_default())?;
            }
        }
    }

    /// A declared length of up to 4 GiB followed by a few bytes is an error,
    /// and no single allocation grows anywhere near the declared size.
    #[test]
    fn msgpack_huge_lengths_do_not_allocate(bytes in msgpack_huge_header()) {
        let ((server, client), allocs) = measure(|| {
            (
                Codec::Msgpack.decode::<ServerMessage>(&bytes).is_err(),
                Codec::Msgpack.decode::<ClientMessage>(&bytes).is_err(),
            )
        });
        prop_assert!(server && client, "{bytes:02x?} decoded");
        prop_assert!(
            allocs.largest <= 64 * 1024 && allocs.peak <= 64 * 1024,
            "{bytes:02x?}: {allocs:?}"
        );
    }

    #[test]
    fn client_messages_round_trip(message in client_message()) {
        for codec in CODECS {
            let bytes = codec.encode(&message).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = codec.decode::<ClientMessage>(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &message, "{}", codec.as_str());
        }
    }

    #[test]
    fn server_messages_round_trip(message in server_message()) {
        for codec in CODECS {
            let bytes = codec.encode(&message).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = codec.decode::<ServerMessage>(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &message, "{}", codec.as_str());
        }
    }

    /// MessagePack keeps every finite f64 bit for bit (JSON is only checked
    /// with short decimals: serde_json's default parser is not exact).
    #[test]
    fn msgpack_keeps_any_float(value in json_value_with(any::<f64>().prop_map(Value::from).boxed())) {
        let message = ClientMessage::UpdateContext {
            request_id: "r".into(),
            session_id: "s".into(),
            version: 1,
            context: [("session".to_string(), [("v".to_string(), value)].into_iter().collect())]
                .into_iter()
                .collect(),
        };
        let bytes = Codec::Msgpack.encode(&message).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = Codec::Msgpack.decode::<ClientMessage>(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, message);
    }

    /// The verdict is exactly: all scopes empty → `Empty`; else the first
    /// scope (in map order) that is unknown or over the count; else the JSON
    /// size against the byte limit.
    #[test]
    fn limits_check_is_exact(
        message in client_message(),
        max_vars in 0usize..6,
        max_bytes in prop_oneof![0usize..400, Just(1_048_576)],
    ) {
        let limits = Limits {
            max_variables_per_scope: max_vars,
            max_update_json_bytes: max_bytes,
            ..Limits::default()
        };
        let got = limits.check(&message);
        let bytes = serde_json::to_vec(&message).map_err(|e| TestCaseError::fail(e.to_string()))?.len();
        let size_verdict = if bytes > max_bytes {
            Err(LimitError::TooLarge { bytes, max: max_bytes })
        } else {
            Ok(())
        };
        let expected = match &message {
            ClientMessage::GetContext { .. } => size_verdict,
            ClientMessage::UpdateContext { context, .. } => {
                if context.values().all(|v| v.is_empty()) {
                    Err(LimitError::Empty)
                } else if let Some((scope, vars)) = context
                    .iter()
                    .find(|(s, v)| !SCOPES.contains(&s.as_str()) || v.len() > max_vars)
                {
                    if SCOPES.contains(&scope.as_str()) {
                        Err(LimitError::TooManyVariables { scope: scope.clone(), count: vars.len(), max: max_vars })
                    } else {
                        Err(LimitError::InvalidScope { scope: scope.clone() })
                    }
                } else {
                    size_verdict
                }
            }
        };
        prop_assert_eq!(&got, &expected);
        if got.is_ok() {
            if let ClientMessage::UpdateContext { context, .. } = &message {
                for (scope, vars) in context {
                    prop_assert!(SCOPES.contains(&scope.as_str()));
                    prop_assert!(vars.len() <= max_vars);
                }
            }
            prop_assert!(bytes <= max_bytes);
        }
    }
}

/// Strings shaped like YAML 1.1 timestamps (many with impossible fields).
fn timestamp_like() -> impl Strategy<Value = Value> {
    proptest::string::string_regex(
        "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]{1,2})[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?[ \t]{0,2}(Z|z|[+-][0-9]{1,2}(:[0-9]{2})?)?",
    )
    .expect("valid regex")
    .prop_map(Value::String)
}

fn value_with_timestamps() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        3 => json_leaf(super::support::decimal_float().boxed()),
        2 => timestamp_like(),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(any_text(6), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every string leaf, in order.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn normalize_is_idempotent(value in prop_oneof![value_with_timestamps(), json_value()]) {
        let once = normalize_json(value.clone());
        let twice = normalize_json(once.clone());
        prop_assert_eq!(&twice, &once);
        // Only strings change, and a changed string is RFC 3339.
        let (mut before, mut after) = (Vec::new(), Vec::new());
        strings(&value, &mut before);
        strings(&once, &mut after);
        prop_assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            if a != b {
                prop_assert!(
                    chrono::DateTime::parse_from_rfc3339(a).is_ok(),
                    "{b:?} became {a:?}, which is not RFC 3339"
                );
            }
        }
    }
}

/// Nested `array32(0xFFFFFFFF)` headers (5 bytes each): once cost 1 MiB of
/// serde pre-allocation per level; now rejected before deserializing.
#[test]
fn nested_huge_msgpack_arrays_stay_bounded() {
    for depth in [1usize, 4, 64, 1000] {
        let mut bytes = b"\x82\xa4type\xa7context\xa7context".to_vec();
        for _ in 0..depth {
            bytes.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        }
        for (codec_err, allocs) in [
            measure(|| Codec::Msgpack.decode::<ServerMessage>(&bytes).is_err()),
            measure(|| Codec::Msgpack.decode::<ClientMessage>(&bytes).is_err()),
        ] {
            assert!(codec_err, "depth {depth} decoded");
            assert!(allocs.peak <= 64 * 1024, "depth {depth}: {allocs:?}");
        }
    }
}
