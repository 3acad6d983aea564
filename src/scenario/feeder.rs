//! CSV data feeders: `feeders: { users: { file: data/users.csv, mode: ... } }`
//! in a scenario, `{{users.email}}` in its templates. Owns the feeder model
//! ([`FeederConfig`], [`FeederMode`]), reading the CSV files at load time
//! ([`FeederTables`]), resolving `{{feeder.column}}` references while a
//! scenario is parsed, and the run-time row picker ([`Feeders`] →
//! [`FeederRows`], one row per feeder per VU iteration).
//!
//! Loading takes two passes over the YAML (see `scenario::load_str_in`):
//! the first reads only `feeders:` and loads every CSV file (a bad file is an
//! error at the position of its `file:` value); the second parses the whole
//! scenario with the feeders' columns known, so a template naming an unknown
//! feeder or column is an error at the position of that template — whatever
//! the order of `feeders:` and `steps:` in the file. The state of each pass
//! lives in a thread-local for the duration of that pass only.

use super::TemplateError;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// How rows are handed out.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FeederMode {
    /// Rows in file order, shared by all VUs, starting over after the last row.
    #[default]
    Sequential,
    /// A uniformly random row per pick, from the VU's seeded generator.
    Random,
    /// Each row at most once in the whole run; a VU that finds none left stops.
    Unique,
}

impl FeederMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FeederMode::Sequential => "sequential",
            FeederMode::Random => "random",
            FeederMode::Unique => "unique",
        }
    }
}

/// A feeder's name (the `users` of `{{users.email}}`): letters, digits, `_`
/// and `-`, not starting with a digit (validated in `fields`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct FeederName(pub(crate) String);

impl FeederName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FeederName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `feeders:` entry as written (what serialising a scenario shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeederConfig {
    /// CSV file with a header row; relative to the scenario file's folder.
    #[serde(deserialize_with = "super::fields::feeder_file")]
    pub file: String,
    #[serde(default)]
    pub mode: FeederMode,
}

// ------------------------------------------------------------- CSV files

/// Why a feeder's CSV file cannot be used. `Display` says what; `hint` how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum FeederFileError {
    #[error("cannot read feeder file `{file}` ({}): {source}", path.display())]
    Read {
        file: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("feeder file `{file}` is empty")]
    Empty { file: String },
    #[error("feeder file `{file}` has a header row but no data rows")]
    NoRows { file: String },
    #[error("feeder file `{file}`, line {line}: {what}")]
    Malformed {
        file: String,
        line: u64,
        what: String,
        hint: String,
    },
    #[error("feeder file `{file}` has an empty column name (column {index} of the header row)")]
    EmptyColumn { file: String, index: usize },
    #[error("feeder file `{file}` has the column `{name}` twice")]
    DuplicateColumn { file: String, name: String },
    #[error("`file` is empty")]
    NoPath,
}

impl FeederFileError {
    /// How to fix it, for the `hint:` line.
    pub fn hint(&self) -> String {
        const HEADER: &str =
            "the first line names the columns (e.g. `name,email`), each further line is one row";
        match self {
            FeederFileError::Read { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => "a relative `file` starts from the scenario file's folder; check the name or give an absolute path".to_string(),
                std::io::ErrorKind::PermissionDenied => "make the file readable (`chmod +r`)".to_string(),
                std::io::ErrorKind::IsADirectory => "point `file` at a .csv file, not a folder".to_string(),
                _ => "point `file` at a readable CSV file".to_string(),
            },
            FeederFileError::Empty { .. } => format!("write a CSV file: {HEADER}"),
            FeederFileError::NoRows { .. } => format!("add at least one row under the header: {HEADER}"),
            FeederFileError::Malformed { hint, .. } => hint.clone(),
            FeederFileError::EmptyColumn { .. } | FeederFileError::DuplicateColumn { .. } => {
                "give every column a unique, non-empty name in the header row; templates refer to columns by name, e.g. `{{users.email}}`".to_string()
            }
            FeederFileError::NoPath => {
                "write the path of a CSV file, e.g. `file: data/users.csv`".to_string()
            }
        }
    }
}

