//! Shared test support.
pub mod double;
