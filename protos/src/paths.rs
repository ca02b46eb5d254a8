//! Full gRPC method paths (`/<package>.<Service>/<Method>`) of every service in the schema.
//!
//! Servers route on these and clients send them; a unit test checks each one against the
//! compiled descriptor set, and the conformance suite against Fabric's official service
//! definitions.

/// `gateway.Gateway/Endorse`: collect endorsements for a proposal.
pub const GATEWAY_ENDORSE: &str = "/gateway.Gateway/Endorse";
/// `gateway.Gateway/Submit`: send an endorsed, signed transaction for ordering.
pub const GATEWAY_SUBMIT: &str = "/gateway.Gateway/Submit";
/// `gateway.Gateway/CommitStatus`: wait for a transaction's commit status.
pub const GATEWAY_COMMIT_STATUS: &str = "/gateway.Gateway/CommitStatus";
/// `gateway.Gateway/Evaluate`: run a proposal without ordering it.
pub const GATEWAY_EVALUATE: &str = "/gateway.Gateway/Evaluate";
/// `gateway.Gateway/ChaincodeEvents`: stream a chaincode's events (server streaming).
pub const GATEWAY_CHAINCODE_EVENTS: &str = "/gateway.Gateway/ChaincodeEvents";

/// `protos.Endorser/ProcessProposal`: a peer endorses a signed proposal.
pub const ENDORSER_PROCESS_PROPOSAL: &str = "/protos.Endorser/ProcessProposal";

/// `protos.Deliver/Deliver`: full blocks from a peer (bidirectional streaming).
pub const DELIVER_DELIVER: &str = "/protos.Deliver/Deliver";
/// `protos.Deliver/DeliverFiltered`: filtered blocks from a peer.
pub const DELIVER_DELIVER_FILTERED: &str = "/protos.Deliver/DeliverFiltered";
/// `protos.Deliver/DeliverWithPrivateData`: blocks with private data from a peer.
pub const DELIVER_DELIVER_WITH_PRIVATE_DATA: &str = "/protos.Deliver/DeliverWithPrivateData";

/// `protos.ChaincodeSupport/Register`: a chaincode dials the peer (bidirectional streaming).
pub const CHAINCODE_SUPPORT_REGISTER: &str = "/protos.ChaincodeSupport/Register";
/// `protos.Chaincode/Connect`: the peer dials a chaincode served as an external service.
pub const CHAINCODE_CONNECT: &str = "/protos.Chaincode/Connect";

/// `orderer.AtomicBroadcast/Broadcast`: submit envelopes for ordering (bidirectional streaming).
pub const ATOMIC_BROADCAST_BROADCAST: &str = "/orderer.AtomicBroadcast/Broadcast";
/// `orderer.AtomicBroadcast/Deliver`: ordered blocks from an orderer (bidirectional streaming).
pub const ATOMIC_BROADCAST_DELIVER: &str = "/orderer.AtomicBroadcast/Deliver";

/// Every method path above, in the order the services appear in the schema.
pub const ALL: &[&str] = &[
    GATEWAY_ENDORSE,
    GATEWAY_SUBMIT,
    GATEWAY_COMMIT_STATUS,
    GATEWAY_EVALUATE,
    GATEWAY_CHAINCODE_EVENTS,
    ENDORSER_PROCESS_PROPOSAL,
    DELIVER_DELIVER,
    DELIVER_DELIVER_FILTERED,
    DELIVER_DELIVER_WITH_PRIVATE_DATA,
    CHAINCODE_SUPPORT_REGISTER,
    CHAINCODE_CONNECT,
    ATOMIC_BROADCAST_BROADCAST,
    ATOMIC_BROADCAST_DELIVER,
];
