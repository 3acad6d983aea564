//! One virtual user: interprets the scenario's steps over one Socket.IO
//! connection, loops iterations until its count or the deadline, and records
//! every connect and turn exactly once (ok / timeout / error / disconnected /
//! interrupted) in the recorder.

use super::checks::{judge, CaptureUpdate};
use super::context::ContextSide;
use super::pacing::{Dispatch, Job, Pacing};
use super::rest;
use super::{Control, Group, Open, Plan, SocketKind};
use crate::metrics::{Counter, Metric, Recorder, ShardWriter, TagId};
use crate::protocol::socketio::{
    ConnectOptions, Connection, DisconnectKind, ProcessInput, Turn, TurnOutcome, WireCounters,
};
use crate::scenario::{Captured, SendStep, Step, TemplateCtx};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Shortest pause after a failed connect, whatever `reconnect.interval` says,
/// so an unreachable target produces a bounded error rate instead of a busy loop.
const MIN_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How long one `Connection::idle` call lasts while a context step runs or an
/// open-model VU waits (it is restarted until the wait ends; the length only
/// bounds each call). Long, so that thousands of idle VUs wake only for their
/// socket and heartbeats, not all together on a timer.
const KEEP_ALIVE_SLICE: Duration = Duration::from_secs(30);

/// Open executors: the longest an idle VU leaves its connection unread
/// before it starts answering heartbeats (shorter when the server's ping
/// timeout asks for it; see `Connection::unattended_for`).
const UNATTENDED_CAP: Duration = Duration::from_millis(250);

/// Which VU this is: its run-wide number (`{{vu}}`), its index within its
/// group, and the group.
pub(super) struct VuSlot {
    pub vu: u64,
    pub index: usize,
    pub group: usize,
}

/// A VU's chat connection opened before the schedule started (see
/// `warmup`), with the conversation it belongs to.
pub(super) struct Warm {
    session: Session,
    conn: Open<Connection>,
}

impl Warm {
    /// Answers heartbeats until the connection is lost; how it was lost.
    pub(super) async fn serve_heartbeats(&mut self) -> DisconnectKind {
        serve_heartbeats(&mut self.conn).await
    }
}

pub(super) async fn run_vu(
    slot: VuSlot,
    start_at: Instant,
    pacing: Pacing,
    // Boxed: an async fn keeps its arguments for its whole life, and an
    // unboxed connection here would make every VU task 3.4 KB larger.
    warm: Option<Box<Warm>>,
    plan: Arc<Plan>,
    recorder: Arc<Recorder>,
    control: Arc<Control>,
) {
    let Some(mut user) = VirtualUser::new(&slot, &plan, &recorder, &control) else {
        return;
    };
    if let Some(warm) = warm.map(|w| *w) {
        user.session = Some(warm.session);
        user.conn = Some(warm.conn);
        user.link.connected_once = true;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(start_at.into()) => {}
        _ = control.soft.cancelled() => return,
    }
    match pacing {
        Pacing::Closed => {
            control.vu_started();
            user.run_closed().await;
            user.close_all().await;
            control.vu_finished();
        }
        Pacing::Ramping(target) => user.run_ramping(target).await,
        Pacing::Open {
            jobs,
            dispatch,
            slot,
        } => user.run_open(jobs, &dispatch, slot).await,
    }
}

/// Opens VU `slot`'s chat connection for its first conversation (booked as a
/// `connect` like any other); `None` if the attempt failed or was stopped.
pub(super) async fn warm_up(
    slot: &VuSlot,
    plan: &Plan,
    recorder: &Recorder,
    control: &Control,
) -> Option<Box<Warm>> {
    let mut user = VirtualUser::new(slot, plan, recorder, control)?;
    let ctx = TemplateCtx {
        vu: slot.vu,
        iteration: 0,
        rows: None,
        captured: None,
    };
    match user.connect_once(&ctx).await {
        Attempt::Connected => Some(Box::new(Warm {
            session: user.session.take()?,
            conn: user.conn.take()?,
        })),
        Attempt::Failed | Attempt::Stopped => None,
    }
}

