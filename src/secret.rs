//! Redaction of secrets (URL tokens, client secrets, access tokens, URL
//! passwords) before anything reaches a log, the console or a report. Owns the
//! one rule for how a secret is shown; callers must never format a secret
//! themselves.
//!
//! - [`redact`]: how one secret is shown (its first 4 characters at most).
//! - [`scrub_url`]: a URL as it may be shown: user info, token-like path
//!   segments (a URL token may sit anywhere in a path, also when no
//!   `url_token` is configured), query values and the fragment redacted. Works
//!   on malformed URLs too (it never parses strictly).
//! - [`scrub_text`]: free text (an error, a command line, a log line) with
//!   every URL in it scrubbed and every known secret replaced.
//! - [`register`] / [`scrub_registered`]: the secrets of this process, which
//!   every log line is scrubbed of (see `main.rs`).

use std::sync::{Mutex, PoisonError};

/// Shortest path segment taken for a token when no secret is known (Endpoint
/// URL tokens are 64 hex characters; OAuth and webhook tokens are long too).
pub const TOKEN_SEGMENT_LEN: usize = 12;

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

/// Whether a URL path segment may be a token: long and made of token
/// characters (letters, digits, `-`, `_`, `%`-escapes, `~`), no dots.
pub fn looks_like_token(segment: &str) -> bool {
    segment.chars().count() >= TOKEN_SEGMENT_LEN
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%' | '~'))
}

/// `url` with its user info (`***@`), token-like path segments, query
/// values and fragment redacted; scheme, host, port and short path segments
/// stay readable. Text without `://` is returned as is.
pub fn scrub_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let (tail, fragment) = match tail.split_once('#') {
        Some((t, _)) => (t, "#***"),
        None => (tail, ""),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let path: Vec<String> = path
        .split('/')
        .map(|seg| {
            if looks_like_token(seg) {
                redact(seg)
            } else {
                seg.to_string()
            }
        })
        .collect();
    let mut out = format!("{scheme}://{host}{}", path.join("/"));
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if !v.is_empty() => format!("{k}={}", redact_or_stars(v)),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out.push_str(fragment);
    out
}

/// [`redact`], but never empty and never the value itself.
fn redact_or_stars(v: &str) -> String {
    match redact(v) {
        r if r.is_empty() => "***".to_string(),
        r => r,
    }
}

/// Whether `c` can end a URL found in free text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '\\')
}

/// `text` with every URL in it passed through [`scrub_url`] and every one of
/// `secrets` replaced ([`scrub`]). For error messages, command lines and log lines.
pub fn scrub_text(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..].find(ends_url).map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        out.push_str(&scrub_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    scrub(&out, secrets)
}

/// Secrets of this process, registered when they are resolved (URL token,
/// client secret, API key): every log line is scrubbed of them.
static REGISTERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds `secret` to the process's secrets (ignored when shorter than 4 chars).
pub fn register(secret: &str) {
    if secret.len() < 4 {
        return;
    }
    let mut all = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    if !all.iter().any(|s| s == secret) {
        all.push(secret.to_string());
    }
}

/// [`scrub_text`] with the registered secrets.
pub fn scrub_registered(text: &str) -> String {
    let all = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    scrub_text(text, &refs)
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

    const TOKEN: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

    #[test]
    fn scrub_url_hides_tokens_passwords_and_query_values() {
        let cases = [
            format!("http://127.0.0.1:9/{TOKEN}"),
            format!("https://h/prefix/{TOKEN}/"),
            format!("https://h/{TOKEN}/extra"),
            format!("https://user:{TOKEN}@h:8443/x"),
            format!("wss://h/v2/runtime?token={TOKEN}&x=1"),
            format!("http://h/p#{TOKEN}"),
            format!("http://h/{TOKEN}?broken=%%/[::"),
        ];
        for url in &cases {
            let shown = scrub_url(url);
            assert!(
                !shown.contains(TOKEN) && !shown.contains(&TOKEN[4..]),
                "{url} → {shown}"
            );
        }
        assert_eq!(
            scrub_url("https://h:1/prefix/socket.io/"),
            "https://h:1/prefix/socket.io/"
        );
        assert_eq!(scrub_url("http://u:pw@h/"), "http://***@h/");
        assert_eq!(scrub_url("not a url"), "not a url");
    }

    #[test]
    fn scrub_text_finds_urls_in_command_lines_and_errors() {
        let line = format!(
            "finalping run s.yaml --set webhook.url=http://u:PASSWORD123@h/hook --target \"http://h/{TOKEN}\""
        );
        let shown = scrub_text(&line, &[]);
        assert!(
            !shown.contains("PASSWORD123") && !shown.contains(TOKEN),
            "{shown}"
        );
        assert!(shown.starts_with("finalping run s.yaml --set webhook.url=http://***@h/hook"));
        let shown = scrub_text(&format!("bad {TOKEN} here"), &[TOKEN]);
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}
