//! A firing candidate taken by any agent of a fleet goes to the leader through the
//! store. It is journaled here first and the delivery answered once it is in the store;
//! a store that cannot take it now does not lose it: the journal keeps it until it is
//! handed over, at the next poll or after a restart.

use tracing::warn;

use crate::decision::engine::{Engine, EngineError, Submitted};
use crate::decision::fleet::{self, Handed};
use crate::decision::incident::{Record, Trigger};
use crate::decision::ports::Table;
use crate::model::InstanceId;

impl Engine {
    /// Journals a candidate and hands it to the leader.
    pub(in crate::decision::engine) async fn hand(
        &self,
        instance: &InstanceId,
        trigger: Trigger,
        out: &mut Submitted,
    ) -> Result<(), EngineError> {
        let at = self.inner.deps.clock.now();
        let received = Record::Received {
            instance: instance.clone(),
            trigger: trigger.clone(),
            at,
        };
        self.inner.record(vec![received]).await?;
        match self.hand_over(instance, trigger, at).await {
            true => out.handed += 1,
            false => out.pending += 1,
        }
        Ok(())
    }

    /// Hands over every candidate the journal still keeps.
    pub(super) async fn hand_pending(&self) {
        let pending: Vec<_> = {
            let state = self.inner.state.lock().await;
            state.ledger.pending.clone().into_iter().collect()
        };
        for (instance, (trigger, at)) in pending {
            if !self.hand_over(&instance, trigger, at).await {
                return;
            }
        }
    }

    /// Puts the candidate in the store and journals that it is there; false if the
    /// store did not take it (the adapter logged why).
    async fn hand_over(
        &self,
        instance: &InstanceId,
        trigger: Trigger,
        at: std::time::SystemTime,
    ) -> bool {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return false;
        };
        let handed = Handed {
            trigger,
            agent: fleet.coordination.agent().to_owned(),
            at,
        };
        let (key, value) = (instance.to_string(), fleet::encode(&handed));
        let put = fleet.coordination.put(Table::Candidates, &key, &value);
        let Ok(revision) = put.await else {
            return false;
        };
        let record = Record::HandedOver {
            instance: instance.clone(),
            revision,
        };
        if let Err(e) = self.inner.record(vec![record]).await {
            // In the store already: the leader has it. The journal hands it again later.
            warn!(redis_instance = %instance, error = %e, "could not journal a candidate handed over");
        }
        fleet.wake.notify_one();
        true
    }
}
