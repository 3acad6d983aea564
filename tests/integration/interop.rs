//! Interop tests against real Node peers (tests/interop/, `npm ci --prefix tests/interop`):
//! the official `@cognigy/socket-client` 4.9.2 (EIO3) and 5.0.0-beta.26 (EIO4) against
//! `finalping serve`, and `finalping run` against a socket.io 4.8 Endpoint look-alike
//! (`node-server.js`). The Node peers are also checked against each other, so a broken
//! harness shows up on its own. Every wait is bounded; children die with their guard.

#[path = "../interop/npm.rs"]
mod npm;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a freshly spawned server may take to print its first line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Overall bound the official-client script enforces on itself (INTEROP_TIMEOUT_MS).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Shorter bound for runs that are expected to fail.
const FAILING_CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a whole `finalping run`.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// Slack on top of a child's own timeout before we kill it.
const SLACK: Duration = Duration::from_secs(10);
/// Keep at most this much of a child's stderr for failure messages.
const STDERR_KEEP: usize = 16 * 1024;

/// Ids that only survive the official double encoding + double decoding intact: the
/// wire carries `100%2525`, `%252B`, `%2540`; one decode too many fails on the '%'.
const TRICKY_IDS: &[(&str, &str)] = &[
    ("INTEROP_USER_ID", "vu1+load@example.com"),
    ("INTEROP_SESSION_ID", "session 1/it 0 100%"),
];

const SERVE_PREFIX: &str = "finalping serve: listening on ";
const NODE_SERVER_PREFIX: &str = "listening on ";

// ---------------------------------------------------------------------------
// Child process guard
// ---------------------------------------------------------------------------

enum OutEvent {
    Line(String),
    Eof,
}

/// A spawned child with piped stdio. Stdout lines arrive on a channel, stderr is
/// collected (tail only) for diagnostics. Dropping the guard kills and reaps the child.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<OutEvent>,
    stdout_done: bool,
    stderr: Arc<Mutex<String>>,
    stderr_done: Receiver<()>,
}

/// What a finished child left behind.
struct Finished {
    status: ExitStatus,
    stdout: Vec<String>,
    stderr: String,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");

        let (line_tx, line_rx) = channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(out);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let trimmed = line.trim_end_matches(['\r', '\n']).to_string();
                        if line_tx.send(OutEvent::Line(trimmed)).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = line_tx.send(OutEvent::Eof);
        });

        let stderr = Arc::new(Mutex::new(String::new()));
        let (err_tx, err_rx) = channel();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut reader = err;
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut s) = sink.lock() {
                            s.push_str(&String::from_utf8_lossy(&buf[..n]));
                            if s.len() > STDERR_KEEP {
                                let mut cut = s.len() - STDERR_KEEP;
                                while !s.is_char_boundary(cut) {
                                    cut += 1;
                                }
                                s.drain(..cut);
                            }
                        }
                    }
                }
            }
            let _ = err_tx.send(());
        });

        Proc {
            name: name.to_string(),
            child,
            stdin,
            stdout: line_rx,
            stdout_done: false,
            stderr,
            stderr_done: err_rx,
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The next stdout line, or an error naming the child and showing its stderr.
    fn next_line(&mut self, timeout: Duration) -> Result<String, String> {
        if self.stdout_done {
            return Err(format!("{}: stdout already closed", self.name));
        }
        match self.stdout.recv_timeout(timeout) {
            Ok(OutEvent::Line(line)) => Ok(line),
            Ok(OutEvent::Eof) | Err(RecvTimeoutError::Disconnected) => {
                self.stdout_done = true;
                Err(format!(
                    "{}: stdout closed before the expected line; stderr:\n{}",
                    self.name,
                    self.stderr_text()
                ))
            }
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "{}: no stdout line within {timeout:?}; stderr:\n{}",
                self.name,
                self.stderr_text()
            )),
        }
    }

    /// Reads the first stdout line, expects `prefix` + `http://127.0.0.1:<port>`, returns the URL.
    fn wait_listening(&mut self, prefix: &str) -> String {
        let line = self
            .next_line(STARTUP_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
        let url = line.strip_prefix(prefix).unwrap_or_else(|| {
            panic!(
                "{}: first stdout line should start with {prefix:?}, got {line:?}",
                self.name
            )
        });
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("{}: expected a loopback http URL, got {url:?}", self.name));
        assert!(
            port.parse::<u16>().is_ok_and(|p| p != 0),
            "{}: bad port in {url:?}",
            self.name
        );
        url.to_string()
    }

    /// Closes the child's stdin (node-server.js exits on that).
    fn close_stdin(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
    }

    /// Waits (bounded) until the child closed stdout and stderr, then reaps it. On
    /// timeout the child is killed and this panics with what it printed.
    fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        let mut timed_out = false;
        while !self.stdout_done {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(OutEvent::Line(line)) => lines.push(line),
                Ok(OutEvent::Eof) | Err(RecvTimeoutError::Disconnected) => self.stdout_done = true,
                Err(RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    break;
                }
            }
        }
        if !timed_out {
            let left = deadline.saturating_duration_since(Instant::now());
            timed_out = matches!(
                self.stderr_done.recv_timeout(left),
                Err(RecvTimeoutError::Timeout)
            );
        }
        if timed_out {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "{}: did not finish within {timeout:?} (killed); stdout so far: {lines:?}; stderr:\n{}",
                self.name,
                self.stderr_text()
            );
        }
        // Both pipes are at EOF: the child has exited (or is exiting).
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("{}: wait failed: {e}", self.name));
        Finished {
            status,
            stdout: lines,
            stderr: self.stderr_text(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Already reaped after finish(): kill is then a harmless no-op.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
}

/// Installs the pinned Node packages from the committed lock (`npm ci`) once per
/// test process when they are missing, so `cargo test` works on a fresh machine;
/// fails with the fix when that is impossible (no Node.js/npm).
fn require_node_modules() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let dir = interop_dir();
    let packages = ["cognigy-client-4", "cognigy-client-5", "socket.io"];
    let installed = INSTALLED.get_or_init(|| npm::npm_ci_if_missing(&dir, &packages));
    if let Err(e) = installed {
        panic!("{e}; or run `npm ci --prefix tests/interop` by hand");
    }
    dir
}

