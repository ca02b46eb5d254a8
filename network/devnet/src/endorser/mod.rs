//! The endorser: Fabric's `core/endorser` (proposal checks, simulation, signed responses).

pub mod simulator;
