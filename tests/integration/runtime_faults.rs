//! The runtime side under fault (issue 7 parts 1, 2, 7): the real `finalping
//! run` binary against an emulator started in this test process with one
//! `runtime.faults` mode switched on (probability 1.0), so that what the
//! emulator injected can be compared with what finalping reports. Each test
//! asserts that the run ends within a bound, that every update sent is
//! accounted exactly once (ok + rejected + invalid + timeout + disconnected +
//! interrupted), the cause names, the audit records (variables × updates
//! ok for `success: true`; variables × updates answered or lost for all) and
//! the emulator's fault counters. The last test holds memory flat against a
//! webhook that never answers.

use crate::common::*;
use finalping::emulator::{
    self, EmulatorConfig, RunningEmulator, RuntimeFaultStats, RuntimeFaults,
};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Hard limit per run (the child is killed past it).
const LIMIT: Duration = Duration::from_secs(60);
/// Variables per update in the scenarios below.
const VARS: u64 = 2;
const SECRET: &str = "fault-test-client-secret-0123456789";

async fn start(faults: RuntimeFaults) -> RunningEmulator {
    let mut config = EmulatorConfig::default();
    config.runtime.client_secret = SECRET.into();
    config.runtime.faults = faults;
    emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator")
}

/// A scenario of `vus` × `iterations` updates of [`VARS`] variables against
/// `emu`, with a short back-off and reply timeout; `extra` is appended.
fn scenario(
    emu: &RunningEmulator,
    vus: u32,
    iterations: u32,
    runtime: &str,
    extra: &str,
) -> String {
    format!(
        "name: faults\ntarget: {{url: \"{}\"}}\nruntime:\n  url: \"{}\"\n  codec: json\n  connect_timeout: 1s\n  reply_timeout: 2s\n  reconnect: {{max_attempts: 5, backoff: 20ms}}\n  oauth: {{token_url: \"{}\", client_id: finalping, client_secret: \"${{env:FAULT_TEST_SECRET}}\"}}\n{runtime}load: {{vus: {vus}, iterations: {iterations}}}\nsteps:\n  - update_context: {{scope: session, vars: {{cart: \"c-{{{{vu}}}}\", n: \"{{{{iteration}}}}\"}}}}\n{extra}",
        emu.url(),
        emu.runtime_url(),
        emu.token_url()
    )
}

struct Run {
    out: std::process::Output,
    summary: Value,
    dir: PathBuf,
    took: Duration,
    _w: Workdir,
}

impl Run {
    fn counter(&self, name: &str) -> u64 {
        counter(&self.summary, name)
    }

    fn cause(&self, name: &str) -> u64 {
        self.summary["errors"][name].as_u64().unwrap_or(0)
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("audit.jsonl"))
            .expect("audit.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// updates_sent == the sum of the six outcomes; returns updates_sent.
    fn assert_accounted(&self) -> u64 {
        let sent = self.counter("updates_sent");
        let outcomes: u64 = [
            "updates_ok",
            "updates_rejected",
            "updates_invalid",
            "updates_timeout",
            "updates_disconnected",
            "updates_interrupted",
        ]
        .iter()
        .map(|n| self.counter(n))
        .sum();
        assert_eq!(
            sent, outcomes,
            "every update accounted once: {}",
            self.summary["counters"]
        );
        sent
    }

    /// Audit: `success: true` records = VARS × ok; all records = VARS ×
    /// updates sent (every update is audited); the file has them all.
    fn assert_audit(&self) {
        let lines = self.audit();
        let ok = lines.iter().filter(|l| l["success"] == true).count() as u64;
        assert_eq!(ok, VARS * self.counter("updates_ok"));
        assert_eq!(lines.len() as u64, VARS * self.counter("updates_sent"));
        assert_eq!(self.counter("audit_records"), lines.len() as u64);
        assert_eq!(
            self.summary["context"]["audit"]["records_written"],
            lines.len() as u64
        );
    }

    /// The client secret appears in no output and no report file.
    fn assert_no_secret(&self) {
        assert!(!text(&self.out).contains(SECRET));
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let path = entry.unwrap().path();
            if let Ok(t) = std::fs::read_to_string(&path) {
                assert!(!t.contains(SECRET), "secret in {}", path.display());
            }
        }
    }
}

