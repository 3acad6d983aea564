//! `finalping run` end to end: the real binary against its embedded emulator
//! (and against servers that misbehave), checking the accounting in the
//! reports, the exit codes and the error messages.

use crate::common;

use common::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// The quickstart scenario, shrunk, optionally switched to EIO4.
fn small_quickstart(w: &Workdir, eio: u8) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_path("scenarios/quickstart.yaml"))
        .expect("read quickstart")
        .replace("eio: 3", &format!("eio: {eio}"))
        .replace("think: 500ms..1500ms", "think: 10ms..30ms")
        .replace("think: 1s..2s", "think: 5ms");
    w.file("quickstart.yaml", &text)
}

fn check_quickstart(eio: u8) {
    let w = Workdir::new();
    let scenario = small_quickstart(&w, eio);
    let out_dir = w.path("report");
    let out = run_finalping(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--vus",
            "12",
            "--iterations",
            "3",
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["schema_version"], 1);
    assert_eq!(s["status"], "passed");
    // 12 VUs × 3 iterations × 2 sends
    assert_eq!(counter(&s, "turns_sent"), 72);
    assert_eq!(counter(&s, "turns_ok"), 72);
    for c in [
        "turns_timeout",
        "turns_error",
        "turns_disconnected",
        "turns_interrupted",
    ] {
        assert_eq!(counter(&s, c), 0, "{c}");
    }
    // 2 outputs per turn, each with an ack request, plus the acked finalPing.
    assert_eq!(counter(&s, "outputs"), 144);
    assert_eq!(counter(&s, "acks_sent"), 72 * 3);
    assert_eq!(counter(&s, "connects_ok"), 36);
    assert_eq!(metric(&s, "final_ping", "count"), 72.0);
    assert_eq!(metric(&s, "connect", "count"), 36.0);
    assert_eq!(metric(&s, "output_gap", "count"), 72.0);
    // The emulator waits uniform(30ms, 60ms) + 5 ms between outputs.
    assert!(metric(&s, "final_ping", "min_ms") >= 35.0, "{s}");
    assert!(metric(&s, "final_ping", "p50_ms") >= 35.0, "{s}");
    assert!(metric(&s, "first_output", "min_ms") >= 30.0, "{s}");
    assert!(metric(&s, "final_ping", "max_ms") < 10_000.0, "{s}");
    assert_eq!(s["manifest"]["target"]["eio"], eio);
    assert_eq!(s["manifest"]["target"]["embedded_emulator"], true);

    // Every report file exists and parses.
    let m = read_json(&out_dir.join("manifest.json"));
    assert_eq!(m["scenario_name"], "quickstart");
    assert_eq!(m["scenario_sha256"].as_str().map(str::len), Some(64));
    let csv = std::fs::read_to_string(out_dir.join("percentiles.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let headers = rows.headers().unwrap().clone();
    assert_eq!(&headers[0], "metric");
    assert!(headers.iter().any(|h| h == "p99_9_ms"));
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let metrics: Vec<&str> = records.iter().map(|r| &r[0]).collect();
    assert!(metrics.contains(&"final_ping"), "{csv}");
    // A metric without samples keeps its row, with blank statistics.
    let update = records.iter().find(|r| &r[0] == "context_update").unwrap();
    assert_eq!(&update[1], "0", "{csv}");
    assert!((2..update.len()).all(|i| update[i].is_empty()), "{csv}");
    let md = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(md.contains("| `final_ping` | 72 |"), "{md}");
    // summary.md leaves out metrics without samples and lists counters last.
    assert!(!md.contains("| `context_update` |"), "{md}");
    assert!(
        !md.contains("| `turns_timeout` |"),
        "zero counters are named only: {md}"
    );
    assert!(md.contains("`turns_timeout`"), "{md}");
    assert!(
        md.find("## Latency").unwrap() < md.find("## Counters").unwrap(),
        "{md}"
    );
    // The console table was printed.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("final_ping") && stdout.contains("PASSED"),
        "{stdout}"
    );
    let header = stdout
        .lines()
        .find(|l| l.starts_with("metric (ms)"))
        .unwrap();
    assert!(
        header.contains("mean") && header.contains("p95"),
        "{stdout}"
    );
}

#[test]
fn quickstart_eio3_against_embedded_emulator() {
    check_quickstart(3);
}

#[test]
fn quickstart_eio4_against_embedded_emulator() {
    check_quickstart(4);
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = repo_path("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            let out = run_finalping(&["validate", p.to_str().unwrap()], LIMIT);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}",
                p.display(),
                text(&out)
            );
            n += 1;
        }
    }
    assert!(n >= 1);
}

