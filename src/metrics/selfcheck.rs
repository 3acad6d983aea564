//! Generator self-check: is the load generator itself the bottleneck? Owns the
//! tokio scheduling-lag probe ([`LagProbe`]), the per-interval CPU/RSS sampler
//! ([`ResourceSampler`]), the saturation rules ([`SelfCheck::verdict`]), the
//! cause of a saturation and its remedy ([`classify`], [`hint`], from the
//! machine's figures of [`super::machine`]) and the `summary.json` block
//! ([`SelfCheckSummary`]). [`GeneratorMonitor`] bundles them for the
//! collector. It does not decide the run status or exit code; it says
//! "saturated", why, and what helps.
//!
//! # Use in the collector
//! ```no_run
//! # async fn collector() {
//! use finalping::metrics::selfcheck::{GeneratorMonitor, SelfCheckConfig};
//! let mut monitor = GeneratorMonitor::start(SelfCheckConfig::default()); // inside tokio
//! // once per tick, next to `recorder.drain()`:
//! let sample = monitor.sample_interval();
//! let gauges = sample.gauges(/* active VUs */ 10); // → Timeline::push
//! // at the end of the run (after the last sample_interval):
//! let summary = monitor.finish(); // summary.saturated → run invalid, exit 2
//! # }
//! ```
//!
//! # Saturation rules (a run is saturated if ANY holds)
//! 1. **Scheduler lag**: p99 of all probe samples of the run > `lag_p99_budget`
//!    (default 5 ms). The probe sleeps [`PROBE_PERIOD`] (10 ms) in a loop and
//!    records how late it woke up, in µs. tokio's timer has 1 ms granularity,
//!    so an idle runtime shows ~0–1 ms; several ms mean tasks (VUs, timers)
//!    start late and measured latencies include generator queueing.
//! 2. **CPU**: the process used ≥ `cpu_saturation_fraction` (default 95 %) of
//!    the cores it may use (`std::thread::available_parallelism`, which honours
//!    affinity masks and cgroup quotas) for at least `cpu_window_intervals`
//!    consecutive intervals (default 5). CPU is in % of one core, as `top`
//!    shows it: with 2 cores the threshold is 190 %. An embedded emulator runs
//!    in the same process on threads of its own; their CPU is taken out
//!    (see [`GeneratorMonitor::start_excluding`]) so the rule judges the
//!    client alone (where those threads cannot be measured, it is counted).
//!
//! # Causes (why a saturated run was distorted, and what helps)
//! The rules above decide *whether* a run is saturated; [`classify`] says
//! *why*, from the machine's figures per interval ([`super::machine`], Linux
//! `/proc/stat`): the CPU all processes used on the CPUs this process may run
//! on, steal time, and the machine's run queue. "Ours" is the whole process
//! (client + embedded emulator); "others" is the machine's busy time minus
//! ours. Means over the intervals, in % of one core, `capacity` = 100 × the
//! CPUs measured:
//! 1. [`Cause::GeneratorSaturated`] — rule 2 fired (the client's CPU at its limit).
//! 2. [`Cause::MachineBusy`] — others used more than ours, and either ≥ 50 %
//!    of the capacity, or ≥ 25 % with a run-queue p99 above the online CPUs.
//! 3. [`Cause::CpuSteal`] — steal ≥ 10 % of the capacity. When both 2 and 3
//!    hold, the larger share wins.
//! 4. [`Cause::GeneratorSaturated`] — ours ≥ 50 % of the capacity (the
//!    process itself was the main consumer, though below rule 2's limit).
//! 5. [`Cause::Unknown`] — none of these (or no machine figures).
//!
//! Each cause comes with the remedy that actually helps ([`hint`]).

use super::machine::{MachineSample, MachineSampler};
use super::{new_histogram, reset_histogram, ProcessUsage, ThreadGroupCpu};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long the probe sleeps between two measurements.
pub const PROBE_PERIOD: Duration = Duration::from_millis(10);

struct ProbeState {
    interval: Histogram<u64>,
    total: Histogram<u64>,
}

/// A tokio task that sleeps [`PROBE_PERIOD`] in a loop and records each
/// overshoot (actual − requested sleep) in µs. Stops when dropped.
pub struct LagProbe {
    state: Arc<Mutex<ProbeState>>,
    samples: tokio::sync::watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl LagProbe {
    /// Spawns the probe on the current tokio runtime (like `tokio::spawn`, it
    /// must be called from within one).
    pub fn start() -> LagProbe {
        let state = Arc::new(Mutex::new(ProbeState {
            interval: new_histogram(),
            total: new_histogram(),
        }));
        let (tx, samples) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(probe_loop(state.clone(), tx));
        LagProbe {
            state,
            samples,
            task,
        }
    }

    /// Puts the lag samples since the previous call (or the start) into
    /// `out`, dropping what `out` held, and leaves the interval empty: the
    /// probe goes on recording into `out`'s old memory, so that nothing is
    /// allocated once per interval.
    pub fn take_interval_into(&self, out: &mut Histogram<u64>) {
        reset_histogram(out);
        std::mem::swap(&mut self.lock().interval, out);
    }

    /// All lag samples since the start.
    pub fn total(&self) -> Histogram<u64> {
        self.lock().total.clone()
    }

    /// Number of samples taken since the start.
    pub fn samples(&self) -> u64 {
        *self.samples.borrow()
    }

    /// Waits until at least `n` samples were taken; false on timeout.
    pub async fn wait_for_samples(&self, n: u64, timeout: Duration) -> bool {
        let mut rx = self.samples.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|s| *s >= n))
            .await
            .is_ok_and(|r| r.is_ok());
        reached
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProbeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for LagProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn probe_loop(state: Arc<Mutex<ProbeState>>, samples: tokio::sync::watch::Sender<u64>) {
    loop {
        let before = Instant::now();
        tokio::time::sleep(PROBE_PERIOD).await;
        let lag = before.elapsed().saturating_sub(PROBE_PERIOD);
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            s.interval.saturating_record(us);
            s.total.saturating_record(us);
        }
        samples.send_modify(|n| *n += 1);
    }
}

