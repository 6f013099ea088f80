//! The adapter to the `redis` crate: connecting (AUTH, TLS), the commands the collector
//! sends, and the translation of the crate's errors into our [`ErrorKind`]s. The only
//! file of the collector that names the SDK.

use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, TlsCertificates,
};

use crate::config::CollectorSettings;
use crate::model::{CollectError, Endpoint, ErrorKind, Secret};

/// One open connection to one endpoint.
pub struct RedisConnection {
    conn: MultiplexedConnection,
    command_timeout: Duration,
    password: Option<Secret>,
}

/// Opens a connection, authenticated, within `settings.connect_timeout`.
pub async fn connect(
    endpoint: &Endpoint,
    settings: &CollectorSettings,
) -> Result<RedisConnection, CollectError> {
    let secret = endpoint.password.as_ref();
    let client = client(endpoint).map_err(|e| classify(&e, Phase::Connect, secret))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.command_timeout));
    let conn = bounded(
        settings.connect_timeout,
        client.get_multiplexed_async_connection_with_config(&config),
        Phase::Connect,
        secret,
    )
    .await?;
    Ok(RedisConnection {
        conn,
        command_timeout: settings.command_timeout,
        password: endpoint.password.clone(),
    })
}

fn client(endpoint: &Endpoint) -> redis::RedisResult<Client> {
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
    let host = endpoint.host.clone();
    let port = endpoint.port;
    let Some(tls) = &endpoint.tls else {
        let info = ConnectionAddr::Tcp(host, port)
            .into_connection_info()?
            .set_redis_settings(redis);
        return Client::open(info);
    };
    let addr = ConnectionAddr::TcpTls {
        host,
        port,
        insecure: tls.insecure_skip_verify,
        tls_params: None,
    };
    let info = addr.into_connection_info()?.set_redis_settings(redis);
    let client_tls = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.expose().as_bytes().to_vec(),
        }),
        _ => None,
    };
    if tls.ca_cert.is_none() && client_tls.is_none() {
        return Client::open(info);
    }
    Client::build_with_tls(
        info,
        TlsCertificates {
            client_tls,
            root_cert: tls.ca_cert.clone(),
        },
    )
}

impl RedisConnection {
    /// `PING`: how long the answer took, and the error it was, if it was one.
    /// An error reply (`LOADING`, `MASTERDOWN`, ...) is an answer: the outer `Err` is for
    /// a connection that did not answer at all.
    pub async fn ping(&mut self) -> Result<(Duration, Option<CollectError>), CollectError> {
        let started = Instant::now();
        match self.query::<String>(redis::cmd("PING")).await {
            Ok(_) => Ok((started.elapsed(), None)),
            Err(e) if e.kind == ErrorKind::Server => Ok((started.elapsed(), Some(e))),
            Err(e) => Err(e),
        }
    }

    /// `REPLICAOF NO ONE`: makes this server a primary.
    pub async fn replicaof_no_one(&mut self) -> Result<(), CollectError> {
        let mut cmd = redis::cmd("REPLICAOF");
        cmd.arg("NO").arg("ONE");
        self.query::<String>(cmd).await.map(drop)
    }

    /// The text of `INFO ALL`.
    pub async fn info(&mut self) -> Result<String, CollectError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("ALL");
        self.query(cmd).await
    }

    /// The text of `CLUSTER INFO`.
    pub async fn cluster_info(&mut self) -> Result<String, CollectError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("INFO");
        self.query(cmd).await
    }

    /// `SENTINEL MASTERS`: one list of (field, value) pairs per primary.
    /// `SENTINEL MASTER name`: the fields Sentinel keeps about one primary.
    pub async fn sentinel_master(
        &mut self,
        name: &str,
    ) -> Result<Vec<(String, String)>, CollectError> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("MASTER").arg(name);
        let flat: Vec<String> = self.query(cmd).await?;
        Ok(flat
            .chunks_exact(2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect())
    }

    pub async fn sentinel_masters(&mut self) -> Result<Vec<Vec<(String, String)>>, CollectError> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("MASTERS");
        let entries: Vec<Vec<String>> = self.query(cmd).await?;
        Ok(entries
            .into_iter()
            .map(|flat| {
                flat.chunks_exact(2)
                    .map(|kv| (kv[0].clone(), kv[1].clone()))
                    .collect()
            })
            .collect())
    }

    /// `SENTINEL CKQUORUM name`: true when enough Sentinels are reachable to authorise
    /// a failover of that primary. Sentinel answers `NOQUORUM ...` as an error reply.
    pub async fn sentinel_ckquorum(&mut self, master: &str) -> Result<bool, CollectError> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("CKQUORUM").arg(master);
        let reply: Result<String, RedisError> = self.bounded_query(cmd).await?;
        match reply {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NOQUORUM") => Ok(false),
            Err(e) => Err(classify(&e, Phase::Command, self.password.as_ref())),
        }
    }

    async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: redis::Cmd,
    ) -> Result<T, CollectError> {
        let reply = self.bounded_query(cmd).await?;
        reply.map_err(|e| classify(&e, Phase::Command, self.password.as_ref()))
    }

    /// Runs a command within the command timeout; the outer error is the timeout.
    async fn bounded_query<T: redis::FromRedisValue>(
        &mut self,
        cmd: redis::Cmd,
    ) -> Result<Result<T, RedisError>, CollectError> {
        let timeout = self.command_timeout;
        match tokio::time::timeout(timeout, cmd.query_async::<T>(&mut self.conn)).await {
            Ok(reply) => Ok(reply),
            Err(_) => Err(timed_out(timeout)),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Connect,
    Command,
}

async fn bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, RedisError>>,
    phase: Phase,
    secret: Option<&Secret>,
) -> Result<T, CollectError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result.map_err(|e| classify(&e, phase, secret)),
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
    let message = match secret {
        Some(secret) => secret.redact(&text),
        None => text,
    };
    CollectError { kind, message }
}
