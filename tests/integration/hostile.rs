//! Hostile peers (issue #15): servers written here, on 127.0.0.1, that do what
//! no real Endpoint should — endless outputs without `finalPing`, a flood of
//! WebSocket pings while never reading, a frame header claiming 2^63 bytes,
//! endless fragments, a close in the middle of a frame, garbage bytes — and the
//! real `finalping` binary run against each. Every case asserts that the child
//! ends by itself (the test kills it after a generous hard limit and fails),
//! that its peak RSS (`ru_maxrss` from `wait4` in `tests/python/peak_rss.py`,
//! the kernel's VmHWM of the child) stays bounded, and that the counts in
//! `summary.json` add up. README "Fault matrix → Hostile peers" lists the
//! measured bounds (`cargo test --test integration hostile:: -- --nocapture`
//! prints them).

use crate::common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const QUICK: Duration = Duration::from_secs(60);
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Hard limit of one run: the child is killed (and the test fails) after this.
const LIMIT: Duration = Duration::from_secs(90);
/// Peak RSS every case must stay under (the runs use 2 VUs; a healthy run
/// peaks at a few tens of MiB, the unbounded cases grew to gigabytes).
const RSS_BOUND_KIB: u64 = 300 * 1024;

/// What one measured run of the binary left.
struct Measured {
    code: i32,
    stdout: String,
    stderr: String,
    peak_rss_kib: u64,
    took: Duration,
}

/// Runs `finalping <args>` through `tests/python/peak_rss.py`, which hands
/// back the child's own peak RSS (a child spawned by this test process would
/// start from this process's peak, see the script); kills both and panics
/// after `limit`.
fn run_measured(args: &[&str], limit: Duration) -> Measured {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let peak_file = tempfile::NamedTempFile::new().expect("peak RSS file");
    let mut child = Command::new("python3")
        .arg(repo_path("tests/python/peak_rss.py"))
        .arg(peak_file.path())
        .arg(bin())
        .args(with_self_check_warn(args))
        // Its own process group, so that a kill reaches the run too.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn peak_rss.py");
    let pid = child.id() as i32;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(limit) {
        Ok(status) => status.expect("wait for peak_rss.py"),
        Err(_) => {
            // SAFETY: plain kill(2) of the process group we created.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = rx.recv_timeout(limit);
            panic!("finalping did not end by itself within {limit:?}");
        }
    };
    let stderr = err.join().unwrap_or_default();
    let peak = std::fs::read_to_string(peak_file.path()).unwrap_or_default();
    let peak_rss_kib = peak
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("peak_rss.py wrote no peak ({status}): {stderr}"));
    Measured {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap_or_default(),
        stderr,
        peak_rss_kib,
        took: started.elapsed(),
    }
}

/// A server on 127.0.0.1 serving every connection with `handler` on its own
/// runtime thread (dropped with the test).
struct Hostile {
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

fn hostile<F, Fut>(handler: F) -> Hostile
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(handler(tcp));
        }
    });
    Hostile {
        port,
        _runtime: runtime,
    }
}

type Ws = WebSocketStream<TcpStream>;

/// The WebSocket upgrade plus EIO3 open, `40` and `endpoint-ready`; then reads
/// (answering EIO3 pings) until the client's `processInput`. `None` if the
/// client went away first.
async fn handshake_until_input(tcp: TcpStream) -> Option<Ws> {
    let mut ws = tokio_tungstenite::accept_async(tcp).await.ok()?;
    let open = r#"0{"sid":"hostile","upgrades":[],"pingInterval":25000,"pingTimeout":60000}"#;
    for frame in [open, "40", r#"42["endpoint-ready"]"#] {
        ws.send(Message::text(frame)).await.ok()?;
    }
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(t) = msg {
            if t.as_str() == "2" {
                ws.send(Message::text("3")).await.ok()?;
            } else if t.as_str().contains("processInput") {
                return Some(ws);
            }
        }
    }
    None
}

/// A scenario of 2 VUs for `secs` seconds against `port`.
fn scenario(name: &str, port: u16, secs: u32, extra_target: &str) -> String {
    format!(
        "name: hostile-{name}\n\
         target:\n  url: \"http://127.0.0.1:{port}/hostile-token\"\n  url_token: hostile-token\n  \
         connect_timeout: 2s\n  reconnect: {{interval: 100ms, max_attempts: 2}}\n{extra_target}\
         load: {{vus: 2, duration: {secs}s, grace: 1s}}\n\
         steps:\n  - send: {{text: hi, timeout: 5s}}\n"
    )
}

