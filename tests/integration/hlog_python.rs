//! The `.hlog` files are standard HdrHistogram interval logs. A timeline with
//! known, seeded samples is written with `report::write_hlogs`, then decoded
//! by two independent readers:
//! - the Python reference reader (`hdrhistogram` on PyPI, module `hdrh`), which
//!   this test installs itself into a venv under the cargo target dir from the
//!   pinned `tests/python/requirements.txt` and drives with
//!   `tests/python/check_hlog.py`;
//! - the Rust crate's own `IntervalLogIterator` + `Deserializer`.
//!
//! Both must give back exactly what was recorded: total counts, every bucket,
//! per-interval counts and timestamps; p50/p99/max must match the numbers
//! `summary.json` carries (`MetricSummary`) within one HDR bucket. Also: the
//! merged report of `run --workers 3` holds exactly the Python reader's sum
//! of its workers' `.hlog` buckets.

use crate::common;

use common::python::run;
use finalping::metrics::{new_histogram, Gauges, Metric, MetricSummary, Snapshot, Timeline};
use finalping::report::{hlog_file_name, write_hlogs};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

const CHECK_LIMIT: Duration = Duration::from_secs(120);

/// What the test recorded, to compare the readers against.
struct Recorded {
    timeline: Timeline,
    totals: Snapshot,
    /// Per metric: (start offset s, length s, count) of every interval.
    intervals: BTreeMap<Metric, Vec<(f64, f64, u64)>>,
}

/// 12 intervals: 11 of 1 s and a last partial one of 0.437 s; interval 5 has
/// no samples at all (a stall). `final_ping` is a seeded bimodal mixture
/// (80 % ~20 ms, 20 % ~200 ms), `first_output` ~5 ms, `connect` only in the
/// first two intervals, `output_gap` never (so it gets no file).
fn record() -> Recorded {
    let run_start = SystemTime::now();
    let mut timeline = Timeline::new(run_start, Duration::from_secs(1));
    let mut totals = Snapshot::new();
    let mut intervals: BTreeMap<Metric, Vec<(f64, f64, u64)>> = BTreeMap::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_4106);
    let fast = LogNormal::new((20_000f64).ln(), 0.3).unwrap();
    let slow = LogNormal::new((200_000f64).ln(), 0.3).unwrap();
    let first = LogNormal::new((5_000f64).ln(), 0.5).unwrap();
    let us = |v: f64| Duration::from_micros(v.max(1.0) as u64);
    for i in 0..12u64 {
        let start = Duration::from_secs(i);
        let end = if i == 11 {
            start + Duration::from_millis(437)
        } else {
            start + Duration::from_secs(1)
        };
        let mut snap = Snapshot::new();
        if i != 5 {
            for _ in 0..2000 {
                let v = if rng.random_bool(0.8) {
                    fast.sample(&mut rng)
                } else {
                    slow.sample(&mut rng)
                };
                snap.record(Metric::FinalPing, us(v));
            }
            for _ in 0..500 {
                snap.record(Metric::FirstOutput, us(first.sample(&mut rng)));
            }
        }
        if i < 2 {
            for _ in 0..50 {
                snap.record(Metric::Connect, us(rng.random_range(1_000.0..3_000.0)));
            }
        }
        for m in [Metric::FinalPing, Metric::FirstOutput, Metric::Connect] {
            intervals.entry(m).or_default().push((
                start.as_secs_f64(),
                (end - start).as_secs_f64(),
                snap.histogram(m).len(),
            ));
        }
        timeline.push(start, end, &snap, Gauges::default());
        totals.merge(&snap);
    }
    Recorded {
        timeline,
        totals,
        intervals,
    }
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The venv's python with the pinned `tests/python/requirements.txt`, created on first use.
fn python() -> &'static Path {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PY.get_or_init(|| common::python::venv_python("tests/python/requirements.txt", "hdrh")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Standard base64 (with padding), as the interval log lines carry it.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        out.extend(acc.to_be_bytes()[1..1 + n].iter());
    }
    out
}

/// One HDR bucket of slack (highest-equivalent rounding, and the readers'
/// slightly different rank rounding at a quantile).
fn close(a_us: u64, b_us: u64) -> bool {
    let h = new_histogram();
    let slack = 2 * h.equivalent_range(a_us.max(b_us)).max(1);
    a_us.abs_diff(b_us) <= slack
}

fn ms_to_us(ms: f64) -> u64 {
    (ms * 1000.0).round() as u64
}

fn recorded_buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn write_logs(rec: &Recorded, dir: &Path) -> Vec<PathBuf> {
    let written = write_hlogs(&rec.timeline, dir).expect("write hlogs");
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["connect.hlog", "first_output.hlog", "final_ping.hlog"],
        "only metrics with samples get a file"
    );
    written
}

