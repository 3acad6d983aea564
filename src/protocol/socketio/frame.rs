//! Engine.IO 3/4 and Socket.IO packets as pure values: parse and encode, no I/O.
//!
//! One WebSocket text message is one Engine.IO packet (`0{open}`, `1` close,
//! `2` ping, `3` pong, `4…` message, `5` upgrade, `6` noop). A message packet
//! carries one Socket.IO packet: `<type>[/nsp,][<id>][<json>]` with types
//! connect `0`, disconnect `1`, event `2`, ack `3`, connect error `4`
//! (binary `5`/`6` are rejected: the Endpoint never sends them).
//! Every parse failure is a [`FrameError`] value; nothing here panics on input.
//! Parsed packets borrow from the text (an event's name and arguments are
//! not copied), and the encoders of the frames sent every turn
//! ([`ProcessInputFrames`], [`empty_ack`]) write one exactly sized string.

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;
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

/// One Engine.IO packet (one WebSocket text message), borrowing from it.
#[derive(Debug, Clone, PartialEq)]
pub enum EnginePacket<'a> {
    Open(OpenInfo),
    Close,
    /// Ping with its payload (`""`, or `"probe"` during transport upgrades).
    Ping(&'a str),
    Pong(&'a str),
    Message(SocketPacket<'a>),
    Upgrade,
    Noop,
}

/// One Socket.IO packet (inside an Engine.IO message). `nsp` is `"/"` unless
/// a `/name,` prefix was present. An event's first argument is `A`: its JSON
/// text by default, or whatever a reader deserializes it into in the same
/// pass ([`parse_socket_as`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SocketPacket<'a, A = RawArg<'a>> {
    /// `40` (EIO3, server → client), `40{"sid":…}` (EIO4 answer), `40` (EIO4 client).
    Connect {
        nsp: &'a str,
        data: Option<Value>,
    },
    Disconnect {
        nsp: &'a str,
    },
    /// `42[<id>]["name",args…]`: the name (copied only when it holds
    /// escapes) and the arguments, the first as `A`, the others as their
    /// JSON text, checked but not parsed (events arrive every turn).
    Event {
        nsp: &'a str,
        id: Option<u64>,
        name: Cow<'a, str>,
        args: EventArgs<'a, A>,
    },
    /// `43<id>[args…]`.
    Ack {
        nsp: &'a str,
        id: u64,
        args: Vec<Value>,
    },
    /// `44{…}` (EIO4) or `44"message"` (EIO3).
    ConnectError {
        nsp: &'a str,
        data: Value,
    },
}

/// One argument's JSON text (valid JSON); equal when the texts are.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(transparent)]
pub struct RawArg<'a>(#[serde(borrow)] pub &'a RawValue);

impl<'a> RawArg<'a> {
    /// The JSON text.
    pub fn get(&self) -> &'a str {
        self.0.get()
    }
}

impl PartialEq for RawArg<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

/// The arguments of an event: the first as `A`, the others as their JSON
/// text. The first is held apart so that an event with one argument
/// allocates nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct EventArgs<'a, A = RawArg<'a>> {
    first: Option<A>,
    rest: Vec<RawArg<'a>>,
}

