//! The exported series: running totals that the collector updates once per
//! interval from what it drained ([`LiveSeries::add_interval`]) and turns into
//! metric families ([`LiveSeries::families`]) for the `/metrics` page and for
//! remote write. Names follow the Prometheus conventions: `finalping_` prefix,
//! base unit seconds (bytes for sizes), `_total` counters, histograms with
//! fixed buckets for chat latency (0.5 ms … 5 min).
//!
//! Labels: every series has `run_id` (and `segment="i/N"` for a segmented
//! run). Series without `scenario` are the run totals; `scenario="a"` are the
//! numbers of one scenario, `scenario="a",step="b"` of one named step (only
//! turns/updates counters and the tagged latency histograms). So
//! `sum by (run_id) (…{scenario=""})` adds up segments without counting
//! anything twice.

use crate::metrics::{Counter, Gauges, Metric, Snapshot, TagId, TAGGED};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// Upper bounds (`le`) of the latency buckets, in µs: 0.5 ms … 5 min.
pub const BUCKETS_US: [u64; 28] = [
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    75_000,
    100_000,
    150_000,
    200_000,
    300_000,
    400_000,
    500_000,
    750_000,
    1_000_000,
    1_500_000,
    2_000_000,
    3_000_000,
    5_000_000,
    7_500_000,
    10_000_000,
    15_000_000,
    20_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
    300_000_000,
];

/// A label: name and value.
pub type Label = (&'static str, String);

/// What kind of Prometheus metric a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One sample line: `<family><suffix>{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `_total` (counters), `_bucket`/`_sum`/`_count` (histograms) or empty.
    pub suffix: &'static str,
    pub labels: Vec<Label>,
    pub value: f64,
}

/// A metric family: its name (counters without `_total`), help, kind, samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    fn new(name: impl Into<String>, help: &'static str, kind: Kind) -> Family {
        Family {
            name: name.into(),
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Full sample names of this family (`finalping_turns_total`, `…_bucket`).
    pub fn sample_names(&self) -> Vec<String> {
        match self.kind {
            Kind::Counter => vec![format!("{}_total", self.name)],
            Kind::Gauge => vec![self.name.clone()],
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", self.name))
                .collect(),
        }
    }
}

/// How each counter is exported: family (without `_total`) and an optional
/// distinguishing label.
fn counter_series(c: Counter) -> (&'static str, Option<Label>) {
    let l = |name: &'static str, value: &str| Some((name, value.to_string()));
    use Counter as C;
    match c {
        C::TurnsSent => ("finalping_turns_sent", None),
        C::TurnsOk => ("finalping_turns", l("outcome", "ok")),
        C::TurnsTimeout => ("finalping_turns", l("outcome", "timeout")),
        C::TurnsError => ("finalping_turns", l("outcome", "error")),
        C::TurnsDisconnected => ("finalping_turns", l("outcome", "disconnected")),
        C::TurnsInterrupted => ("finalping_turns", l("outcome", "interrupted")),
        C::ExpectFailed => ("finalping_expect_failures", None),
        C::Outputs => ("finalping_outputs", None),
        C::AcksSent => ("finalping_acks_sent", None),
        C::ConnectsOk => ("finalping_connects", l("outcome", "ok")),
        C::ConnectErrors => ("finalping_connects", l("outcome", "error")),
        C::Disconnects => ("finalping_disconnects", None),
        C::Reconnects => ("finalping_reconnects", None),
        C::Abandoned => ("finalping_conversations_abandoned", None),
        C::UnknownEvents => ("finalping_unknown_events", None),
        C::UnsolicitedOutputs => ("finalping_unsolicited_outputs", None),
        C::Heartbeats => ("finalping_heartbeats", None),
        C::BytesSent => ("finalping_sent_bytes", l("socket", "chat")),
        C::BytesReceived => ("finalping_received_bytes", l("socket", "chat")),
        C::UpdatesSent => ("finalping_updates_sent", None),
        C::UpdatesOk => ("finalping_updates", l("outcome", "ok")),
        C::UpdatesRejected => ("finalping_updates", l("outcome", "rejected")),
        C::UpdatesInvalid => ("finalping_updates", l("outcome", "invalid")),
        C::UpdatesTimeout => ("finalping_updates", l("outcome", "timeout")),
        C::UpdatesDisconnected => ("finalping_updates", l("outcome", "disconnected")),
        C::UpdatesInterrupted => ("finalping_updates", l("outcome", "interrupted")),
        C::Conflicts => ("finalping_update_conflicts", None),
        C::ConflictRetries => ("finalping_update_conflict_retries", None),
        C::GetsOk => ("finalping_context_gets", l("outcome", "ok")),
        C::GetsFailed => ("finalping_context_gets", l("outcome", "failed")),
        C::RuntimeConnectsOk => ("finalping_runtime_connects", l("outcome", "ok")),
        C::RuntimeConnectErrors => ("finalping_runtime_connects", l("outcome", "error")),
        C::RuntimeReconnects => ("finalping_runtime_reconnects", None),
        C::TokenRefreshes => ("finalping_token_refreshes", None),
        C::RuntimeHeartbeats => ("finalping_runtime_heartbeats", None),
        C::ProtocolErrors => ("finalping_protocol_errors", None),
        C::RuntimeBytesSent => ("finalping_sent_bytes", l("socket", "runtime")),
        C::RuntimeBytesReceived => ("finalping_received_bytes", l("socket", "runtime")),
        C::AuditRecords => ("finalping_audit_records", None),
        C::Dropped => ("finalping_dropped", None),
        C::ContextStaleTurns => ("finalping_context_stale_turns", None),
    }
}

