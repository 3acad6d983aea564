//! `histograms.json`: the run's lossless data, always written beside
//! `summary.json`, so that `finalping merge` can add segment runs up exactly.
//! Every latency histogram of the run — whole run, per tag and per collector
//! interval — as an HdrHistogram V2 compressed (deflate) histogram in standard
//! base64 (the payload of a `.hlog` line, readable by any HdrHistogram
//! library), plus the per-interval counters and generator gauges behind
//! `timeseries.csv`. The whole-run counters and failure causes are exact in
//! `summary.json` and are not repeated. This module writes and reads the file;
//! it does not merge.
//!
//! ```text
//! {
//!   "format": "finalping-histograms", "version": 1,
//!   "encoding": "HdrHistogram V2 compressed (deflate), base64; values in µs, 1 µs … 1 h, 3 significant digits",
//!   "run_start_unix_us": 1765112345123456,   // wall clock of interval offset 0
//!   "interval_us": 1000000,                  // nominal collector interval
//!   "metrics": {"final_ping": "HISTFAAA…", …},              // whole run, metrics with samples
//!   "tags": {"scenario=a": {"final_ping": "HISTFAAA…"}, "scenario=a,step=b": {…}},
//!   "intervals": [
//!     {"start_us": 0, "end_us": 1000113,              // offsets from run_start
//!      "counters": {"turns_sent": 12, "turns_ok": 11}, // increases, non-zero only
//!      "gauges": {"active_vus": 8, "cpu_percent": 12.5, "rss_kib": 20480, "scheduler_lag_p99_us": 310},
//!      "metrics": {"final_ping": "HISTFAAA…"}}, …]
//! }
//! ```
//! Every sample of the run is in exactly one interval, so the intervals of a
//! metric add up to its whole-run histogram.

use super::{Exporter, RunReport};
use crate::metrics::{Counter, Gauges, Metric, Snapshot, Timeline, TAGGED};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// File name inside the run folder.
pub const HISTOGRAMS_FILE: &str = "histograms.json";
/// `format` field of the file.
pub const HISTOGRAMS_FORMAT: &str = "finalping-histograms";
/// `version` field of the file; bump on any incompatible change.
pub const HISTOGRAMS_VERSION: u32 = 1;
const ENCODING: &str =
    "HdrHistogram V2 compressed (deflate), base64; values in µs, 1 µs … 1 h, 3 significant digits";

/// The whole-run totals of a run with the names of its tags (tag id = index):
/// what `histograms.json` is written from. Not part of `summary.json`.
#[derive(Debug, Clone)]
pub struct Totals {
    pub snapshot: Snapshot,
    pub tag_names: Vec<String>,
}

/// The file as stored (histograms as base64 strings).
#[derive(Debug, Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    encoding: String,
    run_start_unix_us: u64,
    interval_us: u64,
    metrics: BTreeMap<String, String>,
    #[serde(default)]
    tags: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    intervals: Vec<FileInterval>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileInterval {
    start_us: u64,
    end_us: u64,
    #[serde(default)]
    counters: BTreeMap<String, u64>,
    #[serde(default)]
    gauges: Gauges,
    #[serde(default)]
    metrics: BTreeMap<String, String>,
}

/// A run's lossless data, decoded.
#[derive(Debug, Clone)]
pub struct RunHistograms {
    /// Whole-run histograms of the metrics with samples.
    pub metrics: BTreeMap<Metric, Histogram<u64>>,
    /// Per tag name, the histograms of its tagged metrics with samples.
    pub tags: BTreeMap<String, BTreeMap<Metric, Histogram<u64>>>,
    /// The per-interval history (histograms, counter increases, gauges).
    pub timeline: Timeline,
}

pub struct HistogramsJson;

impl Exporter for HistogramsJson {
    fn file_name(&self) -> &'static str {
        HISTOGRAMS_FILE
    }

    fn write(&self, report: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        let totals = report
            .totals
            .as_deref()
            .ok_or_else(|| std::io::Error::other("the report holds no run totals"))?;
        let file = to_file(report.timeline.as_deref(), totals).map_err(std::io::Error::other)?;
        serde_json::to_writer(&mut *out, &file)?;
        writeln!(out)
    }

    /// Only a run that holds its totals (not a report regenerated from summary.json).
    fn wanted(&self, report: &RunReport) -> bool {
        report.totals.is_some()
    }
}

