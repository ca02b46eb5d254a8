//! Fabric primitives shared by every crate.
