//! The Fabric Gateway client, in the shape of Fabric's official clients:
//!
//! ```text
//! Gateway (identity, signer, connection)
//!   └─ Network (channel)                      chaincode_events, block_events…
//!        └─ Contract (chaincode [, contract]) evaluate_transaction, submit_transaction
//!             └─ Proposal ──endorse──▶ Transaction ──submit──▶ Commit ──status──▶ Status
//! ```
//!
//! * A [`Proposal`] is a signed `SignedProposal` for one transaction ID
//!   (`hex(SHA-256(nonce ‖ creator))`); [`Proposal::evaluate`] runs it on one peer without
//!   ordering, [`Proposal::endorse`] collects endorsements and returns the prepared
//!   [`Transaction`] envelope, which [`Transaction::submit`] signs and sends to the orderer; the
//!   returned [`Commit`] asks for the transaction's validation code and block.
//! * Many transactions in flight: [`Network::commit_watcher`] follows the channel's filtered
//!   blocks once, and [`Transaction::submit_watched`] takes each transaction's status from that
//!   stream instead of a signed `CommitStatus` call of its own.
//! * Offline signing: a gateway without a signer produces unsigned messages whose
//!   `bytes()`/`digest()` can be signed elsewhere and restored with
//!   [`Gateway::new_signed_proposal`], [`Gateway::new_signed_transaction`],
//!   [`Gateway::new_signed_commit`], [`Gateway::new_signed_chaincode_events_request`] and
//!   [`Gateway::new_signed_block_events_request`].
//! * Every call has a deadline ([`CallTimeouts`], defaults as in the Go samples: evaluate 5 s,
//!   endorse 15 s, submit 5 s, commit status 1 min); one invocation can set its own with
//!   [`CallOptions`] ([`Proposal::evaluate_with`], [`Proposal::endorse_with`],
//!   [`Transaction::submit_with`], [`Commit::status_with`]), as Go passes a context per call
//!   and Node per-call `CallOptions`.
//! * Errors are typed by stage ([`GatewayError`]) and carry the transaction ID, the gRPC status
//!   and each peer's error detail.

mod checkpoint;
mod commits;
mod connection;
mod error;
mod events;
mod proposal;

pub use checkpoint::{
    Checkpoint, CheckpointError, Checkpointer, FileCheckpointer, InMemoryCheckpointer,
};
pub use commits::CommitWatcher;
pub use connection::{Connection, ConnectionOptions, Endpoint, DEFAULT_MAX_MESSAGE_SIZE};
pub use error::{CommitError, ErrorDetail, GatewayError, GrpcStatus, TransactionError};
pub use events::{
    BlockEventStream, BlockEventsKind, BlockEventsRequest, ChaincodeEvent, ChaincodeEventStream,
    ChaincodeEventsRequest, DeliverEvent, EventsOptions,
};
pub use proposal::{Commit, Proposal, ProposalBuilder, Status, Transaction};

pub use fabric_protos::protos::TxValidationCode;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::identity::{ensure_low_s, HashAlgorithm, Identity, Signer, SigningIdentity};

/// Deadlines of each kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimeouts {
    /// Evaluate (default 5 s).
    pub evaluate: Duration,
    /// Endorse (default 15 s).
    pub endorse: Duration,
    /// Submit (default 5 s).
    pub submit: Duration,
    /// Commit status (default 1 min).
    pub commit_status: Duration,
}

impl Default for CallTimeouts {
    fn default() -> Self {
        CallTimeouts {
            evaluate: Duration::from_secs(5),
            endorse: Duration::from_secs(15),
            submit: Duration::from_secs(5),
            commit_status: Duration::from_secs(60),
        }
    }
}

/// Settings of one invocation (Go: the `context.Context` given to `EvaluateWithContext`,
/// `EndorseWithContext`, …; Node: `CallOptions`). The default keeps the gateway's deadline for
/// the kind of call ([`CallTimeouts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    deadline: Option<Deadline>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    After(Duration),
    At(Instant),
}

impl CallOptions {
    /// The call must be answered within `timeout` of its start (Go: `context.WithTimeout`).
    pub fn timeout(timeout: Duration) -> Self {
        CallOptions {
            deadline: Some(Deadline::After(timeout)),
        }
    }

    /// The call must be answered by `at` (Go: `context.WithDeadline`; Node: `deadline`). One
    /// instant can bound several calls, e.g. endorse, submit and commit status together.
    pub fn deadline(at: Instant) -> Self {
        CallOptions {
            deadline: Some(Deadline::At(at)),
        }
    }