/// Runs `yaml`, checks the bounds and the turn accounting, and returns the summary.
fn run_case(case: &str, yaml: &str) -> (Measured, Value) {
    let w = Workdir::new();
    let file = w.file("s.yaml", yaml);
    let out_dir = w.path("r");
    let m = run_measured(
        &[
            "run",
            file.to_str().unwrap_or_default(),
            "--out",
            out_dir.to_str().unwrap_or_default(),
            "--quiet",
        ],
        LIMIT,
    );
    let summary_path = out_dir.join("summary.json");
    assert!(
        summary_path.is_file(),
        "{case}: no summary.json (exit {})\n{}\n{}",
        m.code,
        m.stdout,
        m.stderr
    );
    let s = read_json(&summary_path);
    let sent = counter(&s, "turns_sent");
    let ended: u64 = [
        "turns_ok",
        "turns_timeout",
        "turns_error",
        "turns_disconnected",
        "turns_interrupted",
    ]
    .iter()
    .map(|c| counter(&s, c))
    .sum();
    assert_eq!(sent, ended, "{case}: every turn sent ends once: {s}");
    assert!(
        m.peak_rss_kib < RSS_BOUND_KIB,
        "{case}: peak RSS {} KiB above {RSS_BOUND_KIB} KiB",
        m.peak_rss_kib
    );
    println!(
        "| {case} | exit {} | peak RSS {:.1} MiB | ended after {:.1} s | turns {} sent, causes {} |",
        m.code,
        m.peak_rss_kib as f64 / 1024.0,
        m.took.as_secs_f64(),
        sent,
        s["errors"]
    );
    (m, s)
}

fn cause(s: &Value, name: &str) -> u64 {
    s["errors"][name].as_u64().unwrap_or(0)
}

/// Issue #15 (1): outputs and never `finalPing` grew one VU to 3.5 GB. Now a
/// turn keeps at most `max_turn_outputs` and then fails as `turn_outputs_overflow`.
#[test]
fn endless_outputs_without_final_ping_end_the_turn() {
    let server = hostile(|tcp| async move {
        let Some(mut ws) = handshake_until_input(tcp).await else {
            return;
        };
        let text = "x".repeat(512);
        let frame = format!(r#"42["output",{{"type":"output","data":{{"text":"{text}"}}}}]"#);
        while ws.send(Message::text(frame.clone())).await.is_ok() {}
    });
    let yaml = scenario(
        "outputs",
        server.port,
        2,
        "  max_turn_outputs: 200\n  max_turn_output_bytes: 1048576\n",
    );
    let (m, s) = run_case("endless outputs", &yaml);
    assert!(matches!(m.code, 1 | 2), "{}", m.stderr);
    let overflow = cause(&s, "turn_outputs_overflow");
    assert!(overflow >= 1, "{s}");
    assert_eq!(overflow, counter(&s, "turns_error"), "{s}");
    assert!(
        counter(&s, "outputs") >= 201 * overflow,
        "every output counted: {s}"
    );
}

/// Output text beyond `max_turn_output_bytes` ends the turn the same way.
#[test]
fn output_bytes_bound_ends_the_turn() {
    let server = hostile(|tcp| async move {
        let Some(mut ws) = handshake_until_input(tcp).await else {
            return;
        };
        let text = "y".repeat(64 * 1024);
        let frame = format!(r#"42["output",{{"type":"output","data":{{"text":"{text}"}}}}]"#);
        while ws.send(Message::text(frame.clone())).await.is_ok() {}
    });
    let yaml = scenario(
        "output-bytes",
        server.port,
        1,
        "  max_turn_output_bytes: 200000\n",
    );
    let (m, s) = run_case("endless large outputs", &yaml);
    assert!(matches!(m.code, 1 | 2), "{}", m.stderr);
    assert!(cause(&s, "turn_outputs_overflow") >= 1, "{s}");
}

/// A zero bound is a configuration error with its position.
#[test]
fn zero_output_bounds_are_refused_with_position() {
    let w = Workdir::new();
    let file = w.file(
        "s.yaml",
        &scenario("zero", 9, 1, "  max_turn_outputs: 0\n").replace("hostile-zero", "zero"),
    );
    let out = run_finalping(
        &["validate", file.to_str().unwrap_or_default()],
        Duration::from_secs(30),
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains("s.yaml:7:") && t.contains("max_turn_outputs"),
        "{t}"
    );
}

/// Sanity check of the harness: a well-behaved raw server passes.
#[test]
fn a_polite_server_passes() {
    let server = hostile(|tcp| async move {
        let Some(mut ws) = handshake_until_input(tcp).await else {
            return;
        };
        loop {
            let frames = [
                r#"42["output",{"type":"output","data":{"text":"hello"}}]"#,
                r#"42["finalPing",{"type":"regular"}]"#,
            ];
            for f in frames {
                if ws.send(Message::text(f)).await.is_err() {
                    return;
                }
            }
            // Wait for the next input (or the client's goodbye).
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str().contains("processInput") => break,
                    Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                        if ws.send(Message::text("3")).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => {
                        let _ = ws.get_mut().shutdown().await;
                        return;
                    }
                }
            }
        }
    });
    let yaml = scenario("polite", server.port, 1, "");
    let (m, s) = run_case("polite", &yaml);
    assert_eq!(m.code, 0, "{}\n{}", m.stderr, s);
    assert!(counter(&s, "turns_ok") >= 2, "{s}");
}

