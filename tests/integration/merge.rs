//! `finalping merge`: segment runs merged into one run folder.
//!
//! One fixture (built once, shared by the tests): a `finalping serve` and three
//! real segment processes (`run --segment i/3`, meeting at a start barrier)
//! against it, plus the extra real runs the refusal cases need (another
//! scenario, another segment count, a whole run, an unreachable target, a
//! saturated and an interrupted segment). The server is stopped as soon as
//! the runs are done.
//!
//! - exactness: samples split over N segments merge into the histogram that
//!   holds all samples (same bytes, counts, min, max, every percentile),
//!   through the files the runs write (property test);
//! - end to end: every count of the merged run adds up, its percentiles equal
//!   the Python `hdrhistogram` decoding of its `.hlog` files, thresholds are
//!   judged on the merged data, and `compare`, `report` and the HTML page
//!   read the merged folder;
//! - refusals (exit 3) and bad segments (exit 2) with real folders.

use crate::common;

use common::python::{run as run_py, venv_python};
use common::{bin, counter, read_json, serve, text, wait_with_limit, Workdir};
use finalping::merge::{self, MergeOptions};
use finalping::metrics::{Counter, Gauges, Metric, MetricSummary, Snapshot, Timeline};
use finalping::report::{self, RunReport, SegmentManifest, Totals};
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer, V2Serializer};
use hdrhistogram::Histogram;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

const LIMIT: Duration = Duration::from_secs(240);
/// 6 VUs × 5 iterations × 2 turns.
const PLAN_TURNS: u64 = 60;

fn scenario(url: &str, name: &str) -> String {
    format!(
        "name: {name}\nmetrics: {{interval: 200ms}}\ntarget: {{url: \"{url}\"}}\nload: {{vus: 6, iterations: 5, ramp_up: 300ms}}\nthresholds:\n  final_ping.p99: \"< 5s\"\n  \"final_ping{{step=greet}}.p50\": \"< 5s\"\n  turns_ok.count: \">= {PLAN_TURNS}\"\nsteps:\n  - send: {{name: greet, text: hi}}\n  - think: 50ms..150ms\n  - send: {{name: order, text: where is my order}}\n  - think: 50ms..150ms\n"
    )
}

