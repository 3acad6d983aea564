//! The optional audit webhook: its scenario block (`webhook: {url: …}`), URL
//! validation and redaction, and the small pool of workers that POST each
//! record from a bounded queue with one shared `reqwest` client. Failures are
//! counted, never fatal, and never slow the load.

use super::stats::Counters;
use crate::duration::HumanDuration;
use crate::secret::scrub;
use reqwest::Url;
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;

/// Upper bound for `workers`: a few are enough, many would be a load of its own.
pub const MAX_WORKERS: usize = 64;

/// `webhook:` in a scenario. Only `url` is required.
///
/// ```yaml
/// webhook:
///   url: https://audit.example.com/hook?token=${env:AUDIT_TOKEN}
///   timeout: 5s    # per POST, connect included
///   queue: 10000   # records waiting for a worker; beyond it they are dropped (and counted)
///   workers: 4     # concurrent POSTs
///   drain: 5s      # at the end of the run, time left to empty the queue
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://`. May carry credentials; it is never shown
    /// unredacted (see [`WebhookConfig::redacted_url`]). `${env:NAME}` is resolved
    /// when the scenario is loaded.
    #[serde(deserialize_with = "env_resolved")]
    pub url: String,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_queue")]
    pub queue: usize,
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default = "default_drain")]
    pub drain: HumanDuration,
}

/// A string with `${env:NAME}` references resolved (a missing variable is an error).
fn env_resolved<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let t = crate::scenario::Template::deserialize(d)?;
    Ok(t.render(&crate::scenario::TemplateCtx::default()))
}

/// Serialised (into manifests) with the URL redacted.
impl serde::Serialize for WebhookConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("WebhookConfig", 5)?;
        st.serialize_field("url", &self.redacted_url())?;
        st.serialize_field("timeout", &self.timeout)?;
        st.serialize_field("queue", &self.queue)?;
        st.serialize_field("workers", &self.workers)?;
        st.serialize_field("drain", &self.drain)?;
        st.end()
    }
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_queue() -> usize {
    10_000
}
fn default_workers() -> usize {
    4
}
fn default_drain() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// Why a webhook block is unusable. Messages never contain the URL unredacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("webhook.url is not a valid URL ({reason}); write e.g. `https://host:8080/audit`")]
    Url { reason: String },
    #[error("webhook.url `{shown}` has scheme `{scheme}`; only http and https are supported")]
    Scheme { shown: String, scheme: String },
    #[error("webhook.{field} must be at least 1")]
    Zero { field: &'static str },
    #[error("webhook.workers is {value}; at most {MAX_WORKERS} are allowed")]
    TooManyWorkers { value: usize },
    #[error("webhook.timeout must be greater than 0 (e.g. `5s`)")]
    ZeroTimeout,
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
}

impl WebhookConfig {
    /// A config with the defaults (5 s timeout, queue 10 000, 4 workers, 5 s drain).
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            timeout: default_timeout(),
            queue: default_queue(),
            workers: default_workers(),
            drain: default_drain(),
        }
    }

    /// Checks every field; returns the parsed URL.
    pub fn validate(&self) -> Result<Url, WebhookConfigError> {
        let url = Url::parse(self.url.trim()).map_err(|e| WebhookConfigError::Url {
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookConfigError::Scheme {
                shown: redact_url(&url),
                scheme: url.scheme().to_string(),
            });
        }
        if self.queue == 0 {
            return Err(WebhookConfigError::Zero { field: "queue" });
        }
        if self.workers == 0 {
            return Err(WebhookConfigError::Zero { field: "workers" });
        }
        if self.workers > MAX_WORKERS {
            return Err(WebhookConfigError::TooManyWorkers {
                value: self.workers,
            });
        }
        if self.timeout.0.is_zero() {
            return Err(WebhookConfigError::ZeroTimeout);
        }
        Ok(url)
    }

    /// The URL as it may be shown in logs and reports: user info, query
    /// values and long path segments redacted, fragment removed.
    pub fn redacted_url(&self) -> String {
        match Url::parse(self.url.trim()) {
            Ok(url) => redact_url(&url),
            Err(_) => format!("(invalid URL, {} chars)", self.url.chars().count()),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.redacted_url())
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .field("workers", &self.workers)
            .field("drain", &self.drain)
            .finish()
    }
}

/// See [`WebhookConfig::redacted_url`]: the one rule of [`crate::secret::scrub_url`].
pub fn redact_url(url: &Url) -> String {
    crate::secret::scrub_url(url.as_str())
}

/// Every part of the URL that [`redact_url`] hides, to scrub from messages.
fn url_secrets(url: &Url) -> Vec<String> {
    let mut secrets: Vec<String> = url.query_pairs().map(|(_, v)| v.into_owned()).collect();
    secrets.extend(
        url.path()
            .split('/')
            .filter(|s| crate::secret::looks_like_token(s))
            .map(str::to_string),
    );
    if !url.username().is_empty() {
        secrets.push(url.username().to_string());
    }
    if let Some(p) = url.password() {
        secrets.push(p.to_string());
    }
    if let Some(q) = url.query() {
        secrets.push(q.to_string());
    }
    secrets
}

/// What the workers share.
struct Shared {
    client: reqwest::Client,
    url: Url,
    shown: String,
    secrets: Vec<String>,
    counters: Arc<Counters>,
    warned: AtomicBool,
}

