//! The load engine: turns a resolved [`Plan`] into VU tasks (one tokio task per
//! VU, closed model), paces their starts over the ramp-up, stops them at the
//! deadline with a grace period, and drains the recorder into run totals while
//! the live progress line shows how the run is going. Protocol details live in
//! `protocol`, numbers in `metrics`; this module only schedules and accounts.

mod context;
mod live;
mod pacing;
mod vu;

pub use context::RuntimePlan;
pub use live::ProgressMode;
pub use pacing::Schedule;

use crate::metrics::selfcheck::SelfCheckSummary;
use crate::metrics::{Recorder, Snapshot, Timeline};
use crate::scenario::Scenario;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A scenario with everything resolved that the engine needs: where to connect,
/// how many VUs, for how long. Immutable during the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    /// The endpoint base URL (the embedded emulator's when `target.url` is absent).
    pub endpoint_url: String,
    /// The resolved URL token (secret: never print it).
    pub url_token: String,
    pub seed: u64,
    /// VU tasks: the closed VUs, the ramping maximum, or the arrival-rate `max_vus`.
    pub vus: u32,
    /// The executor.
    pub schedule: Schedule,
    pub duration: Option<Duration>,
    /// Iterations per VU; `None` = loop until `duration`.
    pub iterations: Option<u64>,
    pub ramp_up: Duration,
    pub grace: Duration,
    /// The runtime WebSocket, when the scenario has context steps.
    pub runtime: Option<Arc<RuntimePlan>>,
    /// CSV feeder rows, picked once per VU iteration (shared cursors).
    pub feeders: Arc<crate::scenario::Feeders>,
}

impl Plan {
    /// Measured operations each VU runs per iteration (turns, updates, gets).
    pub fn samples_per_iteration(&self) -> u64 {
        use crate::scenario::Step;
        self.scenario
            .steps
            .iter()
            .map(|s| match s {
                Step::Send(_) | Step::GetContext => 1,
                Step::UpdateContext(u) => u64::from(u.parallel),
                _ => 0,
            })
            .sum()
    }
}

/// What the engine hands back: the run totals and how it ended.
#[derive(Debug)]
pub struct EngineOutcome {
    pub totals: Snapshot,
    /// Per-interval histograms, counters and generator gauges.
    pub timeline: Timeline,
    /// Scheduler lag, CPU and RSS of the generator, and whether it saturated.
    pub self_check: SelfCheckSummary,
    pub elapsed: Duration,
    /// Stopped by Ctrl-C/SIGTERM rather than by its own schedule.
    pub interrupted: bool,
    /// Highest number of VUs active at once.
    pub peak_vus: u64,
}

/// Shared run control: two stop levels and the active-VU gauge.
pub(crate) struct Control {
    /// Stop starting new steps (deadline reached or interrupted).
    pub soft: CancellationToken,
    /// Grace period over: abandon in-flight turns as interrupted.
    pub hard: CancellationToken,
    pub active_vus: AtomicU64,
    pub peak_vus: AtomicU64,
}

impl Control {
    fn vu_started(&self) {
        let now = self.active_vus.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_vus.fetch_max(now, Ordering::Relaxed);
    }

    fn vu_finished(&self) {
        self.active_vus.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs the plan to completion (or interruption) and returns the totals.
/// `interrupt` is cancelled by the caller on Ctrl-C/SIGTERM.
pub async fn run(
    plan: Arc<Plan>,
    recorder: Arc<Recorder>,
    progress: ProgressMode,
    interrupt: CancellationToken,
) -> EngineOutcome {
    let control = Arc::new(Control {
        soft: CancellationToken::new(),
        hard: CancellationToken::new(),
        active_vus: AtomicU64::new(0),
        peak_vus: AtomicU64::new(0),
    });
    let started = Instant::now();
    let live = live::Live::start(plan.clone(), recorder.clone(), control.clone(), progress);

    let pacings = pacing::start(
        &plan.schedule,
        plan.vus as usize,
        started,
        plan.seed,
        recorder.clone(),
        control.clone(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for (index, pacing) in pacings.into_iter().enumerate() {
        let vu = index as u64 + 1;
        let start_offset = match plan.schedule {
            Schedule::Closed => start_offset(plan.ramp_up, vu - 1, u64::from(plan.vus)),
            _ => Duration::ZERO,
        };
        tasks.spawn(vu::run_vu(
            vu,
            started + start_offset,
            pacing,
            plan.clone(),
            recorder.clone(),
            control.clone(),
        ));
    }

    // Deadline / interruption → soft stop; soft stop + grace → hard stop.
    let supervisor = {
        let control = control.clone();
        let interrupt = interrupt.clone();
        let deadline = plan.duration.map(|d| started + d);
        let grace = plan.grace;
        tokio::spawn(async move {
            let deadline_reached = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = deadline_reached => {}
                _ = interrupt.cancelled() => {}
                _ = control.soft.cancelled() => {}
            }
            control.soft.cancel();
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = control.hard.cancelled() => {}
            }
            control.hard.cancel();
        })
    };

    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!("a VU task failed: {e}");
        }
    }
    supervisor.abort();
    let elapsed = started.elapsed();
    let collected = live.finish().await;
    let (totals, timeline, self_check) = match collected {
        Some(c) => (c.totals, c.timeline, c.self_check),
        // The collector task panicked: report what is still in the recorder.
        None => (
            recorder.drain(),
            Timeline::new(
                std::time::SystemTime::now(),
                plan.scenario.metrics.interval.as_duration(),
            ),
            crate::metrics::selfcheck::SelfCheck::new(Default::default()).summary(),
        ),
    };
    EngineOutcome {
        totals,
        timeline,
        self_check,
        elapsed,
        interrupted: interrupt.is_cancelled(),
        peak_vus: control.peak_vus.load(Ordering::Relaxed),
    }
}

/// VU `index` (0-based) of `vus` starts at `ramp_up × index / vus`.
fn start_offset(ramp_up: Duration, index: u64, vus: u64) -> Duration {
    if vus == 0 || ramp_up.is_zero() {
        return Duration::ZERO;
    }
    let nanos = ramp_up.as_nanos() * u128::from(index) / u128::from(vus);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_up_spreads_starts_evenly() {
        let r = Duration::from_secs(10);
        assert_eq!(start_offset(r, 0, 4), Duration::ZERO);
        assert_eq!(start_offset(r, 1, 4), Duration::from_millis(2500));
        assert_eq!(start_offset(r, 3, 4), Duration::from_millis(7500));
        assert_eq!(start_offset(Duration::ZERO, 3, 4), Duration::ZERO);
    }
}
