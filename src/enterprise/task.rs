//! The loop of one datacenter's cluster: poll, publish, wait; logs a change of state
//! once (failing, failing otherwise, answering again), not every poll.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::api::{ApiClient, ApiError, ErrorKind};
use super::poll::{self, Context};
use crate::model::DatacenterId;
use crate::model::enterprise::{ClusterView, EnterpriseStore};

#[derive(Debug)]
pub struct ClusterTask {
    pub datacenter: DatacenterId,
    pub client: ApiClient,
    pub interval: Duration,
    pub context: Context,
    pub store: Arc<EnterpriseStore>,
    pub cancel: CancellationToken,
}

impl ClusterTask {
    pub async fn run(self) {
        let dc = &self.datacenter;
        // Every kind counted from the start, so that `increase()` sees the first failure.
        let mut view = ClusterView {
            api_errors: ErrorKind::ALL
                .iter()
                .map(|k| (k.as_str().to_owned(), 0))
                .collect(),
            ..ClusterView::default()
        };
        // `None` while it answers; the kind of the failure otherwise.
        let mut failing: Option<ErrorKind> = None;
        let mut first = true;
        loop {
            // Each request has its own timeout; the whole poll, several requests, ends
            // before the next one is due.
            let bounded =
                tokio::time::timeout(self.interval, poll::read(&self.client, &self.context));
            let result = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = bounded => r.unwrap_or_else(|_| Err(ApiError {
                    kind: ErrorKind::Timeout,
                    path: "/v1/*".into(),
                    message: "the poll took longer than enterprise.poll_interval".into(),
                })),
            };
            let now = SystemTime::now();
            match result {
                Ok(read) => {
                    view = poll::succeeded(&view, read, &self.context, now);
                    if failing.take().is_some() {
                        info!(datacenter = %dc, "Redis Enterprise API answers again");
                    } else if first {
                        info!(datacenter = %dc, nodes = view.nodes.len(),
                            databases = view.databases.len(), "Redis Enterprise API read");
                    }
                }
                Err(e) => {
                    view = poll::failed(&view, &e, now);
                    if failing == Some(e.kind) {
                        debug!(datacenter = %dc, error = %e, "Redis Enterprise API still failing");
                    } else {
                        warn!(datacenter = %dc, kind = e.kind.as_str(), error = %e,
                            "Redis Enterprise API poll failed; its series are not exported until it answers");
                    }
                    failing = Some(e.kind);
                }
            }
            first = false;
            self.store.publish(dc.clone(), view.clone());
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
