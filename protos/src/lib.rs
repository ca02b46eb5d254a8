//! Hyperledger Fabric's wire schema for Rust.
//!
//! Every message keeps the protobuf package, name and field numbers of Fabric's published schema
//! (fabric-protos v0.3.7, the one Fabric v3.1 builds with), so bytes produced here are read by a
//! real peer, orderer or official client exactly as if Fabric's own code had written them.
//! Modules are named after the protobuf packages, all at the crate root because generated code
//! refers across packages with `super::<package>` paths: `common`, `msp`, `protos` (peer),
//! `rwset`, `kvrwset`, `queryresult`.
//!
//! Map fields are `BTreeMap`s so that encoding is deterministic (entries in key order).
#![allow(missing_docs, clippy::all)]

/// Fabric's `common` package: envelopes, headers, blocks, policies, principals.
pub mod common {
    tonic::include_proto!("common");
}

/// Fabric's `msp` package: identities and MSP configuration.
pub mod msp {
    tonic::include_proto!("msp");
}

/// Fabric's `protos` package (the peer): proposals, transactions, chaincode shim, events.
pub mod protos {
    tonic::include_proto!("protos");
}

/// Fabric's `rwset` package (ledger/rwset): transaction read-write sets.
pub mod rwset {
    tonic::include_proto!("rwset");
}

/// Fabric's `kvrwset` package (ledger/rwset/kvrwset): key-value reads and writes.
pub mod kvrwset {
    tonic::include_proto!("kvrwset");
}

/// Fabric's `queryresult` package (ledger/queryresult): state and history query results.
pub mod queryresult {
    tonic::include_proto!("queryresult");
}

/// The serialized descriptor set of the whole compiled schema.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fabric_descriptor.bin"));