/// Current resident set size of this process in KiB (Linux: `/proc/self/statm`);
/// `None` where the OS does not tell.
pub fn current_rss_kib() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096);
        Some(resident_pages.saturating_mul(page) / 1024)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// CPU and memory of the process over one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceSample {
    /// CPU time used during the interval / its wall time, in % of one core
    /// (the excluded thread group left out).
    pub cpu_percent: f64,
    /// The same for the whole process, the excluded group included.
    pub process_cpu_percent: f64,
    /// Current RSS in KiB (the peak RSS where the current one is not available).
    pub rss_kib: u64,
}

/// Turns the cumulative [`ProcessUsage`] into per-interval CPU % and current
/// RSS; the CPU of an excluded thread group (the embedded emulator) is taken out.
pub struct ResourceSampler {
    last: ProcessUsage,
    last_at: Instant,
    excluded: Option<Arc<ThreadGroupCpu>>,
    last_excluded: Duration,
}

impl ResourceSampler {
    pub fn new() -> ResourceSampler {
        ResourceSampler::excluding(None)
    }

    /// Like [`new`](Self::new), without the CPU of `excluded`'s threads.
    pub fn excluding(excluded: Option<Arc<ThreadGroupCpu>>) -> ResourceSampler {
        let last_excluded = excluded
            .as_ref()
            .and_then(|g| g.total())
            .unwrap_or_default();
        ResourceSampler {
            last: ProcessUsage::now(),
            last_at: Instant::now(),
            excluded,
            last_excluded,
        }
    }

    /// Usage since the previous call (or since `new`).
    pub fn sample(&mut self) -> ResourceSample {
        let now = ProcessUsage::now();
        let excluded = self.excluded.as_ref().and_then(|g| g.total());
        let at = Instant::now();
        let wall = at.duration_since(self.last_at).as_secs_f64();
        let process = now.cpu.saturating_sub(self.last.cpu);
        let mut cpu = process;
        if let Some(e) = excluded {
            cpu = cpu.saturating_sub(e.saturating_sub(self.last_excluded));
            self.last_excluded = e;
        }
        self.last = now;
        self.last_at = at;
        let percent = |d: Duration| {
            if wall > 0.0 {
                100.0 * d.as_secs_f64() / wall
            } else {
                0.0
            }
        };
        ResourceSample {
            cpu_percent: percent(cpu),
            process_cpu_percent: percent(process),
            rss_kib: current_rss_kib().unwrap_or(now.max_rss_kib),
        }
    }
}

impl Default for ResourceSampler {
    fn default() -> Self {
        ResourceSampler::new()
    }
}

/// Thresholds of the saturation rules (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfCheckConfig {
    /// Rule 1: the run's scheduler lag p99 must not exceed this.
    pub lag_p99_budget: Duration,
    /// Rule 2: share of the usable cores that counts as saturated (0.95).
    pub cpu_saturation_fraction: f64,
    /// Rule 2: how many consecutive saturated intervals make the run saturated.
    pub cpu_window_intervals: u32,
    /// Cores the process may use.
    pub cores: usize,
}

impl Default for SelfCheckConfig {
    fn default() -> Self {
        SelfCheckConfig {
            lag_p99_budget: Duration::from_millis(5),
            cpu_saturation_fraction: 0.95,
            cpu_window_intervals: 5,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl SelfCheckConfig {
    /// Rule 2 threshold in % of one core (e.g. 190 for 2 cores at 0.95).
    pub fn cpu_saturation_percent(&self) -> f64 {
        self.cpu_saturation_fraction * self.cores.max(1) as f64 * 100.0
    }
}

/// Whether the generator saturated, and why (one sentence per rule that fired).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    pub saturated: bool,
    pub reasons: Vec<String>,
}

/// Why a saturated run's measurements were distorted (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The load generator used the CPU it may use: it is the bottleneck.
    GeneratorSaturated,
    /// Other processes used the CPU finalping needed.
    MachineBusy,
    /// The hypervisor withheld CPU time from this virtual machine.
    CpuSteal,
    /// No CPU contention was seen (or the machine could not be measured).
    Unknown,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::GeneratorSaturated => "generator_saturated",
            Cause::MachineBusy => "machine_busy",
            Cause::CpuSteal => "cpu_steal",
            Cause::Unknown => "unknown",
        }
    }
}

/// Others' share of the capacity that, on its own, makes the machine busy.
const BUSY_SHARE: f64 = 0.5;
/// Others' share that makes the machine busy when the run queue also exceeds
/// the online CPUs.
const BUSY_SHARE_QUEUED: f64 = 0.25;
/// Steal share of the capacity that counts as a noisy host.
const STEAL_SHARE: f64 = 0.10;
/// Our own share of the capacity that makes the generator the main consumer.
const OWN_SHARE: f64 = 0.5;

/// What the machine did during the run, beside the process's own CPU: the
/// evidence for the [`Cause`]. Means are over the intervals with figures, in
/// % of one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineEvidence {
    /// Intervals with machine figures.
    pub intervals: u64,
    /// CPUs the figures cover: those this process may run on (its affinity
    /// mask, e.g. from `taskset`).
    pub cpus: usize,
    /// CPUs online on the machine (the run queue is compared with these).
    pub online_cpus: usize,
    /// The load generator's own CPU (client threads).
    pub own_cpu_percent: f64,
    /// The embedded emulator's threads (0 against an external target).
    pub emulator_cpu_percent: f64,
    /// Everything else on those CPUs: machine busy time − this process.
    pub others_cpu_percent: f64,
    pub others_cpu_percent_max: f64,
    /// Busy time of those CPUs, all processes together.
    pub machine_cpu_percent: f64,
    /// Steal time of those CPUs (virtual machines).
    pub steal_percent: f64,
    pub steal_percent_max: f64,
    /// Runnable tasks on the machine, sampled once per interval.
    pub run_queue_p99: u64,
    pub run_queue_max: u64,
}

