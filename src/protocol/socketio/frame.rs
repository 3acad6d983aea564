//! Engine.IO 3/4 and Socket.IO packets as pure values: parse and encode, no I/O.
//!
//! One WebSocket text message is one Engine.IO packet (`0{open}`, `1` close,
//! `2` ping, `3` pong, `4…` message, `5` upgrade, `6` noop). A message packet
//! carries one Socket.IO packet: `<type>[/nsp,][<id>][<json>]` with types
//! connect `0`, disconnect `1`, event `2`, ack `3`, connect error `4`
//! (binary `5`/`6` are rejected: the Endpoint never sends them).
//! Every parse failure is a [`FrameError`] value; nothing here panics on input.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Largest heartbeat interval/timeout accepted from an open packet (1 hour):
/// anything larger is a broken server, and keeping it bounded keeps the
/// connection's deadline arithmetic far from overflow.
pub const MAX_HEARTBEAT_MS: u64 = 3_600_000;

/// Why a frame could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownEngineType(char),
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownSocketType(char),
    #[error("binary Socket.IO packets (type 5/6) are not supported")]
    Binary,
    #[error("bad open packet: {0}")]
    BadOpen(String),
    #[error("packet id is missing, too large or malformed")]
    BadId,
    #[error("bad JSON payload in {packet}: {reason}")]
    BadJson {
        packet: &'static str,
        reason: String,
    },
    #[error("{0}")]
    BadShape(&'static str),
}

/// The Engine.IO open packet payload (`0{…}`), with the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    pub sid: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest packet the server accepts (EIO4 servers send it; optional).
    pub max_payload: Option<u64>,
}

#[derive(Deserialize)]
struct OpenJson {
    sid: String,
    #[serde(rename = "pingInterval")]
    ping_interval: u64,
    #[serde(rename = "pingTimeout")]
    ping_timeout: u64,
    #[serde(rename = "maxPayload", default)]
    max_payload: Option<u64>,
}

/// One Engine.IO packet (one WebSocket text message).
#[derive(Debug, Clone, PartialEq)]
pub enum EnginePacket {
    Open(OpenInfo),
    Close,
    /// Ping with its payload (`""`, or `"probe"` during transport upgrades).
    Ping(String),
    Pong(String),
    Message(SocketPacket),
    Upgrade,
    Noop,
}

/// One Socket.IO packet (inside an Engine.IO message). `nsp` is `"/"` unless
/// a `/name,` prefix was present.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketPacket {
    /// `40` (EIO3, server → client), `40{"sid":…}` (EIO4 answer), `40` (EIO4 client).
    Connect {
        nsp: String,
        data: Option<Value>,
    },
    Disconnect {
        nsp: String,
    },
    /// `42[<id>]["name",args…]`.
    Event {
        nsp: String,
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `43<id>[args…]`.
    Ack {
        nsp: String,
        id: u64,
        args: Vec<Value>,
    },
    /// `44{…}` (EIO4) or `44"message"` (EIO3).
    ConnectError {
        nsp: String,
        data: Value,
    },
}

impl SocketPacket {
    /// A human-readable message for a connect error payload.
    pub fn connect_error_message(data: &Value) -> String {
        match data {
            Value::String(s) => s.clone(),
            Value::Object(m) => match m.get("message") {
                Some(Value::String(s)) => s.clone(),
                _ => data.to_string(),
            },
            other => other.to_string(),
        }
    }
}

/// Parses one WebSocket text message into an Engine.IO packet.
pub fn parse(text: &str) -> Result<EnginePacket, FrameError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(FrameError::Empty)?;
    let rest = chars.as_str();
    match kind {
        '0' => parse_open(rest).map(EnginePacket::Open),
        '1' => Ok(EnginePacket::Close),
        '2' => Ok(EnginePacket::Ping(rest.to_owned())),
        '3' => Ok(EnginePacket::Pong(rest.to_owned())),
        '4' => parse_socket(rest).map(EnginePacket::Message),
        '5' => Ok(EnginePacket::Upgrade),
        '6' => Ok(EnginePacket::Noop),
        other => Err(FrameError::UnknownEngineType(other)),
    }
}

