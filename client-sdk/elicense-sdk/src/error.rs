//! Failures of licence calls, typed so a window system can act on them.
//!
//! The contract reports which rule failed as `elicense-model`'s JSON wire form inside the
//! chaincode's status-500 message; the peer and the Gateway pass that message on in each peer's
//! `gateway.ErrorDetail` (and often in the status message). [`LicenceError`] is built by decoding
//! that object ([`ContractError::decode`]) — never by matching prose — and by reading the
//! validation code of transactions that fail to commit.

use elicense_model::{ContractError, ErrorCode};
use fabric_client::gateway::{GrpcStatus, TxValidationCode};
use fabric_client::GatewayError;

use crate::holder::HolderError;

/// What went wrong, as a flat code a caller can `match` on (see [`LicenceError::failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// The grant has no uses left.
    GrantSpent,
    /// The 8-digit code was wrong (the attempt was recorded on the ledger).
    WrongCode,
    /// The grant is locked after too many wrong codes.
    GrantLocked,
    /// The grant's validity window has ended.
    GrantExpired,
    /// The grant's validity window has not begun.
    GrantNotYetValid,
    /// The holder withdrew the grant.
    GrantWithdrawn,
    /// The grant is for another matter.
    WrongMatter,
    /// The caller's organisation or role does not permit the call.
    NotAllowed,
    /// The licence is suspended by its issuer.
    LicenceSuspended,
    /// The licence is revoked by its issuer.
    LicenceRevoked,
    /// The licence's validity window has ended.
    LicenceExpired,
    /// The licence's validity window has not begun.
    LicenceNotYetValid,
    /// A presented value does not match its commitment.
    FieldMismatch,
    /// A presented field is not allowed by the grant.
    FieldNotGranted,
    /// The licence, grant, licence type or record does not exist.
    NotFound,
    /// A licence or grant with this identifier already exists.
    AlreadyExists,
    /// The contract refused malformed arguments.
    InvalidArgument,
    /// A holder signature does not verify.
    BadSignature,
    /// A holder-signed request is too old (or too far in the future).
    StaleRequest,
    /// No recent verify opened the retrieval window.
    RetrieveWindowClosed,
    /// The peer that ran the call does not hold the issuer's private data.
    PrivateDataUnavailable,
    /// The licence's status cannot change that way (e.g. reinstating a revoked licence).
    InvalidTransition,
    /// The transaction lost a race with another one (MVCC or phantom read conflict): retry.
    Conflict,
    /// The transaction was ordered but invalidated for another reason (policy, signature…).
    Invalidated,
    /// The Gateway could not be reached or did not answer in time, or refused the request.
    Network,
    /// The contract reported an internal failure, or a rule this SDK version does not know.
    Internal,
    /// The input was refused before anything was sent (holder-side checks).
    InvalidInput,
    /// The contract answered something this SDK cannot read.
    InvalidResponse,
}

impl Failure {
    /// The failure for a contract error code.
    pub fn from_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NotAllowed => Failure::NotAllowed,
            ErrorCode::NotFound => Failure::NotFound,
            ErrorCode::AlreadyExists => Failure::AlreadyExists,
            ErrorCode::InvalidArgument => Failure::InvalidArgument,
            ErrorCode::BadSignature => Failure::BadSignature,
            ErrorCode::StaleRequest => Failure::StaleRequest,
            ErrorCode::GrantSpent => Failure::GrantSpent,
            ErrorCode::GrantWithdrawn => Failure::GrantWithdrawn,
            ErrorCode::GrantExpired => Failure::GrantExpired,
            ErrorCode::GrantNotYetValid => Failure::GrantNotYetValid,
            ErrorCode::GrantLocked => Failure::GrantLocked,
            ErrorCode::WrongCode => Failure::WrongCode,
            ErrorCode::WrongMatter => Failure::WrongMatter,
            ErrorCode::FieldNotGranted => Failure::FieldNotGranted,
            ErrorCode::FieldMismatch => Failure::FieldMismatch,
            ErrorCode::LicenceSuspended => Failure::LicenceSuspended,
            ErrorCode::LicenceRevoked => Failure::LicenceRevoked,
            ErrorCode::LicenceExpired => Failure::LicenceExpired,
            ErrorCode::LicenceNotYetValid => Failure::LicenceNotYetValid,
            ErrorCode::RetrieveWindowClosed => Failure::RetrieveWindowClosed,
            ErrorCode::PrivateDataUnavailable => Failure::PrivateDataUnavailable,
            ErrorCode::InvalidTransition => Failure::InvalidTransition,
            ErrorCode::Internal | ErrorCode::Unknown => Failure::Internal,
        }
    }

    /// Whether trying the same call again may succeed (conflicts and network failures).
    pub fn is_retryable(self) -> bool {
        matches!(self, Failure::Conflict | Failure::Network)
    }
}

