//! The contract's error type: a [`ContractError`] whose `Display` is the wire form, so the shim's
//! router puts `{"code":…,"message":…}` in the status-500 message.

use elicense_model::{ContractError, ErrorCode};
use std::fmt;

/// A rejected transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxError(pub ContractError);

impl TxError {
    /// Builds an error from a code and a message (which must not contain personal data).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ContractError::new(code, message))
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.encode())
    }
}

impl std::error::Error for TxError {}

impl From<ContractError> for TxError {
    fn from(e: ContractError) -> Self {
        Self(e)
    }
}

impl From<fabric_chaincode::Error> for TxError {
    fn from(e: fabric_chaincode::Error) -> Self {
        // Peer errors are about keys and protocol, never values.
        Self::new(ErrorCode::Internal, format!("peer request failed: {e}"))
    }
}

/// Shorthand for a [`TxError`].
pub fn err(code: ErrorCode, message: impl Into<String>) -> TxError {
    TxError::new(code, message)
}

/// Result of a transaction function.
pub type TxResult<T> = Result<T, TxError>;
