//! The webhook sink: `POST /webhook` takes one JSON record per request (an
//! audit record of the load client), answers 204 and counts it, keeping the
//! last [`KEPT_BODIES`] bodies for tests; `GET /webhook/stats` answers
//! `{"received": n}`. A body that is not JSON gets 400 and is not counted.
//! The `webhook_delay` / `webhook_down` fault modes (`runtime_faults`) act
//! before the body is looked at.

use super::runtime::RuntimeState;
use super::stats::bump;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// How many received bodies the sink keeps (oldest dropped first).
pub const KEPT_BODIES: usize = 10_000;

/// The last bodies received.
#[derive(Debug, Default)]
pub struct WebhookSink {
    bodies: Mutex<VecDeque<Value>>,
}

impl WebhookSink {
    fn push(&self, body: Value) {
        let mut bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if bodies.len() >= KEPT_BODIES {
            bodies.pop_front();
        }
        bodies.push_back(body);
    }

    /// The kept bodies, oldest first.
    pub fn bodies(&self) -> Vec<Value> {
        let bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        bodies.iter().cloned().collect()
    }
}

/// `POST /webhook`.
pub(crate) async fn receive(
    State(rt): State<Arc<RuntimeState>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if rt.faults.on_webhook(&rt.stop).await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook sink down (fault injection: runtime.faults.webhook_down)",
        )
            .into_response();
    }
    match body {
        Ok(Json(body)) => {
            rt.webhook.push(body);
            bump(&rt.counters.webhook_received);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("webhook body must be JSON with Content-Type: application/json: {e}"),
        )
            .into_response(),
    }
}

/// `GET /webhook/stats`.
pub(crate) async fn stats(State(rt): State<Arc<RuntimeState>>) -> Json<Value> {
    Json(json!({"received": rt.counters.webhook_received.load(Ordering::Relaxed)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_bodies() {
        let sink = WebhookSink::default();
        for i in 0..KEPT_BODIES + 3 {
            sink.push(json!(i));
        }
        let kept = sink.bodies();
        assert_eq!(kept.len(), KEPT_BODIES);
        assert_eq!(kept.first(), Some(&json!(3)));
    }
}
