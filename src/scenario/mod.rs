//! Scenario files: the YAML model, loading with exact error positions,
//! templates (`{{vu}}`, `{{iteration}}`, `{{uuid}}`, `${env:NAME}`) and
//! validation. Produces an immutable [`Scenario`]; knows nothing about sockets.
//! (Loader STUB: being implemented.)

pub mod model;
pub mod template;

pub use model::*;
pub use template::{Template, TemplateCtx, TemplateValue};

/// TEMP stub until the loader lands.
pub fn load(path: &std::path::Path) -> Result<Scenario, String> {
    Err(format!("{}: loader not implemented", path.display()))
}
