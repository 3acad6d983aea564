//! The fault matrix (issue #7): one short, real run of the `finalping` binary
//! per emulator fault mode — chat turns and context updates with audit and a
//! webhook — asserting for every mode that the run stops on time, that every
//! turn sent and every update sent is accounted for exactly once, that the audit
//! log holds one record per variable of every update (marked successful exactly
//! for the successful updates), that the fault was really injected
//! (the emulator's counters), and that the exit code is the documented one.
//! README "Fault matrix" lists the same cases and their results.

use crate::common;

use common::*;
use finalping::emulator::{self, EmulatorConfig, EmulatorStats, RuntimeFaultStats};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The scenario's run time and grace; by its own clock (`duration_s`) a run
/// must end within their sum plus `HARD_STOP`.
const DURATION: Duration = Duration::from_secs(2);
/// Longer than the turn timeout (1 s), so a turn sent just before the
/// deadline always ends on its own, however slow the machine.
const GRACE: Duration = Duration::from_secs(2);
/// For the hard stop at duration + grace to reach every VU and the engine to
/// join them, on a starved machine.
const HARD_STOP: Duration = Duration::from_secs(1);
/// Hard limit: a run that exceeds it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(60);
/// The emulator's default client secret, passed via the environment.
const CLIENT_SECRET: &str = "finalping-secret";
/// Variables per update (audit records per successful update).
const VARS: u64 = 2;

/// One row of the matrix.
struct Case {
    name: &'static str,
    /// The emulator's config (YAML), on top of short delays and heartbeats.
    emulator: &'static str,
    /// Whether the scenario also updates context (runtime WebSocket + webhook).
    updates: bool,
    /// The documented exit code(s) of this case.
    exits: &'static [i32],
    /// Further checks on summary.json and the emulator's counters.
    check: Check,
}

type Check = Box<dyn Fn(&Value, &Injected)>;

/// What the emulator counted during a run.
struct Injected {
    stats: EmulatorStats,
    runtime: RuntimeFaultStats,
}

/// Base emulator settings every case starts from.
/// Heartbeats keep their 25 s / 20 s defaults: a starved CI machine cannot
/// make them lapse in a 2 s run (only the `no_pong` case shortens them).
const EMULATOR_BASE: &str = "delay: 5ms\n";

fn scenario(case: &Case, emu: &emulator::RunningEmulator) -> String {
    let update = if case.updates {
        "  - update_context: {scope: session, vars: {a: \"{{iteration}}\", b: 2}}\n"
    } else {
        ""
    };
    let runtime = if case.updates {
        format!(
            "runtime:\n  url: \"{}\"\n  reply_timeout: 1s\n  connect_timeout: 1s\n  reconnect: {{max_attempts: 2, backoff: 100ms}}\n  \
             oauth: {{token_url: \"{}\", client_id: finalping, client_secret: \"${{env:FINALPING_TEST_CLIENT_SECRET}}\"}}\n\
             webhook: {{url: \"{}\", timeout: 500ms, drain: 1s}}\n",
            emu.runtime_url(),
            emu.token_url(),
            emu.webhook_url()
        )
    } else {
        String::new()
    };
    format!(
        "name: fault-{name}\n\
         target:\n  url: \"{url}\"\n  connect_timeout: 1s\n  reconnect: {{interval: 100ms, max_attempts: 2}}\n\
         {runtime}\
         load: {{vus: 4, duration: {dur}ms, grace: {grace}ms}}\n\
         steps:\n  - send: {{text: hi, timeout: 1s}}\n{update}  - think: 50ms\n",
        name = case.name,
        url = emu.url(),
        dur = DURATION.as_millis(),
        grace = GRACE.as_millis(),
    )
}

/// Every turn and update sent ended as exactly one outcome.
fn assert_accounted(s: &Value) {
    let c = |n: &str| counter(s, n);
    assert_eq!(
        c("turns_sent"),
        c("turns_ok")
            + c("turns_timeout")
            + c("turns_error")
            + c("turns_disconnected")
            + c("turns_interrupted"),
        "turns sent ≠ turns accounted: {}",
        s["counters"]
    );
    assert_eq!(
        c("updates_sent"),
        c("updates_ok")
            + c("updates_rejected")
            + c("updates_invalid")
            + c("updates_timeout")
            + c("updates_disconnected")
            + c("updates_interrupted"),
        "updates sent ≠ updates accounted: {}",
        s["counters"]
    );
    assert_eq!(
        c("audit_records"),
        VARS * c("updates_sent"),
        "audit records ≠ variables × updates: {}",
        s["counters"]
    );
}