fn counter_help(family: &str) -> &'static str {
    match family {
        "finalping_turns_sent" => "Turns (processInput) sent.",
        "finalping_turns" => "Turns finished, by outcome.",
        "finalping_expect_failures" => "Turns whose replies missed the step's expectation.",
        "finalping_outputs" => "Bot outputs received.",
        "finalping_acks_sent" => "Socket.IO acknowledgements sent.",
        "finalping_connects" => "Socket.IO connects, by outcome.",
        "finalping_disconnects" => "Connections lost while idle or in a turn.",
        "finalping_reconnects" => "Socket.IO reconnects.",
        "finalping_conversations_abandoned" => "Conversations given up after failed reconnects.",
        "finalping_unknown_events" => "Events the client does not know.",
        "finalping_unsolicited_outputs" => "Outputs outside any turn.",
        "finalping_heartbeats" => "Engine.IO heartbeats answered.",
        "finalping_sent_bytes" => "Bytes written, by socket (chat, runtime).",
        "finalping_received_bytes" => "Bytes read, by socket (chat, runtime).",
        "finalping_updates_sent" => "Context updates sent.",
        "finalping_updates" => "Context updates finished, by outcome.",
        "finalping_update_conflicts" => "Context updates rejected for a version conflict.",
        "finalping_update_conflict_retries" => "Context updates retried after a conflict.",
        "finalping_context_gets" => "getContext requests, by outcome.",
        "finalping_runtime_connects" => "Runtime WebSocket connects, by outcome.",
        "finalping_runtime_reconnects" => "Runtime WebSocket reconnects.",
        "finalping_token_refreshes" => "OAuth token refreshes.",
        "finalping_runtime_heartbeats" => "Runtime heartbeats answered.",
        "finalping_protocol_errors" => "Frames that broke the runtime protocol.",
        "finalping_audit_records" => "Audit records written.",
        "finalping_dropped" => "Arrivals dropped (backlog full or still waiting at the end).",
        "finalping_context_stale_turns" => {
            "Turns after an acknowledged context update that still showed an older version."
        }
        _ => "finalping counter.",
    }
}

fn histogram_help(m: Metric) -> &'static str {
    match m {
        Metric::Connect => "WebSocket connect start to endpoint-ready, in seconds.",
        Metric::FirstOutput => "processInput written to the first output, in seconds.",
        Metric::FinalPing => "processInput written to finalPing (the turn), in seconds.",
        Metric::OutputGap => "Between consecutive outputs of one turn, in seconds.",
        Metric::ContextUpdate => "updateContext written to its reply, in seconds.",
        Metric::ContextGet => "getContext written to its reply, in seconds.",
        Metric::Heartbeat => "Runtime heartbeat sent to its answer, in seconds.",
        Metric::ContextVisible => {
            "Context update written to the first output showing it, in seconds."
        }
        Metric::RuntimeConnect => "Runtime WebSocket connect start to open, in seconds.",
        Metric::ScheduleLag => "Open executors: intended to actual conversation start, in seconds.",
        Metric::FinalPingIntended => "final_ping measured from the intended send, in seconds.",
        Metric::RestTurn => "REST Endpoint request written to response read, in seconds.",
    }
}

