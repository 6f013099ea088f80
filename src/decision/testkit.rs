//! Fixtures shared by the decision's, the engine's and the API's tests.

use std::time::Duration;

use async_trait::async_trait;

use crate::decision::ports::{
    FreshProbe, HookContext, HookRun, HookRunner, RecordRef, RecordType, SwitchPolicy,
};
use crate::decision::settings::{FailoverSettings, HookSettings};
use crate::decision::settings::{InstanceRecord, Settings};
use crate::model::{
    CollectError, DatacenterId, Endpoint, EndpointKey, ErrorKind, Instance, InstanceId,
};

/// Instance `cache` (named `name`) in `east` (active) and `west`, hosts
/// `redis-<dc>.example.com`.
pub(crate) fn instance(name: &str) -> Instance {
    let endpoints = ["east", "west"]
        .into_iter()
        .map(|dc| {
            let endpoint = Endpoint {
                key: EndpointKey::new("cache", dc),
                host: format!("redis-{dc}.example.com"),
                port: 6379,
                username: None,
                password: None,
                tls: None,
                sentinel: None,
            };
            (DatacenterId::new(dc), endpoint)
        })
        .collect();
    Instance {
        uid: InstanceId::new("cache"),
        name: name.into(),
        endpoints,
        active_dc: DatacenterId::new("east"),
    }
}

/// A probe that answered (1 ms), or one refused.
pub(crate) fn fresh(up: bool) -> FreshProbe {
    if up {
        FreshProbe {
            up: true,
            ping_latency: Some(Duration::from_millis(1)),
            info: None,
            error: None,
            sentinel_failover: false,
            sentinel_heard: None,
        }
    } else {
        FreshProbe::down(CollectError {
            kind: ErrorKind::Connect,
            message: "connection refused".into(),
        })
    }
}

/// The hook runner of a test that configures no hooks: the engine never asks it.
#[derive(Debug)]
pub(crate) struct NoHooks;

#[async_trait]
impl HookRunner for NoHooks {
    async fn run(&self, args: &[String], _: &HookContext<'_>, _: Duration) -> HookRun {
        unreachable!("no hook is configured, yet {args:?} was run")
    }
}

/// The record of instance `cache`: a CNAME to `redis-<dc>.example.com`.
pub(crate) fn record() -> RecordRef {
    RecordRef::new("Z1", "redis.example.com", RecordType::Cname)
}

/// Instance `cache` with its record (TTL 60), 3 confirmation rounds 10 ms apart.
pub(crate) fn settings(auto: bool, no_failover: bool, hooks: HookSettings) -> Settings {
    let inst = instance("cache");
    let values = inst
        .endpoints
        .iter()
        .map(|(dc, e)| (dc.clone(), e.host.clone()))
        .collect();
    let mut failover = FailoverSettings {
        auto,
        confirm_interval: Duration::from_millis(10),
        hooks,
        ..FailoverSettings::default()
    };
    failover.consecutive_threshold = 3;
    Settings {
        instances: [(inst.uid.clone(), inst)].into_iter().collect(),
        failover,
        records: [(
            InstanceId::new("cache"),
            InstanceRecord {
                record: record(),
                ttl: 60,
                values,
            },
        )]
        .into_iter()
        .collect(),
        no_failover,
        switch: SwitchPolicy {
            poll_interval: Duration::from_millis(10),
            ..SwitchPolicy::default()
        },
        ai_max_hold: Duration::from_secs(120),
        effect_window: (Duration::from_secs(900), Duration::from_secs(600)),
        limits: crate::config_kit::limits::Limits::default(),
        observers: Default::default(),
    }
}

/// The time of day every test clock starts at.
pub(crate) fn t0() -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A clock that follows tokio's from [`t0`]: in a test with paused time, it moves only
/// as the runtime's timers do.
#[derive(Debug)]
pub(crate) struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    pub(crate) fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl crate::decision::clock::Clock for TokioClock {
    fn now(&self) -> std::time::SystemTime {
        t0() + self.start.elapsed()
    }
}

/// A fleet's store in memory, shared by the agents of a test
/// ([`MemoryCoordination`]); fences pass only in the current leader's term.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    state: std::sync::Mutex<StoreState>,
}

