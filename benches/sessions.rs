//! 100,000 concurrent sessions on one machine: `cargo bench --bench sessions`.
//!
//! Both sides run as several processes, the way a user scales out:
//! - the emulator: `A` instances of `finalping serve --workers W`, instance `k`
//!   listening on loopback address `127.0.0.(k+1)` (A × W worker processes
//!   and A supervisors);
//! - the client: `S` execution segments, `finalping run --segment i/S` with one
//!   `--run-id` and one `--start-barrier`, segment `i` aimed at instance
//!   `i mod A`; afterwards `finalping merge` makes the one report.
//!
//! Why several addresses: one client address talking to one server
//! address:port can hold at most as many connections as there are ephemeral
//! ports (`/proc/sys/net/ipv4/ip_local_port_range`, 28,232 by default). The
//! benchmark checks that every (source, destination) pair stays below that
//! range and stops with an explanation otherwise; it never changes a system
//! setting.
//!
//! Every VU connects (the connects spread over the ramp-up), sends a turn,
//! holds its session open (think time longer than the ramp-up, so that all
//! sessions are open at once), sends a second turn and disconnects. The
//! benchmark samples `/proc` once a second — open sockets of the client
//! processes (= connected sessions), resident memory of every process — and
//! passes only when all sessions were connected at the same moment, every
//! turn succeeded on both sides (client counters and the emulators' own
//! counts) and nothing was dropped. It prints: peak RSS per connected VU
//! (client and emulator, summed over their processes), the connect rate,
//! CPU user/system of each side (from `getrusage` of the reaped processes),
//! and the merged `final_ping` and `connect` percentiles.
//!
//! The segments run with `--self-check warn`: the client and emulator
//! processes (32 by default) share the cores, so the generator is busy by
//! design; the segments' reports still show its lag.
//!
//! Settings (environment): `FINALPING_BENCH_SESSIONS` (100000),
//! `FINALPING_BENCH_SEGMENTS` (8), `FINALPING_BENCH_ADDRS` (8),
//! `FINALPING_BENCH_SERVE_WORKERS` (2), `FINALPING_BENCH_RAMP` (seconds,
//! default: sessions ÷ 556 per second, at least 10), `FINALPING_BENCH_HOLD`
//! (seconds of think time, default ramp + 20), `FINALPING_BENCH_DELAY`
//! (emulator reply delay, `5ms`), `FINALPING_BENCH_PING_TIMEOUT` (the
//! Engine.IO ping timeout the emulators announce, `60s`: the default 20 s
//! closes sessions whose heartbeat a starved process answers late),
//! `FINALPING_BENCH_KEEP` (a folder to keep the merged report in). The whole run is bounded: segments that do not
//! finish by ramp + hold + 4 min are stopped. Every child process gets
//! SIGTERM when the benchmark ends, on any path (including when the benchmark
//! itself is killed: `PR_SET_PDEATHSIG`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_finalping");