    /// The time the call may take: this invocation's deadline, else `default`; zero when an
    /// absolute deadline has already passed.
    pub(crate) fn time_allowed(&self, default: Duration) -> Duration {
        match self.deadline {
            None => default,
            Some(Deadline::After(d)) => d,
            Some(Deadline::At(at)) => at.saturating_duration_since(Instant::now()),
        }
    }
}

/// Gateway settings.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// The hash applied before signing (default SHA-256).
    pub hash: HashAlgorithm,
    /// Per-call deadlines.
    pub timeouts: CallTimeouts,
    /// SHA-256 of the client's TLS certificate, bound into deliver requests under mutual TLS.
    pub tls_cert_hash: Option<Vec<u8>>,
}

struct Inner {
    connection: Connection,
    identity: Identity,
    signer: Option<Arc<dyn Signer>>,
    options: GatewayOptions,
}

/// A connection to a Fabric Gateway on behalf of one client identity (Go: `client.Gateway`).
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("identity", &self.inner.identity)
            .field("connection", &self.inner.connection)
            .field("signer", &self.inner.signer.is_some())
            .finish()
    }
}

impl Gateway {
    /// A gateway over `connection`; `signer` is `None` for offline signing.
    pub fn new(
        connection: Connection,
        identity: Identity,
        signer: Option<Arc<dyn Signer>>,
        options: GatewayOptions,
    ) -> Self {
        Gateway {
            inner: Arc::new(Inner {
                connection,
                identity,
                signer,
                options,
            }),
        }
    }

    /// Connects to one endpoint with default transport settings (the connection is made on first use).
    pub fn connect(
        endpoint: Endpoint,
        identity: Identity,
        signer: Arc<dyn Signer>,
        options: GatewayOptions,
    ) -> Result<Self, GatewayError> {
        let connection = Connection::new(vec![endpoint], &ConnectionOptions::default())?;
        Ok(Self::new(connection, identity, Some(signer), options))
    }

    /// A gateway for a signing identity (its hash algorithm becomes the gateway's).
    pub fn for_signing_identity(
        connection: Connection,
        signing: &SigningIdentity,
        mut options: GatewayOptions,
    ) -> Self {
        options.hash = signing.hash();
        Self::new(
            connection,
            signing.identity().clone(),
            Some(Arc::clone(signing.signer())),
            options,
        )
    }

