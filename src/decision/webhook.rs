//! Alertmanager's webhook payload.
