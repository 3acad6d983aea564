//! Live accounting during a run: a collector task drains the recorder once per
//! tick into the run totals and feeds the progress display — an indicatif line
//! on a terminal, a plain line every few seconds otherwise, nothing with
//! `--quiet`.

use super::sink::{Backlogs, ClosedInterval, IntervalSink};
use super::{Gauge, Plan};
use crate::metrics::selfcheck::{GeneratorMonitor, SelfCheckConfig, SelfCheckSummary};
use crate::metrics::{Counter, Metric, Recorder, Snapshot, Timeline};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How the run reports progress while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Live line when stderr is a terminal, a plain line every few seconds otherwise.
    Auto,
    /// Nothing until the final table.
    Quiet,
}

const PLAIN_LINE_EVERY: Duration = Duration::from_secs(5);

/// What the collector hands back at the end of a run.
pub(super) struct Collected {
    pub totals: Snapshot,
    /// Set when `abort_on_fail` stopped the run: which threshold, and when.
    pub aborted: Option<String>,
    pub timeline: Timeline,
    pub self_check: SelfCheckSummary,
}

/// What the collector reads and whom it tells.
pub(super) struct Inputs {
    pub plan: Arc<Plan>,
    pub recorder: Arc<Recorder>,
    pub gauge: Arc<Gauge>,
    pub backlogs: Arc<Backlogs>,
    pub sinks: Vec<Box<dyn IntervalSink>>,
}

pub(super) struct Live {
    task: tokio::task::JoinHandle<Collected>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Live {
    pub fn start(inputs: Inputs, mode: ProgressMode, abort: CancellationToken) -> Live {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(collect(inputs, mode, stopped, abort));
        Live { task, stop }
    }

    /// Stops the collector and returns the run totals (a last drain included),
    /// the per-interval timeline and the generator self-check.
    pub async fn finish(self) -> Option<Collected> {
        let _ = self.stop.send(());
        self.task.await.ok()
    }
}

async fn collect(
    inputs: Inputs,
    mode: ProgressMode,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    abort: CancellationToken,
) -> Collected {
    let Inputs {
        plan,
        recorder,
        gauge,
        backlogs,
        mut sinks,
    } = inputs;
    let mut aborted = None;
    let settings = &plan.scenario.metrics;
    let tick = settings.interval.as_duration();
    let mut totals = Snapshot::new();
    let mut timeline = Timeline::new(std::time::SystemTime::now(), tick);
    let mut monitor = GeneratorMonitor::start_excluding(
        SelfCheckConfig {
            lag_p99_budget: settings.lag_p99_budget.as_duration(),
            cpu_window_intervals: settings.cpu_saturation_intervals,
            ..SelfCheckConfig::default()
        },
        plan.emulator_cpu.clone(),
    );
    let display = Display::new(&plan, mode);
    let started = Instant::now();
    let mut interval_start = Duration::ZERO;
    // One interval of the timeline: drain, account, sample the generator.
    let mut close_interval = |totals: &mut Snapshot, timeline: &mut Timeline, last: bool| {
        let drained = recorder.drain();
        totals.merge(&drained);
        let now = started.elapsed();
        let sample = if last {
            monitor.sample_tail()
        } else {
            monitor.sample_interval()
        };
        let active = gauge.active.load(Ordering::Relaxed);
        timeline.push(interval_start, now, &drained, sample.gauges(active));
        interval_start = now;
        let closed = ClosedInterval {
            timeline,
            drained: &drained,
            backlog: backlogs.waiting(),
            chat_sockets: gauge.chat_sockets.load(Ordering::Relaxed),
            runtime_sockets: gauge.runtime_sockets.load(Ordering::Relaxed),
            last,
        };
        for sink in sinks.iter_mut() {
            sink.interval(&closed);
        }
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_done = 0u64;
    let mut last_tick = Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stopped => break,
        }
        close_interval(&mut totals, &mut timeline, false);
        if aborted.is_none() {
            aborted = check_abort(&plan, started.elapsed(), &totals);
            if let Some(why) = &aborted {
                display.message(&format!("aborting: threshold breached: {why}"));
                abort.cancel();
            }
        }
        let turns = totals.counter(Counter::TurnsOk) + totals.turns_failed();
        let updates = totals.counter(Counter::UpdatesOk) + totals.updates_failed();
        let done =
            turns + updates + totals.counter(Counter::GetsOk) + totals.counter(Counter::GetsFailed);
        let rate = (done - last_done) as f64 / last_tick.elapsed().as_secs_f64().max(1e-3);
        last_done = done;
        last_tick = Instant::now();
        display.update(&Progress {
            elapsed: started.elapsed(),
            active_vus: gauge.active.load(Ordering::Relaxed),
            done,
            turns,
            updates,
            per_sec: rate,
            final_ping_p99_ms: totals.summary(Metric::FinalPing).p99_ms,
            update_p99_ms: totals.summary(Metric::ContextUpdate).p99_ms,
            failures: totals.turns_failed()
                + totals.updates_failed()
                + totals.counter(Counter::GetsFailed)
                + totals.counter(Counter::ConnectErrors)
                + totals.counter(Counter::RuntimeConnectErrors),
        });
    }
    close_interval(&mut totals, &mut timeline, true);
    display.finish();
    Collected {
        totals,
        aborted,
        timeline,
        self_check: monitor.finish(),
    }
}

