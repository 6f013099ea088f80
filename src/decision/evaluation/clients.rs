//! Step 3: the clients' own view of the instance, from their logs. The report is asked
//! for when the evaluation starts and read once its confirmation rounds are done; the
//! policy reads its conclusion ([`ClientStatus`]) and the AI advisor its numbers. It can
//! never stop a decision: unknown, late or failed, the probes decide.
//!
//! The clients' lines that matter are those written since the agent lost the active
//! endpoint: "as usual" must mean the clients reached it while the agent could not.
//! Lines from before would drown a fresh outage in successes, and a hang that slows the
//! clients to a few errors a second would look like a partition. So while the
//! collector's rounds of the active endpoint fail, the recent period starts when the
//! first of them failed (at most [`DECISION_WINDOW`]`.0` ago); otherwise (the agent
//! still reaches it: a brownout) it is the last [`DECISION_WINDOW`]`.0`. Either way it
//! ends now, so no answer cached from before the outage is used. Too few lines in a
//! short period are "inconclusive", which changes nothing.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{Out, Run};
use crate::decision::incident::{StepName, StepOutcome};
use crate::decision::policy::ClientStatus;
use crate::decision::ports::{ClientImpact, ClientVerdict as Clients};
use crate::model::EndpointStatus;

/// How long an evaluation waits for the clients' report once its confirmation rounds
/// are done (the query started with the evaluation). Past it the clients are unknown
/// and the query finishes in the background.
pub const CLIENT_IMPACT_WAIT: Duration = Duration::from_secs(5);
/// The client logs a decision reads: a recent period of at most 5 minutes (see the
/// module documentation) against the 30 minutes before it.
pub const DECISION_WINDOW: (Duration, Duration) =
    (Duration::from_secs(5 * 60), Duration::from_secs(30 * 60));

/// How the clients' report came back.
#[derive(Debug, Clone)]
pub enum ClientAnswer {
    Answered(ClientImpact),
    /// The query's task failed (a panic).
    TaskFailed(String),
    /// No answer within [`CLIENT_IMPACT_WAIT`].
    Late,
}

/// What the evaluation learnt from the clients.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientView {
    pub status: ClientStatus,
    /// The report for the AI advisor; `null` when unknown or not configured.
    pub report: Value,
}

/// What the collector last saw of the active endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Its latest round succeeded, or it was not collected yet.
    Reached,
    /// Its latest round failed; `since`: when the first failed round ended, if known.
    Lost { since: Option<SystemTime> },
}

impl Reach {
    pub fn of(status: Option<&EndpointStatus>) -> Reach {
        match status {
            Some(s) if s.last_round.as_ref().is_some_and(|r| r.error.is_some()) => Reach::Lost {
                since: s.failing_since,
            },
            _ => Reach::Reached,
        }
    }
}

/// How long ago the agent found it had lost the endpoint, when it has.
pub fn lost_since(reach: Reach, now: SystemTime) -> Option<Duration> {
    match reach {
        Reach::Reached => None,
        Reach::Lost { since: Some(at) } => Some(now.duration_since(at).unwrap_or_default()),
        Reach::Lost { since: None } => Some(DECISION_WINDOW.0),
    }
}

/// The recent period of the clients' report (module documentation).
pub(super) fn recent_period(lost_active: Option<Duration>) -> Duration {
    lost_active.map_or(DECISION_WINDOW.0, |d| d.min(DECISION_WINDOW.0))
}

impl Run {
    /// Records the clients' report as the `client_impact` step, then judges.
    pub(super) fn clients_answered(&mut self, out: &mut Out, answer: ClientAnswer) {
        let impact = match answer {
            ClientAnswer::Answered(impact) => impact,
            ClientAnswer::TaskFailed(e) => {
                ClientImpact::unknown(format!("the query task failed: {e}"))
            }
            ClientAnswer::Late => ClientImpact::unknown(format!(
                "no answer within the decision's {} s",
                CLIENT_IMPACT_WAIT.as_secs()
            )),
        };
        let status = match impact.verdict() {
            Some(Clients::Failing) => ClientStatus::Failing,
            Some(Clients::AsUsual) => ClientStatus::Normal,
            Some(Clients::Inconclusive) | None => ClientStatus::Unknown,
        };
        let report = match &impact {
            ClientImpact::Known(r) => serde_json::to_value(r).unwrap_or_default(),
            ClientImpact::Unknown { .. } => Value::Null,
        };
        let source = self.ports.client_impact.unwrap_or_default();
        out.step(
            self.id,
            StepName::ClientImpact,
            StepOutcome::Info,
            format!("{source}: {}", impact.describe()),
            json!({ "advisor": source, "clients": status, "impact": impact }),
        );
        self.clients = ClientView { status, report };
        self.judge(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_are_read_from_when_the_agent_lost_the_endpoint() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let lost = |ago: u64| Reach::Lost {
            since: Some(now - Duration::from_secs(ago)),
        };
        // The first failed round ended 8 s ago: read the 8 s since, not the time since
        // the last success (the clients' successes before the fault are not evidence).
        assert_eq!(lost_since(lost(8), now), Some(Duration::from_secs(8)));
        // Failing, with no start known: the whole recent period.
        let unknown = Reach::Lost { since: None };
        assert_eq!(lost_since(unknown, now), Some(DECISION_WINDOW.0));
        // Still reached (a brownout), or not collected yet: the default period.
        assert_eq!(lost_since(Reach::Reached, now), None);
        assert_eq!(Reach::of(None), Reach::Reached);
        assert_eq!(
            recent_period(Some(Duration::from_secs(8))),
            Duration::from_secs(8)
        );
        assert_eq!(
            recent_period(Some(Duration::from_secs(900))),
            DECISION_WINDOW.0
        );
        assert_eq!(recent_period(None), DECISION_WINDOW.0);
    }
}
