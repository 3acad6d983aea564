//! Report files written while the run runs, so that a run killed with
//! `kill -9` (or a lost pod) leaves everything up to its last interval:
//! `timeseries.csv` gets its header at the start and one row per interval,
//! each `<metric>.hlog` is created when its metric first has samples (with
//! empty lines for the intervals before, so all files share one time axis)
//! and gets one line per interval. Every interval is flushed to the OS. At
//! the end `write_all` rewrites the same files from the whole timeline.
//! Formatting is shared with [`super::timeseries`] and [`super::hlog`]; this
//! module only appends. A write error is reported once and stops the live
//! files, never the run.

use super::hlog::{hlog_file_name, write_hlog_header, HlogLine};
use super::timeseries::{timeseries_header, timeseries_row, TIMESERIES_FILE};
use super::ReportError;
use crate::engine::{ClosedInterval, IntervalSink};
use crate::metrics::{Metric, Timeline};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Appends `timeseries.csv` rows and `.hlog` lines interval by interval.
pub struct LiveFiles {
    dir: PathBuf,
    timeseries: Option<csv::Writer<File>>,
    hlog: bool,
    hlogs: BTreeMap<Metric, BufWriter<File>>,
    line: HlogLine,
    failed: bool,
}

impl LiveFiles {
    /// Creates `timeseries.csv` (header only) when `timeseries` is set; the
    /// `.hlog` files (when `hlog` is set) follow once their metric has samples.
    pub fn create(dir: &Path, timeseries: bool, hlog: bool) -> Result<LiveFiles, ReportError> {
        let path = dir.join(TIMESERIES_FILE);
        let timeseries = if timeseries {
            let named = |source| ReportError {
                path: path.clone(),
                source,
            };
            let mut w = csv::Writer::from_writer(File::create(&path).map_err(named)?);
            w.write_record(timeseries_header())
                .map_err(io::Error::from)
                .and_then(|()| w.flush())
                .map_err(named)?;
            Some(w)
        } else {
            None
        };
        Ok(LiveFiles {
            dir: dir.to_path_buf(),
            timeseries,
            hlog,
            hlogs: BTreeMap::new(),
            line: HlogLine::new(),
            failed: false,
        })
    }

    fn append(&mut self, timeline: &Timeline) -> Result<(), (PathBuf, io::Error)> {
        let Some(interval) = timeline.intervals().last() else {
            return Ok(());
        };
        if let Some(w) = &mut self.timeseries {
            w.write_record(timeseries_row(interval))
                .map_err(io::Error::from)
                .and_then(|()| w.flush())
                .map_err(|e| (self.dir.join(TIMESERIES_FILE), e))?;
        }
        if !self.hlog {
            return Ok(());
        }
        for metric in Metric::ALL {
            let path = self.dir.join(hlog_file_name(metric));
            let named = |e| (path.clone(), e);
            if !self.hlogs.contains_key(&metric) {
                if interval.stats(metric).is_none() {
                    continue;
                }
                // First samples: header and the (empty) lines of the intervals before.
                let mut w = BufWriter::new(File::create(&path).map_err(named)?);
                write_hlog_header(timeline.run_start(), metric, &mut w).map_err(named)?;
                for earlier in &timeline.intervals()[..timeline.len() - 1] {
                    self.line.write(earlier, metric, &mut w).map_err(named)?;
                }
                self.hlogs.insert(metric, w);
            }
            if let Some(w) = self.hlogs.get_mut(&metric) {
                self.line.write(interval, metric, w).map_err(named)?;
                w.flush().map_err(named)?;
            }
        }
        Ok(())
    }
}

impl IntervalSink for LiveFiles {
    fn interval(&mut self, closed: &ClosedInterval<'_>) {
        if self.failed {
            return;
        }
        if let Err((path, e)) = self.append(closed.timeline) {
            self.failed = true;
            eprintln!(
                "warning: cannot append to {}: {e}; the live report files stop here (the final reports are still written at the end)",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Gauges, Snapshot};
    use std::time::{Duration, SystemTime};

    fn close(files: &mut LiveFiles, t: &Timeline, drained: &Snapshot) {
        files.interval(&ClosedInterval {
            timeline: t,
            drained,
            backlog: 0,
            chat_sockets: 0,
            runtime_sockets: 0,
            last: false,
        });
    }

    /// After every interval the files on disk equal what the end-of-run
    /// writers produce from the timeline so far.
    #[test]
    fn files_on_disk_match_the_final_writers_after_each_interval() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = LiveFiles::create(dir.path(), true, true).unwrap();
        let mut t = Timeline::new(SystemTime::now(), Duration::from_secs(1));
        for i in 0..4u64 {
            let mut s = Snapshot::new();
            if i >= 1 {
                s.record(Metric::FinalPing, Duration::from_millis(5 + i));
            }
            if i == 2 {
                s.record(Metric::Connect, Duration::from_millis(3));
            }
            t.push(
                Duration::from_secs(i),
                Duration::from_secs(i + 1),
                &s,
                Gauges::default(),
            );
            close(&mut files, &t, &s);
            let mut csv = Vec::new();
            super::super::write_timeseries(&t, &mut csv).unwrap();
            let on_disk = std::fs::read(dir.path().join(TIMESERIES_FILE)).unwrap();
            assert_eq!(on_disk, csv, "timeseries.csv after interval {i}");
            for m in t.metrics_with_samples() {
                let mut hlog = Vec::new();
                super::super::write_hlog(&t, m, &mut hlog).unwrap();
                let on_disk = std::fs::read(dir.path().join(hlog_file_name(m))).unwrap();
                assert_eq!(on_disk, hlog, "{} after interval {i}", m.name());
            }
        }
        assert!(dir.path().join("connect.hlog").exists());
        assert!(!dir.path().join("first_output.hlog").exists());
    }
}
