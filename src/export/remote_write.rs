//! Prometheus remote write 1.0: the exported series pushed once per interval
//! as a snappy-compressed protobuf `WriteRequest` (the few fields it needs
//! are encoded by hand; see `encode`). The collector only queues a batch (a
//! shared list of families and a timestamp); a separate task encodes and
//! POSTs it, retrying failures with back-off. The queue is bounded: when the
//! receiver is slow or down, the oldest batch is dropped and counted, so the
//! load is never slowed and memory stays bounded.

use super::series::Family;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// Batches (intervals) kept while the receiver is slow; older ones are dropped.
pub const QUEUE_BATCHES: usize = 120;
/// Tries per batch (first send included) before it is given up.
const ATTEMPTS: u32 = 5;
/// First back-off; doubled after each failed try.
const BACKOFF: Duration = Duration::from_millis(250);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One push: the series as they were at the end of an interval.
pub struct Batch {
    pub families: Arc<Vec<Family>>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// What the push task did (read at the end and exported as metrics).
#[derive(Debug, Default)]
pub struct PushStats {
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
}

#[derive(Default)]
struct Queue {
    batches: Mutex<(VecDeque<Batch>, bool)>,
    ready: Notify,
}

/// The push task: started before the run, finished (flushed) after it.
pub struct RemoteWrite {
    queue: Arc<Queue>,
    pub stats: Arc<PushStats>,
    task: tokio::task::JoinHandle<()>,
}

/// The collector's side: queues batches without ever waiting.
#[derive(Clone)]
pub struct Pusher {
    queue: Arc<Queue>,
    pub stats: Arc<PushStats>,
}

impl Pusher {
    /// Queues a batch; drops the oldest one (and counts it) when the queue is full.
    pub fn push(&self, batch: Batch) {
        {
            let mut q = self.queue.lock();
            if q.0.len() >= QUEUE_BATCHES {
                q.0.pop_front();
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.0.push_back(batch);
        }
        self.queue.ready.notify_one();
    }
}

impl RemoteWrite {
    /// Starts the push task for `url` (checked with [`check_url`]).
    pub fn start(url: reqwest::Url) -> Result<RemoteWrite, String> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("finalping/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("--prometheus-remote-write: cannot build the HTTP client: {e}"))?;
        let queue = Arc::new(Queue::default());
        let stats = Arc::new(PushStats::default());
        let task = tokio::spawn(push_loop(client, url, queue.clone(), stats.clone()));
        Ok(RemoteWrite { queue, stats, task })
    }

    /// The handle the collector queues batches with.
    pub fn pusher(&self) -> Pusher {
        Pusher {
            queue: self.queue.clone(),
            stats: self.stats.clone(),
        }
    }

    /// Lets the task send what is queued, for at most `limit`; what is left
    /// then is counted as dropped.
    pub async fn finish(self, limit: Duration) -> Arc<PushStats> {
        self.queue.lock().1 = true;
        self.queue.ready.notify_one();
        let mut task = self.task;
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            task.abort();
            let left = self.queue.lock().0.len() as u64;
            self.stats.dropped.fetch_add(left, Ordering::Relaxed);
        }
        self.stats
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Batch>, bool)> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The remote write URL, or why it is not one.
pub fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        format!("--prometheus-remote-write `{url}` is not a URL ({e}); e.g. http://127.0.0.1:9090/api/v1/write")
    })?;
    if !["http", "https"].contains(&parsed.scheme()) || parsed.host().is_none() {
        return Err(format!(
            "--prometheus-remote-write `{url}` must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:9090/api/v1/write"
        ));
    }
    Ok(parsed)
}

async fn push_loop(
    client: reqwest::Client,
    url: reqwest::Url,
    queue: Arc<Queue>,
    stats: Arc<PushStats>,
) {
    let mut warned = false;
    loop {
        let next = {
            let mut q = queue.lock();
            match q.0.pop_front() {
                Some(b) => Some(b),
                None if q.1 => return,
                None => None,
            }
        };
        let Some(batch) = next else {
            queue.ready.notified().await;
            continue;
        };
        let body = match snap::raw::Encoder::new().compress_vec(&encode(&batch)) {
            Ok(b) => b,
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("remote write: cannot compress a batch: {e}");
                continue;
            }
        };
        match send(&client, &url, body, &stats).await {
            Ok(()) => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                if !warned {
                    warned = true;
                    eprintln!("warning: remote write to {url} failed: {why} (later failures are only counted)");
                }
            }
        }
    }
}

