//! Run reports: the [`RunReport`] data every format is made from, one small
//! exporter per file behind the [`Exporter`] trait, [`write_all`] to write them
//! into a run folder, and the console table. Exporters only format; they never
//! decide a status or compute a number that the report does not already hold.

pub mod capacity;
mod console;
mod csv_percentiles;
pub mod folder;
pub mod hints;
mod histograms;
mod hlog;
pub mod html;
pub mod json;
mod junit;
mod live_files;
mod manifest;
mod markdown;
mod restore;
mod status;
pub mod sweep;
mod timeseries;

pub use crate::thresholds::{tag_reports, TagReport};
pub use console::print_final_table;
pub use histograms::{
    parse_histograms, read_histograms, RunHistograms, Totals, HISTOGRAMS_FILE, HISTOGRAMS_FORMAT,
    HISTOGRAMS_VERSION,
};
pub use hlog::{hlog_file_name, write_hlog, write_hlogs};
pub use html::{render as render_html, render_summary_page, HTML_FILE};
pub use junit::{write_junit, JunitCase, JunitSuite, JUNIT_FILE};
pub use live_files::LiveFiles;
pub use manifest::{
    LoadManifest, Manifest, MergeManifest, MergedSegment, RunOrigin, RuntimeManifest,
    SegmentManifest, TargetManifest,
};
pub use restore::restore;
pub use status::RunStatus;
pub use timeseries::{timeseries_header, timeseries_row, write_timeseries, TIMESERIES_FILE};

use crate::metrics::selfcheck::SelfCheckSummary;
use crate::metrics::{Counter, GeneratorUsage, MetricSummary, Snapshot, Timeline};
use crate::thresholds::{Numbers, ThresholdResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Version of the `summary.json` schema; bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a report shows about one finished (or interrupted) run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub run_id: String,
    pub scenario: String,
    pub status: RunStatus,
    /// One sentence saying why the run got its status.
    pub status_reason: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub duration_s: f64,
    pub peak_vus: u64,
    /// Per latency metric, in milliseconds.
    pub metrics: BTreeMap<String, MetricSummary>,
    pub counters: BTreeMap<String, u64>,
    /// Failures by cause (`turn_timeout`, `connect_refused`, …).
    pub errors: BTreeMap<String, u64>,
    /// One-line hints for the failure causes (e.g. a `connect_http_404`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// What the run cost the load generator (client side).
    pub generator: GeneratorUsage,
    /// Scheduler lag, CPU and RSS of the generator over the run, and whether
    /// it saturated (then the run is invalid unless `--self-check warn`).
    pub self_check: SelfCheckSummary,
    /// Per-interval data behind `timeseries.csv` and the `.hlog` files.
    #[serde(skip)]
    pub timeline: Option<Arc<Timeline>>,
    /// Whole-run histograms and tag names, for the lossless `histograms.json`
    /// (absent in a report read back from summary.json).
    #[serde(skip)]
    pub totals: Option<Arc<Totals>>,
    /// `--output-format`: the optional files to write (`None` = all).
    #[serde(skip)]
    pub formats: Option<Vec<OutputFormat>>,
    /// The same numbers per scenario and per named step (`scenario=a`,
    /// `scenario=a,step=b`): tagged metrics and non-zero counters.
    #[serde(default)]
    pub tags: BTreeMap<String, TagReport>,
    /// The scenario's thresholds as judged at the end (absent when it had none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdResult>,
    /// A merged run (`finalping merge`): each segment's own figures, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentReport>,
    /// Context updates over the runtime WebSocket, when the scenario had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextReport>,
    pub manifest: Manifest,
}

