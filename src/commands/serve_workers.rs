//! `finalping serve --workers N`: N emulator processes of this binary on one
//! port. Each worker binds its own `SO_REUSEPORT` listener, so the kernel
//! spreads new connections over them and a connection stays with the worker
//! that accepted it; the parent reserves the port (a bound socket that never
//! listens), starts the workers in their own process group, prints one banner,
//! forwards Ctrl-C/SIGTERM once and prints every worker's counters and their
//! sum at the end.
//!
//! Parent ↔ worker, all local: the parent hands its effective settings in the
//! `FINALPING_SERVE_WORKER` environment variable (JSON) and keeps the worker's
//! stdin open (EOF = the parent is gone: stop); a worker prints `ready <pid>`
//! once it listens and `stats <json>` when it stops.

use crate::emulator::{self, EmulatorConfig, EmulatorStats};
use crate::error::{exit, CliError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// The environment variable carrying the settings to a worker.
const WORKER_ENV: &str = "FINALPING_SERVE_WORKER";
/// Accept queue of each worker's listener.
const BACKLOG: u32 = 4096;
/// How long the workers may take to listen.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long stopped workers may take to report and exit before they are killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// What a worker served, as it reports at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub pid: u32,
    pub sessions: u64,
    pub refused: u64,
    pub turns: u64,
    pub outputs: u64,
    pub runtime_connections: u64,
    pub updates_ok: u64,
    pub tokens_issued: u64,
    pub webhook_received: u64,
}

impl WorkerStats {
    fn of(pid: u32, s: &EmulatorStats) -> WorkerStats {
        WorkerStats {
            pid,
            sessions: s.sessions,
            refused: s.refused,
            turns: s.turns,
            outputs: s.outputs,
            runtime_connections: s.runtime_connections,
            updates_ok: s.updates_ok,
            tokens_issued: s.tokens_issued,
            webhook_received: s.webhook_received,
        }
    }

    fn add(&mut self, o: &WorkerStats) {
        self.sessions += o.sessions;
        self.refused += o.refused;
        self.turns += o.turns;
        self.outputs += o.outputs;
        self.runtime_connections += o.runtime_connections;
        self.updates_ok += o.updates_ok;
        self.tokens_issued += o.tokens_issued;
        self.webhook_received += o.webhook_received;
    }

    fn describe(&self) -> String {
        format!(
            "{} sessions, {} turns, {} outputs, {} refused · runtime: {} connections, {} updates, {} tokens · {} webhook records",
            self.sessions,
            self.turns,
            self.outputs,
            self.refused,
            self.runtime_connections,
            self.updates_ok,
            self.tokens_issued,
            self.webhook_received
        )
    }
}

/// A TCP socket for `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`, bound.
fn reuseport_socket(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// One worker: serve on a `SO_REUSEPORT` listener until SIGTERM/SIGINT or
/// until the parent closes our stdin; then report the counters.
pub async fn worker(addr: SocketAddr, index: u32) -> Result<i32, CliError> {
    let json = std::env::var(WORKER_ENV).map_err(|_| {
        CliError::usage("--worker-index is used by `serve --workers`; use --workers N instead")
    })?;
    let mut config: EmulatorConfig = serde_json::from_str(&json)
        .map_err(|e| CliError::internal(format!("worker settings from the parent: {e}")))?;
    config.seed = config.seed.wrapping_add(u64::from(index));
    let listener = reuseport_socket(addr)
        .and_then(|s| s.listen(BACKLOG))
        .map_err(|e| CliError::usage(format!("worker {index}: cannot listen on {addr}: {e}")))?;
    let server = emulator::start_on(config, listener)
        .await
        .map_err(|e| CliError::usage(format!("worker {index}: {e}")))?;
    let pid = std::process::id();
    println!("ready {pid}");
    let _ = std::io::stdout().flush();
    stopped().await;
    let stats = WorkerStats::of(pid, &server.stats());
    server.shutdown().await;
    let line = serde_json::to_string(&stats).map_err(|e| CliError::internal(e.to_string()))?;
    println!("stats {line}");
    let _ = std::io::stdout().flush();
    Ok(exit::PASS)
}

/// Returns on SIGTERM, SIGINT or EOF on stdin (the parent went away).
async fn stopped() {
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        let _ = gone_tx.send(());
    });
    let parent_gone = async {
        let _ = gone_rx.await;
    };
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = parent_gone => {}
            }
        }
        _ => parent_gone.await,
    }
}

/// What the parent hears from worker `k`.
enum Event {
    Ready(usize, u32),
    Stats(usize, WorkerStats),
    /// Its stdout closed: it exited.
    Gone(usize),
}

