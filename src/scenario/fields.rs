//! Validating deserialisers for scenario fields (`#[serde(deserialize_with)]`)
//! and the YAML form of [`Step`]. Every rule that rejects a value lives here,
//! inside deserialisation, so serde-saphyr attaches the exact position of the
//! offending node; each rejection carries a hint (see `error::de_error`).

use super::error::{choices_hint, de_error};
use super::{
    FeederName, SendStep, Step, Template, TemplateCtx, TemplateValue, ThinkTime, UpdateStep,
    UpdateVersion,
};
use crate::duration::HumanDuration;
use crate::protocol::socketio::Eio;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

const DURATION_HINT: &str =
    "write a number followed by a unit, e.g. `250ms`, `1.5s`, `2m`, `1h` (units us, ms, s, m, h)";

// ---------------------------------------------------------------- integers

/// A whole number >= 1 (or, if `optional`, also null → `None`).
struct PositiveInt {
    field: &'static str,
    meaning: &'static str,
    example: &'static str,
    optional: bool,
}

impl PositiveInt {
    fn reject<E: de::Error>(&self, found: &dyn fmt::Display) -> E {
        de_error(
            &format_args!(
                "`{}` must be a positive integer, found `{found}`",
                self.field
            ),
            format_args!(
                "`{}` is {}: a whole number >= 1, e.g. `{}: {}`",
                self.field, self.meaning, self.field, self.example
            ),
        )
    }
}

