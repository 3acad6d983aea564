//! Context updates end to end: the real `finalping run` binary against an
//! emulator started in this test process (so its state can be inspected):
//! counts, audit records, webhook delivery, token expiry, version conflicts,
//! limits and heartbeats.

use crate::common;

use common::*;
use finalping::emulator::{self, EmulatorConfig, RunningEmulator};
use std::path::PathBuf;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

async fn start_emulator(config: EmulatorConfig) -> RunningEmulator {
    emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator")
}

/// The target/runtime/oauth block pointing a scenario at `emu`.
fn endpoints(emu: &RunningEmulator, codec: &str, extra_runtime: &str) -> String {
    format!(
        "target: {{url: \"{}\"}}\nruntime:\n  url: \"{}\"\n  codec: {codec}\n  oauth: {{token_url: \"{}\", client_id: finalping, client_secret: \"${{env:FINALPING_TEST_CLIENT_SECRET}}\"}}\n{extra_runtime}",
        emu.url(),
        emu.runtime_url(),
        emu.token_url()
    )
}

/// Runs `finalping run` on a blocking thread (the emulator keeps serving).
async fn run(w: &Workdir, scenario: &str) -> (std::process::Output, serde_json::Value, PathBuf) {
    let p = w.file("s.yaml", scenario);
    let out_dir = w.path("r");
    let args = [
        "run".to_string(),
        p.to_string_lossy().into_owned(),
        "--out".to_string(),
        out_dir.to_string_lossy().into_owned(),
        "--quiet".to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env = [("FINALPING_TEST_CLIENT_SECRET", "finalping-secret")];
        run_finalping_env(&args, &env, LIMIT)
    })
    .await
    .expect("join");
    let summary = read_json(&out_dir.join("summary.json"));
    (out, summary, out_dir)
}