/// The parsed contents of one CSV file: its header and rows (all the same width).
#[derive(Debug)]
pub struct CsvData {
    /// The resolved path it was read from.
    pub path: PathBuf,
    pub columns: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

impl CsvData {
    /// Reads a CSV file with a header row. `file` is the path as written (for messages).
    pub fn read(file: &str, path: &Path) -> Result<CsvData, FeederFileError> {
        let bytes =
            crate::fsio::read_capped(path, crate::fsio::MAX_FEEDER_BYTES).map_err(|source| {
                FeederFileError::Read {
                    file: file.to_string(),
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let mut data = CsvData::parse(file, &bytes)?;
        data.path = path.to_path_buf();
        Ok(data)
    }

    /// Parses CSV text (UTF-8, optional BOM, header row first).
    pub fn parse(file: &str, bytes: &[u8]) -> Result<CsvData, FeederFileError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::Headers)
            .from_reader(bytes);
        let malformed = |e: csv::Error| malformed(file, e);
        let header = reader.headers().map_err(malformed)?.clone();
        if header.is_empty() || header.iter().all(str::is_empty) {
            return Err(FeederFileError::Empty {
                file: file.to_string(),
            });
        }
        let mut columns: Vec<String> = Vec::with_capacity(header.len());
        for (i, name) in header.iter().enumerate() {
            if name.is_empty() {
                return Err(FeederFileError::EmptyColumn {
                    file: file.to_string(),
                    index: i + 1,
                });
            }
            if columns.iter().any(|c| c == name) {
                return Err(FeederFileError::DuplicateColumn {
                    file: file.to_string(),
                    name: name.to_string(),
                });
            }
            columns.push(name.to_string());
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            rows.push(record.map_err(malformed)?);
        }
        if rows.is_empty() {
            return Err(FeederFileError::NoRows {
                file: file.to_string(),
            });
        }
        rows.shrink_to_fit();
        Ok(CsvData {
            path: PathBuf::from(file),
            columns,
            rows,
        })
    }

    /// Number of data rows (>= 1).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value in `row`, `column` (0-based), if both exist.
    pub fn value(&self, row: usize, column: usize) -> Option<&str> {
        self.rows.get(row)?.get(column)
    }
}

fn malformed(file: &str, e: csv::Error) -> FeederFileError {
    let line = match e.kind() {
        csv::ErrorKind::UnequalLengths { pos: Some(p), .. }
        | csv::ErrorKind::Utf8 { pos: Some(p), .. } => p.line(),
        _ => 0,
    };
    let (what, hint) = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => (
            format!("{len} fields, but the header has {expected_len}"),
            "give every row as many fields as the header; quote fields that contain commas, e.g. `\"Doe, Jane\"`".to_string(),
        ),
        csv::ErrorKind::Utf8 { .. } => (
            "not valid UTF-8".to_string(),
            "save the file as UTF-8 text".to_string(),
        ),
        _ => (e.to_string(), "fix the CSV syntax at that line".to_string()),
    };
    FeederFileError::Malformed {
        file: file.to_string(),
        line,
        what,
        hint,
    }
}

/// One declared feeder with its data, in the order templates index them.
#[derive(Debug)]
pub struct FeederTable {
    pub name: String,
    pub mode: FeederMode,
    /// The `file` as written in the scenario.
    pub file: String,
    pub data: Arc<CsvData>,
    /// Some template refers to this feeder; only those are picked from.
    pub used: bool,
}

/// The loaded feeders of a scenario, sorted by name; cheap to clone. Not
/// serialised (a scenario serialises its `feeders:` config instead).
#[derive(Clone, Default)]
pub struct FeederTables(Arc<[FeederTable]>);

impl FeederTables {
    pub fn new(tables: Vec<FeederTable>) -> FeederTables {
        FeederTables(tables.into())
    }

    pub fn iter(&self) -> impl Iterator<Item = &FeederTable> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&FeederTable> {
        self.0.get(index)
    }
}

impl fmt::Debug for FeederTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|t| (&t.name, (t.file.as_str(), t.data.len()))),
            )
            .finish()
    }
}

// -------------------------------------------------- load-time thread-locals

/// Pass 1: where relative files start and what has been read so far (by `file` as written).
struct Loader {
    base_dir: PathBuf,
    read: BTreeMap<String, Arc<CsvData>>,
}

