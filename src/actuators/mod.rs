//! What the decision engine acts through: DNS providers (`dns`), the operator's hooks
//! around a failover (`hooks`), and the agent's own alerts pushed to Alertmanager
//! (`alertmanager`).

pub mod alertmanager;
pub mod dns;
pub mod hooks;
