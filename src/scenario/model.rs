//! The scenario file's data model (serde, `deny_unknown_fields`). Every default
//! lives here, next to the field it belongs to; every validation rule is a
//! `deserialize_with` in `fields` (so errors carry the exact position).

use super::{
    fields, Capture, CaptureName, Condition, FeederConfig, FeederName, FeederTables, JsonPointer,
    Template, TemplateValue,
};
use crate::duration::HumanDuration;
use crate::emulator_config::EmulatorConfig;
use crate::pattern::Pattern;
use crate::protocol::runtime::{Codec, Limits};
use crate::protocol::socketio::{Eio, OutputLimits};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `name` as a lower-case slug for run ids and folder names: ASCII letters
/// and digits, every other run of characters one `-`, at most `max_parts`
/// words; `run` when nothing is left.
pub fn name_slug(name: &str, max_parts: usize) -> String {
    let lower: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = lower
        .split('-')
        .filter(|p| !p.is_empty())
        .take(max_parts)
        .collect::<Vec<_>>()
        .join("-");
    if slug.is_empty() {
        "run".to_string()
    } else {
        slug
    }
}

/// A whole scenario file.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(deserialize_with = "fields::name")]
    pub name: String,
    #[serde(default)]
    pub target: Target,
    /// The load of the top-level `steps`, or the load `scenarios` share by weight.
    #[serde(default, deserialize_with = "fields::load")]
    pub load: Load,
    /// What each VU does, in order; at least one measured step. Either this
    /// or `scenarios`.
    #[serde(default, deserialize_with = "fields::steps")]
    pub steps: Vec<Step>,
    /// Several scripts run concurrently, each with a `weight` (its share of
    /// the top-level `load`) or a `load` of its own. Either this or `steps`.
    #[serde(default)]
    pub scenarios: Vec<SubScenario>,
    /// The runtime WebSocket for `update_context` / `get_context` steps.
    #[serde(default)]
    pub runtime: RuntimeTarget,
    /// POST every audit record to this URL as well (bounded queue, never blocks the load).
    #[serde(default)]
    pub webhook: Option<crate::audit::WebhookConfig>,
    /// Settings for the embedded emulator, used only when `target.url` is absent.
    /// Checked like `serve --config` (bounds included) when the file is loaded.
    #[serde(default, deserialize_with = "fields::emulator")]
    pub emulator: Option<EmulatorConfig>,
    /// Time-series interval and the generator self-check budgets.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Seed for think-time jitter and other randomness (CLI `--seed` overrides).
    #[serde(default)]
    pub seed: Option<u64>,
    /// CSV data feeders, used in templates as `{{name.column}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feeders: BTreeMap<FeederName, FeederConfig>,
    /// The CSV data of `feeders` (filled in by the loader; not serialised).
    /// The engine builds its [`super::Feeders`] from it.
    #[serde(skip)]
    pub feeder_tables: FeederTables,
    /// Pass/fail limits judged at the end (`final_ping.p99: "< 800ms"`).
    #[serde(
        default,
        skip_serializing_if = "crate::thresholds::Thresholds::is_empty"
    )]
    pub thresholds: crate::thresholds::Thresholds,
    /// Stop the run early when a threshold is breached (checked every
    /// `metrics.interval` once `delay` has passed); the run then fails.
    #[serde(default)]
    pub abort_on_fail: Option<AbortOnFail>,
}

/// `abort_on_fail: { delay: 10s }`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortOnFail {
    /// Do not judge before this much of the run has passed (let percentiles settle).
    #[serde(default, deserialize_with = "fields::duration")]
    pub delay: HumanDuration,
}

