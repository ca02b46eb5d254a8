//! The endorser: Fabric's `core/endorser` (`endorser.go`, `msgvalidation.go`).
//!
//! For each signed proposal, in Fabric's order and with Fabric's messages:
//!
//! 1. unpack the proposal (headers, chaincode header extension, invocation spec) — failures are
//!    gRPC errors (code `Unknown`, as a Go error returned from a handler becomes);
//! 2. the channel must be joined, else a `500` response "channel 'x' not found";
//! 3. validate: header type, epoch 0, nonce, creator, txid = hex(SHA-256(nonce ‖ creator)),
//!    signature present; the creator is deserialized and validated by the channel's MSPs and its
//!    signature over the proposal bytes verified ("access denied: channel [..] creator org
//!    [..]"); a txid already on the ledger is a duplicate; the creator must satisfy the channel's
//!    `/Channel/Application/Writers` (the `peer/Propose` ACL) — all gRPC errors;
//! 4. the chaincode definition and installed package are looked up, `Init` rules checked, and
//!    the proposal simulated on the hosted CCaaS chaincode with a [`TxSimulator`];
//! 5. the response: a chaincode status ≥ 500 gives the chaincode's response with the unsigned
//!    payload and no endorsement; 400–499 the response only; otherwise the
//!    `ProposalResponsePayload` (proposal hash, `ChaincodeAction` with results, event, response
//!    and chaincode ID/version) signed by the peer over `payload ‖ endorser`, with the
//!    `ChaincodeInterest` the gateway plans further endorsements from. Failures after
//!    validation are `500` responses whose message is Fabric's, never gRPC errors.
//!
//! The private write set of an endorsed transaction goes into the devnet's shared
//! [`TransientStore`](crate::peer::TransientStore) (Fabric's transient store plus gossip
//! dissemination).

pub mod simulator;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fabric_protos::common::{
    policy::PolicyType, ChannelHeader, Header, HeaderType, ImplicitMetaPolicy, SignatureHeader,
    SignaturePolicyEnvelope,
};
use fabric_protos::protos::endorser_server::{Endorser, EndorserServer};
use fabric_protos::protos::{
    ChaincodeAction, ChaincodeCall, ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput,
    ChaincodeInterest, ChaincodeInvocationSpec, ChaincodeProposalPayload, Endorsement, Proposal,
    ProposalResponse, ProposalResponsePayload, Response, SignedProposal,
};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::chaincode::TxParams;
use crate::ledger::VALIDATION_PARAMETER;
use crate::msp::{ChannelMsps, CheckedIdentity};
use crate::peer::{PeerChannel, PeerNode};
use simulator::{SimulationResults, TxSimulator};

/// Chaincodes the peer runs itself; no ACL check by the endorser and no interest for them.
pub const SYSTEM_CHAINCODES: [&str; 4] = ["_lifecycle", "cscc", "qscc", "lscc"];

/// The key under which Fabric records the version a chaincode was initialised for
/// (`"\x00" + string(utf8.MaxRune) + "initialized"`).
pub const INITIALIZED_KEY: &str = "\u{0}\u{10FFFF}initialized";

/// Chaincode responses from this status on are errors (`shim.ERROR`).
const ERROR: i32 = 500;
/// Chaincode responses from this status on are not endorsed (`shim.ERRORTHRESHOLD`).
const ERROR_THRESHOLD: i32 = 400;

/// A proposal taken apart as Fabric's `UnpackProposal` does.
struct Unpacked {
    channel_header: ChannelHeader,
    signature_header: SignatureHeader,
    chaincode_name: String,
    input: ChaincodeInput,
    proposal_hash: Vec<u8>,
}

fn unmarshal<M: Message + Default>(what: &str, b: &[u8]) -> Result<M, String> {
    M::decode(b).map_err(|e| format!("error unmarshalling {what}: {e}"))
}