/// The families that hold turn/update counters per scenario and step.
const TAG_COUNTER_FAMILIES: [&str; 4] = [
    "finalping_turns_sent",
    "finalping_turns",
    "finalping_updates_sent",
    "finalping_updates",
];

/// Latency buckets of one series, non-cumulative, plus count and sum.
#[derive(Debug, Clone, Default)]
struct Buckets {
    /// Samples per bucket of [`BUCKETS_US`] (the +Inf rest is `count` minus their sum).
    counts: [u64; BUCKETS_US.len()],
    count: u64,
    sum_s: f64,
}

impl Buckets {
    /// Adds an interval's histogram. Each HDR bucket goes by its highest
    /// equivalent value, the value HDR reports as a percentile, so a reported
    /// percentile and Prometheus' estimate of it fall into the same bucket.
    fn add(&mut self, h: &Histogram<u64>) {
        for v in h.iter_recorded() {
            let at = BUCKETS_US.partition_point(|le| *le < v.value_iterated_to());
            if let Some(c) = self.counts.get_mut(at) {
                *c += v.count_at_value();
            }
        }
        self.count += h.len();
        self.sum_s += h.mean() * h.len() as f64 / 1e6;
    }

    fn samples(&self, labels: &[Label], out: &mut Vec<Sample>) {
        let mut cumulative = 0u64;
        let with_le = |le: String| {
            let mut l = labels.to_vec();
            l.push(("le", le));
            l
        };
        for (le, n) in BUCKETS_US.iter().zip(self.counts) {
            cumulative += n;
            out.push(Sample {
                suffix: "_bucket",
                labels: with_le(format_seconds(*le)),
                value: cumulative as f64,
            });
        }
        out.push(Sample {
            suffix: "_bucket",
            labels: with_le("+Inf".to_string()),
            value: self.count as f64,
        });
        out.push(Sample {
            suffix: "_sum",
            labels: labels.to_vec(),
            value: self.sum_s,
        });
        out.push(Sample {
            suffix: "_count",
            labels: labels.to_vec(),
            value: self.count as f64,
        });
    }
}

/// µs as seconds without float noise (`2500` → `0.0025`).
fn format_seconds(us: u64) -> String {
    let s = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Who the series belong to: the run, its segment, its tags.
#[derive(Debug, Clone)]
pub struct SeriesIdentity {
    pub run_id: String,
    /// `(index, count)` of `--segment i/N`; `None` for a whole run.
    pub segment: Option<(u32, u32)>,
    /// Labels by `TagId`: `scenario` and, for a named step, `step`.
    pub tags: Vec<Vec<Label>>,
    /// Wall-clock run start, seconds since the epoch.
    pub start_time_s: f64,
}

/// The running totals behind the exported series.
pub struct LiveSeries {
    id: SeriesIdentity,
    base: Vec<Label>,
    counters: [u64; Counter::ALL.len()],
    tag_counters: BTreeMap<TagId, [u64; Counter::ALL.len()]>,
    causes: BTreeMap<String, u64>,
    histograms: BTreeMap<Metric, Buckets>,
    tag_histograms: BTreeMap<(Metric, TagId), Buckets>,
    end: IntervalEnd,
    cpu_seconds: f64,
}

/// The moment an interval closed: generator gauges, open sockets, backlog.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntervalEnd {
    pub gauges: Gauges,
    /// Length of the interval and its end, in seconds from the run start.
    pub length_s: f64,
    pub end_s: f64,
    /// Arrivals waiting for a free VU.
    pub backlog: u64,
    pub chat_sockets: u64,
    pub runtime_sockets: u64,
    /// The run's last interval.
    pub last: bool,
}

impl LiveSeries {
    pub fn new(id: SeriesIdentity) -> LiveSeries {
        let mut base = vec![("run_id", id.run_id.clone())];
        if let Some((i, n)) = id.segment {
            base.push(("segment", format!("{i}/{n}")));
        }
        LiveSeries {
            id,
            base,
            counters: [0; Counter::ALL.len()],
            tag_counters: BTreeMap::new(),
            causes: BTreeMap::new(),
            histograms: BTreeMap::new(),
            tag_histograms: BTreeMap::new(),
            end: IntervalEnd::default(),
            cpu_seconds: 0.0,
        }
    }