impl RunReport {
    /// Builds the report from the run totals; the status is decided by `verdict`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        run_id: String,
        totals: &Snapshot,
        status: RunStatus,
        status_reason: String,
        started_at: String,
        duration_s: f64,
        peak_vus: u64,
        generator: GeneratorUsage,
        self_check: SelfCheckSummary,
        manifest: Manifest,
    ) -> RunReport {
        RunReport {
            schema_version: SCHEMA_VERSION,
            run_id,
            scenario: manifest.scenario_name.clone(),
            status,
            status_reason,
            started_at,
            duration_s,
            peak_vus,
            metrics: totals.metric_summaries(),
            counters: totals.counter_values(),
            errors: totals.causes().clone(),
            hints: hints::for_causes(totals.causes()),
            generator,
            self_check,
            timeline: None,
            totals: None,
            formats: None,
            tags: BTreeMap::new(),
            thresholds: Vec::new(),
            segments: Vec::new(),
            context: None,
            manifest,
        }
    }

    /// The `summary.json` a run folder (`out_dir`) holds until the final
    /// reports replace it: status `incomplete`, and how to rebuild them.
    pub fn started(
        run_id: &str,
        started_at: chrono::DateTime<chrono::Utc>,
        manifest: Manifest,
        out_dir: &Path,
    ) -> RunReport {
        RunReport::new(
            run_id.to_string(),
            &Snapshot::new(),
            RunStatus::Incomplete,
            format!(
                "incomplete: the run has not written its final reports (still running, or killed); \
                 `finalping report {}` rebuilds them from timeseries.csv and the .hlog files",
                out_dir.display()
            ),
            started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            0.0,
            0,
            GeneratorUsage::default(),
            crate::metrics::selfcheck::SelfCheck::new(Default::default()).summary(),
            manifest,
        )
    }

    pub fn counter(&self, c: Counter) -> u64 {
        self.counters.get(c.name()).copied().unwrap_or(0)
    }

    /// Completed turns per second over the whole run.
    pub fn turns_per_sec(&self) -> f64 {
        if self.duration_s <= 0.0 {
            return 0.0;
        }
        self.counter(Counter::TurnsOk) as f64 / self.duration_s
    }

    /// The numbers its thresholds are judged on.
    pub fn numbers(&self) -> Numbers<'_> {
        Numbers {
            duration_s: self.duration_s,
            metrics: &self.metrics,
            counters: &self.counters,
            tags: &self.tags,
        }
    }
}

/// One segment of a merged run as that segment's own process measured it:
/// the generator figures stay per process, the latencies are merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentReport {
    /// 0-based segment number.
    pub index: u32,
    pub run_id: String,
    pub status: RunStatus,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// How late the segment started after the common start instant, ms.
    pub start_late_ms: f64,
    pub duration_s: f64,
    pub peak_vus: u64,
    pub turns_ok: u64,
    pub turns_failed: u64,
    pub generator: GeneratorUsage,
    /// The segment's generator self-check found it saturated.
    pub saturated: bool,
    /// The segment's scheduler lag p99, µs.
    pub lag_p99_us: u64,
}

/// Aggregates of the context updates of a run (docs/protocol.md §2.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContextReport {
    /// The runtime URL (never with a token).
    pub runtime_url: String,
    pub codec: String,
    pub heartbeat: String,
    /// Logical updates (retries not counted again).
    pub updates_total: u64,
    pub updates_successful: u64,
    pub updates_failed: u64,
    /// successful / total.
    pub accuracy_rate: f64,
    pub conflicts: u64,
    pub conflict_retries: u64,
    pub token_requests: u64,
    pub token_failures: u64,
    /// Audit log and webhook delivery.
    pub audit: crate::audit::AuditStats,
}

impl ContextReport {
    /// The context section of a run from its totals: `runtime_url` as shown
    /// (no token), the codec and heartbeat settings as written, the token
    /// endpoint's and the audit log's figures.
    pub fn new(
        runtime_url: String,
        codec: String,
        heartbeat: String,
        totals: &Snapshot,
        tokens: Option<crate::protocol::runtime::oauth::TokenStats>,
        audit: crate::audit::AuditStats,
    ) -> ContextReport {
        let c = |k: Counter| totals.counter(k);
        let total = c(Counter::UpdatesSent);
        let ok = c(Counter::UpdatesOk);
        ContextReport {
            runtime_url,
            codec,
            heartbeat,
            updates_total: total,
            updates_successful: ok,
            updates_failed: totals.updates_failed(),
            accuracy_rate: if total == 0 {
                0.0
            } else {
                ok as f64 / total as f64
            },
            conflicts: c(Counter::Conflicts),
            conflict_retries: c(Counter::ConflictRetries),
            token_requests: tokens.as_ref().map_or(0, |t| t.requests),
            token_failures: tokens.as_ref().map_or(0, |t| t.failures),
            audit,
        }
    }
}

/// Optional report files (`--output-format`): what a run may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum OutputFormat {
    /// summary.md
    Markdown,
    /// percentiles.csv
    Csv,
    /// junit.xml (runs with thresholds)
    Junit,
    /// report.html
    Html,
    /// timeseries.csv
    Timeseries,
    /// <metric>.hlog
    Hlog,
}

/// One output format: a file name and how to write the report into it. `R`
/// is the report: a run's [`RunReport`] (the default), or a sweep's or a
/// capacity search's ([`sweep`], [`capacity`]).
pub trait Exporter<R = RunReport> {
    fn file_name(&self) -> &'static str;
    fn write(&self, report: &R, out: &mut dyn Write) -> std::io::Result<()>;
    /// Whether this report gets the file (e.g. `junit.xml` only with thresholds).
    fn wanted(&self, _report: &R) -> bool {
        true
    }
}

/// Every format written for a run, in the order they are written
/// (`summary.json` last: see [`write_all`]).
pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::SummaryJson),
        Box::new(markdown::SummaryMarkdown),
        Box::new(csv_percentiles::PercentilesCsv),
        Box::new(manifest::ManifestJson),
        Box::new(histograms::HistogramsJson),
        Box::new(junit::ThresholdsJunit),
        Box::new(html::ReportHtml),
    ]
}

