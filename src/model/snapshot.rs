use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use super::Fields;

/// What one successful collection round read from one endpoint.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Wall-clock time of the round, for timestamps shown to people.
    pub taken_at: SystemTime,
    /// Monotonic time the round finished, for freshness.
    pub finished: Instant,
    /// Round trip of `PING` on the established connection.
    pub ping_latency: Duration,
    pub info: Info,
    /// `CLUSTER INFO`, read only when `INFO` says cluster mode is enabled.
    pub cluster: Option<ClusterInfo>,
    /// `SENTINEL MASTERS` (and `SENTINEL CKQUORUM`), read only from Sentinels.
    pub sentinel_masters: Vec<SentinelMaster>,
}

/// The parsed text of `INFO ALL`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    /// Every plain `field:value` line, whatever its section.
    pub fields: Fields,
    /// `dbN:keys=..,expires=..,avg_ttl=..`.
    pub keyspace: Vec<KeyspaceDb>,
    /// `cmdstat_<command>:calls=..,usec=..,rejected_calls=..,failed_calls=..`.
    pub commands: Vec<CommandStat>,
    /// `errorstat_<PREFIX>:count=..`, as (prefix, count).
    pub errors: Vec<(String, u64)>,
    /// `slaveN:ip=..,port=..,state=..,offset=..,lag=..` on a primary.
    pub replicas: Vec<Replica>,
    /// `masterN:name=..,status=..,address=..,slaves=..,sentinels=..` on a Sentinel.
    pub sentinel_masters: Vec<SentinelMaster>,
    /// `latency_percentiles_usec_<command>:p50=..,p99=..,p99.9=..` (Redis 7).
    pub latency: Vec<LatencyPercentiles>,
    /// What the reply held that was not kept as sent: rows past a limit, lines that were
    /// not UTF-8. Counted per endpoint on `/metrics`.
    pub dropped: Dropped,
    /// `# Section` header lines seen: real `INFO` text has at least one.
    pub sections: usize,
}

impl Info {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field)
    }

    /// A field as a number; `None` when absent or not numeric.
    pub fn number(&self, field: &str) -> Option<f64> {
        self.get(field)?.parse().ok()
    }

    pub fn role(&self) -> Option<&str> {
        self.get("role")
    }

    pub fn is_cluster_enabled(&self) -> bool {
        self.get("cluster_enabled") == Some("1")
    }

    pub fn is_sentinel(&self) -> bool {
        self.get("redis_mode") == Some("sentinel")
    }

    /// Whether this looks like an answer to `INFO` at all: Redis 6 and 7, Sentinel and
    /// the servers that speak the protocol (Valkey, KeyDB) all open with `# Server` and
    /// report `redis_version`. A reply with neither is not INFO, whatever it parsed to.
    pub fn looks_like_info(&self) -> bool {
        self.sections > 0 || self.get("redis_version").is_some()
    }

    /// Memory used against the limit that hurts when reached, for the health score.
    /// Under an `allkeys-*` policy a cache full up to `maxmemory` is working as designed
    /// (it evicts, it never refuses a write), so only the host's memory counts; otherwise
    /// as [`Info::memory_used_ratio`].
    pub fn memory_pressure(&self) -> Option<f64> {
        let evicts_anything = self
            .get("maxmemory_policy")
            .is_some_and(|p| p.starts_with("allkeys-"));
        if evicts_anything {
            let used = self.number("used_memory")?;
            let host = self.number("total_system_memory").filter(|m| *m > 0.0)?;
            return Some(used / host);
        }
        self.memory_used_ratio()
    }

    /// `used_memory` over `maxmemory`, or over `total_system_memory` when there is no limit.
    pub fn memory_used_ratio(&self) -> Option<f64> {
        let used = self.number("used_memory")?;
        let limit = self
            .number("maxmemory")
            .filter(|m| *m > 0.0)
            .or_else(|| self.number("total_system_memory").filter(|m| *m > 0.0))?;
        Some(used / limit)
    }
}

/// The tables of `INFO` rows that become labelled series; each is capped per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `cmdstat_*` (`limits.max_commands_per_endpoint`).
    Commands,
    /// `errorstat_*` (`limits.max_error_kinds_per_endpoint`).
    Errors,
    /// `dbN` (`limits.max_databases_per_endpoint`).
    Databases,
    /// `latency_percentiles_usec_*` rows (`limits.max_commands_per_endpoint`) and the
    /// percentiles of one row past [`MAX_PERCENTILES`].
    Latency,
    /// `slaveN` lines of a primary, past [`MAX_REPLICAS`].
    Replicas,
    /// Primaries a Sentinel watches, past [`MAX_SENTINEL_MASTERS`].
    SentinelMasters,
}

