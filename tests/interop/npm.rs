//! Installs the interop packages (`npm ci` from the committed lock) when any
//! of them is missing. Shared by the interop tests and `benches/reference.rs`
//! (each includes this file with `#[path]`).

use std::path::Path;
use std::process::{Command, Stdio};

/// `npm ci` in `dir` unless every one of `packages` is installed there; the
/// error names the fix.
pub fn npm_ci_if_missing(dir: &Path, packages: &[&str]) -> Result<(), String> {
    let missing = || {
        packages
            .iter()
            .map(|pkg| dir.join("node_modules").join(pkg).join("package.json"))
            .find(|p| !p.is_file())
    };
    if missing().is_none() {
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run npm ({e}): install Node.js 20+ and npm"))?;
    if !status.success() {
        return Err(format!("`npm ci` in {} failed: {status}", dir.display()));
    }
    match missing() {
        Some(p) => Err(format!("{} is missing after `npm ci`", p.display())),
        None => Ok(()),
    }
}