/// Pass 2: how `{{feeder.column}}` references are checked.
enum Schema {
    /// Against these feeders (name, columns, file), noting which are used.
    Checked {
        feeders: Vec<(String, Vec<String>, String)>,
        used: Vec<bool>,
    },
    /// Accept anything (a parse whose only purpose is to find an earlier error).
    Lenient,
}

thread_local! {
    static LOADER: RefCell<Option<Loader>> = const { RefCell::new(None) };
    static SCHEMA: RefCell<Option<Schema>> = const { RefCell::new(None) };
}

/// Restores a thread-local slot when dropped (also on panic).
struct Restore<T: 'static> {
    key: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    prev: Option<Option<T>>,
}

impl<T: 'static> Drop for Restore<T> {
    fn drop(&mut self) {
        if let Some(prev) = self.prev.take() {
            self.key.with(|slot| *slot.borrow_mut() = prev);
        }
    }
}

fn install<T: 'static>(
    key: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    value: T,
) -> Restore<T> {
    let prev = key.with(|slot| slot.borrow_mut().replace(value));
    Restore {
        key,
        prev: Some(prev),
    }
}

/// Runs pass 1 (`f` deserialises the `feeders:` block): every `file:` seen is
/// read relative to `base_dir`. Returns `f`'s result and the files read.
pub(crate) fn with_loader<R>(
    base_dir: &Path,
    f: impl FnOnce() -> R,
) -> (R, BTreeMap<String, Arc<CsvData>>) {
    let restore = install(
        &LOADER,
        Loader {
            base_dir: base_dir.to_path_buf(),
            read: BTreeMap::new(),
        },
    );
    let out = f();
    let read = LOADER
        .with(|slot| slot.borrow_mut().take())
        .map(|l| l.read)
        .unwrap_or_default();
    drop(restore);
    (out, read)
}

/// Called for each `file:` value: in pass 1, reads the file (once per path).
pub(crate) fn file_seen(file: &str) -> Result<(), FeederFileError> {
    if file.trim().is_empty() {
        return Err(FeederFileError::NoPath);
    }
    LOADER.with(|slot| {
        let mut slot = slot.borrow_mut();
        let Some(loader) = slot.as_mut() else {
            return Ok(());
        };
        if !loader.read.contains_key(file) {
            let path = loader.base_dir.join(file);
            let data = CsvData::read(file, &path)?;
            loader.read.insert(file.to_string(), Arc::new(data));
        }
        Ok(())
    })
}

/// Builds the tables of pass 1's `feeders:` (sorted by name) from the files read.
pub(crate) fn tables_from(
    config: &BTreeMap<FeederName, FeederConfig>,
    read: &BTreeMap<String, Arc<CsvData>>,
) -> Vec<FeederTable> {
    config
        .iter()
        .filter_map(|(name, c)| {
            read.get(&c.file).map(|data| FeederTable {
                name: name.0.clone(),
                mode: c.mode,
                file: c.file.clone(),
                data: data.clone(),
                used: false,
            })
        })
        .collect()
}

/// Runs pass 2 with `{{feeder.column}}` checked against `tables`; marks the
/// tables that some template uses.
pub(crate) fn with_schema<R>(tables: &mut [FeederTable], f: impl FnOnce() -> R) -> R {
    let feeders = tables
        .iter()
        .map(|t| (t.name.clone(), t.data.columns.clone(), t.file.clone()))
        .collect();
    let restore = install(
        &SCHEMA,
        Schema::Checked {
            feeders,
            used: vec![false; tables.len()],
        },
    );
    let out = f();
    if let Some(Schema::Checked { used, .. }) = SCHEMA.with(|slot| slot.borrow_mut().take()) {
        for (t, u) in tables.iter_mut().zip(used) {
            t.used = u;
        }
    }
    drop(restore);
    out
}

/// Runs `f` with every `{{feeder.column}}` accepted unchecked.
pub(crate) fn with_lenient_schema<R>(f: impl FnOnce() -> R) -> R {
    let _restore = install(&SCHEMA, Schema::Lenient);
    f()
}

