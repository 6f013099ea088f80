//! Whose view a series is. In a fleet every agent probes every endpoint from where it
//! runs and every agent is scraped, so each Redis series exists once per agent, and the
//! rules must count observers the way the leader's confirmation rounds do
//! (`decision::quorum`).
//!
//! The labels, and why they are the agent's own rather than the scrape target's:
//!
//! - `observer="<coordination.agent.name>"` names the agent whose view it is. The scrape
//!   target (`instance`) tells agents apart too, but it is an address that changes with
//!   a port, a proxy or a relabeling, and it is not the name the journal, the notices,
//!   etcd and `GET /api/status` use for the same observer; `agent` on the fleet's own
//!   series is that name too, and `observer` says what role it plays here.
//! - `observer_datacenter="<coordination.agent.datacenter>"`, when the agent has one: the
//!   rows of the datacenter × datacenter latency matrix.
//! - `vantage="inside"` when the observer runs in the endpoint's datacenter (or, on a
//!   datacenter's series, in that datacenter), `"outside"` otherwise. A rule has to
//!   count only observers outside a datacenter, and PromQL cannot compare two labels of
//!   one series, so the agent says it. An agent without a datacenter (a witness) is
//!   outside everywhere, as `decision::quorum` counts it.
//!
//! Without `coordination` none of these labels is added: a single agent's series, rules
//! and dashboards are what they were. The rules select `vantage!="inside"`, which a
//! series without the label matches, so one agent counts as one observer outside.
//! The three labels add no series: each is fixed for an agent and an endpoint.

use crate::model::DatacenterId;

/// This agent as an observer of the fleet (`coordination.agent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observer {
    pub name: String,
    /// Where the agent runs; `None` for an agent at a site without Redis (a witness).
    pub datacenter: Option<DatacenterId>,
}

impl Observer {
    /// `inside` when this observer runs in `datacenter`, else `outside`.
    pub fn vantage(&self, datacenter: &DatacenterId) -> &'static str {
        if self.datacenter.as_ref() == Some(datacenter) {
            "inside"
        } else {
            "outside"
        }
    }

    /// The labels of a datacenter's series seen from here, after `datacenter`.
    pub fn labels<'a>(&'a self, datacenter: &DatacenterId) -> Vec<(&'static str, &'a str)> {
        let mut labels = vec![("observer", self.name.as_str())];
        if let Some(dc) = &self.datacenter {
            labels.push(("observer_datacenter", dc.as_str()));
        }
        labels.push(("vantage", self.vantage(datacenter)));
        labels
    }
}
