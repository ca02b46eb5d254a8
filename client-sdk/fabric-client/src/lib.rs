//! A Hyperledger Fabric client for Rust: the Fabric Gateway client and a Fabric CA client.
//!
//! This crate knows nothing about licences; it speaks Fabric in Fabric's own words.
//!
//! * [`identity`]: who signs and how. An [`Identity`] (MSP ID + X.509 certificate) and a
//!   [`Signer`] (digest in, DER low-S ECDSA signature out) live apart from the client, so an HSM
//!   or remote signer plugs in behind [`Signer`]; [`PrivateKeySigner`] is the built-in software
//!   P-256 key. [`HashAlgorithm`] chooses what the signer receives (SHA-256, SHA-384, none).
//! * [`msp`], [`wallet`], [`profile`]: loading identities from MSP directories or file-system
//!   wallets (the official Node SDK's format) and networks from common connection profiles.
//! * [`ca`]: the Fabric CA REST client (cainfo, enroll, reenroll, register, revoke, identities).
pub mod ca;
pub mod identity;
pub mod msp;
pub mod profile;
pub mod wallet;

pub use identity::{
    HashAlgorithm, Identity, IdentityError, PrivateKeySigner, SignError, SignFn, Signer,
    SigningIdentity,
};