impl<A> Default for EventArgs<'_, A> {
    fn default() -> Self {
        EventArgs {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<A> EventArgs<'_, A> {
    /// The first argument, if any.
    pub fn first(&self) -> Option<&A> {
        self.first.as_ref()
    }

    /// The first argument, if any, taken out.
    pub fn into_first(self) -> Option<A> {
        self.first
    }
}

impl<'a> EventArgs<'a> {
    /// Every argument's JSON text, in order.
    pub fn iter(&self) -> impl Iterator<Item = RawArg<'a>> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }

    /// Every argument parsed into a `Value`.
    pub fn values(&self) -> Vec<Value> {
        self.iter()
            .map(|raw| serde_json::from_str(raw.get()).unwrap_or(Value::Null))
            .collect()
    }
}

impl SocketPacket<'_> {
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
pub fn parse(text: &str) -> Result<EnginePacket<'_>, FrameError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(FrameError::Empty)?;
    let rest = chars.as_str();
    match kind {
        '0' => parse_open(rest).map(EnginePacket::Open),
        '1' => Ok(EnginePacket::Close),
        '2' => Ok(EnginePacket::Ping(rest)),
        '3' => Ok(EnginePacket::Pong(rest)),
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

/// The Socket.IO packet text of an Engine.IO message packet (`4…`); `None`
/// for the other Engine.IO packets. Lets a reader keep the message's text
/// and parse its packet with [`parse_socket`] where the packet is used.
pub fn socket_payload(text: &str) -> Option<&str> {
    text.strip_prefix('4')
}

/// Parses the Socket.IO packet carried by an Engine.IO message (text after `4`).
pub fn parse_socket(text: &str) -> Result<SocketPacket<'_>, FrameError> {
    parse_socket_as(text)
}

/// [`parse_socket`] with an event's first argument deserialized as `A` in
/// the same pass over the JSON (`A` must accept any JSON value that it
/// should not refuse as bad JSON: see [`super::event::EventArg`]).
pub fn parse_socket_as<'a, A: Deserialize<'a>>(
    text: &'a str,
) -> Result<SocketPacket<'a, A>, FrameError> {
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
            let (name, args) = event_array(json)?;
            Ok(SocketPacket::Event {
                nsp,
                id,
                name,
                args,
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
fn split_namespace(rest: &str) -> (&str, &str) {
    if !rest.starts_with('/') {
        return ("/", rest);
    }
    let (nsp, after) = match rest.find(',') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let nsp = nsp.split('?').next().unwrap_or(nsp);
    (nsp, after)
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

/// `["name", args…]`: the name and the arguments.
fn event_array<'a, A: Deserialize<'a>>(
    json: &'a str,
) -> Result<(Cow<'a, str>, EventArgs<'a, A>), FrameError> {
    match serde_json::from_str(json) {
        Ok(EventArray::Event(name, args)) => Ok((name, args)),
        Ok(EventArray::NoName) => Err(FrameError::BadShape("event array must start with a name")),
        Ok(EventArray::NotArray) => Err(FrameError::BadShape("payload must be a JSON array")),
        Err(e) => Err(FrameError::BadJson {
            packet: "event",
            reason: e.to_string(),
        }),
    }
}

/// An event payload as read in one pass: a JSON array starting with a
/// string, or what else it was (the whole JSON is checked either way).
enum EventArray<'a, A> {
    Event(Cow<'a, str>, EventArgs<'a, A>),
    NoName,
    NotArray,
}

impl<'de, A: Deserialize<'de>> Deserialize<'de> for EventArray<'de, A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EventArrayVisitor(PhantomData))
    }
}

struct EventArrayVisitor<A>(PhantomData<A>);

