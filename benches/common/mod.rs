//! Shared by the load benchmarks: core pinning, a `finalping serve` child
//! process, and running a scenario against it to read its `summary.json`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_finalping");

/// Which cores the server and the client run on.
pub struct Pinning {
    taskset: bool,
}

impl Pinning {
    pub fn detect() -> Pinning {
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

    pub fn describe(&self) -> &'static str {
        if self.taskset {
            "server on core 1, client on core 0 (taskset)"
        } else {
            "none (taskset missing or a single core): numbers include contention"
        }
    }

    pub fn command(&self, core: u8) -> Command {
        if self.taskset {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string(), BIN]);
            c
        } else {
            Command::new(BIN)
        }
    }
}

pub struct Server {
    child: std::process::Child,
    pub url: String,
}

impl Server {
    /// Starts `finalping serve --port 0 <args>` pinned to core 1.
    pub fn start(pin: &Pinning, args: &[&str]) -> Server {
        let mut child = pin
            .command(1)
            .args(["serve", "--port", "0"])
            .args(args)
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

pub fn run_scenario(
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