    /// Adds one closed interval: its drained samples and counters, and the
    /// gauges at its end.
    pub fn add_interval(&mut self, drained: &Snapshot, end: &IntervalEnd) {
        for c in Counter::ALL {
            let v = &mut self.counters[c as usize];
            *v = v.saturating_add(drained.counter(c));
        }
        for (cause, n) in drained.causes() {
            *self.causes.entry(cause.clone()).or_default() += n;
        }
        for m in Metric::ALL {
            let h = drained.histogram(m);
            if !h.is_empty() {
                self.histograms.entry(m).or_default().add(h);
            }
        }
        for id in 0..self.id.tags.len() {
            let Some(data) = TagId::try_from(id)
                .ok()
                .and_then(|t| drained.tag(t).map(|d| (t, d)))
            else {
                continue;
            };
            let (tag, data) = data;
            let counters = self
                .tag_counters
                .entry(tag)
                .or_insert([0; Counter::ALL.len()]);
            for c in Counter::ALL {
                counters[c as usize] = counters[c as usize].saturating_add(data.counter(c));
            }
            for m in TAGGED {
                if let Some(h) = data.histogram(m).filter(|h| !h.is_empty()) {
                    self.tag_histograms.entry((m, tag)).or_default().add(h);
                }
            }
        }
        self.cpu_seconds += end.gauges.cpu_percent / 100.0 * end.length_s;
        self.end = *end;
    }

    /// The labels every series has: `run_id` and, when segmented, `segment`.
    pub fn run_labels(&self) -> &[Label] {
        &self.base
    }

    fn labels(&self, extra: &[Label]) -> Vec<Label> {
        let mut l = self.base.clone();
        l.extend_from_slice(extra);
        l
    }

    /// Every family with its current samples. Run-total counters are always
    /// present (zero until something happens); per-tag turn/update counters
    /// for every tag; failure causes and histograms once they have a sample.
    pub fn families(&self) -> Vec<Family> {
        let mut families: Vec<Family> = Vec::new();
        // Counters (run totals, then per tag).
        let mut counter_slots = Vec::new();
        for c in Counter::ALL {
            let (name, label) = counter_series(c);
            let i = family(&mut families, name, counter_help(name), Kind::Counter);
            counter_slots.push((i, c, label));
        }
        for (i, c, label) in &counter_slots {
            let labels = self.labels(label.as_slice());
            families[*i].samples.push(Sample {
                suffix: "_total",
                labels,
                value: self.counters[*c as usize] as f64,
            });
        }
        for (id, tag_labels) in self.id.tags.iter().enumerate() {
            let tagged = TagId::try_from(id)
                .ok()
                .and_then(|t| self.tag_counters.get(&t));
            for (i, c, label) in &counter_slots {
                if !TAG_COUNTER_FAMILIES.contains(&families[*i].name.as_str()) {
                    continue;
                }
                let mut labels = self.labels(tag_labels);
                labels.extend(label.iter().cloned());
                families[*i].samples.push(Sample {
                    suffix: "_total",
                    labels,
                    value: tagged.map_or(0, |t| t[*c as usize]) as f64,
                });
            }
        }
        let failures = family(
            &mut families,
            "finalping_failures",
            "Failures by cause (turn_timeout, connect_refused, …).",
            Kind::Counter,
        );
        for (cause, n) in &self.causes {
            let labels = self.labels(&[("cause", cause.clone())]);
            families[failures].samples.push(Sample {
                suffix: "_total",
                labels,
                value: *n as f64,
            });
        }
        // Latency histograms.
        for m in Metric::ALL {
            let total = self.histograms.get(&m);
            let tagged: Vec<_> = self
                .tag_histograms
                .iter()
                .filter(|((metric, _), _)| *metric == m)
                .collect();
            if total.is_none() && tagged.is_empty() {
                continue;
            }
            let name = format!("finalping_{}_seconds", m.name());
            let i = family(&mut families, &name, histogram_help(m), Kind::Histogram);
            if let Some(b) = total {
                b.samples(&self.labels(&[]), &mut families[i].samples);
            }
            for ((_, tag), b) in tagged {
                let tag_labels = self
                    .id
                    .tags
                    .get(usize::from(*tag))
                    .cloned()
                    .unwrap_or_default();
                b.samples(&self.labels(&tag_labels), &mut families[i].samples);
            }
        }
        // Gauges and generator health.
        let e = self.end;
        let g = e.gauges;
        let mut gauge = |name: &str, help, kind, value: f64, extra: &[Label]| {
            let i = family(&mut families, name, help, kind);
            let labels = self.labels(extra);
            families[i].samples.push(Sample {
                suffix: if kind == Kind::Counter { "_total" } else { "" },
                labels,
                value,
            });
        };
        gauge(
            "finalping_active_vus",
            "VUs running.",
            Kind::Gauge,
            g.active_vus as f64,
            &[],
        );
        gauge(
            "finalping_backlog_arrivals",
            "Arrivals waiting for a free VU (open executors).",
            Kind::Gauge,
            e.backlog as f64,
            &[],
        );
        for (socket, n) in [("chat", e.chat_sockets), ("runtime", e.runtime_sockets)] {
            gauge(
                "finalping_open_sockets",
                "Connections open now, by socket (chat: Socket.IO, runtime: runtime WebSocket).",
                Kind::Gauge,
                n as f64,
                &[("socket", socket.to_string())],
            );
        }
        gauge(
            "finalping_generator_cpu_seconds",
            "CPU time used by the load generator (embedded emulator excluded).",
            Kind::Counter,
            self.cpu_seconds,
            &[],
        );
        gauge(
            "finalping_generator_resident_memory_bytes",
            "Resident memory of the finalping process.",
            Kind::Gauge,
            g.rss_kib as f64 * 1024.0,
            &[],
        );
        gauge(
            "finalping_generator_scheduler_lag_p99_seconds",
            "p99 of the tokio scheduling lag probe in the last interval.",
            Kind::Gauge,
            g.scheduler_lag_p99_us as f64 / 1e6,
            &[],
        );
        gauge(
            "finalping_run_start_time_seconds",
            "When the run started, seconds since the Unix epoch.",
            Kind::Gauge,
            self.id.start_time_s,
            &[],
        );
        gauge(
            "finalping_run_elapsed_seconds",
            "Seconds since the run started, at the end of the last interval.",
            Kind::Gauge,
            e.end_s,
            &[],
        );
        gauge(
            "finalping_run_finished",
            "1 once the run's last interval is in (the counters are final).",
            Kind::Gauge,
            if e.last { 1.0 } else { 0.0 },
            &[],
        );
        gauge(
            "finalping_build_info",
            "The finalping version (value 1).",
            Kind::Gauge,
            1.0,
            &[("version", env!("CARGO_PKG_VERSION").to_string())],
        );
        families
    }
}

