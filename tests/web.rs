//! The listener under `--web.config.file`, as Prometheus meets it: TLS with a client
//! certificate required, basic auth, gzip, a telemetry path of its own, the `process_*`
//! series, and a SIGHUP that changes the password.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::certs::certificates;
use common::{Redis, assert_promtool_clean, config, kill, wait_for};
use reqwest::{Certificate, Client, Identity, StatusCode, header};

/// The agent binary with extra arguments; its port read from its "agent started" line
/// (a plain HTTP probe cannot tell when a TLS listener is up).
struct Agent {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &Path, yaml: &str, args: &[&str]) -> Agent {
        let config = dir.join("agent.yaml");
        std::fs::write(
            &config,
            format!("{yaml}\nstate_dir: {}\n", dir.join("state").display()),
        )
        .unwrap();
        let log = dir.join("agent.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"))
            .arg("--config")
            .arg(&config)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let port = wait_for(Duration::from_secs(20), "the agent to listen", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the agent exited with {status}:\n{}", read(&log));
            }
            let text = read(&log);
            let line = text.lines().find(|l| l.contains("agent started"))?;
            let at = line.find("127.0.0.1:")? + "127.0.0.1:".len();
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        });
        Agent { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A client that trusts `ca.pem` and shows `identity` (`client`, `stranger`) if any.
fn client(dir: &Path, identity: Option<&str>) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let mut builder = Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30));
    if let Some(name) = identity {
        let mut pem = std::fs::read(dir.join(format!("{name}.pem"))).unwrap();
        pem.extend(std::fs::read(dir.join(format!("{name}.key"))).unwrap());
        builder = builder.identity(Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn web_config(password: &str) -> String {
    let hash = bcrypt::hash(password, 4).unwrap();
    // Paths relative to the file.
    format!(
        "tls_server_config:\n\
         \x20 cert_file: server.pem\n\
         \x20 key_file: server.key\n\
         \x20 client_auth_type: RequireAndVerifyClientCert\n\
         \x20 client_ca_file: ca.pem\n\
         basic_auth_users:\n\
         \x20 prometheus: '{hash}'\n\
         http_server_config:\n\
         \x20 headers: {{X-Content-Type-Options: nosniff}}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_client_certificates_and_basic_auth_guard_every_path_but_the_webhook() {
    let redis = Redis::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    certificates(&certs);
    let web = certs.join("web.yml");
    std::fs::write(&web, web_config("first-password")).unwrap();
    let yaml = config(
        &[("cache", &[("east", redis.port)])],
        "webhook: {bearer_token: a-token-of-sixteen-chars}\n",
    );
    let agent = Agent::start(
        dir.path(),
        &yaml,
        &[
            "--verbose",
            "--web.config.file",
            web.to_str().unwrap(),
            "--web.telemetry-path",
            "/prometheus/metrics",
        ],
    );
    let trusted = client(&certs, Some("client"));
    let metrics = agent.url("/prometheus/metrics");

    // Without a client certificate, or with one from another CA: no TLS session at all.
    for identity in [None, Some("stranger")] {
        let refused = client(&certs, identity).get(&metrics).send().await;
        assert!(refused.is_err(), "{identity:?}: {refused:?}");
    }
    // Plain HTTP on the TLS port gets no answer either.
    assert!(common::http_get(agent.port, "/healthz").map_or(true, |(s, _)| s == 0));

    // A certificate, but no or a wrong password: 401 asking for Basic, every path.
    for path in ["/prometheus/metrics", "/healthz", "/readyz", "/api/status"] {
        for password in [None, Some("wrong")] {
            let mut request = trusted.get(agent.url(path));
            if let Some(p) = password {
                request = request.basic_auth("prometheus", Some(p));
            }
            let answer = request.send().await.unwrap();
            assert_eq!(
                answer.status(),
                StatusCode::UNAUTHORIZED,
                "{path} {password:?}"
            );
            let challenge = answer.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.starts_with("Basic "), "{challenge}");
            assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
        }
    }
    // The webhook keeps its bearer token and is not asked for a password.
    let delivery = trusted
        .post(agent.url("/webhook/alertmanager"))
        .bearer_auth("a-token-of-sixteen-chars")
        .json(&serde_json::json!({"version": "4", "status": "firing", "alerts": []}))
        .send()
        .await
        .unwrap();
    assert_ne!(delivery.status(), StatusCode::UNAUTHORIZED);

    // The right password: the scrape, at its own path (the old one is gone).
    let get = |path: &str, gzip: bool| {
        let mut request = trusted
            .get(agent.url(path))
            .basic_auth("prometheus", Some("first-password"));
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip");
        }
        request.send()
    };
    assert_eq!(
        get("/healthz", false).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        get("/metrics", false).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let plain = get("/prometheus/metrics", false).await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain = plain.text().await.unwrap();
    let zipped = get("/prometheus/metrics", true).await.unwrap();
    assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(zipped.headers()[header::VARY], "Accept-Encoding");
    let zipped = zipped.bytes().await.unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert!(
        zipped.len() * 3 < unzipped.len(),
        "{} of {}",
        zipped.len(),
        unzipped.len()
    );
    // Two scrapes, two moments: the same families, the same endpoint.
    let families = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("# TYPE "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(families(&plain), families(&unzipped));
    let m = common::Metrics::parse(&unzipped);
    assert!(m.get("process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(m.get("process_open_fds", &[]).unwrap() >= 5.0);
    assert!(m.get("process_max_fds", &[]).unwrap() >= m.get("process_open_fds", &[]).unwrap());
    let started = m.get("process_start_time_seconds", &[]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started > now - 600.0 && started <= now + 1.0,
        "{started} {now}"
    );
    assert!(m.get("process_cpu_seconds_total", &[]).is_some());
    assert_promtool_clean(&unzipped);

    // SIGHUP with a new password: the old one is refused, the new one let in.
    std::fs::write(&web, web_config("second-password")).unwrap();
    kill(agent.child.id(), "HUP");
    wait_for(Duration::from_secs(10), "the new password", || {
        let log = read(&agent.log);
        log.contains("web configuration reloaded").then_some(())
    });
    let old = get("/healthz", false).await.unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = trusted
        .get(agent.url("/healthz"))
        .basic_auth("prometheus", Some("second-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), StatusCode::OK);

    let log = read(&agent.log);
    for secret in ["first-password", "second-password", "$2b$", "PRIVATE KEY"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn a_key_that_does_not_match_the_certificate_stops_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config: {cert_file: server.pem, key_file: client.key}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"))
        .args(["--web.config.file", web.to_str().unwrap()])
        .env_remove("REDIS_FAILOVER_AGENT_CONFIG")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{said}");
    assert!(
        said.contains(
            "tls_server_config.key_file: cannot be used with tls_server_config.cert_file"
        ),
        "{said}"
    );
    assert!(!said.contains("PRIVATE KEY"), "{said}");
}

/// `healthcheck` as the image runs it: `--config` and `--web.config.file` only. Over TLS
/// it finds HTTPS by itself; behind basic auth it says how to give the password.
#[test]
fn healthcheck_finds_the_tls_listener_and_asks_for_the_password() {
    let redis = Redis::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    certificates(&certs);
    let tls_only = certs.join("tls.yml");
    std::fs::write(
        &tls_only,
        "tls_server_config: {cert_file: server.pem, key_file: server.key}\n",
    )
    .unwrap();
    let with_users = certs.join("users.yml");
    let hash = bcrypt::hash("a-password", 4).unwrap();
    std::fs::write(
        &with_users,
        format!(
            "tls_server_config: {{cert_file: server.pem, key_file: server.key}}\n\
             basic_auth_users: {{prometheus: '{hash}'}}\n"
        ),
    )
    .unwrap();
    let yaml = config(&[("cache", &[("east", redis.port)])], "");
    let healthcheck = |web: &Path, port: u16, url: Option<String>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"));
        command
            .arg("--config")
            .arg(dir.path().join("agent.yaml"))
            .arg("--web.config.file")
            .arg(web)
            .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
            .arg("healthcheck")
            .env_remove("REDIS_FAILOVER_AGENT_URL");
        if let Some(url) = url {
            command
                .env("REDIS_FAILOVER_AGENT_URL", url)
                .arg("--insecure");
        }
        let out = command.output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    };

    let agent = Agent::start(
        dir.path(),
        &yaml,
        &["--web.config.file", tls_only.to_str().unwrap()],
    );
    let (code, said) = healthcheck(&tls_only, agent.port, None);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains(&format!("https://127.0.0.1:{}/healthz", agent.port)),
        "{said}"
    );
    drop(agent);

    let agent = Agent::start(
        dir.path(),
        &yaml,
        &["--web.config.file", with_users.to_str().unwrap()],
    );
    let (code, said) = healthcheck(&with_users, agent.port, None);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("basic_auth_users"), "{said}");
    let url = format!("https://prometheus:a-password@127.0.0.1:{}/", agent.port);
    let (code, said) = healthcheck(&with_users, agent.port, Some(url));
    assert_eq!(code, Some(0), "{said}");
    assert!(!said.contains("a-password"), "{said}");
}