/// The cause of a saturated run (see the module docs for the rules).
/// `cpu_rule_fired`: rule 2 held; `cores`: the cores the process may use;
/// `own_cpu_percent`: the client's mean CPU; `machine`: the machine's figures,
/// if any.
pub fn classify(
    cpu_rule_fired: bool,
    cores: usize,
    own_cpu_percent: f64,
    machine: Option<&MachineEvidence>,
) -> Cause {
    if cpu_rule_fired {
        return Cause::GeneratorSaturated;
    }
    let Some(m) = machine.filter(|m| m.intervals > 0) else {
        let capacity = 100.0 * cores.max(1) as f64;
        return if own_cpu_percent >= OWN_SHARE * capacity {
            Cause::GeneratorSaturated
        } else {
            Cause::Unknown
        };
    };
    let capacity = 100.0 * m.cpus.max(1) as f64;
    let ours = m.own_cpu_percent + m.emulator_cpu_percent;
    let others = m.others_cpu_percent;
    let queued = m.run_queue_p99 > m.online_cpus as u64;
    let busy = others > ours
        && (others >= BUSY_SHARE * capacity || (queued && others >= BUSY_SHARE_QUEUED * capacity));
    let stolen = m.steal_percent >= STEAL_SHARE * capacity;
    match (busy, stolen) {
        (true, true) if m.steal_percent > others => Cause::CpuSteal,
        (true, _) => Cause::MachineBusy,
        (false, true) => Cause::CpuSteal,
        (false, false) if ours >= OWN_SHARE * capacity => Cause::GeneratorSaturated,
        (false, false) => Cause::Unknown,
    }
}

/// The remedy for `cause`, with the figures that show it.
pub fn hint(
    cause: Cause,
    own_cpu_percent: f64,
    cores: usize,
    m: Option<&MachineEvidence>,
) -> String {
    let emulator = m.map_or(0.0, |m| m.emulator_cpu_percent);
    match (cause, m) {
        (Cause::GeneratorSaturated, _) => {
            let mut text = format!(
                "the load generator itself used {own_cpu_percent:.0} % of a core on {cores} core(s): \
                 lower the load per machine (fewer VUs or a lower arrival rate) or split the run \
                 over more machines (`--segment i/N`, then `finalping merge`)"
            );
            if emulator >= own_cpu_percent.max(25.0 * cores.max(1) as f64) {
                text.push_str(&format!(
                    "; the embedded emulator used {emulator:.0} % more: run `finalping serve` as a \
                     separate process on other cores or another machine and pass `--target`"
                ));
            }
            text
        }
        (Cause::MachineBusy, Some(m)) => format!(
            "other processes used {:.0} % of a core on the {} CPU(s) finalping may use (run queue \
             up to {} tasks for {} online CPUs) while finalping used {:.0} %: the delays come from \
             sharing the CPU, not from the load, so fewer VUs will not help; stop the other work, \
             run on a quiet machine, or give finalping CPUs of its own (`taskset -c …` with the \
             other work kept off them)",
            m.others_cpu_percent,
            m.cpus,
            m.run_queue_max,
            m.online_cpus,
            m.own_cpu_percent + m.emulator_cpu_percent
        ),
        (Cause::CpuSteal, Some(m)) => format!(
            "the hypervisor withheld {:.0} % of a core (steal time) from the {} CPU(s) of this \
             virtual machine: run on a dedicated host or a larger instance with guaranteed CPU; \
             fewer VUs will not help",
            m.steal_percent, m.cpus
        ),
        (_, Some(m)) => format!(
            "no CPU contention was seen (finalping {:.0} %, other processes {:.0} %, steal {:.0} % \
             of a core on {} CPU(s)): the delays may come from a container's CPU quota (cgroup \
             throttling), memory pressure (swapping) or a stalled host; rerun, and compare the \
             scheduler-lag column of timeseries.csv with what else ran at that time",
            m.own_cpu_percent + m.emulator_cpu_percent,
            m.others_cpu_percent,
            m.steal_percent,
            m.cpus
        ),
        (_, None) => format!(
            "this system does not show other processes' CPU use, so the cause is unknown \
             (finalping used {own_cpu_percent:.0} % of a core): make sure nothing else runs on \
             the machine and rerun; if it repeats, use fewer VUs"
        ),
    }
}

/// The self-check block of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfCheckSummary {
    /// Intervals fed to the check.
    pub intervals: u64,
    /// Scheduler lag probe samples (one per ~10 ms).
    pub lag_samples: u64,
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    pub lag_max_us: u64,
    /// Rule 1 budget.
    pub lag_p99_budget_us: u64,
    /// Mean of the per-interval CPU figures, % of one core.
    pub cpu_percent_mean: f64,
    pub cpu_percent_max: f64,
    /// Cores the process may use.
    pub cpu_cores: usize,
    /// Rule 2 threshold, % of one core.
    pub cpu_saturation_percent: f64,
    /// Rule 2 window, in consecutive intervals.
    pub cpu_window_intervals: u32,
    /// Longest run of consecutive intervals at or above the threshold.
    pub cpu_longest_saturated_intervals: u32,
    pub rss_mib_max: f64,
    pub saturated: bool,
    pub reasons: Vec<String>,
    /// Why the run was saturated; null when it was not.
    #[serde(default)]
    pub cause: Option<Cause>,
    /// The remedy for `cause`, with its figures; null when not saturated.
    #[serde(default)]
    pub hint: Option<String>,
    /// The machine's figures (the evidence for `cause`); null where the
    /// system does not provide them (no `/proc/stat`).
    #[serde(default)]
    pub machine: Option<MachineEvidence>,
}

impl SelfCheckSummary {
    /// One line of evidence: our CPU, others', steal, run queue (None without
    /// machine figures).
    pub fn evidence_text(&self) -> Option<String> {
        let m = self.machine.as_ref().filter(|m| m.intervals > 0)?;
        Some(format!(
            "finalping {:.0} % of a core (client {:.0} %, embedded emulator {:.0} %), other \
             processes {:.0} % (max {:.0} %), steal {:.0} %, run queue p99 {} / max {} on {} \
             online CPU(s); CPU figures over the {} CPU(s) finalping may use",
            m.own_cpu_percent + m.emulator_cpu_percent,
            m.own_cpu_percent,
            m.emulator_cpu_percent,
            m.others_cpu_percent,
            m.others_cpu_percent_max,
            m.steal_percent,
            m.run_queue_p99,
            m.run_queue_max,
            m.online_cpus,
            m.cpus
        ))
    }

