//! Who is calling: the creator's MSP ID, its `elicense.role` Fabric CA attribute and its client
//! ID, as Go chaincode reads them with `pkg/cid`.
//!
//! Identity parsing is `fabric-common`'s (written once for the workspace). Parsed callers are
//! cached by creator bytes: the mapping is a pure function of those bytes, so the cache cannot
//! make endorsements differ, and a busy window's clerk is parsed once, not per verify.

use crate::error::{err, TxResult};
use elicense_model::ErrorCode;
use fabric_chaincode::ChaincodeStub;
use fabric_common::identity::Identity;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The Fabric CA attribute carrying a user's role.
pub const ROLE_ATTRIBUTE: &str = "elicense.role";

/// Roles the contract knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Manages the catalogue (with the regulator's MSP).
    Admin,
    /// Issues and manages licences for its organisation.
    Issuer,
    /// Uses grants at a service window.
    Clerk,
    /// Audits all usage (with the regulator's MSP).
    Auditor,
    /// A licence holder.
    Holder,
}

impl Role {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Issuer => "issuer",
            Role::Clerk => "clerk",
            Role::Auditor => "auditor",
            Role::Holder => "holder",
        }
    }
}

/// The caller of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The creator's MSP ID.
    pub msp_id: String,
    /// The `elicense.role` attribute, if present.
    pub role: Option<String>,
    /// The client ID (`cid.GetID()`).
    pub id: String,
}

impl Caller {
    /// Whether the caller has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.role.as_deref() == Some(role.as_str())
    }

    /// Requires `role` within organisation `msp_id`, or fails with `NOT_ALLOWED`.
    pub fn require(&self, role: Role, msp_id: &str) -> TxResult<()> {
        if !self.has_role(role) {
            return Err(err(
                ErrorCode::NotAllowed,
                format!("caller must have {ROLE_ATTRIBUTE}={}", role.as_str()),
            ));
        }
        if self.msp_id != msp_id {
            return Err(err(
                ErrorCode::NotAllowed,
                format!(
                    "caller must be a {} of {msp_id}, not of {}",
                    role.as_str(),
                    self.msp_id
                ),
            ));
        }
        Ok(())
    }

    /// Requires `role`, in whatever organisation, or fails with `NOT_ALLOWED`.
    pub fn require_role(&self, role: Role) -> TxResult<()> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(err(
                ErrorCode::NotAllowed,
                format!("caller must have {ROLE_ATTRIBUTE}={}", role.as_str()),
            ))
        }
    }
}

const CACHE_LIMIT: usize = 4096;

fn cache() -> &'static Mutex<HashMap<Vec<u8>, Arc<Caller>>> {
    static CACHE: OnceLock<Mutex<HashMap<Vec<u8>, Arc<Caller>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The transaction's caller, from its creator.
pub fn caller<S: ChaincodeStub>(stub: &S) -> TxResult<Caller> {
    let creator = stub.creator();
    if let Some(c) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(creator)
    {
        return Ok(Caller::clone(c));
    }
    let identity = Identity::from_serialized(creator).map_err(|e| {
        err(
            ErrorCode::NotAllowed,
            format!("unreadable creator identity: {e}"),
        )
    })?;
    let c = Arc::new(Caller {
        msp_id: identity.msp_id().to_owned(),
        role: identity.attribute(ROLE_ATTRIBUTE).map(str::to_owned),
        id: identity.client_id(),
    });
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert(creator.to_vec(), Arc::clone(&c));
    Ok(Caller::clone(&c))
}
