//! The command line: `check-config`, bad configurations at start, the embedded default.

use std::process::{Command, Output};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"))
        .args(args)
        .env_remove("REDIS_FAILOVER_AGENT_CONFIG")
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
