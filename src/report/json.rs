//! `summary.json`: the whole [`RunReport`] (versioned by `schema_version`).

use super::{Exporter, RunReport};
use std::io::Write;

pub struct SummaryJson;

impl Exporter for SummaryJson {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }

    fn write(&self, report: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)
    }
}
