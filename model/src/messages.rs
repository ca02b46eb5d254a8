//! Request and response shapes of every contract transaction, and the transient-data keys.
//!
//! Every transaction takes at most one argument: the JSON of its request type. Secrets (field
//! values, salts, codes, code salts) travel only in the transient map, under the keys below,
//! because transient data is never written into a block. Results are JSON.
//!
//! | transaction | argument | transient | result |
//! |---|---|---|---|
//! | `PutLicenceType` | [`LicenceType`] | – | [`LicenceType`] |
//! | `InitCatalogue` | [`Catalogue`] | – | `Vec<`[`LicenceType`]`>` |
//! | `GetLicenceType` | [`TypeQuery`] | – | [`LicenceType`] |
//! | `ListLicenceTypes` | – | – | `Vec<`[`LicenceType`]`>` |
//! | `Issue` | [`IssueRequest`] | [`TRANSIENT_LICENCE`]: [`LicencePrivate`] | [`LicenceRecord`] |
//! | `Suspend` / `Reinstate` / `Revoke` | [`StatusRequest`] | – | [`LicenceRecord`] |
//! | `Authorize` | [`SignedGrant`] | [`TRANSIENT_CODE_SALT`]: 32 raw bytes | [`GrantRecord`] |
//! | `Withdraw` | [`SignedWithdrawal`] | – | [`GrantRecord`] |
//! | `Verify` | [`VerifyRequest`] | [`TRANSIENT_PRESENTATION`]: [`Presentation`] | [`VerifyResult`] |
//! | `Retrieve` (evaluate) | [`GrantQuery`] | – | [`RetrieveResult`] |
//! | `ReadLicence` | [`LicenceQuery`] | – | [`LicenceRecord`] |
//! | `LicenceHistory` | [`LicenceQuery`] | – | `Vec<`[`HistoryEntry`]`>` |
//! | `ReadGrant` | [`GrantQuery`] | – | [`GrantRecord`] |
//! | `HolderUsage` | [`HolderUsageRequest`] | – | [`UsagePage`] |
//! | `AuditUsage` | [`AuditUsageRequest`] | – | [`UsagePage`] |

use crate::code::Code;
use crate::grant::GrantId;
use crate::licence::{FieldOpening, LicencePrivate, LicenceRecord};
use crate::licence_id::LicenceId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// Named only by the documentation table above.
#[allow(unused_imports)]
use crate::{
    catalogue::{Catalogue, LicenceType},
    grant::{SignedGrant, SignedTrailRequest, SignedWithdrawal},
    lifecycle::GrantRecord,
};

/// Transient key of an issuance's [`LicencePrivate`] JSON.
pub const TRANSIENT_LICENCE: &str = "licence";
/// Transient key of an authorisation's 32-byte code salt.
pub const TRANSIENT_CODE_SALT: &str = "code_salt";
/// Transient key of a verify's [`Presentation`] JSON.
pub const TRANSIENT_PRESENTATION: &str = "presentation";

/// How long after a successful verify the grantee may retrieve the granted values.
pub const RETRIEVE_WINDOW_SECS: i64 = 600;

/// `GetLicenceType` argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeQuery {
    /// Type code.
    pub code: String,
}

/// `Issue` argument: the public part of a new licence (commitments are computed by the contract
/// from the transient openings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRequest {
    /// The new identifier (its type tag and issuer code must match the catalogue).
    pub licence_id: LicenceId,
    /// Catalogue type code.
    pub licence_type: String,
    /// The holder's P-256 public key, PEM SPKI.
    pub holder_key: String,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds, inclusive).
    pub not_after: i64,
}

/// `Issue` transient data under [`TRANSIENT_LICENCE`]: every field's value and salt.
pub type IssuePrivate = LicencePrivate;

/// `Suspend` / `Reinstate` / `Revoke` argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRequest {
    /// The licence.
    pub licence_id: LicenceId,
    /// Why (public; 1–256 bytes; must not contain personal data).
    pub reason: String,
}

/// `Verify` argument. The code and the presented openings go in the transient [`Presentation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    /// The grant used.
    pub grant_id: GrantId,
    /// The matter being handled (must equal the grant's).
    pub matter: String,
}

/// A verify's secret input: the holder's code and the presented field openings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presentation {
    /// The 8-digit code the holder gave the clerk.
    pub code: Code,
    /// Presented openings by field name (each must be allowed by the grant; may be empty).
    #[serde(default)]
    pub fields: BTreeMap<String, FieldOpening>,
}

/// What a committed verify did. Wrong codes are *successful* transactions (so the attempt is
/// counted on the ledger): the SDK reports [`VerifyOutcome::WrongCode`] and
/// [`VerifyOutcome::Locked`] as a `WRONG_CODE` / `GRANT_LOCKED` error after the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum VerifyOutcome {
    /// The code matched and every presented field matched its commitment; one use is spent.
    Verified {
        /// Presented fields, all matched (names only).
        matched: Vec<String>,
        /// Granted fields not presented (names only); their values can be retrieved.
        not_presented: Vec<String>,
        /// Uses left on the grant.
        uses_left: u32,
        /// Until when `Retrieve` is open (Unix seconds, inclusive).
        retrieve_until: i64,
    },
    /// The code was wrong; the attempt is recorded.
    WrongCode {
        /// Wrong codes still tolerated before the grant locks.
        attempts_left: u32,
    },
    /// The code was wrong and the grant is now locked.
    Locked,
}

