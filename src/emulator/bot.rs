//! The bot turn, planned once and played by either Socket.IO server.
//!
//! [`TurnPlan::new`] decides everything about one turn when its input is taken
//! from the queue: the reply delay (a `stall` wait, the `degrade` slowdown and
//! the drawn `delay`, recorded as injected), the output gaps, typing
//! indicators, the scripted reply or echo, and where a fault cuts in
//! (`disconnect_mid_turn`, `no_final_ping`, `output_error`, a raw frame fault;
//! `ack_wait`). [`play`] walks the plan against a [`Sink`] — socketioxide's
//! socket (`turn`) or the raw Engine.IO server's frame queue (`raw_socketio`)
//! — and keeps the counters, so both servers answer a turn alike. An output's
//! trace id and the session's context version are stamped as it is written:
//! an update applied during the reply delay is visible in that turn, as with
//! the real bot.

use super::faults::{Fault, RawFault, TurnFault};
use super::session::SessionInfo;
use super::stats::bump;
use super::Shared;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// `data.error.message` of the `output_error` fault's output.
pub(crate) const ERROR_MESSAGE: &str = "emulated bot error (faults.output_error)";

/// Why a turn stopped early.
#[derive(Debug)]
pub(crate) enum TurnError {
    /// The connection is gone (or the plan ended it); the session ends.
    Closed,
    /// One write failed (buffer full); the turn is abandoned, the session goes on.
    Send,
}

/// One step of a turn, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Wait: the reply delay, or the gap before an output.
    Pause(Duration),
    /// `typingStatus` with this status.
    Typing(&'static str),
    /// One bot output (the turn's reply; stamped when written).
    Output,
    /// The `output_error` fault's output of type error.
    ErrorOutput,
    /// A fault is counted here (before what it changes becomes visible).
    Fired(Fault),
    /// `finalPing` of this type; the turn counts as served.
    FinalPing(&'static str),
    /// `disconnect_mid_turn`: the namespace is left (`41`); the session ends.
    Disconnect,
    /// A frame fault of the raw server; the session ends.
    Raw(RawFault),
}

/// What each output of a turn says: a scripted reply, or the echo.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Echo { text: String, echo: Value },
    Scripted { text: String, data: Value },
}

/// One turn, decided when its input is taken from the queue.
#[derive(Debug, Clone)]
pub(crate) struct TurnPlan {
    pub steps: Vec<Step>,
    reply: Reply,
    /// `ack_wait` (sessions with `emitWithAck=true`): every output waits for
    /// its ack, then this long.
    pub ack_wait: Option<Duration>,
}

impl TurnPlan {
    /// Plans the answer to `input`. `rng` draws the delays; `fault` is the
    /// turn's drawn fault; `raw`, a raw connection's pending frame fault,
    /// fires after the first output (after typingOn with no outputs) and
    /// takes precedence over `fault`.
    pub fn new(
        shared: &Shared,
        info: &SessionInfo,
        input: &Value,
        rng: &mut StdRng,
        fault: Option<TurnFault>,
        raw: Option<RawFault>,
    ) -> TurnPlan {
        let config = &shared.config;
        if !matches_session(input, info) {
            bump(&shared.counters.input_mismatches);
        }
        let delay = stall_wait(shared) + degraded(shared) + config.delay.sample(rng);
        if let Ok(mut h) = shared.injected.lock() {
            h.saturating_record(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        let text = input.get("text").and_then(Value::as_str).unwrap_or("");
        let scripted = if config.replies.is_empty() {
            None
        } else {
            super::script::reply_for(&config.replies, text)
        };
        let count = scripted.as_ref().map_or(config.outputs, |r| r.outputs);
        let reply = match scripted {
            Some(r) => Reply::Scripted {
                text: r.text,
                data: r
                    .data
                    .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
            },
            None => Reply::Echo {
                text: format!("You said: {text}"),
                echo: input.get("data").cloned().unwrap_or(Value::Null),
            },
        };
        let fault = if raw.is_some() { None } else { fault };
        let typing = |steps: &mut Vec<Step>, status| {
            if config.typing {
                steps.push(Step::Typing(status));
            }
        };
        let mut steps = vec![Step::Pause(delay)];
        typing(&mut steps, "typingOn");
        // What cuts the turn short after its first output (or after typingOn).
        let cut = raw
            .map(Step::Raw)
            .or((fault == Some(TurnFault::DisconnectMidTurn)).then_some(Step::Disconnect));
        if fault == Some(TurnFault::OutputError) {
            steps.push(Step::ErrorOutput);
            typing(&mut steps, "typingOff");
            steps.push(Step::Fired(Fault::OutputError));
            steps.push(Step::FinalPing("error"));
        } else if let (0, Some(cut)) = (count, cut.clone()) {
            steps.push(cut);
        } else {
            for i in 0..count {
                if i > 0 {
                    steps.push(Step::Pause(config.output_gap.sample(rng)));
                }
                steps.push(Step::Output);
                if let (0, Some(cut)) = (i, cut.clone()) {
                    steps.push(cut);
                    break;
                }
            }
            if cut.is_none() {
                typing(&mut steps, "typingOff");
                if fault == Some(TurnFault::NoFinalPing) {
                    steps.push(Step::Fired(Fault::NoFinalPing));
                } else {
                    steps.push(Step::FinalPing("regular"));
                }
            }
        }
        TurnPlan {
            steps,
            reply,
            ack_wait: config
                .faults
                .ack_wait
                .filter(|_| info.emit_with_ack)
                .map(|w| w.delay.as_duration()),
        }
    }

    /// The next output of this turn, with a fresh trace id and the session's
    /// context version now.
    fn output<'a>(&'a self, shared: &Shared, info: &SessionInfo) -> Output<'a> {
        let n = shared.next_trace.fetch_add(1, Ordering::Relaxed) + 1;
        let (text, data) = match &self.reply {
            Reply::Scripted { text, data } => (text.as_str(), Payload::Scripted(data)),
            Reply::Echo { text, echo } => (
                text.as_str(),
                Payload::Echo(Echo {
                    echo,
                    emulator: true,
                    context_version: shared.contexts.version_of(&info.session_id),
                }),
            ),
        };
        Output {
            kind: "output",
            data: OutputData {
                text,
                data,
                source: "bot",
                trace_id: format!("trace-{n}"),
            },
        }
    }
}

