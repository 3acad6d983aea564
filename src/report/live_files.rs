//! Report files written while the run runs, so that a run killed with
//! `kill -9` (or a lost pod) leaves everything up to its last interval:
//! `timeseries.csv` gets its header at the start and one row per interval,
//! each `<metric>.hlog` is created when its metric first has samples (with
//! empty lines for the intervals before, so all files share one time axis)
//! and gets one line per interval. The interval writer's thread formats the
//! lines (shared with [`super::timeseries`] and [`super::hlog`]); a
//! dedicated thread appends them and flushes them to the OS, so a slow disk never stalls the
//! runtime the VUs run on. Dropping [`LiveFiles`] waits for that thread, so
//! the end-of-run `write_all`, which rewrites the same files from the whole
//! timeline, never races it. A write error is reported once and stops the
//! live files, never the run.

use super::hlog::{hlog_file_name, write_hlog_header, HlogLine};
use super::timeseries::{timeseries_header, timeseries_row, TIMESERIES_FILE};
use super::ReportError;
use crate::engine::{ClosedInterval, IntervalSink};
use crate::metrics::{Metric, Timeline};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Bytes to append to one file of the run folder.
struct Append {
    file: String,
    /// Create (truncate) the file first.
    create: bool,
    bytes: Vec<u8>,
}

/// Appends `timeseries.csv` rows and `.hlog` lines interval by interval.
pub struct LiveFiles {
    timeseries: bool,
    hlog: bool,
    /// Metrics whose `.hlog` exists.
    hlogs: BTreeSet<Metric>,
    line: HlogLine,
    writer: Option<(mpsc::Sender<Append>, std::thread::JoinHandle<()>)>,
}

impl LiveFiles {
    /// Creates `timeseries.csv` (header only) when `timeseries` is set; the
    /// `.hlog` files (when `hlog` is set) follow once their metric has samples.
    pub fn create(dir: &Path, timeseries: bool, hlog: bool) -> Result<LiveFiles, ReportError> {
        if timeseries {
            let path = dir.join(TIMESERIES_FILE);
            let mut header = csv_line(&timeseries_header());
            File::create(&path)
                .and_then(|mut f| f.write_all(&std::mem::take(&mut header)))
                .map_err(|source| ReportError { path, source })?;
        }
        let (tx, rx) = mpsc::channel();
        let folder = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("finalping-live-files".into())
            .spawn(move || append_loop(&folder, rx))
            .map_err(|source| ReportError {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(LiveFiles {
            timeseries,
            hlog,
            hlogs: BTreeSet::new(),
            line: HlogLine::new(),
            writer: Some((tx, thread)),
        })
    }

    /// The appends of the last interval of `timeline`.
    fn appends(&mut self, timeline: &Timeline) -> io::Result<Vec<Append>> {
        let Some(interval) = timeline.intervals().last() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if self.timeseries {
            out.push(Append {
                file: TIMESERIES_FILE.to_string(),
                create: false,
                bytes: csv_line(&timeseries_row(interval)),
            });
        }
        if !self.hlog {
            return Ok(out);
        }
        for metric in Metric::ALL {
            let mut bytes = Vec::new();
            let create = !self.hlogs.contains(&metric);
            if create {
                if interval.stats(metric).is_none() {
                    continue;
                }
                // First samples: header and the (empty) lines of the intervals before.
                write_hlog_header(timeline.run_start(), metric, &mut bytes)?;
                for earlier in &timeline.intervals()[..timeline.len() - 1] {
                    self.line.write(earlier, metric, &mut bytes)?;
                }
                self.hlogs.insert(metric);
            }
            self.line.write(interval, metric, &mut bytes)?;
            out.push(Append {
                file: hlog_file_name(metric),
                create,
                bytes,
            });
        }
        Ok(out)
    }
}

impl IntervalSink for LiveFiles {
    fn interval(&mut self, closed: &ClosedInterval<'_>) {
        let appends = match self.appends(closed.timeline) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("warning: live report files: {e}; they stop here (the final reports are still written at the end)");
                self.writer = None;
                return;
            }
        };
        if let Some((tx, _)) = &self.writer {
            for a in appends {
                // The thread only goes away after a write error (already reported).
                let _ = tx.send(a);
            }
        }
    }
}

impl Drop for LiveFiles {
    fn drop(&mut self) {
        if let Some((tx, thread)) = self.writer.take() {
            drop(tx);
            let _ = thread.join();
        }
    }
}

/// One CSV record as bytes (quoted as the `csv` crate does).
fn csv_line(cells: &[String]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(cells);
    w.into_inner().unwrap_or_default()
}

/// The writer thread: appends and flushes each message; the first error is
/// reported and ends the appending (messages are then drained unread).
fn append_loop(dir: &Path, rx: mpsc::Receiver<Append>) {
    let mut files: BTreeMap<String, File> = BTreeMap::new();
    let mut failed = false;
    for a in rx {
        if failed {
            continue;
        }
        let path: PathBuf = dir.join(&a.file);
        let file = match files.entry(a.file) {
            std::collections::btree_map::Entry::Occupied(f) => Ok(f.into_mut()),
            std::collections::btree_map::Entry::Vacant(v) => {
                let opened = if a.create {
                    File::create(&path)
                } else {
                    std::fs::OpenOptions::new().append(true).open(&path)
                };
                opened.map(|f| v.insert(f))
            }
        };
        if let Err(e) = file.and_then(|f| f.write_all(&a.bytes).and_then(|()| f.flush())) {
            failed = true;
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

    /// After every interval (once the writer thread is done: dropping the
    /// files waits for it) the files on disk equal what the end-of-run
    /// writers produce from the timeline so far.
    #[test]
    fn files_on_disk_match_the_final_writers_after_each_interval() {
        let snapshots: Vec<Snapshot> = (0..4u64)
            .map(|i| {
                let mut s = Snapshot::new();
                if i >= 1 {
                    s.record(Metric::FinalPing, Duration::from_millis(5 + i));
                }
                if i == 2 {
                    s.record(Metric::Connect, Duration::from_millis(3));
                }
                s
            })
            .collect();
        let start = SystemTime::now();
        for n in 1..=snapshots.len() {
            let dir = tempfile::tempdir().unwrap();
            let mut files = LiveFiles::create(dir.path(), true, true).unwrap();
            let mut t = Timeline::new(start, Duration::from_secs(1));
            for (i, s) in snapshots.iter().take(n).enumerate() {
                let i = i as u64;
                t.push(
                    Duration::from_secs(i),
                    Duration::from_secs(i + 1),
                    s,
                    Gauges::default(),
                );
                close(&mut files, &t, s);
            }
            drop(files);
            let mut csv = Vec::new();
            super::super::write_timeseries(&t, &mut csv).unwrap();
            let on_disk = std::fs::read(dir.path().join(TIMESERIES_FILE)).unwrap();
            assert_eq!(on_disk, csv, "timeseries.csv after {n} intervals");
            for m in t.metrics_with_samples() {
                let mut hlog = Vec::new();
                super::super::write_hlog(&t, m, &mut hlog).unwrap();
                let on_disk = std::fs::read(dir.path().join(hlog_file_name(m))).unwrap();
                assert_eq!(on_disk, hlog, "{} after {n} intervals", m.name());
            }
            assert_eq!(dir.path().join("connect.hlog").exists(), n >= 3);
            assert!(!dir.path().join("first_output.hlog").exists());
        }
    }
}