fn audit_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .expect("audit.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

async fn mixed_run(codec: &str) {
    let emu = start_emulator(EmulatorConfig::default()).await;
    let w = Workdir::new();
    let scenario = format!(
        "name: mixed-{codec}\n{}webhook: {{url: \"{}\"}}\nload: {{vus: 6, iterations: 4}}\nsteps:\n  - connect\n  - update_context: {{scope: session, vars: {{cart: \"c-{{{{vu}}}}\", n: 2, at: 2024-05-01 10:00:00}}}}\n  - send: {{text: hi}}\n  - get_context\n  - update_context: {{context: {{user: {{tier: gold}}}}}}\n  - disconnect\n",
        endpoints(&emu, codec, ""),
        emu.webhook_url()
    );
    let (out, s, dir) = run(&w, &scenario).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // 6 VUs × 4 iterations × 2 updates, each ok
    assert_eq!(counter(&s, "updates_sent"), 48);
    assert_eq!(counter(&s, "updates_ok"), 48);
    assert_eq!(counter(&s, "gets_ok"), 24);
    assert_eq!(counter(&s, "turns_ok"), 24);
    assert_eq!(metric(&s, "context_update", "count"), 48.0);
    assert!(metric(&s, "context_update", "p99_ms") > 0.0);
    // The next bot turn after the first update shows its version.
    assert_eq!(metric(&s, "context_visible", "count"), 24.0);
    // 3 variables + 1 variable per iteration
    let lines = audit_lines(&dir);
    assert_eq!(lines.len(), 24 * 4);
    assert!(lines
        .iter()
        .all(|l| l["eventType"] == "context_variable_update" && l["success"] == true));
    assert!(
        lines
            .iter()
            .any(|l| l["newValue"] == "2024-05-01T10:00:00Z"),
        "dates normalized"
    );
    let ctx = &s["context"];
    assert_eq!(ctx["accuracy_rate"], 1.0);
    assert_eq!(ctx["audit"]["records_written"], 96);
    assert_eq!(ctx["audit"]["webhook_sent"], 96);
    assert_eq!(ctx["codec"], codec);
    let stats = emu.stats();
    assert_eq!(stats.webhook_received, 96, "webhook sink got every record");
    assert_eq!(stats.updates_ok, 48);
    // The client secret never reaches a report.
    for f in ["summary.json", "manifest.json", "summary.md", "audit.jsonl"] {
        let t = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(!t.contains("finalping-secret"), "{f}");
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_chat_and_updates_msgpack() {
    mixed_run("msgpack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_chat_and_updates_json() {
    mixed_run("json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_only_scenario_against_the_embedded_emulator() {
    let w = Workdir::new();
    let scenario = "name: updates-only\nload: {vus: 4, iterations: 5}\nruntime: {codec: json}\nsteps:\n  - update_context: {scope: user, vars: {a: 1, b: \"{{iteration}}\"}, parallel: 2}\n";
    let (out, s, dir) = run(&w, scenario).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counter(&s, "updates_sent"), 40);
    assert_eq!(counter(&s, "updates_ok"), 40);
    assert_eq!(counter(&s, "turns_sent"), 0);
    assert_eq!(audit_lines(&dir).len(), 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_refreshes_and_loses_no_update() {
    let mut config = EmulatorConfig::default();
    config.runtime.token_lifetime = Duration::from_millis(700).into();
    let emu = start_emulator(config).await;
    let w = Workdir::new();
    let scenario = format!(
        "name: expiry\n{}load: {{vus: 3, duration: 3s}}\nsteps:\n  - update_context: {{scope: session, vars: {{x: \"{{{{iteration}}}}\"}}}}\n  - think: 50ms\n",
        endpoints(&emu, "msgpack", "  heartbeat: 100ms\n  reconnect: {backoff: 100ms}\n")
    );
    let (out, s, _) = run(&w, &scenario).await;
    let sent = counter(&s, "updates_sent");
    let accounted = counter(&s, "updates_ok")
        + counter(&s, "updates_rejected")
        + counter(&s, "updates_invalid")
        + counter(&s, "updates_timeout")
        + counter(&s, "updates_disconnected")
        + counter(&s, "updates_interrupted");
    assert_eq!(sent, accounted, "{s}");
    assert!(counter(&s, "updates_ok") > 10, "{}", text(&out));
    let stats = emu.stats();
    assert!(
        stats.expiry_closes >= 1,
        "emulator closed with 4001: {stats:?}"
    );
    assert!(s["context"]["token_requests"].as_u64().unwrap() >= 2, "{s}");
    assert!(counter(&s, "runtime_reconnects") >= 1, "{s}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vus_sharing_a_session_conflict_and_retry() {
    let emu = start_emulator(EmulatorConfig::default()).await;
    let w = Workdir::new();
    let scenario = format!(
        "name: conflicts\n{}  max_conflict_retries: 50\ntarget: {{url: \"{}\", session_id: shared-session}}\nload: {{vus: 2, iterations: 25}}\nsteps:\n  - update_context: {{scope: session, vars: {{who: \"{{{{vu}}}}\"}}, parallel: 2}}\n",
        endpoints(&emu, "msgpack", "").replace(&format!("target: {{url: \"{}\"}}\n", emu.url()), ""),
        emu.url()
    );
    let (out, s, _) = run(&w, &scenario).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ok = counter(&s, "updates_ok");
    assert_eq!(ok, 100);
    assert!(counter(&s, "conflicts") > 0, "{s}");
    assert_eq!(counter(&s, "conflicts"), counter(&s, "conflict_retries"));
    let (version, _) = emu.context_of("shared-session").expect("session exists");
    assert_eq!(version, ok, "final version = successful updates");
    emu.shutdown().await;
}

fn many_vars(n: usize) -> String {
    (0..n)
        .map(|i| format!("v{i}: {i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_checked_before_sending() {
    let emu = start_emulator(EmulatorConfig::default()).await;
    let w = Workdir::new();
    let big = "x".repeat(1_100_000);
    let scenario = format!(
        "name: limits\n{}load: {{vus: 1, iterations: 1}}\nsteps:\n  - update_context: {{scope: session, vars: {{{}}}}}\n  - update_context: {{scope: session, vars: {{big: \"{big}\"}}}}\n  - update_context: {{scope: tenant, vars: {{a: 1}}}}\n  - update_context: {{scope: session, vars: {{ok: 1}}}}\n",
        endpoints(&emu, "msgpack", ""),
        many_vars(501)
    );
    let (out, s, _) = run(&w, &scenario).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(counter(&s, "updates_invalid"), 3, "{s}");
    assert_eq!(counter(&s, "updates_ok"), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`session` has 501 variables"), "{err}");
    assert!(err.contains("more than the limit of 1048576"), "{err}");
    assert!(err.contains("scope `tenant` is not allowed"), "{err}");
    // Nothing invalid reached the server.
    let stats = emu.stats();
    assert_eq!(stats.updates_ok, 1);
    assert_eq!(stats.rejections.total(), 0, "{stats:?}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rejects_what_the_client_no_longer_checks() {
    let emu = start_emulator(EmulatorConfig::default()).await;
    let w = Workdir::new();
    let scenario = format!(
        "name: server-limits\n{}load: {{vus: 1, iterations: 1}}\nsteps:\n  - update_context: {{scope: session, vars: {{{}}}}}\n  - update_context: {{scope: tenant, vars: {{a: 1}}, expect: rejected}}\n",
        endpoints(&emu, "json", "  validate: false\n"),
        many_vars(501)
    );
    let (out, s, _) = run(&w, &scenario).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(counter(&s, "updates_rejected"), 1, "{s}");
    assert_eq!(s["errors"]["update_limit_exceeded"], 1, "{s}");
    assert_eq!(
        counter(&s, "updates_ok"),
        1,
        "the expected rejection counts as ok"
    );
    let stats = emu.stats();
    assert_eq!(stats.rejections.limit_exceeded, 1);
    assert_eq!(stats.rejections.invalid_scope, 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_measured_and_their_absence_is_noticed() {
    let mut config = EmulatorConfig::default();
    config.runtime.idle_timeout = Duration::from_millis(400).into();
    let emu = start_emulator(config).await;

    let w = Workdir::new();
    let scenario = format!(
        "name: hb\n{}load: {{vus: 2, iterations: 2}}\nsteps:\n  - update_context: {{scope: session, vars: {{a: 1}}}}\n  - think: 900ms\n",
        endpoints(&emu, "msgpack", "  heartbeat: 100ms\n")
    );
    let (out, s, _) = run(&w, &scenario).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(metric(&s, "heartbeat", "count") >= 8.0, "{s}");
    assert!(emu.stats().heartbeats >= 8);
    assert_eq!(emu.stats().idle_closes, 0);

    let w = Workdir::new();
    let scenario = format!(
        "name: no-hb\n{}load: {{vus: 1, iterations: 2}}\nsteps:\n  - update_context: {{scope: session, vars: {{a: 1}}}}\n  - think: 900ms\n",
        endpoints(&emu, "msgpack", "  heartbeat: off\n  reconnect: {backoff: 50ms}\n")
    );
    let (out, s, _) = run(&w, &scenario).await;
    assert!(emu.stats().idle_closes >= 1, "{:?}", emu.stats());
    assert_eq!(metric(&s, "heartbeat", "count"), 0.0);
    let closed = s["errors"]
        .as_object()
        .unwrap()
        .iter()
        .any(|(k, _)| k.contains("closed_4000"));
    assert!(
        closed,
        "the client reports the idle close: {s} {}",
        text(&out)
    );
    emu.shutdown().await;
}
