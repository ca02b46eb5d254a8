//! Hyperledger Fabric's wire schema for Rust.
//!
//! Every message keeps the protobuf package, name and field numbers of Fabric's published schema
//! (fabric-protos v0.3.7, the one Fabric v3.1 builds with), so bytes produced here are read by a
//! real peer, orderer or official client exactly as if Fabric's own code had written them.
//! Modules are named after the protobuf packages, all at the crate root because generated code
//! refers across packages with `super::<package>` paths: `common`, `msp`, `protos` (peer),
//! `lifecycle`, `rwset`, `kvrwset`, `queryresult`, `orderer`, `etcdraft`, `gateway` and
//! `google::rpc`. Well-known `google.protobuf` types come from `prost-types`.
//!
//! gRPC clients are created with `XClient::new(channel)`; [`paths`] lists every method path.
//!
//! Map fields are `BTreeMap`s so that encoding is deterministic (entries in key order), and each
//! entry carries its key and its value even when they are defaults, as Fabric writes them (see
//! [`wire`]).

/// Fabric's `common` package: envelopes, headers, blocks, policies, principals.
#[allow(missing_docs, clippy::all)]
pub mod common {
    tonic::include_proto!("common");
}

/// Fabric's `msp` package: identities and MSP configuration.
#[allow(missing_docs, clippy::all)]
pub mod msp {
    tonic::include_proto!("msp");
}

/// Fabric's `protos` package (the peer): proposals, transactions, chaincode shim, events.
#[allow(missing_docs, clippy::all)]
pub mod protos {
    tonic::include_proto!("protos");
}

/// Fabric's `rwset` package (ledger/rwset): transaction read-write sets.
#[allow(missing_docs, clippy::all)]
pub mod rwset {
    tonic::include_proto!("rwset");
}

/// Fabric's `kvrwset` package (ledger/rwset/kvrwset): key-value reads and writes.
#[allow(missing_docs, clippy::all)]
pub mod kvrwset {
    tonic::include_proto!("kvrwset");
}

/// Fabric's `queryresult` package (ledger/queryresult): state and history query results.
#[allow(missing_docs, clippy::all)]
pub mod queryresult {
    tonic::include_proto!("queryresult");
}

/// Fabric's `lifecycle` package (peer/lifecycle): the `_lifecycle` system chaincode's messages.
#[allow(missing_docs, clippy::all)]
pub mod lifecycle {
    tonic::include_proto!("lifecycle");
}

/// Fabric's `orderer` package: atomic broadcast and orderer configuration.
#[allow(missing_docs, clippy::all)]
pub mod orderer {
    tonic::include_proto!("orderer");
}

/// Fabric's `etcdraft` package (orderer/etcdraft): Raft consensus configuration and metadata.
#[allow(missing_docs, clippy::all)]
pub mod etcdraft {
    tonic::include_proto!("etcdraft");
}

/// Fabric's `gateway` package: the Gateway service for client applications.
#[allow(missing_docs, clippy::all)]
pub mod gateway {
    tonic::include_proto!("gateway");
}

/// Google's shared API types used by Fabric.
pub mod google {
    /// The `google.rpc` package: the gRPC error status model.
    #[allow(missing_docs, clippy::all)]
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

pub mod paths;
pub mod wire;

/// The serialized descriptor set of the whole compiled schema.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fabric_descriptor.bin"));
