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
//! - live metrics overhead: the busy load for 10 s without and with `--metrics-listen`
//!   (a scraper GETs `/metrics` every second) and `--prometheus-remote-write`
//!   (to a local sink that accepts every push), alternated
//!   `FINALPING_BENCH_EXPORT_ROUNDS` times (default 3); CPU-ms per turn of
//!   each, median and spread.
//!
//! Targets (issue #3): ≤ 0.06 CPU-ms per turn, ≤ 24 KiB per idle connected VU;
//! (issue #14) exporting costs < 5 % extra CPU per turn.
//! Set `FINALPING_BENCH_VUS` to change the 2,000.

mod common;

use common::{median, run_scenario, run_scenario_with, Pinning, Server};

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

    const BUSY: &str =
        "load: {vus: 100, iterations: 300}\nsteps:\n  - send: {text: hi, timeout: 10s}\n";
    const BUSY_10S: &str =
        "load: {vus: 100, duration: 10s}\nsteps:\n  - send: {text: hi, timeout: 10s}\n";
    let busy = run_scenario(&pin, &server.url, dir.path(), "busy", BUSY);
    let turns = busy["counters"]["turns_ok"].as_u64().unwrap_or(0);
    let cpu_ms = busy["generator"]["cpu_ms"].as_f64().unwrap_or(0.0);
    let per_turn = cpu_ms / turns.max(1) as f64;

    // Live metrics: plain and exporting runs alternated, same duration-bound
    // scenario (10 intervals: 10 scrapes and 10 pushes per exporting run).
    let rounds: usize = std::env::var("FINALPING_BENCH_EXPORT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let sink = PushSink::start();
    let remote = sink.url();
    let export_flags = [
        "--metrics-listen",
        "127.0.0.1:0",
        "--metrics-linger",
        "0s",
        "--prometheus-remote-write",
        remote.as_str(),
    ];
    let (mut plain, mut exporting) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let per = |s: &serde_json::Value| {
            s["generator"]["cpu_ms"].as_f64().unwrap_or(0.0)
                / s["counters"]["turns_ok"].as_u64().unwrap_or(0).max(1) as f64
        };
        let a = run_scenario(
            &pin,
            &server.url,
            dir.path(),
            &format!("plain{round}"),
            BUSY_10S,
        );
        let b = run_scenario_with(
            &pin,
            &server.url,
            dir.path(),
            &format!("export{round}"),
            BUSY_10S,
            &export_flags,
        );
        plain.push(per(&a));
        exporting.push(per(&b));
    }
    let pushes = sink.pushes();

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

    let (mp, me) = (median(&plain), median(&exporting));
    let extra = (me / mp - 1.0) * 100.0;
    println!(
        "| CPU per turn, plain ({rounds} runs: {}) | {mp:.4} ms median | |",
        list(&plain)
    );
    println!(
        "| CPU per turn, /metrics scraped every 1 s + remote write ({rounds} runs: {}; {pushes} pushes received) | {me:.4} ms median | |",
        list(&exporting)
    );
    println!(
        "| extra CPU per turn for exporting (median vs median; runs spread {:.1} % / {:.1} %) | {extra:+.1} % | < 5 % {} |",
        spread(&plain),
        spread(&exporting),
        verdict(extra < 5.0)
    );
}

/// (max − min) / median, in %.
fn spread(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::MIN, f64::max);
    let min = v.iter().copied().fold(f64::MAX, f64::min);
    (max - min) / median(v).max(1e-12) * 100.0
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A local HTTP server that answers every request `204` and counts them:
/// the remote-write receiver of the benchmark (what it costs is the
/// sender's work, not Prometheus').
struct PushSink {
    addr: std::net::SocketAddr,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl PushSink {
    fn start() -> PushSink {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind push sink");
        let addr = listener.local_addr().expect("sink address");
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        // Request line and headers.
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = l.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let reply = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                        if reader.get_mut().write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        PushSink { addr, count }
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    fn pushes(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "(met)"
    } else {
        "(MISSED)"
    }
}
