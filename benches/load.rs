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

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_finalping");

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let idle_vus: u32 = std::env::var("FINALPING_BENCH_VUS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let pin = Pinning::detect();
    println!("pinning: {}", pin.describe());
    let server = Server::start(&pin);
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

/// Which cores the server and the client run on.
struct Pinning {
    taskset: bool,
}

impl Pinning {
    fn detect() -> Pinning {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let has_taskset = Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Pinning {
            taskset: has_taskset && cores >= 2,
        }
    }

    fn describe(&self) -> &'static str {
        if self.taskset {
            "server on core 1, client on core 0 (taskset)"
        } else {
            "none (taskset missing or a single core): numbers include contention"
        }
    }

    fn command(&self, core: u8) -> Command {
        if self.taskset {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string(), BIN]);
            c
        } else {
            Command::new(BIN)
        }
    }
}

struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(pin: &Pinning) -> Server {
        let mut child = pin
            .command(1)
            .args(["serve", "--port", "0", "--delay", "1ms", "--no-typing"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start finalping serve");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).expect("read serve banner");
        std::thread::spawn(move || for _ in reader.lines() {});
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("serve prints its URL")
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_scenario(
    pin: &Pinning,
    url: &str,
    dir: &std::path::Path,
    name: &str,
    body: &str,
) -> serde_json::Value {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, format!("name: bench-{name}\n{body}")).expect("write scenario");
    let out = dir.join(name);
    let started = std::time::Instant::now();
    let status = pin
        .command(0)
        .args([
            "run",
            file.to_str().unwrap_or_default(),
            "--target",
            url,
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("run finalping");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(600) && status.code().is_some(),
        "run {name} failed"
    );
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let s: serde_json::Value = serde_json::from_str(&text).expect("parse summary");
    println!(
        "{name}: status {} in {:.1} s, {} turns ok, generator {:.0} ms CPU, peak RSS {:.1} MiB",
        s["status"],
        took.as_secs_f64(),
        s["counters"]["turns_ok"],
        s["generator"]["cpu_ms"].as_f64().unwrap_or(0.0),
        s["generator"]["max_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0
    );
    s
}
