//! Where the contract keeps things: composite keys in public state and in the issuer's implicit
//! private data collection.
//!
//! | object type | attributes | value | where |
//! |---|---|---|---|
//! | `elicense.type` | type code | `LicenceType` | public |
//! | `elicense.licence` | licence id | `LicenceRecord` | public, key-level policy: issuer |
//! | `elicense.grant` | grant id | `GrantRecord` | public, key-level policy: issuer |
//! | `elicense.usage` | licence id, timestamp (20 digits), tx id | `UsageRecord` | public |
//! | `elicense.licence` | licence id | `LicencePrivate` (values + salts) | `_implicit_org_<issuer>` |
//! | `elicense.codesalt` | grant id | 32-byte code salt | `_implicit_org_<issuer>` |
//!
//! Each grant and each usage record has its own key, so any number of grants on one licence,
//! and verifies of different grants, commit in one block without MVCC conflicts.

use crate::error::{err, TxResult};
use elicense_model::ErrorCode;
use fabric_chaincode::composite::create_composite_key;

/// Object type of licence types.
pub const TYPE: &str = "elicense.type";
/// Object type of licence records (public) and licence openings (private).
pub const LICENCE: &str = "elicense.licence";
/// Object type of grant records.
pub const GRANT: &str = "elicense.grant";
/// Object type of usage records.
pub const USAGE: &str = "elicense.usage";
/// Object type of code salts (private).
pub const CODE_SALT: &str = "elicense.codesalt";

fn key(object_type: &str, attrs: &[&str]) -> TxResult<String> {
    create_composite_key(object_type, attrs)
        .map_err(|e| err(ErrorCode::InvalidArgument, format!("bad key part: {e}")))
}

/// Key of a licence type.
pub fn licence_type(code: &str) -> TxResult<String> {
    key(TYPE, &[code])
}

/// Key of a licence record (public) or its openings (private).
pub fn licence(id: &str) -> TxResult<String> {
    key(LICENCE, &[id])
}

/// Key of a grant record.
pub fn grant(id: &str) -> TxResult<String> {
    key(GRANT, &[id])
}

/// Key of a grant's code salt (private).
pub fn code_salt(grant_id: &str) -> TxResult<String> {
    key(CODE_SALT, &[grant_id])
}

/// Key of a usage record; the zero-padded timestamp makes a licence's trail sort by time.
pub fn usage(licence_id: &str, at: i64, tx_id: &str) -> TxResult<String> {
    let ts = format!("{:020}", at.max(0));
    key(USAGE, &[licence_id, &ts, tx_id])
}

/// The implicit private data collection of an organisation.
pub fn implicit_collection(msp_id: &str) -> String {
    format!("_implicit_org_{msp_id}")
}
