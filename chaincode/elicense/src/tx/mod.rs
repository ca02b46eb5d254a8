//! One module per contract transaction.

pub mod authorize;
pub mod catalogue;
pub mod issue;
pub mod read;
pub mod retrieve;
pub mod status;
pub mod usage;
pub mod verify;
pub mod withdraw;
