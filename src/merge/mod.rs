//! `finalping merge`: one run report from the run folders of the execution
//! segments of one run (`finalping run --segment i/N`, one process or pod
//! each). Pure: folders in, a [`RunReport`] out; the command writes it with
//! the usual exporters.
//!
//! - `read`: reading the folders and refusing sets that are not one run.
//! - `timeline`: the segments' interval histories on one wall-clock grid.
//!
//! What is exact and what is not:
//! - latency histograms (whole run, per tag, per interval) are added from each
//!   segment's lossless `histograms.json`, so every count and percentile is
//!   the one a single process recording all samples would report;
//! - counters, failure causes and tag counters are summed;
//! - the run length is from the earliest segment start to the latest end;
//! - generator figures stay per segment (`segments` in summary.json); the
//!   merged `generator` sums CPU time and peak RSS over the processes, the
//!   merged `self_check` shows the worst segment.
//!
//! A merged run is only as valid as its worst segment: a missing, invalid,
//! interrupted, saturated or late segment makes it invalid, naming the segment.

mod read;
mod timeline;

pub use read::{read_segments, Segment, SegmentSet};
pub use timeline::merge_timelines;

use crate::metrics::selfcheck::SelfCheckSummary;
use crate::metrics::{Counter, GeneratorUsage, Metric, Snapshot, TagId};
use crate::report::{
    tag_reports, ContextReport, MergeManifest, MergedSegment, RunReport, SegmentReport, Totals,
    SCHEMA_VERSION,
};
use crate::thresholds::{Threshold, Thresholds};
use crate::verdict::{self, RunStatus};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why segment folders could not be merged (all usage errors except `Corrupt`).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{}: not a segment run folder: {why}", dir.display())]
    NotARunFolder { dir: PathBuf, why: String },
    #[error("{0}")]
    Refused(String),
    #[error("no segment to merge: {} {} no run (no summary.json); the segments did not finish, or the folders are wrong", list(.0), if .0.len() == 1 { "holds" } else { "hold" })]
    NothingToMerge(Vec<PathBuf>),
    #[error("{}: inconsistent segment data: {why}", dir.display())]
    Corrupt { dir: PathBuf, why: String },
}

fn list(dirs: &[PathBuf]) -> String {
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    names.join(", ")
}

/// How strictly segments are judged.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// A saturated segment makes the merged run invalid (`--self-check strict`).
    pub strict_self_check: bool,
    /// A segment that started later than this after the common start (its
    /// `start_late_ms`, or its start after the earliest segment's) makes the
    /// merged run invalid.
    pub start_tolerance: Duration,
    /// The whole run was stopped by Ctrl-C/SIGTERM (local workers): the merged
    /// run is `interrupted` rather than invalid.
    pub interrupted: bool,
    /// The merge command line, for the manifest.
    pub command_line: String,
}

/// Merges a checked set of segments into one report (see the module doc).
pub fn merge(set: &SegmentSet, options: &MergeOptions) -> Result<RunReport, MergeError> {
    let segments = &set.segments;
    let Some(first) = segments.first() else {
        return Err(MergeError::NothingToMerge(set.missing.clone()));
    };
    let totals = merged_totals(segments)?;
    let origin = timeline::origin(segments);
    let duration_s = segments
        .iter()
        .map(|s| timeline::offset(s, origin).as_secs_f64() + s.report.duration_s)
        .fold(0.0, f64::max);
    let problems = problems(set, options);
    let (mut status, mut reason) = verdict::judge(&totals.snapshot, options.interrupted, None);
    if !problems.is_empty() && !options.interrupted {
        status = RunStatus::Invalid;
        reason = format!(
            "invalid: {}; the merged numbers are not those of the whole run",
            problems.join("; ")
        );
    }
    let mut manifest = first.report.manifest.clone();
    manifest.segment = None;
    manifest.command_line = options.command_line.clone();
    manifest.merge = Some(MergeManifest {
        count: first.segment.count,
        segments: segments
            .iter()
            .map(|s| MergedSegment {
                index: s.segment.index,
                dir: s.dir.display().to_string(),
                run_id: s.report.run_id.clone(),
                host: s.report.manifest.host.clone(),
                seed: s.report.manifest.seed,
            })
            .collect(),
    });
    let run_ids: Vec<&str> = segments.iter().map(|s| s.report.run_id.as_str()).collect();
    let run_id = if run_ids.iter().all(|id| *id == run_ids[0]) {
        run_ids[0].to_string()
    } else {
        format!("{}-merged", run_ids[0])
    };
    let mut report = RunReport {
        schema_version: SCHEMA_VERSION,
        run_id,
        scenario: first.report.scenario.clone(),
        status,
        status_reason: reason,
        started_at: segments
            .iter()
            .map(|s| s.report.started_at.clone())
            .min()
            .unwrap_or_default(),
        duration_s,
        peak_vus: segments.iter().map(|s| s.report.peak_vus).sum(),
        metrics: Metric::ALL
            .iter()
            .map(|m| (m.name().to_string(), totals.snapshot.summary(*m)))
            .collect(),
        counters: Counter::ALL
            .iter()
            .map(|c| (c.name().to_string(), totals.snapshot.counter(*c)))
            .collect(),
        errors: totals.snapshot.causes().clone(),
        hints: crate::report::hints::for_causes(totals.snapshot.causes()),
        generator: merged_generator(segments, duration_s),
        self_check: merged_self_check(segments),
        timeline: Some(Arc::new(merge_timelines(segments)?)),
        totals: None,
        formats: None,
        tags: tag_reports(&totals.snapshot, &totals.tag_names),
        thresholds: Vec::new(),
        segments: segments.iter().map(segment_report).collect(),
        context: merged_context(segments),
        manifest,
    };
    let set = thresholds_of(first)?;
    crate::verdict::judge_report(&mut report, &set, Some(&totals.snapshot));
    report.totals = Some(Arc::new(totals));
    Ok(report)
}

