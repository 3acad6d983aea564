//! Thresholds end to end: the real binary against its embedded emulator.
//! Exit codes 0 (held), 1 (breached), 2 (unknown metric or tag, zero
//! samples), 3 (bad syntax, with line:col); every report lists every
//! threshold; `junit.xml` is read by a real JUnit consumer (Python
//! `junitparser`) and `summary.md` rendered by `markdown-it-py`; `finalping
//! report` regenerates the files from summary.json.

use crate::common;

use common::python::{run, venv_python};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// A small run: 4 VUs × 5 turns, the emulator answers after a fixed 5 ms.
fn scenario(thresholds: &str) -> String {
    format!(
        "name: gates\nload: {{vus: 4, iterations: 5}}\nsteps:\n  - send: {{text: hi}}\nemulator: {{delay: 5ms, outputs: 1}}\nthresholds:\n{thresholds}"
    )
}

/// Runs the scenario; returns the exit code, the output text and the report folder.
fn run_with(w: &Workdir, thresholds: &str) -> (Option<i32>, String, PathBuf) {
    let p = w.file("s.yaml", &scenario(thresholds));
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
    (out.status.code(), text(&out), out_dir)
}

fn python() -> &'static Path {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PY.get_or_init(|| venv_python("tests/python/requirements-gates.txt", "gates")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// What `tests/python/check_ci_outputs.py <kind>` saw in `file`.
fn consumer(kind: &str, file: &Path) -> serde_json::Value {
    let out = run(
        Command::new(python())
            .arg(repo_path("tests/python/check_ci_outputs.py"))
            .arg(kind)
            .arg(file),
        "check_ci_outputs.py",
        LIMIT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&out.stdout).expect("JSON from check_ci_outputs.py")
}

#[test]
fn thresholds_that_hold_pass_and_are_listed_everywhere() {
    let w = Workdir::new();
    let (code, out, dir) = run_with(
        &w,
        "  final_ping.p99: \"< 5s\"\n  final_ping.p75: \"< 5s\"\n  first_output.mean: \">= 5ms\"\n  turns.count: \">= 20\"\n  errors.rate: \"< 1%\"\n  \"final_ping{scenario=gates}.p50\": \"< 5s\"\n  connects_ok.count: \"> 0\"\n",
    );
    assert_eq!(code, Some(0), "{out}");
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["status"], "passed");
    assert!(
        s["status_reason"]
            .as_str()
            .unwrap()
            .contains("all 7 thresholds held"),
        "{s}"
    );
    let t = s["thresholds"]
        .as_array()
        .expect("thresholds in summary.json");
    assert_eq!(t.len(), 7);
    assert!(t.iter().all(|r| r["outcome"] == "pass"), "{t:?}");
    assert_eq!(t[0]["threshold"], "final_ping.p99 < 5s");
    assert_eq!(t[0]["unit"], "ms");
    assert_eq!(t[0]["limit"], 5000.0);
    assert_eq!(t[3]["value"], 20.0);
    assert_eq!(t[4]["value"], 0.0);
    // The mean first output is at least the emulator's fixed delay.
    assert!(t[2]["value"].as_f64().unwrap() >= 5.0, "{t:?}");
    assert!(
        out.contains("thresholds:") && out.contains("pass    turns.count >= 20"),
        "{out}"
    );

    let junit = consumer("junit", &dir.join("junit.xml"));
    let suite = &junit["suites"][0];
    assert_eq!(suite["tests"], 8, "{junit}");
    assert_eq!(suite["failures"], 0, "{junit}");
    let cases = suite["cases"].as_array().unwrap();
    assert_eq!(cases[0]["name"], "final_ping.p99 < 5s");
    assert!(cases.iter().all(|c| c["result"] == "passed"), "{junit}");
    assert_eq!(cases[7]["name"], "run status");

    let md = consumer("markdown", &dir.join("summary.md"));
    assert!(
        md["headings"]
            .as_array()
            .unwrap()
            .contains(&"Thresholds".into()),
        "{md}"
    );
    let table = &md["tables"][0];
    assert_eq!(table[0][0], "threshold", "{md}");
    assert_eq!(table.as_array().unwrap().len(), 8, "header + 7 rows: {md}");
    assert_eq!(table[4][1], "20", "{md}");

    // `finalping report` regenerates the derived files from summary.json.
    let before = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    let junit_before = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    for f in ["summary.md", "junit.xml", "percentiles.csv"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let out = run_finalping(&["report", dir.to_str().unwrap()], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.md")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("junit.xml")).unwrap(),
        junit_before
    );
    assert!(dir.join("percentiles.csv").is_file());
}

#[test]
fn a_breached_threshold_fails_the_run_with_exit_1() {
    let w = Workdir::new();
    let (code, out, dir) = run_with(
        &w,
        "  final_ping.p50: \"< 1ms\"\n  turns.count: \">= 20\"\n",
    );
    assert_eq!(code, Some(1), "{out}");
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["status"], "failed");
    let reason = s["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("1 of 2 thresholds breached") && reason.contains("final_ping.p50 < 1ms"),
        "{reason}"
    );
    assert_eq!(s["thresholds"][0]["outcome"], "fail");
    assert!(s["thresholds"][0]["value"].as_f64().unwrap() >= 5.0);
    assert_eq!(s["thresholds"][1]["outcome"], "pass");
    assert!(out.contains("FAIL    final_ping.p50 < 1ms"), "{out}");

    let junit = consumer("junit", &dir.join("junit.xml"));
    let cases = junit["suites"][0]["cases"].as_array().unwrap().clone();
    assert_eq!(cases[0]["result"], "failure", "{junit}");
    assert!(cases[0]["message"].as_str().unwrap().contains("breached"));
    assert_eq!(cases[1]["result"], "passed");
    assert_eq!(cases[2]["name"], "run status");
    assert_eq!(cases[2]["result"], "failure");
    assert_eq!(junit["suites"][0]["failures"], 2);
}

