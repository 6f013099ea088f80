//! The fleet's coordination on etcd (v3 API, crate `etcd-client`).
//!
//! **Leadership.** Each agent holds a lease of `lease_ttl` and campaigns with one
//! transaction: if `<prefix>/leader` does not exist (`create_revision == 0`), put it with
//! this agent's name, attached to the lease; else read it. That is the compare etcd's
//! own election recipe makes (`client/v3/concurrency/election.go`, `Campaign`), on the
//! transaction API (etcd.io/docs/v3.4/learning/api/, "Transaction"). The leader's term
//! is the key's create revision: it changes with every leadership and only grows. The
//! key goes when the lease expires or is revoked, and the next campaign takes it.
//!
//! **The rule** (see [`timing::Timing`]), with the default `lease_ttl` of 10 s:
//! renew every `ttl/6` (1.7 s), wait at most `ttl/6` for any etcd call, and **demote**
//! when the newest acknowledged renewal was sent more than `ttl × 2/3` (6.7 s) ago,
//! `renew_every + 2 × request_timeout ≤ ttl − margin` with a margin of `ttl/3`. A
//! demoted leader reports [`Leadership::Down`] and refuses every fence from then on,
//! while its lease, counted by etcd from a later instant, still has at least a third
//! of its TTL to run: nobody else can lead before then. Followers campaign at the same
//! pace, so a successor leads at most `ttl + ttl/6` after the leader's last renewal
//! (plus etcd's own leader election when the etcd leader died too).
//!
//! **Fencing.** [`Coordination::fence`] puts the intent under `<prefix>/intents/` in a
//! transaction that compares the leader key's create revision with the term, and is
//! refused here first when this agent no longer leads in that term. An `Ok` comes back
//! before the demotion deadline, so the side effect starts with the margin ahead of it.
//!
//! **Failures.** etcd errors are classified ([`AdapterErrorKind`]), logged with their
//! chain, and never stop the agent: an etcd unreachable at start, or without quorum
//! (`require_leader` makes such a call fail at once), is reported as
//! [`Leadership::Down`] and retried at the renewal pace.

mod campaign;
mod error;
pub mod timing;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::warn;

use self::campaign::Campaign;
use self::error::EtcdFailure;
use self::timing::Timing;
use super::config::{CoordinationSettings, EtcdSettings};
use crate::decision::ports::{
    AdapterErrorKind, Coordination, Entry, FenceError, LeaderInfo, Leadership, StoreError, Table,
    Term, Write,
};
use crate::model::DatacenterId;

/// The agent's place in the fleet on etcd. Campaigns until dropped (or until `cancel`
/// fires); dropping it revokes its lease, so a successor need not wait for the TTL.
#[derive(Debug)]
pub struct EtcdCoordination {
    shared: Arc<Shared>,
    leadership: watch::Receiver<Leadership>,
    _stop: DropGuard,
}

/// What the campaign task and the fences share.
struct Shared {
    name: String,
    datacenter: Option<DatacenterId>,
    keys: Keys,
    timing: Timing,
    settings: EtcdSettings,
    /// The connection, once made (the campaign makes it and remakes it).
    client: Mutex<Option<Client>>,
    /// The term this agent leads in, and the instant it must stop: fences read it, so a
    /// late campaign task cannot make one pass.
    lead: Mutex<Option<(Term, Instant)>>,
    /// This agent's lease, while it has one: what it publishes goes with it.
    lease: Mutex<Option<i64>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("keys", &self.keys)
            .field("timing", &self.timing)
            .field("endpoints", &self.settings.endpoints)
            .finish_non_exhaustive()
    }
}

/// The fleet's keys under `prefix`: `<prefix>/leader`, and each table's records at
/// `<prefix>/<table>/<key>`.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
    leader: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            leader: format!("{prefix}/leader"),
        }
    }

    /// The start of every key of `table`.
    fn table(&self, table: Table) -> String {
        format!("{}/{}/", self.prefix, table.name())
    }

    fn record(&self, table: Table, key: &str) -> String {
        format!("{}{key}", self.table(table))
    }
}

