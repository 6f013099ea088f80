//! Loading tests for credentials in the configuration (issue 15): no URL with
//! credentials is accepted or echoed, no secret value is echoed by a problem whatever
//! its type, a secret written in the file draws a warning; and the fuzz targets of the
//! loader.

use std::path::Path;

use super::{ConfigError, Loaded, parse};

const INSTANCES: &str = "instances:\n\
    \x20 - uid: cache\n\
    \x20   name: cache\n\
    \x20   active_dc: east\n\
    \x20   endpoints:\n\
    \x20     east: {host: 127.0.0.1, port: 6379}\n\
    \x20     west: {host: 127.0.0.2, port: 6379}\n";

fn load(extra: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse(
        &format!("{INSTANCES}{extra}"),
        "test",
        Path::new("."),
        &move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
    )
}

/// Every problem, one per line, as check-config prints them.
fn refused(extra: &str, env: &[(&str, &str)]) -> String {
    match load(extra, env) {
        Ok(_) => panic!("accepted:\n{extra}"),
        Err(e) => e.to_string(),
    }
}

const PW: &str = "hunter2-in-a-url";

/// Every key that holds a URL (or a host) refuses credentials in it, names itself, and
/// never shows the password: issue 15 found `dns_config.endpoint_url` accepted and
/// logged, and `alertmanager.urls` echoed in check-config's error.
#[test]
fn no_url_key_accepts_or_echoes_credentials() {
    let table: &[(&str, String)] = &[
        (
            "alertmanager.urls[1]",
            format!(
                "alertmanager: {{urls: ['http://am-1:9093', 'http://admin:{PW}@am-2:9093']}}\n"
            ),
        ),
        (
            "dns_config.endpoint_url",
            format!(
                "dns_provider: dry-run\ndns_config: {{zone_id: Z1, records: [],\n  \
                 endpoint_url: 'http://AKIA:{PW}@127.0.0.1:5000'}}\n"
            ),
        ),
        (
            "azure_openai.endpoint",
            format!(
                "use_azure_openai: true\nazure_openai: {{api_key: '${{K}}',\n  \
                 endpoint: 'https://user:{PW}@x.openai.azure.com'}}\n"
            ),
        ),
        (
            "azure_openai.base_url",
            format!(
                "use_azure_openai: true\nazure_openai: {{base_url: 'http://u:{PW}@llm:8000/v1'}}\n"
            ),
        ),
        (
            "elk.url",
            format!("use_elk: true\nelk: {{url: 'https://elastic:{PW}@es:9200'}}\n"),
        ),
        (
            "hooks.pre_failover",
            format!("hooks: {{pre_failover: [curl, 'https://ops:{PW}@hooks.example/drain']}}\n"),
        ),
        (
            "datacenters.east.api_url",
            format!(
                "datacenters: {{east: {{api_url: 'https://admin:{PW}@cluster:9443'}}, west: {{}}}}\n"
            ),
        ),
        (
            // A password holding `/` ends the authority early: still hidden.
            "alertmanager.urls[0]",
            format!("alertmanager: {{urls: ['http://admin:{PW}/x@am:9093']}}\n"),
        ),
        (
            "alertmanager.urls[0]",
            "alertmanager: {urls: ['${AM_URL}']}\n".to_owned(),
        ),
    ];
    for (key, extra) in table {
        let said = refused(
            extra,
            &[("K", "key"), ("AM_URL", &format!("http://u:{PW}@am:9093"))],
        );
        assert!(
            said.contains(&format!("{key}: ")) && said.contains("credentials"),
            "{key} not refused for credentials:\n{said}"
        );
        assert!(!said.contains(PW), "{key} echoed the password:\n{said}");
    }
    // Redis hosts and Sentinel addresses are not URLs, but may be written as one.
    let hosts = format!(
        "instances:\n  - uid: c2\n    endpoints:\n      east:\n        host: 'redis://u:{PW}@h'\n      \
         west:\n        host: h\n        sentinel: {{master: m, addresses: ['u:{PW}@10.0.0.5:26379']}}\n    \
         active_dc: east\n"
    );
    let said = match parse(&hosts, "test", Path::new("."), &|_| None) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    for key in [
        "instances[0].endpoints.east.host: ",
        "instances[0].endpoints.west.sentinel.addresses[0]: ",
    ] {
        assert!(said.contains(key), "{key} not refused:\n{said}");
    }
    assert!(!said.contains(PW), "a password echoed:\n{said}");
    // The same URLs without credentials load.
    let ok = load(
        "alertmanager: {urls: ['http://am-1:9093/']}\n\
         dns_provider: dry-run\n\
         dns_config: {zone_id: Z1, records: [], endpoint_url: 'http://127.0.0.1:5000'}\n\
         use_elk: true\nelk: {url: 'https://es:9200'}\n\
         hooks: {pre_failover: [curl, 'https://hooks.example/a@b']}\n",
        &[],
    )
    .unwrap();
    assert_eq!(ok.config.alertmanager.unwrap().urls, ["http://am-1:9093"]);
}

