//! `summary.json`: the whole [`RunReport`] (versioned by `schema_version`).

use super::{Exporter, RunReport};
use std::io::Write;
use std::path::Path;

pub struct SummaryJson;

/// Checks the `schema_version` of a read `summary.json`: a version this
/// finalping does not know (newer, or missing) is refused with what to do.
pub fn check_schema_version(summary: &serde_json::Value) -> Result<(), String> {
    match summary.get("schema_version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(super::SCHEMA_VERSION) => Ok(()),
        Some(v) => Err(format!(
            "schema_version {v} is not the one this finalping {} reads ({}): use the finalping version that wrote it",
            env!("CARGO_PKG_VERSION"),
            super::SCHEMA_VERSION
        )),
        None => Err("no schema_version: not a finalping summary.json".to_string()),
    }
}

/// Why a `summary.json` could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum SummaryReadError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a finalping summary.json: {0}")]
    Invalid(String),
}

/// Reads a `summary.json` back as a typed [`RunReport`]: size-capped, its
/// `schema_version` checked first, so every reader (compare, report, merge,
/// capacity) refuses the same files with the same words.
pub fn read_summary(path: &Path) -> Result<RunReport, SummaryReadError> {
    let text = crate::fsio::read_to_string_capped(path, crate::fsio::MAX_REPORT_FILE_BYTES)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| SummaryReadError::Invalid(format!("not JSON: {e}")))?;
    check_schema_version(&value).map_err(SummaryReadError::Invalid)?;
    serde_json::from_value(value).map_err(|e| {
        SummaryReadError::Invalid(format!("{e} (schema_version {})", super::SCHEMA_VERSION))
    })
}

impl Exporter for SummaryJson {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }

    fn write(&self, report: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)
    }
}
