//! What in the configuration is a credential, and how to speak of a value without
//! showing one: secret keys, URLs with `user:password@`, and library error texts that
//! quote what they were given.

use serde_yaml::Value;

/// Keys whose values are credentials, wherever they appear (`instances[0].password`,
/// `elk.password`, `api.api_key`, `webhook.bearer_token`, `dns_config.aws_access_key`,
/// and the keys of blocks the agent ignores but must not echo either).
const SECRET_KEYS: &[&str] = &[
    "password",
    "api_password",
    "api_key",
    "bearer_token",
    "aws_access_key",
    "aws_secret_key",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "service_key",
    "routing_key",
    "webhook_url",
    "token",
    "secret",
];

/// Parts of a key's name that make it a credential, for keys not in [`SECRET_KEYS`]
/// (a misspelled `pasword` is not caught; `elk.headers.Authorization` is).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "private_key",
    "credential",
    "authorization",
];

/// Whether the value of `key` (one key, not a path) is a credential. `*_file` keys hold
/// paths, not secrets.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    // Paths to secrets, and a count that only looks like one.
    if key.ends_with("_file") || key == "max_tokens" {
        return false;
    }
    SECRET_KEYS.contains(&key.as_str()) || SECRET_WORDS.iter().any(|w| key.contains(w))
}

/// Whether any key along `path` (`instances[0].password`, `api.api_key[2]`) is a
/// credential: then nothing under it may be shown.
pub fn is_secret_path(path: &str) -> bool {
    path.split('.')
        .map(|segment| segment.split('[').next().unwrap_or(segment))
        .any(is_secret_key)
}

/// `value` with everything under a secret key replaced by `***`, and every URL's
/// credentials hidden, for messages that show what was given.
pub fn redacted(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(show_url(s)),
        Value::Sequence(items) => Value::Sequence(items.iter().map(redacted).collect()),
        Value::Mapping(map) => Value::Mapping(
            map.iter()
                .map(|(k, v)| {
                    let secret = k.as_str().is_some_and(is_secret_key);
                    let v = if secret {
                        Value::String("***".into())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Tagged(t) => redacted(&t.value),
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

/// A URL (or any text) as it may be shown: whatever comes before the last `@` of the
/// part after `scheme://` is replaced by `***`, and a query or fragment by `?…`. Text
/// without `@`, `?` or `#` is returned as it is.
pub fn show_url(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), raw),
    };
    let (rest, hidden_query) = match rest.find(['?', '#']) {
        Some(at) => (&rest[..at], true),
        None => (rest, false),
    };
    // Up to the last `@`: a password may itself hold `/` or `@`.
    let shown = match rest.rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => format!("{scheme}{rest}"),
    };
    if hidden_query {
        format!("{shown}?…")
    } else {
        shown
    }
}

/// Checks an `http://` or `https://` URL, read as the HTTP clients read it: a host,
/// no credentials, no whitespace or control characters. The error shows the URL
/// without anything that could be a credential.
pub fn check_http_url(raw: &str) -> Result<(), String> {
    let shown = format!("{:?}", show_url(raw));
    if raw.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{shown} contains whitespace or a control character"
        ));
    }
    let url = match url::Url::parse(raw) {
        Ok(url) => url,
        // `user:pa/ss@host` does not parse, but it still holds a password.
        Err(_) if raw.contains('@') => return Err(credentials_message(&shown)),
        Err(_) => return Err(format!("{shown} is not an http:// or https:// URL")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(credentials_message(&shown));
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown} is not an http:// or https:// URL"));
    }
    Ok(())
}

fn credentials_message(shown: &str) -> String {
    format!(
        "{shown} must not contain credentials (user:password@); give them in their own \
         keys, from ${{VARIABLE}} or a *_file"
    )
}

/// Whether `text` holds a URL with credentials (`scheme://user:password@host`), for
/// values that are not URLs themselves but may carry one (hook arguments).
pub fn has_url_credentials(text: &str) -> bool {
    text.split_whitespace().any(|word| {
        word.split_once("://").is_some_and(|(_, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            authority.contains('@')
        })
    })
}

