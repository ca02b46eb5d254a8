//! One module per subcommand.

pub mod batch;
pub mod block;
pub mod ca;
pub mod catalogue;
pub mod chaincode;
pub mod completions;
pub mod demo;
pub mod devnet;
pub mod events;
pub mod grant;
pub mod licence;
pub mod retrieve;
pub mod usage;
pub mod verify;
