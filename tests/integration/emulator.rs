//! Integration tests of the embedded Socket.IO Endpoint emulator, driven by a raw
//! WebSocket client that speaks the exact frames of the recorded fixtures
//! (tests/fixtures/wire): EIO3 and EIO4, acks, several outputs, path prefix,
//! inner handshake, URL-token refusal, delays, ordering, shutdown.

use finalping::emulator::{self, Delay, EmulatorConfig, EmulatorStats, RunningEmulator};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for any single wait in these tests.
const WAIT: Duration = Duration::from_secs(5);

/// The official client's query (values encoded twice), minus `EIO`/`transport`.
const OFFICIAL_QUERY: &str = "sessionId=session%25201%252Femulator&urlToken=emulator-url-token\
&userId=user%2540example.com&testMode=false&emitWithAck=true";

/// `processInput` frames from the fixtures.
const INPUT_1: &str = r#"42["processInput",{"URLToken":"emulator-url-token","userId":"user@example.com","sessionId":"session 1/emulator","channel":"load-test","source":"device","passthroughIP":null,"resetFlow":false,"text":"hello 1"}]"#;
const INPUT_2: &str = r#"42["processInput",{"URLToken":"emulator-url-token","userId":"user@example.com","sessionId":"session 1/emulator","channel":"load-test","source":"device","passthroughIP":null,"resetFlow":false,"text":"hello 2","data":{"color":"green","i":2}}]"#;

const ENDPOINT_READY: &str = r#"42["endpoint-ready"]"#;
const TYPING_ON: &str = r#"42["typingStatus",{"status":"typingOn"}]"#;
const TYPING_OFF: &str = r#"42["typingStatus",{"status":"typingOff"}]"#;

/// socketioxide numbers a socket's ack requests from 1; the Node server of the
/// fixtures numbers them from 0. Helpers take the fixture's number and add this.
/// (Clients echo whatever id they get, so both are valid Socket.IO.)
const ACK_ID_OFFSET: u32 = 1;

/// The frame of the `n`-th ack request (fixture numbering).
fn ack_prefix(n: Option<u32>) -> String {
    n.map(|n| (n + ACK_ID_OFFSET).to_string())
        .unwrap_or_default()
}

/// The client's empty ack of the `n`-th ack request (fixture numbering).
fn ack(n: u32) -> String {
    format!("43{}[]", n + ACK_ID_OFFSET)
}

fn output_frame(ack: Option<u32>, text: &str, echo: &str, trace: u64) -> String {
    let ack = ack_prefix(ack);
    format!(
        r#"42{ack}["output",{{"type":"output","data":{{"text":"You said: {text}","data":{{"echo":{echo},"emulator":true}},"source":"bot","traceId":"trace-{trace}"}}}}]"#
    )
}

