//! Block delivery as Fabric's `common/deliver` handler does it — shared by the orderer's Deliver
//! and the peer's `Deliver` service (Deliver, DeliverFiltered, DeliverWithPrivateData, mirroring
//! `core/peer/deliverevents.go`).
//!
//! Per SeekInfo envelope, the first failing check answers with a status and ends the stream:
//!
//! * payload, header or channel header unreadable, or a channel header without timestamp or
//!   more than 15 minutes off the server's clock → `BAD_REQUEST`;
//! * the channel is unknown → `NOT_FOUND`;
//! * the requester's certificate has expired, or its signature over the payload does not satisfy
//!   the channel's Readers policy (`/Channel/Readers` on the orderer,
//!   `/Channel/Application/Readers` on a peer) → `FORBIDDEN`;
//! * SeekInfo unreadable, or without start or stop → `BAD_REQUEST`; a specified stop before the
//!   start → `BAD_REQUEST`; a specified start beyond the height → `NOT_FOUND`;
//! * with `FAIL_IF_NOT_READY`, reaching a block not yet committed → `NOT_FOUND`; with
//!   `BLOCK_UNTIL_READY` the stream waits for it.
//!
//! When the stop block has been sent the handler answers `SUCCESS` and reads the next SeekInfo.
//! Start positions: oldest (0), newest (height − 1), specified, next commit (height); stop:
//! oldest (= start), newest (height − 1 when the request arrived, or the start when both are
//! newest), specified.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use fabric_protos::common::{
    Block, ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader, Status,
};
use fabric_protos::orderer::{seek_info, seek_position, SeekInfo};
use fabric_protos::protos::{
    deliver_server::Deliver, filtered_transaction, BlockAndPrivateData, ChaincodeEvent,
    DeliverResponse, FilteredBlock, FilteredChaincodeAction, FilteredTransaction,
    FilteredTransactionActions,
};
use prost::Message;
use tokio_stream::{Stream, StreamExt};

use crate::committer::ChannelContext;
use crate::ledger::Ledger;
use crate::msp::policy::{verified_identities, ConfigPolicy};

/// How far a SeekInfo's timestamp may be from the server's clock (Fabric's default
/// `General.Authentication.TimeWindow` / `peer.authentication.timewindow`).
pub const TIME_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A channel as a deliver handler sees it: blocks, MSPs and policies, and the policy readers
/// must satisfy.
#[derive(Debug, Clone)]
pub struct DeliverSource {
    /// The channel's block store.
    pub ledger: Ledger,
    /// MSPs and policies of the channel.
    pub context: Arc<ChannelContext>,
    /// Absolute path of the policy a requester must satisfy.
    pub policy: &'static str,
}

/// Evaluates the policy at `path` over one signed message (Fabric's `EvaluateSignedData` with a
/// single signature). The error text is the one Fabric's policy evaluation gives.
pub fn check_policy(
    ctx: &ChannelContext,
    path: &str,
    identity: &[u8],
    data: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let ids = verified_identities(&ctx.msps, [(identity, data, signature)]);
    let ok = ctx
        .policies
        .evaluate(path, &ctx.msps, &ids)
        .map_err(|e| e.to_string())?;
    if ok {
        return Ok(());
    }
    Err(match ctx.policies.get(path) {
        Some(ConfigPolicy::ImplicitMeta { sub_policy, rule })
            if *rule == fabric_protos::common::implicit_meta_policy::Rule::Any =>
        {
            format!(
                "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the '{sub_policy}' sub-policies to be satisfied"
            )
        }
        _ => "signature set did not satisfy policy".to_string(),
    })
}

