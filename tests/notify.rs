//! Alertmanager, for real, receiving the agent's notices:
//!
//! - what the agent pushes to `/api/v2/alerts` (`actuators::alertmanager`) is held with
//!   the agent's labels, routed by the SHIPPED `alertmanager/alertmanager.yml` to people
//!   (Slack, overlaid onto the test receiver's `/slack`) and never to the agent's own
//!   webhook;
//! - an Alertmanager that is down, hangs, fails or refuses gives a bounded, quick error
//!   of the right kind, and one of two down does not stop delivery to the other.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::alertmanager::{
    Answer, DATACENTER_COLLAPSED, DATACENTER_COLLAPSED_ANNOTATIONS, INSTANCE_DOWN,
    INSTANCE_DOWN_ANNOTATIONS, Scripted, Silent, held, post_alerts, prometheus_alert, receivers,
};
use common::stack::{Alertmanager, Delivery, Receiver};
use redis_failover_agent::actuators::alertmanager::{AlertmanagerNotifier, Auth, NotifierSettings};
use redis_failover_agent::decision::ports::{
    AdapterErrorKind, AgentAlert, AgentAlertName, Notifier,
};
use redis_failover_agent::model::Secret;
use redis_failover_agent::model::rfc3339;
use serde_json::{Value as Json, json};

const WEBHOOK: &str = "/webhook/alertmanager";
const SLACK: &str = "/slack";

fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn settings(urls: &[String]) -> NotifierSettings {
    NotifierSettings {
        timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(100),
        ..NotifierSettings::new(urls.iter().cloned())
    }
}

fn am_url(am: &Alertmanager) -> String {
    format!("http://127.0.0.1:{}", am.port)
}

fn notice(name: AgentAlertName, instance: &str, dc: &str) -> AgentAlert {
    AgentAlert::new(
        name,
        std::time::SystemTime::now(),
        instance,
        Some(dc),
        format!("{name}: {instance} ({dc})"),
        format!("{name} for {instance}; concerned datacenter {dc}."),
    )
}

fn executed() -> AgentAlert {
    let mut a = AgentAlert::new(
        AgentAlertName::RedisFailoverExecuted,
        std::time::SystemTime::now(),
        "redis-app-01",
        Some("east"),
        "redis-app-01 failed over from east to west",
        "East did not answer in 3 of 3 rounds; west was healthy in each. DNS for \
         redis-app-01 now points at west.",
    );
    a.labels.insert("target_datacenter".into(), "west".into());
    a
}

#[test]
fn an_executed_notice_reaches_slack_and_never_the_agents_own_webhook() {
    let rt = runtime();
    let receiver = Receiver::start();
    let am = Alertmanager::start_shipped(&receiver);
    let notifier = AlertmanagerNotifier::new(NotifierSettings {
        generator_url: Some("http://agent:8080/api/status".into()),
        ..settings(&[am_url(&am)])
    })
    .unwrap();
    let sent_at = SystemTime::now();
    let report = rt.block_on(notifier.notify(&[executed()])).unwrap();
    assert_eq!(report.delivered, [am_url(&am)]);
    assert!(report.failed.is_empty());

    let held_now = held(&am, &[("alertname", "RedisFailoverExecuted")]);
    assert_eq!(held_now.len(), 1, "{held_now:?}");
    let a = &held_now[0];
    let expected = json!({
        "alertname": "RedisFailoverExecuted",
        "severity": "critical",
        "scope": "instance",
        "redis_instance": "redis-app-01",
        "datacenter": "east",
        "source": "redis-failover-agent",
        "target_datacenter": "west",
    });
    assert_eq!(a["labels"], expected);
    assert_eq!(
        a["annotations"]["runbook_url"],
        "https://github.com/redis-failover-agent/redis-failover-agent/blob/main/docs/runbooks/agent-failover-notices.md"
    );
    assert_eq!(
        a["annotations"]["dashboard"],
        "/d/redis-failover/datacenters-and-failover?var-redis_instance=redis-app-01"
    );
    assert_eq!(
        a["generatorURL"],
        "http://agent:8080/api/status/redis-app-01"
    );
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(receivers(a), ["slack-critical"]);
    // A one-shot notice resolves itself an hour (resolve_after) after it was sent.
    let ends = rfc3339::parse(a["endsAt"].as_str().unwrap())
        .unwrap()
        .unwrap();
    let lasts = ends.duration_since(sent_at).unwrap();
    assert!(
        lasts > Duration::from_secs(3590) && lasts < Duration::from_secs(3610),
        "{lasts:?}"
    );

    // Slack (critical: group_wait 10 s) gets a message naming the instance.
    let slack = receiver.wait(
        Duration::from_secs(40),
        SLACK,
        "the Slack message about the failover",
        |d| {
            let text = d.body.to_string();
            text.contains("RedisFailoverExecuted") && text.contains("redis-app-01")
        },
    );
    let text = slack.body.to_string();
    assert!(text.contains("failed over from east to west"), "{text}");
    assert!(text.contains("agent-failover-notices"), "{text}");
    // The agent's route has group_wait 0 s: had it matched, its delivery would be there
    // before Slack's.
    let loops: Vec<Delivery> = receiver
        .deliveries()
        .into_iter()
        .filter(|d| d.path == WEBHOOK)
        .collect();
    assert!(
        loops.is_empty(),
        "the agent's notice reached its own webhook: {loops:?}"
    );
}