fn node_command(script: &str) -> Command {
    let dir = require_node_modules();
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script)).current_dir(&dir);
    cmd
}

fn finalping_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_finalping"))
}

/// `finalping serve --port 0 <extra>`; returns the guard and its base URL.
fn start_finalping_serve(extra: &[&str]) -> (Proc, String) {
    let mut cmd = finalping_command();
    cmd.args(["serve", "--port", "0"]).args(extra);
    let mut proc = Proc::spawn(&format!("finalping serve {extra:?}"), cmd);
    let url = proc.wait_listening(SERVE_PREFIX);
    (proc, url)
}

/// `node node-server.js <extra>`; returns the guard and its base URL.
fn start_node_server(extra: &[&str]) -> (Proc, String) {
    let mut cmd = node_command("node-server.js");
    cmd.args(extra);
    let mut proc = Proc::spawn(&format!("node-server.js {extra:?}"), cmd);
    let url = proc.wait_listening(NODE_SERVER_PREFIX);
    (proc, url)
}

/// Closes node-server's stdin and returns the `stats` object of its last line.
fn stop_node_server(mut server: Proc) -> Value {
    server.close_stdin();
    let done = server.finish(SLACK);
    let stats = done
        .stdout
        .iter()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok()?.get("stats").cloned());
    stats.unwrap_or_else(|| {
        panic!(
            "node-server printed no stats line; stdout {:?}; stderr:\n{}",
            done.stdout, done.stderr
        )
    })
}

/// Result of one official-client.js run.
struct ClientRun {
    status: ExitStatus,
    result: Value,
    stderr: String,
}

impl ClientRun {
    fn describe(&self) -> String {
        format!(
            "exit {:?}, result {}, stderr:\n{}",
            self.status.code(),
            self.result,
            self.stderr
        )
    }

    fn num(&self, key: &str) -> u64 {
        self.result
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("official client result lacks {key}: {}", self.describe()))
    }

    /// Asserts success with exactly `turns` turns and finalPings and `outputs_per_turn` each.
    fn assert_ok(&self, turns: u64, outputs_per_turn: u64) {
        assert!(
            self.status.success() && self.result.get("ok") == Some(&Value::Bool(true)),
            "official client failed: {}",
            self.describe()
        );
        assert_eq!(self.num("turns"), turns, "{}", self.describe());
        assert_eq!(self.num("finalPings"), turns, "{}", self.describe());
        assert_eq!(
            self.num("outputs"),
            turns * outputs_per_turn,
            "{}",
            self.describe()
        );
    }

    fn assert_failed(&self) {
        assert!(
            !self.status.success() && self.result.get("ok") == Some(&Value::Bool(false)),
            "official client should have failed: {}",
            self.describe()
        );
        assert!(
            self.result.get("error").and_then(Value::as_str).is_some(),
            "a failure must carry an error: {}",
            self.describe()
        );
    }
}