impl<'de> Visitor<'de> for PositiveInt {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a positive integer")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if v == 0 {
            return Err(self.reject(&v));
        }
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => Err(self.reject(&v)),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(self.reject(&v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Err(self.reject(&v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v.trim().parse::<u64>() {
            Ok(u) => self.visit_u64(u),
            Err(_) => Err(self.reject(&v)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.optional {
            Ok(None)
        } else {
            Err(self.reject(&"null"))
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.reject(&"a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.reject(&"a mapping"))
    }
}

/// `load.vus`: >= 1.
pub(crate) fn vus<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = PositiveInt {
        field: "vus",
        meaning: "the number of concurrent virtual users",
        example: "10",
        optional: false,
    };
    let n = d.deserialize_any(v)?.unwrap_or(0);
    u32::try_from(n).map_err(|_| {
        de_error(
            &format_args!("`vus` is too large ({n})"),
            "use at most 4294967295 VUs (and far fewer per generator machine)",
        )
    })
}

/// `load`: the fields, then whether they fit the executor.
pub(crate) fn load<'de, D: Deserializer<'de>>(d: D) -> Result<super::Load, D::Error> {
    let load = super::Load::deserialize(d)?;
    load.check().map_err(|(what, hint)| de_error(&what, hint))?;
    Ok(load)
}

/// A scenario's own `load`.
pub(crate) fn opt_load<'de, D: Deserializer<'de>>(d: D) -> Result<Option<super::Load>, D::Error> {
    load(d).map(Some)
}

/// `weight`: a positive number.
pub(crate) fn weight<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let w = f64::deserialize(d).map_err(|_| {
        de_error(
            &"`weight` must be a positive number",
            "`weight` is the scenario's share of the top-level load, e.g. `weight: 3`",
        )
    })?;
    if w > 0.0 && w.is_finite() {
        Ok(w)
    } else {
        Err(de_error(
            &format_args!("`weight: {w}` must be greater than 0"),
            "give every scenario a positive share, e.g. `weight: 1`",
        ))
    }
}

/// `load.iterations`: absent/null or >= 1.
pub(crate) fn iterations<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(PositiveInt {
        field: "iterations",
        meaning: "how many times each VU runs the steps",
        example: "5",
        optional: true,
    })
}

/// `target.max_turn_outputs`: >= 1.
pub(crate) fn max_turn_outputs<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    positive_usize(
        d,
        PositiveInt {
            field: "max_turn_outputs",
            meaning: "the most outputs one turn keeps before it fails as `turn_outputs_overflow`",
            example: "1000",
            optional: false,
        },
    )
}

/// `target.max_turn_output_bytes`: >= 1.
pub(crate) fn max_turn_output_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    positive_usize(
        d,
        PositiveInt {
            field: "max_turn_output_bytes",
            meaning: "the most bytes of output text one turn keeps before it fails as `turn_outputs_overflow`",
            example: "1048576",
            optional: false,
        },
    )
}

fn positive_usize<'de, D: Deserializer<'de>>(d: D, v: PositiveInt) -> Result<usize, D::Error> {
    let field = v.field;
    let n = d.deserialize_any(v)?.unwrap_or(1);
    usize::try_from(n).map_err(|_| {
        de_error(
            &format_args!("`{field}` is too large ({n})"),
            "use a bound that fits in memory",
        )
    })
}

/// `emulator:`: the settings, then every bound `serve --config` checks, so
/// `validate` reports them with their position instead of `run` failing later.
pub(crate) fn emulator<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::emulator_config::EmulatorConfig>, D::Error> {
    let config = Option::<crate::emulator_config::EmulatorConfig>::deserialize(d)?;
    if let Some(c) = &config {
        c.validate().map_err(|e| {
            de_error(
                &format_args!("emulator: {e}"),
                "fix this `emulator:` setting (README \"The emulator\" lists them and their bounds)",
            )
        })?;
    }
    Ok(config)
}

// --------------------------------------------------------------- durations

/// A duration string; `positive` rejects zero, `optional` accepts null.
struct DurationField {
    positive: bool,
    optional: bool,
}

impl<'de> Visitor<'de> for DurationField {
    type Value = Option<HumanDuration>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a duration such as `250ms` or `2m`")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let d: HumanDuration = v.parse().map_err(|e: crate::duration::DurationError| {
            de_error(
                &format_args!("invalid duration `{}`: {}", e.input, e.reason),
                DURATION_HINT,
            )
        })?;
        if self.positive && d.0.is_zero() {
            return Err(de_error(
                &format_args!("duration `{v}` must be greater than zero"),
                "use a positive duration, e.g. `30s`; leave the field out to use the default",
            ));
        }
        Ok(Some(d))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Err(no_unit(&v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(no_unit(&v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(no_unit(&v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.optional {
            Ok(None)
        } else {
            Err(de_error(&"a duration is missing here", DURATION_HINT))
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
}

fn no_unit<E: de::Error>(v: &dyn fmt::Display) -> E {
    de_error(&format_args!("duration `{v}` has no unit"), DURATION_HINT)
}

fn required<E: de::Error>(v: Option<HumanDuration>) -> Result<HumanDuration, E> {
    v.ok_or_else(|| de_error(&"a duration is missing here", DURATION_HINT))
}

/// Any duration, zero allowed (`ramp_up`, `grace`).
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
    required(d.deserialize_any(DurationField {
        positive: false,
        optional: false,
    })?)
}

/// A duration > 0 (`timeout`, `connect_timeout`).
pub(crate) fn positive_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<HumanDuration, D::Error> {
    required(d.deserialize_any(DurationField {
        positive: true,
        optional: false,
    })?)
}

/// Absent/null or a duration > 0 (`load.duration`).
pub(crate) fn opt_positive_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<HumanDuration>, D::Error> {
    d.deserialize_any(DurationField {
        positive: true,
        optional: true,
    })
}

// ------------------------------------------------------------------ target

/// `target.eio`: 3 or 4.
pub(crate) fn eio<'de, D: Deserializer<'de>>(d: D) -> Result<Eio, D::Error> {
    struct V;
    impl V {
        fn reject<E: de::Error>(found: &dyn fmt::Display) -> E {
            de_error(
                &format_args!("`eio` must be 3 or 4, found `{found}`"),
                "write `eio: 3` (Engine.IO 3, @cognigy/socket-client 4.x) or `eio: 4` (Engine.IO 4, client 5.x / Webchat v3)",
            )
        }
    }
    impl<'de> Visitor<'de> for V {
        type Value = Eio;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "3 or 4")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Eio, E> {
            match v {
                3 => Ok(Eio::V3),
                4 => Ok(Eio::V4),
                _ => Err(V::reject(&v)),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Eio, E> {
            match u64::try_from(v) {
                Ok(u) => self.visit_u64(u),
                Err(_) => Err(V::reject(&v)),
            }
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Eio, E> {
            Err(V::reject(&v))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Eio, E> {
            Err(V::reject(&v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Eio, E> {
            match v.trim().parse::<u64>() {
                Ok(u) => self.visit_u64(u),
                Err(_) => Err(V::reject(&v)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Eio, E> {
            Err(V::reject(&"null"))
        }
    }
    d.deserialize_any(V)
}

/// `target.url`: absent/null (embedded emulator) or an http(s)/ws(s) URL with a host.
pub(crate) fn url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Template>, D::Error> {
    let Some(t) = Option::<Template>::deserialize(d)? else {
        return Ok(None);
    };
    // Render with a sample context: `{{vu}}` in a path is fine, the scheme and host must be there.
    if t.uses_feeders() {
        return Err(feeder_once_per_run(&t));
    }
    let rendered = t.render(&TemplateCtx {
        vu: 1,
        iteration: 0,
        rows: None,
        captured: None,
    });
    check_url(&rendered).map_err(|problem| {
        de_error(
            &format_args!("`url` {problem} (`{}`)", t.source()),
            "write the Endpoint URL as copied from Cognigy, e.g. `https://endpoint.example.com/<URLToken>`; schemes http, https, ws, wss; leave `url` out to use the embedded emulator",
        )
    })?;
    Ok(Some(t))
}

/// `metrics.listen`: absent, a port (loopback) or an explicit `IP:PORT`.
pub(crate) fn metrics_listen<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let Some(v) = Option::<serde_json::Value>::deserialize(d)? else {
        return Ok(None);
    };
    let text = match &v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    crate::export::parse_listen(&text)
        .map(Some)
        .map_err(|problem| {
            de_error(
                &format_args!("`metrics.listen`: {problem}"),
                "e.g. `metrics: { listen: \"127.0.0.1:9464\" }`; `--metrics-listen` overrides it",
            )
        })
}

/// `metrics.remote_write`: absent or an http(s) URL.
pub(crate) fn remote_write_url<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let Some(url) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    crate::export::check_url(&url).map_err(|problem| {
        de_error(
            &format_args!("`metrics.remote_write`: {problem}"),
            "e.g. `metrics: { remote_write: \"http://prometheus:9090/api/v1/write\" }`",
        )
    })?;
    Ok(Some(url))
}

/// A template rendered once per run (URLs, tokens, credentials): feeder rows
/// exist only per VU iteration, so `{{feeder.column}}` cannot be used there.
pub(crate) fn run_constant<'de, D: Deserializer<'de>>(d: D) -> Result<Template, D::Error> {
    let t = Template::deserialize(d)?;
    if t.uses_feeders() {
        return Err(feeder_once_per_run(&t));
    }
    Ok(t)
}

fn feeder_once_per_run<E: de::Error>(t: &Template) -> E {
    de_error(
        &format_args!("`{}` uses a feeder, but this value is set once per run", t.source()),
        "feeder columns (`{{users.email}}`) work in per-VU values: `send` text/data/expect, `update_context` vars, `target.user_id`/`session_id`",
    )
}

fn check_url(u: &str) -> Result<(), &'static str> {
    let rest = ["https://", "http://", "wss://", "ws://"]
        .iter()
        .find_map(|scheme| {
            u.get(..scheme.len())
                .filter(|p| p.eq_ignore_ascii_case(scheme))
                .map(|p| &u[p.len()..])
        })
        .ok_or("must start with http://, https://, ws:// or wss://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host");
    }
    if u.chars().any(char::is_whitespace) {
        return Err("contains whitespace");
    }
    Ok(())
}

/// `what` and a hint in the form `de_error` packs them (for `try_from` checks).
pub(crate) fn message_with_hint(what: &str, hint: &str) -> String {
    super::error::de_error::<serde::de::value::Error>(&what, hint).to_string()
}

// ----------------------------------------------------------------- feeders

/// A feeder's `file`: non-empty; read (and checked) while the loader's first
/// pass runs, so a missing or malformed file is reported at this value.
pub(crate) fn feeder_file<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let file = String::deserialize(d)?;
    super::feeder::file_seen(&file).map_err(|e| de_error(&e, e.hint()))?;
    Ok(file)
}

impl<'de> Deserialize<'de> for FeederName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut chars = s.chars();
        let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(de_error(
                &format_args!("invalid feeder name `{s}`"),
                "name feeders with letters, digits, `_` and `-`, starting with a letter, e.g. `users`; templates use it as `{{users.email}}`",
            ));
        }
        if s == super::template::CAPTURED {
            return Err(de_error(
                &format_args!("a feeder cannot be named `{s}`"),
                "`{{captured.<name>}}` refers to values captured by earlier steps; give the feeder another name, e.g. `users`",
            ));
        }
        Ok(FeederName(s))
    }
}

// -------------------------------------------------------------------- misc

/// `name`: non-empty.
pub(crate) fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(de_error(
            &"`name` is empty",
            "give the scenario a short name, e.g. `name: smoke`; it labels reports",
        ));
    }
    Ok(s)
}

/// `steps`: non-empty, with at least one `send`.
pub(crate) fn steps<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Step>, D::Error> {
    let steps = super::capture::in_steps(|| Vec::<Step>::deserialize(d))?;
    if steps.is_empty() {
        return Err(de_error(
            &"`steps` is empty",
            "list what each VU does, e.g. `steps: [connect, { send: { text: \"hi\" } }, disconnect]`",
        ));
    }
    if !steps.iter().any(Step::is_measured) {
        return Err(de_error(
            &"`steps` has no `send`, `update_context` or `get_context` step, so nothing would be measured",
            "add a turn, e.g. `- send: { text: \"hello {{vu}}\" }`",
        ));
    }
    Ok(steps)
}

// ----------------------------------------------------------------- runtime

/// `runtime.heartbeat`: a positive duration, or `off` (no heartbeats).
pub(crate) fn heartbeat<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<HumanDuration>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<HumanDuration>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a heartbeat interval such as `25s`, or `off`")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim() == "off" {
                return Ok(None);
            }
            DurationField {
                positive: true,
                optional: false,
            }
            .visit_str(v)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            if v {
                Err(de_error(
                    &"`heartbeat: true` does not say how often",
                    "write an interval such as `heartbeat: 25s`, or `heartbeat: off`",
                ))
            } else {
                Ok(None)
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Err(no_unit(&v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(no_unit(&v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Err(no_unit(&v))
        }
    }
    d.deserialize_any(V)
}

/// `vars` / `context` of `update_context`: a map whose values are normalized
/// (see `protocol::runtime::normalize`) and whose strings are templates.
pub(crate) fn context_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<TemplateValue>, D::Error> {
    let value = crate::protocol::runtime::normalize::deserialize_normalized(d)?;
    if !value.is_object() {
        return Err(de_error(
            &"expected a map of variables",
            "write variables as a map, e.g. `vars: { cart: \"{{vu}}\", items: 3 }`",
        ));
    }
    TemplateValue::parse(value)
        .map(Some)
        .map_err(|(path, e)| de_error(&format_args!("{e} (in {path})"), e.hint()))
}

/// `parallel` of `update_context`: 1..=10 updates in flight at once.
pub(crate) fn parallel<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d).map_err(|_| {
        de_error(
            &"`parallel` must be a whole number from 1 to 10",
            "`parallel` is how many updates a VU sends at once (the runtime allows 10 in flight per session)",
        )
    })?;
    if !(1..=10).contains(&n) {
        return Err(de_error(
            &format_args!("`parallel: {n}` is outside 1..=10"),
            "the runtime allows at most 10 updates in flight per session",
        ));
    }
    Ok(n)
}

impl serde::Serialize for UpdateVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UpdateVersion::Auto => s.serialize_str("auto"),
            UpdateVersion::Fixed(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for UpdateVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const HINT: &str = "write `version: auto` (the VU tracks its session's version) or a number, e.g. `version: 0`";
        impl<'de> Visitor<'de> for V {
            type Value = UpdateVersion;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "`auto` or a version number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v.trim() {
                    "auto" => Ok(UpdateVersion::Auto),
                    other => Err(de_error(&format_args!("invalid version `{other}`"), HINT)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(UpdateVersion::Fixed(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(UpdateVersion::Fixed)
                    .map_err(|_| de_error(&format_args!("invalid version `{v}`"), HINT))
            }
        }
        d.deserialize_any(V)
    }
}

// ------------------------------------------------------------------- steps

/// Valid step names, in the order hints list them.
pub const STEP_NAMES: [&str; 6] = [
    "connect",
    "send",
    "think",
    "disconnect",
    "update_context",
    "get_context",
];

#[derive(Clone, Copy)]
enum StepName {
    Connect,
    Send,
    Think,
    Disconnect,
    UpdateContext,
    GetContext,
}

impl StepName {
    fn word(self) -> &'static str {
        match self {
            StepName::Connect => "connect",
            StepName::Send => "send",
            StepName::Think => "think",
            StepName::Disconnect => "disconnect",
            StepName::UpdateContext => "update_context",
            StepName::GetContext => "get_context",
        }
    }

    fn parse<E: de::Error>(s: &str) -> Result<StepName, E> {
        match s.trim() {
            "connect" => Ok(StepName::Connect),
            "send" => Ok(StepName::Send),
            "think" => Ok(StepName::Think),
            "disconnect" => Ok(StepName::Disconnect),
            "update_context" => Ok(StepName::UpdateContext),
            "get_context" => Ok(StepName::GetContext),
            other => Err(unknown_step(other)),
        }
    }
}

fn unknown_step<E: de::Error>(name: &str) -> E {
    let name = name.trim();
    let mut hint = choices_hint(name, &STEP_NAMES, "valid steps");
    if name.contains(char::is_whitespace) {
        hint.push_str("; a step's settings go after a colon (`- send:`) and are indented under it");
    }
    hint.push_str("; `if:` beside a step's name runs it only when a capture matched");
    de_error(&format_args!("unknown step `{name}`"), hint)
}

impl<'de> Deserialize<'de> for StepName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StepName::parse(&String::deserialize(d)?)
    }
}

fn not_a_step<E: de::Error>(found: &dyn fmt::Display) -> E {
    de_error(
        &format_args!("expected a step, found {found}"),
        "write one step per list item: `- connect`, `- send: { text: \"hi\" }`, `- think: 1s..3s` or `- disconnect`",
    )
}

const UPDATE_FORM: &str = "write `- update_context: { scope: session, vars: { cart: \"{{vu}}\" } }` (fields: name, scope, vars, context, version, expect, parallel)";

const SEND_FORM: &str = "write `- send: { text: \"hello {{vu}}\" }` (fields: name, text, data, reset_flow, timeout, expect, capture)";

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Step;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a step: `connect`, `disconnect`, `send: {{...}}` or `think: 1s`"
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Step, E> {
                match StepName::parse(v)? {
                    StepName::Connect => Ok(Step::Connect),
                    StepName::Disconnect => Ok(Step::Disconnect),
                    StepName::GetContext => Ok(Step::GetContext),
                    StepName::UpdateContext => Err(de_error(
                        &"step `update_context` needs settings",
                        UPDATE_FORM,
                    )),
                    StepName::Send => Err(de_error(&"step `send` needs settings", SEND_FORM)),
                    StepName::Think => Err(de_error(
                        &"step `think` needs a duration",
                        super::think::THINK_HINT,
                    )),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Step, E> {
                Err(not_a_step(&v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Step, E> {
                Err(not_a_step(&v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Step, E> {
                Err(not_a_step(&v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Step, E> {
                Err(not_a_step(&v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Step, E> {
                Err(not_a_step(&"nothing"))
            }
            fn visit_none<E: de::Error>(self) -> Result<Step, E> {
                Err(not_a_step(&"nothing"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Step, A::Error> {
                Err(not_a_step(&"a list"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                let mut when: Option<super::Condition> = None;
                let mut step: Option<Step> = None;
                while let Some(key) = map.next_key::<StepKey>()? {
                    let name = match key {
                        StepKey::If => {
                            if when.is_some() {
                                return Err(de_error(&"a step has two `if:`", IF_FORM));
                            }
                            when = Some(map.next_value()?);
                            continue;
                        }
                        StepKey::Step(_) | StepKey::Other(_) if step.is_some() => {
                            return Err(de_error(
                                &format_args!("a step has one name, but this one also has `{}`", key.word()),
                                "put each step in its own list item (`- ...`); a step's settings go inside its braces or are indented under it",
                            ));
                        }
                        StepKey::Other(other) => return Err(unknown_step(&other)),
                        StepKey::Step(name) => name,
                    };
                    step = Some(step_value(name, &mut map)?);
                }
                let Some(step) = step else {
                    return Err(match when {
                        Some(_) => de_error(&"`if:` has no step to run", IF_FORM),
                        None => de_error(&"empty step", "write a step name, e.g. `- connect`"),
                    });
                };
                if let Step::Send(send) = &step {
                    super::capture::declare(send.capture.keys());
                }
                Ok(match when {
                    Some(when) => Step::If(Box::new(super::model::Guarded { when, step })),
                    None => step,
                })
            }
        }
        d.deserialize_any(V)
    }
}

const IF_FORM: &str = "write the condition beside the step: `- if: { captured: order }` and, on the next line, `  send: { text: \"status of {{captured.order}}\" }` (`equals:` or `matches:` compare the value)";

/// A key of a step's map: `if`, a step name, or something else (kept for the error).
enum StepKey {
    If,
    Step(StepName),
    Other(String),
}

impl StepKey {
    fn word(&self) -> &str {
        match self {
            StepKey::If => "if",
            StepKey::Step(n) => n.word(),
            StepKey::Other(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for StepKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "if" {
            return Ok(StepKey::If);
        }
        Ok(StepName::parse::<D::Error>(&s).map_or(StepKey::Other(s), StepKey::Step))
    }
}

/// The value of a step's name key: its settings.
fn step_value<'de, A: MapAccess<'de>>(name: StepName, map: &mut A) -> Result<Step, A::Error> {
    Ok(match name {
        StepName::Send => match map.next_value::<Option<SendStep>>()? {
            Some(s) => Step::Send(s),
            None => return Err(de_error(&"step `send` needs settings", SEND_FORM)),
        },
        StepName::Think => Step::Think(map.next_value::<ThinkTime>()?),
        StepName::UpdateContext => match map.next_value::<Option<UpdateStep>>()? {
            Some(u) => Step::UpdateContext(check_update(u)?),
            None => {
                return Err(de_error(
                    &"step `update_context` needs settings",
                    UPDATE_FORM,
                ))
            }
        },
        StepName::Connect | StepName::Disconnect | StepName::GetContext => {
            if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                let word = name.word();
                return Err(de_error(
                    &format_args!("step `{word}` takes no settings"),
                    format_args!("write `- {word}` on its own"),
                ));
            }
            match name {
                StepName::Connect => Step::Connect,
                StepName::Disconnect => Step::Disconnect,
                _ => Step::GetContext,
            }
        }
    })
}

/// `update_context` has either `scope` + `vars` or `context`, not both.
fn check_update<E: de::Error>(u: UpdateStep) -> Result<UpdateStep, E> {
    match (&u.scope, &u.vars, &u.context) {
        (Some(_), Some(_), None) | (None, None, Some(_)) => Ok(u),
        (_, _, Some(_)) => Err(de_error(
            &"`update_context` has `context` and also `scope`/`vars`",
            "use either `scope` + `vars`, or `context: { session: {...}, user: {...} }`",
        )),
        (None, Some(_), None) => Err(de_error(
            &"`update_context` has `vars` but no `scope`",
            "add `scope: session` (or user, global)",
        )),
        (_, None, None) => Err(de_error(&"`update_context` has no variables", UPDATE_FORM)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_url_accepts_web_schemes_only() {
        for ok in [
            "http://127.0.0.1:8080",
            "https://endpoint.example.com/abc",
            "ws://h",
            "WSS://h/x?y",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "endpoint.example.com",
            "ftp://h",
            "http://",
            "http:///x",
            "https://h /x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