/// Where the turns go and how each session identifies itself.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Target {
    /// `socketio` (default) or `rest` (one HTTP request per turn).
    pub kind: TargetKind,
    /// REST: speak HTTP/2 without negotiation (h2c) to a plain-HTTP endpoint.
    pub http2: bool,
    /// Endpoint URL (`https://host/<URLToken>` or `http://host`). Absent = embedded emulator.
    #[serde(deserialize_with = "fields::url")]
    pub url: Option<Template>,
    /// The Endpoint's URL token (secret-ish: redacted in logs and reports).
    #[serde(deserialize_with = "fields::run_constant")]
    pub url_token: Template,
    /// Engine.IO revision: 3 or 4.
    #[serde(deserialize_with = "fields::eio")]
    pub eio: Eio,
    pub emit_with_ack: bool,
    pub test_mode: bool,
    pub inner_handshake: bool,
    pub user_id: Template,
    pub session_id: Template,
    pub channel: String,
    #[serde(deserialize_with = "fields::positive_duration")]
    pub connect_timeout: HumanDuration,
    /// After a dropped connection or a failed connect: how the conversation
    /// gets its socket back (same session, like the official client).
    pub reconnect: SocketIoReconnect,
    /// Most outputs one turn keeps; one more ends the turn as
    /// `turn_outputs_overflow` (outputs are still counted, not kept).
    #[serde(deserialize_with = "fields::max_turn_outputs")]
    pub max_turn_outputs: usize,
    /// Most bytes of output one turn keeps: its text, and on Socket.IO its
    /// `data` as the JSON text received; more ends the turn the same way.
    #[serde(deserialize_with = "fields::max_turn_output_bytes")]
    pub max_turn_output_bytes: usize,
}

impl Target {
    /// The per-turn output bounds of this target.
    pub fn output_limits(&self) -> crate::protocol::socketio::OutputLimits {
        crate::protocol::socketio::OutputLimits {
            max_count: self.max_turn_outputs,
            max_bytes: self.max_turn_output_bytes,
        }
    }
}

/// Socket.IO reconnects, as the official client does them: a new socket with
/// the same `sessionId`/`userId`, `interval` after the drop (and after each
/// failed attempt), at most `max_attempts` tries; then the conversation is
/// abandoned. `max_attempts: 0` never reconnects.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SocketIoReconnect {
    #[serde(deserialize_with = "fields::duration")]
    pub interval: HumanDuration,
    pub max_attempts: u32,
}

impl Default for SocketIoReconnect {
    fn default() -> Self {
        // @cognigy/socket-client: every 10 s, at most 5 tries (docs/protocol.md §1.5).
        SocketIoReconnect {
            interval: HumanDuration(Duration::from_secs(10)),
            max_attempts: 5,
        }
    }
}

impl Default for Target {
    fn default() -> Self {
        Target {
            kind: TargetKind::SocketIo,
            http2: false,
            url: None,
            url_token: Template::literal(DEFAULT_URL_TOKEN),
            eio: Eio::V3,
            emit_with_ack: true,
            test_mode: false,
            inner_handshake: false,
            user_id: Template::parse("finalping-vu-{{vu}}").unwrap_or_default(),
            session_id: Template::parse("{{uuid}}").unwrap_or_default(),
            channel: "finalping".to_string(),
            connect_timeout: HumanDuration(Duration::from_secs(10)),
            reconnect: SocketIoReconnect::default(),
            max_turn_outputs: OutputLimits::DEFAULT.max_count,
            max_turn_output_bytes: OutputLimits::DEFAULT.max_bytes,
        }
    }
}

/// The URL token a scenario without `target.url_token` has (the embedded
/// emulator accepts any token).
pub const DEFAULT_URL_TOKEN: &str = "emulator-url-token";

impl Target {
    /// Whether the scenario sets `url_token` itself (not the default).
    pub fn url_token_given(&self) -> bool {
        self.url_token.source() != DEFAULT_URL_TOKEN
    }
}

impl Scenario {
    /// Every step of the file: the top-level script and those of `scenarios`.
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .chain(self.scenarios.iter().flat_map(|s| s.steps.iter()))
    }
}

