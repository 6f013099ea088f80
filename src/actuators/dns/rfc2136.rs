//! RFC 2136 dynamic updates signed with TSIG (RFC 8945), to the zone's primary server
//! (BIND, PowerDNS, Knot, Windows DNS); the only file that names hickory, whose
//! `hickory-proto` builds, signs, reads and verifies every message.
//!
//! - `read`: a query for the record at the server, which must answer with authority.
//! - `write`: one UPDATE whose prerequisite is the record set as read, "RRset exists
//!   (value dependent)", or "RRset does not exist" when it was absent (RFC 2136 section
//!   2.4); the server applies the deletion of that set and the addition of the new one
//!   only if the prerequisite holds, else answers NXRRSET or YXRRSET: Stale. The TTL
//!   is not part of a prerequisite (section 2.4.2 compares the RRs without it), so a
//!   change of the TTL alone by another writer is not seen.
//! - `change_status`: the query again, in sync once the server answers the new value.
//!   The change's id names the record and the value, so a poll needs nothing else.
//!
//! Every request is signed, queries too, and a successful answer is trusted only if
//! its signature verifies; one that is not a success is taken either way (acting on a
//! forged one writes nothing). The transport is `transport.rs`.

pub mod config;
mod transport;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, update_message};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm as HickoryAlgorithm, TsigError};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, RecordSet, RecordType as HickoryType, TSigner};

use self::config::{Rfc2136Settings, TsigAlgorithm};
use crate::decision::ports::{
    AdapterErrorKind, ChangeId, ChangeStatus, DnsError, DnsProvider, RecordRef, RecordType,
    RecordValue, canonical_name,
};
use crate::model::Secret;

/// How far apart the agent's clock and the server's may be (RFC 8945 section 10
/// recommends 300 s).
const FUDGE_SECS: u16 = 300;

pub struct Rfc2136Dns {
    /// `host:port`.
    server: String,
    key_name: String,
    algorithm: TsigAlgorithm,
    signer: TSigner,
    /// Redacted from every error text hickory produces.
    secret: Secret,
}

impl fmt::Debug for Rfc2136Dns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Dns")
            .field("server", &self.server)
            .field("key", &self.key_name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// What a request is, for messages.
#[derive(Clone, Copy)]
enum Op {
    Query,
    Update,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Query => "query",
            Op::Update => "UPDATE",
        }
    }
}

impl Rfc2136Dns {
    /// A client for `settings`; nothing is sent until the first call.
    pub fn new(settings: &Rfc2136Settings) -> Result<Self, DnsError> {
        let key = &settings.tsig;
        let invalid = |why: String| DnsError::new(AdapterErrorKind::Invalid, why);
        let secret = key.secret_bytes().ok_or_else(|| {
            invalid(format!(
                "rfc2136: key {}: the secret is not base64",
                key.name
            ))
        })?;
        let name = Name::from_ascii(format!("{}.", key.name))
            .map_err(|e| invalid(format!("rfc2136: key name {:?}: {e}", key.name)))?;
        let algorithm = match key.algorithm {
            TsigAlgorithm::HmacSha256 => HickoryAlgorithm::HmacSha256,
            TsigAlgorithm::HmacSha384 => HickoryAlgorithm::HmacSha384,
            TsigAlgorithm::HmacSha512 => HickoryAlgorithm::HmacSha512,
        };
        let signer = TSigner::new(secret, algorithm, name, FUDGE_SECS)
            .map_err(|e| invalid(format!("rfc2136: key {}: {e}", key.name)))?;
        Ok(Self {
            server: settings.server.clone(),
            key_name: key.name.clone(),
            algorithm: key.algorithm,
            signer,
            secret: key.secret.clone(),
        })
    }

    fn error(&self, kind: AdapterErrorKind, op: Op, detail: &str) -> DnsError {
        let text = format!("rfc2136 {} to {}: {detail}", op.as_str(), self.server);
        DnsError::new(kind, self.secret.redact(&text))
    }

