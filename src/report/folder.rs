//! Where a run's reports go: its run id (`<scenario-slug>-<UTC
//! yyyymmdd-hhmmss>-<4 hex>`, sortable and unique enough) and its folder
//! (`reports/<run-id>`, a segment's `reports/<run-id>/segment-<i>-of-<N>`),
//! claimed for the run before anything is written into it.

use crate::engine::Segment;
use std::path::{Path, PathBuf};

/// A new run id for a scenario named `name`, started `at`.
pub fn run_id(name: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{}-{}-{:04x}",
        crate::scenario::name_slug(name, 6),
        at.format("%Y%m%d-%H%M%S"),
        rand::random::<u16>()
    )
}

/// `reports/<run-id>` for a whole run; `reports/<run-id>/segment-<i>-of-<N>`
/// for a segment, so the segments of one run sit side by side in its folder.
pub fn default_dir(run_id: &str, segment: Segment) -> PathBuf {
    let run = PathBuf::from("reports").join(run_id);
    if segment.is_whole() {
        run
    } else {
        run.join(segment.folder_name())
    }
}

/// The run id and report folder of a run, claimed for it: `out` (or, with a
/// given `run_id`, the default folder of that id) must be empty or new, or is
/// cleared with `overwrite`; a generated id gets a new id until its default
/// folder is new. The error says why and how to choose another folder.
pub fn claim(
    name: &str,
    run_id: Option<&str>,
    out: Option<&Path>,
    overwrite: bool,
    segment: Segment,
) -> Result<(String, PathBuf), String> {
    if let Some(id) = run_id {
        let dir = out.map_or_else(|| default_dir(id, segment), Path::to_path_buf);
        crate::fsio::claim_run_dir(&dir, overwrite, id)?;
        return Ok((id.to_string(), dir));
    }
    if let Some(out) = out {
        let id = self::run_id(name, chrono::Utc::now());
        crate::fsio::claim_run_dir(out, overwrite, &id)?;
        return Ok((id, out.to_path_buf()));
    }
    let mut last = String::new();
    for _ in 0..16 {
        let id = self::run_id(name, chrono::Utc::now());
        let dir = default_dir(&id, segment);
        if dir.exists() {
            continue;
        }
        match crate::fsio::claim_run_dir(&dir, false, &id) {
            Ok(()) => return Ok((id, dir)),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "no free report folder under reports/: {last} (choose one with --out)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_is_a_slug_with_time() {
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
        let id = run_id("My Quick  start!", at);
        assert!(id.starts_with("my-quick-start-19700101-000000-"), "{id}");
    }
}