fn parse_open(json: &str) -> Result<OpenInfo, FrameError> {
    let open: OpenJson =
        serde_json::from_str(json).map_err(|e| FrameError::BadOpen(e.to_string()))?;
    if open.ping_interval == 0 || open.ping_interval > MAX_HEARTBEAT_MS {
        return Err(FrameError::BadOpen(format!(
            "pingInterval {} ms is outside 1..={MAX_HEARTBEAT_MS}",
            open.ping_interval
        )));
    }
    if open.ping_timeout > MAX_HEARTBEAT_MS {
        return Err(FrameError::BadOpen(format!(
            "pingTimeout {} ms is above {MAX_HEARTBEAT_MS}",
            open.ping_timeout
        )));
    }
    Ok(OpenInfo {
        sid: open.sid,
        ping_interval: Duration::from_millis(open.ping_interval),
        ping_timeout: Duration::from_millis(open.ping_timeout),
        max_payload: open.max_payload,
    })
}

/// Parses the Socket.IO packet carried by an Engine.IO message (text after `4`).
pub fn parse_socket(text: &str) -> Result<SocketPacket, FrameError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(FrameError::Empty)?;
    let rest = chars.as_str();
    if kind == '5' || kind == '6' {
        return Err(FrameError::Binary);
    }
    if !matches!(kind, '0'..='4') {
        return Err(FrameError::UnknownSocketType(kind));
    }
    let (nsp, rest) = split_namespace(rest);
    match kind {
        '0' => Ok(SocketPacket::Connect {
            nsp,
            data: optional_json(rest, "connect")?,
        }),
        '1' => Ok(SocketPacket::Disconnect { nsp }),
        '2' => {
            let (id, json) = split_id(rest)?;
            let args = json_array(json, "event")?;
            let mut args = args.into_iter();
            let name = match args.next() {
                Some(Value::String(name)) => name,
                _ => return Err(FrameError::BadShape("event array must start with a name")),
            };
            Ok(SocketPacket::Event {
                nsp,
                id,
                name,
                args: args.collect(),
            })
        }
        '3' => {
            let (id, json) = split_id(rest)?;
            let id = id.ok_or(FrameError::BadId)?;
            Ok(SocketPacket::Ack {
                nsp,
                id,
                args: json_array(json, "ack")?,
            })
        }
        _ => Ok(SocketPacket::ConnectError {
            nsp,
            data: optional_json(rest, "connect error")?.unwrap_or(Value::Null),
        }),
    }
}

/// Splits an optional `/name,` (or `/name?query,`) prefix. A namespace with no
/// comma runs to the end (`41/chat`). The query part is dropped.
fn split_namespace(rest: &str) -> (String, &str) {
    if !rest.starts_with('/') {
        return ("/".to_owned(), rest);
    }
    let (nsp, after) = match rest.find(',') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let nsp = nsp.split('?').next().unwrap_or(nsp);
    (nsp.to_owned(), after)
}

/// Splits leading decimal digits (the packet id) from the JSON payload.
fn split_id(rest: &str) -> Result<(Option<u64>, &str), FrameError> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((None, rest));
    }
    let (num, json) = rest.split_at(digits);
    let id = num.parse::<u64>().map_err(|_| FrameError::BadId)?;
    Ok((Some(id), json))
}

fn optional_json(rest: &str, packet: &'static str) -> Result<Option<Value>, FrameError> {
    if rest.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(rest)
        .map(Some)
        .map_err(|e| FrameError::BadJson {
            packet,
            reason: e.to_string(),
        })
}

fn json_array(rest: &str, packet: &'static str) -> Result<Vec<Value>, FrameError> {
    match serde_json::from_str(rest) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(FrameError::BadShape("payload must be a JSON array")),
        Err(e) => Err(FrameError::BadJson {
            packet,
            reason: e.to_string(),
        }),
    }
}

fn nsp_prefix(nsp: &str) -> String {
    if nsp == "/" || nsp.is_empty() {
        String::new()
    } else {
        format!("{nsp},")
    }
}