fn unpack(sp: &SignedProposal) -> Result<Unpacked, String> {
    let prop: Proposal = unmarshal("Proposal", &sp.proposal_bytes)?;
    let hdr: Header = unmarshal("Header", &prop.header)?;
    let chdr: ChannelHeader = unmarshal("ChannelHeader", &hdr.channel_header)?;
    let shdr: SignatureHeader = unmarshal("SignatureHeader", &hdr.signature_header)?;
    let ext: ChaincodeHeaderExtension = unmarshal("ChaincodeHeaderExtension", &chdr.extension)?;
    let ccid = ext
        .chaincode_id
        .ok_or("ChaincodeHeaderExtension.ChaincodeId is nil")?;
    if ccid.name.is_empty() {
        return Err("ChaincodeHeaderExtension.ChaincodeId.Name is empty".into());
    }
    let cpp: ChaincodeProposalPayload = unmarshal("ChaincodeProposalPayload", &prop.payload)?;
    let cis: ChaincodeInvocationSpec = unmarshal("ChaincodeInvocationSpec", &cpp.input)?;
    let spec = cis
        .chaincode_spec
        .ok_or("chaincode invocation spec did not contain chaincode spec")?;
    let input = spec
        .input
        .ok_or("chaincode input did not contain any input")?;
    // The hash endorsers sign is over the payload without its transient map.
    let pp = ChaincodeProposalPayload {
        input: cpp.input,
        transient_map: Default::default(),
    }
    .encode_to_vec();
    let mut h = Sha256::new();
    h.update(&hdr.channel_header);
    h.update(&hdr.signature_header);
    h.update(&pp);
    Ok(Unpacked {
        channel_header: chdr,
        signature_header: shdr,
        chaincode_name: ccid.name,
        input,
        proposal_hash: h.finalize().to_vec(),
    })
}

/// Fabric's `UnpackedProposal.Validate` against the channel's MSPs; returns the creator.
fn validate(
    up: &Unpacked,
    sp: &SignedProposal,
    msps: &ChannelMsps,
) -> Result<Arc<CheckedIdentity>, String> {
    let t = up.channel_header.r#type;
    match HeaderType::try_from(t) {
        Ok(HeaderType::EndorserTransaction | HeaderType::Config) => {}
        Ok(other) => return Err(format!("invalid header type {}", other.as_str_name())),
        Err(_) => return Err(format!("invalid header type {t}")),
    }
    if up.channel_header.epoch != 0 {
        return Err("epoch is non-zero".into());
    }
    let shdr = &up.signature_header;
    if shdr.nonce.is_empty() {
        return Err("nonce is empty".into());
    }
    if shdr.creator.is_empty() {
        return Err("creator is empty".into());
    }
    let expected = fabric_common::tx::compute_tx_id(&shdr.nonce, &shdr.creator);
    if up.channel_header.tx_id != expected {
        return Err(format!(
            "incorrectly computed txid '{}' -- expected '{expected}'",
            up.channel_header.tx_id
        ));
    }
    if sp.proposal_bytes.is_empty() {
        return Err("empty proposal bytes".into());
    }
    if sp.signature.is_empty() {
        return Err("empty signature bytes".into());
    }
    let channel = &up.channel_header.channel_id;
    let creator = msps.deserialize(&shdr.creator).map_err(|e| {
        tracing::warn!(%channel, error = %e, "access denied");
        format!("access denied: channel [{channel}] creator org unknown, creator is malformed")
    })?;
    let generic = || {
        format!(
            "access denied: channel [{channel}] creator org [{}]",
            creator.msp_id()
        )
    };
    if let Err(e) = &creator.validity {
        tracing::warn!(%channel, error = %e, "access denied: identity is not valid");
        return Err(generic());
    }
    if let Err(e) = crate::msp::sigcache::verify(
        creator.identity.public_key(),
        &sp.proposal_bytes,
        &sp.signature,
    ) {
        tracing::warn!(%channel, error = %e, "access denied: creator's signature over the proposal is not valid");
        return Err(generic());
    }
    Ok(creator)
}

/// The `peer/Propose` ACL: the creator must satisfy `/Channel/Application/Writers`.
fn check_acl(ch: &PeerChannel, creator: &Arc<CheckedIdentity>) -> Result<(), String> {
    const WRITERS: &str = "/Channel/Application/Writers";
    let ctx = ch.context();
    let ok = ctx
        .policies
        .evaluate(WRITERS, &ctx.msps, std::slice::from_ref(creator))
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    // Fabric's policy error texts: implicit meta policies count the satisfied sub-policies.
    let reason = match ch
        .bundle()
        .config
        .channel_group
        .as_ref()
        .and_then(|g| g.groups.get("Application"))
        .and_then(|a| Some((a, a.policies.get("Writers")?.policy.as_ref()?)))
    {
        Some((app, p)) if p.r#type == PolicyType::ImplicitMeta as i32 => {
            let m = ImplicitMetaPolicy::decode(p.value.as_slice()).unwrap_or_default();
            let n = app.groups.len();
            let need = match m.rule {
                0 => 1.min(n),
                1 => n,
                _ => n / 2 + 1,
            };
            let satisfied = usize::from(app.groups.keys().any(|org| {
                ctx.policies
                    .evaluate(
                        &format!("/Channel/Application/{org}/{}", m.sub_policy),
                        &ctx.msps,
                        std::slice::from_ref(creator),
                    )
                    .unwrap_or(false)
            }));
            format!(
                "implicit policy evaluation failed - {satisfied} sub-policies were satisfied, but this policy requires {need} of the '{}' sub-policies to be satisfied",
                m.sub_policy
            )
        }
        _ => "signature set did not satisfy policy".into(),
    };
    Err(format!(
        "Failed evaluating policy on signed data during check policy on channel [{}] with policy [{WRITERS}]: [{reason}]",
        ch.channel_id()
    ))
}

