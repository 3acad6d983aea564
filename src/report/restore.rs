//! Rebuilding the report of a run that never wrote its final reports (killed
//! with `kill -9`, a lost pod): its folder still holds the `summary.json`
//! written at the start (status `incomplete`) and the live files appended
//! every interval, `timeseries.csv` and the `.hlog` files. From them this
//! module makes a [`RunReport`] with its timeline: latency metrics exact up
//! to the last complete interval (from the `.hlog` histograms), turn and
//! update counts and generator gauges from `timeseries.csv`. It stays marked
//! incomplete; other counters and failure causes were never written live and
//! are left out (the reason says so). A last line cut off by the kill is
//! skipped.

use super::{hlog_file_name, RunReport, TIMESERIES_FILE};
use crate::metrics::{Counter, Gauges, Metric, Snapshot, Timeline};
use crate::report::RunStatus;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Counters `timeseries.csv` holds (the rest are not in the rebuilt report).
const KNOWN_COUNTERS: [Counter; 4] = [
    Counter::TurnsSent,
    Counter::TurnsOk,
    Counter::Outputs,
    Counter::UpdatesOk,
];

/// One `timeseries.csv` row, parsed.
struct Row {
    start: Duration,
    end: Duration,
    turns_started: u64,
    turns_completed: u64,
    turns_failed: u64,
    outputs: u64,
    updates_completed: u64,
    updates_failed: u64,
    gauges: Gauges,
}

/// Rebuilds the report of an incomplete run from the files in `dir`;
/// `started` is the `summary.json` the run wrote at its start.
pub fn restore(dir: &Path, started: &RunReport) -> Result<RunReport, String> {
    let rows = read_rows(&dir.join(TIMESERIES_FILE))?;
    let mut hlogs = BTreeMap::new();
    for metric in Metric::ALL {
        let path = dir.join(hlog_file_name(metric));
        if path.is_file() {
            hlogs.insert(metric, read_hlog(&path)?);
        }
    }
    // Only intervals that made it into every file.
    let n = hlogs
        .values()
        .map(Vec::len)
        .chain(std::iter::once(rows.len()))
        .min()
        .unwrap_or(0);
    let run_start = chrono::DateTime::parse_from_rfc3339(&started.started_at)
        .map(SystemTime::from)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let tick = rows
        .first()
        .map_or(Duration::from_secs(1), |r| r.end.saturating_sub(r.start));
    let mut timeline = Timeline::new(run_start, tick);
    let mut totals = Snapshot::new();
    let (mut turns_failed, mut updates_failed) = (0u64, 0u64);
    for (i, row) in rows.iter().take(n).enumerate() {
        let mut s = Snapshot::new();
        for (metric, hists) in &hlogs {
            s.add_histogram(*metric, &hists[i]).map_err(|e| {
                format!(
                    "{}.hlog, interval {}: a histogram outside 1 µs … 1 h ({e:?}); was the file written by finalping?",
                    metric.name(),
                    i + 1
                )
            })?;
        }
        s.add(Counter::TurnsSent, row.turns_started);
        s.add(Counter::TurnsOk, row.turns_completed);
        s.add(Counter::Outputs, row.outputs);
        s.add(
            Counter::UpdatesOk,
            row.updates_completed.saturating_sub(row.updates_failed),
        );
        // The timeline needs failures in some counter to chart them; the
        // report below does not claim this breakdown.
        s.add(Counter::TurnsError, row.turns_failed);
        s.add(Counter::UpdatesRejected, row.updates_failed);
        turns_failed += row.turns_failed;
        updates_failed += row.updates_failed;
        timeline.push(row.start, row.end, &s, row.gauges);
        totals.merge(&s);
    }
    let duration = rows
        .get(n.wrapping_sub(1))
        .map_or(0.0, |r| r.end.as_secs_f64());
    let peak_vus = rows
        .iter()
        .take(n)
        .map(|r| r.gauges.active_vus)
        .max()
        .unwrap_or(0);
    let reason = format!(
        "incomplete: the run stopped without writing its final reports (killed?); rebuilt by \
         `finalping report` from the {n} intervals ({duration:.1} s) in timeseries.csv and the \
         .hlog files: latencies are exact up to the last interval; turns, outputs and updates \
         come from timeseries.csv; other counters and failure causes were not recorded"
    );
    let mut report = RunReport::new(
        started.run_id.clone(),
        &totals,
        RunStatus::Incomplete,
        reason,
        started.started_at.clone(),
        duration,
        peak_vus,
        started.generator,
        started.self_check.clone(),
        started.manifest.clone(),
    );
    report
        .counters
        .retain(|name, _| KNOWN_COUNTERS.iter().any(|c| c.name() == name));
    report.errors.clear();
    if turns_failed > 0 {
        report
            .errors
            .insert("turn_failed (cause not recorded)".to_string(), turns_failed);
    }
    if updates_failed > 0 {
        report.errors.insert(
            "update_failed (cause not recorded)".to_string(),
            updates_failed,
        );
    }
    report.timeline = Some(Arc::new(timeline));
    Ok(report)
}

