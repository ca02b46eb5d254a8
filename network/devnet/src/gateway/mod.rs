//! The peer's Gateway service (`gateway.Gateway`: Evaluate, Endorse, Submit, CommitStatus,
//! ChaincodeEvents), as Fabric's `internal/pkg/gateway` implements it, with the same gRPC status
//! codes, messages and `gateway.ErrorDetail` entries (endpoint address, MSP ID, message).
//!
//! * **Evaluate** runs the proposal on one peer that has the chaincode: the gateway's own peer
//!   first, then its organisation's, then other organisations' peers by decreasing ledger
//!   height. A peer-side failure (status 500 without payload) moves on to the next peer; a
//!   chaincode error response answers `UNKNOWN` "evaluate call to endorser returned error:
//!   chaincode response <status>, <message>".
//! * **Endorse** without endorsing organisations first endorses on the local organisation's
//!   peer, then derives the endorsement plan from the response: the chaincode-level policy of
//!   each written namespace and the key-level policy (`VALIDATION_PARAMETER`) of each written key
//!   that has one — exactly what the committer will check — and collects endorsements from the
//!   smallest sets of organisations satisfying them (sets containing the first endorser's
//!   organisation first), trying the next peer of an organisation when one fails. With
//!   endorsing organisations given, one peer of each is asked. The prepared transaction is
//!   assembled as Fabric's gateway does (proposal payload without the transient map, one action,
//!   endorsements deduplicated by endorser) and returned unsigned.
//! * **Submit** broadcasts the signed envelope to the orderer.
//! * **CommitStatus** checks the signed request against `/Channel/Application/Readers` and waits
//!   for the transaction to commit on the local peer's ledger.
//! * **ChaincodeEvents** streams the events of valid transactions of one chaincode, block by
//!   block, from a start position or after a transaction ID.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use fabric_protos::common::{Block, Envelope, Header, HeaderType, Payload, Status};
use fabric_protos::gateway::gateway_server::{Gateway, GatewayServer};
use fabric_protos::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, CommitStatusResponse,
    EndorseRequest, EndorseResponse, ErrorDetail, EvaluateRequest, EvaluateResponse,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest, SubmitResponse,
};
use fabric_protos::orderer::{seek_position, BroadcastResponse};
use fabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeEvent,
    ChaincodeInvocationSpec, ChaincodeProposalPayload, Endorsement, Proposal, ProposalResponse,
    ProposalResponsePayload, SignedProposal, Transaction, TransactionAction, TxValidationCode,
};
use prost::Message;
use tokio_stream::Stream;
use tonic::{Code, Status as RpcStatus};

use crate::committer::{ChannelContext, EndorsementPolicy};
use crate::ledger::{Ledger, TxRwSet, VALIDATION_PARAMETER};
use crate::msp::policy::SignaturePolicyRule;
use crate::msp::CheckedIdentity;

/// A boxed future, for the object-safe peer and orderer interfaces.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One channel of a peer, as the gateway reads it.
#[derive(Debug, Clone)]
pub struct ChannelView {
    /// The peer's ledger of the channel.
    pub ledger: Ledger,
    /// MSPs, policies and chaincode definitions of the channel.
    pub context: Arc<ChannelContext>,
}

/// An endorsing peer of the network, as the gateway reaches it.
pub trait EndorsingPeer: Send + Sync + 'static {
    /// The peer's organisation.
    fn msp_id(&self) -> String;
    /// `host:port` of the peer (reported in error details).
    fn address(&self) -> String;
    /// The peer's serialized signing identity (what its endorsements carry).
    fn identity(&self) -> Vec<u8>;
    /// The peer's view of a channel it has joined.
    fn channel(&self, channel: &str) -> Option<ChannelView>;
    /// The member organisations of a private data collection of `chaincode` on `channel`, or
    /// `None` when the collection is unknown. The default knows implicit organisation
    /// collections only.
    fn collection_members(
        &self,
        channel: &str,
        chaincode: &str,
        collection: &str,
    ) -> Option<Vec<String>> {
        let _ = (channel, chaincode);
        collection
            .strip_prefix("_implicit_org_")
            .map(|m| vec![m.to_string()])
    }
    /// Runs the endorser's `ProcessProposal`.
    fn process_proposal(
        &self,
        proposal: SignedProposal,
    ) -> BoxFuture<Result<ProposalResponse, RpcStatus>>;
}

/// The ordering service, as the gateway reaches it.
pub trait OrderingService: Send + Sync + 'static {
    /// The orderer's organisation.
    fn msp_id(&self) -> String;
    /// `host:port` of the orderer (reported in error details).
    fn address(&self) -> String;
    /// Whether the orderer serves the channel.
    fn serves(&self, channel: &str) -> bool;
    /// Broadcasts one envelope and returns the orderer's answer.
    fn broadcast(&self, envelope: Envelope) -> BoxFuture<Result<BroadcastResponse, String>>;
}