    /// Signs `request`, sends it, and returns the answer, checked: the same id, a
    /// response, not truncated, no TSIG error, and a signature that verifies unless
    /// the answer is a refusal.
    async fn exchange(&self, op: Op, mut request: Message) -> Result<Message, DnsError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let verifier = request
            .finalize(&self.signer, now)
            .map_err(|e| self.error(AdapterErrorKind::Invalid, op, &format!("cannot sign: {e}")))?;
        let bytes = request.to_vec().map_err(|e| {
            self.error(
                AdapterErrorKind::Invalid,
                op,
                &format!("cannot encode: {e}"),
            )
        })?;
        let answer = transport::exchange(&self.server, &bytes)
            .await
            .map_err(|f| {
                let kind = if f.timed_out {
                    AdapterErrorKind::Timeout
                } else {
                    AdapterErrorKind::Unavailable
                };
                self.error(kind, op, &f.message)
            })?;
        let unreadable = |why: String| self.error(AdapterErrorKind::Unavailable, op, &why);
        let message = Message::from_vec(&answer)
            .map_err(|e| unreadable(format!("unreadable answer: {e}")))?;
        if message.metadata.id != request.metadata.id
            || message.metadata.message_type != MessageType::Response
        {
            return Err(unreadable("the answer is not for this request".into()));
        }
        if message.metadata.truncation {
            return Err(unreadable(
                "the answer came truncated over UDP and the server takes no TCP".into(),
            ));
        }
        if let Some(error) = message.signature().and_then(|s| s.data.error) {
            return Err(self.error(
                AdapterErrorKind::Unauthorized,
                op,
                &self.tsig_refusal(error),
            ));
        }
        let verified = match verifier {
            Some(mut verifier) => verifier.verify(&answer).map(|_| ()),
            None => Ok(()),
        };
        match verified {
            Ok(()) => Ok(message),
            // Any answer but success is taken, signed or not: a forged refusal writes
            // nothing, and a forged "no such name" only leads to a write that the
            // server's prerequisite refuses.
            Err(_) if message.metadata.response_code != ResponseCode::NoError => Ok(message),
            Err(e) => Err(self.error(
                AdapterErrorKind::Unauthorized,
                op,
                &format!(
                    "the answer is not signed with key {}, so it is not trusted: {e}",
                    self.key_name
                ),
            )),
        }
    }

    fn tsig_refusal(&self, error: TsigError) -> String {
        let key = &self.key_name;
        match error {
            TsigError::BadSig => {
                format!("the server refused key {key}: its secret is not the server's (BADSIG)")
            }
            TsigError::BadKey => format!(
                "the server does not know key {key} with algorithm {} (BADKEY)",
                self.algorithm
            ),
            TsigError::BadTime => format!(
                "the server refused key {key}: its clock and this host's differ by more \
                 than {FUDGE_SECS} s (BADTIME)"
            ),
            other => format!("the server refused key {key} ({other:?})"),
        }
    }

    /// The record's value at the server: `None` when the name or the type is absent.
    async fn query(
        &self,
        name: &Name,
        record_type: RecordType,
    ) -> Result<Option<RecordValue>, DnsError> {
        let mut request = Message::query();
        request.metadata.recursion_desired = false;
        request.add_query(Query::query(name.clone(), hickory_type(record_type)));
        let answer = self.exchange(Op::Query, request).await?;
        let code = answer.metadata.response_code;
        if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
            let (kind, why) = self.refusal(code, &name.to_ascii(), record_type);
            return Err(self.error(kind, Op::Query, &why));
        }
        if !answer.metadata.authoritative {
            return Err(self.error(
                AdapterErrorKind::Invalid,
                Op::Query,
                &format!(
                    "the server is not authoritative for {name}; point dns_config.server \
                     at the zone's primary"
                ),
            ));
        }
        let wanted = canonical_name(&name.to_ascii());
        let records: Vec<_> = answer
            .answers
            .iter()
            .filter(|r| canonical_name(&r.name.to_ascii()) == wanted)
            .filter_map(|r| value_of(&r.data, record_type).map(|v| (v, r.ttl)))
            .collect();
        let Some(ttl) = records.first().map(|(_, ttl)| *ttl) else {
            return Ok(None);
        };
        let values = records.into_iter().map(|(v, _)| v).collect();
        Ok(Some(RecordValue { values, ttl }))
    }

    /// The kind and the words for an answer's RCODE that is not NOERROR.
    fn refusal(
        &self,
        code: ResponseCode,
        name: &str,
        record_type: RecordType,
    ) -> (AdapterErrorKind, String) {
        let key = &self.key_name;
        let why = match code {
            ResponseCode::NXRRSet => format!(
                "{name} {record_type} no longer holds the values read: the prerequisite failed (NXRRSET)"
            ),
            ResponseCode::YXRRSet => format!(
                "{name} {record_type} exists though it was read as absent: the prerequisite \
                 failed (YXRRSET)"
            ),
            ResponseCode::Refused => format!(
                "refused (REFUSED): key {key} may not change {name} {record_type}; the \
                 zone's update-policy must grant it (docs/dns.md)"
            ),
            ResponseCode::NotAuth => format!(
                "the server is not authoritative for the zone, or did not accept key {key} \
                 (NOTAUTH)"
            ),
            ResponseCode::ServFail => "the server failed (SERVFAIL)".to_owned(),
            ResponseCode::NotZone => format!("{name} is not in the zone (NOTZONE)"),
            ResponseCode::FormErr => "the server could not read the request (FORMERR)".to_owned(),
            ResponseCode::NotImp => {
                "the server does not implement this request (NOTIMP)".to_owned()
            }
            other => format!("the server answered {other}"),
        };
        (kind_of(code), why)
    }
}