fn final_ping_frame(ack: Option<u32>) -> String {
    let ack = ack_prefix(ack);
    format!(r#"42{ack}["finalPing",{{"type":"regular"}}]"#)
}

/// The client's answer to the handshake request (fixture: `430[{…}]`).
fn handshake_ack(payload: &str) -> String {
    format!("43{}[{payload}]", ACK_ID_OFFSET)
}

fn input(text: &str) -> String {
    INPUT_1.replace("hello 1", text)
}

fn config() -> EmulatorConfig {
    EmulatorConfig {
        delay: Delay::Fixed(Duration::from_millis(1).into()),
        ..EmulatorConfig::default()
    }
}

async fn start(config: EmulatorConfig) -> RunningEmulator {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    emulator::start(config, addr)
        .await
        .expect("emulator starts")
}

fn ws_url(emu: &RunningEmulator, path: &str, query: &str) -> String {
    format!("ws://{}{path}?{query}", emu.addr)
}

/// A raw Socket.IO-over-WebSocket client: text frames in, text frames out.
struct Raw {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// EIO4: answer server pings (`2`) with `3` and hide them.
    answer_pings: bool,
}

impl Raw {
    async fn try_connect(url: &str) -> Result<Raw, tungstenite::Error> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect did not time out")?;
        Ok(Raw {
            ws,
            answer_pings: false,
        })
    }

    async fn connect(url: &str) -> Raw {
        Raw::try_connect(url).await.expect("websocket upgrade")
    }

    async fn send(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.ws.send(Message::text(text)))
            .await
            .expect("send did not time out")
            .expect("send");
    }

    /// Next text frame; `None` if the connection closed.
    async fn next(&mut self) -> Option<String> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within 5 s");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    if self.answer_pings && t.as_str() == "2" {
                        self.send("3").await;
                        continue;
                    }
                    return Some(t.as_str().to_string());
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn recv(&mut self) -> String {
        self.next().await.expect("connection open")
    }

    async fn expect(&mut self, frame: &str) {
        assert_eq!(self.recv().await, frame);
    }

    /// Reads the Engine.IO open packet and returns its JSON.
    async fn open(&mut self) -> serde_json::Value {
        let open = self.recv().await;
        let json = open.strip_prefix('0').expect("open packet starts with 0");
        serde_json::from_str(json).expect("open packet JSON")
    }

    /// EIO3 connect: open, `40` sent by the server, `endpoint-ready`.
    async fn handshake_eio3(&mut self) {
        self.open().await;
        self.expect("40").await;
        self.expect(ENDPOINT_READY).await;
    }

    /// EIO4 connect: open, client `40`, server `40{"sid":…}`, `endpoint-ready`.
    async fn handshake_eio4(&mut self) {
        self.answer_pings = true;
        self.open().await;
        self.send("40").await;
        let connect = self.recv().await;
        let sid: serde_json::Value =
            serde_json::from_str(connect.strip_prefix("40").expect("40 packet")).unwrap();
        assert!(
            sid["sid"].as_str().is_some_and(|s| !s.is_empty()),
            "{connect}"
        );
        self.expect(ENDPOINT_READY).await;
    }
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

/// The two-message conversation of the official-client fixtures, after connect.
async fn fixture_conversation(c: &mut Raw) {
    c.send(INPUT_1).await;
    c.expect(TYPING_ON).await;
    c.expect(&output_frame(Some(0), "hello 1", "null", 1)).await;
    c.expect(TYPING_OFF).await;
    c.expect(&final_ping_frame(Some(1))).await;
    c.send(&ack(0)).await;
    c.send(&ack(1)).await;
    c.send(INPUT_2).await;
    c.expect(TYPING_ON).await;
    c.expect(&output_frame(
        Some(2),
        "hello 2",
        r#"{"color":"green","i":2}"#,
        2,
    ))
    .await;
    c.expect(TYPING_OFF).await;
    c.expect(&final_ping_frame(Some(3))).await;
    c.send(&ack(2)).await;
    c.send(&ack(3)).await;
}

