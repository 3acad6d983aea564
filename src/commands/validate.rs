//! `finalping validate`: load and check a scenario, print what it would do.

use crate::cli::ValidateArgs;
use crate::error::{exit, CliError};
use crate::scenario;

pub fn validate(args: &ValidateArgs) -> Result<i32, CliError> {
    let s = scenario::load(&args.scenario).map_err(|e| CliError::usage(e.to_string()))?;
    let target = match &s.target.url {
        Some(_) => "target.url",
        None => "the embedded emulator",
    };
    let length = match (&s.load.duration, s.load.iterations) {
        (Some(d), Some(n)) => format!("{n} iterations or {d}, whichever comes first"),
        (Some(d), None) => format!("for {d}"),
        (None, Some(n)) => format!("{n} iterations each"),
        (None, None) => "1 iteration each".to_string(),
    };
    println!(
        "ok: {} — {} VUs, {}, {} steps per iteration, against {} (EIO{})",
        args.scenario.display(),
        s.load.vus,
        length,
        s.steps.len(),
        target,
        u8::from(s.target.eio)
    );
    Ok(exit::PASS)
}
