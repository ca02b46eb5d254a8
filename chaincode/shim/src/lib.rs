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
//! * [`cid`] — the caller's identity and Fabric CA attributes, as Go's `pkg/cid`.
//! * [`statebased`] — key-level endorsement policies, as Go's `statebased` package.
//! * [`server`] — the chaincode-as-a-service gRPC server (CCaaS environment and flags, TLS and
//!   mutual TLS); [`handler`] and [`peer`] — the chaincode stream behind it.
//! * [`testing`] — a test peer that drives a chaincode server over real gRPC.

pub mod chaincode;
pub mod cid;
pub mod composite;
pub mod contract;
pub mod error;
pub mod handler;
pub mod json;
pub mod mock;
pub mod peer;
pub mod server;
pub mod statebased;
pub mod stub;
pub mod testing;
pub mod types;

pub use chaincode::Chaincode;
pub use cid::ClientIdentity;
pub use error::{Error, Result};
pub use peer::PeerStub;
pub use server::{ChaincodeServer, RunningServer, ServerArgs, ServerConfig};
pub use stub::{ChaincodeStub, QueryIterator};
pub use types::{
    ChaincodeEvent, KeyModification, QueryResponseMetadata, Response, SignedProposal, Timestamp,
    TransientMap, KV,
};
