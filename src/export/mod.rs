//! Live metrics while a run runs: a `/metrics` endpoint in the Prometheus /
//! OpenMetrics text format (`--metrics-listen`) and Prometheus remote write
//! (`--prometheus-remote-write`). Both show the same series ([`series`]),
//! built by an [`IntervalSink`] from what the collector drains once per
//! interval, so exporting costs a little per interval and nothing per turn:
//! VUs never see it. This module does not measure anything itself and does
//! not write report files.
//!
//! Life cycle (see `commands::run`): [`LiveMetrics::start`] before the load
//! (a bad address fails the run before it starts), [`LiveMetrics::sink`]
//! handed to the engine, [`LiveMetrics::finish`] after the reports: flush the
//! remote-write queue, then keep `/metrics` up for the linger so the last
//! scrape sees the final values (Ctrl-C ends the linger).

mod remote_write;
mod series;
mod server;
mod text;

pub use remote_write::{check_url, encode, Batch, PushStats, QUEUE_BATCHES};
pub use series::{
    tag_labels, Family, IntervalEnd, Kind, Label, LiveSeries, Sample, ScenarioTags, SeriesIdentity,
    BUCKETS_US,
};
pub use server::{parse_listen, Exposition, MetricsServer};
pub use text::{render, Format, OPENMETRICS_TEXT, PROMETHEUS_TEXT};

use crate::engine::{ClosedInterval, IntervalSink, Plan};
use remote_write::{Pusher, RemoteWrite};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// How long the remote-write queue may take to drain after the run.
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Where the live metrics go.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    pub listen: Option<SocketAddr>,
    pub linger: Duration,
    pub remote_write: Option<reqwest::Url>,
}

impl LiveOptions {
    pub fn is_on(&self) -> bool {
        self.listen.is_some() || self.remote_write.is_some()
    }
}

/// The running exporters of one run.
pub struct LiveMetrics {
    exposition: Arc<Exposition>,
    server: Option<MetricsServer>,
    remote: Option<RemoteWrite>,
    linger: Duration,
}

impl LiveMetrics {
    /// Binds the `/metrics` listener and starts the remote-write task.
    pub async fn start(options: &LiveOptions) -> Result<LiveMetrics, String> {
        let exposition = Arc::new(Exposition::default());
        let server = match options.listen {
            Some(addr) => Some(MetricsServer::start(addr, exposition.clone()).await?),
            None => None,
        };
        let remote = match &options.remote_write {
            Some(url) => Some(RemoteWrite::start(url.clone())?),
            None => None,
        };
        Ok(LiveMetrics {
            exposition,
            server,
            remote,
            linger: options.linger,
        })
    }

    /// The `/metrics` URL, when serving.
    pub fn url(&self) -> Option<String> {
        self.server.as_ref().map(MetricsServer::url)
    }

    /// The collector's sink; publishes the (all-zero) series at once so the
    /// first scrape already finds them.
    pub fn sink(&self, identity: SeriesIdentity) -> Box<dyn IntervalSink> {
        let sink = ExportSink {
            series: LiveSeries::new(identity),
            exposition: self.exposition.clone(),
            pusher: self.remote.as_ref().map(RemoteWrite::pusher),
        };
        sink.publish();
        Box::new(sink)
    }

    /// After the run: sends what the remote-write queue still holds (bounded),
    /// then serves the final values for the linger or until `interrupt`
    /// fires (if it had not already).
    pub async fn finish(self, interrupt: &CancellationToken) {
        if let Some(remote) = self.remote {
            let stats = remote.finish(FLUSH_LIMIT).await;
            let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            eprintln!(
                "remote write: {} pushes sent, {} failed, {} dropped (queue full or not sent in time), {} retries",
                n(&stats.sent),
                n(&stats.failed),
                n(&stats.dropped),
                n(&stats.retries)
            );
        }
        let Some(server) = self.server else {
            return;
        };
        if !self.linger.is_zero() {
            eprintln!(
                "metrics: serving the final values on {} for {} more (Ctrl-C ends this)",
                server.url(),
                crate::duration::HumanDuration(self.linger)
            );
            let interrupted = async {
                if interrupt.is_cancelled() {
                    std::future::pending::<()>().await;
                }
                interrupt.cancelled().await;
            };
            tokio::select! {
                _ = tokio::time::sleep(self.linger) => {}
                _ = interrupted => {}
            }
        }
        server.stop().await;
    }
}

/// Identity of a run's series: run id, segment and the labels of its tags.
pub fn identity(plan: &Plan, run_id: &str, segment: Option<(u32, u32)>) -> SeriesIdentity {
    let groups: Vec<_> = plan
        .groups
        .iter()
        .map(|g| {
            let prefix = format!("scenario={},step=", g.name);
            let steps = g
                .step_tags
                .iter()
                .flatten()
                .filter_map(|t| {
                    let name = plan.tags.get(usize::from(*t))?.strip_prefix(&prefix)?;
                    Some((*t, name.to_string()))
                })
                .collect();
            ScenarioTags {
                scenario: g.name.clone(),
                tag: g.tag,
                steps,
            }
        })
        .collect();
    SeriesIdentity {
        run_id: run_id.to_string(),
        segment,
        tags: tag_labels(plan.tags.len(), &groups),
        start_time_s: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    }
}

/// Updates the series once per interval, publishes them and queues a push.
struct ExportSink {
    series: LiveSeries,
    exposition: Arc<Exposition>,
    pusher: Option<Pusher>,
}

impl ExportSink {
    fn publish(&self) -> Arc<Vec<Family>> {
        let mut families = self.series.families();
        if let Some(p) = &self.pusher {
            families.extend(push_families(&p.stats, self.series.run_labels()));
        }
        let families = Arc::new(families);
        self.exposition.publish(families.clone());
        families
    }
}

impl IntervalSink for ExportSink {
    fn interval(&mut self, closed: &ClosedInterval<'_>) {
        let Some(interval) = closed.timeline.intervals().last() else {
            return;
        };
        self.series.add_interval(
            closed.drained,
            &IntervalEnd {
                gauges: interval.gauges(),
                length_s: interval.length().as_secs_f64(),
                end_s: interval.end().as_secs_f64(),
                backlog: closed.backlog,
                chat_sockets: closed.chat_sockets,
                runtime_sockets: closed.runtime_sockets,
                last: closed.last,
            },
        );
        let families = self.publish();
        if let Some(p) = &self.pusher {
            let timestamp_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            p.push(Batch {
                families,
                timestamp_ms,
            });
        }
    }
}

/// The remote-write task's own counters, with the run's labels.
fn push_families(stats: &PushStats, labels: &[Label]) -> Vec<Family> {
    let sample = |outcome: Option<&str>, count: &std::sync::atomic::AtomicU64| {
        let mut l = labels.to_vec();
        l.extend(outcome.map(|o| ("outcome", o.to_string())));
        Sample {
            suffix: "_total",
            labels: l,
            value: count.load(Ordering::Relaxed) as f64,
        }
    };
    vec![
        Family {
            name: "finalping_remote_write_pushes".to_string(),
            help: "Remote-write pushes, by outcome (sent, failed, dropped).",
            kind: Kind::Counter,
            samples: vec![
                sample(Some("sent"), &stats.sent),
                sample(Some("failed"), &stats.failed),
                sample(Some("dropped"), &stats.dropped),
            ],
        },
        Family {
            name: "finalping_remote_write_retries".to_string(),
            help: "Remote-write requests retried.",
            kind: Kind::Counter,
            samples: vec![sample(None, &stats.retries)],
        },
    ]
}