/// Where a plan is played: one server's way of writing events.
pub(crate) trait Sink {
    /// Writes one event; with `ack`, requests an ack (the turn does not wait).
    async fn emit<T: Serialize>(
        &mut self,
        event: &str,
        data: &T,
        ack: bool,
    ) -> Result<(), TurnError>;
    /// `ack_wait`: writes an `output` with an ack request and waits for the ack
    /// (bounded by `ack_timeout`).
    async fn emit_and_wait<T: Serialize>(&mut self, output: &T) -> Result<(), TurnError>;
    /// Leaves the namespace (`41`).
    async fn disconnect(&mut self);
    /// Fires a frame fault (the raw server only; it counts it as written).
    async fn raw_fault(&mut self, fault: RawFault);
}

/// Plays `plan` against `sink`, pausing between steps; counts outputs, served
/// turns and the faults the plan fires.
pub(crate) async fn play<S: Sink>(
    plan: &TurnPlan,
    sink: &mut S,
    shared: &Shared,
    info: &SessionInfo,
) -> Result<(), TurnError> {
    let ack = info.emit_with_ack;
    for step in &plan.steps {
        match step {
            Step::Pause(d) => pause(*d).await,
            Step::Typing(status) => sink.emit("typingStatus", &Typing { status }, false).await?,
            Step::Output => {
                let output = plan.output(shared, info);
                match plan.ack_wait {
                    Some(delay) => {
                        sink.emit_and_wait(&output).await?;
                        shared.counters.faults.fired(Fault::AckWait);
                        pause(delay).await;
                    }
                    None => sink.emit("output", &output, ack).await?,
                }
                bump(&shared.counters.outputs);
            }
            Step::ErrorOutput => {
                let error = serde_json::json!({
                    "type": "error",
                    "data": {"error": {"message": ERROR_MESSAGE}},
                });
                sink.emit("output", &error, ack).await?;
            }
            Step::Fired(fault) => shared.counters.faults.fired(*fault),
            Step::FinalPing(kind) => {
                sink.emit("finalPing", &FinalPing { kind }, ack).await?;
                bump(&shared.counters.turns);
            }
            Step::Disconnect => {
                shared.counters.faults.fired(Fault::DisconnectMidTurn);
                sink.disconnect().await;
                return Err(TurnError::Closed);
            }
            Step::Raw(fault) => {
                sink.raw_fault(*fault).await;
                return Err(TurnError::Closed);
            }
        }
    }
    Ok(())
}

/// How long an input arriving now waits for a `stall` window to end.
fn stall_wait(shared: &Shared) -> Duration {
    shared.config.stall.map_or(Duration::ZERO, |stall| {
        let since = shared.started.elapsed();
        let end = stall.at.as_duration() + stall.duration.as_duration();
        if since >= stall.at.as_duration() && since < end {
            end - since
        } else {
            Duration::ZERO
        }
    })
}

/// `degrade`: the extra wait for the Socket.IO sessions over the mark.
fn degraded(shared: &Shared) -> Duration {
    shared.config.degrade.map_or(Duration::ZERO, |d| {
        let active = shared.counters.active_sessions.load(Ordering::Relaxed);
        let over = u32::try_from(active.saturating_sub(d.above_sessions)).unwrap_or(u32::MAX);
        d.per_session.as_duration().saturating_mul(over)
    })
}

/// True unless the input names another session, user or URL token than the
/// connection (absent fields are not compared).
fn matches_session(input: &Value, info: &SessionInfo) -> bool {
    let same = |key: &str, expected: &str| {
        input
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(|v| v == expected)
    };
    same("sessionId", &info.session_id)
        && same("userId", &info.user_id)
        && same("URLToken", &info.url_token)
}

async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

#[derive(Serialize)]
struct Typing<'a> {
    status: &'a str,
}

#[derive(Serialize)]
struct FinalPing<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
}

/// `{"type":"output","data":{"text":…,"data":{"echo":…,"emulator":true},"source":"bot","traceId":…}}`
/// (field order as the fixtures show it); `data.data.contextVersion` follows
/// `emulator` only when the session has runtime context.
#[derive(Serialize)]
struct Output<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: OutputData<'a>,
}

#[derive(Serialize)]
struct OutputData<'a> {
    text: &'a str,
    data: Payload<'a>,
    source: &'static str,
    #[serde(rename = "traceId")]
    trace_id: String,
}

/// `data.data`: the echo of the input, or a scripted reply's data.
#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Echo(Echo<'a>),
    Scripted(&'a Value),
}

#[derive(Serialize)]
struct Echo<'a> {
    echo: &'a Value,
    emulator: bool,
    /// The session's context version when the output was made (absent if the
    /// session never had a successful `updateContext`).
    #[serde(rename = "contextVersion", skip_serializing_if = "Option::is_none")]
    context_version: Option<u64>,
}
