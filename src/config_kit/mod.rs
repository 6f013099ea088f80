//! What every reader of a configuration block uses, the core's (`config`) and each
//! integration's (`actuators::dns::config`, `advisors::ai::config`, ...): [`raw::Raw`],
//! a value as given; [`ctx::Ctx`], which collects problems named by their whole key;
//! [`duration::Seconds`]; and [`secrets`], which keeps credentials out of every problem
//! and log line. A leaf: it imports only `model`, so `config` can hand each block to the
//! integration that owns it without the two importing each other.

pub mod ctx;
pub mod duration;
pub mod limits;
pub mod raw;
pub mod secrets;
