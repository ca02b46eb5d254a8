//! The eLicense Ledger chaincode: the licence contract and its CCaaS server.
//!
//! The contract (DESIGN.md §3.3) runs on the generic `fabric-chaincode` shim. Every transaction
//! takes one JSON argument and, where secrets are involved, transient data; the shapes, the
//! transient keys and the error codes are defined once in `elicense-model` (see
//! [`elicense_model::messages`]). Errors are status-500 responses whose message is the model's
//! JSON wire form, so clients decode the failed rule without matching text.
//!
//! Invariants kept here:
//! - no plaintext personal data, salt or code in any public write, event or error message: values
//!   and salts arrive only as transient data and are written only to the issuer's implicit
//!   collection (`_implicit_org_<issuer MSP>`);
//! - determinism: time comes only from the transaction timestamp, nothing is random, and state
//!   is canonical JSON;
//! - licence records and grants carry key-level endorsement policies naming the issuer's peers;
//! - one chaincode event per state change, carrying identifiers only.
//!
//! [`package`] builds the CCaaS package that `peer lifecycle chaincode install` takes;
//! [`host::HostedChaincode`] serves the chaincode inside another process (on 127.0.0.1, a given
//! or free port, a given package ID) for embedded networks and tests.

pub mod access;
pub mod error;
pub mod host;
pub mod keys;
/// The CCaaS install package (Fabric's format, shared with every Fabric crate).
pub use fabric_common::ccaas as package;
pub mod policy;
pub mod support;
pub mod tx;

use elicense_model::StatusChange;
use fabric_chaincode::contract::{Contract, Router};
use fabric_chaincode::ChaincodeStub;
use std::sync::Arc;

/// The name of the contract (and the default contract of the chaincode).
pub const CONTRACT_NAME: &str = "ELicense";

/// Deployment settings every organisation's chaincode server must share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The regulator's MSP ID: its admins manage the catalogue and its auditors read all usage.
    pub regulator_msp: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            regulator_msp: "RegulatorMSP".to_owned(),
        }
    }
}

/// Builds the chaincode: the licence contract with every transaction, plus `GetMetadata`.
pub fn router<S: ChaincodeStub>(settings: Settings) -> Router<S> {
    let settings = Arc::new(settings);
    let (s1, s2, s3) = (settings.clone(), settings.clone(), settings);
    let contract = Contract::new(CONTRACT_NAME)
        .title("eLicense Ledger licence contract")
        .version(env!("CARGO_PKG_VERSION"))
        .submit("PutLicenceType", &["licenceType"], move |ctx, a| {
            let s = s1.clone();
            async move { tx::catalogue::put_licence_type(ctx, &s, a).await }
        })
        .submit("InitCatalogue", &["catalogue"], move |ctx, a| {
            let s = s2.clone();
            async move { tx::catalogue::init_catalogue(ctx, &s, a).await }
        })
        .evaluate(
            "GetLicenceType",
            &["query"],
            tx::catalogue::get_licence_type::<S>,
        )
        .evaluate(
            "ListLicenceTypes",
            &[],
            tx::catalogue::list_licence_types::<S>,
        )
        .submit("Issue", &["request"], tx::issue::issue::<S>)
        .submit("Suspend", &["request"], |ctx, a| {
            tx::status::change_status::<S>(ctx, StatusChange::Suspend, a)
        })
        .submit("Reinstate", &["request"], |ctx, a| {
            tx::status::change_status::<S>(ctx, StatusChange::Reinstate, a)
        })
        .submit("Revoke", &["request"], |ctx, a| {
            tx::status::change_status::<S>(ctx, StatusChange::Revoke, a)
        })
        .submit("Authorize", &["signedGrant"], tx::authorize::authorize::<S>)
        .submit(
            "Withdraw",
            &["signedWithdrawal"],
            tx::withdraw::withdraw::<S>,
        )
        .submit("Verify", &["request"], tx::verify::verify::<S>)
        .evaluate("Retrieve", &["query"], tx::retrieve::retrieve::<S>)
        .evaluate("ReadLicence", &["query"], tx::read::read_licence::<S>)
        .evaluate("LicenceHistory", &["query"], tx::read::licence_history::<S>)
        .evaluate("ReadGrant", &["query"], tx::read::read_grant::<S>)
        .evaluate("HolderUsage", &["request"], tx::usage::holder_usage::<S>)
        .evaluate("AuditUsage", &["request"], move |ctx, a| {
            let s = s3.clone();
            async move { tx::usage::audit_usage(ctx, &s, a).await }
        });
    Router::new()
        .title("elicense")
        .version(env!("CARGO_PKG_VERSION"))
        .contract(contract)
}
