//! The shipped monitoring files, end to end with real programs: real redis-servers, the
//! agent, Prometheus with `prometheus/prometheus.yml` and its rules, Alertmanager with
//! `alertmanager/alertmanager.yml` and its templates. Only addresses, secret paths and
//! the scrape and evaluation intervals are overlaid (see `common::stack`).

mod common;

use std::time::{Duration, Instant};

use common::stack::{Alertmanager, Delivery, Prometheus, Receiver, read, repo};
use common::{Agent, Redis, config};
use serde_json::Value as Json;

const WEBHOOK: &str = "/webhook/alertmanager";

/// The alert of `body` (a version 4 webhook payload) that matches these labels.
fn alert<'a>(body: &'a Json, labels: &[(&str, &str)]) -> Option<&'a Json> {
    body["alerts"]
        .as_array()?
        .iter()
        .find(|a| labels.iter().all(|(k, v)| a["labels"][*k] == *v))
}

fn candidate(d: &Delivery, status: &str) -> bool {
    alert(
        &d.body,
        &[
            ("alertname", "RedisActiveDatacenterDown"),
            ("failover_candidate", "true"),
            ("redis_instance", "app"),
            ("datacenter", "east"),
        ],
    )
    .is_some_and(|a| a["status"] == status)
}

/// The agent's `monitoring_interval` and Prometheus's scrape and evaluation interval, in
/// seconds: 1 unless `MONITORING_E2E_INTERVAL` says otherwise (5 is the shipped profile:
/// `MONITORING_E2E_INTERVAL=5 cargo test --release --test monitoring -- --nocapture`).
fn interval() -> u64 {
    std::env::var("MONITORING_E2E_INTERVAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn agent_config(instances: &[(&str, &[(&str, u16)])]) -> String {
    config(instances, "").replace(
        "monitoring_interval: 1\n",
        &format!("monitoring_interval: {}\n", interval()),
    )
}

#[test]
fn a_stopped_active_datacenter_reaches_the_webhook_and_its_recovery_resolves_it() {
    let mut east = Redis::start(&[]);
    let west = Redis::start(&[]);
    let agent = Agent::start(&agent_config(&[(
        "app",
        &[("east", east.port), ("west", west.port)],
    )]));
    let receiver = Receiver::start();
    let alertmanager = Alertmanager::start_shipped(&receiver);
    let every = format!("{}s", interval());
    let prometheus = Prometheus::start_shipped(agent.port, Some(alertmanager.port), &every);
    prometheus.wait_targets_up();
    prometheus.wait_rules_evaluated();
    // Prometheus knows where traffic goes before anything breaks.
    common::wait_for(
        Duration::from_secs(30),
        "redis_active_datacenter in Prometheus",
        || {
            let r = prometheus
                .query("redis_active_datacenter{redis_instance=\"app\",datacenter=\"east\"} == 1")
                .ok()?;
            (!r.is_empty()).then_some(())
        },
    );
    assert!(
        receiver.deliveries().iter().all(|d| d.path != WEBHOOK),
        "nothing may reach the agent's webhook while both datacenters answer: {:?}",
        receiver.deliveries()
    );

    // Both Redis endpoints seen up in Prometheus, so the stop is the only change.
    common::wait_for(
        Duration::from_secs(60),
        "both endpoints up in Prometheus",
        || {
            let r = prometheus
                .query("redis_up{redis_instance=\"app\"} == 1")
                .ok()?;
            (r.len() == 2).then_some(())
        },
    );

    let stopped = Instant::now();
    east.kill();
    let firing = receiver.wait(
        Duration::from_secs(90),
        WEBHOOK,
        "the failover candidate for app@east, firing",
        |d| candidate(d, "firing"),
    );
    let to_webhook = firing.at - stopped;
    eprintln!(
        "MEASURED stop -> webhook delivery (firing), intervals {}s: {to_webhook:.1?}",
        interval()
    );

    // Alertmanager's webhook payload, version 4, with the credentials from the file.
    assert_eq!(
        firing.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {}", alertmanager.webhook_token).as_str()),
        "the webhook must carry the bearer token from credentials_file"
    );
    assert_eq!(firing.body["version"], "4");
    assert_eq!(firing.body["status"], "firing");
    let a = alert(&firing.body, &[("redis_instance", "app")]).unwrap();
    assert_eq!(a["labels"]["severity"], "critical", "{a}");
    for annotation in ["summary", "description", "runbook_url"] {
        assert!(
            a["annotations"][annotation]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "annotation {annotation} missing: {a}"
        );
    }
    // Only candidates go to the agent; the standby datacenter is not one.
    for d in receiver.deliveries().iter().filter(|d| d.path == WEBHOOK) {
        for a in d.body["alerts"].as_array().unwrap() {
            assert_eq!(a["labels"]["failover_candidate"], "true", "{a}");
            assert_ne!(a["labels"]["datacenter"], "west", "{a}");
        }
    }
    // People are told too (`continue: true`): Slack gets the same alert.
    let slack = receiver.wait(
        Duration::from_secs(60),
        "/slack",
        "the Slack message about app@east",
        |d| d.body.to_string().contains("RedisActiveDatacenterDown"),
    );
    let text = slack.body.to_string();
    assert!(text.contains("app") && text.contains("east"), "{text}");
    assert!(
        text.contains("/docs/runbooks/RedisActiveDatacenterDown.md"),
        "no runbook link in {text}"
    );

    east.restart();
    let resolved = receiver.wait(
        Duration::from_secs(90),
        WEBHOOK,
        "the candidate for app@east, resolved",
        |d| candidate(d, "resolved"),
    );
    eprintln!(
        "MEASURED restart -> webhook delivery (resolved): {:.1?}",
        resolved.at - firing.at
    );
    drop(prometheus);
    drop(alertmanager);
}

/// Replaces the Grafana variables our dashboards use with values Prometheus accepts.
fn substitute(expr: &str) -> String {
    [
        ("${redis_instance}", ".*"),
        ("$redis_instance", ".*"),
        ("${datacenter}", ".*"),
        ("$datacenter", ".*"),
        ("${observer}", ".*"),
        ("$observer", ".*"),
        ("${job}", ".*"),
        ("$job", ".*"),
        ("${instance}", ".*"),
        ("$instance", ".*"),
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "1h"),
    ]
    .iter()
    .fold(expr.to_owned(), |e, (var, value)| e.replace(var, value))
}

