//! Telling people what an evaluation decided, as the core's notice says
//! ([`crate::decision::evaluation::notice`]), through the notifier port.

use tracing::{info, warn};

use super::Inner;
use crate::decision::ports::AgentAlert;
use crate::model::InstanceId;

/// Sends the notice of incident `id`; without a notifier it is only logged, and a
/// failure to send it is logged, never fatal: the decision stands either way.
pub(super) async fn tell(inner: &Inner, id: u64, instance: &InstanceId, alert: AgentAlert) {
    let Some(notifier) = &inner.deps.notifier else {
        info!(redis_instance = %instance, incident = id, notice = alert.name.as_str(),
            summary = %alert.summary, "notice (no alertmanager configured)");
        return;
    };
    if let Err(e) = notifier.notify(std::slice::from_ref(&alert)).await {
        warn!(redis_instance = %instance, incident = id, error = %e,
            "cannot tell Alertmanager about the decision");
    }
}
