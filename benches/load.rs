//! Client-side load benchmark: `cargo bench --bench load`.
//!
//! Starts `finalping serve` pinned to one core and `finalping run` pinned to the
//! other (with `taskset`, when there are ≥ 2 cores), then measures from the
//! run's own `generator` report:
//! - CPU-ms per turn: 100 VUs, each on one connection, sending 300 turns back
//!   to back against a 1 ms emulator (connect cost excluded: one per VU);
//! - RSS per idle connected VU: peak RSS with 2,000 VUs connected and thinking,
//!   minus the peak RSS of the same run with 1 VU, divided by 1,999.
//!
//! Targets (issue #3): ≤ 0.06 CPU-ms per turn, ≤ 24 KiB per idle connected VU.
//! Set `FINALPING_BENCH_VUS` to change the 2,000.

mod common;

use common::{run_scenario, Pinning, Server};

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let idle_vus: u32 = std::env::var("FINALPING_BENCH_VUS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let pin = Pinning::detect();
    println!("pinning: {}", pin.describe());
    let server = Server::start(&pin, &["--delay", "1ms", "--no-typing"]);
    let dir = tempfile::tempdir().expect("tempdir");

    let busy = run_scenario(
        &pin,
        &server.url,
        dir.path(),
        "busy",
        "load: {vus: 100, iterations: 300}\nsteps:\n  - send: {text: hi, timeout: 10s}\n",
    );
    let turns = busy["counters"]["turns_ok"].as_u64().unwrap_or(0);
    let cpu_ms = busy["generator"]["cpu_ms"].as_f64().unwrap_or(0.0);
    let per_turn = cpu_ms / turns.max(1) as f64;

    let idle_body = |vus: u32| {
        format!("load: {{vus: {vus}, iterations: 1, ramp_up: 2s}}\nsteps:\n  - connect\n  - think: 4s\n  - send: {{text: bye, timeout: 20s}}\n  - disconnect\n")
    };
    let one = run_scenario(&pin, &server.url, dir.path(), "idle1", &idle_body(1));
    let many = run_scenario(&pin, &server.url, dir.path(), "idleN", &idle_body(idle_vus));
    let rss = |s: &serde_json::Value| s["generator"]["max_rss_kib"].as_f64().unwrap_or(0.0);
    let connected = many["counters"]["connects_ok"].as_u64().unwrap_or(0);
    let per_vu = (rss(&many) - rss(&one)) / (f64::from(idle_vus) - 1.0).max(1.0);

    println!();
    println!("| measurement | value | target |");
    println!("|---|---:|---:|");
    println!(
        "| CPU per turn ({turns} turns, {cpu_ms:.0} ms CPU) | {per_turn:.4} ms | ≤ 0.06 ms {} |",
        verdict(per_turn <= 0.06)
    );
    println!(
        "| RSS per idle connected VU ({connected} connected; peak {:.1} MiB vs {:.1} MiB for 1 VU) | {per_vu:.1} KiB | ≤ 24 KiB {} |",
        rss(&many) / 1024.0,
        rss(&one) / 1024.0,
        verdict(per_vu <= 24.0)
    );
    println!(
        "| final_ping p50 / p99 in the busy run | {:.3} / {:.3} ms | |",
        busy["metrics"]["final_ping"]["p50_ms"]
            .as_f64()
            .unwrap_or(0.0),
        busy["metrics"]["final_ping"]["p99_ms"]
            .as_f64()
            .unwrap_or(0.0)
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "(met)"
    } else {
        "(MISSED)"
    }
}
