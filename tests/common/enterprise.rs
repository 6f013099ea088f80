//! A stand-in for one cluster's Redis Enterprise REST API, built from the public
//! reference's request and response formats (redis.io/docs/latest/operate/rs/references/
//! rest-api/): `requests/cluster/stats/last`, `requests/nodes`, `requests/nodes/stats/last`,
//! `requests/bdbs`, `requests/bdbs/stats/last`, `requests/shards`,
//! `requests/shards/stats/last`, `requests/bdbs/syncer_state` (404: "Syncer state key
//! does not exist") and `requests/crdbs`; the objects `node`, `bdb`,
//! `bdb/syncer_sources`, `shard`, `crdb`, `crdb/instance_info`, `crdb/cluster_info`.
//!
//! One Active-Active database, `cache-service` (uid 1), whose syncer reads from one
//! other participating cluster; two shards (a master, a replica); three nodes. HTTP
//! basic authentication (401 on a wrong password), optional TLS, and answers that can be
//! made slow or failing. It binds 127.0.0.1:0 and serves each connection on a thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value as Json, json};

pub const GUID: &str = "1d7a2ed4-fdc2-4b21-a3f2-3a1d6c5b7e90";
/// The password in the syncer's replication URI, which must never come out.
pub const REPLICATION_PASSWORD: &str = "repl-s3cret-XYZ";

/// How the API answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Normal,
    /// Every answer waits this long first.
    Slow(Duration),
    /// Every authenticated request gets a 500.
    Failing,
}

#[derive(Debug, Clone)]
pub struct State {
    pub mode: Mode,
    /// The syncer's `status` and `lag` (ms).
    pub syncer_status: &'static str,
    pub syncer_lag_ms: u64,
    /// The replica shard's `status`.
    pub replica_status: &'static str,
    pub requests: Vec<String>,
}

pub struct FakeEnterprise {
    pub port: u16,
    tls: bool,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

/// The cluster's own FQDN and the other participant's.
pub struct Spec {
    pub cluster: &'static str,
    pub peer: &'static str,
    pub user: &'static str,
    pub password: &'static str,
}

impl FakeEnterprise {
    pub fn start(spec: Spec) -> Self {
        Self::serve(spec, None)
    }

    /// With TLS: `server.pem`/`server.key` of [`super::certs::certificates`] in `dir`.
    pub fn start_tls(spec: Spec, dir: &Path) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Self::serve(spec, Some(Arc::new(config)))
    }

    fn serve(spec: Spec, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Normal,
            syncer_status: "in-sync",
            syncer_lag_ms: 12,
            replica_status: "active",
            requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", spec.user, spec.password))
        );
        let spec = Arc::new((spec.cluster, spec.peer, auth));
        let has_tls = tls.is_some();
        {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (state, spec, tls) = (Arc::clone(&state), Arc::clone(&spec), tls.clone());
                    std::thread::spawn(move || {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        match tls {
                            None => {
                                let _ = handle(stream, &state, &spec);
                            }
                            Some(config) => {
                                let Ok(conn) = rustls::ServerConnection::new(config) else {
                                    return;
                                };
                                let tls = rustls::StreamOwned::new(conn, stream);
                                let _ = handle(tls, &state, &spec);
                            }
                        }
                    });
                }
            });
        }
        FakeEnterprise {
            port,
            tls: has_tls,
            state,
            stop,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.lock().unwrap());
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for FakeEnterprise {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves the requests of one connection (keep-alive) until it closes.
fn handle<S: Read + Write>(
    stream: S,
    state: &Mutex<State>,
    spec: &(&'static str, &'static str, String),
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut authorization = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = Some(value.trim().to_owned());
            }
        }
        let current = {
            let mut s = state.lock().unwrap();
            s.requests.push(path.clone());
            s.clone()
        };
        if let Mode::Slow(wait) = current.mode {
            std::thread::sleep(wait);
        }
        let (status, body) = if authorization.as_deref() != Some(spec.2.as_str()) {
            (
                401,
                json!({"error_code": "unauthorized", "description": "Unauthorized"}),
            )
        } else if current.mode == Mode::Failing {
            (500, json!({"error_code": "internal_error"}))
        } else {
            answer(&path, &current, spec.0, spec.1)
        };
        let body = body.to_string();
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            404 => "Not Found",
            _ => "Internal Server Error",
        };
        let stream = reader.get_mut();
        write!(
            stream,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()?;
    }
}