/// A failed licence call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LicenceError {
    /// The contract refused the call; nothing changed on the ledger.
    #[error("{error}")]
    Rejected {
        /// The contract's error: rule, message, field names.
        error: ContractError,
        /// The transaction concerned.
        transaction_id: Option<String>,
    },
    /// A verify committed with a wrong code: the attempt counts towards the lockout.
    #[error("wrong code; {attempts_left} attempt(s) left (transaction {transaction_id})")]
    WrongCode {
        /// Wrong codes still tolerated before the grant locks.
        attempts_left: u32,
        /// The verify transaction that recorded the attempt.
        transaction_id: String,
    },
    /// A verify committed with a wrong code that locked the grant.
    #[error("wrong code; the grant is now locked (transaction {transaction_id})")]
    Locked {
        /// The verify transaction that locked the grant.
        transaction_id: String,
    },
    /// The transaction was ordered but did not commit: MVCC or phantom read conflict.
    #[error("transaction {transaction_id} conflicted with another ({})", .code.as_str_name())]
    Conflict {
        /// The transaction.
        transaction_id: String,
        /// Its validation code.
        code: TxValidationCode,
        /// The block that recorded it.
        block_number: u64,
    },
    /// The transaction was ordered but invalidated for another reason.
    #[error("transaction {transaction_id} was invalidated ({})", .code.as_str_name())]
    Invalidated {
        /// The transaction.
        transaction_id: String,
        /// Its validation code.
        code: TxValidationCode,
        /// The block that recorded it.
        block_number: u64,
    },
    /// The Gateway failed without a contract error (unreachable, deadline, refused, …).
    #[error(transparent)]
    Gateway(GatewayError),
    /// Holder-side input was refused before anything was sent.
    #[error(transparent)]
    Holder(#[from] HolderError),
    /// The contract's answer could not be read.
    #[error("unreadable contract response: {0}")]
    InvalidResponse(String),
    /// The client could not be set up (profile, identity, endpoints).
    #[error("setup: {0}")]
    Setup(String),
}

impl LicenceError {
    /// What went wrong, as a flat code.
    pub fn failure(&self) -> Failure {
        match self {
            LicenceError::Rejected { error, .. } => Failure::from_code(error.code),
            LicenceError::WrongCode { .. } => Failure::WrongCode,
            LicenceError::Locked { .. } => Failure::GrantLocked,
            LicenceError::Conflict { .. } => Failure::Conflict,
            LicenceError::Invalidated { .. } => Failure::Invalidated,
            LicenceError::Gateway(_) => Failure::Network,
            LicenceError::Holder(_) => Failure::InvalidInput,
            LicenceError::InvalidResponse(_) => Failure::InvalidResponse,
            LicenceError::Setup(_) => Failure::InvalidInput,
        }
    }

