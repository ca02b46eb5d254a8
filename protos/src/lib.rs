//! Hyperledger Fabric's wire schema for Rust.
//!
//! Every message keeps the protobuf package, name and field numbers of Fabric's published schema
//! (fabric-protos v0.3.7, the one Fabric v3.1 builds with), so bytes produced here are read by a
//! real peer, orderer or official client exactly as if Fabric's own code had written them.
//! Modules are named after the protobuf packages: `common`, `msp`, `protos` (peer), `orderer`,
//! `gateway`, `rwset`, `kvrwset`, `queryresult`, `lifecycle`.
#![allow(missing_docs, clippy::all)]

/// Fabric's `msp` package: identities and MSP configuration.
pub mod msp {
    tonic::include_proto!("msp");
}

/// The serialized descriptor set of the whole compiled schema.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fabric_descriptor.bin"));
