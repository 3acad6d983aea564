//! The VU's REST side: chat turns over the REST Endpoint (request → response
//! is the whole turn, booked as `final_ping` and `rest_turn`) and context
//! updates over the session context-inject API (booked as `context_update`,
//! with audit records like the WebSocket path). Uses the clients in
//! `protocol::rest`; one client each per run, shared by all VUs.

use super::checks::{judge, CaptureUpdate};
use super::context::{render_context, AwaitVisible, Seen};
use crate::audit::AuditHandle;
use crate::metrics::{Counter, Metric, Recorder, TagId};
use crate::protocol::rest::{ContextInject, InjectOutcome, RestEndpoint, RestOutcome, RestTurn};
use crate::protocol::runtime::Context;
use crate::protocol::socketio::{Output, Turn, TurnOutcome};
use crate::scenario::{SendStep, TemplateCtx, UpdateExpect, UpdateStep};
use std::time::{Duration, Instant};

/// The context-inject side of a run.
pub struct InjectPlan {
    pub client: ContextInject,
    pub audit: Option<AuditHandle>,
}

impl std::fmt::Debug for InjectPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InjectPlan").finish_non_exhaustive()
    }
}

/// Who is talking: the VU's current conversation.
pub(super) struct Who<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
}

/// What a REST turn leaves for the next steps: whether it was cut off by the hard stop.
pub(super) enum Sent {
    Done,
    Interrupted,
}

/// One REST turn; `lag` is the conversation's schedule lag (open model / pacing).
#[allow(clippy::too_many_arguments)]
pub(super) async fn turn(
    endpoint: &RestEndpoint,
    who: Who<'_>,
    send: &SendStep,
    ctx: &TemplateCtx<'_>,
    tags: &[TagId],
    lag: Option<Duration>,
    recorder: &Recorder,
    hard: &tokio_util::sync::CancellationToken,
    visibility: &mut Visibility,
    captures: &mut Vec<CaptureUpdate>,
) -> Sent {
    let text = send.text.render(ctx);
    let data = send.data.as_ref().map(|d| d.render(ctx));
    recorder.writer().add_tagged(Counter::TurnsSent, tags, 1);
    let result = tokio::select! {
        t = endpoint.turn(who.user_id, who.session_id, &text, data.as_ref()) => Some(t),
        _ = hard.cancelled() => None,
    };
    let mut w = recorder.writer();
    let Some(rest) = result else {
        w.add_tagged(Counter::TurnsInterrupted, tags, 1);
        w.cause("turn_interrupted");
        return Sent::Interrupted;
    };
    let turn = as_turn(&rest, send.uses_output_data());
    w.add(Counter::Outputs, rest.outputs_received);
    if let Some(done) = rest.finished_at {
        let took = done.saturating_duration_since(rest.sent_at);
        w.record_tagged(Metric::FinalPing, tags, took);
        w.record(Metric::RestTurn, took);
        if let Some(lag) = lag {
            w.record_tagged(Metric::FinalPingIntended, tags, took + lag);
        }
    }
    match visibility.observe(&turn) {
        Seen::Visible(took) => w.record_tagged(Metric::ContextVisible, tags, took),
        Seen::Stale => w.add_tagged(Counter::ContextStaleTurns, tags, 1),
        Seen::Nothing => {}
    }
    match &rest.outcome {
        RestOutcome::Ok => match judge(&turn, send, ctx, captures) {
            Some(failure) => {
                w.add_tagged(Counter::TurnsError, tags, 1);
                w.add(Counter::ExpectFailed, 1);
                w.cause(failure);
            }
            None => w.add_tagged(Counter::TurnsOk, tags, 1),
        },
        RestOutcome::Timeout => {
            w.add_tagged(Counter::TurnsTimeout, tags, 1);
            w.cause("rest_timeout");
        }
        RestOutcome::OutputsOverflow(_) => {
            w.add_tagged(Counter::TurnsError, tags, 1);
            w.cause(super::vu::OUTPUTS_OVERFLOW_CAUSE);
        }
        other => {
            w.add_tagged(Counter::TurnsError, tags, 1);
            w.cause(&format!("rest_{}", other.cause()));
        }
    }
    Sent::Done
}

/// A REST reply as a turn (all outputs arrive with the response), so the
/// `expect` checks are the same as for Socket.IO.
fn as_turn(rest: &RestTurn, with_data: bool) -> Turn {
    let at = rest.finished_at.unwrap_or(rest.sent_at);
    Turn {
        sent_at: rest.sent_at,
        outputs: rest
            .outputs
            .iter()
            .map(|o| Output {
                at,
                text: o.text.clone(),
                context_version: o.context_version,
                data: if with_data { o.data.clone() } else { None },
            })
            .collect(),
        outputs_received: rest.outputs_received,
        finished_at: rest.finished_at,
        outcome: if matches!(rest.outcome, RestOutcome::Ok) {
            TurnOutcome::Ok
        } else {
            TurnOutcome::BotError(rest.outcome.to_string())
        },
    }
}

