//! The shared-SaaS guard at the command line: estimates the request rate a
//! scenario plans against each host it names and refuses (exit 3) when a
//! vendor SaaS host would get more than its documented per-IP limits, unless
//! the user passes `--i-own-this-capacity`. A pure function of the scenario:
//! nothing is connected to decide.

use crate::error::CliError;
use crate::protocol::rest::saas_guard;
use crate::scenario::{Load, Scenario, Step, TemplateCtx};

/// Checks every host of the scenario; `acknowledged` = the flag was given.
pub fn check(s: &Scenario, acknowledged: bool) -> Result<(), CliError> {
    if acknowledged {
        return Ok(());
    }
    let ctx = TemplateCtx::default();
    let hosts = [
        s.target.url.as_ref(),
        s.runtime.url.as_ref(),
        s.runtime.api_base.as_ref(),
    ];
    let rate = planned_requests_per_second(s);
    for url in hosts.into_iter().flatten() {
        let url = url.render(&ctx);
        saas_guard(&url, rate, s.target.test_mode).map_err(|e| CliError::usage(e.to_string()))?;
    }
    Ok(())
}

/// Requests per second the scenario plans at most: per script, measured steps
/// per iteration × iterations per second (the arrival rate, or VUs over the
/// shortest possible iteration: its think times and pacing). A script with no
/// think time and no pacing plans an unbounded rate.
pub fn planned_requests_per_second(s: &Scenario) -> f64 {
    let scripts: Vec<(&[Step], &Load)> = if s.scenarios.is_empty() {
        vec![(&s.steps, &s.load)]
    } else {
        s.scenarios
            .iter()
            .map(|sub| (sub.steps.as_slice(), sub.load.as_ref().unwrap_or(&s.load)))
            .collect()
    };
    scripts
        .into_iter()
        .map(|(steps, load)| {
            let requests: f64 = steps
                .iter()
                .map(|st| match st.action() {
                    Step::Send(_) | Step::GetContext => 1.0,
                    Step::UpdateContext(u) => f64::from(u.parallel),
                    _ => 0.0,
                })
                .sum();
            let per_second = if load.executor().is_open() {
                let peak = load.stages.iter().map(|st| st.target).fold(0.0, f64::max);
                load.rate.unwrap_or(0.0).max(load.start_rate).max(peak)
            } else {
                let think: f64 = steps
                    .iter()
                    .map(|st| match st.action() {
                        Step::Think(t) => t.min.as_secs_f64(),
                        _ => 0.0,
                    })
                    .sum();
                let pace = load.pacing.map_or(0.0, |p| p.as_duration().as_secs_f64());
                let shortest = think.max(pace);
                if shortest <= 0.0 {
                    f64::INFINITY
                } else {
                    f64::from(load.max_vus()) / shortest
                }
            };
            requests * per_second
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        crate::scenario::load_str(yaml, "t.yaml").unwrap()
    }

    #[test]
    fn a_busy_plan_against_the_shared_saas_is_refused_without_the_flag() {
        let s = scenario("name: x\ntarget: {kind: rest, url: \"https://endpoint-trial.cognigy.ai\"}\nload: {vus: 50, duration: 1m}\nsteps:\n  - send: {text: hi}\n");
        assert!(planned_requests_per_second(&s).is_infinite());
        let e = check(&s, false).unwrap_err();
        assert_eq!(e.code, 3);
        assert!(e.message.contains("--i-own-this-capacity"), "{}", e.message);
        assert!(check(&s, true).is_ok());
    }

    #[test]
    fn own_deployments_and_gentle_plans_pass() {
        let own = scenario("name: x\ntarget: {url: \"https://bots.example.com\"}\nload: {vus: 500, duration: 1m}\nsteps:\n  - send: {text: hi}\n");
        assert!(check(&own, false).is_ok());
        // 1 VU, one turn per 10 s = 0.1/s, under ~3.3/s per IP.
        let gentle = scenario("name: x\ntarget: {url: \"https://endpoint-trial.cognigy.ai\"}\nload: {vus: 1, duration: 1m}\nsteps:\n  - send: {text: hi}\n  - think: 10s\n");
        assert!((planned_requests_per_second(&gentle) - 0.1).abs() < 1e-9);
        assert!(check(&gentle, false).is_ok());
    }
}
