//! The `/metrics` HTTP endpoint (axum): serves the latest published
//! families in Prometheus text or OpenMetrics, as the scraper's `Accept`
//! asks. The collector publishes once per interval; a scrape only clones an
//! `Arc` and renders, so scrapes never touch the recorder or the VUs.
//! Also owns the `--metrics-listen` address rules.

use super::series::Family;
use super::text::{render, Format};
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::routing::get;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use tokio_util::sync::CancellationToken;

/// The families a scrape sees: replaced as a whole once per interval.
#[derive(Default)]
pub struct Exposition {
    current: RwLock<Arc<Vec<Family>>>,
}

impl Exposition {
    pub fn publish(&self, families: Arc<Vec<Family>>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = families;
    }

    pub fn current(&self) -> Arc<Vec<Family>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// `--metrics-listen`: `PORT` (loopback) or an explicit `IP:PORT`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    t.parse::<SocketAddr>().map_err(|_| {
        format!(
            "metrics listen address `{text}` is not PORT or IP:PORT: write e.g. `9464` or \
             `127.0.0.1:9464` (loopback), `[::1]:9464`, or `0.0.0.0:9464` to be scraped from \
             other hosts (e.g. in a pod); host names are not accepted"
        )
    })
}

/// A running `/metrics` server.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free one) and serves `exposition`.
    pub async fn start(
        addr: SocketAddr,
        exposition: Arc<Exposition>,
    ) -> Result<MetricsServer, String> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            format!("cannot listen for metrics on {addr}: {e} (choose another address or port with --metrics-listen)")
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("metrics listener on {addr}: {e}"))?;
        let app = axum::Router::new()
            .route("/metrics", get(metrics))
            .route(
                "/",
                get(|| async { "finalping live metrics: see /metrics\n" }),
            )
            .with_state(exposition);
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                eprintln!("warning: the metrics server stopped: {e}");
            }
        });
        Ok(MetricsServer { addr, stop, task })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Stops serving (open scrapes get a moment to finish).
    pub async fn stop(self) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

async fn metrics(
    State(exposition): State<Arc<Exposition>>,
    headers: HeaderMap,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let body = render(&exposition.current(), format);
    ([(CONTENT_TYPE, format.content_type())], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(parse_listen("0.0.0.0:9").unwrap().to_string(), "0.0.0.0:9");
        assert_eq!(
            parse_listen("[::1]:9464").unwrap().to_string(),
            "[::1]:9464"
        );
        let e = parse_listen("localhost:9464").unwrap_err();
        assert!(e.contains("host names are not accepted"), "{e}");
        assert!(parse_listen("127.0.0.1").is_err());
        assert!(parse_listen("70000").is_err());
    }
}
