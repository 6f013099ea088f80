//! The agent's own alerts, pushed to Alertmanager.