#[derive(Debug, Default)]
struct StoreState {
    records: std::collections::BTreeMap<(&'static str, String), (String, i64)>,
    revision: i64,
    /// The term in which fences pass.
    term: i64,
    /// No answer: every call fails as an unreachable store.
    down: bool,
    /// The writes of every fence that passed, in order.
    fenced: Vec<Vec<crate::decision::ports::Write>>,
    /// Records published under an agent's lease: (agent, record).
    published: Vec<(String, (&'static str, String))>,
}

impl MemoryStore {
    pub(crate) fn set_term(&self, term: i64) {
        self.lock().term = term;
    }

    pub(crate) fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    pub(crate) fn get(&self, table: crate::decision::ports::Table, key: &str) -> Option<String> {
        let state = self.lock();
        state
            .records
            .get(&(table.name(), key.to_owned()))
            .map(|(v, _)| v.clone())
    }

    pub(crate) fn put_record(&self, table: crate::decision::ports::Table, key: &str, value: &str) {
        let mut state = self.lock();
        state.revision += 1;
        let revision = state.revision;
        state
            .records
            .insert((table.name(), key.to_owned()), (value.to_owned(), revision));
    }

    pub(crate) fn fenced(&self) -> Vec<Vec<crate::decision::ports::Write>> {
        self.lock().fenced.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap()
    }
}

/// One agent's view of a [`MemoryStore`], with the leadership the test gives it.
#[derive(Debug)]
pub(crate) struct MemoryCoordination {
    name: String,
    datacenter: Option<DatacenterId>,
    store: std::sync::Arc<MemoryStore>,
    leadership: tokio::sync::watch::Sender<crate::decision::ports::Leadership>,
}

impl MemoryCoordination {
    pub(crate) fn new(name: &str, store: std::sync::Arc<MemoryStore>) -> Self {
        let (leadership, _) = tokio::sync::watch::channel(crate::decision::ports::Leadership::Down);
        Self {
            name: name.into(),
            datacenter: None,
            store,
            leadership,
        }
    }

    /// The same agent, running in `dc`.
    pub(crate) fn in_datacenter(mut self, dc: &str) -> Self {
        self.datacenter = Some(DatacenterId::new(dc));
        self
    }

    pub(crate) fn set(&self, leadership: crate::decision::ports::Leadership) {
        self.leadership.send_replace(leadership);
    }
}

#[async_trait]
impl crate::decision::ports::Coordination for MemoryCoordination {
    fn agent(&self) -> &str {
        &self.name
    }

    fn datacenter(&self) -> Option<DatacenterId> {
        self.datacenter.clone()
    }

    fn leadership(&self) -> tokio::sync::watch::Receiver<crate::decision::ports::Leadership> {
        self.leadership.subscribe()
    }

    async fn fence(
        &self,
        term: crate::decision::ports::Term,
        writes: &[crate::decision::ports::Write],
    ) -> Result<(), crate::decision::ports::FenceError> {
        use crate::decision::ports::{FenceError, Write};
        let mut state = self.store.lock();
        if state.down {
            return Err(FenceError::Store(unreachable_store()));
        }
        if state.term != term.0 {
            return Err(FenceError::NotLeader { term, leader: None });
        }
        state.revision += 1;
        let revision = state.revision;
        for write in writes {
            match write {
                Write::Put { table, key, value } => {
                    let at = (table.name(), key.clone());
                    state.records.insert(at, (value.clone(), revision));
                }
                Write::DeleteUpTo {
                    table,
                    key,
                    revision: upto,
                } => {
                    let at = (table.name(), key.clone());
                    if state.records.get(&at).is_some_and(|(_, r)| r <= upto) {
                        state.records.remove(&at);
                    }
                }
            }
        }
        state.fenced.push(writes.to_vec());
        Ok(())
    }

    async fn list(
        &self,
        table: crate::decision::ports::Table,
    ) -> Result<Vec<crate::decision::ports::Entry>, crate::decision::ports::StoreError> {
        let state = self.store.lock();
        if state.down {
            return Err(unreachable_store());
        }
        Ok(state
            .records
            .iter()
            .filter(|((t, _), _)| *t == table.name())
            .map(
                |((_, key), (value, revision))| crate::decision::ports::Entry {
                    key: key.clone(),
                    value: value.clone(),
                    revision: *revision,
                },
            )
            .collect())
    }

    async fn put(
        &self,
        table: crate::decision::ports::Table,
        key: &str,
        value: &str,
    ) -> Result<i64, crate::decision::ports::StoreError> {
        if self.store.lock().down {
            return Err(unreachable_store());
        }
        self.store.put_record(table, key, value);
        Ok(self.store.lock().revision)
    }

    async fn publish(
        &self,
        table: crate::decision::ports::Table,
        key: &str,
        value: &str,
    ) -> Result<i64, crate::decision::ports::StoreError> {
        let revision = self.put(table, key, value).await?;
        let at = (table.name(), key.to_owned());
        self.store.lock().published.push((self.name.clone(), at));
        Ok(revision)
    }
}

impl MemoryCoordination {
    /// Drops what this agent published, as etcd does when its lease expires.
    pub(crate) fn lose_lease(&self) {
        let name = self.name.clone();
        let mut state = self.store.lock();
        let published = std::mem::take(&mut state.published);
        let (mine, others): (Vec<_>, Vec<_>) =
            published.into_iter().partition(|(agent, _)| *agent == name);
        for (_, at) in mine {
            state.records.remove(&at);
        }
        state.published = others;
    }
}

fn unreachable_store() -> crate::decision::ports::StoreError {
    crate::decision::ports::StoreError {
        kind: crate::decision::ports::AdapterErrorKind::Unavailable,
        message: "the test's store is down".into(),
    }
}
