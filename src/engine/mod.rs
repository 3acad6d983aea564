//! The load engine: turns a resolved [`Plan`] into VU tasks (one tokio task per
//! VU, closed model), paces their starts over the ramp-up, stops them at the
//! deadline with a grace period, and drains the recorder into run totals while
//! the live progress line shows how the run is going. Protocol details live in
//! `protocol`, numbers in `metrics`; this module only schedules and accounts.

mod checks;
mod context;
mod group;
mod interval_writer;
mod live;
mod pacing;
mod rest;
pub mod segment;
mod sink;
mod vu;
mod warmup;

pub use context::RuntimePlan;
pub use group::duration as groups_duration;
pub use group::{groups_of, Group};
pub use live::{Display, Progress, ProgressMode, PROGRESS_PREFIX};
pub use pacing::Schedule;
pub use rest::InjectPlan;
pub use segment::Segment;
pub use sink::{ClosedInterval, IntervalSink};
pub use warmup::{connect as warm_up, Pool};

use crate::metrics::selfcheck::SelfCheckSummary;
use crate::metrics::{Recorder, Snapshot, Timeline};
use crate::scenario::Scenario;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A scenario with everything resolved that the engine needs: where to
/// connect, which groups of VUs run which script under which executor.
/// Immutable during the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    /// The endpoint base URL (the embedded emulator's when `target.url` is absent).
    pub endpoint_url: String,
    /// The resolved URL token (secret: never print it).
    pub url_token: String,
    pub seed: u64,
    /// The part of the groups this process runs (`--segment i/N`; whole by default).
    pub segment: Segment,
    /// The scripts with their loads (one for a plain file, one per `scenarios:` entry).
    pub groups: Vec<Group>,
    /// Tag names by `TagId`.
    pub tags: Vec<String>,
    /// The runtime WebSocket, when the scenario has context steps.
    pub runtime: Option<Arc<RuntimePlan>>,
    /// `target.kind: rest`: the REST Endpoint client (instead of Socket.IO).
    pub rest: Option<Arc<crate::protocol::rest::RestEndpoint>>,
    /// `runtime.kind: rest_inject`: the context-inject client (instead of the WebSocket).
    pub inject: Option<Arc<InjectPlan>>,
    /// CSV feeder rows, picked once per VU iteration (shared cursors).
    pub feeders: Arc<crate::scenario::Feeders>,
    /// The embedded emulator's threads, whose CPU the self-check takes out
    /// of the generator's (None against an external target).
    pub emulator_cpu: Option<Arc<crate::metrics::ThreadGroupCpu>>,
}

impl Plan {
    /// All VU tasks of the run (all segments).
    pub fn vus(&self) -> u32 {
        self.groups.iter().map(|g| g.vus).sum()
    }

    /// The VU tasks this process runs (its segment's).
    pub fn segment_vus(&self) -> u64 {
        segment::vus(&self.groups, self.segment).len() as u64
    }

    /// The longest group duration, when every group has one.
    pub fn duration(&self) -> Option<Duration> {
        group::duration(&self.groups)
    }

    /// Measured operations of a fully iteration-bound run (for a progress
    /// bar), in this process's segment.
    pub fn planned_samples(&self) -> u64 {
        segment::planned_samples(&self.groups, self.segment)
    }
}

/// What the engine hands back: the run totals and how it ended.
#[derive(Debug)]
pub struct EngineOutcome {
    pub totals: Snapshot,
    /// `abort_on_fail` stopped the run: the breached threshold and when.
    pub aborted: Option<String>,
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

/// Active VUs now and at most, and open sockets (all groups together).
#[derive(Default)]
pub(crate) struct Gauge {
    pub active: AtomicU64,
    pub peak: AtomicU64,
    /// Socket.IO connections open now.
    pub chat_sockets: AtomicU64,
    /// Runtime WebSocket connections open now.
    pub runtime_sockets: AtomicU64,
}

/// Which open-socket count a connection is in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SocketKind {
    Chat,
    Runtime,
}

/// A connection, counted in the open-socket gauge for as long as it is held
/// (one atomic add at connect, one subtract when dropped or closed).
pub(crate) struct Open<T> {
    inner: T,
    _counted: Counted,
}

