//! Prepares the runtime WebSocket side of a run when the scenario has
//! `update_context` / `get_context` steps: where to connect, the process-wide
//! token provider, and the audit log (plus webhook) in the report folder.

use super::embedded::EmulatorAccess;
use crate::audit::AuditSink;
use crate::engine::{InjectPlan, RuntimePlan};
use crate::error::CliError;
use crate::protocol::rest::{ContextInject, InjectOptions};
use crate::protocol::runtime::connection::{ReconnectPolicy, RuntimeOptions};
use crate::protocol::runtime::frame::DEFAULT_MAX_PAYLOAD;
use crate::protocol::runtime::oauth::{OAuthConfig, TokenProvider};
use crate::scenario::{RuntimeKind, Scenario, Step, TemplateCtx};
use crate::secret;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The runtime side of a run, ready for the engine.
pub struct RuntimeSetup {
    /// The runtime WebSocket (`runtime.kind: websocket`).
    pub plan: Option<Arc<RuntimePlan>>,
    /// The context-inject API (`runtime.kind: rest_inject`).
    pub inject: Option<Arc<InjectPlan>>,
    pub audit: AuditSink,
    pub tokens: Option<Arc<TokenProvider>>,
    /// Runtime URL as shown in reports (no token in it).
    pub shown_url: String,
    /// Secrets to scrub from anything printed (client secret).
    pub secrets: Vec<String>,
}

/// Whether the scenario talks to the runtime WebSocket at all.
pub fn needs_runtime(s: &Scenario) -> bool {
    s.all_steps()
        .any(|step| matches!(step.action(), Step::UpdateContext(_) | Step::GetContext))
}

/// Resolves URL and credentials (the embedded emulator's when none are given)
/// and opens `audit.jsonl` in `out_dir`.
pub fn setup(
    s: &Scenario,
    emulator: Option<&EmulatorAccess>,
    out_dir: &Path,
) -> Result<RuntimeSetup, CliError> {
    if s.runtime.kind == RuntimeKind::RestInject {
        return inject_setup(s, emulator, out_dir);
    }
    let ctx = TemplateCtx::default();
    let rt = &s.runtime;
    let url = match (&rt.url, emulator) {
        (Some(url), _) => url.render(&ctx),
        (None, Some(em)) => em.runtime_url.clone(),
        (None, None) => {
            return Err(CliError::usage(
                "the scenario has update_context/get_context steps and a target.url, but no runtime.url: \
                 add `runtime: { url: wss://…/v2/runtime, oauth: { token_url, client_id, client_secret } }`",
            ))
        }
    };
    let oauth = match (&rt.oauth, emulator) {
        (Some(o), _) => {
            let mut c = OAuthConfig::new(
                o.token_url.render(&ctx),
                o.client_id.render(&ctx),
                o.client_secret.render(&ctx),
            );
            c.scope = o.scope.clone();
            c
        }
        (None, Some(em)) => OAuthConfig::new(
            em.token_url.clone(),
            em.client_id.clone(),
            em.client_secret.clone(),
        ),
        (None, None) => {
            return Err(CliError::usage(
                "runtime.url is set but runtime.oauth is missing: add \
                 `oauth: { token_url: …, client_id: …, client_secret: ${env:RUNTIME_CLIENT_SECRET} }`",
            ))
        }
    };
    // A token request is part of connecting: the same bound.
    let mut oauth = oauth;
    oauth.timeout = rt.connect_timeout.as_duration();
    let secrets = vec![oauth.client_secret.clone()];
    secret::register(&oauth.client_secret);
    let tokens = Arc::new(
        TokenProvider::new(oauth).map_err(|e| CliError::usage(format!("runtime.oauth: {e}")))?,
    );
    let mut options = RuntimeOptions::new(url.clone());
    options.codec = rt.codec;
    options.heartbeat = rt.heartbeat.map(|h| h.as_duration());
    options.connect_timeout = rt.connect_timeout.as_duration();
    options.reply_timeout = rt.reply_timeout.as_duration();
    options.reconnect = ReconnectPolicy {
        max_attempts: rt.reconnect.max_attempts,
        backoff: rt.reconnect.backoff.as_duration(),
    };
    options.max_payload = DEFAULT_MAX_PAYLOAD.max(rt.limits.max_update_json_bytes + 1024);
    options.limits = rt.limits;
    options.validate = rt.validate;

    let audit_path = out_dir.join("audit.jsonl");
    let audit = AuditSink::start(&audit_path, s.webhook.clone())
        .map_err(|e| CliError::usage(e.to_string()))?;
    let plan = Arc::new(RuntimePlan {
        options,
        tokens: tokens.clone(),
        max_conflict_retries: rt.max_conflict_retries,
        audit: Some(audit.handle()),
        warned: Mutex::new(Default::default()),
    });
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    Ok(RuntimeSetup {
        plan: Some(plan),
        inject: None,
        audit,
        tokens: Some(tokens),
        shown_url: secret::scrub_text(&url, &secret_refs),
        secrets,
    })
}

