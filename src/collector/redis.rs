//! The adapter to the `redis` crate: connecting (AUTH, TLS), the commands the collector
//! sends, the types of their replies, and the translation of the crate's errors into our [`ErrorKind`]s. The only
//! file of the collector that names the SDK.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use redis::aio::{AsyncStream, MultiplexedConnection};
use redis::{AsyncConnectionConfig, RedisConnectionInfo, RedisError, Value};
use tokio::net::TcpStream;

use super::info::{InfoLimits, lossy, parse_cluster_info, parse_info_with};
use super::stream::{Capped, Tripwire, too_large_message};
use crate::config::CollectorSettings;
use crate::model::{ClusterInfo, CollectError, Endpoint, ErrorKind, Info, Secret};

/// One open connection to one endpoint.
pub struct RedisConnection {
    conn: MultiplexedConnection,
    command_timeout: Duration,
    password: Option<Secret>,
    wire: Arc<Tripwire>,
}

/// The largest reply the connections to one endpoint may read
/// (`limits.max_reply_bytes`), and where to count the replies that were larger.
#[derive(Debug, Clone)]
pub struct ReplyCap {
    pub max_bytes: u64,
    pub too_large: Option<Arc<AtomicU64>>,
}

impl ReplyCap {
    /// A cap whose excesses are not counted (fresh probes, Sentinel look-ups).
    pub fn uncounted(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            too_large: None,
        }
    }
}

/// Opens a connection, TLS and AUTH included, within `settings.connect_timeout`. The
/// stream is ours, not the crate's, so that it can cap the size of a reply.
pub async fn connect(
    endpoint: &Endpoint,
    settings: &CollectorSettings,
    cap: &ReplyCap,
) -> Result<RedisConnection, CollectError> {
    let wire = Tripwire::new(cap.max_bytes, cap.too_large.clone());
    let opened = async {
        let address = (endpoint.host.as_str(), endpoint.port);
        let tcp = TcpStream::connect(address).await.map_err(|e| {
            CollectError::untrusted(ErrorKind::Connect, &format!("{}: {e}", endpoint.address()))
        })?;
        let _ = tcp.set_nodelay(true);
        let stream: Pin<Box<dyn AsyncStream + Send>> = match &endpoint.tls {
            None => Box::pin(tcp),
            Some(tls) => Box::pin(super::tls::handshake(tls, &endpoint.host, tcp).await?),
        };
        let config =
            AsyncConnectionConfig::new().set_response_timeout(Some(settings.command_timeout));
        let (conn, driver) = MultiplexedConnection::new_with_config(
            &redis_settings(endpoint),
            Capped::new(stream, Arc::clone(&wire)),
            config,
        )
        .await
        .map_err(|e| failure(&e, Phase::Connect, endpoint.password.as_ref(), &wire))?;
        // Ends when the connection is dropped (or breaks).
        tokio::spawn(driver);
        Ok(conn)
    };
    let conn = bounded(settings.connect_timeout, opened).await?;
    Ok(RedisConnection {
        conn,
        command_timeout: settings.command_timeout,
        password: endpoint.password.clone(),
        wire,
    })
}

fn redis_settings(endpoint: &Endpoint) -> RedisConnectionInfo {
    // No `CLIENT SETINFO` on connect: servers before 7.2 answer it with an error, which
    // counts in their error replies, so every fresh probe would lower the health of the
    // very datacenter it is checking as a failover target.
    let mut redis = RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(user) = &endpoint.username {
        redis = redis.set_username(user);
    }
    if let Some(password) = &endpoint.password {
        redis = redis.set_password(password.expose());
    }
    redis
}

