//! Reading the segment folders given to `finalping merge` and checking that
//! they belong together. A folder is classified before anything is merged:
//! a segment run (merged), a missing one (the merged run is invalid), or
//! something that is not a segment run at all (refused).

use super::MergeError;
use crate::report::{read_histograms, RunHistograms, RunReport, SegmentManifest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Segments that started further apart than this are not one run (and would
/// need a time axis of that length).
const MAX_START_SPREAD: Duration = Duration::from_secs(24 * 3600);

/// One segment run folder, read.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The folder as given.
    pub dir: PathBuf,
    pub report: RunReport,
    pub segment: SegmentManifest,
    /// Its lossless data (`histograms.json`).
    pub histograms: RunHistograms,
}

/// What `finalping merge` was given.
#[derive(Debug)]
pub struct SegmentSet {
    /// The segments that were read, sorted by index.
    pub segments: Vec<Segment>,
    /// Folders that hold no finished segment (absent, or no summary.json):
    /// the merged run is invalid.
    pub missing: Vec<PathBuf>,
}

/// Reads one folder: `Ok(None)` when it holds no finished run (missing).
fn read_one(dir: &Path) -> Result<Option<Segment>, MergeError> {
    let not_run = |why: String| MergeError::NotARunFolder {
        dir: dir.to_path_buf(),
        why,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(not_run(
            "it is a file; pass the segment's run folder (the one holding summary.json)".into(),
        ));
    }
    let summary = dir.join("summary.json");
    if !summary.is_file() {
        return Ok(None);
    }
    let report = crate::report::json::read_summary(&summary)
        .map_err(|e| not_run(format!("summary.json: {e}")))?;
    let segment = report.manifest.segment.clone().ok_or_else(|| {
        not_run(match &report.manifest.merge {
            Some(m) => format!(
                "it is already a merge of {} segments; pass the segment folders themselves",
                m.segments.len()
            ),
            None => "it is a whole run, not a segment (its manifest has no `segment`): run each part with `finalping run --segment i/N`".to_string(),
        })
    })?;
    let histograms = read_histograms(dir).map_err(|e| {
        not_run(format!(
            "{e} (every run of this finalping version writes it; re-run the segment)"
        ))
    })?;
    Ok(Some(Segment {
        dir: dir.to_path_buf(),
        report,
        segment,
        histograms,
    }))
}

/// Reads every folder and checks they are segments of one run: same scenario
/// (content hash), same finalping version, load settings, segment count and
/// thresholds,
/// each index once and within the count, and every index present unless a
/// missing folder accounts for it.
pub fn read_segments(dirs: &[PathBuf]) -> Result<SegmentSet, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::Refused(
            "no segment folders given: `finalping merge DIR... --out MERGED`".into(),
        ));
    }
    let mut segments = Vec::new();
    let mut missing = Vec::new();
    for dir in dirs {
        match read_one(dir)? {
            Some(s) => segments.push(s),
            None => missing.push(dir.clone()),
        }
    }
    segments.sort_by_key(|s| s.segment.index);
    let Some(first) = segments.first() else {
        return Err(MergeError::NothingToMerge(missing));
    };
    let name = |s: &Segment| format!("{} (segment {})", s.dir.display(), s.segment.index);
    let refuse = |s: &Segment, what: &str, theirs: String, ours: String| {
        MergeError::Refused(format!(
            "{} has {what} {theirs}, but {} has {ours}: all segments must come from one run of one scenario",
            name(s),
            name(first)
        ))
    };
    let count = first.segment.count;
    let expressions = |s: &Segment| -> Vec<String> {
        s.report
            .thresholds
            .iter()
            .map(|t| t.threshold.clone())
            .collect()
    };
    for s in &segments[1..] {
        let (a, b) = (&s.report.manifest, &first.report.manifest);
        if a.scenario_sha256 != b.scenario_sha256 {
            return Err(refuse(
                s,
                "scenario",
                format!("`{}` (sha256 {})", a.scenario_file, a.scenario_sha256),
                format!("`{}` (sha256 {})", b.scenario_file, b.scenario_sha256),
            ));
        }
        if a.finalping_version != b.finalping_version {
            return Err(refuse(
                s,
                "finalping version",
                a.finalping_version.clone(),
                b.finalping_version.clone(),
            ));
        }
        let load = |m: &crate::report::Manifest| serde_json::to_string(&m.load).unwrap_or_default();
        if load(a) != load(b) {
            return Err(refuse(
                s,
                "load settings",
                load(a),
                format!("{} (run every segment with the same flags)", load(b)),
            ));
        }
        if s.segment.count != count {
            return Err(refuse(
                s,
                "segment count",
                s.segment.count.to_string(),
                count.to_string(),
            ));
        }
        if expressions(s) != expressions(first) {
            return Err(refuse(
                s,
                "thresholds",
                format!("{:?}", expressions(s)),
                format!("{:?}", expressions(first)),
            ));
        }
    }
    let starts = segments.iter().map(|s| s.histograms.timeline.run_start());
    let (earliest, latest) = (starts.clone().min(), starts.max());
    if let Some(spread) = earliest
        .zip(latest)
        .and_then(|(a, b)| b.duration_since(a).ok())
        .filter(|d| *d > MAX_START_SPREAD)
    {
        return Err(MergeError::Refused(format!(
            "the segments started {:.0} h apart (histograms.json run_start_unix_us): they are not one run",
            spread.as_secs_f64() / 3600.0
        )));
    }
    let mut by_index: BTreeMap<u32, &Segment> = BTreeMap::new();
    for s in &segments {
        if s.segment.index >= count {
            return Err(MergeError::Refused(format!(
                "{} is segment {} of {count}: segment numbers run from 0 to {}",
                s.dir.display(),
                s.segment.index,
                count.saturating_sub(1)
            )));
        }
        if let Some(other) = by_index.insert(s.segment.index, s) {
            return Err(MergeError::Refused(format!(
                "segment {} is given twice: {} and {}; pass each segment folder once",
                s.segment.index,
                other.dir.display(),
                s.dir.display()
            )));
        }
    }
    let absent: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
    if absent.len() > missing.len() {
        let list: Vec<String> = absent.iter().map(u32::to_string).collect();
        return Err(MergeError::Refused(format!(
            "segment{} {} of {count} not given: pass the folders of all {count} segments",
            if absent.len() == 1 { "" } else { "s" },
            list.join(", ")
        )));
    }
    if missing.len() > absent.len() {
        let list: Vec<String> = missing.iter().map(|d| d.display().to_string()).collect();
        return Err(MergeError::Refused(format!(
            "{} folders given for {count} segments: {} hold no run (no summary.json) although every segment is present",
            dirs.len(),
            list.join(", ")
        )));
    }
    Ok(SegmentSet { segments, missing })
}
