//! A VU's context-update side: its runtime WebSocket connection, the version
//! it believes its session has, conflict retries, and the bookkeeping of every
//! update as exactly one of ok / rejected / invalid / timeout / disconnected /
//! interrupted — with an audit record per variable of *every* update (so
//! `audit_records` = variables × `updates_sent`; `success: true` only for
//! updates the server applied, the others carry their `cause`) and the
//! `context_visible` link to the next bot output. Updates lost with their
//! connection are accounted `disconnected`, not retried; only
//! `VERSION_MISMATCH` is retried (`max_conflict_retries`).

use super::{Control, Open, SocketKind};
use crate::audit::AuditHandle;
use crate::metrics::{Counter, Metric, Recorder, ShardWriter, TagId};
use crate::protocol::runtime::connection::{
    GetOutcome, RuntimeConnection, RuntimeCounters, RuntimeError, RuntimeOptions, UpdateOutcome,
    UpdateRequest, UpdateResult,
};
use crate::protocol::runtime::oauth::TokenProvider;
use crate::protocol::runtime::{Context, RejectCode};
use crate::scenario::{TemplateCtx, UpdateExpect, UpdateStep, UpdateVersion};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Pause after a failed runtime connect before the VU goes on (bounded error rate).
const RUNTIME_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Everything a VU needs to reach the runtime; shared by all VUs of a run.
pub struct RuntimePlan {
    pub options: RuntimeOptions,
    pub tokens: Arc<TokenProvider>,
    pub max_conflict_retries: u32,
    pub audit: Option<AuditHandle>,
    /// Limit messages already printed, so each distinct one is shown once.
    pub warned: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for RuntimePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimePlan")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The runtime state of one VU.
#[derive(Default)]
pub(super) struct ContextSide {
    conn: Option<Open<RuntimeConnection>>,
    /// The version the VU believes its session's context has.
    pub version: u64,
    /// The last successful update until a bot output shows its version
    /// (`context_visible`).
    pub pending_visible: Option<AwaitVisible>,
}

/// An acknowledged update waiting to show in a bot output. `context_visible`
/// runs from the acknowledgement — or, when the VU thinks first, from the
/// send of the first turn after it (think time is the script's, not the
/// system's) — to the first output of a turn sent after the acknowledgement
/// that shows the version. Turns sent after the acknowledgement whose outputs
/// show an older version are stale (`context_stale_turns`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct AwaitVisible {
    pub version: u64,
    pub acked_at: Instant,
    /// Where the measurement starts: set by the first turn after the ack.
    since: Option<Instant>,
}

/// What one turn showed of an awaited update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Seen {
    /// Shown: `context_visible` is this long.
    Visible(Duration),
    /// Answered with an older version.
    Stale,
    /// Nothing to say (no version in its outputs, or sent before the ack).
    Nothing,
}

impl AwaitVisible {
    pub fn new(version: u64, acked_at: Instant) -> AwaitVisible {
        AwaitVisible {
            version,
            acked_at,
            since: None,
        }
    }

    /// Books a turn that went out at `sent_at` with `outputs` as
    /// (arrival, context version).
    pub fn observe(
        &mut self,
        sent_at: Instant,
        outputs: impl Iterator<Item = (Instant, Option<u64>)>,
    ) -> Seen {
        if sent_at < self.acked_at {
            return Seen::Nothing;
        }
        let since = *self.since.get_or_insert(sent_at.max(self.acked_at));
        let mut stale = false;
        for (at, version) in outputs {
            match version {
                Some(v) if v >= self.version => {
                    return Seen::Visible(at.saturating_duration_since(since));
                }
                Some(_) => stale = true,
                None => {}
            }
        }
        if stale {
            Seen::Stale
        } else {
            Seen::Nothing
        }
    }
}

/// One logical update being driven through its conflict retries.
struct Pending {
    version: u64,
    attempts: u32,
}

