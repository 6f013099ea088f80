//! Alertmanager, for real, delivering to the agent's webhook: what it POSTs parses and
//! names the right candidates (`decision::webhook`). With
//! `CAPTURE_ALERTMANAGER_FIXTURES=1` the deliveries are saved as
//! `tests/fixtures/alertmanager/*.json` for the unit tests.

mod common;

use std::time::{Duration, SystemTime};

use common::alertmanager::{
    DATACENTER_COLLAPSED, DATACENTER_COLLAPSED_ANNOTATIONS, INSTANCE_DOWN,
    INSTANCE_DOWN_ANNOTATIONS, post_alerts, prometheus_alert,
};
use common::stack::{Alertmanager, Delivery, Receiver, repo};
use redis_failover_agent::decision::webhook::{self, AlertStatus, Target};
use serde_json::{Value as Json, json};

const WEBHOOK: &str = "/webhook/alertmanager";

fn alert_in<'a>(body: &'a Json, labels: &[(&str, &str)]) -> Vec<&'a Json> {
    body["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter(|a| labels.iter().all(|(k, v)| a["labels"][*k] == *v))
                .collect()
        })
        .unwrap_or_default()
}

fn has(d: &Delivery, labels: &[(&str, &str)], status: &str) -> bool {
    alert_in(&d.body, labels)
        .iter()
        .any(|a| a["status"] == status)
}

/// The same condition from both Prometheus servers of an HA pair (replica label kept):
/// two alerts in one group.
fn replica_down(replica: &str, starts: SystemTime, resolved: bool) -> Json {
    prometheus_alert(
        &[
            ("alertname", "RedisActiveDatacenterDown"),
            ("severity", "critical"),
            ("scope", "instance"),
            ("failover_candidate", "true"),
            ("redis_instance", "redis-app-02"),
            ("datacenter", "east"),
            ("prometheus_replica", replica),
        ],
        &[
            (
                "summary",
                "Redis redis-app-02 does not answer in its active datacenter east",
            ),
            (
                "runbook_url",
                "https://github.com/redis-failover-agent/redis-failover-agent/blob/main/docs/runbooks/RedisActiveDatacenterDown.md",
            ),
        ],
        starts,
        resolved,
    )
}

#[test]
fn real_webhook_deliveries_parse_and_name_their_candidates() {
    let receiver = Receiver::start();
    let am = Alertmanager::start_shipped(&receiver);
    let starts = SystemTime::now();
    let firing = |labels, annotations| prometheus_alert(labels, annotations, starts, false);
    post_alerts(
        &am,
        &json!([
            firing(INSTANCE_DOWN, INSTANCE_DOWN_ANNOTATIONS),
            firing(DATACENTER_COLLAPSED, DATACENTER_COLLAPSED_ANNOTATIONS),
            replica_down("a", starts, false),
            replica_down("b", starts, false),
        ]),
    );
    let wait = |what: &str, check: &dyn Fn(&Delivery) -> bool| {
        receiver.wait(Duration::from_secs(40), WEBHOOK, what, check)
    };
    let instance_firing = wait("the instance alert, firing", &|d| {
        has(d, &[("redis_instance", "redis-app-01")], "firing")
    });
    let datacenter_firing = wait("the datacenter alert, firing", &|d| {
        has(
            d,
            &[("alertname", "RedisDatacenterHealthCollapsed")],
            "firing",
        )
    });
    let both_replicas = wait("both replicas' alerts in one delivery", &|d| {
        alert_in(&d.body, &[("redis_instance", "redis-app-02")]).len() == 2
    });
    assert_eq!(both_replicas.body["alerts"].as_array().unwrap().len(), 2);

    // Resolve the instance alert and one replica's: Prometheus sends endsAt = now.
    post_alerts(
        &am,
        &json!([
            prometheus_alert(INSTANCE_DOWN, INSTANCE_DOWN_ANNOTATIONS, starts, true),
            replica_down("b", starts, true),
        ]),
    );
    let instance_resolved = wait("the instance alert, resolved", &|d| {
        has(d, &[("redis_instance", "redis-app-01")], "resolved")
    });
    let mixed = wait("a group with one alert firing and one resolved", &|d| {
        has(d, &[("prometheus_replica", "a")], "firing")
            && has(d, &[("prometheus_replica", "b")], "resolved")
    });

    let parse = |d: &Delivery| {
        let raw = serde_json::to_vec(&d.body).unwrap();
        webhook::parse(&raw).unwrap_or_else(|e| panic!("{e}\n{}", d.body))
    };

    let p = parse(&instance_firing);
    assert_eq!(p.version, "4");
    assert_eq!(p.receiver, "redis-failover-agent");
    assert_eq!(p.status, AlertStatus::Firing);
    assert!(
        p.group_key.contains("failover_candidate=\"true\""),
        "{}",
        p.group_key
    );
    assert!(
        p.external_url.starts_with("http://") && p.external_url.ends_with(&format!(":{}", am.port)),
        "{}",
        p.external_url
    );
    assert_eq!(
        p.alerts[0].ends_at, None,
        "firing alerts end at Go's zero time"
    );
    assert!(!p.alerts[0].fingerprint.is_empty());
    let e = webhook::candidates(&p, "failover_candidate");
    assert_eq!(e.candidates.len(), 1, "{e:?}");
    assert_eq!(
        e.candidates[0].target,
        Target::Instance("redis-app-01".into())
    );
    assert_eq!(e.candidates[0].datacenter.as_deref(), Some("east"));
    assert_eq!(e.candidates[0].status, AlertStatus::Firing);

    let e = webhook::candidates(&parse(&datacenter_firing), "failover_candidate");
    assert_eq!(e.candidates[0].target, Target::Datacenter("east".into()));

    let p = parse(&instance_resolved);
    assert_eq!(p.status, AlertStatus::Resolved);
    assert!(p.alerts[0].ends_at.is_some());
    let e = webhook::candidates(&p, "failover_candidate");
    assert_eq!(e.candidates[0].status, AlertStatus::Resolved);

    let p = parse(&mixed);
    assert_eq!(p.status, AlertStatus::Firing);
    let e = webhook::candidates(&p, "failover_candidate");
    let statuses: Vec<AlertStatus> = e.candidates.iter().map(|c| c.status).collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&AlertStatus::Firing) && statuses.contains(&AlertStatus::Resolved));

    if std::env::var_os("CAPTURE_ALERTMANAGER_FIXTURES").is_some() {
        let dir = repo("tests/fixtures/alertmanager");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, d) in [
            ("firing-instance.json", &instance_firing),
            ("firing-datacenter.json", &datacenter_firing),
            ("resolved-instance.json", &instance_resolved),
            ("mixed-group.json", &mixed),
        ] {
            let text = serde_json::to_string_pretty(&d.body).unwrap() + "\n";
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
}
