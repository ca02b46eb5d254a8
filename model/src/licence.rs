//! The public licence record and its status lifecycle, and the issuer's private part.

use crate::commitment::{Commitment, Salt};
use crate::error::{ContractError, ErrorCode};
use crate::licence_id::LicenceId;
use crate::lifecycle::TxMark;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest status reason, in bytes.
pub const MAX_REASON_LEN: usize = 256;

/// A licence's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceStatus {
    /// Usable.
    Active,
    /// Temporarily unusable; can be reinstated.
    Suspended,
    /// Permanently unusable.
    Revoked,
}

/// The public licence record: no plaintext personal data, only commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceRecord {
    /// The licence identifier.
    pub id: LicenceId,
    /// The catalogue type code.
    pub licence_type: String,
    /// The issuing organisation.
    pub issuer_msp: String,
    /// The holder's P-256 public key (PEM SPKI): the holder's pseudonym.
    pub holder_key: String,
    /// Per-field salted commitments, by field name.
    pub commitments: BTreeMap<String, Commitment>,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds, inclusive).
    pub not_after: i64,
    /// Status.
    pub status: LicenceStatus,
    /// The issuer's reason for the current status (empty when issued).
    pub status_reason: String,
    /// The issuing transaction.
    pub issued: TxMark,
    /// The last transaction that changed the record.
    pub updated: TxMark,
}

impl LicenceRecord {
    /// Whether the licence can back a verify at `now`, or the typed reason it cannot.
    pub fn check_usable(&self, now: i64) -> Result<(), ContractError> {
        let id = &self.id;
        match self.status {
            LicenceStatus::Suspended => {
                return Err(ContractError::new(
                    ErrorCode::LicenceSuspended,
                    format!("licence {id} is suspended"),
                ))
            }
            LicenceStatus::Revoked => {
                return Err(ContractError::new(
                    ErrorCode::LicenceRevoked,
                    format!("licence {id} is revoked"),
                ))
            }
            LicenceStatus::Active => {}
        }
        if now < self.not_before {
            return Err(ContractError::new(
                ErrorCode::LicenceNotYetValid,
                format!("licence {id} is not valid yet"),
            ));
        }
        if now > self.not_after {
            return Err(ContractError::new(
                ErrorCode::LicenceExpired,
                format!("licence {id} has expired"),
            ));
        }
        Ok(())
    }

    /// Applies a status change, refusing moves the lifecycle does not allow:
    /// active → suspended, suspended → active, active|suspended → revoked.
    pub fn change_status(
        &mut self,
        change: StatusChange,
        reason: &str,
        mark: TxMark,
    ) -> Result<(), ContractError> {
        let next = match (self.status, change) {
            (LicenceStatus::Active, StatusChange::Suspend) => LicenceStatus::Suspended,
            (LicenceStatus::Suspended, StatusChange::Reinstate) => LicenceStatus::Active,
            (LicenceStatus::Active | LicenceStatus::Suspended, StatusChange::Revoke) => {
                LicenceStatus::Revoked
            }
            (from, change) => {
                let verb = match change {
                    StatusChange::Suspend => "suspended",
                    StatusChange::Reinstate => "reinstated",
                    StatusChange::Revoke => "revoked",
                };
                let from = match from {
                    LicenceStatus::Active => "active",
                    LicenceStatus::Suspended => "suspended",
                    LicenceStatus::Revoked => "revoked",
                };
                return Err(ContractError::new(
                    ErrorCode::InvalidTransition,
                    format!("licence {} cannot be {verb} while {from}", self.id),
                ));
            }
        };
        self.status = next;
        self.status_reason = reason.to_owned();
        self.updated = mark;
        Ok(())
    }
}

/// An issuer's status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusChange {
    /// Active → suspended.
    Suspend,
    /// Suspended → active.
    Reinstate,
    /// Active or suspended → revoked.
    Revoke,
}

/// One field's opening: its value and salt.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldOpening {
    /// The field's value (UTF-8, exactly as issued).
    pub value: String,
    /// The field's salt.
    pub salt: Salt,
}

impl std::fmt::Debug for FieldOpening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldOpening(<redacted>)")
    }
}

impl FieldOpening {
    /// This opening's commitment for field `name`.
    pub fn commitment(&self, name: &str) -> Commitment {
        Commitment::compute(&self.salt, name, &self.value)
    }
}

/// The private part of a licence: every field's value and salt. Sent as transient data at
/// issuance, stored only in the issuer's implicit collection, handed to the holder as its
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicencePrivate {
    /// Openings by field name.
    pub fields: BTreeMap<String, FieldOpening>,
}

impl LicencePrivate {
    /// The commitments of every field.
    pub fn commitments(&self) -> BTreeMap<String, Commitment> {
        self.fields
            .iter()
            .map(|(k, v)| (k.clone(), v.commitment(k)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> LicenceRecord {
        let m = TxMark {
            tx_id: "t".into(),
            at: 0,
        };
        LicenceRecord {
            id: LicenceId::build("IDC", "PSB", "1").unwrap(),
            licence_type: "ID_CARD".into(),
            issuer_msp: "PublicSecurityMSP".into(),
            holder_key: String::new(),
            commitments: BTreeMap::new(),
            not_before: 10,
            not_after: 20,
            status: LicenceStatus::Active,
            status_reason: String::new(),
            issued: m.clone(),
            updated: m,
        }
    }

    fn m(at: i64) -> TxMark {
        TxMark {
            tx_id: format!("t{at}"),
            at,
        }
    }

    #[test]
    fn usability() {
        let r = rec();
        assert_eq!(
            r.check_usable(9).unwrap_err().code,
            ErrorCode::LicenceNotYetValid
        );
        assert!(r.check_usable(15).is_ok());
        assert_eq!(
            r.check_usable(21).unwrap_err().code,
            ErrorCode::LicenceExpired
        );
    }

    #[test]
    fn status_lifecycle() {
        let mut r = rec();
        assert_eq!(
            r.change_status(StatusChange::Reinstate, "x", m(1))
                .unwrap_err()
                .code,
            ErrorCode::InvalidTransition
        );
        r.change_status(StatusChange::Suspend, "lost", m(2))
            .unwrap();
        assert_eq!(
            r.check_usable(15).unwrap_err().code,
            ErrorCode::LicenceSuspended
        );
        assert_eq!(r.status_reason, "lost");
        r.change_status(StatusChange::Reinstate, "found", m(3))
            .unwrap();
        assert!(r.check_usable(15).is_ok());
        r.change_status(StatusChange::Revoke, "fraud", m(4))
            .unwrap();
        assert_eq!(
            r.check_usable(15).unwrap_err().code,
            ErrorCode::LicenceRevoked
        );
        assert_eq!(
            r.change_status(StatusChange::Reinstate, "x", m(5))
                .unwrap_err()
                .code,
            ErrorCode::InvalidTransition
        );
        assert_eq!(r.updated, m(4));
    }
}
