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

    /// `finalping` on `core`.
    pub fn command(&self, core: u8) -> Command {
        self.program(core, BIN)
    }

    /// Any `program` on `core` (unpinned without `taskset`).
    pub fn program(&self, core: u8, program: &str) -> Command {
        if self.taskset {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string(), program]);
            c
        } else {
            Command::new(program)
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

    /// The server's CPU time so far (user + system, from `/proc/<pid>/stat`),
    /// `None` where there is no `/proc`.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the line.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / per_second as f64))
    }

    /// Runs `work` and returns its result with the share of one core the
    /// server used meanwhile (NaN where it cannot be read).
    pub fn busy_during<T>(&self, work: impl FnOnce() -> T) -> (T, f64) {
        let (cpu, wall) = (self.cpu_time(), std::time::Instant::now());
        let out = work();
        let share = match (cpu, self.cpu_time()) {
            (Some(a), Some(b)) => (b - a).as_secs_f64() / wall.elapsed().as_secs_f64(),
            _ => f64::NAN,
        };
        (out, share)
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
    run_scenario_with(pin, url, dir, name, body, &[])
}

/// `run_scenario` with extra flags. With `--metrics-listen`, a scraper
/// thread GETs `/metrics` once a second while the run lasts (as Prometheus
/// would), so the generator's CPU includes serving the scrapes.
pub fn run_scenario_with(
    pin: &Pinning,
    url: &str,
    dir: &std::path::Path,
    name: &str,
    body: &str,
    extra: &[&str],
) -> serde_json::Value {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, format!("name: bench-{name}\n{body}")).expect("write scenario");
    let out = dir.join(name);
    let started = std::time::Instant::now();
    let mut child = pin
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
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run finalping");
    let stderr = child.stderr.take().expect("stderr");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scrapes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let (done, scrapes) = (done.clone(), scrapes.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .strip_prefix("metrics: serving http://")
                    .and_then(|a| a.strip_suffix("/metrics"))
                {
                    let (addr, done, scrapes) = (addr.to_string(), done.clone(), scrapes.clone());
                    std::thread::spawn(move || scrape_until(&addr, &done, &scrapes));
                } else {
                    eprintln!("{line}");
                }
            }
        })
    };
    let status = child.wait().expect("wait for finalping");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(600) && status.code().is_some(),
        "run {name} failed"
    );
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let s: serde_json::Value = serde_json::from_str(&text).expect("parse summary");
    let scraped = scrapes.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{name}: status {} in {:.1} s, {} turns ok, generator {:.0} ms CPU, peak RSS {:.1} MiB{}",
        s["status"],
        took.as_secs_f64(),
        s["counters"]["turns_ok"],
        s["generator"]["cpu_ms"].as_f64().unwrap_or(0.0),
        s["generator"]["max_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        if scraped > 0 {
            format!(", /metrics scraped {scraped}×")
        } else {
            String::new()
        }
    );
    s
}

/// GETs `http://addr/metrics` once a second until `done`.
fn scrape_until(
    addr: &str,
    done: &std::sync::atomic::AtomicBool,
    scrapes: &std::sync::atomic::AtomicU64,
) {
    use std::io::{Read, Write};
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut body = Vec::new();
            if write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").is_ok()
                && s.read_to_end(&mut body).is_ok()
                && body.starts_with(b"HTTP/1.0 200") | body.starts_with(b"HTTP/1.1 200")
            {
                scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `FINALPING_BENCH_ROUNDS` (how many times a benchmark repeats its
/// measurements, alternating them), else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("FINALPING_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The median of `v` (the mean of the middle two for an even count; 0 for none).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}
