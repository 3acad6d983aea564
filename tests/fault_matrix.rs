//! The fault matrix (issue #7): one short, real run of the `finalping` binary
//! per emulator fault mode — chat turns and context updates with audit and a
//! webhook — asserting for every mode that the run stops on time, that every
//! turn sent and every update sent is accounted for exactly once, that the audit
//! log holds variables × successful updates, that the fault was really injected
//! (the emulator's counters), and that the exit code is the documented one.
//! README "Fault matrix" lists the same cases and their results.

mod common;

use common::*;
use finalping::emulator::{self, EmulatorConfig, EmulatorStats};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The scenario's run time and grace; a run must end within their sum plus the
/// longest wait a VU may be in (connect / turn / reply timeouts) and slack for
/// start-up and report writing on a loaded CI machine.
const DURATION: Duration = Duration::from_secs(2);
const GRACE: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(12);
/// Hard limit: a run that exceeds it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(60);
/// Variables per update (audit records per successful update).
const VARS: u64 = 2;

/// One row of the matrix.
struct Case {
    name: &'static str,
    /// The emulator's config (YAML), on top of short delays and heartbeats.
    emulator: &'static str,
    /// Whether the scenario also updates context (runtime WebSocket + webhook).
    updates: bool,
    exit: i32,
    /// Further checks on summary.json and the emulator's counters.
    check: fn(&Value, &EmulatorStats),
}

/// Base emulator settings every case starts from.
const EMULATOR_BASE: &str = "delay: 5ms\nping_interval: 300ms\nping_timeout: 300ms\n";

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
        VARS * c("updates_ok"),
        "audit records ≠ variables × successful updates: {}",
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
        let child = std::process::Command::new(bin())
            .args(with_self_check_warn(&args))
            .env("FINALPING_TEST_CLIENT_SECRET", "finalping-secret")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn finalping");
        wait_with_limit(child, LIMIT)
    })
    .await
    .expect("join");
    let took = started.elapsed();
    let name = case.name;
    assert!(!text(&out).contains("panicked"), "{name}: {}", text(&out));
    assert_eq!(
        out.status.code(),
        Some(case.exit),
        "{name}: exit code\n{}",
        text(&out)
    );
    assert!(
        took < DURATION + GRACE + SLACK,
        "{name}: took {took:?}, more than duration + grace + {SLACK:?}"
    );
    let s = read_json(&out_dir.join("summary.json"));
    assert_accounted(&s);
    if case.updates {
        let audit = std::fs::read_to_string(out_dir.join("audit.jsonl")).unwrap_or_default();
        assert_eq!(
            audit.lines().count() as u64,
            counter(&s, "audit_records"),
            "{name}: audit.jsonl lines"
        );
    }
    let stats = emu.stats();
    (case.check)(&s, &stats);
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
        exit: 0,
        check: |s, _| {
            assert!(counter(s, "turns_ok") > 0);
            assert!(counter(s, "updates_ok") > 0);
            assert_eq!(counter(s, "reconnects"), 0);
        },
    })
    .await;
}

#[tokio::test]
async fn stalled_bot_times_turns_out_and_recovers() {
    run_case(Case {
        name: "stall",
        emulator: "stall: {at: 0ms, for: 1500ms}\n",
        updates: true,
        exit: 1,
        check: |s, _| {
            // Every VU's first turn outlives its 1 s timeout; later ones succeed.
            assert!(counter(s, "turns_timeout") >= 4, "{}", s["counters"]);
            assert_eq!(cause(s, "turn_timeout"), counter(s, "turns_timeout"));
            assert!(counter(s, "turns_ok") > 0);
            // The timed-out connection is closed by us and reopened at once.
            assert!(counter(s, "reconnects") >= 4);
        },
    })
    .await;
}

#[tokio::test]
async fn unknown_url_token_is_refused_and_abandoned() {
    run_case(Case {
        name: "refused-token",
        emulator: "url_tokens: [some-other-token]\n",
        updates: false,
        exit: 2,
        check: |s, emu| {
            assert_eq!(counter(s, "connects_ok"), 0);
            assert_eq!(counter(s, "turns_sent"), 0);
            assert_eq!(
                cause(s, "connect_http_status"),
                counter(s, "connect_errors")
            );
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
            assert_eq!(emu.refused, counter(s, "connect_errors"));
        },
    })
    .await;
}
