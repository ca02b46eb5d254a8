//! The licence domain rules shared by the chaincode and the SDK: commitments, grants, codes,
//! identifiers.
//!
//! This crate knows no Fabric protocol (its only Fabric-side dependency is `fabric-common`'s
//! ECDSA primitives, so holder signatures obey exactly Fabric's low-S rules). It defines, once,
//! every byte string that two parties must compute identically:
//!
//! - [`commitment`]: per-field salted commitments (`SHA-256(salt ‖ u32-BE len(name) ‖ name ‖ value)`);
//! - [`licence_id`]: licence identifiers with an ISO/IEC 7064 MOD 37,36 check character;
//! - [`grant`]: the canonical encodings of holder-signed grants, withdrawals and trail requests,
//!   and the grant id;
//! - [`code`]: the holder's 8-digit code and the keyed code check (and why it is keyed);
//! - [`signature`]: holder keys and low-S P-256 ECDSA signatures;
//! - [`lifecycle`]: the grant lifecycle as explicit states;
//! - [`licence`]: the public licence record, its status lifecycle and the private openings;
//! - [`error`]: the contract's error codes and their wire form;
//! - [`messages`]: request and response shapes of every transaction;
//! - [`catalogue`]: licence types, their issuers and fields.
//!
//! All times are Unix seconds (UTC) taken from transaction timestamps.

pub mod canonical;
pub mod catalogue;
pub mod code;
pub mod commitment;
pub mod error;
pub mod grant;
pub mod licence;
pub mod licence_id;
pub mod lifecycle;
pub mod messages;
pub mod signature;

pub use catalogue::{Catalogue, Issuer, LicenceType};
pub use code::{Code, CodeCheck, CodeSalt, HolderSecret, MAX_CODE_ATTEMPTS};
pub use commitment::{Commitment, Salt, SALT_LEN};
pub use error::{ContractError, ErrorCode};
pub use grant::{
    Grant, GrantDraft, GrantId, Nonce, SealedGrant, SignedGrant, SignedTrailRequest,
    SignedWithdrawal, TrailRequest, Withdrawal,
};
pub use licence::{FieldOpening, LicencePrivate, LicenceRecord, LicenceStatus, StatusChange};
pub use licence_id::LicenceId;
pub use lifecycle::{GrantRecord, GrantState, GrantStatus, TxMark};
pub use messages::*;
pub use signature::{HolderKey, SignatureError};
