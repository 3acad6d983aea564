//! When VUs work: the executors. Closed executors let each VU loop its
//! iterations; `ramping-vus` moves a target number of active VUs along the
//! stages; the arrival-rate executors start conversations on a schedule
//! (uniform or seeded Poisson) on whichever VU is idle. An arrival that finds
//! every VU busy waits in a backlog (at most `BACKLOG_PER_VU` × `max_vus`)
//! and starts late, its lateness recorded as `schedule_lag`; one that finds
//! the backlog full, or is still waiting when the run ends, is `dropped`. The
//! schedule itself never slows down, and it keeps time on a thread of its own
//! (see [`Arrivals::run`]) rather than on tokio's 1 ms timer.

use super::segment::Segment;
use super::Control;
use crate::metrics::{Counter, Recorder};
use crate::scenario::{Arrival, Executor, Load};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How often the ramping controller moves its target.
const RAMP_STEP: Duration = Duration::from_millis(50);
/// Arrivals that may wait for a busy VU, per VU of `max_vus`.
pub const BACKLOG_PER_VU: usize = 10;
/// While the arrival rate is 0, look again after this long.
const IDLE_RATE_STEP: Duration = Duration::from_millis(10);

/// The executor of a run, resolved from the scenario's `load`.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// VUs loop iterations (`constant-vus`, `per-vu-iterations`).
    Closed,
    /// The number of active VUs follows the stages.
    RampingVus {
        start: f64,
        stages: Vec<(Duration, f64)>,
    },
    /// Conversations start at a rate that follows the stages.
    Arrivals {
        start: f64,
        stages: Vec<(Duration, f64)>,
        poisson: bool,
    },
}

impl Schedule {
    pub fn from_load(load: &Load) -> Schedule {
        let stages = || {
            load.stages
                .iter()
                .map(|s| (s.duration.as_duration(), s.target))
                .collect()
        };
        let poisson = load.arrival == Arrival::Poisson;
        match load.executor() {
            Executor::ConstantVus | Executor::PerVuIterations => Schedule::Closed,
            Executor::RampingVus => Schedule::RampingVus {
                start: f64::from(load.start_vus),
                stages: stages(),
            },
            Executor::ConstantArrivalRate => {
                let rate = load.rate.unwrap_or(0.0);
                let d = load.duration.map_or(Duration::ZERO, |d| d.as_duration());
                Schedule::Arrivals {
                    start: rate,
                    stages: vec![(d, rate)],
                    poisson,
                }
            }
            Executor::RampingArrivalRate => Schedule::Arrivals {
                start: load.start_rate,
                stages: stages(),
                poisson,
            },
        }
    }

    /// Whether conversations have an intended start (open model).
    pub fn is_open(&self) -> bool {
        matches!(self, Schedule::Arrivals { .. })
    }

    /// The length of the staged schedule, if it has one.
    pub fn staged_duration(&self) -> Option<Duration> {
        match self {
            Schedule::Closed => None,
            Schedule::RampingVus { stages, .. } | Schedule::Arrivals { stages, .. } => {
                Some(stages.iter().map(|s| s.0).sum())
            }
        }
    }
}

/// The value of a staged quantity at `t`: linear from each stage's start value
/// to its target; after the last stage, the last target.
pub fn value_at(start: f64, stages: &[(Duration, f64)], t: Duration) -> f64 {
    let mut from = start;
    let mut begin = Duration::ZERO;
    for &(len, target) in stages {
        let end = begin + len;
        if t < end {
            if len.is_zero() {
                return target;
            }
            let frac = (t - begin).as_secs_f64() / len.as_secs_f64();
            return from + (target - from) * frac;
        }
        from = target;
        begin = end;
    }
    from
}

/// What a VU waits on before each iteration.
pub(super) enum Pacing {
    /// Loop until the iteration count or the deadline.
    Closed,
    /// Work while the VU's number is within the target.
    Ramping(watch::Receiver<u32>),
    /// Run one conversation per job; `slot` is the VU's place in the dispatch.
    Open {
        jobs: mpsc::Receiver<Job>,
        dispatch: Arc<Dispatch>,
        slot: usize,
    },
}

/// One conversation to start, and when it should have started.
#[derive(Debug, Clone, Copy)]
pub(super) struct Job {
    pub intended: Instant,
}

