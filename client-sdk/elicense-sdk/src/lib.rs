//! The eLicense Ledger SDK: a typed licence API over the Fabric Gateway, and holder helpers.
//!
//! # The model in one page
//!
//! - An **issuer** (a department's clerk with `elicense.role=issuer`) records a licence once per
//!   channel. The public record holds only salted per-field commitments, the holder's public key,
//!   validity and status; values and salts go to the issuer's private collection as transient
//!   data, and to the **holder** as a [`Credential`].
//! - At a service window the holder signs a **grant**: one licence, one grantee department, one
//!   matter, named fields, a time window, a number of uses (1 by default). The holder's 8-digit
//!   **code** is derived from a holder secret and the grant, so the holder keeps one secret and
//!   never types a key. The grant is relayed to the ledger with [`LicenceClient::authorize`].
//! - The window's **clerk** enters the code and [`LicenceClient::verify`]s the grant with a
//!   **presentation** of chosen fields; the contract checks code, grant, licence and every
//!   presented value against its commitment, spends one use and writes a usage record. Granted
//!   values not presented can be fetched for a few minutes with [`LicenceClient::retrieve`].
//! - The holder can **withdraw** a grant at any time and read its own **usage trail**; the
//!   regulator audits all usage.
//!
//! # Layout
//!
//! - [`holder`]: holder key, secret, credential, grant builder, code, withdrawals, trail requests,
//!   presentations — no network needed.
//! - [`client`]: [`LicenceClient`] over a [`fabric_client::Contract`].
//! - [`error`]: [`LicenceError`] and the flat [`Failure`] code a window system acts on, decoded
//!   from the contract's error payloads and commit validation codes.
//!
//! The wire shapes and rules are `elicense-model`'s (re-exported as [`model`]); the Gateway client
//! is `fabric-client`'s (re-exported as [`fabric`]).
//!
//! ```no_run
//! # async fn window(contract: fabric_client::Contract, code: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use elicense_sdk::{model::{Code, GrantId, Presentation}, Failure, LicenceClient};
//! let client = LicenceClient::new(contract);
//! let grant_id = GrantId::parse("251663b98518a449d3f99aedeba323d6c3593d3ef82987e257fd47704850a464")?;
//! let presentation = Presentation { code: Code::parse(code)?, fields: Default::default() };
//! match client.verify(&grant_id, "SC-0001", &presentation).await {
//!     Ok(v) => println!("verified; retrieve until {}", v.retrieve_until),
//!     Err(e) if e.failure() == Failure::WrongCode => println!("wrong code, ask again"),
//!     Err(e) => println!("refused: {:?}", e.failure()),
//! }
//! # Ok(()) }
//! ```

pub mod client;
pub mod error;
pub mod holder;

pub use client::{
    BulkItem, BulkOptions, Committed, Issued, LicenceClient, LicenceEventRecord,
    LicenceEventStream, NewLicence, Verification, CHAINCODE_NAME,
};
pub use error::{Failure, LicenceError};
pub use holder::{Credential, GrantBuilder, HolderError, HolderGrant, HolderKeyPair};

pub use elicense_model as model;
pub use fabric_client as fabric;
