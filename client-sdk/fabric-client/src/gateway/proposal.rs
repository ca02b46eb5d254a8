//! Proposal → Transaction → Commit: the three signed messages of a Fabric transaction, built and
//! read exactly as Fabric's `protoutil` and the official gateway clients do.

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_protos::common::{
    ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use fabric_protos::gateway::{
    CommitStatusRequest, EndorseRequest, EvaluateRequest, PreparedTransaction, ProposedTransaction,
    SignedCommitStatusRequest, SubmitRequest,
};
use fabric_protos::protos::{
    chaincode_spec, ChaincodeAction, ChaincodeActionPayload, ChaincodeHeaderExtension, ChaincodeId,
    ChaincodeInput, ChaincodeInvocationSpec, ChaincodeProposalPayload, ChaincodeSpec,
    Proposal as ProposalProto, ProposalResponsePayload, SignedProposal,
    Transaction as TransactionProto, TxValidationCode,
};
use rand::RngCore as _;
use sha2::Digest as _;

use super::commits::CommitWatcher;
use super::error::{CommitError, GatewayError, TransactionError};
use super::{decode, encode, with_deadline, CallOptions, Gateway};

/// A fresh 24-byte nonce, as Fabric's `protoutil` creates.
pub(crate) fn new_nonce() -> [u8; 24] {
    let mut n = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut n);
    n
}

/// Fabric's transaction ID: `hex(SHA-256(nonce ‖ creator))`.
pub fn transaction_id(nonce: &[u8], creator: &[u8]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(nonce);
    h.update(creator);
    hex::encode(h.finalize())
}

pub(crate) fn now_timestamp() -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: now.as_secs() as i64,
        nanos: now.subsec_nanos() as i32,
    }
}

fn channel_of_header(header_bytes: &[u8]) -> Result<String, GatewayError> {
    let header: Header = decode(header_bytes, "Header")?;
    let ch: ChannelHeader = decode(&header.channel_header, "ChannelHeader")?;
    Ok(ch.channel_id)
}

/// Builds a [`Proposal`] (Go: `Contract.NewProposal` with its options).
#[derive(Debug)]
#[must_use = "a proposal builder does nothing until built, evaluated or submitted"]
pub struct ProposalBuilder {
    gateway: Gateway,
    channel: Arc<str>,
    chaincode: Arc<str>,
    args: Vec<Vec<u8>>,
    transient: BTreeMap<String, Vec<u8>>,
    endorsing_organizations: Vec<String>,
}

impl ProposalBuilder {
    pub(crate) fn new(
        gateway: Gateway,
        channel: Arc<str>,
        chaincode: Arc<str>,
        transaction: String,
    ) -> Self {
        ProposalBuilder {
            gateway,
            channel,
            chaincode,
            args: vec![transaction.into_bytes()],
            transient: BTreeMap::new(),
            endorsing_organizations: Vec::new(),
        }
    }

    /// Appends one argument as bytes.
    pub fn arg(mut self, arg: impl Into<Vec<u8>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments as bytes (Go: `WithBytesArguments`).
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends string arguments (Go: `WithArguments`).
    pub fn string_args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args
            .extend(args.iter().map(|a| a.as_ref().as_bytes().to_vec()));
        self
    }

    /// Adds a transient data entry: passed to the chaincode, never recorded in the ledger.
    pub fn transient(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.transient.insert(key.into(), value.into());
        self
    }

    /// Limits endorsement (and evaluation) to these organisations' peers
    /// (Go: `WithEndorsingOrganizations`).
    pub fn endorsing_organizations<I, S>(mut self, msp_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endorsing_organizations = msp_ids.into_iter().map(Into::into).collect();
        self
    }