/// One of several scripts of a file (`scenarios:`), tagged by its name.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubScenario {
    #[serde(deserialize_with = "fields::name")]
    pub name: String,
    /// Share of the top-level load (VUs or arrival rate) when it has no `load`.
    #[serde(default = "default_weight", deserialize_with = "fields::weight")]
    pub weight: f64,
    /// Its own executor; the top-level `load` is then not shared with it.
    #[serde(default, deserialize_with = "fields::opt_load")]
    pub load: Option<Load>,
    #[serde(deserialize_with = "fields::steps")]
    pub steps: Vec<Step>,
}

fn default_weight() -> f64 {
    1.0
}

/// How turns reach the bot.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum TargetKind {
    /// The Socket.IO Endpoint (`@cognigy/socket-client`), EIO3/EIO4.
    #[default]
    #[serde(rename = "socketio")]
    SocketIo,
    /// The REST Endpoint: `POST <url>/<URLToken>`, request → response is the turn.
    #[serde(rename = "rest")]
    Rest,
}

/// How context updates reach the session.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// The runtime WebSocket (docs/protocol.md §2).
    #[default]
    Websocket,
    /// The REST session context-inject API (docs/protocol.md §4).
    RestInject,
}

/// How load is generated (k6-like executors). Without `executor`, `vus` VUs
/// loop the steps for `duration` and/or `iterations` (closed model).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default)]
    pub executor: Option<Executor>,
    /// Concurrent VUs (closed executors), >= 1.
    #[serde(default, deserialize_with = "fields::vus")]
    pub vus: u32,
    /// Stop starting iterations after this long (whichever of duration/iterations comes first).
    #[serde(default, deserialize_with = "fields::opt_positive_duration")]
    pub duration: Option<HumanDuration>,
    /// Iterations per VU (>= 1). Neither duration nor iterations = 1 iteration.
    #[serde(default, deserialize_with = "fields::iterations")]
    pub iterations: Option<u64>,
    /// Spread VU starts evenly over this time (closed executors).
    #[serde(default, deserialize_with = "fields::duration")]
    pub ramp_up: HumanDuration,
    /// After the duration ends, in-flight turns get this long before they count as interrupted.
    #[serde(default = "default_grace", deserialize_with = "fields::duration")]
    pub grace: HumanDuration,
    /// `ramping-vus`: VUs at the start (default 0).
    #[serde(default)]
    pub start_vus: u32,
    /// `ramping-vus` (targets in VUs) and `ramping-arrival-rate` (targets in conversations/s).
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// `constant-arrival-rate`: conversations started per second.
    #[serde(default)]
    pub rate: Option<f64>,
    /// `ramping-arrival-rate`: rate at the start (default 0).
    #[serde(default)]
    pub start_rate: f64,
    /// Arrival-rate executors: most VUs busy at once; an arrival finding none
    /// free is dropped (counted), never delayed.
    #[serde(default)]
    pub max_vus: Option<u32>,
    /// Arrival-rate executors: evenly spaced (`uniform`) or `poisson` (seeded).
    #[serde(default)]
    pub arrival: Arrival,
    /// Closed executors: each VU intends to start an iteration every `pacing`
    /// (from its own start). An early VU waits; a late one starts at once and
    /// its lateness counts as `schedule_lag` / `final_ping_intended`.
    #[serde(default, deserialize_with = "fields::opt_positive_duration")]
    pub pacing: Option<HumanDuration>,
}

impl Default for Load {
    /// No load at all (what a file without `load:` has; only valid when every
    /// scenario brings its own).
    fn default() -> Self {
        Load {
            executor: None,
            vus: 0,
            duration: None,
            iterations: None,
            ramp_up: HumanDuration::default(),
            grace: default_grace(),
            start_vus: 0,
            stages: Vec::new(),
            rate: None,
            start_rate: 0.0,
            max_vus: None,
            arrival: Arrival::Uniform,
            pacing: None,
        }
    }
}

