//! One module per subcommand.

pub mod block;
pub mod ca;
pub mod chaincode;
pub mod completions;
pub mod events;