impl OrderingService for crate::orderer::Orderer {
    fn msp_id(&self) -> String {
        crate::orderer::Orderer::msp_id(self).to_string()
    }
    fn address(&self) -> String {
        crate::orderer::Orderer::address(self).to_string()
    }
    fn serves(&self, channel: &str) -> bool {
        self.chain(channel).is_some()
    }
    fn broadcast(&self, envelope: Envelope) -> BoxFuture<Result<BroadcastResponse, String>> {
        let o = self.clone();
        Box::pin(async move { Ok(crate::orderer::Orderer::broadcast(&o, envelope)) })
    }
}

/// Timeouts of the gateway (Fabric's `peer.gateway` defaults).
#[derive(Debug, Clone, Copy)]
pub struct GatewayOptions {
    /// Per endorsement request.
    pub endorsement_timeout: Duration,
    /// Per broadcast to the orderer.
    pub broadcast_timeout: Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            endorsement_timeout: Duration::from_secs(30),
            broadcast_timeout: Duration::from_secs(30),
        }
    }
}

/// The Gateway service of one peer.
#[derive(Clone)]
pub struct GatewayService {
    local: Arc<dyn EndorsingPeer>,
    peers: Arc<Vec<Arc<dyn EndorsingPeer>>>,
    orderer: Arc<dyn OrderingService>,
    options: GatewayOptions,
}

impl std::fmt::Debug for GatewayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayService")
            .field("local", &self.local.address())
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

/// An endorser the gateway can use for one chaincode on one channel.
#[derive(Clone)]
struct Endorser {
    peer: Arc<dyn EndorsingPeer>,
    msp_id: String,
    address: String,
    height: u64,
}

fn error_detail(e: &Endorser, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        address: e.address.clone(),
        msp_id: e.msp_id.clone(),
        message: message.into(),
    }
}

/// A gRPC status with `gateway.ErrorDetail` entries in its details, as Fabric's `newRpcError`.
pub fn rpc_error(code: Code, message: impl Into<String>, details: &[ErrorDetail]) -> RpcStatus {
    let message = message.into();
    if details.is_empty() {
        return RpcStatus::new(code, message);
    }
    let st = fabric_protos::google::rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: details
            .iter()
            .map(|d| prost_types::Any {
                type_url: "type.googleapis.com/gateway.ErrorDetail".into(),
                value: d.encode_to_vec(),
            })
            .collect(),
    };
    RpcStatus::with_details(code, message, st.encode_to_vec().into())
}

/// A gRPC code as grpc-go prints it.
fn go_code_name(code: Code) -> String {
    match code {
        Code::Cancelled => "Canceled".to_string(),
        Code::Ok => "OK".to_string(),
        other => format!("{other:?}"),
    }
}

/// How the gateway reacts to one endorser's answer (Fabric's `responseStatus`): code, message,
/// retry on another peer.
fn response_status(r: &Result<ProposalResponse, RpcStatus>, local: bool) -> (Code, String, bool) {
    match r {
        // The gateway's own endorser is called in-process and returns its error together with
        // a response: a client error, no retry.
        Err(e) if local => (Code::FailedPrecondition, e.message().to_string(), false),
        // Another peer is reached over gRPC, where only the error arrives: Fabric treats it as
        // an unavailable peer and tries the next one.
        Err(e) => (
            Code::Unavailable,
            format!(
                "rpc error: code = {} desc = {}",
                go_code_name(e.code()),
                e.message()
            ),
            true,
        ),
        Ok(pr) => {
            let resp = pr.response.clone().unwrap_or_default();
            if resp.status < 200 || resp.status >= 400 {
                if pr.payload.is_empty() && resp.status == 500 {
                    (Code::Aborted, resp.message, true)
                } else {
                    (
                        Code::Unknown,
                        format!("chaincode response {}, {}", resp.status, resp.message),
                        false,
                    )
                }
            } else {
                (Code::Ok, String::new(), false)
            }
        }
    }
}

struct ParsedProposal {
    header: Header,
    payload: ChaincodeProposalPayload,
    channel: String,
    chaincode: String,
    has_transient: bool,
}

fn parse_proposal(sp: Option<&SignedProposal>) -> Result<ParsedProposal, String> {
    let sp = sp.ok_or_else(|| "a signed proposal is required".to_string())?;
    let proposal = Proposal::decode(sp.proposal_bytes.as_slice()).map_err(|e| e.to_string())?;
    let header = Header::decode(proposal.header.as_slice()).map_err(|e| e.to_string())?;
    let chdr = fabric_protos::common::ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| e.to_string())?;
    let payload =
        ChaincodeProposalPayload::decode(proposal.payload.as_slice()).map_err(|e| e.to_string())?;
    let spec =
        ChaincodeInvocationSpec::decode(payload.input.as_slice()).map_err(|e| e.to_string())?;
    if chdr.channel_id.is_empty() {
        return Err("no channel id provided".into());
    }
    let ch = &chdr.channel_id;
    let cs = spec
        .chaincode_spec
        .ok_or_else(|| format!("no chaincode spec is provided, channel id [{ch}]"))?;
    let id = cs
        .chaincode_id
        .ok_or_else(|| format!("no chaincode id is provided, channel id [{ch}]"))?;
    if id.name.is_empty() {
        return Err(format!("no chaincode name is provided, channel id [{ch}]"));
    }
    Ok(ParsedProposal {
        has_transient: !payload.transient_map.is_empty(),
        header,
        payload,
        channel: chdr.channel_id,
        chaincode: id.name,
    })
}

