//! Integration tests of the emulator's runtime side (docs/protocol.md §2), over real
//! sockets on 127.0.0.1: the token endpoint, the runtime WebSocket in both
//! codecs (updates, reads, versions, limits, in-flight cap, heartbeat, frame
//! errors, idle and token-expiry closes, shutdown), the webhook sink, and the
//! context version seen by Socket.IO bot outputs of the same session. The
//! client side is written here with tokio-tungstenite and reqwest.

use finalping::emulator::{
    self, Delay, EmulatorConfig, EmulatorStats, RunningEmulator, RuntimeEmulatorConfig,
};
use finalping::protocol::runtime::{
    frame, ClientMessage, Codec, Context, Payload, RejectCode, ServerMessage,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for any single wait in these tests.
const WAIT: Duration = Duration::from_secs(5);
const SCOPE: &str = "runtime:execute context:write";

fn runtime_config(runtime: RuntimeEmulatorConfig) -> EmulatorConfig {
    EmulatorConfig {
        delay: Delay::Fixed(Duration::from_millis(1).into()),
        typing: false,
        runtime,
        ..EmulatorConfig::default()
    }
}

async fn start(runtime: RuntimeEmulatorConfig) -> RunningEmulator {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    emulator::start(runtime_config(runtime), addr)
        .await
        .expect("emulator starts")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("http client")
}

/// POSTs a token form; returns the status and JSON body.
async fn token_request(emu: &RunningEmulator, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = http()
        .post(emu.token_url())
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

async fn token(emu: &RunningEmulator) -> String {
    let (status, body) = token_request(
        emu,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "finalping"),
            ("client_secret", "finalping-secret"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_string()
}

/// Waits (bounded) until the emulator's counters satisfy `cond`.
async fn wait_stats(emu: &RunningEmulator, cond: impl Fn(&EmulatorStats) -> bool) -> EmulatorStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = emu.stats();
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "stats never matched: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A runtime WebSocket client speaking raw frames.
struct Rt {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    codec: Codec,
}

impl Rt {
    async fn try_connect(url: &str, codec: Codec) -> Result<Rt, tungstenite::Error> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect did not time out")?;
        Ok(Rt { ws, codec })
    }

    /// Gets a token and connects with `codec`.
    async fn connect(emu: &RunningEmulator, codec: Codec) -> Rt {
        let url = format!(
            "{}?token={}&codec={}",
            emu.runtime_url(),
            token(emu).await,
            codec.as_str()
        );
        Rt::try_connect(&url, codec).await.expect("upgrade")
    }

    async fn send_binary(&mut self, bytes: Vec<u8>) {
        tokio::time::timeout(WAIT, self.ws.send(Message::binary(bytes)))
            .await
            .expect("send did not time out")
            .expect("send");
    }

    async fn send(&mut self, message: &ClientMessage) {
        let payload = self.codec.encode(message).expect("encode");
        self.send_binary(frame::encode(&payload)).await;
    }

    /// The next binary message (a whole frame); panics on close.
    async fn recv_frame(&mut self) -> Vec<u8> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message within 5 s");
            match msg {
                Some(Ok(Message::Binary(b))) => return b.to_vec(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// The next frame's payload bytes.
    async fn recv_payload(&mut self) -> Vec<u8> {
        let f = self.recv_frame().await;
        match frame::decode(&f, usize::MAX) {
            Ok(Payload::Message(body)) => body.to_vec(),
            other => panic!("expected a message frame, got {other:?}"),
        }
    }

    async fn recv(&mut self) -> ServerMessage {
        let body = self.recv_payload().await;
        self.codec.decode(&body).expect("reply decodes")
    }

    /// Waits for the server's close frame; returns its code and reason.
    async fn expect_close(&mut self) -> (u16, String) {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a close within 5 s");
            match msg {
                Some(Ok(Message::Close(Some(f)))) => {
                    return (u16::from(f.code), f.reason.as_str().to_string())
                }
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

fn vars(pairs: Value) -> Context {
    serde_json::from_value(pairs).expect("a context object")
}

fn update(request_id: &str, session_id: &str, version: u64, context: Value) -> ClientMessage {
    ClientMessage::UpdateContext {
        request_id: request_id.into(),
        session_id: session_id.into(),
        version,
        context: vars(context),
    }
}

fn get(request_id: &str, session_id: &str) -> ClientMessage {
    ClientMessage::GetContext {
        request_id: request_id.into(),
        session_id: session_id.into(),
    }
}

/// Asserts a `contextRejected` and returns its message and current version.
fn rejected(m: ServerMessage, id: &str, want: RejectCode) -> (String, Option<u64>) {
    match m {
        ServerMessage::ContextRejected {
            request_id,
            code,
            message,
            current_version,
            ..
        } => {
            assert_eq!((request_id.as_str(), code), (id, want), "{message}");
            (message, current_version)
        }
        other => panic!("expected contextRejected {want:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn token_endpoint_checks_grant_client_and_scope() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    let ok = [
        ("grant_type", "client_credentials"),
        ("client_id", "finalping"),
        ("client_secret", "finalping-secret"),
        ("scope", "context:write runtime:execute extra"),
    ];
    let (status, body) = token_request(&emu, &ok).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], SCOPE);
    assert_eq!(body["access_token"].as_str().map(str::len), Some(64));

    let mut bad_secret = ok;
    bad_secret[2].1 = "wrong";
    let (status, body) = token_request(&emu, &bad_secret).await;
    assert_eq!((status, &body["error"]), (401, &json!("invalid_client")));
    let mut bad_id = ok;
    bad_id[1].1 = "someone";
    let (status, body) = token_request(&emu, &bad_id).await;
    assert_eq!((status, &body["error"]), (401, &json!("invalid_client")));
    let mut bad_scope = ok;
    bad_scope[3].1 = "runtime:execute";
    let (status, body) = token_request(&emu, &bad_scope).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_scope")));
    let mut bad_grant = ok;
    bad_grant[0].1 = "password";
    let (status, body) = token_request(&emu, &bad_grant).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("unsupported_grant_type"))
    );
    let s = emu.stats();
    assert_eq!((s.tokens_issued, s.oauth_errors), (1, 4));
    emu.shutdown().await;
}

#[tokio::test]
async fn upgrade_refuses_bad_tokens_and_codecs() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    let status = |e: tungstenite::Error| match e {
        tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    };
    let base = emu.runtime_url();
    for url in [
        base.clone(),
        format!("{base}?codec=json"),
        format!("{base}?token=deadbeef&codec=json"),
    ] {
        let e = Rt::try_connect(&url, Codec::Json)
            .await
            .err()
            .expect("refused");
        assert_eq!(status(e), 401, "{url}");
    }
    let good = token(&emu).await;
    let e = Rt::try_connect(&format!("{base}?token={good}&codec=xml"), Codec::Json)
        .await
        .err()
        .expect("refused");
    assert_eq!(status(e), 400);
    let s = emu.stats();
    assert_eq!((s.token_rejections, s.runtime_connections), (3, 0));
    // No codec parameter: MessagePack.
    let mut c = Rt::try_connect(&format!("{base}?token={good}"), Codec::Msgpack)
        .await
        .expect("upgrade");
    c.send(&get("g", "nobody")).await;
    assert!(matches!(
        c.recv().await,
        ServerMessage::Context { version: 0, .. }
    ));
    emu.shutdown().await;
}

#[tokio::test]
async fn updates_versions_and_reads_in_both_codecs() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    for codec in [Codec::Msgpack, Codec::Json] {
        let session = format!("s-{}", codec.as_str());
        let mut c = Rt::connect(&emu, codec).await;
        c.send(&update(
            "u1",
            &session,
            0,
            json!({"session": {"a": 1}, "user": {"name": "Ada"}}),
        ))
        .await;
        // The reply is in the connection's codec.
        let body = c.recv_payload().await;
        match codec {
            Codec::Json => assert_eq!(body.first(), Some(&b'{')),
            Codec::Msgpack => assert_eq!(body.first().map(|b| b & 0xf0), Some(0x80)),
        }
        assert_eq!(
            codec.decode::<ServerMessage>(&body).unwrap(),
            ServerMessage::ContextUpdated {
                request_id: "u1".into(),
                session_id: session.clone(),
                version: 1,
                previous: vars(json!({"session": {"a": null}, "user": {"name": null}})),
            }
        );
        c.send(&update(
            "u2",
            &session,
            1,
            json!({"session": {"a": [2, 3]}}),
        ))
        .await;
        assert_eq!(
            c.recv().await,
            ServerMessage::ContextUpdated {
                request_id: "u2".into(),
                session_id: session.clone(),
                version: 2,
                previous: vars(json!({"session": {"a": 1}})),
            }
        );
        c.send(&get("g1", &session)).await;
        let whole = vars(json!({"session": {"a": [2, 3]}, "user": {"name": "Ada"}}));
        assert_eq!(
            c.recv().await,
            ServerMessage::Context {
                request_id: "g1".into(),
                session_id: session.clone(),
                version: 2,
                context: whole.clone(),
            }
        );
        assert_eq!(emu.context_of(&session), Some((2, whole)));
        c.send(&get("g2", "never-updated")).await;
        assert_eq!(
            c.recv().await,
            ServerMessage::Context {
                request_id: "g2".into(),
                session_id: "never-updated".into(),
                version: 0,
                context: Context::new(),
            }
        );
    }
    let s = emu.stats();
    assert_eq!((s.updates_ok, s.gets, s.rejections.total()), (4, 4, 0));
    assert_eq!(s.runtime_connections, 2);
    assert_eq!(emu.context_of("never-updated"), None);
    emu.shutdown().await;
}

#[tokio::test]
async fn stale_version_is_rejected_with_current_version() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    let mut a = Rt::connect(&emu, Codec::Msgpack).await;
    let mut b = Rt::connect(&emu, Codec::Json).await;
    a.send(&update("a1", "shared", 0, json!({"global": {"k": "a"}})))
        .await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ContextUpdated { version: 1, .. }
    ));
    // A second client still at version 0 conflicts, and learns the current one.
    b.send(&update("b1", "shared", 0, json!({"global": {"k": "b"}})))
        .await;
    let (message, current) = rejected(b.recv().await, "b1", RejectCode::VersionMismatch);
    assert_eq!(current, Some(1), "{message}");
    b.send(&update("b2", "shared", 1, json!({"global": {"k": "b"}})))
        .await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::ContextUpdated { version: 2, .. }
    ));
    let (version, context) = emu.context_of("shared").unwrap();
    assert_eq!((version, context), (2, vars(json!({"global": {"k": "b"}}))));
    let s = emu.stats();
    assert_eq!((s.updates_ok, s.rejections.version_mismatch), (2, 1));
    emu.shutdown().await;
}