struct VirtualUser<'a> {
    vu: u64,
    /// Index within the group (ramping-vus compare it with the target).
    index: usize,
    group: &'a Group,
    plan: &'a Plan,
    recorder: &'a Recorder,
    control: &'a Control,
    conn: Option<Open<Connection>>,
    link: Link,
    /// The current conversation: rendered at `connect`, kept across reconnects.
    session: Option<Session>,
    /// Runtime WebSocket side (context updates) of the same session.
    context: ContextSide,
    /// Iterations (conversations) this VU has started.
    iteration: u64,
    /// Open executors: how late the current conversation started.
    lag: Option<Duration>,
    /// REST paths: which inject a bot output has yet to show (`context_visible`).
    visibility: rest::Visibility,
    /// What the last turn captured, applied to the iteration's values after its step.
    captures: Vec<CaptureUpdate>,
    rng: StdRng,
}

#[derive(Clone)]
struct Session {
    user_id: String,
    session_id: String,
}

/// Whether the VU goes on after a step.
enum Flow {
    Continue,
    /// The conversation is given up (reconnects exhausted): skip to the next iteration.
    Abandon,
    Stop,
}

/// How one connect attempt ended.
enum Attempt {
    Connected,
    Failed,
    Stopped,
}

/// The conversation's reconnect state (see `VirtualUser::connect`).
#[derive(Default)]
struct Link {
    /// Earliest next connect attempt (after a drop or a failed attempt).
    retry_at: Option<Instant>,
    /// Failed attempts in a row within this conversation.
    failed: u32,
    /// This conversation has been connected: further connects are reconnects.
    connected_once: bool,
}

impl<'a> VirtualUser<'a> {
    fn new(
        slot: &VuSlot,
        plan: &'a Plan,
        recorder: &'a Recorder,
        control: &'a Control,
    ) -> Option<VirtualUser<'a>> {
        let vu = slot.vu;
        Some(VirtualUser {
            vu,
            index: slot.index,
            group: plan.groups.get(slot.group)?,
            plan,
            recorder,
            control,
            conn: None,
            link: Link::default(),
            session: None,
            context: ContextSide::default(),
            iteration: 0,
            lag: None,
            visibility: rest::Visibility::default(),
            captures: Vec::new(),
            rng: StdRng::seed_from_u64(plan.seed ^ vu.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        })
    }
}

