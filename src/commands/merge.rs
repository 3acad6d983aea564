//! `finalping merge SEGMENT_DIR... --out DIR`: reads the segment run folders,
//! merges them (see [`crate::merge`]), writes every report into `DIR` with the
//! usual exporters, prints the final table and exits with the merged run's
//! status (0/1/2; 3 when the folders are refused).

use crate::cli::{MergeArgs, SelfCheckMode};
use crate::error::{exit, CliError};
use crate::merge::{self, MergeError, MergeOptions};
use crate::report;

pub fn merge(args: &MergeArgs) -> Result<i32, CliError> {
    let options = MergeOptions {
        strict_self_check: args.self_check == SelfCheckMode::Strict,
        start_tolerance: args.start_tolerance.as_duration(),
        interrupted: false,
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let code = merge_into(
        &args.dirs,
        &args.out,
        &options,
        &args.output_format,
        args.quiet,
    )?;
    Ok(code)
}

/// Merges `dirs` into `out` and returns the exit code of the merged run
/// (also used by `run --workers`).
pub(super) fn merge_into(
    dirs: &[std::path::PathBuf],
    out: &std::path::Path,
    options: &MergeOptions,
    formats: &[crate::cli::OutputFormat],
    quiet: bool,
) -> Result<i32, CliError> {
    let set = merge::read_segments(dirs).map_err(to_cli)?;
    let mut merged = merge::merge(&set, options).map_err(to_cli)?;
    merged.formats = (!formats.is_empty()).then(|| formats.to_vec());
    std::fs::create_dir_all(out).map_err(|e| {
        CliError::usage(format!(
            "cannot create the report folder {}: {e} (choose another with --out)",
            out.display()
        ))
    })?;
    report::write_all(&merged, out).map_err(|e| CliError::internal(e.to_string()))?;
    if !quiet {
        report::print_final_table(&merged);
    }
    println!(
        "merged {} segment{} into {}",
        set.segments.len(),
        if set.segments.len() == 1 { "" } else { "s" },
        out.display()
    );
    Ok(merged.status.exit_code())
}

fn to_cli(e: MergeError) -> CliError {
    let code = match e {
        MergeError::NothingToMerge(_) => exit::INVALID,
        MergeError::Corrupt { .. } => exit::INVALID,
        MergeError::NotARunFolder { .. } | MergeError::Refused(_) => exit::USAGE,
    };
    CliError {
        code,
        message: e.to_string(),
    }
}