/// Each reason the merged run cannot stand for the whole run, naming the segment.
fn problems(set: &SegmentSet, options: &MergeOptions) -> Vec<String> {
    let mut out: Vec<String> = set
        .missing
        .iter()
        .map(|d| {
            let which = segment_of_folder(d).map_or_else(String::new, |i| format!("segment {i}: "));
            format!(
                "{which}segment folder {} holds no run (no summary.json): that segment did not finish",
                d.display()
            )
        })
        .collect();
    let origin = timeline::origin(&set.segments);
    let tolerance_ms = options.start_tolerance.as_secs_f64() * 1000.0;
    for s in &set.segments {
        let who = format!("segment {} ({})", s.segment.index, s.dir.display());
        match s.report.status {
            RunStatus::Invalid => out.push(format!("{who} is invalid: {}", s.report.status_reason)),
            RunStatus::Interrupted => out.push(format!("{who} was interrupted")),
            RunStatus::Incomplete => out.push(format!(
                "{who} did not finish its reports (summary.json says incomplete: the process was killed)"
            )),
            RunStatus::Passed | RunStatus::Failed => {}
        }
        if s.report.self_check.saturated && options.strict_self_check {
            out.push(format!(
                "{who}: the load generator was saturated ({}){}",
                s.report.self_check.reasons.join("; "),
                s.report
                    .self_check
                    .diagnosis()
                    .map_or(String::new(), |d| format!("; {d}"))
            ));
        }
        let late_ms = s
            .segment
            .start_late_ms
            .max(timeline::offset(s, origin).as_secs_f64() * 1000.0);
        if late_ms > tolerance_ms {
            out.push(format!(
                "{who} started {late_ms:.0} ms late (tolerance {tolerance_ms:.0} ms): its load did not overlap the others'"
            ));
        }
    }
    out
}

/// `i` of a default segment folder name (`segment-<i>-of-<N>`), if it is one.
fn segment_of_folder(dir: &std::path::Path) -> Option<u32> {
    let name = dir.file_name()?.to_str()?;
    let (index, count) = name.strip_prefix("segment-")?.split_once("-of-")?;
    count.parse::<u32>().ok()?;
    index.parse().ok()
}

