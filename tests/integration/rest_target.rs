//! REST Endpoint turns and context injects end to end: the real binary
//! against the embedded emulator (or one started in this process, to inject
//! faults), and the shared-SaaS guard through `finalping validate`.

use crate::common;

use common::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn rest_turns_and_injects_against_the_embedded_emulator() {
    let (out, s, w) = run_yaml(
        "name: rest\ntarget: {kind: rest}\nruntime: {kind: rest_inject}\nload: {vus: 4, iterations: 5}\nsteps:\n  - connect\n  - send: {text: \"hi {{vu}}\", expect: {min_outputs: 2, text_contains: \"hi\"}}\n  - update_context: {scope: session, vars: {cart: \"c-{{vu}}\", n: 2}}\n  - send: {text: again}\nemulator: {delay: 5ms, outputs: 2, rest: {internal_entries: true, string_data: true}}\n",
        &[],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counter(&s, "turns_ok"), 40);
    // Two outputs per reply; the internal `_cognigy` entry is not counted.
    assert_eq!(counter(&s, "outputs"), 80);
    assert_eq!(metric(&s, "rest_turn", "count"), 40.0);
    assert_eq!(metric(&s, "final_ping", "count"), 40.0);
    assert_eq!(
        metric(&s, "first_output", "count"),
        0.0,
        "REST has no first-output time"
    );
    assert_eq!(counter(&s, "updates_ok"), 20);
    assert_eq!(metric(&s, "context_update", "count"), 20.0);
    assert_eq!(metric(&s, "context_visible", "count"), 20.0);
    let audit = std::fs::read_to_string(w.path("r/audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 40, "2 variables × 20 injects");
    assert_eq!(s["context"]["accuracy_rate"], 1.0);
}

#[test]
fn a_bad_api_key_is_counted_and_never_printed() {
    let key = "not-the-key-7c1e99a0";
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: badkey\ntarget: {kind: rest}\nruntime: {kind: rest_inject, api_key: \"${env:FINALPING_TEST_API_KEY}\"}\nload: {vus: 1, iterations: 3}\nsteps:\n  - send: {text: hi}\n  - update_context: {scope: session, vars: {a: 1}}\n",
    );
    let out_dir = w.path("r");
    let out = run_finalping_env(
        &[
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[("FINALPING_TEST_API_KEY", key)],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(counter(&s, "updates_rejected"), 3);
    assert_eq!(s["errors"]["update_problem_401"], 3, "{s}");
    assert!(!text(&out).contains(key));
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        let content = std::fs::read_to_string(&path).unwrap();
        assert!(!content.contains(key), "key in {}", path.display());
    }
}

#[test]
fn faults_are_counted_by_cause_and_the_run_ends_on_time() {
    let (out, s, _w) = run_yaml(
        "name: faults\ntarget: {kind: rest}\nload: {vus: 2, iterations: 6}\nsteps:\n  - send: {text: hi, timeout: 500ms}\nemulator: {delay: 1ms, rest: {stall_every: 4, stall_for: 5s, fail_5xx_every: 3, rate_limit: {requests: 8, per: 10s}}}\n",
        &[],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // On time: the run (by its own clock) is shorter than a single 5 s stall,
    // so the 500 ms turn timeout cut every stall.
    let took = s["duration_s"].as_f64().unwrap();
    assert!(took < 5.0, "{took} s: a stall was waited out\n{s}");
    // Exact, whatever the order of the two VUs: the rate limit (one 10 s
    // window from the emulator's start; the run takes under 5 s) lets the first
    // 8 of the 12 requests through (4 × 429); of those 8, the 3rd and 6th
    // get a 500 (checked first), the 4th and 8th stall into the timeout.
    assert_eq!(
        s["errors"],
        serde_json::json!({"rest_http_429": 4, "rest_http_5xx": 2, "rest_timeout": 2}),
        "{s}"
    );
    assert_eq!(counter(&s, "turns_ok"), 4, "{s}");
    assert_eq!(counter(&s, "turns_error"), 6, "{s}");
    assert_eq!(counter(&s, "turns_timeout"), 2, "{s}");
    // Every turn is accounted for exactly once.
    assert_eq!(
        counter(&s, "turns_sent"),
        counter(&s, "turns_ok") + counter(&s, "turns_error") + counter(&s, "turns_timeout")
    );
    assert_eq!(counter(&s, "turns_sent"), 12);
}

#[test]
fn the_shared_saas_guard_refuses_a_busy_plan_without_the_flag() {
    let w = Workdir::new();
    // Validation only: nothing connects to the named host.
    let p = w.file(
        "s.yaml",
        "name: saas\ntarget: {kind: rest, url: \"https://endpoint-trial.cognigy.ai\", url_token: abcdef012345}\nload: {vus: 100, duration: 10m}\nsteps:\n  - send: {text: hi}\n",
    );
    let out = run_finalping(&["validate", p.to_str().unwrap()], LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--i-own-this-capacity"));
    let out = run_finalping(
        &["validate", p.to_str().unwrap(), "--i-own-this-capacity"],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