/// The index of family `name`, added (empty) if it is not there yet.
fn family(families: &mut Vec<Family>, name: &str, help: &'static str, kind: Kind) -> usize {
    match families.iter().position(|f| f.name == name) {
        Some(i) => i,
        None => {
            families.push(Family::new(name, help, kind));
            families.len() - 1
        }
    }
}

/// One scenario's tags: its own and those of its named steps.
#[derive(Debug, Clone)]
pub struct ScenarioTags {
    pub scenario: String,
    pub tag: TagId,
    /// `(tag, step name)` of each named step.
    pub steps: Vec<(TagId, String)>,
}

/// Labels by `TagId` (`scenario`, plus `step` for a named step).
pub fn tag_labels(tag_count: usize, scenarios: &[ScenarioTags]) -> Vec<Vec<Label>> {
    let mut labels = vec![Vec::new(); tag_count];
    for s in scenarios {
        if let Some(l) = labels.get_mut(usize::from(s.tag)) {
            *l = vec![("scenario", s.scenario.clone())];
        }
        for (step_tag, step) in &s.steps {
            if let Some(l) = labels.get_mut(usize::from(*step_tag)) {
                *l = vec![("scenario", s.scenario.clone()), ("step", step.clone())];
            }
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn identity() -> SeriesIdentity {
        SeriesIdentity {
            run_id: "r1".into(),
            segment: Some((1, 4)),
            tags: vec![
                vec![("scenario", "s".into())],
                vec![("scenario", "s".into()), ("step", "pay".into())],
            ],
            start_time_s: 1.5,
        }
    }

    fn find<'a>(f: &'a [Family], name: &str) -> &'a Family {
        f.iter()
            .find(|x| x.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    }

    fn value(f: &Family, suffix: &str, labels: &[(&str, &str)]) -> f64 {
        f.samples
            .iter()
            .find(|s| {
                s.suffix == suffix
                    && s.labels.len() == 2 + labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .unwrap_or_else(|| panic!("{} {suffix} {labels:?}: {:?}", f.name, f.samples))
            .value
    }

    #[test]
    fn every_counter_is_exported_once() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Counter::ALL {
            let (name, label) = counter_series(c);
            assert!(seen.insert((name, label.clone())), "{name} {label:?} twice");
            assert_ne!(
                counter_help(name),
                "finalping counter.",
                "{name} has no help"
            );
        }
    }

    #[test]
    fn intervals_add_up_with_run_segment_and_tag_labels() {
        let mut s = LiveSeries::new(identity());
        for ms in [1u64, 3, 40] {
            let mut snap = Snapshot::new();
            snap.record_tagged(Metric::FinalPing, &[0, 1], Duration::from_millis(ms));
            snap.add_tagged(Counter::TurnsOk, &[0, 1], 1);
            snap.add(Counter::TurnsTimeout, 2);
            snap.add_cause("turn_timeout", 2);
            let gauges = Gauges {
                active_vus: 3,
                cpu_percent: 50.0,
                rss_kib: 2,
                scheduler_lag_p99_us: 1500,
            };
            let end = IntervalEnd {
                gauges,
                length_s: 2.0,
                end_s: 6.0,
                backlog: 4,
                chat_sockets: 5,
                runtime_sockets: 0,
                last: ms == 40,
            };
            s.add_interval(&snap, &end);
        }
        let f = s.families();
        let turns = find(&f, "finalping_turns");
        assert_eq!(value(turns, "_total", &[("outcome", "ok")]), 3.0);
        assert_eq!(value(turns, "_total", &[("outcome", "timeout")]), 6.0);
        assert_eq!(
            value(
                turns,
                "_total",
                &[("scenario", "s"), ("step", "pay"), ("outcome", "ok")]
            ),
            3.0
        );
        assert!(turns.samples[0].labels.contains(&("segment", "1/4".into())));
        assert_eq!(
            value(
                find(&f, "finalping_failures"),
                "_total",
                &[("cause", "turn_timeout")]
            ),
            6.0
        );
        let fp = find(&f, "finalping_final_ping_seconds");
        assert_eq!(value(fp, "_bucket", &[("le", "0.001")]), 1.0);
        assert_eq!(value(fp, "_bucket", &[("le", "0.005")]), 2.0);
        assert_eq!(value(fp, "_bucket", &[("le", "0.05")]), 3.0);
        assert_eq!(value(fp, "_bucket", &[("le", "+Inf")]), 3.0);
        assert_eq!(value(fp, "_count", &[("scenario", "s")]), 3.0);
        assert!((value(fp, "_sum", &[]) - 0.044).abs() < 0.001);
        assert!(f.iter().all(|x| x.name != "finalping_connect_seconds"));
        assert_eq!(value(find(&f, "finalping_active_vus"), "", &[]), 3.0);
        assert_eq!(value(find(&f, "finalping_backlog_arrivals"), "", &[]), 4.0);
        let sockets = find(&f, "finalping_open_sockets");
        assert_eq!(value(sockets, "", &[("socket", "chat")]), 5.0);
        assert_eq!(
            value(find(&f, "finalping_generator_cpu_seconds"), "_total", &[]),
            3.0
        );
        assert_eq!(value(find(&f, "finalping_run_finished"), "", &[]), 1.0);
        let lag = value(
            find(&f, "finalping_generator_scheduler_lag_p99_seconds"),
            "",
            &[],
        );
        assert!((lag - 0.0015).abs() < 1e-12);
    }

    /// A reported percentile (HDR, highest equivalent value) and the bucket
    /// Prometheus finds for it agree, also right at a bucket bound.
    #[test]
    fn hdr_percentiles_fall_into_the_bucket_prometheus_picks() {
        let mut h = crate::metrics::new_histogram();
        for us in [4_990u64, 5_000, 5_001, 5_003, 5_004, 9_999, 10_000, 10_007] {
            h.record(us).unwrap();
        }
        let mut b = Buckets::default();
        b.add(&h);
        for q in [0.1, 0.25, 0.5, 0.6, 0.75, 0.99] {
            let hdr = h.value_at_quantile(q);
            let rank = q * b.count as f64;
            let mut cumulative = 0;
            let bucket = b
                .counts
                .iter()
                .position(|n| {
                    cumulative += n;
                    cumulative as f64 >= rank
                })
                .unwrap();
            let upper = BUCKETS_US[bucket];
            let lower = if bucket == 0 {
                0
            } else {
                BUCKETS_US[bucket - 1]
            };
            assert!(
                hdr > lower && hdr <= upper,
                "q{q}: {hdr} µs not in ({lower}, {upper}]"
            );
        }
        assert_eq!(format_seconds(2_500), "0.0025");
        assert_eq!(format_seconds(120_000_000), "120");
        assert_eq!(format_seconds(500), "0.0005");
    }
}
