//! A chaincode-as-a-service shim for Hyperledger Fabric with the full chaincode API and a
//! contract layer.
//!
//! The crate is generic Fabric code and knows nothing about any particular contract. Its parts:
//!
//! * [`ChaincodeStub`] — the transaction's view of the ledger, at parity with Go's
//!   `ChaincodeStubInterface` (state, ranges and composite keys with pagination, history, private
//!   data, key-level endorsement, events, transient data, creator, timestamp). Implemented by the
//!   peer-backed stub and by [`mock::MockStub`] for tests.
//! * [`Chaincode`] — `init`/`invoke`, what the server calls per transaction.
//! * [`contract`] — contracts with typed JSON arguments, a [`contract::Router`] and the official
//!   contract metadata (`org.hyperledger.fabric:GetMetadata`).
//! * [`mock`] — an in-memory ledger with Fabric's read semantics.
//! * [`composite`] and [`json`] — composite keys and canonical JSON.

pub mod chaincode;
pub mod composite;
pub mod contract;
pub mod error;
pub mod json;
pub mod mock;
pub mod stub;
pub mod types;

pub use chaincode::Chaincode;
pub use error::{Error, Result};
pub use stub::{ChaincodeStub, QueryIterator};
pub use types::{
    ChaincodeEvent, KeyModification, QueryResponseMetadata, Response, SignedProposal, Timestamp,
    TransientMap, KV,
};
