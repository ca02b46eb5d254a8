//! A Hyperledger Fabric client for Rust: the Fabric Gateway client and a Fabric CA client.
//!
//! This crate knows nothing about licences; it speaks Fabric in Fabric's own words.
//!
//! * [`identity`]: who signs and how. An [`Identity`] (MSP ID + X.509 certificate) and a
//!   [`Signer`] (digest in, DER low-S ECDSA signature out) live apart from the client, so an HSM
//!   or remote signer plugs in behind [`Signer`]; [`PrivateKeySigner`] is the built-in software
//!   P-256 key. [`HashAlgorithm`] chooses what the signer receives (SHA-256, SHA-384,
//!   SHA3-256, SHA3-384, none).
//! * [`msp`], [`wallet`], [`profile`]: loading identities from MSP directories or file-system
//!   wallets (the official Node SDK's format) and networks from common connection profiles.
//! * [`gateway`]: the Gateway client — [`Gateway`] → [`Network`] → [`Contract`] →
//!   [`Proposal`] → [`Transaction`] → [`Commit`], chaincode and block events with checkpoints,
//!   offline signing, errors typed by stage.
//! * [`ca`]: the Fabric CA REST client (cainfo, enroll, reenroll, register, revoke, identities).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use fabric_client::{gateway::{Endpoint, Gateway, GatewayOptions}, msp};
//! let signing = msp::load_signing_identity("Org1MSP", "msp")?;
//! let endpoint = Endpoint::new("https://localhost:7051").tls_root(std::fs::read("tls-ca.pem")?);
//! let gateway = Gateway::connect(endpoint, signing.identity().clone(), signing.signer().clone(),
//!                                GatewayOptions::default())?;
//! let contract = gateway.network("mychannel").contract("basic");
//! let result = contract.submit_transaction("CreateAsset", &["asset1", "blue"]).await?;
//! # let _ = result; Ok(()) }
//! ```
pub mod ca;
pub mod gateway;
pub mod identity;
pub mod msp;
pub mod profile;
pub mod wallet;

pub use gateway::{Commit, Contract, Gateway, GatewayError, Network, Proposal, Transaction};
pub use identity::{
    HashAlgorithm, Identity, IdentityError, PrivateKeySigner, SignError, SignFn, Signer,
    SigningIdentity,
};