/// `runtime.kind: rest_inject`: the context-inject client (the embedded
/// emulator's API and key when none are given) and the audit log.
fn inject_setup(
    s: &Scenario,
    emulator: Option<&EmulatorAccess>,
    out_dir: &Path,
) -> Result<RuntimeSetup, CliError> {
    if s.all_steps()
        .any(|step| matches!(step.action(), Step::GetContext))
    {
        return Err(CliError::usage(
            "`get_context` needs the runtime WebSocket: the context-inject API (runtime.kind: rest_inject) cannot read context; remove the step or use runtime.kind: websocket",
        ));
    }
    let ctx = TemplateCtx::default();
    let rt = &s.runtime;
    let api_base = match (&rt.api_base, emulator) {
        (Some(base), _) => base.render(&ctx),
        (None, Some(em)) => em.url.clone(),
        (None, None) => {
            return Err(CliError::usage(
                "runtime.kind is rest_inject and target.url is set, but runtime.api_base is missing: add `api_base: https://<your API host>`",
            ))
        }
    };
    let api_key = match (&rt.api_key, emulator) {
        (Some(key), _) => key.render(&ctx),
        (None, Some(em)) => em.api_key.clone(),
        (None, None) => {
            return Err(CliError::usage(
                "runtime.kind is rest_inject but runtime.api_key is missing: add `api_key: ${env:COGNIGY_API_KEY}`",
            ))
        }
    };
    let mut options = InjectOptions::new(
        api_base.clone(),
        api_key.clone(),
        rt.reply_timeout.as_duration(),
    );
    options.max_request_bytes = rt.max_request_bytes;
    let client =
        ContextInject::new(options).map_err(|e| CliError::usage(format!("runtime: {e}")))?;
    let audit = AuditSink::start(&out_dir.join("audit.jsonl"), s.webhook.clone())
        .map_err(|e| CliError::usage(e.to_string()))?;
    let plan = Arc::new(InjectPlan {
        client,
        audit: Some(audit.handle()),
    });
    Ok(RuntimeSetup {
        plan: None,
        inject: Some(plan),
        audit,
        tokens: None,
        shown_url: secret::scrub_text(&api_base, &[&api_key]),
        secrets: vec![api_key],
    })
}

/// The runtime settings as the manifest shows them (secrets redacted).
pub fn manifest(rt: &RuntimeSetup, s: &Scenario) -> crate::report::RuntimeManifest {
    let webhook = s.webhook.as_ref().map(|w| w.redacted_url());
    let (Some(plan), Some(tokens)) = (&rt.plan, &rt.tokens) else {
        // The context-inject API: one HTTP request per update, an API key.
        return crate::report::RuntimeManifest {
            url: rt.shown_url.clone(),
            codec: "json (REST context inject)".to_string(),
            heartbeat: "n/a".to_string(),
            token_url: String::new(),
            client_id: String::new(),
            client_secret: rt
                .secrets
                .first()
                .map(|k| secret::redact(k))
                .unwrap_or_default(),
            validate: true,
            max_conflict_retries: 0,
            reconnect_max_attempts: 0,
            reconnect_backoff: String::new(),
            webhook,
        };
    };
    let o = &plan.options;
    let oauth = tokens.config();
    crate::report::RuntimeManifest {
        url: rt.shown_url.clone(),
        codec: o.codec.as_str().to_string(),
        heartbeat: s
            .runtime
            .heartbeat
            .map_or_else(|| "off".to_string(), |h| h.to_string()),
        token_url: secret::scrub_text(&oauth.token_url, &[&oauth.client_secret]),
        client_id: oauth.client_id.clone(),
        client_secret: secret::redact(&oauth.client_secret),
        validate: o.validate,
        max_conflict_retries: plan.max_conflict_retries,
        reconnect_max_attempts: o.reconnect.max_attempts,
        reconnect_backoff: crate::duration::HumanDuration(o.reconnect.backoff).to_string(),
        webhook,
    }
}