struct Settings {
    sessions: u64,
    segments: u64,
    addrs: u64,
    serve_workers: u64,
    ramp_s: u64,
    hold_s: u64,
    delay: String,
    ping_timeout: String,
    keep: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> Settings {
        let num = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        let sessions = num("FINALPING_BENCH_SESSIONS", 100_000).max(1);
        // 100,000 over 180 s (556 connects/s) held on this 2-core machine.
        let ramp_s = num("FINALPING_BENCH_RAMP", (sessions * 18 / 10_000).max(10));
        Settings {
            sessions,
            segments: num("FINALPING_BENCH_SEGMENTS", 8).max(1),
            addrs: num("FINALPING_BENCH_ADDRS", 8).clamp(1, 254),
            serve_workers: num("FINALPING_BENCH_SERVE_WORKERS", 2).max(1),
            ramp_s,
            hold_s: num("FINALPING_BENCH_HOLD", ramp_s + 20),
            delay: std::env::var("FINALPING_BENCH_DELAY").unwrap_or_else(|_| "5ms".into()),
            ping_timeout: std::env::var("FINALPING_BENCH_PING_TIMEOUT")
                .unwrap_or_else(|_| "60s".into()),
            keep: std::env::var_os("FINALPING_BENCH_KEEP").map(PathBuf::from),
        }
    }
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; ignore arguments.
    let s = Settings::from_env();
    match bench(&s) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("RESULT: FAILED (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Child processes, stopped (SIGTERM, then SIGKILL after 15 s) when dropped.
#[derive(Default)]
struct Children(Vec<(String, Child)>);

impl Children {
    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<u32, String> {
        // SAFETY: prctl is async-signal-safe; the child asks the kernel to
        // SIGTERM it when this (spawning) thread's process dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("start {name}: {e}"))?;
        let pid = child.id();
        self.0.push((name.to_string(), child));
        Ok(pid)
    }

    /// SIGTERM to every child still running, then waits (SIGKILL after 15 s).
    fn stop_all(&mut self) {
        for (_, c) in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                signal(c.id(), libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for (name, c) in &mut self.0 {
            while matches!(c.try_wait(), Ok(None)) {
                if Instant::now() > deadline {
                    eprintln!("{name} did not stop on SIGTERM: killing it");
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: plain kill(2) on a child we spawned and have not reaped.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// user and system CPU seconds of the reaped descendants so far.
fn children_cpu() -> (f64, f64) {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, ru.as_mut_ptr()) } != 0 {
        return (0.0, 0.0);
    }
    // SAFETY: filled in (rc == 0).
    let ru = unsafe { ru.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// One emulator instance: `serve --workers W` on one loopback address.
struct Emulator {
    url: String,
    pids: Vec<u32>,
    lines: mpsc::Receiver<String>,
}

fn start_emulator(children: &mut Children, s: &Settings, k: u64) -> Result<Emulator, String> {
    let host = format!("127.0.0.{}", k + 1);
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--host", &host, "--port", "0", "--no-typing"])
        .args(["--delay", &s.delay, "--seed", &(1000 * k).to_string()])
        .args(["--ping-timeout", &s.ping_timeout])
        .args(["--workers", &s.serve_workers.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let pid = children.spawn(&format!("serve {host}"), &mut cmd)?;
    let stdout = children
        .0
        .last_mut()
        .and_then(|(_, c)| c.stdout.take())
        .ok_or("serve has no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut url = None;
    let mut pids = vec![pid];
    let deadline = Instant::now() + Duration::from_secs(60);
    while url.is_none() || (s.serve_workers > 1 && pids.len() == 1) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .map_err(|_| format!("serve on {host} printed no banner within 60 s"))?;
        if let Some(u) = line.strip_prefix("finalping serve: listening on ") {
            url = Some(u.trim().to_string());
        } else if let Some((_, list)) = line.split_once("pids ") {
            pids.extend(list.split(',').filter_map(|p| p.trim().parse::<u32>().ok()));
        }
    }
    Ok(Emulator {
        url: url.unwrap_or_default(),
        pids,
        lines: rx,
    })
}

/// What the sampler saw.
#[derive(Default, Clone)]
struct Samples {
    /// (seconds since start, connected sessions = client sockets − idle)
    connected: Vec<(f64, u64)>,
    /// Client sockets once every segment checked in at the start barrier
    /// (setup done, schedule not yet started: it starts 2 s later).
    client_sockets_idle: Option<u64>,
    client_rss_idle_kib: Option<u64>,
    emulator_rss_idle_kib: Option<u64>,
    /// per pid: last VmHWM seen (KiB).
    hwm: HashMap<u32, u64>,
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Open sockets of a process (its descriptors that link to `socket:[…]`):
/// one per connected session, plus a few the process holds from setup on.
fn socket_count(pid: u32) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let sockets = dir
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|l| l.as_os_str().as_encoded_bytes().starts_with(b"socket:"))
        })
        .count();
    Some(sockets as u64)
}

/// Samples /proc once a second until `done`. The idle baseline is taken at
/// the first sample after all `segments` ready files are in `barrier`.
fn sampler(
    clients: Arc<Mutex<Vec<u32>>>,
    emulators: Vec<u32>,
    (barrier, segments): (PathBuf, usize),
    done: Arc<AtomicBool>,
    out: Arc<Mutex<Samples>>,
) {
    let t0 = Instant::now();
    let mut last_print = f64::MIN;
    while !done.load(Ordering::Relaxed) {
        let ready = std::fs::read_dir(&barrier).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("ready-"))
                .count()
        });
        let pids = clients.lock().map(|p| p.clone()).unwrap_or_default();
        let (mut fds, mut rss, mut alive) = (0, 0, 0);
        for &pid in &pids {
            if let (Some(f), Some(r)) = (socket_count(pid), proc_status_kib(pid, "VmRSS:")) {
                fds += f;
                rss += r;
                alive += 1;
            }
        }
        let emu_rss: u64 = emulators
            .iter()
            .filter_map(|&p| proc_status_kib(p, "VmRSS:"))
            .sum();
        let t = t0.elapsed().as_secs_f64();
        if let Ok(mut s) = out.lock() {
            for &pid in pids.iter().chain(&emulators) {
                if let Some(h) = proc_status_kib(pid, "VmHWM:") {
                    s.hwm.insert(pid, h);
                }
            }
            if s.client_sockets_idle.is_none() && ready == segments && alive == pids.len() {
                s.client_sockets_idle = Some(fds);
                s.client_rss_idle_kib = Some(rss);
                s.emulator_rss_idle_kib = Some(emu_rss);
            }
            if let Some(idle) = s.client_sockets_idle.filter(|_| alive == pids.len()) {
                let connected = fds.saturating_sub(idle);
                s.connected.push((t, connected));
                if t - last_print >= 5.0 {
                    last_print = t;
                    println!(
                        "  t={t:>5.0}s connected {connected:>7} · client RSS {:>6.0} MiB · emulator RSS {:>6.0} MiB",
                        rss as f64 / 1024.0,
                        emu_rss as f64 / 1024.0
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))
}

fn port_range() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().filter_map(|v| v.parse().ok());
    Some((it.next()?, it.next()?))
}

fn bench(s: &Settings) -> Result<bool, String> {
    let (lo, hi) = port_range().unwrap_or((32768, 60999));
    let ports = hi.saturating_sub(lo) + 1;
    let per_addr = s.sessions.div_ceil(s.addrs);
    let per_segment = s.sessions.div_ceil(s.segments);
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(_, h)| h);
    println!(
        "{} sessions: {} client segments ({per_segment} VUs each), {} emulator address(es) × {} worker(s) ({per_addr} sessions per address)",
        s.sessions, s.segments, s.addrs, s.serve_workers
    );
    println!(
        "ephemeral ports {lo}–{hi} ({ports}) per (client address, emulator address) pair; open-files hard limit {hard} per process; machine: {} cores, {} MiB available",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        proc_meminfo_mib("MemAvailable:").unwrap_or(0)
    );
    if per_addr > ports * 9 / 10 {
        return Err(format!(
            "{per_addr} connections to one emulator address need more than 90 % of the {ports} ephemeral ports ({lo}–{hi}); use more addresses (FINALPING_BENCH_ADDRS={}) — this benchmark does not change ip_local_port_range",
            (s.sessions * 10).div_ceil(ports * 9)
        ));
    }
    // SO_REUSEPORT spreads by hash: allow 25 % over the even share.
    let per_worker = per_addr.div_ceil(s.serve_workers) * 5 / 4;
    if per_segment + 128 > hard || per_worker + 128 > hard {
        return Err(format!(
            "{per_segment} VUs per segment / ~{per_worker} sessions per emulator worker do not fit {hard} open files per process: raise FINALPING_BENCH_SEGMENTS or FINALPING_BENCH_SERVE_WORKERS"
        ));
    }

    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let mut children = Children::default();
    let cpu_before = children_cpu();

    let mut emulators = Vec::new();
    for k in 0..s.addrs {
        emulators.push(start_emulator(&mut children, s, k)?);
    }
    let emulator_pids: Vec<u32> = emulators.iter().flat_map(|e| e.pids.clone()).collect();
    println!(
        "emulators: {} ({} processes), reply delay {}, ping timeout {}",
        emulators
            .iter()
            .map(|e| e.url.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        emulator_pids.len(),
        s.delay,
        s.ping_timeout
    );

    let scenario = dir.path().join("sessions.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: bench-sessions\nseed: 13\ntarget:\n  connect_timeout: 60s\nload: {{vus: {}, iterations: 1, ramp_up: {}s, grace: 30s}}\nsteps:\n  - connect\n  - send: {{text: hello, timeout: 60s}}\n  - think: {}s\n  - send: {{text: bye, timeout: 60s}}\n  - disconnect\n",
            s.sessions, s.ramp_s, s.hold_s
        ),
    )
    .map_err(|e| format!("write scenario: {e}"))?;
    let barrier = dir.path().join("barrier");
    let run_id = format!("sessions-{}", std::process::id());
    println!(
        "scenario: closed, {} VUs, ramp-up {} s, connect → turn → think {} s → turn → disconnect",
        s.sessions, s.ramp_s, s.hold_s
    );

    let client_pids = Arc::new(Mutex::new(Vec::new()));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler_thread = {
        let (c, e, d, o) = (
            client_pids.clone(),
            emulator_pids.clone(),
            done.clone(),
            samples.clone(),
        );
        let b = (barrier.clone(), s.segments as usize);
        std::thread::spawn(move || sampler(c, e, b, d, o))
    };

    let started = Instant::now();
    let mut segment_dirs = Vec::new();
    let mut segment_children = Children::default();
    let mut commands = Vec::new();
    for i in 0..s.segments {
        let target = &emulators[(i % s.addrs) as usize].url;
        let out = dir.path().join(format!("segment-{i}"));
        let log = std::fs::File::create(dir.path().join(format!("segment-{i}.log")))
            .map_err(|e| format!("log file: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let args: Vec<String> = vec![
            "run".into(),
            scenario.display().to_string(),
            "--segment".into(),
            format!("{i}/{}", s.segments),
            "--run-id".into(),
            run_id.clone(),
            "--start-barrier".into(),
            barrier.display().to_string(),
            "--barrier-timeout".into(),
            "5m".into(),
            "--target".into(),
            target.clone(),
            "--self-check".into(),
            "warn".into(),
            "--quiet".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        if i < 2 {
            commands.push(format!("finalping {}", args.join(" ")));
        }
        let pid = segment_children.spawn(
            &format!("segment {i}"),
            Command::new(BIN)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2),
        )?;
        if let Ok(mut p) = client_pids.lock() {
            p.push(pid);
        }
        segment_dirs.push(out);
    }
    println!("segments: {} (e.g. `{}`)", s.segments, commands[0]);

    // Bounded: barrier + ramp + hold + turn timeouts + margin.
    let deadline = started + Duration::from_secs(s.ramp_s + s.hold_s + 240);
    let mut exits = vec![None; segment_children.0.len()];
    while exits.iter().any(Option::is_none) {
        for (i, (_, c)) in segment_children.0.iter_mut().enumerate() {
            if exits[i].is_none() {
                if let Ok(Some(status)) = c.try_wait() {
                    exits[i] = Some(status.code().unwrap_or(-1));
                }
            }
        }
        if Instant::now() > deadline {
            println!("deadline passed: stopping the segments (partial reports)");
            segment_children.stop_all();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let run_wall = started.elapsed().as_secs_f64();
    segment_children.stop_all();
    let cpu_clients = children_cpu();
    done.store(true, Ordering::Relaxed);
    let _ = sampler_thread.join();
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    let emulator_hwm: u64 = emulator_pids
        .iter()
        .filter_map(|&p| proc_status_kib(p, "VmHWM:"))
        .sum();

    // Stop the emulators; their parents print the summed counters.
    for e in &emulators {
        if let Some(&pid) = e.pids.first() {
            signal(pid, libc::SIGTERM);
        }
    }
    let mut emulator_sessions = 0u64;
    let mut emulator_turns = 0u64;
    for e in &emulators {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(line) = e
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if let Some(total) = line.trim().strip_prefix("total: ") {
                let mut words = total.split_whitespace();
                emulator_sessions += words
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                words.next();
                emulator_turns += words
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                break;
            }
        }
    }
    children.stop_all();
    let cpu_all = children_cpu();

    for (i, code) in exits.iter().enumerate() {
        if *code != Some(0) {
            let log = std::fs::read_to_string(dir.path().join(format!("segment-{i}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            println!("segment {i} exited {code:?}; last lines of its log:");
            for l in tail.iter().rev() {
                println!("    {l}");
            }
        }
    }

    let merged = dir.path().join("merged");
    let status = Command::new(BIN)
        .arg("merge")
        .args(&segment_dirs)
        .args(["--self-check", "warn", "--quiet", "--out"])
        .arg(&merged)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("finalping merge: {e}"))?;
    let summary = read_json(&merged.join("summary.json"))?;
    if let Some(keep) = &s.keep {
        copy_dir(&merged, keep)?;
        println!("merged report kept in {}", keep.display());
    }

    let c = &summary["counters"];
    let count = |k: &str| c[k].as_u64().unwrap_or(0);
    let n = s.sessions;
    let connected_peak = samples.connected.iter().map(|(_, c)| *c).max().unwrap_or(0);
    let rate = connect_rate(&samples.connected, n);
    let client_hwm: u64 = samples
        .hwm
        .iter()
        .filter(|(p, _)| !emulator_pids.contains(p))
        .map(|(_, h)| h)
        .sum();
    let (cu, cs) = (cpu_clients.0 - cpu_before.0, cpu_clients.1 - cpu_before.1);
    let (eu, es) = (cpu_all.0 - cpu_clients.0, cpu_all.1 - cpu_clients.1);
    let ms = |m: &str, p: &str| summary["metrics"][m][p].as_f64().unwrap_or(f64::NAN);
    let kib_per = |total: u64, idle: Option<u64>| {
        (
            total as f64 / n as f64,
            total.saturating_sub(idle.unwrap_or(0)) as f64 / n as f64,
        )
    };
    let (c_all, c_net) = kib_per(client_hwm, samples.client_rss_idle_kib);
    let (e_all, e_net) = kib_per(emulator_hwm, samples.emulator_rss_idle_kib);

    println!();
    println!("| measurement | value |");
    println!("|---|---:|");
    println!("| sessions connected at the same moment (client sockets, sampled 1/s) | {connected_peak} of {n} |");
    println!(
        "| connects ok / errors · reconnects · disconnects (merged report) | {} / {} · {} · {} |",
        count("connects_ok"),
        count("connect_errors"),
        count("reconnects"),
        count("disconnects")
    );
    println!(
        "| turns ok / sent (client) · turns seen by the emulators | {} / {} · {emulator_turns} ({emulator_sessions} sessions) |",
        count("turns_ok"),
        count("turns_sent")
    );
    println!(
        "| turns timed out / failed / dropped / interrupted | {} / {} / {} / {} |",
        count("turns_timeout"),
        count("turns_error"),
        count("turns_disconnected"),
        count("turns_interrupted")
    );
    println!(
        "| client peak RSS, sum of {} processes' peaks (÷ VUs; minus idle {:.0} MiB ÷ VUs) | {:.0} MiB ({c_all:.1} KiB; {c_net:.1} KiB) |",
        s.segments,
        samples.client_rss_idle_kib.unwrap_or(0) as f64 / 1024.0,
        client_hwm as f64 / 1024.0
    );
    println!(
        "| emulator peak RSS, sum of {} processes' peaks (÷ sessions; minus idle {:.0} MiB ÷ sessions) | {:.0} MiB ({e_all:.1} KiB; {e_net:.1} KiB) |",
        emulator_pids.len(),
        samples.emulator_rss_idle_kib.unwrap_or(0) as f64 / 1024.0,
        emulator_hwm as f64 / 1024.0
    );
    println!(
        "| connect rate: planned (VUs ÷ ramp-up) · measured (10 % → 90 % connected) | {:.0}/s · {} |",
        n as f64 / s.ramp_s.max(1) as f64,
        rate.map_or("n/a".to_string(), |r| format!("{r:.0}/s"))
    );
    println!(
        "| connect p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        ms("connect", "p50_ms"),
        ms("connect", "p99_ms"),
        ms("connect", "max_ms")
    );
    println!(
        "| final_ping p50 / p90 / p99 / p99.9 / max (merged, {} turns) | {:.2} / {:.2} / {:.2} / {:.2} / {:.2} ms |",
        summary["metrics"]["final_ping"]["count"],
        ms("final_ping", "p50_ms"),
        ms("final_ping", "p90_ms"),
        ms("final_ping", "p99_ms"),
        ms("final_ping", "p99_9_ms"),
        ms("final_ping", "max_ms")
    );
    println!(
        "| client CPU user / sys ({} processes, whole run {run_wall:.0} s) | {cu:.1} s / {cs:.1} s |",
        s.segments
    );
    println!(
        "| emulator CPU user / sys ({} processes) | {eu:.1} s / {es:.1} s |",
        emulator_pids.len()
    );
    println!(
        "| CPU per session (client + emulator, 2 turns each) | {:.3} ms |",
        (cu + cs + eu + es) * 1000.0 / n as f64
    );
    println!(
        "| merged status · exit code | {} · {} |",
        summary["status"],
        status.code().unwrap_or(-1)
    );

    let ok = connected_peak >= n
        && count("connects_ok") == n
        && count("turns_ok") == 2 * n
        && count("turns_sent") == 2 * n
        && count("connect_errors") == 0
        && count("reconnects") == 0
        && count("disconnects") == 0
        && emulator_turns == 2 * n
        && exits.iter().all(|c| *c == Some(0));
    println!(
        "RESULT: {}",
        if ok {
            "every session connected at once, every turn answered, nothing lost"
        } else {
            "NOT all sessions connected at once / turns lost (see the table)"
        }
    );
    Ok(ok)
}

/// Connects per second while the connected count rose from 10 % to 90 %.
fn connect_rate(series: &[(f64, u64)], n: u64) -> Option<f64> {
    let at = |share: u64| series.iter().find(|(_, c)| *c * 10 >= n * share);
    let (t1, c1) = at(1)?;
    let (t9, c9) = at(9)?;
    (t9 > t1).then(|| (c9 - c1) as f64 / (t9 - t1))
}

fn proc_meminfo_mib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| k / 1024)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("create {}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .map_err(|e| format!("copy {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}