/// Every secret key, with where it sits in a configuration that otherwise loads.
/// `{}` is replaced by the value under test.
const SECRET_SITES: &[(&str, &str)] = &[
    (
        "instances[0].password",
        "instances:\n  - uid: c\n    password: {}\n    endpoints: {east: {host: h}}\n",
    ),
    (
        "instances[0].endpoints.east.password",
        "instances:\n  - uid: c\n    endpoints:\n      east: {host: h, password: {}}\n",
    ),
    ("api.api_key", "api:\n  api_key: {}\n"),
    ("webhook.bearer_token", "webhook:\n  bearer_token: {}\n"),
    (
        "elk.password",
        "elk:\n  url: https://es:9200\n  username: u\n  password: {}\n",
    ),
    (
        "azure_openai.api_key",
        "azure_openai:\n  endpoint: https://x.openai.azure.com\n  api_key: {}\n",
    ),
    (
        "dns_config.aws_access_key",
        "dns_provider: dry-run\ndns_config:\n  zone_id: Z\n  records: []\n  aws_access_key: {}\n",
    ),
    (
        "dns_config.aws_secret_key",
        "dns_provider: dry-run\ndns_config:\n  zone_id: Z\n  records: []\n  aws_secret_key: {}\n",
    ),
    (
        "dns_config.tsig.secret",
        "dns_provider: rfc2136\ndns_config:\n  server: ns1\n  zone: example.com\n  records: []\n  tsig:\n    name: k\n    secret: {}\n",
    ),
];

/// The configuration with `value` (YAML text) at `site`, plus an instance when the
/// site does not bring its own.
fn with_secret(site: &str, value: &str) -> String {
    let text = site.replace("{}", value);
    if text.starts_with("instances:") {
        text
    } else {
        format!("instances:\n  - uid: c\n    endpoints: {{east: {{host: h}}}}\n{text}")
    }
}