struct Fixture {
    w: Workdir,
    /// The three segments of the run, by index.
    segs: Vec<PathBuf>,
    seg_outputs: Vec<Output>,
    /// Segment 2/3 of another scenario file.
    other_scenario: PathBuf,
    /// Segment 1/2 of the same scenario.
    other_count: PathBuf,
    /// Segment 2/3 of the same scenario with `--vus 9`.
    different_load: PathBuf,
    /// The same scenario run whole (no --segment).
    whole: PathBuf,
    /// Segment 2/3 against a closed port: nothing measured (invalid).
    unreachable: PathBuf,
    /// Segment 2/3 whose self-check budget no run can meet (`--self-check warn`).
    saturated: PathBuf,
    /// Segment 2/3 stopped by SIGTERM.
    interrupted: PathBuf,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn run_all(runs: Vec<Vec<String>>) -> Vec<Output> {
    let handles: Vec<_> = runs
        .into_iter()
        .map(|a| {
            std::thread::spawn(move || {
                let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                common::run_finalping(&refs, LIMIT)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Starts a segment against a server that answers after 60 s, waits for its
/// banner on stderr, sends SIGTERM and waits for it to write its partial reports.
fn interrupted_segment(scenario: &Path, slow_url: &str, out: &Path) -> Output {
    let mut child = Command::new(bin())
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--segment",
            "2/3",
            "--run-id",
            "merge-e2e",
            "--target",
            slow_url,
            "--out",
            out.to_str().unwrap(),
            "--self-check",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn finalping run");
    let stderr = child.stderr.take().unwrap();
    let banner = common::first_line(stderr, Duration::from_secs(60));
    assert!(banner.contains("running"), "{banner}");
    // SAFETY: kill(2) of the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    wait_with_limit(child, LIMIT)
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let served = serve(&["--delay", "uniform(2ms, 30ms)", "--outputs", "2"]);
        let w = Workdir::new();
        let p = w.file("s.yaml", &scenario(&served.url, "merge-e2e"));
        let other = w.file("other.yaml", &scenario(&served.url, "merge-other"));
        let barrier = w.path("barrier");
        let segs: Vec<PathBuf> = (0..3).map(|i| w.path(&format!("seg{i}"))).collect();
        let seg_runs = (0..3)
            .map(|i| {
                args(&[
                    "run",
                    p.to_str().unwrap(),
                    "--segment",
                    &format!("{i}/3"),
                    "--run-id",
                    "merge-e2e",
                    "--start-barrier",
                    barrier.to_str().unwrap(),
                    "--barrier-timeout",
                    "3m",
                    "--out",
                    segs[i].to_str().unwrap(),
                    "--quiet",
                ])
            })
            .collect();
        let seg_outputs = run_all(seg_runs);
        let f = Fixture {
            other_scenario: w.path("other-scenario"),
            other_count: w.path("other-count"),
            different_load: w.path("different-load"),
            whole: w.path("whole"),
            unreachable: w.path("unreachable"),
            saturated: w.path("saturated"),
            interrupted: w.path("interrupted"),
            segs,
            seg_outputs,
            w,
        };
        let seg = |file: &Path, s: &str, out: &Path, extra: &[&str]| {
            let mut a = args(&[
                "run",
                file.to_str().unwrap(),
                "--segment",
                s,
                "--run-id",
                "merge-e2e",
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ]);
            a.extend(args(extra));
            a
        };
        let extras = vec![
            seg(&other, "2/3", &f.other_scenario, &[]),
            seg(&p, "1/2", &f.other_count, &[]),
            seg(&p, "2/3", &f.different_load, &["--vus", "9"]),
            args(&[
                "run",
                p.to_str().unwrap(),
                "--out",
                f.whole.to_str().unwrap(),
                "--quiet",
            ]),
            seg(
                &p,
                "2/3",
                &f.unreachable,
                &[
                    "--target",
                    "http://127.0.0.1:1",
                    "--set",
                    "target.reconnect.max_attempts=0",
                ],
            ),
            seg(
                &p,
                "2/3",
                &f.saturated,
                &["--set", "metrics.lag_p99_budget=1us"],
            ),
        ];
        let slow = serve(&["--delay", "60s"]);
        let (interrupted, p2, slow_url) = (f.interrupted.clone(), p.clone(), slow.url.clone());
        let stopped = std::thread::spawn(move || interrupted_segment(&p2, &slow_url, &interrupted));
        for out in run_all(extras) {
            assert!(out.status.code().is_some_and(|c| c <= 2), "{}", text(&out));
        }
        let stopped = stopped.join().unwrap();
        assert_eq!(stopped.status.code(), Some(130), "{}", text(&stopped));
        drop((served, slow));
        f
    })
}

/// `finalping merge <dirs> --out <out> [extra]`.
fn merge_cmd(dirs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let mut a = vec!["merge".to_string()];
    a.extend(dirs.iter().map(|d| d.display().to_string()));
    a.extend(args(&["--out", out.to_str().unwrap()]));
    a.extend(args(extra));
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    common::run_finalping(&refs, LIMIT)
}

fn python() -> &'static Path {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PY.get_or_init(|| venv_python("tests/python/requirements.txt", "hdrh")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// `tests/python/check_hlog.py` on the given files.
fn decode_hlogs(files: &[PathBuf]) -> serde_json::Value {
    let out = run_py(
        Command::new(python())
            .arg(common::repo_path("tests/python/check_hlog.py"))
            .args(files),
        "tests/python/check_hlog.py",
        LIMIT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&out.stdout).expect("check_hlog.py prints JSON")
}

fn buckets(decoded: &serde_json::Value) -> Vec<(u64, u64)> {
    decoded["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect()
}

/// The value at rank ceil(q × total) of decoded buckets (HdrHistogram's rule).
fn at_quantile(buckets: &[(u64, u64)], q: f64) -> u64 {
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    buckets
        .iter()
        .find(|(_, n)| {
            seen += n;
            seen >= rank
        })
        .map(|b| b.0)
        .unwrap()
}

fn us(ms: f64) -> u64 {
    (ms * 1000.0).round() as u64
}

#[test]
fn merged_counts_add_up_and_percentiles_match_python() {
    let f = fixture();
    for (i, out) in f.seg_outputs.iter().enumerate() {
        // Each segment alone misses `turns_ok.count >= 60` (exit 1); a segment
        // that a stalled machine started late is invalid (exit 2).
        assert!(
            matches!(out.status.code(), Some(1) | Some(2)),
            "segment {i}: {}",
            text(out)
        );
    }
    let out_dir = f.w.path("merged");
    let dirs: Vec<&Path> = f.segs.iter().map(PathBuf::as_path).collect();
    let out = merge_cmd(&dirs, &out_dir, &["--self-check", "warn"]);
    let segs: Vec<serde_json::Value> = f
        .segs
        .iter()
        .map(|d| read_json(&d.join("summary.json")))
        .collect();
    let m = read_json(&out_dir.join("summary.json"));
    let late: Vec<usize> = (0..3).filter(|i| segs[*i]["status"] == "invalid").collect();
    if late.is_empty() {
        // Judged on the merged data: 60 turns together, so it passes.
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(m["status"], "passed", "{m}");
    } else {
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let reason = m["status_reason"].as_str().unwrap();
        for i in late {
            assert!(reason.contains(&format!("segment {i}")), "{reason}");
        }
    }

    // Every counter, cause and tag counter is the sum of the segments'.
    let sum = |path: &dyn Fn(&serde_json::Value) -> &serde_json::Value| -> u64 {
        segs.iter().map(|s| path(s).as_u64().unwrap_or(0)).sum()
    };
    for name in m["counters"].as_object().unwrap().keys() {
        assert_eq!(
            counter(&m, name),
            sum(&|s| &s["counters"][name]),
            "counter {name}"
        );
    }
    assert_eq!(counter(&m, "turns_ok"), PLAN_TURNS, "{m}");
    for metric in m["metrics"].as_object().unwrap().keys() {
        assert_eq!(
            m["metrics"][metric]["count"].as_u64().unwrap(),
            sum(&|s| &s["metrics"][metric]["count"]),
            "metric {metric}"
        );
    }
    for (tag, t) in m["tags"].as_object().unwrap() {
        for name in t["counters"].as_object().unwrap().keys() {
            assert_eq!(
                t["counters"][name].as_u64().unwrap(),
                sum(&|s| &s["tags"][tag]["counters"][name]),
                "{tag} {name}"
            );
        }
        for metric in t["metrics"].as_object().unwrap().keys() {
            assert_eq!(
                t["metrics"][metric]["count"].as_u64().unwrap(),
                sum(&|s| &s["tags"][tag]["metrics"][metric]["count"]),
                "{tag} {metric}"
            );
        }
    }
    assert!(
        m["tags"]["scenario=merge-e2e,step=greet"].is_object(),
        "{m}"
    );
    assert_eq!(
        m["peak_vus"].as_u64().unwrap(),
        sum(&|s| &s["peak_vus"]),
        "{m}"
    );
    // Thresholds judged on the merged numbers.
    let th = m["thresholds"].as_array().unwrap();
    assert_eq!(th.len(), 3, "{m}");
    let turns = th.iter().find(|t| t["metric"] == "turns_ok").unwrap();
    assert_eq!(turns["value"].as_f64(), Some(PLAN_TURNS as f64), "{turns}");
    let p99 = th.iter().find(|t| t["metric"] == "final_ping").unwrap();
    assert_eq!(p99["value"], m["metrics"]["final_ping"]["p99_ms"], "{p99}");
    // The per-segment table and the manifest list the segments.
    assert_eq!(m["segments"].as_array().unwrap().len(), 3, "{m}");
    let manifest = read_json(&out_dir.join("manifest.json"));
    assert_eq!(manifest["merge"]["count"], 3, "{manifest}");
    assert_eq!(manifest["merge"]["segments"][2]["index"], 2, "{manifest}");
    assert!(manifest.get("segment").is_none(), "{manifest}");

    // The merged .hlog files, decoded by Python, hold every sample (every
    // interval, the last partial one included), bucket for bucket the sum of
    // the segments' .hlog files, and give the summary's percentiles.
    let names = ["final_ping", "first_output", "connect"];
    let files = |dir: &Path| -> Vec<PathBuf> {
        names
            .iter()
            .map(|n| dir.join(format!("{n}.hlog")))
            .collect()
    };
    let merged = decode_hlogs(&files(&out_dir));
    let parts: Vec<serde_json::Value> = f.segs.iter().map(|d| decode_hlogs(&files(d))).collect();
    for name in names {
        let key = format!("{name}.hlog");
        let got = &merged[&key];
        let summary = &m["metrics"][name];
        assert_eq!(got["total_count"], summary["count"], "{name}");
        let mut want: std::collections::BTreeMap<u64, u64> = Default::default();
        for p in &parts {
            for (v, n) in buckets(&p[&key]) {
                *want.entry(v).or_default() += n;
            }
        }
        let got_buckets = buckets(got);
        assert_eq!(
            got_buckets,
            want.into_iter().collect::<Vec<_>>(),
            "{name}: merged buckets = sum of the segments' buckets"
        );
        for (q, field) in [
            (0.5, "p50_ms"),
            (0.9, "p90_ms"),
            (0.95, "p95_ms"),
            (0.99, "p99_ms"),
            (0.999, "p99_9_ms"),
            (0.9999, "p99_99_ms"),
            (1.0, "max_ms"),
        ] {
            assert_eq!(
                at_quantile(&got_buckets, q),
                us(summary[field].as_f64().unwrap()),
                "{name} {field}"
            );
        }
        assert_eq!(
            got["max"].as_u64(),
            Some(us(summary["max_ms"].as_f64().unwrap()))
        );
    }
    // The intervals of histograms.json add up to the totals (counters too).
    let h = report::read_histograms(&out_dir).unwrap();
    for metric in [Metric::FinalPing, Metric::Connect] {
        assert_eq!(
            h.timeline.merged(metric).unwrap(),
            h.metrics[&metric],
            "{metric:?}"
        );
    }
    // Aligned by wall clock, not laid end to end: the merged run is about as
    // long as its longest segment, each grid interval one collector tick.
    let timelines: Vec<Timeline> = f
        .segs
        .iter()
        .map(|d| report::read_histograms(d).unwrap().timeline)
        .collect();
    let longest = timelines.iter().map(Timeline::len).max().unwrap();
    let starts = timelines.iter().map(Timeline::run_start);
    let spread = starts.clone().max().unwrap();
    let spread = spread.duration_since(starts.min().unwrap()).unwrap();
    let skew = (spread.as_millis() / 200) as usize;
    assert_eq!(
        h.timeline.run_start(),
        timelines.iter().map(Timeline::run_start).min().unwrap()
    );
    assert!(
        h.timeline.len() <= longest + skew + 2,
        "{} merged intervals, longest segment {longest}",
        h.timeline.len()
    );
    assert_eq!(h.timeline.interval(), Duration::from_millis(200));
    for c in [Counter::TurnsOk, Counter::TurnsSent, Counter::Outputs] {
        let in_intervals: u64 = h.timeline.intervals().iter().map(|i| i.counter(c)).sum();
        assert_eq!(in_intervals, counter(&m, c.name()), "{c:?}");
    }
}

#[test]
fn compare_report_and_html_read_a_merged_folder() {
    let f = fixture();
    let merged = f.w.path("merged-for-tools");
    let dirs: Vec<&Path> = f.segs.iter().map(PathBuf::as_path).collect();
    let out = merge_cmd(&dirs, &merged, &["--self-check", "warn", "--quiet"]);
    assert!(
        matches!(out.status.code(), Some(0) | Some(2)),
        "{}",
        text(&out)
    );
    let run_id = read_json(&merged.join("summary.json"))["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    // compare: the merged run against itself is the same; against a segment it judges.
    let cmp = common::run_finalping(
        &[
            "compare",
            merged.to_str().unwrap(),
            merged.to_str().unwrap(),
        ],
        LIMIT,
    );
    let cmp_text = text(&cmp);
    assert!(cmp_text.contains(&run_id), "{cmp_text}");
    assert!(!cmp_text.contains("error:"), "{cmp_text}");
    assert!(!cmp_text.contains("worse"), "{cmp_text}");

    // report: regenerates the derived files from the merged summary.json.
    let again = f.w.path("merged-report");
    let rep = common::run_finalping(
        &[
            "report",
            merged.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(rep.status.code(), Some(0), "{}", text(&rep));
    let md = std::fs::read_to_string(again.join("summary.md")).unwrap();
    assert!(md.contains("## Segments"), "{md}");
    assert!(md.contains("This run merges 3 segment runs"), "{md}");

    // The HTML page of the merge: time charts from the merged timeline and the segment table.
    let html = std::fs::read_to_string(merged.join("report.html")).unwrap();
    assert!(html.contains("id=\"segments\""), "segment table");
    assert!(html.contains("id=\"throughput\""), "time charts");
    assert!(html.contains("<svg"), "charts");
    for i in 0..3 {
        let seg_id = read_json(&f.segs[i].join("summary.json"))["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(html.contains(&seg_id), "{seg_id}");
    }
}

#[test]
fn sets_that_are_not_one_run_are_refused_with_exit_3() {
    let f = fixture();
    let [s0, s1, s2] = [&f.segs[0], &f.segs[1], &f.segs[2]].map(PathBuf::as_path);
    let out = f.w.path("refused");
    let refused = |dirs: &[&Path], expect: &str| {
        let o = merge_cmd(dirs, &out, &[]);
        assert_eq!(o.status.code(), Some(3), "{expect}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(err.contains(expect), "want `{expect}` in: {err}");
        assert!(!out.join("summary.json").exists(), "nothing written");
    };
    refused(&[s0, s0, s1], "segment 0 is given twice");
    refused(&[s0, s1], "segment 2 of 3 not given");
    refused(&[s0, s1, &f.other_scenario], "scenario");
    refused(&[s0, s1, &f.other_count], "segment count 2");
    refused(&[s0, s1, &f.different_load], "load settings");
    refused(&[s0, s1, &f.whole], "is a whole run, not a segment");
    let file = f.w.file("notes.txt", "hello");
    refused(&[s0, s1, &file], "it is a file");
    let junk = f.w.path("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("summary.json"), "{\"not\": \"a summary\"}").unwrap();
    refused(&[s0, s1, &junk], "not a finalping summary");
    // A merged folder is not a segment either.
    let merged = f.w.path("merged-once");
    let o = merge_cmd(&[s0, s1, s2], &merged, &["--self-check", "warn"]);
    assert!(matches!(o.status.code(), Some(0) | Some(2)), "{}", text(&o));
    refused(&[s0, s1, &merged], "already a merge of 3 segments");
}

#[test]
fn a_missing_invalid_interrupted_or_saturated_segment_makes_it_invalid() {
    let f = fixture();
    let [s0, s1] = [&f.segs[0], &f.segs[1]].map(PathBuf::as_path);
    let case = |third: &Path, extra: &[&str], expect: &str| {
        let out = f.w.path(&format!(
            "bad-{}",
            third.file_name().unwrap().to_string_lossy()
        ));
        let o = merge_cmd(&[s0, s1, third], &out, extra);
        assert_eq!(o.status.code(), Some(2), "{expect}: {}", text(&o));
        let s = read_json(&out.join("summary.json"));
        assert_eq!(s["status"], "invalid", "{s}");
        let reason = s["status_reason"].as_str().unwrap();
        assert!(reason.contains(expect), "want `{expect}` in: {reason}");
        assert!(out.join("report.html").is_file());
        s
    };
    // The extra segments ran after the barrier group: a generous tolerance
    // leaves each case its one problem.
    let lenient = ["--start-tolerance", "1h"];
    let missing = f.w.path("never-written");
    case(&missing, &lenient, "never-written holds no run");
    let missing = f.w.path("segment-2-of-3");
    case(&missing, &lenient, "segment 2: segment folder");
    let s = case(&f.unreachable, &lenient, "segment 2");
    assert!(
        s["status_reason"].as_str().unwrap().contains("is invalid"),
        "{s}"
    );
    case(&f.interrupted, &lenient, "was interrupted");
    case(&f.saturated, &lenient, "load generator was saturated");
    // `--self-check warn` reports the saturated segment without invalidating.
    let warned = f.w.path("warned");
    let o = merge_cmd(
        &[s0, s1, &f.saturated],
        &warned,
        &["--self-check", "warn", "--start-tolerance", "1h"],
    );
    let s = read_json(&warned.join("summary.json"));
    assert_ne!(s["status"], "invalid", "{}", text(&o));
    assert_eq!(s["self_check"]["saturated"], true, "{s}");
    // The merged block carries the first saturated segment's cause and
    // remedy (on a busy machine segments 0 and 1 may be saturated too).
    assert!(s["self_check"]["cause"].is_string(), "{s}");
    let hint = s["self_check"]["hint"].as_str().unwrap();
    assert!(hint.starts_with("segment "), "{hint}");
    // With the default tolerance (1 s), a segment that started seconds after
    // the others (it ran after the barrier group finished) is named as late.
    case(&f.saturated, &["--self-check", "warn"], "segment 2");
    case(
        &f.saturated,
        &["--self-check", "warn"],
        "ms late (tolerance 1000 ms)",
    );
}

// ---- exactness ------------------------------------------------------------

const TAG_NAMES: [&str; 3] = ["scenario=s", "scenario=s,step=a", "scenario=s,step=b"];
const METRICS: [Metric; 3] = [Metric::FinalPing, Metric::FirstOutput, Metric::Connect];

/// A real segment's summary.json as the template of synthetic segments.
fn template() -> RunReport {
    let text = std::fs::read_to_string(fixture().segs[0].join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn v2_bytes(h: &Histogram<u64>) -> (Vec<u8>, Vec<u8>) {
    let (mut plain, mut deflated) = (Vec::new(), Vec::new());
    V2Serializer::new().serialize(h, &mut plain).unwrap();
    V2DeflateSerializer::new()
        .serialize(h, &mut deflated)
        .unwrap();
    (plain, deflated)
}

fn assert_identical(got: &Histogram<u64>, want: &Histogram<u64>, what: &str) {
    assert_eq!(v2_bytes(got), v2_bytes(want), "{what}: serialized bytes");
    assert_eq!(
        (got.len(), got.min(), got.max()),
        (want.len(), want.min(), want.max()),
        "{what}"
    );
    // Every percentile the histograms can tell apart: the value at each
    // recorded count rank (percentiles between two ranks give one of these).
    let n = want.len();
    for rank in 0..=n {
        let q = rank as f64 / n.max(1) as f64;
        assert_eq!(
            got.value_at_quantile(q),
            want.value_at_quantile(q),
            "{what} q={q}"
        );
    }
    for q in [0.999, 0.9999, 0.99999] {
        assert_eq!(
            got.value_at_quantile(q),
            want.value_at_quantile(q),
            "{what} q={q}"
        );
    }
    assert_eq!(MetricSummary::of(got), MetricSummary::of(want), "{what}");
}

/// One synthetic segment: its samples in `intervals` intervals of 250 ms.
fn write_segment(
    template: &RunReport,
    dir: &Path,
    index: u32,
    count: u32,
    start: SystemTime,
    samples: &[(u64, usize, usize, usize)],
    intervals: usize,
) {
    let names: Vec<String> = TAG_NAMES.iter().map(|s| s.to_string()).collect();
    let tick = Duration::from_millis(250);
    let mut timeline = Timeline::new(start, tick);
    let mut totals = Snapshot::new();
    for k in 0..intervals {
        let mut snap = Snapshot::new();
        for (value, _, metric, tag) in samples.iter().filter(|s| s.1 % intervals == k) {
            let tags: &[u16] = if *tag == 0 { &[0] } else { &[0, *tag as u16] };
            let d = Duration::from_micros(*value);
            snap.record_tagged(METRICS[*metric], tags, d);
            snap.add_tagged(Counter::TurnsOk, tags, 1);
        }
        let from = tick * k as u32;
        timeline.push(from, from + tick, &snap, Gauges::default());
        totals.merge(&snap);
    }
    let mut r = template.clone();
    r.manifest.segment = Some(SegmentManifest {
        index,
        count,
        start_at: None,
        start_late_ms: 0.0,
    });
    r.status = finalping::verdict::RunStatus::Passed;
    r.self_check.saturated = false;
    r.thresholds.clear();
    r.duration_s = tick.as_secs_f64() * intervals as f64;
    r.metrics = Metric::ALL
        .iter()
        .map(|m| (m.name().to_string(), totals.summary(*m)))
        .collect();
    r.counters = Counter::ALL
        .iter()
        .map(|c| (c.name().to_string(), totals.counter(*c)))
        .collect();
    r.errors.clear();
    r.tags = report::tag_reports(&totals, &names);
    r.timeline = Some(Arc::new(timeline));
    r.totals = Some(Arc::new(Totals {
        snapshot: totals,
        tag_names: names,
    }));
    r.formats = Some(Vec::new());
    report::write_all(&r, dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Samples recorded across N segments (written as run folders, read back
    /// and merged) give the histogram of all samples: whole run, per tag, and
    /// summed over the merged intervals; the merged folder's own
    /// histograms.json reads back to it too.
    #[test]
    fn samples_split_over_segments_merge_exactly(
        samples in proptest::collection::vec(
            (1u64..30_000_000, 0usize..64, 0usize..3, 0usize..3), 1..300),
        n in 1u32..6,
        intervals in 1usize..6,
    ) {
        let template = template();
        let dir = tempfile::tempdir().unwrap();
        let start = SystemTime::now();
        let mut all = Snapshot::new();
        for (value, _, metric, tag) in &samples {
            let tags: &[u16] = if *tag == 0 { &[0] } else { &[0, *tag as u16] };
            all.record_tagged(METRICS[*metric], tags, Duration::from_micros(*value));
        }
        let dirs: Vec<PathBuf> = (0..n).map(|i| dir.path().join(format!("s{i}"))).collect();
        for (i, d) in dirs.iter().enumerate() {
            let mine: Vec<_> = samples
                .iter()
                .copied()
                .filter(|s| (s.1 / 7) % n as usize == i)
                .collect();
            write_segment(&template, d, i as u32, n, start, &mine, intervals);
        }
        let set = merge::read_segments(&dirs).unwrap();
        let options = MergeOptions {
            strict_self_check: true,
            start_tolerance: Duration::from_secs(1),
            interrupted: false,
            command_line: "test".into(),
        };
        let merged = merge::merge(&set, &options).unwrap();
        let totals = merged.totals.as_deref().unwrap();
        let timeline = merged.timeline.as_deref().unwrap();
        for m in METRICS {
            let what = format!("{m:?} of {} samples over {n} segments", samples.len());
            assert_identical(totals.snapshot.histogram(m), all.histogram(m), &what);
            assert_identical(&timeline.merged(m).unwrap(), all.histogram(m), &what);
            assert_eq!(merged.metrics[m.name()], all.summary(m));
        }
        for (id, name) in TAG_NAMES.iter().enumerate() {
            let want = all.tag(id as u16);
            let pos = totals.tag_names.iter().position(|t| t == name);
            let got = pos.and_then(|p| totals.snapshot.tag(p as u16));
            for m in [Metric::FinalPing, Metric::FirstOutput] {
                let (w, g) = (want.and_then(|t| t.histogram(m)), got.and_then(|t| t.histogram(m)));
                match (w, g) {
                    (Some(w), Some(g)) => assert_identical(g, w, &format!("{name} {m:?}")),
                    (None, None) => {}
                    _ => panic!("{name} {m:?}: present on one side only"),
                }
            }
        }
        let turns: u64 = samples.len() as u64;
        assert_eq!(merged.counters["turns_ok"], turns);
        // The merged folder's own lossless file holds the same histograms.
        let out = dir.path().join("merged");
        let mut merged = merged;
        merged.formats = Some(Vec::new());
        report::write_all(&merged, &out).unwrap();
        let back = report::read_histograms(&out).unwrap();
        for m in METRICS {
            let empty = finalping::metrics::new_histogram();
            let got = back.metrics.get(&m).unwrap_or(&empty);
            assert_identical(got, all.histogram(m), &format!("{m:?} read back"));
        }
    }
}
