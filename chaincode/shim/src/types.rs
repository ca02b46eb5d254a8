//! Plain data types of the chaincode API, named and shaped like Fabric's protobuf messages
//! (`queryresult.KV`, `queryresult.KeyModification`, `peer.Response`, …) but owned by this crate
//! so contract code does not depend on the wire schema.

use std::collections::BTreeMap;

/// Protobuf `google.protobuf.Timestamp`, the type of every Fabric timestamp.
pub use prost_types::Timestamp;

/// Status code of a successful chaincode response.
pub const OK: i32 = 200;
/// Responses with a status at or above this are errors (the peer does not endorse them).
pub const ERROR_THRESHOLD: i32 = 400;
/// Status code the official shims use for chaincode errors.
pub const ERROR: i32 = 500;

/// The metadata key under which Fabric stores a key-level endorsement policy
/// (`peer.MetaDataKeys.VALIDATION_PARAMETER`).
pub const VALIDATION_PARAMETER: &str = "VALIDATION_PARAMETER";

/// Transient data of a proposal: name → bytes, never written to a block.
pub type TransientMap = BTreeMap<String, Vec<u8>>;

/// One key and value returned by a range, partial composite key or rich query
/// (`queryresult.KV`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KV {
    /// The chaincode namespace the key lives in.
    pub namespace: String,
    /// The key.
    pub key: String,
    /// The committed value.
    pub value: Vec<u8>,
}

/// One entry of a key's history (`queryresult.KeyModification`), newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyModification {
    /// The transaction that wrote this value.
    pub tx_id: String,
    /// The value written (empty for a delete).
    pub value: Vec<u8>,
    /// The timestamp of that transaction.
    pub timestamp: Option<Timestamp>,
    /// Whether the transaction deleted the key.
    pub is_delete: bool,
}

/// Paging information of a paginated query (`peer.QueryResponseMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResponseMetadata {
    /// How many records this page holds.
    pub fetched_records_count: i32,
    /// Pass this to the next call to continue after this page; empty when nothing follows.
    pub bookmark: String,
}

/// A chaincode event (`peer.ChaincodeEvent`), set with `set_event` and carried by the
/// transaction's COMPLETED message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChaincodeEvent {
    /// The event name.
    pub event_name: String,
    /// The event payload.
    pub payload: Vec<u8>,
}

/// The client's signed proposal (`peer.SignedProposal`), kept as its two byte fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignedProposal {
    /// The serialized `peer.Proposal`.
    pub proposal_bytes: Vec<u8>,
    /// The creator's signature over `proposal_bytes`.
    pub signature: Vec<u8>,
}

/// A chaincode's answer to a transaction (`peer.Response`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// HTTP-like status: 200 success, ≥ 400 error.
    pub status: i32,
    /// Error message (empty on success).
    pub message: String,
    /// Result bytes.
    pub payload: Vec<u8>,
}

impl Response {
    /// A status 200 response with `payload`.
    pub fn success(payload: impl Into<Vec<u8>>) -> Self {
        Response {
            status: OK,
            message: String::new(),
            payload: payload.into(),
        }
    }

    /// A status 500 response with `message`, as the official shims' `shim.Error`.
    pub fn error(message: impl Into<String>) -> Self {
        Response {
            status: ERROR,
            message: message.into(),
            payload: Vec::new(),
        }
    }

    /// Whether the status is below [`ERROR_THRESHOLD`].
    pub fn is_ok(&self) -> bool {
        self.status < ERROR_THRESHOLD
    }
}
