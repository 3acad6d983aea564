//! Generator self-check: is the load generator itself the bottleneck? Owns the
//! tokio scheduling-lag probe ([`LagProbe`]), the per-interval CPU/RSS sampler
//! ([`ResourceSampler`]), the saturation rules ([`SelfCheck::verdict`]) and the
//! `summary.json` block ([`SelfCheckSummary`]). [`GeneratorMonitor`] bundles
//! the three for the collector. It does not decide the run status or exit code;
//! it says "saturated" and why.
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

use super::{new_histogram, ProcessUsage, ThreadGroupCpu};
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

    /// The lag samples since the previous call (or the start), leaving the interval empty.
    pub fn take_interval(&self) -> Histogram<u64> {
        std::mem::replace(&mut self.lock().interval, new_histogram())
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
    /// CPU time used during the interval / its wall time, in % of one core.
    pub cpu_percent: f64,
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
        let mut cpu = now.cpu.saturating_sub(self.last.cpu);
        if let Some(e) = excluded {
            cpu = cpu.saturating_sub(e.saturating_sub(self.last_excluded));
            self.last_excluded = e;
        }
        let cpu = cpu.as_secs_f64();
        self.last = now;
        self.last_at = at;
        ResourceSample {
            cpu_percent: if wall > 0.0 { 100.0 * cpu / wall } else { 0.0 },
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
        let cpu = if cpu_percent.is_finite() {
            cpu_percent.max(0.0)
        } else {
            0.0
        };
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
        if self.cpu_longest_streak >= window {
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

    pub fn summary(&self) -> SelfCheckSummary {
        let verdict = self.verdict();
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
            cpu_percent_mean: if self.intervals == 0 {
                0.0
            } else {
                self.cpu_sum / self.intervals as f64
            },
            cpu_percent_max: self.cpu_max,
            cpu_cores: self.config.cores,
            cpu_saturation_percent: self.config.cpu_saturation_percent(),
            cpu_window_intervals: self.config.cpu_window_intervals,
            cpu_longest_saturated_intervals: self.cpu_longest_streak,
            rss_mib_max: self.rss_max_kib as f64 / 1024.0,
            saturated: verdict.saturated,
            reasons: verdict.reasons,
        }
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
    sampler: ResourceSampler,
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
            sampler: ResourceSampler::excluding(excluded),
            check: SelfCheck::new(config),
        }
    }

    /// Measures the interval since the previous call and feeds the rules.
    pub fn sample_interval(&mut self) -> IntervalSample {
        let lag = self.probe.take_interval();
        let res = self.sampler.sample();
        self.check
            .record_interval(&lag, res.cpu_percent, res.rss_kib);
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
        let lag = self.probe.take_interval();
        let res = self.sampler.sample();
        self.check.record_tail(&lag, res.rss_kib);
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
            let interval = probe.take_interval();
            let min_expected = (BLOCK - PROBE_PERIOD).as_micros() as u64 * 99 / 100;
            assert!(
                interval.max() >= min_expected,
                "lag max {} µs < {} µs",
                interval.max(),
                min_expected
            );
            assert_eq!(probe.total().max(), interval.max());
            // Drained: nothing was recorded since (no await in between).
            assert_eq!(probe.take_interval().len(), 0);
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
