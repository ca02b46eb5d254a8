//! Fabric CA's errors: an HTTP status, a numeric code and a message, where authentication and
//! authorisation failures show the client only a generic code and message (20 "Authentication
//! failure", 71 "Authorization failure") and keep the specific ones for the server's log.

/// Fabric CA's numeric error codes (`lib/caerrors`) that this service returns.
pub mod codes {
    /// Unknown error (any error without its own code).
    pub const UNKNOWN: u32 = 0;
    /// The HTTP method is not allowed for the endpoint.
    pub const METHOD_NOT_ALLOWED: u32 = 1;
    /// No `Authorization` header.
    pub const NO_AUTH_HEADER: u32 = 2;
    /// The request body was required but empty.
    pub const EMPTY_REQUEST_BODY: u32 = 4;
    /// The request body is not valid JSON for the endpoint.
    pub const BAD_REQUEST_BODY: u32 = 5;
    /// The caller lacks `hf.Revoker`.
    pub const NOT_REVOKER: u32 = 7;
    /// The certificate to revoke does not exist.
    pub const REVOKE_CERT_NOT_FOUND: u32 = 8;
    /// The certificate to revoke belongs to someone else.
    pub const CERT_WRONG_OWNER: u32 = 9;
    /// The identity to revoke does not exist.
    pub const REVOKE_ID_NOT_FOUND: u32 = 10;
    /// Neither an identity nor serial and AKI were given.
    pub const MISSING_REVOKE_ARGS: u32 = 15;
    /// The named CA does not exist.
    pub const CA_NOT_FOUND: u32 = 19;
    /// Remote code of every authentication failure.
    pub const AUTHENTICATION_FAILURE: u32 = 20;
    /// No user and password in a basic `Authorization` header.
    pub const NO_USER_PASS: u32 = 21;
    /// Unknown enrollment ID.
    pub const INVALID_USER: u32 = 23;
    /// Wrong secret, revoked identity or no enrollments left.
    pub const INVALID_PASS: u32 = 24;
    /// The token is malformed or its signature does not verify.
    pub const INVALID_TOKEN: u32 = 25;
    /// The token's certificate was not issued by this CA.
    pub const UNTRUSTED_CERTIFICATE: u32 = 26;
    /// The token's certificate has expired.
    pub const CERT_EXPIRED: u32 = 27;
    /// The token's certificate is revoked.
    pub const CERT_REVOKED: u32 = 28;
    /// The token's certificate is not in the CA's certificate database.
    pub const CERT_NOT_FOUND: u32 = 30;
    /// The CSR is not PEM.
    pub const BAD_CSR: u32 = 31;
    /// The registrar may not register an attribute.
    pub const REG_ATTR_AUTH: u32 = 42;
    /// The caller is not a registrar.
    pub const MISSING_REG_ATTR: u32 = 43;
    /// The caller may not act on an affiliation or type.
    pub const CALLER_NOT_AFFILIATED: u32 = 44;
    /// The caller's identity is gone.
    pub const GETTING_USER: u32 = 49;
    /// A database read failed (Fabric CA's code for an unknown identity on `GET /identities/<id>`).
    pub const DB_GET: u32 = 63;
    /// The certificate is already revoked.
    pub const CERT_ALREADY_REVOKED: u32 = 66;
    /// Remote code of every authorisation failure.
    pub const AUTHORIZATION_FAILURE: u32 = 71;
    /// The identity is already registered.
    pub const ALREADY_REGISTERED: u32 = 74;
    /// Registration refused (logged code behind an authorisation failure).
    pub const REGISTRATION_FAILED: u32 = 76;
    /// Too many wrong passwords: the identity is locked (logged code behind an authentication
    /// failure).
    pub const PASSWORD_ATTEMPTS: u32 = 72;
    /// The CSR's common name is not the enrollment ID.
    pub const CSR_CN_MISMATCH: u32 = 77;
    /// `max_enrollments` is below -1 or above the CA's limit.
    pub const INVALID_MAX_ENROLLMENTS: u32 = 82;
}

/// What kind of failure, so callers can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaErrorKind {
    /// Bad credentials, bad token, revoked or unknown caller (HTTP 401).
    Authentication,
    /// The caller is known but not allowed (HTTP 403).
    Authorization,
    /// The request is malformed (HTTP 400).
    BadRequest,
    /// What the request names does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with existing state (HTTP 409).
    Conflict,
    /// The HTTP method is not allowed (HTTP 405).
    MethodNotAllowed,
    /// Anything else, including storage failures (HTTP 500).
    Internal,
}

/// A Fabric CA error: HTTP status, the code and message the client sees, and the specific code
/// and detail kept for the server's log and for in-process callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Fabric CA error {local_code} (HTTP {status}): {detail}")]
pub struct CaError {
    kind: CaErrorKind,
    status: u16,
    code: u32,
    message: String,
    local_code: u32,
    detail: String,
}

impl CaError {
    /// An error whose client-visible code and message are the specific ones.
    pub fn http(status: u16, code: u32, message: impl Into<String>) -> Self {
        let message = message.into();
        let kind = match status {
            400 => CaErrorKind::BadRequest,
            401 => CaErrorKind::Authentication,
            403 => CaErrorKind::Authorization,
            404 => CaErrorKind::NotFound,
            405 => CaErrorKind::MethodNotAllowed,
            409 => CaErrorKind::Conflict,
            _ => CaErrorKind::Internal,
        };
        CaError {
            kind,
            status,
            code,
            local_code: code,
            detail: message.clone(),
            message,
        }
    }

    /// An authentication failure: 401, code 20 "Authentication failure" for the client.
    pub fn authentication(local_code: u32, detail: impl Into<String>) -> Self {
        CaError {
            kind: CaErrorKind::Authentication,
            status: 401,
            code: codes::AUTHENTICATION_FAILURE,
            message: "Authentication failure".into(),
            local_code,
            detail: detail.into(),
        }
    }

    /// An authorisation failure: 403, code 71 "Authorization failure" for the client.
    pub fn authorization(local_code: u32, detail: impl Into<String>) -> Self {
        CaError {
            kind: CaErrorKind::Authorization,
            status: 403,
            code: codes::AUTHORIZATION_FAILURE,
            message: "Authorization failure".into(),
            local_code,
            detail: detail.into(),
        }
    }

    /// An error without a specific code: 500, code 0, the message shown as is.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::http(500, codes::UNKNOWN, message)
    }

    /// The failure's kind.
    pub fn kind(&self) -> CaErrorKind {
        self.kind
    }
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The code the client sees.
    pub fn code(&self) -> u32 {
        self.code
    }
    /// The message the client sees.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The specific code (equal to [`CaError::code`] unless the failure is generic remotely).
    pub fn local_code(&self) -> u32 {
        self.local_code
    }
    /// The specific message.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<crate::material::MaterialError> for CaError {
    fn from(e: crate::material::MaterialError) -> Self {
        CaError::internal(e.to_string())
    }
}
