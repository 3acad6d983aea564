//! `finalping deploy kubernetes` end to end, with the real binary:
//! - the rendered manifests validate offline against the Kubernetes 1.31 API
//!   schema in strict mode (unknown fields are errors) with the Python
//!   `kubernetes-validate` package, which this test installs into a venv under
//!   the cargo target dir from the pinned `tests/python/requirements-kubernetes.txt`;
//!   a manifest with one misspelt field must fail (the check is not vacuous);
//! - flags and scenarios that cannot be rendered fail with exit 3 and say why,
//!   and a secret read with `${env:NAME}` never reaches the manifests;
//! - the Indexed Job is played locally: the rendered ConfigMap is written to a
//!   temp folder (the `/scenario` volume), another temp folder is the results
//!   volume, the segment container's command runs N times at once with
//!   `$(JOB_COMPLETION_INDEX)` = 0..N-1 against a `finalping serve` on
//!   127.0.0.1, the merge Job's init container and container run as rendered,
//!   and the merged report must add up.
//!
//! And the target side of scaling out: `finalping serve --workers 2` spreads
//! the connections of a real run over two worker processes on one port, and
//! its counters, summed by the parent at SIGTERM, add up to the run's; and
//! `finalping serve` started with a low soft open-files limit (1,024 is a
//! common default) raises it, so it holds more connections than that limit.

use crate::common;

