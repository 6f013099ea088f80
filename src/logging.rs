//! The process's log: which targets speak at which level, and output that nothing from
//! outside can forge or colour.
//!
//! Two rules, both for input the agent does not control (Redis replies, alert labels,
//! error texts of libraries):
//!
//! - **Third-party crates stay at `info`**, even with `--verbose`: the AWS SDK's debug
//!   events print its `Credentials` (the access key id) on every request, and HTTP and
//!   TLS crates log headers at trace. `--verbose` turns on the agent's own debug events;
//!   `RUST_LOG` replaces the defaults, but the crates in [`QUIET_TARGETS`] stay at
//!   `info` unless `RUST_LOG` names them.
//! - **One event is one line**: in the text format every field value and message has its
//!   control characters escaped (`\n`, `\r`, `\t`, `\x1b`, `\u{85}`, ...), so a CR LF in
//!   a value cannot start a forged line and an ANSI sequence cannot recolour or erase the
//!   terminal. The JSON format is escaped by serde_json, except C1 controls, DEL and the
//!   Unicode line separators, which [`JsonEscapes`] turns into `\uXXXX`.

use std::fmt;
use std::io::{self, IsTerminal, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};

/// Crates kept at `info` whatever `--verbose` or `RUST_LOG` says, unless `RUST_LOG`
/// names them: they handle credentials (the AWS SDK and its signer, HTTP clients and
/// servers, TLS, the Elasticsearch, OpenAI and Redis clients). A target matches by
/// prefix: `aws` covers `aws_sdk_route53`, `aws_smithy_runtime`, `aws_sigv4`, ...
pub const QUIET_TARGETS: &[&str] = &[
    "aws",
    "hyper",
    "h2",
    "rustls",
    "reqwest",
    "elasticsearch",
    "async_openai",
    "tower",
    "redis::",
];

/// The log format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Installs the global subscriber on stderr. `RUST_LOG`, when set and valid, replaces
/// the default levels (see [`directives`]).
pub fn init(verbose: bool, format: Format) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = EnvFilter::try_new(directives(verbose, rust_log.as_deref()))
        .unwrap_or_else(|_| EnvFilter::new(directives(verbose, None)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        Format::Text => builder
            .fmt_fields(EscapedFields)
            .with_writer(std::io::stderr)
            .init(),
        Format::Json => builder
            .with_writer(JsonEscapes(std::io::stderr))
            .json()
            .flatten_event(true)
            .init(),
    }
}

/// The filter: `RUST_LOG` if given, else `info` (with `--verbose`, the agent's own
/// targets at `debug`); then every [`QUIET_TARGETS`] entry that `RUST_LOG` does not
/// mention, at `info`.
pub fn directives(verbose: bool, rust_log: Option<&str>) -> String {
    let rust_log = rust_log.map(str::trim).filter(|s| !s.is_empty());
    let mut out = match rust_log {
        Some(given) => given.to_owned(),
        None if verbose => "info,redis_failover_agent=debug".to_owned(),
        None => "info".to_owned(),
    };
    for target in QUIET_TARGETS {
        if !rust_log.is_some_and(|given| given.contains(target.trim_end_matches(':'))) {
            out.push_str(&format!(",{target}=info"));
        }
    }
    out
}

/// Whether `c` must not reach a log line as it is: C0 and C1 controls and DEL (line
/// breaks, terminal escapes), the Unicode line and paragraph separators, and the bidi
/// overrides that make text display in another order than it is stored.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Writes `text` to `out` with every [`is_unsafe`] character escaped: `\n`, `\r`, `\t`
/// as such, the others as `\x1b` (ASCII) or `\u{85}`.
pub fn escape_into(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| is_unsafe(c)) {
        out.write_str(&rest[..at])?;
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_ascii() => write!(out, "\\x{:02x}", c as u32)?,
            c => write!(out, "\\u{{{:x}}}", c as u32)?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// `escape_into` as a `String`, for texts shown outside the log (check-config output).
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = escape_into(&mut out, text);
    out
}

/// The text format's fields: tracing-subscriber's own layout (`key=value`, the message
/// first), with every value and message escaped as it is written.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut escaping = Escaping(&mut writer);
        DefaultFields::new().format_fields(Writer::new(&mut escaping), fields)
    }
}

struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(&mut *self.0, s)
    }
}

/// A writer for the JSON format: serde_json escapes C0 controls but writes DEL, C1
/// controls (`U+0080`..`U+009F`, which some terminals obey as escapes) and the
/// Unicode line separators as they are. They can only occur inside JSON strings, where
/// `\uXXXX` means the same character, so the line stays valid JSON.
#[derive(Debug, Clone, Copy)]
pub struct JsonEscapes<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for JsonEscapes<M> {
    type Writer = JsonEscapes<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        JsonEscapes(self.0.make_writer())
    }
}