/// Idle VUs (by index) and arrivals waiting for one; a tiny mutex taken once
/// per arrival and once per finished conversation.
pub(super) struct Dispatch {
    state: Mutex<DispatchState>,
    backlog_cap: usize,
    /// VUs of the group (all idle = parked, ready for the first arrival).
    vus: usize,
    /// Woken when the last VU parks before the schedule starts.
    all_parked: tokio::sync::Notify,
}

#[derive(Default)]
struct DispatchState {
    idle: Vec<usize>,
    backlog: VecDeque<Job>,
}

/// What became of an arrival.
enum Placed {
    /// Handed to this idle VU.
    Vu(usize),
    Queued,
    Dropped,
}

impl Dispatch {
    fn new(vus: usize) -> Dispatch {
        Dispatch {
            state: Mutex::new(DispatchState::default()),
            backlog_cap: vus.saturating_mul(BACKLOG_PER_VU),
            vus,
            all_parked: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DispatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn place(&self, job: Job) -> Placed {
        let mut st = self.lock();
        if let Some(vu) = st.idle.pop() {
            return Placed::Vu(vu);
        }
        if st.backlog.len() < self.backlog_cap {
            st.backlog.push_back(job);
            Placed::Queued
        } else {
            Placed::Dropped
        }
    }

    /// A VU is free: the oldest waiting arrival, or `None` after it is marked idle.
    pub fn next_or_idle(&self, vu: usize) -> Option<Job> {
        let mut st = self.lock();
        let job = st.backlog.pop_front();
        if job.is_none() {
            st.idle.push(vu);
            if st.idle.len() == self.vus {
                self.all_parked.notify_one();
            }
        }
        job
    }

    /// Arrivals waiting for a free VU now.
    pub fn waiting(&self) -> usize {
        self.lock().backlog.len()
    }

    /// Arrivals still waiting when the run ends.
    fn drain_backlog(&self) -> usize {
        let mut st = self.lock();
        let n = st.backlog.len();
        st.backlog.clear();
        n
    }
}

/// Which arrivals of a group's schedule this process starts: item `k` is
/// ours when `segment.owns(offset, k)` (see `segment`).
#[derive(Debug, Clone, Copy)]
pub(super) struct ArrivalShare {
    pub segment: Segment,
    pub offset: u64,
}

/// Creates the pacing of this process's `vus` VUs of a closed or
/// ramping-vus group and starts the ramp's controller task. Arrival-rate
/// groups use [`open`].
pub(super) fn start(
    schedule: &Schedule,
    vus: usize,
    started: Instant,
    control: Arc<Control>,
) -> Vec<Pacing> {
    match schedule.clone() {
        Schedule::RampingVus { start, stages } => {
            let (tx, rx) = watch::channel(start.round() as u32);
            tokio::spawn(ramp_vus(tx, start, stages, started, control));
            (0..vus).map(|_| Pacing::Ramping(rx.clone())).collect()
        }
        Schedule::Closed | Schedule::Arrivals { .. } => (0..vus).map(|_| Pacing::Closed).collect(),
    }
}

/// The arrival schedule of an open group, not started yet: its VUs start
/// first and park (see [`ArrivalClock::parked`]), so that the first arrivals
/// do not wait for thousands of tasks' first poll.
pub(super) struct ArrivalClock {
    times: ArrivalTimes,
    share: ArrivalShare,
    senders: Vec<mpsc::Sender<Job>>,
    dispatch: Arc<Dispatch>,
    recorder: Arc<Recorder>,
    control: Arc<Control>,
}

/// Creates the pacing of this process's `vus` VUs of an arrival-rate group
/// and its clock (`None` for other schedules). `seed` is the group's (see
/// `group_seed`).
pub(super) fn open(
    schedule: &Schedule,
    vus: usize,
    seed: u64,
    share: ArrivalShare,
    recorder: Arc<Recorder>,
    control: Arc<Control>,
) -> Option<(Vec<Pacing>, ArrivalClock)> {
    let times = ArrivalTimes::of(schedule, seed)?;
    let dispatch = Arc::new(Dispatch::new(vus));
    let (senders, pacings): (Vec<_>, Vec<_>) = (0..vus)
        .map(|slot| {
            let (tx, rx) = mpsc::channel(1);
            (
                tx,
                Pacing::Open {
                    jobs: rx,
                    dispatch: dispatch.clone(),
                    slot,
                },
            )
        })
        .unzip();
    let clock = ArrivalClock {
        times,
        share,
        senders,
        dispatch,
        recorder,
        control,
    };
    Some((pacings, clock))
}

impl ArrivalClock {
    /// Waits until every VU of the group is idle in the dispatch, at most `limit`.
    pub async fn parked(&self, limit: Duration) {
        if self.dispatch.vus == 0 {
            return;
        }
        let _ = tokio::time::timeout(limit, self.dispatch.all_parked.notified()).await;
    }

    /// Starts the schedule: arrival `k` is due at `started` + its offset.
    pub fn start(self, started: Instant) {
        let arrivals = Arrivals {
            times: self.times,
            started,
            share: self.share,
        };
        tokio::spawn(arrivals.run(self.senders, self.dispatch, self.recorder, self.control));
    }
}

async fn ramp_vus(
    tx: watch::Sender<u32>,
    start: f64,
    stages: Vec<(Duration, f64)>,
    started: Instant,
    control: Arc<Control>,
) {
    let mut tick = tokio::time::interval(RAMP_STEP);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = control.soft.cancelled() => return,
        }
        let target = value_at(start, &stages, started.elapsed()).max(0.0).round() as u32;
        tx.send_if_modified(|current| {
            let changed = *current != target;
            *current = target;
            changed
        });
    }
}