fn read_rows(path: &Path) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let header = reader
        .headers()
        .map_err(|e| format!("{}: no header: {e}", path.display()))?
        .clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{}: no `{name}` column", path.display()))
    };
    use super::timeseries::{COUNT_COLUMNS, GAUGE_COLUMNS};
    let mut idx = [0usize; COUNT_COLUMNS.len() + GAUGE_COLUMNS.len()];
    for (i, name) in COUNT_COLUMNS.iter().chain(&GAUGE_COLUMNS).enumerate() {
        idx[i] = col(name)?;
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        // A row cut off by the kill ends the usable part.
        let Ok(record) = record else { break };
        if record.len() != header.len() {
            break;
        }
        let num = |i: usize| record.get(idx[i]).and_then(|v| v.parse::<f64>().ok());
        let Some(v) = (0..idx.len()).map(num).collect::<Option<Vec<f64>>>() else {
            break;
        };
        let secs = |x: f64| Duration::try_from_secs_f64(x).unwrap_or_default();
        rows.push(Row {
            start: secs(v[0]),
            end: secs(v[1]),
            turns_started: v[3] as u64,
            turns_completed: v[4] as u64,
            turns_failed: v[5] as u64,
            outputs: v[6] as u64,
            updates_completed: v[7] as u64,
            updates_failed: v[8] as u64,
            gauges: Gauges {
                active_vus: v[2] as u64,
                cpu_percent: v[9],
                rss_kib: (v[10] * 1024.0) as u64,
                scheduler_lag_p99_us: (v[11] * 1000.0) as u64,
            },
        });
    }
    Ok(rows)
}

/// The interval histograms of an `.hlog` file, up to the first line that
/// does not parse or decode (a line cut off by the kill).
fn read_hlog(path: &Path) -> Result<Vec<Histogram<u64>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut decoder = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let Ok(LogEntry::Interval(line)) = entry else {
            if entry.is_err() {
                break;
            }
            continue;
        };
        use base64::Engine;
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(line.encoded_histogram())
        else {
            break;
        };
        let Ok(h) = decoder.deserialize::<u64, _>(&mut &raw[..]) else {
            break;
        };
        out.push(h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ClosedInterval, IntervalSink};
    use crate::report::LiveFiles;

    /// Live files of three intervals, the last line of final_ping.hlog cut
    /// off: two intervals come back, with their exact histograms.
    #[test]
    fn rebuilds_the_complete_intervals_of_the_live_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = LiveFiles::create(dir.path(), true, true).unwrap();
        let mut t = Timeline::new(SystemTime::now(), Duration::from_secs(1));
        let mut want = Snapshot::new();
        for i in 0..3u64 {
            let mut s = Snapshot::new();
            for ms in 1..=(10 * (i + 1)) {
                s.record(Metric::FinalPing, Duration::from_millis(ms));
            }
            s.add(Counter::TurnsSent, 10 * (i + 1));
            s.add(Counter::TurnsOk, 10 * (i + 1) - 1);
            s.add(Counter::TurnsTimeout, 1);
            t.push(
                Duration::from_secs(i),
                Duration::from_secs(i + 1),
                &s,
                Gauges::default(),
            );
            files.interval(&ClosedInterval {
                timeline: &t,
                drained: &s,
                backlog: 0,
                chat_sockets: 0,
                runtime_sockets: 0,
                last: false,
            });
            if i < 2 {
                want.merge(&s);
            }
        }
        drop(files); // waits for the writer thread
        let hlog = dir.path().join("final_ping.hlog");
        let text = std::fs::read_to_string(&hlog).unwrap();
        std::fs::write(&hlog, &text[..text.len() - 20]).unwrap();

        let mut started = crate::report::RunReport::new(
            "r".into(),
            &Snapshot::new(),
            RunStatus::Incomplete,
            String::new(),
            "2026-01-01T00:00:00.000Z".into(),
            0.0,
            0,
            Default::default(),
            crate::metrics::selfcheck::SelfCheck::new(Default::default()).summary(),
            test_manifest(),
        );
        started.scenario = "s".into();
        let r = restore(dir.path(), &started).unwrap();
        assert_eq!(r.status, RunStatus::Incomplete);
        assert!(
            r.status_reason.contains("2 intervals"),
            "{}",
            r.status_reason
        );
        assert_eq!(r.counters["turns_sent"], 30);
        assert_eq!(r.counters["turns_ok"], 28);
        assert!(!r.counters.contains_key("turns_timeout"));
        assert_eq!(r.errors["turn_failed (cause not recorded)"], 2);
        assert_eq!(r.metrics["final_ping"], want.summary(Metric::FinalPing));
        assert_eq!(r.timeline.as_ref().map(|t| t.len()), Some(2));
        assert!((r.duration_s - 2.0).abs() < 1e-9);
    }

    fn test_manifest() -> crate::report::Manifest {
        serde_json::from_value(serde_json::json!({
            "finalping_version": "0", "scenario_name": "s", "scenario_file": "s.yaml",
            "scenario_sha256": "", "seed": 1, "host": "h", "os": "linux", "cpus": 2,
            "command_line": "", "emulator": null,
            "target": { "kind": "socketio", "url": "u", "embedded_emulator": true, "eio": 4,
                "emit_with_ack": false, "test_mode": false, "inner_handshake": false,
                "channel": "c", "url_token": "", "connect_timeout": "5s" },
            "load": { "model": "closed", "executor": "constant-vus", "scenarios": [],
                "stages": [], "rate": null, "arrival": "uniform", "vus": 1, "duration": null,
                "iterations": null, "ramp_up": "0s", "grace": "0s" }
        }))
        .expect("manifest")
    }
}