fn assert_usage_error(yaml: &str, want_position: &str, want_words: &[&str]) {
    let w = Workdir::new();
    let p = w.file("bad.yaml", yaml);
    for cmd in ["validate", "run"] {
        let out = run_finalping(
            &[cmd, p.to_str().unwrap(), "--quiet"][..if cmd == "run" { 3 } else { 2 }],
            LIMIT,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{cmd}: {}", text(&out));
        assert!(
            err.contains(&format!("bad.yaml:{want_position}")),
            "{cmd}: {err}"
        );
        for word in want_words {
            assert!(err.contains(word), "{cmd}: `{word}` not in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn malformed_yaml_is_a_usage_error_with_position() {
    assert_usage_error("name: x\nload: {vus: 2\nsteps: [connect]\n", "", &["hint"]);
}

#[test]
fn unknown_field_is_a_usage_error_with_position() {
    assert_usage_error(
        "name: x\nload:\n  vus: 2\n  vuss: 3\nsteps:\n  - send: {text: hi}\n",
        "4:3",
        &["vuss"],
    );
}

#[test]
fn wrong_type_is_a_usage_error_with_position() {
    assert_usage_error(
        "name: x\nload:\n  vus: many\nsteps:\n  - send: {text: hi}\n",
        "3:8",
        &["many"],
    );
}

#[test]
fn missing_env_var_is_a_usage_error_with_position() {
    assert_usage_error(
        "name: x\ntarget:\n  url_token: \"${env:FINALPING_TEST_SURELY_UNSET_VAR}\"\nload: {vus: 1}\nsteps:\n  - send: {text: hi}\n",
        "3:",
        &["FINALPING_TEST_SURELY_UNSET_VAR"],
    );
}

#[test]
fn unreachable_target_counts_connect_errors_and_fails() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: unreachable\ntarget: {reconnect: {interval: 100ms, max_attempts: 2}}\nload: {vus: 3, iterations: 2}\nsteps:\n  - connect\n  - send: {text: hi, timeout: 2s}\n",
    );
    let out_dir = w.path("r");
    let target = format!("http://127.0.0.1:{port}");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap(),
            "--target",
            &target,
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["status"], "invalid");
    // Per VU and iteration: one connect and two reconnects, all refused, then
    // the conversation is abandoned and its turn never sent.
    assert_eq!(counter(&s, "connect_errors"), 3 * 2 * 3, "{s}");
    assert_eq!(counter(&s, "reconnects"), 3 * 2 * 2, "{s}");
    assert_eq!(counter(&s, "conversations_abandoned"), 3 * 2, "{s}");
    assert_eq!(counter(&s, "turns_sent"), 0);
    assert_eq!(s["errors"]["connect_refused"].as_u64(), Some(18), "{s}");
    assert_eq!(s["errors"]["reconnect_exhausted"].as_u64(), Some(6), "{s}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("connect_refused"), "{stdout}");
    assert!(!text(&out).contains("panicked"));
}

/// A WebSocket server that completes the Engine.IO handshake but never sends
/// `endpoint-ready`.
fn silent_endpoint() -> (String, std::thread::JoinHandle<()>) {
    use tokio_tungstenite::tungstenite::{accept, Message};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        // Serve a bounded number of connections, each until the client gives up.
        for stream in listener.incoming().take(4) {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let Ok(mut ws) = accept(stream) else { return };
                let open = r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
                let _ = ws.send(Message::text(open));
                let _ = ws.send(Message::text("40"));
                while ws.read().is_ok() {}
            });
        }
    });
    (url, handle)
}

#[test]
fn missing_endpoint_ready_is_a_connect_timeout() {
    let (url, _server) = silent_endpoint();
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: silent\ntarget: {connect_timeout: 500ms, reconnect: {max_attempts: 0}}\nload: {vus: 2, iterations: 1}\nsteps:\n  - connect\n  - send: {text: hi}\n",
    );
    let out_dir = w.path("r");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap(),
            "--target",
            &url,
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(
        s["errors"]["connect_connect_timeout"].as_u64(),
        Some(2),
        "{s}"
    );
    assert_eq!(counter(&s, "connects_ok"), 0);
    assert_eq!(
        counter(&s, "reconnects"),
        0,
        "max_attempts 0 never reconnects"
    );
}

