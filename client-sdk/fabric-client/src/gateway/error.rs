//! Gateway errors, typed by the stage that failed, as in Fabric's Go gateway client
//! (`EndorseError`, `SubmitError`, `CommitStatusError`, `CommitError`): each keeps the transaction
//! ID, the gRPC status and every peer's `gateway.ErrorDetail` from the status details.

use fabric_protos::gateway::ErrorDetail as ErrorDetailProto;
use fabric_protos::protos::TxValidationCode;
use prost::Message as _;
use thiserror::Error;

use crate::identity::SignError;

/// One endpoint's error, from the `gateway.ErrorDetail` entries of a gRPC status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    /// The peer or orderer address.
    pub address: String,
    /// Its organisation's MSP ID.
    pub msp_id: String,
    /// What it reported.
    pub message: String,
}

impl std::fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.address, self.msp_id, self.message)
    }
}

/// A gRPC status as the Gateway returned it, with its decoded details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStatus {
    /// The gRPC status code.
    pub code: tonic::Code,
    /// The status message.
    pub message: String,
    /// Every endpoint's error detail (decoded from `grpc-status-details-bin`).
    pub details: Vec<ErrorDetail>,
}

impl std::fmt::Display for GrpcStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)?;
        for d in &self.details {
            write!(f, "; {d}")?;
        }
        Ok(())
    }
}

impl From<&tonic::Status> for GrpcStatus {
    fn from(status: &tonic::Status) -> Self {
        GrpcStatus {
            code: status.code(),
            message: status.message().to_string(),
            details: decode_details(status.details()),
        }
    }
}

impl From<tonic::Status> for GrpcStatus {
    fn from(status: tonic::Status) -> Self {
        GrpcStatus::from(&status)
    }
}

/// Decodes `google.rpc.Status` bytes and keeps the `gateway.ErrorDetail` entries.
pub(crate) fn decode_details(bytes: &[u8]) -> Vec<ErrorDetail> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let Ok(status) = fabric_protos::google::rpc::Status::decode(bytes) else {
        return Vec::new();
    };
    status
        .details
        .iter()
        .filter(|any| {
            any.type_url.ends_with("/gateway.ErrorDetail") || any.type_url == "gateway.ErrorDetail"
        })
        .filter_map(|any| ErrorDetailProto::decode(any.value.as_slice()).ok())
        .map(|d| ErrorDetail {
            address: d.address,
            msp_id: d.msp_id,
            message: d.message,
        })
        .collect()
}

/// A failed gateway call for one transaction (Go: `TransactionError`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("transaction {transaction_id}: {status}")]
pub struct TransactionError {
    /// The transaction ID.
    pub transaction_id: String,
    /// The gRPC status.
    pub status: GrpcStatus,
}

/// A transaction that was ordered but did not commit successfully (Go: `CommitError`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("transaction {transaction_id} failed to commit with status code {} ({})", *.code as i32, .code.as_str_name())]
pub struct CommitError {
    /// The transaction ID.
    pub transaction_id: String,
    /// The validation code the committing peer gave the transaction.
    pub code: TxValidationCode,
    /// The block that recorded the (invalid) transaction.
    pub block_number: u64,
}

/// Errors of the gateway client.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// Evaluating a transaction failed.
    #[error("evaluate failed: {0}")]
    Evaluate(TransactionError),
    /// Collecting endorsements failed (Go: `EndorseError`).
    #[error("endorse failed: {0}")]
    Endorse(TransactionError),
    /// Submitting the endorsed transaction to the orderer failed (Go: `SubmitError`).
    #[error("submit failed: {0}")]
    Submit(TransactionError),
    /// Obtaining the commit status failed (Go: `CommitStatusError`); the transaction may still commit.
    #[error("commit status failed: {0}")]
    CommitStatus(TransactionError),
    /// The transaction committed with a validation code other than `VALID` (Go: `CommitError`).
    #[error(transparent)]
    Commit(CommitError),
    /// An event stream failed.
    #[error("event stream failed: {0}")]
    Events(GrpcStatus),
    /// A deliver stream ended with a non-success `common.Status`.
    #[error("deliver ended with status {status}")]
    Deliver {
        /// The `common.Status` value (e.g. 404 not found, 403 forbidden).
        status: i32,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The gateway has no signer and the message was not signed offline.
    #[error("no signer supplied: sign {0} offline and restore it with its signature")]
    Unsigned(&'static str),
    /// A connection could not be configured.
    #[error("connection: {0}")]
    Connection(String),
    /// An argument is invalid (bad bytes for a restored message, missing field).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The gateway answered something that is not a valid Fabric message.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// Storing a checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
}

impl GatewayError {
    /// The transaction ID the error concerns, when it concerns one.
    pub fn transaction_id(&self) -> Option<&str> {
        match self {
            GatewayError::Evaluate(e)
            | GatewayError::Endorse(e)
            | GatewayError::Submit(e)
            | GatewayError::CommitStatus(e) => Some(&e.transaction_id),
            GatewayError::Commit(e) => Some(&e.transaction_id),
            _ => None,
        }
    }

    /// The gRPC status, when the error came from one.
    pub fn grpc_status(&self) -> Option<&GrpcStatus> {
        match self {
            GatewayError::Evaluate(e)
            | GatewayError::Endorse(e)
            | GatewayError::Submit(e)
            | GatewayError::CommitStatus(e) => Some(&e.status),
            GatewayError::Events(s) => Some(s),
            _ => None,
        }
    }

    /// Every endpoint's error detail (empty when there are none).
    pub fn details(&self) -> &[ErrorDetail] {
        self.grpc_status()
            .map(|s| s.details.as_slice())
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_decode_from_google_rpc_status() {
        let detail = ErrorDetailProto {
            address: "peer0.org1:7051".into(),
            msp_id: "Org1MSP".into(),
            message: "chaincode response 500, licence not found".into(),
        };
        let status = fabric_protos::google::rpc::Status {
            code: tonic::Code::Aborted as i32,
            message: "failed to endorse".into(),
            details: vec![
                prost_types::Any {
                    type_url: "type.googleapis.com/gateway.ErrorDetail".into(),
                    value: detail.encode_to_vec(),
                },
                prost_types::Any {
                    type_url: "type.googleapis.com/other.Thing".into(),
                    value: vec![1, 2, 3],
                },
            ],
        };
        let details = decode_details(&status.encode_to_vec());
        assert_eq!(
            details,
            vec![ErrorDetail {
                address: "peer0.org1:7051".into(),
                msp_id: "Org1MSP".into(),
                message: "chaincode response 500, licence not found".into(),
            }]
        );
        assert!(decode_details(b"\xff\xff").is_empty());
        let err = CommitError {
            transaction_id: "tx1".into(),
            code: TxValidationCode::MvccReadConflict,
            block_number: 9,
        };
        assert_eq!(
            err.to_string(),
            "transaction tx1 failed to commit with status code 11 (MVCC_READ_CONFLICT)"
        );
    }
}