#[test]
fn every_notice_goes_to_people_by_severity_and_none_to_the_agent() {
    let rt = runtime();
    let receiver = Receiver::start();
    let am = Alertmanager::start_shipped(&receiver);
    let notifier = AlertmanagerNotifier::new(settings(&[am_url(&am)])).unwrap();
    let alerts: Vec<AgentAlert> = AgentAlertName::ALL
        .iter()
        .map(|n| notice(*n, "redis-app-07", "west"))
        .collect();
    rt.block_on(notifier.notify(&alerts)).unwrap();
    let got = held(&am, &[("redis_instance", "redis-app-07")]);
    assert_eq!(got.len(), 5, "{got:?}");
    for a in &got {
        let name = a["labels"]["alertname"].as_str().unwrap();
        let expected = match name {
            "RedisFailoverExecuted" | "RedisFailoverFailed" => "slack-critical",
            _ => "slack-warning",
        };
        assert_eq!(receivers(a), [expected], "{name}");
        assert_eq!(a["labels"]["source"], "redis-failover-agent");
        assert!(a["labels"].get("failover_candidate").is_none());
        // A standing failback recommendation is sent without endsAt; Alertmanager gives
        // it resolve_timeout (5 m), so it lapses unless sent again.
        if name == "RedisFailbackRecommended" {
            let ends = rfc3339::parse(a["endsAt"].as_str().unwrap())
                .unwrap()
                .unwrap();
            let left = ends.duration_since(SystemTime::now()).unwrap();
            assert!(left <= Duration::from_secs(300), "{left:?}");
        }
    }
    // Resolving the failback recommendation: the same alert with endsAt now.
    let mut done = notice(
        AgentAlertName::RedisFailbackRecommended,
        "redis-app-07",
        "west",
    );
    done.ends_at = Some(SystemTime::now());
    rt.block_on(notifier.notify(&[done])).unwrap();
    // Alertmanager's API lists only unresolved alerts: the recommendation is gone at once.
    let failback = held(&am, &[("alertname", "RedisFailbackRecommended")]);
    assert!(failback.is_empty(), "{failback:?}");
    assert_eq!(held(&am, &[("redis_instance", "redis-app-07")]).len(), 4);
}

/// An inhibited alert reaches no receiver: a failover notice silenced by the RedisDown or
/// datacenter alert that caused the failover would tell no one: every inhibit rule's
/// target_matchers say source!="redis-failover-agent".
#[test]
fn a_notice_is_not_inhibited_by_the_outage_it_reports() {
    let rt = runtime();
    let receiver = Receiver::start();
    let am = Alertmanager::start_shipped(&receiver);
    let starts = SystemTime::now();
    post_alerts(
        &am,
        &json!([
            prometheus_alert(INSTANCE_DOWN, INSTANCE_DOWN_ANNOTATIONS, starts, false),
            prometheus_alert(
                &[
                    ("alertname", "RedisDown"),
                    ("severity", "critical"),
                    ("scope", "instance"),
                    ("redis_instance", "redis-app-01"),
                    ("datacenter", "east"),
                ],
                &[("summary", "redis-app-01 @ east is down")],
                starts,
                false,
            ),
            prometheus_alert(
                DATACENTER_COLLAPSED,
                DATACENTER_COLLAPSED_ANNOTATIONS,
                starts,
                false
            ),
        ]),
    );
    let notifier = AlertmanagerNotifier::new(settings(&[am_url(&am)])).unwrap();
    rt.block_on(notifier.notify(&[executed()])).unwrap();
    let a = held(&am, &[("alertname", "RedisFailoverExecuted")]);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0]["status"]["inhibitedBy"],
        json!([]),
        "the failover notice is inhibited by the outage it reports: {}",
        a[0]
    );
    assert_eq!(a[0]["status"]["state"], "active", "{}", a[0]);
}