/// `abort_on_fail`: the first breached threshold once the delay has passed.
fn check_abort(plan: &Plan, elapsed: Duration, totals: &Snapshot) -> Option<String> {
    let s = &plan.scenario;
    let abort = s.abort_on_fail?;
    if s.thresholds.is_empty() || elapsed < abort.delay.as_duration() {
        return None;
    }
    let summary = crate::thresholds::running_summary(&s.name, elapsed, totals, &plan.tags);
    crate::thresholds::first_breach(&s.thresholds, &summary)
        .map(|why| format!("{why} (at {:.1} s)", elapsed.as_secs_f64()))
}

struct Progress {
    elapsed: Duration,
    active_vus: u64,
    /// Turns + updates + gets finished.
    done: u64,
    turns: u64,
    updates: u64,
    per_sec: f64,
    final_ping_p99_ms: f64,
    update_p99_ms: f64,
    failures: u64,
}

impl Progress {
    fn line(&self) -> String {
        let mut line = format!("VUs {:>5}", self.active_vus);
        if self.turns > 0 || self.updates == 0 {
            line.push_str(&format!(
                " | turns {:>8} | final_ping p99 {:>8.2} ms",
                self.turns, self.final_ping_p99_ms
            ));
        }
        if self.updates > 0 {
            line.push_str(&format!(
                " | updates {:>8} | context_update p99 {:>7.2} ms",
                self.updates, self.update_p99_ms
            ));
        }
        line.push_str(&format!(
            " | {:>7.1}/s | errors {}",
            self.per_sec, self.failures
        ));
        line
    }
}

enum Display {
    /// `by_time`: the bar counts seconds of a duration-bound run, else turns.
    Bar {
        bar: ProgressBar,
        by_time: bool,
    },
    Plain {
        last: std::sync::Mutex<Instant>,
    },
    Quiet,
}

impl Display {
    fn new(plan: &Plan, mode: ProgressMode) -> Display {
        if mode == ProgressMode::Quiet {
            return Display::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Display::Plain {
                last: std::sync::Mutex::new(Instant::now()),
            };
        }
        // Length = planned seconds when duration-bound, else planned turns.
        let (len, template, by_time) = match plan.duration() {
            Some(d) => (
                d.as_secs().max(1),
                "{spinner} [{elapsed_precise}] {bar:20} {msg}",
                true,
            ),
            None => (
                plan.planned_samples(),
                "{spinner} [{elapsed_precise}] {bar:20} {pos}/{len} | {msg}",
                false,
            ),
        };
        let bar = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Display::Bar { bar, by_time }
    }

    fn update(&self, p: &Progress) {
        match self {
            Display::Bar { bar, by_time } => {
                bar.set_position(if *by_time {
                    p.elapsed.as_secs()
                } else {
                    p.done
                });
                bar.set_message(p.line());
            }
            Display::Plain { last } => {
                let mut last = last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.elapsed() >= PLAIN_LINE_EVERY {
                    *last = Instant::now();
                    eprintln!("[{:>6.1}s] {}", p.elapsed.as_secs_f64(), p.line());
                }
            }
            Display::Quiet => {}
        }
    }

    /// A one-off line that must be seen (printed above the live line).
    fn message(&self, text: &str) {
        match self {
            Display::Bar { bar, .. } => bar.println(text),
            Display::Plain { .. } => eprintln!("{text}"),
            Display::Quiet => {}
        }
    }

    fn finish(&self) {
        if let Display::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}
