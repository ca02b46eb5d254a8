//! Fabric primitives written once and shared by every crate of the workspace: the chaincode shim,
//! the SDK, the devnet and the CLI.
//!
//! Nothing here knows about licences. Each module mirrors one Fabric concept and keeps Fabric's
//! exact wire behaviour:
//!
//! * [`crypto`]: ECDSA P-256 / SHA-256 signing and verification with Fabric's low-S rule; the
//!   [`crypto::Signer`] trait (hash-then-sign, so an HSM can plug in) and the software
//!   [`crypto::SigningKey`].
//! * [`identity`]: X.509 [`identity::Certificate`]s parsed once, [`identity::Identity`]
//!   (`msp.SerializedIdentity`), client IDs exactly as Go's `cid.GetID()` prints them, and Fabric
//!   CA attributes.
//! * [`msp`]: MSP directories (`signcerts/`, `keystore/`, `cacerts/`, `config.yaml`...),
//!   `msp.MSPConfig`, identity validation, NodeOU roles and principal matching.
//! * [`policy`]: the signature policy language, `SignaturePolicyEnvelope` built byte-for-byte as
//!   Fabric builds it, evaluation with `cauthdsl`'s semantics, implicit-meta rules.
//! * [`tx`]: transaction IDs, proposals, proposal responses, transaction envelopes and reading
//!   them back.
//!
//! A client's round trip, end to end:
//!
//! ```no_run
//! use fabric_common::{msp, tx};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let me = msp::read_signing_identity("org1/users/clerk/msp".as_ref(), "Org1MSP")?;
//! let invocation = tx::ChaincodeInvocation::new("police-service", "elicense", "read", &["L1"]);
//! let proposal = tx::create_chaincode_proposal(&invocation, me.serialized());
//! let signed = proposal.sign(&me)?;
//! # let responses: Vec<fabric_protos::protos::ProposalResponse> = { let _ = signed; vec![] };
//! // ... send `signed` to endorsing peers, collect their ProposalResponses ...
//! let envelope = tx::create_signed_tx(&proposal.proposal, &me, me.serialized(), &responses)?;
//! # let _ = envelope;
//! # Ok(())
//! # }
//! ```
pub mod ccaas;
pub mod crypto;
pub mod identity;
pub mod msp;
pub mod policy;
pub mod tx;
