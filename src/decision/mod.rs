//! Deciding whether to fail over: Alertmanager's webhook payload (`webhook`), the pure
//! failover policy (`policy`), and the journal that records every decision durably
//! (`journal`). `ports` holds the traits the engine acts through and the types it exchanges
//! with the adapters that implement them.

pub mod advice;
pub mod clock;
pub mod counters;
pub mod engine;
pub mod evaluation;
pub mod incident;
pub mod journal;
pub mod policy;
pub mod ports;
pub mod settings;
pub mod webhook;

#[cfg(test)]
pub(crate) mod testkit;