/// The intended start times (after the schedule's start) of all arrivals of
/// a group, in order: uniform gaps of `1/rate`, or exponential gaps from a
/// generator seeded by the group's seed. A pure sequence: every segment
/// computes the same one and takes its share.
#[derive(Debug, Clone)]
pub struct ArrivalTimes {
    start: f64,
    stages: Vec<(Duration, f64)>,
    poisson: bool,
    total: Duration,
    rng: StdRng,
    t: Duration,
}

impl ArrivalTimes {
    fn new(start: f64, stages: Vec<(Duration, f64)>, poisson: bool, seed: u64) -> ArrivalTimes {
        ArrivalTimes {
            start,
            total: stages.iter().map(|s| s.0).sum(),
            stages,
            poisson,
            rng: StdRng::seed_from_u64(seed ^ 0xA5A5_5A5A_0F0F_F0F0),
            t: Duration::ZERO,
        }
    }

    /// The arrivals of an arrival-rate schedule (`None` for the others).
    pub fn of(schedule: &Schedule, seed: u64) -> Option<ArrivalTimes> {
        match schedule {
            Schedule::Arrivals {
                start,
                stages,
                poisson,
            } => Some(ArrivalTimes::new(*start, stages.clone(), *poisson, seed)),
            _ => None,
        }
    }

    /// The arrivals execution segment `segment` starts: those whose number
    /// `k` it owns (`segment.owns(offset, k)`); the others are drawn and skipped.
    pub fn share(self, segment: Segment, offset: u64) -> impl Iterator<Item = Duration> {
        self.enumerate()
            .filter(move |(k, _)| segment.owns(offset, *k as u64))
            .map(|(_, t)| t)
    }
}

impl Iterator for ArrivalTimes {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let rate = value_at(self.start, &self.stages, self.t);
            let gap = if rate <= 0.0 || !rate.is_finite() {
                self.t += IDLE_RATE_STEP;
                if self.t >= self.total {
                    return None;
                }
                continue;
            } else if self.poisson {
                Exp::new(rate).map_or(1.0 / rate, |e| e.sample(&mut self.rng))
            } else {
                1.0 / rate
            };
            self.t += Duration::from_secs_f64(gap.min(3600.0));
            return (self.t < self.total).then_some(self.t);
        }
    }
}

struct Arrivals {
    times: ArrivalTimes,
    started: Instant,
    share: ArrivalShare,
}

/// The arrival clock's longest single sleep: how soon it notices that the
/// run stopped while the next arrival is far away.
const CLOCK_CHECK: Duration = Duration::from_millis(5);