/// Every file of `dir` and the console of `out`, for secret checks.
fn everything_written(dir: &std::path::Path, console: &str) -> Vec<(String, String)> {
    let mut all = vec![("console".to_string(), console.to_string())];
    for entry in std::fs::read_dir(dir).expect("report folder") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read report file");
        all.push((
            path.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    all
}

fn assert_no_secret(all: &[(String, String)], secrets: &[&str]) {
    for (name, content) in all {
        for s in secrets {
            assert!(!content.contains(s), "`{s}` in {name}:\n{content}");
        }
    }
}

/// Issue #15 (2): a URL token in `target.url` (no `url_token` configured), a
/// password in the webhook URL given with `--set` and debug logging: no file
/// of the report folder, no console line holds either. The token is taken
/// from the URL, so the run against `serve --url-token <TOKEN>` passes.
#[test]
fn url_token_in_the_url_and_url_passwords_never_reach_reports_or_logs() {
    const TOKEN: &str = "a7c3e9f1b5d24680ace13579bdf02468";
    const PASSWORD: &str = "pw-Hunter2-Secret";
    let served = serve(&["--url-token", TOKEN]);
    let w = Workdir::new();
    let yaml = format!(
        "name: secrets\ntarget:\n  url: \"{}/{TOKEN}\"\nload: {{vus: 2, iterations: 2}}\n\
         steps:\n  - send: {{text: hi}}\n",
        served.url
    );
    let file = w.file("s.yaml", &yaml);
    let out_dir = w.path("r");
    let webhook = format!("webhook.url=http://user:{PASSWORD}@127.0.0.1:9/hook");
    let out = run_finalping_env(
        &[
            "run",
            file.to_str().unwrap_or_default(),
            "--out",
            out_dir.to_str().unwrap_or_default(),
            "--set",
            &webhook,
        ],
        &[("RUST_LOG", "debug")],
        LIMIT,
    );
    let console = text(&out);
    assert_eq!(out.status.code(), Some(0), "{console}");
    let all = everything_written(&out_dir, &console);
    assert!(all.len() >= 6, "{all:?}");
    assert_no_secret(&all, &[TOKEN, &TOKEN[4..], PASSWORD]);
    let m = read_json(&out_dir.join("manifest.json"));
    assert!(
        m["command_line"]
            .as_str()
            .unwrap_or_default()
            .contains("webhook.url=http://***@127.0.0.1:9/hook"),
        "{m}"
    );
}

/// A malformed target URL (user info, which the client refuses) under
/// `RUST_LOG=debug`: the connect error is logged and reported without the
/// token or the password.
#[test]
fn a_malformed_target_url_is_logged_without_its_secrets() {
    const TOKEN: &str = "f00dfeedcafe0123456789abcdef0123";
    const PASSWORD: &str = "pw-Correct-Horse";
    let w = Workdir::new();
    let yaml = format!(
        "name: malformed\ntarget:\n  url: \"http://someone:{PASSWORD}@127.0.0.1:9/{TOKEN}\"\n  \
         reconnect: {{max_attempts: 0}}\nload: {{vus: 1, iterations: 1}}\nsteps:\n  - send: {{text: hi}}\n"
    );
    let file = w.file("s.yaml", &yaml);
    let out_dir = w.path("r");
    let out = run_finalping_env(
        &[
            "run",
            file.to_str().unwrap_or_default(),
            "--out",
            out_dir.to_str().unwrap_or_default(),
        ],
        &[("RUST_LOG", "debug")],
        LIMIT,
    );
    let console = text(&out);
    assert!(console.contains("connect failed"), "{console}");
    let all = everything_written(&out_dir, &console);
    assert_no_secret(&all, &[TOKEN, &TOKEN[4..], PASSWORD]);
}

/// Issue #15 (3): a server that floods WebSocket pings and never reads grew
/// the client's write buffer ~220 MB/s. The write buffer is capped now: the
/// turn ends (write timeout / buffer full) and memory stays flat.
#[test]
fn ping_flood_without_reading_stays_bounded() {
    let _quiet = exclusive();
    let server = hostile(|tcp| async move {
        let Some(mut ws) = handshake_until_input(tcp).await else {
            return;
        };
        let payload = vec![7u8; 125];
        // Never read again: the client's pongs pile up in its socket.
        while ws.send(Message::Ping(payload.clone().into())).await.is_ok() {}
    });
    // A 10 s turn: unbounded, the pongs grew the client by ~7 MiB/s per
    // connection here; bounded, each connection stops at its 4 MiB cap.
    let yaml = scenario("ping-flood", server.port, 1, "")
        .replace("timeout: 5s", "timeout: 10s")
        .replace("grace: 1s", "grace: 12s");
    let (m, s) = run_case("ping flood, never reading", &yaml);
    assert_eq!(counter(&s, "turns_ok"), 0, "{s}");
    assert!(
        m.peak_rss_kib < 120 * 1024,
        "peak RSS {} KiB",
        m.peak_rss_kib
    );
}

/// Writes raw bytes after the handshake (the WebSocket layer is bypassed).
fn raw_after_input(bytes: Vec<u8>, then_close: bool) -> Hostile {
    let bytes = std::sync::Arc::new(bytes);
    hostile(move |tcp| {
        let bytes = bytes.clone();
        async move {
            let Some(mut ws) = handshake_until_input(tcp).await else {
                return;
            };
            let tcp = ws.get_mut();
            if tcp.write_all(&bytes).await.is_err() || then_close {
                let _ = tcp.shutdown().await;
                return;
            }
            // Keep the connection open without reading until the client leaves.
            let mut sink = [0u8; 1024];
            while let Ok(n) = tokio::io::AsyncReadExt::read(tcp, &mut sink).await {
                if n == 0 {
                    return;
                }
            }
        }
    })
}

/// A frame header claiming 2^63 payload bytes is refused from the header.
#[test]
fn a_frame_header_claiming_2_pow_63_bytes_is_refused() {
    let mut frame = vec![0x81, 0x7f];
    frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
    frame.extend_from_slice(b"42[\"output\"");
    let server = raw_after_input(frame, false);
    let yaml = scenario("huge-header", server.port, 1, "");
    let (_m, s) = run_case("2^63-byte frame header", &yaml);
    let refused =
        cause(&s, "disconnected_frame_too_large") + cause(&s, "disconnected_protocol_error");
    assert!(refused >= 1, "{s}");
    assert_eq!(refused, counter(&s, "turns_disconnected"), "{s}");
}

/// Endless fragments of one message (FIN never set) end at the message limit.
#[test]
fn endless_fragments_end_at_the_message_limit() {
    let server = hostile(|tcp| async move {
        let Some(mut ws) = handshake_until_input(tcp).await else {
            return;
        };
        let tcp = ws.get_mut();
        let chunk = vec![b'x'; 60_000];
        let mut first = vec![0x01, 0x7e];
        first.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        first.extend_from_slice(&chunk);
        let mut next = vec![0x00, 0x7e];
        next.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        next.extend_from_slice(&chunk);
        if tcp.write_all(&first).await.is_err() {
            return;
        }
        while tcp.write_all(&next).await.is_ok() {}
    });
    let yaml = scenario("fragments", server.port, 1, "");
    let (_m, s) = run_case("endless fragments", &yaml);
    assert!(cause(&s, "disconnected_frame_too_large") >= 1, "{s}");
}

/// The server closes the TCP connection in the middle of a frame.
#[test]
fn close_mid_frame_is_a_transport_close() {
    let mut frame = vec![0x81, 0x7e, 0x03, 0xe8];
    frame.extend_from_slice(b"42[\"output\",{\"type\"");
    let server = raw_after_input(frame, true);
    let yaml = scenario("mid-frame", server.port, 1, "");
    let (_m, s) = run_case("close mid-frame", &yaml);
    let closed =
        cause(&s, "disconnected_transport_closed") + cause(&s, "disconnected_protocol_error");
    assert!(closed >= 1, "{s}");
    assert_eq!(closed, counter(&s, "turns_disconnected"), "{s}");
}

/// Garbage bytes instead of WebSocket frames.
#[test]
fn garbage_bytes_are_a_protocol_error() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x40)
        .collect();
    let server = raw_after_input(garbage, false);
    let yaml = scenario("garbage", server.port, 1, "");
    let (_m, s) = run_case("garbage bytes", &yaml);
    assert!(counter(&s, "turns_disconnected") >= 1, "{s}");
    assert_eq!(counter(&s, "turns_ok"), 0, "{s}");
}