struct Counted {
    gauge: Arc<Gauge>,
    kind: SocketKind,
}

impl Counted {
    fn count(&self) -> &AtomicU64 {
        match self.kind {
            SocketKind::Chat => &self.gauge.chat_sockets,
            SocketKind::Runtime => &self.gauge.runtime_sockets,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.count().fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T> Open<T> {
    pub fn new(inner: T, gauge: &Arc<Gauge>, kind: SocketKind) -> Open<T> {
        let counted = Counted {
            gauge: gauge.clone(),
            kind,
        };
        counted.count().fetch_add(1, Ordering::Relaxed);
        Open {
            inner,
            _counted: counted,
        }
    }

    /// The connection, no longer counted (to close it).
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> std::ops::Deref for Open<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for Open<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

/// Run control of one group: two stop levels (children of the run's) and
/// the shared active-VU gauge.
pub(crate) struct Control {
    /// Stop starting new steps (deadline reached or interrupted).
    pub soft: CancellationToken,
    /// Grace period over: abandon in-flight turns as interrupted.
    pub hard: CancellationToken,
    pub gauge: Arc<Gauge>,
}

impl Control {
    fn vu_started(&self) {
        let now = self.gauge.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.gauge.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn vu_finished(&self) {
        self.gauge.active.fetch_sub(1, Ordering::Relaxed);
    }

    fn child(&self) -> Control {
        Control {
            soft: self.soft.child_token(),
            hard: self.hard.child_token(),
            gauge: self.gauge.clone(),
        }
    }

    /// Soft stop at `deadline` (if any) or when `stop` fires; hard stop `grace` later.
    fn supervise(
        self: Arc<Self>,
        deadline: Option<Instant>,
        grace: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let deadline_reached = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = deadline_reached => {}
                _ = stop.cancelled() => {}
                _ = self.soft.cancelled() => {}
            }
            self.soft.cancel();
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = self.hard.cancelled() => {}
            }
            self.hard.cancel();
        })
    }
}

/// The longest the arrival clock waits for an open group's VUs to park.
const PARK_LIMIT: Duration = Duration::from_secs(2);

/// Spawns the VU tasks of a run, each with its warm connection if it has one.
struct Launcher<'a> {
    plan: &'a Arc<Plan>,
    recorder: &'a Arc<Recorder>,
    controls: &'a [Arc<Control>],
    pool: Pool,
    tasks: tokio::task::JoinSet<()>,
}

impl Launcher<'_> {
    /// Spawns this process's VUs of group `gi`, one per pacing.
    fn spawn(&mut self, gi: usize, pacings: Vec<pacing::Pacing>, start_at: Instant) {
        let (plan, Some(control)) = (self.plan, self.controls.get(gi)) else {
            return;
        };
        let mine = segment::group_vus(&plan.groups, gi, plan.segment);
        for (k, (pacing, v)) in pacings.into_iter().zip(mine).enumerate() {
            self.tasks.spawn(vu::run_vu(
                vu::VuSlot {
                    vu: v.vu,
                    index: v.index,
                    group: gi,
                },
                start_at + v.start_offset,
                pacing,
                self.pool.take(gi, k),
                plan.clone(),
                self.recorder.clone(),
                control.clone(),
            ));
        }
    }

    /// Arrival-rate groups: spawns their VUs and waits until they are parked
    /// in the dispatch, so that the first arrivals do not wait for every VU
    /// task's first poll. Returns each group's clock, not started yet (`None`
    /// for the other groups).
    async fn open_groups(
        &mut self,
        backlogs: &sink::Backlogs,
    ) -> Vec<Option<pacing::ArrivalClock>> {
        let plan = self.plan;
        let offsets = segment::vu_offsets(&plan.groups);
        let mut clocks = Vec::with_capacity(plan.groups.len());
        for (gi, (group, control)) in plan.groups.iter().zip(self.controls).enumerate() {
            let vus = segment::group_vus(&plan.groups, gi, plan.segment).len();
            let share = pacing::ArrivalShare {
                segment: plan.segment,
                offset: offsets.get(gi).copied().unwrap_or_default(),
            };
            let seed = group_seed(plan.seed, gi);
            let opened = pacing::open(
                &group.schedule,
                vus,
                seed,
                share,
                self.recorder.clone(),
                control.clone(),
            );
            clocks.push(opened.map(|(pacings, clock)| {
                backlogs.watch(&pacings);
                self.spawn(gi, pacings, Instant::now());
                clock
            }));
        }
        for clock in clocks.iter().flatten() {
            clock.parked(PARK_LIMIT).await;
        }
        clocks
    }
}