impl ContextSide {
    /// A new session: the known version starts over.
    pub fn new_session(&mut self) {
        self.version = 0;
        self.pending_visible = None;
    }

    /// Runs one `update_context` step for `session_id`.
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &mut self,
        step: &UpdateStep,
        session_id: &str,
        ctx: &TemplateCtx<'_>,
        tags: &[TagId],
        plan: &RuntimePlan,
        recorder: &Recorder,
        control: &Control,
    ) {
        let context = render_context(step, ctx);
        let n = step.parallel.max(1) as usize;
        recorder
            .writer()
            .add_tagged(Counter::UpdatesSent, tags, n as u64);
        if !self.ensure_connected(plan, recorder, control).await {
            let interrupted = control.soft.is_cancelled();
            let why = if interrupted {
                "interrupted"
            } else {
                "not_connected"
            };
            let records = audit_unsent(plan, session_id, &context, why, n);
            let mut w = recorder.writer();
            w.add(Counter::AuditRecords, records);
            if interrupted {
                w.add_tagged(Counter::UpdatesInterrupted, tags, n as u64);
                w.cause("update_interrupted");
            } else {
                w.add_tagged(Counter::UpdatesDisconnected, tags, n as u64);
                w.cause("update_not_connected");
            }
            return;
        }
        let start_version = match step.version {
            UpdateVersion::Auto => self.version,
            UpdateVersion::Fixed(v) => v,
        };
        let mut pending: Vec<Pending> = (0..n)
            .map(|_| Pending {
                version: start_version,
                attempts: 0,
            })
            .collect();
        while !pending.is_empty() {
            let Some(conn) = self.conn.as_mut() else {
                let records =
                    audit_unsent(plan, session_id, &context, "not_connected", pending.len());
                let mut w = recorder.writer();
                w.add(Counter::AuditRecords, records);
                w.add_tagged(Counter::UpdatesDisconnected, tags, pending.len() as u64);
                w.cause("update_not_connected");
                return;
            };
            let requests = pending
                .iter()
                .map(|p| UpdateRequest {
                    session_id: session_id.to_string(),
                    version: p.version,
                    context: context.clone(),
                })
                .collect();
            let results = tokio::select! {
                r = conn.update(requests) => Some(r),
                _ = control.hard.cancelled() => None,
            };
            let counters = conn.take_counters();
            book_counters(&mut recorder.writer(), &counters);
            let Some(results) = results else {
                let records =
                    audit_unsent(plan, session_id, &context, "interrupted", pending.len());
                let mut w = recorder.writer();
                w.add(Counter::AuditRecords, records);
                w.add_tagged(Counter::UpdatesInterrupted, tags, pending.len() as u64);
                w.cause("update_interrupted");
                self.conn = None;
                return;
            };
            let mut retry = Vec::new();
            let mut lost_connection = false;
            for (p, result) in pending.into_iter().zip(results) {
                match self.settle(step, session_id, &context, p, &result, tags, plan, recorder) {
                    Settled::Done => {}
                    Settled::Retry(next) => retry.push(next),
                    Settled::ConnectionLost => lost_connection = true,
                }
            }
            if lost_connection {
                self.recover(plan, recorder, control).await;
            }
            pending = retry;
        }
    }

    /// Books one result; says whether the update is finished or retried.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        step: &UpdateStep,
        session_id: &str,
        context: &Context,
        p: Pending,
        result: &UpdateResult,
        tags: &[TagId],
        plan: &RuntimePlan,
        recorder: &Recorder,
    ) -> Settled {
        let latency = result
            .replied_at
            .map(|at| at.saturating_duration_since(result.sent_at));
        let mut w = recorder.writer();
        if let Some(l) = latency {
            w.record_tagged(Metric::ContextUpdate, tags, l);
        }
        let audit = |success: bool, previous: &Context, cause: Option<&str>| {
            if let Some(a) = &plan.audit {
                let n = a.record_update(
                    session_id,
                    context,
                    previous,
                    latency.unwrap_or_default(),
                    success,
                    cause,
                );
                n as u64
            } else {
                0
            }
        };
        let empty = Context::new();
        match &result.outcome {
            UpdateOutcome::Updated { version, previous } => {
                self.version = self.version.max(*version);
                let acked_at = result.replied_at.unwrap_or(result.sent_at);
                self.pending_visible = Some(AwaitVisible::new(*version, acked_at));
                let records = audit(true, previous, None);
                w.add(Counter::AuditRecords, records);
                if step.expect == UpdateExpect::Ok {
                    w.add_tagged(Counter::UpdatesOk, tags, 1);
                } else {
                    w.add_tagged(Counter::UpdatesRejected, tags, 1);
                    w.cause("update_expected_rejection_but_updated");
                }
                Settled::Done
            }
            UpdateOutcome::Rejected {
                code,
                current_version,
                ..
            } => {
                if *code == RejectCode::VersionMismatch {
                    w.add(Counter::Conflicts, 1);
                    if let Some(v) = current_version {
                        self.version = *v;
                    }
                    if step.expect == UpdateExpect::Ok && p.attempts < plan.max_conflict_retries {
                        w.add(Counter::ConflictRetries, 1);
                        return Settled::Retry(Pending {
                            version: current_version.unwrap_or(self.version),
                            attempts: p.attempts + 1,
                        });
                    }
                }
                let expected = match step.expect {
                    UpdateExpect::Ok => false,
                    UpdateExpect::Conflict => *code == RejectCode::VersionMismatch,
                    UpdateExpect::Rejected => true,
                };
                let cause = format!("update_{}", code.as_str());
                let records = audit(false, &empty, Some(code.as_str()));
                w.add(Counter::AuditRecords, records);
                if expected {
                    w.add_tagged(Counter::UpdatesOk, tags, 1);
                } else {
                    w.add_tagged(Counter::UpdatesRejected, tags, 1);
                    w.cause(&cause);
                }
                Settled::Done
            }
            UpdateOutcome::Invalid(err) => {
                w.add(Counter::AuditRecords, audit(false, &empty, Some("invalid")));
                w.add_tagged(Counter::UpdatesInvalid, tags, 1);
                w.cause("update_invalid");
                drop(w);
                warn_once(plan, &format!("update not sent: {err}"));
                Settled::Done
            }
            UpdateOutcome::TooManyInFlight { max } => {
                let records = audit(false, &empty, Some("too_many_in_flight"));
                w.add(Counter::AuditRecords, records);
                w.add_tagged(Counter::UpdatesInvalid, tags, 1);
                w.cause("update_too_many_in_flight");
                drop(w);
                warn_once(
                    plan,
                    &format!("update not sent: more than {max} updates in flight for one session"),
                );
                Settled::Done
            }
            UpdateOutcome::NotSent(why) => {
                w.add(
                    Counter::AuditRecords,
                    audit(false, &empty, Some("not_sent")),
                );
                w.add_tagged(Counter::UpdatesInvalid, tags, 1);
                w.cause("update_not_sent");
                drop(w);
                warn_once(plan, &format!("update not sent: {why}"));
                Settled::Done
            }
            UpdateOutcome::Timeout => {
                let records = audit(false, &empty, Some("timeout"));
                w.add(Counter::AuditRecords, records);
                w.add_tagged(Counter::UpdatesTimeout, tags, 1);
                w.cause("update_timeout");
                Settled::ConnectionLost
            }
            UpdateOutcome::Disconnected(_) => {
                let records = audit(false, &empty, Some("disconnected"));
                w.add(Counter::AuditRecords, records);
                w.add_tagged(Counter::UpdatesDisconnected, tags, 1);
                w.cause("update_disconnected");
                Settled::ConnectionLost
            }
        }
    }

    /// Runs one `get_context` step.
    pub async fn get(
        &mut self,
        session_id: &str,
        plan: &RuntimePlan,
        recorder: &Recorder,
        control: &Control,
    ) {
        if !self.ensure_connected(plan, recorder, control).await {
            let mut w = recorder.writer();
            w.add(Counter::GetsFailed, 1);
            w.cause("get_not_connected");
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let result = tokio::select! {
            r = conn.get_context(session_id) => Some(r),
            _ = control.hard.cancelled() => None,
        };
        let counters = conn.take_counters();
        let lost = {
            let mut w = recorder.writer();
            book_counters(&mut w, &counters);
            let Some(result) = result else {
                w.add(Counter::GetsFailed, 1);
                w.cause("get_interrupted");
                return;
            };
            if let Some(at) = result.replied_at {
                w.record(
                    Metric::ContextGet,
                    at.saturating_duration_since(result.sent_at),
                );
            }
            match result.outcome {
                GetOutcome::Context { version, .. } => {
                    self.version = version;
                    w.add(Counter::GetsOk, 1);
                    false
                }
                GetOutcome::Rejected { code, .. } => {
                    w.add(Counter::GetsFailed, 1);
                    w.cause(&format!("get_{}", code.as_str()));
                    false
                }
                GetOutcome::NotSent(_) => {
                    w.add(Counter::GetsFailed, 1);
                    w.cause("get_not_sent");
                    false
                }
                GetOutcome::Timeout | GetOutcome::Disconnected(_) => {
                    w.add(Counter::GetsFailed, 1);
                    w.cause("get_lost");
                    true
                }
            }
        };
        if lost {
            self.recover(plan, recorder, control).await;
        }
    }

    /// Keeps the runtime connection alive (heartbeats) while the VU thinks.
    pub async fn idle(&mut self, dur: Duration) -> Option<RuntimeError> {
        match self.conn.as_mut() {
            Some(conn) => conn.idle(dur).await.err(),
            None => None,
        }
    }

    /// Books the counters of a think period; recovers a dropped connection.
    pub async fn after_idle(
        &mut self,
        failure: Option<RuntimeError>,
        plan: &RuntimePlan,
        recorder: &Recorder,
        control: &Control,
    ) {
        if let Some(conn) = self.conn.as_mut() {
            let counters = conn.take_counters();
            book_counters(&mut recorder.writer(), &counters);
        }
        if let Some(err) = failure {
            recorder.writer().cause(&format!("runtime_{}", err.cause()));
            self.recover_from(err, plan, recorder, control).await;
        }
    }

    pub async fn close(&mut self, recorder: &Recorder) {
        if let Some(conn) = self.conn.take() {
            // Boxed: the closing connection's state inline would be part of every VU task.
            let counters = Box::pin(conn.into_inner().close()).await;
            book_counters(&mut recorder.writer(), &counters);
        }
    }

    async fn ensure_connected(
        &mut self,
        plan: &RuntimePlan,
        recorder: &Recorder,
        control: &Control,
    ) -> bool {
        if self.conn.is_some() {
            return true;
        }
        let started = Instant::now();
        let result = tokio::select! {
            r = RuntimeConnection::connect(&plan.options, &plan.tokens) => r,
            _ = control.soft.cancelled() => return false,
        };
        match result {
            Ok(conn) => {
                let mut w = recorder.writer();
                w.record(Metric::RuntimeConnect, started.elapsed());
                w.add(Counter::RuntimeConnectsOk, 1);
                self.conn = Some(Open::new(conn, &control.gauge, SocketKind::Runtime));
                true
            }
            Err(e) => {
                {
                    let mut w = recorder.writer();
                    w.add(Counter::RuntimeConnectErrors, 1);
                    w.cause(&format!("runtime_connect_{}", e.cause()));
                }
                warn_once(plan, &format!("runtime connect failed: {e}"));
                tokio::select! {
                    _ = tokio::time::sleep(RUNTIME_RETRY_PAUSE) => {}
                    _ = control.soft.cancelled() => {}
                }
                false
            }
        }
    }

    /// After a timeout or a drop: reconnect by the runtime policy if the
    /// connection says it is gone, else keep it.
    async fn recover(&mut self, plan: &RuntimePlan, recorder: &Recorder, control: &Control) {
        let Some(err) = self.conn.as_ref().and_then(|c| c.failure().cloned()) else {
            return;
        };
        recorder.writer().cause(&format!("runtime_{}", err.cause()));
        self.recover_from(err, plan, recorder, control).await;
    }

    async fn recover_from(
        &mut self,
        err: RuntimeError,
        plan: &RuntimePlan,
        recorder: &Recorder,
        control: &Control,
    ) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let result = tokio::select! {
            r = conn.reconnect(&plan.tokens, &err) => r,
            _ = control.soft.cancelled() => Err(err),
        };
        let counters = conn.take_counters();
        book_counters(&mut recorder.writer(), &counters);
        if let Err(e) = result {
            recorder
                .writer()
                .cause(&format!("runtime_reconnect_failed_{}", e.cause()));
            self.conn = None;
        }
    }
}

