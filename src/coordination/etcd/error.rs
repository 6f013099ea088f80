//! etcd-client's errors as the one adapter error kind: whether trying again may help.

use etcd_client::Error;
use tonic::Code;

use crate::decision::ports::{AdapterErrorKind, error_chain};

/// An etcd failure, classified, on one line.
#[derive(Debug)]
pub(super) struct EtcdFailure {
    pub kind: AdapterErrorKind,
    pub message: String,
}

impl EtcdFailure {
    pub fn timeout(what: &str) -> Self {
        Self {
            kind: AdapterErrorKind::Timeout,
            message: format!("{what}: no answer in time"),
        }
    }
}

impl From<Error> for EtcdFailure {
    fn from(e: Error) -> Self {
        Self {
            kind: kind(&e),
            message: error_chain(&e),
        }
    }
}

/// gRPC codes as etcd uses them: `Unavailable` without a leader or a connection
/// (`with_require_leader` turns "no quorum" into it), `DeadlineExceeded` on a timeout,
/// `Unauthenticated` / `PermissionDenied` for etcd auth.
fn kind(e: &Error) -> AdapterErrorKind {
    match e {
        Error::GRpcStatus(status) => match status.code() {
            Code::NotFound => AdapterErrorKind::NotFound,
            Code::Unauthenticated | Code::PermissionDenied => AdapterErrorKind::Unauthorized,
            Code::ResourceExhausted => AdapterErrorKind::Throttled,
            Code::DeadlineExceeded | Code::Cancelled => AdapterErrorKind::Timeout,
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented => AdapterErrorKind::Invalid,
            _ => AdapterErrorKind::Unavailable,
        },
        Error::InvalidArgs(_)
        | Error::InvalidUri(_)
        | Error::InvalidMetadataValue(_)
        | Error::EndpointError(_) => AdapterErrorKind::Invalid,
        _ => AdapterErrorKind::Unavailable,
    }
}

impl From<EtcdFailure> for crate::decision::ports::StoreError {
    fn from(f: EtcdFailure) -> Self {
        Self {
            kind: f.kind,
            message: f.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_and_client_errors_map_to_kinds() {
        let status = |code| Error::GRpcStatus(tonic::Status::new(code, "x"));
        let cases = [
            (status(Code::Unavailable), AdapterErrorKind::Unavailable),
            (status(Code::DeadlineExceeded), AdapterErrorKind::Timeout),
            (
                status(Code::Unauthenticated),
                AdapterErrorKind::Unauthorized,
            ),
            (
                status(Code::PermissionDenied),
                AdapterErrorKind::Unauthorized,
            ),
            (status(Code::ResourceExhausted), AdapterErrorKind::Throttled),
            (status(Code::InvalidArgument), AdapterErrorKind::Invalid),
            (status(Code::Internal), AdapterErrorKind::Unavailable),
            (
                Error::InvalidArgs("empty endpoints".into()),
                AdapterErrorKind::Invalid,
            ),
            (
                Error::LeaseKeepAliveError("lease not found".into()),
                AdapterErrorKind::Unavailable,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(EtcdFailure::from(error).kind, expected);
        }
    }
}