/// Runs `node official-client.js <major> <url> <token> <turns>` to completion (bounded).
fn run_official_client(
    major: u8,
    url: &str,
    turns: u32,
    own_timeout: Duration,
    env: &[(&str, &str)],
) -> ClientRun {
    let mut cmd = node_command("official-client.js");
    cmd.arg(major.to_string())
        .arg(url)
        .arg("node-token")
        .arg(turns.to_string())
        .env("INTEROP_TIMEOUT_MS", own_timeout.as_millis().to_string());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut proc = Proc::spawn(&format!("official-client.js {major}"), cmd);
    proc.close_stdin();
    let done = proc.finish(own_timeout + SLACK);
    let json_lines: Vec<&String> = done.stdout.iter().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        json_lines.len(),
        1,
        "official-client.js must print exactly one stdout line, got {:?}; stderr:\n{}",
        done.stdout,
        done.stderr
    );
    let result = serde_json::from_str(json_lines[0]).unwrap_or_else(|e| {
        panic!(
            "official-client.js printed non-JSON {:?}: {e}; stderr:\n{}",
            json_lines[0], done.stderr
        )
    });
    ClientRun {
        status: done.status,
        result,
        stderr: done.stderr,
    }
}

// ---------------------------------------------------------------------------
// finalping run
// ---------------------------------------------------------------------------

/// Everything a `finalping run` left behind.
struct RunOutcome {
    summary: Value,
    finished: Finished,
}

impl RunOutcome {
    fn describe(&self) -> String {
        format!(
            "exit {:?}; stdout {:?}; stderr:\n{}\nsummary: {}",
            self.finished.status.code(),
            self.finished.stdout,
            self.finished.stderr,
            self.summary
        )
    }

    fn counter(&self, name: &str) -> u64 {
        self.summary
            .pointer(&format!("/counters/{name}"))
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("summary.json lacks counters.{name}: {}", self.describe()))
    }

    fn metric_count(&self, metric: &str) -> u64 {
        self.summary
            .pointer(&format!("/metrics/{metric}/count"))
            .and_then(Value::as_u64)
            .unwrap_or_else(|| {
                panic!(
                    "summary.json lacks metrics.{metric}.count: {}",
                    self.describe()
                )
            })
    }

    /// Exit 0, status passed, every turn ok, nothing else.
    fn assert_all_ok(&self, turns: u64) {
        assert!(
            self.finished.status.success(),
            "finalping run failed: {}",
            self.describe()
        );
        assert_eq!(
            self.summary.get("schema_version").and_then(Value::as_u64),
            Some(1),
            "{}",
            self.describe()
        );
        assert_eq!(
            self.summary.get("status").and_then(Value::as_str),
            Some("passed"),
            "{}",
            self.describe()
        );
        assert_eq!(self.counter("turns_sent"), turns, "{}", self.describe());
        assert_eq!(self.counter("turns_ok"), turns, "{}", self.describe());
        for bad in [
            "turns_error",
            "turns_timeout",
            "turns_disconnected",
            "turns_interrupted",
            "connect_errors",
        ] {
            assert_eq!(self.counter(bad), 0, "{bad}: {}", self.describe());
        }
        assert_eq!(
            self.metric_count("final_ping"),
            turns,
            "{}",
            self.describe()
        );
    }
}

fn scenario_yaml(eio: u8, vus: u32, iterations: u32) -> String {
    // '%', '+', '@', ' ' and '/' in the ids: only the official double encoding survives the
    // server's double decoding intact (node-server.js compares the query with processInput).
    format!(
        r#"name: interop
target:
  url_token: "node-token"
  eio: {eio}
  user_id: "vu{{{{vu}}}}+load@example.com"
  session_id: "session {{{{vu}}}}/it {{{{iteration}}}} 100%"
load: {{ vus: {vus}, iterations: {iterations} }}
steps:
  - connect
  - send: {{ text: "hello {{{{vu}}}}", timeout: 10s, expect: {{ min_outputs: 1 }} }}
  - disconnect
"#
    )
}