    /// "cause …: remedy" of a saturated run (None when not saturated, or
    /// read from a summary written before causes were recorded).
    pub fn diagnosis(&self) -> Option<String> {
        let cause = self.cause.filter(|_| self.saturated)?;
        Some(match &self.hint {
            Some(hint) => format!("cause {}: {hint}", cause.as_str()),
            None => format!("cause {}", cause.as_str()),
        })
    }
}

/// Sums of the machine's per-interval figures (see [`MachineEvidence`]).
struct MachineTotals {
    intervals: u64,
    cpus: usize,
    online_cpus: usize,
    own_sum: f64,
    emulator_sum: f64,
    others_sum: f64,
    others_max: f64,
    machine_sum: f64,
    steal_sum: f64,
    steal_max: f64,
    run_queue: Histogram<u64>,
}

impl MachineTotals {
    fn new() -> MachineTotals {
        MachineTotals {
            intervals: 0,
            cpus: 0,
            online_cpus: 0,
            own_sum: 0.0,
            emulator_sum: 0.0,
            others_sum: 0.0,
            others_max: 0.0,
            machine_sum: 0.0,
            steal_sum: 0.0,
            steal_max: 0.0,
            run_queue: new_histogram(),
        }
    }

    fn evidence(&self) -> Option<MachineEvidence> {
        if self.intervals == 0 {
            return None;
        }
        let n = self.intervals as f64;
        let q = |p: f64| self.run_queue.value_at_quantile(p);
        Some(MachineEvidence {
            intervals: self.intervals,
            cpus: self.cpus,
            online_cpus: self.online_cpus,
            own_cpu_percent: self.own_sum / n,
            emulator_cpu_percent: self.emulator_sum / n,
            others_cpu_percent: self.others_sum / n,
            others_cpu_percent_max: self.others_max,
            machine_cpu_percent: self.machine_sum / n,
            steal_percent: self.steal_sum / n,
            steal_percent_max: self.steal_max,
            run_queue_p99: q(0.99),
            run_queue_max: self.run_queue.max(),
        })
    }
}

/// A finite, non-negative CPU figure (anything else counts as 0).
fn cpu_figure(percent: f64) -> f64 {
    if percent.is_finite() {
        percent.max(0.0)
    } else {
        0.0
    }
}

/// Accumulates the per-interval measurements of a run and applies the rules.
pub struct SelfCheck {
    config: SelfCheckConfig,
    lag: Histogram<u64>,
    intervals: u64,
    cpu_sum: f64,
    cpu_max: f64,
    cpu_streak: u32,
    cpu_longest_streak: u32,
    rss_max_kib: u64,
    machine: MachineTotals,
}

impl SelfCheck {
    pub fn new(config: SelfCheckConfig) -> SelfCheck {
        SelfCheck {
            config,
            lag: new_histogram(),
            intervals: 0,
            cpu_sum: 0.0,
            cpu_max: 0.0,
            cpu_streak: 0,
            cpu_longest_streak: 0,
            rss_max_kib: 0,
            machine: MachineTotals::new(),
        }
    }

    pub fn config(&self) -> &SelfCheckConfig {
        &self.config
    }

    /// Feeds one interval: its lag samples (µs), CPU % of one core, RSS in KiB.
    /// A non-finite CPU figure counts as 0.
    pub fn record_interval(&mut self, lag: &Histogram<u64>, cpu_percent: f64, rss_kib: u64) {
        if !lag.is_empty() {
            // Project-wide bounds on both sides: addition cannot fail.
            let _ = self.lag.add(lag);
        }
        let cpu = cpu_figure(cpu_percent);
        self.intervals += 1;
        self.cpu_sum += cpu;
        self.cpu_max = self.cpu_max.max(cpu);
        if cpu >= self.config.cpu_saturation_percent() {
            self.cpu_streak += 1;
            self.cpu_longest_streak = self.cpu_longest_streak.max(self.cpu_streak);
        } else {
            self.cpu_streak = 0;
        }
        self.rss_max_kib = self.rss_max_kib.max(rss_kib);
    }

    /// Feeds the machine's figures for the same interval as
    /// [`record_interval`](Self::record_interval): the client's CPU, the
    /// whole process's (embedded emulator included), both in % of one core.
    pub fn record_machine(
        &mut self,
        own_cpu_percent: f64,
        process_cpu_percent: f64,
        m: &MachineSample,
    ) {
        let own = cpu_figure(own_cpu_percent);
        let process = cpu_figure(process_cpu_percent).max(own);
        let busy = cpu_figure(m.busy_percent);
        let steal = cpu_figure(m.steal_percent);
        // Ticks are coarser than the process's own clock: never below 0.
        let others = (busy - process).max(0.0);
        let t = &mut self.machine;
        t.intervals += 1;
        t.cpus = m.cpus;
        t.online_cpus = m.online_cpus;
        t.own_sum += own;
        t.emulator_sum += process - own;
        t.others_sum += others;
        t.others_max = t.others_max.max(others);
        t.machine_sum += busy;
        t.steal_sum += steal;
        t.steal_max = t.steal_max.max(steal);
        t.run_queue.saturating_record(u64::from(m.run_queue));
    }

    /// The run's last, partial interval: its lag and RSS count, but not its CPU
    /// figure, which is dominated by tearing connections down in a short window.
    pub fn record_tail(&mut self, lag: &Histogram<u64>, rss_kib: u64) {
        if !lag.is_empty() {
            let _ = self.lag.add(lag);
        }
        self.rss_max_kib = self.rss_max_kib.max(rss_kib);
    }

