//! Reads what `finalping compare` needs from a finished run: `summary.json`
//! (run id, scenario, status) and the interval histograms of every
//! `<metric>.hlog` next to it. Errors name the file and what to do.

use crate::report::RunReport;
use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a run folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read: {source} (pass a run's report folder, e.g. reports/<run-id>/, or its summary.json)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a finalping summary.json: {why}", path.display())]
    Summary { path: PathBuf, why: String },
    #[error("{}: malformed HdrHistogram interval log: {why}", path.display())]
    Hlog { path: PathBuf, why: String },
}

/// One run as compare sees it.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The report folder.
    pub dir: PathBuf,
    pub run_id: String,
    pub scenario: String,
    /// `passed`, `failed`, `invalid`, `interrupted`.
    pub status: String,
    /// Per metric with a `.hlog` file: its non-empty interval histograms (µs).
    pub intervals: BTreeMap<String, Vec<Histogram<u64>>>,
}

/// Reads a report folder (or the folder of a given `summary.json`).
pub fn load_run(path: &Path) -> Result<RunData, LoadError> {
    let dir = if path.is_file() {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        path.to_path_buf()
    };
    let summary_path = dir.join("summary.json");
    let text = std::fs::read_to_string(&summary_path).map_err(|source| LoadError::Read {
        path: summary_path.clone(),
        source,
    })?;
    let summary: RunReport = serde_json::from_str(&text).map_err(|e| LoadError::Summary {
        path: summary_path.clone(),
        why: format!("{e} (schema_version {})", crate::report::SCHEMA_VERSION),
    })?;
    let names: Vec<String> = summary.metrics.keys().cloned().collect();
    let mut intervals = BTreeMap::new();
    for name in names {
        let hlog = dir.join(format!("{name}.hlog"));
        if !hlog.is_file() {
            continue;
        }
        let bytes = std::fs::read(&hlog).map_err(|source| LoadError::Read {
            path: hlog.clone(),
            source,
        })?;
        let hists = read_hlog(&bytes).map_err(|why| LoadError::Hlog {
            path: hlog.clone(),
            why,
        })?;
        intervals.insert(name, hists);
    }
    Ok(RunData {
        dir,
        run_id: summary.run_id,
        scenario: summary.scenario,
        status: summary.status.as_str().to_string(),
        intervals,
    })
}

/// The non-empty interval histograms of an interval log.
pub fn read_hlog(bytes: &[u8]) -> Result<Vec<Histogram<u64>>, String> {
    let mut out = Vec::new();
    let mut deser = Deserializer::new();
    for (n, entry) in IntervalLogIterator::new(bytes).enumerate() {
        let entry = entry.map_err(|e| format!("entry {}: {e:?}", n + 1))?;
        if let LogEntry::Interval(ilh) = entry {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(ilh.encoded_histogram())
                .map_err(|e| format!("interval {}: bad base64: {e}", n + 1))?;
            let h: Histogram<u64> = deser
                .deserialize(&mut &raw[..])
                .map_err(|e| format!("interval {}: bad histogram: {e:?}", n + 1))?;
            if !h.is_empty() {
                out.push(h);
            }
        }
    }
    Ok(out)
}