/// Every `expr` of a dashboard's panels (nested rows included), with its panel title.
fn queries(dashboard: &Json) -> Vec<(String, String)> {
    fn walk(panels: &Json, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("").to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.clone(), expr.to_owned()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = a["target"]["expr"].as_str().or(a["expr"].as_str()) {
            out.push(("annotation".into(), expr.to_owned()));
        }
    }
    // Variables: `label_values(SELECTOR, LABEL)` is Grafana's, not PromQL; its selector is.
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = v["query"]["query"].as_str().or(v["query"].as_str());
        if let Some(inner) = query.and_then(|q| q.strip_prefix("label_values("))
            && let Some((selector, _label)) = inner.trim_end_matches(')').rsplit_once(',')
        {
            let name = v["name"].as_str().unwrap_or("");
            out.push((format!("variable {name}"), selector.trim().to_owned()));
        }
    }
    out
}

#[test]
fn every_dashboard_query_is_accepted_by_prometheus() {
    let primary = Redis::start(&["--repl-diskless-sync-delay", "0"]);
    let replica = Redis::start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let agent = Agent::start(&config(
        &[("app", &[("east", primary.port), ("west", replica.port)])],
        "",
    ));
    let prometheus = Prometheus::start_shipped(agent.port, None, "1s");
    prometheus.wait_targets_up();
    prometheus.wait_rules_evaluated();
    // A few scrapes, so rate() over them has something to say.
    std::thread::sleep(Duration::from_secs(4));

    let dir = repo("grafana/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected the two dashboards in {}",
        dir.display()
    );

    let mut rejected = Vec::new();
    let mut total = 0;
    for file in &files {
        let dashboard: Json = serde_json::from_str(&read(file)).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let qs = queries(&dashboard);
        assert!(!qs.is_empty(), "{name} has no queries");
        let mut empty = Vec::new();
        for (title, expr) in qs {
            total += 1;
            match prometheus.query(&substitute(&expr)) {
                Ok(result) if result.is_empty() => empty.push(title),
                Ok(_) => {}
                Err(e) => rejected.push(format!("{name} / {title}: {expr}\n    {e}")),
            }
        }
        eprintln!("{name}: panels without data in this setup: {empty:?}");
    }
    assert!(
        rejected.is_empty(),
        "Prometheus rejected {} of {total} dashboard queries:\n{}",
        rejected.len(),
        rejected.join("\n")
    );
}