// ------------------------------------------------------------- careless use

fn quick_scenario(w: &Workdir) -> std::path::PathBuf {
    w.file(
        "s.yaml",
        "name: careless\nload: {vus: 1, iterations: 2}\nsteps:\n  - send: {text: hi}\n",
    )
}

/// Issue #15 (4): a second run into the same `--out` is refused (exit 3)
/// instead of mixing two runs; `--overwrite` clears the folder first.
#[test]
fn a_report_folder_belongs_to_one_run() {
    let w = Workdir::new();
    let p = quick_scenario(&w);
    let out_dir = w.path("r");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "run".to_string(),
            p.display().to_string(),
            "--out".to_string(),
            out_dir.display().to_string(),
            "--quiet".to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run_finalping(&refs, QUICK)
    };
    let first = run(args(&[]));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    std::fs::write(out_dir.join("stale.hlog"), "left over").expect("write");
    let second = run(args(&[]));
    assert_eq!(second.status.code(), Some(3), "{}", text(&second));
    assert!(text(&second).contains("--overwrite"), "{}", text(&second));
    let third = run(args(&["--overwrite"]));
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    assert!(!out_dir.join("stale.hlog").exists());
    assert!(!out_dir.join(".finalping-run").exists());
    assert!(out_dir.join("summary.json").is_file());
}

