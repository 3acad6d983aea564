//! Fault modes of the embedded emulator (`faults:`, `emulator::faults`)
//! against our own Socket.IO client (`protocol::socketio::Connection`), both on
//! 127.0.0.1 with an ephemeral port. For each fault at probability 1 the test
//! asserts the exact outcome and cause the client reports and the emulator's
//! count of the fault; a probability test checks that outcomes add up and
//! that the seed makes them reproducible. Every wait is bounded; nothing sleeps.

use finalping::emulator::{self, EmulatorConfig, EmulatorStats, RunningEmulator};
use finalping::protocol::socketio::{
    ConnectError, ConnectOptions, Connection, DisconnectKind, Eio, ProcessInput, TurnOutcome,
};
use std::net::SocketAddr;
use std::time::Duration;

/// Turn timeout and the upper bound for anything a test waits for.
const WAIT: Duration = Duration::from_secs(5);

/// Loads `faults_yaml` (the body of the `faults:` block, indented) on top of
/// fast defaults: 1 ms replies, 2 outputs, short heartbeats.
fn config(faults_yaml: &str) -> EmulatorConfig {
    let yaml = format!(
        "delay: 1ms\noutputs: 2\nping_interval: 100ms\nping_timeout: 100ms\nseed: 7\nfaults:\n{faults_yaml}"
    );
    EmulatorConfig::from_yaml_str(&yaml).expect("fault config loads")
}

async fn start(config: EmulatorConfig) -> RunningEmulator {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    emulator::start(config, addr)
        .await
        .expect("emulator starts")
}

fn options(emu: &RunningEmulator, eio: Eio) -> ConnectOptions {
    ConnectOptions {
        endpoint_url: format!("{}/emulator-url-token", emu.url()),
        url_token: "emulator-url-token".into(),
        user_id: "user@example.com".into(),
        session_id: "fault-session".into(),
        eio,
        emit_with_ack: true,
        test_mode: false,
        inner_handshake: false,
        connect_timeout: Duration::from_secs(2),
        output_limits: Default::default(),
    }
}

fn input(text: &str) -> ProcessInput<'_> {
    ProcessInput {
        text: text.into(),
        ..ProcessInput::default()
    }
}

async fn connect(emu: &RunningEmulator, eio: Eio) -> Connection {
    Connection::connect(&options(emu, eio))
        .await
        .unwrap_or_else(|e| panic!("{eio:?}: connect failed: {e}"))
}

fn stats(emu: &RunningEmulator) -> EmulatorStats {
    emu.stats()
}