impl RedisConnection {
    /// `PING`: how long the answer took, and the error it was, if it was one.
    /// An error reply (`LOADING`, `MASTERDOWN`, ...) is an answer: the outer `Err` is for
    /// a connection that did not answer at all, or answered something that is not PONG.
    pub async fn ping(&mut self) -> Result<(Duration, Option<CollectError>), CollectError> {
        let started = Instant::now();
        match self.raw(redis::cmd("PING")).await? {
            Ok(Value::SimpleString(s)) if s.eq_ignore_ascii_case("PONG") => {
                Ok((started.elapsed(), None))
            }
            Ok(Value::BulkString(b)) if b.eq_ignore_ascii_case(b"PONG") => {
                Ok((started.elapsed(), None))
            }
            Ok(other) => Err(not_expected("PING", "PONG", &other)),
            Err(e) => {
                let e = self.failure(&e);
                match e.kind {
                    ErrorKind::Server => Ok((started.elapsed(), Some(e))),
                    _ => Err(e),
                }
            }
        }
    }

    /// `REPLICAOF NO ONE`: makes this server a primary.
    pub async fn replicaof_no_one(&mut self) -> Result<(), CollectError> {
        let mut cmd = redis::cmd("REPLICAOF");
        cmd.arg("NO").arg("ONE");
        self.query(cmd).await.map(drop)
    }

    /// `INFO ALL`, parsed. Anything but a bulk string that reads as INFO text is a
    /// protocol error: an integer or a status line must never pass for a healthy server.
    pub async fn info(&mut self, limits: &InfoLimits) -> Result<Info, CollectError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("ALL");
        let bytes = bulk(self.query(cmd).await?, "INFO")?;
        let info = parse_info_with(bytes, limits);
        if !info.looks_like_info() {
            return Err(CollectError::untrusted(
                ErrorKind::Protocol,
                "INFO answered with text that is not INFO (no section header, no redis_version)",
            ));
        }
        Ok(info)
    }

    /// `CLUSTER INFO`, parsed.
    pub async fn cluster_info(&mut self) -> Result<ClusterInfo, CollectError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("INFO");
        Ok(parse_cluster_info(bulk(
            self.query(cmd).await?,
            "CLUSTER INFO",
        )?))
    }

    /// `SENTINEL MASTER name`: the fields Sentinel keeps about one primary.
    pub async fn sentinel_master(
        &mut self,
        name: &str,
    ) -> Result<Vec<(String, String)>, CollectError> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("MASTER").arg(name);
        field_pairs(self.query(cmd).await?, "SENTINEL MASTER")
    }

    /// `SENTINEL MASTERS`: one list of (field, value) pairs per primary.
    pub async fn sentinel_masters(&mut self) -> Result<Vec<Vec<(String, String)>>, CollectError> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("MASTERS");
        match self.query(cmd).await? {
            Value::Array(entries) => entries
                .into_iter()
                .map(|entry| field_pairs(entry, "SENTINEL MASTERS"))
                .collect(),
            other => Err(not_expected("SENTINEL MASTERS", "an array", &other)),
        }
    }

    /// `SENTINEL CKQUORUM name`: true when enough Sentinels are reachable to authorise
    /// a failover of that primary. Sentinel answers `NOQUORUM ...` as an error reply.
    pub async fn sentinel_ckquorum(&mut self, master: &str) -> Result<bool, CollectError> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("CKQUORUM").arg(master);
        match self.raw(cmd).await? {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NOQUORUM") => Ok(false),
            Err(e) => Err(self.failure(&e)),
        }
    }

    async fn query(&mut self, cmd: redis::Cmd) -> Result<Value, CollectError> {
        let reply = self.raw(cmd).await?;
        reply.map_err(|e| self.failure(&e))
    }

    /// Runs a command within the command timeout; the outer error is the timeout.
    async fn raw(&mut self, cmd: redis::Cmd) -> Result<Result<Value, RedisError>, CollectError> {
        let timeout = self.command_timeout;
        match tokio::time::timeout(timeout, cmd.query_async::<Value>(&mut self.conn)).await {
            Ok(reply) => Ok(reply),
            Err(_) if self.wire.tripped() => Err(too_large(&self.wire)),
            Err(_) => Err(timed_out(timeout)),
        }
    }

    fn failure(&self, err: &RedisError) -> CollectError {
        failure(err, Phase::Command, self.password.as_ref(), &self.wire)
    }
}

