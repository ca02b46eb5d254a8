//! An embedded, Fabric-compatible network in one process.
//!
//! The devnet runs every organisation's peer, a solo ordering service, a ledger per peer and
//! channel, and a Fabric-CA-compatible enrollment service per organisation, all on 127.0.0.1.
//! It exists so the chaincode, SDK and CLI can be exercised without a Fabric install; it must
//! never accept what a real Fabric peer would reject. Modules are named as Fabric names the parts.

pub mod ca;
pub mod chaincode;
pub mod committer;
pub mod configtx;
pub mod deliver;
pub mod devnet;
pub mod endorser;
pub mod gateway;
pub mod ledger;
pub mod lifecycle;
pub mod material;
pub mod msp;
pub mod orderer;
pub mod peer;
pub mod topology;

/// The program's allocator wherever the devnet is linked in (feature `mimalloc`, on by default):
/// a devnet under load allocates and frees from many threads at once (gRPC messages, protobuf
/// decoding, validation, ledger pages), where glibc's malloc spent about a quarter of the CPU.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
