//! Executors and honest timing, end to end with the real binary: ramping and
//! arrival-rate executors, seeded Poisson arrivals, dropped conversations, an
//! emulator stall that only the intended-start timing shows, and the accuracy
//! of reported percentiles against the delays the emulator injected.

use crate::common;

use common::*;
use finalping::emulator::{self, Delay, EmulatorConfig};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn run_scenario(yaml: &str) -> (std::process::Output, serde_json::Value, Workdir) {
    run_yaml(yaml, &[], LIMIT)
}

#[test]
fn ramping_vus_follows_the_stages_up_and_down() {
    let (out, s, w) = run_scenario(
        "name: ramp\nmetrics: {interval: 250ms}\nload: {executor: ramping-vus, stages: [{duration: 1s, target: 6}, {duration: 1s, target: 6}, {duration: 1s, target: 0}]}\nsteps:\n  - send: {text: hi}\n  - think: 50ms\nemulator: {delay: 5ms}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s["peak_vus"], 6, "{s}");
    assert!(counter(&s, "turns_ok") > 30, "{s}");
    let csv = std::fs::read_to_string(w.path("r/timeseries.csv")).unwrap();
    let active: Vec<u64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let peak_at = active.iter().position(|v| *v == 6).expect("reaches 6");
    assert!(peak_at > 0 && active[0] < 6, "ramps up: {active:?}");
    assert!(*active.last().unwrap() < 6, "ramps down: {active:?}");
}

#[test]
fn constant_arrival_rate_starts_conversations_on_schedule() {
    let (out, s, _w) = run_scenario(
        "name: car\nload: {executor: constant-arrival-rate, rate: 40, duration: 2s, max_vus: 20}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 5ms}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let started = metric(&s, "schedule_lag", "count");
    // Uniform arrivals every 25 ms for 2 s: 79 (the one at t = 2 s is past the end).
    assert!((78.0..=80.0).contains(&started), "{started}");
    assert_eq!(counter(&s, "dropped"), 0);
    assert_eq!(metric(&s, "final_ping_intended", "count"), started);
    assert!(metric(&s, "final_ping_intended", "p50_ms") >= metric(&s, "final_ping", "p50_ms"));
}

#[test]
fn seeded_poisson_arrivals_repeat() {
    let yaml = "name: poisson\nseed: 7\nload: {executor: ramping-arrival-rate, start_rate: 10, stages: [{duration: 1s, target: 60}, {duration: 500ms, target: 60}], max_vus: 30, arrival: poisson}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 2ms}\n";
    let (out_a, a, _w1) = run_scenario(yaml);
    let (out_b, b, _w2) = run_scenario(yaml);
    assert_eq!(out_a.status.code(), Some(0), "{}", text(&out_a));
    assert_eq!(out_b.status.code(), Some(0), "{}", text(&out_b));
    let n = metric(&a, "schedule_lag", "count");
    assert!(n > 20.0, "{n}");
    assert_eq!(
        n,
        metric(&b, "schedule_lag", "count"),
        "same seed, same arrivals"
    );
}

#[test]
fn an_exhausted_max_vus_drops_conversations_and_fails_the_run() {
    let (out, s, _w) = run_scenario(
        "name: drop\nload: {executor: constant-arrival-rate, rate: 100, duration: 1s, max_vus: 2}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 100ms}\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(s["status"], "failed");
    assert!(counter(&s, "dropped") > 0, "{s}");
    assert!(
        s["status_reason"].as_str().unwrap().contains("max_vus"),
        "{s}"
    );
    // Late starts are measured, not hidden.
    assert!(metric(&s, "schedule_lag", "max_ms") > 50.0, "{s}");
}

#[test]
fn a_stall_shows_in_intended_timing_not_in_actual_sends() {
    let (out, s, _w) = run_scenario(
        "name: stall\nload: {executor: constant-arrival-rate, rate: 40, duration: 3s, max_vus: 8}\nsteps:\n  - send: {text: hi, timeout: 10s}\nemulator: {delay: 10ms, stall: {at: 1s, for: 1s}}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let actual_p50 = metric(&s, "final_ping", "p50_ms");
    let intended_p90 = metric(&s, "final_ping_intended", "p90_ms");
    assert!(actual_p50 < 100.0, "actual sends look fine: {actual_p50}");
    assert!(
        intended_p90 >= 300.0,
        "intended timing shows the stall: {intended_p90}\n{s}"
    );
    assert!(metric(&s, "schedule_lag", "max_ms") >= 700.0, "{s}");
}

#[test]
fn open_model_vus_connect_before_the_schedule_and_keep_their_connection() {
    // 6 VUs warm up before the first arrival; at 4 arrivals/s each VU then
    // idles well past the emulator's heartbeat deadline (150 ms + 150 ms)
    // between conversations, so a VU that did not answer heartbeats while
    // idle would be dropped by the server.
    let (out, s, _w) = run_scenario(
        "name: warm\ntarget: {eio: 4}\nload: {executor: constant-arrival-rate, rate: 4, duration: 2s, max_vus: 6}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 2ms, ping_interval: 150ms, ping_timeout: 150ms}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // One VU would carry this rate alone (peak 1 busy VU): 6 connects means
    // every VU connected before the schedule, and only then.
    assert_eq!(
        counter(&s, "connects_ok"),
        6,
        "every VU connected once: {s}"
    );
    assert_eq!(counter(&s, "disconnects"), 0, "{s}");
    assert_eq!(counter(&s, "reconnects"), 0, "{s}");
    // Uniform arrivals every 250 ms for 2 s: 7 (the one at t = 2 s is past the end).
    assert_eq!(counter(&s, "turns_ok"), 7, "{s}");
}

#[test]
fn warm_connections_survive_the_wait_for_a_common_start() {
    // Warm-up happens before `--start-at`; during the 2 s wait the emulator
    // pings every 150 ms and drops a connection silent for 300 ms.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (out, s, _w) = run_yaml(
        "name: aligned\ntarget: {eio: 4}\nload: {executor: constant-arrival-rate, rate: 4, duration: 1s, max_vus: 3}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 2ms, ping_interval: 150ms, ping_timeout: 150ms}\n",
        &["--start-at", &at],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counter(&s, "connects_ok"), 3, "{s}");
    assert_eq!(counter(&s, "disconnects"), 0, "{s}");
    assert_eq!(counter(&s, "turns_ok"), 3, "{s}");
}

#[test]
fn open_model_with_a_connect_step_connects_in_every_conversation() {
    let (out, s, _w) = run_scenario(
        "name: cold\nload: {executor: constant-arrival-rate, rate: 10, duration: 1s, max_vus: 4}\nsteps:\n  - connect\n  - send: {text: hi}\n  - disconnect\nemulator: {delay: 2ms}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Arrivals every 100 ms for 1 s: 9, each with its own connect.
    assert_eq!(counter(&s, "turns_ok"), 9, "{s}");
    assert_eq!(counter(&s, "connects_ok"), 9, "{s}");
}

/// finalping's percentiles against the emulator's own record of the delays it
/// injected: the same turns, so they may differ only by loopback overhead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_percentiles_match_the_injected_delays() {
    let _quiet = exclusive_async().await;
    let config = EmulatorConfig {
        delay: "bimodal(0.8, 20ms, 200ms)".parse::<Delay>().unwrap(),
        seed: 42,
        ..EmulatorConfig::default()
    };
    let emu = emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: accuracy\nload: {vus: 10, iterations: 30}\nsteps:\n  - send: {text: hi}\n",
    );
    let out_dir = w.path("r");
    let args: Vec<String> = [
        "run",
        p.to_str().unwrap(),
        "--target",
        &emu.url(),
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_finalping(&refs, LIMIT)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    let injected = emu.injected_delays();
    assert_eq!(injected.len(), 300);
    for (q, field) in [(0.5, "p50_ms"), (0.9, "p90_ms"), (0.99, "p99_ms")] {
        let truth = injected.value_at_quantile(q) as f64 / 1000.0;
        let reported = metric(&s, "first_output", field);
        assert!(
            reported >= truth - 1.0 && reported <= truth + 15.0,
            "{field}: reported {reported} ms, injected {truth} ms"
        );
    }
    emu.shutdown().await;
}

#[test]
fn several_scenarios_run_concurrently_with_tags_per_scenario_and_step() {
    let (out, s, _w) = run_scenario(
        "name: multi\nload: {vus: 8, iterations: 10}\nscenarios:\n  - name: browse\n    weight: 3\n    steps:\n      - send: {name: greet, text: hi}\n  - name: checkout\n    weight: 1\n    steps:\n      - send: {name: pay, text: pay}\n      - send: {text: thanks}\n  - name: spike\n    load: {executor: constant-arrival-rate, rate: 20, duration: 1s, max_vus: 4}\n    steps:\n      - send: {text: hello}\nemulator: {delay: 2ms}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tags = &s["tags"];
    let turns = |tag: &str| tags[tag]["counters"]["turns_ok"].as_u64().unwrap_or(0);
    // 8 VUs split 3:1 → 6 and 2, 10 iterations each.
    assert_eq!(turns("scenario=browse"), 60, "{tags}");
    assert_eq!(turns("scenario=browse,step=greet"), 60);
    assert_eq!(turns("scenario=checkout"), 40);
    assert_eq!(turns("scenario=checkout,step=pay"), 20);
    let spike = turns("scenario=spike");
    assert!((19..=20).contains(&spike), "{spike}");
    // Totals are the sum of the scenarios.
    assert_eq!(counter(&s, "turns_ok"), 100 + spike);
    assert_eq!(
        tags["scenario=checkout,step=pay"]["metrics"]["final_ping"]["count"],
        20
    );
    assert!(
        tags.get("scenario=spike,step=hello").is_none(),
        "unnamed steps have no tag"
    );
    assert_eq!(
        s["manifest"]["load"]["scenarios"].as_array().unwrap().len(),
        3
    );
}

#[test]
fn steps_and_scenarios_together_are_a_usage_error() {
    let (out, _, _w) = {
        let w = Workdir::new();
        let p = w.file(
            "s.yaml",
            "name: both\nload: {vus: 1}\nsteps:\n  - send: {text: hi}\nscenarios:\n  - name: a\n    steps:\n      - send: {text: hi}\n",
        );
        let out = run_finalping(&["validate", p.to_str().unwrap()], LIMIT);
        (out, (), w)
    };
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s.yaml:5:1") && err.contains("both top-level `steps` and `scenarios`"),
        "{err}"
    );
}

#[test]
fn paced_closed_vus_keep_their_schedule_and_show_lateness() {
    // Fast bot: each VU starts an iteration every 200 ms, no sooner.
    let (out, s, _w) = run_scenario(
        "name: paced\nload: {vus: 2, duration: 2s, pacing: 200ms}\nsteps:\n  - send: {text: hi}\nemulator: {delay: 5ms}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let turns = counter(&s, "turns_ok");
    assert!((18..=22).contains(&turns), "{turns}");
    assert!(metric(&s, "schedule_lag", "p99_ms") < 50.0, "{s}");

    // A bot that stalls for 1 s: the iterations after it start late, and the
    // intended timing shows it.
    let (out, s, _w) = run_scenario(
        "name: paced-stall\nload: {vus: 1, duration: 3s, pacing: 100ms}\nsteps:\n  - send: {text: hi, timeout: 10s}\nemulator: {delay: 5ms, stall: {at: 1s, for: 1s}}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(metric(&s, "schedule_lag", "max_ms") >= 700.0, "{s}");
    assert!(metric(&s, "final_ping_intended", "max_ms") >= 900.0, "{s}");
    assert!(metric(&s, "final_ping", "p50_ms") < 100.0, "{s}");
}

/// The target/runtime block pointing a scenario at a `finalping serve` at `url`.
fn served_endpoints(url: &str) -> String {
    let host = url.trim_start_matches("http://");
    format!(
        "target: {{url: \"{url}\", session_id: \"vu-{{{{vu}}}}-it-{{{{iteration}}}}\"}}\nruntime:\n  url: \"ws://{host}/v2/runtime\"\n  codec: json\n  oauth: {{token_url: \"{url}/oauth/token\", client_id: finalping, client_secret: \"${{env:FINALPING_TEST_CLIENT_SECRET}}\"}}\n"
    )
}

/// Runs `finalping run` once per argument list, all at the same time; returns
/// the outputs in order.
fn run_concurrently(runs: Vec<Vec<String>>) -> Vec<std::process::Output> {
    let handles: Vec<_> = runs
        .into_iter()
        .map(|args| {
            std::thread::spawn(move || {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                let env = [("FINALPING_TEST_CLIENT_SECRET", "finalping-secret")];
                run_finalping_env(&refs, &env, LIMIT)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// The VU numbers of the session ids `vu-<n>-it-<i>` in a run's audit log.
fn audited_vus(dir: &std::path::Path) -> Vec<u64> {
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).expect("audit.jsonl");
    let mut vus: Vec<u64> = text
        .lines()
        .map(|l| {
            let rec: serde_json::Value = serde_json::from_str(l).expect("audit line");
            let session = rec["sessionId"].as_str().expect("sessionId");
            let n = session
                .strip_prefix("vu-")
                .and_then(|r| r.split('-').next())
                .unwrap_or_else(|| panic!("session id {session}"));
            n.parse().expect("VU number")
        })
        .collect();
    vus.sort_unstable();
    vus.dedup();
    vus
}

/// Three real segment processes against one `finalping serve`: their turns and
/// arrivals add up to the whole plan, and every `{{vu}}` runs in exactly one
/// segment — the one the stride gives it — as the sessions they updated show.
#[test]
fn segments_against_one_server_add_up_to_the_whole_plan() {
    let served = serve(&["--delay", "2ms"]);
    let w = Workdir::new();
    let yaml = format!(
        "name: segs\n{}load: {{vus: 7, iterations: 2, ramp_up: 300ms}}\nscenarios:\n  - name: chat\n    weight: 2\n    steps:\n      - send: {{text: hi}}\n      - update_context: {{scope: session, vars: {{n: \"{{{{vu}}}}\"}}}}\n  - name: other\n    weight: 1\n    steps:\n      - send: {{text: yo}}\n      - update_context: {{scope: session, vars: {{n: 1}}}}\n  - name: spike\n    load: {{executor: constant-arrival-rate, rate: 20, duration: 1s, max_vus: 3}}\n    steps:\n      - send: {{text: hey}}\n      - update_context: {{scope: session, vars: {{n: 2}}}}\n",
        served_endpoints(&served.url)
    );
    let p = w.file("s.yaml", &yaml);
    // The unsegmented plan, from the library: 7 closed VUs × 2 iterations,
    // VUs 8–10 for the spike's arrivals.
    let env = [("FINALPING_TEST_CLIENT_SECRET".to_string(), "x".to_string())];
    let scenario =
        finalping::scenario::load_str_with_env(&yaml, "s.yaml", &env.into_iter().collect())
            .unwrap();
    let (groups, _) = finalping::engine::groups_of(&scenario);
    let whole = finalping::engine::Segment::WHOLE;
    let seed = 11;
    let arrivals = finalping::engine::segment::arrivals(&groups, 2, whole, seed).len() as u64;
    assert!(arrivals >= 19, "{arrivals}");
    let runs = (0..3)
        .map(|i| {
            [
                "run",
                p.to_str().unwrap(),
                "--segment",
                &format!("{i}/3"),
                "--run-id",
                "segs-1",
                "--seed",
                &seed.to_string(),
                "--out",
                w.path(&format!("seg{i}")).to_str().unwrap(),
                "--quiet",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })
        .collect();
    let outs = run_concurrently(runs);
    let mut turns = 0;
    let mut started = 0;
    let mut all_vus = Vec::new();
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.status.code(), Some(0), "segment {i}: {}", text(out));
        let dir = w.path(&format!("seg{i}"));
        let s = read_json(&dir.join("summary.json"));
        let m = read_json(&dir.join("manifest.json"));
        assert_eq!(m["segment"]["index"], i, "{m}");
        assert_eq!(m["segment"]["count"], 3, "{m}");
        assert_eq!(m["seed"], seed, "{m}");
        assert_eq!(s["run_id"], "segs-1");
        let tags = &s["tags"];
        let spike = tags["scenario=spike"]["counters"]["turns_ok"]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(counter(&s, "dropped"), 0, "{s}");
        started += metric(&s, "schedule_lag", "count") as u64;
        turns += counter(&s, "turns_ok");
        assert_eq!(counter(&s, "turns_ok"), counter(&s, "turns_sent"), "{s}");
        assert!(spike > 0, "segment {i} took spike arrivals: {tags}");
        let vus = audited_vus(&dir);
        for vu in &vus {
            assert_eq!((vu - 1) % 3, i as u64, "segment {i} ran VU {vu}: {vus:?}");
        }
        all_vus.extend(vus);
    }
    assert_eq!(started, arrivals, "arrivals of all segments = the plan's");
    assert_eq!(
        turns,
        7 * 2 + arrivals,
        "turns of all segments = the plan's"
    );
    all_vus.sort_unstable();
    let closed: Vec<u64> = all_vus.iter().copied().filter(|v| *v <= 7).collect();
    assert_eq!(closed, (1..=7).collect::<Vec<_>>(), "each closed VU once");
    assert!(
        all_vus.iter().all(|v| (1..=10).contains(v)),
        "spike VUs are 8–10: {all_vus:?}"
    );
    let mut dedup = all_vus.clone();
    dedup.dedup();
    assert_eq!(dedup, all_vus, "no VU number in two segments");
}