    /// All lag samples fed so far.
    pub fn lag(&self) -> &Histogram<u64> {
        &self.lag
    }

    /// Applies the rules of the module docs.
    pub fn verdict(&self) -> Saturation {
        let mut reasons = Vec::new();
        let budget_us = u64::try_from(self.config.lag_p99_budget.as_micros()).unwrap_or(u64::MAX);
        let lag_p99 = self.lag_p99_us();
        if lag_p99 > budget_us {
            reasons.push(format!(
                "generator scheduler lag p99 {:.3} ms exceeds the budget of {:.3} ms \
                 (tasks started late; latencies include generator queueing)",
                lag_p99 as f64 / 1000.0,
                budget_us as f64 / 1000.0
            ));
        }
        let window = self.config.cpu_window_intervals.max(1);
        if self.cpu_rule_fired() {
            reasons.push(format!(
                "generator CPU at or above {:.0}% of {} core(s) ({:.0}% of one core) for {} \
                 consecutive intervals (limit {})",
                self.config.cpu_saturation_fraction * 100.0,
                self.config.cores,
                self.config.cpu_saturation_percent(),
                self.cpu_longest_streak,
                window
            ));
        }
        Saturation {
            saturated: !reasons.is_empty(),
            reasons,
        }
    }

    /// The machine's figures so far (None without any).
    pub fn machine(&self) -> Option<MachineEvidence> {
        self.machine.evidence()
    }

    pub fn summary(&self) -> SelfCheckSummary {
        let verdict = self.verdict();
        let machine = self.machine();
        let own_cpu = if self.intervals == 0 {
            0.0
        } else {
            self.cpu_sum / self.intervals as f64
        };
        let cause = verdict.saturated.then(|| {
            classify(
                self.cpu_rule_fired(),
                self.config.cores,
                own_cpu,
                machine.as_ref(),
            )
        });
        let hint = cause.map(|c| hint(c, own_cpu, self.config.cores, machine.as_ref()));
        let q = |p: f64| {
            if self.lag.is_empty() {
                0
            } else {
                self.lag.value_at_quantile(p)
            }
        };
        SelfCheckSummary {
            intervals: self.intervals,
            lag_samples: self.lag.len(),
            lag_p50_us: q(0.50),
            lag_p99_us: q(0.99),
            lag_max_us: if self.lag.is_empty() {
                0
            } else {
                self.lag.max()
            },
            lag_p99_budget_us: u64::try_from(self.config.lag_p99_budget.as_micros())
                .unwrap_or(u64::MAX),
            cpu_percent_mean: own_cpu,
            cpu_percent_max: self.cpu_max,
            cpu_cores: self.config.cores,
            cpu_saturation_percent: self.config.cpu_saturation_percent(),
            cpu_window_intervals: self.config.cpu_window_intervals,
            cpu_longest_saturated_intervals: self.cpu_longest_streak,
            rss_mib_max: self.rss_max_kib as f64 / 1024.0,
            saturated: verdict.saturated,
            reasons: verdict.reasons,
            cause,
            hint,
            machine,
        }
    }

    /// Rule 2 held.
    fn cpu_rule_fired(&self) -> bool {
        self.cpu_longest_streak >= self.config.cpu_window_intervals.max(1)
    }

    fn lag_p99_us(&self) -> u64 {
        if self.lag.is_empty() {
            0
        } else {
            self.lag.value_at_quantile(0.99)
        }
    }
}

/// What [`GeneratorMonitor::sample_interval`] measured for one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IntervalSample {
    pub cpu_percent: f64,
    pub rss_kib: u64,
    /// p99 of the probe's samples in this interval (0 if none).
    pub lag_p99_us: u64,
}

impl IntervalSample {
    /// The timeline gauges of this interval.
    pub fn gauges(&self, active_vus: u64) -> super::Gauges {
        super::Gauges {
            active_vus,
            cpu_percent: self.cpu_percent,
            rss_kib: self.rss_kib,
            scheduler_lag_p99_us: self.lag_p99_us,
        }
    }
}

/// Probe + sampler + rules, driven by the collector once per interval.
pub struct GeneratorMonitor {
    probe: LagProbe,
    /// The last interval's lag samples (kept to reuse its memory).
    lag: Histogram<u64>,
    sampler: ResourceSampler,
    machine: MachineSampler,
    check: SelfCheck,
}

impl GeneratorMonitor {
    /// Starts the lag probe (must be called inside a tokio runtime) and the CPU clock.
    pub fn start(config: SelfCheckConfig) -> GeneratorMonitor {
        GeneratorMonitor::start_excluding(config, None)
    }

    /// Like [`start`](Self::start), with the CPU of `excluded`'s threads (the
    /// embedded emulator's runtime) taken out of the CPU figures and rule 2.
    pub fn start_excluding(
        config: SelfCheckConfig,
        excluded: Option<Arc<ThreadGroupCpu>>,
    ) -> GeneratorMonitor {
        GeneratorMonitor {
            probe: LagProbe::start(),
            lag: new_histogram(),
            sampler: ResourceSampler::excluding(excluded),
            machine: MachineSampler::new(),
            check: SelfCheck::new(config),
        }
    }

    /// Measures the interval since the previous call and feeds the rules.
    pub fn sample_interval(&mut self) -> IntervalSample {
        self.probe.take_interval_into(&mut self.lag);
        let lag = &self.lag;
        let res = self.sampler.sample();
        self.check
            .record_interval(lag, res.cpu_percent, res.rss_kib);
        if let Some(m) = self.machine.sample() {
            self.check
                .record_machine(res.cpu_percent, res.process_cpu_percent, &m);
        }
        IntervalSample {
            cpu_percent: res.cpu_percent,
            rss_kib: res.rss_kib,
            lag_p99_us: if lag.is_empty() {
                0
            } else {
                lag.value_at_quantile(0.99)
            },
        }
    }