/// k6-style executor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Executor {
    /// `vus` VUs loop for `duration`.
    ConstantVus,
    /// VUs follow `stages` (linear ramps between targets).
    RampingVus,
    /// `vus` VUs run `iterations` each.
    PerVuIterations,
    /// `rate` conversations per second for `duration` (open model).
    ConstantArrivalRate,
    /// Arrival rate follows `stages` (open model).
    RampingArrivalRate,
}

impl Executor {
    pub fn name(self) -> &'static str {
        match self {
            Executor::ConstantVus => "constant-vus",
            Executor::RampingVus => "ramping-vus",
            Executor::PerVuIterations => "per-vu-iterations",
            Executor::ConstantArrivalRate => "constant-arrival-rate",
            Executor::RampingArrivalRate => "ramping-arrival-rate",
        }
    }

    /// Open model: conversations start on a schedule, not when a VU is free.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Executor::ConstantArrivalRate | Executor::RampingArrivalRate
        )
    }
}

/// One ramp: reach `target` linearly over `duration`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    #[serde(deserialize_with = "fields::duration")]
    pub duration: HumanDuration,
    pub target: f64,
}

/// Spacing of arrivals in the open model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    #[default]
    Uniform,
    Poisson,
}

impl Load {
    /// The executor in effect: the named one, else `per-vu-iterations` when
    /// only iterations are given, else `constant-vus`.
    pub fn executor(&self) -> Executor {
        self.executor
            .unwrap_or(match (self.iterations, self.duration) {
                (Some(_), None) => Executor::PerVuIterations,
                _ => Executor::ConstantVus,
            })
    }

    /// Total length of the stages.
    pub fn stages_duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration.as_duration()).sum()
    }

    /// VU tasks the run needs at most.
    pub fn max_vus(&self) -> u32 {
        match self.executor() {
            Executor::ConstantVus | Executor::PerVuIterations => self.vus,
            Executor::RampingVus => self
                .stages
                .iter()
                .map(|s| s.target.max(0.0).ceil() as u32)
                .chain([self.start_vus])
                .max()
                .unwrap_or(0),
            Executor::ConstantArrivalRate | Executor::RampingArrivalRate => {
                self.max_vus.unwrap_or(0)
            }
        }
    }

    /// Checks that the settings fit the executor; the message names what to add.
    pub fn check(&self) -> Result<(), (String, String)> {
        let e = self.executor();
        let need = |what: &str, hint: &str| {
            Err((
                format!("executor `{}` needs {what}", e.name()),
                hint.to_string(),
            ))
        };
        match e {
            Executor::ConstantVus | Executor::PerVuIterations if self.vus == 0 => {
                need("`vus` (>= 1)", "add e.g. `vus: 10`")
            }
            Executor::ConstantVus if self.executor.is_some() && self.duration.is_none() => {
                need("a `duration`", "add e.g. `duration: 1m`")
            }
            Executor::PerVuIterations if self.iterations.is_none() => {
                need("`iterations`", "add e.g. `iterations: 10`")
            }
            Executor::RampingVus | Executor::RampingArrivalRate if self.stages.is_empty() => need(
                "`stages`",
                "add e.g. `stages: [{duration: 30s, target: 50}, {duration: 1m, target: 50}]`",
            ),
            Executor::RampingVus if self.max_vus() == 0 => {
                need("a stage with a target above 0", "raise a stage's `target`")
            }
            Executor::ConstantArrivalRate
                if !self.rate.is_some_and(|r| r > 0.0 && r.is_finite()) =>
            {
                need(
                    "a positive `rate` (conversations per second)",
                    "add e.g. `rate: 20`",
                )
            }
            Executor::ConstantArrivalRate if self.duration.is_none() => {
                need("a `duration`", "add e.g. `duration: 1m`")
            }
            Executor::ConstantArrivalRate | Executor::RampingArrivalRate
                if self.max_vus.unwrap_or(0) == 0 =>
            {
                need(
                    "`max_vus` (>= 1): the most conversations in flight at once",
                    "add e.g. `max_vus: 200`",
                )
            }
            _ if self
                .stages
                .iter()
                .any(|s| !(s.target >= 0.0 && s.target.is_finite())) =>
            {
                Err((
                    "a stage `target` must be a number >= 0".to_string(),
                    "write e.g. `{duration: 30s, target: 50}`".to_string(),
                ))
            }
            _ => Ok(()),
        }
    }
}

fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// One step of a VU script. YAML: `- connect`, `- send: {...}`, `- think: 1s..3s`,
/// `- disconnect` (Deserialize is hand-written in `fields` for precise errors;
/// Serialize produces the same form).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Open a session (new ids rendered from the templates); waits for `endpoint-ready`.
    Connect,
    /// One chat turn.
    Send(SendStep),
    /// Pause (fixed or a jittered range); the connection stays alive meanwhile.
    Think(ThinkTime),
    /// Leave the namespace and close.
    Disconnect,
    /// Update context variables of the VU's session over the runtime WebSocket.
    UpdateContext(UpdateStep),
    /// Read the VU's session context over the runtime WebSocket.
    GetContext,
    /// A step with `if:`: it runs only when the condition holds.
    If(Box<Guarded>),
}

/// `- if: { captured: intent, equals: refund }` beside a step's name.
#[derive(Debug, Clone, Serialize)]
pub struct Guarded {
    pub when: Condition,
    pub step: Step,
}

impl Step {
    /// Whether the step produces a measured sample (a turn or a context update).
    pub fn is_measured(&self) -> bool {
        matches!(
            self.action(),
            Step::Send(_) | Step::UpdateContext(_) | Step::GetContext
        )
    }

    /// What the step does, seen through its `if:`.
    pub fn action(&self) -> &Step {
        match self {
            Step::If(g) => &g.step,
            other => other,
        }
    }

    /// The step's `if:` condition and what it does.
    pub fn guard(&self) -> (Option<&Condition>, &Step) {
        match self {
            Step::If(g) => (Some(&g.when), &g.step),
            other => (None, other),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// Optional name, used as a tag in reports.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub text: Template,
    #[serde(default)]
    pub data: Option<TemplateValue>,
    #[serde(default)]
    pub reset_flow: bool,
    /// Turn timeout: no `finalPing` by then = timeout.
    #[serde(
        default = "default_turn_timeout",
        deserialize_with = "fields::positive_duration"
    )]
    pub timeout: HumanDuration,
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Values taken from this turn's outputs for later steps (`{{captured.name}}`).
    /// One that finds nothing fails the turn (`capture_missing`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<CaptureName, Capture>,
}

impl SendStep {
    /// Whether judging the turn needs the outputs' structured `data`.
    pub fn uses_output_data(&self) -> bool {
        self.expect.as_ref().is_some_and(|e| !e.data.is_empty())
            || self.capture.values().any(|c| c.path.is_some())
    }
}

fn default_turn_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// Checks on a finished turn; a failed check makes the turn an error with
/// the check's cause (`expect_min_outputs`, `expect_text_matches`, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// At least this many outputs (the same as `outputs: { min: N }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_outputs: Option<u32>,
    /// The number of outputs lies in this range (both ends included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<OutputRange>,
    /// Some output's text must contain this (after template expansion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_contains: Option<Template>,
    /// Some output's text must match this regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_matches: Option<Pattern>,
    /// Checks on the outputs' structured `data`, each at a JSON Pointer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataCheck>,
}

/// `outputs: { min: 1, max: 3 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, try_from = "RawRange")]
pub struct OutputRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// One check on the outputs' `data`: some output has a value at `path`
/// (`exists: true`, the default), that `equals` a value or `matches` a
/// pattern; `exists: false` = no output has one.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, try_from = "RawDataCheck")]
pub struct DataCheck {
    pub path: JsonPointer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// Compared as JSON (string leaves are templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<TemplateValue>,
    /// On a string value, or on the JSON text of any other value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Pattern>,
}