#[tokio::test]
async fn limits_are_enforced_with_clear_messages() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    let mut c = Rt::connect(&emu, Codec::Msgpack).await;
    let many: serde_json::Map<String, Value> =
        (0..501).map(|i| (format!("v{i}"), json!(i))).collect();
    c.send(&update("many", "lim", 0, json!({"session": many})))
        .await;
    let (message, _) = rejected(c.recv().await, "many", RejectCode::LimitExceeded);
    assert!(message.contains("501 variables"), "{message}");

    let big = "x".repeat(1_048_576);
    c.send(&update("big", "lim", 0, json!({"user": {"blob": big}})))
        .await;
    let (message, _) = rejected(c.recv().await, "big", RejectCode::LimitExceeded);
    assert!(message.contains("1048576"), "{message}");

    c.send(&update("scope", "lim", 0, json!({"tenant": {"a": 1}})))
        .await;
    let (message, _) = rejected(c.recv().await, "scope", RejectCode::InvalidScope);
    assert!(message.contains("`tenant`"), "{message}");

    c.send(&update("empty", "", 0, json!({"user": {"a": 1}})))
        .await;
    rejected(c.recv().await, "empty", RejectCode::BadPayload);

    // Nothing was applied; the session is still usable from version 0.
    assert_eq!(emu.context_of("lim"), None);
    c.send(&update("fine", "lim", 0, json!({"user": {"a": 1}})))
        .await;
    assert!(matches!(
        c.recv().await,
        ServerMessage::ContextUpdated { version: 1, .. }
    ));
    let s = emu.stats();
    assert_eq!(s.rejections.limit_exceeded, 2);
    assert_eq!(s.rejections.invalid_scope, 1);
    assert_eq!(s.rejections.bad_payload, 1);
    assert_eq!(s.protocol_errors, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn in_flight_cap_rejects_the_eleventh_pipelined_update() {
    let emu = start(RuntimeEmulatorConfig {
        update_delay: Delay::Fixed(Duration::from_millis(500).into()),
        ..Default::default()
    })
    .await;
    let mut c = Rt::connect(&emu, Codec::Json).await;
    for i in 0..11u64 {
        c.send(&update(
            &format!("r{i}"),
            "busy",
            i,
            json!({"session": {"i": i}}),
        ))
        .await;
    }
    // The eleventh is refused at once, before any delayed reply.
    rejected(c.recv().await, "r10", RejectCode::TooManyInFlight);
    // The ten accepted ones are applied in arrival order: versions 1..=10.
    for i in 0..10u64 {
        match c.recv().await {
            ServerMessage::ContextUpdated {
                request_id,
                version,
                ..
            } => assert_eq!((request_id, version), (format!("r{i}"), i + 1)),
            other => panic!("expected contextUpdated r{i}, got {other:?}"),
        }
    }
    // The slots are free again.
    c.send(&update("r11", "busy", 10, json!({"session": {"i": 11}})))
        .await;
    assert!(matches!(
        c.recv().await,
        ServerMessage::ContextUpdated { version: 11, .. }
    ));
    let s = emu.stats();
    assert_eq!((s.updates_ok, s.rejections.too_many_in_flight), (11, 1));
    emu.shutdown().await;
}

#[tokio::test]
async fn random_delays_still_apply_in_arrival_order() {
    let emu = start(RuntimeEmulatorConfig {
        update_delay: "uniform(1ms, 60ms)".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let mut c = Rt::connect(&emu, Codec::Msgpack).await;
    for i in 0..10u64 {
        c.send(&update(
            &format!("r{i}"),
            "ordered",
            i,
            json!({"user": {"i": i}}),
        ))
        .await;
    }
    for i in 0..10u64 {
        match c.recv().await {
            ServerMessage::ContextUpdated { version, .. } => assert_eq!(version, i + 1),
            other => panic!("update {i} was not applied in order: {other:?}"),
        }
    }
    // A read queued behind updates sees all of them.
    c.send(&get("g", "ordered")).await;
    assert!(matches!(
        c.recv().await,
        ServerMessage::Context { version: 10, .. }
    ));
    emu.shutdown().await;
}

#[tokio::test]
async fn heartbeat_is_answered_and_keeps_the_connection_alive() {
    let emu = start(RuntimeEmulatorConfig {
        idle_timeout: Duration::from_millis(600).into(),
        ..Default::default()
    })
    .await;
    let mut c = Rt::connect(&emu, Codec::Msgpack).await;
    // Heartbeats every 100 ms for 1 s, longer than the idle timeout (the
    // sleeps are the client's pacing, not a wait for the server).
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.send_binary(frame::heartbeat()).await;
        assert_eq!(c.recv_frame().await, vec![0, 0, 0, 1, 3]);
    }
    assert_eq!(emu.stats().idle_closes, 0);
    // Then silence: closed with 4000.
    assert_eq!(c.expect_close().await, (4000, "idle timeout".to_string()));
    let s = wait_stats(&emu, |s| s.active_runtime_connections == 0).await;
    assert_eq!((s.heartbeats, s.idle_closes), (10, 1));
    emu.shutdown().await;
}

#[tokio::test]
async fn frame_errors_close_with_1002_and_are_counted() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    let bad: [Message; 4] = [
        // Header says 9 bytes, 2 follow.
        Message::binary(vec![0, 0, 0, 9, 1, 2]),
        // The known mistake: header bytes filled with 0x02 (too large).
        Message::binary(vec![2, 2, 2, 2, 2]),
        Message::binary(vec![0, 0]),
        Message::text("{\"type\":\"getContext\"}"),
    ];
    for (i, msg) in bad.into_iter().enumerate() {
        let mut c = Rt::connect(&emu, Codec::Json).await;
        tokio::time::timeout(WAIT, c.ws.send(msg))
            .await
            .unwrap()
            .unwrap();
        let (code, reason) = c.expect_close().await;
        assert_eq!(code, 1002, "case {i}: {reason}");
        assert!(!reason.is_empty(), "case {i}");
        wait_stats(&emu, |s| s.protocol_errors == i as u64 + 1).await;
    }
    let s = wait_stats(&emu, |s| s.active_runtime_connections == 0).await;
    assert_eq!(s.protocol_errors, 4);
    emu.shutdown().await;
}

#[tokio::test]
async fn undecodable_payload_is_rejected_and_the_connection_survives() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    let mut c = Rt::connect(&emu, Codec::Msgpack).await;
    c.send_binary(frame::encode(b"\xc1\xff\x00garbage")).await;
    let (message, _) = rejected(c.recv().await, "", RejectCode::BadPayload);
    assert!(message.contains("msgpack"), "{message}");
    // A well-formed map of an unknown type keeps its requestId.
    let unknown = Codec::Msgpack
        .encode(&json!({"type": "dance", "requestId": "d1", "sessionId": "s"}))
        .unwrap();
    c.send_binary(frame::encode(&unknown)).await;
    rejected(c.recv().await, "d1", RejectCode::BadPayload);
    c.send_binary(frame::heartbeat()).await;
    assert_eq!(c.recv_frame().await, frame::heartbeat_ack());
    let s = emu.stats();
    assert_eq!((s.rejections.bad_payload, s.protocol_errors), (2, 0));
    emu.shutdown().await;
}