/// Issue #15 (8): with the disk full (here: a 16 KiB file-size limit, so the
/// files written while the run goes fit but report.html, ~30 KiB, fails with
/// EFBIG) the verdict and the final table still reach the console, and the
/// exit code (4) and message say the reports were not written.
#[test]
fn a_full_disk_still_prints_the_verdict() {
    use std::os::unix::process::CommandExt;
    let w = Workdir::new();
    let p = quick_scenario(&w);
    let out_dir = w.path("r");
    let mut cmd = quiet_run(&p, &out_dir);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            set_limit(libc::RLIMIT_FSIZE, 16 * 1024);
            Ok(())
        });
    }
    let out = wait_with_limit(cmd.spawn().expect("spawn"), QUICK);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("turns: sent 2"), "final table missing: {t}");
    assert!(t.contains("passed"), "verdict missing: {t}");
    assert!(t.contains("could not be written"), "{t}");
}

/// Issue #15 (5): under a 256 open-files limit, 64 VUs with context updates
/// against the embedded emulator need a chat and a runtime connection each,
/// both ends in this process: the check counts them and refuses the run
/// (exit 3) instead of letting it hit EMFILE and pass.
#[test]
fn the_open_files_check_counts_runtime_connections() {
    use std::os::unix::process::CommandExt;
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: fds\nload: {vus: 64, iterations: 1}\nsteps:\n  - send: {text: hi}\n  - update_context: {scope: session, vars: {a: 1}}\n",
    );
    let mut cmd = quiet_run(&p, &w.path("r"));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            set_limit(libc::RLIMIT_NOFILE, 256);
            Ok(())
        });
    }
    let out = wait_with_limit(cmd.spawn().expect("spawn"), QUICK);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("open files") && t.contains("256"), "{t}");
}

/// `finalping run <scenario> --out <out> --quiet` (with `--self-check warn`),
/// its output piped, ready for a `pre_exec` that limits the child.
fn quiet_run(scenario: &std::path::Path, out: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(with_self_check_warn(&[
        "run",
        scenario.to_str().unwrap_or_default(),
        "--out",
        out.to_str().unwrap_or_default(),
        "--quiet",
    ]))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Sets both the soft and the hard `resource` limit to `value`; only
/// `setrlimit`, so it may run between fork and exec.
fn set_limit(resource: libc::__rlimit_resource_t, value: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit with a valid pointer to a local struct.
    unsafe {
        libc::setrlimit(resource, &limit);
    }
}

/// Waits (bounded) for a file to appear: a child run claims its folder with
/// `.finalping-run` after installing its signal handlers.
fn wait_for_file(path: &std::path::Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Issue #15 (6): SIGTERM to `capacity` reaches its child `finalping run`,
/// whose partial report is kept; the capacity report is written, exit 130.
#[test]
fn capacity_forwards_sigterm_and_writes_a_partial_report() {
    let w = Workdir::new();
    let p = w.file(
        "cap.yaml",
        "name: cap\nload: {vus: 1, duration: 1s}\nsteps:\n  - send: {text: hi}\n  - think: 20ms\n",
    );
    let out_dir = w.path("cap");
    let child = Command::new(bin())
        .args([
            "capacity",
            p.to_str().unwrap_or_default(),
            "--slo",
            "final_ping.p99 < 5s",
            "--start",
            "1",
            "--hold",
            "60s",
            "--self-check",
            "warn",
            "--out",
            out_dir.to_str().unwrap_or_default(),
            "--quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn capacity");
    wait_for_file(&out_dir.join("step-1").join(".finalping-run"), QUICK);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_with_limit(child, QUICK);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(130), "{t}");
    let report = read_json(&out_dir.join("capacity.json"));
    assert!(
        report["conclusion"]
            .as_str()
            .unwrap_or_default()
            .starts_with("interrupted"),
        "{report}"
    );
    let step = read_json(&out_dir.join("step-1").join("summary.json"));
    assert_eq!(step["status"], "interrupted", "{step}");
}

/// `--step 0` looped forever and an SLO on an unknown metric concluded
/// "the first step already breaks the SLOs" with exit 0: both are usage errors now.
#[test]
fn capacity_rejects_a_zero_step_and_unknown_slo_metrics() {
    let w = Workdir::new();
    let p = quick_scenario(&w);
    for (flags, words) in [
        (vec!["--step", "0"], "--step"),
        (
            vec!["--slo", "final_pong.p99 < 1s"],
            "unknown metric `final_pong`",
        ),
    ] {
        let mut args = vec!["capacity", p.to_str().unwrap_or_default()];
        if flags[0] != "--slo" {
            args.extend(["--slo", "final_ping.p99 < 1s"]);
        }
        args.extend(flags.iter().copied());
        let out_dir = w.path(&format!("c{}", flags[1].len()));
        args.extend(["--out", out_dir.to_str().unwrap_or_default()]);
        let out = run_finalping(&args, QUICK);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(3), "{flags:?}: {t}");
        assert!(t.contains(words), "{flags:?}: {t}");
    }
}

/// Issue #15 (12): a 2^40-cell matrix is refused before anything is expanded.
#[test]
fn sweep_refuses_a_huge_matrix() {
    let w = Workdir::new();
    let p = quick_scenario(&w);
    let matrix: String = (0..40).map(|i| format!("k{i}: [a, b]\n")).collect();
    let m = w.file("m.yaml", &matrix);
    let out = run_finalping(
        &[
            "sweep",
            p.to_str().unwrap_or_default(),
            "--matrix",
            m.to_str().unwrap_or_default(),
            "--out",
            w.path("sw").to_str().unwrap_or_default(),
        ],
        QUICK,
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("--max-cells"), "{t}");
}

/// SIGTERM to `sweep`: the child run is interrupted, the sweep stops and exits 130.
#[test]
fn sweep_forwards_sigterm() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: sw\nload: {vus: 1, duration: 60s}\nsteps:\n  - send: {text: hi}\n  - think: 20ms\n",
    );
    let m = w.file("m.yaml", "target.eio: [3, 4]\n");
    let out_dir = w.path("sw");
    let child = Command::new(bin())
        .args([
            "sweep",
            p.to_str().unwrap_or_default(),
            "--matrix",
            m.to_str().unwrap_or_default(),
            "--out",
            out_dir.to_str().unwrap_or_default(),
            "--quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sweep");
    let first = out_dir.join("cell-1").join("round-1");
    wait_for_file(&first.join(".finalping-run"), QUICK);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_with_limit(child, QUICK);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(130), "{t}");
    let run = read_json(&first.join("summary.json"));
    assert_eq!(run["status"], "interrupted", "{run}");
    assert!(
        !out_dir.join("cell-2").exists(),
        "no cell started after the signal"
    );
}