/// The kind of an answer's RCODE: a failed prerequisite is a stale read; the server's
/// refusals of the key are Unauthorized; its failure may pass; the rest is a request
/// the server will never take.
fn kind_of(code: ResponseCode) -> AdapterErrorKind {
    match code {
        ResponseCode::NXRRSet | ResponseCode::YXRRSet => AdapterErrorKind::Stale,
        ResponseCode::Refused
        | ResponseCode::NotAuth
        | ResponseCode::BADSIG
        | ResponseCode::BADKEY
        | ResponseCode::BADTIME => AdapterErrorKind::Unauthorized,
        ResponseCode::ServFail => AdapterErrorKind::Unavailable,
        _ => AdapterErrorKind::Invalid,
    }
}

fn hickory_type(t: RecordType) -> HickoryType {
    match t {
        RecordType::Cname => HickoryType::CNAME,
        RecordType::A => HickoryType::A,
        RecordType::Aaaa => HickoryType::AAAA,
    }
}

/// A record's value as the server holds it: a name with its trailing dot, an address.
fn value_of(data: &RData, record_type: RecordType) -> Option<String> {
    match (data, record_type) {
        (RData::CNAME(target), RecordType::Cname) => Some(target.0.to_ascii()),
        (RData::A(ip), RecordType::A) => Some(ip.0.to_string()),
        (RData::AAAA(ip), RecordType::Aaaa) => Some(ip.0.to_string()),
        _ => None,
    }
}

