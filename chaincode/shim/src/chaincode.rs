//! The chaincode interface the server calls: Fabric's `shim.Chaincode` (`Init`, `Invoke`).

use std::future::Future;

use crate::stub::ChaincodeStub;
use crate::types::Response;

/// A chaincode: answers INIT and TRANSACTION messages with a [`Response`].
///
/// Implement it directly for low-level chaincode, or use [`Router`](crate::contract::Router),
/// which implements it for contracts. Generic over the stub so the same chaincode runs under the
/// server ([`PeerStub`](crate::PeerStub)) and in tests ([`MockStub`](crate::mock::MockStub)).
pub trait Chaincode<S: ChaincodeStub>: Send + Sync + 'static {
    /// Called for an INIT message (a chaincode definition with `--init-required`).
    fn init(&self, stub: S) -> impl Future<Output = Response> + Send;

    /// Called for every TRANSACTION message.
    fn invoke(&self, stub: S) -> impl Future<Output = Response> + Send;
}
