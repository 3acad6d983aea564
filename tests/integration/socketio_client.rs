//! Integration tests of the Socket.IO Endpoint client (`protocol::socketio`)
//! against a scripted raw WebSocket server on 127.0.0.1:0 that replays the
//! recorded fixture frames (tests/fixtures/wire) and asserts byte for byte
//! what the client sends. Every wait is bounded by a timeout; nothing sleeps.
//! Tests of timers (heartbeats, connect and turn timeouts, idle) run on a
//! paused tokio clock (`start_paused`): client and server share one
//! current-thread runtime, time moves only when both wait on a timer, so the
//! assertions on timer instants are exact.

// tungstenite's upgrade callback type fixes `Result<Response, ErrorResponse>`.
#![allow(clippy::result_large_err)]

use finalping::protocol::socketio::{
    ConnectError, ConnectOptions, Connection, DisconnectKind, Eio, ProcessInput, TurnOutcome,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Upper bound for any single wait in the scripted server.
const WAIT: Duration = Duration::from_secs(5);

// Frames copied verbatim from the fixtures.
const GET_EIO3: &str = "/socket.io/?sessionId=session%25201%252Femulator&urlToken=emulator-url-token&userId=user%2540example.com&testMode=false&emitWithAck=true&EIO=3&transport=websocket";
const GET_EIO4: &str = "/socket.io/?sessionId=session%25201%252Femulator&urlToken=emulator-url-token&userId=user%2540example.com&testMode=false&emitWithAck=true&EIO=4&transport=websocket";
const GET_INNER: &str = "/socket.io/?handshake=true&EIO=3&transport=websocket";
const OPEN: &str = r#"0{"sid":"O7zV9ZV5beX1Cn-5AAAA","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const READY: &str = r#"42["endpoint-ready"]"#;
const TYPING_ON: &str = r#"42["typingStatus",{"status":"typingOn"}]"#;
const TYPING_OFF: &str = r#"42["typingStatus",{"status":"typingOff"}]"#;
const INPUT_1: &str = r#"42["processInput",{"URLToken":"emulator-url-token","userId":"user@example.com","sessionId":"session 1/emulator","channel":"load-test","source":"device","passthroughIP":null,"resetFlow":false,"text":"hello 1"}]"#;
const INPUT_2: &str = r#"42["processInput",{"URLToken":"emulator-url-token","userId":"user@example.com","sessionId":"session 1/emulator","channel":"load-test","source":"device","passthroughIP":null,"resetFlow":false,"text":"hello 2","data":{"color":"green","i":2}}]"#;
const OUTPUT_1: &str = r#"420["output",{"type":"output","data":{"text":"You said: hello 1","data":{"echo":null,"emulator":true},"source":"bot","traceId":"trace-1795496931020"}}]"#;
const FINAL_1: &str = r#"421["finalPing",{"type":"regular"}]"#;
const OUTPUT_2: &str = r#"422["output",{"type":"output","data":{"text":"You said: hello 2","data":{"echo":{"color":"green","i":2},"emulator":true},"source":"bot","traceId":"trace-1795496931074"}}]"#;
const FINAL_2: &str = r#"423["finalPing",{"type":"regular"}]"#;
const HANDSHAKE_ACK: &str = r#"430[{"userId":"user@example.com","sessionId":"session 1/emulator","urlToken":"emulator-url-token","testMode":false,"emitWithAck":true}]"#;

/// The server side of one accepted WebSocket.
struct Peer {
    ws: WebSocketStream<TcpStream>,
    /// Request target of the upgrade GET (path and query).
    target: String,
    /// Every text frame the client sent, in order.
    received: Vec<String>,
}

impl Peer {
    async fn send(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.ws.send(Message::text(text)))
            .await
            .expect("server send timed out")
            .expect("server send failed");
    }

    /// Next text frame from the client (control frames skipped).
    async fn recv(&mut self) -> String {
        for _ in 0..1000 {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a client frame");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    self.received.push(t.to_string());
                    return t.to_string();
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
        panic!("too many control frames")
    }

    async fn expect(&mut self, want: &str) {
        assert_eq!(self.recv().await, want);
    }

    /// Reads until the client closes; true if it sent a WebSocket close frame.
    async fn wait_closed(&mut self) -> bool {
        for _ in 0..1000 {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("client did not close")
            {
                Some(Ok(Message::Close(_))) => return true,
                Some(Ok(Message::Text(t))) => self.received.push(t.to_string()),
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => return false,
            }
        }
        panic!("client kept sending")
    }

    /// Open packet, namespace connect and endpoint-ready for `eio`.
    async fn handshake(&mut self, eio: Eio, open: &str) {
        self.send(open).await;
        if eio == Eio::V4 {
            self.expect("40").await;
            self.send(r#"40{"sid":"1TRp80iIPhanP1SFAAAA"}"#).await;
        } else {
            self.send("40").await;
        }
        self.send(READY).await;
    }

    /// Answers client pings until the client leaves (`41`) and closes.
    async fn pong_until_close(&mut self) -> u32 {
        let mut pings = 0;
        for _ in 0..1000 {
            match self.recv().await.as_str() {
                "2" => {
                    pings += 1;
                    self.send("3").await;
                }
                "41" => {
                    assert!(self.wait_closed().await, "no close frame after 41");
                    return pings;
                }
                other => panic!("unexpected client frame {other}"),
            }
        }
        panic!("too many pings")
    }
}

/// Starts a one-connection server on 127.0.0.1:0 running `script`; returns the
/// endpoint URL users would paste and the script's handle.
async fn serve<F, Fut, T>(script: F) -> (String, JoinHandle<T>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let handle = tokio::spawn(async move {
        let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("no client connected")
            .expect("accept");
        // As the emulator: without it, Nagle holds back a second small frame
        // until the first is acked, which a paused clock does not wait for.
        tcp.set_nodelay(true).expect("nodelay");
        let mut target = String::new();
        let capture = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            target = req.uri().to_string();
            Ok(resp)
        };
        let ws = tokio::time::timeout(WAIT, tokio_tungstenite::accept_hdr_async(tcp, capture))
            .await
            .expect("upgrade timed out")
            .expect("upgrade failed");
        script(Peer {
            ws,
            target,
            received: Vec::new(),
        })
        .await
    });
    (format!("http://{addr}/emulator-url-token"), handle)
}

fn options(endpoint: &str, eio: Eio) -> ConnectOptions {
    ConnectOptions {
        endpoint_url: endpoint.into(),
        url_token: "emulator-url-token".into(),
        user_id: "user@example.com".into(),
        session_id: "session 1/emulator".into(),
        eio,
        emit_with_ack: true,
        test_mode: false,
        inner_handshake: false,
        connect_timeout: Duration::from_secs(5),
        output_limits: Default::default(),
    }
}

fn input(text: &str) -> ProcessInput<'_> {
    ProcessInput {
        text: text.into(),
        data: None,
        reset_flow: false,
        channel: "load-test",
        keep_data: false,
    }
}

