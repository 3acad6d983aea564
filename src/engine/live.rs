//! Live accounting during a run: a collector task drains the recorder once per
//! tick into the run totals, hands the interval to the interval writer
//! (timeline and sinks, on a thread of their own) and feeds the progress
//! display — an indicatif line
//! on a terminal, a plain line every few seconds otherwise, nothing with
//! `--quiet`, or one JSON line per tick for a parent process (`run --workers`
//! reads its segments' lines and shows one line for all).

use super::interval_writer::{ClosedSnapshot, IntervalWriter};
use super::sink::{Backlogs, IntervalSink};
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
    /// One [`PROGRESS_PREFIX`] + JSON [`Progress`] line per tick on stderr (for `run --workers`).
    Json,
}

/// How a machine-readable progress line starts.
pub const PROGRESS_PREFIX: &str = "finalping-progress ";

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
    /// The run totals, empty: made before the arrival clock starts, because
    /// a new snapshot's page faults would delay the first arrivals.
    pub totals: Snapshot,
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
        sinks,
        mut totals,
    } = inputs;
    let mut aborted = None;
    let settings = &plan.scenario.metrics;
    let tick = settings.interval.as_duration();
    let mut writer =
        IntervalWriter::start(Timeline::new(std::time::SystemTime::now(), tick), sinks);
    let mut monitor = GeneratorMonitor::start_excluding(
        SelfCheckConfig {
            lag_p99_budget: settings.lag_p99_budget.as_duration(),
            cpu_window_intervals: settings.cpu_saturation_intervals,
            ..SelfCheckConfig::default()
        },
        plan.emulator_cpu.clone(),
    );
    let display = Display::new(plan.duration(), plan.planned_samples(), mode);
    let started = Instant::now();
    let mut interval_start = Duration::ZERO;
    // One interval: drain, account and sample the generator here; the
    // timeline and the sinks follow on the writer's thread.
    let mut close_interval = |totals: &mut Snapshot, last: bool| {
        let mut drained = writer.empty_snapshot();
        recorder.drain_into(&mut drained);
        totals.merge(&drained);
        let now = started.elapsed();
        let sample = if last {
            monitor.sample_tail()
        } else {
            monitor.sample_interval()
        };
        let active = gauge.active.load(Ordering::Relaxed);
        writer.write(ClosedSnapshot {
            start: interval_start,
            end: now,
            drained,
            gauges: sample.gauges(active),
            backlog: backlogs.waiting(),
            chat_sockets: gauge.chat_sockets.load(Ordering::Relaxed),
            runtime_sockets: gauge.runtime_sockets.load(Ordering::Relaxed),
            last,
        });
        interval_start = now;
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
        close_interval(&mut totals, false);
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
    close_interval(&mut totals, true);
    display.finish();
    Collected {
        totals,
        aborted,
        timeline: writer.finish().await,
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
    let running = crate::thresholds::RunningTotals::of(elapsed, totals, &plan.tags);
    crate::thresholds::first_breach(&s.thresholds, &running)
        .map(|why| format!("{why} (at {:.1} s)", elapsed.as_secs_f64()))
}

/// What the progress line shows; also the JSON of [`ProgressMode::Json`].
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub elapsed: Duration,
    pub active_vus: u64,
    /// Turns + updates + gets finished.
    pub done: u64,
    pub turns: u64,
    pub updates: u64,
    pub per_sec: f64,
    pub final_ping_p99_ms: f64,
    pub update_p99_ms: f64,
    pub failures: u64,
}

impl Progress {
    /// Parses a [`ProgressMode::Json`] line (`None` for any other line).
    pub fn parse_line(line: &str) -> Option<Progress> {
        serde_json::from_str(line.strip_prefix(PROGRESS_PREFIX)?).ok()
    }

    /// Several processes' progress as one: counts and rates add up; the
    /// p99s are the highest of them (percentiles do not add).
    pub fn combine<'a>(parts: impl IntoIterator<Item = &'a Progress>) -> Progress {
        parts
            .into_iter()
            .fold(Progress::default(), |a, p| Progress {
                elapsed: a.elapsed.max(p.elapsed),
                active_vus: a.active_vus + p.active_vus,
                done: a.done + p.done,
                turns: a.turns + p.turns,
                updates: a.updates + p.updates,
                per_sec: a.per_sec + p.per_sec,
                final_ping_p99_ms: a.final_ping_p99_ms.max(p.final_ping_p99_ms),
                update_p99_ms: a.update_p99_ms.max(p.update_p99_ms),
                failures: a.failures + p.failures,
            })
    }

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

/// The live progress display (also used by `run --workers` for all segments).
pub enum Display {
    /// `by_time`: the bar counts seconds of a duration-bound run, else turns.
    Bar {
        bar: ProgressBar,
        by_time: bool,
    },
    Plain {
        last: std::sync::Mutex<Instant>,
    },
    Quiet,
    Json,
}

impl Display {
    /// `duration`: of a duration-bound run; else `planned` measured operations.
    pub fn new(duration: Option<Duration>, planned: u64, mode: ProgressMode) -> Display {
        match mode {
            ProgressMode::Quiet => return Display::Quiet,
            ProgressMode::Json => return Display::Json,
            ProgressMode::Auto => {}
        }
        if !std::io::stderr().is_terminal() {
            return Display::Plain {
                last: std::sync::Mutex::new(Instant::now()),
            };
        }
        // Length = planned seconds when duration-bound, else planned turns.
        let (len, template, by_time) = match duration {
            Some(d) => (
                d.as_secs().max(1),
                "{spinner} [{elapsed_precise}] {bar:20} {msg}",
                true,
            ),
            None => (
                planned,
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

    pub fn update(&self, p: &Progress) {
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
            Display::Json => {
                if let Ok(json) = serde_json::to_string(p) {
                    eprintln!("{PROGRESS_PREFIX}{json}");
                }
            }
            Display::Quiet => {}
        }
    }

    /// A one-off line that must be seen (printed above the live line).
    pub fn message(&self, text: &str) {
        match self {
            Display::Bar { bar, .. } => bar.println(text),
            Display::Plain { .. } | Display::Json => eprintln!("{text}"),
            Display::Quiet => {}
        }
    }

    pub fn finish(&self) {
        if let Display::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_round_trip_and_combine() {
        let a = Progress {
            elapsed: Duration::from_millis(2500),
            active_vus: 10,
            done: 40,
            turns: 30,
            updates: 10,
            per_sec: 12.5,
            final_ping_p99_ms: 20.0,
            update_p99_ms: 5.0,
            failures: 1,
        };
        let line = format!("{PROGRESS_PREFIX}{}", serde_json::to_string(&a).unwrap());
        let back = Progress::parse_line(&line).unwrap();
        assert_eq!(
            (back.elapsed, back.turns, back.per_sec),
            (a.elapsed, 30, 12.5)
        );
        assert!(Progress::parse_line("warning: something").is_none());
        assert!(Progress::parse_line(&format!("{PROGRESS_PREFIX}{{")).is_none());
        let b = Progress {
            elapsed: Duration::from_secs(3),
            active_vus: 7,
            final_ping_p99_ms: 35.0,
            ..a.clone()
        };
        let c = Progress::combine([&a, &b]);
        assert_eq!(c.elapsed, Duration::from_secs(3));
        assert_eq!((c.active_vus, c.done, c.turns, c.failures), (17, 80, 60, 2));
        assert_eq!(c.per_sec, 25.0);
        assert_eq!(c.final_ping_p99_ms, 35.0, "the highest p99, not a sum");
    }
}