impl Arrivals {
    /// Starts conversations until the stages end or the run stops; then
    /// counts what is still waiting as dropped.
    ///
    /// The schedule runs on a thread of its own that sleeps with the
    /// operating system's high-resolution clock (1 µs timer slack) instead of
    /// tokio's 1 ms timer wheel, so an arrival is handed to its VU within
    /// tens of microseconds of its intended instant at any rate.
    async fn run(
        self,
        senders: Vec<mpsc::Sender<Job>>,
        dispatch: Arc<Dispatch>,
        recorder: Arc<Recorder>,
        control: Arc<Control>,
    ) {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let clock = {
            let (dispatch, recorder, control) =
                (dispatch.clone(), recorder.clone(), control.clone());
            std::thread::Builder::new()
                .name("finalping-arrivals".into())
                .spawn(move || {
                    precise_sleeps();
                    self.schedule(&senders, &dispatch, &recorder, &control);
                    drop(done_tx);
                })
        };
        match clock {
            // Wakes when the schedule is over (the thread drops its sender).
            Ok(_) => drop(done_rx.await),
            Err(e) => {
                tracing::error!("cannot start the arrival clock thread: {e}");
                control.soft.cancel();
            }
        }
        control.soft.cancelled().await;
        let left = dispatch.drain_backlog();
        recorder.add(Counter::Dropped, left as u64);
    }

    /// The arrival clock (on its own thread): sleeps until each arrival's
    /// instant and places it; returns when the schedule ends or the run stops.
    fn schedule(
        self,
        senders: &[mpsc::Sender<Job>],
        dispatch: &Dispatch,
        recorder: &Recorder,
        control: &Control,
    ) {
        let ArrivalShare { segment, offset } = self.share;
        for t in self.times.share(segment, offset) {
            let intended = self.started + t;
            // Arrivals are released on a grid of `tick`: those due within
            // one tick go out together (see ARRIVAL_TICK).
            let release = self.started + round_up(t, ARRIVAL_TICK);
            loop {
                if control.soft.is_cancelled() {
                    return;
                }
                let now = Instant::now();
                if now >= release {
                    break;
                }
                std::thread::sleep((release - now).min(CLOCK_CHECK));
            }
            let job = Job { intended };
            let started = match dispatch.place(job) {
                Placed::Vu(i) => senders.get(i).is_some_and(|tx| tx.try_send(job).is_ok()),
                Placed::Queued => true,
                Placed::Dropped => false,
            };
            if !started {
                recorder.add(Counter::Dropped, 1);
            }
        }
    }
}

/// The arrival clock's grid. Releasing each arrival alone at its exact
/// instant costs a wake-up of the clock thread, of the runtime and, on one
/// machine, of the target for every conversation: at 20,000 arrivals/s that
/// alone saturated a client core (100 µs still did; 250 µs used two thirds
/// of it). Arrivals due within the same tick are released together, at most
/// this late (recorded in `schedule_lag`).
const ARRIVAL_TICK: Duration = Duration::from_micros(250);

/// `t` rounded up to a multiple of `tick` (`t` itself when `tick` is zero).
fn round_up(t: Duration, tick: Duration) -> Duration {
    let tick_ns = tick.as_nanos();
    if tick_ns == 0 {
        return t;
    }
    let ticks = t.as_nanos().div_ceil(tick_ns);
    Duration::from_nanos(u64::try_from(ticks * tick_ns).unwrap_or(u64::MAX))
}

/// Lets this thread's sleeps end within about a microsecond of their
/// deadline (Linux's default timer slack is 50 µs); elsewhere a no-op.
fn precise_sleeps() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument (nanoseconds) and
    // changes only the calling thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_released_on_the_tick_grid() {
        let tick = Duration::from_micros(250);
        let us = Duration::from_micros;
        assert_eq!(round_up(us(0), tick), us(0));
        assert_eq!(round_up(us(1), tick), us(250));
        assert_eq!(round_up(us(250), tick), us(250));
        assert_eq!(round_up(us(251), tick), us(500));
        assert_eq!(
            round_up(Duration::from_secs(3), tick),
            Duration::from_secs(3)
        );
        assert_eq!(round_up(us(7), Duration::ZERO), us(7));
    }

    #[test]
    fn staged_values_ramp_linearly_and_hold() {
        let s = [
            (Duration::from_secs(10), 100.0),
            (Duration::from_secs(10), 100.0),
            (Duration::from_secs(5), 0.0),
        ];
        assert_eq!(value_at(0.0, &s, Duration::ZERO), 0.0);
        assert_eq!(value_at(0.0, &s, Duration::from_secs(5)), 50.0);
        assert_eq!(value_at(0.0, &s, Duration::from_secs(15)), 100.0);
        assert_eq!(value_at(0.0, &s, Duration::from_millis(22_500)), 50.0);
        assert_eq!(value_at(0.0, &s, Duration::from_secs(60)), 0.0);
        assert_eq!(value_at(7.0, &[], Duration::from_secs(1)), 7.0);
    }
}
