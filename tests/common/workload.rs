//! A small client workload for the scenario bed: it writes and reads keys through the
//! instance's CNAME (read from moto, as a client resolves DNS), finds the datacenter's
//! primary through its Sentinels (as Sentinel-aware clients do), and logs every call in
//! seed 000's client log format to Elasticsearch (osmem-server): `INFO` with the latency
//! when it worked, `ERROR` with an exception name when it did not.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value as Json, json};

use super::http_request;

/// How long a client waits for Redis.
pub const CLIENT_TIMEOUT: Duration = Duration::from_millis(250);
/// Time between two calls.
const PACE: Duration = Duration::from_millis(50);

/// Where the workload finds things; shared with the bed.
#[derive(Debug, Clone)]
pub struct Routes {
    /// The CNAME's value per datacenter (`redis-a.example.com` -> `a`).
    pub datacenter_of: BTreeMap<String, String>,
    /// Per datacenter: its Sentinels' ports and the master name.
    pub sentinels: BTreeMap<String, (Vec<u16>, String)>,
    /// The clients' network: the port to dial for a server's real port.
    pub via: BTreeMap<u16, u16>,
}

/// One acknowledged write.
#[derive(Debug, Clone)]
pub struct Write {
    /// When the write was acknowledged.
    pub at: SystemTime,
    pub datacenter: String,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    writes: Mutex<Vec<Write>>,
    pending: Mutex<Vec<Json>>,
    counts: Mutex<BTreeMap<String, u64>>,
    /// The datacenter the CNAME points at, as last read.
    current: Mutex<Option<String>>,
}

/// The running workload; stops when dropped.
pub struct Workload {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workload {
    /// Starts calling; `resolve` says which datacenter the CNAME points at now (or
    /// `None` when DNS cannot be read). Log lines go to `osmem_port` in `index` every
    /// second.
    pub fn start(
        instance: &str,
        routes: Routes,
        resolve: impl Fn() -> Option<String> + Send + 'static,
        osmem_port: u16,
        index: &str,
    ) -> Workload {
        let shared = Arc::new(Shared::default());
        // DNS is read on its own thread (the record's TTL is short: every half second),
        // so a slow read never slows the calls.
        let s = Arc::clone(&shared);
        let resolver = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                if let Some(dc) = resolve() {
                    *s.current.lock().unwrap() = Some(dc);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let s = Arc::clone(&shared);
        let instance_name = instance.to_owned();
        let caller = std::thread::spawn(move || calls(&instance_name, &routes, &s));
        let s = Arc::clone(&shared);
        let index = index.to_owned();
        let shipper = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(1));
                ship(&s, osmem_port, &index);
            }
            ship(&s, osmem_port, &index);
        });
        Workload {
            shared,
            threads: vec![resolver, caller, shipper],
        }
    }

    /// Every acknowledged write so far.
    pub fn writes(&self) -> Vec<Write> {
        self.shared.writes.lock().unwrap().clone()
    }

    /// Calls by outcome (`ok`, or the exception name).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.shared.counts.lock().unwrap().clone()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn calls(instance: &str, routes: &Routes, s: &Shared) {
    let mut dc: Option<String> = None;
    let mut conn: Option<(u16, redis::Connection)> = None;
    let mut n: u64 = 0;
    while !s.stop.load(Ordering::SeqCst) {
        let now = s.current.lock().unwrap().clone();
        if now != dc {
            conn = None;
            dc = now;
        }
        let Some(current) = dc.clone() else {
            std::thread::sleep(PACE);
            continue;
        };
        n += 1;
        let key = format!("scenario:{n}");
        let value = format!("v{n}");
        let started = Instant::now();
        let result = call(routes, &current, &mut conn, &key, &value);
        let latency = started.elapsed();
        let (level, message, exception) = match &result {
            Ok(()) => {
                s.writes.lock().unwrap().push(Write {
                    at: SystemTime::now(),
                    datacenter: current.clone(),
                    key: key.clone(),
                    value,
                });
                ("INFO", "SET ok".to_owned(), None)
            }
            Err((exception, message)) => {
                conn = None;
                ("ERROR", message.clone(), Some(*exception))
            }
        };
        *s.counts
            .lock()
            .unwrap()
            .entry(exception.unwrap_or("ok").to_owned())
            .or_default() += 1;
        let mut line = json!({
            "@timestamp": redis_failover_agent::model::rfc3339::format(SystemTime::now()),
            "level": level,
            "message": message,
            "latency_ms": latency.as_millis() as u64,
            "redis_instance": instance,
            "operation": "SET",
            "log_source": "client",
        });
        if let Some(e) = exception {
            line["exception"] = json!(e);
        }
        s.pending.lock().unwrap().push(line);
        std::thread::sleep(PACE.saturating_sub(latency));
    }
}

