//! `finalping serve`: run the emulator in the foreground until Ctrl-C/SIGTERM;
//! with `--workers N`, as N processes on one port (`serve_workers`).

use super::signals;
use crate::cli::ServeArgs;
use crate::emulator::{self, EmulatorConfig};
use crate::error::{exit, CliError};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

pub async fn serve(args: ServeArgs) -> Result<i32, CliError> {
    let ip: IpAddr = args.host.parse().map_err(|_| {
        CliError::usage(format!(
            "--host `{}` is not an IP address (use e.g. 127.0.0.1 or ::1)",
            args.host
        ))
    })?;
    let addr = SocketAddr::new(ip, args.port);
    // Every accepted connection is a descriptor: a soft limit of 1,024 (a
    // common default) would cap the emulator far below its capacity.
    let fd_limit = super::run::raise_fd_limit();
    if let Some(index) = args.worker_index {
        return super::serve_workers::worker(addr, index).await;
    }
    let config = build_config(&args)?;
    if args.workers > 1 {
        return super::serve_workers::supervise(config, addr, args.workers).await;
    }
    let server = emulator::start(config.clone(), addr).await.map_err(|e| {
        CliError::usage(format!(
            "cannot listen on {addr}: {e} (pick another --port, or --port 0 for a free one)"
        ))
    })?;
    let faults = print_banner(&config, server.addr, None, fd_limit);
    let stop = signals::install("closing the emulator's connections");
    stop.cancelled().await;
    if !faults.is_empty() {
        let fired = serde_json::json!({
            "socketio": server.stats().faults,
            "runtime": server.runtime_fault_stats(),
        });
        println!("  faults fired: {fired}");
    }
    server.shutdown().await;
    Ok(exit::PASS)
}

/// Prints what is served where (the first line carries the URL); `workers`
/// names the worker processes. Returns the active fault descriptions.
pub(super) fn print_banner(
    config: &EmulatorConfig,
    addr: SocketAddr,
    workers: Option<&[u32]>,
    fd_limit: Option<u64>,
) -> Vec<String> {
    println!("finalping serve: listening on http://{addr}");
    if let Some(pids) = workers {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        println!(
            "  {} worker processes share the port (SO_REUSEPORT), pids {}",
            pids.len(),
            pids.join(", ")
        );
    }
    let eio = match (config.eio3, config.eio4) {
        (true, true) => "EIO3 + EIO4",
        (true, false) => "EIO3 only",
        _ => "EIO4 only",
    };
    let prefix = config
        .path_prefix
        .as_deref()
        .map(|p| format!(" and {p}/socket.io/"))
        .unwrap_or_default();
    println!(
        "  Socket.IO at /socket.io/{prefix} ({eio}), {} output(s) per turn after {}; Ctrl-C to stop",
        config.outputs, config.delay
    );
    println!(
        "  runtime WebSocket ws://{addr}{} · OAuth token endpoint http://{addr}{} (client id `{}`) · webhook sink http://{addr}{}",
        emulator::RUNTIME_PATH,
        emulator::TOKEN_PATH,
        config.runtime.client_id,
        emulator::WEBHOOK_PATH
    );
    if let Some(limit) = fd_limit {
        let per = if workers.is_some() { " per worker" } else { "" };
        println!("  open files: up to {limit}{per} (one per connection)");
    }
    let mut faults = config.faults.describe_active();
    faults.extend(config.runtime.faults.describe_active());
    if !faults.is_empty() {
        println!("  FAULTS ON: {}", faults.join(", "));
    }
    let _ = std::io::stdout().flush();
    faults
}

fn build_config(args: &ServeArgs) -> Result<EmulatorConfig, CliError> {
    let mut c = match &args.config {
        Some(path) => {
            EmulatorConfig::from_yaml_file(path).map_err(|e| CliError::usage(e.to_string()))?
        }
        None => EmulatorConfig::default(),
    };
    if args.eio3_only {
        c.eio3 = true;
        c.eio4 = false;
    }
    if args.eio4_only {
        c.eio3 = false;
        c.eio4 = true;
    }
    if let Some(d) = &args.delay {
        c.delay = d.clone();
    }
    if let Some(d) = &args.output_gap {
        c.output_gap = d.clone();
    }
    if let Some(n) = args.outputs {
        c.outputs = n;
    }
    if args.no_typing {
        c.typing = false;
    }
    if let Some(d) = args.ping_interval {
        c.ping_interval = d;
    }
    if let Some(d) = args.ping_timeout {
        c.ping_timeout = d;
    }
    if let Some(p) = &args.path_prefix {
        c.path_prefix = Some(p.clone());
    }
    if !args.url_tokens.is_empty() {
        c.url_tokens = args.url_tokens.clone();
    }
    if let Some(s) = args.seed {
        c.seed = s;
    }
    // A bad setting (file or flag) is a configuration error, not a listen failure.
    c.validate().map_err(|e| {
        CliError::usage(format!(
            "emulator configuration: {e} (fix the flag or the --config file)"
        ))
    })?;
    Ok(c)
}
