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

#[cfg(test)]
mod tests {
    use super::*;

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
