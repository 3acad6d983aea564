//! Engine.IO / Socket.IO packet parsing (`protocol::socketio::frame`): no
//! panic on arbitrary or near-valid text; the encoders (`event_frame`,
//! `ack_with`, `empty_ack`, `pong_for`) round-trip through `parse` and
//! `ProcessInputFrames` writes what serde_json writes; hand-built
//! packets with any namespace, ack id digits and truncated JSON parse to
//! exactly what they say (or to an error when they are malformed).

use super::support::{any_text, config, json_value};
use finalping::protocol::socketio::frame::{
    ack_with, empty_ack, event_frame, parse, parse_socket, pong_for, EnginePacket, FrameError,
    ProcessInputFrames, SocketPacket, MAX_HEARTBEAT_MS,
};
use proptest::prelude::*;
use serde_json::Value;
use std::time::Duration;

/// `/name` without `,` or `?` (those end a namespace), or the default `/`.
fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        "/[a-zA-Z0-9_\\-./é]{1,12}",
        proptest::string::string_regex("/[^,?]{1,12}").expect("valid regex"),
    ]
}

fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("output".to_string()),
        Just("finalPing".to_string()),
        Just("endpoint-ready".to_string()),
        any_text(12),
    ]
}

/// Cuts `s` after `n` bytes, backing up to a char boundary.
fn truncate(s: &str, n: usize) -> &str {
    let mut n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any_text(64)) {
        let _ = parse(&text);
        let _ = parse_socket(&text);
    }

    #[test]
    fn near_valid_prefixes_never_panic(
        engine in "[0-9]",
        socket in "[0-9]?",
        nsp in prop_oneof![Just(String::new()), "/[^,]{0,6},?"],
        id in "[0-9]{0,25}",
        tail in any_text(24),
    ) {
        let text = format!("{engine}{socket}{nsp}{id}{tail}");
        let _ = parse(&text);
    }

    #[test]
    fn ping_and_pong_keep_their_payload(payload in any_text(32)) {
        let (ping, pong) = (format!("2{payload}"), pong_for(&payload));
        prop_assert_eq!(parse(&ping), Ok(EnginePacket::Ping(&payload)));
        prop_assert_eq!(parse(&pong), Ok(EnginePacket::Pong(&payload)));
    }

    #[test]
    fn event_frame_round_trips(name in event_name(), arg in json_value()) {
        let frame = event_frame(&name, &arg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Ok(EnginePacket::Message(SocketPacket::Event { nsp, id, name: got, args })) = parse(&frame) else {
            return Err(TestCaseError::fail(format!("{frame}: {:?}", parse(&frame))));
        };
        prop_assert_eq!((nsp, id, got.as_ref()), ("/", None, name.as_str()));
        prop_assert_eq!(args.values(), vec![arg]);
    }

    /// Byte for byte what serde_json writes for the payload in the official
    /// client's field order.
    #[test]
    fn process_input_frames_are_serde_json_bytes(
        ids in proptest::collection::vec(any_text(16), 3),
        channel in any_text(12),
        text in any_text(48),
        reset_flow in any::<bool>(),
        data in proptest::option::of(json_value()),
    ) {
        let frames = ProcessInputFrames::new(&ids[0], &ids[1], &ids[2]);
        let got = frames.frame(&channel, reset_flow, &text, data.as_ref());
        let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
        let data = data.map(|d| format!(r#","data":{d}"#)).unwrap_or_default();
        let want = format!(
            r#"42["processInput",{{"URLToken":{},"userId":{},"sessionId":{},"channel":{},"source":"device","passthroughIP":null,"resetFlow":{reset_flow},"text":{}{data}}}]"#,
            s(&ids[0]), s(&ids[1]), s(&ids[2]), s(&channel), s(&text),
        );
        prop_assert_eq!(got, want);
    }

    #[test]
    fn acks_round_trip(nsp in namespace(), id in any::<u64>(), arg in json_value()) {
        let frame = ack_with(&nsp, id, &arg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            parse(&frame),
            Ok(EnginePacket::Message(SocketPacket::Ack { nsp: &nsp, id, args: vec![arg] }))
        );
        let empty = empty_ack(&nsp, id);
        prop_assert_eq!(
            parse(&empty),
            Ok(EnginePacket::Message(SocketPacket::Ack { nsp: &nsp, id, args: vec![] }))
        );
    }

    /// `42[/nsp[?query],][<digits>][...json...]`, JSON possibly truncated:
    /// the parse result is exactly determined by the parts.
    #[test]
    fn structured_events_and_acks(
        ack in any::<bool>(),
        nsp in namespace(),
        query in prop_oneof![Just(String::new()), "\\?[a-z0-9=&]{0,8}"],
        id in prop_oneof![Just(String::new()), "[0-9]{1,25}"],
        name in event_name(),
        args in proptest::collection::vec(json_value(), 0..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let mut items = Vec::with_capacity(args.len() + 1);
        if !ack {
            items.push(Value::String(name.clone()));
        }
        items.extend(args.iter().cloned());
        let full = Value::Array(items).to_string();
        let json = match cut {
            Some(n) => truncate(&full, n % (full.len() + 1)),
            None => full.as_str(),
        };
        let prefix = if nsp == "/" && query.is_empty() { String::new() } else { format!("{nsp}{query},") };
        let text = format!("4{}{prefix}{id}{json}", if ack { '3' } else { '2' });
        let got = parse(&text);

        let parsed_id = if id.is_empty() { None } else { Some(id.parse::<u64>().ok()) };
        let complete = json.len() == full.len();
        match (parsed_id, complete) {
            (Some(None), _) => prop_assert_eq!(got, Err(FrameError::BadId)),
            (None, _) if ack => prop_assert_eq!(got, Err(FrameError::BadId)),
            (_, false) => prop_assert!(got.is_err(), "truncated {text:?} parsed as {got:?}"),
            (Some(Some(id)), true) if ack => prop_assert_eq!(
                got,
                Ok(EnginePacket::Message(SocketPacket::Ack { nsp: &nsp, id, args }))
            ),
            (id, true) => {
                let Ok(EnginePacket::Message(SocketPacket::Event { nsp: got_nsp, id: got_id, name: got_name, args: got_args })) = got else {
                    return Err(TestCaseError::fail(format!("{text:?}: {got:?}")));
                };
                prop_assert_eq!(
                    (got_nsp, got_id, got_name.as_ref(), got_args.values()),
                    (nsp.as_str(), id.flatten(), name.as_str(), args)
                );
            }
        }
    }

    #[test]
    fn open_packet_checks_its_bounds(
        sid in any_text(20),
        interval in prop_oneof![0u64..=10, 1u64..=MAX_HEARTBEAT_MS, Just(MAX_HEARTBEAT_MS + 1), any::<u64>()],
        timeout in prop_oneof![0u64..=MAX_HEARTBEAT_MS, Just(MAX_HEARTBEAT_MS + 1), any::<u64>()],
        max_payload in proptest::option::of(any::<u64>()),
    ) {
        let mut open = serde_json::json!({
            "sid": sid, "upgrades": [], "pingInterval": interval, "pingTimeout": timeout,
        });
        if let (Some(m), Some(obj)) = (max_payload, open.as_object_mut()) {
            obj.insert("maxPayload".into(), m.into());
        }
        let text = format!("0{open}");
        let got = parse(&text);
        if (1..=MAX_HEARTBEAT_MS).contains(&interval) && timeout <= MAX_HEARTBEAT_MS {
            let Ok(EnginePacket::Open(info)) = got else {
                return Err(TestCaseError::fail(format!("{open}: {got:?}")));
            };
            prop_assert_eq!(info.sid, sid);
            prop_assert_eq!(info.ping_interval, Duration::from_millis(interval));
            prop_assert_eq!(info.ping_timeout, Duration::from_millis(timeout));
            prop_assert_eq!(info.max_payload, max_payload);
        } else {
            prop_assert!(matches!(got, Err(FrameError::BadOpen(_))), "{open}: {got:?}");
        }
    }
}