/// Audit records for `n` updates that ended without a reply (`why` is the
/// record's cause); returns how many were written.
fn audit_unsent(
    plan: &RuntimePlan,
    session_id: &str,
    context: &Context,
    why: &str,
    n: usize,
) -> u64 {
    let Some(a) = &plan.audit else {
        return 0;
    };
    let empty = Context::new();
    (0..n)
        .map(|_| {
            a.record_update(
                session_id,
                context,
                &empty,
                Duration::ZERO,
                false,
                Some(why),
            ) as u64
        })
        .sum()
}

enum Settled {
    Done,
    Retry(Pending),
    ConnectionLost,
}

/// The step's variables, rendered for this VU and iteration, as scope → vars.
pub(super) fn render_context(step: &UpdateStep, ctx: &TemplateCtx) -> Context {
    let mut out = Context::new();
    let as_map = |v: serde_json::Value| match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    if let (Some(scope), Some(vars)) = (&step.scope, &step.vars) {
        out.insert(scope.clone(), as_map(vars.render(ctx)));
    }
    if let Some(context) = &step.context {
        for (scope, vars) in as_map(context.render(ctx)) {
            out.insert(scope, as_map(vars));
        }
    }
    out
}

pub(super) fn book_counters(w: &mut ShardWriter<'_>, c: &RuntimeCounters) {
    w.add(Counter::RuntimeBytesSent, c.bytes_sent);
    w.add(Counter::RuntimeBytesReceived, c.bytes_received);
    w.add(Counter::RuntimeHeartbeats, c.heartbeats_sent);
    w.add(Counter::ProtocolErrors, c.protocol_errors);
    w.add(Counter::RuntimeReconnects, c.reconnects);
    w.add(Counter::TokenRefreshes, c.token_refreshes);
    for rtt in &c.heartbeat_rtts {
        w.record(Metric::Heartbeat, *rtt);
    }
}

fn warn_once(plan: &RuntimePlan, message: &str) {
    let first = plan
        .warned
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(message.to_string());
    if first {
        tracing::warn!("{message}");
    }
}

#[cfg(test)]
mod visible_tests {
    use super::*;

    #[test]
    fn context_visible_starts_at_the_first_turn_after_the_ack() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut w = AwaitVisible::new(3, at(10));
        // A turn sent before the acknowledgement does not count, whatever it shows.
        assert_eq!(
            w.observe(at(5), [(at(20), Some(2))].into_iter()),
            Seen::Nothing
        );
        // Think time 10 → 1000 ms is not measured: the first turn after the
        // ack starts it; it answers with the old version: stale.
        assert_eq!(
            w.observe(at(1000), [(at(1040), Some(2))].into_iter()),
            Seen::Stale
        );
        // The next turn shows it: from the first turn's send, 1000 → 1530 ms.
        assert_eq!(
            w.observe(
                at(1500),
                [(at(1510), None), (at(1530), Some(3))].into_iter()
            ),
            Seen::Visible(Duration::from_millis(530))
        );
    }
}