#[test]
fn python_hdrhistogram_reads_the_hlogs() {
    let rec = record();
    let dir = tempfile::tempdir().unwrap();
    let files = write_logs(&rec, dir.path());

    let script = repo("tests/python/check_hlog.py");
    let out = run(
        Command::new(python()).arg(&script).args(&files),
        "tests/python/check_hlog.py",
        CHECK_LIMIT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("check_hlog.py prints JSON");

    let run_start = rec
        .timeline
        .run_start()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for m in [Metric::FinalPing, Metric::FirstOutput, Metric::Connect] {
        let name = hlog_file_name(m);
        let got = &json[&name];
        let total = rec.totals.histogram(m);
        let summary = MetricSummary::of(total);
        let ctx = format!(
            "{name}: {}",
            serde_json::to_string(&got["intervals"]).unwrap()
        );

        assert_eq!(got["total_count"].as_u64(), Some(total.len()), "{ctx}");
        assert_eq!(got["total_count"].as_u64(), Some(summary.count), "{ctx}");
        // Every bucket decodes to exactly what was recorded.
        let py_buckets: Vec<(u64, u64)> = got["recorded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
            .collect();
        let rs_buckets = recorded_buckets(total);
        let first_diff = py_buckets.iter().zip(&rs_buckets).position(|(a, b)| a != b);
        assert!(
            py_buckets == rs_buckets,
            "{name}: python decoded {} buckets, recorded {}; first difference at {first_diff:?}",
            py_buckets.len(),
            rs_buckets.len()
        );
        // The numbers summary.json carries, within HDR precision.
        for (key, ms) in [
            ("p50", summary.p50_ms),
            ("p99", summary.p99_ms),
            ("max", summary.max_ms),
        ] {
            let py = got[key].as_u64().unwrap();
            assert!(
                close(py, ms_to_us(ms)),
                "{name} {key}: python {py} µs vs summary {ms} ms"
            );
        }
        // StartTime header is the run start (written with ms precision).
        let start = got["start_time_s"].as_f64().unwrap();
        assert!(
            (start - run_start).abs() < 0.002,
            "{name}: StartTime {start}"
        );
        // Every interval, at its offset, with its own count.
        let py_intervals = got["intervals"].as_array().unwrap();
        let expected = &rec.intervals[&m];
        assert_eq!(py_intervals.len(), expected.len(), "{ctx}");
        for (p, (offset, length, count)) in py_intervals.iter().zip(expected) {
            assert!((p[0].as_f64().unwrap() - offset).abs() < 0.002, "{ctx}");
            assert!((p[1].as_f64().unwrap() - length).abs() < 0.002, "{ctx}");
            assert_eq!(p[2].as_u64(), Some(*count), "{ctx}");
        }
    }
}

#[test]
fn rust_interval_log_iterator_reads_the_hlogs() {
    let rec = record();
    let dir = tempfile::tempdir().unwrap();
    let files = write_logs(&rec, dir.path());
    let run_start = rec
        .timeline
        .run_start()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    for (path, m) in files
        .iter()
        .zip([Metric::Connect, Metric::FirstOutput, Metric::FinalPing])
    {
        let bytes = std::fs::read(path).unwrap();
        let mut sum = new_histogram();
        let mut start_time = None;
        let mut base_time = None;
        let mut seen = Vec::new();
        let mut deser = Deserializer::new();
        for entry in IntervalLogIterator::new(&bytes) {
            match entry.unwrap_or_else(|e| panic!("{}: {e:?}", path.display())) {
                LogEntry::StartTime(t) => start_time = Some(t),
                LogEntry::BaseTime(t) => base_time = Some(t),
                LogEntry::Interval(ilh) => {
                    let raw = base64_decode(ilh.encoded_histogram());
                    let h: Histogram<u64> = deser.deserialize(&mut &raw[..]).unwrap();
                    // The max column is in ms (MaxValueDivisor 1000).
                    assert!((ilh.max() - h.max() as f64 / 1000.0).abs() < 0.001);
                    seen.push((
                        ilh.start_timestamp().as_secs_f64(),
                        ilh.duration().as_secs_f64(),
                        h.len(),
                    ));
                    sum.add(&h).unwrap();
                }
            }
        }
        for t in [start_time, base_time] {
            let t = t.expect("StartTime and BaseTime headers");
            assert!(t.abs_diff(run_start) < Duration::from_millis(2));
        }
        let total = rec.totals.histogram(m);
        assert!(
            sum == *total,
            "{}: decoded sum differs from the recorded total (count {} vs {}, max {} vs {})",
            path.display(),
            sum.len(),
            total.len(),
            sum.max(),
            total.max()
        );
        let expected = &rec.intervals[&m];
        assert_eq!(seen.len(), expected.len());
        for (s, e) in seen.iter().zip(expected) {
            assert!((s.0 - e.0).abs() < 0.002 && (s.1 - e.1).abs() < 0.002);
            assert_eq!(s.2, e.2);
        }
    }
}

/// A real run: the `.hlog` files `finalping run` wrote, decoded by the Python
/// reader, agree with that run's `summary.json` (total count and p99).
#[test]
fn a_real_runs_hlogs_match_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.yaml");
    std::fs::write(
        &scenario,
        "name: hlog\nmetrics: {interval: 250ms}\nload: {vus: 8, duration: 2s}\nsteps:\n  - send: {text: hi}\n  - think: 10ms\nemulator: {delay: \"uniform(2ms, 20ms)\", outputs: 2}\n",
    )
    .unwrap();
    let out_dir = dir.path().join("r");
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_finalping"))
            .arg("run")
            .arg(&scenario)
            .arg("--out")
            .arg(&out_dir)
            .args(["--quiet", "--self-check", "warn"]),
        "finalping run",
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let names = ["final_ping", "first_output", "output_gap", "connect"];
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| out_dir.join(format!("{n}.hlog")))
        .collect();
    let py = run(
        Command::new(python())
            .arg(repo("tests/python/check_hlog.py"))
            .args(&files),
        "tests/python/check_hlog.py",
        CHECK_LIMIT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let json: serde_json::Value = serde_json::from_slice(&py.stdout).expect("JSON");
    for name in names {
        let got = &json[format!("{name}.hlog")];
        let want = &summary["metrics"][name];
        assert_eq!(got["total_count"], want["count"], "{name}: {got} vs {want}");
        // The summary's p99 is the value at rank ceil(0.99 × count) of the
        // decoded buckets (the two libraries round that rank differently, so
        // compare the summary against the decoded data, not the two p99s).
        let buckets: Vec<(u64, u64)> = got["recorded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
            .collect();
        let total: u64 = buckets.iter().map(|b| b.1).sum();
        let rank = (0.99 * total as f64).ceil() as u64;
        let mut seen = 0;
        let decoded_p99 = buckets
            .iter()
            .find(|(_, n)| {
                seen += n;
                seen >= rank
            })
            .map(|b| b.0)
            .unwrap();
        let want_us = ms_to_us(want["p99_ms"].as_f64().unwrap());
        assert!(
            close(decoded_p99, want_us),
            "{name} p99: decoded {decoded_p99} µs vs summary {want_us} µs"
        );
    }
}

/// The buckets (value µs → count) the Python reader decodes from `.hlog` files,
/// added up over the files.
fn python_buckets(files: &[PathBuf]) -> BTreeMap<u64, u64> {
    let mut sum = BTreeMap::new();
    // One call per file: the script keys its answer by file name.
    for file in files {
        let py = run(
            Command::new(python())
                .arg(repo("tests/python/check_hlog.py"))
                .arg(file),
            "tests/python/check_hlog.py",
            CHECK_LIMIT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let json: serde_json::Value = serde_json::from_slice(&py.stdout).expect("JSON");
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for p in json[&name]["recorded"].as_array().unwrap() {
            *sum.entry(p[0].as_u64().unwrap()).or_insert(0) += p[1].as_u64().unwrap();
        }
    }
    sum
}

/// `run --workers 3` on the quickstart (200 VUs, shortened): every VU runs
/// (in one worker or another), the merged
/// report's turns are the sum of the workers', and its `final_ping` histogram
/// is exactly the Python reader's merge of the workers' `.hlog` files.
#[test]
fn workers_merge_equals_the_python_merge_of_their_hlogs() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = std::fs::read_to_string(repo("scenarios/quickstart.yaml"))
        .unwrap()
        .replace("think: 500ms..1500ms", "think: 10ms..30ms")
        .replace("think: 1s..2s", "think: 5ms");
    let scenario = dir.path().join("quickstart.yaml");
    std::fs::write(&scenario, quickstart).unwrap();
    let out_dir = dir.path().join("r");
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_finalping"))
            .arg("run")
            .arg(&scenario)
            .args([
                "--workers",
                "3",
                "--duration",
                "3s",
                "--set",
                "load.ramp_up=1s",
            ])
            .arg("--out")
            .arg(&out_dir)
            .args(["--quiet", "--self-check", "warn"]),
        "finalping run --workers 3",
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let merged = read(out_dir.join("summary.json"));
    let segments: Vec<PathBuf> = (0..3)
        .map(|i| out_dir.join(format!("segment-{i}-of-3")))
        .collect();
    let turns: u64 = segments
        .iter()
        .map(|d| {
            read(d.join("summary.json"))["counters"]["turns_ok"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(turns > 200, "{turns}");
    assert_eq!(merged["counters"]["turns_ok"], turns, "{merged}");
    assert_eq!(merged["peak_vus"], 200, "{merged}");

    let parts: Vec<PathBuf> = segments.iter().map(|d| d.join("final_ping.hlog")).collect();
    let want = python_buckets(&parts);
    let got = python_buckets(&[out_dir.join("final_ping.hlog")]);
    assert_eq!(got, want, "merged buckets = sum of the workers' buckets");
    let total: u64 = want.values().sum();
    assert_eq!(merged["metrics"]["final_ping"]["count"], total);
    for (q, field) in [(0.5, "p50_ms"), (0.99, "p99_ms")] {
        let rank = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        let decoded = want
            .iter()
            .find(|(_, n)| {
                seen += **n;
                seen >= rank
            })
            .map(|(v, _)| *v)
            .unwrap();
        let summary = ms_to_us(merged["metrics"]["final_ping"][field].as_f64().unwrap());
        assert!(
            close(decoded, summary),
            "{field}: Python merge {decoded} µs vs merged summary {summary} µs"
        );
    }
}