#[tokio::test]
async fn refuse_is_an_http_error() {
    let emu = start(config("  refuse: 1\n")).await;
    for eio in [Eio::V3, Eio::V4] {
        let err = match Connection::connect(&options(&emu, eio)).await {
            Err(e) => e,
            Ok(_) => panic!("{eio:?}: connect must be refused"),
        };
        assert!(
            matches!(err, ConnectError::Http { status: 503 }),
            "{eio:?}: {err}"
        );
        assert_eq!(err.cause(), "http_5xx");
    }
    let s = stats(&emu);
    assert_eq!(s.faults.refuse, 2);
    assert_eq!(s.faults.failures(), 2);
    assert_eq!(s.sessions, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn no_endpoint_ready_times_out_the_connect() {
    let emu = start(config("  no_endpoint_ready: 1\n")).await;
    for eio in [Eio::V3, Eio::V4] {
        let mut opts = options(&emu, eio);
        opts.connect_timeout = Duration::from_millis(400);
        // The emulator never sends endpoint-ready: only the client's own
        // connect timeout can end this (WAIT guards against a hang).
        let err = match tokio::time::timeout(WAIT, Connection::connect(&opts)).await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => panic!("{eio:?}: connect must time out"),
            Err(_) => panic!("{eio:?}: connect_timeout did not end the connect"),
        };
        assert!(
            matches!(
                err,
                ConnectError::Timeout {
                    stage: "endpoint-ready",
                    ..
                }
            ),
            "{eio:?}: {err}"
        );
        assert_eq!(err.cause(), "connect_timeout");
    }
    let s = stats(&emu);
    assert_eq!(s.faults.no_endpoint_ready, 2);
    assert_eq!(s.sessions, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn no_final_ping_times_out_the_turn() {
    let emu = start(config("  no_final_ping: 1\n")).await;
    let mut conn = connect(&emu, Eio::V3).await;
    let turn = conn.turn(&input("hi"), Duration::from_millis(400)).await;
    assert_eq!(turn.outcome, TurnOutcome::Timeout);
    assert_eq!(turn.outputs.len(), 2, "outputs still arrive");
    assert!(turn.finished_at.is_none());
    let s = stats(&emu);
    assert_eq!(s.faults.no_final_ping, 1);
    assert_eq!((s.outputs, s.turns), (2, 0));
    conn.close().await;
    emu.shutdown().await;
}

/// Runs one turn on a new connection and returns how the connection was
/// lost; the output before the fault must have arrived.
async fn lost_in_turn(emu: &RunningEmulator, eio: Eio) -> DisconnectKind {
    let mut conn = connect(emu, eio).await;
    // Disconnected (not Timeout): the fault ended the turn, not its WAIT timeout.
    let turn = conn.turn(&input("hi"), WAIT).await;
    let lost = match turn.outcome {
        TurnOutcome::Disconnected(lost) => lost,
        other => panic!("{eio:?}: expected Disconnected, got {other:?}"),
    };
    assert_eq!(turn.outputs.len(), 1, "{eio:?}: {lost}");
    // The connection stays dead and says why, without hanging.
    assert_eq!(conn.disconnect_cause(), Some(&lost));
    assert_eq!(
        conn.idle(Duration::from_millis(50)).await.err(),
        Some(lost.clone())
    );
    conn.close().await;
    lost.kind
}

#[tokio::test]
async fn disconnect_mid_turn_is_a_namespace_disconnect() {
    let emu = start(config("  disconnect_mid_turn: 1\n")).await;
    for eio in [Eio::V3, Eio::V4] {
        let kind = lost_in_turn(&emu, eio).await;
        assert_eq!(kind, DisconnectKind::NamespaceDisconnect, "{eio:?}");
        assert_eq!(kind.cause(), "namespace_disconnect");
        assert_eq!(kind.turn_cause(), "disconnected_namespace_disconnect");
    }
    assert_eq!(stats(&emu).faults.disconnect_mid_turn, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn close_mid_turn_is_transport_closed() {
    let emu = start(config("  close_mid_turn: 1\n")).await;
    for eio in [Eio::V3, Eio::V4] {
        let kind = lost_in_turn(&emu, eio).await;
        assert_eq!(kind, DisconnectKind::TransportClosed, "{eio:?}");
        assert_eq!(kind.cause(), "transport_closed");
    }
    let s = stats(&emu);
    assert_eq!(s.faults.close_mid_turn, 2);
    assert_eq!(s.faults.failures(), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn garbage_and_truncated_frames_are_protocol_errors() {
    for fault in ["garbage_frame", "truncated_frame"] {
        let emu = start(config(&format!("  {fault}: 1\n"))).await;
        for eio in [Eio::V3, Eio::V4] {
            let kind = lost_in_turn(&emu, eio).await;
            assert_eq!(kind, DisconnectKind::ProtocolError, "{fault} {eio:?}");
            assert_eq!(kind.cause(), "protocol_error");
        }
        let f = stats(&emu).faults;
        let fired = if fault == "garbage_frame" {
            f.garbage_frame
        } else {
            f.truncated_frame
        };
        assert_eq!(fired, 2, "{fault}");
        assert_eq!(f.failures(), 2, "{fault}");
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn oversized_frame_is_frame_too_large() {
    let emu = start(config("  oversized_frame: 1\n")).await;
    for eio in [Eio::V3, Eio::V4] {
        let kind = lost_in_turn(&emu, eio).await;
        assert_eq!(kind, DisconnectKind::FrameTooLarge, "{eio:?}");
        assert_eq!(kind.cause(), "frame_too_large");
    }
    assert_eq!(stats(&emu).faults.oversized_frame, 2);
    emu.shutdown().await;
}

/// The raw server answers turns normally; only the heartbeat is missing, and
/// the client notices within the heartbeat limits (100 ms + 100 ms here).
#[tokio::test]
async fn no_pong_is_a_heartbeat_timeout() {
    let emu = start(config("  no_pong: 1\n")).await;
    for eio in [Eio::V3, Eio::V4] {
        let mut conn = connect(&emu, eio).await;
        let turn = conn.turn(&input("hi"), WAIT).await;
        assert_eq!(turn.outcome, TurnOutcome::Ok, "{eio:?}: raw turn");
        assert_eq!(turn.outputs.len(), 2, "{eio:?}");
        assert!(turn
            .outputs
            .iter()
            .all(|o| o.text.as_deref() == Some("You said: hi")));
        // An error, not Ok after WAIT: the missing pongs were noticed first.
        let lost = conn
            .idle(WAIT)
            .await
            .expect_err("idle must fail without heartbeats");
        assert_eq!(
            lost.kind,
            DisconnectKind::HeartbeatTimeout,
            "{eio:?}: {lost}"
        );
        assert_eq!(lost.cause(), "heartbeat_timeout");
        let turn = conn.turn(&input("again"), WAIT).await;
        assert_eq!(turn.outcome, TurnOutcome::Disconnected(lost), "{eio:?}");
        conn.close().await;
    }
    let s = stats(&emu);
    assert_eq!(s.faults.no_pong, 2);
    assert_eq!(s.turns, 2);
    emu.shutdown().await;
}

/// The raw server (here: EIO3 with `no_pong`, heartbeats far apart) plays the
/// same turn plan as socketioxide: it once answered every turn plainly, and
/// now honours the context version of an inject, `degrade` in the injected
/// delay, and the per-turn fault `output_error`.
#[tokio::test]
async fn raw_server_plays_the_whole_turn_plan() {
    let yaml = "delay: 1ms\noutputs: 2\nping_interval: 60s\nping_timeout: 60s\nseed: 7\n\
                degrade: {above_sessions: 0, per_session: 7ms}\n\
                faults: {no_pong: 1, output_error: 0.5}\n";
    let emu = start(EmulatorConfig::from_yaml_str(yaml).expect("config")).await;
    let mut conn = connect(&emu, Eio::V3).await;
    let injected = reqwest::Client::new()
        .post(format!(
            "{}/new/v2.0/sessions/fault-session/context/inject",
            emu.url()
        ))
        .header("X-API-Key", "finalping-api-key")
        .json(&serde_json::json!({"userId": "user@example.com", "context": {"tier": "gold"}}))
        .send()
        .await
        .expect("inject");
    assert_eq!(injected.status().as_u16(), 200);
    let version = emu.context_of("fault-session").expect("context").0;
    let (mut ok, mut bot_errors) = (0, 0);
    for i in 0..12 {
        let turn = conn.turn(&input(&format!("t{i}")), WAIT).await;
        match &turn.outcome {
            TurnOutcome::Ok => {
                ok += 1;
                assert_eq!(turn.outputs.len(), 2, "{turn:?}");
                assert!(
                    turn.outputs
                        .iter()
                        .all(|o| o.context_version == Some(version)),
                    "{:?}",
                    turn.outputs
                );
            }
            TurnOutcome::BotError(message) => {
                bot_errors += 1;
                assert_eq!(message, "emulated bot error (faults.output_error)");
            }
            other => panic!("turn {i}: {other:?}"),
        }
    }
    conn.close().await;
    let s = stats(&emu);
    // The seeded draws of this connection give both outcomes, and the
    // emulator counted exactly the faults the client saw.
    assert!(ok > 0 && bot_errors > 0, "{ok} ok, {bot_errors} bot errors");
    assert_eq!(s.faults.output_error, bot_errors);
    assert_eq!(s.turns, 12);
    assert_eq!(s.faults.no_pong, 0, "the client never pinged");
    // Every reply delay was 1 ms plus 7 ms for the one session over the mark.
    let delays = emu.injected_delays();
    assert_eq!(delays.len(), 12);
    assert!(delays.min() >= 8_000, "min {} µs", delays.min());
    emu.shutdown().await;
}

/// `ack_wait` on the raw server (EIO4 with `no_pong`; it once ignored the
/// setting): each output waits for the client's ack, and every ack arrives.
#[tokio::test]
async fn raw_server_waits_for_acks() {
    let yaml = "delay: 1ms\noutputs: 3\nping_interval: 60s\nping_timeout: 60s\n\
                faults: {no_pong: 1, ack_wait: {delay: 0ms}}\n";
    let emu = start(EmulatorConfig::from_yaml_str(yaml).expect("config")).await;
    let mut conn = connect(&emu, Eio::V4).await;
    for text in ["one", "two"] {
        let turn = conn.turn(&input(text), WAIT).await;
        assert_eq!(turn.outcome, TurnOutcome::Ok, "{turn:?}");
        assert_eq!(turn.outputs.len(), 3);
    }
    conn.close().await;
    let s = stats(&emu);
    assert_eq!(s.faults.ack_wait, 6, "{:?}", s.faults);
    assert_eq!(s.acks_missed, 0);
    // Three outputs and a finalPing per turn asked for an ack.
    assert_eq!(s.acks_requested, 8);
    emu.shutdown().await;
}

/// A turn waiting for a slow bot notices the missing heartbeat during the turn.
#[tokio::test]
async fn no_pong_ends_a_long_turn() {
    let mut c = config("  no_pong: 1\n");
    c.delay = "3s".parse().expect("delay");
    let emu = start(c).await;
    for eio in [Eio::V3, Eio::V4] {
        let mut conn = connect(&emu, eio).await;
        let turn = conn.turn(&input("hi"), WAIT).await;
        match &turn.outcome {
            TurnOutcome::Disconnected(lost) => {
                assert_eq!(lost.kind, DisconnectKind::HeartbeatTimeout, "{eio:?}");
            }
            other => panic!("{eio:?}: expected a heartbeat timeout, got {other:?}"),
        }
        // The bot answers after 3 s: no output means the heartbeat ended
        // the turn before the bot did.
        assert!(turn.outputs.is_empty());
        conn.close().await;
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn output_error_is_a_bot_error() {
    let emu = start(config("  output_error: 1\n")).await;
    let mut conn = connect(&emu, Eio::V4).await;
    for i in 0..2 {
        let turn = conn.turn(&input("hi"), WAIT).await;
        assert_eq!(
            turn.outcome,
            TurnOutcome::BotError("emulated bot error (faults.output_error)".into()),
            "turn {i}"
        );
        assert!(turn.finished_at.is_some(), "finalPing ends the turn");
        assert!(turn.outputs.is_empty());
    }
    let s = stats(&emu);
    assert_eq!(s.faults.output_error, 2);
    assert_eq!(s.turns, 2);
    conn.close().await;
    emu.shutdown().await;
}

/// Outputs wait for the client's ack plus the delay: turns succeed, slower.
#[tokio::test]
async fn ack_wait_slows_turns_down() {
    let mut c = config("  ack_wait: {delay: 100ms}\n");
    c.outputs = 3;
    let emu = start(c).await;
    let mut conn = connect(&emu, Eio::V3).await;
    let turn = conn.turn(&input("hi"), WAIT).await;
    assert_eq!(turn.outcome, TurnOutcome::Ok);
    assert_eq!(turn.outputs.len(), 3);
    let took = turn
        .finished_at
        .map(|t| t.saturating_duration_since(turn.sent_at))
        .unwrap_or_default();
    assert!(took >= Duration::from_millis(300), "turn took {took:?}");
    let gap = turn.outputs[1]
        .at
        .saturating_duration_since(turn.outputs[0].at);
    assert!(gap >= Duration::from_millis(100), "gap {gap:?}");
    let s = stats(&emu);
    assert_eq!(s.faults.ack_wait, 3);
    assert!(s.acks_received >= 3);
    assert_eq!(s.faults.failures(), 0);
    conn.close().await;

    // Without emitWithAck there is nothing to wait for.
    let mut opts = options(&emu, Eio::V3);
    opts.emit_with_ack = false;
    let mut conn = Connection::connect(&opts).await.expect("connect");
    let turn = conn.turn(&input("hi"), WAIT).await;
    assert_eq!(turn.outcome, TurnOutcome::Ok);
    assert_eq!(stats(&emu).faults.ack_wait, 3);
    conn.close().await;
    emu.shutdown().await;
}

/// Outcomes of `turns` turns on one connection with `output_error: 0.5`.
async fn half_errors(seed: u64, turns: usize) -> (Vec<bool>, EmulatorStats) {
    let mut c = config("  output_error: 0.5\n");
    c.seed = seed;
    c.outputs = 1;
    c.delay = "0ms".parse().expect("delay");
    let emu = start(c).await;
    let mut conn = connect(&emu, Eio::V3).await;
    let mut errors = Vec::with_capacity(turns);
    for i in 0..turns {
        let turn = conn.turn(&input("hi"), WAIT).await;
        match turn.outcome {
            TurnOutcome::Ok => errors.push(false),
            TurnOutcome::BotError(_) => errors.push(true),
            other => panic!("turn {i}: {other:?}"),
        }
    }
    conn.close().await;
    let s = stats(&emu);
    emu.shutdown().await;
    (errors, s)
}

#[tokio::test]
async fn per_turn_probability_is_seeded_and_accounted() {
    let (errors, s) = half_errors(42, 200).await;
    let fired = errors.iter().filter(|e| **e).count() as u64;
    // Deterministic: the one connection (index 0) gets its turn RNG from the
    // seed alone, and each turn draws its fault from it in turn order (only
    // `output_error` is non-zero, so one draw per turn); the second run below
    // shows the sequence repeats. Pinned so that a change to the seeding or
    // the draw order shows up here; for a fair coin, near 100 of 200.
    assert_eq!(fired, 87, "errors of 200 with seed 42");
    assert_eq!(s.faults.output_error, fired);
    assert_eq!(s.turns, 200, "every turn got a finalPing");
    assert_eq!(s.outputs, 200 - fired, "normal turns had their output");
    let (again, _) = half_errors(42, 200).await;
    assert_eq!(errors, again, "same seed, same faults");
    let (other, _) = half_errors(43, 200).await;
    assert_ne!(errors, other, "another seed, other faults");
}

async fn refusals(seed: u64, connections: usize) -> (Vec<bool>, EmulatorStats) {
    let mut c = config("  refuse: 0.5\n");
    c.seed = seed;
    let emu = start(c).await;
    let mut refused = Vec::with_capacity(connections);
    for i in 0..connections {
        match Connection::connect(&options(&emu, Eio::V4)).await {
            Ok(conn) => {
                refused.push(false);
                conn.close().await;
            }
            Err(ConnectError::Http { status: 503 }) => refused.push(true),
            Err(e) => panic!("connection {i}: {e}"),
        }
    }
    let s = stats(&emu);
    emu.shutdown().await;
    (refused, s)
}

#[tokio::test]
async fn per_connection_probability_is_seeded_and_accounted() {
    let (refused, s) = refusals(5, 60).await;
    let n = refused.iter().filter(|r| **r).count() as u64;
    // Deterministic: connection i (connected one after another) draws from
    // an RNG seeded by seed 5 and i; the second run below shows it repeats.
    // Pinned like `per_turn_probability_is_seeded_and_accounted`.
    assert_eq!(n, 28, "of 60 refused with seed 5");
    assert_eq!(s.faults.refuse, n);
    assert_eq!(s.sessions, 60 - n);
    let (again, _) = refusals(5, 60).await;
    assert_eq!(refused, again);
}

/// The same block works from a file (`finalping serve --config`).
#[tokio::test]
async fn faults_load_from_a_config_file() {
    let dir = std::env::temp_dir().join(format!("finalping-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("emulator.yaml");
    std::fs::write(
        &path,
        "delay: 1ms\nfaults:\n  output_error: 1\n  ack_wait: null\n",
    )
    .expect("write");
    let c = EmulatorConfig::from_yaml_file(&path).expect("loads");
    assert_eq!(c.faults.output_error.get(), 1.0);
    std::fs::write(&path, "faults:\n  no_pong: 2\n").expect("write");
    let e = EmulatorConfig::from_yaml_file(&path)
        .expect_err("2 is no probability")
        .to_string();
    assert!(
        e.contains("emulator.yaml") && e.contains("between 0 and 1"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