/// `Verify` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    /// The grant.
    pub grant_id: GrantId,
    /// The licence.
    pub licence_id: LicenceId,
    /// The matter.
    pub matter: String,
    /// The verify transaction.
    pub tx_id: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: VerifyOutcome,
}

/// `Retrieve` / `ReadGrant` argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantQuery {
    /// The grant.
    pub grant_id: GrantId,
}

/// `Retrieve` result: the granted values, returned by an evaluate only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrieveResult {
    /// The grant.
    pub grant_id: GrantId,
    /// The licence.
    pub licence_id: LicenceId,
    /// Values of the granted fields, by name.
    pub fields: BTreeMap<String, String>,
}

/// `ReadLicence` / `LicenceHistory` argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceQuery {
    /// The licence.
    pub licence_id: LicenceId,
}

/// One entry of a licence's key history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The transaction.
    pub tx_id: String,
    /// Its timestamp (Unix seconds).
    pub at: i64,
    /// The record as written (absent for a delete).
    pub record: Option<LicenceRecord>,
}

/// Result of a verify attempt as recorded in the usage trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageResult {
    /// Verified; one use spent.
    Verified,
    /// Wrong code.
    WrongCode,
    /// Wrong code that locked the grant.
    Locked,
}

/// A usage record: one verify attempt that committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The licence used.
    pub licence_id: LicenceId,
    /// Its type code.
    pub licence_type: String,
    /// The grant used.
    pub grant_id: GrantId,
    /// The department that used it.
    pub grantee_msp: String,
    /// The clerk (Fabric client identity id: subject and issuer of the certificate).
    pub clerk: String,
    /// The matter.
    pub matter: String,
    /// Field names presented (values never).
    pub fields: Vec<String>,
    /// Transaction timestamp (Unix seconds).
    pub at: i64,
    /// Transaction id.
    pub tx_id: String,
    /// Result.
    pub result: UsageResult,
}

/// `HolderUsage` argument: a holder-signed trail request plus paging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderUsageRequest {
    /// The signed request.
    pub signed: SignedTrailRequest,
    /// Page size (1–1000; default 100).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Bookmark from the previous page.
    #[serde(default)]
    pub bookmark: String,
}

/// `AuditUsage` argument (regulator auditors only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuditUsageRequest {
    /// Only this licence's usage, if set.
    #[serde(default)]
    pub licence_id: Option<LicenceId>,
    /// Page size (1–1000; default 100).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Bookmark from the previous page.
    #[serde(default)]
    pub bookmark: String,
}

/// A page of usage records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsagePage {
    /// Records, oldest first.
    pub records: Vec<UsageRecord>,
    /// Bookmark for the next page; empty when this is the last page.
    pub bookmark: String,
}

/// The payload of every contract event: identifiers only, no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceEvent {
    /// The licence concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub licence_id: Option<LicenceId>,
    /// The grant concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub grant_id: Option<GrantId>,
    /// The licence type concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub licence_type: Option<String>,
    /// The organisation that acted.
    pub msp_id: String,
    /// The transaction.
    pub tx_id: String,
}

/// Names of the contract's events.
pub mod events {
    /// A licence type was added or replaced.
    pub const LICENCE_TYPE_PUT: &str = "LicenceTypePut";
    /// A licence was issued.
    pub const LICENCE_ISSUED: &str = "LicenceIssued";
    /// A licence was suspended.
    pub const LICENCE_SUSPENDED: &str = "LicenceSuspended";
    /// A licence was reinstated.
    pub const LICENCE_REINSTATED: &str = "LicenceReinstated";
    /// A licence was revoked.
    pub const LICENCE_REVOKED: &str = "LicenceRevoked";
    /// A grant was authorised.
    pub const GRANT_AUTHORIZED: &str = "GrantAuthorized";
    /// A grant was withdrawn.
    pub const GRANT_WITHDRAWN: &str = "GrantWithdrawn";
    /// A grant was used in a successful verify.
    pub const GRANT_VERIFIED: &str = "GrantVerified";
    /// A wrong code was entered for a grant.
    pub const GRANT_CODE_REJECTED: &str = "GrantCodeRejected";
    /// A grant locked after too many wrong codes.
    pub const GRANT_LOCKED: &str = "GrantLocked";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_result_json_shape() {
        let r = VerifyResult {
            grant_id: GrantId::parse(&"a".repeat(64)).unwrap(),
            licence_id: LicenceId::build("IDC", "PSB", "1").unwrap(),
            matter: "M".into(),
            tx_id: "t".into(),
            outcome: VerifyOutcome::WrongCode { attempts_left: 3 },
        };
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["outcome"], "wrong_code");
        assert_eq!(j["attempts_left"], 3);
        assert_eq!(serde_json::from_value::<VerifyResult>(j).unwrap(), r);
    }
}