#[tokio::test]
async fn expired_token_closes_with_4001_and_is_refused_afterwards() {
    let emu = start(RuntimeEmulatorConfig {
        token_lifetime: Duration::from_secs(1).into(),
        ..Default::default()
    })
    .await;
    let t = token(&emu).await;
    let url = format!("{}?token={t}&codec=json", emu.runtime_url());
    let mut c = Rt::try_connect(&url, Codec::Json).await.expect("upgrade");
    c.send(&get("g", "s")).await;
    assert!(matches!(c.recv().await, ServerMessage::Context { .. }));
    assert_eq!(c.expect_close().await, (4001, "token expired".to_string()));
    let s = wait_stats(&emu, |s| s.active_runtime_connections == 0).await;
    assert_eq!((s.expiry_closes, s.idle_closes), (1, 0));
    match Rt::try_connect(&url, Codec::Json).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("expired token accepted: {:?}", other.map(|_| ())),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_runtime_connections_with_1001() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    let mut c = Rt::connect(&emu, Codec::Msgpack).await;
    let stopping = tokio::spawn(emu.shutdown());
    assert_eq!(c.expect_close().await.0, 1001);
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("shutdown finishes")
        .unwrap();
}

#[tokio::test]
async fn webhook_sink_counts_and_keeps_json_bodies() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    let client = http();
    let records: Vec<Value> = (0..3)
        .map(|i| json!({"eventType": "context_variable_update", "auditId": format!("a{i}")}))
        .collect();
    for r in &records {
        let resp = client.post(emu.webhook_url()).json(r).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 204);
    }
    let resp = client
        .post(emu.webhook_url())
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let stats: Value = client
        .get(format!("{}/stats", emu.webhook_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, json!({"received": 3}));
    assert_eq!(emu.webhook_bodies(), records);
    assert_eq!(emu.stats().webhook_received, 3);
    emu.shutdown().await;
}

