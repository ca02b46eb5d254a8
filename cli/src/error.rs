//! The CLI's error: a class (which decides the exit code), what failed, and a hint.

use crate::exit::Class;

/// A failure reported to the user.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The failure class.
    pub class: Class,
    /// What failed, naming the rule where a rule refused.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// A machine-readable code from the layer below (e.g. a contract error code).
    pub code: Option<String>,
}

impl CliError {
    /// A failure of the given class.
    pub fn new(class: Class, message: impl Into<String>) -> Self {
        CliError {
            class,
            message: message.into(),
            hint: None,
            code: None,
        }
    }

    /// A usage failure (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Class::Usage, message)
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a machine-readable code.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, doing: impl std::fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// The JSON form printed on standard error with `-o json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "class": self.class.name(),
                "exit_code": self.class.code(),
                "code": self.code,
                "message": self.message,
                "hint": self.hint,
            }
        })
    }
}

/// Adds context to fallible operations on local files and the like.
pub trait Context<T> {
    /// Turns an error into a [`CliError`] of `class`, prefixed by `doing`.
    fn or_fail(self, class: Class, doing: impl std::fmt::Display) -> Result<T, CliError>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn or_fail(self, class: Class, doing: impl std::fmt::Display) -> Result<T, CliError> {
        self.map_err(|e| CliError::new(class, format!("{doing}: {e}")))
    }
}

impl From<fabric_client::IdentityError> for CliError {
    fn from(e: fabric_client::IdentityError) -> Self {
        use fabric_client::IdentityError as E;
        let class = match &e {
            E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Class::NotFound
            }
            _ => Class::Usage,
        };
        CliError::new(class, format!("identity: {e}")).hint(
            "--identity takes an MSP directory (signcerts/, keystore/) or a label in --wallet",
        )
    }
}

