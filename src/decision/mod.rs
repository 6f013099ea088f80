//! Deciding whether to fail over.
//!
//! - [`webhook`]: Alertmanager's webhook payload, parsed into candidates.
//! - [`policy`]: the failover policy over confirmation rounds (pure), and
//!   [`advice`]: what AI advice may change, and what is kept of it (pure).
//! - [`evaluation`]: one evaluation as a state machine (sans-IO): events in, actions
//!   out, the time given with each event.
//! - [`engine`]: runs evaluations: performs their actions through the [`ports`], feeds
//!   back the results, journals every step; failback, restarts, the active datacenter.
//! - [`incident`]: what the journal records (typed steps, outcomes) and the ledger it
//!   replays to; [`journal`]: the crash-safe file under it.
//! - [`ports`]: the traits the engine acts through and the types it exchanges with the
//!   adapters that implement them.
//! - [`quorum`]: an outage confirmed from a quorum of vantage points (pure).
//! - [`fleet`]: what a fleet of agents shares in its store, and what a new leader
//!   makes of an act an earlier one left unsettled (pure).
//! - [`clock`]: time as an input; [`settings`]: the configuration the decision reads;
//!   [`counters`]: its metrics.
//!
//! Imports run one way: `engine` uses `evaluation`, which uses `policy`, `advice`,
//! `incident`, `settings` and `ports`; nothing here uses the adapters.

pub mod advice;
pub mod clock;
pub mod counters;
pub mod engine;
pub mod evaluation;
pub mod fleet;
pub mod incident;
pub mod journal;
pub mod policy;
pub mod ports;
pub mod quorum;
pub mod settings;
pub mod webhook;

#[cfg(test)]
pub(crate) mod testkit;