/// The ledger's height as last published after a durable commit. Unlike [`Ledger::height`] it
/// never waits for a commit in progress (which holds the ledger's tip while it syncs to disk), so
/// request handlers on the async runtime are not stalled by commits.
pub fn current_height(ledger: &Ledger) -> u64 {
    *ledger.watch_height().borrow()
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One signed SeekInfo, decoded, and the requester's signed data for access checks.
struct Request {
    channel: String,
    creator: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    data: Vec<u8>,
}

fn parse(env: &Envelope) -> Option<Request> {
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let header = payload.header?;
    let chdr = ChannelHeader::decode(header.channel_header.as_slice()).ok()?;
    let ts = chdr.timestamp?;
    let skew = (now_unix() - ts.seconds).unsigned_abs();
    if skew > TIME_WINDOW.as_secs() {
        return None;
    }
    let creator = SignatureHeader::decode(header.signature_header.as_slice())
        .map(|s| s.creator)
        .unwrap_or_default();
    Some(Request {
        channel: chdr.channel_id,
        creator,
        payload: env.payload.clone(),
        signature: env.signature.clone(),
        data: payload.data,
    })
}

fn authorize(src: &DeliverSource, req: &Request) -> Result<(), String> {
    if let Ok(id) = fabric_common::identity::Identity::from_serialized(&req.creator) {
        if id.certificate().not_after() < now_unix() {
            return Err("deliver client identity expired".into());
        }
    }
    check_policy(
        &src.context,
        src.policy,
        &req.creator,
        &req.payload,
        &req.signature,
    )
}

fn is_config_block(block: &Block) -> bool {
    let Some(first) = block.data.as_ref().and_then(|d| d.data.first()) else {
        return false;
    };
    let Ok(env) = Envelope::decode(first.as_slice()) else {
        return false;
    };
    let Ok(p) = Payload::decode(env.payload.as_slice()) else {
        return false;
    };
    p.header
        .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
        .is_some_and(|c| c.r#type == HeaderType::Config as i32)
}

/// Serves one deliver stream: reads SeekInfo envelopes and answers blocks (turned into the
/// response type by `block`, which also gets the requester's serialized identity) and statuses
/// (by `status`), as described in the module docs.
pub fn serve<R, L, B, S>(
    mut inbound: tonic::Streaming<Envelope>,
    lookup: L,
    block: B,
    status: S,
) -> tokio_stream::wrappers::ReceiverStream<Result<R, tonic::Status>>
where
    R: Send + 'static,
    L: Fn(&str) -> Option<DeliverSource> + Send + Sync + 'static,
    B: Fn(&DeliverSource, &[u8], Arc<Block>) -> R + Send + Sync + 'static,
    S: Fn(Status) -> R + Send + Sync + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(msg) = inbound.next().await {
            let Ok(env) = msg else {
                return;
            };
            let outcome = deliver_blocks(&env, &lookup, &block, &tx).await;
            let Some(st) = outcome else {
                // The client went away mid-stream.
                return;
            };
            if tx.send(Ok(status(st))).await.is_err() || st != Status::Success {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Sends the blocks one SeekInfo asks for; returns the final status, or `None` when the client
/// is gone.
async fn deliver_blocks<R, L, B>(
    env: &Envelope,
    lookup: &L,
    block_fn: &B,
    tx: &tokio::sync::mpsc::Sender<Result<R, tonic::Status>>,
) -> Option<Status>
where
    L: Fn(&str) -> Option<DeliverSource>,
    B: Fn(&DeliverSource, &[u8], Arc<Block>) -> R,
{
    let Some(req) = parse(env) else {
        return Some(Status::BadRequest);
    };
    let Some(src) = lookup(&req.channel) else {
        return Some(Status::NotFound);
    };
    if authorize(&src, &req).is_err() {
        return Some(Status::Forbidden);
    }
    let Ok(seek) = SeekInfo::decode(req.data.as_slice()) else {
        return Some(Status::BadRequest);
    };
    let (Some(start), Some(stop)) = (&seek.start, &seek.stop) else {
        return Some(Status::BadRequest);
    };
    let ledger = &src.ledger;
    let height = current_height(ledger);
    let mut number = match &start.r#type {
        Some(seek_position::Type::Oldest(_)) => 0,
        Some(seek_position::Type::Newest(_)) => height.saturating_sub(1),
        Some(seek_position::Type::Specified(s)) => {
            if s.number > height {
                return Some(Status::NotFound);
            }
            s.number
        }
        Some(seek_position::Type::NextCommit(_)) => height,
        None => return Some(Status::NotFound),
    };
    let stop_num = match &stop.r#type {
        Some(seek_position::Type::Oldest(_)) => number,
        Some(seek_position::Type::Newest(_)) => {
            if start == stop {
                number
            } else {
                current_height(ledger).saturating_sub(1)
            }
        }
        Some(seek_position::Type::Specified(s)) => {
            if s.number < number {
                return Some(Status::BadRequest);
            }
            s.number
        }
        // Fabric leaves the stop at 0 for other stop kinds.
        _ => 0,
    };
    let fail_if_not_ready = seek.behavior == seek_info::SeekBehavior::FailIfNotReady as i32;
    let headers_only = seek.content_type == seek_info::SeekContentType::HeaderWithSig as i32;
    let mut watch = ledger.watch_height();
    loop {
        if fail_if_not_ready && number + 1 > current_height(ledger) {
            return Some(Status::NotFound);
        }
        // Wait until block `number` is committed.
        while *watch.borrow_and_update() <= number {
            tokio::select! {
                changed = watch.changed() => {
                    if changed.is_err() {
                        return Some(Status::ServiceUnavailable);
                    }
                }
                _ = tx.closed() => return None,
            }
        }
        let block = match ledger.shared_block(number) {
            Ok(Some(b)) => b,
            Ok(None) => return Some(Status::NotFound),
            Err(e) => {
                tracing::error!("[channel: {}] reading block {number}: {e}", req.channel);
                return Some(Status::InternalServerError);
            }
        };
        number += 1;
        if authorize(&src, &req).is_err() {
            return Some(Status::Forbidden);
        }
        let block = if headers_only && !is_config_block(&block) {
            Arc::new(Block {
                header: block.header.clone(),
                data: None,
                metadata: block.metadata.clone(),
            })
        } else {
            block
        };
        let sent = block.header.as_ref().map_or(0, |h| h.number);
        if tx
            .send(Ok(block_fn(&src, &req.creator, block)))
            .await
            .is_err()
        {
            return None;
        }
        if sent == stop_num {
            return Some(Status::Success);
        }
    }
}

/// A block as DeliverFiltered sends it (`FilteredBlock`): per transaction its id, type and
/// validation code, and for endorser transactions the chaincode event without its payload.
pub fn filtered_block(channel: &str, block: &Block) -> FilteredBlock {
    let number = block.header.as_ref().map_or(0, |h| h.number);
    let filter = block
        .metadata
        .as_ref()
        .and_then(|m| {
            m.metadata
                .get(fabric_protos::common::BlockMetadataIndex::TransactionsFilter as usize)
        })
        .cloned()
        .unwrap_or_default();
    let mut txs = Vec::new();
    for (i, d) in block.data.iter().flat_map(|d| d.data.iter()).enumerate() {
        let Ok(env) = Envelope::decode(d.as_slice()) else {
            continue;
        };
        let Ok(payload) = Payload::decode(env.payload.as_slice()) else {
            continue;
        };
        let Some(chdr) = payload
            .header
            .as_ref()
            .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
        else {
            continue;
        };
        let code = filter.get(i).copied().unwrap_or(0) as i32;
        let mut ft = FilteredTransaction {
            txid: chdr.tx_id.clone(),
            r#type: chdr.r#type,
            tx_validation_code: code,
            data: None,
        };
        if chdr.r#type == HeaderType::EndorserTransaction as i32 {
            let mut actions = Vec::new();
            if let Ok(tx) = fabric_common::tx::unpack_envelope(&env) {
                for a in tx.actions {
                    let event = ChaincodeEvent::decode(a.chaincode_action.events.as_slice())
                        .ok()
                        .filter(|e| !e.chaincode_id.is_empty() || !e.event_name.is_empty())
                        .map(|mut e| {
                            e.payload = Vec::new();
                            e
                        });
                    actions.push(FilteredChaincodeAction {
                        chaincode_event: event,
                    });
                }
            }
            ft.data = Some(filtered_transaction::Data::TransactionActions(
                FilteredTransactionActions {
                    chaincode_actions: actions,
                },
            ));
        }
        txs.push(ft);
    }
    FilteredBlock {
        channel_id: channel.to_string(),
        number,
        filtered_transactions: txs,
    }
}

/// `(channel, chaincode, collection)` → member MSP IDs.
pub type MembersFn = dyn Fn(&str, &str, &str) -> Option<Vec<String>> + Send + Sync;

/// A collection's keys by their SHA-256: key hash → (key, value).
type KeyIndex = std::collections::HashMap<Vec<u8>, (String, Vec<u8>)>;

/// The private write sets of a block's valid transactions that this peer holds and the
/// requester may read (its organisation is a member of the collection), by transaction index —
/// what DeliverWithPrivateData attaches to a block.
///
/// The ledger keeps each private key's current value (with its hash on chain), not a
/// per-transaction private data store, so a write is reported when the key's current value still
/// has the hash the transaction wrote; writes overwritten later and deletes (whose key is gone)
/// cannot be reconstructed and are left out.
pub fn private_data(
    src: &DeliverSource,
    requester: &[u8],
    block: &Block,
    members: &MembersFn,
) -> std::collections::BTreeMap<u64, fabric_protos::rwset::TxPvtReadWriteSet> {
    use fabric_protos::kvrwset::{KvWrite, KvrwSet};
    use fabric_protos::rwset::{
        tx_read_write_set::DataModel, CollectionPvtReadWriteSet, NsPvtReadWriteSet,
        TxPvtReadWriteSet,
    };
    use sha2::{Digest, Sha256};

    let mut out = std::collections::BTreeMap::new();
    let Ok(requester) = fabric_common::identity::Identity::from_serialized(requester) else {
        return out;
    };
    let channel = src.ledger.channel();
    let filter = block
        .metadata
        .as_ref()
        .and_then(|m| {
            m.metadata
                .get(fabric_protos::common::BlockMetadataIndex::TransactionsFilter as usize)
        })
        .cloned()
        .unwrap_or_default();
    let Ok(snap) = src.ledger.snapshot() else {
        return out;
    };
    // key hash → (key, value) per collection, built on first use.
    let mut index: std::collections::HashMap<(String, String), KeyIndex> = Default::default();
    for (i, d) in block.data.iter().flat_map(|d| d.data.iter()).enumerate() {
        if filter.get(i).copied() != Some(fabric_protos::protos::TxValidationCode::Valid as u8) {
            continue;
        }
        let Ok(tx) = fabric_common::tx::unpack_envelope_bytes(d) else {
            continue;
        };
        let Some(action) = tx.actions.first() else {
            continue;
        };
        if action.chaincode_action.results.is_empty() {
            continue;
        }
        let Ok(rw) = crate::ledger::TxRwSet::decode(&action.chaincode_action.results) else {
            continue;
        };
        let mut ns_sets = Vec::new();
        for ns in &rw.ns_rwsets {
            let mut colls = Vec::new();
            for c in &ns.coll_hashed {
                let readable = members(channel, &ns.namespace, &c.collection)
                    .is_some_and(|m| m.iter().any(|o| o == requester.msp_id()));
                if !readable || !src.context.is_local_member(&ns.namespace, &c.collection) {
                    continue;
                }
                let idx = index
                    .entry((ns.namespace.clone(), c.collection.clone()))
                    .or_insert_with(|| {
                        snap.private_range(&ns.namespace, &c.collection, "", "")
                            .map(|r| {
                                r.filter_map(Result::ok)
                                    .map(|(k, v)| {
                                        (Sha256::digest(k.as_bytes()).to_vec(), (k, v.value))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default()
                    });
                let writes: Vec<KvWrite> = c
                    .hashed
                    .hashed_writes
                    .iter()
                    .filter(|w| !w.is_delete)
                    .filter_map(|w| {
                        let (key, value) = idx.get(&w.key_hash)?;
                        (Sha256::digest(value)[..] == w.value_hash[..]).then(|| KvWrite {
                            key: key.clone(),
                            is_delete: false,
                            value: value.clone(),
                        })
                    })
                    .collect();
                if writes.is_empty() {
                    continue;
                }
                colls.push(CollectionPvtReadWriteSet {
                    collection_name: c.collection.clone(),
                    rwset: KvrwSet {
                        writes,
                        ..Default::default()
                    }
                    .encode_to_vec(),
                });
            }
            if !colls.is_empty() {
                ns_sets.push(NsPvtReadWriteSet {
                    namespace: ns.namespace.clone(),
                    collection_pvt_rwset: colls,
                });
            }
        }
        if !ns_sets.is_empty() {
            out.insert(
                i as u64,
                TxPvtReadWriteSet {
                    data_model: DataModel::Kv as i32,
                    ns_pvt_rwset: ns_sets,
                },
            );
        }
    }
    out
}

/// Looks up a channel of a peer for its Deliver service.
pub type ChannelLookup = Arc<dyn Fn(&str) -> Option<(Ledger, Arc<ChannelContext>)> + Send + Sync>;

/// The member organisations of a collection: `(channel, chaincode, collection)` → MSP IDs, or
/// `None` when the collection is not defined.
pub type CollectionMembers = Arc<MembersFn>;

/// The peer's `Deliver` gRPC service over its channels' ledgers.
#[derive(Clone)]
pub struct PeerDeliverService {
    lookup: ChannelLookup,
    members: Option<CollectionMembers>,
}

impl std::fmt::Debug for PeerDeliverService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerDeliverService").finish_non_exhaustive()
    }
}

impl PeerDeliverService {
    /// A Deliver service answering for the channels `lookup` knows.
    pub fn new(lookup: ChannelLookup) -> Self {
        PeerDeliverService {
            lookup,
            members: None,
        }
    }

    /// Serves private data with DeliverWithPrivateData, to members of each collection.
    pub fn with_collections(mut self, members: CollectionMembers) -> Self {
        self.members = Some(members);
        self
    }

    /// The tonic server for this service.
    pub fn server(self) -> fabric_protos::protos::deliver_server::DeliverServer<Self> {
        fabric_protos::protos::deliver_server::DeliverServer::new(self)
            .max_decoding_message_size(crate::orderer::MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(crate::orderer::MAX_GRPC_MESSAGE_BYTES)
    }

    fn source_lookup(&self) -> impl Fn(&str) -> Option<DeliverSource> + Send + Sync + 'static {
        let lookup = self.lookup.clone();
        move |channel: &str| {
            lookup(channel).map(|(ledger, context)| DeliverSource {
                ledger,
                context,
                policy: "/Channel/Application/Readers",
            })
        }
    }
}

fn status_response(s: Status) -> DeliverResponse {
    DeliverResponse {
        r#type: Some(fabric_protos::protos::deliver_response::Type::Status(
            s as i32,
        )),
    }
}

type PeerStream = Pin<Box<dyn Stream<Item = Result<DeliverResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Deliver for PeerDeliverService {
    type DeliverStream = PeerStream;

    async fn deliver(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverStream>, tonic::Status> {
        let s = serve(
            request.into_inner(),
            self.source_lookup(),
            |_, _, b| DeliverResponse {
                r#type: Some(fabric_protos::protos::deliver_response::Type::Block(
                    Arc::unwrap_or_clone(b),
                )),
            },
            status_response,
        );
        Ok(tonic::Response::new(Box::pin(s)))
    }

    type DeliverFilteredStream = PeerStream;

    async fn deliver_filtered(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverFilteredStream>, tonic::Status> {
        let s = serve(
            request.into_inner(),
            self.source_lookup(),
            |src, _, b| DeliverResponse {
                r#type: Some(
                    fabric_protos::protos::deliver_response::Type::FilteredBlock(filtered_block(
                        src.ledger.channel(),
                        &b,
                    )),
                ),
            },
            status_response,
        );
        Ok(tonic::Response::new(Box::pin(s)))
    }

    type DeliverWithPrivateDataStream = PeerStream;

    async fn deliver_with_private_data(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverWithPrivateDataStream>, tonic::Status> {
        let members = self.members.clone();
        let s = serve(
            request.into_inner(),
            self.source_lookup(),
            move |src, creator, b| {
                let private_data_map = match &members {
                    Some(m) => private_data(src, creator, &b, m.as_ref()),
                    None => Default::default(),
                };
                DeliverResponse {
                    r#type: Some(
                        fabric_protos::protos::deliver_response::Type::BlockAndPrivateData(
                            BlockAndPrivateData {
                                block: Some(Arc::unwrap_or_clone(b)),
                                private_data_map,
                            },
                        ),
                    ),
                }
            },
            status_response,
        );
        Ok(tonic::Response::new(Box::pin(s)))
    }
}
