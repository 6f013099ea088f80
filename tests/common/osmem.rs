//! `osmem-server` (an in-memory OpenSearch/Elasticsearch query API from PyPI) as the
//! Elasticsearch of the client impact tests, and seed 000's client log lines to load.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{free_port, http_get, http_request, wait_for};

/// The pinned release scripts/test.sh installs.
pub const PIP_SPEC: &str = "osmem-server==0.1.6";

/// `osmem-server` on a free loopback port, killed by PID when dropped.
pub struct Osmem {
    pub port: u16,
    child: Child,
}

impl Osmem {
    pub fn start() -> Osmem {
        let program = require_osmem();
        let port = free_port();
        let child = Command::new(&program)
            .args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()));
        wait_for(Duration::from_secs(20), "osmem-server to answer", || {
            http_get(port, "/").ok().filter(|(s, _)| *s == 200)
        });
        Osmem { port, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Indexes `docs` into `index` with `_bulk` and makes them searchable at once.
    pub fn load(&self, index: &str, docs: &[Value]) {
        let mut body = String::new();
        for d in docs {
            body.push_str(&json!({"index": {"_index": index}}).to_string());
            body.push('\n');
            body.push_str(&d.to_string());
            body.push('\n');
        }
        let (status, answer) = http_request(
            self.port,
            "POST",
            "/_bulk?refresh=true",
            &[("Content-Type", "application/x-ndjson")],
            body.as_bytes(),
        )
        .expect("osmem answers _bulk");
        assert_eq!(status, 200, "_bulk: {answer}");
        let answer: Value = serde_json::from_str(&answer).expect("_bulk answers JSON");
        assert_eq!(answer["errors"], false, "_bulk refused documents: {answer}");
    }
}

impl Drop for Osmem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server binary inside the `osmem-server` wheel (or `OSMEM_SERVER_BIN`); fails
/// the test with the install command when it is missing.
pub fn require_osmem() -> PathBuf {
    if let Some(bin) = std::env::var_os("OSMEM_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let found = Command::new("python3")
        .args([
            "-c",
            "import osmem_server,os;print(os.path.dirname(osmem_server.__file__))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("bin/osmem-server"))
        .filter(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "osmem-server is not installed; this test needs it. Install it with \
             `python3 -m pip install '{PIP_SPEC}'` (scripts/test.sh does this)"
        )
    })
}

/// One client log line in seed 000's format, `ago` before now.
#[allow(clippy::too_many_arguments)]
pub fn line(
    instance: &str,
    ago: Duration,
    level: &str,
    message: &str,
    exception: Option<&str>,
    latency_ms: u64,
    source: &str,
) -> Value {
    let at = SystemTime::now() - ago;
    let mut doc = json!({
        "@timestamp": redis_failover_agent::model::rfc3339::format(at),
        "level": level,
        "message": message,
        "latency_ms": latency_ms,
        "redis_instance": instance,
        "operation": "SET",
        "key_pattern": "user:profile:*",
        "log_source": source,
    });
    if let Some(e) = exception {
        doc["exception"] = json!(e);
    }
    doc
}

/// A successful client call.
pub fn ok(instance: &str, ago: Duration, latency_ms: u64) -> Value {
    line(instance, ago, "INFO", "SET ok", None, latency_ms, "client")
}

/// A failed client call.
pub fn error(instance: &str, ago: Duration, exception: Option<&str>, message: &str) -> Value {
    line(instance, ago, "ERROR", message, exception, 1250, "client")
}
