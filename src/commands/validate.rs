//! `finalping validate`: load and check a scenario, print what it would do.

use crate::cli::ValidateArgs;
use crate::error::{exit, CliError};
use crate::scenario::{self, Executor};

pub fn validate(args: &ValidateArgs) -> Result<i32, CliError> {
    let s = scenario::load(&args.scenario).map_err(|e| CliError::usage(e.to_string()))?;
    super::saas::check(&s, args.own_capacity)?;
    let target = match &s.target.url {
        Some(_) => "target.url",
        None => "the embedded emulator",
    };
    let l = &s.load;
    let length = match (l.executor(), &l.duration, l.iterations) {
        (Executor::RampingVus | Executor::RampingArrivalRate, _, _) => format!(
            "{} stages over {}",
            l.stages.len(),
            crate::duration::HumanDuration(l.stages_duration())
        ),
        (Executor::ConstantArrivalRate, Some(d), _) => {
            format!("{}/s for {d}", l.rate.unwrap_or(0.0))
        }
        (_, Some(d), Some(n)) => format!("{n} iterations or {d}, whichever comes first"),
        (_, Some(d), None) => format!("for {d}"),
        (_, None, Some(n)) => format!("{n} iterations each"),
        (_, None, None) => "1 iteration each".to_string(),
    };
    println!(
        "ok: {} — {}, up to {} VUs, {}, {} steps, against {} (EIO{})",
        args.scenario.display(),
        l.executor().name(),
        l.max_vus(),
        length,
        s.all_steps().count(),
        target,
        u8::from(s.target.eio)
    );
    if let Some(segment) = args.segment {
        let (groups, _) = crate::engine::groups_of(&s);
        crate::engine::segment::check(&groups, segment)
            .map_err(|e| CliError::usage(format!("--segment {segment}: {e} ({})", e.hint())))?;
        println!("{}", crate::engine::segment::describe(&groups, segment));
    }
    Ok(exit::PASS)
}
