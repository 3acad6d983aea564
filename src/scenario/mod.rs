//! Scenario files: the YAML model, loading with exact error positions,
//! templates (`{{vu}}`, `{{iteration}}`, `{{uuid}}`, `{{feeder.column}}`,
//! `${env:NAME}`), CSV data feeders and validation. Produces an immutable
//! [`Scenario`]; knows nothing about sockets.
//!
//! - `model`: the data types and their defaults.
//! - `fields`: validating deserialisers (every rule that rejects a value) and
//!   the YAML form of steps.
//! - `template`: template parsing and rendering; `think`: think-time ranges.
//! - `capture`: `capture:` / `if:` of steps and the per-iteration values.
//! - `feeder`: CSV feeders: reading the files, checking `{{feeder.column}}`
//!   references, and the run-time row picker [`Feeders`].
//! - `schema`: the JSON Schema of scenario files (`finalping schema`).
//! - `collect`: finding every independent problem of a file, not only the first.
//! - `error`: [`ScenarioError`], which renders `file:line:col: what`, the source
//!   line with a caret, and `hint: how to fix`.

pub mod capture;
mod collect;
pub mod error;
pub mod feeder;
mod fields;
pub mod model;
mod ordered;
pub mod schema;
pub mod template;
pub mod think;

pub use capture::{Capture, CaptureFrom, CaptureName, Captured, Condition, JsonPointer};
pub use collect::MAX_ERRORS;
pub use error::{Diagnostic, ScenarioError};
pub use feeder::{
    FeederConfig, FeederExhausted, FeederMode, FeederName, FeederRows, FeederTables, Feeders,
};
pub use fields::STEP_NAMES;
pub use model::*;
pub use template::{Template, TemplateCtx, TemplateError, TemplateValue};
pub use think::ThinkError;

use std::collections::BTreeMap;
use std::path::Path;

/// Reads and validates a scenario file; `${env:NAME}` comes from the process
/// environment, feeder files are relative to the scenario file's folder.
/// Like [`load`], with `path = value` settings applied to the YAML first
/// (`runtime.codec = json`, `load.vus = 20`; values are YAML scalars). Used by
/// `run --set` and `sweep`. Error positions then refer to the file as
/// rewritten, so the message names the settings.
pub fn load_with_settings(
    path: &Path,
    settings: &[(String, String)],
) -> Result<Scenario, ScenarioError> {
    if settings.is_empty() {
        return load(path);
    }
    let text = crate::fsio::read_to_string_capped(path, crate::fsio::MAX_CONFIG_BYTES)
        .map_err(|e| ScenarioError::read(path.to_path_buf(), e))?;
    let origin = format!("{} (with --set)", path.display());
    let options = crate::protocol::runtime::normalize::yaml_options();
    // In written order: the thresholds are judged and reported in it.
    let mut doc: ordered::Node = serde_saphyr::from_str_with_options(&text, options)
        .map_err(|e| ScenarioError::from_yaml(&e, &text, &origin))?;
    for (key, value) in settings {
        let parsed: ordered::Node = serde_saphyr::from_str(value)
            .unwrap_or_else(|_| ordered::Node::Leaf(serde_json::Value::String(value.clone())));
        doc.set_path(key, parsed);
    }
    let rewritten = serde_saphyr::to_string(&doc).unwrap_or(text);
    let base_dir = path.parent().unwrap_or(Path::new(""));
    load_str_in(&rewritten, &origin, base_dir)
}

pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = crate::fsio::read_to_string_capped(path, crate::fsio::MAX_CONFIG_BYTES)
        .map_err(|e| ScenarioError::read(path.to_path_buf(), e))?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    load_str_in(&text, &path.display().to_string(), base_dir)
}

/// Parses and validates scenario YAML; `origin` labels positions in errors
/// (usually the file name). `${env:NAME}` comes from the process environment;
/// feeder files are relative to the current directory (see [`load_str_in`]).
pub fn load_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    load_str_in(text, origin, Path::new(""))
}