/// `context_visible` for injects: the inject API answers with the context but
/// no version, so an inject is visible once an output shows a version above
/// the highest one seen before it (measured as for runtime updates, see
/// [`AwaitVisible`]).
#[derive(Default)]
pub(super) struct Visibility {
    highest_seen: u64,
    pending: Option<AwaitVisible>,
}

impl Visibility {
    /// Books the outputs of a turn.
    fn observe(&mut self, turn: &Turn) -> Seen {
        let mut seen = Seen::Nothing;
        if let Some(awaited) = self.pending.as_mut() {
            seen = awaited.observe(
                turn.sent_at,
                turn.outputs.iter().map(|o| (o.at, o.context_version)),
            );
            if matches!(seen, Seen::Visible(_)) {
                self.pending = None;
            }
        }
        for v in turn.outputs.iter().filter_map(|o| o.context_version) {
            self.highest_seen = self.highest_seen.max(v);
        }
        seen
    }

    fn injected(&mut self, acked_at: Instant) {
        self.pending = Some(AwaitVisible::new(self.highest_seen + 1, acked_at));
    }
}

/// One `update_context` step over the inject API (`parallel` is sent one after another).
#[allow(clippy::too_many_arguments)]
pub(super) async fn inject(
    plan: &InjectPlan,
    who: Who<'_>,
    step: &UpdateStep,
    ctx: &TemplateCtx<'_>,
    tags: &[TagId],
    recorder: &Recorder,
    hard: &tokio_util::sync::CancellationToken,
    visibility: &mut Visibility,
) {
    let scoped = render_context(step, ctx);
    // The inject API takes one context object: the variables of every scope.
    let flat: serde_json::Map<String, serde_json::Value> =
        scoped.values().flat_map(|vars| vars.clone()).collect();
    let body = serde_json::Value::Object(flat);
    for _ in 0..step.parallel.max(1) {
        recorder.writer().add_tagged(Counter::UpdatesSent, tags, 1);
        let result = tokio::select! {
            r = plan.client.inject(who.session_id, who.user_id, &body) => Some(r),
            _ = hard.cancelled() => None,
        };
        let mut w = recorder.writer();
        let Some(r) = result else {
            if let Some(audit) = &plan.audit {
                let n = audit.record_update(
                    who.session_id,
                    &scoped,
                    &Context::new(),
                    std::time::Duration::ZERO,
                    false,
                    Some("interrupted"),
                );
                w.add(Counter::AuditRecords, n as u64);
            }
            w.add_tagged(Counter::UpdatesInterrupted, tags, 1);
            w.cause("update_interrupted");
            return;
        };
        let latency = r
            .finished_at
            .map(|f| f.saturating_duration_since(r.sent_at));
        if let Some(l) = latency {
            w.record_tagged(Metric::ContextUpdate, tags, l);
        }
        let ok = matches!(r.outcome, InjectOutcome::Ok { .. });
        let expected = match step.expect {
            UpdateExpect::Ok => ok,
            UpdateExpect::Conflict | UpdateExpect::Rejected => {
                matches!(
                    r.outcome,
                    InjectOutcome::Problem { .. } | InjectOutcome::HttpStatus(_)
                )
            }
        };
        // Every update is audited, the ones not sent (too large) too.
        if let Some(audit) = &plan.audit {
            let cause = (!ok).then(|| r.outcome.cause());
            let n = audit.record_update(
                who.session_id,
                &scoped,
                &Context::new(),
                latency.unwrap_or_default(),
                ok,
                cause,
            );
            w.add(Counter::AuditRecords, n as u64);
        }
        if ok {
            visibility.injected(r.finished_at.unwrap_or(r.sent_at));
        }
        match (&r.outcome, expected) {
            (_, true) => w.add_tagged(Counter::UpdatesOk, tags, 1),
            (InjectOutcome::TooLarge { .. }, false) => {
                w.add_tagged(Counter::UpdatesInvalid, tags, 1);
                w.cause("update_too_large");
            }
            (InjectOutcome::Timeout, false) => {
                w.add_tagged(Counter::UpdatesTimeout, tags, 1);
                w.cause("update_timeout");
            }
            (InjectOutcome::Network(_), false) => {
                w.add_tagged(Counter::UpdatesDisconnected, tags, 1);
                w.cause("update_network");
            }
            (other, false) => {
                w.add_tagged(Counter::UpdatesRejected, tags, 1);
                w.cause(&format!("update_{}", other.cause()));
            }
        }
    }
}
