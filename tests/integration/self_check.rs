//! The generator self-check in strict mode: a run whose scheduler lag exceeds
//! its budget is marked invalid in every report and exits 2; the time series
//! and `.hlog` files are written for every run.

use crate::common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_lag_budget_the_generator_cannot_meet_makes_the_run_invalid() {
    let w = Workdir::new();
    // 1 µs: a 10 ms sleep always overshoots by more than that.
    let p = w.file(
        "s.yaml",
        "name: strict\nmetrics: {interval: 200ms, lag_p99_budget: 1us}\nload: {vus: 2, duration: 1s}\nsteps:\n  - send: {text: hi}\n  - think: 20ms\nemulator: {delay: 1ms}\n",
    );
    let out_dir = w.path("r");
    // Strict is the default: no --self-check flag here.
    let child = Command::new(bin())
        .args([
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_limit(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["status"], "invalid");
    assert_eq!(s["self_check"]["saturated"], true);
    assert!(s["self_check"]["lag_samples"].as_u64().unwrap() > 10, "{s}");
    assert!(s["status_reason"].as_str().unwrap().contains("saturated"));
    assert!(
        counter(&s, "turns_ok") > 0,
        "it did measure, but cannot be trusted"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SATURATED"), "{stdout}");
    let md = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(md.contains("saturated"), "{md}");

    // The time series has a row per 200 ms interval and the hlog files exist.
    let csv = std::fs::read_to_string(out_dir.join("timeseries.csv")).unwrap();
    let rows = csv.lines().count() - 1;
    assert!((4..=12).contains(&rows), "{rows} rows:\n{csv}");
    assert!(out_dir.join("final_ping.hlog").is_file());
    assert!(out_dir.join("connect.hlog").is_file());
}

#[test]
fn warn_mode_reports_saturation_without_changing_the_status() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: warn\nmetrics: {lag_p99_budget: 1us}\nload: {vus: 1, iterations: 3}\nsteps:\n  - send: {text: hi}\n  - think: 100ms\nemulator: {delay: 1ms}\n",
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
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["status"], "passed");
    assert_eq!(s["self_check"]["saturated"], true);
}
