//! The harness's own floor: `cargo bench --bench floor`.
//!
//! Against a zero-delay emulator (`finalping serve --delay 0ms`, core 1; the
//! client on core 0), one invocation measures side by side:
//! 1. `final_ping` p50/p99/p99.9 at 10 closed VUs (no think time);
//! 2. the generator's turn capacity (100 closed VUs, no think time), then
//!    `final_ping` at an open arrival rate of 50 % of that capacity;
//! 3. the highest arrival rate (doubling, then bisecting) whose
//!    `schedule_lag` p99 stays within 1 ms.

mod common;

use common::{run_scenario, Pinning, Server};

fn main() {
    let pin = Pinning::detect();
    println!("pinning: {}", pin.describe());
    let server = Server::start(&pin, &["--delay", "0ms", "--no-typing"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |name: &str, body: &str| run_scenario(&pin, &server.url, dir.path(), name, body);
    let pct =
        |s: &serde_json::Value, m: &str, f: &str| s["metrics"][m][f].as_f64().unwrap_or(f64::NAN);

    let ten = run(
        "vus10",
        "load: {vus: 10, duration: 5s}\nsteps:\n  - send: {text: hi}\n",
    );
    let cap = run(
        "capacity",
        "load: {vus: 100, duration: 5s}\nsteps:\n  - send: {text: hi}\n",
    );
    let capacity = cap["counters"]["turns_ok"].as_f64().unwrap_or(0.0)
        / cap["duration_s"].as_f64().unwrap_or(1.0);
    let half = (capacity / 2.0).max(1.0);
    let open = run(
        "half",
        &format!("load: {{executor: constant-arrival-rate, rate: {half:.0}, duration: 5s, max_vus: 2000}}\nsteps:\n  - send: {{text: hi}}\n"),
    );

    // Highest rate with schedule_lag p99 <= 1 ms: double, then bisect.
    let lag_at = |rate: f64| {
        let s = run(
            &format!("rate{rate:.0}"),
            &format!("load: {{executor: constant-arrival-rate, rate: {rate:.0}, duration: 3s, max_vus: 3000}}\nsteps:\n  - send: {{text: hi}}\n"),
        );
        pct(&s, "schedule_lag", "p99_ms")
    };
    let (mut good, mut bad) = (0.0, None);
    let mut rate = 500.0;
    while bad.is_none() && rate <= 64_000.0 {
        if lag_at(rate) <= 1.0 {
            good = rate;
            rate *= 2.0;
        } else {
            bad = Some(rate);
        }
    }
    if let Some(mut hi) = bad {
        for _ in 0..3 {
            let mid = (good + hi) / 2.0;
            if lag_at(mid) <= 1.0 {
                good = mid;
            } else {
                hi = mid;
            }
        }
    }

    println!();
    println!("| measurement | final_ping p50 | p99 | p99.9 | throughput |");
    println!("|---|---:|---:|---:|---:|");
    for (label, s) in [
        ("10 closed VUs, zero-delay emulator", &ten),
        ("open model at 50 % of capacity", &open),
    ] {
        println!(
            "| {label} | {:.3} ms | {:.3} ms | {:.3} ms | {:.0} turns/s |",
            pct(s, "final_ping", "p50_ms"),
            pct(s, "final_ping", "p99_ms"),
            pct(s, "final_ping", "p99_9_ms"),
            s["counters"]["turns_ok"].as_f64().unwrap_or(0.0)
                / s["duration_s"].as_f64().unwrap_or(1.0)
        );
    }
    println!("| generator capacity (100 closed VUs) | | | | {capacity:.0} turns/s |");
    println!(
        "| highest arrival rate with schedule_lag p99 <= 1 ms | | | | {good:.0} conversations/s{} |",
        if bad.is_none() { " (not reached the limit)" } else { "" }
    );
}
