//! Cloud DNS API v1's JSON as its reference gives it, and what each refusal means. Pure.
//!
//! - `ResourceRecordSet`: `name` (absolute, with the final dot), `type`, `ttl`
//!   (seconds), `rrdatas`; a record set with a `routingPolicy` has no `rrdatas`
//!   (<https://cloud.google.com/dns/docs/reference/rest/v1/resourceRecordSets>).
//! - `resourceRecordSets.list` answers `{"rrsets": [...], "nextPageToken": ...}`; with
//!   `name` and `type` it holds that one set or none.
//! - `Change`: `additions[]` and `deletions[]` "applied atomically to a ManagedZone";
//!   deletions "must match existing data exactly"; `id`, and `status` `pending` or
//!   `done` ("the request to update the authoritative servers has been sent")
//!   (<https://cloud.google.com/dns/docs/reference/rest/v1/changes>).
//! - Errors are Google's JSON error body, `{"error": {"code", "message", "errors":
//!   [{"reason", "message"}], "status"}}`; a deletion that does not match is 412,
//!   reason `conditionNotMet` ("Precondition not met for 'entity.change.deletions[0]'"),
//!   and an addition of a set that exists is 409 `alreadyExists`
//!   (<https://cloud.google.com/dns/docs/error-messages>).

use serde::{Deserialize, Serialize};

use crate::decision::ports::AdapterErrorKind;

/// One `ResourceRecordSet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSet {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(default)]
    pub rrdatas: Vec<String>,
    /// Only read, to refuse sets the agent cannot switch (geo, weighted, failover).
    #[serde(default, skip_serializing)]
    pub routing_policy: Option<serde_json::Value>,
}

/// What `resourceRecordSets.list` answers.
#[derive(Debug, Deserialize)]
pub struct Listing {
    #[serde(default)]
    pub rrsets: Vec<RecordSet>,
}

/// The body of `changes.create`.
#[derive(Debug, Serialize)]
pub struct NewChange {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deletions: Vec<RecordSet>,
    pub additions: Vec<RecordSet>,
}

/// What `changes.create` and `changes.get` answer, as far as the agent reads it.
#[derive(Debug, Deserialize)]
pub struct Change {
    pub id: String,
    #[serde(default)]
    pub status: String,
}

/// Google's error body.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub reason: String,
}

impl ErrorBody {
    /// The first reason (`conditionNotMet`), and the message.
    pub fn parse(body: &[u8]) -> Option<(String, String)> {
        let body: ErrorBody = serde_json::from_slice(body).ok()?;
        let reason = body
            .error
            .errors
            .first()
            .map(|e| e.reason.clone())
            .unwrap_or_default();
        Some((reason, body.error.message))
    }
}

/// A refusal's kind, from its HTTP status and Google's reason. The agent's changes
/// delete only the set as read and add a set only where none was read, so a deletion
/// that no longer matches (412) and an addition of a set that now exists (409
/// `alreadyExists`) both mean the read is stale. Any other 409 is a change that met a
/// concurrent one (`conflict`, `aborted`): trying the same conditional change again
/// cannot overwrite anything, so it is retried as Route53's PriorRequestNotComplete is.
/// Older Google APIs answer rate limits with 403 and a `rateLimitExceeded` reason.
pub fn kind_of(status: u16, reason: &str) -> AdapterErrorKind {
    match (status, reason) {
        (412, _) | (409, "alreadyExists") => AdapterErrorKind::Stale,
        (409, _) => AdapterErrorKind::Conflict,
        (403, "rateLimitExceeded" | "userRateLimitExceeded") | (429, _) => {
            AdapterErrorKind::Throttled
        }
        (403, "quotaExceeded") => AdapterErrorKind::Invalid,
        (401 | 403, _) => AdapterErrorKind::Unauthorized,
        (404, _) => AdapterErrorKind::NotFound,
        (408, _) => AdapterErrorKind::Timeout,
        (500..=599, _) => AdapterErrorKind::Unavailable,
        _ => AdapterErrorKind::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_kinds() {
        use AdapterErrorKind::*;
        for (status, reason, kind) in [
            (412, "conditionNotMet", Stale),
            (412, "", Stale),
            (409, "alreadyExists", Stale),
            (409, "conflict", Conflict),
            (429, "rateLimitExceeded", Throttled),
            (403, "rateLimitExceeded", Throttled),
            (403, "forbidden", Unauthorized),
            (403, "quotaExceeded", Invalid),
            (401, "authError", Unauthorized),
            (404, "notFound", NotFound),
            (400, "invalid", Invalid),
            (503, "backendError", Unavailable),
            (500, "", Unavailable),
        ] {
            assert_eq!(kind_of(status, reason), kind, "{status} {reason}");
        }
    }

    /// The reference's error example for a stale deletion, and a list answer.
    #[test]
    fn reads_the_reference_bodies() {
        let body = br#"{"error": {"code": 412, "message": "Precondition not met for 'entity.change.deletions[0]'",
            "errors": [{"domain": "global", "reason": "conditionNotMet",
            "message": "Precondition not met for 'entity.change.deletions[0]'"}]}}"#;
        assert_eq!(
            ErrorBody::parse(body),
            Some((
                "conditionNotMet".into(),
                "Precondition not met for 'entity.change.deletions[0]'".into()
            ))
        );
        assert_eq!(ErrorBody::parse(b"<html>"), None);
        let listing: Listing = serde_json::from_str(
            r#"{"kind": "dns#resourceRecordSetsListResponse", "rrsets": [{"kind": "dns#resourceRecordSet",
            "name": "cache.example.com.", "type": "CNAME", "ttl": 60, "rrdatas": ["redis-east.example.com."]}]}"#,
        )
        .unwrap();
        assert_eq!(listing.rrsets[0].rrdatas, ["redis-east.example.com."]);
        assert_eq!(listing.rrsets[0].routing_policy, None);
        let set = RecordSet {
            name: "cache.example.com.".into(),
            record_type: "CNAME".into(),
            ttl: Some(60),
            rrdatas: vec!["redis-west.example.com.".into()],
            routing_policy: None,
        };
        let body = NewChange {
            kind: "dns#change",
            deletions: Vec::new(),
            additions: vec![set],
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"kind":"dns#change","additions":[{"name":"cache.example.com.","type":"CNAME","ttl":60,"rrdatas":["redis-west.example.com."]}]}"#
        );
    }
}