/// Like [`load_str`], with relative feeder `file`s resolved against `base_dir`
/// (the scenario file's folder; an empty path = the current directory).
pub fn load_str_in(text: &str, origin: &str, base_dir: &Path) -> Result<Scenario, ScenarioError> {
    match load_once(text, origin, base_dir) {
        Err(ScenarioError::Invalid(first)) => Err(collect::more_errors(*first, text, |masked| {
            load_once(masked, origin, base_dir)
        })),
        other => other,
    }
}

/// One pass of the loader: the file's first problem, or the scenario.
fn load_once(text: &str, origin: &str, base_dir: &Path) -> Result<Scenario, ScenarioError> {
    // NaN/inf and `!!binary` reach context variables, which normalize them.
    let options = crate::protocol::runtime::normalize::yaml_options();
    let parse = || {
        let s = serde_saphyr::from_str_with_options::<Scenario>(text, options.clone())
            .map_err(|e| ScenarioError::from_yaml(&e, text, origin))?;
        check_scripts(&s, text, origin)?;
        Ok(s)
    };
    // Fast path: no feeders anywhere, so no `{{a.b}}` can resolve either.
    if !text.contains("feeders") {
        return parse();
    }
    // Pass 1: only `feeders:`, reading each CSV file (errors at its `file:`).
    let (declared, read) = feeder::with_loader(base_dir, || {
        serde_saphyr::from_str_with_options::<FeedersOnly>(text, options.clone())
    });
    match declared {
        Ok(only) => {
            // Pass 2: the whole file, with `{{feeder.column}}` checked.
            let mut tables = feeder::tables_from(&only.feeders, &read);
            let mut scenario = feeder::with_schema(&mut tables, parse)?;
            scenario.feeder_tables = FeederTables::new(tables);
            Ok(scenario)
        }
        Err(e) => {
            // Report the first problem of the file in document order when the
            // full parse finds one (feeder references unchecked); else this one.
            feeder::with_lenient_schema(parse)?;
            Err(ScenarioError::from_yaml(&e, text, origin))
        }
    }
}

/// A file has either top-level `steps` or `scenarios`, with unique names.
fn check_scripts(s: &Scenario, text: &str, origin: &str) -> Result<(), ScenarioError> {
    let err = |key: &str, message: &str, hint: &str| {
        Err(ScenarioError::at_top_level_key(
            text,
            origin,
            key,
            message.to_string(),
            hint.to_string(),
        ))
    };
    match (s.steps.is_empty(), s.scenarios.is_empty()) {
        (true, true) => err(
            "steps",
            "the scenario has no `steps` (and no `scenarios`)",
            "list what each VU does, e.g. `steps: [connect, { send: { text: \"hi\" } }, disconnect]`",
        ),
        (false, false) => err(
            "scenarios",
            "the file has both top-level `steps` and `scenarios`",
            "move the top-level steps into a scenario of `scenarios:` (each has its own `steps`)",
        ),
        (false, true) if s.load.max_vus() == 0 => err(
            "load",
            "the scenario has `steps` but no `load`",
            "add e.g. `load: { vus: 10, duration: 1m }`",
        ),
        _ => {
            let mut names = std::collections::BTreeSet::new();
            for sub in &s.scenarios {
                if !names.insert(sub.name.as_str()) {
                    return err(
                        "scenarios",
                        &format!("two scenarios are named `{}`", sub.name),
                        "give every scenario its own name (names tag the metrics)",
                    );
                }
                if sub.load.is_none() && s.load.max_vus() == 0 {
                    return err(
                        "load",
                        &format!("scenario `{}` has no `load` and the top-level `load` has nothing to share", sub.name),
                        "give it a `load:` of its own, or a `weight` of a top-level load with VUs or a rate",
                    );
                }
            }
            Ok(())
        }
    }
}

/// Pass 1 of loading: the `feeders:` block alone (everything else ignored).
#[derive(serde::Deserialize)]
struct FeedersOnly {
    #[serde(default)]
    feeders: BTreeMap<FeederName, FeederConfig>,
}

/// Like [`load_str`], but `${env:NAME}` is resolved from `env` only (the
/// process environment is not consulted). For tests and embedders.
pub fn load_str_with_env(
    text: &str,
    origin: &str,
    env: &BTreeMap<String, String>,
) -> Result<Scenario, ScenarioError> {
    template::with_env(env, || load_str(text, origin))
}
