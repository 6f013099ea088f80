//! The fleet on etcd: which agent leads, and the fenced transaction before each of its
//! side effects (issue 17). Implements `decision::ports::Coordination`, which is all the
//! engine sees of it.
//!
//! - [`config`]: the `coordination` section (etcd endpoints, prefix, lease TTL, auth,
//!   TLS; this agent's name and datacenter).
//! - [`roster`]: `coordination.agents` and `coordination.quorum`, the fleet as
//!   configured, and the rules of an agent's name and datacenter.
//! - [`etcd`]: the adapter: lease, campaign, self-demotion, fences.

pub mod config;
pub mod etcd;
pub mod roster;
