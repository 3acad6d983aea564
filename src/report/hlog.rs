//! `<metric>.hlog`: one standard HdrHistogram interval log per latency metric
//! that had samples, written from a [`Timeline`] with the `hdrhistogram`
//! crate's interval log writer (V2 compressed histograms, base64), so the
//! HdrHistogram tools (Java `HistogramLogProcessor`, Python `hdrh`, the Rust
//! `IntervalLogIterator`, HdrHistogram plotters) read it. It only formats.
//!
//! Layout of a file:
//! ```text
//! #[Logged with finalping 0.1.0]
//! #[Histogram log format version 1.3]
//! #[Metric: final_ping]
//! #[Values are in microseconds; the Interval_Max column is in milliseconds (MaxValueDivisor 1000)]
//! #[StartTime: 1760000000.123 (seconds since epoch)]
//! #[BaseTime: 1760000000.123 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! #[MaxValueDivisor: 1000.000]
//! 0.000,1.000,42.015,HISTFAAAA…
//! 1.000,1.001,39.999,HISTFAAAA…
//! ```
//! StartTime and BaseTime are both the run start, so each line's timestamp is
//! seconds since the run start (the same `t_start_s` as `timeseries.csv`).
//! Every interval of the run gets a line, with an empty histogram where the
//! metric had no samples, so all `.hlog` files of a run share one time axis.
//! (The Rust writer emits `#[MaxValueDivisor]` only when it starts writing
//! intervals, hence its place after the legend; readers treat it as a comment.)

use crate::metrics::{new_histogram, Interval, Metric, Timeline};
use base64::Engine;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Histogram values are µs; the per-line max column is divided by this (→ ms).
const MAX_VALUE_DIVISOR: f64 = 1000.0;

const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// `final_ping.hlog`, …
pub fn hlog_file_name(metric: Metric) -> String {
    format!("{}.hlog", metric.name())
}

/// Writes the interval log of one metric into `out` (every interval of the
/// timeline, empty histograms where it had no samples).
pub fn write_hlog(timeline: &Timeline, metric: Metric, out: &mut dyn Write) -> io::Result<()> {
    write_hlog_header(timeline.run_start(), metric, out)?;
    let mut line = HlogLine::new();
    for interval in timeline.intervals() {
        line.write(interval, metric, out)?;
    }
    Ok(())
}

/// The comment header, StartTime/BaseTime (`run_start`), the column legend
/// and the MaxValueDivisor note: everything before the first interval line.
pub fn write_hlog_header(
    run_start: SystemTime,
    metric: Metric,
    mut out: &mut dyn Write,
) -> io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "[Logged with finalping {}]",
            env!("CARGO_PKG_VERSION")
        ))
        .add_comment("[Histogram log format version 1.3]")
        .add_comment(&format!("[Metric: {}]", metric.name()))
        .add_comment(
            "[Values are in microseconds; the Interval_Max column is in milliseconds \
             (MaxValueDivisor 1000)]",
        )
        .with_start_time(run_start)
        .with_base_time(run_start)
        .begin_log_with(&mut out, &mut serializer)?;
    out.write_all(LEGEND.as_bytes())?;
    IntervalLogWriterBuilder::new()
        .with_max_value_divisor(MAX_VALUE_DIVISOR)
        .begin_log_with(&mut out, &mut serializer)?;
    Ok(())
}

/// Writes interval lines (`start,length,max,histogram`), the same bytes the
/// `hdrhistogram` interval log writer produces. A line carries the interval's
/// stored V2 compressed encoding as it is (no decoding and re-encoding); the
/// encoding of an empty histogram is made once and kept.
#[derive(Default)]
pub struct HlogLine {
    empty: Option<Vec<u8>>,
}

impl HlogLine {
    pub fn new() -> HlogLine {
        HlogLine::default()
    }

    /// The line of `metric` in `interval` (an empty histogram if it had no samples).
    pub fn write(
        &mut self,
        interval: &Interval,
        metric: Metric,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let stored = interval
            .encoded_histogram(metric)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let (bytes, max_us) = match (&stored, interval.stats(metric)) {
            (Some(bytes), Some(stats)) => (bytes.as_ref(), stats.max_us),
            _ => (self.empty_encoding(metric)?, 0),
        };
        writeln!(
            out,
            "{:.3},{:.3},{:.3},{}",
            interval.start().as_secs_f64(),
            interval.length().as_secs_f64(),
            max_us as f64 / MAX_VALUE_DIVISOR,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    fn empty_encoding(&mut self, metric: Metric) -> io::Result<&[u8]> {
        if self.empty.is_none() {
            let mut bytes = Vec::new();
            V2DeflateSerializer::new()
                .serialize(&new_histogram(), &mut bytes)
                .map_err(|e| io::Error::other(format!("{} interval log: {e:?}", metric.name())))?;
            self.empty = Some(bytes);
        }
        Ok(self.empty.as_deref().unwrap_or_default())
    }
}

/// Writes `<metric>.hlog` into `dir` (created if missing) for every metric with
/// at least one sample; returns the paths written. Errors name the file.
pub fn write_hlogs(timeline: &Timeline, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let named = |path: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| named(dir, e))?;
    let mut written = Vec::new();
    for metric in timeline.metrics_with_samples() {
        let path = dir.join(hlog_file_name(metric));
        crate::fsio::write_atomic_with(&path, |w| write_hlog(timeline, metric, w))
            .map_err(|e| named(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Gauges, Snapshot};
    use std::time::{Duration, SystemTime};

    #[test]
    fn header_legend_and_one_line_per_interval() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let mut t = Timeline::new(start, Duration::from_secs(1));
        let mut s = Snapshot::new();
        s.record(Metric::Connect, Duration::from_micros(12_345));
        t.push(
            Duration::ZERO,
            Duration::from_secs(1),
            &s,
            Gauges::default(),
        );
        t.push(
            Duration::from_secs(1),
            Duration::from_millis(2500),
            &Snapshot::new(),
            Gauges::default(),
        );
        let mut out = Vec::new();
        write_hlog(&t, Metric::Connect, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"#[StartTime: 1700000000.250 (seconds since epoch)]"));
        assert!(lines.contains(&"#[BaseTime: 1700000000.250 (seconds since epoch)]"));
        assert!(lines.contains(&"#[Metric: connect]"));
        assert!(lines.contains(&LEGEND.trim_end()));
        let data: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.starts_with('#') && !l.starts_with('"'))
            .collect();
        assert_eq!(data.len(), 2, "{text}");
        // start, length, max in ms (12 345 µs, highest equivalent at 3 digits), payload
        assert!(
            data[0].starts_with("0.000,1.000,12.351,HISTF"),
            "{}",
            data[0]
        );
        assert!(
            data[1].starts_with("1.000,1.500,0.000,HISTF"),
            "{}",
            data[1]
        );
    }

    #[test]
    fn only_metrics_with_samples_get_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Timeline::new(SystemTime::now(), Duration::from_secs(1));
        let mut s = Snapshot::new();
        s.record(Metric::FinalPing, Duration::from_millis(3));
        t.push(
            Duration::ZERO,
            Duration::from_secs(1),
            &s,
            Gauges::default(),
        );
        let written = write_hlogs(&t, &dir.path().join("run")).unwrap();
        assert_eq!(
            written,
            vec![dir.path().join("run").join("final_ping.hlog")]
        );
        assert!(!dir.path().join("run").join("connect.hlog").exists());
    }
}