/// `500ms` (fixed) or `1s..3s` (uniformly jittered in the range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}

/// Where context updates go and how the runtime connection behaves.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeTarget {
    /// `websocket` (default) or `rest_inject`.
    pub kind: RuntimeKind,
    /// `rest_inject`: the API base (`https://api-host`). Absent = the embedded emulator.
    #[serde(deserialize_with = "fields::url")]
    pub api_base: Option<Template>,
    /// `rest_inject`: the API key (`${env:NAME}`; redacted everywhere).
    pub api_key: Option<Template>,
    /// `rest_inject`: largest JSON request sent (checked before sending).
    pub max_request_bytes: usize,
    /// `ws(s)://host/v2/runtime`. Absent = the embedded emulator's runtime.
    #[serde(deserialize_with = "fields::url")]
    pub url: Option<Template>,
    /// OAuth client credentials. Absent with the embedded emulator = its defaults.
    pub oauth: Option<OAuthSettings>,
    pub codec: Codec,
    /// Heartbeat interval, or `off`.
    #[serde(deserialize_with = "fields::heartbeat")]
    pub heartbeat: Option<HumanDuration>,
    /// Bound of one token request and, separately, of one WebSocket connect.
    #[serde(deserialize_with = "fields::positive_duration")]
    pub connect_timeout: HumanDuration,
    /// How long an update waits for its reply.
    #[serde(deserialize_with = "fields::positive_duration")]
    pub reply_timeout: HumanDuration,
    pub reconnect: ReconnectSettings,
    /// Retries of an update rejected with VERSION_MISMATCH (with the server's version).
    pub max_conflict_retries: u32,
    /// Check limits before sending (turn off only to test a server's own checks).
    pub validate: bool,
    pub limits: Limits,
}

impl Default for RuntimeTarget {
    fn default() -> Self {
        RuntimeTarget {
            kind: RuntimeKind::Websocket,
            api_base: None,
            api_key: None,
            max_request_bytes: 60_000,
            url: None,
            oauth: None,
            codec: Codec::Msgpack,
            heartbeat: Some(HumanDuration(Duration::from_secs(25))),
            connect_timeout: HumanDuration(Duration::from_secs(10)),
            reply_timeout: HumanDuration(Duration::from_secs(10)),
            reconnect: ReconnectSettings::default(),
            max_conflict_retries: 3,
            validate: true,
            limits: Limits::default(),
        }
    }
}

/// OAuth 2.0 client credentials for the runtime token.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    #[serde(deserialize_with = "fields::run_constant")]
    pub token_url: Template,
    #[serde(deserialize_with = "fields::run_constant")]
    pub client_id: Template,
    /// Secret: use `${env:NAME}`; redacted everywhere.
    #[serde(deserialize_with = "fields::run_constant")]
    pub client_secret: Template,
    #[serde(default = "default_scope")]
    pub scope: String,
}

fn default_scope() -> String {
    "runtime:execute context:write".to_string()
}

/// Reconnect after abnormal closes: wait `backoff × attempt`, at most `max_attempts` tries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectSettings {
    pub max_attempts: u32,
    #[serde(deserialize_with = "fields::duration")]
    pub backoff: HumanDuration,
}

impl Default for ReconnectSettings {
    fn default() -> Self {
        ReconnectSettings {
            max_attempts: 5,
            backoff: HumanDuration(Duration::from_secs(2)),
        }
    }
}

/// `update_context`: either `scope` + `vars`, or `context: {scope: {vars}}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStep {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Variables (values normalized; strings are templates).
    #[serde(default, deserialize_with = "fields::context_map")]
    pub vars: Option<TemplateValue>,
    /// Variables by scope.
    #[serde(default, deserialize_with = "fields::context_map")]
    pub context: Option<TemplateValue>,
    #[serde(default)]
    pub version: UpdateVersion,
    #[serde(default)]
    pub expect: UpdateExpect,
    /// Updates sent at once (pipelined, each its own round trip), 1..=10.
    #[serde(default = "default_parallel", deserialize_with = "fields::parallel")]
    pub parallel: u32,
}