/// One SET (and a GET of it) against `dc`'s primary; the error as (exception, message).
fn call(
    routes: &Routes,
    dc: &str,
    conn: &mut Option<(u16, redis::Connection)>,
    key: &str,
    value: &str,
) -> Result<(), (&'static str, String)> {
    let port = match conn {
        Some((port, _)) => *port,
        None => primary_of(routes, dc).ok_or((
            "RedisConnectionException",
            format!("no Sentinel of datacenter {dc} names a primary"),
        ))?,
    };
    if conn.is_none() {
        let dial = routes.via.get(&port).copied().unwrap_or(port);
        let client = redis::Client::open(format!("redis://127.0.0.1:{dial}/")).unwrap();
        let c = client
            .get_connection_with_timeout(CLIENT_TIMEOUT)
            .map_err(|e| classify(&e))?;
        *conn = Some((port, c));
    }
    let (_, c) = conn.as_mut().unwrap();
    let _ = c.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = c.set_write_timeout(Some(CLIENT_TIMEOUT));
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query::<()>(c)
        .map_err(|e| classify(&e))?;
    let back: Option<String> = redis::cmd("GET")
        .arg(key)
        .query(c)
        .map_err(|e| classify(&e))?;
    if back.as_deref() != Some(value) {
        return Err((
            "RedisDataException",
            format!("read back {back:?} for {key}"),
        ));
    }
    Ok(())
}

/// The primary's port as the datacenter's Sentinels report it.
fn primary_of(routes: &Routes, dc: &str) -> Option<u16> {
    let (ports, master) = routes.sentinels.get(dc)?;
    ports.iter().find_map(|p| {
        let client = redis::Client::open(format!("redis://127.0.0.1:{p}/")).ok()?;
        let mut c = client.get_connection_with_timeout(CLIENT_TIMEOUT).ok()?;
        let _ = c.set_read_timeout(Some(CLIENT_TIMEOUT));
        let addr: Vec<String> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master)
            .query(&mut c)
            .ok()?;
        addr.get(1)?.parse().ok()
    })
}

/// An exception name in the style of a Java client, and the message.
fn classify(e: &redis::RedisError) -> (&'static str, String) {
    let text = e.to_string();
    let exception = if text.contains("OOM") {
        "RedisOutOfMemoryException"
    } else if e.is_timeout() || text.contains("timed out") || text.contains("WouldBlock") {
        "RedisCommandTimeoutException"
    } else if e.is_connection_refusal() || e.is_io_error() {
        "RedisConnectionException"
    } else {
        "RedisException"
    };
    (exception, text)
}

fn ship(s: &Shared, port: u16, index: &str) {
    let lines: Vec<Json> = std::mem::take(&mut *s.pending.lock().unwrap());
    if lines.is_empty() {
        return;
    }
    let mut body = String::new();
    for l in &lines {
        body.push_str(&json!({"index": {"_index": index}}).to_string());
        body.push('\n');
        body.push_str(&l.to_string());
        body.push('\n');
    }
    let _ = http_request(
        port,
        "POST",
        "/_bulk?refresh=true",
        &[("Content-Type", "application/x-ndjson")],
        body.as_bytes(),
    );
}