/// `name` as an absolute DNS name.
fn absolute(name: &str) -> Result<Name, DnsError> {
    let mut parsed = Name::from_ascii(name.trim()).map_err(|e| {
        DnsError::new(
            AdapterErrorKind::Invalid,
            format!("rfc2136: {name:?} is not a domain name: {e}"),
        )
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// The record set `value` makes of `record`.
fn record_set(
    name: &Name,
    record_type: RecordType,
    value: &RecordValue,
) -> Result<RecordSet, DnsError> {
    let invalid = |v: &str, what: &str| {
        DnsError::new(
            AdapterErrorKind::Invalid,
            format!("rfc2136: {v:?} is not {what} for a {record_type} record"),
        )
    };
    if record_type == RecordType::Cname && value.values.len() != 1 {
        return Err(DnsError::new(
            AdapterErrorKind::Invalid,
            format!(
                "rfc2136: a CNAME holds one name, not {}",
                value.values.join(",")
            ),
        ));
    }
    let mut set = RecordSet::with_ttl(name.clone(), hickory_type(record_type), value.ttl);
    for v in &value.values {
        let data = match record_type {
            RecordType::Cname => RData::CNAME(CNAME(absolute(v)?)),
            RecordType::A => RData::A(A(v
                .trim()
                .parse::<Ipv4Addr>()
                .map_err(|_| invalid(v, "an IPv4 address"))?)),
            RecordType::Aaaa => RData::AAAA(AAAA(
                v.trim()
                    .parse::<Ipv6Addr>()
                    .map_err(|_| invalid(v, "an IPv6 address"))?,
            )),
        };
        set.add_rdata(data);
    }
    Ok(set)
}

/// The record and its zone, checked: the name must be in the zone, or hickory's update
/// builders would refuse it by panicking.
fn names(record: &RecordRef) -> Result<(Name, Name), DnsError> {
    let (zone, name) = (absolute(&record.zone_id)?, absolute(&record.name)?);
    if !zone.zone_of(&name) {
        return Err(DnsError::new(
            AdapterErrorKind::Invalid,
            format!(
                "rfc2136: {} is not in zone {} (dns_config.zone)",
                record.name, record.zone_id
            ),
        ));
    }
    Ok((zone, name))
}

/// The change's id: what a poll asks the server and expects, `name TYPE v1,v2`.
fn change_id(name: &Name, record_type: RecordType, value: &RecordValue) -> ChangeId {
    ChangeId(format!("{name} {record_type} {}", value.values.join(",")))
}

fn parse_change_id(id: &ChangeId) -> Option<(Name, RecordType, RecordValue)> {
    let mut parts = id.0.splitn(3, ' ');
    let (name, record_type, values) = (parts.next()?, parts.next()?, parts.next()?);
    let value = RecordValue {
        values: values.split(',').map(str::to_owned).collect(),
        ttl: 0,
    };
    Some((absolute(name).ok()?, record_type.parse().ok()?, value))
}

#[async_trait::async_trait]
impl DnsProvider for Rfc2136Dns {
    fn name(&self) -> &'static str {
        "rfc2136"
    }

    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        let (_, name) = names(record)?;
        self.query(&name, record.record_type).await
    }

    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        let (zone, name) = names(record)?;
        let new = record_set(&name, record.record_type, value)?;
        let request = match expected {
            Some(old) => {
                let old = record_set(&name, record.record_type, old)?;
                update_message::compare_and_swap(old, new, zone, false)
            }
            None => update_message::create(new, zone, false),
        };
        debug_assert_eq!(request.metadata.op_code, OpCode::Update);
        let answer = self.exchange(Op::Update, request).await?;
        let code = answer.metadata.response_code;
        if code != ResponseCode::NoError {
            let (kind, why) = self.refusal(code, &record.name, record.record_type);
            return Err(self.error(kind, Op::Update, &why));
        }
        Ok(change_id(&name, record.record_type, value))
    }

    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        let (name, record_type, target) = parse_change_id(id).ok_or_else(|| {
            DnsError::new(
                AdapterErrorKind::Invalid,
                format!("rfc2136: {id:?} is not a change of this provider"),
            )
        })?;
        let now = self.query(&name, record_type).await?;
        Ok(match now {
            Some(now) if now.points_at(&target, record_type) => ChangeStatus::InSync,
            _ => ChangeStatus::Pending,
        })
    }
}

#[cfg(test)]
mod tests;