/// The chaincode response payload inside a proposal response (what Evaluate returns).
fn result_of(pr: &ProposalResponse) -> Option<Vec<u8>> {
    let prp = ProposalResponsePayload::decode(pr.payload.as_slice()).ok()?;
    let action = ChaincodeAction::decode(prp.extension.as_slice()).ok()?;
    Some(action.response.unwrap_or_default().payload)
}

/// Fabric's `prepareTransaction`: the unsigned transaction envelope.
fn prepare_transaction(
    header: &Header,
    payload: &ChaincodeProposalPayload,
    prp: Vec<u8>,
    endorsements: Vec<Endorsement>,
) -> Envelope {
    let cpp = ChaincodeProposalPayload {
        input: payload.input.clone(),
        transient_map: Default::default(),
    };
    let cap = ChaincodeActionPayload {
        chaincode_proposal_payload: cpp.encode_to_vec(),
        action: Some(ChaincodeEndorsedAction {
            proposal_response_payload: prp,
            endorsements,
        }),
    };
    let tx = Transaction {
        actions: vec![TransactionAction {
            header: header.signature_header.clone(),
            payload: cap.encode_to_vec(),
        }],
    };
    Envelope {
        payload: Payload {
            header: Some(header.clone()),
            data: tx.encode_to_vec(),
        }
        .encode_to_vec(),
        signature: Vec::new(),
    }
}

fn unique_endorsements(e: Vec<Endorsement>) -> Vec<Endorsement> {
    let mut seen = HashSet::new();
    e.into_iter()
        .filter(|x| seen.insert(x.endorser.clone()))
        .collect()
}

/// Signature policies to satisfy, deduplicated by their bytes or path.
#[derive(Default)]
struct Requirements {
    policies: Vec<EndorsementPolicy>,
    seen: HashSet<String>,
}

impl Requirements {
    fn add(&mut self, key: String, p: EndorsementPolicy) {
        if self.seen.insert(key) {
            self.policies.push(p);
        }
    }
}

impl GatewayService {
    /// A gateway on `local`, reaching every peer of `peers` (the local one included) and the
    /// orderer.
    pub fn new(
        local: Arc<dyn EndorsingPeer>,
        peers: Vec<Arc<dyn EndorsingPeer>>,
        orderer: Arc<dyn OrderingService>,
        options: GatewayOptions,
    ) -> Self {
        GatewayService {
            local,
            peers: Arc::new(peers),
            orderer,
            options,
        }
    }