/// Writes the scenario to a temp dir and runs `finalping run` against `url` (bounded).
fn finalping_run(scenario: &str, url: &str) -> RunOutcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario_path = dir.path().join("scenario.yaml");
    std::fs::write(&scenario_path, scenario).expect("write scenario");
    let out = dir.path().join("report");
    let mut cmd = finalping_command();
    cmd.arg("run")
        .arg(&scenario_path)
        .arg("--target")
        .arg(url)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        // A shared test machine may saturate; the verdict is tested in tests/self_check.rs.
        .args(["--self-check", "warn"]);
    let mut proc = Proc::spawn("finalping run", cmd);
    proc.close_stdin();
    let finished = proc.finish(RUN_TIMEOUT);
    let summary_path = out.join("summary.json");
    let summary = std::fs::read_to_string(&summary_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| {
            panic!(
                "{} missing or not JSON; exit {:?}; stdout {:?}; stderr:\n{}",
                summary_path.display(),
                finished.status.code(),
                finished.stdout,
                finished.stderr
            )
        });
    RunOutcome { summary, finished }
}

fn stat(stats: &Value, key: &str) -> u64 {
    stats
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("node-server stats lack {key}: {stats}"))
}

/// Runs the scenario with `eio` against node-server.js and checks both ends.
fn check_run_against_node_server(
    eio: u8,
    (vus, iterations): (u32, u32),
    server_args: &[&str],
    outputs_per_turn: u64,
) {
    let turns = u64::from(vus * iterations);
    let (server, url) = start_node_server(server_args);
    let outcome = finalping_run(&scenario_yaml(eio, vus, iterations), &url);
    let stats = stop_node_server(server);

    outcome.assert_all_ok(turns);
    assert_eq!(
        outcome.counter("outputs"),
        turns * outputs_per_turn,
        "{}",
        outcome.describe()
    );
    assert_eq!(
        outcome.counter("connects_ok"),
        turns,
        "{}",
        outcome.describe()
    );
    // One ack per output and one per finalPing, as the official client does.
    let acks = turns * (outputs_per_turn + 1);
    assert_eq!(outcome.counter("acks_sent"), acks, "{}", outcome.describe());

    let ctx = format!("node-server stats {stats}; run: {}", outcome.describe());
    assert_eq!(stat(&stats, "protocolErrors"), 0, "{ctx}");
    assert_eq!(stat(&stats, "processInputs"), turns, "{ctx}");
    assert_eq!(stat(&stats, "connections"), turns, "{ctx}");
    assert_eq!(stat(&stats, &format!("eio{eio}")), turns, "{ctx}");
    assert_eq!(stat(&stats, "acksRequested"), acks, "{ctx}");
    assert_eq!(stat(&stats, "acksReceived"), acks, "{ctx}");
    assert_eq!(stat(&stats, "ackTimeouts"), 0, "{ctx}");
}

// ---------------------------------------------------------------------------
// The Node peers against each other (checks the harness itself)
// ---------------------------------------------------------------------------

#[test]
fn node_peers_official_clients_against_node_server() {
    let (server, url) = start_node_server(&[]);
    for major in [4u8, 5] {
        run_official_client(major, &url, 3, CLIENT_TIMEOUT, &[]).assert_ok(3, 1);
        run_official_client(
            major,
            &url,
            2,
            CLIENT_TIMEOUT,
            &[("INTEROP_INNER_HANDSHAKE", "1")],
        )
        .assert_ok(2, 1);
        run_official_client(major, &url, 1, CLIENT_TIMEOUT, TRICKY_IDS).assert_ok(1, 1);
    }
    let stats = stop_node_server(server);
    assert_eq!(stat(&stats, "connections"), 6, "{stats}");
    assert_eq!(stat(&stats, "eio3"), 3, "{stats}");
    assert_eq!(stat(&stats, "eio4"), 3, "{stats}");
    assert_eq!(stat(&stats, "processInputs"), 12, "{stats}");
    assert_eq!(stat(&stats, "protocolErrors"), 0, "{stats}");
    assert_eq!(stat(&stats, "acksRequested"), 24, "{stats}");
    assert_eq!(stat(&stats, "acksReceived"), 24, "{stats}");
}

