//! Live metrics and live report files, end to end with the real binary:
//! - a real Prometheus server (Debian's `prometheus`; under CI, `CI=true`,
//!   `tests/setup/prometheus.sh` installs it when missing, elsewhere the test
//!   is skipped with a `SKIPPED` line on stderr) scrapes `/metrics`
//!   every second and receives remote-write pushes; after a ~15 s run its
//!   HTTP API must give the turn counters of summary.json exactly, on both
//!   paths, and `histogram_quantile(0.99, …)` of final_ping must lie in the
//!   bucket of the reported p99;
//! - the Grafana dashboard only queries metric names a real run exports;
//! - `/metrics` speaks Prometheus text and OpenMetrics by `Accept`;
//! - `kill -9` mid-run leaves timeseries.csv and the `.hlog` files up to the
//!   last interval, and `finalping report` rebuilds them, marked incomplete;
//! - bad addresses and URLs are usage errors (exit 3).
//!
//! Every wait is bounded: output lines over channels, files and Prometheus
//! answers polled until a deadline.

use crate::common;

use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RUN_LIMIT: Duration = Duration::from_secs(120);
const PROMETHEUS_LIMIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

// ------------------------------------------------------------ Prometheus

/// `/usr/bin/prometheus` for `test`; `None` (the test is skipped, said on
/// stderr) when it is missing outside CI, see [`common::system_tool`].
fn prometheus_binary(test: &str) -> Option<&'static Path> {
    system_tool("/usr/bin/prometheus", "tests/setup/prometheus.sh", test)
}

