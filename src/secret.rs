//! Redaction of secrets (URL tokens, client secrets, access tokens) before
//! anything reaches a log, the console or a report. Owns the one rule for how a
//! secret is shown; callers must never format a secret themselves.

/// Shows at most the first 4 characters of a secret, never the rest, so two
/// different tokens can be told apart in a manifest without revealing either.
pub fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    if n == 0 {
        return String::new();
    }
    if n <= 8 {
        return "***".to_string();
    }
    let head: String = secret.chars().take(4).collect();
    format!("{head}…(redacted, {n} chars)")
}

/// Replaces every occurrence of each secret in `text` with its redacted form,
/// including the percent-encoded forms a URL would carry.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        let once = percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        let twice =
            percent_encoding::utf8_percent_encode(&once, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        for form in [twice, once, s.to_string()] {
            if out.contains(&form) {
                out = out.replace(&form, &redact(s));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_all_but_a_prefix() {
        let r = redact("abcdef0123456789");
        assert!(r.starts_with("abcd"));
        assert!(!r.contains("0123456789"));
        assert_eq!(redact("short"), "***");
    }

    #[test]
    fn scrub_removes_plain_and_encoded_forms() {
        let url = "ws://h/socket.io/?urlToken=my%2540token%2520x&x=my@token x";
        let out = scrub(url, &["my@token x"]);
        assert!(
            !out.contains("token%2520x") && !out.contains("token x"),
            "{out}"
        );
    }
}