impl Shared {
    fn failed(&self, why: String) {
        Counters::add(&self.counters.failed, 1);
        let refs: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let why = scrub(&why, &refs);
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "audit webhook {} failed: {why} (further failures are counted, logged at debug level)",
                self.shown
            );
        } else {
            tracing::debug!("audit webhook {} failed: {why}", self.shown);
        }
    }
}

/// Starts `cfg.workers` workers on `rt`, pulling JSON bodies from `rx`. They
/// end when the queue's sender is dropped and the queue is empty.
pub(crate) fn spawn_workers(
    cfg: &WebhookConfig,
    url: Url,
    rx: mpsc::Receiver<Vec<u8>>,
    counters: Arc<Counters>,
    rt: &tokio::runtime::Handle,
) -> Result<JoinSet<()>, WebhookConfigError> {
    let timeout = cfg.timeout.as_duration();
    let client = crate::tls::http_client_builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect would send audit data to another place; count it as failed.
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(cfg.workers)
        .build()
        .map_err(|e| WebhookConfigError::Client(e.without_url().to_string()))?;
    let shared = Arc::new(Shared {
        client,
        shown: redact_url(&url),
        secrets: url_secrets(&url),
        url,
        counters,
        warned: AtomicBool::new(false),
    });
    let rx = Arc::new(Mutex::new(rx));
    let mut set = JoinSet::new();
    for _ in 0..cfg.workers {
        set.spawn_on(worker(shared.clone(), rx.clone()), rt);
    }
    Ok(set)
}

async fn worker(shared: Arc<Shared>, rx: Arc<Mutex<mpsc::Receiver<Vec<u8>>>>) {
    loop {
        // The lock is held only while waiting for the next body, never
        // during a POST, so the workers post concurrently.
        let next = { rx.lock().await.recv().await };
        let Some(body) = next else { return };
        match post(&shared, body).await {
            Ok(()) => Counters::add(&shared.counters.sent, 1),
            Err(why) => shared.failed(why),
        }
    }
}

/// One POST, bounded by the client's timeout.
async fn post(shared: &Shared, body: Vec<u8>) -> Result<(), String> {
    let resp = shared
        .client
        .post(shared.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = resp.status();
    // Read the (small) answer so the connection can be reused.
    let _ = resp.bytes().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else {
        "request error"
    };
    let mut msg = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_block_gets_defaults_and_rejects_unknown_fields() {
        let cfg: WebhookConfig = serde_saphyr::from_str("url: http://127.0.0.1:9/hook\n").unwrap();
        assert_eq!(cfg, WebhookConfig::new("http://127.0.0.1:9/hook"));
        assert_eq!(cfg.timeout.0, Duration::from_secs(5));
        assert_eq!((cfg.queue, cfg.workers), (10_000, 4));
        assert_eq!(cfg.drain.0, Duration::from_secs(5));
        let cfg: WebhookConfig = serde_saphyr::from_str(
            "url: http://h/x\ntimeout: 250ms\nqueue: 5\nworkers: 2\ndrain: 1s\n",
        )
        .unwrap();
        assert_eq!((cfg.queue, cfg.workers), (5, 2));
        assert_eq!(cfg.timeout.0, Duration::from_millis(250));
        let err = serde_saphyr::from_str::<WebhookConfig>("url: http://h/x\nretries: 3\n");
        assert!(err.is_err());
    }

    #[test]
    fn validate_names_the_field() {
        let mut cfg = WebhookConfig::new("ftp://h/x");
        assert!(matches!(
            cfg.validate(),
            Err(WebhookConfigError::Scheme { .. })
        ));
        cfg.url = "not a url".into();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("webhook.url"));
        cfg.url = "http://127.0.0.1:1/x".into();
        cfg.queue = 0;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("webhook.queue"));
        cfg.queue = 1;
        cfg.workers = 0;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("webhook.workers"));
        cfg.workers = MAX_WORKERS + 1;
        assert!(cfg.validate().is_err());
        cfg.workers = 1;
        cfg.timeout = HumanDuration(Duration::ZERO);
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn url_secrets_never_shown() {
        let cfg = WebhookConfig::new(
            "https://user:pa55word-secret@hooks.example.com:8443/services/T0000SECRETPATH/x?token=s3cr3t-t0ken-value&a=1",
        );
        let shown = cfg.redacted_url();
        let debug = format!("{cfg:?}");
        let bad = format!(
            "{}",
            WebhookConfigError::Scheme {
                shown: shown.clone(),
                scheme: "x".into()
            }
        );
        for text in [&shown, &debug, &bad] {
            for secret in [
                "pa55word-secret",
                "user",
                "T0000SECRETPATH",
                "s3cr3t-t0ken-value",
            ] {
                assert!(!text.contains(secret), "{secret} leaked in {text}");
            }
        }
        assert!(
            shown.starts_with("https://***@hooks.example.com:8443/services/"),
            "{shown}"
        );
        assert!(shown.contains("token="), "{shown}");
        let url = cfg.validate().unwrap();
        let msg = "error for https://hooks.example.com/services/T0000SECRETPATH/x?token=s3cr3t-t0ken-value";
        let secrets = url_secrets(&url);
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let scrubbed = scrub(msg, &refs);
        assert!(!scrubbed.contains("s3cr3t-t0ken-value") && !scrubbed.contains("T0000SECRETPATH"));
    }
}
