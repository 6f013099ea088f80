//! The command line: `check-config`, bad configurations at start, the embedded default;
//! the environment variables of the flags; `healthcheck` and `status` against a running
//! agent; the shell completions, manual pages and `scripts/dist.sh`.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{Agent, Redis, closed_port, wait_for};

fn agent(args: &[&str]) -> Output {
    agent_with_env(args, &[])
}

/// The binary with `args` and `env`, and no other `REDIS_FAILOVER_AGENT_*` variable.
fn agent_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"));
    for (name, _) in std::env::vars() {
        if name.starts_with("REDIS_FAILOVER_AGENT_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the agent binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_seed_configuration_loads_unchanged() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-000-config.json");
    let out = agent(&["check-config", "--config", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("1 instances, 2 endpoints, 2 datacenters"),
        "{said}"
    );
    assert!(said.contains("alert_endpoints: ignored"), "{said}");
    assert!(
        !said.contains("YOUR_REDIS_PASSWORD"),
        "a secret was printed: {said}"
    );
}

#[test]
fn the_two_datacenter_example_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/two-datacenters.yaml");
    let out = agent(&["check-config", "--config", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn every_problem_is_listed_and_the_exit_status_is_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "instances:\n\
         \x20 - uid: cache\n\
         \x20   endpoints:\n\
         \x20     east: {host: 127.0.0.1, port: 70000, password: hunter2-secret}\n\
         monitoring_intervall: 10\n\
         monitoring_interval: 0\n",
    )
    .unwrap();
    let out = agent(&["check-config", "--config", path.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(64), "{said}");
    assert!(
        said.contains("monitoring_intervall: unknown key (did you mean `monitoring_interval`?)"),
        "{said}"
    );
    assert!(
        said.contains("monitoring_interval: 0 s is not allowed, use 1 s or more"),
        "{said}"
    );
    assert!(
        said.contains("instances[0].endpoints.east.port: 70000 is not a TCP port"),
        "{said}"
    );
    assert!(said.contains("3 problem(s)"), "{said}");
    assert!(
        !said.contains("hunter2-secret"),
        "a secret was printed: {said}"
    );

    // Running with it refuses to start, with the same list.
    let out = agent(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("70000 is not a TCP port"));
}

#[test]
fn type_errors_unset_variables_and_secret_files_are_reported_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "instances:\n\
         \x20 - uid: cache\n\
         \x20   active_dc: nowhere\n\
         \x20   password_file: missing-secret.txt\n\
         \x20   endpoints:\n\
         \x20     east: {host: 127.0.0.1, port: '${RFA_TEST_UNSET_PORT}'}\n\
         \x20     west: {host: 127.0.0.1, port: lots}\n\
         datacenters: {east: {name: East}}\n\
         anomaly_threshold: 1.5\n\
         auto_failover: maybe\n",
    )
    .unwrap();
    let out = agent(&["check-config", "--config", path.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(64), "{said}");
    for expected in [
        "instances[0].endpoints.east.port: environment variable RFA_TEST_UNSET_PORT is not set",
        "instances[0].endpoints.west.port: \"lots\" is not valid",
        "instances[0].endpoints.west: datacenter \"west\" is not under datacenters (east)",
        "instances[0].password_file: cannot read",
        "instances[0].active_dc: \"nowhere\" is not one of this instance's endpoints",
        "anomaly_threshold: 1.5 is outside 0 to 1",
        "auto_failover: \"maybe\" is not valid",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
}

#[test]
fn secrets_come_from_files_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw.txt"), "from-a-file\n").unwrap();
    let path = dir.path().join("ok.yaml");
    std::fs::write(
        &path,
        "instances:\n\
         \x20 - uid: cache\n\
         \x20   password_file: pw.txt\n\
         \x20   endpoints: {east: {host: '${RFA_TEST_HOST:-127.0.0.1}', port: '${RFA_TEST_PORT}'}}\n\
         api: {api_key: '${RFA_TEST_KEY}'}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"))
        .args(["check-config", "--config", path.to_str().unwrap()])
        .env("RFA_TEST_PORT", "6390")
        .env("RFA_TEST_KEY", "k3y")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !text(&out).contains("a secret is written"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_embedded_default_is_valid() {
    let out = agent(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("embedded default: OK (1 instances, 1 endpoints, 1 datacenters)"));
}

/// Issue 15: an `alertmanager.urls` entry with credentials was echoed in check-config's
/// error, `dns_config.endpoint_url` with them was accepted, and a numeric `api_key` too
/// large for a u64 was echoed by the YAML reader. All are refused (exit 64), named, and
/// the secrets appear nowhere in what the agent prints.
#[test]
fn check_config_never_prints_a_credential() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "instances:\n\
         \x20 - uid: cache\n\
         \x20   endpoints: {east: {host: 127.0.0.1}}\n\
         alertmanager: {urls: ['http://admin:am-pass-0451@am:9093']}\n\
         dns_provider: dry-run\n\
         dns_config: {zone_id: Z1, records: [], endpoint_url: 'http://AKIA:dns-pass-0451@moto:5000'}\n\
         webhook: {bearer_token: [bearer-0451-0451-0451]}\n",
    )
    .unwrap();
    let out = agent(&["check-config", "--config", path.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(64), "{said}");
    for key in [
        "alertmanager.urls[0]: \"http://***@am:9093\" must not contain credentials",
        "dns_config.endpoint_url: \"http://***@moto:5000\" must not contain credentials",
        "webhook.bearer_token: must be a string (value hidden)",
    ] {
        assert!(said.contains(key), "missing {key:?} in:\n{said}");
    }
    assert!(!said.contains("0451"), "a secret was printed:\n{said}");

    // The YAML reader refuses a number too large for any integer type by itself.
    std::fs::write(
        &path,
        "instances: [{uid: cache, endpoints: {east: {host: 127.0.0.1}}}]\n\
         api: {api_key: 123456789012345678901234567890}\n",
    )
    .unwrap();
    let out = agent(&["check-config", "--config", path.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(64), "{said}");
    assert!(
        said.contains("api.api_key: a number too large to read"),
        "{said}"
    );
    assert!(!said.contains("123456789"), "a secret was printed:\n{said}");
}

#[test]
fn a_fleet_section_is_checked_like_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let base = "instances:\n\
                \x20 - uid: cache\n\
                \x20   active_dc: a\n\
                \x20   endpoints:\n\
                \x20     a: {host: 127.0.0.1, port: 6379}\n\
                \x20     b: {host: 127.0.0.1, port: 6380}\n";
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        format!(
            "{base}coordination:\n\
             \x20 etcd: {{endpoints: [http://127.0.0.1:2379], lease_ttl: 5s}}\n\
             \x20 agent: {{name: agent-a, datacenter: a}}\n\
             \x20 agents: [{{name: agent-a, datacenter: a}}, {{name: agent-b, datacenter: b}}, {{name: agent-c}}]\n\
             \x20 quorum: 2\n"
        ),
    )
    .unwrap();
    let out = agent(&["check-config", "--config", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!(
            "{base}coordination:\n\
             \x20 etcd: {{endpoints: [], lease_ttl: 1s, password: etcd-secret-pw}}\n\
             \x20 agent: {{name: 'agent a', datacenter: c}}\n\
             \x20 agents: [{{name: agent-b, datacenter: z}}, {{name: agent-b}}]\n\
             \x20 quorum: 0\n"
        ),
    )
    .unwrap();
    let out = agent(&["check-config", "--config", bad.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(64), "{said}");
    for key in [
        "coordination.etcd.endpoints",
        "coordination.etcd.lease_ttl",
        "coordination.agent.name",
        "coordination.agent.datacenter",
        "coordination.agents[0].datacenter",
        "coordination.agents[1].name",
        "coordination.quorum",
    ] {
        assert!(said.contains(key), "{key} is not named: {said}");
    }
    assert!(
        !said.contains("etcd-secret-pw"),
        "a secret was printed: {said}"
    );
}

const API_KEY: &str = "cli-test-api-key-0123456789abcdef";

/// An agent watching one Redis as instance `app` in datacenter `east`, with an operator
/// API key read from `${RFA_CLI_TEST_KEY}`.
fn watching(redis: &Redis) -> Agent {
    let yaml = common::config(
        &[("app", &[("east", redis.port)])],
        "api: {api_key: '${RFA_CLI_TEST_KEY}'}\n",
    );
    Agent::start_with_env(&yaml, &[("RFA_CLI_TEST_KEY", API_KEY)])
}

#[test]
fn environment_variables_stand_for_the_flags() {
    let redis = Redis::start(&[]);
    // The configuration names a port that cannot be bound: the agent serves only because
    // REDIS_FAILOVER_AGENT_LISTEN overrides it, as --listen would.
    let (_held, taken) = closed_port();
    let yaml = common::config(
        &[("app", &[("east", redis.port)])],
        &format!(
            "auto_failover: true\napi: {{host: 127.0.0.1, port: {taken}, api_key: {API_KEY}}}\n"
        ),
    );
    let env = [
        ("REDIS_FAILOVER_AGENT_LISTEN", "127.0.0.1:0"),
        ("REDIS_FAILOVER_AGENT_LOG_FORMAT", "json"),
        ("REDIS_FAILOVER_AGENT_NO_FAILOVER", "true"),
    ];
    let agent = Agent::start_full(&yaml, &env, &[]);
    assert_ne!(agent.port, taken);
    let started = agent
        .log()
        .lines()
        .find(|l| l.contains("agent started"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(&started).is_ok(),
        "REDIS_FAILOVER_AGENT_LOG_FORMAT=json did not give JSON logs: {started}"
    );
    let (code, body) = common::http_request(
        agent.port,
        "GET",
        "/api/status",
        &[("X-API-Key", API_KEY)],
        b"",
    )
    .expect("GET /api/status");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["auto_failover"], false,
        "REDIS_FAILOVER_AGENT_NO_FAILOVER=true did not stop acting: {body}"
    );

    // A value that is not a yes or no is refused and named, as a bad flag is.
    let out = agent_with_env(
        &["check-config"],
        &[("REDIS_FAILOVER_AGENT_NO_FAILOVER", "perhaps")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--no-failover"), "{}", text(&out));

    // --help shows each variable.
    let help = text(&agent_with_env(&["--help"], &[]));
    for name in [
        "CONFIG",
        "LISTEN",
        "NO_FAILOVER",
        "JOURNAL_START_OVER",
        "VERBOSE",
        "LOG_FORMAT",
    ] {
        assert!(
            help.contains(&format!("[env: REDIS_FAILOVER_AGENT_{name}=")),
            "{name} is not in --help:\n{help}"
        );
    }
}

#[test]
fn healthcheck_answers_for_the_agent_as_it_listens() {
    let redis = Redis::start(&[]);
    let agent = watching(&redis);
    let config = agent.config.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", agent.port);

    // In the agent's container: the same configuration and environment, no flag.
    let out = agent_with_env(
        &["healthcheck", "--config", config],
        &[("REDIS_FAILOVER_AGENT_LISTEN", &listen)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("/healthz answered 200"),
        "{}",
        text(&out)
    );

    // --ready asks /readyz, 200 once the first round is done.
    let url = format!("http://{listen}");
    wait_for(Duration::from_secs(10), "/readyz to answer 200", || {
        let out = agent_with_env(&["healthcheck", "--ready", "--url", &url], &[]);
        (out.status.code() == Some(0)).then_some(())
    });

    // From api.host and api.port: 0.0.0.0 is asked on loopback.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(
        &path,
        format!(
            "instances: [{{uid: app, endpoints: {{east: {{host: 127.0.0.1, port: {}}}}}}}]\n\
             api: {{host: 0.0.0.0, port: {}}}\n",
            redis.port, agent.port
        ),
    )
    .unwrap();
    let out = agent_with_env(&["healthcheck", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("http://127.0.0.1:"), "{}", text(&out));
}

#[test]
fn healthcheck_fails_in_one_line_on_a_closed_port() {
    let (_held, port) = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = agent_with_env(&["healthcheck", "--url", &url, "--timeout", "2s"], &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.starts_with("healthcheck: GET "), "{said}");
    assert!(said.to_lowercase().contains("refused"), "{said}");

    // An unreadable configuration is one line too, and no request is made.
    let out = agent_with_env(&["healthcheck", "--config", "/nonexistent/agent.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(text(&out).lines().count(), 1, "{}", text(&out));
}

/// `openssl s_server -www` on loopback with a self-signed certificate for 127.0.0.1: a
/// listener with TLS that answers GET with 200.
struct TlsServer {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        common::require("openssl", "openssl");
        let dir = tempfile::tempdir().unwrap();
        let made = Command::new("openssl")
            .current_dir(dir.path())
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .args(["-keyout", "key.pem", "-out", "cert.pem"])
            .output()
            .unwrap();
        assert!(made.status.success(), "openssl req: {}", text(&made));
        let port = common::free_port();
        let child = Command::new("openssl")
            .current_dir(dir.path())
            .args([
                "s_server", "-www", "-quiet", "-cert", "cert.pem", "-key", "key.pem",
            ])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for(
            Duration::from_secs(10),
            "openssl s_server to listen",
            || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        );
        TlsServer {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A listener with TLS (`--web.config.file`) is asked at `--url https://...`; a
/// self-signed certificate needs `--insecure`, and without it the refusal says why.
#[test]
fn healthcheck_speaks_tls() {
    let server = TlsServer::start();
    let url = format!("https://127.0.0.1:{}", server.port);
    let out = agent_with_env(&["healthcheck", "--url", &url, "--insecure"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = agent_with_env(&["healthcheck", "--url", &url], &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.to_lowercase().contains("certificate"), "{said}");
}

#[test]
fn status_prints_the_table_with_the_configured_key() {
    let redis = Redis::start(&[]);
    let agent = watching(&redis);
    let config = agent.config.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", agent.port);
    let env = [
        ("REDIS_FAILOVER_AGENT_LISTEN", listen.as_str()),
        ("RFA_CLI_TEST_KEY", API_KEY),
    ];

    // The key comes from the configuration (api.api_key, here from ${RFA_CLI_TEST_KEY}).
    let table = wait_for(Duration::from_secs(10), "the endpoint to be up", || {
        let out = agent_with_env(&["status", "--config", config], &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        table.contains(" up ").then_some(table)
    });
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("auto failover: off"), "{table}");
    assert!(
        lines[1].starts_with("INSTANCE  ACTIVE  DATACENTER  UP"),
        "{table}"
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&row[..4], ["app", "east", "east", "up"], "{table}");
    assert!(lines[2].contains("s ago"), "{table}");
    assert!(!table.contains(API_KEY), "the key was printed: {table}");

    // --json: the answer as it came.
    let out = agent_with_env(&["status", "--config", config, "--json"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["instances"][0]["instance_uid"], "app");

    // The key by the environment, the address by --url.
    let url = format!("http://{listen}");
    let out = agent_with_env(
        &["status", "--url", &url],
        &[("REDIS_FAILOVER_AGENT_API_KEY", API_KEY)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn status_errors_are_one_line_without_the_key() {
    let redis = Redis::start(&[]);
    let agent = watching(&redis);
    let url = format!("http://127.0.0.1:{}", agent.port);
    let wrong = "wrong-key-that-must-not-be-printed";

    let out = agent_with_env(&["status", "--url", &url, "--api-key", wrong], &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("401"), "{said}");
    assert!(said.contains("missing or wrong X-API-Key header"), "{said}");
    assert!(
        !said.contains(wrong) && !said.contains(API_KEY),
        "a key was printed: {said}"
    );

    // Without any key: the same refusal, with where to put one.
    let out = agent_with_env(&["status", "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("REDIS_FAILOVER_AGENT_API_KEY"),
        "{}",
        text(&out)
    );

    // Nothing listening.
    let (_held, port) = closed_port();
    let closed = format!("http://127.0.0.1:{port}");
    let out = agent_with_env(&["status", "--url", &closed, "--api-key", wrong], &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.to_lowercase().contains("refused"), "{said}");
    assert!(!said.contains(wrong), "a key was printed: {said}");
}

#[test]
fn status_says_when_the_api_is_disabled() {
    let redis = Redis::start(&[]);
    let yaml = common::config(
        &[("app", &[("east", redis.port)])],
        "api: {enabled: false}\n",
    );
    let agent = Agent::start(&yaml);
    let url = format!("http://127.0.0.1:{}", agent.port);
    let out = agent_with_env(&["status", "--url", &url, "--api-key", API_KEY], &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("the operator API is disabled"), "{said}");
}

/// The commands and long flags that `--help` of `command` lists.
fn listed(command: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut args = command.to_vec();
    args.push("--help");
    let help = String::from_utf8(agent_with_env(&args, &[]).stdout).unwrap();
    let commands = help
        .split("Commands:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| !l.is_empty())
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| *c != "help")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let flags = help
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(',').to_owned())
        .filter(|w| w.len() > 2)
        .collect();
    (commands, flags)
}

#[test]
fn the_manual_names_every_command_and_flag() {
    let (commands, flags) = listed(&[]);
    assert!(commands.len() >= 5, "{commands:?}");
    let page = text(&agent(&["man"]));
    assert!(
        page.starts_with(".ie") || page.contains("\n.TH redis-failover-agent 1"),
        "{page}"
    );
    // roff writes a hyphen as \-.
    let roff = |s: &str| s.replace('-', "\\-");
    for name in commands.iter().chain(&flags) {
        assert!(
            page.contains(&roff(name)),
            "the manual does not mention {name}"
        );
    }
    for command in &commands {
        let out = agent(&["man", command]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let page = String::from_utf8(out.stdout).unwrap();
        assert!(
            page.contains(&format!(".TH redis-failover-agent-{command} 1")),
            "{page}"
        );
        let (_, flags) = listed(&[command]);
        for flag in flags {
            assert!(
                page.contains(&roff(&flag)),
                "man {command} does not mention {flag}"
            );
        }
    }
    let out = agent(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("check-config"), "{}", text(&out));
}

#[test]
fn the_bash_completion_parses_and_knows_the_commands() {
    let out = agent(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let script = String::from_utf8(out.stdout).unwrap();
    for word in ["healthcheck", "status", "--api-key", "--log-format"] {
        assert!(script.contains(word), "the completion lacks {word}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redis-failover-agent.bash");
    std::fs::write(&path, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", text(&check));
}

#[test]
fn dist_writes_the_archive_with_completions_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dist.sh"))
        .args(["--bin", env!("CARGO_BIN_EXE_redis-failover-agent")])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let version = env!("CARGO_PKG_VERSION");
    let unpacked = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("the unpacked directory");
    let name = unpacked.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("redis-failover-agent-{version}-")),
        "{name}"
    );
    assert!(dir.path().join(format!("{name}.tar.gz")).is_file());
    for file in [
        "redis-failover-agent",
        "LICENSE",
        "completions/redis-failover-agent.bash",
        "completions/_redis-failover-agent",
        "completions/redis-failover-agent.fish",
        "man/man1/redis-failover-agent.1",
        "man/man1/redis-failover-agent-healthcheck.1",
        "man/man1/redis-failover-agent-status.1",
    ] {
        assert!(unpacked.join(file).is_file(), "{file} is missing");
    }
}

#[test]
fn a_bad_web_config_file_stops_the_agent_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n\
         \x20 cert_file: missing.pem\n\
         \x20 key: 'inline-key-hunter2'\n\
         \x20 client_auth_type: RequireAnyClientCert\n\
         \x20 curve_preferences: [X25519]\n\
         basic_auth_users:\n\
         \x20 prometheus: plain-hunter2-password\n\
         http_server_config: {http3: true}\n\
         rate_limit: {interval: 1s}\n",
    )
    .unwrap();
    let out = agent(&["--web.config.file", web.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(64), "{said}");
    for expected in [
        "web configuration",
        "7 problem(s)",
        "rate_limit: unknown key",
        "http_server_config.http3: unknown key (did you mean `http2`?)",
        "tls_server_config.curve_preferences: is not supported",
        "tls_server_config.cert_file: cannot read",
        "tls_server_config.key: holds no PEM private key",
        "tls_server_config.client_auth_type: \"RequireAnyClientCert\" takes a certificate without verifying it",
        "basic_auth_users.prometheus: is not a bcrypt hash (value hidden)",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
    assert!(!said.contains("hunter2"), "a secret was printed: {said}");

    // check-config finds the same problems without starting anything.
    let out = agent(&["--web.config.file", web.to_str().unwrap(), "check-config"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(64), "{said}");
    assert!(said.contains("embedded default: OK"), "{said}");
    assert!(said.contains("7 problem(s)"), "{said}");
    assert!(!said.contains("hunter2"), "a secret was printed: {said}");
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "http_server_config: {headers: {X-Frame-Options: deny}}\n",
    )
    .unwrap();
    let out = agent(&["check-config", "--web.config.file", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("good.yml: OK (TLS off, 0 basic-auth user(s))"),
        "{}",
        text(&out)
    );

    // The same from the environment; a file that is not there is named.
    let out = Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"))
        .env(
            "REDIS_FAILOVER_AGENT_WEB_CONFIG_FILE",
            dir.path().join("none.yml"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("none.yml"), "{}", text(&out));
}

#[test]
fn web_flags_are_checked_before_anything_starts() {
    for (flag, value, expected) in [
        ("--web.listen-address", "localhost", "is not an address"),
        (
            "--web.telemetry-path",
            "/healthz",
            "one of the agent's other routes",
        ),
        ("--web.telemetry-path", "metrics", "is not a path"),
    ] {
        let out = agent(&[flag, value]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains(expected), "{flag} {value}: {said}");
    }
}