/// Runs the plan to completion (or interruption) and returns the totals.
/// `interrupt` is cancelled by the caller on Ctrl-C/SIGTERM. Every closed
/// interval is also handed to each of `sinks` (live report files, live metrics).
/// `pool` holds the connections [`warm_up`] opened before the start.
pub async fn run(
    plan: Arc<Plan>,
    recorder: Arc<Recorder>,
    progress: ProgressMode,
    interrupt: CancellationToken,
    sinks: Vec<Box<dyn IntervalSink>>,
    pool: Pool,
) -> EngineOutcome {
    let root = Arc::new(Control {
        soft: CancellationToken::new(),
        hard: CancellationToken::new(),
        gauge: pool.gauge.clone(),
    });
    let backlogs = Arc::new(sink::Backlogs::default());
    let controls: Vec<Arc<Control>> = plan.groups.iter().map(|_| Arc::new(root.child())).collect();
    let mut launcher = Launcher {
        plan: &plan,
        recorder: &recorder,
        controls: &controls,
        pool,
        tasks: tokio::task::JoinSet::new(),
    };
    let mut clocks = launcher.open_groups(&backlogs).await;
    // Before the start: see `live::Inputs::totals`.
    let totals = crate::metrics::Snapshot::new();

    let started = Instant::now();
    // `abort_on_fail` stops the run like Ctrl-C does (grace, then reports).
    let abort = CancellationToken::new();
    let live = live::Live::start(
        live::Inputs {
            plan: plan.clone(),
            recorder: recorder.clone(),
            gauge: root.gauge.clone(),
            backlogs: backlogs.clone(),
            sinks,
            totals,
        },
        progress,
        abort.clone(),
    );
    let mut supervisors = Vec::new();
    for (gi, group) in plan.groups.iter().enumerate() {
        let control = controls[gi].clone();
        supervisors.push(control.clone().supervise(
            group.duration.map(|d| started + d),
            group.load.grace.as_duration(),
            root.soft.clone(),
        ));
        match clocks.get_mut(gi).and_then(Option::take) {
            Some(clock) => clock.start(started),
            None => {
                let vus = segment::group_vus(&plan.groups, gi, plan.segment).len();
                let pacings = pacing::start(&group.schedule, vus, started, control);
                launcher.spawn(gi, pacings, started);
            }
        }
    }
    // Ctrl-C: every group stops at once and gets the longest grace.
    let grace = plan
        .groups
        .iter()
        .map(|g| g.load.grace.as_duration())
        .max()
        .unwrap_or_default();
    supervisors.push(root.clone().supervise(None, grace, interrupt.clone()));
    let abort_watch = {
        let root = root.clone();
        tokio::spawn(async move {
            abort.cancelled().await;
            root.soft.cancel();
        })
    };

    let mut tasks = launcher.tasks;
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!("a VU task failed: {e}");
        }
    }
    for s in supervisors {
        s.abort();
    }
    abort_watch.abort();
    let elapsed = started.elapsed();
    let collected = live.finish().await;
    let (totals, timeline, self_check, aborted) = match collected {
        Some(c) => (c.totals, c.timeline, c.self_check, c.aborted),
        // The collector task panicked: report what is still in the recorder.
        None => (
            recorder.drain(),
            Timeline::new(
                std::time::SystemTime::now(),
                plan.scenario.metrics.interval.as_duration(),
            ),
            crate::metrics::selfcheck::SelfCheck::new(Default::default()).summary(),
            None,
        ),
    };
    EngineOutcome {
        totals,
        aborted,
        timeline,
        self_check,
        elapsed,
        interrupted: interrupt.is_cancelled(),
        peak_vus: root.gauge.peak.load(Ordering::Relaxed),
    }
}

/// The seed of group `gi`'s schedule (its Poisson arrivals), the same in every segment.
pub(crate) fn group_seed(seed: u64, gi: usize) -> u64 {
    seed ^ (gi as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)
}