#[test]
fn node_peers_official_client_counts_several_outputs() {
    let (server, url) = start_node_server(&["--outputs", "3", "--delay-ms", "5"]);
    run_official_client(5, &url, 2, CLIENT_TIMEOUT, &[]).assert_ok(2, 3);
    let stats = stop_node_server(server);
    assert_eq!(stat(&stats, "outputs"), 6, "{stats}");
}

#[test]
fn official_client_fails_fast_when_nothing_listens() {
    // Reserve a free port, then release it: connecting is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}");
    for major in [4u8, 5] {
        run_official_client(major, &url, 1, FAILING_CLIENT_TIMEOUT, &[]).assert_failed();
    }
}

#[test]
fn official_client_gives_up_on_a_silent_server() {
    // Accepts TCP but never answers the WebSocket upgrade: only the overall bound ends it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    // Its own failure report (not a kill by `finish` after 2 s + SLACK, which
    // fails the test): the client's overall timeout ended it.
    let run = run_official_client(4, &url, 1, Duration::from_secs(2), &[]);
    run.assert_failed();
    drop(listener);
}

// ---------------------------------------------------------------------------
// Official clients against `finalping serve`
// ---------------------------------------------------------------------------

#[test]
fn official_client_4_eio3_against_finalping_serve() {
    let (_serve, url) = start_finalping_serve(&[]);
    run_official_client(4, &url, 3, CLIENT_TIMEOUT, &[]).assert_ok(3, 1);
    run_official_client(4, &url, 2, CLIENT_TIMEOUT, TRICKY_IDS).assert_ok(2, 1);
}

#[test]
fn official_client_5_eio4_against_finalping_serve() {
    let (_serve, url) = start_finalping_serve(&[]);
    run_official_client(5, &url, 3, CLIENT_TIMEOUT, &[]).assert_ok(3, 1);
    run_official_client(5, &url, 2, CLIENT_TIMEOUT, TRICKY_IDS).assert_ok(2, 1);
}

#[test]
fn official_clients_get_every_output_from_finalping_serve() {
    let (_serve, url) = start_finalping_serve(&["--outputs", "3", "--delay", "5ms"]);
    for major in [4u8, 5] {
        let run = run_official_client(major, &url, 2, CLIENT_TIMEOUT, &[]);
        run.assert_ok(2, 3);
        assert_eq!(
            run.result.get("outputsPerTurn"),
            Some(&serde_json::json!([3, 3])),
            "every output must come before its finalPing: {}",
            run.describe()
        );
    }
}

#[test]
fn finalping_serve_eio3_only_serves_client_4_and_refuses_client_5() {
    let (_serve, url) = start_finalping_serve(&["--eio3-only"]);
    run_official_client(4, &url, 2, CLIENT_TIMEOUT, &[]).assert_ok(2, 1);
    run_official_client(5, &url, 1, FAILING_CLIENT_TIMEOUT, &[]).assert_failed();
}

#[test]
fn finalping_serve_eio4_only_serves_client_5_and_refuses_client_4() {
    let (_serve, url) = start_finalping_serve(&["--eio4-only"]);
    run_official_client(5, &url, 2, CLIENT_TIMEOUT, &[]).assert_ok(2, 1);
    run_official_client(4, &url, 1, FAILING_CLIENT_TIMEOUT, &[]).assert_failed();
}

// ---------------------------------------------------------------------------
// `finalping run` against the socket.io 4.8 server
// ---------------------------------------------------------------------------

#[test]
fn finalping_run_eio3_against_node_server() {
    check_run_against_node_server(3, (5, 3), &[], 1);
}

#[test]
fn finalping_run_eio4_against_node_server() {
    check_run_against_node_server(4, (5, 3), &[], 1);
}

/// Turns (2 s) twice as long as pingInterval + pingTimeout (1 s): a client that does not
/// keep the heartbeat (EIO3: client pings; EIO4: client answers pings) is dropped
/// mid-turn. Three outputs per turn.
#[test]
fn finalping_run_keeps_heartbeats_over_slow_turns() {
    let server_args = [
        "--ping-interval-ms",
        "250",
        "--ping-timeout-ms",
        "750",
        "--delay-ms",
        "2000",
        "--outputs",
        "3",
    ];
    for eio in [3u8, 4] {
        check_run_against_node_server(eio, (3, 2), &server_args, 3);
    }
}
