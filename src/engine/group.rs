//! Scenario groups: the one script of a plain file, or each entry of
//! `scenarios:` with its own load (given, or its weighted share of the
//! top-level load). Also owns the tag list (`scenario=…`, `scenario=…,step=…`)
//! the VUs book their samples under.

use super::pacing::Schedule;
use crate::metrics::TagId;
use crate::scenario::{Executor, Load, Scenario, Step};
use std::time::Duration;

/// One script run by its own VUs under its own executor.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub steps: Vec<Step>,
    pub load: Load,
    pub schedule: Schedule,
    /// VU tasks of this group.
    pub vus: u32,
    /// When it stops starting steps (`None`: when its iterations are done).
    pub duration: Option<Duration>,
    /// Iterations per VU (closed executors); `None` = until `duration`.
    pub iterations: Option<u64>,
    /// The group's `scenario=<name>` tag.
    pub tag: TagId,
    /// Per step (by index): the `scenario=<name>,step=<step name>` tag of a named step.
    pub step_tags: Vec<Option<TagId>>,
}

impl Group {
    /// Measured operations one iteration runs (turns, updates, gets).
    pub fn samples_per_iteration(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match s.action() {
                Step::Send(_) | Step::GetContext => 1,
                Step::UpdateContext(u) => u64::from(u.parallel),
                _ => 0,
            })
            .sum()
    }
}

/// The longest group duration, when every group has one (the run's length).
pub fn duration(groups: &[Group]) -> Option<Duration> {
    groups
        .iter()
        .map(|g| g.duration)
        .try_fold(Duration::ZERO, |acc, d| d.map(|d| acc.max(d)))
}

/// The groups of a scenario file and the names of their tags (index = TagId).
pub fn groups_of(s: &Scenario) -> (Vec<Group>, Vec<String>) {
    let scripts: Vec<(String, Vec<Step>, Load)> = if s.scenarios.is_empty() {
        vec![(s.name.clone(), s.steps.clone(), s.load.clone())]
    } else {
        let shared: Vec<f64> = s
            .scenarios
            .iter()
            .filter(|sub| sub.load.is_none())
            .map(|sub| sub.weight)
            .collect();
        let mut shares = split_by_weight(&s.load, &shared).into_iter();
        s.scenarios
            .iter()
            .map(|sub| {
                let load = match &sub.load {
                    Some(own) => own.clone(),
                    None => shares.next().unwrap_or_default(),
                };
                (sub.name.clone(), sub.steps.clone(), load)
            })
            .collect()
    };
    let mut tags = Vec::new();
    let mut tag = |name: String| {
        tags.push(name);
        (tags.len() - 1) as TagId
    };
    let groups = scripts
        .into_iter()
        .filter(|(_, _, load)| load.max_vus() > 0)
        .map(|(name, steps, load)| {
            let group_tag = tag(format!("scenario={name}"));
            let step_tags = steps
                .iter()
                .map(|step| {
                    let step_name = match step.action() {
                        Step::Send(send) => send.name.as_deref(),
                        Step::UpdateContext(u) => u.name.as_deref(),
                        _ => None,
                    }?;
                    Some(tag(format!("scenario={name},step={step_name}")))
                })
                .collect();
            let schedule = Schedule::from_load(&load);
            let duration = schedule
                .staged_duration()
                .or(load.duration.map(|d| d.as_duration()));
            let iterations = match (&schedule, load.iterations, load.duration) {
                (Schedule::Closed, None, None) => Some(1),
                (Schedule::Closed, n, _) => n,
                _ => None,
            };
            Group {
                vus: load.max_vus(),
                name,
                steps,
                schedule,
                duration,
                iterations,
                load,
                tag: group_tag,
                step_tags,
            }
        })
        .collect();
    (groups, tags)
}

/// Splits `load` into one load per weight: VUs and `max_vus` by largest
/// remainder (so they add up), rates and stage targets proportionally.
fn split_by_weight(load: &Load, weights: &[f64]) -> Vec<Load> {
    let total: f64 = weights.iter().sum();
    if weights.is_empty() || total <= 0.0 {
        return Vec::new();
    }
    let shares: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let vus = apportion(load.vus, &shares);
    let max_vus = load.max_vus.map(|m| apportion(m, &shares));
    let start_vus = apportion(load.start_vus, &shares);
    shares
        .iter()
        .enumerate()
        .map(|(i, share)| {
            let mut l = load.clone();
            l.vus = vus[i];
            l.start_vus = start_vus[i];
            l.max_vus = max_vus.as_ref().map(|m| m[i].max(1));
            l.rate = load.rate.map(|r| r * share);
            l.start_rate = load.start_rate * share;
            for st in &mut l.stages {
                st.target *= share;
                if load.executor() == Executor::RampingVus {
                    st.target = st.target.round();
                }
            }
            l
        })
        .collect()
}

/// Largest-remainder apportionment of `n` by `shares` (which sum to 1).
fn apportion(n: u32, shares: &[f64]) -> Vec<u32> {
    let exact: Vec<f64> = shares.iter().map(|s| s * f64::from(n)).collect();
    let mut out: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
    let mut left = n.saturating_sub(out.iter().sum());
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| {
        let ra = exact[*a] - exact[*a].floor();
        let rb = exact[*b] - exact[*b].floor();
        rb.total_cmp(&ra)
    });
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_adds_up_and_follows_weights() {
        assert_eq!(apportion(10, &[0.75, 0.25]), vec![8, 2]);
        assert_eq!(apportion(10, &[1.0 / 3.0; 3]).iter().sum::<u32>(), 10);
        assert_eq!(apportion(1, &[0.5, 0.5]).iter().sum::<u32>(), 1);
    }

    #[test]
    fn weights_split_vus_and_rates() {
        let load = Load {
            vus: 8,
            rate: Some(30.0),
            max_vus: Some(10),
            ..Load::default()
        };
        let parts = split_by_weight(&load, &[3.0, 1.0]);
        assert_eq!((parts[0].vus, parts[1].vus), (6, 2));
        assert_eq!(parts[0].rate, Some(22.5));
        assert_eq!(parts[1].max_vus, Some(2));
    }
}
