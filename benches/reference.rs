//! Against an independent server: `cargo bench --bench reference`.
//!
//! The emulator answers on its own timer and shares finalping's code, so it
//! flatters the client. This benchmark also drives the Node socket.io 4.8
//! server of the interop tests (`tests/interop/node-server.js`, one output
//! and `finalPing` at once per input; packages from the committed lock,
//! installed with `npm ci` when missing), side by side with
//! `finalping serve --delay 0ms --no-typing`. Each server runs on core 1 and
//! the client on core 0 (`taskset`).
//!
//! For each server: 200 VUs × 50 turns back to back, and 200 VUs × 1 turn to
//! take the connects out; CPU per turn = the difference in the client's CPU
//! time (user and system, from `summary.json` → `generator`) over the
//! difference in turns, so that per-turn figures exclude connecting. Rounds
//! alternate the servers (`FINALPING_BENCH_ROUNDS`, default 3); the table
//! shows the median and the spread of the rounds, and the pooled figure: all
//! rounds' CPU over all rounds' turns. The kernel charges user and system
//! time per 10 ms clock tick, so one round's ~35 ticks split with an error
//! of about ±25 %; pooled over n rounds that shrinks with √n (±8 % at 11).
//!
//! Targets (issue #16), against the Node server: user space ≤ 0.008 ms per
//! turn, total ≤ 0.035 ms per turn.

mod common;
#[path = "../tests/interop/npm.rs"]
mod npm;

use common::{median, run_scenario, Pinning, Server};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

const VUS: u32 = 200;
const TURNS: u32 = 50;

fn main() {
    let rounds = common::rounds(3);
    let pin = Pinning::detect();
    println!("pinning: {}", pin.describe());
    let node = NodeServer::start();
    let emulator = Server::start(&pin, &["--delay", "0ms", "--no-typing"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = [
        ("Node socket.io 4.8.1", &node.url),
        ("finalping serve", &emulator.url),
    ];

    let mut results: Vec<Vec<PerTurn>> = vec![Vec::new(); servers.len()];
    for round in 0..rounds {
        for (i, (_, url)) in servers.iter().enumerate() {
            let run = |name: &str, turns: u32| {
                run_scenario(
                    &pin,
                    url,
                    dir.path(),
                    &format!("s{i}r{round}{name}"),
                    &format!(
                        "load: {{vus: {VUS}, iterations: {turns}}}\nsteps:\n  - send: {{text: hi, timeout: 10s}}\n"
                    ),
                )
            };
            let many = run("many", TURNS);
            let one = run("one", 1);
            results[i].push(PerTurn::between(&one, &many));
        }
    }

    println!();
    println!(
        "CPU per turn of the client, {VUS} VUs × {TURNS} turns minus {VUS} × 1 (median of {rounds}, min–max):"
    );
    println!("| server | user ms/turn | system ms/turn | total ms/turn | pooled user / system / total | final_ping p50 / p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for ((label, _), r) in servers.iter().zip(&results) {
        let of = |f: fn(&PerTurn) -> f64| r.iter().map(f).collect::<Vec<f64>>();
        let col = |f: fn(&PerTurn) -> f64| {
            let v = of(f);
            let (min, max) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            format!("{:.4} ({min:.4}–{max:.4})", median(&v))
        };
        let (user, system) = pooled(r);
        println!(
            "| {label} | {} | {} | {} | {user:.4} / {system:.4} / {:.4} | {:.3} / {:.3} ms |",
            col(|p| p.user),
            col(|p| p.system),
            col(|p| p.user + p.system),
            user + system,
            median(&of(|p| p.p50)),
            median(&of(|p| p.p99))
        );
    }
    println!("{}", node.stop());
}

/// One round's marginal CPU per turn (ms) and the long run's latency.
#[derive(Clone, Copy)]
struct PerTurn {
    user: f64,
    system: f64,
    p50: f64,
    p99: f64,
    /// The turns the per-turn figures are over (`many` minus `one`).
    turns: f64,
}

/// All rounds' CPU over all rounds' turns: (user, system) ms per turn.
fn pooled(rounds: &[PerTurn]) -> (f64, f64) {
    let turns: f64 = rounds.iter().map(|r| r.turns).sum();
    let sum = |f: fn(&PerTurn) -> f64| rounds.iter().map(|r| f(r) * r.turns).sum::<f64>() / turns;
    (sum(|r| r.user), sum(|r| r.system))
}

impl PerTurn {
    fn between(one: &serde_json::Value, many: &serde_json::Value) -> PerTurn {
        let f = |s: &serde_json::Value, k: &str| s["generator"][k].as_f64().unwrap_or(f64::NAN);
        let turns = |s: &serde_json::Value| s["counters"]["turns_ok"].as_f64().unwrap_or(0.0);
        let extra = (turns(many) - turns(one)).max(1.0);
        assert_eq!(
            turns(many),
            f64::from(VUS * TURNS),
            "every turn must complete: {}",
            many["counters"]
        );
        PerTurn {
            user: (f(many, "cpu_ms_user") - f(one, "cpu_ms_user")) / extra,
            system: (f(many, "cpu_ms_system") - f(one, "cpu_ms_system")) / extra,
            p50: many["metrics"]["final_ping"]["p50_ms"]
                .as_f64()
                .unwrap_or(f64::NAN),
            p99: many["metrics"]["final_ping"]["p99_ms"]
                .as_f64()
                .unwrap_or(f64::NAN),
            turns: extra,
        }
    }
}

/// `node tests/interop/node-server.js` on core 1; it exits when its stdin closes.
struct NodeServer {
    child: Child,
    url: String,
    stdout: BufReader<std::process::ChildStdout>,
}

impl NodeServer {
    fn start() -> NodeServer {
        let dir = interop_dir();
        if let Err(e) = npm::npm_ci_if_missing(&dir, &["socket.io"]) {
            panic!("{e}");
        }
        let mut child = Pinning::detect()
            .program(1, "node")
            .arg(dir.join("node-server.js"))
            .args([
                "--delay-ms",
                "0",
                "--outputs",
                "1",
                "--max-lifetime-s",
                "1800",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node (Node.js 20+ is needed)");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read node banner");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("node-server prints `listening on <url>`")
            .to_string();
        NodeServer { child, url, stdout }
    }

    /// Closes stdin (the server prints its stats and exits); returns the stats line.
    fn stop(mut self) -> String {
        drop(self.child.stdin.take());
        let mut last = String::new();
        for line in (&mut self.stdout).lines().map_while(Result::ok) {
            last = line;
        }
        let _ = self.child.wait();
        format!("node server: {last}")
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}
