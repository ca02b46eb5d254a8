//! Fabric CA client errors, keyed by Fabric CA's own numeric error codes.

use thiserror::Error;

use crate::identity::{IdentityError, SignError};

/// Fabric CA's error code for an authentication failure (bad secret, bad token, unknown user).
pub const CODE_AUTHENTICATION_FAILURE: u32 = 20;
/// Fabric CA's error code for an authorization failure (the caller lacks the required attribute).
pub const CODE_AUTHORIZATION_FAILURE: u32 = 71;

/// One entry of the `errors` array of a Fabric CA response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct CaErrorMessage {
    /// Fabric CA's numeric error code (see Fabric CA's `lib/caerrors`).
    pub code: u32,
    /// The server's message.
    pub message: String,
}

/// Errors of the Fabric CA client.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaError {
    /// The server could not authenticate the caller (Fabric CA code 20: wrong secret, bad token,
    /// unknown or revoked identity).
    #[error("Fabric CA authentication failure (HTTP {status}, code {code}): {message}")]
    Authentication {
        /// HTTP status (401).
        status: u16,
        /// Fabric CA error code.
        code: u32,
        /// The server's message.
        message: String,
    },
    /// The caller is authenticated but not allowed to do this (Fabric CA code 71, e.g. register
    /// without `hf.Registrar.Roles`, revoke without `hf.Revoker`).
    #[error("Fabric CA authorization failure (HTTP {status}, code {code}): {message}")]
    Authorization {
        /// HTTP status (403).
        status: u16,
        /// Fabric CA error code.
        code: u32,
        /// The server's message.
        message: String,
    },
    /// Any other error the server reported.
    #[error("Fabric CA error (HTTP {status}): {}", format_errors(.errors))]
    Server {
        /// HTTP status.
        status: u16,
        /// Every error the server listed.
        errors: Vec<CaErrorMessage>,
    },
    /// The request could not be sent or its response not received.
    #[error("Fabric CA transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server's answer is not a Fabric CA response.
    #[error("invalid Fabric CA response: {0}")]
    InvalidResponse(String),
    /// The request is invalid before it is sent (bad URL, missing field, bad TLS certificate).
    #[error("invalid Fabric CA request: {0}")]
    InvalidRequest(String),
    /// Reading or writing an identity failed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The caller's signer failed to sign the authorization token.
    #[error(transparent)]
    Signing(#[from] SignError),
}

fn format_errors(errors: &[CaErrorMessage]) -> String {
    if errors.is_empty() {
        return "no error detail".into();
    }
    errors
        .iter()
        .map(|e| format!("code {}: {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl CaError {
    /// Fabric CA's numeric error code, when the server gave one.
    pub fn code(&self) -> Option<u32> {
        match self {
            CaError::Authentication { code, .. } | CaError::Authorization { code, .. } => {
                Some(*code)
            }
            CaError::Server { errors, .. } => errors.first().map(|e| e.code),
            _ => None,
        }
    }

    /// The HTTP status of the server's answer, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            CaError::Authentication { status, .. }
            | CaError::Authorization { status, .. }
            | CaError::Server { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Classifies a server error response.
    pub(crate) fn from_response(status: u16, errors: Vec<CaErrorMessage>) -> Self {
        let first = errors.first().cloned();
        match first {
            Some(e) if e.code == CODE_AUTHENTICATION_FAILURE => CaError::Authentication {
                status,
                code: e.code,
                message: e.message,
            },
            Some(e) if e.code == CODE_AUTHORIZATION_FAILURE => CaError::Authorization {
                status,
                code: e.code,
                message: e.message,
            },
            None if status == 401 => CaError::Authentication {
                status,
                code: 0,
                message: "unauthorized".into(),
            },
            None if status == 403 => CaError::Authorization {
                status,
                code: 0,
                message: "forbidden".into(),
            },
            _ => CaError::Server { status, errors },
        }
    }
}