    /// The tonic server for this service.
    pub fn server(self) -> GatewayServer<Self> {
        GatewayServer::new(self)
            .max_decoding_message_size(crate::orderer::MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(crate::orderer::MAX_GRPC_MESSAGE_BYTES)
    }

    /// Endorsers by organisation that have `chaincode` defined on `channel`: in each
    /// organisation by decreasing height, the local peer first among equals.
    fn endorsers_by_org(&self, channel: &str, chaincode: &str) -> BTreeMap<String, Vec<Endorser>> {
        let local_addr = self.local.address();
        let mut by_org: BTreeMap<String, Vec<Endorser>> = BTreeMap::new();
        for p in self.peers.iter() {
            let Some(view) = p.channel(channel) else {
                continue;
            };
            if view.context.chaincode_policy(chaincode).is_none() {
                continue;
            }
            let e = Endorser {
                msp_id: p.msp_id(),
                address: p.address(),
                height: crate::deliver::current_height(&view.ledger),
                peer: p.clone(),
            };
            by_org.entry(e.msp_id.clone()).or_default().push(e);
        }
        for es in by_org.values_mut() {
            es.sort_by(|a, b| {
                b.height
                    .cmp(&a.height)
                    .then_with(|| (b.address == local_addr).cmp(&(a.address == local_addr)))
            });
        }
        by_org
    }

    fn is_local(&self, e: &Endorser) -> bool {
        e.address == self.local.address()
    }

    async fn call(&self, e: &Endorser, sp: &SignedProposal) -> Result<ProposalResponse, RpcStatus> {
        match tokio::time::timeout(
            self.options.endorsement_timeout,
            e.peer.process_proposal(sp.clone()),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(RpcStatus::deadline_exceeded("endorsement timeout expired")),
        }
    }

    /// The policies the committer will check for an endorsement result with `rwset`.
    fn requirements(
        &self,
        view: &ChannelView,
        chaincode: &str,
        rwset: &TxRwSet,
    ) -> Result<Requirements, String> {
        let mut req = Requirements::default();
        let snap = view.ledger.snapshot().map_err(|e| e.to_string())?;
        let cc_policy = |ns: &str, req: &mut Requirements| -> Result<(), String> {
            let p = view
                .context
                .chaincode_policy(ns)
                .ok_or_else(|| format!("chaincode {ns} is not defined"))?;
            req.add(format!("cc:{ns}"), p);
            Ok(())
        };
        let key_policy = |meta: Option<&BTreeMap<String, Vec<u8>>>,
                          req: &mut Requirements|
         -> Result<bool, String> {
            let Some(vp) = meta.and_then(|m| m.get(VALIDATION_PARAMETER)) else {
                return Ok(false);
            };
            let rule = SignaturePolicyRule::from_bytes(vp).map_err(|e| e.to_string())?;
            req.add(
                format!("vp:{}", hex::encode(vp)),
                EndorsementPolicy::Signature(Arc::new(rule)),
            );
            Ok(true)
        };
        for ns in &rwset.ns_rwsets {
            let keys = ns
                .kv
                .writes
                .iter()
                .map(|w| w.key.as_str())
                .chain(ns.kv.metadata_writes.iter().map(|w| w.key.as_str()));
            for key in keys {
                let v = snap
                    .get_state(&ns.namespace, key)
                    .map_err(|e| e.to_string())?;
                if !key_policy(v.as_ref().map(|v| &v.metadata), &mut req)? {
                    cc_policy(&ns.namespace, &mut req)?;
                }
            }
            for c in &ns.coll_hashed {
                let hashes = c
                    .hashed
                    .hashed_writes
                    .iter()
                    .map(|w| w.key_hash.as_slice())
                    .chain(
                        c.hashed
                            .metadata_writes
                            .iter()
                            .map(|w| w.key_hash.as_slice()),
                    );
                for kh in hashes {
                    let v = snap
                        .get_private_hash(&ns.namespace, &c.collection, kh)
                        .map_err(|e| e.to_string())?;
                    if !key_policy(v.as_ref().map(|v| &v.metadata), &mut req)? {
                        cc_policy(&ns.namespace, &mut req)?;
                    }
                }
            }
        }
        if req.policies.is_empty() {
            // A transaction without writes is checked against the invoked chaincode's policy.
            cc_policy(chaincode, &mut req)?;
        }
        Ok(req)
    }

    /// Sets of organisations (smallest first, those containing `preferred` first among equals)
    /// whose peers' endorsements satisfy every requirement.
    fn layouts(
        &self,
        view: &ChannelView,
        by_org: &BTreeMap<String, Vec<Endorser>>,
        req: &Requirements,
        preferred: &str,
    ) -> Vec<Vec<String>> {
        let orgs: Vec<&String> = by_org.keys().collect();
        let ids: BTreeMap<&String, Arc<CheckedIdentity>> = orgs
            .iter()
            .filter_map(|o| {
                let e = by_org[*o].first()?;
                view.context
                    .msps
                    .deserialize(&e.peer.identity())
                    .ok()
                    .map(|id| (*o, id))
            })
            .collect();
        let n = orgs.len().min(16);
        let mut out: Vec<Vec<String>> = Vec::new();
        for mask in 1u32..(1u32 << n) {
            let set: Vec<&String> = (0..n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| orgs[i])
                .collect();
            let chosen: Vec<Arc<CheckedIdentity>> =
                set.iter().filter_map(|o| ids.get(o).cloned()).collect();
            if chosen.len() != set.len() {
                continue;
            }
            let ok = req
                .policies
                .iter()
                .all(|p| evaluate(&view.context, p, &chosen));
            if ok {
                out.push(set.into_iter().cloned().collect());
            }
        }
        // Keep minimal sets only (no strict superset of another satisfying set).
        let minimal: Vec<Vec<String>> = out
            .iter()
            .filter(|s| {
                !out.iter()
                    .any(|o| o.len() < s.len() && o.iter().all(|x| s.contains(x)))
            })
            .cloned()
            .collect();
        let mut minimal = minimal;
        minimal.sort_by_key(|s| (s.len(), !s.iter().any(|o| o == preferred)));
        minimal
    }
}

impl GatewayService {
    /// The collections a read-write set touches and the organisations that are members of
    /// all of them.
    fn collection_scope(
        &self,
        first: &Endorser,
        channel: &str,
        rwset: &TxRwSet,
    ) -> (Vec<String>, BTreeSet<String>) {
        let mut names = Vec::new();
        let mut allowed: Option<BTreeSet<String>> = None;
        for ns in &rwset.ns_rwsets {
            for c in &ns.coll_hashed {
                names.push(c.collection.clone());
                let members: BTreeSet<String> = first
                    .peer
                    .collection_members(channel, &ns.namespace, &c.collection)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                allowed = Some(match allowed {
                    None => members,
                    Some(a) => a.intersection(&members).cloned().collect(),
                });
            }
        }
        (names, allowed.unwrap_or_default())
    }
}

/// The read-write set of a proposal response (empty when the chaincode action has no results).
fn response_rwset(pr: &ProposalResponse) -> Result<TxRwSet, String> {
    let prp = ProposalResponsePayload::decode(pr.payload.as_slice()).map_err(|e| e.to_string())?;
    let action = ChaincodeAction::decode(prp.extension.as_slice()).map_err(|e| e.to_string())?;
    if action.results.is_empty() {
        return Ok(TxRwSet::default());
    }
    TxRwSet::decode(&action.results).map_err(|e| e.to_string())
}

fn evaluate(ctx: &ChannelContext, p: &EndorsementPolicy, ids: &[Arc<CheckedIdentity>]) -> bool {
    match p {
        EndorsementPolicy::Signature(rule) => rule.evaluate(&ctx.msps, ids),
        EndorsementPolicy::ChannelConfig(path) => {
            ctx.policies.evaluate(path, &ctx.msps, ids).unwrap_or(false)
        }
    }
}

/// Collected endorsements of a plan.
struct Collected {
    payload: Option<Vec<u8>>,
    by_org: BTreeMap<String, Endorsement>,
    failed_orgs: BTreeSet<String>,
    details: Vec<ErrorDetail>,
}

impl Collected {
    /// Records a successful response (Fabric's `plan.processEndorsement`); false when its
    /// payload differs from the first one.
    fn add(&mut self, e: &Endorser, pr: &ProposalResponse) -> bool {
        match &self.payload {
            None => self.payload = Some(pr.payload.clone()),
            Some(p) if *p != pr.payload => {
                self.details
                    .push(error_detail(e, "ProposalResponsePayloads do not match"));
                return false;
            }
            Some(_) => {}
        }
        if let Some(end) = &pr.endorsement {
            self.by_org.insert(e.msp_id.clone(), end.clone());
        }
        true
    }
}

impl GatewayService {
    /// Asks the peers of `org` in turn until one endorses.
    async fn endorse_org(
        &self,
        endorsers: &[Endorser],
        sp: &SignedProposal,
    ) -> (Option<(Endorser, ProposalResponse)>, Vec<ErrorDetail>) {
        let mut details = Vec::new();
        for e in endorsers {
            let r = self.call(e, sp).await;
            let (code, msg, _) = response_status(&r, self.is_local(e));
            if code == Code::Ok {
                if let Ok(pr) = r {
                    return (Some((e.clone(), pr)), details);
                }
            }
            details.push(error_detail(e, msg));
        }
        (None, details)
    }

