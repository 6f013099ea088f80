//! Advisors the decision engine may consult: client impact from Elasticsearch
//! (`client_impact`) and failover advice from an OpenAI-compatible model (`ai`). Both are
//! optional and behind traits; with neither configured the engine decides alone.

pub mod ai;
pub mod client_impact;