/// Runs `finalping run` on a blocking thread (the emulator keeps serving).
async fn run(yaml: String) -> Run {
    let w = Workdir::new();
    let p = w.file("s.yaml", &yaml);
    let dir = w.path("r");
    let args = [
        "run".to_string(),
        p.to_string_lossy().into_owned(),
        "--out".to_string(),
        dir.to_string_lossy().into_owned(),
        "--quiet".to_string(),
    ];
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_finalping_env(&args, &[("FAULT_TEST_SECRET", SECRET)], LIMIT)
    })
    .await
    .expect("join");
    let took = started.elapsed();
    let summary = read_json(&dir.join("summary.json"));
    Run {
        out,
        summary,
        dir,
        took,
        _w: w,
    }
}

fn faults(yaml: &str) -> RuntimeFaults {
    serde_saphyr::from_str(yaml).expect("faults yaml")
}

/// 4001 (or 4002) instead of every answer: each update is disconnected, the
/// token refreshed, the connection re-opened; with `max_attempts: 2` the
/// third loss in a row gives up (`storm`) and the next update opens a new
/// connection. Per VU of 4 updates: losses 4, reconnects 3, storms 1.
async fn close_storm(code: u16) {
    let emu = start(faults(&format!("close_{code}: 1.0\n"))).await;
    let yaml = scenario(&emu, 2, 4, "", "").replace(
        "reconnect: {max_attempts: 5, backoff: 20ms}",
        "reconnect: {max_attempts: 2, backoff: 20ms}",
    );
    let r = run(yaml).await;
    assert!(r.took < Duration::from_secs(30), "{:?}", r.took);
    assert_eq!(
        r.out.status.code(),
        Some(2),
        "nothing ok: invalid run\n{}",
        text(&r.out)
    );
    assert_eq!(r.assert_accounted(), 8);
    assert_eq!(r.counter("updates_disconnected"), 8);
    assert_eq!(r.cause("update_disconnected"), 8);
    assert_eq!(r.cause(&format!("runtime_token_rejected_{code}")), 8);
    assert_eq!(r.cause("runtime_reconnect_failed_storm"), 2);
    assert_eq!(r.counter("runtime_reconnects"), 6);
    assert_eq!(
        r.counter("runtime_connects_ok"),
        4,
        "first connect + one after each storm"
    );
    assert_eq!(r.counter("token_refreshes"), 6);
    r.assert_audit();
    r.assert_no_secret();
    let f = emu.runtime_fault_stats();
    let fired = if code == 4001 {
        f.closed_4001
    } else {
        f.closed_4002
    };
    assert_eq!(fired, 8, "{f:?}");
    assert_eq!(emu.stats().updates_ok, 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_4001_storm_is_bounded_and_accounted() {
    close_storm(4001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_4002_storm_is_bounded_and_accounted() {
    close_storm(4002).await;
}

/// Every reply spoiled: the client counts a protocol error, closes with
/// 1002, accounts the update as disconnected and reconnects with back-off.
async fn spoiled_replies(fault: &str, cause: &str) {
    let emu = start(faults(&format!("{fault}: 1.0\n"))).await;
    let r = run(scenario(&emu, 2, 3, "", "")).await;
    assert!(r.took < Duration::from_secs(30), "{:?}", r.took);
    assert_eq!(r.out.status.code(), Some(2), "{}", text(&r.out));
    assert_eq!(r.assert_accounted(), 6);
    assert_eq!(r.counter("updates_disconnected"), 6);
    assert_eq!(r.counter("protocol_errors"), 6);
    assert_eq!(r.cause(cause), 6, "{}", r.summary["errors"]);
    assert_eq!(r.counter("runtime_reconnects"), 6);
    r.assert_audit();
    let f = emu.runtime_fault_stats();
    let fired = if fault == "bad_length" {
        f.bad_length
    } else {
        f.undecodable
    };
    assert_eq!(fired, 6, "{f:?}");
    // The emulator answered every update (applied, or a version mismatch
    // since the client never learnt the new version); the client cannot know.
    let stats = emu.stats();
    assert_eq!(stats.updates_ok + stats.rejections.total(), 6, "{stats:?}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_length_headers_close_the_connection_and_are_accounted() {
    spoiled_replies("bad_length", "runtime_bad_frame").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_replies_close_the_connection_and_are_accounted() {
    spoiled_replies("undecodable", "runtime_undecodable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_flood_is_accounted_as_rejected() {
    let emu = start(faults("reject: 1.0\n")).await;
    let r = run(scenario(&emu, 3, 4, "", "")).await;
    assert_eq!(r.out.status.code(), Some(2), "{}", text(&r.out));
    assert_eq!(r.assert_accounted(), 12);
    assert_eq!(r.counter("updates_rejected"), 12);
    assert_eq!(r.cause("update_forbidden"), 12);
    assert_eq!(
        r.counter("runtime_reconnects"),
        0,
        "a rejection keeps the connection"
    );
    r.assert_audit();
    assert!(r
        .audit()
        .iter()
        .all(|l| l["success"] == false && l["cause"] == "forbidden"));
    assert_eq!(emu.runtime_fault_stats().rejected, 12);
    assert_eq!(emu.stats().rejections.forbidden, 12);
    emu.shutdown().await;
}

/// The token endpoint fails every request: no connection, every update
/// disconnected with `update_not_connected`, the cause of the connect
/// failure named, the secret nowhere.
async fn token_failure(fault: &str, cause: &str, fired: fn(&RuntimeFaultStats) -> u64) {
    let emu = start(faults(fault)).await;
    let r = run(scenario(&emu, 2, 2, "", "")).await;
    assert!(r.took < Duration::from_secs(30), "{:?}", r.took);
    assert_eq!(r.out.status.code(), Some(2), "{}", text(&r.out));
    let sent = r.assert_accounted();
    assert_eq!(sent, 4);
    assert_eq!(r.counter("updates_disconnected"), 4);
    assert_eq!(r.cause("update_not_connected"), 4);
    assert_eq!(r.counter("runtime_connect_errors"), 4);
    assert_eq!(r.cause(cause), 4, "{}", r.summary["errors"]);
    r.assert_audit();
    r.assert_no_secret();
    assert_eq!(emu.stats().runtime_connections, 0);
    assert_eq!(emu.stats().tokens_issued, 0);
    // Concurrent token requests coalesce: at least one, at most one per connect.
    let f = emu.runtime_fault_stats();
    assert!((1..=4).contains(&fired(&f)), "{f:?}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_http_500_is_a_named_connect_failure() {
    token_failure(
        "token_error: 1.0\n",
        "runtime_connect_oauth_http_5xx",
        |f| f.token_errors,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_token_response_is_a_named_connect_failure() {
    token_failure(
        "token_malformed: 1.0\n",
        "runtime_connect_oauth_malformed",
        |f| f.token_malformed,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_token_endpoint_is_bounded_by_connect_timeout() {
    // 1 s connect_timeout bounds each token request.
    token_failure("token_delay: 30s\n", "runtime_connect_oauth_timeout", |f| {
        f.token_delayed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_down_counts_failures_and_the_file_stays_complete() {
    let emu = start(faults("webhook_down: true\n")).await;
    let webhook = format!(
        "webhook: {{url: \"{}\", timeout: 1s, drain: 2s}}\n",
        emu.webhook_url()
    );
    let r = run(scenario(&emu, 2, 5, "", &webhook)).await;
    assert_eq!(r.out.status.code(), Some(0), "{}", text(&r.out));
    assert_eq!(r.assert_accounted(), 10);
    assert_eq!(r.counter("updates_ok"), 10);
    r.assert_audit();
    let a = &r.summary["context"]["audit"];
    assert_eq!(a["records_written"], 20);
    assert_eq!(
        (a["webhook_sent"].as_u64(), a["webhook_failed"].as_u64()),
        (Some(0), Some(20)),
        "{a}"
    );
    assert_eq!(a["webhook_dropped"], 0);
    let f = emu.runtime_fault_stats();
    assert_eq!(f.webhook_refused, 20, "{f:?}");
    assert_eq!(emu.stats().webhook_received, 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_webhook_neither_slows_the_run_nor_loses_file_records() {
    let emu = start(faults("webhook_delay: 1h\n")).await;
    // One worker, a queue of 4, 200 ms per POST: most records are dropped.
    let webhook = format!(
        "webhook: {{url: \"{}\", timeout: 200ms, queue: 4, workers: 1, drain: 300ms}}\n",
        emu.webhook_url()
    );
    let r = run(scenario(&emu, 4, 25, "", &webhook)).await;
    assert_eq!(r.out.status.code(), Some(0), "{}", text(&r.out));
    assert_eq!(r.assert_accounted(), 100);
    assert_eq!(r.counter("updates_ok"), 100);
    r.assert_audit();
    let a = &r.summary["context"]["audit"];
    let n = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("{k} in {a}"));
    assert_eq!(n("records_written"), 200);
    assert_eq!(n("webhook_sent"), 0);
    assert!(n("webhook_failed") >= 1, "{a}");
    assert!(n("webhook_dropped") >= 100, "most records dropped: {a}");
    assert_eq!(
        n("webhook_sent") + n("webhook_failed") + n("webhook_dropped"),
        200
    );
    // 100 updates against a local emulator take well under a second; the
    // webhook (200 ms per POST, one worker) would need 40 s for 200 records.
    assert!(r.took < Duration::from_secs(15), "{:?}", r.took);
    assert!(emu.runtime_fault_stats().webhook_delayed >= 1);
    emu.shutdown().await;
}

/// A webhook that accepts connections and never answers: every POST hangs
/// until the client's timeout. Returns its URL; the accepted sockets are
/// kept open (never read) by the task.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}/hook")
}

/// Issue 7 part 7: with a webhook that never answers, memory stays flat —
/// the webhook queue is bounded and overflow is dropped (and counted), not
/// kept. A run with 4× the records peaks at about the same RSS as a short one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_against_a_webhook_that_never_answers() {
    let _quiet = exclusive_async().await;
    let emu = start(RuntimeFaults::default()).await;
    let hook = black_hole().await;
    // A second update of 50 variables per iteration: 52 records an iteration.
    let vars: Vec<String> = (0..50)
        .map(|i| format!("v{i}: \"{{{{iteration}}}}-{i}\""))
        .collect();
    let wide = |iterations: u32| {
        scenario(&emu, 4, iterations, "", &format!(
            "  - update_context: {{scope: user, vars: {{{}}}}}\nwebhook: {{url: \"{hook}\", timeout: 2s, queue: 1000, workers: 2, drain: 200ms}}\n",
            vars.join(", ")
        ))
    };
    let short = run(wide(100)).await;
    let long = run(wide(400)).await;
    let mut peaks = Vec::new();
    for (r, iterations) in [(&short, 100u64), (&long, 400u64)] {
        assert_eq!(r.out.status.code(), Some(0), "{}", text(&r.out));
        let sent = r.assert_accounted();
        assert_eq!(sent, 4 * iterations * 2);
        assert_eq!(r.counter("updates_ok"), sent);
        let a = &r.summary["context"]["audit"];
        let n = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("{k} in {a}"));
        let records = 4 * iterations * (2 + 50);
        assert_eq!(n("records_written"), records);
        assert_eq!(n("webhook_sent"), 0);
        assert_eq!(
            n("webhook_failed") + n("webhook_dropped"),
            records,
            "every record failed or dropped: {a}"
        );
        assert!(n("webhook_dropped") > records / 2, "{a}");
        let peak = r.summary["self_check"]["rss_mib_max"]
            .as_f64()
            .unwrap_or_else(|| panic!("no rss_mib_max in {}", r.summary["self_check"]));
        peaks.push(peak);
    }
    let growth = peaks[1] - peaks[0];
    eprintln!(
        "peak RSS: short run {:.1} MiB, 4x run {:.1} MiB, growth {growth:.1} MiB",
        peaks[0], peaks[1]
    );
    // Measured: 50.4 → 51.1 MiB. With `queue: 1000000` (effectively
    // unbounded) the same runs peak at 61 → 94 MiB: 33 MiB of kept records.
    assert!(growth < 6.0, "RSS grew {growth:.1} MiB: {peaks:?}");
    emu.shutdown().await;
}