#[test]
fn alertmanager_down_is_unavailable_after_bounded_retries_quickly() {
    let rt = runtime();
    let (_held, port) = common::closed_port();
    let down = format!("http://127.0.0.1:{port}");
    let notifier = AlertmanagerNotifier::new(settings(std::slice::from_ref(&down))).unwrap();
    let started = Instant::now();
    let e = rt.block_on(notifier.notify(&[executed()])).unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, AdapterErrorKind::Unavailable, "{e}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Two waits between three attempts: 100 ms + 200 ms.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let text = e.to_string();
    assert!(text.contains(&down), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
    assert!(text.contains("after 3 attempts"), "{text}");
}

#[test]
fn with_one_of_two_alertmanagers_down_the_other_still_gets_it_and_the_failure_is_reported() {
    let rt = runtime();
    let receiver = Receiver::start();
    let am = Alertmanager::start_shipped(&receiver);
    let (_held, port) = common::closed_port();
    let down = format!("http://127.0.0.1:{port}");
    let notifier = AlertmanagerNotifier::new(settings(&[down.clone(), am_url(&am)])).unwrap();
    let report = rt.block_on(notifier.notify(&[executed()])).unwrap();
    assert_eq!(report.delivered, [am_url(&am)]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, down);
    assert_eq!(report.failed[0].1.kind, AdapterErrorKind::Unavailable);
    assert_eq!(
        held(&am, &[("alertname", "RedisFailoverExecuted")]).len(),
        1
    );
}

#[test]
fn an_ha_pair_gets_the_alert_at_each_member() {
    let rt = runtime();
    let (r1, r2) = (Receiver::start(), Receiver::start());
    let (am1, am2) = (
        Alertmanager::start_shipped(&r1),
        Alertmanager::start_shipped(&r2),
    );
    let notifier = AlertmanagerNotifier::new(settings(&[am_url(&am1), am_url(&am2)])).unwrap();
    let report = rt.block_on(notifier.notify(&[executed()])).unwrap();
    assert_eq!(report.delivered, [am_url(&am1), am_url(&am2)]);
    for am in [&am1, &am2] {
        assert_eq!(held(am, &[("alertname", "RedisFailoverExecuted")]).len(), 1);
    }
}

#[test]
fn a_refusal_by_alertmanager_is_not_retried_and_says_what_it_answered() {
    let rt = runtime();
    let receiver = Receiver::start();
    let am = Alertmanager::start_shipped(&receiver);
    let notifier = AlertmanagerNotifier::new(settings(&[am_url(&am)])).unwrap();
    let mut bad = executed();
    bad.ends_at = Some(bad.starts_at - Duration::from_secs(60));
    let started = Instant::now();
    let e = rt.block_on(notifier.notify(&[bad])).unwrap_err();
    assert_eq!(e.kind, AdapterErrorKind::Invalid, "{e}");
    let text = e.to_string();
    assert!(text.contains("answered 400 Bad Request"), "{text}");
    assert!(
        text.contains("start time must be before end time"),
        "{text}"
    );
    assert!(!text.contains("attempts"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn answers_decide_the_kind_and_only_transient_ones_are_retried() {
    let rt = runtime();
    for (status, kind, calls) in [
        (400, AdapterErrorKind::Invalid, 1),
        (401, AdapterErrorKind::Unauthorized, 1),
        (403, AdapterErrorKind::Unauthorized, 1),
        (404, AdapterErrorKind::NotFound, 1),
        (422, AdapterErrorKind::Invalid, 1),
        (429, AdapterErrorKind::Throttled, 3),
        (500, AdapterErrorKind::Unavailable, 3),
        (503, AdapterErrorKind::Unavailable, 3),
    ] {
        let server = Scripted::start(vec![Answer::new(status, "\"no\"")]);
        let notifier = AlertmanagerNotifier::new(settings(&[server.url()])).unwrap();
        let e = rt.block_on(notifier.notify(&[executed()])).unwrap_err();
        assert_eq!(e.kind, kind, "{status}: {e}");
        assert_eq!(server.requests(), calls, "{status}: {e}");
        assert!(e.to_string().contains(&format!("answered {status}")), "{e}");
    }
    // Two failures, then success: delivered.
    let server = Scripted::start(vec![
        Answer::new(502, "bad gateway"),
        Answer::new(503, "starting"),
        Answer::new(200, ""),
    ]);
    let notifier = AlertmanagerNotifier::new(settings(&[server.url()])).unwrap();
    let report = rt.block_on(notifier.notify(&[executed()])).unwrap();
    assert_eq!(report.delivered, [server.url()]);
    assert_eq!(server.requests(), 3);
    // Each call carried the same v2 body.
    let bodies = server.bodies();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let body: Json = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body[0]["labels"]["alertname"], "RedisFailoverExecuted");
}

#[test]
fn a_hung_alertmanager_times_out_within_the_bound() {
    let rt = runtime();
    let hung = Silent::start();
    let notifier = AlertmanagerNotifier::new(NotifierSettings {
        timeout: Duration::from_millis(300),
        attempts: 2,
        backoff: Duration::from_millis(50),
        ..NotifierSettings::new([hung.url()])
    })
    .unwrap();
    let started = Instant::now();
    let e = rt.block_on(notifier.notify(&[executed()])).unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, AdapterErrorKind::Timeout, "{e}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(hung.accepted(), 2);
    assert!(e.to_string().contains("after 2 attempts"), "{e}");
}

#[test]
fn credentials_are_sent_and_never_shown() {
    let rt = runtime();
    let receiver = Receiver::start();
    let bearer = AlertmanagerNotifier::new(NotifierSettings {
        auth: Some(Auth::Bearer(Secret::new("tok-secret-123"))),
        ..settings(&[receiver.url("/am")])
    })
    .unwrap();
    rt.block_on(bearer.notify(&[executed()])).unwrap();
    let d = receiver.wait(
        Duration::from_secs(5),
        "/am/api/v2/alerts",
        "the post",
        |_| true,
    );
    assert_eq!(d.headers["authorization"], "Bearer tok-secret-123");
    assert_eq!(d.headers["content-type"], "application/json");
    assert!(!format!("{bearer:?}").contains("tok-secret-123"));

    let basic = AlertmanagerNotifier::new(NotifierSettings {
        auth: Some(Auth::Basic {
            username: "agent".into(),
            password: Secret::new("pw-secret-456"),
        }),
        ..settings(&[receiver.url("/basic")])
    })
    .unwrap();
    rt.block_on(basic.notify(&[executed()])).unwrap();
    let d = receiver.wait(
        Duration::from_secs(5),
        "/basic/api/v2/alerts",
        "the post",
        |_| true,
    );
    // base64("agent:pw-secret-456")
    assert_eq!(
        d.headers["authorization"],
        "Basic YWdlbnQ6cHctc2VjcmV0LTQ1Ng=="
    );

    // A proxy that echoes what it got: the message shows *** instead.
    let echo = Scripted::start(vec![Answer::new(401, "bad token tok-secret-123")]);
    let refused = AlertmanagerNotifier::new(NotifierSettings {
        auth: Some(Auth::Bearer(Secret::new("tok-secret-123"))),
        ..settings(&[echo.url()])
    })
    .unwrap();
    let e = rt.block_on(refused.notify(&[executed()])).unwrap_err();
    assert_eq!(e.kind, AdapterErrorKind::Unauthorized);
    assert!(!e.to_string().contains("tok-secret-123"), "{e}");
    assert!(e.to_string().contains("bad token ***"), "{e}");

    // Credentials in the URL: sent, never in messages.
    let (_held, port) = common::closed_port();
    let in_url = AlertmanagerNotifier::new(settings(&[format!(
        "http://agent:url-secret-789@127.0.0.1:{port}"
    )]))
    .unwrap();
    let e = rt.block_on(in_url.notify(&[executed()])).unwrap_err();
    assert!(!e.to_string().contains("url-secret-789"), "{e}");
    assert!(!format!("{in_url:?}").contains("url-secret-789"));
}