    /// Like [`sample_interval`](Self::sample_interval) for the run's last,
    /// partial interval (see [`SelfCheck::record_tail`]).
    pub fn sample_tail(&mut self) -> IntervalSample {
        self.probe.take_interval_into(&mut self.lag);
        let lag = &self.lag;
        let res = self.sampler.sample();
        self.check.record_tail(lag, res.rss_kib);
        IntervalSample {
            cpu_percent: res.cpu_percent,
            rss_kib: res.rss_kib,
            lag_p99_us: if lag.is_empty() {
                0
            } else {
                lag.value_at_quantile(0.99)
            },
        }
    }

    pub fn probe(&self) -> &LagProbe {
        &self.probe
    }

    pub fn check(&self) -> &SelfCheck {
        &self.check
    }

    /// Stops the probe and returns the summary (call `sample_interval` for the
    /// last partial interval first; samples after it are not counted).
    pub fn finish(self) -> SelfCheckSummary {
        self.check.summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cores: usize, window: u32) -> SelfCheckConfig {
        SelfCheckConfig {
            lag_p99_budget: Duration::from_millis(5),
            cpu_saturation_fraction: 0.95,
            cpu_window_intervals: window,
            cores,
        }
    }

    fn lag_of(us: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in us {
            h.record(*v).unwrap();
        }
        h
    }

    #[test]
    fn healthy_run_is_not_saturated() {
        let mut c = SelfCheck::new(config(2, 5));
        for _ in 0..20 {
            c.record_interval(&lag_of(&[500; 100]), 120.0, 50 * 1024);
        }
        let v = c.verdict();
        assert!(!v.saturated, "{v:?}");
        assert!(v.reasons.is_empty());
        let s = c.summary();
        assert_eq!(s.intervals, 20);
        assert_eq!(s.lag_samples, 2000);
        assert!((s.cpu_percent_mean - 120.0).abs() < 1e-9);
        assert!((s.rss_mib_max - 50.0).abs() < 1e-9);
        assert!((s.cpu_saturation_percent - 190.0).abs() < 1e-9);
        assert!(!s.saturated);
    }

    #[test]
    fn lag_p99_over_budget_saturates() {
        let mut c = SelfCheck::new(config(2, 5));
        // 98 % fast, 2 % at 20 ms: p99 is 20 ms > 5 ms.
        for _ in 0..10 {
            let mut samples = vec![800u64; 98];
            samples.extend([20_000, 20_000]);
            c.record_interval(&lag_of(&samples), 10.0, 1024);
        }
        let v = c.verdict();
        assert!(v.saturated);
        assert_eq!(v.reasons.len(), 1);
        assert!(v.reasons[0].contains("scheduler lag p99"), "{v:?}");
        // 0.5 % slow: p99 stays fast, not saturated.
        let mut ok = SelfCheck::new(config(2, 5));
        for _ in 0..10 {
            let mut samples = vec![800u64; 199];
            samples.push(20_000);
            ok.record_interval(&lag_of(&samples), 10.0, 1024);
        }
        assert!(!ok.verdict().saturated, "{:?}", ok.verdict());
    }

    #[test]
    fn cpu_needs_a_sustained_window() {
        // 2 cores → threshold 190 %; 4 saturated intervals, a dip, 4 again: not saturated.
        let series = [
            191.0, 195.0, 190.0, 199.0, 150.0, 192.0, 193.0, 194.0, 195.0,
        ];
        let mut c = SelfCheck::new(config(2, 5));
        for cpu in series {
            c.record_interval(&new_histogram(), cpu, 0);
        }
        assert!(!c.verdict().saturated, "{:?}", c.verdict());
        assert_eq!(c.summary().cpu_longest_saturated_intervals, 4);
        // One more saturated interval makes five in a row.
        c.record_interval(&new_histogram(), 190.0, 0);
        let v = c.verdict();
        assert!(v.saturated);
        assert!(v.reasons[0].contains("5 consecutive intervals"), "{v:?}");
        // The window is configurable.
        let mut short = SelfCheck::new(config(2, 2));
        for cpu in [100.0, 191.0, 191.0, 10.0] {
            short.record_interval(&new_histogram(), cpu, 0);
        }
        assert!(short.verdict().saturated);
        // The threshold scales with the cores: 191 % is fine on 4 cores.
        let mut four = SelfCheck::new(config(4, 2));
        for _ in 0..10 {
            four.record_interval(&new_histogram(), 191.0, 0);
        }
        assert!(!four.verdict().saturated);
    }

    #[test]
    fn both_rules_report_both_reasons_and_nan_cpu_is_ignored() {
        let mut c = SelfCheck::new(config(1, 1));
        c.record_interval(&lag_of(&[10_000]), f64::NAN, 0);
        c.record_interval(&new_histogram(), 100.0, 0);
        let v = c.verdict();
        assert_eq!(v.reasons.len(), 2, "{v:?}");
        assert!((c.summary().cpu_percent_max - 100.0).abs() < 1e-9);
        let json = serde_json::to_value(c.summary()).unwrap();
        assert_eq!(json["saturated"], true);
        assert_eq!(json["lag_p99_budget_us"], 5000);
    }

    fn machine(cpus: usize, busy: f64, steal: f64, run_queue: u32) -> MachineSample {
        MachineSample {
            cpus,
            online_cpus: cpus,
            busy_percent: busy,
            steal_percent: steal,
            run_queue,
        }
    }

    /// A run over budget on lag only (20 ms p99), 10 intervals of the given
    /// client CPU, process CPU and machine figures.
    fn lagging_run(own: f64, process: f64, m: MachineSample) -> SelfCheckSummary {
        let mut c = SelfCheck::new(config(2, 5));
        for _ in 0..10 {
            c.record_interval(&lag_of(&[20_000; 10]), own, 1024);
            c.record_machine(own, process, &m);
        }
        c.summary()
    }

