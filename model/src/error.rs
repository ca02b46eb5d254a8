//! Contract error codes and their wire form.
//!
//! A Fabric chaincode reports failure as a response with status 500 and a free-text message; the
//! peer and the Gateway pass that message on (often wrapped, e.g. `chaincode response 500, …`).
//! So that a window system can act on *which rule failed* without matching prose, the contract
//! always puts one compact JSON object in the message:
//!
//! ```text
//! {"code":"GRANT_SPENT","message":"grant has no uses left"}
//! ```
//!
//! [`ContractError::encode`] writes it and [`ContractError::decode`] finds and parses it anywhere
//! inside a (possibly wrapped) message. Messages name rules, keys and field *names*; they never
//! carry field values, salts or codes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal ),+ $(,)?) => {
        /// Which contract rule rejected a transaction; stable strings on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
            /// A code this version does not know (a newer contract); kept for forward compatibility.
            Unknown,
        }

        impl ErrorCode {
            /// Every known code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )+ ];

            /// The wire string, e.g. `GRANT_SPENT`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $wire, )+
                    ErrorCode::Unknown => "UNKNOWN",
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $( $wire => ErrorCode::$variant, )+
                    _ => ErrorCode::Unknown,
                })
            }
        }
    };
}

error_codes! {
    /// The caller's MSP or `elicense.role` attribute does not permit this call.
    NotAllowed = "NOT_ALLOWED",
    /// A licence, grant, licence type or usage record does not exist.
    NotFound = "NOT_FOUND",
    /// A licence with this identifier (or a grant with this id) already exists on the channel.
    AlreadyExists = "ALREADY_EXISTS",
    /// Malformed arguments or transient data (JSON, lengths, identifiers, salts, field sets).
    InvalidArgument = "INVALID_ARGUMENT",
    /// A holder signature does not verify, is not DER, or is not in low-S form.
    BadSignature = "BAD_SIGNATURE",
    /// A holder-signed request's timestamp is too far from the transaction timestamp.
    StaleRequest = "STALE_REQUEST",
    /// The grant has no uses left.
    GrantSpent = "GRANT_SPENT",
    /// The holder withdrew the grant.
    GrantWithdrawn = "GRANT_WITHDRAWN",
    /// The grant's not-after time has passed.
    GrantExpired = "GRANT_EXPIRED",
    /// The grant's not-before time has not come yet.
    GrantNotYetValid = "GRANT_NOT_YET_VALID",
    /// The grant is locked after too many wrong codes.
    GrantLocked = "GRANT_LOCKED",
    /// The 8-digit code is wrong (reported by the SDK after the counting transaction commits).
    WrongCode = "WRONG_CODE",
    /// The grant was given for another matter.
    WrongMatter = "WRONG_MATTER",
    /// A presented field is not among the grant's allowed fields.
    FieldNotGranted = "FIELD_NOT_GRANTED",
    /// A presented value does not match its commitment.
    FieldMismatch = "FIELD_MISMATCH",
    /// The licence is suspended by its issuer.
    LicenceSuspended = "LICENCE_SUSPENDED",
    /// The licence is revoked by its issuer.
    LicenceRevoked = "LICENCE_REVOKED",
    /// The licence's validity window has ended.
    LicenceExpired = "LICENCE_EXPIRED",
    /// The licence's validity window has not begun.
    LicenceNotYetValid = "LICENCE_NOT_YET_VALID",
    /// No verify of this grant opened a retrieval window that is still open.
    RetrieveWindowClosed = "RETRIEVE_WINDOW_CLOSED",
    /// The requested private data is not held by the peer that ran the proposal
    /// (the proposal must go to a peer of the issuing organisation).
    PrivateDataUnavailable = "PRIVATE_DATA_UNAVAILABLE",
    /// A state change the lifecycle does not allow (e.g. reinstating a revoked licence).
    InvalidTransition = "INVALID_TRANSITION",
    /// An unexpected failure talking to the peer.
    Internal = "INTERNAL",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(s.parse().unwrap_or(ErrorCode::Unknown))
    }
}

/// A contract rejection: the rule that failed and a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ContractError {
    /// Which rule failed.
    pub code: ErrorCode,
    /// Human text; never contains field values, salts or codes.
    pub message: String,
    /// Field *names* the rule concerns (`FIELD_MISMATCH`, `FIELD_NOT_GRANTED`); omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl ContractError {
    /// Builds an error from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// Attaches the field names the rule concerns.
    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    /// The chaincode response message: one compact JSON object, `{"code":…,"message":…}`.
    pub fn encode(&self) -> String {
        // Serialising strings cannot fail.
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!(r#"{{"code":"{}","message":""}}"#, self.code.as_str()))
    }

    /// Finds the contract's JSON object in a peer or Gateway message (which may wrap it in other
    /// text) and parses it. Returns `None` when the message carries no contract error object.
    pub fn decode(message: &str) -> Option<Self> {
        const MARKER: &str = "{\"code\":";
        let mut rest = message;
        while let Some(pos) = rest.find(MARKER) {
            let candidate = &rest[pos..];
            let mut stream = serde_json::Deserializer::from_str(candidate).into_iter::<Self>();
            if let Some(Ok(err)) = stream.next() {
                return Some(err);
            }
            rest = &candidate[MARKER.len()..];
        }
        None
    }
}

/// Shorthand for building a [`ContractError`].
pub fn reject(code: ErrorCode, message: impl Into<String>) -> ContractError {
    ContractError::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_for_every_code() {
        for &code in ErrorCode::ALL {
            let e = ContractError::new(code, "grant abc has no uses left");
            let wire = e.encode();
            assert!(wire.starts_with(&format!("{{\"code\":\"{}\"", code.as_str())));
            assert_eq!(ContractError::decode(&wire), Some(e));
        }
    }

    #[test]
    fn fixed_wire_vector() {
        let e = ContractError::new(ErrorCode::GrantSpent, "no uses left");
        assert_eq!(
            e.encode(),
            r#"{"code":"GRANT_SPENT","message":"no uses left"}"#
        );
    }

    #[test]
    fn field_names_travel_structured() {
        let e = ContractError::new(ErrorCode::FieldMismatch, "mismatch")
            .with_fields(vec!["name".into(), "sex".into()]);
        assert_eq!(
            e.encode(),
            r#"{"code":"FIELD_MISMATCH","message":"mismatch","fields":["name","sex"]}"#
        );
        assert_eq!(ContractError::decode(&e.encode()), Some(e));
    }

    #[test]
    fn decodes_when_wrapped_by_the_gateway() {
        let wire = ContractError::new(ErrorCode::WrongMatter, "quote \" and {braces}").encode();
        let wrapped = format!("rpc error: code = Aborted desc = chaincode response 500, {wire}");
        let got = ContractError::decode(&wrapped).unwrap();
        assert_eq!(got.code, ErrorCode::WrongMatter);
        assert_eq!(got.message, "quote \" and {braces}");
    }

    #[test]
    fn unknown_codes_and_free_text() {
        assert_eq!(ContractError::decode("plain failure"), None);
        let got = ContractError::decode(r#"{"code":"SOMETHING_NEW","message":"m"}"#).unwrap();
        assert_eq!(got.code, ErrorCode::Unknown);
        // A marker that is not followed by a valid object is skipped.
        let got =
            ContractError::decode(r#"x {"code": oops {"code":"NOT_FOUND","message":"licence"}"#)
                .unwrap();
        assert_eq!(got.code, ErrorCode::NotFound);
    }
}