async fn connect(opts: &ConnectOptions) -> Connection {
    match Connection::connect(opts).await {
        Ok(c) => c,
        Err(e) => panic!("connect failed: {e}"),
    }
}

/// Replays the official 4.9.2 EIO3 transcript: two turns, immediate acks, 41.
#[tokio::test]
async fn eio3_official_transcript() {
    let (url, server) = serve(|mut p| async move {
        assert_eq!(p.target, GET_EIO3);
        p.handshake(Eio::V3, OPEN).await;
        p.expect(INPUT_1).await;
        p.send(TYPING_ON).await;
        p.send(OUTPUT_1).await;
        p.expect("430[]").await; // acked at once, before finalPing
        p.send(TYPING_OFF).await;
        p.send(FINAL_1).await;
        p.expect("431[]").await;
        p.expect(INPUT_2).await;
        p.send(TYPING_ON).await;
        p.send(OUTPUT_2).await;
        p.expect("432[]").await;
        p.send(TYPING_OFF).await;
        p.send(FINAL_2).await;
        p.expect("433[]").await;
        p.expect("41").await;
        assert!(p.wait_closed().await, "client closed without a close frame");
        p.received
    })
    .await;

    let mut conn = connect(&options(&url, Eio::V3)).await;
    let t1 = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!(t1.outcome, TurnOutcome::Ok);
    assert_eq!(t1.outputs.len(), 1);
    assert_eq!(t1.outputs[0].text.as_deref(), Some("You said: hello 1"));
    let finished = t1.finished_at.expect("finished_at");
    assert!(t1.sent_at <= t1.outputs[0].at && t1.outputs[0].at <= finished);

    let mut second = input("hello 2");
    second.data = Some(std::borrow::Cow::Owned(json!({"color":"green","i":2})));
    let t2 = conn.turn(&second, WAIT).await;
    assert_eq!(t2.outcome, TurnOutcome::Ok);
    assert_eq!(t2.outputs[0].text.as_deref(), Some("You said: hello 2"));

    let before_close = conn.take_counters();
    let at_close = conn.close().await;
    let received = server.await.expect("server script");

    assert_eq!(before_close.acks_sent, 4);
    assert_eq!(before_close.unknown_events, 0);
    assert_eq!(before_close.unsolicited_outputs, 0);
    assert_eq!(before_close.heartbeats, 0);
    // open, 40, ready + 2 × (typingOn, output, typingOff, finalPing)
    assert_eq!(before_close.frames_received, 11);
    let frames_sent = before_close.frames_sent + at_close.frames_sent;
    let bytes_sent = before_close.bytes_sent + at_close.bytes_sent;
    assert_eq!(frames_sent, received.len() as u64);
    assert_eq!(
        bytes_sent,
        received.iter().map(|f| f.len() as u64).sum::<u64>()
    );
}

