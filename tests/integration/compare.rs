//! `finalping compare` end to end on real runs against the embedded emulator
//! with fixed reply delays, which dominate every other source of latency even
//! on a busy 2-core machine: 50 ms vs another 50 ms run → `same` (exit 0),
//! 50 ms → 60 ms (+20 %) → `worse` (exit 1), 50 ms → 40 ms → `better`. The
//! runs happen concurrently, so they share whatever noise the machine has.
//! Also: repeated baselines widen the band, invalid inputs exit 2, and the
//! JUnit / Markdown / JSON outputs are read by real consumers.

use crate::common;

use common::python::{run, venv_python};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(180);

struct Runs {
    _dir: Workdir,
    base: PathBuf,
    same: PathBuf,
    slower: PathBuf,
    faster: PathBuf,
}

/// Four 3-second runs (10 VUs, back-to-back turns, 200 ms intervals → ~15
/// intervals of ~40 turns each), started together, while no test that loads
/// the machine hard runs: the verdicts rest on the fixed delays dominating
/// every other source of latency, and next to such a test the interval p50s
/// of one run once spread by ±8 % (its band 16.7 points wide instead of ~1).
fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let _quiet = common::exclusive();
        let w = Workdir::new();
        let mut children = Vec::new();
        let mut dirs = Vec::new();
        for (name, delay) in [("base", 50), ("same", 50), ("slower", 60), ("faster", 40)] {
            let p = w.file(
                &format!("{name}.yaml"),
                &format!(
                    "name: cmp\nmetrics: {{interval: 200ms}}\nload: {{vus: 10, duration: 3s}}\nsteps:\n  - send: {{text: hi}}\nemulator: {{delay: {delay}ms, outputs: 1}}\n"
                ),
            );
            let out = w.path(name);
            let child = Command::new(bin())
                .arg("run")
                .arg(&p)
                .arg("--out")
                .arg(&out)
                .args(["--quiet", "--self-check", "warn"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn finalping run");
            children.push(child);
            dirs.push(out);
        }
        for child in children {
            let out = wait_with_limit(child, LIMIT);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        }
        let mut d = dirs.into_iter();
        let mut next = || d.next().expect("four runs");
        Runs {
            base: next(),
            same: next(),
            slower: next(),
            faster: next(),
            _dir: w,
        }
    })
}

fn compare(args: &[&Path], extra: &[&str]) -> (Option<i32>, String) {
    let mut v: Vec<&str> = vec!["compare"];
    v.extend(args.iter().map(|p| p.to_str().unwrap()));
    v.extend(extra);
    let out = run_finalping(&v, LIMIT);
    (out.status.code(), text(&out))
}

fn json_of(dir: &Workdir, args: &[&Path], extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let file = dir.path("c.json");
    let mut e: Vec<&str> = vec!["--json", file.to_str().unwrap()];
    e.extend(extra);
    let (code, out) = compare(args, &e);
    assert!(!out.contains("panicked"), "{out}");
    (code, read_json(&file))
}

fn metric<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == name)
        .unwrap_or_else(|| panic!("{name} not compared: {report}"))
}

#[test]
fn identical_settings_compare_as_same() {
    let r = runs();
    let w = Workdir::new();
    let (code, report) = json_of(&w, &[&r.base, &r.same], &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["verdict"], "same", "{report:#}");
    let fp = metric(&report, "final_ping");
    assert_eq!(fp["verdict"], "same", "{fp:#}");
    assert!(fp["baseline_intervals"].as_u64().unwrap() >= 10, "{fp:#}");
    for p in fp["percentiles"].as_array().unwrap() {
        let (lo, hi) = (
            p["ci_low_pct"].as_f64().unwrap(),
            p["ci_high_pct"].as_f64().unwrap(),
        );
        assert!(
            lo <= p["delta_pct"].as_f64().unwrap() && p["delta_pct"].as_f64().unwrap() <= hi,
            "{p}"
        );
    }
    // Connects happen once per VU, in the first interval: no verdict.
    assert_eq!(metric(&report, "connect")["verdict"], "insufficient");
}