    /// The client identity.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.inner.connection
    }

    /// The options.
    pub fn options(&self) -> &GatewayOptions {
        &self.inner.options
    }

    /// A channel of the network (Go: `GetNetwork`).
    pub fn network(&self, channel: impl Into<String>) -> Network {
        Network {
            gateway: self.clone(),
            channel: channel.into().into(),
        }
    }

    /// The digest the signer receives for `message`.
    pub(crate) fn digest(&self, message: &[u8]) -> Vec<u8> {
        self.inner.options.hash.digest(message).into_owned()
    }

    /// Signs `message` with the gateway's signer, or reports which message needs offline signing.
    pub(crate) fn sign(&self, message: &[u8], what: &'static str) -> Result<Vec<u8>, GatewayError> {
        let signer = self
            .inner
            .signer
            .as_ref()
            .ok_or(GatewayError::Unsigned(what))?;
        let sig = signer.sign_message(message, self.inner.options.hash)?;
        ensure_low_s(sig).map_err(|e| GatewayError::Sign(e.into()))
    }

    pub(crate) fn gateway_client(
        &self,
        channel: tonic::transport::Channel,
    ) -> fabric_protos::gateway::gateway_client::GatewayClient<tonic::transport::Channel> {
        fabric_protos::gateway::gateway_client::GatewayClient::new(channel)
            .max_decoding_message_size(self.inner.connection.max_decoding)
            .max_encoding_message_size(self.inner.connection.max_encoding)
    }

    /// Restores a proposal from [`Proposal::bytes`] and attaches an offline signature.
    ///
    /// Every `new_signed_*` call normalises the signature to low-S, as signing through the
    /// gateway does (Fabric refuses high-S signatures), and refuses one that is not a DER ECDSA
    /// signature with [`GatewayError::InvalidArgument`].
    pub fn new_signed_proposal(
        &self,
        bytes: &[u8],
        signature: Vec<u8>,
    ) -> Result<Proposal, GatewayError> {
        let signature = offline_signature(signature)?;
        let mut p = self.new_proposal(bytes)?;
        p.set_signature(signature);
        Ok(p)
    }

    /// Restores a proposal from [`Proposal::bytes`] without changing its signature.
    pub fn new_proposal(&self, bytes: &[u8]) -> Result<Proposal, GatewayError> {
        Proposal::from_bytes(self.clone(), bytes)
    }

    /// Restores a transaction from [`Transaction::bytes`] and attaches an offline signature.
    pub fn new_signed_transaction(
        &self,
        bytes: &[u8],
        signature: Vec<u8>,
    ) -> Result<Transaction, GatewayError> {
        let signature = offline_signature(signature)?;
        let mut t = Transaction::from_bytes(self.clone(), bytes)?;
        t.set_signature(signature);
        Ok(t)
    }

    /// Restores a transaction from [`Transaction::bytes`] without changing its signature.
    pub fn new_transaction(&self, bytes: &[u8]) -> Result<Transaction, GatewayError> {
        Transaction::from_bytes(self.clone(), bytes)
    }

    /// Restores a commit status request from [`Commit::bytes`] and attaches an offline signature.
    pub fn new_signed_commit(
        &self,
        bytes: &[u8],
        signature: Vec<u8>,
    ) -> Result<Commit, GatewayError> {
        let signature = offline_signature(signature)?;
        let mut c = Commit::from_bytes(self.clone(), bytes)?;
        c.set_signature(signature);
        Ok(c)
    }

    /// Restores a commit status request from [`Commit::bytes`] without changing its signature.
    pub fn new_commit(&self, bytes: &[u8]) -> Result<Commit, GatewayError> {
        Commit::from_bytes(self.clone(), bytes)
    }

    /// Restores a chaincode events request and attaches an offline signature.
    pub fn new_signed_chaincode_events_request(
        &self,
        bytes: &[u8],
        signature: Vec<u8>,
    ) -> Result<ChaincodeEventsRequest, GatewayError> {
        let signature = offline_signature(signature)?;
        let mut r = ChaincodeEventsRequest::from_bytes(self.clone(), bytes)?;
        r.set_signature(signature);
        Ok(r)
    }

    /// Restores a block events request (a signed seek envelope) and attaches an offline signature.
    pub fn new_signed_block_events_request(
        &self,
        kind: BlockEventsKind,
        bytes: &[u8],
        signature: Vec<u8>,
    ) -> Result<BlockEventsRequest, GatewayError> {
        let signature = offline_signature(signature)?;
        let mut r = BlockEventsRequest::from_bytes(self.clone(), kind, bytes)?;
        r.set_signature(signature);
        Ok(r)
    }
}

/// A signature supplied for offline signing, in the low-S form Fabric accepts.
fn offline_signature(signature: Vec<u8>) -> Result<Vec<u8>, GatewayError> {
    ensure_low_s(signature).map_err(|e| {
        GatewayError::InvalidArgument(format!(
            "the offline signature is not a DER ECDSA signature: {e}"
        ))
    })
}

/// One channel seen through the gateway (Go: `client.Network`).
#[derive(Clone, Debug)]
pub struct Network {
    gateway: Gateway,
    channel: Arc<str>,
}

impl Network {
    /// The channel name.
    pub fn name(&self) -> &str {
        &self.channel
    }

    /// The gateway.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The default contract of a chaincode (Go: `GetContract`).
    pub fn contract(&self, chaincode: impl Into<String>) -> Contract {
        Contract {
            network: self.clone(),
            chaincode: chaincode.into().into(),
            contract_name: None,
        }
    }

    /// A named contract within a chaincode: transaction names become `Contract:function`
    /// (Go: `GetContractWithName`).
    pub fn contract_with_name(
        &self,
        chaincode: impl Into<String>,
        contract: impl Into<String>,
    ) -> Contract {
        Contract {
            network: self.clone(),
            chaincode: chaincode.into().into(),
            contract_name: Some(contract.into().into()),
        }
    }

    /// A request for a chaincode's events; sign (or sign offline) and stream with
    /// [`ChaincodeEventsRequest::events`].
    pub fn new_chaincode_events_request(
        &self,
        chaincode: &str,
        options: &EventsOptions<'_>,
    ) -> Result<ChaincodeEventsRequest, GatewayError> {
        ChaincodeEventsRequest::build(self, chaincode, options)
    }

    /// Streams a chaincode's events (Go: `ChaincodeEvents`).
    pub async fn chaincode_events(
        &self,
        chaincode: &str,
        options: &EventsOptions<'_>,
    ) -> Result<ChaincodeEventStream, GatewayError> {
        self.new_chaincode_events_request(chaincode, options)?
            .events()
            .await
    }

    /// A signed deliver request for blocks of `kind` (full, filtered or with private data).
    pub fn new_block_events_request(
        &self,
        kind: BlockEventsKind,
        options: &EventsOptions<'_>,
    ) -> Result<BlockEventsRequest, GatewayError> {
        BlockEventsRequest::build(self, kind, options)
    }