fn encode(h: &Histogram<u64>, metric: Metric) -> Result<String, String> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| format!("cannot encode the `{}` histogram: {e:?}", metric.name()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn to_file(timeline: Option<&Timeline>, totals: &Totals) -> Result<File, String> {
    let snap = &totals.snapshot;
    let metrics = Metric::ALL
        .iter()
        .filter(|m| !snap.histogram(**m).is_empty())
        .map(|m| Ok((m.name().to_string(), encode(snap.histogram(*m), *m)?)))
        .collect::<Result<_, String>>()?;
    let mut tags = BTreeMap::new();
    for (id, data) in snap.tags() {
        let Some(name) = totals.tag_names.get(usize::from(id)) else {
            continue;
        };
        let hists: BTreeMap<String, String> = TAGGED
            .iter()
            .filter_map(|m| Some((*m, data.histogram(*m)?)))
            .map(|(m, h)| Ok((m.name().to_string(), encode(h, m)?)))
            .collect::<Result<_, String>>()?;
        if !hists.is_empty() {
            tags.insert(name.clone(), hists);
        }
    }
    let run_start = timeline.map_or(SystemTime::UNIX_EPOCH, Timeline::run_start);
    let mut intervals = Vec::new();
    for i in timeline.map(Timeline::intervals).unwrap_or_default() {
        let mut metrics = BTreeMap::new();
        for m in Metric::ALL {
            if let Some(bytes) = i.encoded_histogram(m).map_err(|e| e.to_string())? {
                let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                metrics.insert(m.name().to_string(), text);
            }
        }
        intervals.push(FileInterval {
            start_us: micros(i.start()),
            end_us: micros(i.end()),
            counters: Counter::ALL
                .iter()
                .filter(|c| i.counter(**c) > 0)
                .map(|c| (c.name().to_string(), i.counter(*c)))
                .collect(),
            gauges: i.gauges(),
            metrics,
        });
    }
    Ok(File {
        format: HISTOGRAMS_FORMAT.to_string(),
        version: HISTOGRAMS_VERSION,
        encoding: ENCODING.to_string(),
        run_start_unix_us: micros(
            run_start
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        ),
        interval_us: micros(timeline.map_or(Duration::ZERO, Timeline::interval)),
        metrics,
        tags,
        intervals,
    })
}

fn metric_named(name: &str) -> Result<Metric, String> {
    Metric::named(name)
        .ok_or_else(|| format!("unknown metric `{name}` (written by another finalping version?)"))
}

fn counter_named(name: &str) -> Result<Counter, String> {
    Counter::named(name)
        .ok_or_else(|| format!("unknown counter `{name}` (written by another finalping version?)"))
}

/// Decodes one base64 V2 histogram and checks it has the project-wide bounds,
/// so that it adds exactly to ours.
fn decode(text: &str, what: &str) -> Result<Histogram<u64>, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("{what}: bad base64: {e}"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &raw[..])
        .map_err(|e| format!("{what}: bad HdrHistogram V2 data: {e:?}"))?;
    let reference = crate::metrics::new_histogram();
    if h.low() != reference.low()
        || h.high() != reference.high()
        || h.sigfig() != reference.sigfig()
    {
        return Err(format!(
            "{what}: histogram bounds {}…{} µs at {} digits, expected {}…{} at {}",
            h.low(),
            h.high(),
            h.sigfig(),
            reference.low(),
            reference.high(),
            reference.sigfig()
        ));
    }
    Ok(h)
}

fn decode_map(
    map: &BTreeMap<String, String>,
    place: &str,
) -> Result<BTreeMap<Metric, Histogram<u64>>, String> {
    map.iter()
        .map(|(name, text)| {
            let m = metric_named(name).map_err(|e| format!("{place}: {e}"))?;
            Ok((m, decode(text, &format!("{place} `{name}`"))?))
        })
        .collect()
}

