//! What kind of trouble a client error line reports, from its exception's class name
//! and its message (seed 000: connection, timeout, memory, authentication errors).
//! Pure functions; the words are matched whole, after splitting camel case, so
//! `RedisOutOfMemoryException` is memory and `Bloom filter full` is not.

use crate::decision::ports::ErrorCategory;

/// Word sequences per category, tried in this order: the first category with a match
/// wins, so "connection timed out" is a timeout and "authentication failed: connection
/// closed" is authentication. The more specific diagnosis goes first.
const RULES: &[(ErrorCategory, &[&[&str]])] = &[
    (
        ErrorCategory::Authentication,
        &[
            &["noauth"],
            &["wrongpass"],
            &["noperm"],
            &["auth"],
            &["authentication"],
            &["authenticate"],
            &["unauthorized"],
            &["unauthenticated"],
            &["invalid", "password"],
            &["invalid", "username"],
            &["permission"],
            &["permissions"],
            &["access", "denied"],
            &["access", "control"],
            &["acl"],
            &["credentials"],
        ],
    ),
    (
        ErrorCategory::Memory,
        &[&["oom"], &["memory"], &["maxmemory"], &["outofmemory"]],
    ),
    (
        ErrorCategory::Timeout,
        &[
            &["timeout"],
            &["timeouts"],
            &["timed", "out"],
            &["timedout"],
            &["deadline", "exceeded"],
            &["etimedout"],
        ],
    ),
    (
        ErrorCategory::Connection,
        &[
            &["connection"],
            &["connections"],
            &["connect"],
            &["connecting"],
            &["disconnected"],
            &["refused"],
            &["reset"],
            &["unreachable"],
            &["eof"],
            &["socket"],
            &["network"],
            &["broken", "pipe"],
            &["closed"],
            &["no", "route"],
            &["pool", "exhausted"],
            &["get", "a", "resource", "from", "the", "pool"],
            &["clusterdown"],
            &["masterdown"],
            &["econnrefused"],
            &["econnreset"],
            &["ehostunreach"],
            &["enotconn"],
            &["epipe"],
        ],
    ),
];

/// The category of one error line: the exception's class name decides when it says
/// something; otherwise the message does.
pub fn categorize(exception: Option<&str>, message: Option<&str>) -> ErrorCategory {
    let by_name = exception.map_or(ErrorCategory::Other, categorize_text);
    if by_name != ErrorCategory::Other {
        return by_name;
    }
    message.map_or(ErrorCategory::Other, categorize_text)
}

/// The category one text (a class name or a message) points at.
pub fn categorize_text(text: &str) -> ErrorCategory {
    let words = words(text);
    RULES
        .iter()
        .find(|(_, phrases)| {
            phrases
                .iter()
                .any(|p| words.windows(p.len()).any(|w| w == *p))
        })
        .map_or(ErrorCategory::Other, |(c, _)| *c)
}

/// Lower-case words: split at anything not a letter or digit, and inside a word at
/// camel-case boundaries (`RedisOOMException` -> redis, oom, exception).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in text.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<char> = part.chars().collect();
        let mut current = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = c.is_uppercase()
                && prev.is_some_and(|p| {
                    p.is_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
                });
            if boundary && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.extend(c.to_lowercase());
        }
        if !current.is_empty() {
            out.push(current);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ErrorCategory::*;
    use super::*;

    #[test]
    fn splits_camel_case_and_acronyms() {
        assert_eq!(
            words("RedisOOMException: io.lettuce"),
            ["redis", "oom", "exception", "io", "lettuce"]
        );
        assert_eq!(
            words("SocketTimeoutException"),
            ["socket", "timeout", "exception"]
        );
        assert_eq!(words("ECONNREFUSED"), ["econnrefused"]);
    }

    #[test]
    fn exception_names_of_common_clients() {
        let cases = [
            ("RedisConnectionTimeoutException", Timeout),
            ("io.lettuce.core.RedisCommandTimeoutException", Timeout),
            ("java.net.SocketTimeoutException", Timeout),
            ("redis.exceptions.TimeoutError", Timeout),
            ("RedisConnectionException", Connection),
            ("JedisConnectionException", Connection),
            ("redis.exceptions.ConnectionError", Connection),
            ("java.net.ConnectException", Connection),
            ("RedisOutOfMemoryException", Memory),
            ("JedisAccessControlException", Authentication),
            ("redis.exceptions.AuthenticationError", Authentication),
            ("redis.exceptions.NoPermissionError", Authentication),
            ("RedisCommandExecutionException", Other),
            ("NullPointerException", Other),
        ];
        for (name, want) in cases {
            assert_eq!(categorize(Some(name), None), want, "{name}");
        }
    }

    #[test]
    fn messages_decide_when_the_name_says_nothing() {
        let cases = [
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                Memory,
            ),
            ("NOAUTH Authentication required.", Authentication),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                Authentication,
            ),
            (
                "NOPERM this user has no permissions to run the 'set' command",
                Authentication,
            ),
            ("Failed to set key: Connection timeout", Timeout),
            ("Read timed out", Timeout),
            ("Connection refused: /10.0.0.5:6379", Connection),
            ("Connection reset by peer", Connection),
            ("Could not get a resource from the pool", Connection),
            ("Unexpected end of stream; EOF", Connection),
            ("CLUSTERDOWN The cluster is down", Connection),
            (
                "WRONGTYPE Operation against a key holding the wrong kind of value",
                Other,
            ),
            ("Bloom filter room exhausted", Other),
        ];
        for (message, want) in cases {
            assert_eq!(
                categorize(Some("RedisCommandExecutionException"), Some(message)),
                want,
                "{message}"
            );
            assert_eq!(categorize(None, Some(message)), want, "{message}");
        }
    }

    #[test]
    fn the_name_wins_over_the_message() {
        assert_eq!(
            categorize(
                Some("JedisConnectionException"),
                Some("java.net.SocketTimeoutException: Read timed out")
            ),
            Connection
        );
    }

    #[test]
    fn nothing_known_is_other() {
        assert_eq!(categorize(None, None), Other);
        assert_eq!(categorize(Some(""), Some("")), Other);
        assert_eq!(categorize_text("Zoom room"), Other);
    }
}
