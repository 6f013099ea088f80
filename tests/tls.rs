//! TLS to Redis through rustls (ring): a trusted certificate works, an untrusted one is
//! a `tls` error, and neither panics.

mod common;

use std::time::Duration;

use common::certs::certificates;
use common::{Agent, Redis, free_port};

#[test]
fn tls_endpoints_are_verified_against_the_configured_ca() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let file = |name: &str| certs.path().join(name).display().to_string();
    let port = free_port();
    let _redis = Redis::start_on(
        free_port(),
        &[
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &file("ca.pem"),
            "--tls-auth-clients",
            "no",
        ],
    );
    let yaml = format!(
        "instances:\n\
         - uid: trusted\n  tls: {{ca_file: {ca}}}\n  endpoints: {{east: {{host: 127.0.0.1, port: {port}}}}}\n\
         - uid: untrusted\n  tls: {{ca_file: {other}}}\n  endpoints: {{east: {{host: 127.0.0.1, port: {port}}}}}\n\
         monitoring_interval: 1\ntimeouts: {{connect: 2s, command: 500ms}}\n",
        ca = file("ca.pem"),
        other = file("other-ca.pem"),
    );
    let agent = Agent::start(&yaml);
    let m = agent.wait_metrics(
        Duration::from_secs(15),
        "trusted up, untrusted refused",
        |m| {
            m.of("redis_up", "trusted", "east") == Some(1.0)
                && m.get(
                    "redis_agent_collection_errors_total",
                    &[("redis_instance", "untrusted"), ("kind", "tls")],
                )
                .is_some_and(|n| n >= 1.0)
        },
    );
    assert_eq!(m.of("redis_up", "untrusted", "east"), Some(0.0));
    assert!(!agent.log().contains("panicked"), "{}", agent.log());
}
