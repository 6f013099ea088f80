//! Route53's credentials from AWS's default chain (aws-config), against local fakes: a
//! shared profile, an instance metadata service speaking IMDSv2 (`common::imds`), and
//! none at all. Each test runs the agent binary as a child process with its own
//! environment, so no test changes a variable another one reads.
//!
//! moto accepts any keys, so who signed is read where it shows: every Route53 request
//! goes through a recording proxy (`FaultyHttp`) whose log keeps the request head, and
//! SigV4's `Authorization: AWS4-HMAC-SHA256 Credential=<access key id>/<date>/<region>/
//! route53/aws4_request, ...` names the key, `X-Amz-Security-Token` the session token.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::e2e::*;
use common::faulty_http::FaultyHttp;
use common::imds::{self, Imds, header};
use common::moto::{ACCESS_KEY, SECRET_KEY};
use common::{Agent, wait_for};

const PROFILE_KEY: &str = "AKIAPROFILEOPS000001";
const PROFILE_SECRET: &str = "profile-secret-never-printed";
const OTHER_PROFILE_KEY: &str = "AKIAPROFILEOTHER0001";
const DEFAULT_PROFILE_KEY: &str = "AKIAPROFILEDEFAULT01";
const ENVIRONMENT_KEY: &str = "AKIAENVIRONMENT00001";

/// The variables through which the chain could find credentials this test did not
/// give; each test sets its own.
const CHAIN_VARIABLES: &[&str] = &[
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
];

/// Where the chain looks, all of it in `dir`: no keys in the environment (blank is
/// unset to the SDK), the profile files `dir/config` and `dir/credentials` (absent
/// unless the test writes them), and the metadata service at `metadata`, or disabled.
fn environment(dir: &Path, metadata: Option<&str>) -> Vec<(String, String)> {
    for name in CHAIN_VARIABLES {
        assert!(
            std::env::var_os(name).is_none(),
            "{name} is set in the test's environment; unset it to run these tests"
        );
    }
    let path = |file: &str| dir.join(file).display().to_string();
    let mut env = vec![
        ("HOME".to_owned(), dir.display().to_string()),
        ("AWS_CONFIG_FILE".to_owned(), path("config")),
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
            path("credentials"),
        ),
        ("AWS_ACCESS_KEY_ID".to_owned(), String::new()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), String::new()),
        ("AWS_SESSION_TOKEN".to_owned(), String::new()),
    ];
    env.push(match metadata {
        Some(endpoint) => (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_owned(),
            endpoint.to_owned(),
        ),
        None => ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
    });
    env
}