fn parse_text(text: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse(text, "test", Path::new("."), &move |name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
}

/// Issue 15: `api_key: 123456789012345678901234567890` (too large for a u64) was echoed
/// by the YAML reader's error. A secret of the wrong type names its key and never shows
/// its value, whatever the type and however deep the value sits.
#[test]
fn secrets_of_the_wrong_type_are_never_echoed() {
    const DIGITS: &str = "987654321987";
    let values = [
        DIGITS.to_owned(),
        format!("{DIGITS}.5"),
        // Larger than u64 and u128: the reader itself refuses the first.
        format!("{DIGITS}{DIGITS}{DIGITS}"),
        format!("{DIGITS}{DIGITS}{DIGITS}{DIGITS}{DIGITS}{DIGITS}{DIGITS}"),
        format!("[{DIGITS}, 'x{DIGITS}']"),
        format!("{{x: {DIGITS}, y: 'x{DIGITS}'}}"),
        format!("!custom x{DIGITS}"),
        format!("'x{DIGITS}${{'"),
        format!("'x{DIGITS}${{not a name}}'"),
    ];
    for (key, site) in SECRET_SITES {
        for value in &values {
            let text = with_secret(site, value);
            let said = match parse_text(&text, &[]) {
                Ok(_) => panic!("{key}: {value} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(said.contains(key), "{key} not named for {value}:\n{said}");
            assert!(!said.contains(DIGITS), "{key} echoed {value}:\n{said}");
        }
    }
}

/// Issue 15: a literal `bearer_token` in the file drew no warning. Every secret written
/// in the file itself (or only as a `${VAR:-default}`'s default) draws one that names
/// the key without the value; from `${VAR}` or `*_file`, none.
#[test]
fn a_secret_written_in_the_file_draws_a_warning() {
    // Base64, as a TSIG secret must be ("literal-secret-0123456789abcdef").
    const VALUE: &str = "bGl0ZXJhbC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, VALUE).unwrap();
    for (key, site) in SECRET_SITES {
        let name = key.rsplit('.').next().unwrap();
        let warnings = |text: String, env: &[(&str, &str)]| -> Vec<String> {
            match parse_text(&text, env) {
                Ok(l) => l.warnings,
                Err(e) => panic!("{key}: {e}\n{text}"),
            }
        };
        let literal = warnings(with_secret(site, VALUE), &[]);
        let about: Vec<&String> = literal.iter().filter(|w| w.starts_with(key)).collect();
        assert_eq!(about.len(), 1, "{key}: {literal:#?}");
        assert!(about[0].contains("${VARIABLE}") && about[0].contains(&format!("{name}_file")));
        assert!(!literal.iter().any(|w| w.contains(VALUE)), "{literal:#?}");

        let default_only = warnings(with_secret(site, &format!("'${{UNSET:-{VALUE}}}'")), &[]);
        assert!(default_only.iter().any(|w| w.starts_with(key)), "{key}");

        let from_env = warnings(with_secret(site, "'${S}'"), &[("S", VALUE)]);
        assert!(
            !from_env.iter().any(|w| w.starts_with(key)),
            "{from_env:#?}"
        );

        let from_file = with_secret(site, "x").replace(
            &format!("{name}: x"),
            &format!("{name}_file: {}", file.display()),
        );
        let from_file = warnings(from_file, &[]);
        assert!(
            !from_file.iter().any(|w| w.starts_with(key)),
            "{from_file:#?}"
        );
    }
}

mod fuzz {
    //! Fuzz targets of the configuration loader (`FUZZ_SEED`, `FUZZ_CASES`; see
    //! `crate::fuzz`): it never panics, every refusal is a list of problems, and a
    //! secret put anywhere never shows in a problem or a warning.

    use std::path::Path;

    use proptest::prelude::*;
    use proptest::sample::Index;
    use serde_yaml::Value;

    use crate::config::{ConfigError, EMBEDDED_DEFAULT, parse};

    /// Valid configurations to start from.
    const BASES: &[&str] = &[
        EMBEDDED_DEFAULT,
        include_str!("../../examples/two-datacenters.yaml"),
        include_str!("../../examples/seed-000-config.json"),
        include_str!("../../examples/compose.yaml"),
    ];

    /// Bits of YAML, JSON and of this configuration, to build text from.
    const TOKENS: &[&str] = &[
        "\n",
        "\n  ",
        "\n    ",
        "  ",
        "- ",
        ": ",
        ", ",
        "{",
        "}",
        "[",
        "]",
        "'",
        "\"",
        "#",
        "&a ",
        "*a",
        "<<: *a",
        "!tag ",
        "!!str ",
        "!!binary ",
        "---\n",
        "...\n",
        "|\n",
        ">\n",
        "? ",
        "\t",
        "${",
        "${X}",
        "${UNSET}",
        "${X:-",
        "$${",
        "}",
        "~",
        "null",
        "true",
        "0",
        "-1",
        "1e999",
        "0x1F",
        "99999999999999999999999999999",
        ".inf",
        "1.5",
        "10ms",
        "2h",
        "instances",
        "uid",
        "endpoints",
        "host",
        "port",
        "east",
        "west",
        "active_dc",
        "datacenters",
        "password",
        "password_file",
        "api_key",
        "bearer_token",
        "webhook",
        "alertmanager",
        "urls",
        "dns_provider",
        "route53",
        "dns_config",
        "records",
        "endpoint_url",
        "http://u:p@h",
        "https://h:9200",
        "elk",
        "use_elk",
        "url",
        "limits",
        "hooks",
        "pre_failover",
        "timeouts",
        "monitoring_interval",
        "azure_openai",
        "use_azure_openai",
        "tls",
        "sentinel",
        "\u{0}",
        "\u{1b}[31m",
        "é",
        "\u{feff}",
        "\r\n",
        "\\",
    ];

    fn env(name: &str) -> Option<String> {
        (name == "X").then(|| "1".to_owned())
    }

    /// Parses `text`; fails the case on a refusal that is not a non-empty problem list.
    /// Returns every line the agent would print.
    fn load(text: &str) -> Result<String, TestCaseError> {
        match parse(text, "fuzz", Path::new("/nonexistent"), &env) {
            Ok(loaded) => Ok(loaded.warnings.join("\n")),
            Err(ConfigError::Invalid { problems, .. }) => {
                prop_assert!(!problems.is_empty(), "refused without a problem");
                let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                for line in &text {
                    prop_assert!(!line.contains('\n'), "a problem on two lines: {line:?}");
                }
                Ok(text.join("\n"))
            }
            Err(e) => Err(TestCaseError::fail(format!("not a problem list: {e}"))),
        }
    }

    /// One edit of a line-based text.
    #[derive(Debug, Clone)]
    enum Edit {
        Delete(Index),
        Duplicate(Index),
        Swap(Index, Index),
        Insert(Index, Index, usize),
        Truncate(Index),
        Indent(Index, bool),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            any::<Index>().prop_map(Edit::Delete),
            any::<Index>().prop_map(Edit::Duplicate),
            (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
            (any::<Index>(), any::<Index>(), 0..TOKENS.len())
                .prop_map(|(l, c, t)| Edit::Insert(l, c, t)),
            any::<Index>().prop_map(Edit::Truncate),
            (any::<Index>(), any::<bool>()).prop_map(|(l, more)| Edit::Indent(l, more)),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        for e in edits {
            if lines.is_empty() {
                break;
            }
            match e {
                Edit::Delete(i) => {
                    lines.remove(i.index(lines.len()));
                }
                Edit::Duplicate(i) => {
                    let i = i.index(lines.len());
                    lines.insert(i, lines[i].clone());
                }
                Edit::Swap(a, b) => {
                    let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                    lines.swap(a, b);
                }
                Edit::Insert(l, c, t) => {
                    let n = l.index(lines.len());
                    let line = &mut lines[n];
                    let mut at = c.index(line.len() + 1);
                    while !line.is_char_boundary(at) {
                        at -= 1;
                    }
                    line.insert_str(at, TOKENS[*t]);
                }
                Edit::Truncate(i) => lines.truncate(i.index(lines.len()) + 1),
                Edit::Indent(i, more) => {
                    let n = i.index(lines.len());
                    let line = &mut lines[n];
                    if *more {
                        line.insert_str(0, "  ");
                    } else if let Some(rest) = line.strip_prefix("  ") {
                        *line = rest.to_owned();
                    }
                }
            }
        }
        lines.join("\n")
    }

    /// Keys that hold secrets, and keys that hold URLs or hosts.
    const SECRET_KEYS: &[&str] = &[
        "password",
        "api_key",
        "bearer_token",
        "aws_access_key",
        "aws_secret_key",
        "api_password",
        "token",
        "Authorization",
    ];
    const URL_KEYS: &[&str] = &[
        "url",
        "urls",
        "endpoint",
        "endpoint_url",
        "base_url",
        "api_url",
        "host",
        "addresses",
        "pre_failover",
    ];

    /// A value holding `marker`, in one of the shapes a careless file could give it.
    fn shaped(marker: &str, digits: &str, shape: usize) -> Value {
        let text = match shape {
            0 => marker.to_owned(),
            1 => digits.to_owned(),
            2 => format!("{digits}{digits}"),
            3 => format!("[{marker}, {digits}]"),
            4 => format!("{{x: {marker}, y: {digits}}}"),
            5 => format!("'{marker}${{'"),
            6 => format!("'${{{marker} x}}'"),
            7 => format!("!tag {marker}"),
            8 => format!("{digits}.5"),
            9 => format!("'{marker}\u{1b}[2J'"),
            _ => format!("[[{{deep: [{marker}]}}]]"),
        };
        serde_yaml::from_str(&text).unwrap_or(Value::String(marker.to_owned()))
    }

    /// Every mapping in `value`, by its path of keys and indices.
    fn mappings(value: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match value {
            Value::Mapping(map) => {
                out.push(path.clone());
                for (k, v) in map {
                    path.push(k.clone());
                    mappings(v, path, out);
                    path.pop();
                }
            }
            Value::Sequence(items) => {
                for (i, v) in items.iter().enumerate() {
                    path.push(Value::Number(i.into()));
                    mappings(v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn at<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
        path.iter().fold(value, |v, step| match (v, step) {
            (Value::Sequence(items), Value::Number(n)) => &mut items[n.as_u64().unwrap() as usize],
            (Value::Mapping(map), key) => map.get_mut(key).unwrap(),
            _ => unreachable!("paths come from `mappings`"),
        })
    }

    proptest! {
        #![proptest_config(crate::fuzz::config(512))]

        /// Text built from YAML and configuration tokens.
        #[test]
        fn fuzz_config_text(tokens in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
            let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
            load(&text)?;
        }

        /// A valid configuration with lines deleted, repeated, swapped, cut, re-indented
        /// and with tokens inserted.
        #[test]
        fn fuzz_config_mutated(
            base in 0..BASES.len(),
            edits in proptest::collection::vec(edit(), 1..6),
        ) {
            load(&apply(BASES[base], &edits))?;
        }

        /// A secret (or a URL with credentials) put into any block of a valid
        /// configuration, in any shape, never shows in what the loader says.
        #[test]
        fn fuzz_config_secret_never_echoed(
            base in 0..BASES.len(),
            place in any::<Index>(),
            url in any::<bool>(),
            key in any::<Index>(),
            shape in 0..11usize,
            marker in "[A-Z]{4}[a-z0-9]{12}",
            digits in "9[0-9]{14,30}",
        ) {
            let mut tree: Value = serde_yaml::from_str(BASES[base]).unwrap();
            let mut places = Vec::new();
            mappings(&tree, &mut Vec::new(), &mut places);
            let path = &places[place.index(places.len())];
            let (key, value) = if url {
                let key = URL_KEYS[key.index(URL_KEYS.len())];
                let url = format!("http://user:{marker}@host.example:1/");
                let value = if shape % 2 == 0 {
                    Value::String(url)
                } else {
                    Value::Sequence(vec![Value::String(url)])
                };
                (key, value)
            } else {
                (SECRET_KEYS[key.index(SECRET_KEYS.len())], shaped(&marker, &digits, shape))
            };
            if let Value::Mapping(map) = at(&mut tree, path) {
                map.insert(Value::String(key.to_owned()), value);
            }
            let text = serde_yaml::to_string(&tree).unwrap();
            let said = load(&text)?;
            prop_assert!(!said.contains(&marker), "{key} at {path:?}:\n{said}");
            prop_assert!(!said.contains(&digits), "{key} at {path:?}:\n{said}");
        }
    }
}
