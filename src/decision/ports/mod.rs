//! The ports: the traits the decision engine acts through and the types it exchanges
//! with the adapters (`actuators/`, `advisors/`, `collector/`), which implement them and
//! need nothing else of `decision`. The adapters are built in `app`; the engine sees
//! only these traits.
//!
//! - [`prober`]: fresh probes of an endpoint, and the promotion of a replica.
//! - [`dns`]: a DNS provider, and the one way the engine changes a record
//!   ([`DnsProvider::switch`]: read first, a write conditional on the value read,
//!   retries, the wait for INSYNC), and the contract every provider passes.
//! - [`hooks`]: the operator's commands around a failover.
//! - [`notifier`]: the agent's own notices.
//! - [`client_impact`]: the clients' view of an instance, from their logs.
//! - [`advisor`]: failover advice from a model: the request, the consultation.
//! - [`verdict`]: what an evaluation found and concluded (rounds of probes, the clients'
//!   status, the verdict and why it holds), which the AI advisor reads as evidence.
//! - [`coordination`]: the fleet's leadership and the fence every side effect passes.
//! - [`error`]: the one error kind of every adapter, and the one-line error chain.

pub mod advisor;
pub mod client_impact;
pub mod coordination;
pub mod dns;
pub mod error;
pub mod hooks;
pub mod notifier;
pub mod prober;
pub mod verdict;

pub use advisor::{
    Advice, AdviceRequest, Advisor, AnomalyEvidence, Consultation, Contributor, DatacenterSummary,
    Discarded, RAW_LIMIT, RecentDecision, Recommendation, RoundEvidence, TEXT_LIMIT,
};
pub use client_impact::{
    Bounds, ClientImpact, ClientImpactError, ClientImpactSource, ClientVerdict, ErrorCategory,
    ExceptionCount, FailoverEffect, ImpactReport, Latency, SampleMessage, Spike, UntrustedText,
    Window, WindowStats,
};
pub use coordination::{
    Coordination, Entry, FenceError, LeaderInfo, Leadership, StoreError, Table, Term, Write,
};
pub use dns::{
    ChangeId, ChangeStatus, DnsError, DnsProvider, RecordRef, RecordType, RecordValue,
    SwitchOutcome, SwitchPolicy, canonical_name, canonical_value,
};
pub use error::{AdapterErrorKind, error_chain};
pub use hooks::{HookContext, HookRun, HookRunner};
pub use notifier::{AgentAlert, AgentAlertName, Notifier, NotifyError, NotifyReport, Severity};
pub use prober::{FreshProbe, Prober};
pub use verdict::{
    ClientStatus, Hold, Probe, Round, TARGET_GOOD_FROM, TARGET_HEALTHY_FROM, Verdict, View,
    Witnesses,
};
