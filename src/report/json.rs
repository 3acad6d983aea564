//! `summary.json`: the whole [`RunReport`] (versioned by `schema_version`).

use super::{Exporter, RunReport};
use std::io::Write;

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

impl Exporter for SummaryJson {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }

    fn write(&self, report: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)
    }
}