impl From<fabric_client::ca::CaError> for CliError {
    fn from(e: fabric_client::ca::CaError) -> Self {
        use fabric_client::ca::CaError as E;
        let (class, hint) = match &e {
            E::Authentication { .. } => (
                Class::Denied,
                "the CA did not accept these credentials: check the enrollment ID and secret, or that the identity is not revoked",
            ),
            E::Authorization { .. } => (
                Class::Denied,
                "the calling identity lacks the CA attribute this needs (hf.Registrar.Roles to register, hf.Revoker to revoke)",
            ),
            E::Server { status, errors } => {
                let text = errors
                    .iter()
                    .map(|m| m.message.to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                if text.contains("already registered") || text.contains("already revoked") {
                    (Class::Conflict, "the CA already holds this; nothing was changed")
                } else if *status == 404 || text.contains("not found") || text.contains("does not exist") {
                    (Class::NotFound, "check the enrollment ID or certificate named")
                } else if *status == 401 || *status == 403 {
                    (Class::Denied, "the CA refused the caller")
                } else if (400..500).contains(status) {
                    (Class::Usage, "the CA rejected the request as malformed")
                } else {
                    (Class::Internal, "see the CA server's log")
                }
            }
            E::Transport(_) => (
                Class::Network,
                "check the CA URL (--ca-url or the connection profile) and that the CA is running",
            ),
            E::InvalidResponse(_) => (Class::Network, "the endpoint is not a Fabric CA"),
            E::InvalidRequest(_) => (Class::Usage, "check the command's arguments"),
            E::Identity(_) => (Class::Usage, "check the identity's MSP directory"),
            _ => (Class::Internal, "unexpected CA client failure"),
        };
        CliError::new(class, e.to_string()).hint(hint)
    }
}

impl From<fabric_client::GatewayError> for CliError {
    fn from(e: fabric_client::GatewayError) -> Self {
        use fabric_client::gateway::GatewayError as E;
        let class = match &e {
            E::Commit(c) => {
                if c.code == fabric_protos::protos::TxValidationCode::MvccReadConflict
                    || c.code == fabric_protos::protos::TxValidationCode::PhantomReadConflict
                {
                    Class::Conflict
                } else {
                    Class::RuleFailed
                }
            }
            E::Deliver { status } => match *status {
                404 => Class::NotFound,
                403 => Class::Denied,
                400 => Class::Usage,
                _ => Class::Network,
            },
            E::Connection(_) | E::InvalidArgument(_) => Class::Usage,
            E::InvalidResponse(_) => Class::Network,
            E::Checkpoint(_) => Class::Usage,
            E::Sign(_) | E::Unsigned(_) => Class::Internal,
            other => match other.grpc_status().map(|s| s.code) {
                Some(tonic_code) => grpc_class(tonic_code),
                None => Class::Internal,
            },
        };
        let mut err = CliError::new(class, e.to_string());
        if let Some(detail) = e.details().first() {
            err.message = format!(
                "{}: {} ({} at {})",
                err.message, detail.message, detail.msp_id, detail.address
            );
        }
        let hint = match class {
            Class::Network => Some("check the peer endpoints of the connection profile (--profile) and that the network is running"),
            Class::Denied => Some("the identity (--identity) is not allowed to do this on this channel"),
            Class::Conflict => Some("another transaction changed the same state first; run the command again"),
            Class::NotFound => Some("check the channel (--channel), chaincode (--chaincode) and the number or ID named"),
            _ => None,
        };
        match hint {
            Some(h) => err.hint(h),
            None => err,
        }
    }
}

/// The class of a gRPC status code returned by a peer or orderer.
pub fn grpc_class(code: tonic::Code) -> Class {
    use tonic::Code;
    match code {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Class::Network,
        Code::PermissionDenied | Code::Unauthenticated => Class::Denied,
        // A Fabric gateway answers FAILED_PRECONDITION when no peer it knows serves the
        // chaincode on the channel (an unknown channel or chaincode); licence rules never come
        // this way, they arrive as the contract's error payloads.
        Code::NotFound | Code::FailedPrecondition => Class::NotFound,
        Code::AlreadyExists => Class::Conflict,
        Code::InvalidArgument | Code::OutOfRange => Class::Usage,
        Code::Aborted => Class::RuleFailed,
        _ => Class::Internal,
    }
}

impl From<elicense_sdk::LicenceError> for CliError {
    fn from(e: elicense_sdk::LicenceError) -> Self {
        use elicense_sdk::{Failure as F, LicenceError as E};
        if let E::Gateway(g) = e {
            return CliError::from(g);
        }
        let failure = e.failure();
        let (class, hint) = match failure {
            F::NotFound => (Class::NotFound, "check the identifier and the channel (--channel)"),
            F::AlreadyExists => (Class::Conflict, "it is already on the ledger; nothing was changed"),
            F::Conflict => (Class::Conflict, "another transaction changed the same state first; run the command again"),
            F::NotAllowed => (Class::Denied, "the identity's organisation or elicense.role attribute does not permit this (see `elicense ca enroll --attr elicense.role`)"),
            F::BadSignature => (Class::Denied, "sign with the holder key the licence was issued to (--key)"),
            F::InvalidArgument | F::InvalidInput => (Class::Usage, "check the command's arguments and input files"),
            F::WrongCode => (Class::RuleFailed, "ask the holder for the code again; wrong codes count towards the lockout"),
            F::GrantLocked => (Class::RuleFailed, "too many wrong codes: the holder must create a new grant"),
            F::GrantSpent => (Class::RuleFailed, "the grant is used up: the holder must create a new grant"),
            F::GrantExpired | F::GrantNotYetValid => (Class::RuleFailed, "the grant is outside its validity window"),
            F::GrantWithdrawn => (Class::RuleFailed, "the holder withdrew this grant"),
            F::WrongMatter => (Class::RuleFailed, "the grant was given for another matter (--matter)"),
            F::FieldMismatch => (Class::RuleFailed, "a presented value differs from what the issuer recorded"),
            F::FieldNotGranted => (Class::RuleFailed, "present only the fields the grant allows"),
            F::LicenceSuspended | F::LicenceRevoked => (Class::RuleFailed, "the issuer changed the licence's status; see `elicense licence show`"),
            F::LicenceExpired | F::LicenceNotYetValid => (Class::RuleFailed, "the licence is outside its validity window"),
            F::RetrieveWindowClosed => (Class::RuleFailed, "retrieve right after a successful verify of the grant"),
            F::PrivateDataUnavailable => (Class::RuleFailed, "the issuer's peer must serve this call"),
            F::InvalidTransition => (Class::RuleFailed, "a revoked licence stays revoked; only a suspended licence can be reinstated"),
            F::StaleRequest => (Class::RuleFailed, "the holder-signed request is too old: sign a new one"),
            F::Invalidated => (Class::RuleFailed, "the transaction was ordered but committed invalid"),
            F::Network => (Class::Network, "check the peers of the connection profile and that the network is running"),
            F::InvalidResponse => (Class::Network, "the peer's answer could not be read: is this the licence chaincode (--chaincode)?"),
            _ => (Class::Internal, "unexpected failure"),
        };
        let code = match e.contract_error() {
            Some(c) => c.code.as_str().to_string(),
            None => failure_code(failure).to_string(),
        };
        let mut message = match e.contract_error() {
            Some(c) => format!("{} refused: {}", c.code.as_str(), c.message),
            None => e.to_string(),
        };
        if !e.fields().is_empty() {
            message.push_str(&format!(" (fields: {})", e.fields().join(", ")));
        }
        if let Some(tx) = e.transaction_id() {
            if !message.contains(tx) {
                message.push_str(&format!(" [transaction {tx}]"));
            }
        }
        CliError::new(class, message).hint(hint).code(code)
    }
}

/// The stable code printed for a failure that carries no contract error code: the contract's
/// wire name where the failure is one of its rules (a wrong code is reported after its counting
/// transaction commits), otherwise a name of the failure class.
fn failure_code(f: elicense_sdk::Failure) -> &'static str {
    use elicense_model::ErrorCode as C;
    use elicense_sdk::Failure as F;
    match f {
        F::WrongCode => C::WrongCode.as_str(),
        F::GrantLocked => C::GrantLocked.as_str(),
        F::NotFound => C::NotFound.as_str(),
        F::AlreadyExists => C::AlreadyExists.as_str(),
        F::NotAllowed => C::NotAllowed.as_str(),
        F::InvalidArgument => C::InvalidArgument.as_str(),
        F::Conflict => "CONFLICT",
        F::Invalidated => "INVALIDATED",
        F::Network => "NETWORK",
        F::InvalidInput => "INVALID_INPUT",
        F::InvalidResponse => "INVALID_RESPONSE",
        _ => "INTERNAL",
    }
}