/// An error text from the YAML reader without the values it quotes (`integer
/// \`123…\``, `string "…"`): the value could be a secret, and the key, line and column
/// say where the problem is.
pub fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['`', '"']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..start]);
        match rest[start + 1..].find(quote) {
            Some(len) => {
                out.push_str("(value hidden)");
                rest = &rest[start + 1 + len + 1..];
            }
            None => {
                out.push_str("(value hidden)");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The scalar values under secret keys in `value` (strings, and numbers as written),
/// for [`scrub`].
pub fn secret_values(value: &Value) -> Vec<String> {
    fn walk(value: &Value, secret: bool, out: &mut Vec<String>) {
        match value {
            Value::String(s) if secret => out.push(s.clone()),
            Value::Number(n) if secret => out.push(n.to_string()),
            Value::Bool(_) | Value::Null | Value::String(_) | Value::Number(_) => {}
            Value::Sequence(items) => items.iter().for_each(|v| walk(v, secret, out)),
            Value::Mapping(map) => {
                for (k, v) in map {
                    walk(v, secret || k.as_str().is_some_and(is_secret_key), out);
                }
            }
            Value::Tagged(t) => walk(&t.value, secret, out),
        }
    }
    let mut out = Vec::new();
    walk(value, false, &mut out);
    // Longest first, so that a secret holding another is hidden whole.
    out.retain(|s| s.chars().count() >= MIN_SCRUBBED);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Shorter values are not hidden from messages by [`scrub`]: they would garble them,
/// and are not worth much as secrets.
const MIN_SCRUBBED: usize = 4;

/// The last line of defence for a problem or warning text: every value found under a
/// secret key is replaced by `***`, and so are the credentials of every URL in it.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    hide_url_credentials(&text)
}

/// `scheme://user:password@host` anywhere in `text` becomes `scheme://***@host`.
fn hide_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || "/?#\"'`,;)]}".contains(c))
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(last) => {
                out.push_str("***");
                rest = &tail[last..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_by_name_and_by_word() {
        for key in [
            "password",
            "api_key",
            "bearer_token",
            "aws_access_key",
            "aws_secret_key",
            "api_password",
            "Authorization",
            "X-Api-Key",
            "client_secret",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "password_file",
            "api_key_file",
            "key_file",
            "url",
            "username",
            "host",
            "max_tokens",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
        assert!(is_secret_path("instances[0].password"));
        assert!(is_secret_path("api.api_key[1]"));
        assert!(is_secret_path("elk.headers.Authorization"));
        assert!(!is_secret_path("alertmanager.urls[0]"));
    }

    #[test]
    fn urls_are_shown_without_credentials_or_queries() {
        assert_eq!(show_url("http://u:pw@am:9093/x"), "http://***@am:9093/x");
        assert_eq!(show_url("https://u:p/w@h@host/"), "https://***@host/");
        assert_eq!(show_url("https://host/p?token=abc"), "https://host/p?…");
        assert_eq!(show_url("am:9093"), "am:9093");
        assert_eq!(show_url("u:pw@host"), "***@host");
    }

    #[test]
    fn http_urls_are_checked_as_clients_read_them() {
        assert!(check_http_url("http://am:9093/").is_ok());
        assert!(check_http_url("https://x.openai.azure.com").is_ok());
        for (bad, says) in [
            (
                "http://user:hunter2@am:9093",
                "must not contain credentials",
            ),
            ("http://hunter2@am:9093", "must not contain credentials"),
            ("http://user:hun/ter2@am", "must not contain credentials"),
            ("ftp://am", "is not an http"),
            ("am:9093", "is not an http"),
            ("http://", "is not an http"),
            ("http://am\n:9093", "control character"),
        ] {
            let e = check_http_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("hunter2") && !e.contains("hun/ter2"), "{e}");
        }
        assert!(has_url_credentials("curl https://u:p@h/x"));
        assert!(!has_url_credentials("https://h/a@b"));
    }

    #[test]
    fn redaction_reaches_nested_secrets_and_urls() {
        let v: Value = serde_yaml::from_str(
            "[{uid: c, password: hunter2, tls: {key: x}}, 'http://u:hunter2@h', 5]",
        )
        .unwrap();
        let shown = serde_yaml::to_string(&redacted(&v)).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("uid: c"), "{shown}");
    }

    #[test]
    fn scrub_hides_values_of_secret_keys_and_url_credentials() {
        let v: Value =
            serde_yaml::from_str("a: {password: hunter2, n: 5, token: [98765]}\nb: pw").unwrap();
        let secrets = secret_values(&v);
        assert_eq!(secrets, ["hunter2", "98765"]);
        assert_eq!(
            scrub(
                "x hunter2 y 98765 pw see \"http://u:p@h/x\" and ftp://h",
                &secrets
            ),
            "x *** y *** pw see \"http://***@h/x\" and ftp://h"
        );
    }

    #[test]
    fn quoted_values_are_dropped_from_reader_errors() {
        assert_eq!(
            without_quoted(
                "api.api_key: invalid type: integer `123` as u128, expected \"x\" at line 5"
            ),
            "api.api_key: invalid type: integer (value hidden) as u128, expected (value hidden) at line 5"
        );
        assert_eq!(without_quoted("a `b"), "a (value hidden)");
    }
}