/// SIGHUP (a closed terminal) stops a run like SIGTERM: partial reports, exit 130.
#[test]
fn sighup_stops_a_run_with_partial_reports() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: hup\nload: {vus: 1, duration: 60s}\nsteps:\n  - send: {text: hi}\n  - think: 20ms\n",
    );
    let out_dir = w.path("r");
    let child = Command::new(bin())
        .args(with_self_check_warn(&[
            "run",
            p.to_str().unwrap_or_default(),
            "--out",
            out_dir.to_str().unwrap_or_default(),
            "--quiet",
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    wait_for_file(&out_dir.join(".finalping-run"), QUICK);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let out = wait_with_limit(child, QUICK);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert_eq!(
        read_json(&out_dir.join("summary.json"))["status"],
        "interrupted"
    );
}

/// Issue #15 (9): `--set` with a 20,000-part path overflowed the stack (exit 134).
#[test]
fn a_deep_set_path_is_a_usage_error() {
    let w = Workdir::new();
    let p = quick_scenario(&w);
    let deep = format!("{}=1", vec!["a"; 20_000].join("."));
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap_or_default(),
            "--set",
            &deep,
            "--quiet",
        ],
        QUICK,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("nested deeper"), "{}", text(&out));
}

/// Issue #15 (10): `validate /dev/zero` grew without bound.
#[test]
fn an_endless_scenario_file_is_refused() {
    let m = run_measured(&["validate", "/dev/zero"], QUICK);
    assert_eq!(m.code, 3, "{}", m.stderr);
    assert!(m.stderr.contains("larger than"), "{}", m.stderr);
    assert!(
        m.peak_rss_kib < 100 * 1024,
        "peak RSS {} KiB",
        m.peak_rss_kib
    );
}

/// Issue #15 (11): out-of-range emulator settings passed `validate` and made
/// `run` exit 4 with no position; `serve` called a bad setting a listen failure.
#[test]
fn emulator_settings_are_validated_with_their_position() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: e\nload: {vus: 1, iterations: 1}\nsteps:\n  - send: {text: hi}\nemulator:\n  outputs: 4000000000\n",
    );
    let out = run_finalping(&["validate", p.to_str().unwrap_or_default()], QUICK);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("s.yaml:6:") && t.contains("outputs"), "{t}");
    let out = run_finalping(&["serve", "--port", "0", "--ping-interval", "0s"], QUICK);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains("emulator configuration") && !t.contains("cannot listen"),
        "{t}"
    );
}

