//! Decides a run's status and exit code from its totals and its judged
//! thresholds. One place owns this rule so every report and the process exit
//! agree. The last step of the one-way flow: it reads a [`RunReport`] and
//! writes its status; nothing upstream imports it.

pub use crate::report::RunStatus;

use crate::metrics::selfcheck::SelfCheckSummary;

use crate::metrics::{Counter, Metric, Snapshot};
use crate::report::RunReport;
use crate::thresholds::{evaluate, Outcome, ThresholdResult, Thresholds};

/// The status of a run and one sentence explaining it. `saturation` is the
/// generator self-check when it counts (strict mode).
pub fn judge(
    totals: &Snapshot,
    interrupted: bool,
    saturation: Option<&SelfCheckSummary>,
) -> (RunStatus, String) {
    let c = |k: Counter| totals.counter(k);
    let turns_ok = c(Counter::TurnsOk);
    let turns_sent = c(Counter::TurnsSent);
    let updates_ok = c(Counter::UpdatesOk);
    let updates_sent = c(Counter::UpdatesSent);
    let measured = turns_ok + updates_ok + c(Counter::GetsOk);
    let work = describe(turns_ok, turns_sent, updates_ok, updates_sent);
    if interrupted {
        return (
            RunStatus::Interrupted,
            format!("interrupted: {work} completed before the stop"),
        );
    }
    if let Some(check) = saturation.filter(|c| c.saturated) {
        return (
            RunStatus::Invalid,
            format!(
                "invalid: the generator self-check found the run saturated, so its latencies include the generator's own delays ({}){}",
                check.reasons.join("; "),
                check.diagnosis().map_or(String::new(), |d| format!("; {d}"))
            ),
        );
    }
    if measured == 0 {
        let why = match totals.causes().iter().max_by_key(|(_, n)| **n) {
            Some((cause, n)) => format!("most common failure: {cause} ({n}×)"),
            None => "nothing was sent; check the scenario's steps and load".to_string(),
        };
        return (
            RunStatus::Invalid,
            format!("invalid: nothing completed, so nothing was measured; {why}"),
        );
    }
    let dropped = c(Counter::Dropped);
    let failures = dropped
        + totals.turns_failed()
        + totals.updates_failed()
        + c(Counter::GetsFailed)
        + c(Counter::ConnectErrors)
        + c(Counter::RuntimeConnectErrors);
    if dropped > 0 {
        return (
            RunStatus::Failed,
            format!(
                "failed: {dropped} conversations could not start (every VU busy: raise `max_vus` or lower the rate); {work} completed"
            ),
        );
    }
    if failures > 0 {
        return (
            RunStatus::Failed,
            format!(
                "failed: {work} completed; {} turns, {} updates and {} connects failed",
                totals.turns_failed(),
                totals.updates_failed(),
                c(Counter::ConnectErrors) + c(Counter::RuntimeConnectErrors)
            ),
        );
    }
    (RunStatus::Passed, format!("passed: {work} completed"))
}

/// Judges `set` against a finished run's report and folds the results into
/// its status and reason (see [`apply_thresholds`]). `totals` (the run's
/// merged histograms) supplies percentiles `summary.json` lacks.
pub fn judge_report(report: &mut RunReport, set: &Thresholds, totals: Option<&Snapshot>) {
    if set.is_empty() {
        return;
    }
    let quantile = |name: &str, q: f64| -> Option<f64> {
        let m = Metric::named(name)?;
        let h = totals?.histogram(m);
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
    };
    let results = evaluate(set, report.numbers(), Some(&quantile));
    let (status, reason) = apply_thresholds(
        report.status,
        std::mem::take(&mut report.status_reason),
        &results,
        set.judges_errors(),
    );
    report.status = status;
    report.status_reason = reason;
    report.thresholds = results;
}

/// Folds judged thresholds into a run's status. An interrupted or already
/// invalid run keeps its status; a threshold that could not be judged (unknown
/// metric or tag, zero samples) makes the run invalid; a breached one makes it
/// failed. Failed turns, updates or connects fail the run unless an `errors.*`
/// threshold (`judges_errors`) decides how many are acceptable.
pub fn apply_thresholds(
    status: RunStatus,
    reason: String,
    results: &[ThresholdResult],
    judges_errors: bool,
) -> (RunStatus, String) {
    if results.is_empty()
        || matches!(
            status,
            RunStatus::Interrupted | RunStatus::Invalid | RunStatus::Incomplete
        )
    {
        return (status, reason);
    }
    let list = |outcome: Outcome| -> Vec<String> {
        results
            .iter()
            .filter(|r| r.outcome == outcome)
            .map(|r| format!("`{}` ({})", r.threshold, r.message))
            .collect()
    };
    let invalid = list(Outcome::Invalid);
    if !invalid.is_empty() {
        return (
            RunStatus::Invalid,
            format!(
                "invalid: threshold could not be judged: {}",
                invalid.join("; ")
            ),
        );
    }
    let failed = list(Outcome::Fail);
    if !failed.is_empty() {
        return (
            RunStatus::Failed,
            format!(
                "failed: {} of {} thresholds breached: {}",
                failed.len(),
                results.len(),
                failed.join("; ")
            ),
        );
    }
    let held = format!("all {} thresholds held", results.len());
    match status {
        RunStatus::Failed if judges_errors => (
            RunStatus::Passed,
            format!("passed: {held} (failures within the errors threshold; {reason})"),
        ),
        _ => (status, format!("{reason}; {held}")),
    }
}

