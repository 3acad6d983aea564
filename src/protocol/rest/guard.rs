//! The shared-SaaS guard: a load test aimed at the vendor's shared SaaS hosts
//! (any host under [`SAAS_DOMAINS`]) above their documented per-IP limits
//! (docs/protocol.md §4: about 1,000 requests per 5 minutes per IP; test mode about
//! 600 messages per hour) is refused unless the user passes [`ACK_FLAG`],
//! acknowledging they own that capacity. A pure function of the plan: no
//! network, no DNS.

/// The command-line flag that overrides the guard (wired by the CLI).
pub const ACK_FLAG: &str = "--i-own-this-capacity";

/// Domains of the vendor's shared SaaS; the domain itself and every subdomain
/// (e.g. `endpoint-trial.cognigy.ai`, `api-app.cognigy.ai`) count.
pub const SAAS_DOMAINS: &[&str] = &["cognigy.ai"];

/// About 1,000 requests per 5 minutes per IP.
pub const SAAS_IP_LIMIT_PER_SECOND: f64 = 1_000.0 / 300.0;

/// About 600 test-mode messages per hour.
pub const SAAS_TEST_MODE_LIMIT_PER_SECOND: f64 = 600.0 / 3_600.0;

/// Why the guard refused a plan.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "target host `{host}` is on the vendor's shared SaaS, which allows one IP about {limit_text}; \
this plan sends about {planned:.2} requests/s (limit {limit:.2}/s). Load tests belong on your own \
deployment: point the target at it, or pass {flag} if you own this capacity"
)]
pub struct GuardError {
    pub host: String,
    /// Planned requests per second (`NaN`/infinite shown as given).
    pub planned: f64,
    /// The limit that applies, per second.
    pub limit: f64,
    /// The limit as the vendor states it.
    pub limit_text: &'static str,
    /// [`ACK_FLAG`].
    pub flag: &'static str,
}

/// True when `host` (a host name, `host:port`, or a URL) is under one of
/// [`SAAS_DOMAINS`]. Case and a trailing dot are ignored.
pub fn is_shared_saas_host(host: &str) -> bool {
    let host = normalize(host);
    SAAS_DOMAINS
        .iter()
        .any(|d| host == *d || host.strip_suffix(d).is_some_and(|rest| rest.ends_with('.')))
}

/// `Ok` unless `host` is a shared SaaS host and `planned_requests_per_second`
/// exceeds its limit (the test-mode limit when `test_mode`). A rate that is
/// not a finite number is treated as exceeding it.
pub fn saas_guard(
    host: &str,
    planned_requests_per_second: f64,
    test_mode: bool,
) -> Result<(), GuardError> {
    if !is_shared_saas_host(host) {
        return Ok(());
    }
    let (limit, limit_text) = if test_mode {
        (
            SAAS_TEST_MODE_LIMIT_PER_SECOND,
            "600 test-mode messages per hour",
        )
    } else {
        (SAAS_IP_LIMIT_PER_SECOND, "1,000 requests per 5 minutes")
    };
    let planned = planned_requests_per_second;
    if planned.is_finite() && planned <= limit {
        return Ok(());
    }
    Err(GuardError {
        host: normalize(host),
        planned,
        limit,
        limit_text,
        flag: ACK_FLAG,
    })
}

/// The bare host, lower case: scheme, user info, path, port and a trailing dot removed.
fn normalize(host: &str) -> String {
    let host = host.trim();
    let host = host.split_once("://").map_or(host, |(_, rest)| rest);
    let host = host.split(['/', '?', '#']).next().unwrap_or(host);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.starts_with('[') {
        // IPv6 literal: never a SaaS name.
        host
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saas_hosts_are_recognised() {
        for h in [
            "endpoint-trial.cognigy.ai",
            "API-APP.Cognigy.AI.",
            "cognigy.ai",
            "https://endpoint-app-us.cognigy.ai:443/abc?x=1",
            "user@endpoint-app.cognigy.ai",
        ] {
            assert!(is_shared_saas_host(h), "{h}");
        }
        for h in [
            "127.0.0.1",
            "notcognigy.ai",
            "cognigy.ai.example.com",
            "endpoint.mycompany.com",
            "[::1]:8080",
            "",
        ] {
            assert!(!is_shared_saas_host(h), "{h}");
        }
    }

    #[test]
    fn limits_apply_only_to_saas_hosts() {
        assert!(saas_guard("127.0.0.1", 10_000.0, false).is_ok());
        assert!(saas_guard("endpoint-app.cognigy.ai", 3.0, false).is_ok());
        assert!(saas_guard("endpoint-app.cognigy.ai", SAAS_IP_LIMIT_PER_SECOND, false).is_ok());
        let e = saas_guard("endpoint-app.cognigy.ai", 3.4, false).unwrap_err();
        assert_eq!(e.limit, SAAS_IP_LIMIT_PER_SECOND);
        let text = e.to_string();
        assert!(
            text.contains(ACK_FLAG) && text.contains("own deployment"),
            "{text}"
        );
        assert!(text.contains("1,000 requests per 5 minutes"), "{text}");
        // Test mode: 600/h ≈ 0.167/s.
        assert!(saas_guard("endpoint-trial.cognigy.ai", 0.1, true).is_ok());
        let e = saas_guard("endpoint-trial.cognigy.ai", 0.2, true).unwrap_err();
        assert!(e.to_string().contains("600 test-mode messages per hour"));
        assert!(saas_guard("endpoint-trial.cognigy.ai", f64::NAN, false).is_err());
        assert!(saas_guard("endpoint-trial.cognigy.ai", f64::INFINITY, false).is_err());
    }
}