/// The parent: reserve the port, start `workers` workers, print the banner,
/// forward the stop signal, sum the counters.
pub async fn supervise(
    config: EmulatorConfig,
    addr: SocketAddr,
    workers: u32,
) -> Result<i32, CliError> {
    config
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    // A plain bind first: SO_REUSEPORT alone would silently join another
    // server's listeners on that port (same user) and share its traffic.
    let free = std::net::TcpListener::bind(addr)
        .and_then(|l| l.local_addr())
        .map_err(|e| {
            CliError::usage(format!(
                "cannot listen on {addr}: {e} (pick another --port, or --port 0 for a free one)"
            ))
        })?;
    // Keeps the port ours for the workers (bound, never listening: it gets
    // no connections).
    let reserved = reuseport_socket(free).map_err(|e| {
        CliError::usage(format!(
            "cannot bind {addr}: {e} (pick another --port, or --port 0 for a free one)"
        ))
    })?;
    let addr = reserved
        .local_addr()
        .map_err(|e| CliError::internal(e.to_string()))?;
    let settings = serde_json::to_string(&config).map_err(|e| CliError::internal(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| {
        CliError::internal(format!("cannot find this program to start workers: {e}"))
    })?;
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    let mut children = Vec::new();
    for k in 0..workers as usize {
        let mut child = tokio::process::Command::new(&exe)
            .args(["serve", "--host", &addr.ip().to_string()])
            .args(["--port", &addr.port().to_string()])
            .args(["--worker-index", &k.to_string()])
            .env(WORKER_ENV, &settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Ctrl-C reaches only this process, which forwards it once.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CliError::internal(format!("cannot start worker {k}: {e}")))?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(read_worker(k, out, tx.clone()));
        }
        children.push(child);
    }
    drop(tx);

    let mut pids = vec![0u32; children.len()];
    let started = tokio::time::timeout(START_LIMIT, async {
        let mut ready = 0;
        while ready < pids.len() {
            match rx.recv().await {
                Some(Event::Ready(k, pid)) => {
                    pids[k] = pid;
                    ready += 1;
                }
                Some(Event::Gone(k)) => return Err(format!("worker {k} exited while starting")),
                Some(Event::Stats(..)) => {}
                None => return Err("the workers exited while starting".to_string()),
            }
        }
        Ok(())
    })
    .await;
    match started {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(CliError::internal(e)),
        Err(_) => {
            return Err(CliError::internal(format!(
                "the workers did not listen within {START_LIMIT:?}"
            )))
        }
    }
    super::serve::print_banner(&config, addr, Some(&pids), super::run::raise_fd_limit());

    let stop = super::signals::install("stopping the workers");
    let mut lost = None;
    let mut stats: Vec<Option<WorkerStats>> = vec![None; pids.len()];
    tokio::select! {
        _ = stop.cancelled() => {}
        event = rx.recv() => {
            if let Some(Event::Gone(k)) = event {
                lost = Some(k);
            }
        }
    }
    for pid in &pids {
        if let Ok(pid) = i32::try_from(*pid) {
            // SAFETY: kill(2) of a worker we started (its pid, not a group).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let _ = tokio::time::timeout(STOP_LIMIT, async {
        while let Some(event) = rx.recv().await {
            if let Event::Stats(k, s) = event {
                stats[k] = Some(s);
            }
        }
    })
    .await;
    for child in &mut children {
        if tokio::time::timeout(Duration::from_secs(1), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
    drop(reserved);

    let mut total = WorkerStats::default();
    for (k, s) in stats.iter().enumerate() {
        match s {
            Some(s) => {
                println!("  worker {k} (pid {}): {}", s.pid, s.describe());
                total.add(s);
            }
            None => println!("  worker {k} (pid {}): no counters reported", pids[k]),
        }
    }
    println!("  total: {}", total.describe());
    let _ = std::io::stdout().flush();
    match lost {
        Some(k) => Err(CliError::internal(format!(
            "worker {k} (pid {}) exited unexpectedly; the others were stopped",
            pids[k]
        ))),
        None => Ok(exit::PASS),
    }
}

/// Forwards a worker's `ready` and `stats` lines; other lines are printed.
async fn read_worker(k: usize, out: tokio::process::ChildStdout, tx: mpsc::Sender<Event>) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let event = if let Some(pid) = line.strip_prefix("ready ") {
            pid.trim().parse().ok().map(|pid| Event::Ready(k, pid))
        } else if let Some(json) = line.strip_prefix("stats ") {
            serde_json::from_str(json).ok().map(|s| Event::Stats(k, s))
        } else {
            None
        };
        match event {
            Some(e) => {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            None => println!("  worker {k}: {line}"),
        }
    }
    let _ = tx.send(Event::Gone(k)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reach_a_worker_unchanged() {
        let yaml = "delay: uniform(5ms, 9ms)\noutputs: 3\nseed: 9\nurl_tokens: [a, b]\n";
        let config = EmulatorConfig::from_yaml_str(yaml).unwrap();
        let json = serde_json::to_string(&config).unwrap();
        let back: EmulatorConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn counters_add_up() {
        let mut total = WorkerStats::default();
        let a = WorkerStats {
            pid: 1,
            sessions: 2,
            turns: 3,
            ..Default::default()
        };
        total.add(&a);
        total.add(&a);
        assert_eq!((total.sessions, total.turns), (4, 6));
        assert!(total.describe().starts_with("4 sessions, 6 turns"));
    }
}