/// A Prometheus server on a loopback port with its own config and storage:
/// scrapes the targets in `targets.json` every second (file discovery, so
/// the test adds finalping's port once it knows it) and accepts remote write.
struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(binary: &Path) -> Prometheus {
        let mut last = String::new();
        // A free port is picked by binding port 0; another process may take
        // it before Prometheus binds it, so try a few times.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let targets = dir.path().join("targets.json");
            std::fs::write(&targets, "[]").expect("targets.json");
            let config = dir.path().join("prometheus.yml");
            std::fs::write(
                &config,
                format!(
                    "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: finalping\n    file_sd_configs:\n      \
                     - files: ['{}']\n        refresh_interval: 1s\n",
                    targets.display()
                ),
            )
            .expect("prometheus.yml");
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
            let child = Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-remote-write-receiver")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start prometheus");
            let mut p = Prometheus { child, port, dir };
            let deadline = Instant::now() + PROMETHEUS_LIMIT;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = p.child.try_wait() {
                    last = format!("prometheus exited with {status}: {}", p.log());
                    break;
                }
                if http_get(port, "/-/ready", None).is_some_and(|(code, _, _)| code == 200) {
                    return p;
                }
                std::thread::sleep(POLL);
            }
            if last.is_empty() {
                last = format!("not ready within {PROMETHEUS_LIMIT:?}: {}", p.log());
            }
        }
        panic!("Prometheus did not start: {last}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Makes Prometheus scrape `addr` (host:port) as job `finalping`.
    fn scrape(&self, addr: &str) {
        let tmp = self.dir.path().join("targets.json.tmp");
        std::fs::write(&tmp, format!("[{{\"targets\": [\"{addr}\"]}}]")).expect("targets");
        std::fs::rename(&tmp, self.dir.path().join("targets.json")).expect("targets.json");
    }

    fn remote_write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// An instant query: each series' labels and value.
    fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let q: String =
            percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let (code, _, body) = http_get(self.port, &format!("/api/v1/query?query={q}"), None)
            .unwrap_or_else(|| panic!("query {promql}: no answer"));
        assert_eq!(code, 200, "query {promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("query JSON");
        v["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("query {promql}: {body}"))
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect()
    }

    /// Polls `promql` until it returns at least one series (bounded).
    fn wait_for(&self, promql: &str, limit: Duration) -> Vec<(BTreeMap<String, String>, f64)> {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.query(promql);
            if !r.is_empty() {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus had no result for `{promql}` within {limit:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// The single value of `promql`.
    fn value(&self, promql: &str) -> f64 {
        let r = self.query(promql);
        assert_eq!(r.len(), 1, "`{promql}` gave {r:?}");
        r[0].1
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A plain HTTP/1.0 GET on 127.0.0.1: status, content type, body.
fn http_get(port: u16, path: &str, accept: Option<&str>) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{accept}\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Some((code, content_type, body.to_string()))
}

// ------------------------------------------------------------ finalping

/// A `finalping run` child whose output lines arrive on channels.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(bin())
            .args(with_self_check_warn(args))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn finalping");
        let stdout = lines(child.stdout.take().expect("stdout"));
        let stderr = lines(child.stderr.take().expect("stderr"));
        Running {
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The first line of stdout (`out`) or stderr starting with `prefix`.
    fn line(&mut self, out: bool, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let rx = if out { &self.stdout } else { &self.stderr };
            match rx.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "no line starting with `{prefix}` within {limit:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The `/metrics` address printed at the start (`metrics: serving http://ADDR/metrics`).
    fn metrics_addr(&mut self) -> String {
        let line = self.line(false, "metrics: serving http://", Duration::from_secs(60));
        line.trim_start_matches("metrics: serving http://")
            .trim_end_matches("/metrics")
            .to_string()
    }

    /// SIGINT (ends the linger), then the exit code within `limit`.
    fn interrupt_and_wait(mut self, limit: Duration) -> Option<i32> {
        // SAFETY: kill(2) with SIGINT on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "finalping did not exit within {limit:?}"
            );
            std::thread::sleep(POLL);
        }
    }
}

// ------------------------------------------------------------ tests

/// ~15 s: 6 VUs, one named step, turns with think time; 1 s intervals.
const PROM_SCENARIO: &str = r#"name: live prometheus
load: { vus: 6, duration: 15s, ramp_up: 1s }
steps:
  - send: { name: ask, text: hi, timeout: 5s }
  - think: 20ms..60ms
emulator: { delay: "uniform(2ms, 30ms)" }
metrics: { interval: 1s }
"#;

/// The bucket bounds (seconds) that hold `ms` milliseconds: (lower, upper].
fn bucket_of(ms: f64) -> (f64, f64) {
    let us = (ms * 1000.0).round() as u64;
    let bounds = finalping::export::BUCKETS_US;
    let i = bounds.partition_point(|le| *le < us);
    let lower = if i == 0 {
        0.0
    } else {
        bounds[i - 1] as f64 / 1e6
    };
    let upper = bounds.get(i).map_or(f64::INFINITY, |b| *b as f64 / 1e6);
    (lower, upper)
}

#[test]
fn prometheus_scrape_and_remote_write_give_the_summary_counts_and_p99_bucket() {
    let Some(binary) = prometheus_binary(
        "live_metrics::prometheus_scrape_and_remote_write_give_the_summary_counts_and_p99_bucket",
    ) else {
        return;
    };
    let prom = Prometheus::start(binary);
    let w = Workdir::new();
    let scenario = w.file("s.yaml", PROM_SCENARIO);
    let out = w.path("r");
    let remote = prom.remote_write_url();
    let mut run = Running::start(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--metrics-listen",
        "127.0.0.1:0",
        "--metrics-linger",
        "2m",
        "--prometheus-remote-write",
        &remote,
    ]);
    let addr = run.metrics_addr();
    prom.scrape(&addr);
    run.line(true, "reports:", RUN_LIMIT);
    let summary = read_json(&out.join("summary.json"));
    // Passed, or failed if the busy machine timed a turn out: the counts
    // must agree either way.
    let exit_code = match summary["status"].as_str() {
        Some("passed") => 0,
        Some("failed") => 1,
        _ => panic!("unexpected status: {summary}"),
    };
    let run_id = summary["run_id"].as_str().expect("run_id").to_string();

    // job="finalping": scraped; job="" (no job label): pushed by remote write.
    for (path, job) in [("scrape", "finalping"), ("remote write", "")] {
        let sel = |extra: &str| format!("{{job=\"{job}\",run_id=\"{run_id}\"{extra}}}");
        prom.wait_for(
            &format!("finalping_run_finished{} == 1", sel("")),
            Duration::from_secs(60),
        );
        let turns = prom.query(&format!("finalping_turns_total{}", sel(",scenario=\"\"")));
        let by_outcome: BTreeMap<String, f64> = turns
            .iter()
            .map(|(l, v)| (l["outcome"].clone(), *v))
            .collect();
        for (outcome, name) in [
            ("ok", "turns_ok"),
            ("timeout", "turns_timeout"),
            ("error", "turns_error"),
            ("disconnected", "turns_disconnected"),
            ("interrupted", "turns_interrupted"),
        ] {
            assert_eq!(
                by_outcome.get(outcome).copied(),
                Some(counter(&summary, name) as f64),
                "{path}: finalping_turns_total{{outcome=\"{outcome}\"}} vs summary {name}"
            );
        }
        assert!(
            by_outcome["ok"] > 100.0,
            "{path}: too few turns {by_outcome:?}"
        );
        assert_eq!(
            prom.value(&format!(
                "finalping_turns_sent_total{}",
                sel(",scenario=\"\"")
            )),
            counter(&summary, "turns_sent") as f64,
            "{path}: turns_sent"
        );
        // The named step carries every turn.
        assert_eq!(
            prom.value(&format!(
                "finalping_turns_total{}",
                sel(",step=\"ask\",outcome=\"ok\"")
            )),
            counter(&summary, "turns_ok") as f64,
            "{path}: step ask"
        );
        assert_eq!(
            prom.value(&format!(
                "finalping_final_ping_seconds_count{}",
                sel(",scenario=\"\"")
            )),
            summary["metrics"]["final_ping"]["count"].as_f64().unwrap(),
            "{path}: final_ping count"
        );
        let p99_ms = metric(&summary, "final_ping", "p99_ms");
        let (lower, upper) = bucket_of(p99_ms);
        let estimate = prom.value(&format!(
            "histogram_quantile(0.99, finalping_final_ping_seconds_bucket{})",
            sel(",scenario=\"\"")
        ));
        assert!(
            estimate >= lower && estimate <= upper,
            "{path}: histogram_quantile(0.99) = {estimate} s is outside ({lower}, {upper}], \
             the bucket of the reported p99 {p99_ms} ms"
        );
    }
    // 6 VUs, one chat connection each: never more than 6 open, all closed at the end.
    let scraped = "{job=\"finalping\",socket=\"chat\"}";
    assert_eq!(prom.value(&format!("finalping_open_sockets{scraped}")), 0.0);
    assert_eq!(
        prom.value(&format!(
            "max_over_time(finalping_open_sockets{scraped}[10m])"
        )),
        6.0
    );
    // Pushes were all delivered (none failed or dropped so far).
    let pushes = prom.query(&format!(
        "finalping_remote_write_pushes_total{{job=\"finalping\",run_id=\"{run_id}\"}}"
    ));
    for (labels, v) in &pushes {
        if labels["outcome"] != "sent" {
            assert_eq!(*v, 0.0, "remote write {labels:?}");
        }
    }
    // Ctrl-C ends the linger; the exit code is the run's.
    assert_eq!(
        run.interrupt_and_wait(Duration::from_secs(30)),
        Some(exit_code)
    );
}

/// A closed scenario with turns (one always failing), context updates and
/// failures, and an open one (arrival rate, so `schedule_lag` and
/// `final_ping_intended`), so that every family the dashboard uses has samples.
const DASHBOARD_SCENARIO: &str = r#"name: live dashboard
load: { vus: 2, duration: 3s }
scenarios:
  - name: closed
    weight: 1
    steps:
      - send: { name: greeting, text: hi, timeout: 5s, expect: { min_outputs: 1 } }
      - update_context: { name: cart, scope: session, vars: { cart: "c-{{vu}}" } }
      - send: { name: order, text: order, timeout: 5s, expect: { min_outputs: 3 } }
      - think: 20ms..60ms
  - name: open
    load: { executor: constant-arrival-rate, rate: 10, duration: 3s, max_vus: 3 }
    steps:
      - send: { name: hello, text: hello, timeout: 5s }
emulator: { delay: "uniform(2ms, 10ms)", outputs: 2 }
metrics: { interval: 500ms }
"#;

/// Metric names in a PromQL expression (`finalping_…`).
fn names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("finalping_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn dashboard_queries_only_metrics_a_real_run_exports_in_both_text_formats() {
    let w = Workdir::new();
    let scenario = w.file("s.yaml", DASHBOARD_SCENARIO);
    let out = w.path("r");
    let mut run = Running::start(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--metrics-listen",
        "127.0.0.1:0",
        "--metrics-linger",
        "2m",
    ]);
    let addr = run.metrics_addr();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    run.line(true, "reports:", RUN_LIMIT);

    let (code, ctype, text) = http_get(port, "/metrics", None).expect("scrape");
    assert_eq!(code, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert!(text.contains("# TYPE finalping_turns_total counter"));
    let (code, ctype, om) = http_get(
        port,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .expect("scrape OpenMetrics");
    assert_eq!(code, 200);
    assert!(
        ctype.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ctype}"
    );
    assert!(om.contains("# TYPE finalping_turns counter") && om.ends_with("# EOF\n"));

    let exported: std::collections::BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or("").to_string())
        .collect();
    for needed in [
        "finalping_failures_total",
        "finalping_context_update_seconds_bucket",
        "finalping_updates_total",
    ] {
        assert!(exported.contains(needed), "the run did not export {needed}");
    }
    let dashboard = repo_path("deploy/grafana/finalping-dashboard.json");
    let json = read_json(&dashboard);
    let mut queries = Vec::new();
    exprs(&json, &mut queries);
    assert!(
        queries.len() >= 8,
        "too few queries in {}",
        dashboard.display()
    );
    let mut used = std::collections::BTreeSet::new();
    for q in &queries {
        let names = names_in(q);
        assert!(!names.is_empty(), "query without a finalping metric: {q}");
        used.extend(names);
    }
    let unknown: Vec<_> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics finalping does not export: {unknown:?}"
    );
    assert_eq!(run.interrupt_and_wait(Duration::from_secs(30)), Some(1));
}

/// Data lines (intervals) of an `.hlog` file.
fn hlog_intervals(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('"') && !l.is_empty())
        .count()
}