/// Reads and decodes `histograms.json`; the error says what is wrong and where
/// (not the path: the caller names the file).
pub fn parse_histograms(text: &str) -> Result<RunHistograms, String> {
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if file.format != HISTOGRAMS_FORMAT || file.version != HISTOGRAMS_VERSION {
        return Err(format!(
            "format `{}` version {}, expected `{HISTOGRAMS_FORMAT}` version {HISTOGRAMS_VERSION}",
            file.format, file.version
        ));
    }
    let metrics = decode_map(&file.metrics, "metrics")?;
    let tags = file
        .tags
        .iter()
        .map(|(tag, map)| Ok((tag.clone(), decode_map(map, &format!("tags `{tag}`"))?)))
        .collect::<Result<_, String>>()?;
    let run_start = SystemTime::UNIX_EPOCH + Duration::from_micros(file.run_start_unix_us);
    let mut timeline = Timeline::new(run_start, Duration::from_micros(file.interval_us));
    for (n, i) in file.intervals.iter().enumerate() {
        let place = format!("interval {}", n + 1);
        let mut snap = Snapshot::new();
        for (name, n) in &i.counters {
            snap.add(
                counter_named(name).map_err(|e| format!("{place}: {e}"))?,
                *n,
            );
        }
        for (m, h) in decode_map(&i.metrics, &place)? {
            snap.add_histogram(m, &h)
                .map_err(|e| format!("{place} `{}`: {e:?}", m.name()))?;
        }
        timeline.push(
            Duration::from_micros(i.start_us),
            Duration::from_micros(i.end_us),
            &snap,
            i.gauges,
        );
    }
    Ok(RunHistograms {
        metrics,
        tags,
        timeline,
    })
}

/// Reads `histograms.json` of a run folder; errors name the file.
pub fn read_histograms(dir: &Path) -> Result<RunHistograms, String> {
    let path = dir.join(HISTOGRAMS_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse_histograms(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_refuses_other_bounds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        h.record(5).unwrap();
        let mut buf = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut buf).unwrap();
        let text = base64::engine::general_purpose::STANDARD.encode(buf);
        let err = decode(&text, "x").unwrap_err();
        assert!(err.contains("bounds"), "{err}");
        assert!(decode("@@", "x").unwrap_err().contains("base64"));
    }

    #[test]
    fn unknown_version_is_refused() {
        let err = parse_histograms(
            r#"{"format":"finalping-histograms","version":9,"encoding":"","run_start_unix_us":0,"interval_us":0,"metrics":{}}"#,
        )
        .unwrap_err();
        assert!(err.contains("version 9"), "{err}");
    }

    #[test]
    fn a_written_file_reads_back_exactly() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_micros(1_765_000_000_123_456);
        let mut timeline = Timeline::new(start, Duration::from_millis(500));
        let mut totals = Snapshot::new();
        for i in 0..3u64 {
            let mut s = Snapshot::new();
            for k in 0..50 * (i + 1) {
                s.record_tagged(
                    Metric::FinalPing,
                    &[0, 1],
                    Duration::from_micros(1000 + 37 * k),
                );
            }
            s.record(Metric::Connect, Duration::from_micros(400 + i));
            s.add_tagged(Counter::TurnsOk, &[0], 50 * (i + 1));
            let gauges = Gauges {
                active_vus: i,
                cpu_percent: 1.5,
                rss_kib: 100,
                scheduler_lag_p99_us: 7,
            };
            let from = Duration::from_millis(500 * i);
            timeline.push(from, from + Duration::from_millis(500), &s, gauges);
            totals.merge(&s);
        }
        let tag_names = vec!["scenario=a".to_string(), "scenario=a,step=b".to_string()];
        let file = to_file(
            Some(&timeline),
            &Totals {
                snapshot: totals.clone(),
                tag_names: tag_names.clone(),
            },
        )
        .unwrap();
        let text = serde_json::to_string(&file).unwrap();
        let back = parse_histograms(&text).unwrap();
        assert_eq!(
            &back.metrics[&Metric::FinalPing],
            totals.histogram(Metric::FinalPing)
        );
        assert_eq!(
            &back.metrics[&Metric::Connect],
            totals.histogram(Metric::Connect)
        );
        assert!(!back.metrics.contains_key(&Metric::OutputGap));
        for (id, name) in tag_names.iter().enumerate() {
            let want = totals
                .tag(id as u16)
                .and_then(|t| t.histogram(Metric::FinalPing))
                .unwrap();
            assert_eq!(&back.tags[name][&Metric::FinalPing], want);
        }
        assert_eq!(back.timeline.run_start(), start);
        assert_eq!(back.timeline.interval(), Duration::from_millis(500));
        assert_eq!(back.timeline.len(), 3);
        for (a, b) in back.timeline.intervals().iter().zip(timeline.intervals()) {
            assert_eq!(
                (a.start(), a.end(), a.gauges()),
                (b.start(), b.end(), b.gauges())
            );
            assert_eq!(a.counter(Counter::TurnsOk), b.counter(Counter::TurnsOk));
            assert_eq!(
                a.histogram(Metric::FinalPing).unwrap(),
                b.histogram(Metric::FinalPing).unwrap()
            );
        }
        assert_eq!(
            &back.timeline.merged(Metric::FinalPing).unwrap(),
            totals.histogram(Metric::FinalPing)
        );
    }
}