fn with(mut env: Vec<(String, String)>, more: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

fn start(config: &str, env: &[(String, String)]) -> Agent {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Agent::start_with_env(config, &env)
}

/// Profiles `default`, `ops` and `other`, each with its own keys; `ops` names a region.
fn write_profiles(dir: &Path) {
    std::fs::write(
        dir.join("credentials"),
        format!(
            "[default]\naws_access_key_id = {DEFAULT_PROFILE_KEY}\naws_secret_access_key = default-secret\n\n\
             [ops]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = {PROFILE_SECRET}\n\n\
             [other]\naws_access_key_id = {OTHER_PROFILE_KEY}\naws_secret_access_key = other-secret\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("config"), "[profile ops]\nregion = eu-west-1\n").unwrap();
}

/// The bed's configuration with Route53 reached through `proxy`, the static keys
/// removed unless `keep_keys`, and `extra` added to `dns_config`.
fn config(bed: &Bed, state: &Path, proxy: &FaultyHttp, keep_keys: bool, extra: &str) -> String {
    let mut config = bed.config(state);
    let moto = format!("  endpoint_url: {}\n", bed.moto.url());
    let keys = format!("  aws_access_key: {ACCESS_KEY}\n  aws_secret_key: {SECRET_KEY}\n");
    assert!(config.contains(&moto) && config.contains(&keys), "{config}");
    config = config.replace(&moto, &format!("  endpoint_url: {}\n{extra}", proxy.url()));
    if !keep_keys {
        config = config.replace(&keys, "");
    }
    config
}

/// Who signed each Route53 request: (method, access key id, region, session token).
fn signers(proxy: &FaultyHttp) -> Vec<(String, String, String, Option<String>)> {
    proxy
        .log()
        .iter()
        .map(|e| {
            let auth = header(&e.head, "authorization").unwrap_or_default();
            let scope = auth
                .split("Credential=")
                .nth(1)
                .unwrap_or_default()
                .split(',')
                .next()
                .unwrap_or_default();
            let mut parts = scope.split('/');
            let key = parts.next().unwrap_or_default().to_owned();
            let region = parts.nth(1).unwrap_or_default().to_owned();
            let token = header(&e.head, "x-amz-security-token").map(str::to_owned);
            (e.method.clone(), key, region, token)
        })
        .collect()
}

/// East dies, Alertmanager says so, and the agent moves the record to west.
fn fail_over(bed: &mut Bed, agent: &Agent) {
    agent.wait_metrics(Duration::from_secs(20), "both endpoints up", |m| {
        m.of("redis_up", "app", "east") == Some(1.0) && m.of("redis_up", "app", "west") == Some(1.0)
    });
    bed.east.kill();
    let (status, answer) = post(agent.port, &payload("firing"), TOKEN);
    assert_eq!(status, 200, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while bed.pointing_at() != WEST {
        assert!(
            Instant::now() < deadline,
            "DNS does not point at west after 60 s:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_not_logged(agent: &Agent, secrets: &[&str]) {
    let log = agent.log();
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}

/// `AWS_PROFILE` picks a profile of `AWS_SHARED_CREDENTIALS_FILE`; every request of a
/// failover is signed with its keys, in Route53's region (the profile's region is for
/// STS, not Route53).
#[test]
fn a_shared_profile_signs_a_failover() {
    let mut bed = Bed::start();
    let proxy = FaultyHttp::start(bed.moto.port);
    let dir = tempfile::tempdir().unwrap();
    write_profiles(dir.path());
    let env = with(environment(dir.path(), None), &[("AWS_PROFILE", "ops")]);
    let agent = start(&config(&bed, dir.path(), &proxy, false, ""), &env);
    fail_over(&mut bed, &agent);

    assert!(proxy.count("POST", "/rrset") >= 1, "{:?}", proxy.log());
    let signers = signers(&proxy);
    for (method, key, region, token) in &signers {
        assert_eq!(
            (key.as_str(), region.as_str(), token),
            (PROFILE_KEY, "us-east-1", &None),
            "{method}: {signers:?}"
        );
    }
    assert_not_logged(&agent, &[PROFILE_SECRET]);
}

/// `aws_profile` in `dns_config` wins over `AWS_PROFILE`.
#[test]
fn aws_profile_wins_over_the_environment() {
    let bed = Bed::start();
    let proxy = FaultyHttp::start(bed.moto.port);
    let dir = tempfile::tempdir().unwrap();
    write_profiles(dir.path());
    let env = with(environment(dir.path(), None), &[("AWS_PROFILE", "ops")]);
    let config = config(&bed, dir.path(), &proxy, false, "  aws_profile: other\n");
    let _agent = start(&config, &env);
    // The read of the record at start is signed already.
    wait_for(Duration::from_secs(20), "the record to be read", || {
        (proxy.count("GET", "/rrset") >= 1).then_some(())
    });
    let keys: Vec<String> = signers(&proxy).into_iter().map(|s| s.1).collect();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == OTHER_PROFILE_KEY),
        "{keys:?}"
    );
}

/// On EC2: the instance role's credentials from the metadata service, IMDSv2 (a token
/// first, then every read with it), sign every request of a failover, session token
/// included.
#[test]
fn the_instance_metadata_service_signs_a_failover() {
    let mut bed = Bed::start();
    let proxy = FaultyHttp::start(bed.moto.port);
    let metadata = Imds::start();
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path(), Some(&metadata.endpoint()));
    let agent = start(&config(&bed, dir.path(), &proxy, false, ""), &env);
    fail_over(&mut bed, &agent);

    let signers = signers(&proxy);
    assert!(proxy.count("POST", "/rrset") >= 1, "{signers:?}");
    for (method, key, _, token) in &signers {
        assert_eq!(
            (key.as_str(), token.as_deref()),
            (imds::ACCESS_KEY, Some(imds::SESSION_TOKEN)),
            "{method}: {signers:?}"
        );
    }
    let seen = metadata.seen();
    let token_put = seen.first().expect("the metadata service was asked");
    assert_eq!(
        (token_put.method.as_str(), token_put.path.as_str()),
        ("PUT", "/latest/api/token"),
        "{seen:?}"
    );
    assert!(
        token_put.ttl.is_some() && token_put.status == 200,
        "{seen:?}"
    );
    let role = "/latest/meta-data/iam/security-credentials/";
    for path in [role.to_owned(), format!("{role}{}", imds::ROLE)] {
        assert!(
            seen.iter()
                .any(|s| s.method == "GET" && s.path == path && s.with_token && s.status == 200),
            "no GET {path} with the token: {seen:?}"
        );
    }
    assert!(
        seen.iter().all(|s| s.method != "GET" || s.with_token),
        "a read without the token: {seen:?}"
    );
    // The fake holds IMDSv2 required: a read without a token is refused.
    let (status, _) = common::http_get(metadata.port, role).unwrap();
    assert_eq!(status, 401);
    assert_not_logged(&agent, &[imds::SECRET_KEY, imds::SESSION_TOKEN]);
}

/// On EKS with IRSA (or any web identity): the role in `AWS_ROLE_ARN` assumed with the
/// token in `AWS_WEB_IDENTITY_TOKEN_FILE` through STS (moto's, reached with
/// `AWS_ENDPOINT_URL_STS`), whose temporary credentials sign every request of a failover.
#[test]
fn a_web_identity_signs_a_failover() {
    const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/redis-failover-agent";
    let mut bed = Bed::start();
    let proxy = FaultyHttp::start(bed.moto.port);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl").unwrap();
    let env = with(
        environment(dir.path(), None),
        &[
            ("AWS_ROLE_ARN", ROLE_ARN),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_STS", &proxy.url()),
        ],
    );
    let agent = start(&config(&bed, dir.path(), &proxy, false, ""), &env);
    fail_over(&mut bed, &agent);

    let log = proxy.log();
    let sts: Vec<_> = log
        .iter()
        .filter(|e| e.body.contains("Action=AssumeRoleWithWebIdentity"))
        .collect();
    assert!(
        sts.len() == 1 && sts[0].status == 200 && sts[0].body.contains("redis-failover-agent"),
        "{log:?}"
    );
    let route53: Vec<_> = signers(&proxy)
        .into_iter()
        .filter(|(method, key, ..)| !(method == "POST" && key.is_empty()))
        .collect();
    assert!(proxy.count("POST", "/rrset") >= 1, "{route53:?}");
    let (_, first_key, _, first_token) = &route53[0];
    assert!(
        first_key.starts_with("ASIA") && first_token.is_some(),
        "{route53:?}"
    );
    assert!(
        route53
            .iter()
            .all(|(_, key, _, token)| key == first_key && token == first_token),
        "{route53:?}"
    );
}

/// In a container (an ECS task role, EKS Pod Identity): the credentials endpoint in
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, asked with `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
#[test]
fn the_container_endpoint_signs_the_reads() {
    let bed = Bed::start();
    let proxy = FaultyHttp::start(bed.moto.port);
    let endpoint = Imds::start();
    let dir = tempfile::tempdir().unwrap();
    let env = with(
        environment(dir.path(), None),
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                &endpoint.container_uri(),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                imds::CONTAINER_AUTHORIZATION,
            ),
        ],
    );
    let agent = start(&config(&bed, dir.path(), &proxy, false, ""), &env);
    wait_for(Duration::from_secs(20), "the record to be read", || {
        (proxy.count("GET", "/rrset") >= 1).then_some(())
    });
    let signers = signers(&proxy);
    assert!(
        signers
            .iter()
            .all(|(_, key, _, token)| key == imds::CONTAINER_ACCESS_KEY
                && token.as_deref() == Some(imds::SESSION_TOKEN)),
        "{signers:?}"
    );
    let seen = endpoint.seen();
    assert!(
        !seen.is_empty()
            && seen
                .iter()
                .all(|s| s.path == "/v1/credentials" && s.authorized),
        "{seen:?}"
    );
    assert_not_logged(&agent, &[imds::CONTAINER_AUTHORIZATION, imds::SECRET_KEY]);
}

/// Static keys in `dns_config` win over keys in the environment, a profile and the
/// metadata service, which is not even asked.
#[test]
fn static_keys_win_over_the_chain() {
    let bed = Bed::start();
    let proxy = FaultyHttp::start(bed.moto.port);
    let metadata = Imds::start();
    let dir = tempfile::tempdir().unwrap();
    write_profiles(dir.path());
    let env = with(
        environment(dir.path(), Some(&metadata.endpoint())),
        &[
            ("AWS_ACCESS_KEY_ID", ENVIRONMENT_KEY),
            ("AWS_SECRET_ACCESS_KEY", "environment-secret"),
            ("AWS_PROFILE", "ops"),
        ],
    );
    let _agent = start(&config(&bed, dir.path(), &proxy, true, ""), &env);
    wait_for(Duration::from_secs(20), "the record to be read", || {
        (proxy.count("GET", "/rrset") >= 1).then_some(())
    });
    let keys: Vec<String> = signers(&proxy).into_iter().map(|s| s.1).collect();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == ACCESS_KEY),
        "{keys:?}"
    );
    assert_eq!(metadata.seen(), []);
}

/// No credentials anywhere, and a metadata address that never answers (as off EC2):
/// check-config does not ask it; the agent starts and serves at once; the read of the
/// record at start fails within the chain's bound, is logged with what to do and
/// counted, and the agent carries on.
#[test]
fn without_credentials_nothing_waits_and_the_failure_is_logged_and_counted() {
    let bed = Bed::start();
    let proxy = FaultyHttp::start(bed.moto.port);
    let metadata = Imds::silent();
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path(), Some(&metadata.endpoint()));
    let config = config(&bed, dir.path(), &proxy, false, "");

    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, &config).unwrap();
    let began = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"))
        .args(["check-config", "--config", path.to_str().unwrap()])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(
        metadata.seen(),
        [],
        "check-config asked the metadata service"
    );

    let agent = start(&config, &env);
    let m = agent.wait_metrics(Duration::from_secs(30), "a failed read counted", |m| {
        m.get(
            "redis_agent_active_datacenter_dns_reads_total",
            &[("redis_instance", "app"), ("result", "error")],
        ) >= Some(1.0)
    });
    assert_eq!(
        m.get(
            "redis_agent_active_datacenter_dns_reads_total",
            &[("redis_instance", "app"), ("result", "ok")],
        ),
        Some(0.0)
    );
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("cannot read the DNS record"))
        .unwrap_or_else(|| panic!("no failed read logged:\n{log}"));
    assert!(
        line.contains("no AWS credentials") && line.contains("docs/dns.md"),
        "{line}"
    );
    assert!(
        metadata
            .seen()
            .iter()
            .any(|s| s.path == "/latest/api/token"),
        "the chain did not reach the metadata service: {:?}",
        metadata.seen()
    );
    assert_eq!(proxy.log().len(), 0, "an unsigned request went out");
    assert!(agent.get("/healthz").is_ok(), "the agent stopped serving");
}