    /// The contract's error, when the contract refused the call.
    pub fn contract_error(&self) -> Option<&ContractError> {
        match self {
            LicenceError::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The field names the failure concerns (`FIELD_MISMATCH`, `FIELD_NOT_GRANTED`).
    pub fn fields(&self) -> &[String] {
        self.contract_error()
            .map(|e| e.fields.as_slice())
            .unwrap_or(&[])
    }

    /// The transaction the failure concerns, when known.
    pub fn transaction_id(&self) -> Option<&str> {
        match self {
            LicenceError::Rejected { transaction_id, .. } => transaction_id.as_deref(),
            LicenceError::WrongCode { transaction_id, .. }
            | LicenceError::Locked { transaction_id }
            | LicenceError::Conflict { transaction_id, .. }
            | LicenceError::Invalidated { transaction_id, .. } => Some(transaction_id),
            LicenceError::Gateway(e) => e.transaction_id(),
            _ => None,
        }
    }
}

/// The contract error carried by a gateway status: first in any peer's `ErrorDetail`, then in
/// the status message itself.
pub fn contract_error_of(status: &GrpcStatus) -> Option<ContractError> {
    status
        .details
        .iter()
        .find_map(|d| ContractError::decode(&d.message))
        .or_else(|| ContractError::decode(&status.message))
}

impl From<GatewayError> for LicenceError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Evaluate(ref t) | GatewayError::Endorse(ref t) => {
                match contract_error_of(&t.status) {
                    Some(error) => LicenceError::Rejected {
                        error,
                        transaction_id: Some(t.transaction_id.clone()),
                    },
                    None => LicenceError::Gateway(e),
                }
            }
            GatewayError::Commit(c) => {
                let conflict = matches!(
                    c.code,
                    TxValidationCode::MvccReadConflict | TxValidationCode::PhantomReadConflict
                );
                if conflict {
                    LicenceError::Conflict {
                        transaction_id: c.transaction_id,
                        code: c.code,
                        block_number: c.block_number,
                    }
                } else {
                    LicenceError::Invalidated {
                        transaction_id: c.transaction_id,
                        code: c.code,
                        block_number: c.block_number,
                    }
                }
            }
            other => LicenceError::Gateway(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_client::gateway::{CommitError, ErrorDetail, TransactionError};

    fn endorse_error(details: Vec<ErrorDetail>, message: &str) -> GatewayError {
        GatewayError::Endorse(TransactionError {
            transaction_id: "tx1".into(),
            status: GrpcStatus {
                code: tonic::Code::Aborted,
                message: message.into(),
                details,
            },
        })
    }

    #[test]
    fn contract_error_is_read_from_peer_error_details() {
        let wire = ContractError::new(ErrorCode::FieldMismatch, "presented values differ")
            .with_fields(vec!["name".into()])
            .encode();
        let e = LicenceError::from(endorse_error(
            vec![ErrorDetail {
                address: "peer0.police.elicense.gov:7051".into(),
                msp_id: "PublicSecurityMSP".into(),
                message: format!("chaincode response 500, {wire}"),
            }],
            "failed to endorse transaction, see attached details for more info",
        ));
        assert_eq!(e.failure(), Failure::FieldMismatch);
        assert_eq!(e.fields(), ["name"]);
        assert_eq!(e.transaction_id(), Some("tx1"));
    }

    #[test]
    fn free_text_is_never_mistaken_for_a_rule() {
        // A message that merely mentions a rule's name is a network-level failure.
        let e = LicenceError::from(endorse_error(vec![], "GRANT_SPENT maybe? connection reset"));
        assert_eq!(e.failure(), Failure::Network);
    }

    #[test]
    fn commit_codes_map_to_conflict_or_invalidated() {
        let commit = |code| {
            LicenceError::from(GatewayError::Commit(CommitError {
                transaction_id: "t".into(),
                code,
                block_number: 4,
            }))
        };
        assert_eq!(
            commit(TxValidationCode::MvccReadConflict).failure(),
            Failure::Conflict
        );
        assert_eq!(
            commit(TxValidationCode::PhantomReadConflict).failure(),
            Failure::Conflict
        );
        assert_eq!(
            commit(TxValidationCode::EndorsementPolicyFailure).failure(),
            Failure::Invalidated
        );
        assert!(Failure::Conflict.is_retryable() && !Failure::GrantSpent.is_retryable());
    }

    #[test]
    fn every_contract_code_has_a_failure() {
        for &code in ErrorCode::ALL {
            let f = Failure::from_code(code);
            if code != ErrorCode::Internal {
                assert_ne!(f, Failure::Internal, "{code}");
            }
        }
    }
}
