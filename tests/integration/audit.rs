//! Audit sink against real files and a real HTTP webhook sink (axum on
//! 127.0.0.1, ephemeral port): exact record counts and fields in
//! `audit.jsonl`, webhook delivery, timeouts, a full queue, a closed port, the
//! drain bound, and unusable paths.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use finalping::audit::{AuditError, AuditRecord, AuditSink, AuditStats, WebhookConfig};
use finalping::duration::HumanDuration;
use finalping::protocol::runtime::Context;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "s3cret-webhook-token-123";

#[derive(Clone, Copy)]
enum Mode {
    Ok,
    /// Answers after this long (longer than the client timeout).
    Slow(Duration),
    Status500,
    /// Waits for `gate` permits (at most 60 s) before answering 200.
    Gated,
}

#[derive(Clone)]
struct Sink {
    mode: Mode,
    /// Requests that reached the handler.
    started: Arc<watch::Sender<usize>>,
    /// Bodies of requests answered 2xx.
    accepted: Arc<Mutex<Vec<Value>>>,
    gate: Arc<Semaphore>,
}

async fn hook(State(s): State<Sink>, Json(body): Json<Value>) -> StatusCode {
    s.started.send_modify(|n| *n += 1);
    match s.mode {
        Mode::Ok => {}
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Status500 => return StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Gated => match timeout(Duration::from_secs(60), s.gate.acquire()).await {
            Ok(Ok(permit)) => permit.forget(),
            _ => return StatusCode::SERVICE_UNAVAILABLE,
        },
    }
    s.accepted.lock().unwrap().push(body);
    StatusCode::NO_CONTENT
}