/// Engine.IO ping (`2`), sent by EIO3 clients.
pub const PING: &str = "2";
/// Engine.IO pong (`3`), the EIO4 client's answer to a server ping.
pub const PONG: &str = "3";
/// Socket.IO connect to `/` (EIO4 client).
pub const CONNECT: &str = "40";
/// Socket.IO disconnect from `/`.
pub const DISCONNECT: &str = "41";

/// The pong answering a ping with `payload` (`3`, or `3probe` for `2probe`).
pub fn pong_for(payload: &str) -> String {
    format!("3{payload}")
}

/// `43[/nsp,]<id>[]`: the empty ack the official client sends for every event.
pub fn empty_ack(nsp: &str, id: u64) -> String {
    format!("43{}{id}[]", nsp_prefix(nsp))
}

/// `43[/nsp,]<id>[<arg>]`: an ack with one argument.
pub fn ack_with(nsp: &str, id: u64, arg: &impl Serialize) -> Result<String, serde_json::Error> {
    Ok(format!(
        "43{}{id}[{}]",
        nsp_prefix(nsp),
        serde_json::to_string(arg)?
    ))
}

/// `42["name",<arg>]`: an event on `/` with one argument and no ack request.
/// The argument is serialized as given, so a struct keeps its field order.
pub fn event_frame(name: &str, arg: &impl Serialize) -> Result<String, serde_json::Error> {
    Ok(format!(
        "42[{},{}]",
        serde_json::to_string(name)?,
        serde_json::to_string(arg)?
    ))
}

/// The `processInput` payload, fields in the official client's order.
#[derive(Debug, Serialize)]
pub struct ProcessInputPayload<'a> {
    #[serde(rename = "URLToken")]
    pub url_token: &'a str,
    #[serde(rename = "userId")]
    pub user_id: &'a str,
    #[serde(rename = "sessionId")]
    pub session_id: &'a str,
    pub channel: &'a str,
    pub source: &'a str,
    #[serde(rename = "passthroughIP")]
    pub passthrough_ip: Option<&'a str>,
    #[serde(rename = "resetFlow")]
    pub reset_flow: bool,
    pub text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Value>,
}