/// Runs one case: its emulator in this process, the real binary against it.
async fn run_case(case: Case) {
    let yaml = format!("{EMULATOR_BASE}{}", case.emulator);
    let config = EmulatorConfig::from_yaml_str(&yaml)
        .unwrap_or_else(|e| panic!("{}: emulator config: {e}", case.name));
    let emu = emulator::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    let w = Workdir::new();
    let path = w.file("s.yaml", &scenario(&case, &emu));
    let out_dir = w.path("r");
    let args: Vec<String> = vec![
        "run".into(),
        path.to_string_lossy().into_owned(),
        "--out".into(),
        out_dir.to_string_lossy().into_owned(),
        "--quiet".into(),
        "--output-format".into(),
        "markdown".into(),
    ];
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_finalping_env(
            &args,
            &[("FINALPING_TEST_CLIENT_SECRET", CLIENT_SECRET)],
            LIMIT,
        )
    })
    .await
    .expect("join");
    let took = started.elapsed();
    let name = case.name;
    assert!(!text(&out).contains("panicked"), "{name}: {}", text(&out));
    let code = out.status.code().unwrap_or(-1);
    assert!(
        case.exits.contains(&code),
        "{name}: exit code {code}, expected one of {:?}\n{}",
        case.exits,
        text(&out)
    );
    // Fault paths produce error messages: none may carry the client secret.
    assert!(
        !text(&out).contains(CLIENT_SECRET),
        "{name}: secret in output"
    );
    for entry in std::fs::read_dir(&out_dir).expect("report folder") {
        let path = entry.expect("dir entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CLIENT_SECRET),
            "{name}: secret in {}",
            path.display()
        );
    }
    let s = read_json(&out_dir.join("summary.json"));
    let ran = s["duration_s"].as_f64().expect("duration_s");
    assert!(
        ran <= (DURATION + GRACE + HARD_STOP).as_secs_f64(),
        "{name}: the run took {ran} s, more than duration + grace + {HARD_STOP:?}"
    );
    // One line per case (shown with --nocapture; the README's matrix table).
    println!(
        "| {name} | {code} | {:.1} s | {} / {} | {} / {} | {} |",
        took.as_secs_f64(),
        counter(&s, "turns_ok"),
        counter(&s, "turns_sent"),
        counter(&s, "updates_ok"),
        counter(&s, "updates_sent"),
        s["errors"]
            .as_object()
            .map(|m| m
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    assert_accounted(&s);
    if case.updates {
        // The file holds every record; those marked successful are exactly
        // the variables of the successful updates.
        let audit = std::fs::read_to_string(out_dir.join("audit.jsonl")).unwrap_or_default();
        let records: Vec<Value> = audit
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect();
        assert_eq!(
            records.len() as u64,
            counter(&s, "audit_records"),
            "{name}: audit.jsonl lines"
        );
        let successful = records.iter().filter(|r| r["success"] == true).count() as u64;
        assert_eq!(
            successful,
            VARS * counter(&s, "updates_ok"),
            "{name}: successful records"
        );
    }
    let injected = Injected {
        stats: emu.stats(),
        runtime: emu.runtime_fault_stats(),
    };
    (case.check)(&s, &injected);
    emu.shutdown().await;
}

fn cause(s: &Value, name: &str) -> u64 {
    s["errors"][name].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn no_fault_passes() {
    run_case(Case {
        name: "none",
        emulator: "",
        updates: true,
        exits: &[0],
        check: Box::new(|s, _| {
            assert!(counter(s, "turns_ok") > 0);
            assert!(counter(s, "updates_ok") > 0);
            assert_eq!(counter(s, "reconnects"), 0);
        }),
    })
    .await;
}

#[tokio::test]
async fn stalled_bot_times_turns_out_and_recovers() {
    run_case(Case {
        name: "stall",
        emulator: "stall: {at: 0ms, for: 1500ms}\n",
        updates: true,
        exits: &[1],
        check: Box::new(|s, _| {
            // Every VU's first turn outlives its 1 s timeout; later ones succeed.
            assert!(counter(s, "turns_timeout") >= 4, "{}", s["counters"]);
            assert_eq!(cause(s, "turn_timeout"), counter(s, "turns_timeout"));
            assert!(counter(s, "turns_ok") > 0);
            // The timed-out connection is closed by us and reopened at once.
            assert!(counter(s, "reconnects") >= 4);
        }),
    })
    .await;
}

#[tokio::test]
async fn unknown_url_token_is_refused_and_abandoned() {
    run_case(Case {
        name: "refused-token",
        emulator: "url_tokens: [some-other-token]\n",
        updates: false,
        exits: &[2],
        check: Box::new(|s, emu| {
            assert_eq!(counter(s, "connects_ok"), 0);
            assert_eq!(counter(s, "turns_sent"), 0);
            assert_eq!(cause(s, "connect_http_403"), counter(s, "connect_errors"));
            // Each conversation: one connect and two reconnects, then abandoned;
            // at the deadline each of the 4 VUs may be part-way through one.
            let (errors, abandoned) = (
                counter(s, "connect_errors"),
                counter(s, "conversations_abandoned"),
            );
            assert!(abandoned > 0);
            assert!(
                errors >= 3 * abandoned && errors < 3 * (abandoned + 4),
                "{}",
                s["counters"]
            );
            // A connect the emulator refuses just as the deadline cancels it
            // is not counted by the client: at most one per VU.
            let refused = emu.stats.refused;
            assert!(
                refused >= errors && refused <= errors + 4,
                "emulator refused {refused}, client counted {errors}"
            );
        }),
    })
    .await;
}

// ---- Socket.IO Endpoint faults (probability 1: every connection / turn) ----

/// A Socket.IO fault that fails every connect: nothing is measured (exit 2),
/// and the context steps never run (each conversation is abandoned first).
async fn connect_fault(name: &'static str, emulator: &'static str, cause_name: &'static str) {
    run_case(Case {
        name,
        emulator,
        updates: true,
        exits: &[2],
        check: Box::new(move |s, emu| {
            assert_eq!(counter(s, "connects_ok"), 0);
            assert_eq!(counter(s, "turns_sent"), 0);
            assert_eq!(counter(s, "updates_sent"), 0);
            assert!(counter(s, "connect_errors") >= 4, "{}", s["counters"]);
            assert_eq!(cause(s, cause_name), counter(s, "connect_errors"));
            // A connect still waiting at the deadline was injected but not yet failed.
            let injected = emu.stats.faults.failures();
            let failed = counter(s, "connect_errors");
            assert!(
                injected >= failed && injected <= failed + 4,
                "{:?}",
                emu.stats.faults
            );
        }),
    })
    .await;
}

#[tokio::test]
async fn refused_connections() {
    connect_fault("refuse", "faults: {refuse: 1.0}\n", "connect_http_5xx").await;
}

#[tokio::test]
async fn endpoint_ready_never_comes() {
    connect_fault(
        "no-endpoint-ready",
        "faults: {no_endpoint_ready: 1.0}\n",
        "connect_connect_timeout",
    )
    .await;
}

/// A Socket.IO fault that fails every turn while the context side keeps
/// working: the run fails (exit 1), every turn sent met an injected fault and
/// ended with `cause_name`, and the VUs reconnected (same session) after it.
async fn turn_fault(name: &'static str, emulator: &'static str, cause_name: &'static str) {
    run_case(Case {
        name,
        emulator,
        updates: true,
        exits: &[1],
        check: Box::new(move |s, emu| {
            let sent = counter(s, "turns_sent");
            assert!(sent >= 4, "{}", s["counters"]);
            assert_eq!(counter(s, "turns_ok"), 0, "{}", s["counters"]);
            assert_eq!(cause(s, cause_name), sent, "{}", s["errors"]);
            assert_eq!(emu.stats.faults.failures(), sent, "{:?}", emu.stats.faults);
            assert!(counter(s, "updates_ok") > 0, "{}", s["counters"]);
        }),
    })
    .await;
}

#[tokio::test]
async fn no_final_ping() {
    turn_fault(
        "no-final-ping",
        "faults: {no_final_ping: 1.0}\n",
        "turn_timeout",
    )
    .await;
}

#[tokio::test]
async fn namespace_disconnect_mid_turn() {
    turn_fault(
        "disconnect-mid-turn",
        "faults: {disconnect_mid_turn: 1.0}\n",
        "disconnected_namespace_disconnect",
    )
    .await;
}

#[tokio::test]
async fn transport_closed_mid_turn() {
    turn_fault(
        "close-mid-turn",
        "faults: {close_mid_turn: 1.0}\n",
        "disconnected_transport_closed",
    )
    .await;
}

#[tokio::test]
async fn garbage_frame() {
    turn_fault(
        "garbage-frame",
        "faults: {garbage_frame: 1.0}\n",
        "disconnected_protocol_error",
    )
    .await;
}

#[tokio::test]
async fn truncated_frame() {
    turn_fault(
        "truncated-frame",
        "faults: {truncated_frame: 1.0}\n",
        "disconnected_protocol_error",
    )
    .await;
}

#[tokio::test]
async fn oversized_frame() {
    turn_fault(
        "oversized-frame",
        "faults: {oversized_frame: 1.0}\n",
        "disconnected_frame_too_large",
    )
    .await;
}

#[tokio::test]
async fn heartbeat_stops() {
    // The bot still answers turns; the silent heartbeat kills each connection
    // while its VU thinks. Nothing failed, so the run passes, with the drops
    // and the reconnects that repaired them in the report.
    run_case(Case {
        name: "no-pong",
        emulator: "ping_interval: 300ms\nping_timeout: 300ms\nfaults: {no_pong: 1.0}\n",
        updates: true,
        // 0 when every lapse was noticed between turns; 1 when one cut a turn.
        exits: &[0, 1],
        check: Box::new(|s, emu| {
            let drops = counter(s, "disconnects");
            assert!(drops >= 1, "{}", s["counters"]);
            let idle = cause(s, "idle_heartbeat_timeout");
            let in_turn = cause(s, "disconnected_heartbeat_timeout");
            assert_eq!(idle + in_turn, drops, "{}", s["errors"]);
            assert_eq!(
                in_turn,
                counter(s, "turns_disconnected"),
                "{}",
                s["counters"]
            );
            assert_eq!(
                counter(s, "turns_ok") + in_turn,
                counter(s, "turns_sent"),
                "{}",
                s["counters"]
            );
            assert_eq!(counter(s, "connects_ok"), 4 + counter(s, "reconnects"));
            assert!(emu.stats.faults.no_pong >= drops);
        }),
    })
    .await;
}

#[tokio::test]
async fn bot_output_error() {
    turn_fault("output-error", "faults: {output_error: 1.0}\n", "bot_error").await;
}

#[tokio::test]
async fn slow_acks_slow_the_turns_but_lose_nothing() {
    run_case(Case {
        name: "ack-wait",
        emulator: "faults: {ack_wait: {delay: 100ms}}\n",
        updates: true,
        exits: &[0],
        check: Box::new(|s, emu| {
            assert!(counter(s, "turns_ok") >= 4);
            assert_eq!(emu.stats.faults.ack_wait, counter(s, "outputs"));
            assert!(
                metric(s, "final_ping", "p50_ms") >= 100.0,
                "{}",
                s["metrics"]["final_ping"]
            );
        }),
    })
    .await;
}

#[tokio::test]
async fn every_socketio_fault_at_once_loses_nothing() {
    run_case(Case {
        name: "socketio-mixed",
        emulator: "faults: {refuse: 0.1, no_endpoint_ready: 0.1, no_final_ping: 0.1, disconnect_mid_turn: 0.1, close_mid_turn: 0.1, garbage_frame: 0.1, truncated_frame: 0.1, oversized_frame: 0.1, no_pong: 0.1, output_error: 0.1}\n",
        updates: true,
        exits: &[1],
        check: Box::new(|s, emu| {
            assert!(counter(s, "turns_ok") > 0, "{}", s["counters"]);
            let failed = counter(s, "turns_sent") - counter(s, "turns_ok");
            assert!(failed > 0, "{}", s["counters"]);
            // Every failed turn or connect met an injected fault (a connect
            // still waiting for endpoint-ready at the deadline may be extra).
            let client_failures = failed + counter(s, "connect_errors");
            assert!(emu.stats.faults.failures() >= client_failures, "{:?} {}", emu.stats.faults, s["counters"]);
            assert!(emu.stats.faults.failures() <= client_failures + 4, "{:?} {}", emu.stats.faults, s["counters"]);
        }),
    })
    .await;
}

// ---- Runtime side faults: runtime WebSocket, token endpoint, webhook sink ----

/// A runtime fault that fails every update while chat turns keep working:
/// every update sent ends as one of `outcomes` — or, at most one per VU, as
/// `interrupted` when the grace period ends during its reconnect back-off —,
/// the report names `cause_name`, the run fails (exit 1), and `injected`
/// says the emulator really did it.
async fn update_fault(
    name: &'static str,
    emulator: &'static str,
    outcomes: &'static [&'static str],
    cause_name: &'static str,
    injected: fn(&RuntimeFaultStats) -> u64,
) {
    run_case(Case {
        name,
        emulator,
        updates: true,
        exits: &[1],
        check: Box::new(move |s, emu| {
            let sent = counter(s, "updates_sent");
            assert!(sent >= 4, "{}", s["counters"]);
            let ended: u64 = outcomes.iter().map(|o| counter(s, o)).sum();
            let cut = if outcomes.contains(&"updates_interrupted") {
                0
            } else {
                counter(s, "updates_interrupted")
            };
            assert!(cut <= 4, "{}", s["counters"]);
            assert_eq!(ended + cut, sent, "{}", s["counters"]);
            assert!(cause(s, cause_name) >= 1, "{}", s["errors"]);
            assert!(injected(&emu.runtime) >= 1, "{:?}", emu.runtime);
            assert_eq!(
                counter(s, "turns_ok"),
                counter(s, "turns_sent"),
                "{}",
                s["counters"]
            );
        }),
    })
    .await;
}

#[tokio::test]
async fn token_expired_storm() {
    update_fault(
        "close-4001",
        "runtime: {faults: {close_4001: 1.0}}\n",
        &["updates_disconnected"],
        "runtime_token_rejected_4001",
        |r| r.closed_4001,
    )
    .await;
}

#[tokio::test]
async fn session_expired_storm() {
    update_fault(
        "close-4002",
        "runtime: {faults: {close_4002: 1.0}}\n",
        &["updates_disconnected"],
        "runtime_token_rejected_4002",
        |r| r.closed_4002,
    )
    .await;
}

#[tokio::test]
async fn wrong_length_headers() {
    update_fault(
        "bad-length",
        "runtime: {faults: {bad_length: 1.0}}\n",
        &["updates_disconnected"],
        "runtime_bad_frame",
        |r| r.bad_length,
    )
    .await;
}

#[tokio::test]
async fn undecodable_replies() {
    update_fault(
        "undecodable",
        "runtime: {faults: {undecodable: 1.0}}\n",
        &["updates_disconnected"],
        "runtime_undecodable",
        |r| r.undecodable,
    )
    .await;
}

#[tokio::test]
async fn context_rejected_flood() {
    update_fault(
        "reject",
        "runtime: {faults: {reject: 1.0}}\n",
        &["updates_rejected"],
        "update_forbidden",
        |r| r.rejected,
    )
    .await;
}

/// Without a token the runtime client retries with back-off: an update either
/// gives up (disconnected) or is still waiting at the deadline (interrupted).
const TOKEN_OUTCOMES: &[&str] = &["updates_disconnected", "updates_interrupted"];

#[tokio::test]
async fn token_endpoint_500() {
    update_fault(
        "token-500",
        "runtime: {faults: {token_error: 1.0}}\n",
        TOKEN_OUTCOMES,
        "runtime_connect_oauth_http_5xx",
        |r| r.token_errors,
    )
    .await;
}

#[tokio::test]
async fn token_endpoint_malformed() {
    update_fault(
        "token-malformed",
        "runtime: {faults: {token_malformed: 1.0}}\n",
        TOKEN_OUTCOMES,
        "runtime_connect_oauth_malformed",
        |r| r.token_malformed,
    )
    .await;
}

#[tokio::test]
async fn token_endpoint_too_slow() {
    // The token answer (5 s) comes after runtime.connect_timeout (1 s).
    update_fault(
        "token-slow",
        "runtime: {faults: {token_delay: 5s}}\n",
        TOKEN_OUTCOMES,
        "runtime_connect_oauth_timeout",
        |r| r.token_delayed,
    )
    .await;
}

/// A webhook fault: updates and turns all succeed and the audit file is
/// complete; every record is a failed or dropped delivery.
async fn webhook_fault(name: &'static str, emulator: &'static str) {
    run_case(Case {
        name,
        emulator,
        updates: true,
        exits: &[0],
        check: Box::new(|s, emu| {
            assert!(counter(s, "updates_ok") >= 4, "{}", s["counters"]);
            let audit = &s["context"]["audit"];
            let written = audit["records_written"].as_u64().unwrap_or(0);
            assert_eq!(written, counter(s, "audit_records"), "{audit}");
            assert_eq!(audit["webhook_sent"].as_u64(), Some(0), "{audit}");
            let failed = audit["webhook_failed"].as_u64().unwrap_or(0);
            let dropped = audit["webhook_dropped"].as_u64().unwrap_or(0);
            assert_eq!(failed + dropped, written, "{audit}");
            assert!(emu.runtime.webhook_refused + emu.runtime.webhook_delayed >= 1);
        }),
    })
    .await;
}

#[tokio::test]
async fn webhook_sink_down() {
    webhook_fault("webhook-down", "runtime: {faults: {webhook_down: true}}\n").await;
}

#[tokio::test]
async fn webhook_sink_slower_than_its_timeout() {
    webhook_fault("webhook-slow", "runtime: {faults: {webhook_delay: 5s}}\n").await;
}

#[tokio::test]
async fn every_runtime_fault_at_once_loses_nothing() {
    run_case(Case {
        name: "runtime-mixed",
        emulator: "runtime: {faults: {close_4001: 0.05, close_4002: 0.05, bad_length: 0.05, undecodable: 0.05, reject: 0.1, token_error: 0.3, token_malformed: 0.2, webhook_down: true}}\n",
        updates: true,
        exits: &[1],
        check: Box::new(|s, emu| {
            assert!(counter(s, "updates_ok") > 0, "{}", s["counters"]);
            assert!(counter(s, "updates_sent") > counter(s, "updates_ok"), "{}", s["counters"]);
            // A rejection still in flight when its connection is closed by
            // another fault (or at the deadline) ends otherwise.
            assert!(counter(s, "updates_rejected") <= emu.runtime.rejected, "{}", s["counters"]);
        }),
    })
    .await;
}

#[tokio::test]
async fn slow_updates_do_not_cost_the_chat_its_heartbeat() {
    // Each update takes 800 ms; the Socket.IO heartbeat allows 400 ms of
    // silence. The chat connection is kept answering while the update runs.
    run_case(Case {
        name: "slow-update",
        emulator: "ping_interval: 200ms\nping_timeout: 200ms\nruntime: {update_delay: 800ms}\n",
        updates: true,
        exits: &[0],
        check: Box::new(|s, _| {
            assert!(counter(s, "updates_ok") >= 4, "{}", s["counters"]);
            assert_eq!(counter(s, "disconnects"), 0, "{}", s["errors"]);
            assert_eq!(counter(s, "reconnects"), 0, "{}", s["counters"]);
            assert!(counter(s, "heartbeats") > 0, "{}", s["counters"]);
        }),
    })
    .await;
}

#[test]
fn serve_names_the_faults_that_are_on() {
    use std::io::{BufRead, BufReader};
    let w = Workdir::new();
    let config = w.file(
        "faults.yaml",
        "faults: {refuse: 0.25}\nruntime: {faults: {webhook_down: true}}\n",
    );
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--port", "0", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn finalping serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut banner = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("FAULTS ON") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        banner.contains("FAULTS ON: faults.refuse 0.25, runtime.faults.webhook_down"),
        "{banner}"
    );
}