/// Issue #15 (13): names are escaped in summary.md; control and bidi
/// characters are escaped in error snippets.
#[test]
fn user_text_is_escaped_in_reports_and_errors() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: \"<img src=x onerror=alert(1)> | *x*\"\nload: {vus: 1, iterations: 1}\nsteps:\n  - send: {text: hi}\n",
    );
    let out_dir = w.path("r");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap_or_default(),
            "--out",
            out_dir.to_str().unwrap_or_default(),
            "--quiet",
        ],
        QUICK,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let md = std::fs::read_to_string(out_dir.join("summary.md")).expect("summary.md");
    assert!(!md.contains("<img"), "{md}");
    assert!(
        md.contains("&lt;img src=x onerror=alert(1)&gt; \\| \\*x\\*"),
        "{md}"
    );

    let bad = w.file(
        "bad.yaml",
        "name: b\nload: {vus: 1, iterations: 1}\nsteps:\n  - send: {text: hi}\nsurprise\u{202e}\u{1b}[2J: 1\n",
    );
    let out = run_finalping(&["validate", bad.to_str().unwrap_or_default()], QUICK);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(!t.contains('\u{202e}') && !t.contains('\u{1b}'), "{t:?}");
    assert!(t.contains("\\u{202e}"), "{t}");
}

/// Issue #15 (13): a report folder with an unknown `schema_version` is refused.
/// Issue #15 (7): a crafted `.hlog` header (payload length 2 GiB, or highest
/// value 2^62 at 5 digits) is refused without allocating for it.
#[test]
fn crafted_report_folders_are_refused_without_big_allocations() {
    let w = Workdir::new();
    let p = quick_scenario(&w);
    let base = w.path("base");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap_or_default(),
            "--out",
            base.to_str().unwrap_or_default(),
            "--quiet",
        ],
        QUICK,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let copy = |name: &str| {
        let dir = w.path(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for e in std::fs::read_dir(&base).expect("read") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy");
        }
        dir
    };
    // schema_version 99
    let future = copy("future");
    let summary = future.join("summary.json");
    let mut s = read_json(&summary);
    s["schema_version"] = serde_json::json!(99);
    std::fs::write(&summary, s.to_string()).expect("write");
    for args in [
        vec!["report", future.to_str().unwrap_or_default()],
        vec![
            "compare",
            base.to_str().unwrap_or_default(),
            future.to_str().unwrap_or_default(),
        ],
    ] {
        let out = run_finalping(&args, QUICK);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("schema_version 99"), "{}", text(&out));
    }
    // Crafted histogram headers inside final_ping.hlog.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let hlog_line = |raw: Vec<u8>| format!("0.000,1.000,1.000,{}\n", b64.encode(raw));
    let header = |payload: u32, digits: u32, high: u64| {
        let mut raw = vec![0x1c, 0x84, 0x93, 0x13];
        raw.extend_from_slice(&payload.to_be_bytes());
        raw.extend_from_slice(&0u32.to_be_bytes());
        raw.extend_from_slice(&digits.to_be_bytes());
        raw.extend_from_slice(&1u64.to_be_bytes());
        raw.extend_from_slice(&high.to_be_bytes());
        raw.extend_from_slice(&1f64.to_be_bytes());
        raw.extend_from_slice(&[0u8; 16]);
        raw
    };
    for (name, raw) in [
        ("payload-2gib", header(0x8000_0000, 3, 3_600_000_000)),
        ("high-2-62", header(8, 5, 1 << 62)),
    ] {
        let dir = copy(name);
        std::fs::write(dir.join("final_ping.hlog"), hlog_line(raw)).expect("write hlog");
        let m = run_measured(
            &[
                "compare",
                base.to_str().unwrap_or_default(),
                dir.to_str().unwrap_or_default(),
            ],
            QUICK,
        );
        assert_eq!(m.code, 3, "{name}: {}", m.stderr);
        assert!(m.stderr.contains("final_ping.hlog"), "{name}: {}", m.stderr);
        assert!(
            m.peak_rss_kib < 100 * 1024,
            "{name}: peak RSS {} KiB",
            m.peak_rss_kib
        );
    }
}