#[tokio::test]
async fn eio3_official_conversation_matches_fixture() {
    let emu = start(EmulatorConfig {
        ping_interval: Duration::from_millis(1500).into(),
        ping_timeout: Duration::from_millis(1200).into(),
        ..config()
    })
    .await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=3&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    let open = c.open().await;
    assert_eq!(open["upgrades"], serde_json::json!([]));
    assert_eq!(open["pingInterval"], 1500);
    assert_eq!(open["pingTimeout"], 1200);
    c.expect("40").await;
    c.expect(ENDPOINT_READY).await;
    fixture_conversation(&mut c).await;
    // EIO3: the client pings, the server answers.
    c.send("2").await;
    c.expect("3").await;
    let s = wait_stats(&emu, |s| s.acks_received == 4).await;
    assert_eq!((s.sessions, s.turns, s.outputs), (1, 2, 2));
    assert_eq!(s.acks_requested, 4);
    // The query was decoded twice: the plain ids in processInput match it.
    assert_eq!(s.input_mismatches, 0);
    assert_eq!(s.bad_inputs, 0);
    c.send("41").await;
    wait_stats(&emu, |s| s.active_sessions == 0).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn eio4_official_conversation_matches_fixture() {
    let emu = start(config()).await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=4&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    c.handshake_eio4().await;
    fixture_conversation(&mut c).await;
    let s = wait_stats(&emu, |s| s.acks_received == 4).await;
    assert_eq!((s.turns, s.outputs, s.input_mismatches), (2, 2, 0));
    emu.shutdown().await;
}

#[tokio::test]
async fn eio4_server_pings_and_the_session_survives() {
    let emu = start(EmulatorConfig {
        ping_interval: Duration::from_millis(100).into(),
        ping_timeout: Duration::from_millis(2000).into(),
        ..config()
    })
    .await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=4&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    c.open().await;
    c.send("40").await;
    // Bounded: the server must ping within a few frames; the ping may come
    // before, between or after `40{…}` and `endpoint-ready`.
    let (mut pinged, mut ready) = (false, false);
    for _ in 0..6 {
        if pinged && ready {
            break;
        }
        let f = c.recv().await;
        if f == "2" {
            c.send("3").await;
            pinged = true;
            continue;
        }
        ready |= f == ENDPOINT_READY;
        assert!(f.starts_with("40") || f == ENDPOINT_READY, "unexpected {f}");
    }
    assert!(pinged, "server never pinged");
    assert!(ready, "no endpoint-ready");
    c.answer_pings = true;
    c.send(&input("after ping")).await;
    c.expect(TYPING_ON).await;
    c.expect(&output_frame(Some(0), "after ping", "null", 1))
        .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn mismatched_input_ids_are_counted() {
    let emu = start(config()).await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=3&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    c.handshake_eio3().await;
    // What a client that does not decode its own ids would send.
    c.send(&INPUT_1.replace("session 1/emulator", "session%201%2Femulator"))
        .await;
    c.expect(TYPING_ON).await;
    c.recv().await;
    c.expect(TYPING_OFF).await;
    c.recv().await;
    assert_eq!(emu.stats().input_mismatches, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn three_outputs_with_acks_and_without() {
    let emu = start(EmulatorConfig {
        outputs: 3,
        output_gap: Delay::Fixed(Duration::from_millis(2).into()),
        ..config()
    })
    .await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=3&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    c.handshake_eio3().await;
    c.send(INPUT_1).await;
    c.expect(TYPING_ON).await;
    for i in 0..3u32 {
        c.expect(&output_frame(Some(i), "hello 1", "null", u64::from(i) + 1))
            .await;
        c.send(&ack(i)).await;
    }
    c.expect(TYPING_OFF).await;
    c.expect(&final_ping_frame(Some(3))).await;
    // Ack of finalPing deliberately never sent: the turn is over anyway.

    // emitWithAck=false: plain events, no ack ids.
    let query = OFFICIAL_QUERY.replace("emitWithAck=true", "emitWithAck=false");
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{query}&EIO=4&transport=websocket"),
    );
    let mut plain = Raw::connect(&url).await;
    plain.handshake_eio4().await;
    plain.send(INPUT_2).await;
    plain.expect(TYPING_ON).await;
    for trace in 4..=6 {
        plain
            .expect(&output_frame(
                None,
                "hello 2",
                r#"{"color":"green","i":2}"#,
                trace,
            ))
            .await;
    }
    plain.expect(TYPING_OFF).await;
    plain.expect(&final_ping_frame(None)).await;

    let s = wait_stats(&emu, |s| s.acks_received == 3 && s.turns == 2).await;
    assert_eq!((s.outputs, s.acks_requested), (6, 4));
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_ack_is_counted_after_ack_timeout() {
    let emu = start(EmulatorConfig {
        ack_timeout: Duration::from_millis(200).into(),
        ..config()
    })
    .await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=3&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    c.handshake_eio3().await;
    c.send(INPUT_1).await;
    c.expect(TYPING_ON).await;
    c.expect(&output_frame(Some(0), "hello 1", "null", 1)).await;
    c.expect(TYPING_OFF).await;
    c.expect(&final_ping_frame(Some(1))).await;
    c.send(&ack(0)).await;
    let s = wait_stats(&emu, |s| s.acks_missed == 1).await;
    assert_eq!(s.acks_received, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn path_prefix_serves_both_paths() {
    let emu = start(EmulatorConfig {
        path_prefix: Some("/cognigy/".into()),
        ..config()
    })
    .await;
    let q3 = format!("{OFFICIAL_QUERY}&EIO=3&transport=websocket");
    let mut prefixed = Raw::connect(&ws_url(&emu, "/cognigy/socket.io/", &q3)).await;
    prefixed.handshake_eio3().await;
    let q4 = format!("{OFFICIAL_QUERY}&EIO=4&transport=websocket");
    let mut plain = Raw::connect(&ws_url(&emu, "/socket.io/", &q4)).await;
    plain.handshake_eio4().await;
    prefixed.send(INPUT_1).await;
    prefixed.expect(TYPING_ON).await;
    match Raw::try_connect(&ws_url(&emu, "/other/socket.io/", &q3)).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        Err(e) => panic!("expected HTTP 404, got {e}"),
        Ok(_) => panic!("/other/socket.io/ must not be served"),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn inner_handshake_matches_fixture() {
    let emu = start(config()).await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        "handshake=true&EIO=3&transport=websocket",
    );
    let mut c = Raw::connect(&url).await;
    c.open().await;
    c.expect("40").await;
    c.expect(&format!(r#"42{}["handshake"]"#, ack_prefix(Some(0))))
        .await;
    c.send(&handshake_ack(r#"{"userId":"user@example.com","sessionId":"session 1/emulator","urlToken":"emulator-url-token","testMode":false,"emitWithAck":true}"#))
        .await;
    c.expect(ENDPOINT_READY).await;
    c.send(INPUT_1).await;
    c.expect(TYPING_ON).await;
    c.expect(&output_frame(Some(1), "hello 1", "null", 1)).await;
    c.expect(TYPING_OFF).await;
    c.expect(&final_ping_frame(Some(2))).await;
    c.send(&ack(1)).await;
    c.send(&ack(2)).await;
    let s = wait_stats(&emu, |s| s.acks_received == 2).await;
    assert_eq!(s.input_mismatches, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_url_tokens_are_refused() {
    let emu = start(EmulatorConfig {
        url_tokens: vec!["emulator-url-token".into()],
        ..config()
    })
    .await;
    // Known token: served.
    let q = format!("{OFFICIAL_QUERY}&EIO=3&transport=websocket");
    let mut ok = Raw::connect(&ws_url(&emu, "/socket.io/", &q)).await;
    ok.handshake_eio3().await;
    // Unknown token in the query: HTTP 403 at the upgrade.
    let bad = q.replace("emulator-url-token", "wrong-token");
    match Raw::try_connect(&ws_url(&emu, "/socket.io/", &bad)).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        Err(e) => panic!("expected HTTP 403, got {e}"),
        Ok(_) => panic!("an unknown token must be refused"),
    }
    // Unknown token in the inner handshake: namespace disconnect `41`.
    let url = ws_url(
        &emu,
        "/socket.io/",
        "handshake=true&EIO=3&transport=websocket",
    );
    let mut c = Raw::connect(&url).await;
    c.open().await;
    c.expect("40").await;
    c.expect(&format!(r#"42{}["handshake"]"#, ack_prefix(Some(0))))
        .await;
    c.send(&handshake_ack(r#"{"userId":"u","sessionId":"s","urlToken":"wrong-token","testMode":false,"emitWithAck":true}"#))
        .await;
    c.expect("41").await;
    let s = emu.stats();
    assert_eq!((s.refused, s.sessions), (2, 1));
    emu.shutdown().await;
}

#[tokio::test]
async fn disabled_engine_io_version_is_refused() {
    let emu = start(EmulatorConfig {
        eio3: false,
        ..config()
    })
    .await;
    let q3 = format!("{OFFICIAL_QUERY}&EIO=3&transport=websocket");
    match Raw::try_connect(&ws_url(&emu, "/socket.io/", &q3)).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        Err(e) => panic!("expected HTTP 400, got {e}"),
        Ok(_) => panic!("EIO3 is disabled"),
    }
    let q4 = format!("{OFFICIAL_QUERY}&EIO=4&transport=websocket");
    Raw::connect(&ws_url(&emu, "/socket.io/", &q4))
        .await
        .handshake_eio4()
        .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn fixed_delay_is_a_lower_bound_of_the_turn() {
    let delay = Duration::from_millis(150);
    let emu = start(EmulatorConfig {
        delay: Delay::Fixed(delay.into()),
        ..config()
    })
    .await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=4&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    c.handshake_eio4().await;
    for text in ["one", "two"] {
        let sent = Instant::now();
        c.send(&input(text)).await;
        c.expect(TYPING_ON).await;
        let first = sent.elapsed();
        c.expect(&output_frame(
            Some(if text == "one" { 0 } else { 2 }),
            text,
            "null",
            if text == "one" { 1 } else { 2 },
        ))
        .await;
        c.expect(TYPING_OFF).await;
        c.recv().await;
        assert!(
            first >= delay,
            "turn `{text}` answered after {first:?} < {delay:?}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn inputs_of_one_session_are_served_in_order() {
    let emu = start(EmulatorConfig {
        delay: "uniform(1ms, 25ms)".parse().unwrap(),
        typing: false,
        ..config()
    })
    .await;
    let query = OFFICIAL_QUERY.replace("emitWithAck=true", "emitWithAck=false");
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{query}&EIO=3&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    c.handshake_eio3().await;
    for i in 0..8 {
        c.send(&input(&format!("msg {i}"))).await;
    }
    for i in 0..8u64 {
        c.expect(&output_frame(None, &format!("msg {i}"), "null", i + 1))
            .await;
        c.expect(&final_ping_frame(None)).await;
    }
    // A processInput without its argument is counted, not fatal.
    c.send(r#"42["processInput"]"#).await;
    c.send(&input("after bad")).await;
    c.expect(&output_frame(None, "after bad", "null", 9)).await;
    assert_eq!(emu.stats().bad_inputs, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_and_the_port() {
    let emu = start(config()).await;
    let addr = emu.addr;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=4&transport=websocket"),
    );
    let mut c = Raw::connect(&url).await;
    c.handshake_eio4().await;
    // An open session must not hold the shutdown up (it is closed, below).
    tokio::time::timeout(WAIT, emu.shutdown())
        .await
        .expect("shutdown waited for the open session");
    // The client sees the session end (a `41`, then close), within the read timeout.
    let mut ended = false;
    for _ in 0..4 {
        match c.next().await {
            None => {
                ended = true;
                break;
            }
            Some(f) => assert!(f == "41" || f == "1", "unexpected frame {f}"),
        }
    }
    assert!(ended, "connection still open after shutdown");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "port still accepting"
    );
}

#[tokio::test]
async fn many_concurrent_sessions() {
    const N: usize = 300;
    let emu = start(config()).await;
    let url = ws_url(
        &emu,
        "/socket.io/",
        &format!("{OFFICIAL_QUERY}&EIO=4&transport=websocket"),
    );
    let mut tasks = Vec::new();
    for i in 0..N {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Raw::connect(&url).await;
            c.handshake_eio4().await;
            let text = format!("vu {i}");
            c.send(&input(&text)).await;
            c.expect(TYPING_ON).await;
            let out = c.recv().await;
            assert!(out.contains(&format!("You said: {text}\"")), "{out}");
            c.expect(TYPING_OFF).await;
            c.expect(&final_ping_frame(Some(1))).await;
            c.send(&ack(0)).await;
            c.send(&ack(1)).await;
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("client task"));
    }
    let s = wait_stats(&emu, |s| s.acks_received == 2 * N as u64).await;
    assert_eq!(
        (s.sessions, s.active_sessions, s.turns),
        (N as u64, N as u64, N as u64)
    );
    drop(clients);
    wait_stats(&emu, |s| s.active_sessions == 0).await;
    emu.shutdown().await;
}