    async fn collect_layouts(
        &self,
        layouts: Vec<Vec<String>>,
        by_org: &BTreeMap<String, Vec<Endorser>>,
        sp: &SignedProposal,
        mut got: Collected,
    ) -> Result<Collected, RpcStatus> {
        for layout in layouts {
            if layout.iter().any(|o| got.failed_orgs.contains(o)) {
                continue;
            }
            let missing: Vec<&String> = layout
                .iter()
                .filter(|o| !got.by_org.contains_key(*o))
                .collect();
            let calls = missing.iter().map(|o| {
                let es = by_org.get(*o).cloned().unwrap_or_default();
                let org = (*o).clone();
                async move { (org, self.endorse_org(&es, sp).await) }
            });
            let results = futures_join_all(calls).await;
            let mut complete = true;
            for (org, (ok, details)) in results {
                got.details.extend(details);
                match ok {
                    Some((e, pr)) => {
                        if !got.add(&e, &pr) {
                            got.failed_orgs.insert(org);
                            complete = false;
                        }
                    }
                    None => {
                        got.failed_orgs.insert(org);
                        complete = false;
                    }
                }
            }
            if complete {
                got.by_org.retain(|o, _| layout.contains(o));
                return Ok(got);
            }
        }
        Err(rpc_error(
            Code::Aborted,
            "failed to collect enough transaction endorsements, see attached details for more info",
            &got.details,
        ))
    }
}

/// Runs futures concurrently and returns their outputs in order.
async fn futures_join_all<F: Future>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let fs: Vec<Pin<Box<F>>> = fs.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = fs.iter().map(|_| None).collect();
    let mut fs: Vec<Option<Pin<Box<F>>>> = fs.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in fs.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        outs[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outs.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

fn block_events(block: &Block) -> Vec<ChaincodeEvent> {
    let filter = block
        .metadata
        .as_ref()
        .and_then(|m| {
            m.metadata
                .get(fabric_protos::common::BlockMetadataIndex::TransactionsFilter as usize)
        })
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, d) in block.data.iter().flat_map(|d| d.data.iter()).enumerate() {
        if filter.get(i).copied() != Some(TxValidationCode::Valid as u8) {
            continue;
        }
        let Ok(tx) = fabric_common::tx::unpack_envelope_bytes(d) else {
            continue;
        };
        if tx.channel_header.r#type != HeaderType::EndorserTransaction as i32 {
            continue;
        }
        for a in &tx.actions {
            if a.chaincode_action.events.is_empty() {
                continue;
            }
            if let Ok(ev) = ChaincodeEvent::decode(a.chaincode_action.events.as_slice()) {
                if !ev.chaincode_id.is_empty() {
                    out.push(ev);
                }
            }
        }
    }
    out
}