    /// Builds and (when the gateway has a signer) signs the proposal.
    pub fn build(self) -> Result<Proposal, GatewayError> {
        let creator = self.gateway.identity().serialized();
        let nonce = new_nonce();
        let tx_id = transaction_id(&nonce, creator);
        let chaincode_id = ChaincodeId {
            name: self.chaincode.to_string(),
            ..Default::default()
        };
        let channel_header = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            timestamp: Some(now_timestamp()),
            channel_id: self.channel.to_string(),
            tx_id: tx_id.clone(),
            epoch: 0,
            extension: encode(&ChaincodeHeaderExtension {
                chaincode_id: Some(chaincode_id.clone()),
            }),
            ..Default::default()
        };
        let header = Header {
            channel_header: encode(&channel_header),
            signature_header: encode(&SignatureHeader {
                creator: creator.to_vec(),
                nonce: nonce.to_vec(),
            }),
        };
        let invocation = ChaincodeInvocationSpec {
            chaincode_spec: Some(ChaincodeSpec {
                r#type: chaincode_spec::Type::Node as i32,
                chaincode_id: Some(chaincode_id),
                input: Some(ChaincodeInput {
                    args: self.args,
                    ..Default::default()
                }),
                timeout: 0,
            }),
        };
        let payload = ChaincodeProposalPayload {
            input: encode(&invocation),
            transient_map: self.transient,
        };
        let proposal_bytes = encode(&ProposalProto {
            header: encode(&header),
            payload: encode(&payload),
            extension: Vec::new(),
        });
        let mut proposal = Proposal {
            gateway: self.gateway,
            channel: self.channel.to_string(),
            proposed: ProposedTransaction {
                transaction_id: tx_id,
                proposal: Some(SignedProposal {
                    proposal_bytes,
                    signature: Vec::new(),
                }),
                endorsing_organizations: self.endorsing_organizations,
            },
        };
        proposal.sign_if_possible()?;
        Ok(proposal)
    }

    /// Builds, signs and evaluates the proposal.
    pub async fn evaluate(self) -> Result<Vec<u8>, GatewayError> {
        self.build()?.evaluate().await
    }

    /// Builds, endorses, submits and waits for the commit; returns the transaction's result.
    pub async fn submit(self) -> Result<Vec<u8>, GatewayError> {
        let (result, commit) = self.submit_async().await?;
        let status = commit.status().await?;
        if !status.successful {
            return Err(GatewayError::Commit(CommitError {
                transaction_id: status.transaction_id,
                code: status.code,
                block_number: status.block_number,
            }));
        }
        Ok(result)
    }

    /// Builds, endorses and submits; returns the result and the [`Commit`] to wait on later.
    pub async fn submit_async(self) -> Result<(Vec<u8>, Commit), GatewayError> {
        let transaction = self.build()?.endorse().await?;
        let result = transaction.result().to_vec();
        let commit = transaction.submit().await?;
        Ok((result, commit))
    }
}

/// A transaction proposal (Go: `client.Proposal`).
#[derive(Debug, Clone)]
pub struct Proposal {
    gateway: Gateway,
    channel: String,
    proposed: ProposedTransaction,
}

impl Proposal {
    pub(crate) fn from_bytes(gateway: Gateway, bytes: &[u8]) -> Result<Self, GatewayError> {
        let proposed: ProposedTransaction = decode(bytes, "ProposedTransaction")?;
        let signed = proposed.proposal.as_ref().ok_or_else(|| {
            GatewayError::InvalidArgument("ProposedTransaction has no proposal".into())
        })?;
        let proposal: ProposalProto = decode(&signed.proposal_bytes, "Proposal")?;
        let channel = channel_of_header(&proposal.header)?;
        Ok(Proposal {
            gateway,
            channel,
            proposed,
        })
    }

    fn signed(&self) -> &SignedProposal {
        self.proposed
            .proposal
            .as_ref()
            .expect("a proposal always holds its SignedProposal")
    }

    fn signed_mut(&mut self) -> &mut SignedProposal {
        self.proposed.proposal.get_or_insert_with(Default::default)
    }