#[test]
fn a_threshold_on_an_unknown_metric_makes_the_run_invalid() {
    let w = Workdir::new();
    let (code, out, dir) = run_with(&w, "  final_pong.p99: \"< 800ms\"\n");
    assert_eq!(code, Some(2), "{out}");
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["status"], "invalid");
    let r = &s["thresholds"][0];
    assert_eq!(r["outcome"], "invalid");
    assert!(r["value"].is_null());
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.contains("unknown metric `final_pong`") && msg.contains("did you mean `final_ping`"),
        "{msg}"
    );
    assert!(out.contains("INVALID"), "{out}");
    let junit = consumer("junit", &dir.join("junit.xml"));
    assert_eq!(junit["suites"][0]["cases"][0]["result"], "error", "{junit}");
}

#[test]
fn an_unknown_tag_makes_the_run_invalid() {
    let w = Workdir::new();
    let (code, out, dir) = run_with(&w, "  \"final_ping{region=eu}.p99\": \"< 800ms\"\n");
    assert_eq!(code, Some(2), "{out}");
    let s = read_json(&dir.join("summary.json"));
    let msg = s["thresholds"][0]["message"].as_str().unwrap();
    assert!(msg.contains("unknown tag `region`"), "{msg}");
}

#[test]
fn a_thresholded_metric_without_samples_makes_the_run_invalid() {
    let w = Workdir::new();
    // A chat-only scenario never updates context.
    let (code, out, dir) = run_with(
        &w,
        "  final_ping.p99: \"< 5s\"\n  context_update.p95: \"< 50ms\"\n",
    );
    assert_eq!(code, Some(2), "{out}");
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["status"], "invalid");
    assert!(
        s["status_reason"]
            .as_str()
            .unwrap()
            .contains("zero samples"),
        "{s}"
    );
    assert_eq!(s["thresholds"][0]["outcome"], "pass");
    assert_eq!(s["thresholds"][1]["outcome"], "invalid");
}

#[test]
fn bad_threshold_syntax_is_a_usage_error_with_its_position() {
    let cases = [
        // (threshold lines, position, words)
        (
            "  final_ping.p99: \"< 800 parsecs\"\n",
            "7:19",
            "unknown unit `parsecs`",
        ),
        (
            "  final_ping.median: \"< 1s\"\n",
            "7:3",
            "unknown statistic `median`",
        ),
        ("  final_ping.p99: 800\n", "7:19", "needs an operator"),
        ("  turns.count: \"> 10ms\"\n", "7:16", "plain number"),
        ("  errors.rate: \"< 5\"\n", "7:16", "percentage"),
    ];
    for (lines, pos, words) in cases {
        let w = Workdir::new();
        let p = w.file("bad.yaml", &scenario(lines));
        for args in [
            vec!["validate", p.to_str().unwrap()],
            vec!["run", p.to_str().unwrap(), "--quiet"],
        ] {
            let out = run_finalping(&args, LIMIT);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{lines}: {}", text(&out));
            assert!(err.contains(&format!("bad.yaml:{pos}:")), "{lines}: {err}");
            assert!(
                err.contains(words) && err.contains("hint:"),
                "{lines}: {err}"
            );
        }
    }
}

/// The CI example scenario validates, and the workflow runs exactly it.
#[test]
fn the_ci_example_validates() {
    let scenario = repo_path("examples/ci-gate.yaml");
    let out = run_finalping(&["validate", scenario.to_str().unwrap()], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let workflow = std::fs::read_to_string(repo_path("examples/github-actions.yaml")).unwrap();
    assert!(
        workflow.contains("finalping run examples/ci-gate.yaml"),
        "{workflow}"
    );
    assert!(workflow.contains("finalping compare reports/baseline reports/current"));
}

#[test]
fn abort_on_fail_stops_a_long_run_early_and_fails_it() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: abort\nmetrics: {interval: 200ms}\nload: {vus: 2, duration: 60s}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 20ms}\nthresholds:\n  final_ping.p50: \"< 1ms\"\nabort_on_fail: {delay: 500ms}\n",
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
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["status"], "failed");
    let reason = s["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("aborted early") && reason.contains("final_ping.p50"),
        "{reason}"
    );
    // The reason says when it aborted (run clock): not before the 500 ms
    // delay, and at the first 200 ms tick after it where a p50 exists.
    let at: f64 = reason
        .split("(at ")
        .nth(1)
        .and_then(|r| r.split(" s)").next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no `(at X s)` in {reason}"));
    assert!(at >= 0.5, "aborted before its delay: {reason}");
    // And it stopped right there (2 VUs, 20 ms turns), not at the 60 s asked.
    let took = s["duration_s"].as_f64().unwrap();
    assert!(took < at + 1.0, "aborted at {at} s, stopped at {took} s");
}
