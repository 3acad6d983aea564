//! Scenario files: the YAML model, loading with exact error positions,
//! templates (`{{vu}}`, `{{iteration}}`, `{{uuid}}`, `${env:NAME}`) and
//! validation. Produces an immutable [`Scenario`]; knows nothing about sockets.
//!
//! - `model`: the data types and their defaults.
//! - `fields`: validating deserialisers (every rule that rejects a value) and
//!   the YAML form of steps.
//! - `template`: template parsing and rendering; `think`: think-time ranges.
//! - `error`: [`ScenarioError`], which renders `file:line:col: what`, the source
//!   line with a caret, and `hint: how to fix`.

pub mod error;
mod fields;
pub mod model;
pub mod template;
pub mod think;

pub use error::{Diagnostic, ScenarioError};
pub use fields::STEP_NAMES;
pub use model::*;
pub use template::{Template, TemplateCtx, TemplateError, TemplateValue};
pub use think::ThinkError;

use std::collections::BTreeMap;
use std::path::Path;

/// Reads and validates a scenario file; `${env:NAME}` comes from the process environment.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ScenarioError::read(path.to_path_buf(), e))?;
    load_str(&text, &path.display().to_string())
}

/// Parses and validates scenario YAML; `origin` labels positions in errors
/// (usually the file name). `${env:NAME}` comes from the process environment.
pub fn load_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    // NaN/inf and `!!binary` reach context variables, which normalize them.
    let options = crate::protocol::runtime::normalize::yaml_options();
    serde_saphyr::from_str_with_options::<Scenario>(text, options)
        .map_err(|e| ScenarioError::from_yaml(&e, text, origin))
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
