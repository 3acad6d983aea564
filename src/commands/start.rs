//! Start alignment of `run`: `--start-at` waits until a wall-clock instant;
//! `--start-barrier DIR` makes the segments of one run check in to a shared
//! folder and start together at an instant each of them computes from the
//! same files (no process talks to another). Also the lateness rule: a
//! schedule that starts more than [`START_TOLERANCE`] after its aligned
//! instant makes the run invalid, since its load no longer overlaps the
//! other segments' as planned.
//!
//! The barrier: each segment writes `ready-segment-<i>-of-<N>.json` (its run
//! id, segment and wall time; written to a temporary name and renamed, so a
//! reader never sees half a file) and then looks every [`BARRIER_POLL`] for
//! the other `N − 1`. Once all `N` are there, every segment starts at the
//! latest ready time plus [`BARRIER_MARGIN`] — the same instant everywhere,
//! given clocks in step (NTP).

use crate::engine::Segment;
use crate::error::CliError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How late a schedule may start after its aligned instant and still be valid.
pub const START_TOLERANCE: Duration = Duration::from_secs(1);
/// The common start is this long after the last segment checked in: time
/// for every segment to see the last ready file and wake up.
pub const BARRIER_MARGIN: Duration = Duration::from_secs(2);
/// How often a waiting segment looks at the barrier folder.
pub const BARRIER_POLL: Duration = Duration::from_millis(100);
/// The furthest ahead `--start-at` may be (a guard against a mistyped date
/// leaving a process waiting for months).
pub const MAX_START_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// Refuses a `--start-at` more than [`MAX_START_AHEAD`] after `now`.
pub fn check_start_at(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), CliError> {
    match (at - now).to_std() {
        Ok(ahead) if ahead > MAX_START_AHEAD => Err(CliError::usage(format!(
            "--start-at {} is {:.1} h from now; at most 24 h ahead is accepted (check the date and the zone, e.g. `Z` for UTC)",
            rfc3339(at),
            ahead.as_secs_f64() / 3600.0
        ))),
        _ => Ok(()),
    }
}

/// RFC 3339 in UTC with milliseconds, as reports write times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Sleeps until the wall-clock instant `at`, saying so on stderr unless
/// `quiet`; returns early when `interrupt` fires (the run then stops at
/// once, as interrupted).
pub async fn wait_until(at: DateTime<Utc>, interrupt: &CancellationToken, quiet: bool) {
    let Ok(left) = (at - Utc::now()).to_std() else {
        return;
    };
    if !quiet {
        eprintln!(
            "finalping: waiting {:.1} s until the common start at {} (Ctrl-C cancels)",
            left.as_secs_f64(),
            rfc3339(at)
        );
    }
    tokio::select! {
        _ = tokio::time::sleep(left) => {}
        _ = interrupt.cancelled() => {}
    }
}

/// How late `now` is after `at` (zero when early).
pub fn lateness(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - at).to_std().unwrap_or(Duration::ZERO)
}

/// Why a run that started `late` is invalid, if it is.
pub fn too_late(late: Duration) -> Option<String> {
    (late > START_TOLERANCE).then(|| {
        format!(
            "invalid: the schedule started {} ms after the common start time (tolerance {} ms), so this segment's load did not overlap the others' as planned; start segments earlier (a later --start-at) or look for a slow node",
            late.as_millis(),
            START_TOLERANCE.as_millis()
        )
    })
}

/// What a segment writes into the barrier folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyFile {
    pub run_id: String,
    pub index: u32,
    pub count: u32,
    /// When the segment was ready (RFC 3339 UTC, nanoseconds).
    pub ready_at: String,
    pub host: String,
    pub pid: u32,
}