/// A failure to write one report file, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write report file {path}: {source}")]
pub struct ReportError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes every format into `dir` (created if missing); returns the paths
/// written. `summary.json` comes last, renamed into place once complete: a
/// folder with a `summary.json` is a finished run (a merge waiting on a shared
/// volume relies on it).
pub fn write_all(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = write_all_but_summary(report, dir)?;
    let path = write_one(&json::SummaryJson, report, dir)?;
    written.insert(0, path);
    Ok(written)
}

fn write_all_but_summary(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError {
        path: dir.to_path_buf(),
        source,
    })?;
    use OutputFormat as F;
    let chosen = |format: Option<F>| match (format, &report.formats) {
        (None, _) | (_, None) => true,
        (Some(f), Some(list)) => list.contains(&f),
    };
    let format_of = |file: &str| match file {
        "summary.md" => Some(F::Markdown),
        "percentiles.csv" => Some(F::Csv),
        "junit.xml" => Some(F::Junit),
        HTML_FILE => Some(F::Html),
        _ => None,
    };
    let mut written = Vec::new();
    for exporter in exporters().into_iter().filter(|e| {
        e.file_name() != "summary.json" && e.wanted(report) && chosen(format_of(e.file_name()))
    }) {
        written.push(write_one(exporter.as_ref(), report, dir)?);
    }
    let Some(timeline) = &report.timeline else {
        return Ok(written);
    };
    if chosen(Some(F::Timeseries)) {
        let path = dir.join(TIMESERIES_FILE);
        let result = crate::fsio::write_atomic_with(&path, |w| write_timeseries(timeline, w));
        result.map_err(|source| ReportError {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    if chosen(Some(F::Hlog)) {
        let hlogs = write_hlogs(timeline, dir).map_err(|source| ReportError {
            path: dir.to_path_buf(),
            source,
        })?;
        written.extend(hlogs);
    }
    Ok(written)
}

/// Writes one exporter's file into `dir` atomically (temp file + rename).
/// Writes the files of `exporters` that `report` wants into `dir` (which
/// must exist), each atomically; returns the paths written.
pub fn write_each<R>(
    exporters: &[Box<dyn Exporter<R>>],
    report: &R,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    exporters
        .iter()
        .filter(|e| e.wanted(report))
        .map(|e| write_one(e.as_ref(), report, dir))
        .collect()
}

fn write_one<R>(
    exporter: &dyn Exporter<R>,
    report: &R,
    dir: &Path,
) -> Result<PathBuf, ReportError> {
    let path = dir.join(exporter.file_name());
    let result = crate::fsio::write_atomic_with(&path, |w| exporter.write(report, w));
    result.map_err(|source| ReportError {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// What a run folder holds from the start of a run: `summary.json` (status
/// `incomplete` until the final reports replace it) and `manifest.json`.
pub fn write_started(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for exporter in exporters()
        .into_iter()
        .filter(|e| ["summary.json", "manifest.json"].contains(&e.file_name()))
    {
        written.push(write_one(exporter.as_ref(), report, dir)?);
    }
    Ok(written)
}

/// Milliseconds with microsecond precision, as every text format prints them.
pub(crate) fn ms(v: f64) -> String {
    format!("{v:.3}")
}

/// A counter for people: bytes counters in KiB/MiB/GiB, other counts from
/// 10 000 on in k/M (`1442621` bytes → `1.38 MiB`, `25300` → `25.3 k`).
pub(crate) fn human_count(name: &str, v: u64) -> String {
    let f = v as f64;
    if name.contains("bytes") {
        return match v {
            0..=1023 => format!("{v} B"),
            1024..=1_048_575 => format!("{:.1} KiB", f / 1024.0),
            1_048_576..=1_073_741_823 => format!("{:.2} MiB", f / 1_048_576.0),
            _ => format!("{:.2} GiB", f / 1_073_741_824.0),
        };
    }
    match v {
        0..=9_999 => v.to_string(),
        10_000..=999_999 => format!("{:.1} k", f / 1e3),
        _ => format!("{:.2} M", f / 1e6),
    }
}

#[cfg(test)]
mod human_tests {
    use super::human_count;

    #[test]
    fn counters_in_human_units() {
        assert_eq!(human_count("bytes_received", 1_442_621), "1.38 MiB");
        assert_eq!(human_count("bytes_sent", 2048), "2.0 KiB");
        assert_eq!(human_count("bytes_sent", 12), "12 B");
        assert_eq!(human_count("turns_ok", 9_999), "9999");
        assert_eq!(human_count("turns_ok", 25_300), "25.3 k");
        assert_eq!(human_count("outputs", 3_400_000), "3.40 M");
    }
}
