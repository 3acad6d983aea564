//! `finalping report DIR`: regenerate a finished run's summary.md,
//! percentiles.csv, manifest.json and junit.xml from its summary.json (the
//! time series and `.hlog` files are raw data and are not rewritten).

use crate::cli::ReportArgs;
use crate::error::{exit, CliError};
use crate::report::{self, RunReport};

pub fn report(args: &ReportArgs) -> Result<i32, CliError> {
    let path = args.dir.join("summary.json");
    let text = crate::fsio::read_to_string_capped(&path, crate::fsio::MAX_REPORT_FILE_BYTES)
        .map_err(|e| {
            CliError::usage(format!(
                "{}: cannot read: {e} (pass the report folder of a finished run)",
                path.display()
            ))
        })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::usage(format!("{}: not JSON: {e}", path.display())))?;
    report::json::check_schema_version(&value)
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    let run: RunReport = serde_json::from_value(value).map_err(|e| {
        CliError::usage(format!(
            "{}: not a finalping summary.json (schema_version {}): {e}",
            path.display(),
            report::SCHEMA_VERSION
        ))
    })?;
    let out = args.out.as_ref().unwrap_or(&args.dir);
    std::fs::create_dir_all(out)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", out.display())))?;
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
