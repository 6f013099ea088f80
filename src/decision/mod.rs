//! Deciding whether to fail over: Alertmanager's webhook payload (`webhook`), the pure
//! failover policy (`policy`), and the journal that records every decision durably
//! (`journal`). `ports` holds the traits the engine acts through and the types it exchanges
//! with the adapters that implement them.

pub mod counters;
pub mod engine;
pub mod incident;
pub mod journal;
pub mod policy;
pub mod ports;
pub mod webhook;
