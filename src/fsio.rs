//! Bounded reads and atomic writes of the files finalping reads and writes:
//! every file read from a path a user gives (scenario, feeder CSV, emulator
//! config, report folder) goes through [`read_capped`], so `/dev/zero` or a
//! huge file is an error, not unbounded memory; every report file is written
//! through [`write_atomic`] (temp file + rename), so a reader never sees a
//! half-written file.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Largest scenario or emulator config file read (YAML).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Largest feeder CSV file read.
pub const MAX_FEEDER_BYTES: u64 = 256 << 20;
/// Largest report file read (`summary.json`, `.hlog`).
pub const MAX_REPORT_FILE_BYTES: u64 = 512 << 20;

/// Reads at most `cap` bytes of `path`; a longer file (or an endless one such
/// as `/dev/zero`) is an `InvalidData` error naming the cap.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "file is larger than {} MiB, the limit for this file",
                cap >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_to_string_capped(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_capped(path, cap)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()))
}

/// The temp file [`write_atomic`] writes first: hidden, beside the target.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `path` as a whole or not at all: `write` fills a temp file beside
/// it, which is flushed, synced and renamed over `path`. On error the temp
/// file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut out = io::BufWriter::new(file);
        write(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// [`write_atomic_with`] for bytes already in memory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// The marker a run leaves in its folder (created exclusively, so two runs
/// started at once into one folder cannot both own it).
pub const RUN_MARKER: &str = ".finalping-run";

/// Makes `dir` the folder of one run: refuses a folder that already holds
/// files unless `overwrite` (which clears it first), creates it if missing and
/// claims it with [`RUN_MARKER`] holding `run_id`. The error says what to do.
pub fn claim_run_dir(dir: &Path, overwrite: bool, run_id: &str) -> Result<(), String> {
    let occupied = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) if dir.exists() && !dir.is_dir() => {
            return Err(format!("{} is not a folder ({e})", dir.display()))
        }
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    if occupied {
        if !overwrite {
            return Err(format!(
                "the report folder {} is not empty (a report folder belongs to one run): \
                 choose another --out, or pass --overwrite to clear it first",
                dir.display()
            ));
        }
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("--overwrite: cannot clear {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create the report folder {}: {e} (choose another with --out)",
            dir.display()
        )
    })?;
    let marker = dir.join(RUN_MARKER);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .and_then(|mut f| writeln!(f, "{run_id}"))
        .map_err(|e| {
            format!(
                "the report folder {} is being used by another run ({e}): choose another --out",
                dir.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_folder_belongs_to_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r");
        claim_run_dir(&out, false, "a").unwrap();
        let again = claim_run_dir(&out, false, "b").unwrap_err();
        assert!(again.contains("--overwrite"), "{again}");
        std::fs::write(out.join("old.hlog"), "x").unwrap();
        claim_run_dir(&out, true, "c").unwrap();
        assert!(!out.join("old.hlog").exists());
        assert_eq!(
            std::fs::read_to_string(out.join(RUN_MARKER)).unwrap(),
            "c\n"
        );
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(claim_run_dir(&file, true, "d").is_err());
    }

    #[test]
    fn endless_files_are_refused() {
        let err = read_capped(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let failed = write_atomic_with(&p, |_| Err(io::Error::other("disk full")));
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(read_capped(&p, 3).unwrap(), b"two");
        assert!(read_capped(&p, 2).is_err());
    }
}