/// A resolved `{{feeder.column}}`: indices into [`FeederTables`] / its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldRef {
    pub feeder: usize,
    pub column: usize,
}

/// Resolves `{{feeder.column}}` against the feeders of the scenario being parsed.
pub(crate) fn resolve(feeder: &str, column: &str) -> Result<FieldRef, TemplateError> {
    SCHEMA.with(|slot| {
        let mut slot = slot.borrow_mut();
        match slot.as_mut() {
            None => Err(TemplateError::UnknownFeeder {
                name: feeder.to_string(),
                column: column.to_string(),
                declared: Vec::new(),
            }),
            Some(Schema::Lenient) => Ok(FieldRef {
                feeder: usize::MAX,
                column: usize::MAX,
            }),
            Some(Schema::Checked { feeders, used }) => {
                let Some((fi, (_, columns, file))) = feeders
                    .iter()
                    .enumerate()
                    .find(|(_, (n, _, _))| n == feeder)
                else {
                    return Err(TemplateError::UnknownFeeder {
                        name: feeder.to_string(),
                        column: column.to_string(),
                        declared: feeders.iter().map(|(n, _, _)| n.clone()).collect(),
                    });
                };
                let Some(ci) = columns.iter().position(|c| c == column) else {
                    return Err(TemplateError::UnknownColumn {
                        feeder: feeder.to_string(),
                        column: column.to_string(),
                        file: file.clone(),
                        columns: columns.clone(),
                    });
                };
                if let Some(u) = used.get_mut(fi) {
                    *u = true;
                }
                Ok(FieldRef {
                    feeder: fi,
                    column: ci,
                })
            }
        }
    })
}

// ---------------------------------------------------------------- run time

/// The feeders of one run: the tables plus a cursor per feeder. Shared by all
/// VUs (`Arc`); picking is lock-free (one atomic add per sequential/unique feeder).
pub struct Feeders {
    tables: FeederTables,
    /// Next row, per feeder (sequential: modulo the row count; unique: until exhausted).
    cursors: Box<[AtomicU64]>,
    /// Indices of the feeders some template uses: the only ones picked from.
    used: Box<[usize]>,
    /// This process's picks are picks `first`, `first + step`, … of the run
    /// (execution segments; `0, 1` for a whole run).
    first: u64,
    step: u64,
    exhaustion_logged: AtomicBool,
}

impl fmt::Debug for Feeders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feeders")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

/// A `unique` feeder has handed out all its rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("feeder `{feeder}` (mode unique) has no rows left: all {rows} rows are used; VU {vu} stops before its iteration {iteration}")]
pub struct FeederExhausted {
    pub feeder: String,
    pub rows: usize,
    pub vu: u64,
    pub iteration: u64,
}

/// The rows one VU iteration sees: one per feeder, so `{{users.email}}` and
/// `{{users.password}}` of the same iteration come from the same row.
#[derive(Debug, Clone, Default)]
pub struct FeederRows {
    tables: FeederTables,
    /// Row index per feeder (`usize::MAX` for feeders no template uses).
    rows: Vec<usize>,
}

impl FeederRows {
    /// The value of `column` in this iteration's row of `feeder` (indices as
    /// resolved at load time); `None` if there is no such feeder or row.
    pub fn value(&self, feeder: usize, column: usize) -> Option<&str> {
        let row = *self.rows.get(feeder)?;
        self.tables.get(feeder)?.data.value(row, column)
    }

    /// The row index picked for `feeder`, if any.
    pub fn row(&self, feeder: usize) -> Option<usize> {
        self.rows.get(feeder).copied().filter(|r| *r != usize::MAX)
    }
}

impl Feeders {
    /// Fresh cursors over `tables` (every sequential feeder starts at its first row).
    pub fn new(tables: &FeederTables) -> Feeders {
        Feeders::strided(tables, 0, 1)
    }