type EventStream =
    Pin<Box<dyn Stream<Item = Result<ChaincodeEventsResponse, RpcStatus>> + Send + 'static>>;

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn evaluate(
        &self,
        request: tonic::Request<EvaluateRequest>,
    ) -> Result<tonic::Response<EvaluateResponse>, RpcStatus> {
        let req = request.into_inner();
        let p = parse_proposal(req.proposed_transaction.as_ref()).map_err(|e| {
            RpcStatus::invalid_argument(format!("failed to unpack transaction proposal: {e}"))
        })?;
        let sp = req.proposed_transaction.expect("parsed above");
        let local_msp = self.local.msp_id();
        let mut target = req.target_organizations.clone();
        let protected = p.has_transient && target.is_empty();
        if protected {
            target = vec![local_msp.clone()];
        }
        let by_org = self.endorsers_by_org(&p.channel, &p.chaincode);
        let orgs: Vec<String> = if target.is_empty() {
            by_org.keys().cloned().collect()
        } else {
            target
        };
        let mut local = Vec::new();
        let mut others = Vec::new();
        for org in &orgs {
            if let Some(es) = by_org.get(org) {
                if *org == local_msp {
                    local = es.clone();
                } else {
                    others.extend(es.iter().cloned());
                }
            }
        }
        others.sort_by_key(|e| std::cmp::Reverse(e.height));
        let all: Vec<Endorser> = local.into_iter().chain(others).collect();
        if all.is_empty() {
            let msg = format!(
                "no peers available to evaluate chaincode {} in channel {}",
                p.chaincode, p.channel
            );
            if protected {
                return Err(RpcStatus::failed_precondition(format!(
                    "no endorsers found in the gateway's organization; retry specifying target organization(s) to protect transient data: {msg}"
                )));
            }
            return Err(RpcStatus::failed_precondition(msg));
        }
        let mut details = Vec::new();
        let mut last_code = Code::Unavailable;
        for e in &all {
            let r = self.call(e, &sp).await;
            let (code, msg, retry) = response_status(&r, self.is_local(e));
            if let (Code::Ok, Ok(pr)) = (code, &r) {
                let mut response = pr.response.clone().unwrap_or_default();
                if let Some(result) = result_of(pr) {
                    response.payload = result;
                }
                return Ok(tonic::Response::new(EvaluateResponse {
                    result: Some(response),
                }));
            }
            details.push(error_detail(e, msg.clone()));
            if !retry {
                return Err(rpc_error(
                    code,
                    format!("evaluate call to endorser returned error: {msg}"),
                    &details,
                ));
            }
            last_code = code;
        }
        // Every peer failed in a way worth retrying elsewhere.
        Err(rpc_error(
            last_code,
            "failed to evaluate transaction, see attached details for more info",
            &details,
        ))
    }

    async fn endorse(
        &self,
        request: tonic::Request<EndorseRequest>,
    ) -> Result<tonic::Response<EndorseResponse>, RpcStatus> {
        let req = request.into_inner();
        let sp = req.proposed_transaction.clone().unwrap_or_default();
        if sp.proposal_bytes.is_empty() {
            return Err(RpcStatus::invalid_argument(
                "the proposed transaction must contain a signed proposal",
            ));
        }
        let p = parse_proposal(Some(&sp)).map_err(RpcStatus::invalid_argument)?;
        let by_org = self.endorsers_by_org(&p.channel, &p.chaincode);
        let local_msp = self.local.msp_id();

        let collected = if !req.endorsing_organizations.is_empty() {
            let missing: Vec<&str> = req
                .endorsing_organizations
                .iter()
                .filter(|o| !by_org.contains_key(*o))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(RpcStatus::unavailable(format!(
                    "failed to find any endorsing peers for org(s): {}",
                    missing.join(", ")
                )));
            }
            let layout: Vec<String> = req.endorsing_organizations.clone();
            let got = Collected {
                payload: None,
                by_org: BTreeMap::new(),
                failed_orgs: BTreeSet::new(),
                details: Vec::new(),
            };
            self.collect_layouts(vec![layout], &by_org, &sp, got)
                .await?
        } else {
            // 1. The first endorser: the gateway's organisation, else any peer with the chaincode.
            let first_group: Vec<Endorser> = match by_org.get(&local_msp) {
                Some(es) => es.clone(),
                None => {
                    if p.has_transient {
                        return Err(RpcStatus::failed_precondition(
                            "no endorsers found in the gateway's organization; retry specifying endorsing organization(s) to protect transient data",
                        ));
                    }
                    let mut all: Vec<Endorser> = by_org.values().flatten().cloned().collect();
                    all.sort_by_key(|e| std::cmp::Reverse(e.height));
                    if all.is_empty() {
                        return Err(RpcStatus::failed_precondition(format!(
                            "no combination of peers can be derived which satisfy the endorsement policy: chaincode {} is not defined on channel {}",
                            p.chaincode, p.channel
                        )));
                    }
                    all.truncate(1);
                    all
                }
            };
            let (first, details) = self.endorse_org(&first_group, &sp).await;
            let Some((first_e, first_pr)) = first else {
                return Err(rpc_error(
                    Code::Aborted,
                    "failed to endorse transaction, see attached details for more info",
                    &details,
                ));
            };
            // 2. The plan from the first response's writes.
            let view = first_e.peer.channel(&p.channel).ok_or_else(|| {
                RpcStatus::failed_precondition(format!("channel {} not found", p.channel))
            })?;
            let (reqs, rwset) = response_rwset(&first_pr)
                .and_then(|rwset| {
                    let reqs = self.requirements(&view, &p.chaincode, &rwset)?;
                    Ok((reqs, rwset))
                })
                .map_err(|e| {
                    RpcStatus::failed_precondition(format!(
                        "no combination of peers can be derived which satisfy the endorsement policy: {e}"
                    ))
                })?;
            let mut layouts = self.layouts(&view, &by_org, &reqs, &first_e.msp_id);
            if p.has_transient {
                // Transient data goes only to organisations in the distribution of every
                // collection the transaction touches (Fabric asks discovery for collection
                // members only when transient data is involved).
                let (collections, allowed) = self.collection_scope(&first_e, &p.channel, &rwset);
                if !collections.is_empty() {
                    let unrestricted = !layouts.is_empty();
                    layouts.retain(|l| l.iter().all(|o| allowed.contains(o)));
                    if layouts.is_empty() && unrestricted {
                        return Err(RpcStatus::failed_precondition(format!(
                            "requires endorsement from organisation(s) that are not in the distribution policy of the private data collection(s): [{}]; retry specifying trusted endorsing organizations to protect transient data",
                            collections.join(" ")
                        )));
                    }
                }
            }
            if layouts.is_empty() {
                return Err(RpcStatus::failed_precondition(
                    "no combination of peers can be derived which satisfy the endorsement policy: cannot satisfy any principal combination",
                ));
            }
            let mut got = Collected {
                payload: None,
                by_org: BTreeMap::new(),
                failed_orgs: BTreeSet::new(),
                details,
            };
            got.add(&first_e, &first_pr);
            self.collect_layouts(layouts, &by_org, &sp, got).await?
        };
        let prp = collected.payload.clone().unwrap_or_default();
        let endorsements = unique_endorsements(collected.by_org.into_values().collect());
        let env = prepare_transaction(&p.header, &p.payload, prp, endorsements);
        Ok(tonic::Response::new(EndorseResponse {
            prepared_transaction: Some(env),
        }))
    }

    async fn submit(
        &self,
        request: tonic::Request<SubmitRequest>,
    ) -> Result<tonic::Response<SubmitResponse>, RpcStatus> {
        let req = request.into_inner();
        let txn = req
            .prepared_transaction
            .ok_or_else(|| RpcStatus::invalid_argument("a prepared transaction is required"))?;
        if txn.signature.is_empty() {
            return Err(RpcStatus::invalid_argument(
                "prepared transaction must be signed",
            ));
        }
        if !self.orderer.serves(&req.channel_id) {
            return Err(RpcStatus::failed_precondition(format!(
                "failed to get config for channel [{}]: channel does not exist",
                req.channel_id
            )));
        }
        let detail = |message: String| ErrorDetail {
            address: self.orderer.address(),
            msp_id: self.orderer.msp_id(),
            message,
        };
        let r =
            tokio::time::timeout(self.options.broadcast_timeout, self.orderer.broadcast(txn)).await;
        let details = match r {
            Err(_) => {
                return Err(RpcStatus::deadline_exceeded(
                    "submit timeout expired while broadcasting to ordering service",
                ))
            }
            Ok(Err(e)) => vec![detail(e)],
            Ok(Ok(resp)) => {
                if resp.status == Status::Success as i32 {
                    return Ok(tonic::Response::new(SubmitResponse {}));
                }
                let name = Status::try_from(resp.status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("UNKNOWN");
                let msg = format!(
                    "received unsuccessful response from orderer: status={name}, info={}",
                    resp.info
                );
                if (400..500).contains(&resp.status) {
                    return Err(rpc_error(Code::Aborted, msg, &[]));
                }
                vec![detail(msg)]
            }
        };
        Err(rpc_error(
            Code::Unavailable,
            "no orderers could successfully process transaction",
            &details,
        ))
    }

    async fn commit_status(
        &self,
        request: tonic::Request<SignedCommitStatusRequest>,
    ) -> Result<tonic::Response<CommitStatusResponse>, RpcStatus> {
        let signed = request.into_inner();
        if signed.request.is_empty() {
            return Err(RpcStatus::invalid_argument(
                "a commit status request is required",
            ));
        }
        let req = CommitStatusRequest::decode(signed.request.as_slice())
            .map_err(|e| RpcStatus::invalid_argument(format!("invalid status request: {e}")))?;
        let view = self.check_acl(
            &req.channel_id,
            &req.identity,
            &signed.request,
            &signed.signature,
        )?;
        let ledger = view.ledger;
        // Subscribe before looking so a commit in between is not missed.
        let mut events = ledger.subscribe();
        loop {
            match ledger.tx_location(&req.transaction_id) {
                Ok(Some(loc)) => {
                    return Ok(tonic::Response::new(CommitStatusResponse {
                        result: loc.code,
                        block_number: loc.block,
                    }))
                }
                Ok(None) => {}
                Err(e) => return Err(RpcStatus::aborted(e.to_string())),
            }
            match events.recv().await {
                Ok(ev) => {
                    if let Some(i) = ev.txs.iter().position(|(t, _)| *t == req.transaction_id) {
                        return Ok(tonic::Response::new(CommitStatusResponse {
                            result: ev.txs[i].1,
                            block_number: ev.number(),
                        }));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(RpcStatus::aborted("ledger closed"))
                }
            }
        }
    }

    type ChaincodeEventsStream = EventStream;

    async fn chaincode_events(
        &self,
        request: tonic::Request<SignedChaincodeEventsRequest>,
    ) -> Result<tonic::Response<Self::ChaincodeEventsStream>, RpcStatus> {
        let signed = request.into_inner();
        if signed.request.is_empty() {
            return Err(RpcStatus::invalid_argument(
                "a chaincode events request is required",
            ));
        }
        let req = ChaincodeEventsRequest::decode(signed.request.as_slice()).map_err(|e| {
            RpcStatus::invalid_argument(format!("invalid chaincode events request: {e}"))
        })?;
        let view = self.check_acl(
            &req.channel_id,
            &req.identity,
            &signed.request,
            &signed.signature,
        )?;
        let ledger = view.ledger;
        let mut start = None;
        if !req.after_transaction_id.is_empty() {
            if let Ok(Some(loc)) = ledger.tx_location(&req.after_transaction_id) {
                start = Some(loc.block);
            }
        }
        let start = match start {
            Some(s) => s,
            None => match req.start_position.as_ref().and_then(|p| p.r#type.as_ref()) {
                None | Some(seek_position::Type::NextCommit(_)) => {
                    crate::deliver::current_height(&ledger)
                }
                Some(seek_position::Type::Specified(s)) => s.number,
                Some(other) => {
                    let name = match other {
                        seek_position::Type::Newest(_) => "*orderer.SeekPosition_Newest",
                        _ => "*orderer.SeekPosition_Oldest",
                    };
                    return Err(RpcStatus::invalid_argument(format!(
                        "invalid start position type: {name}"
                    )));
                }
            },
        };
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let chaincode = req.chaincode_id.clone();
        let after = req.after_transaction_id.clone();
        tokio::spawn(async move {
            let mut passed_after = after.is_empty();
            let mut number = start;
            let mut watch = ledger.watch_height();
            loop {
                while *watch.borrow_and_update() <= number {
                    tokio::select! {
                        c = watch.changed() => if c.is_err() { return; },
                        _ = tx.closed() => return,
                    }
                }
                let block = match ledger.shared_block(number) {
                    Ok(Some(b)) => b,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(RpcStatus::aborted(e.to_string()))).await;
                        return;
                    }
                };
                let mut matching = Vec::new();
                for ev in block_events(&block) {
                    if !passed_after {
                        if ev.tx_id == after {
                            passed_after = true;
                        }
                        continue;
                    }
                    if ev.chaincode_id == chaincode {
                        matching.push(ev);
                    }
                }
                if !matching.is_empty() {
                    let resp = ChaincodeEventsResponse {
                        events: matching,
                        block_number: number,
                    };
                    if tx.send(Ok(resp)).await.is_err() {
                        return;
                    }
                }
                number += 1;
            }
        });
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

impl GatewayService {
    /// Fabric's `CheckACL` for the gateway's CommitStatus and ChaincodeEvents resources
    /// (`/Channel/Application/Readers`), over the request's identity and signature.
    fn check_acl(
        &self,
        channel: &str,
        identity: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> Result<ChannelView, RpcStatus> {
        let view = self.local.channel(channel).ok_or_else(|| {
            RpcStatus::permission_denied(format!(
                "Failed to get policy manager for channel [{channel}]"
            ))
        })?;
        crate::deliver::check_policy(
            &view.context,
            "/Channel/Application/Readers",
            identity,
            data,
            signature,
        )
        .map_err(|e| {
            RpcStatus::permission_denied(format!(
                "Failed evaluating policy on signed data during check policy on channel [{channel}] with policy [/Channel/Application/Readers]: [{e}]"
            ))
        })?;
        Ok(view)
    }
}