/// The inner-handshake ack payload, fields in the official client's order.
#[derive(Debug, Serialize)]
pub struct HandshakeIds<'a> {
    #[serde(rename = "userId")]
    pub user_id: &'a str,
    #[serde(rename = "sessionId")]
    pub session_id: &'a str,
    #[serde(rename = "urlToken")]
    pub url_token: &'a str,
    #[serde(rename = "testMode")]
    pub test_mode: bool,
    #[serde(rename = "emitWithAck")]
    pub emit_with_ack: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(text: &str) -> (Option<u64>, String, Vec<Value>) {
        match parse(text) {
            Ok(EnginePacket::Message(SocketPacket::Event { id, name, args, .. })) => {
                (id, name, args)
            }
            other => panic!("{text}: expected event, got {other:?}"),
        }
    }

    #[test]
    fn open_packet_from_fixture() {
        let p = parse(
            r#"0{"sid":"O7zV9ZV5beX1Cn-5AAAA","upgrades":[],"pingInterval":1000,"pingTimeout":1000,"maxPayload":1000000}"#,
        );
        assert_eq!(
            p,
            Ok(EnginePacket::Open(OpenInfo {
                sid: "O7zV9ZV5beX1Cn-5AAAA".into(),
                ping_interval: Duration::from_millis(1000),
                ping_timeout: Duration::from_millis(1000),
                max_payload: Some(1_000_000),
            }))
        );
        // EIO3 servers omit maxPayload.
        let p = parse(r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#);
        assert!(matches!(
            p,
            Ok(EnginePacket::Open(OpenInfo {
                max_payload: None,
                ..
            }))
        ));
    }

    #[test]
    fn bad_open_packets_are_errors() {
        for bad in [
            "0",
            "0{",
            "0{}",
            r#"0{"sid":"x","pingInterval":0,"pingTimeout":1}"#,
            r#"0{"sid":"x","pingInterval":-5,"pingTimeout":1}"#,
            r#"0{"sid":"x","pingInterval":99999999999999999999,"pingTimeout":1}"#,
            r#"0{"sid":"x","pingInterval":1000,"pingTimeout":18446744073709551615}"#,
            r#"0{"sid":1,"pingInterval":1000,"pingTimeout":1}"#,
            "0[]",
        ] {
            assert!(
                matches!(parse(bad), Err(FrameError::BadOpen(_))),
                "{bad}: {:?}",
                parse(bad)
            );
        }
    }

    #[test]
    fn engine_control_packets() {
        assert_eq!(parse("1"), Ok(EnginePacket::Close));
        assert_eq!(parse("2"), Ok(EnginePacket::Ping(String::new())));
        assert_eq!(parse("3"), Ok(EnginePacket::Pong(String::new())));
        assert_eq!(parse("2probe"), Ok(EnginePacket::Ping("probe".into())));
        assert_eq!(parse("3probe"), Ok(EnginePacket::Pong("probe".into())));
        assert_eq!(parse("5"), Ok(EnginePacket::Upgrade));
        assert_eq!(parse("6"), Ok(EnginePacket::Noop));
        assert_eq!(pong_for("probe"), "3probe");
        assert_eq!(pong_for(""), PONG);
    }

    #[test]
    fn connect_packets_eio3_and_eio4() {
        assert_eq!(
            parse("40"),
            Ok(EnginePacket::Message(SocketPacket::Connect {
                nsp: "/".into(),
                data: None
            }))
        );
        assert_eq!(
            parse(r#"40{"sid":"1TRp80iIPhanP1SFAAAA"}"#),
            Ok(EnginePacket::Message(SocketPacket::Connect {
                nsp: "/".into(),
                data: Some(json!({"sid":"1TRp80iIPhanP1SFAAAA"}))
            }))
        );
        assert_eq!(
            parse("40/chat?x=1,"),
            Ok(EnginePacket::Message(SocketPacket::Connect {
                nsp: "/chat".into(),
                data: None
            }))
        );
        assert_eq!(
            parse("41"),
            Ok(EnginePacket::Message(SocketPacket::Disconnect {
                nsp: "/".into()
            }))
        );
        assert_eq!(
            parse("41/chat,"),
            Ok(EnginePacket::Message(SocketPacket::Disconnect {
                nsp: "/chat".into()
            }))
        );
        assert_eq!(
            parse("41/chat"),
            Ok(EnginePacket::Message(SocketPacket::Disconnect {
                nsp: "/chat".into()
            }))
        );
    }

    #[test]
    fn connect_error_both_revisions() {
        for (text, msg) in [
            (r#"44{"message":"Not authorized"}"#, "Not authorized"),
            (r#"44"Invalid namespace""#, "Invalid namespace"),
            (r#"44/admin,{"message":"nope","data":{"a":1}}"#, "nope"),
        ] {
            match parse(text) {
                Ok(EnginePacket::Message(SocketPacket::ConnectError { data, .. })) => {
                    assert_eq!(SocketPacket::connect_error_message(&data), msg)
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn events_from_fixture() {
        assert_eq!(
            event(r#"42["endpoint-ready"]"#),
            (None, "endpoint-ready".into(), vec![])
        );
        assert_eq!(
            event(r#"42["typingStatus",{"status":"typingOn"}]"#),
            (
                None,
                "typingStatus".into(),
                vec![json!({"status":"typingOn"})]
            )
        );
        let (id, name, args) = event(
            r#"420["output",{"type":"output","data":{"text":"You said: hello 1","data":{"echo":null,"emulator":true},"source":"bot","traceId":"trace-1795496931020"}}]"#,
        );
        assert_eq!((id, name.as_str()), (Some(0), "output"));
        assert_eq!(args[0]["data"]["text"], "You said: hello 1");
        assert_eq!(
            event(r#"423["finalPing",{"type":"regular"}]"#),
            (Some(3), "finalPing".into(), vec![json!({"type":"regular"})])
        );
        assert_eq!(
            event(r#"420["handshake"]"#),
            (Some(0), "handshake".into(), vec![])
        );
        assert_eq!(
            event(r#"42/ns,7["x",1,2]"#),
            (Some(7), "x".into(), vec![json!(1), json!(2)])
        );
    }

    #[test]
    fn acks_parse_and_encode() {
        assert_eq!(
            parse("430[]"),
            Ok(EnginePacket::Message(SocketPacket::Ack {
                nsp: "/".into(),
                id: 0,
                args: vec![]
            }))
        );
        assert_eq!(empty_ack("/", 0), "430[]");
        assert_eq!(empty_ack("/", 433), "43433[]");
        assert_eq!(empty_ack("/chat", 1), "43/chat,1[]");
        let ids = HandshakeIds {
            user_id: "user@example.com",
            session_id: "session 1/emulator",
            url_token: "emulator-url-token",
            test_mode: false,
            emit_with_ack: true,
        };
        assert_eq!(
            ack_with("/", 0, &ids).ok().as_deref(),
            Some(
                r#"430[{"userId":"user@example.com","sessionId":"session 1/emulator","urlToken":"emulator-url-token","testMode":false,"emitWithAck":true}]"#
            )
        );
    }

    #[test]
    fn process_input_matches_fixture_bytes() {
        let p = ProcessInputPayload {
            url_token: "emulator-url-token",
            user_id: "user@example.com",
            session_id: "session 1/emulator",
            channel: "load-test",
            source: "device",
            passthrough_ip: None,
            reset_flow: false,
            text: "hello 1",
            data: None,
        };
        assert_eq!(
            event_frame("processInput", &p).ok().as_deref(),
            Some(
                r#"42["processInput",{"URLToken":"emulator-url-token","userId":"user@example.com","sessionId":"session 1/emulator","channel":"load-test","source":"device","passthroughIP":null,"resetFlow":false,"text":"hello 1"}]"#
            )
        );
        let data = json!({"color":"green","i":2});
        let p = ProcessInputPayload {
            text: "hello 2",
            data: Some(&data),
            ..p
        };
        assert_eq!(
            event_frame("processInput", &p).ok().as_deref(),
            Some(
                r#"42["processInput",{"URLToken":"emulator-url-token","userId":"user@example.com","sessionId":"session 1/emulator","channel":"load-test","source":"device","passthroughIP":null,"resetFlow":false,"text":"hello 2","data":{"color":"green","i":2}}]"#
            )
        );
    }

    #[test]
    fn nasty_inputs_are_errors_not_panics() {
        let huge_id = format!("42{}[\"x\"]", "9".repeat(40));
        let deep = format!("42{}", "[".repeat(10_000));
        let cases: Vec<&str> = vec![
            "",
            "x",
            "7",
            "9hello",
            "é",
            "4",
            "4x",
            "47",
            "45",
            "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]",
            "46",
            "42",
            "42[",
            "42[]",
            "42{}",
            "42[1,2]",
            "42[null]",
            "42\"str\"",
            "42[\"a\"",
            "42[\"a\"]]",
            "42/",
            "42/ns",
            "42/ns,",
            "43",
            "43[]",
            "43x[]",
            "431",
            "43/ns,[]",
            "4318446744073709551616[]",
            "40{",
            "44{",
            &huge_id,
            &deep,
            "42[\"\u{0}\"]x",
            "0\u{feff}{}",
        ];
        for text in cases {
            // Must return, never panic; all of these are malformed.
            assert!(parse(text).is_err(), "{text:?} parsed as {:?}", parse(text));
        }
        assert_eq!(parse(&huge_id), Err(FrameError::BadId));
        assert_eq!(parse("45"), Err(FrameError::Binary));
        // Maximal u64 id still parses.
        assert!(matches!(
            parse("4318446744073709551615[]"),
            Ok(EnginePacket::Message(SocketPacket::Ack {
                id: u64::MAX,
                ..
            }))
        ));
        // Multi-byte characters right after the type must not split a char.
        assert!(parse("4é").is_err());
        assert!(parse("42/é,[\"x\"]").is_ok());
    }
}