/// EIO4: client sends 40, server pings before endpoint-ready and during a turn.
#[tokio::test]
async fn eio4_connect_and_pongs_before_ready() {
    let (url, server) = serve(|mut p| async move {
        assert_eq!(p.target, GET_EIO4);
        p.send(OPEN).await;
        p.expect("40").await;
        p.send(r#"40{"sid":"1TRp80iIPhanP1SFAAAA"}"#).await;
        p.send("2").await;
        p.expect("3").await; // answered while waiting for endpoint-ready
        p.send(READY).await;
        p.expect(INPUT_1).await;
        p.send("2").await;
        p.expect("3").await; // answered during the turn
        p.send(OUTPUT_1).await;
        p.expect("430[]").await;
        p.send(FINAL_1).await;
        p.expect("431[]").await;
        p.expect("41").await;
        assert!(p.wait_closed().await);
    })
    .await;
    let mut conn = connect(&options(&url, Eio::V4)).await;
    let turn = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!(turn.outcome, TurnOutcome::Ok);
    assert_eq!(turn.outputs.len(), 1);
    assert_eq!(conn.take_counters().heartbeats, 2);
    conn.close().await;
    server.await.expect("server script");
}

/// EIO3: the client pings every pingInterval, inside turns and while idle:
/// each ping exactly pingInterval after the previous pong.
#[tokio::test(start_paused = true)]
async fn eio3_client_pings() {
    let open = r#"0{"sid":"s","upgrades":[],"pingInterval":50,"pingTimeout":5000}"#;
    let (url, server) = serve(move |mut p| async move {
        p.handshake(Eio::V3, open).await;
        let opened = Instant::now();
        let mut pings = Vec::new();
        let mut got_input = false;
        // The turn must see two ping/pong rounds before finalPing arrives.
        for _ in 0..100 {
            match p.recv().await.as_str() {
                "2" => {
                    pings.push(opened.elapsed());
                    p.send("3").await;
                }
                INPUT_1 => got_input = true,
                other => panic!("unexpected client frame {other}"),
            }
            if got_input && pings.len() >= 2 {
                break;
            }
        }
        assert!(got_input);
        p.send(r#"42["finalPing",{"type":"regular"}]"#).await;
        (pings, p.pong_until_close().await)
    })
    .await;
    let mut conn = connect(&options(&url, Eio::V3)).await;
    let turn = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!(turn.outcome, TurnOutcome::Ok);
    assert_eq!(conn.take_counters().heartbeats, 2);
    let idle_started = Instant::now();
    conn.idle(Duration::from_millis(500)).await.expect("idle");
    assert_eq!(idle_started.elapsed(), Duration::from_millis(500));
    // Pings at +50, +100, …, +500 ms of the idle call (the last one at its end).
    assert_eq!(conn.take_counters().heartbeats, 10);
    conn.close().await;
    let (turn_pings, idle_pings) = server.await.expect("server script");
    assert_eq!(
        turn_pings,
        [Duration::from_millis(50), Duration::from_millis(100)]
    );
    assert_eq!(idle_pings, 10);
}

/// EIO3: a server that stops answering pings is detected pingTimeout after the ping.
#[tokio::test(start_paused = true)]
async fn silent_server_is_disconnected() {
    let open = r#"0{"sid":"s","upgrades":[],"pingInterval":50,"pingTimeout":50}"#;
    let (url, server) = serve(move |mut p| async move {
        p.handshake(Eio::V3, open).await;
        p.expect("2").await; // never answered
        p.wait_closed().await;
    })
    .await;
    let mut conn = connect(&options(&url, Eio::V3)).await;
    let started = Instant::now();
    let err = conn
        .idle(WAIT)
        .await
        .expect_err("idle must fail on a silent server");
    assert_eq!(err.kind, DisconnectKind::HeartbeatTimeout, "{err}");
    assert!(err.detail.contains("no pong"), "{err}");
    // Ping at pingInterval (50 ms), no pong within pingTimeout (50 ms).
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    // A dead connection reports the cause again instead of hanging.
    let turn = conn.turn(&input("x"), WAIT).await;
    assert!(matches!(turn.outcome, TurnOutcome::Disconnected(_)));
    conn.close().await;
    server.await.expect("server script");
}

/// EIO4: a server that stops pinging is detected pingInterval + pingTimeout
/// after its last ping; each ping it sends restarts the wait.
#[tokio::test(start_paused = true)]
async fn eio4_server_without_pings_is_disconnected() {
    let open = r#"0{"sid":"s","upgrades":[],"pingInterval":200,"pingTimeout":100}"#;
    let (url, server) = serve(move |mut p| async move {
        p.handshake(Eio::V4, open).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        p.send("2").await;
        p.expect("3").await;
        p.wait_closed().await;
    })
    .await;
    let mut conn = connect(&options(&url, Eio::V4)).await;
    let started = Instant::now();
    let err = conn
        .idle(WAIT)
        .await
        .expect_err("idle must fail without server pings");
    assert_eq!(err.kind, DisconnectKind::HeartbeatTimeout, "{err}");
    assert!(err.detail.contains("no server ping"), "{err}");
    // The ping at 250 ms moved the limit from 300 ms to 250 + 300 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(550));
    assert_eq!(conn.take_counters().heartbeats, 1);
    conn.close().await;
    server.await.expect("server script");
}

/// The inner handshake answers `420["handshake"]` with the ids in an ack.
#[tokio::test]
async fn inner_handshake_transcript() {
    let (url, server) = serve(|mut p| async move {
        assert_eq!(p.target, GET_INNER);
        p.send(OPEN).await;
        p.send("40").await;
        p.send(r#"420["handshake"]"#).await;
        p.expect(HANDSHAKE_ACK).await;
        p.send(READY).await;
        p.expect(INPUT_1).await;
        p.send(r#"421["output",{"type":"output","data":{"text":"You said: hello 1"}}]"#)
            .await;
        p.expect("431[]").await;
        p.send(r#"422["finalPing",{"type":"regular"}]"#).await;
        p.expect("432[]").await;
        p.expect("41").await;
    })
    .await;
    let mut opts = options(&url, Eio::V3);
    opts.inner_handshake = true;
    let mut conn = connect(&opts).await;
    let turn = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!(turn.outcome, TurnOutcome::Ok);
    conn.close().await;
    server.await.expect("server script");
}

/// Each handshake stage that never completes ends in a Timeout naming it,
/// `connect_timeout` after the call (to tokio's 1 ms tick). The clock is paused while the
/// client connects and runs again while the server waits for it to close: a
/// paused clock jumps to the server's 5 s limit whenever the runtime finds
/// nothing to do, and under load the kernel may not have delivered the
/// client's FIN yet at that moment.
#[tokio::test]
async fn connect_timeouts_name_the_stage() {
    for (eio, stage) in [
        (Eio::V3, "open packet"),
        (Eio::V3, "namespace connect"),
        (Eio::V4, "namespace connect"),
        (Eio::V3, "endpoint-ready"),
    ] {
        tokio::time::pause();
        let (url, server) = serve(move |mut p| async move {
            match stage {
                "open packet" => {}
                "namespace connect" => {
                    p.send(OPEN).await;
                    if eio == Eio::V4 {
                        p.expect("40").await;
                    }
                }
                _ => {
                    p.send(OPEN).await;
                    p.send("40").await;
                }
            }
            p.wait_closed().await;
        })
        .await;
        let mut opts = options(&url, eio);
        opts.connect_timeout = Duration::from_millis(300);
        let started = Instant::now();
        match Connection::connect(&opts).await {
            Err(ConnectError::Timeout { stage: got, after }) => {
                assert_eq!(got, stage);
                assert_eq!(after, Duration::from_millis(300));
            }
            Err(e) => panic!("{stage}: expected a timeout, got {e}"),
            Ok(_) => panic!("{stage}: connected without endpoint-ready"),
        }
        // Paused mid-run, the clock is off tokio's 1 ms timer grid, so the
        // deadline fires on the next tick.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took <= Duration::from_millis(301),
            "{stage}: {took:?}"
        );
        tokio::time::resume();
        server.await.expect("server script");
    }
}

#[tokio::test]
async fn refused_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let opts = options(&format!("http://{addr}/emulator-url-token"), Eio::V3);
    match Connection::connect(&opts).await {
        Err(e @ ConnectError::Refused(_)) => assert_eq!(e.cause(), "refused"),
        Err(e) => panic!("expected Refused, got {e}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

#[tokio::test]
async fn http_status_on_upgrade() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("no client")
            .expect("accept");
        let reject = |_: &Request, _: Response| -> Result<Response, ErrorResponse> {
            let mut resp = ErrorResponse::new(Some("no such endpoint".into()));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            Err(resp)
        };
        let _ = tokio_tungstenite::accept_hdr_async(tcp, reject).await;
    });
    let opts = options(&format!("http://{addr}/emulator-url-token"), Eio::V3);
    match Connection::connect(&opts).await {
        Err(ConnectError::Http { status }) => assert_eq!(status, 404),
        Err(e) => panic!("expected Http, got {e}"),
        Ok(_) => panic!("connected despite 404"),
    }
    server.await.expect("server");
}

#[tokio::test]
async fn namespace_connect_error_is_reported() {
    let (url, server) = serve(|mut p| async move {
        p.send(OPEN).await;
        p.expect("40").await;
        p.send(r#"44{"message":"Not authorized"}"#).await;
        p.wait_closed().await;
    })
    .await;
    match Connection::connect(&options(&url, Eio::V4)).await {
        Err(ConnectError::Protocol(msg)) => assert!(msg.contains("Not authorized"), "{msg}"),
        Err(e) => panic!("expected Protocol, got {e}"),
        Ok(_) => panic!("connected despite 44"),
    }
    server.await.expect("server script");
}

#[tokio::test(start_paused = true)]
async fn turn_times_out_without_final_ping() {
    let (url, server) = serve(|mut p| async move {
        p.handshake(Eio::V3, OPEN).await;
        p.expect(INPUT_1).await;
        p.send(OUTPUT_1).await;
        p.expect("430[]").await;
        p.expect("41").await;
    })
    .await;
    let mut conn = connect(&options(&url, Eio::V3)).await;
    let started = Instant::now();
    let turn = conn
        .turn(&input("hello 1"), Duration::from_millis(300))
        .await;
    assert_eq!(turn.outcome, TurnOutcome::Timeout);
    assert_eq!(turn.outputs.len(), 1, "outputs so far are kept");
    assert!(turn.finished_at.is_none());
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    conn.close().await;
    server.await.expect("server script");
}

/// Ways the server can end the session in the middle of a turn.
#[tokio::test]
async fn server_ending_mid_turn_is_disconnected() {
    for how in [
        "close frame",
        "drop",
        "41",
        "engine close",
        "garbage",
        "huge",
    ] {
        let (url, server) = serve(move |mut p| async move {
            p.handshake(Eio::V3, OPEN).await;
            p.expect(INPUT_1).await;
            p.send(OUTPUT_1).await;
            p.expect("430[]").await;
            match how {
                "close frame" => {
                    let _ = p.ws.close(None).await;
                }
                "drop" => drop(p),
                "41" => p.send("41").await,
                "engine close" => p.send("1").await,
                "garbage" => p.send("42[\"output\",{").await,
                _ => {
                    let huge = format!("42[\"output\",\"{}\"]", "x".repeat(5 << 20));
                    // The client may reset the connection while this is written.
                    let _ = p.ws.send(Message::text(huge)).await;
                }
            }
        })
        .await;
        let mut conn = connect(&options(&url, Eio::V3)).await;
        let turn = conn.turn(&input("hello 1"), WAIT).await;
        let lost = match &turn.outcome {
            TurnOutcome::Disconnected(lost) => lost.clone(),
            other => panic!("{how}: expected Disconnected, got {other:?}"),
        };
        assert_eq!(turn.outputs.len(), 1, "{how}");
        let want = match how {
            "41" => DisconnectKind::NamespaceDisconnect,
            "engine close" => DisconnectKind::EngineClose,
            "garbage" => DisconnectKind::ProtocolError,
            "huge" => DisconnectKind::FrameTooLarge,
            _ => DisconnectKind::TransportClosed,
        };
        assert_eq!(lost.kind, want, "{how}: {lost}");
        assert_eq!(conn.disconnect_cause(), Some(&lost));
        assert_eq!(conn.idle(Duration::from_millis(10)).await, Err(lost));
        conn.close().await;
        server.await.expect("server script");
    }
}

/// Unknown events are counted and acked; an error output makes the turn a
/// BotError; outputs outside a turn are unsolicited; exception ends a turn.
#[tokio::test(start_paused = true)]
async fn unknown_events_error_outputs_and_unsolicited() {
    let (url, server) = serve(|mut p| async move {
        p.handshake(Eio::V3, OPEN).await;
        p.expect(INPUT_1).await;
        p.send(r#"42["triggeredElement",{"id":"x"}]"#).await;
        p.send(r#"424["switchedFlow",{}]"#).await;
        p.expect("434[]").await;
        p.send(r#"425["output",{"type":"error","data":{"error":{"message":"Flow failed"}}}]"#)
            .await;
        p.expect("435[]").await;
        p.send(r#"42["finalPing",{"type":"regular"}]"#).await;
        p.send(r#"426["output",{"type":"output","data":{"text":"late"}}]"#)
            .await;
        p.expect("436[]").await;
        // Second turn: exception.
        p.expect(INPUT_1).await;
        p.send(r#"42["exception",{"error":{"message":"Invalid URL token"}}]"#)
            .await;
        p.expect("41").await;
    })
    .await;
    let mut conn = connect(&options(&url, Eio::V3)).await;
    let turn = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!(turn.outcome, TurnOutcome::BotError("Flow failed".into()));
    assert!(turn.finished_at.is_some());
    assert!(turn.outputs.is_empty());
    let c = conn.take_counters();
    assert_eq!(c.unknown_events, 2);
    assert_eq!(c.acks_sent, 2);
    conn.idle(Duration::from_millis(300)).await.expect("idle");
    let c = conn.take_counters();
    assert_eq!(c.unsolicited_outputs, 1);
    assert_eq!(c.acks_sent, 1);
    let turn = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!(
        turn.outcome,
        TurnOutcome::BotError("Invalid URL token".into())
    );
    conn.close().await;
    server.await.expect("server script");
}

/// An `output` and its `finalPing` sent in one write: the client reads both
/// before it writes their acks (queued, then flushed together), and the acks
/// leave when the turn ends, in order, without waiting for the next send.
#[tokio::test]
async fn acks_of_events_read_together_leave_when_the_turn_ends() {
    let (acked_tx, acked_rx) = tokio::sync::oneshot::channel();
    let (url, server) = serve(|mut p| async move {
        p.handshake(Eio::V4, OPEN).await;
        p.expect(INPUT_1).await;
        for frame in [TYPING_ON, OUTPUT_1, TYPING_OFF, FINAL_1] {
            p.ws.feed(Message::text(frame)).await.expect("feed");
        }
        p.ws.flush().await.expect("flush");
        p.expect("430[]").await;
        p.expect("431[]").await;
        // The client sends nothing more until it hears that both arrived.
        acked_tx.send(()).expect("test waits");
        p.expect("41").await;
        p.received
    })
    .await;
    let mut conn = connect(&options(&url, Eio::V4)).await;
    let t = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!((t.outcome, t.outputs.len()), (TurnOutcome::Ok, 1));
    assert_eq!(conn.take_counters().acks_sent, 2);
    tokio::time::timeout(WAIT, acked_rx)
        .await
        .expect("the acks were not written when the turn ended")
        .expect("server script");
    conn.close().await;
    let received = server.await.expect("server script");
    assert_eq!(received, ["40", INPUT_1, "430[]", "431[]", "41"]);
}

/// A finalPing of type error is a BotError; legacy output finalPing ends a turn.
#[tokio::test]
async fn final_ping_variants() {
    let (url, server) = serve(|mut p| async move {
        p.handshake(Eio::V4, OPEN).await;
        p.expect(INPUT_1).await;
        p.send(r#"42["finalPing",{"type":"error","error":{"message":"stopped"}}]"#)
            .await;
        p.expect(INPUT_1).await;
        p.send(OUTPUT_1).await;
        p.expect("430[]").await;
        p.send(r#"42["output",{"type":"finalPing"}]"#).await;
        p.expect(INPUT_1).await;
        p.send(r#"42["finalPing",{"type":"cognigyStopFlow"}]"#)
            .await;
        p.expect("41").await;
    })
    .await;
    let mut conn = connect(&options(&url, Eio::V4)).await;
    let t = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!(t.outcome, TurnOutcome::BotError("stopped".into()));
    let t = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!((t.outcome, t.outputs.len()), (TurnOutcome::Ok, 1));
    let t = conn.turn(&input("hello 1"), WAIT).await;
    assert_eq!(t.outcome, TurnOutcome::Ok);
    conn.close().await;
    server.await.expect("server script");
}

/// Interop with a real Socket.IO server (socketioxide, EIO3 and EIO4): two
/// turns, acks the server awaits, heartbeats in both directions, clean close.
/// On a paused clock the turns take no time, so the idle 350 ms hold exactly
/// three heartbeats of the 100 ms pingInterval (EIO3: the client pings;
/// EIO4: it answers the server's pings).
#[tokio::test(start_paused = true)]
async fn socketioxide_interop_eio3_and_eio4() {
    use serde_json::Value;
    use socketioxide::extract::{Data, SocketRef};
    use socketioxide::SocketIo;
    use tokio::sync::mpsc;

    for eio in [Eio::V3, Eio::V4] {
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<String>();
        let (layer, io) = SocketIo::builder()
            .ping_interval(Duration::from_millis(100))
            .ping_timeout(Duration::from_millis(2000))
            .ack_timeout(Duration::from_secs(2))
            .build_layer();
        io.ns("/", move |s: SocketRef| {
            let ack_tx = ack_tx.clone();
            s.on(
                "processInput",
                move |s: SocketRef, Data(input): Data<Value>| async move {
                    let _ = s.emit("typingStatus", &json!({"status":"typingOn"}));
                    let text = format!("You said: {}", input["text"].as_str().unwrap_or(""));
                    let out = json!({"type":"output","data":{"text":text}});
                    let acks = [
                        s.emit_with_ack::<_, Value>("output", &out),
                        s.emit_with_ack::<_, Value>("finalPing", &json!({"type":"regular"})),
                    ];
                    for ack in acks {
                        let result = match ack {
                            Ok(stream) => match stream.await {
                                Ok(_) => "ok".to_owned(),
                                // `43<id>[]` (what the official client sends) has no
                                // first element to decode: received, not timed out.
                                Err(socketioxide::AckError::Decode(_)) => "ok".to_owned(),
                                Err(e) => format!("ack error: {e:?}"),
                            },
                            Err(e) => format!("emit error: {e:?}"),
                        };
                        let _ = ack_tx.send(result);
                    }
                },
            );
            let _ = s.emit("endpoint-ready", &());
            async {}
        });
        let app = axum::Router::new().layer(layer);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let url = format!("http://{addr}/emulator-url-token");
        let mut conn = connect(&options(&url, eio)).await;
        for text in ["hello 1", "hello 2"] {
            let turn = conn.turn(&input(text), WAIT).await;
            assert_eq!(turn.outcome, TurnOutcome::Ok, "{eio:?}");
            assert_eq!(turn.outputs.len(), 1);
            assert_eq!(
                turn.outputs[0].text.as_deref(),
                Some(format!("You said: {text}").as_str())
            );
            for _ in 0..2 {
                let ack = tokio::time::timeout(WAIT, ack_rx.recv())
                    .await
                    .expect("server saw no ack");
                assert_eq!(ack.as_deref(), Some("ok"), "{eio:?}");
            }
        }
        let turns = conn.take_counters();
        assert_eq!(turns.acks_sent, 4);
        assert_eq!(turns.unknown_events, 0);
        // socketioxide's EIO4 heartbeat pings once at once (answered during
        // connect); the EIO3 client's first ping is due after pingInterval.
        let at_start = if eio == Eio::V4 { 1 } else { 0 };
        assert_eq!(turns.heartbeats, at_start, "{eio:?}");
        conn.idle(Duration::from_millis(350)).await.expect("idle");
        let idle = conn.take_counters();
        assert_eq!(idle.heartbeats, 3, "{eio:?}");
        assert_eq!(idle.unknown_events, 0);
        conn.close().await;
        server.abort();
    }
}
