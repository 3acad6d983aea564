//! One-line hints for the common reasons a run against a real Endpoint
//! fails to connect (URL token, path prefix, TLS, nothing listening), chosen
//! from the failure causes. Shown under the console's failure line, in
//! summary.md and as `hints` in summary.json. Pure; owns only the wording.

use std::collections::BTreeMap;

/// The hints that fit these failure causes, most specific first (at most one per kind).
pub fn for_causes(errors: &BTreeMap<String, u64>) -> Vec<String> {
    let has = |prefix: &str| errors.keys().any(|k| k.starts_with(prefix));
    let mut hints = Vec::new();
    if has("connect_http_404") {
        hints.push("connect_http_404: nothing serves Socket.IO at that path. Put the URL token in `target.url_token` / `--url-token` or at the end of the URL (`https://host/<URLToken>`), and keep a path prefix only if the Endpoint is behind one (`https://host/<prefix>/<URLToken>`)".to_string());
    }
    if has("connect_http_401") || has("connect_http_403") {
        hints.push("connect_http_401/403: the Endpoint refused the URL token: copy it again from the Endpoint's settings into `target.url_token` / `--url-token` (or FINALPING_URL_TOKEN)".to_string());
    }
    if has("connect_http_4xx") || has("connect_http_5xx") || has("connect_http_other") {
        hints.push("connect_http_*: the WebSocket upgrade got an unexpected HTTP status: check the URL (scheme, host, path) and run with `-vv` to log each failed connect".to_string());
    }
    if has("connect_tls") {
        hints.push("connect_tls: the TLS handshake failed: check the host name and its certificate; `--insecure` accepts self-signed certificates of test deployments (never in production)".to_string());
    }
    if has("connect_refused") {
        hints.push("connect_refused: nothing accepts connections there: check host and port, and http vs https (https defaults to port 443)".to_string());
    }
    if has("connect_connect_timeout") {
        hints.push("connect_connect_timeout: no `endpoint-ready` in time: check that the URL points at a Socket.IO Endpoint (not the REST one) and that `target.eio` matches it (3 or 4)".to_string());
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_the_causes() {
        let errors: BTreeMap<String, u64> = [("connect_http_404".to_string(), 3)].into();
        let hints = for_causes(&errors);
        assert_eq!(hints.len(), 1);
        assert!(hints[0].contains("URL token"), "{hints:?}");
        assert!(for_causes(&BTreeMap::new()).is_empty());
        let errors: BTreeMap<String, u64> = [
            ("connect_tls".to_string(), 1),
            ("turn_timeout".to_string(), 2),
        ]
        .into();
        assert!(for_causes(&errors)[0].contains("--insecure"));
    }
}