/// Marks a run invalid for what made its numbers untrustworthy besides its
/// counts: a start later than the common start instant (`late`: why) or
/// file descriptors that ran out (`fd_exhausted` times, so connects failed
/// for lack of descriptors). An interrupted run keeps its status.
pub fn invalidate(
    status: RunStatus,
    reason: String,
    late: Option<String>,
    fd_exhausted: u64,
) -> (RunStatus, String) {
    if status == RunStatus::Interrupted {
        return (status, reason);
    }
    let (status, reason) = match late {
        Some(why) => (RunStatus::Invalid, why),
        None => (status, reason),
    };
    if fd_exhausted == 0 {
        return (status, reason);
    }
    (
        RunStatus::Invalid,
        format!(
            "invalid: the process ran out of file descriptors {fd_exhausted}× (EMFILE/ENFILE), so \
             connects failed for lack of descriptors, not because of the target; raise the \
             open-files limit (ulimit -n) or lower the VUs ({reason})"
        ),
    )
}

/// An `abort_on_fail` breach stopped the run early (`why`): it fails even if
/// its final totals recover (an invalid run stays invalid).
pub fn aborted(report: &mut RunReport, why: &str) {
    if report.status != RunStatus::Invalid {
        report.status = RunStatus::Failed;
    }
    report.status_reason = format!(
        "aborted early (abort_on_fail): {why}; {}",
        report.status_reason
    );
}

/// `12 of 12 turns and 30 of 30 updates`, leaving out what the run did not do.
fn describe(turns_ok: u64, turns_sent: u64, updates_ok: u64, updates_sent: u64) -> String {
    let turns = format!("{turns_ok} of {turns_sent} turns");
    let updates = format!("{updates_ok} of {updates_sent} updates");
    match (turns_sent > 0, updates_sent > 0) {
        (true, true) => format!("{turns} and {updates}"),
        (false, true) => updates,
        _ => turns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_counts() {
        let mut t = Snapshot::new();
        assert_eq!(judge(&t, false, None).0, RunStatus::Invalid);
        t.add(Counter::TurnsSent, 2);
        t.add(Counter::TurnsOk, 2);
        assert_eq!(judge(&t, false, None).0, RunStatus::Passed);
        assert_eq!(judge(&t, true, None).0, RunStatus::Interrupted);
        t.add(Counter::ConnectErrors, 1);
        let (status, reason) = judge(&t, false, None);
        assert_eq!(status, RunStatus::Failed);
        assert!(reason.contains("1 connects failed"), "{reason}");
        t.add(Counter::UpdatesSent, 3);
        t.add(Counter::UpdatesTimeout, 1);
        let (_, reason) = judge(&t, false, None);
        assert!(
            reason.contains("0 of 3 updates") && reason.contains("1 updates"),
            "{reason}"
        );
        assert_eq!(status.exit_code(), 1);
        let mut check = crate::metrics::selfcheck::SelfCheck::new(Default::default()).summary();
        assert_eq!(judge(&t, false, Some(&check)).0, RunStatus::Failed);
        check.saturated = true;
        check.reasons = vec!["lag p99 20 ms > 10 ms".to_string()];
        check.cause = Some(crate::metrics::selfcheck::Cause::MachineBusy);
        check.hint = Some("stop the other work".to_string());
        let (status, reason) = judge(&t, false, Some(&check));
        assert_eq!(status, RunStatus::Invalid);
        assert!(
            reason.contains("saturated")
                && reason.contains("lag p99")
                && reason.contains("cause machine_busy: stop the other work"),
            "{reason}"
        );
    }

    #[test]
    fn thresholds_fold_into_the_status() {
        use crate::metrics::Metric;
        use crate::thresholds::{evaluate, RunningTotals, Threshold, Thresholds};
        let mut totals = Snapshot::new();
        for _ in 0..10 {
            totals.record(Metric::FinalPing, std::time::Duration::from_millis(50));
        }
        totals.add(Counter::TurnsSent, 10);
        totals.add(Counter::TurnsOk, 9);
        totals.add(Counter::TurnsTimeout, 1);
        let summary = RunningTotals::of(std::time::Duration::from_secs(1), &totals, &[]);
        let judged = |pairs: &[(&str, &str)]| {
            let set = Thresholds(
                pairs
                    .iter()
                    .map(|(k, c)| Threshold::parse(k, c).unwrap())
                    .collect(),
            );
            (evaluate(&set, summary.numbers(), None), set.judges_errors())
        };
        let failed = || (RunStatus::Failed, "failed: 1 turn".to_string());
        let (r, e) = judged(&[("final_ping.p99", "< 80ms")]);
        assert_eq!(
            apply_thresholds(failed().0, failed().1, &r, e).0,
            RunStatus::Failed
        );
        let (r, e) = judged(&[("final_ping.p99", "< 80ms"), ("errors.rate", "< 20%")]);
        let (status, reason) = apply_thresholds(failed().0, failed().1, &r, e);
        assert_eq!(status, RunStatus::Passed, "{reason}");
        let (r, e) = judged(&[("final_ping.p99", "< 20ms")]);
        let (status, reason) = apply_thresholds(RunStatus::Passed, "passed".into(), &r, e);
        assert_eq!(status, RunStatus::Failed);
        assert!(reason.contains("1 of 1 thresholds breached"), "{reason}");
        let (r, e) = judged(&[("final_ping.p99", "< 20ms"), ("nope.p99", "< 1ms")]);
        let (status, _) = apply_thresholds(RunStatus::Passed, "passed".into(), &r, e);
        assert_eq!(status, RunStatus::Invalid);
        let (status, _) = apply_thresholds(RunStatus::Interrupted, "i".into(), &r, e);
        assert_eq!(status, RunStatus::Interrupted);
    }
}