    /// The feeders of execution segment `first` of `step`: its `n`-th pick of
    /// a feeder is the run's pick `first + n × step`. `sequential` feeders
    /// thus take rows `first, first + step, …` (wrapping around); `unique`
    /// feeders own exactly those rows below the row count, so no row is used
    /// by two segments and together they use every row once.
    pub fn strided(tables: &FeederTables, first: u64, step: u64) -> Feeders {
        Feeders {
            first,
            step: step.max(1),
            tables: tables.clone(),
            cursors: tables.iter().map(|_| AtomicU64::new(0)).collect(),
            used: tables
                .iter()
                .enumerate()
                .filter(|(_, t)| t.used)
                .map(|(i, _)| i)
                .collect(),
            exhaustion_logged: AtomicBool::new(false),
        }
    }

    /// True when no template uses a feeder (picking gives empty rows).
    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }

    /// Picks the rows for iteration `iteration` of VU `vu`; `rng` (the VU's
    /// generator, seeded from the run seed) drives `random` feeders. Fails when
    /// a `unique` feeder has no rows left: the VU should stop (the first such
    /// failure of the run is logged as a warning).
    pub fn pick<R: rand::Rng + ?Sized>(
        &self,
        vu: u64,
        iteration: u64,
        rng: &mut R,
    ) -> Result<FeederRows, FeederExhausted> {
        if self.used.is_empty() {
            return Ok(FeederRows {
                tables: self.tables.clone(),
                rows: Vec::new(),
            });
        }
        let mut rows = vec![usize::MAX; self.tables.len()];
        for &i in self.used.iter() {
            let (Some(table), Some(cursor), Some(slot)) =
                (self.tables.get(i), self.cursors.get(i), rows.get_mut(i))
            else {
                continue;
            };
            let len = table.data.len();
            if len == 0 {
                continue;
            }
            *slot = match table.mode {
                FeederMode::Sequential => {
                    let n = self.run_pick(cursor.fetch_add(1, Ordering::Relaxed));
                    usize::try_from(n % len as u64).unwrap_or(0)
                }
                FeederMode::Random => rng.random_range(0..len),
                FeederMode::Unique => {
                    let n = self.run_pick(cursor.fetch_add(1, Ordering::Relaxed));
                    match usize::try_from(n) {
                        Ok(row) if row < len => row,
                        _ => {
                            let e = FeederExhausted {
                                feeder: table.name.clone(),
                                rows: len,
                                vu,
                                iteration,
                            };
                            if !self.exhaustion_logged.swap(true, Ordering::Relaxed) {
                                let share = if self.step > 1 {
                                    format!(
                                        "; this execution segment owns rows {}, {}, … of them",
                                        self.first,
                                        self.first + self.step
                                    )
                                } else {
                                    String::new()
                                };
                                tracing::warn!("{e}{share} (further VUs stop silently; each stop is counted as `feeder_exhausted`)");
                            }
                            return Err(e);
                        }
                    }
                }
            };
        }
        Ok(FeederRows {
            tables: self.tables.clone(),
            rows,
        })
    }

    /// The run-wide number of this process's `n`-th pick.
    fn run_pick(&self, n: u64) -> u64 {
        n.saturating_mul(self.step).saturating_add(self.first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn table(name: &str, mode: FeederMode, csv: &str) -> FeederTable {
        FeederTable {
            name: name.to_string(),
            mode,
            file: format!("{name}.csv"),
            data: Arc::new(CsvData::parse(&format!("{name}.csv"), csv.as_bytes()).unwrap()),
            used: true,
        }
    }

    const USERS: &str = "name,email\nann,a@x\nbob,b@x\ncid,c@x\n";

    fn names(f: &Feeders, picks: usize, rng: &mut StdRng) -> Vec<String> {
        (0..picks)
            .map(|i| {
                let rows = f.pick(1, i as u64, rng).unwrap();
                rows.value(0, 0).unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn csv_parse_reads_header_rows_and_bom() {
        let d = CsvData::parse("u.csv", b"\xEF\xBB\xBF name , email\n\"Doe, Jane\",j@x\n").unwrap();
        assert_eq!(d.columns, ["name", "email"]);
        assert_eq!(d.len(), 1);
        assert_eq!(d.value(0, 0), Some("Doe, Jane"));
        assert_eq!(d.value(0, 2), None);
        assert_eq!(d.value(1, 0), None);
    }

    #[test]
    fn csv_parse_rejects_bad_files() {
        let e = CsvData::parse("u.csv", b"").unwrap_err();
        assert!(matches!(e, FeederFileError::Empty { .. }), "{e}");
        let e = CsvData::parse("u.csv", b"name,email\n").unwrap_err();
        assert!(matches!(e, FeederFileError::NoRows { .. }), "{e}");
        let e = CsvData::parse("u.csv", b"name,email\na,b\nc\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "feeder file `u.csv`, line 3: 1 fields, but the header has 2"
        );
        assert!(e.hint().contains("quote fields"), "{}", e.hint());
        let e = CsvData::parse("u.csv", b"name,,x\na,b,c\n").unwrap_err();
        assert!(
            matches!(e, FeederFileError::EmptyColumn { index: 2, .. }),
            "{e}"
        );
        let e = CsvData::parse("u.csv", b"a,b,a\n1,2,3\n").unwrap_err();
        assert!(matches!(e, FeederFileError::DuplicateColumn { .. }), "{e}");
        let e = CsvData::parse("u.csv", b"a,b\n1,\xFF\n").unwrap_err();
        assert!(e.to_string().contains("line 2: not valid UTF-8"), "{e}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let e =
            CsvData::read("data/nope.csv", Path::new("/nonexistent/data/nope.csv")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot read feeder file `data/nope.csv` (/nonexistent/data/nope.csv)"),
            "{msg}"
        );
        assert!(e.hint().contains("scenario file's folder"), "{}", e.hint());
    }

    #[test]
    fn sequential_wraps_around_and_is_shared() {
        let f = Feeders::new(&FeederTables::new(vec![table(
            "u",
            FeederMode::Sequential,
            USERS,
        )]));
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            names(&f, 7, &mut rng),
            ["ann", "bob", "cid", "ann", "bob", "cid", "ann"]
        );
        // Another VU continues the same sequence.
        let rows = f.pick(2, 0, &mut rng).unwrap();
        assert_eq!(rows.value(0, 0), Some("bob"));
        assert_eq!(rows.row(0), Some(1));
    }

    #[test]
    fn one_row_per_iteration_for_all_columns() {
        let f = Feeders::new(&FeederTables::new(vec![table(
            "u",
            FeederMode::Random,
            USERS,
        )]));
        let mut rng = StdRng::seed_from_u64(9);
        for i in 0..50 {
            let rows = f.pick(1, i, &mut rng).unwrap();
            let name = rows.value(0, 0).unwrap();
            let email = rows.value(0, 1).unwrap();
            assert_eq!(&email[..1], &name[..1], "row mixed up: {name} {email}");
        }
    }

    #[test]
    fn unique_hands_out_each_row_once_then_fails() {
        let f = Feeders::new(&FeederTables::new(vec![table(
            "u",
            FeederMode::Unique,
            USERS,
        )]));
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen: Vec<String> = (0..3u64)
            .map(|vu| {
                f.pick(vu + 1, 0, &mut rng)
                    .unwrap()
                    .value(0, 0)
                    .unwrap()
                    .to_string()
            })
            .collect();
        seen.sort();
        assert_eq!(seen, ["ann", "bob", "cid"]);
        let e = f.pick(4, 2, &mut rng).unwrap_err();
        assert_eq!(
            e,
            FeederExhausted {
                feeder: "u".into(),
                rows: 3,
                vu: 4,
                iteration: 2
            }
        );
        assert!(e.to_string().contains("all 3 rows are used"), "{e}");
        assert!(f.pick(5, 0, &mut rng).is_err(), "stays exhausted");
    }

    #[test]
    fn unique_rows_are_not_shared_between_threads() {
        let csv: String = std::iter::once("n".to_string())
            .chain((0..1000).map(|i| i.to_string()))
            .collect::<Vec<_>>()
            .join("\n");
        let f = Arc::new(Feeders::new(&FeederTables::new(vec![table(
            "u",
            FeederMode::Unique,
            &csv,
        )])));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let f = f.clone();
                std::thread::spawn(move || {
                    let mut rng = StdRng::seed_from_u64(t);
                    let mut got = Vec::new();
                    for i in 0..1000 {
                        match f.pick(t + 1, i, &mut rng) {
                            Ok(rows) => got.push(rows.row(0).unwrap()),
                            Err(_) => break,
                        }
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<usize> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn random_is_deterministic_per_seed_and_covers_rows() {
        let tables = FeederTables::new(vec![table("u", FeederMode::Random, USERS)]);
        let run = |seed| names(&Feeders::new(&tables), 60, &mut StdRng::seed_from_u64(seed));
        let a = run(42);
        assert_eq!(a, run(42));
        assert_ne!(a, run(43));
        for n in ["ann", "bob", "cid"] {
            assert!(a.iter().any(|x| x == n), "{n} never picked in {a:?}");
        }
    }

    #[test]
    fn unused_feeders_are_not_picked() {
        let mut unused = table("u", FeederMode::Unique, USERS);
        unused.used = false;
        let f = Feeders::new(&FeederTables::new(vec![unused]));
        assert!(f.is_empty());
        let mut rng = StdRng::seed_from_u64(1);
        for i in 0..10 {
            let rows = f.pick(1, i, &mut rng).unwrap();
            assert_eq!(rows.value(0, 0), None);
        }
    }

    #[test]
    fn templates_resolve_columns_and_render_one_row() {
        use crate::scenario::{Template, TemplateCtx, TemplateValue};
        let mut tables = vec![
            table("u", FeederMode::Sequential, USERS),
            table("zz", FeederMode::Unique, "k\n1\n"),
        ];
        for t in &mut tables {
            t.used = false;
        }
        let (t, v) = with_schema(&mut tables, || {
            let t = Template::parse("hi {{u.name}} <{{ u.email }}> #{{vu}}").unwrap();
            let v =
                TemplateValue::parse(serde_json::json!({"mail": "{{u.email}}", "n": 1})).unwrap();
            (t, v)
        });
        assert!(tables[0].used && !tables[1].used, "only `u` is referenced");
        assert!(t.uses_feeders() && !t.is_static());
        assert_eq!(t.source(), "hi {{u.name}} <{{ u.email }}> #{{vu}}");
        let feeders = Feeders::new(&FeederTables::new(tables));
        let mut rng = StdRng::seed_from_u64(1);
        for (i, (name, mail)) in [
            ("ann", "a@x"),
            ("bob", "b@x"),
            ("cid", "c@x"),
            ("ann", "a@x"),
        ]
        .into_iter()
        .enumerate()
        {
            let rows = feeders.pick(1, i as u64, &mut rng).unwrap();
            let ctx = TemplateCtx {
                vu: 3,
                iteration: i as u64,
                rows: Some(&rows),
                captured: None,
            };
            assert_eq!(t.render(&ctx), format!("hi {name} <{mail}> #3"));
            assert_eq!(v.render(&ctx), serde_json::json!({"mail": mail, "n": 1}));
        }
        // Unused `zz` (unique, 1 row) never runs out.
        for i in 0..5 {
            assert!(feeders.pick(2, i, &mut rng).is_ok());
        }
        // Without rows a feeder column renders empty.
        assert_eq!(t.render(&TemplateCtx::default()), "hi  <> #0");
    }

    #[test]
    fn unknown_feeder_or_column_lists_what_exists() {
        use crate::scenario::Template;
        let mut tables = vec![table("users", FeederMode::Sequential, USERS)];
        let e = with_schema(&mut tables, || Template::parse("{{user.email}}")).unwrap_err();
        assert_eq!(e.to_string(), "unknown feeder `user` in `{{user.email}}`");
        assert_eq!(e.hint(), "did you mean `users`? declared feeders: users");
        let e = with_schema(&mut tables, || Template::parse("{{users.mail}}")).unwrap_err();
        assert_eq!(e.to_string(), "feeder `users` has no column `mail`");
        assert_eq!(
            e.hint(),
            "did you mean `email`? columns in the header row of `users.csv`: name, email"
        );
        assert!(!tables[0].used);
        let e = Template::parse("{{users.email}}").unwrap_err();
        assert!(e.hint().starts_with("no feeders are declared; declare one at the top level, e.g. `feeders: { users: { file: data/users.csv } }`"), "{}", e.hint());
        let t = with_lenient_schema(|| Template::parse("{{any.thing}}")).unwrap();
        assert_eq!(t.render(&crate::scenario::TemplateCtx::default()), "");
    }
}