    /// Follows the channel's filtered blocks from the newest one, for
    /// [`Transaction::submit_watched`]: one stream serves the commit statuses of every
    /// transaction in flight.
    pub async fn commit_watcher(&self) -> Result<CommitWatcher, GatewayError> {
        CommitWatcher::start(self).await
    }

    /// Streams blocks of `kind` from the peer's `protos.Deliver` service (Go: `BlockEvents`,
    /// `FilteredBlockEvents`, `BlockAndPrivateDataEvents`).
    pub async fn block_events(
        &self,
        kind: BlockEventsKind,
        options: &EventsOptions<'_>,
    ) -> Result<BlockEventStream, GatewayError> {
        self.new_block_events_request(kind, options)?.events().await
    }
}

/// A chaincode (optionally one named contract within it) on a channel (Go: `client.Contract`).
#[derive(Clone, Debug)]
pub struct Contract {
    network: Network,
    chaincode: Arc<str>,
    contract_name: Option<Arc<str>>,
}

impl Contract {
    /// The chaincode name.
    pub fn chaincode_name(&self) -> &str {
        &self.chaincode
    }

    /// The contract name, if any.
    pub fn contract_name(&self) -> Option<&str> {
        self.contract_name.as_deref()
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    fn qualified(&self, transaction: &str) -> String {
        match &self.contract_name {
            Some(c) => format!("{c}:{transaction}"),
            None => transaction.to_string(),
        }
    }

    /// Starts a proposal for `transaction` (arguments, transient data, endorsing organisations
    /// are added on the builder).
    pub fn new_proposal(&self, transaction: &str) -> ProposalBuilder {
        ProposalBuilder::new(
            self.network.gateway.clone(),
            self.network.channel.clone(),
            self.chaincode.clone(),
            self.qualified(transaction),
        )
    }

    /// Evaluates a transaction with string arguments and returns its result.
    pub async fn evaluate_transaction<S: AsRef<str>>(
        &self,
        transaction: &str,
        args: &[S],
    ) -> Result<Vec<u8>, GatewayError> {
        self.new_proposal(transaction)
            .string_args(args)
            .evaluate()
            .await
    }

    /// Submits a transaction with string arguments, waits for it to commit, returns its result.
    pub async fn submit_transaction<S: AsRef<str>>(
        &self,
        transaction: &str,
        args: &[S],
    ) -> Result<Vec<u8>, GatewayError> {
        self.new_proposal(transaction)
            .string_args(args)
            .submit()
            .await
    }

    /// Submits a transaction with string arguments and returns its result and a [`Commit`]
    /// without waiting for the commit.
    pub async fn submit_async<S: AsRef<str>>(
        &self,
        transaction: &str,
        args: &[S],
    ) -> Result<(Vec<u8>, Commit), GatewayError> {
        self.new_proposal(transaction)
            .string_args(args)
            .submit_async()
            .await
    }
}

/// Runs `call` on the gateway's connection with a deadline: the `grpc-timeout` header tells the
/// server, and a local timer makes sure the caller gets its answer when the deadline passes.
pub(crate) async fn with_deadline<T, F, Fut>(
    gateway: &Gateway,
    deadline: Duration,
    request: &impl prost::Message,
    call: F,
) -> Result<T, tonic::Status>
where
    F: FnMut(tonic::transport::Channel) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let started = std::time::Instant::now();
    let expired = || {
        tonic::Status::deadline_exceeded(format!("no answer within {} ms", deadline.as_millis()))
    };
    connection::check_request_size(&gateway.inner.connection, request.encoded_len())?;
    // A deadline that has already passed sends nothing: the server would only refuse it.
    if deadline.is_zero() {
        return Err(expired());
    }
    match tokio::time::timeout(deadline, gateway.inner.connection.call(call)).await {
        // tonic reports its own expiry of `grpc-timeout` as CANCELLED; callers expect the gRPC
        // meaning, DEADLINE_EXCEEDED.
        Ok(Err(s)) if s.code() == tonic::Code::Cancelled && started.elapsed() >= deadline => {
            Err(expired())
        }
        Ok(r) => r,
        Err(_) => Err(expired()),
    }
}

pub(crate) fn decode<M: prost::Message + Default>(
    bytes: &[u8],
    what: &str,
) -> Result<M, GatewayError> {
    M::decode(bytes).map_err(|e| GatewayError::InvalidArgument(format!("{what}: {e}")))
}

pub(crate) fn encode<M: prost::Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}