fn error_response(message: String) -> ProposalResponse {
    ProposalResponse {
        response: Some(Response {
            status: ERROR,
            message,
            payload: Vec::new(),
        }),
        ..Default::default()
    }
}

/// Endorses a signed proposal on `node` (see the module docs).
pub async fn process_proposal(
    node: &PeerNode,
    sp: SignedProposal,
) -> Result<ProposalResponse, tonic::Status> {
    let up = unpack(&sp).map_err(|e| {
        tracing::warn!(error = %e, "failed to unpack proposal");
        tonic::Status::unknown(e)
    })?;
    let channel_id = up.channel_header.channel_id.clone();
    let cc = up.chaincode_name.clone();
    if channel_id.is_empty() {
        return channelless(node, &up, &sp);
    }
    let Some(ch) = node.channel(&channel_id) else {
        return Ok(error_response(format!("channel '{channel_id}' not found")));
    };
    let txid = up.channel_header.tx_id.clone();
    // 0 -- check and validate
    let creator = validate(&up, &sp, &ch.context().msps)
        .map_err(|e| tonic::Status::unknown(format!("error validating proposal: {e}")))?;
    let dup = ch
        .ledger()
        .tx_location(&txid)
        .map_err(|e| tonic::Status::unknown(e.to_string()))?;
    if dup.is_some() {
        return Err(tonic::Status::unknown(format!(
            "duplicate transaction found [{txid}]. Creator [{}]",
            hex::encode(&up.signature_header.creator)
        )));
    }
    if !SYSTEM_CHAINCODES.contains(&cc.as_str()) {
        check_acl(&ch, &creator).map_err(tonic::Status::unknown)?;
    }
    match endorse(node, &ch, &up, sp, &creator).await {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::warn!(channel = %channel_id, chaincode = %cc, error = %e, "failed to invoke chaincode");
            Ok(error_response(e))
        }
    }
}