/// Percentiles kept per command (Redis reports 3 by default).
pub const MAX_PERCENTILES: usize = 16;
/// Replicas kept per primary.
pub const MAX_REPLICAS: usize = 256;
/// Primaries kept per Sentinel.
pub const MAX_SENTINEL_MASTERS: usize = 1024;

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Commands,
        Table::Errors,
        Table::Databases,
        Table::Latency,
        Table::Replicas,
        Table::SentinelMasters,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Table::Commands => "commands",
            Table::Errors => "errors",
            Table::Databases => "databases",
            Table::Latency => "latency",
            Table::Replicas => "replicas",
            Table::SentinelMasters => "sentinel_masters",
        }
    }
}

/// Entries of one reply not kept as sent (or, summed over rounds, of an endpoint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    rows: [u64; Table::ALL.len()],
    /// Lines whose bytes were not valid UTF-8: kept, with U+FFFD for the bad bytes.
    pub invalid_utf8: u64,
}

impl Dropped {
    pub fn add(&mut self, table: Table, n: u64) {
        self.rows[table as usize] += n;
    }

    /// Rows of `table` left out (past its limit, or repeated).
    pub fn rows(&self, table: Table) -> u64 {
        self.rows[table as usize]
    }

    pub fn merge(&mut self, other: &Dropped) {
        for table in Table::ALL {
            self.add(table, other.rows(table));
        }
        self.invalid_utf8 += other.invalid_utf8;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyspaceDb {
    pub db: u32,
    pub keys: u64,
    pub expires: u64,
    /// Average time to live of the keys with an expiry, in milliseconds.
    pub avg_ttl_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandStat {
    /// Lower-case command name; subcommands as `config|get`.
    pub command: String,
    pub calls: u64,
    /// Total time spent executing, in microseconds.
    pub usec: u64,
    /// Calls refused before execution (wrong arity, OOM, ...).
    pub rejected_calls: u64,
    /// Calls that failed during execution.
    pub failed_calls: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    pub ip: String,
    pub port: u16,
    pub state: String,
    pub offset: u64,
    /// Seconds since the replica last acknowledged.
    pub lag: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatencyPercentiles {
    pub command: String,
    /// (quantile as written by Redis, e.g. `99.9`; latency in microseconds).
    pub percentiles: Vec<(String, f64)>,
}

/// One primary as a Sentinel sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SentinelMaster {
    pub name: String,
    /// `ip:port` of the current primary.
    pub address: String,
    /// `ok`, `sdown` or `odown`.
    pub status: String,
    pub slaves: u64,
    /// Sentinels watching this primary, this one included.
    pub sentinels: u64,
    /// Configured quorum (from `SENTINEL MASTERS`).
    pub quorum: Option<u64>,
    /// `SENTINEL CKQUORUM`: enough Sentinels are reachable to authorise a failover.
    pub quorum_ok: Option<bool>,
}

/// The parsed text of `CLUSTER INFO`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterInfo {
    pub fields: Fields,
}

impl ClusterInfo {
    pub fn number(&self, field: &str) -> Option<f64> {
        self.fields.get(field)?.parse().ok()
    }

    pub fn state_ok(&self) -> Option<bool> {
        self.fields.get("cluster_state").map(|s| s == "ok")
    }
}

/// Why a collection round failed. The set is closed so it can be a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The TCP connection could not be made (refused, unreachable, name not resolved).
    Connect,
    /// A connect or a command took longer than its timeout.
    Timeout,
    /// The server refused the credentials, or demands some.
    Auth,
    /// The TLS handshake failed.
    Tls,
    /// An established connection broke.
    Io,
    /// The server answered with an error (`LOADING`, `NOPERM`, ...).
    Server,
    /// The answer could not be understood.
    Protocol,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Auth,
        ErrorKind::Tls,
        ErrorKind::Io,
        ErrorKind::Server,
        ErrorKind::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Auth => "auth",
            ErrorKind::Tls => "tls",
            ErrorKind::Io => "io",
            ErrorKind::Server => "server",
            ErrorKind::Protocol => "protocol",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed round: its kind, and a message that never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for CollectError {}

impl CollectError {
    /// An error whose message holds text from the server or the network: control
    /// characters escaped and the length bounded, because the message reaches the log,
    /// the API and incident steps.
    pub fn untrusted(kind: ErrorKind, text: &str) -> Self {
        Self {
            kind,
            message: super::fields::clean_message(text),
        }
    }
}

/// Failed rounds of one endpoint since the agent started, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; ErrorKind::ALL.len()]);

impl ErrorCounts {
    pub fn add(&mut self, kind: ErrorKind) {
        self.0[kind.index()] += 1;
    }

    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[kind.index()]
    }
}