#[test]
fn two_thousand_vus_against_embedded_emulator() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: many\nload: {vus: 2000, iterations: 1, ramp_up: 2s}\nsteps:\n  - connect\n  - send: {text: hi, timeout: 30s}\n  - think: 200ms\n  - send: {text: again, timeout: 30s}\n  - disconnect\nemulator: {delay: 5ms}\n",
    );
    let out_dir = w.path("r");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(counter(&s, "turns_ok"), 4000);
    assert_eq!(counter(&s, "connects_ok"), 2000);
    assert!(s["peak_vus"].as_u64().unwrap() > 100, "{s}");
}

#[test]
fn too_many_vus_for_the_fd_limit_is_refused_with_advice() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: huge\nload: {vus: 4000000, iterations: 1}\nsteps:\n  - send: {text: hi}\n",
    );
    let out = run_finalping(&["run", p.to_str().unwrap(), "--quiet"], LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("open files") && err.contains("finalping serve"),
        "{err}"
    );
    // The advice names a number of worker processes that would fit…
    let workers: u32 = err
        .split("--workers ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no --workers advice: {err}"));
    assert!(workers > 1, "{err}");
    // …and with too few workers, how many would.
    let out = run_finalping(
        &["run", p.to_str().unwrap(), "--quiet", "--workers", "2"],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2000000 VUs per worker with --workers 2")
            && err.contains(&format!("--workers {workers} would fit")),
        "{err}"
    );
}

#[test]
fn ctrl_c_writes_partial_reports_marked_interrupted() {
    use std::process::{Command, Stdio};
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: long\nload: {vus: 5, duration: 5m}\nsteps:\n  - send: {text: hi}\n  - think: 50ms\nemulator: {delay: 2ms}\n",
    );
    let out_dir = w.path("r");
    let mut child = Command::new(bin())
        .args([
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .args(SELF_CHECK_WARN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first stderr line says the run has started.
    let stderr = child.stderr.take().unwrap();
    let line = first_line(stderr, Duration::from_secs(30));
    assert!(line.contains("running"), "{line}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_with_limit(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["status"], "interrupted");
    assert_eq!(
        counter(&s, "turns_sent"),
        counter(&s, "turns_ok")
            + counter(&s, "turns_interrupted")
            + counter(&s, "turns_error")
            + counter(&s, "turns_timeout")
            + counter(&s, "turns_disconnected")
    );
}

#[test]
fn url_token_never_appears_in_output_or_reports() {
    let secret = "sEcReT-url-token-4f1d9c2b7a";
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: secret\ntarget: {url_token: \"${env:FINALPING_TEST_URL_TOKEN}\"}\nload: {vus: 2, iterations: 2}\nsteps:\n  - send: {text: hi}\n",
    );
    let out_dir = w.path("r");
    let out = run_finalping_env(
        &[
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[
            ("FINALPING_TEST_URL_TOKEN", secret),
            ("RUST_LOG", "finalping=debug"),
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains(secret), "{}", text(&out));
    let mut files = 0;
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        let content = std::fs::read_to_string(&path).unwrap();
        assert!(!content.contains(secret), "secret in {}", path.display());
        assert!(
            !content.contains("4f1d9c2b7a"),
            "secret tail in {}",
            path.display()
        );
        files += 1;
    }
    assert!(files >= 4);
    let m = read_json(&out_dir.join("manifest.json"));
    assert!(
        m["target"]["url_token"]
            .as_str()
            .unwrap()
            .starts_with("sEcR"),
        "{m}"
    );
}

#[test]
fn output_format_picks_the_optional_report_files() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: formats\nload: {vus: 1, iterations: 2}\nsteps:\n  - send: {text: hi}\nthresholds:\n  final_ping.p99: \"< 5s\"\n",
    );
    let out_dir = w.path("r");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
            "--output-format",
            "junit,markdown",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "histograms.json",
            "junit.xml",
            "manifest.json",
            "summary.json",
            "summary.md"
        ]
    );

    let bad = run_finalping(
        &["run", p.to_str().unwrap(), "--output-format", "pdf"],
        LIMIT,
    );
    assert_eq!(
        bad.status.code(),
        Some(3),
        "an unknown format is a usage error: {}",
        text(&bad)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("pdf"));
}