#[test]
fn kill_9_leaves_the_live_files_and_report_rebuilds_them_as_incomplete() {
    let w = Workdir::new();
    let scenario = w.file(
        "s.yaml",
        "name: killed\nload: { vus: 3, duration: 10s }\nsteps:\n  - send: { text: hi, timeout: 5s }\n  - think: 20ms\nemulator: { delay: 5ms }\nmetrics: { interval: 1s }\n",
    );
    let out = w.path("r");
    let mut run = Running::start(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let started = read_json_when(&out.join("summary.json"), Duration::from_secs(60));
    assert_eq!(started["status"], "incomplete", "{started}");
    // Wait for 5 intervals in timeseries.csv (header + 5 rows) and in
    // final_ping.hlog (written right after the row), then kill -9.
    let csv = out.join("timeseries.csv");
    let hlog = out.join("final_ping.hlog");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 6
        || hlog_intervals(&hlog) < 5
    {
        assert!(
            Instant::now() < deadline,
            "the live files did not reach 5 intervals"
        );
        assert!(
            run.child.try_wait().expect("try_wait").is_none(),
            "the run ended early"
        );
        std::thread::sleep(POLL);
    }
    run.child.kill().expect("kill -9");
    run.child.wait().expect("wait");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    assert!((5..10).contains(&rows), "{rows} rows");
    assert!(hlog_intervals(&out.join("final_ping.hlog")) >= 5);
    assert!(
        !out.join("report.html").exists(),
        "the run got to its final reports"
    );

    let rebuilt = run_finalping(&["report", out.to_str().unwrap()], RUN_LIMIT);
    assert_eq!(rebuilt.status.code(), Some(0), "{}", text(&rebuilt));
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["status"], "incomplete");
    let reason = summary["status_reason"].as_str().unwrap();
    assert!(reason.contains("rebuilt by `finalping report`"), "{reason}");
    let intervals = hlog_intervals(&out.join("final_ping.hlog")).min(rows);
    assert!(
        reason.contains(&format!("{intervals} intervals")),
        "{reason}"
    );
    let turns = counter(&summary, "turns_ok");
    assert!(turns > 0);
    assert_eq!(
        summary["metrics"]["final_ping"]["count"].as_u64(),
        Some(turns)
    );
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(
        html.contains("<b>incomplete</b>"),
        "report.html does not say incomplete"
    );
    assert!(html.contains("<polyline"), "report.html has no time chart");
    // The live files are the source: left as they were.
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap().lines().count() - 1,
        rows
    );
}