impl EtcdCoordination {
    /// Starts campaigning on the current tokio runtime. Never fails: an etcd that cannot
    /// be reached is reported as [`Leadership::Down`] until it can.
    pub fn start(settings: &CoordinationSettings, cancel: &CancellationToken) -> Self {
        let shared = Arc::new(Shared {
            name: settings.agent.name.clone(),
            datacenter: settings.agent.datacenter.as_deref().map(DatacenterId::new),
            keys: Keys::new(&settings.etcd.prefix),
            timing: Timing::new(settings.etcd.lease_ttl),
            settings: settings.etcd.clone(),
            client: Mutex::new(None),
            lead: Mutex::new(None),
            lease: Mutex::new(None),
        });
        let (tx, leadership) = watch::channel(Leadership::Down);
        let stop = cancel.child_token();
        tokio::spawn(Campaign::new(shared.clone(), tx).run(stop.clone()));
        Self {
            shared,
            leadership,
            _stop: stop.drop_guard(),
        }
    }
}

#[async_trait]
impl Coordination for EtcdCoordination {
    fn agent(&self) -> &str {
        &self.shared.name
    }

    fn datacenter(&self) -> Option<DatacenterId> {
        self.shared.datacenter.clone()
    }

    fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    async fn fence(&self, term: Term, writes: &[Write]) -> Result<(), FenceError> {
        let not_leader = |leader| FenceError::NotLeader { term, leader };
        let lead = *self.shared.lead.lock().expect("lead lock");
        let until = match lead {
            Some((current, until)) if current == term && Instant::now() < until => until,
            _ => return Err(not_leader(None)),
        };
        let Some(mut client) = self.shared.client() else {
            return Err(not_leader(None));
        };
        let keys = &self.shared.keys;
        let ops: Vec<TxnOp> = writes.iter().map(|w| keys.op(w)).collect();
        let txn = Txn::new()
            .when([Compare::create_revision(
                keys.leader.as_str(),
                CompareOp::Equal,
                term.0,
            )])
            .and_then(ops)
            .or_else([TxnOp::get(keys.leader.as_str(), None)]);
        let answer = tokio::time::timeout_at(until.into(), client.txn(txn)).await;
        let failure = match answer {
            Ok(Ok(response)) if response.succeeded() => return Ok(()),
            Ok(Ok(response)) => return Err(not_leader(leader_in(&response.op_responses()))),
            Ok(Err(e)) => EtcdFailure::from(e),
            Err(_) => EtcdFailure::timeout("the fence"),
        };
        warn!(
            agent = %self.shared.name,
            %term,
            writes = writes.len(),
            kind = %failure.kind,
            error = %failure.message,
            "fence failed"
        );
        Err(FenceError::Store(failure.into()))
    }

    async fn list(&self, table: Table) -> Result<Vec<Entry>, StoreError> {
        let start = self.shared.keys.table(table);
        let options = GetOptions::new().with_prefix();
        let response = self
            .shared
            .call("a list", |mut c| async move {
                c.get(start.as_str(), Some(options)).await
            })
            .await?;
        let skip = self.shared.keys.table(table).len();
        Ok(response
            .kvs()
            .iter()
            .map(|kv| Entry {
                key: String::from_utf8_lossy(&kv.key()[skip.min(kv.key().len())..]).into_owned(),
                value: String::from_utf8_lossy(kv.value()).into_owned(),
                revision: kv.mod_revision(),
            })
            .collect())
    }

    async fn publish(&self, table: Table, key: &str, value: &str) -> Result<i64, StoreError> {
        let key = self.shared.keys.record(table, key);
        self.put_leased(key, value.to_owned()).await
    }

    async fn put(&self, table: Table, key: &str, value: &str) -> Result<i64, StoreError> {
        let key = self.shared.keys.record(table, key);
        let value = value.to_owned();
        let response = self
            .shared
            .call(
                "a put",
                |mut c| async move { c.put(key, value, None).await },
            )
            .await?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }
}