/// Fabric's `ProcessProposalSuccessfullyOrError`.
async fn endorse(
    node: &PeerNode,
    ch: &PeerChannel,
    up: &Unpacked,
    sp: SignedProposal,
    creator: &CheckedIdentity,
) -> Result<ProposalResponse, String> {
    let channel_id = ch.channel_id();
    let cc = up.chaincode_name.as_str();
    let txid = up.channel_header.tx_id.clone();
    let snapshot = ch.ledger().snapshot().map_err(|e| e.to_string())?;
    let endorsed_at = snapshot.height().map_err(|e| e.to_string())?;
    let mut sim = TxSimulator::new(snapshot, &txid);
    let (res, event, version, results) = if cc == crate::lifecycle::LIFECYCLE {
        let inv = crate::lifecycle::Invocation {
            node,
            channel: Some(ch),
            msps: &ch.context().msps,
            creator,
            sim: Some(&mut sim),
        };
        let res = crate::lifecycle::invoke(inv, &up.input.args);
        let results = sim.results();
        (
            res,
            None,
            crate::lifecycle::SYSCC_VERSION.to_string(),
            results,
        )
    } else {
        let defined = ch.chaincode(cc).ok_or_else(|| {
            format!("make sure the chaincode {cc} has been successfully defined on channel {channel_id} and try again: chaincode {cc} not found")
        })?;
        let def = &defined.definition;
        if def.package_id.is_empty() {
            return Err(format!("make sure the chaincode {cc} has been successfully defined on channel {channel_id} and try again: chaincode definition for '{cc}' at sequence {} on channel '{channel_id}' has not yet been approved by this org", def.sequence));
        }
        let support = node.chaincode_support();
        if !support.is_installed(&def.package_id) {
            return Err(format!("make sure the chaincode {cc} has been successfully defined on channel {channel_id} and try again: chaincode definition for '{cc}' exists, but chaincode is not installed"));
        }
        let sim_err =
            |e: String| format!("error in simulation: failed to execute transaction {txid}: {e}");
        check_invocation(
            &mut sim,
            cc,
            &def.version,
            def.init_required,
            up.input.is_init,
        )
        .map_err(|e| sim_err(format!("invalid invocation: {e}")))?;
        let params = TxParams {
            channel_id: channel_id.to_string(),
            txid: txid.clone(),
            signed_proposal: Some(sp),
            creator: up.signature_header.creator.clone(),
            simulator: Arc::new(Mutex::new(sim)),
        };
        let (res, event) = support
            .execute(&params, cc, &def.package_id, up.input.clone())
            .await
            .map_err(|e| format!("error in simulation: {e}"))?;
        let results: SimulationResults = params
            .simulator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .results();
        (res, event, def.version.clone(), results)
    };
    // Per Fabric, a response ≥ 400 carries no event.
    let event = if res.status >= ERROR_THRESHOLD {
        None
    } else {
        event
    };
    if let Some(pvt) = results.private.clone() {
        if res.status < ERROR_THRESHOLD {
            node.inner
                .config
                .transient
                .persist(channel_id, &txid, endorsed_at, pvt);
        }
    }
    let interest = build_interest(&results).map_err(|e| format!("error in simulation: {e}"))?;
    let prp = ProposalResponsePayload {
        proposal_hash: up.proposal_hash.clone(),
        extension: ChaincodeAction {
            results: results.public.encode_to_vec(),
            events: event.map(|e| e.encode_to_vec()).unwrap_or_default(),
            response: Some(res.clone()),
            chaincode_id: Some(ChaincodeId {
                path: String::new(),
                name: cc.to_string(),
                version,
            }),
        }
        .encode_to_vec(),
    }
    .encode_to_vec();
    if res.status >= ERROR {
        return Ok(ProposalResponse {
            response: Some(res),
            payload: prp,
            interest: Some(interest),
            ..Default::default()
        });
    }
    if res.status >= ERROR_THRESHOLD {
        return Ok(ProposalResponse {
            response: Some(res),
            ..Default::default()
        });
    }
    let signer = node.signer();
    let endorser = signer.serialized().to_vec();
    let mut signed = Vec::with_capacity(prp.len() + endorser.len());
    signed.extend_from_slice(&prp);
    signed.extend_from_slice(&endorser);
    let signature = node
        .sign(&signed)
        .map_err(|e| format!("endorsing with plugin failed: {e}"))?;
    Ok(ProposalResponse {
        version: 1,
        timestamp: None,
        response: Some(res),
        payload: prp,
        endorsement: Some(Endorsement {
            endorser,
            signature,
        }),
        interest: Some(interest),
    })
}

/// Fabric's `ChaincodeSupport.CheckInvocation`: `Init` only when the definition requires it and
/// the chaincode is not yet initialised for this version; everything else only after that.
fn check_invocation(
    sim: &mut TxSimulator,
    cc: &str,
    version: &str,
    init_required: bool,
    is_init: bool,
) -> Result<(), String> {
    let mut needs_init = false;
    if init_required {
        let v = sim
            .get_state(cc, INITIALIZED_KEY)
            .map_err(|e| format!("could not get 'initialized' key: {e}"))?;
        needs_init = v.as_deref() != Some(version.as_bytes());
    }
    if is_init {
        if !init_required {
            return Err(format!(
                "chaincode '{cc}' does not require initialization but called as init"
            ));
        }
        if !needs_init {
            return Err(format!(
                "chaincode '{cc}' is already initialized but called as init"
            ));
        }
        return sim
            .set_state(cc, INITIALIZED_KEY, version.as_bytes().to_vec())
            .map_err(|e| format!("could not set 'initialized' key: {e}"));
    }
    if needs_init {
        return Err(format!(
            "chaincode '{cc}' has not been initialized for this version, must call as init first"
        ));
    }
    Ok(())
}