impl VirtualUser<'_> {
    /// Closed executors: loop iterations until the count or the deadline.
    /// With `pacing`, iteration n is intended to start `n × pacing` after the
    /// VU's first one: early VUs wait, late ones record their lag.
    async fn run_closed(&mut self) {
        let first = Instant::now();
        let pacing = self.group.load.pacing.map(|p| p.as_duration());
        while self.group.iterations.is_none_or(|n| self.iteration < n) {
            if let Some(pace) = pacing {
                let n = u32::try_from(self.iteration).unwrap_or(u32::MAX);
                let intended = first + pace.saturating_mul(n);
                tokio::select! {
                    _ = tokio::time::sleep_until(intended.into()) => {}
                    _ = self.control.soft.cancelled() => return,
                }
                let lag = Instant::now().saturating_duration_since(intended);
                self.recorder
                    .writer()
                    .record_tagged(Metric::ScheduleLag, &[self.group.tag], lag);
                self.lag = Some(lag);
            }
            if let Flow::Stop = self.run_iteration().await {
                return;
            }
        }
    }

    /// `ramping-vus`: work while this VU's number is within the target.
    async fn run_ramping(&mut self, mut target: watch::Receiver<u32>) {
        loop {
            while (*target.borrow_and_update() as usize) <= self.index {
                tokio::select! {
                    changed = target.changed() => if changed.is_err() { return },
                    _ = self.control.soft.cancelled() => return,
                }
            }
            self.control.vu_started();
            let mut flow = Flow::Continue;
            while (*target.borrow() as usize) > self.index {
                flow = self.run_iteration().await;
                if let Flow::Stop = flow {
                    break;
                }
            }
            self.close_all().await;
            self.control.vu_finished();
            if let Flow::Stop = flow {
                return;
            }
        }
    }

    /// Arrival-rate executors: one conversation per job, timed from its
    /// intended start. `slot` is this VU's place in the dispatch.
    async fn run_open(&mut self, mut jobs: mpsc::Receiver<Job>, dispatch: &Dispatch, slot: usize) {
        while !self.control.soft.is_cancelled() {
            let job = match dispatch.next_or_idle(slot) {
                Some(waiting) => Some(waiting),
                None => self.next_job(&mut jobs).await,
            };
            let Some(job) = job else { break };
            let lag = Instant::now().saturating_duration_since(job.intended);
            self.recorder
                .writer()
                .record_tagged(Metric::ScheduleLag, &[self.group.tag], lag);
            self.lag = Some(lag);
            self.control.vu_started();
            let flow = self.run_iteration().await;
            self.control.vu_finished();
            if let Flow::Stop = flow {
                break;
            }
        }
        self.close_all().await;
    }

    /// Waits for this VU's next conversation (`None` when the run stops). A
    /// busy VU gets one soon; one that waits longer than its connection may
    /// go unread answers heartbeats meanwhile. That time is spread over half
    /// to all of it by VU number, so VUs parked together do not all start
    /// answering heartbeats at once.
    async fn next_job(&mut self, jobs: &mut mpsc::Receiver<Job>) -> Option<Job> {
        let control = self.control;
        let mut next = std::pin::pin!(async {
            tokio::select! {
                job = jobs.recv() => job,
                _ = control.soft.cancelled() => None,
            }
        });
        let spread = 0.5 + 0.5 * unit_fraction(self.vu);
        let unattended = self.conn.as_ref().map_or(Duration::MAX, |c| {
            c.unattended_for(UNATTENDED_CAP).mul_f64(spread)
        });
        tokio::select! {
            biased;
            job = &mut next => return job,
            () = tokio::time::sleep(unattended) => {}
        }
        // Boxed like the context steps' keep-alive: keeps every VU task smaller.
        let (job, lost) = Box::pin(keep_chat_alive(self.conn.as_deref_mut(), next)).await;
        if lost.is_some() {
            self.book_idle(lost);
        }
        job
    }

    /// One pass over the steps.
    async fn run_iteration(&mut self) -> Flow {
        let Ok(rows) = self
            .plan
            .feeders
            .pick(self.vu, self.iteration, &mut self.rng)
        else {
            // A `unique` feeder is used up (logged once by `pick`): this VU is done.
            self.recorder.writer().cause("feeder_exhausted");
            return Flow::Stop;
        };
        let iteration = self.iteration;
        self.iteration += 1;
        // Per iteration; never allocates when the scenario captures nothing.
        let mut captured = Captured::default();
        for (i, step) in self.group.steps.iter().enumerate() {
            if self.control.soft.is_cancelled() {
                return Flow::Stop;
            }
            let (when, action) = step.guard();
            if when.is_some_and(|c| !c.holds(&captured)) {
                continue;
            }
            let ctx = TemplateCtx {
                vu: self.vu,
                iteration,
                rows: Some(&rows),
                captured: Some(&captured),
            };
            let step_tag = self.group.step_tags.get(i).copied().flatten();
            let tags = TagSet::new(self.group.tag, step_tag);
            let flow = self.step(action, &ctx, &tags).await;
            for (name, value) in self.captures.drain(..) {
                match value {
                    Some(v) => captured.set(&name, v),
                    None => captured.unset(&name),
                }
            }
            match flow {
                Flow::Continue => {}
                Flow::Abandon => return Flow::Continue,
                Flow::Stop => return Flow::Stop,
            }
        }
        Flow::Continue
    }

    /// Closes both connections (end of the VU's work or of its active period).
    async fn close_all(&mut self) {
        if let Some(conn) = self.conn.take() {
            close(conn, self.recorder).await;
        }
        self.context.close(self.recorder).await;
    }

    async fn step(&mut self, step: &Step, ctx: &TemplateCtx<'_>, tags: &TagSet) -> Flow {
        match step {
            Step::Connect => {
                if let Some(old) = self.conn.take() {
                    close(old, self.recorder).await;
                }
                self.new_session(ctx);
                if self.plan.rest.is_some() {
                    // REST has no connection to open: a new conversation is new ids.
                    return Flow::Continue;
                }
                // Boxed (one allocation per connect): keeps every VU task smaller.
                Box::pin(self.connect(ctx)).await
            }
            Step::Send(send) if self.plan.rest.is_some() => {
                let Some(endpoint) = self.plan.rest.as_deref() else {
                    return Flow::Stop;
                };
                let session = self.session(ctx);
                let who = rest::Who {
                    user_id: &session.user_id,
                    session_id: &session.session_id,
                };
                let sent = rest::turn(
                    endpoint,
                    who,
                    send,
                    ctx,
                    tags.as_slice(),
                    self.lag,
                    self.recorder,
                    &self.control.hard,
                    &mut self.visibility,
                    &mut self.captures,
                )
                .await;
                match sent {
                    rest::Sent::Done => Flow::Continue,
                    rest::Sent::Interrupted => Flow::Stop,
                }
            }
            Step::UpdateContext(update) if self.plan.inject.is_some() => {
                let Some(plan) = self.plan.inject.as_deref() else {
                    return Flow::Stop;
                };
                let session = self.session(ctx);
                let who = rest::Who {
                    user_id: &session.user_id,
                    session_id: &session.session_id,
                };
                rest::inject(
                    plan,
                    who,
                    update,
                    ctx,
                    tags.as_slice(),
                    self.recorder,
                    &self.control.hard,
                    &mut self.visibility,
                )
                .await;
                Flow::Continue
            }
            Step::Send(send) => {
                if self.conn.is_none() {
                    match Box::pin(self.connect(ctx)).await {
                        Flow::Continue => {}
                        other => return other,
                    }
                }
                self.send(send, ctx, tags.as_slice()).await
            }
            Step::Think(think) => {
                let pause = think.sample(&mut self.rng);
                self.think(pause).await
            }
            Step::Disconnect => {
                if let Some(conn) = self.conn.take() {
                    close(conn, self.recorder).await;
                }
                Flow::Continue
            }
            Step::UpdateContext(update) => {
                let Some(runtime) = self.plan.runtime.as_deref() else {
                    return Flow::Stop;
                };
                let session_id = self.session(ctx).session_id;
                let work = self.context.update(
                    update,
                    &session_id,
                    ctx,
                    tags.as_slice(),
                    runtime,
                    self.recorder,
                    self.control,
                );
                // Boxed: only VUs running a context step pay for the combined future.
                let ((), lost) = Box::pin(keep_chat_alive(self.conn.as_deref_mut(), work)).await;
                self.book_idle(lost);
                Flow::Continue
            }
            // `run_iteration` judged the condition and passes the step itself.
            Step::If(guarded) => Box::pin(self.step(&guarded.step, ctx, tags)).await,
            Step::GetContext => {
                let Some(runtime) = self.plan.runtime.as_deref() else {
                    return Flow::Stop;
                };
                let session_id = self.session(ctx).session_id;
                let work = self
                    .context
                    .get(&session_id, runtime, self.recorder, self.control);
                // Boxed: only VUs running a context step pay for the combined future.
                let ((), lost) = Box::pin(keep_chat_alive(self.conn.as_deref_mut(), work)).await;
                self.book_idle(lost);
                Flow::Continue
            }
        }
    }

    /// Starts a new conversation: fresh ids from the templates.
    fn new_session(&mut self, ctx: &TemplateCtx) -> Session {
        let target = &self.plan.scenario.target;
        let session = Session {
            user_id: target.user_id.render(ctx),
            session_id: target.session_id.render(ctx),
        };
        self.session = Some(session.clone());
        self.link.failed = 0;
        self.link.connected_once = false;
        self.context.new_session();
        self.visibility = rest::Visibility::default();
        session
    }

    /// The current conversation, started if there is none yet.
    fn session(&mut self, ctx: &TemplateCtx) -> Session {
        match &self.session {
            Some(s) => s.clone(),
            None => self.new_session(ctx),
        }
    }

    /// Gives the conversation a connection: the first connect, or a reconnect
    /// with the same session after a drop. Attempts wait until `retry_at`
    /// (`reconnect.interval` after a drop or a failed attempt); after
    /// `reconnect.max_attempts` failed reconnects the conversation is abandoned.
    async fn connect(&mut self, ctx: &TemplateCtx<'_>) -> Flow {
        let policy = self.plan.scenario.target.reconnect;
        loop {
            if let Some(at) = self.link.retry_at.take() {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = self.control.soft.cancelled() => return Flow::Stop,
                }
            }
            if self.link.connected_once || self.link.failed > 0 {
                self.recorder.writer().add(Counter::Reconnects, 1);
            }
            match self.connect_once(ctx).await {
                Attempt::Connected => {
                    self.link.connected_once = true;
                    self.link.failed = 0;
                    return Flow::Continue;
                }
                Attempt::Stopped => return Flow::Stop,
                Attempt::Failed => {
                    self.link.failed += 1;
                    if self.link.failed > policy.max_attempts {
                        let mut w = self.recorder.writer();
                        w.add(Counter::Abandoned, 1);
                        w.cause("reconnect_exhausted");
                        drop(w);
                        self.session = None;
                        // The next conversation is a new client (no interval),
                        // but does not hammer an endpoint that just failed.
                        self.link.retry_at = Some(Instant::now() + MIN_RETRY_PAUSE);
                        return Flow::Abandon;
                    }
                    let pause = policy.interval.as_duration().max(MIN_RETRY_PAUSE);
                    self.link.retry_at = Some(Instant::now() + pause);
                }
            }
        }
    }

    /// One connect attempt, booked as `connect` latency or a `connect_<cause>` error.
    async fn connect_once(&mut self, ctx: &TemplateCtx<'_>) -> Attempt {
        let session = self.session(ctx);
        let target = &self.plan.scenario.target;
        let opts = ConnectOptions {
            endpoint_url: self.plan.endpoint_url.clone(),
            url_token: self.plan.url_token.clone(),
            user_id: session.user_id,
            session_id: session.session_id,
            eio: target.eio,
            emit_with_ack: target.emit_with_ack,
            test_mode: target.test_mode,
            inner_handshake: target.inner_handshake,
            connect_timeout: target.connect_timeout.as_duration(),
            output_limits: target.output_limits(),
        };
        let started = Instant::now();
        let result = tokio::select! {
            r = Connection::connect(&opts) => r,
            _ = self.control.soft.cancelled() => return Attempt::Stopped,
        };
        let mut w = self.recorder.writer();
        match result {
            Ok(conn) => {
                w.record(Metric::Connect, started.elapsed());
                w.add(Counter::ConnectsOk, 1);
                self.conn = Some(Open::new(conn, &self.control.gauge, SocketKind::Chat));
                Attempt::Connected
            }
            Err(e) => {
                w.add(Counter::ConnectErrors, 1);
                w.cause(&format!("connect_{}", e.cause()));
                tracing::debug!(vu = self.vu, "connect failed: {e}");
                Attempt::Failed
            }
        }
    }

    /// The connection was lost (not closed by us): the official client's timer
    /// starts now, so the next attempt waits one `reconnect.interval`.
    fn connection_lost(&mut self) {
        self.conn = None;
        let interval = self.plan.scenario.target.reconnect.interval.as_duration();
        self.link.retry_at = Some(Instant::now() + interval);
    }

    async fn send(&mut self, send: &SendStep, ctx: &TemplateCtx<'_>, tags: &[TagId]) -> Flow {
        let Some(conn) = self.conn.as_mut() else {
            return Flow::Continue;
        };
        let input = ProcessInput {
            text: send.text.render_cow(ctx),
            data: send.data.as_ref().map(|d| d.render_cow(ctx)),
            reset_flow: send.reset_flow,
            channel: &self.plan.scenario.target.channel,
            keep_data: send.uses_output_data(),
        };
        self.recorder
            .writer()
            .add_tagged(Counter::TurnsSent, tags, 1);
        let turn = tokio::select! {
            t = conn.turn(&input, send.timeout.as_duration()) => Some(t),
            _ = self.control.hard.cancelled() => None,
        };
        let counters = conn.take_counters();
        let after = {
            let mut w = self.recorder.writer();
            add_wire_counters(&mut w, &counters);
            match &turn {
                Some(turn) => {
                    record_visibility(&mut w, turn, tags, &mut self.context.pending_visible);
                    if let (Some(lag), Some(done)) = (self.lag, turn.finished_at) {
                        let from_intended = done.saturating_duration_since(turn.sent_at) + lag;
                        w.record_tagged(Metric::FinalPingIntended, tags, from_intended);
                    }
                    record_turn(&mut w, turn, send, ctx, tags, &mut self.captures)
                }
                None => {
                    w.add_tagged(Counter::TurnsInterrupted, tags, 1);
                    w.cause("turn_interrupted");
                    self.conn = None;
                    return Flow::Stop;
                }
            }
        };
        match after {
            AfterTurn::Keep => {}
            AfterTurn::Close => {
                // After a timeout the session state is unknown: the next turn
                // reconnects (same session) at once.
                if let Some(conn) = self.conn.take() {
                    close(conn, self.recorder).await;
                }
            }
            AfterTurn::Lost => self.connection_lost(),
        }
        Flow::Continue
    }

    /// Books the chat connection's counters after a pause or a context step,
    /// and its loss if it dropped meanwhile (`idle_<kind>`).
    fn book_idle(&mut self, lost: Option<DisconnectKind>) {
        if let Some(conn) = self.conn.as_mut() {
            let counters = conn.take_counters();
            let mut w = self.recorder.writer();
            add_wire_counters(&mut w, &counters);
            if let Some(kind) = lost {
                w.add(Counter::Disconnects, 1);
                w.cause(&kind.idle_cause());
            }
        }
        if lost.is_some() {
            self.connection_lost();
        }
    }

    /// Pauses while keeping both connections alive (heartbeats, acks).
    async fn think(&mut self, pause: Duration) -> Flow {
        let control = self.control;
        let conn = self.conn.as_mut();
        let chat = async {
            match conn {
                Some(conn) => conn.idle(pause).await.err().map(|lost| lost.kind),
                None => {
                    tokio::time::sleep(pause).await;
                    None
                }
            }
        };
        let runtime = self.context.idle(pause);
        let (lost, runtime_failure) = tokio::select! {
            both = async { tokio::join!(chat, runtime) } => both,
            _ = control.soft.cancelled() => return Flow::Stop,
        };
        self.book_idle(lost);
        if let Some(runtime) = self.plan.runtime.as_deref() {
            // Boxed: reconnecting the runtime side is a 10 KB state that would
            // otherwise be part of every VU task.
            Box::pin(
                self.context
                    .after_idle(runtime_failure, runtime, self.recorder, control),
            )
            .await;
        }
        Flow::Continue
    }
}

