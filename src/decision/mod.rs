//! Deciding whether to fail over: Alertmanager's webhook payload (`webhook`), and the
//! journal that records every decision durably (`journal`).

pub mod journal;
pub mod webhook;