impl<'de, A: Deserialize<'de>> Visitor<'de> for EventArrayVisitor<A> {
    type Value = EventArray<'de, A>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<EventArray<'de, A>, S::Error> {
        let Some(first) = seq.next_element::<&'de RawValue>()? else {
            return Ok(EventArray::NoName);
        };
        // Not a string: no name. A string that cannot be read (a lone
        // surrogate escape) is bad JSON, as in a `Value`.
        let name = match serde_json::from_str::<Name<'de>>(first.get()) {
            Ok(name) => Some(name),
            Err(e) if e.is_data() => None,
            Err(e) => return Err(de::Error::custom(e)),
        };
        let Some(Name(name)) = name else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(EventArray::NoName);
        };
        let mut args = EventArgs {
            first: seq.next_element::<A>()?,
            rest: Vec::new(),
        };
        if args.first.is_some() {
            while let Some(arg) = seq.next_element::<RawArg<'de>>()? {
                args.rest.push(arg);
            }
        }
        Ok(EventArray::Event(name, args))
    }
    fn visit_map<M: de::MapAccess<'de>>(self, mut map: M) -> Result<EventArray<'de, A>, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(EventArray::NotArray)
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<EventArray<'de, A>, E> {
        Ok(EventArray::NotArray)
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> Result<EventArray<'de, A>, E> {
        Ok(EventArray::NotArray)
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> Result<EventArray<'de, A>, E> {
        Ok(EventArray::NotArray)
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<EventArray<'de, A>, E> {
        Ok(EventArray::NotArray)
    }
    fn visit_str<E: de::Error>(self, _v: &str) -> Result<EventArray<'de, A>, E> {
        Ok(EventArray::NotArray)
    }
    fn visit_unit<E: de::Error>(self) -> Result<EventArray<'de, A>, E> {
        Ok(EventArray::NotArray)
    }
}

/// A JSON string, borrowed unless it holds escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(v.to_owned())))
    }
}

/// Appends the `/nsp,` prefix of a packet (nothing for `/`).
fn push_nsp(out: &mut String, nsp: &str) {
    if nsp_len(nsp) > 0 {
        out.push_str(nsp);
        out.push(',');
    }
}

/// The length of the `/nsp,` prefix.
fn nsp_len(nsp: &str) -> usize {
    if nsp == "/" || nsp.is_empty() {
        0
    } else {
        nsp.len() + 1
    }
}

/// The length of `parts` plus `more`: frames are built with exactly the
/// capacity they need where it is known, because a WebSocket message made
/// from a `String` with spare capacity costs one more allocation.
fn exact_len(parts: &[&str], more: usize) -> usize {
    parts.iter().map(|p| p.len()).sum::<usize>() + more
}

/// Whether `s` is written as a JSON string without escapes (then its JSON
/// form is `s` in quotes).
fn plain_json_str(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it
/// (`"`, `\\` and control characters; a string without any is copied as is).
fn push_json_str(out: &mut String, s: &str) {
    if plain_json_str(s) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::from(s).to_string());
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
    let digits = id.checked_ilog10().map_or(1, |d| d as usize + 1);
    let mut out = String::with_capacity(nsp_len(nsp) + exact_len(&["43", "[]"], digits));
    out.push_str("43");
    push_nsp(&mut out, nsp);
    // Writing to a String cannot fail.
    let _ = write!(out, "{id}[]");
    out
}