use common::python::{run, venv_python};
use common::{bin, read_json, run_finalping, run_finalping_env, text, Workdir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const VALIDATE_LIMIT: Duration = Duration::from_secs(120);
/// The Kubernetes version the manifests must be valid for.
const KUBERNETES_VERSION: &str = "1.31.0";

/// A scenario with a feeder in a sub-folder and a URL token from the environment.
fn scenario_with_feeder(w: &Workdir, url: &str) -> PathBuf {
    std::fs::create_dir_all(w.path("data")).unwrap();
    w.file("data/users.csv", "name\nada\ngrace\nlinus\n");
    w.file(
        "load.yaml",
        &format!(
            r#"name: k8s play
target:
  url: {url}
  url_token: ${{env:FP_TEST_URL_TOKEN}}
  user_id: "{{{{users.name}}}}-{{{{vu}}}}"
load: {{ vus: 6, iterations: 2 }}
feeders:
  users: {{ file: data/users.csv, mode: sequential }}
steps:
  - connect
  - send: {{ text: "hello", timeout: 10s, expect: {{ min_outputs: 1 }} }}
  - disconnect
"#
        ),
    )
}

fn render(scenario: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) {
    let mut args = vec![
        "deploy",
        "kubernetes",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run_finalping_env(&args, env, LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// The four rendered files, parsed: (file name, document).
fn manifests(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let yaml = std::fs::read_to_string(&p).unwrap();
            let doc: Value = serde_saphyr::from_str(&yaml)
                .unwrap_or_else(|e| panic!("{}: {e}\n{yaml}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), doc)
        })
        .collect()
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, component: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| {
            d["kind"] == kind && d["metadata"]["labels"]["app.kubernetes.io/component"] == component
        })
        .unwrap_or_else(|| panic!("no {kind} for {component}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// `kubernetes-validate --strict` on `files`; Err carries its output.
fn validate(files: &[PathBuf]) -> Result<String, String> {
    let py = venv_python("tests/python/requirements-kubernetes.txt", "kubernetes")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(py);
    cmd.args([
        "-m",
        "kubernetes_validate",
        "--strict",
        "-k",
        KUBERNETES_VERSION,
    ])
    .args(files);
    run(&mut cmd, "kubernetes-validate", VALIDATE_LIMIT)
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn rendered_manifests_are_valid_kubernetes_1_31_objects() {
    let w = Workdir::new();
    let scenario = scenario_with_feeder(&w, "https://endpoint.example");
    let full = w.path("full");
    render(
        &scenario,
        &full,
        &[
            "--segments",
            "4",
            "--image",
            "ghcr.io/acme/finalping:0.1.0",
            "--run-id",
            "nightly-7",
            "--namespace",
            "load",
            "--secret",
            "endpoint-env",
            "--storage-class",
            "nfs.csi",
            "--storage",
            "2Gi",
            "--cpu",
            "1500m",
            "--memory",
            "768Mi",
            "--barrier-timeout",
            "3m",
            "--deadline",
            "40m",
            "--metrics-port",
            "9100",
        ],
        &[],
    );
    let minimal = w.path("minimal");
    let plain = w.file(
        "plain.yaml",
        "name: plain\nload: { vus: 2, duration: 5s }\nsteps: [connect, { send: { text: hi } }]\n",
    );
    render(
        &plain,
        &minimal,
        &[
            "--segments",
            "1",
            "--image",
            "finalping:dev",
            "--access-mode",
            "read-write-once",
        ],
        &[],
    );
    let mut files = Vec::new();
    for dir in [&full, &minimal] {
        let names: Vec<String> = manifests(dir).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "10-configmap.yaml",
                "20-results-pvc.yaml",
                "30-segments-job.yaml",
                "40-merge-job.yaml"
            ]
        );
        files.extend(names.iter().map(|n| dir.join(n)));
    }
    let out = validate(&files).unwrap_or_else(|e| panic!("{e}"));
    for (kind, name) in [
        ("configmap", "finalping-nightly-7-scenario"),
        ("persistentvolumeclaim", "finalping-nightly-7-results"),
        ("job", "finalping-nightly-7-segments"),
        ("job", "finalping-nightly-7-merge"),
    ] {
        let line = format!("passed for resource {kind}/{name} against version 1.31");
        assert!(out.contains(&line), "{line} missing in\n{out}");
    }
    assert_eq!(out.matches("passed for resource").count(), 8, "{out}");

    // What the schema does not say: the run's shape.
    let docs = manifests(&full);
    let job = find(&docs, "Job", "segment");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        (spec["completions"].as_u64(), spec["parallelism"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(spec["backoffLimitPerIndex"], 0);
    assert_eq!(spec["activeDeadlineSeconds"], 40 * 60);
    let pod = &spec["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "9100");
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "endpoint-env");
    assert_eq!(c["resources"]["requests"]["cpu"], "1500m");
    let args = strings(&c["args"]).join(" ");
    assert!(
        args.contains("--segment $(JOB_COMPLETION_INDEX)/4"),
        "{args}"
    );
    assert!(args.contains("--metrics-listen 0.0.0.0:9100"), "{args}");
    assert!(args.contains("--barrier-timeout 3m"), "{args}");
    let cm = find(&docs, "ConfigMap", "scenario");
    assert!(cm["data"]["load.yaml"]
        .as_str()
        .unwrap()
        .contains("${env:FP_TEST_URL_TOKEN}"));
    assert_eq!(cm["data"]["feeder-users.csv"], "name\nada\ngrace\nlinus\n");
    let items = &pod["spec"]["volumes"][0]["configMap"]["items"];
    assert!(
        items
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["key"] == "feeder-users.csv" && i["path"] == "data/users.csv"),
        "{items}"
    );
    let pvc = find(&docs, "PersistentVolumeClaim", "results");
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");
    assert_eq!(pvc["spec"]["storageClassName"], "nfs.csi");
    let merge = find(&docs, "Job", "merge");
    assert_eq!(merge["spec"]["backoffLimit"], 0);
    let merge_args = strings(&merge["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert_eq!(merge_args.len(), 1 + 4 + 2, "{merge_args:?}");

    // Not vacuous: one misspelt field fails the strict check.
    let yaml = std::fs::read_to_string(full.join("30-segments-job.yaml")).unwrap();
    let bad = w.file(
        "bad.yaml",
        &yaml.replace("completionMode:", "completionMod:"),
    );
    let err = validate(&[bad]).expect_err("a misspelt field must not validate");
    assert!(err.contains("'completionMod' was unexpected"), "{err}");
}

#[test]
fn stdout_is_one_stream_of_the_same_objects() {
    let w = Workdir::new();
    let plain = w.file(
        "plain.yaml",
        "name: plain\nload: { vus: 2, duration: 5s }\nsteps: [connect, { send: { text: hi } }]\n",
    );
    let o = run_finalping(
        &[
            "deploy",
            "kubernetes",
            plain.to_str().unwrap(),
            "--segments",
            "2",
            "--image",
            "i:1",
            "--run-id",
            "s1",
        ],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stream = String::from_utf8(o.stdout.clone()).unwrap();
    let docs: Vec<&str> = stream
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            serde_saphyr::from_str::<Value>(d).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["ConfigMap", "PersistentVolumeClaim", "Job", "Job"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("no target.url"), "{stderr}");
    assert!(
        stderr.contains("kubectl logs job/finalping-s1-merge"),
        "{stderr}"
    );
}

#[test]
fn bad_input_is_a_usage_error_and_secrets_stay_out() {
    let w = Workdir::new();
    let scenario = scenario_with_feeder(&w, "https://endpoint.example");
    let s = scenario.to_str().unwrap();
    let base = ["deploy", "kubernetes", s, "--image", "i:1"];
    let cases: &[(&[&str], &str)] = &[
        (&["--segments", "2"], "pass --secret NAME"),
        (
            &["--segments", "2", "--secret", "env", "--run-id", "Bad_Id"],
            "--run-id `Bad_Id` is not a Kubernetes name",
        ),
        (
            &["--segments", "2", "--secret", "env", "--memory", "1GB"],
            "--memory `1GB` is not a Kubernetes quantity",
        ),
        (
            &["--segments", "2", "--secret", "Env"],
            "--secret `Env` is not a Kubernetes name",
        ),
        (
            &["--segments", "2", "--secret", "env", "--deadline", "1m"],
            "must be longer than --barrier-timeout",
        ),
        // 6 VUs cannot feed 7 segments: refused here, not in the pods.
        (
            &["--segments", "7", "--secret", "env"],
            "use at most 6 segments",
        ),
    ];
    for (extra, want) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let o = run_finalping(&args, LIMIT);
        assert_eq!(o.status.code(), Some(3), "{extra:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{extra:?}: want `{want}` in {err}");
    }
    let zero = run_finalping(
        &["deploy", "kubernetes", s, "--segments", "0", "--image", "i"],
        LIMIT,
    );
    assert_eq!(zero.status.code(), Some(3), "{}", text(&zero));

    // A feeder outside the scenario's folder cannot ship in the ConfigMap.
    std::fs::create_dir_all(w.path("sub")).unwrap();
    w.file("u.csv", "a\n1\n");
    let outside = w.file(
        "sub/outside.yaml",
        "name: o\nload: { vus: 1, iterations: 1 }\nfeeders:\n  u: { file: ../u.csv }\nsteps: [connect, { send: { text: \"{{u.a}}\" } }]\n",
    );
    let o = run_finalping(
        &[
            "deploy",
            "kubernetes",
            outside.to_str().unwrap(),
            "--segments",
            "1",
            "--image",
            "i",
        ],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("must be a path below the scenario's folder"),
        "{}",
        text(&o)
    );

    // A token written in clear is rendered as written, with a warning.
    let clear = w.file(
        "clear.yaml",
        "name: c\ntarget: { url: \"https://endpoint.example\", url_token: abc123 }\n\
         load: { vus: 2, iterations: 1 }\nsteps: [connect, { send: { text: hi } }]\n",
    );
    let o = run_finalping(
        &[
            "deploy",
            "kubernetes",
            clear.to_str().unwrap(),
            "--segments",
            "2",
            "--image",
            "i",
        ],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds target.url_token in clear"),
        "{}",
        text(&o)
    );

    // The secret's value, set where the manifests are rendered, is not in them.
    let out = w.path("m");
    render(
        &scenario,
        &out,
        &["--segments", "2", "--image", "i:1", "--secret", "env"],
        &[("FP_TEST_URL_TOKEN", "s3cr3t-t0ken")],
    );
    for (name, doc) in manifests(&out) {
        assert!(
            !doc.to_string().contains("s3cr3t-t0ken"),
            "{name} leaks the secret"
        );
    }
}

#[test]
fn wait_script_counts_only_final_summaries() {
    let w = Workdir::new();
    let plain = w.file(
        "plain.yaml",
        "name: plain\nload: { vus: 3, duration: 5s }\nsteps: [connect, { send: { text: hi } }]\n",
    );
    let out = w.path("m");
    render(&plain, &out, &["--segments", "3", "--image", "i:1"], &[]);
    let docs = manifests(&out);
    let script = find(&docs, "ConfigMap", "scenario")["data"]["wait-for-segments.sh"]
        .as_str()
        .unwrap()
        .to_string();
    let script = w.file("wait.sh", &script);
    let run_dir = w.path("run");
    let summary = |i: u32, status: &str| {
        let dir = run_dir.join(format!("segment-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("summary.json"),
            format!("{{\n  \"status\": \"{status}\"\n}}\n"),
        )
        .unwrap();
    };
    summary(0, "passed");
    summary(1, "incomplete");
    // Limit 0: one look, then give up (exit 0: the merge names what is missing).
    let look = |limit: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg(&script).arg(&run_dir).args(["3", limit, "1"]);
        let o = run(&mut cmd, "wait-for-segments.sh", LIMIT).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = look("0");
    assert!(
        out.contains("have not finished their reports: 1 2;"),
        "{out}"
    );
    summary(1, "failed");
    summary(2, "invalid");
    assert!(look("60").contains("all 3 segments have written their reports"));
}

/// Replaces the pod's paths with the local volumes and the completion index.
fn localize(arg: &str, index: Option<u32>, scenario_dir: &Path, results_dir: &Path) -> String {
    let mut a = arg.to_string();
    if let Some(i) = index {
        a = a.replace("$(JOB_COMPLETION_INDEX)", &i.to_string());
    }
    if a == "0.0.0.0:9464" {
        // N processes on one host: each its own loopback port.
        return "127.0.0.1:0".to_string();
    }
    for (pod, local) in [("/scenario", scenario_dir), ("/results", results_dir)] {
        if let Some(rest) = a.strip_prefix(pod) {
            if rest.is_empty() || rest.starts_with('/') {
                return format!("{}{rest}", local.display());
            }
        }
    }
    a
}

fn local_command(
    container: &Value,
    index: Option<u32>,
    scenario_dir: &Path,
    results_dir: &Path,
) -> Command {
    let mut argv = strings(&container["command"]);
    if let Some(args) = container.get("args") {
        argv.extend(strings(args));
    }
    let argv: Vec<String> = argv
        .iter()
        .map(|a| localize(a, index, scenario_dir, results_dir))
        .collect();
    let program = if argv[0] == "finalping" {
        bin().to_string()
    } else {
        argv[0].clone()
    };
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..]);
    // The segments and the merge judge saturation; on this oversubscribed
    // machine both only report it (see `common::SELF_CHECK_WARN`).
    if matches!(argv.get(1).map(String::as_str), Some("run" | "merge")) {
        cmd.args(common::SELF_CHECK_WARN);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Kills a child the test did not wait for (a failed assertion) on drop.
struct Running(Option<std::process::Child>);

impl Running {
    fn take(&mut self) -> std::process::Child {
        self.0.take().expect("waited once")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn indexed_job_played_locally_merges_to_one_passing_report() {
    const N: u32 = 3;
    let served = common::serve(&["--delay", "1ms", "--outputs", "1"]);
    let w = Workdir::new();
    let scenario = scenario_with_feeder(&w, &served.url);
    let rendered = w.path("manifests");
    render(
        &scenario,
        &rendered,
        &[
            "--segments",
            &N.to_string(),
            "--image",
            "finalping:test",
            "--run-id",
            "play-1",
            "--secret",
            "play-env",
            "--barrier-timeout",
            "1m",
            "--deadline",
            "2m",
        ],
        &[],
    );
    let docs = manifests(&rendered);
    // The ConfigMap volume: every item at its path.
    let scenario_dir = w.path("volume-scenario");
    let results_dir = w.path("volume-results");
    std::fs::create_dir_all(&results_dir).unwrap();
    let cm = find(&docs, "ConfigMap", "scenario");
    let segments = find(&docs, "Job", "segment");
    let pod = &segments["spec"]["template"]["spec"];
    for item in pod["volumes"][0]["configMap"]["items"].as_array().unwrap() {
        let path = scenario_dir.join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            cm["data"][item["key"].as_str().unwrap()].as_str().unwrap(),
        )
        .unwrap();
    }
    let secret_env = [("FP_TEST_URL_TOKEN", "play-token")];

    // The merge Job's init container starts with the segments, as on a cluster.
    let merge = find(&docs, "Job", "merge");
    let merge_pod = &merge["spec"]["template"]["spec"];
    let mut wait = local_command(
        &merge_pod["initContainers"][0],
        None,
        &scenario_dir,
        &results_dir,
    );
    let mut waiter = Running(Some(wait.spawn().expect("start the wait script")));
    let container = &pod["containers"][0];
    let mut children: Vec<Running> = (0..N)
        .map(|i| {
            let child = local_command(container, Some(i), &scenario_dir, &results_dir)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .envs(secret_env)
                .spawn()
                .expect("start a segment");
            Running(Some(child))
        })
        .collect();
    let mut turns = 0;
    for (i, child) in children.iter_mut().enumerate() {
        let o = common::wait_with_limit(child.take(), LIMIT);
        assert_eq!(o.status.code(), Some(0), "segment {i}: {}", text(&o));
        let s = read_json(&results_dir.join(format!("play-1/segment-{i}/summary.json")));
        turns += common::counter(&s, "turns_ok");
    }
    assert_eq!(turns, 12, "6 VUs × 2 iterations over {N} segments");
    let o = common::wait_with_limit(waiter.take(), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("all 3 segments have written their reports"),
        "{}",
        text(&o)
    );

    let merged = local_command(
        &merge_pod["containers"][0],
        None,
        &scenario_dir,
        &results_dir,
    )
    .spawn()
    .expect("start the merge");
    let o = common::wait_with_limit(merged, LIMIT);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the merge Job's verdict: {}",
        text(&o)
    );
    let s = read_json(&results_dir.join("play-1/merged/summary.json"));
    assert_eq!(common::counter(&s, "turns_ok"), 12);
    assert_eq!(
        s["metrics"]["final_ping"]["count"], 12,
        "{}",
        s["metrics"]["final_ping"]
    );
}

/// `finalping serve --port 0 <extra>` with every stdout line sent to a channel.
fn serve_lines(extra: &[&str]) -> (Running, u32, std::sync::mpsc::Receiver<String>) {
    serve_lines_limited(extra, None)
}

/// `serve_lines`, started with the soft open-files limit lowered to `soft`.
fn serve_lines_limited(
    extra: &[&str],
    soft: Option<u64>,
) -> (Running, u32, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--port", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(soft) = soft {
        let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard));
        }
    }
    let mut child = cmd.spawn().expect("spawn finalping serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let pid = child.id();
    (Running(Some(child)), pid, rx)
}

/// The next line containing `needle`, within `LIMIT`.
fn line_with(
    rx: &std::sync::mpsc::Receiver<String>,
    needle: &str,
    seen: &mut Vec<String>,
) -> String {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(e) => panic!(
                "no line with `{needle}` ({e:?}); output so far:\n{}",
                seen.join("\n")
            ),
        }
    }
}

#[test]
fn serve_workers_share_one_port_and_sum_their_counters() {
    let (mut parent, parent_pid, rx) =
        serve_lines(&["--workers", "2", "--delay", "1ms", "--outputs", "1"]);
    let mut seen = Vec::new();
    let first = line_with(&rx, "listening on", &mut seen);
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let banner = line_with(&rx, "worker processes share the port", &mut seen);
    let pids: Vec<u32> = banner
        .split("pids ")
        .nth(1)
        .unwrap()
        .split(", ")
        .map(|p| p.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{banner}");
    assert!(
        !pids.contains(&parent_pid) && pids[0] != pids[1],
        "{banner}"
    );

    // A second server on the port is refused, not silently let into the group.
    let port = url.rsplit(':').next().unwrap();
    for extra in [&["--workers", "2"][..], &[]] {
        let o = run_finalping(&[&["serve", "--port", port][..], extra].concat(), LIMIT);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(text(&o).contains("Address already in use"), "{}", text(&o));
    }

    let w = Workdir::new();
    let scenario = w.file(
        "s.yaml",
        &format!(
            "name: workers\ntarget: {{ url: {url} }}\nload: {{ vus: 40, iterations: 1 }}\n\
             steps: [connect, {{ send: {{ text: hi, timeout: 10s, expect: {{ min_outputs: 1 }} }} }}, disconnect]\n"
        ),
    );
    let out = w.path("r");
    let o = run_finalping(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        common::counter(&read_json(&out.join("summary.json")), "turns_ok"),
        40
    );

    // SIGTERM to the parent only: it stops the workers and prints their counters.
    // SAFETY: kill(2) of the child this test started.
    unsafe { libc::kill(parent_pid as i32, libc::SIGTERM) };
    let mut per_worker = Vec::new();
    for k in 0..2 {
        let line = line_with(&rx, &format!("worker {k} (pid "), &mut seen);
        let pid: u32 = line
            .split("(pid ")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let sessions: u64 = line
            .split("): ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(pids.contains(&pid), "{line}");
        per_worker.push(sessions);
    }
    let total = line_with(&rx, "total:", &mut seen);
    assert!(
        per_worker.iter().all(|&s| s > 0),
        "connections spread over both workers: {per_worker:?}"
    );
    assert_eq!(per_worker.iter().sum::<u64>(), 40, "{}", seen.join("\n"));
    assert!(total.contains("total: 40 sessions, 40 turns"), "{total}");
    let o = common::wait_with_limit(parent.take(), LIMIT);
    assert_eq!(o.status.code(), Some(0));
    for pid in pids {
        // The workers are gone: kill(pid, 0) fails once they have exited and been reaped.
        let alive = unsafe { libc::kill(pid as i32, 0) } == 0;
        assert!(!alive, "worker {pid} outlived the parent");
    }
}

#[test]
fn serve_raises_a_low_soft_open_files_limit() {
    const SOFT: u64 = 64;
    const CONNECTIONS: usize = 150;
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert!(
        hard >= 1024,
        "this test needs a hard open-files limit of at least 1024 (ulimit -Hn is {hard})"
    );
    let (_server, _, rx) = serve_lines_limited(&[], Some(SOFT));
    let mut seen = Vec::new();
    let first = line_with(&rx, "listening on", &mut seen);
    let addr = first.split("http://").nth(1).unwrap().trim().to_string();
    let limit = line_with(&rx, "open files: up to", &mut seen);
    assert!(limit.contains(&format!("up to {hard} ")), "{limit}");

    // More connections than the soft limit it was started with, all open at
    // once: each gets an HTTP answer only if the server could accept it.
    use std::io::{Read, Write};
    let mut streams = Vec::new();
    for i in 0..CONNECTIONS {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head)
            .unwrap_or_else(|e| panic!("connection {i} got no answer: {e}"));
        assert!(head.starts_with(b"HTTP/1.1 "), "{head:?}");
        streams.push(s);
    }
    assert_eq!(streams.len(), CONNECTIONS);
}