/// Issue #15 (3), runtime side: a runtime WebSocket that floods pings and
/// never reads stopped the client only at its write timeout after ~216 MB.
/// The write buffer is capped now; the update fails and memory stays flat.
#[test]
fn runtime_ping_flood_without_reading_stays_bounded() {
    let _quiet = exclusive();
    let served = serve(&[]);
    let runtime = hostile(|tcp| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        let payload = vec![9u8; 125];
        while ws.send(Message::Ping(payload.clone().into())).await.is_ok() {}
    });
    let yaml = format!(
        "name: hostile-runtime\ntarget: {{url: \"{url}\"}}\n\
         runtime:\n  url: \"ws://127.0.0.1:{port}/v2/runtime\"\n  reply_timeout: 10s\n  connect_timeout: 2s\n  \
         reconnect: {{max_attempts: 0}}\n  \
         oauth: {{token_url: \"{url}/oauth/token\", client_id: finalping, client_secret: finalping-secret}}\n\
         load: {{vus: 2, iterations: 1, grace: 12s}}\n\
         steps:\n  - update_context: {{scope: session, vars: {{a: 1}}}}\n  - send: {{text: hi}}\n",
        url = served.url,
        port = runtime.port
    );
    let w = Workdir::new();
    let file = w.file("s.yaml", &yaml);
    let out_dir = w.path("r");
    let m = run_measured(
        &[
            "run",
            file.to_str().unwrap_or_default(),
            "--out",
            out_dir.to_str().unwrap_or_default(),
            "--quiet",
        ],
        LIMIT,
    );
    let s = read_json(&out_dir.join("summary.json"));
    let sent = counter(&s, "updates_sent");
    let ended: u64 = [
        "updates_ok",
        "updates_rejected",
        "updates_invalid",
        "updates_timeout",
        "updates_disconnected",
        "updates_interrupted",
    ]
    .iter()
    .map(|c| counter(&s, c))
    .sum();
    println!(
        "| runtime ping flood, never reading | exit {} | peak RSS {:.1} MiB | ended after {:.1} s | updates {} sent, causes {} |",
        m.code,
        m.peak_rss_kib as f64 / 1024.0,
        m.took.as_secs_f64(),
        sent,
        s["errors"]
    );
    assert_eq!(sent, ended, "{s}");
    assert_eq!(counter(&s, "updates_ok"), 0, "{s}");
    assert!(
        m.peak_rss_kib < 120 * 1024,
        "peak RSS {} KiB",
        m.peak_rss_kib
    );
}

/// Issue #15 (5), during a run: descriptors the open-files check cannot see
/// (here 135 inherited ones) run out while VUs connect. The connects that
/// failed with EMFILE are counted as `connect_fd_exhausted` and the run is
/// invalid (exit 2), never passed.
#[test]
fn running_out_of_descriptors_makes_a_run_invalid() {
    use std::os::unix::process::CommandExt;
    let served = serve(&[]);
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        &format!(
            "name: emfile\ntarget: {{url: \"{}\", reconnect: {{max_attempts: 0}}}}\n\
             load: {{vus: 40, iterations: 1}}\nsteps:\n  - send: {{text: hi}}\n",
            served.url
        ),
    );
    let out_dir = w.path("r");
    let mut cmd = quiet_run(&p, &out_dir);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Descriptors 3..138 stay open (on /dev/null) into the run: with
            // stdio that is 138 of the 168 allowed. `dup2` onto fixed numbers,
            // as the lowest free numbers here depend on what the other tests
            // in this process hold (their close-on-exec descriptors are still
            // open until exec).
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if null < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for fd in 3..138 {
                if fd != null && libc::dup2(null, fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if null >= 138 {
                libc::close(null);
            }
            // 40 VUs + 128 headroom: the check passes exactly.
            set_limit(libc::RLIMIT_NOFILE, 168);
            Ok(())
        });
    }
    let out = wait_with_limit(cmd.spawn().expect("spawn"), QUICK);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    let s = read_json(&out_dir.join("summary.json"));
    println!(
        "connects ok {}, fd_exhausted {}",
        counter(&s, "connects_ok"),
        cause(&s, "connect_fd_exhausted")
    );
    assert!(cause(&s, "connect_fd_exhausted") >= 1, "{s}");
    assert!(
        s["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("file descriptors"),
        "{s}"
    );
}

/// Issue #15 (1), REST: a reply with more outputs than `max_turn_outputs`
/// ends the turn as `turn_outputs_overflow`; every output is still counted.
#[test]
fn a_rest_reply_with_too_many_outputs_overflows() {
    let stack: Vec<String> = (0..5000).map(|i| format!(r#"{{"text":"o{i}"}}"#)).collect();
    let body = std::sync::Arc::new(format!(r#"{{"outputStack":[{}]}}"#, stack.join(",")));
    let server = hostile(move |mut tcp| {
        let body = body.clone();
        async move {
            use tokio::io::AsyncReadExt;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                // One request: headers, then Content-Length bytes of body.
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..end + 4 + len);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if tcp.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    });
    let yaml = format!(
        "name: hostile-rest\ntarget:\n  kind: rest\n  url: \"http://127.0.0.1:{}\"\n  url_token: rest-token\n  \
         max_turn_outputs: 1000\nload: {{vus: 2, iterations: 3}}\nsteps:\n  - send: {{text: hi, timeout: 5s}}\n",
        server.port
    );
    let (m, s) = run_case("REST reply with 5,000 outputs", &yaml);
    assert!(matches!(m.code, 1 | 2), "{}", m.stderr);
    assert_eq!(cause(&s, "turn_outputs_overflow"), 6, "{s}");
    assert_eq!(counter(&s, "outputs"), 6 * 5000, "{s}");
}