/// `43[/nsp,]<id>[<arg>]`: an ack with one argument.
pub fn ack_with(nsp: &str, id: u64, arg: &impl Serialize) -> Result<String, serde_json::Error> {
    let mut out = String::from("43");
    push_nsp(&mut out, nsp);
    let _ = write!(out, "{id}[{}]", serde_json::to_string(arg)?);
    Ok(out)
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

/// `processInput` frames of one session, byte for byte as the official client
/// writes them: `42["processInput",{…}]` with `URLToken`, `userId`,
/// `sessionId`, `channel`, `source` (`"device"`), `passthroughIP` (`null`),
/// `resetFlow`, `text` and, when there is one, `data`, in that order. The ids
/// are encoded once per session; a turn adds only what may change.
#[derive(Debug, Clone)]
pub struct ProcessInputFrames {
    /// Everything up to the channel's value.
    head: String,
}

impl ProcessInputFrames {
    pub fn new(url_token: &str, user_id: &str, session_id: &str) -> ProcessInputFrames {
        let mut head = String::from(r#"42["processInput",{"URLToken":"#);
        push_json_str(&mut head, url_token);
        head.push_str(r#","userId":"#);
        push_json_str(&mut head, user_id);
        head.push_str(r#","sessionId":"#);
        push_json_str(&mut head, session_id);
        head.push_str(r#","channel":"#);
        ProcessInputFrames { head }
    }

    /// The frame of one input.
    pub fn frame(
        &self,
        channel: &str,
        reset_flow: bool,
        text: &str,
        data: Option<&Value>,
    ) -> String {
        const FLAGS: &str = r#","source":"device","passthroughIP":null,"resetFlow":"#;
        let flag = if reset_flow { "true" } else { "false" };
        let parts = [&self.head, channel, FLAGS, flag, r#","text":"#, text, "}]"];
        // Exact without escapes or data (the usual input: 4 quotes), else a guess.
        let capacity = if data.is_none() && plain_json_str(channel) && plain_json_str(text) {
            exact_len(&parts, 4)
        } else {
            exact_len(&parts, 80)
        };
        let mut out = String::with_capacity(capacity);
        out.push_str(&self.head);
        push_json_str(&mut out, channel);
        out.push_str(FLAGS);
        out.push_str(flag);
        out.push_str(r#","text":"#);
        push_json_str(&mut out, text);
        if let Some(data) = data {
            out.push_str(r#","data":"#);
            let _ = write!(out, "{data}");
        }
        out.push_str("}]");
        out
    }
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
                (id, name.into_owned(), args.values())
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
        assert_eq!(parse("2"), Ok(EnginePacket::Ping("")));
        assert_eq!(parse("3"), Ok(EnginePacket::Pong("")));
        assert_eq!(parse("2probe"), Ok(EnginePacket::Ping("probe")));
        assert_eq!(parse("3probe"), Ok(EnginePacket::Pong("probe")));
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
                nsp: "/",
                data: None
            }))
        );
        assert_eq!(
            parse(r#"40{"sid":"1TRp80iIPhanP1SFAAAA"}"#),
            Ok(EnginePacket::Message(SocketPacket::Connect {
                nsp: "/",
                data: Some(json!({"sid":"1TRp80iIPhanP1SFAAAA"}))
            }))
        );
        assert_eq!(
            parse("40/chat?x=1,"),
            Ok(EnginePacket::Message(SocketPacket::Connect {
                nsp: "/chat",
                data: None
            }))
        );
        assert_eq!(
            parse("41"),
            Ok(EnginePacket::Message(SocketPacket::Disconnect { nsp: "/" }))
        );
        assert_eq!(
            parse("41/chat,"),
            Ok(EnginePacket::Message(SocketPacket::Disconnect {
                nsp: "/chat"
            }))
        );
        assert_eq!(
            parse("41/chat"),
            Ok(EnginePacket::Message(SocketPacket::Disconnect {
                nsp: "/chat"
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
    fn event_names_borrow_and_args_stay_json_text() {
        let text = r#"42["output", {"type":"output","data":{"text":"a\"b"}} ,[1, 2],null]"#;
        let Ok(EnginePacket::Message(SocketPacket::Event {
            nsp, name, args, ..
        })) = parse(text)
        else {
            panic!("{text}: {:?}", parse(text));
        };
        assert_eq!(nsp, "/");
        assert!(matches!(name, Cow::Borrowed("output")));
        let raw: Vec<&str> = args.iter().map(|a| a.get()).collect();
        assert_eq!(
            raw,
            [
                r#"{"type":"output","data":{"text":"a\"b"}}"#,
                "[1, 2]",
                "null"
            ]
        );
        assert_eq!(args.first().map(RawArg::get), Some(raw[0]));
        assert_eq!(args.values()[0]["data"]["text"], "a\"b");
        // An escaped name is unescaped (and owned).
        let text = r#"42["fin\u0061lPing\n",{}]"#;
        let Ok(EnginePacket::Message(SocketPacket::Event { name, .. })) = parse(text) else {
            panic!("{text}: {:?}", parse(text));
        };
        assert!(matches!(name, Cow::Owned(ref n) if n == "finalPing\n"));
    }

    #[test]
    fn event_errors_name_the_packet() {
        for (text, want) in [
            ("42[1]", "event array must start with a name"),
            ("42[]", "event array must start with a name"),
            ("42[null,\"x\"]", "event array must start with a name"),
            ("42{\"a\":1}", "payload must be a JSON array"),
            ("42true", "payload must be a JSON array"),
            ("421-5", "payload must be a JSON array"),
            ("42\"output\"", "payload must be a JSON array"),
        ] {
            assert_eq!(parse(text), Err(FrameError::BadShape(want)), "{text}");
        }
        for text in [
            "42[\"a\",{]",
            "42[\"a\",1,]",
            "42[\"a\"] x",
            "42[\"\\ud800\"]",
            "42[1,{]",
            "42{\"a\":}",
        ] {
            match parse(text) {
                Err(
                    e @ FrameError::BadJson {
                        packet: "event", ..
                    },
                ) => {
                    assert!(
                        e.to_string().starts_with("bad JSON payload in event: "),
                        "{e}"
                    )
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn acks_parse_and_encode() {
        assert_eq!(
            parse("430[]"),
            Ok(EnginePacket::Message(SocketPacket::Ack {
                nsp: "/",
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
        let frames = ProcessInputFrames::new(
            "emulator-url-token",
            "user@example.com",
            "session 1/emulator",
        );
        assert_eq!(
            frames.frame("load-test", false, "hello 1", None),
            r#"42["processInput",{"URLToken":"emulator-url-token","userId":"user@example.com","sessionId":"session 1/emulator","channel":"load-test","source":"device","passthroughIP":null,"resetFlow":false,"text":"hello 1"}]"#
        );
        let data = json!({"color":"green","i":2});
        assert_eq!(
            frames.frame("load-test", false, "hello 2", Some(&data)),
            r#"42["processInput",{"URLToken":"emulator-url-token","userId":"user@example.com","sessionId":"session 1/emulator","channel":"load-test","source":"device","passthroughIP":null,"resetFlow":false,"text":"hello 2","data":{"color":"green","i":2}}]"#
        );
    }

    #[test]
    fn usual_frames_are_built_without_spare_capacity() {
        // (A WebSocket message made from a String with spare capacity costs
        // one more allocation per frame.)
        let frames = ProcessInputFrames::new("tok", "user@example.com", "s 1");
        for frame in [
            frames.frame("load-test", false, "hello 1", None),
            frames.frame("", true, "", None),
            empty_ack("/", 0),
            empty_ack("/", 9),
            empty_ack("/", 10),
            empty_ack("/chat", u64::MAX),
            empty_ack("", 433),
        ] {
            assert_eq!(frame.capacity(), frame.len(), "{frame}");
        }
    }

    #[test]
    fn process_input_escapes_like_serde_json() {
        let nasty = "a\"b\\c\n\u{1}\u{1f}\u{7f}é/😀";
        let frames = ProcessInputFrames::new(nasty, "u\"", "s\t");
        let data = json!({"q": nasty, "n": [1.5, null, true]});
        let frame = frames.frame("ch\r", true, nasty, Some(&data));
        let want = json!(["processInput", {
            "URLToken": nasty, "userId": "u\"", "sessionId": "s\t", "channel": "ch\r",
            "source": "device", "passthroughIP": null, "resetFlow": true, "text": nasty, "data": data,
        }]);
        assert_eq!(
            frame
                .strip_prefix("42")
                .map(serde_json::from_str::<Value>)
                .and_then(Result::ok),
            Some(want)
        );
        // Byte for byte as serde_json writes each string.
        for s in [nasty, "u\"", "s\t", "ch\r"] {
            assert!(
                frame.contains(&serde_json::to_string(s).unwrap()),
                "{s:?} in {frame}"
            );
        }
        assert!(
            frame.ends_with(&format!(
                r#","resetFlow":true,"text":{},"data":{data}}}]"#,
                serde_json::to_string(nasty).unwrap()
            )),
            "{frame}"
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