    #[test]
    fn a_busy_machine_is_told_apart_from_a_saturated_generator() {
        // The issue's case: 2 cores, finalping at 5 %, the CPUs busy with other work.
        let s = lagging_run(5.0, 5.0, machine(2, 195.0, 0.0, 5));
        assert!(s.saturated);
        assert_eq!(s.cause, Some(Cause::MachineBusy));
        let m = s.machine.unwrap();
        assert_eq!(
            m,
            MachineEvidence {
                intervals: 10,
                cpus: 2,
                online_cpus: 2,
                own_cpu_percent: 5.0,
                emulator_cpu_percent: 0.0,
                others_cpu_percent: 190.0,
                others_cpu_percent_max: 190.0,
                machine_cpu_percent: 195.0,
                steal_percent: 0.0,
                steal_percent_max: 0.0,
                run_queue_p99: 5,
                run_queue_max: 5,
            }
        );
        let hint = s.hint.as_deref().unwrap();
        assert!(
            hint.starts_with("other processes used 190 % of a core on the 2 CPU(s)")
                && hint.contains("run queue up to 5 tasks for 2 online CPUs")
                && hint.contains("fewer VUs will not help"),
            "{hint}"
        );
        assert!(s
            .diagnosis()
            .unwrap()
            .starts_with("cause machine_busy: other processes"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["cause"], "machine_busy");
        assert_eq!(json["machine"]["others_cpu_percent"], 190.0);
        assert_eq!(json["machine"]["run_queue_p99"], 5);
    }

    #[test]
    fn classification_rules() {
        let m = |own: f64, emulator: f64, others: f64, steal: f64, queue: u64| MachineEvidence {
            intervals: 3,
            cpus: 2,
            online_cpus: 2,
            own_cpu_percent: own,
            emulator_cpu_percent: emulator,
            others_cpu_percent: others,
            machine_cpu_percent: own + emulator + others,
            run_queue_p99: queue,
            run_queue_max: queue,
            steal_percent: steal,
            ..MachineEvidence::default()
        };
        let cause =
            |fired: bool, e: MachineEvidence| classify(fired, 2, e.own_cpu_percent, Some(&e));
        // Rule 2 fired: the generator, whatever else ran.
        assert_eq!(
            cause(true, m(190.0, 0.0, 5.0, 0.0, 2)),
            Cause::GeneratorSaturated
        );
        assert_eq!(
            cause(true, m(10.0, 0.0, 180.0, 0.0, 9)),
            Cause::GeneratorSaturated
        );
        // Others ≥ 50 % of 200 and more than ours: busy, run queue or not.
        assert_eq!(
            cause(false, m(10.0, 0.0, 100.0, 0.0, 1)),
            Cause::MachineBusy
        );
        assert_eq!(cause(false, m(10.0, 0.0, 99.0, 0.0, 2)), Cause::Unknown);
        // 25–50 % needs a run queue above the online CPUs.
        assert_eq!(cause(false, m(10.0, 0.0, 50.0, 0.0, 3)), Cause::MachineBusy);
        assert_eq!(cause(false, m(10.0, 0.0, 49.0, 0.0, 3)), Cause::Unknown);
        // Ours (client + embedded emulator) at least as large: not the machine's fault.
        assert_eq!(
            cause(false, m(60.0, 50.0, 100.0, 0.0, 4)),
            Cause::GeneratorSaturated
        );
        assert_eq!(
            cause(false, m(60.0, 40.0, 100.0, 0.0, 4)),
            Cause::GeneratorSaturated
        );
        assert_eq!(
            cause(false, m(60.0, 39.0, 100.0, 0.0, 4)),
            Cause::MachineBusy
        );
        // Steal ≥ 10 % of 200.
        assert_eq!(cause(false, m(10.0, 0.0, 5.0, 20.0, 1)), Cause::CpuSteal);
        assert_eq!(cause(false, m(10.0, 0.0, 5.0, 19.0, 1)), Cause::Unknown);
        // Both: the larger share wins.
        assert_eq!(
            cause(false, m(10.0, 0.0, 100.0, 60.0, 4)),
            Cause::MachineBusy
        );
        assert_eq!(cause(false, m(10.0, 0.0, 100.0, 120.0, 4)), Cause::CpuSteal);
        // Nothing else ran, ours is half the capacity: the generator.
        assert_eq!(
            cause(false, m(100.0, 0.0, 0.0, 0.0, 2)),
            Cause::GeneratorSaturated
        );
        assert_eq!(cause(false, m(99.0, 0.0, 0.0, 0.0, 2)), Cause::Unknown);
        // No machine figures: only our own CPU can tell.
        assert_eq!(classify(false, 2, 100.0, None), Cause::GeneratorSaturated);
        assert_eq!(classify(false, 2, 99.0, None), Cause::Unknown);
        let none = MachineEvidence::default();
        assert_eq!(classify(false, 2, 5.0, Some(&none)), Cause::Unknown);
    }

    #[test]
    fn each_cause_names_its_remedy() {
        let s = lagging_run(5.0, 5.0, machine(2, 10.0, 40.0, 2));
        assert_eq!(s.cause, Some(Cause::CpuSteal));
        let hint = s.hint.unwrap();
        assert!(
            hint.starts_with("the hypervisor withheld 40 % of a core"),
            "{hint}"
        );
        assert!(hint.contains("dedicated host"), "{hint}");

        // Client 20 %, embedded emulator 100 % more, nothing else: the
        // generator, and the emulator should move out.
        let s = lagging_run(20.0, 120.0, machine(2, 125.0, 0.0, 2));
        assert_eq!(s.cause, Some(Cause::GeneratorSaturated));
        let m = s.machine.unwrap();
        assert_eq!((m.emulator_cpu_percent, m.others_cpu_percent), (100.0, 5.0));
        let hint = s.hint.unwrap();
        assert!(
            hint.contains("fewer VUs") && hint.contains("--segment"),
            "{hint}"
        );
        assert!(hint.contains("embedded emulator used 100 % more"), "{hint}");

        let s = lagging_run(5.0, 5.0, machine(2, 10.0, 0.0, 1));
        assert_eq!(s.cause, Some(Cause::Unknown));
        assert!(s
            .hint
            .unwrap()
            .starts_with("no CPU contention was seen (finalping 5 %, other processes 5 %"));

        // CPU rule: the generator at its limit; no emulator advice without one.
        let mut c = SelfCheck::new(config(2, 2));
        for _ in 0..3 {
            c.record_interval(&new_histogram(), 195.0, 0);
            c.record_machine(195.0, 195.0, &machine(2, 199.0, 0.0, 3));
        }
        let s = c.summary();
        assert_eq!(s.cause, Some(Cause::GeneratorSaturated));
        let hint = s.hint.unwrap();
        assert!(
            hint.starts_with("the load generator itself used 195 % of a core on 2 core(s)"),
            "{hint}"
        );
        assert!(!hint.contains("emulator"), "{hint}");

        // Not saturated: no cause, no hint, but the evidence is there.
        let mut ok = SelfCheck::new(config(2, 5));
        ok.record_interval(&lag_of(&[100]), 5.0, 0);
        ok.record_machine(5.0, 5.0, &machine(2, 150.0, 0.0, 4));
        let s = ok.summary();
        assert_eq!(
            (s.cause, s.hint.as_deref(), s.diagnosis()),
            (None, None, None)
        );
        assert_eq!(s.machine.unwrap().others_cpu_percent, 145.0);
        assert!(s.evidence_text().unwrap().contains("other processes 145 %"));
    }

    #[test]
    fn others_never_go_negative_and_bad_figures_count_as_zero() {
        let mut c = SelfCheck::new(config(2, 5));
        // Ticks are coarse: the machine may show less than the process itself.
        c.record_machine(50.0, 60.0, &machine(2, 55.0, f64::NAN, 2));
        c.record_machine(f64::NAN, 20.0, &machine(2, 10.0, -3.0, 2));
        let m = c.machine().unwrap();
        assert_eq!(m.others_cpu_percent, 0.0);
        assert_eq!(m.steal_percent_max, 0.0);
        assert_eq!(m.own_cpu_percent, 25.0);
        assert_eq!(m.emulator_cpu_percent, 15.0);
    }

    #[test]
    fn summaries_without_the_new_fields_still_read() {
        let mut json = serde_json::to_value(SelfCheck::new(config(2, 5)).summary()).unwrap();
        for field in ["cause", "hint", "machine"] {
            json.as_object_mut().unwrap().remove(field);
        }
        let s: SelfCheckSummary = serde_json::from_value(json).unwrap();
        assert_eq!((s.cause, s.hint.as_deref(), s.machine), (None, None, None));
        let saturated = SelfCheckSummary {
            saturated: true,
            ..s
        };
        assert_eq!(saturated.diagnosis(), None);
        assert_eq!(saturated.evidence_text(), None);
    }

    #[test]
    fn probe_sees_a_blocked_runtime() {
        const BLOCK: Duration = Duration::from_millis(100);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let probe = LagProbe::start();
            assert!(
                probe.wait_for_samples(1, Duration::from_secs(5)).await,
                "probe took no sample within 5 s"
            );
            // The probe is now inside its next sleep; block the only thread.
            let before = probe.samples();
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < BLOCK {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            assert!(
                probe
                    .wait_for_samples(before + 1, Duration::from_secs(5))
                    .await,
                "probe took no sample after the block"
            );
            // That sleep started before the block and ended after it: it
            // overshot by at least BLOCK − PROBE_PERIOD (minus HDR precision).
            let mut interval = new_histogram();
            probe.take_interval_into(&mut interval);
            let min_expected = (BLOCK - PROBE_PERIOD).as_micros() as u64 * 99 / 100;
            assert!(
                interval.max() >= min_expected,
                "lag max {} µs < {} µs",
                interval.max(),
                min_expected
            );
            assert_eq!(probe.total().max(), interval.max());
            // Drained: nothing was recorded since (no await in between),
            // and what `interval` held is gone.
            probe.take_interval_into(&mut interval);
            assert_eq!(interval.len(), 0);
        });
    }