/// Starts a webhook sink; returns its URL (with a secret query token) and state.
async fn start_sink(mode: Mode) -> (String, Sink) {
    let sink = Sink {
        mode,
        started: Arc::new(watch::channel(0).0),
        accepted: Arc::new(Mutex::new(Vec::new())),
        gate: Arc::new(Semaphore::new(0)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(sink.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook?token={TOKEN}"), sink)
}

fn webhook(
    url: &str,
    timeout_: Duration,
    queue: usize,
    workers: usize,
    drain: Duration,
) -> WebhookConfig {
    WebhookConfig {
        url: url.to_string(),
        timeout: HumanDuration(timeout_),
        queue,
        workers,
        drain: HumanDuration(drain),
    }
}

fn ctx(v: Value) -> Context {
    serde_json::from_value(v).unwrap()
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// A minimal record (for volume tests).
fn rec(i: usize) -> AuditRecord {
    AuditRecord {
        timestamp: "2025-01-01T00:00:00.000Z".into(),
        session_id: format!("s{i}"),
        scope: "session".into(),
        variable_key: "k".into(),
        old_value: Value::Null,
        new_value: json!(i),
        latency_ms: 1.5,
        success: true,
        event_type: Default::default(),
        audit_id: uuid::Uuid::new_v4().to_string(),
        request_id: None,
        cause: None,
    }
}

async fn finish(sink: AuditSink) -> AuditStats {
    timeout(WAIT, sink.finish())
        .await
        .expect("finish() is bounded")
}

async fn wait_started(sink: &Sink, n: usize) {
    let mut rx = sink.started.subscribe();
    timeout(WAIT, rx.wait_for(|v| *v >= n))
        .await
        .expect("webhook requests reached the sink")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variable_of_every_update_is_in_the_file_and_reaches_the_webhook() {
    const UPDATES: usize = 200;
    const TASKS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (url, sink) = start_sink(Mode::Ok).await;
    let audit = AuditSink::start(
        &path,
        Some(webhook(
            &url,
            Duration::from_secs(5),
            10_000,
            4,
            Duration::from_secs(10),
        )),
    )
    .unwrap();

    // 5 variables per update over two scopes; `user.a` had an old value.
    let previous = ctx(json!({"user": {"a": "old-a"}}));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let h = audit.handle();
        let previous = previous.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for u in 0..UPDATES / TASKS {
                let i = t * 1000 + u;
                let context = ctx(json!({
                    "user": {"a": i, "b": format!("v{i}"), "c": [i, i]},
                    "session": {"d": {"nested": i}, "e": i % 2 == 0},
                }));
                n += h.record_update(
                    &format!("session-{i}"),
                    &context,
                    &previous,
                    Duration::from_micros(1234),
                    true,
                    None,
                );
            }
            n
        }));
    }
    let mut returned = 0;
    for t in tasks {
        returned += t.await.unwrap();
    }
    assert_eq!(returned, UPDATES * 5);

    let stats = finish(audit).await;
    let total = (UPDATES * 5) as u64;
    assert_eq!(stats.records_submitted, total);
    assert_eq!(stats.records_written, total);
    assert_eq!(stats.records_lost, 0);
    assert!(stats.webhook_enabled);
    assert_eq!(
        (
            stats.webhook_sent,
            stats.webhook_failed,
            stats.webhook_dropped
        ),
        (total, 0, 0)
    );
    assert_eq!(stats.file_error, None);

    let lines = read_lines(&path);
    assert_eq!(lines.len(), UPDATES * 5);
    let mut ids = HashSet::new();
    let mut per_session: std::collections::HashMap<String, usize> = Default::default();
    for line in &lines {
        let obj = line.as_object().unwrap();
        for k in [
            "timestamp",
            "sessionId",
            "scope",
            "variableKey",
            "oldValue",
            "newValue",
            "latencyMs",
            "success",
            "eventType",
            "auditId",
        ] {
            assert!(obj.contains_key(k), "missing {k}: {line}");
        }
        assert_eq!(line["eventType"], "context_variable_update");
        assert_eq!(line["success"], true);
        assert_eq!(line["latencyMs"], 1.234);
        let ts = line["timestamp"].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        assert_eq!(parsed.offset().local_minus_utc(), 0);
        assert!(
            ts.ends_with('Z') && ts.len() == 24,
            "ms precision UTC: {ts}"
        );
        let id = uuid::Uuid::parse_str(line["auditId"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert!(ids.insert(id), "duplicate auditId {id}");
        let expected_old = if line["scope"] == "user" && line["variableKey"] == "a" {
            json!("old-a")
        } else {
            Value::Null
        };
        assert_eq!(line["oldValue"], expected_old, "{line}");
        let back: AuditRecord = serde_json::from_value(line.clone()).unwrap();
        assert!(back.cause.is_none() && back.request_id.is_none());
        *per_session.entry(back.session_id).or_default() += 1;
    }
    assert_eq!(per_session.len(), UPDATES);
    assert!(per_session.values().all(|&n| n == 5));

    // The webhook received exactly the records of the file, once each.
    let accepted = sink.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), UPDATES * 5);
    let hook_ids: HashSet<uuid::Uuid> = accepted
        .iter()
        .map(|b| uuid::Uuid::parse_str(b["auditId"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(hook_ids, ids);
    let file_set: HashSet<String> = lines.iter().map(|l| l.to_string()).collect();
    assert!(accepted.iter().all(|b| file_set.contains(&b.to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_for_the_webhook_only_and_record_never_waits_for_the_network() {
    const TOTAL: usize = 10_000;
    const QUEUE: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (url, sink) = start_sink(Mode::Gated).await;
    let audit = AuditSink::start(
        &path,
        Some(webhook(
            &url,
            Duration::from_secs(30),
            QUEUE,
            1,
            Duration::from_secs(15),
        )),
    )
    .unwrap();
    let h = audit.handle();

    // The single worker takes the first record and blocks in the sink.
    h.record(rec(0));
    wait_started(&sink, 1).await;

    // 9 999 more while the only worker is stuck on the network: if record()
    // waited for the webhook this would never finish.
    let h2 = h.clone();
    let loop_done = tokio::task::spawn_blocking(move || {
        for i in 1..TOTAL {
            h2.record(rec(i));
        }
    });
    timeout(WAIT, loop_done)
        .await
        .expect("record() never waits for the webhook")
        .unwrap();
    assert_eq!(
        *sink.started.borrow(),
        1,
        "only the first POST is in flight"
    );
    assert_eq!(h.stats().records_submitted, TOTAL as u64);

    // Once the writer has handled everything: 1 in flight + QUEUE queued,
    // the rest dropped for the webhook.
    let expected_dropped = (TOTAL - 1 - QUEUE) as u64;
    timeout(WAIT, async {
        while h.stats().webhook_dropped < expected_dropped {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("writer handled all records");
    assert_eq!(h.stats().webhook_dropped, expected_dropped);

    sink.gate.add_permits(TOTAL);
    let stats = finish(audit).await;
    assert_eq!(
        stats.records_written, TOTAL as u64,
        "file complete despite drops"
    );
    assert_eq!(stats.records_lost, 0);
    assert_eq!(stats.webhook_sent, (QUEUE + 1) as u64);
    assert_eq!(stats.webhook_failed, 0);
    assert_eq!(stats.webhook_dropped, expected_dropped);
    assert_eq!(sink.accepted.lock().unwrap().len(), QUEUE + 1);
    assert_eq!(read_lines(&path).len(), TOTAL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_webhook_times_out_and_is_counted_failed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (url, sink) = start_sink(Mode::Slow(Duration::from_secs(10))).await;
    let audit = AuditSink::start(
        &path,
        Some(webhook(
            &url,
            Duration::from_millis(200),
            100,
            2,
            Duration::from_secs(15),
        )),
    )
    .unwrap();
    let h = audit.handle();
    for i in 0..6 {
        h.record(rec(i));
    }
    let stats = finish(audit).await;
    assert_eq!(stats.records_written, 6);
    assert_eq!(
        (
            stats.webhook_sent,
            stats.webhook_failed,
            stats.webhook_dropped
        ),
        (0, 6, 0)
    );
    assert!(
        *sink.started.borrow() >= 1,
        "requests reached the slow sink"
    );
    assert!(sink.accepted.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_2xx_answers_are_counted_failed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (url, sink) = start_sink(Mode::Status500).await;
    let audit = AuditSink::start(
        &path,
        Some(webhook(
            &url,
            Duration::from_secs(5),
            100,
            2,
            Duration::from_secs(15),
        )),
    )
    .unwrap();
    let h = audit.handle();
    for i in 0..5 {
        h.record(rec(i));
    }
    let stats = finish(audit).await;
    assert_eq!(
        (
            stats.webhook_sent,
            stats.webhook_failed,
            stats.webhook_dropped
        ),
        (0, 5, 0)
    );
    assert_eq!(*sink.started.borrow(), 5);
    assert_eq!(stats.records_written, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_counts_failures_and_finish_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{closed}/hook?token={TOKEN}");
    let audit = AuditSink::start(
        &path,
        Some(webhook(
            &url,
            Duration::from_secs(2),
            100,
            4,
            Duration::from_secs(3),
        )),
    )
    .unwrap();
    let h = audit.handle();
    for i in 0..20 {
        h.record(rec(i));
    }
    // Bound: writer (fast) + drain 3 s; WAIT is far above it.
    let stats = finish(audit).await;
    assert_eq!(stats.records_written, 20);
    assert_eq!(stats.webhook_sent, 0);
    assert!(stats.webhook_failed >= 1, "{stats:?}");
    assert_eq!(
        stats.webhook_failed + stats.webhook_dropped,
        20,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_webhook_is_abandoned_after_drain_and_counted_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (url, sink) = start_sink(Mode::Gated).await;
    let audit = AuditSink::start(
        &path,
        Some(webhook(
            &url,
            Duration::from_secs(30),
            100,
            2,
            Duration::from_millis(300),
        )),
    )
    .unwrap();
    let h = audit.handle();
    for i in 0..50 {
        h.record(rec(i));
    }
    wait_started(&sink, 2).await;
    // The gate is never opened: finish must give up after `drain` (300 ms),
    // not after the 30 s request timeout.
    let stats = timeout(Duration::from_secs(10), audit.finish())
        .await
        .expect("finish returns soon after the drain time");
    assert_eq!(stats.records_written, 50);
    assert_eq!(
        (
            stats.webhook_sent,
            stats.webhook_failed,
            stats.webhook_dropped
        ),
        (0, 0, 50)
    );
    assert_eq!(read_lines(&path).len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_only_sink_flushes_periodically_and_keeps_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditSink::start(&path, None).unwrap();
    let h = audit.handle();
    let context = ctx(json!({"global": {"x": 1}, "user": {"y": 2}}));
    let n = h.record_update(
        "s-1",
        &context,
        &Context::new(),
        Duration::from_millis(7),
        false,
        Some("version_mismatch"),
    );
    assert_eq!(n, 2);

    // The periodic flush makes the records visible before finish().
    timeout(WAIT, async {
        while std::fs::read_to_string(&path).unwrap().lines().count() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("records flushed within the flush interval");
    assert_eq!(h.stats().records_written, 2);

    let stats = finish(audit).await;
    assert!(!stats.webhook_enabled);
    assert_eq!((stats.records_written, stats.records_lost), (2, 0));
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["success"], false);
        assert_eq!(l["cause"], "version_mismatch");
        assert_eq!(l["oldValue"], Value::Null);
        assert_eq!(l["latencyMs"], 7.0);
    }

    // A record after finish is not written; it is visible as submitted.
    h.record(rec(99));
    assert_eq!(h.stats().records_submitted, 3);
    assert_eq!(read_lines(&path).len(), 2);
}

#[test]
fn unwritable_path_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("audit.jsonl");
    let err = AuditSink::start(&missing, None).unwrap_err();
    assert!(matches!(err, AuditError::Create { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("writable"), "{msg}");

    // A directory is not a file either.
    let err = AuditSink::start(dir.path(), None).unwrap_err();
    assert!(err.to_string().contains(&dir.path().display().to_string()));
}

#[test]
fn webhook_errors_never_show_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // Outside a runtime the webhook cannot start.
    let cfg = WebhookConfig::new(format!("http://127.0.0.1:9/hook?token={TOKEN}"));
    let err = AuditSink::start(&path, Some(cfg.clone())).unwrap_err();
    assert!(matches!(err, AuditError::NoRuntime), "{err:?}");
    let bad = WebhookConfig::new(format!("ftp://127.0.0.1:9/hook?token={TOKEN}"));
    let err = AuditSink::start(&path, Some(bad)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("http and https"), "{msg}");
    for text in [msg, format!("{cfg:?}"), cfg.redacted_url()] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
    }
}
