//! Fabric primitives written once and shared by every crate of the workspace: the chaincode shim,
//! the SDK, the devnet and the CLI.
//!
//! Nothing here knows about licences. Each module mirrors one Fabric concept and keeps Fabric's
//! exact wire behaviour:
//!
//! * [`crypto`]: ECDSA P-256 / SHA-256 signing and verification with Fabric's low-S rule.
//! * [`identity`]: X.509 identities, `msp.SerializedIdentity`, client IDs and Fabric CA attributes.
//! * [`msp`]: MSP directories, `config.yaml` NodeOUs, `msp.MSPConfig`, identity validation and principals.
//! * [`policy`]: the signature policy language, `SignaturePolicyEnvelope`, Fabric-exact evaluation, implicit-meta rules.
//! * [`tx`]: transaction IDs, proposals, proposal responses, transaction envelopes and reading them back.
pub mod crypto;
pub mod identity;
pub mod msp;
pub mod policy;
pub mod tx;