/// `path` as JSON once it exists (bounded polling).
fn read_json_when(path: &Path, limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(v) = serde_json::from_str(&text) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn bad_metrics_addresses_and_urls_are_usage_errors() {
    let w = Workdir::new();
    let yaml = "name: bad\nload: { vus: 1, iterations: 1 }\nsteps:\n  - send: { text: hi }\n";
    let p = w.file("s.yaml", yaml);
    let s = p.to_str().unwrap();
    for (flags, says) in [
        (
            vec!["--metrics-listen", "localhost:9464"],
            "host names are not accepted",
        ),
        (
            vec!["--prometheus-remote-write", "ftp://x/y"],
            "http:// or https://",
        ),
    ] {
        let mut args = vec!["run", s, "--quiet"];
        args.extend(flags.iter().copied());
        let out = run_finalping(&args, RUN_LIMIT);
        assert_eq!(out.status.code(), Some(3), "{flags:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{flags:?}: {}", text(&out));
    }
    let p = w.file(
        "m.yaml",
        &format!("{yaml}metrics: {{ listen: 'example.com:80' }}\n"),
    );
    let out = run_finalping(&["validate", p.to_str().unwrap()], RUN_LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("metrics.listen"), "{}", text(&out));
    // A port in use: the run does not start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run_finalping(&["run", s, "--quiet", "--metrics-listen", &port], RUN_LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("cannot listen for metrics"),
        "{}",
        text(&out)
    );
}