impl<W: Write> Write for JsonEscapes<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < buf.len() {
            let code = match buf[i..] {
                [0x7f, ..] => Some((0x7f, 1)),
                [0xc2, b @ 0x80..=0x9f, ..] => Some((u32::from(b), 2)),
                [0xe2, 0x80, b @ (0xa8 | 0xa9), ..] => Some((0x2000 + u32::from(b - 0x80), 3)),
                _ => None,
            };
            match code {
                Some((code, len)) => {
                    out.extend_from_slice(format!("\\u{code:04x}").as_bytes());
                    i += len;
                }
                None => {
                    out.push(buf[i]);
                    i += 1;
                }
            }
        }
        self.0.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    const HOSTILE: &str = "x\r\nFORGED level=ERROR\x1b[31m";

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// What one event with hostile values looks like in `format`.
    fn logged(format: Format) -> String {
        let out = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG);
        let dispatch: tracing::Dispatch = match format {
            Format::Text => builder
                .fmt_fields(EscapedFields)
                .with_writer(out.clone())
                .into(),
            Format::Json => builder
                .with_writer(JsonEscapes(out.clone()))
                .json()
                .flatten_event(true)
                .into(),
        };
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("round", endpoint = %HOSTILE);
            let _in = span.enter();
            let error = std::io::Error::other(HOSTILE);
            tracing::warn!(
                display = %HOSTILE,
                debug = ?HOSTILE,
                text = HOSTILE,
                error = &error as &dyn std::error::Error,
                c1 = "a\u{9b}31mb\u{2028}c\u{7f}",
                "collection failed: {HOSTILE}"
            );
        });
        out.text()
    }

    #[test]
    fn text_fields_and_messages_are_escaped() {
        let text = logged(Format::Text);
        assert_eq!(text.lines().count(), 1, "one event, one line:\n{text}");
        assert!(text.ends_with('\n'));
        assert!(
            !text.trim_end_matches('\n').contains(is_unsafe),
            "a raw control character: {text:?}"
        );
        let escaped_value = r"x\r\nFORGED level=ERROR\x1b[31m";
        // Message, span field, Display, error: escaped once each.
        assert!(
            text.contains(&format!("collection failed: {escaped_value}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("endpoint={escaped_value}")),
            "{text}"
        );
        assert!(text.contains(&format!("display={escaped_value}")), "{text}");
        assert!(text.contains(&format!("error={escaped_value}")), "{text}");
        // A `&str` field is written as Rust's Debug writes it: already escaped.
        assert!(
            text.contains(r#"c1="a\u{9b}31mb\u{2028}c\u{7f}""#),
            "{text}"
        );
    }

    #[test]
    fn json_lines_stay_one_line_and_valid() {
        let text = logged(Format::Json);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.trim_end_matches('\n').contains(is_unsafe), "{text:?}");
        let event: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(event["display"], HOSTILE);
        assert_eq!(event["c1"], "a\u{9b}31mb\u{2028}c\u{7f}");
    }

    #[test]
    fn escaping_covers_every_control_and_keeps_the_rest() {
        assert_eq!(escaped("plain é ✓ \\n"), "plain é ✓ \\n");
        assert_eq!(escaped("a\nb\rc\td\x1be\x00f"), r"a\nb\rc\td\x1be\x00f");
        assert_eq!(escaped("\u{85}\u{202e}"), r"\u{85}\u{202e}");
    }

    /// Which of a debug event of the AWS SDK and one of the agent get through the
    /// filter made of `directives(verbose, rust_log)`.
    fn passes(verbose: bool, rust_log: Option<&str>) -> (bool, bool) {
        let out = Captured::default();
        let filter = EnvFilter::try_new(directives(verbose, rust_log)).unwrap();
        let dispatch: tracing::Dispatch = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(out.clone())
            .into();
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "sdk event");
            tracing::debug!(target: "redis_failover_agent::collector", "agent event");
        });
        let text = out.text();
        (text.contains("sdk event"), text.contains("agent event"))
    }

    #[test]
    fn third_party_crates_stay_at_info() {
        // --verbose: the agent's debug, not the SDK's.
        assert_eq!(passes(true, None), (false, true));
        assert_eq!(passes(false, None), (false, false));
        // RUST_LOG replaces the defaults but keeps the quiet targets it does not name.
        assert_eq!(passes(false, Some("debug")), (false, true));
        assert_eq!(passes(true, Some("trace")), (false, true));
        // Named, they speak.
        assert_eq!(
            passes(false, Some("info,aws_smithy_runtime=debug")),
            (true, false)
        );
        assert_eq!(
            directives(true, None),
            "info,redis_failover_agent=debug,aws=info,hyper=info,h2=info,rustls=info,\
             reqwest=info,elasticsearch=info,async_openai=info,tower=info,redis::=info"
        );
    }
}