/// A minimal Socket.IO (EIO4) client over a raw WebSocket, as in tests/emulator.rs.
struct Sio {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Sio {
    async fn connect(emu: &RunningEmulator, query: &str) -> Sio {
        let url = format!(
            "ws://{}/socket.io/?{query}&EIO=4&transport=websocket",
            emu.addr
        );
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect did not time out")
            .expect("upgrade");
        let mut c = Sio { ws };
        assert!(c.recv().await.starts_with('0'), "open packet");
        c.send("40").await;
        assert!(c.recv().await.starts_with("40"), "namespace connect");
        assert_eq!(c.recv().await, r#"42["endpoint-ready"]"#);
        c
    }

    async fn send(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.ws.send(Message::text(text)))
            .await
            .expect("send did not time out")
            .expect("send");
    }

    async fn recv(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within 5 s");
            match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => self.send("3").await,
                Some(Ok(Message::Text(t))) => return t.as_str().to_string(),
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Sends one input and returns the frames of its turn up to finalPing.
    async fn turn(&mut self, text: &str) -> Vec<String> {
        self.send(&format!(
            r#"42["processInput",{{"URLToken":"t","userId":"u","sessionId":"session 1","source":"device","text":"{text}"}}]"#
        ))
        .await;
        let mut frames = Vec::new();
        for _ in 0..8 {
            let f = self.recv().await;
            let done = f.contains("finalPing");
            frames.push(f);
            if done {
                return frames;
            }
        }
        panic!("no finalPing in {frames:?}");
    }
}

#[tokio::test]
async fn bot_outputs_show_the_context_version_of_their_session() {
    let emu = start(RuntimeEmulatorConfig::default()).await;
    // `session%25201` decodes twice to `session 1`.
    let mut sio = Sio::connect(
        &emu,
        "sessionId=session%25201&urlToken=t&userId=u&testMode=false&emitWithAck=false",
    )
    .await;
    // No context yet: the output is the fixture's, byte for byte.
    assert_eq!(
        sio.turn("before").await,
        vec![
            r#"42["output",{"type":"output","data":{"text":"You said: before","data":{"echo":null,"emulator":true},"source":"bot","traceId":"trace-1"}}]"#,
            r#"42["finalPing",{"type":"regular"}]"#,
        ]
    );
    let mut rt = Rt::connect(&emu, Codec::Msgpack).await;
    for v in 0..2 {
        rt.send(&update("u", "session 1", v, json!({"session": {"n": v}})))
            .await;
        assert!(matches!(
            rt.recv().await,
            ServerMessage::ContextUpdated { .. }
        ));
    }
    assert_eq!(
        sio.turn("after").await,
        vec![
            r#"42["output",{"type":"output","data":{"text":"You said: after","data":{"echo":null,"emulator":true,"contextVersion":2},"source":"bot","traceId":"trace-2"}}]"#,
            r#"42["finalPing",{"type":"regular"}]"#,
        ]
    );
    // Another session's context does not leak into this one's outputs.
    rt.send(&update("o", "other", 0, json!({"user": {"x": 1}})))
        .await;
    assert!(matches!(
        rt.recv().await,
        ServerMessage::ContextUpdated { .. }
    ));
    let frames = sio.turn("again").await;
    assert!(frames[0].contains(r#""contextVersion":2"#), "{frames:?}");
    emu.shutdown().await;
}