fn default_parallel() -> u32 {
    1
}

/// `auto` = the VU's last known version of its session; a number = exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateVersion {
    #[default]
    Auto,
    Fixed(u64),
}

/// What counts as success for an update step.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UpdateExpect {
    /// `contextUpdated` (after conflict retries).
    #[default]
    Ok,
    /// `contextRejected` with VERSION_MISMATCH (no retries).
    Conflict,
    /// Any `contextRejected` (no retries).
    Rejected,
}

/// How the run measures itself over time, and where live metrics go.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Length of one row of `timeseries.csv` / one interval of the `.hlog` files.
    #[serde(deserialize_with = "fields::positive_duration")]
    pub interval: HumanDuration,
    /// The run is invalid when the scheduler lag p99 (a 10 ms probe's overshoot) exceeds this.
    #[serde(deserialize_with = "fields::positive_duration")]
    pub lag_p99_budget: HumanDuration,
    /// ... or when CPU stays at ≥ 95 % of the usable cores for this many intervals in a row.
    pub cpu_saturation_intervals: u32,
    /// Serve `/metrics` (Prometheus/OpenMetrics text) on this address while
    /// the run lasts: a port (loopback) or `IP:PORT` (`--metrics-listen`).
    #[serde(
        deserialize_with = "fields::metrics_listen",
        skip_serializing_if = "Option::is_none"
    )]
    pub listen: Option<std::net::SocketAddr>,
    /// How long `/metrics` stays up after the run, for the last scrape (`--metrics-linger`).
    #[serde(deserialize_with = "fields::duration")]
    pub linger: HumanDuration,
    /// Push the same series here each interval with Prometheus remote write
    /// (`--prometheus-remote-write`).
    #[serde(
        deserialize_with = "fields::remote_write_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_write: Option<String>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            interval: HumanDuration(Duration::from_secs(1)),
            lag_p99_budget: HumanDuration(Duration::from_millis(10)),
            cpu_saturation_intervals: 5,
            listen: None,
            linger: HumanDuration(Duration::from_secs(15)),
            remote_write: None,
        }
    }
}

/// `OutputRange` as written, before its check.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawRange {
    #[serde(default)]
    min: Option<u32>,
    #[serde(default)]
    max: Option<u32>,
}

impl TryFrom<RawRange> for OutputRange {
    type Error = String;
    fn try_from(r: RawRange) -> Result<Self, String> {
        match (r.min, r.max) {
            (None, None) => Err(fields::message_with_hint(
                "`outputs` has neither `min` nor `max`",
                "write e.g. `outputs: { min: 1, max: 3 }`",
            )),
            (Some(min), Some(max)) if min > max => Err(fields::message_with_hint(
                &format!("`outputs` has `min: {min}` above `max: {max}`"),
                "the range includes both ends: `min` <= `max`",
            )),
            (min, max) => Ok(OutputRange { min, max }),
        }
    }
}

/// `DataCheck` as written, before its check.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawDataCheck {
    path: JsonPointer,
    #[serde(default)]
    exists: Option<bool>,
    #[serde(default)]
    equals: Option<TemplateValue>,
    #[serde(default)]
    matches: Option<Pattern>,
}

impl TryFrom<RawDataCheck> for DataCheck {
    type Error = String;
    fn try_from(r: RawDataCheck) -> Result<Self, String> {
        if r.exists == Some(false) && (r.equals.is_some() || r.matches.is_some()) {
            return Err(fields::message_with_hint(
                "a `data` check with `exists: false` cannot also compare the value",
                "drop `equals`/`matches`, or use `exists: true`",
            ));
        }
        Ok(DataCheck {
            path: r.path,
            exists: r.exists,
            equals: r.equals,
            matches: r.matches,
        })
    }
}