/// The embedded emulator runs on threads of its own, so the generator's CPU
/// (`cpu_ms_client`) leaves it out; against an external `finalping serve`
/// there is no emulator share at all.
#[test]
fn client_cpu_leaves_out_the_embedded_emulator() {
    let steps = "load: {vus: 4, duration: 1500ms}\nsteps:\n  - send: {text: hi}\n  - think: 5ms\n";
    let ms = |g: &serde_json::Value, k: &str| {
        g[k].as_f64()
            .unwrap_or_else(|| panic!("generator.{k} missing in {g}"))
    };

    let yaml = format!("name: cpu\n{steps}emulator: {{delay: 1ms}}\n");
    let (out, s, _w) = run_yaml(&yaml, &[], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(counter(&s, "turns_ok") > 20, "{s}");
    let g = &s["generator"];
    let (total, client, emulator) = (
        ms(g, "cpu_ms"),
        ms(g, "cpu_ms_client"),
        ms(g, "cpu_ms_emulator"),
    );
    assert!(emulator > 0.0, "{g}");
    assert!(client > 0.0 && client < total, "{g}");
    assert!((client + emulator - total).abs() < 0.01, "{g}");
    assert_eq!(g["includes_embedded_emulator"], false, "{g}");

    let served = serve(&[]);
    let yaml = format!("name: cpu-external\n{steps}");
    let (out, s, _w) = run_yaml(&yaml, &["--target", &served.url], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(counter(&s, "turns_ok") > 20, "{s}");
    let g = &s["generator"];
    assert!(g.get("cpu_ms_emulator").is_none(), "{g}");
    assert_eq!(ms(g, "cpu_ms_client"), ms(g, "cpu_ms"), "{g}");
    assert!(ms(g, "cpu_ms_client") > 0.0, "{g}");
    assert_eq!(g["includes_embedded_emulator"], false, "{g}");
}

// ------------------------------------------------ segments and start alignment

/// A one-VU scenario that finishes in a moment.
const TINY: &str =
    "name: tiny\nload: {vus: 5, iterations: 1}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 2ms}\n";

/// A running `finalping run` whose stderr lines arrive on a channel.
struct Streaming {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Streaming {
    fn spawn(args: &[&str], cwd: &std::path::Path) -> Streaming {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin())
            .args(with_self_check_warn(args))
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Streaming {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 60 s) for a stderr line containing `want`.
    fn wait_for(&mut self, want: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(want) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with `{want}`; saw {:#?}", self.seen),
            }
        }
    }

    /// The exit code and every stderr line.
    fn finish(mut self) -> (Option<i32>, String) {
        let out = wait_with_limit(self.child, LIMIT);
        self.seen.extend(self.lines.try_iter());
        (out.status.code(), self.seen.join("\n"))
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn bad_segment_flags_are_usage_errors() {
    let w = Workdir::new();
    let p = w.file("s.yaml", TINY);
    let p = p.to_str().unwrap();
    for (args, want) in [
        (vec!["--segment", "3/3"], "i must be below N"),
        (vec!["--segment", "1/0"], "N must be at least 1"),
        (vec!["--segment", "a"], "write `i/N`"),
        (vec!["--segment", "5/6"], "segment 5/6 would run no VUs"),
        (vec!["--run-id", "../up"], "not a safe folder name"),
        (vec!["--start-at", "tomorrow"], "not an RFC 3339 time"),
        (vec!["--start-barrier", "b"], "--segment"),
        (
            vec!["--segment", "0/2", "--start-barrier", "b"],
            "--start-barrier needs --run-id",
        ),
    ] {
        let mut all = vec!["run", p, "--quiet"];
        all.extend(&args);
        let out = run_finalping(&all, LIMIT);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = run_finalping(&["validate", p, "--segment", "1/2"], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("segment 1/2: 2 of 5 VUs (VU numbers 2, 4, … step 2)"),
        "{said}"
    );
    let out = run_finalping(&["validate", p, "--segment", "5/6"], LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn a_segment_writes_its_own_folder_and_manifest_block() {
    let w = Workdir::new();
    let p = w.file("s.yaml", TINY);
    let run = Streaming::spawn(
        &[
            "run",
            p.to_str().unwrap(),
            "--segment",
            "1/2",
            "--run-id",
            "nightly-7",
        ],
        w.dir.path(),
    );
    let (code, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("segment 1/2: 2 of 5 VUs"), "banner: {err}");
    let dir = w.path("reports/nightly-7/segment-1-of-2");
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["run_id"], "nightly-7");
    // VUs 2 and 4 of 5.
    assert_eq!(counter(&s, "turns_ok"), 2);
    let m = read_json(&dir.join("manifest.json"));
    assert_eq!(m["segment"]["index"], 1);
    assert_eq!(m["segment"]["count"], 2);
    assert!(m["segment"].get("start_at").is_none(), "{m}");
    // Without --seed, the seed comes from the run id: the same for every segment.
    let again = Streaming::spawn(
        &[
            "run",
            p.to_str().unwrap(),
            "--segment",
            "0/2",
            "--run-id",
            "nightly-7",
            "--quiet",
        ],
        w.dir.path(),
    );
    let (code, err) = again.finish();
    assert_eq!(code, Some(0), "{err}");
    let m0 = read_json(&w.path("reports/nightly-7/segment-0-of-2/manifest.json"));
    assert_eq!(m0["seed"], m["seed"]);
}

#[test]
fn a_start_later_than_the_tolerance_makes_the_run_invalid() {
    let w = Workdir::new();
    let p = w.file("s.yaml", TINY);
    let at = rfc3339(chrono::Utc::now() - chrono::Duration::seconds(5));
    let out_dir = w.path("r");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap(),
            "--start-at",
            &at,
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["status"], "invalid");
    assert!(
        s["status_reason"]
            .as_str()
            .unwrap()
            .contains("after the common start time (tolerance 1000 ms)"),
        "{s}"
    );
    let m = read_json(&out_dir.join("manifest.json"));
    assert_eq!(m["segment"]["start_at"], at.as_str());
    assert!(
        m["segment"]["start_late_ms"].as_f64().unwrap() >= 5000.0,
        "{m}"
    );
}

#[test]
fn ctrl_c_while_waiting_for_the_start_stops_at_once() {
    let w = Workdir::new();
    let p = w.file("s.yaml", TINY);
    let at = rfc3339(chrono::Utc::now() + chrono::Duration::hours(1));
    let mut run = Streaming::spawn(
        &["run", p.to_str().unwrap(), "--start-at", &at, "--out", "r"],
        w.dir.path(),
    );
    let line = run.wait_for("waiting");
    assert!(line.contains(&at) && line.contains("Ctrl-C"), "{line}");
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, err) = run.finish();
    assert_eq!(code, Some(130), "{err}");
    let s = read_json(&w.path("r/summary.json"));
    assert_eq!(s["status"], "interrupted");
    assert_eq!(counter(&s, "turns_ok"), 0);
}

/// Three segment processes meet at a start barrier: the first two wait for
/// the third, then all start at one instant derived from the ready files.
#[test]
fn segments_meet_at_a_start_barrier() {
    let w = Workdir::new();
    let p = w.file("s.yaml", TINY);
    let barrier = w.path("barrier");
    let args = |i: u32| -> Vec<String> {
        [
            "run",
            p.to_str().unwrap(),
            "--segment",
            &format!("{i}/3"),
            "--run-id",
            "meet",
            "--start-barrier",
            barrier.to_str().unwrap(),
            "--barrier-timeout",
            "2m",
            "--out",
            &format!("seg{i}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let spawn = |i: u32| {
        let a = args(i);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        Streaming::spawn(&refs, w.dir.path())
    };
    let mut early: Vec<Streaming> = (0..2).map(spawn).collect();
    for run in &mut early {
        run.wait_for("waiting for all 3 segments");
    }
    // Both have checked in and cannot start without segment 2.
    for run in &mut early {
        assert!(run.child.try_wait().unwrap().is_none(), "still waiting");
    }
    assert!(barrier.join("ready-segment-0-of-3.json").is_file());
    assert!(!barrier.join("ready-segment-2-of-3.json").exists());
    early.push(spawn(2));
    let mut turns = 0;
    let mut starts = Vec::new();
    for (i, run) in early.into_iter().enumerate() {
        let (code, err) = run.finish();
        let dir = w.path(&format!("seg{i}"));
        let s = read_json(&dir.join("summary.json"));
        // A node stalled for over a second is reported, not hidden.
        let late = s["status_reason"]
            .as_str()
            .unwrap()
            .contains("after the common start time");
        assert!(code == Some(0) || (code == Some(2) && late), "{err}");
        turns += counter(&s, "turns_ok");
        let m = read_json(&dir.join("manifest.json"));
        let start_at = m["segment"]["start_at"].as_str().unwrap().to_string();
        assert!(
            s["started_at"].as_str().unwrap() >= start_at.as_str(),
            "segment {i} started before the common start: {s}"
        );
        starts.push(start_at);
    }
    assert_eq!(turns, 5, "the 5 VUs ran once each, across the segments");
    assert!(starts.iter().all(|s| *s == starts[0]), "{starts:?}");
    // The common start is the last check-in plus 2 s, computed from the files.
    let last = (0..3)
        .map(|i| {
            let r = read_json(&barrier.join(format!("ready-segment-{i}-of-3.json")));
            assert_eq!(r["run_id"], "meet");
            chrono::DateTime::parse_from_rfc3339(r["ready_at"].as_str().unwrap())
                .unwrap()
                .with_timezone(&chrono::Utc)
        })
        .max()
        .unwrap();
    assert_eq!(starts[0], rfc3339(last + chrono::Duration::seconds(2)));
}

#[test]
fn a_barrier_that_never_fills_names_the_missing_segments() {
    let w = Workdir::new();
    let p = w.file("s.yaml", TINY);
    let barrier = w.path("b");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap(),
            "--segment",
            "0/3",
            "--run-id",
            "alone",
            "--start-barrier",
            barrier.to_str().unwrap(),
            "--barrier-timeout",
            "300ms",
            "--out",
            w.path("r").to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only 1 of 3 segments are ready") && err.contains("(missing: 1, 2)"),
        "{err}"
    );
}

#[test]
fn workers_run_the_segments_as_child_processes() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: workers\nload: {vus: 7, iterations: 2}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 2ms}\n",
    );
    let out_dir = w.path("r");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap(),
            "--workers",
            "3",
            "--run-id",
            "w-1",
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut turns = 0;
    for i in 0..3 {
        let dir = out_dir.join(format!("segment-{i}-of-3"));
        let s = read_json(&dir.join("summary.json"));
        assert_eq!(s["run_id"], "w-1");
        assert_eq!(s["status"], "passed");
        turns += counter(&s, "turns_ok");
        let m = read_json(&dir.join("manifest.json"));
        assert_eq!(m["segment"]["index"], i);
        assert!(
            m["segment"]["start_at"].is_string(),
            "started at the barrier: {m}"
        );
        // The worker was told to report as one segment of the run.
        let cmd = m["command_line"].as_str().unwrap();
        assert!(
            cmd.contains(&format!("--segment {i}/3")) && cmd.contains("--self-check warn"),
            "{cmd}"
        );
    }
    assert_eq!(turns, 7 * 2, "the workers' turns add up to the plan");
    // The run folder holds their merge: one report for the whole run.
    let merged = read_json(&out_dir.join("summary.json"));
    assert_eq!(merged["status"], "passed", "{merged}");
    assert_eq!(counter(&merged, "turns_ok"), turns);
    let seg = |i: usize, field: &str| {
        let s = read_json(&out_dir.join(format!("segment-{i}-of-3/summary.json")));
        metric(&s, "final_ping", field)
    };
    assert_eq!(metric(&merged, "final_ping", "count"), turns as f64);
    let max = (0..3).map(|i| seg(i, "max_ms")).fold(0.0, f64::max);
    assert_eq!(metric(&merged, "final_ping", "max_ms"), max);
    assert!(out_dir.join("final_ping.hlog").is_file());
}

#[test]
fn ctrl_c_stops_every_worker_with_partial_reports() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: long\nload: {vus: 6, duration: 5m}\nsteps:\n  - send: {text: hi}\n  - think: 50ms\nemulator: {delay: 2ms}\n",
    );
    let mut run = Streaming::spawn(
        &["run", p.to_str().unwrap(), "--workers", "2", "--out", "r"],
        w.dir.path(),
    );
    // The combined progress line: both workers are running.
    run.wait_for("| turns");
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, err) = run.finish();
    assert_eq!(code, Some(130), "{err}");
    let mut turns = 0;
    for i in 0..2 {
        let s = read_json(&w.path(&format!("r/segment-{i}-of-2/summary.json")));
        assert_eq!(s["status"], "interrupted", "{s}");
        assert!(counter(&s, "turns_ok") > 0, "{s}");
        turns += counter(&s, "turns_ok");
    }
    // The partial segments are merged, marked interrupted.
    let merged = read_json(&w.path("r/summary.json"));
    assert_eq!(merged["status"], "interrupted", "{merged}");
    assert_eq!(counter(&merged, "turns_ok"), turns);
}
