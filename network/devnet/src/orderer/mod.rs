//! The ordering service: a solo orderer with Fabric's block cutting, block assembly and signing,
//! and the `AtomicBroadcast` gRPC service (mirrors Fabric's `orderer/common`: `blockcutter`,
//! `multichannel.BlockWriter`, `broadcast`, `deliver`).

pub mod blockcutter;
