//! The agent in-process, as the binary runs it: the test binds `127.0.0.1:0` itself,
//! runs `app::serve` on that listener, talks HTTP to it, reloads it and shuts it down
//! through its `Control` (mini-redis `tests/server.rs`).

mod common;

use std::path::Path;
use std::time::Duration;

use redis_failover_agent::app::{self, Control, Options, SHUTDOWN_GRACE};
use redis_failover_agent::config::{self, Config};
use tokio::net::TcpListener;

use common::{Metrics, Redis, http_get};

const WAIT: Duration = Duration::from_secs(15);

/// One instance on `redis`, with its state in `dir`.
fn config_text(redis: &Redis, dir: &Path) -> String {
    common::config(
        &[("cache", &[("east", redis.port)])],
        &format!(
            "state_dir: {}\nmodel_path: {}\n",
            dir.join("state").display(),
            dir.join("models").display()
        ),
    )
}

fn parse(text: &str) -> Config {
    config::parse(text, "test", Path::new("."), &|_| None)
        .expect("the test configuration is valid")
        .config
}

/// `GET path` from a blocking thread: the agent shares this test's runtime.
async fn get(port: u16, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || http_get(port, path))
        .await
        .expect("the request thread")
        .expect("the agent answers")
}

/// Scrapes until `check` holds, or fails after [`WAIT`].
async fn wait_metrics(port: u16, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = get(port, "/metrics").await;
        let metrics = Metrics::parse(&body);
        if status == 200 && check(&metrics) {
            return metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serve_answers_reloads_and_stops_within_the_grace_period() {
    let redis = Redis::start(&[]);
    let other = Redis::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    let text = config_text(&redis, dir.path());
    std::fs::write(&path, &text).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let options = Options {
        config_path: Some(path.clone()),
        listen: None,
        no_failover: true,
        journal_start_over: false,
        ..Options::default()
    };
    let control = Control::new();
    let serving = tokio::spawn(app::serve(listener, parse(&text), options, control.clone()));

    let (status, body) = get(port, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let m = wait_metrics(port, "the endpoint up", |m| {
        m.of("redis_up", "cache", "east") == Some(1.0)
    })
    .await;
    assert_eq!(
        m.get("redis_agent_config_reloads_total", &[("result", "success")]),
        Some(0.0)
    );

    // A reload reads `config_path` again: the instance moves to the other server's
    // datacenter, and the series of the removed endpoint go.
    let moved = common::config(
        &[("cache", &[("west", other.port)])],
        &format!(
            "state_dir: {}\nmodel_path: {}\n",
            dir.path().join("state").display(),
            dir.path().join("models").display()
        ),
    );
    std::fs::write(&path, moved).unwrap();
    control.reload();
    let m = wait_metrics(port, "the reloaded configuration", |m| {
        m.of("redis_up", "cache", "west") == Some(1.0)
            && m.of("redis_up", "cache", "east").is_none()
    })
    .await;
    assert_eq!(
        m.get("redis_agent_config_reloads_total", &[("result", "success")]),
        Some(1.0)
    );

    control.shutdown();
    let stopped = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(5), serving)
        .await
        .expect("serve returns within the grace period")
        .expect("the serve task did not panic");
    assert!(stopped.is_ok(), "{stopped:?}");
    let refused = tokio::task::spawn_blocking(move || http_get(port, "/healthz"))
        .await
        .unwrap();
    assert!(
        refused.is_err(),
        "still answering after shutdown: {refused:?}"
    );
}

/// A failure to start (here a journal directory that cannot be created) is an error
/// from `serve`, after the tasks it had started are stopped.
#[tokio::test]
async fn serve_returns_the_error_that_stops_it_from_starting() {
    let redis = Redis::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, "").unwrap();
    let text = common::config(
        &[("cache", &[("east", redis.port)])],
        &format!(
            "state_dir: {}\nmodel_path: {}\n",
            blocker.join("state").display(),
            dir.path().join("models").display()
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = Options {
        config_path: None,
        listen: None,
        no_failover: true,
        journal_start_over: false,
        ..Options::default()
    };
    let result = tokio::time::timeout(
        SHUTDOWN_GRACE + Duration::from_secs(5),
        app::serve(listener, parse(&text), options, Control::new()),
    )
    .await
    .expect("serve gives up within the grace period");
    let error = format!("{:#}", result.expect_err("a journal it cannot open"));
    assert!(error.contains("state_dir"), "{error}");
}