    fn sign_if_possible(&mut self) -> Result<(), GatewayError> {
        match self
            .gateway
            .sign(&self.signed().proposal_bytes, "the proposal")
        {
            Ok(sig) => {
                self.signed_mut().signature = sig;
                Ok(())
            }
            Err(GatewayError::Unsigned(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn require_signature(&self) -> Result<(), GatewayError> {
        if self.signed().signature.is_empty() {
            return Err(GatewayError::Unsigned("the proposal"));
        }
        Ok(())
    }

    pub(crate) fn set_signature(&mut self, signature: Vec<u8>) {
        self.signed_mut().signature = signature;
    }

    /// The transaction ID.
    pub fn transaction_id(&self) -> &str {
        &self.proposed.transaction_id
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The serialized `gateway.ProposedTransaction` (for offline signing and storage).
    pub fn bytes(&self) -> Vec<u8> {
        encode(&self.proposed)
    }

    /// The digest to sign offline: hash of the proposal bytes.
    pub fn digest(&self) -> Vec<u8> {
        self.gateway.digest(&self.signed().proposal_bytes)
    }

    /// The signed proposal as sent to peers.
    pub fn signed_proposal(&self) -> &SignedProposal {
        self.signed()
    }

    /// Runs the proposal on a peer without ordering it and returns the chaincode's result.
    pub async fn evaluate(&self) -> Result<Vec<u8>, GatewayError> {
        self.evaluate_with(&CallOptions::default()).await
    }

    /// [`Proposal::evaluate`] with this invocation's own deadline (Go: `EvaluateWithContext`).
    pub async fn evaluate_with(&self, options: &CallOptions) -> Result<Vec<u8>, GatewayError> {
        self.require_signature()?;
        let request = EvaluateRequest {
            transaction_id: self.proposed.transaction_id.clone(),
            channel_id: self.channel.clone(),
            proposed_transaction: self.proposed.proposal.clone(),
            target_organizations: self.proposed.endorsing_organizations.clone(),
        };
        let timeout = options.time_allowed(self.gateway.options().timeouts.evaluate);
        let response = with_deadline(&self.gateway, timeout, &request, |ch| {
            let mut req = tonic::Request::new(request.clone());
            req.set_timeout(timeout);
            let mut client = self.gateway.gateway_client(ch);
            async move { client.evaluate(req).await }
        })
        .await
        .map_err(|s| {
            GatewayError::Evaluate(TransactionError {
                transaction_id: self.proposed.transaction_id.clone(),
                status: s.into(),
            })
        })?
        .into_inner();
        Ok(response.result.map(|r| r.payload).unwrap_or_default())
    }

    /// Collects endorsements and returns the prepared transaction (Go: `Endorse`).
    pub async fn endorse(&self) -> Result<Transaction, GatewayError> {
        self.endorse_with(&CallOptions::default()).await
    }

    /// [`Proposal::endorse`] with this invocation's own deadline (Go: `EndorseWithContext`).
    pub async fn endorse_with(&self, options: &CallOptions) -> Result<Transaction, GatewayError> {
        self.require_signature()?;
        let request = EndorseRequest {
            transaction_id: self.proposed.transaction_id.clone(),
            channel_id: self.channel.clone(),
            proposed_transaction: self.proposed.proposal.clone(),
            endorsing_organizations: self.proposed.endorsing_organizations.clone(),
        };
        let timeout = options.time_allowed(self.gateway.options().timeouts.endorse);
        let tx_id = &self.proposed.transaction_id;
        let response = with_deadline(&self.gateway, timeout, &request, |ch| {
            let mut req = tonic::Request::new(request.clone());
            req.set_timeout(timeout);
            let mut client = self.gateway.gateway_client(ch);
            async move { client.endorse(req).await }
        })
        .await
        .map_err(|s| {
            GatewayError::Endorse(TransactionError {
                transaction_id: tx_id.clone(),
                status: s.into(),
            })
        })?
        .into_inner();
        let envelope = response.prepared_transaction.ok_or_else(|| {
            GatewayError::InvalidResponse("EndorseResponse without a prepared transaction".into())
        })?;
        let mut tx = Transaction::new(
            self.gateway.clone(),
            self.channel.clone(),
            PreparedTransaction {
                transaction_id: tx_id.clone(),
                envelope: Some(envelope),
            },
        )?;
        tx.sign_if_possible()?;
        Ok(tx)
    }
}

/// The result a chaincode returned, read from a prepared transaction envelope.
fn result_of_envelope(envelope: &Envelope) -> Result<Vec<u8>, GatewayError> {
    let bad =
        |what: &str, e: prost::DecodeError| GatewayError::InvalidResponse(format!("{what}: {e}"));
    let payload = <Payload as prost::Message>::decode(envelope.payload.as_slice())
        .map_err(|e| bad("Payload", e))?;
    let tx = <TransactionProto as prost::Message>::decode(payload.data.as_slice())
        .map_err(|e| bad("Transaction", e))?;
    let action = tx
        .actions
        .first()
        .ok_or_else(|| GatewayError::InvalidResponse("transaction has no action".into()))?;
    let cap = <ChaincodeActionPayload as prost::Message>::decode(action.payload.as_slice())
        .map_err(|e| bad("ChaincodeActionPayload", e))?;
    let endorsed = cap.action.ok_or_else(|| {
        GatewayError::InvalidResponse("ChaincodeActionPayload has no action".into())
    })?;
    let prp = <ProposalResponsePayload as prost::Message>::decode(
        endorsed.proposal_response_payload.as_slice(),
    )
    .map_err(|e| bad("ProposalResponsePayload", e))?;
    let cc = <ChaincodeAction as prost::Message>::decode(prp.extension.as_slice())
        .map_err(|e| bad("ChaincodeAction", e))?;
    Ok(cc.response.map(|r| r.payload).unwrap_or_default())
}

/// An endorsed transaction, ready to be signed and submitted (Go: `client.Transaction`).
#[derive(Debug, Clone)]
pub struct Transaction {
    gateway: Gateway,
    channel: String,
    prepared: PreparedTransaction,
    result: Vec<u8>,
}

impl Transaction {
    fn new(
        gateway: Gateway,
        channel: String,
        prepared: PreparedTransaction,
    ) -> Result<Self, GatewayError> {
        let envelope = prepared.envelope.as_ref().ok_or_else(|| {
            GatewayError::InvalidArgument("PreparedTransaction has no envelope".into())
        })?;
        let result = result_of_envelope(envelope)?;
        Ok(Transaction {
            gateway,
            channel,
            prepared,
            result,
        })
    }

    pub(crate) fn from_bytes(gateway: Gateway, bytes: &[u8]) -> Result<Self, GatewayError> {
        let prepared: PreparedTransaction = decode(bytes, "PreparedTransaction")?;
        let envelope = prepared.envelope.as_ref().ok_or_else(|| {
            GatewayError::InvalidArgument("PreparedTransaction has no envelope".into())
        })?;
        let payload: Payload = decode(&envelope.payload, "Payload")?;
        let header = payload
            .header
            .ok_or_else(|| GatewayError::InvalidArgument("Payload has no header".into()))?;
        let ch: ChannelHeader = decode(&header.channel_header, "ChannelHeader")?;
        Self::new(gateway, ch.channel_id, prepared)
    }

    fn envelope(&self) -> &Envelope {
        self.prepared
            .envelope
            .as_ref()
            .expect("a transaction always holds its envelope")
    }

    fn sign_if_possible(&mut self) -> Result<(), GatewayError> {
        match self
            .gateway
            .sign(&self.envelope().payload, "the transaction")
        {
            Ok(sig) => {
                self.set_signature(sig);
                Ok(())
            }
            Err(GatewayError::Unsigned(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn set_signature(&mut self, signature: Vec<u8>) {
        if let Some(env) = self.prepared.envelope.as_mut() {
            env.signature = signature;
        }
    }

    /// The transaction ID.
    pub fn transaction_id(&self) -> &str {
        &self.prepared.transaction_id
    }

    /// The chaincode's result, as endorsed.
    pub fn result(&self) -> &[u8] {
        &self.result
    }

    /// The serialized `gateway.PreparedTransaction` (for offline signing and storage).
    pub fn bytes(&self) -> Vec<u8> {
        encode(&self.prepared)
    }

    /// The digest to sign offline: hash of the envelope payload.
    pub fn digest(&self) -> Vec<u8> {
        self.gateway.digest(&self.envelope().payload)
    }

    /// The envelope sent to the orderer.
    pub fn envelope_proto(&self) -> &Envelope {
        self.envelope()
    }

    /// Sends the transaction for ordering and returns its [`Commit`] (Go: `Submit`).
    pub async fn submit(&self) -> Result<Commit, GatewayError> {
        self.submit_with(&CallOptions::default()).await
    }

    /// [`Transaction::submit`] with this invocation's own deadline (Go: `SubmitWithContext`).
    pub async fn submit_with(&self, options: &CallOptions) -> Result<Commit, GatewayError> {
        self.send(options).await?;
        self.commit()
    }

    /// Sends the transaction for ordering and waits for its status from `watcher`'s block
    /// stream instead of a `CommitStatus` call of its own; falls back to `CommitStatus` when the
    /// stream has ended, follows another channel, or brings no status within the commit-status
    /// deadline.
    pub async fn submit_watched(&self, watcher: &CommitWatcher) -> Result<Status, GatewayError> {
        let watch = watcher.watch(&self.channel, &self.prepared.transaction_id);
        self.send(&CallOptions::default()).await?;
        let deadline = self.gateway.options().timeouts.commit_status;
        match watch.wait(deadline).await {
            Some(status) => Ok(status),
            None => self.commit()?.status().await,
        }
    }

    /// The signed request for this transaction's commit status.
    fn commit(&self) -> Result<Commit, GatewayError> {
        Commit::new(
            self.gateway.clone(),
            self.channel.clone(),
            self.prepared.transaction_id.clone(),
        )
    }

    async fn send(&self, options: &CallOptions) -> Result<(), GatewayError> {
        if self.envelope().signature.is_empty() {
            return Err(GatewayError::Unsigned("the transaction"));
        }
        let request = SubmitRequest {
            transaction_id: self.prepared.transaction_id.clone(),
            channel_id: self.channel.clone(),
            prepared_transaction: self.prepared.envelope.clone(),
        };
        let timeout = options.time_allowed(self.gateway.options().timeouts.submit);
        with_deadline(&self.gateway, timeout, &request, |ch| {
            let mut req = tonic::Request::new(request.clone());
            req.set_timeout(timeout);
            let mut client = self.gateway.gateway_client(ch);
            async move { client.submit(req).await }
        })
        .await
        .map_err(|s| {
            GatewayError::Submit(TransactionError {
                transaction_id: self.prepared.transaction_id.clone(),
                status: s.into(),
            })
        })?;
        Ok(())
    }
}

/// The outcome of a committed transaction (Go: `client.Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The transaction ID.
    pub transaction_id: String,
    /// The validation code.
    pub code: TxValidationCode,
    /// The block that holds the transaction.
    pub block_number: u64,
    /// Whether the code is `VALID`.
    pub successful: bool,
}

/// A submitted transaction whose commit status can be obtained (Go: `client.Commit`).
#[derive(Debug, Clone)]
pub struct Commit {
    gateway: Gateway,
    channel: String,
    transaction_id: String,
    signed: SignedCommitStatusRequest,
}

impl Commit {
    fn new(
        gateway: Gateway,
        channel: String,
        transaction_id: String,
    ) -> Result<Self, GatewayError> {
        let request = encode(&CommitStatusRequest {
            transaction_id: transaction_id.clone(),
            channel_id: channel.clone(),
            identity: gateway.identity().serialized().to_vec(),
        });
        let mut commit = Commit {
            gateway,
            channel,
            transaction_id,
            signed: SignedCommitStatusRequest {
                request,
                signature: Vec::new(),
            },
        };
        match commit
            .gateway
            .sign(&commit.signed.request, "the commit status request")
        {
            Ok(sig) => commit.signed.signature = sig,
            Err(GatewayError::Unsigned(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(commit)
    }

    pub(crate) fn from_bytes(gateway: Gateway, bytes: &[u8]) -> Result<Self, GatewayError> {
        let signed: SignedCommitStatusRequest = decode(bytes, "SignedCommitStatusRequest")?;
        let request: CommitStatusRequest = decode(&signed.request, "CommitStatusRequest")?;
        Ok(Commit {
            gateway,
            channel: request.channel_id,
            transaction_id: request.transaction_id,
            signed,
        })
    }

    pub(crate) fn set_signature(&mut self, signature: Vec<u8>) {
        self.signed.signature = signature;
    }

    /// The transaction ID.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The serialized `gateway.SignedCommitStatusRequest` (for offline signing and storage).
    pub fn bytes(&self) -> Vec<u8> {
        encode(&self.signed)
    }

    /// The digest to sign offline: hash of the commit status request bytes.
    pub fn digest(&self) -> Vec<u8> {
        self.gateway.digest(&self.signed.request)
    }

    /// Waits for the transaction to commit and returns its status (Go: `Status`).
    pub async fn status(&self) -> Result<Status, GatewayError> {
        self.status_with(&CallOptions::default()).await
    }

    /// [`Commit::status`] with this invocation's own deadline (Go: `StatusWithContext`). When
    /// it expires the transaction may still commit: ask again.
    pub async fn status_with(&self, options: &CallOptions) -> Result<Status, GatewayError> {
        if self.signed.signature.is_empty() {
            return Err(GatewayError::Unsigned("the commit status request"));
        }
        let timeout = options.time_allowed(self.gateway.options().timeouts.commit_status);
        let response = with_deadline(&self.gateway, timeout, &self.signed, |ch| {
            let mut req = tonic::Request::new(self.signed.clone());
            req.set_timeout(timeout);
            let mut client = self.gateway.gateway_client(ch);
            async move { client.commit_status(req).await }
        })
        .await
        .map_err(|s| {
            GatewayError::CommitStatus(TransactionError {
                transaction_id: self.transaction_id.clone(),
                status: s.into(),
            })
        })?
        .into_inner();
        let code = TxValidationCode::try_from(response.result).map_err(|_| {
            GatewayError::InvalidResponse(format!(
                "unknown transaction validation code {}",
                response.result
            ))
        })?;
        Ok(Status {
            transaction_id: self.transaction_id.clone(),
            code,
            block_number: response.block_number,
            successful: code == TxValidationCode::Valid,
        })
    }
}