/// A client error, or the cap of the connection when that is why it broke.
fn failure(
    err: &RedisError,
    phase: Phase,
    secret: Option<&Secret>,
    wire: &Tripwire,
) -> CollectError {
    if wire.tripped() {
        return too_large(wire);
    }
    let error = classify(err, phase, secret);
    match (error.kind, wire.greeting()) {
        // The server said why before it closed (maxclients): an answer, in its words,
        // whichever of its error and our first command went first.
        (ErrorKind::Io | ErrorKind::Connect, Some(said)) => {
            let said = match secret {
                Some(secret) => secret.redact(&said),
                None => said,
            };
            CollectError::untrusted(ErrorKind::Server, &said)
        }
        _ => error,
    }
}

fn too_large(wire: &Tripwire) -> CollectError {
    CollectError {
        kind: ErrorKind::Protocol,
        message: too_large_message(wire.max()),
    }
}

/// The bytes of a bulk-string reply.
fn bulk(value: Value, command: &str) -> Result<Vec<u8>, CollectError> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::VerbatimString { text, .. } => Ok(text.into_bytes()),
        other => Err(not_expected(command, "a bulk string", &other)),
    }
}

/// Alternating field names and values (RESP2), or a map (RESP3), as text.
fn field_pairs(value: Value, command: &str) -> Result<Vec<(String, String)>, CollectError> {
    let text = |v: Value| match v {
        Value::BulkString(bytes) => Ok(lossy(bytes).0),
        Value::SimpleString(s) => Ok(s),
        Value::VerbatimString { text, .. } => Ok(text),
        Value::Int(n) => Ok(n.to_string()),
        other => Err(not_expected(command, "text", &other)),
    };
    match value {
        Value::Array(items) => {
            let mut items = items.into_iter();
            let mut pairs = Vec::with_capacity(items.len() / 2);
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((text(k)?, text(v)?));
            }
            Ok(pairs)
        }
        Value::Map(map) => map
            .into_iter()
            .map(|(k, v)| Ok((text(k)?, text(v)?)))
            .collect(),
        other => Err(not_expected(command, "field/value pairs", &other)),
    }
}

/// A reply of the wrong type: a protocol error that names the types, not the content.
fn not_expected(command: &str, expected: &str, got: &Value) -> CollectError {
    let got = match got {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a bulk string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) => "a simple string",
        Value::Okay => "OK",
        Value::Map(_) => "a map",
        Value::Set(_) => "a set",
        Value::Double(_) => "a double",
        Value::Boolean(_) => "a boolean",
        Value::BigNumber(_) => "a big number",
        Value::VerbatimString { .. } => "a verbatim string",
        Value::Push { .. } => "a push",
        _ => "another type",
    };
    CollectError {
        kind: ErrorKind::Protocol,
        message: format!("{command} answered with {got}, not {expected}"),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Connect,
    Command,
}

async fn bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, CollectError>>,
) -> Result<T, CollectError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(timeout)),
    }
}

fn timed_out(timeout: Duration) -> CollectError {
    CollectError {
        kind: ErrorKind::Timeout,
        message: format!("no answer within {}", crate::config::show_duration(timeout)),
    }
}

/// Sorts a client error into a kind, with a message that cannot carry the password.
fn classify(err: &RedisError, phase: Phase, secret: Option<&Secret>) -> CollectError {
    let text = err.to_string();
    let lower = text.to_ascii_lowercase();
    let code = err.code().unwrap_or_default();
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(code, "WRONGPASS" | "NOAUTH" | "NOPERM")
        || lower.contains("invalid password")
        || lower.contains("invalid username-password")
        || lower.contains("authentication required")
    {
        ErrorKind::Auth
    } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")
    {
        ErrorKind::Tls
    } else if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() {
        if phase == Phase::Connect {
            ErrorKind::Connect
        } else {
            ErrorKind::Io
        }
    } else if matches!(
        err.kind(),
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
    ) {
        ErrorKind::Protocol
    } else if phase == Phase::Connect && err.kind() == redis::ErrorKind::InvalidClientConfig {
        ErrorKind::Connect
    } else {
        ErrorKind::Server
    };
    // Redacted first, then escaped and bounded: the text may hold the server's words.
    let text = match secret {
        Some(secret) => secret.redact(&text),
        None => text,
    };
    CollectError::untrusted(kind, &text)
}
