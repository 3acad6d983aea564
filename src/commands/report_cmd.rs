//! `finalping report DIR`: regenerate a finished run's summary.md,
//! percentiles.csv, manifest.json and junit.xml from its summary.json (the
//! time series and `.hlog` files are raw data and are not rewritten). A run
//! that never finished (its summary.json still says `incomplete`: killed)
//! gets its summary, tables and HTML rebuilt from its live files instead,
//! still marked incomplete (see `report::restore`).

use crate::cli::OutputFormat;
use crate::cli::ReportArgs;
use crate::error::{exit, CliError};
use crate::report::{self, RunReport};
use crate::verdict::RunStatus;
use std::path::Path;

pub fn report(args: &ReportArgs) -> Result<i32, CliError> {
    let path = args.dir.join("summary.json");
    let run = report::json::read_summary(&path).map_err(|e| {
        CliError::usage(format!(
            "{}: {e} (pass the report folder of a finished run)",
            path.display()
        ))
    })?;
    let out = args.out.as_ref().unwrap_or(&args.dir);
    std::fs::create_dir_all(out)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", out.display())))?;
    if run.status == RunStatus::Incomplete {
        return rebuild_incomplete(args, &run, out);
    }
    let mut written = Vec::new();
    for exporter in report::exporters() {
        // In place, keep the source summary and the original report.html (its
        // time charts need the run's timeline, which summary.json lacks).
        if out == &args.dir && ["summary.json", report::HTML_FILE].contains(&exporter.file_name()) {
            continue;
        }
        if !exporter.wanted(&run) {
            continue;
        }
        let path = out.join(exporter.file_name());
        let result = std::fs::File::create(&path).and_then(|f| {
            let mut w = std::io::BufWriter::new(f);
            exporter.write(&run, &mut w)?;
            std::io::Write::flush(&mut w)
        });
        result.map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?;
        written.push(exporter.file_name());
    }
    report::print_final_table(&run);
    println!("regenerated in {}: {}", out.display(), written.join(", "));
    Ok(exit::PASS)
}

/// A run that never wrote its final reports: rebuild summary, tables and
/// HTML from its live files (`timeseries.csv`, `.hlog`), which stay as they are.
fn rebuild_incomplete(args: &ReportArgs, started: &RunReport, out: &Path) -> Result<i32, CliError> {
    let mut run = report::restore(&args.dir, started).map_err(|e| {
        CliError::usage(format!(
            "{}: the run did not finish and its live files cannot be read: {e}",
            args.dir.display()
        ))
    })?;
    run.formats = Some(vec![
        OutputFormat::Markdown,
        OutputFormat::Csv,
        OutputFormat::Junit,
        OutputFormat::Html,
    ]);
    let written = report::write_all(&run, out).map_err(|e| CliError::usage(e.to_string()))?;
    report::print_final_table(&run);
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    println!(
        "rebuilt an incomplete run in {}: {}",
        out.display(),
        names.join(", ")
    );
    Ok(exit::PASS)
}