/// The thresholds of the run, re-parsed from a segment's summary.json.
fn thresholds_of(segment: &Segment) -> Result<Thresholds, MergeError> {
    segment
        .report
        .thresholds
        .iter()
        .map(|t| {
            Threshold::from_expression(&t.threshold).map_err(|e| MergeError::NotARunFolder {
                dir: segment.dir.clone(),
                why: format!("summary.json threshold `{}`: {e}", t.threshold),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Thresholds)
}

/// The exact sum of the segments: histograms from `histograms.json`, counters,
/// causes and tag counters from summary.json.
fn merged_totals(segments: &[Segment]) -> Result<Totals, MergeError> {
    let mut snapshot = Snapshot::new();
    let mut tag_names: Vec<String> = Vec::new();
    for s in segments {
        let corrupt = |why: String| MergeError::Corrupt {
            dir: s.dir.clone(),
            why,
        };
        let unknown = |what: &str, name: &str| MergeError::NotARunFolder {
            dir: s.dir.clone(),
            why: format!(
                "summary.json has an unknown {what} `{name}` (written by another finalping version)"
            ),
        };
        for (m, h) in &s.histograms.metrics {
            snapshot
                .add_histogram(*m, h)
                .map_err(|e| corrupt(format!("`{}`: {e:?}", m.name())))?;
        }
        for (name, n) in &s.report.counters {
            let c = Counter::named(name).ok_or_else(|| unknown("counter", name))?;
            snapshot.add(c, *n);
        }
        for (cause, n) in &s.report.errors {
            snapshot.add_cause(cause, *n);
        }
        let tags = s.report.tags.keys().chain(s.histograms.tags.keys());
        for tag in tags {
            if !tag_names.contains(tag) {
                tag_names.push(tag.clone());
            }
        }
        for (tag, data) in &s.report.tags {
            let id = tag_id(&tag_names, tag)?;
            for (name, n) in &data.counters {
                let c = Counter::named(name).ok_or_else(|| unknown("counter", name))?;
                snapshot.add_tag_counter(id, c, *n);
            }
        }
        for (tag, hists) in &s.histograms.tags {
            let id = tag_id(&tag_names, tag)?;
            for (m, h) in hists {
                snapshot
                    .add_tag_histogram(id, *m, h)
                    .map_err(|e| corrupt(format!("tag `{tag}` `{}`: {e:?}", m.name())))?;
            }
        }
        // The lossless file and the summary must tell the same story.
        for (m, h) in &s.histograms.metrics {
            let in_summary = s.report.metrics.get(m.name()).map_or(0, |x| x.count);
            if h.len() != in_summary {
                return Err(corrupt(format!(
                    "histograms.json has {} `{}` samples, summary.json {in_summary}",
                    h.len(),
                    m.name()
                )));
            }
        }
    }
    Ok(Totals {
        snapshot,
        tag_names,
    })
}

fn tag_id(names: &[String], tag: &str) -> Result<TagId, MergeError> {
    names
        .iter()
        .position(|n| n == tag)
        .and_then(|i| TagId::try_from(i).ok())
        .ok_or_else(|| MergeError::Refused(format!("too many distinct tags (at `{tag}`)")))
}

/// CPU time and peak RSS summed over the segment processes; CPU use as a
/// share of one core over the merged run's length.
fn merged_generator(segments: &[Segment], duration_s: f64) -> GeneratorUsage {
    let g: Vec<&GeneratorUsage> = segments.iter().map(|s| &s.report.generator).collect();
    let cpu_ms_client: f64 = g.iter().map(|g| g.cpu_ms_client).sum();
    let emulator: Vec<f64> = g.iter().filter_map(|g| g.cpu_ms_emulator).collect();
    GeneratorUsage {
        cpu_ms: g.iter().map(|g| g.cpu_ms).sum(),
        cpu_ms_client,
        cpu_ms_emulator: (!emulator.is_empty()).then(|| emulator.iter().sum()),
        cpu_ms_user: g.iter().map(|g| g.cpu_ms_user).sum(),
        cpu_ms_system: g.iter().map(|g| g.cpu_ms_system).sum(),
        cpu_percent: if duration_s > 0.0 {
            cpu_ms_client / (duration_s * 1000.0) * 100.0
        } else {
            0.0
        },
        max_rss_kib: g.iter().map(|g| g.max_rss_kib).sum(),
        includes_embedded_emulator: g.iter().any(|g| g.includes_embedded_emulator),
    }
}

/// The worst segment's self-check figures; saturated when any segment was,
/// with each reason prefixed by its segment.
fn merged_self_check(segments: &[Segment]) -> SelfCheckSummary {
    let checks: Vec<(u32, &SelfCheckSummary)> = segments
        .iter()
        .map(|s| (s.segment.index, &s.report.self_check))
        .collect();
    let max_u64 = |f: fn(&SelfCheckSummary) -> u64| checks.iter().map(|c| f(c.1)).max();
    let max_f64 =
        |f: fn(&SelfCheckSummary) -> f64| checks.iter().map(|c| f(c.1)).fold(0.0, f64::max);
    let Some((_, base)) = checks.first() else {
        return crate::metrics::selfcheck::SelfCheck::new(Default::default()).summary();
    };
    // The cause, remedy and machine figures of the first saturated segment.
    let (diagnosed, first) = checks
        .iter()
        .find(|c| c.1.saturated)
        .map_or((None, *base), |(i, c)| (Some(*i), *c));
    SelfCheckSummary {
        intervals: max_u64(|c| c.intervals).unwrap_or(0),
        lag_samples: checks.iter().map(|c| c.1.lag_samples).sum(),
        lag_p50_us: max_u64(|c| c.lag_p50_us).unwrap_or(0),
        lag_p99_us: max_u64(|c| c.lag_p99_us).unwrap_or(0),
        lag_max_us: max_u64(|c| c.lag_max_us).unwrap_or(0),
        lag_p99_budget_us: base.lag_p99_budget_us,
        cpu_percent_mean: max_f64(|c| c.cpu_percent_mean),
        cpu_percent_max: max_f64(|c| c.cpu_percent_max),
        cpu_cores: checks.iter().map(|c| c.1.cpu_cores).max().unwrap_or(0),
        cpu_saturation_percent: base.cpu_saturation_percent,
        cpu_window_intervals: base.cpu_window_intervals,
        cpu_longest_saturated_intervals: checks
            .iter()
            .map(|c| c.1.cpu_longest_saturated_intervals)
            .max()
            .unwrap_or(0),
        rss_mib_max: max_f64(|c| c.rss_mib_max),
        saturated: checks.iter().any(|c| c.1.saturated),
        reasons: checks
            .iter()
            .flat_map(|(i, c)| c.reasons.iter().map(move |r| format!("segment {i}: {r}")))
            .collect(),
        cause: first.cause,
        hint: first
            .hint
            .as_ref()
            .map(|h| diagnosed.map_or(h.clone(), |i| format!("segment {i}: {h}"))),
        machine: first.machine,
    }
}

fn segment_report(s: &Segment) -> SegmentReport {
    let r = &s.report;
    let failed = [
        Counter::TurnsTimeout,
        Counter::TurnsError,
        Counter::TurnsDisconnected,
        Counter::TurnsInterrupted,
    ]
    .iter()
    .map(|c| r.counter(*c))
    .sum();
    SegmentReport {
        index: s.segment.index,
        run_id: r.run_id.clone(),
        status: r.status,
        started_at: r.started_at.clone(),
        start_late_ms: s.segment.start_late_ms,
        duration_s: r.duration_s,
        peak_vus: r.peak_vus,
        turns_ok: r.counter(Counter::TurnsOk),
        turns_failed: failed,
        generator: r.generator,
        saturated: r.self_check.saturated,
        lag_p99_us: r.self_check.lag_p99_us,
    }
}

/// Context updates summed over the segments (URL, codec and heartbeat are the
/// scenario's, the same in every segment).
fn merged_context(segments: &[Segment]) -> Option<ContextReport> {
    let mut parts = segments.iter().filter_map(|s| s.report.context.as_ref());
    let mut total = parts.next()?.clone();
    for c in parts {
        total.updates_total += c.updates_total;
        total.updates_successful += c.updates_successful;
        total.updates_failed += c.updates_failed;
        total.conflicts += c.conflicts;
        total.conflict_retries += c.conflict_retries;
        total.token_requests += c.token_requests;
        total.token_failures += c.token_failures;
        let (a, b) = (&mut total.audit, &c.audit);
        a.records_submitted += b.records_submitted;
        a.records_written += b.records_written;
        a.records_lost += b.records_lost;
        a.webhook_enabled |= b.webhook_enabled;
        a.webhook_sent += b.webhook_sent;
        a.webhook_failed += b.webhook_failed;
        a.webhook_dropped += b.webhook_dropped;
        if a.file_error.is_none() {
            a.file_error.clone_from(&b.file_error);
        }
    }
    total.accuracy_rate = if total.updates_total == 0 {
        0.0
    } else {
        total.updates_successful as f64 / total.updates_total as f64
    };
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_segment_folders_name_their_segment() {
        let of = |p: &str| segment_of_folder(std::path::Path::new(p));
        assert_eq!(of("reports/r/segment-03-of-12"), Some(3));
        assert_eq!(of("segment-0-of-1/"), Some(0));
        assert_eq!(of("reports/r/seg0"), None);
        assert_eq!(of("segment-x-of-3"), None);
    }
}
