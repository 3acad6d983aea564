//! `finalping capacity` against an emulator that degrades above a known load
//! (12 concurrent sessions, +20 ms per session over it): the knee is found
//! within one step of that point, and a second search gives the same answer.

use crate::common;

use common::*;
use std::time::Duration;

fn search(w: &Workdir, name: &str) -> serde_json::Value {
    let scenario = w.file(
        "cap.yaml",
        "name: cap\nload: {vus: 1, duration: 1s}\nsteps:\n  - send: {text: hi}\n  - think: 20ms\nemulator: {delay: 5ms, degrade: {above_sessions: 12, per_session: 20ms}}\n",
    );
    let out_dir = w.path(name);
    let out = run_finalping(
        &[
            "capacity",
            scenario.to_str().unwrap(),
            "--slo",
            "final_ping.p99 < 60ms",
            "--start",
            "4",
            "--step",
            "4",
            "--max",
            "40",
            "--hold",
            "1500ms",
            "--refine",
            "1",
            // The test machine runs many things at once; saturation is tested elsewhere.
            "--self-check",
            "warn",
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        Duration::from_secs(240),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    read_json(&out_dir.join("capacity.json"))
}

#[test]
fn the_knee_is_found_within_one_step_and_reproducibly() {
    let _quiet = exclusive();
    let w = Workdir::new();
    let a = search(&w, "a");
    let b = search(&w, "b");
    for r in [&a, &b] {
        let max = r["max_sustainable"].as_f64().unwrap();
        let knee = r["knee"].as_f64().unwrap();
        // Configured point: 12 sessions. One step = 4 VUs.
        assert!((12.0..=16.0).contains(&max), "{r}");
        assert!((13.0..=16.0).contains(&knee), "{r}");
        assert_eq!(r["generator_bound"], false);
        let steps = r["steps"].as_array().unwrap();
        assert!(steps.len() >= 4);
        // Sorted by load, the refinement step between its neighbours.
        let loads: Vec<f64> = steps.iter().map(|s| s["load"].as_f64().unwrap()).collect();
        assert!(loads.windows(2).all(|p| p[0] < p[1]), "{loads:?}");
        for st in steps {
            // The status says what the step showed against the SLO.
            let want = if st["ok"] == true {
                "passed"
            } else {
                "breached"
            };
            assert_eq!(st["status"], want, "{st}");
            assert!(st["turns_per_sec"].as_f64().unwrap() > 0.0, "{st}");
            // A chat-only scenario measures no context update: null, not 0.0.
            assert!(st["context_update_p99_ms"].is_null(), "{st}");
        }
        // Every step's percentiles come with a confidence interval around them.
        for st in r["steps"].as_array().unwrap() {
            for p in ["p50", "p99"] {
                let est = st[format!("final_ping_{p}_ms")].as_f64().unwrap();
                let ci = st[format!("final_ping_{p}_ci_ms")].as_array().unwrap();
                let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
                assert!(0.0 < lo && lo <= est && est <= hi, "{p}: {st}");
            }
        }
    }
    let md = std::fs::read_to_string(w.path("a/capacity.md")).unwrap();
    assert!(
        !md.contains("```"),
        "capacity.md is a table, not a code block:\n{md}"
    );
    assert!(md.contains("| load.vus | status | turns/s |"), "{md}");
    assert!(md.contains("| breached |"), "{md}");
    let html = std::fs::read_to_string(w.path("a/report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("maximum sustainable load"),
        "capacity page"
    );
    // Two searches agree within one refinement step (2 VUs).
    let diff =
        (a["max_sustainable"].as_f64().unwrap() - b["max_sustainable"].as_f64().unwrap()).abs();
    assert!(diff <= 2.0, "{a} vs {b}");
}

#[test]
fn a_saturated_generator_ends_the_search_with_the_self_checks_remedy() {
    // A 1 µs lag budget: the first step is always saturated (strict, the default).
    let w = Workdir::new();
    let scenario = w.file(
        "sat.yaml",
        "name: sat\nmetrics: {interval: 200ms, lag_p99_budget: 1us}\nload: {vus: 1, duration: 1s}\nsteps:\n  - send: {text: hi}\n  - think: 20ms\nemulator: {delay: 1ms}\n",
    );
    let out_dir = w.path("sat");
    let out = run_finalping(
        &[
            "capacity",
            scenario.to_str().unwrap(),
            "--slo",
            "final_ping.p99 < 500ms",
            "--start",
            "2",
            "--step",
            "2",
            "--max",
            "6",
            "--hold",
            "1s",
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        Duration::from_secs(120),
    );
    assert!(out.status.code().is_some(), "{}", text(&out));
    let r = read_json(&out_dir.join("capacity.json"));
    assert_eq!(r["generator_bound"], true, "{r}");
    let step = &r["steps"][0];
    assert_eq!(step["saturated"], true, "{r}");
    let hint = step["saturation_hint"]
        .as_str()
        .expect("a saturated step has a hint");
    let run = read_json(&std::path::Path::new(step["dir"].as_str().unwrap()).join("summary.json"));
    assert_eq!(run["self_check"]["hint"].as_str(), Some(hint), "{run}");
    let conclusion = r["conclusion"].as_str().unwrap();
    assert!(conclusion.contains(hint), "{conclusion}");
}