impl ReadyFile {
    /// `ready_at` as a time (checked when the file is read).
    fn at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.ready_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The ready file's name of a segment.
pub fn ready_file_name(seg: Segment) -> String {
    format!("ready-{}.json", seg.folder_name())
}

/// Checks in to the barrier folder `dir` and waits (at most `timeout`) for
/// all segments of the run; returns the common start instant, or `None`
/// when interrupted while waiting. Says that it waits unless `quiet`.
pub async fn barrier(
    dir: &Path,
    run_id: &str,
    seg: Segment,
    timeout: Duration,
    interrupt: &CancellationToken,
    quiet: bool,
) -> Result<Option<DateTime<Utc>>, CliError> {
    let mine = ReadyFile {
        run_id: run_id.to_string(),
        index: seg.index(),
        count: seg.count(),
        ready_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id(),
    };
    write_ready(dir, &mine)?;
    if !quiet {
        eprintln!(
            "finalping: segment {seg} ready; waiting for all {} segments in {} (at most {})",
            seg.count(),
            dir.display(),
            crate::duration::HumanDuration(timeout)
        );
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let seen = read_ready(dir, &mine, timeout)?;
        if seen.len() == seg.count() as usize {
            return Ok(common_start(&seen));
        }
        if tokio::time::Instant::now() >= deadline {
            let missing: Vec<String> = (0..seg.count())
                .filter(|i| !seen.contains_key(i))
                .map(|i| i.to_string())
                .collect();
            return Err(CliError::usage(format!(
                "start barrier: after {} only {} of {} segments are ready in {} (missing: {}); start the missing segments with the same --run-id and --start-barrier, or raise --barrier-timeout",
                crate::duration::HumanDuration(timeout),
                seen.len(),
                seg.count(),
                dir.display(),
                missing.join(", ")
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(BARRIER_POLL) => {}
            _ = interrupt.cancelled() => return Ok(None),
        }
    }
}

/// The common start of the segments whose ready files are `seen`: the
/// latest ready time plus the margin.
pub fn common_start(seen: &BTreeMap<u32, ReadyFile>) -> Option<DateTime<Utc>> {
    let last = seen.values().filter_map(ReadyFile::at).max()?;
    let margin = chrono::Duration::from_std(BARRIER_MARGIN).unwrap_or_default();
    Some(last + margin)
}

fn write_ready(dir: &Path, ready: &ReadyFile) -> Result<(), CliError> {
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        CliError::usage(format!(
            "start barrier: cannot {what} {}: {e} (--start-barrier needs a folder every segment can write)",
            path.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("create the folder", dir, e))?;
    let seg = Segment::new(ready.index, ready.count).unwrap_or_default();
    let path = dir.join(ready_file_name(seg));
    let tmp = dir.join(format!(".{}.{}.tmp", ready_file_name(seg), ready.pid));
    let text = serde_json::to_vec_pretty(ready)
        .map_err(|e| CliError::internal(format!("ready file: {e}")))?;
    std::fs::write(&tmp, text).map_err(|e| fail("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| fail("rename into place", &path, e))
}

/// The ready files of `mine`'s run in `dir`, by segment index. A ready file
/// of another run, of another segment count, or older than the barrier
/// timeout before `mine` is an error: the folder is not this run's alone.
fn read_ready(
    dir: &Path,
    mine: &ReadyFile,
    timeout: Duration,
) -> Result<BTreeMap<u32, ReadyFile>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CliError::usage(format!("start barrier: cannot read {}: {e}", dir.display()))
    })?;
    let mut seen = BTreeMap::new();
    let stale_before = mine.at().unwrap_or_else(Utc::now)
        - chrono::Duration::from_std(timeout).unwrap_or_default();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("ready-segment-") && name.ends_with(".json")) {
            continue;
        }
        let path = entry.path();
        let ready = parse_ready(&path)?;
        let foreign = |why: String| {
            Err(CliError::usage(format!(
                "start barrier: {} {why}; give every run its own --start-barrier folder (or remove the file)",
                path.display()
            )))
        };
        if ready.run_id != mine.run_id {
            return foreign(format!(
                "belongs to run `{}`, not `{}`",
                ready.run_id, mine.run_id
            ));
        }
        if ready.count != mine.count || ready.index >= ready.count {
            return foreign(format!(
                "is segment {}/{}, but this run has {} segments",
                ready.index, ready.count, mine.count
            ));
        }
        let Some(at) = ready.at() else {
            return foreign(format!("has no valid `ready_at` (`{}`)", ready.ready_at));
        };
        if at < stale_before {
            return foreign(format!(
                "was written at {}, longer than --barrier-timeout before this segment: it is left over from an earlier run with the same id",
                rfc3339(at)
            ));
        }
        seen.insert(ready.index, ready);
    }
    Ok(seen)
}

fn parse_ready(path: &PathBuf) -> Result<ReadyFile, CliError> {
    let text = std::fs::read(path).map_err(|e| {
        CliError::usage(format!(
            "start barrier: cannot read {}: {e}",
            path.display()
        ))
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        CliError::usage(format!(
            "start barrier: {} is not a ready file written by finalping ({e}); remove it",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(index: u32, count: u32, at: &str) -> ReadyFile {
        ReadyFile {
            run_id: "r1".into(),
            index,
            count,
            ready_at: at.to_string(),
            host: "h".into(),
            pid: 1,
        }
    }

    #[test]
    fn common_start_is_the_last_ready_time_plus_the_margin() {
        let mut seen = BTreeMap::new();
        seen.insert(0, ready(0, 2, "2026-01-01T00:00:05.250Z"));
        seen.insert(1, ready(1, 2, "2026-01-01T00:00:03Z"));
        let at = common_start(&seen).unwrap();
        assert_eq!(rfc3339(at), "2026-01-01T00:00:07.250Z");
    }

    #[test]
    fn a_start_more_than_a_day_ahead_is_refused() {
        let now = Utc::now();
        assert!(check_start_at(now + chrono::Duration::hours(23), now).is_ok());
        assert!(check_start_at(now - chrono::Duration::hours(1), now).is_ok());
        let e = check_start_at(now + chrono::Duration::days(365), now).unwrap_err();
        assert!(e.message.contains("at most 24 h ahead"), "{}", e.message);
    }

    #[test]
    fn lateness_beyond_the_tolerance_is_invalid() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let early = at - chrono::Duration::milliseconds(5);
        assert_eq!(lateness(at, early), Duration::ZERO);
        let late = at + chrono::Duration::milliseconds(1500);
        assert_eq!(lateness(at, late), Duration::from_millis(1500));
        assert!(too_late(Duration::from_millis(1000)).is_none());
        let why = too_late(Duration::from_millis(1500)).unwrap();
        assert!(
            why.starts_with("invalid: the schedule started 1500 ms after"),
            "{why}"
        );
    }

    #[test]
    fn ready_files_of_another_run_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mine = ready(0, 2, "2026-01-01T00:00:00Z");
        write_ready(dir.path(), &mine).unwrap();
        let mut other = ready(1, 2, "2026-01-01T00:00:00Z");
        other.run_id = "r2".into();
        write_ready(dir.path(), &other).unwrap();
        let e = read_ready(dir.path(), &mine, Duration::from_secs(60)).unwrap_err();
        assert!(e.message.contains("belongs to run `r2`"), "{}", e.message);
        let three = ready(1, 3, "2026-01-01T00:00:00Z");
        write_ready(dir.path(), &three).unwrap();
        std::fs::remove_file(dir.path().join("ready-segment-1-of-2.json")).unwrap();
        let e = read_ready(dir.path(), &mine, Duration::from_secs(60)).unwrap_err();
        assert!(
            e.message.contains("this run has 2 segments"),
            "{}",
            e.message
        );
    }
}