/// A fixed fraction in [0, 1) for VU `vu`, evenly spread over VU numbers.
fn unit_fraction(vu: u64) -> f64 {
    (vu.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `work` (a context step) while the chat connection, if any, keeps
/// answering heartbeats and acks, so a slow update does not cost the
/// conversation its socket. Returns the work's result and, if the connection
/// dropped meanwhile, how.
async fn keep_chat_alive<T>(
    conn: Option<&mut Connection>,
    work: impl std::future::Future<Output = T>,
) -> (T, Option<DisconnectKind>) {
    let Some(conn) = conn else {
        return (work.await, None);
    };
    let mut work = std::pin::pin!(work);
    let lost = tokio::select! {
        biased;
        out = &mut work => return (out, None),
        lost = serve_heartbeats(conn) => lost,
    };
    (work.await, Some(lost))
}

/// Answers heartbeats and acks on `conn` until it is lost; how it was lost.
/// Cancel-safe: a frame half read when the caller stops waiting stays
/// buffered in the WebSocket for the next read.
async fn serve_heartbeats(conn: &mut Connection) -> DisconnectKind {
    loop {
        if let Err(lost) = conn.idle(KEEP_ALIVE_SLICE).await {
            return lost.kind;
        }
    }
}

/// `context_visible` and stale turns of the last acknowledged update (see
/// [`super::context::AwaitVisible`]).
fn record_visibility(
    w: &mut ShardWriter<'_>,
    turn: &Turn,
    tags: &[TagId],
    pending: &mut Option<super::context::AwaitVisible>,
) {
    let Some(awaited) = pending.as_mut() else {
        return;
    };
    let outputs = turn.outputs.iter().map(|o| (o.at, o.context_version));
    match awaited.observe(turn.sent_at, outputs) {
        super::context::Seen::Visible(took) => {
            w.record_tagged(Metric::ContextVisible, tags, took);
            *pending = None;
        }
        super::context::Seen::Stale => w.add_tagged(Counter::ContextStaleTurns, tags, 1),
        super::context::Seen::Nothing => {}
    }
}

/// The cause of a turn that received more outputs than `target.max_turn_outputs`
/// / `max_turn_output_bytes` allow (Socket.IO and REST alike).
pub(super) const OUTPUTS_OVERFLOW_CAUSE: &str = "turn_outputs_overflow";

/// What a finished turn leaves of the connection.
enum AfterTurn {
    Keep,
    /// Still open but in an unknown state: we close it.
    Close,
    /// Gone (the server or the transport dropped it).
    Lost,
}

/// Records one finished turn; says what to do with the connection.
fn record_turn(
    w: &mut ShardWriter<'_>,
    turn: &Turn,
    send: &SendStep,
    ctx: &TemplateCtx,
    tags: &[TagId],
    captures: &mut Vec<CaptureUpdate>,
) -> AfterTurn {
    w.add(Counter::Outputs, turn.outputs_received);
    if let Some(first) = turn.outputs.first() {
        w.record_tagged(
            Metric::FirstOutput,
            tags,
            first.at.saturating_duration_since(turn.sent_at),
        );
    }
    for pair in turn.outputs.windows(2) {
        w.record(
            Metric::OutputGap,
            pair[1].at.saturating_duration_since(pair[0].at),
        );
    }
    if let Some(done) = turn.finished_at {
        w.record_tagged(
            Metric::FinalPing,
            tags,
            done.saturating_duration_since(turn.sent_at),
        );
    }
    match &turn.outcome {
        TurnOutcome::Ok => {
            if let Some(failure) = judge(turn, send, ctx, captures) {
                w.add_tagged(Counter::TurnsError, tags, 1);
                w.add(Counter::ExpectFailed, 1);
                w.cause(failure);
            } else {
                w.add_tagged(Counter::TurnsOk, tags, 1);
            }
            AfterTurn::Keep
        }
        TurnOutcome::BotError(_) => {
            w.add_tagged(Counter::TurnsError, tags, 1);
            w.cause("bot_error");
            AfterTurn::Keep
        }
        TurnOutcome::Timeout => {
            w.add_tagged(Counter::TurnsTimeout, tags, 1);
            w.cause("turn_timeout");
            AfterTurn::Close
        }
        TurnOutcome::OutputsOverflow(_) => {
            w.add_tagged(Counter::TurnsError, tags, 1);
            w.cause(OUTPUTS_OVERFLOW_CAUSE);
            AfterTurn::Close
        }
        TurnOutcome::Disconnected(lost) => {
            w.add_tagged(Counter::TurnsDisconnected, tags, 1);
            w.add(Counter::Disconnects, 1);
            w.cause(&lost.kind.turn_cause());
            AfterTurn::Lost
        }
    }
}

fn add_wire_counters(w: &mut ShardWriter<'_>, c: &WireCounters) {
    w.add(Counter::AcksSent, c.acks_sent);
    w.add(Counter::UnknownEvents, c.unknown_events);
    w.add(Counter::UnsolicitedOutputs, c.unsolicited_outputs);
    w.add(Counter::Heartbeats, c.heartbeats);
    w.add(Counter::BytesSent, c.bytes_sent);
    w.add(Counter::BytesReceived, c.bytes_received);
}

/// Closes a connection (bounded by the connection's own timeout) and books
/// its last counters. The closing is boxed (one allocation per close): its
/// state, the connection included, would otherwise be part of every VU task.
fn close(
    conn: Open<Connection>,
    recorder: &Recorder,
) -> impl std::future::Future<Output = ()> + '_ {
    let closing = Box::pin(conn.into_inner().close());
    async move {
        let counters = closing.await;
        add_wire_counters(&mut recorder.writer(), &counters);
    }
}

/// The tags of one step: its scenario, and the step's own when it is named.
pub(super) struct TagSet {
    ids: [TagId; 2],
    len: usize,
}

impl TagSet {
    fn new(scenario: TagId, step: Option<TagId>) -> TagSet {
        match step {
            Some(step) => TagSet {
                ids: [scenario, step],
                len: 2,
            },
            None => TagSet {
                ids: [scenario, scenario],
                len: 1,
            },
        }
    }

    fn as_slice(&self) -> &[TagId] {
        &self.ids[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every VU is one task whose allocation is the size of `run_vu`'s
    /// future; thousands of them are the generator's memory (benches/load:
    /// ~20 KiB per idle VU in all). Awaiting a large future inline in one
    /// branch (as the context steps' keep-alive once did) grows every VU,
    /// so such futures are boxed; this keeps that from creeping back.
    #[test]
    fn a_vu_task_stays_small() {
        let scenario = crate::scenario::load_str(
            "name: size\nload: {vus: 1}\nsteps:\n  - send: {text: hi}\n",
            "size.yaml",
        )
        .expect("scenario");
        let plan = Plan {
            feeders: Arc::new(crate::scenario::Feeders::new(&scenario.feeder_tables)),
            scenario,
            endpoint_url: String::new(),
            url_token: String::new(),
            seed: 1,
            segment: crate::engine::Segment::WHOLE,
            groups: Vec::new(),
            tags: Vec::new(),
            runtime: None,
            rest: None,
            inject: None,
            emulator_cpu: None,
        };
        let control = Control {
            soft: tokio_util::sync::CancellationToken::new(),
            hard: tokio_util::sync::CancellationToken::new(),
            gauge: Arc::default(),
        };
        let slot = VuSlot {
            vu: 0,
            index: 0,
            group: 0,
        };
        let task = run_vu(
            slot,
            Instant::now(),
            Pacing::Closed,
            None,
            Arc::new(plan),
            Arc::new(Recorder::new()),
            Arc::new(control),
        );
        let size = std::mem::size_of_val(&task);
        eprintln!("run_vu future: {size} bytes");
        // Measured: 8.0 KB (9.2 KB while an idle connection's ack write held
        // the whole parsed packet as well as its event); 7.7 KB with the
        // runtime side's `after_idle` boxed (14.7 KB
        // without it, 15.8 KB without `connect` boxed, 39.5 KB when the
        // context steps' keep-alive was inline). `-Zprint-type-sizes` on a
        // nightly compiler shows which awaited future sets the size.
        assert!(size <= 9 * 1024, "a VU task takes {size} bytes");
    }
}