#[test]
fn twenty_percent_more_delay_is_worse_with_exit_1() {
    let r = runs();
    let w = Workdir::new();
    let (junit, md) = (w.path("c.xml"), w.path("c.md"));
    let (code, report) = json_of(
        &w,
        &[&r.base, &r.slower],
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["verdict"], "worse");
    let fp = metric(&report, "final_ping");
    assert_eq!(fp["verdict"], "worse", "{fp:#}");
    let p50 = &fp["percentiles"][0];
    assert_eq!(p50["percentile"], 50.0);
    assert_eq!(p50["verdict"], "worse");
    // 50 ms → 60 ms plus the same small overhead on both sides: about +19 %.
    let d = p50["delta_pct"].as_f64().unwrap();
    assert!((10.0..25.0).contains(&d), "{p50}");
    assert!(p50["ci_low_pct"].as_f64().unwrap() > 5.0, "{p50}");

    // A real JUnit consumer sees one failing case per worse metric.
    let py = python();
    let parsed = consumer(py, "junit", &junit);
    let cases = parsed["suites"][0]["cases"].as_array().unwrap().clone();
    let case = |n: &str| cases.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(case("final_ping")["result"], "failure", "{parsed}");
    assert_eq!(case("connect")["result"], "skipped", "{parsed}");
    let rendered = consumer(py, "markdown", &md);
    let table = rendered["tables"][0].as_array().unwrap().clone();
    assert_eq!(table[0][0], "metric");
    assert!(
        table.iter().any(|row| row[0] == "`final_ping`"
            && row[1] == "p50"
            && row[6].as_str().unwrap().contains("worse")),
        "{rendered}"
    );
    // A looser per-metric tolerance turns it into `same` for that metric.
    let (_, loose) = json_of(
        &w,
        &[&r.base, &r.slower],
        &[
            "--max-regression",
            "final_ping=50%",
            "--metric",
            "final_ping",
        ],
    );
    assert_eq!(metric(&loose, "final_ping")["verdict"], "same", "{loose:#}");
    assert_eq!(loose["verdict"], "same");
}

#[test]
fn less_delay_is_better() {
    let r = runs();
    let w = Workdir::new();
    let (code, report) = json_of(&w, &[&r.base, &r.faster], &[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["verdict"], "better");
    assert_eq!(metric(&report, "final_ping")["verdict"], "better");
    assert_eq!(metric(&report, "first_output")["verdict"], "better");
}

#[test]
fn repeated_baselines_widen_the_band() {
    let r = runs();
    let w = Workdir::new();
    let width = |report: &serde_json::Value| {
        let p = &metric(report, "final_ping")["percentiles"][0];
        p["ci_high_pct"].as_f64().unwrap() - p["ci_low_pct"].as_f64().unwrap()
    };
    let (_, one) = json_of(&w, &[&r.same], &["--baseline", r.base.to_str().unwrap()]);
    let (code, three) = json_of(
        &w,
        &[&r.same],
        &[
            "--baseline",
            r.base.to_str().unwrap(),
            "--baseline",
            r.slower.to_str().unwrap(),
            "--baseline",
            r.faster.to_str().unwrap(),
        ],
    );
    assert_eq!(three["baselines"].as_array().unwrap().len(), 3);
    assert!(
        width(&three) > 2.0 * width(&one),
        "{} vs {}",
        width(&three),
        width(&one)
    );
    // 40, 50 and 60 ms baselines: a 50 ms run is within their band.
    assert_eq!(metric(&three, "final_ping")["verdict"], "same", "{three:#}");
    assert_eq!(code, Some(0));
}

#[test]
fn an_invalid_input_run_exits_2_and_a_missing_one_3() {
    let r = runs();
    let w = Workdir::new();
    let copy = w.path("invalid");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&r.same).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
    }
    let mut s = read_json(&copy.join("summary.json"));
    s["status"] = "invalid".into();
    std::fs::write(copy.join("summary.json"), s.to_string()).unwrap();
    let (code, out) = compare(&[&r.base, &copy], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("INVALID"), "{out}");

    let (code, out) = compare(&[&r.base, &w.path("nope")], &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("summary.json"), "{out}");
    let (code, out) = compare(&[&r.base], &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("no baseline"), "{out}");
}

fn python() -> &'static Path {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PY.get_or_init(|| venv_python("tests/python/requirements-gates.txt", "gates")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn consumer(py: &Path, kind: &str, file: &Path) -> serde_json::Value {
    let out = run(
        Command::new(py)
            .arg(repo_path("tests/python/check_ci_outputs.py"))
            .arg(kind)
            .arg(file),
        "check_ci_outputs.py",
        LIMIT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&out.stdout).expect("JSON from check_ci_outputs.py")
}