    #[test]
    fn monitor_feeds_lag_cpu_and_rss() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut m = GeneratorMonitor::start(config(2, 5));
            assert!(
                m.probe().wait_for_samples(3, Duration::from_secs(5)).await,
                "probe took no samples within 5 s"
            );
            let s = m.sample_interval();
            assert!(s.rss_kib > 0);
            assert!(s.cpu_percent >= 0.0);
            let g = s.gauges(7);
            assert_eq!(g.active_vus, 7);
            assert_eq!(g.scheduler_lag_p99_us, s.lag_p99_us);
            let summary = m.finish();
            assert_eq!(summary.intervals, 1);
            assert!(summary.lag_samples >= 3, "{summary:?}");
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sampler_leaves_out_the_excluded_threads() {
        let group = Arc::new(ThreadGroupCpu::new());
        let wall = Instant::now();
        let mut plain = ResourceSampler::new();
        let mut client = ResourceSampler::excluding(Some(group.clone()));
        let g = group.clone();
        std::thread::spawn(move || {
            g.register_current();
            super::super::thread_cpu::burn_cpu(Duration::from_millis(150));
            g.unregister_current();
        })
        .join()
        .unwrap();
        let (all, own) = (plain.sample(), client.sample());
        let wall_ms = wall.elapsed().as_secs_f64() * 1000.0;
        // Other tests share the process; the difference is the group's alone.
        let excluded_ms = (all.cpu_percent - own.cpu_percent) / 100.0 * wall_ms;
        assert!(
            (145.0..400.0).contains(&excluded_ms),
            "{excluded_ms} ms: {own:?} vs {all:?} over {wall_ms} ms"
        );
    }

    #[test]
    fn sampler_sees_cpu_work_and_memory_growth() {
        let mut sampler = ResourceSampler::new();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        let s = sampler.sample();
        assert!(s.cpu_percent > 0.0, "{s:?}");
        #[cfg(target_os = "linux")]
        {
            let before = current_rss_kib().expect("statm readable");
            let block = vec![1u8; 64 << 20]; // 64 MiB, written so it is resident
            let after = current_rss_kib().expect("statm readable");
            std::hint::black_box(&block);
            assert!(after >= before + 32 * 1024, "rss {before} → {after} KiB");
            assert!(after <= ProcessUsage::now().max_rss_kib + 1024);
        }
    }
}
