//! What the decision engine acts through: DNS providers (`dns`) and the agent's own
//! alerts pushed to Alertmanager (`alertmanager`).

pub mod alertmanager;
pub mod dns;
