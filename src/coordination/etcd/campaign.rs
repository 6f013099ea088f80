//! The campaign task: one round every `renew_every` (connect if needed, renew or grant
//! the lease, run the campaign transaction), the self-demotion deadline watched beside
//! it, and the lease revoked on the way out.

use std::sync::Arc;
use std::time::Instant;

use etcd_client::{Client, Compare, CompareOp, Error, PutOptions, Txn, TxnOp};
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::error::EtcdFailure;
use super::{Shared, connect, leader_in};
use crate::decision::ports::{LeaderInfo, Leadership, Term};

pub(super) struct Campaign {
    shared: Arc<Shared>,
    tx: watch::Sender<Leadership>,
    /// This agent's lease, once granted; forgotten when it expires or on demotion.
    lease: Option<i64>,
    /// When the newest acknowledged renewal (or the grant) of `lease` was sent.
    renewed: Option<Instant>,
}

/// What ended a wait of the loop.
enum Woke {
    Cancelled,
    Deadline,
    Done,
}

/// Waits for `deadline`, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Campaign {
    pub fn new(shared: Arc<Shared>, tx: watch::Sender<Leadership>) -> Self {
        Self {
            shared,
            tx,
            lease: None,
            renewed: None,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.shared.timing.renew_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let woke = tokio::select! {
                _ = cancel.cancelled() => Woke::Cancelled,
                () = until(self.deadline()) => Woke::Deadline,
                _ = tick.tick() => Woke::Done,
            };
            let woke = match woke {
                Woke::Done => {
                    let deadline = self.deadline();
                    tokio::select! {
                        _ = cancel.cancelled() => Woke::Cancelled,
                        () = until(deadline) => Woke::Deadline,
                        () = self.round() => Woke::Done,
                    }
                }
                other => other,
            };
            match woke {
                Woke::Cancelled => break,
                Woke::Deadline => self.demote(),
                Woke::Done => {}
            }
        }
        self.resign().await;
    }

    /// When this agent must stop leading: `demote_after` past its newest acknowledged
    /// renewal, while it leads.
    fn deadline(&self) -> Option<Instant> {
        self.tx.borrow().term()?;
        Some(self.renewed? + self.shared.timing.demote_after)
    }

    async fn round(&mut self) {
        match self.try_round().await {
            Ok(seen) => self.publish(seen),
            Err(failure) => {
                warn!(
                    agent = %self.shared.name,
                    kind = %failure.kind,
                    error = %failure.message,
                    "coordination round failed"
                );
                // A leader keeps leading until its deadline: one failed renewal is what
                // the margin is for.
                if self.tx.borrow().term().is_none() {
                    self.publish(Leadership::Down);
                }
            }
        }
    }

    async fn try_round(&mut self) -> Result<Leadership, EtcdFailure> {
        let mut client = self.client().await?;
        self.renew(&mut client).await?;
        self.campaign(&mut client).await
    }

    async fn client(&self) -> Result<Client, EtcdFailure> {
        if let Some(client) = self.shared.client.lock().expect("client lock").clone() {
            return Ok(client);
        }
        let client = connect(&self.shared.settings, &self.shared.timing).await?;
        *self.shared.client.lock().expect("client lock") = Some(client.clone());
        Ok(client)
    }

    /// Renews the lease, or grants one when there is none (or it expired).
    async fn renew(&mut self, client: &mut Client) -> Result<(), EtcdFailure> {
        let wait = self.shared.timing.request_timeout;
        if let Some(id) = self.lease {
            let sent = Instant::now();
            match timeout(wait, client.lease_keep_alive(id)).await {
                Ok(Ok(_)) => {
                    self.renewed = Some(sent);
                    return Ok(());
                }
                // etcd answers a renewal of an expired lease with TTL 0.
                Ok(Err(Error::LeaseKeepAliveError(_))) => {
                    warn!(agent = %self.shared.name, lease = id, "lease expired; granting a new one");
                    self.forget_lease();
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(EtcdFailure::timeout("renewing the lease")),
            }
        }
        let ttl = i64::try_from(self.shared.timing.lease_ttl.as_secs()).unwrap_or(i64::MAX);
        let sent = Instant::now();
        let grant = timeout(wait, client.lease_grant(ttl, None))
            .await
            .map_err(|_| EtcdFailure::timeout("granting a lease"))??;
        self.lease = Some(grant.id());
        *self.shared.lease.lock().expect("lease lock") = Some(grant.id());
        self.renewed = Some(sent);
        Ok(())
    }

    /// Takes the leader key if nobody holds it, else reads who does.
    async fn campaign(&self, client: &mut Client) -> Result<Leadership, EtcdFailure> {
        let Some(lease) = self.lease else {
            return Ok(Leadership::Down);
        };
        let key = self.shared.keys.leader.as_str();
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                self.shared.name.as_str(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = timeout(self.shared.timing.request_timeout, client.txn(txn))
            .await
            .map_err(|_| EtcdFailure::timeout("campaigning"))??;
        if response.succeeded() {
            // One put in the transaction: the key was created at its revision.
            let revision = response.header().map_or(0, |h| h.revision());
            return Ok(Leadership::Leader {
                term: Term(revision),
            });
        }
        let ours = response.op_responses().iter().any(|r| match r {
            etcd_client::TxnOpResponse::Get(get) => {
                get.kvs().first().is_some_and(|kv| kv.lease() == lease)
            }
            _ => false,
        });
        Ok(match leader_in(&response.op_responses()) {
            Some(LeaderInfo { term, .. }) if ours => Leadership::Leader { term },
            leader => Leadership::Follower { leader },
        })
    }

    /// Sets what the engine sees, and what fences check.
    fn publish(&self, seen: Leadership) {
        let until = self.renewed.map(|r| r + self.shared.timing.demote_after);
        let lead = match (&seen, until) {
            (Leadership::Leader { term }, Some(until)) if Instant::now() < until => {
                Some((*term, until))
            }
            (Leadership::Leader { .. }, _) => return self.publish(Leadership::Down),
            _ => None,
        };
        *self.shared.lead.lock().expect("lead lock") = lead;
        let name = &self.shared.name;
        self.tx.send_if_modified(|current| {
            if *current == seen {
                return false;
            }
            match &seen {
                Leadership::Leader { term } => info!(agent = %name, %term, "leading"),
                Leadership::Follower { leader } => info!(
                    agent = %name,
                    leader = leader.as_ref().map_or("none", |l| l.name.as_str()),
                    "following"
                ),
                Leadership::Down => warn!(agent = %name, "coordination down"),
            }
            *current = seen.clone();
            true
        });
    }

    /// Self-demotion: the lease was not renewed in time. The term ends here even if the
    /// lease turns out to be alive: the next leadership, ours or another's, is a new
    /// key with a new term.
    fn demote(&mut self) {
        warn!(
            agent = %self.shared.name,
            demote_after = ?self.shared.timing.demote_after,
            "lease not renewed in time: no longer leading"
        );
        self.forget_lease();
        self.publish(Leadership::Down);
    }

    fn forget_lease(&mut self) {
        self.lease = None;
        *self.shared.lease.lock().expect("lease lock") = None;
        self.renewed = None;
        *self.shared.lead.lock().expect("lead lock") = None;
    }

    /// Revokes the lease on the way out, so that a successor need not wait for it.
    async fn resign(&mut self) {
        let lease = self.lease;
        self.forget_lease();
        self.publish(Leadership::Down);
        let client = self.shared.client.lock().expect("client lock").clone();
        if let (Some(id), Some(mut client)) = (lease, client) {
            let wait = self.shared.timing.request_timeout;
            if let Ok(Err(e)) = timeout(wait, client.lease_revoke(id)).await {
                let failure = EtcdFailure::from(e);
                warn!(agent = %self.shared.name, kind = %failure.kind, error = %failure.message, "revoking the lease failed");
            }
        }
    }
}