impl EtcdCoordination {
    /// A put bound to this agent's lease.
    async fn put_leased(&self, key: String, value: String) -> Result<i64, StoreError> {
        let Some(lease) = *self.shared.lease.lock().expect("lease lock") else {
            return Err(StoreError {
                kind: AdapterErrorKind::Unavailable,
                message: "no lease yet: etcd has not answered this agent".into(),
            });
        };
        let options = PutOptions::new().with_lease(lease);
        let response = self
            .shared
            .call("a put with the lease", |mut c| async move {
                c.put(key, value, Some(options)).await
            })
            .await?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }
}

impl Keys {
    /// The transaction operation of one fenced write. A conditional delete is a nested
    /// transaction (etcd 3.3 and later), so that its own compare cannot fail the fence.
    fn op(&self, write: &Write) -> TxnOp {
        match write {
            Write::Put { table, key, value } => {
                TxnOp::put(self.record(*table, key), value.as_str(), None)
            }
            Write::DeleteUpTo {
                table,
                key,
                revision,
            } => {
                let key = self.record(*table, key);
                TxnOp::txn(
                    Txn::new()
                        .when([Compare::mod_revision(
                            key.as_str(),
                            CompareOp::Less,
                            revision + 1,
                        )])
                        .and_then([TxnOp::delete(key.as_str(), None)]),
                )
            }
        }
    }
}

impl Shared {
    fn client(&self) -> Option<Client> {
        self.client.lock().expect("client lock").clone()
    }

    /// One call to etcd with the request timeout; its failure logged and classified.
    async fn call<T, F>(
        &self,
        what: &'static str,
        call: impl FnOnce(Client) -> F,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let Some(client) = self.client() else {
            return Err(StoreError {
                kind: AdapterErrorKind::Unavailable,
                message: "not connected to etcd yet".into(),
            });
        };
        let failure = match tokio::time::timeout(self.timing.request_timeout, call(client)).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => EtcdFailure::from(e),
            Err(_) => EtcdFailure::timeout(what),
        };
        warn!(agent = %self.name, kind = %failure.kind, error = %failure.message,
            "etcd call failed: {what}");
        Err(failure.into())
    }
}

/// The leader named by a transaction's `get` of the leader key, if the key exists.
fn leader_in(responses: &[TxnOpResponse]) -> Option<LeaderInfo> {
    responses.iter().find_map(|r| match r {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| LeaderInfo {
            name: String::from_utf8_lossy(kv.value()).into_owned(),
            term: Term(kv.create_revision()),
        }),
        _ => None,
    })
}

/// Connects to `settings.endpoints` (lazily: the first call finds out whether etcd
/// answers), authenticating when a user is configured.
async fn connect(settings: &EtcdSettings, timing: &Timing) -> Result<Client, EtcdFailure> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(timing.request_timeout)
        .with_require_leader(true);
    if let Some(auth) = &settings.auth {
        options = options.with_user(auth.username.clone(), auth.password.expose());
    }
    if let Some(tls) = &settings.tls {
        let mut config = etcd_client::TlsOptions::new();
        if let Some(ca) = &tls.ca_cert {
            config = config.ca_certificate(etcd_client::Certificate::from_pem(ca));
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            config = config.identity(etcd_client::Identity::from_pem(cert, key.expose()));
        }
        options = options.with_tls(config);
    }
    let connecting = Client::connect(&settings.endpoints, Some(options));
    match tokio::time::timeout(timing.request_timeout, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => {
            let mut failure = EtcdFailure::from(e);
            if let Some(auth) = &settings.auth {
                failure.message = auth.password.redact(&failure.message);
            }
            Err(failure)
        }
        Err(_) => Err(EtcdFailure {
            kind: AdapterErrorKind::Timeout,
            message: "connecting: no answer in time".into(),
        }),
    }
}