/// POSTs one batch; retries network errors, 5xx and 429 with back-off.
async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: Vec<u8>,
    stats: &PushStats,
) -> Result<(), String> {
    let mut backoff = BACKOFF;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        let reply = client
            .post(url.clone())
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.clone())
            .send()
            .await;
        match reply {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                last = format!("HTTP {status}: {}", text.trim());
                if !(status.is_server_error() || status.as_u16() == 429) {
                    return Err(last);
                }
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("{last} (after {ATTEMPTS} tries)"))
}

/// The protobuf `WriteRequest` of a batch: one `TimeSeries` (labels sorted,
/// `__name__` included, one sample) per exported sample.
///
/// ```text
/// WriteRequest { repeated TimeSeries timeseries = 1; }
/// TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
/// Label        { string name = 1; string value = 2; }
/// Sample       { double value = 1; int64 timestamp = 2; }
/// ```
pub fn encode(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut series = Vec::new();
    let mut label = Vec::new();
    for f in batch.families.iter() {
        for s in &f.samples {
            let name = format!("{}{}", f.name, s.suffix);
            let mut labels: Vec<(&str, &str)> = vec![("__name__", &name)];
            labels.extend(s.labels.iter().map(|(k, v)| (*k, v.as_str())));
            labels.sort_unstable();
            series.clear();
            for (k, v) in labels {
                label.clear();
                bytes_field(&mut label, 1, k.as_bytes());
                bytes_field(&mut label, 2, v.as_bytes());
                bytes_field(&mut series, 1, &label);
            }
            let mut sample = Vec::with_capacity(20);
            sample.push(0x09); // field 1, 64-bit
            sample.extend_from_slice(&s.value.to_le_bytes());
            sample.push(0x10); // field 2, varint
            varint(&mut sample, batch.timestamp_ms as u64);
            bytes_field(&mut series, 2, &sample);
            bytes_field(&mut out, 1, &series);
        }
    }
    out
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::super::series::{Kind, Sample};
    use super::*;

    #[test]
    fn encodes_a_write_request_by_the_protobuf_rules() {
        let batch = Batch {
            families: Arc::new(vec![Family {
                name: "m".into(),
                help: "",
                kind: Kind::Counter,
                samples: vec![Sample {
                    suffix: "_total",
                    labels: vec![("b", "x".into()), ("a", "y".into())],
                    value: 1.0,
                }],
            }]),
            timestamp_ms: 300,
        };
        let label = |k: &str, v: &str| {
            let mut l = vec![0x0a, k.len() as u8];
            l.extend_from_slice(k.as_bytes());
            l.extend_from_slice(&[0x12, v.len() as u8]);
            l.extend_from_slice(v.as_bytes());
            let mut f = vec![0x0a, l.len() as u8];
            f.extend(l);
            f
        };
        let mut series = Vec::new();
        series.extend(label("__name__", "m_total"));
        series.extend(label("a", "y"));
        series.extend(label("b", "x"));
        let mut sample = vec![0x09];
        sample.extend_from_slice(&1.0f64.to_le_bytes());
        sample.extend_from_slice(&[0x10, 0xac, 0x02]); // 300
        series.extend_from_slice(&[0x12, sample.len() as u8]);
        series.extend(sample);
        let mut want = vec![0x0a, series.len() as u8];
        want.extend(series);
        assert_eq!(encode(&batch), want);
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("http://127.0.0.1:9090/api/v1/write").is_ok());
        assert!(check_url("ftp://x/y").unwrap_err().contains("http://"));
        assert!(check_url("127.0.0.1:9090").is_err());
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_batch_and_counts_it() {
        // Port 9 (discard) on loopback: nothing listens, every send fails fast.
        let rw = RemoteWrite::start(check_url("http://127.0.0.1:9/").unwrap()).unwrap();
        let pusher = rw.pusher();
        for i in 0..(QUEUE_BATCHES as i64 + 30) {
            pusher.push(Batch {
                families: Arc::new(Vec::new()),
                timestamp_ms: i,
            });
        }
        let stats = rw.finish(Duration::from_millis(50)).await;
        let dropped = stats.dropped.load(Ordering::Relaxed);
        let failed = stats.failed.load(Ordering::Relaxed);
        assert!(dropped >= 30, "dropped {dropped}");
        assert_eq!(stats.sent.load(Ordering::Relaxed), 0);
        assert!(dropped + failed <= QUEUE_BATCHES as u64 + 30 + 1);
    }
}