/// The body of `path`, as the reference's examples give it.
fn answer(path: &str, s: &State, cluster: &str, peer: &str) -> (u16, Json) {
    let body = match path {
        "/v1/cluster/stats/last" => json!({
            "stime": "2026-12-06T12:00:00Z", "etime": "2026-12-06T12:01:00Z",
            "conns": 25.0, "free_memory": 8589934592.0, "total_req": 1500.0, "cpu_idle": 0.8
        }),
        "/v1/nodes" => json!([
            {"uid": 1, "status": "active", "addr": "10.0.0.1", "shard_count": 1},
            {"uid": 2, "status": "active", "addr": "10.0.0.2", "shard_count": 1},
            {"uid": 3, "status": "active", "addr": "10.0.0.3", "shard_count": 0}
        ]),
        "/v1/nodes/stats/last" => json!({
            "1": {"stime": "2026-12-06T12:00:00Z", "etime": "2026-12-06T12:01:00Z",
                  "free_memory": 4294967296.0, "cpu_idle": 0.75, "conns": 10.0,
                  "persistent_storage_avail": 107374182400.0},
            "2": {"free_memory": 2147483648.0, "cpu_idle": 0.5, "conns": 15.0},
            "3": {"free_memory": 6442450944.0, "cpu_idle": 0.99, "conns": 0.0}
        }),
        "/v1/bdbs" => json!([{
            "uid": 1,
            "name": "cache-service",
            "status": "active",
            "type": "redis",
            "memory_size": 1073741824,
            "shards_count": 1,
            "replication": true,
            "crdt": true,
            "crdt_guid": GUID,
            "crdt_sync": "enabled",
            "crdt_sources": [{
                "uid": 1,
                "uri": format!("redis://admin:{REPLICATION_PASSWORD}@redis-12000.{peer}:12000"),
                "status": s.syncer_status,
                "lag": s.syncer_lag_ms,
                "last_update": "2026-12-06T12:00:59Z",
                "last_error": if s.syncer_status == "in-sync" { "" } else { "Connection refused" },
                "compression": 3,
                "encryption": false
            }]
        }]),
        "/v1/bdbs/stats/last" => json!({
            "1": {"stime": "2026-12-06T12:00:00Z", "etime": "2026-12-06T12:01:00Z",
                  "instantaneous_ops_per_sec": 1200.0, "used_memory": 104857600.0,
                  "avg_latency": 250.0, "conns": 20.0, "no_of_keys": 10000.0,
                  "evicted_objects": 0.0, "ingress_bytes": 51200.0, "egress_bytes": 102400.0}
        }),
        "/v1/shards" => json!([
            {"uid": "1", "role": "master", "assigned_slots": "0-16383", "bdb_uid": 1,
             "detailed_status": "ok", "loading": {"status": "idle"}, "node_uid": "1",
             "report_timestamp": "2026-12-06T12:00:59Z", "status": "active"},
            {"uid": "2", "role": "slave", "assigned_slots": "0-16383", "bdb_uid": 1,
             "detailed_status": "ok", "node_uid": "2", "status": s.replica_status}
        ]),
        "/v1/shards/stats/last" => json!({
            "1": {"used_memory": 52428800.0, "no_of_keys": 10000.0},
            "2": {"used_memory": 52428800.0, "no_of_keys": 10000.0}
        }),
        p if p == format!("/v1/crdbs/{GUID}") => json!({
            "guid": GUID,
            "name": "cache-service",
            "encryption": false,
            "instances": [
                {"id": 1, "db_uid": "1", "cluster": {"name": cluster, "url": format!("https://{cluster}:9443")}},
                {"id": 2, "db_uid": "1", "cluster": {"name": peer, "url": format!("https://{peer}:9443")}}
            ]
        }),
        _ => {
            return (
                404,
                json!({"error_code": "not_found", "description": "Syncer state key does not exist"}),
            );
        }
    };
    (200, body)
}