/// Fabric's `buildChaincodeInterest`: for each chaincode touched, whether its namespace policy
/// is needed, the key-level policies of written keys, and the collections with private
/// writes or reads. Entries come in name order (Fabric's map order is random).
fn build_interest(sim: &SimulationResults) -> Result<ChaincodeInterest, String> {
    // namespace → collection ("" = public) → chaincode policy required
    let mut required: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    let mut sbe: BTreeMap<String, Vec<SignaturePolicyEnvelope>> = BTreeMap::new();
    for (ns, colls) in &sim.writeset_metadata {
        required
            .entry(ns.clone())
            .or_default()
            .insert(String::new(), false);
        for (coll, keys) in colls {
            for meta in keys.values() {
                match meta.get(VALIDATION_PARAMETER) {
                    Some(vp) => {
                        let p = SignaturePolicyEnvelope::decode(vp.as_slice()).map_err(|e| {
                            format!("error unmarshalling SignaturePolicyEnvelope: {e}")
                        })?;
                        sbe.entry(ns.clone()).or_default().push(p);
                    }
                    None => {
                        required
                            .entry(ns.clone())
                            .or_default()
                            .insert(coll.clone(), true);
                    }
                }
            }
        }
    }
    for ns in &sim.public.ns_rwset {
        if SYSTEM_CHAINCODES.contains(&ns.namespace.as_str()) {
            continue;
        }
        required
            .entry(ns.namespace.clone())
            .or_insert_with(|| BTreeMap::from([(String::new(), true)]));
    }
    for (ns, coll) in &sim.private_reads {
        required
            .entry(ns.clone())
            .or_default()
            .insert(coll.clone(), true);
    }
    let mut out = ChaincodeInterest::default();
    for (ns, colls) in &required {
        if SYSTEM_CHAINCODES.contains(&ns.as_str()) {
            continue;
        }
        let cc_required = colls.get("").copied().unwrap_or(false);
        for coll in colls.keys() {
            let mut call = ChaincodeCall {
                name: ns.clone(),
                ..Default::default()
            };
            if coll.is_empty() {
                let keys = sbe.get(ns).cloned().unwrap_or_default();
                if !keys.is_empty() {
                    call.key_policies = keys;
                    call.disregard_namespace_policy = !cc_required;
                } else if !cc_required {
                    continue;
                }
            } else {
                call.collection_names = vec![coll.clone()];
                call.no_private_reads = !sim.private_reads.contains(&(ns.clone(), coll.clone()));
            }
            out.chaincodes.push(call);
        }
    }
    Ok(out)
}

/// The gRPC Endorser service of one peer.
#[derive(Debug, Clone)]
pub struct EndorserService {
    node: PeerNode,
}

impl EndorserService {
    /// The tonic server for `node`, accepting messages up to Fabric's 100 MiB.
    pub fn server(node: PeerNode) -> EndorserServer<EndorserService> {
        const MAX: usize = 100 * 1024 * 1024;
        EndorserServer::new(EndorserService { node })
            .max_decoding_message_size(MAX)
            .max_encoding_message_size(MAX)
    }
}

#[tonic::async_trait]
impl Endorser for EndorserService {
    async fn process_proposal(
        &self,
        request: tonic::Request<SignedProposal>,
    ) -> Result<tonic::Response<ProposalResponse>, tonic::Status> {
        self.node
            .process_proposal(request.into_inner())
            .await
            .map(tonic::Response::new)
    }
}

/// A proposal without a channel: only `_lifecycle`'s peer-local functions (install, query
/// installed), checked against the peer's own MSP; never endorsed (Fabric returns the bare
/// response).
fn channelless(
    node: &PeerNode,
    up: &Unpacked,
    sp: &SignedProposal,
) -> Result<ProposalResponse, tonic::Status> {
    let local = node
        .channel_ids()
        .into_iter()
        .filter_map(|c| node.channel(&c))
        .find(|c| c.context().msps.msp(node.msp_id()).is_some());
    let Some(local) = local else {
        return Err(tonic::Status::unknown(
            "error validating proposal: access denied: channel [] creator org unknown, creator is malformed",
        ));
    };
    let msps = &local.context().msps;
    let creator = validate(up, sp, msps)
        .map_err(|e| tonic::Status::unknown(format!("error validating proposal: {e}")))?;
    let cc = up.chaincode_name.as_str();
    if cc != crate::lifecycle::LIFECYCLE {
        return Ok(error_response(format!("make sure the chaincode {cc} has been successfully defined on channel  and try again: chaincode {cc} not found")));
    }
    let inv = crate::lifecycle::Invocation {
        node,
        channel: None,
        msps,
        creator: &creator,
        sim: None,
    };
    let res = crate::lifecycle::invoke(inv, &up.input.args);
    Ok(ProposalResponse {
        response: Some(res),
        ..Default::default()
    })
}
