//! Block validation and commit, as a Fabric peer's committer does it, with the same
//! `TxValidationCode` for every outcome. Mirrors `core/committer/txvalidator/v20` (per-transaction
//! checks), `core/common/validation/msgvalidation.go` (envelope, headers, creator signature,
//! txid), the v20 builtin validation plugin with `statebased` key-level policies, and
//! `core/ledger/kvledger/txmgmt/validation` (MVCC and phantom reads).
//!
//! Order of checks per transaction (the first failing one gives the code):
//!
//! 1. envelope decodes, else `INVALID_OTHER_REASON`; payload decodes, else `BAD_PAYLOAD`;
//!    header present and channel/signature headers well formed (known type, epoch 0, nonce and
//!    creator present), else `BAD_COMMON_HEADER`;
//! 2. creator: the channel's MSPs know and validate it and its signature over the payload verifies
//!    (low-S only), else `BAD_CREATOR_SIGNATURE`. Like Fabric, an *expired* creator certificate is
//!    not rejected here (the orderer rejects it on Broadcast);
//! 3. by type: `CONFIG_UPDATE` → `UNSUPPORTED_TX_PAYLOAD`; endorser transactions: txid =
//!    hex(SHA-256(nonce ‖ creator)) else `BAD_PROPOSAL_TXID`, one action with a proposal hash
//!    matching the headers else `INVALID_ENDORSER_TRANSACTION`;
//! 4. txid already on the ledger → `DUPLICATE_TXID`;
//! 5. the validation plugin: header extension (`BAD_HEADER_EXTENSION`), action and response
//!    payload (`BAD_RESPONSE_PAYLOAD`), rwset (`BAD_RWSET`), chaincode id consistency
//!    (`INVALID_OTHER_REASON`), duplicate namespace or writes to system chaincodes
//!    (`ILLEGAL_WRITESET`), unknown chaincode (`INVALID_CHAINCODE`), endorsement policies
//!    (`ENDORSEMENT_POLICY_FAILURE`): each written key (public, metadata, private hashed) is
//!    checked against its key-level policy (VALIDATION_PARAMETER) if it has one, else against
//!    the chaincode policy; a key whose policy an earlier valid transaction of the same block
//!    changed fails;
//! 6. a later transaction reusing a txid of the block → `DUPLICATE_TXID`;
//! 7. MVCC: reads against committed versions and against writes of earlier valid transactions of
//!    the block → `MVCC_READ_CONFLICT`; range queries re-executed (raw reads or merkle summary) →
//!    `PHANTOM_READ_CONFLICT`; private hashed reads → `MVCC_READ_CONFLICT`.
//!
//! Steps 1–5 run in parallel on a pool of one thread per core that lives as long as the process,
//! and each signature (creator, each distinct endorser) is verified exactly once per transaction;
//! identities are parsed and validated once per channel (cached by [`ChannelMsps`]). Steps 5's
//! intra-block policy dependency, 6 and 7 run in block order.
//!
//! Private data: for a valid transaction, the private writes of each collection this peer's
//! organisation belongs to are taken from the [`PvtDataMap`] the endorsing side hands over (the
//! transient store: txid → `TxPvtReadWriteSet`), checked against the collection's
//! `pvt_rwset_hash` on chain and committed; missing or mismatching private data does not
//! invalidate the transaction (Fabric records it as missing).

pub mod rangequery;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

use fabric_protos::common::{Block, ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader};
use fabric_protos::kvrwset::{range_query_info::ReadsInfo, KvRead, KvrwSet, RangeQueryInfo};
use fabric_protos::protos::{
    application_policy, ApplicationPolicy, ChaincodeAction, ChaincodeActionPayload, ChaincodeEvent,
    ChaincodeHeaderExtension, ProposalResponsePayload, Transaction, TxValidationCode as Code,
};
use fabric_protos::rwset::TxPvtReadWriteSet;
use prost::Message;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::ledger::{
    block::METADATA_SLOTS, BlockUpdates, CommitEvent, Height, Ledger, LedgerError, PvtCollWrites,
    Snapshot, TxRwSet, VALIDATION_PARAMETER,
};
use crate::msp::policy::{verified_identities, PolicyManager, SignaturePolicyRule};
use crate::msp::{ChannelMsps, CheckedIdentity};
use rangequery::{RangeQueryResultsHelper, RangeReads};

/// Private write sets handed over by the endorsing side, by txid (Fabric's transient store).
pub type PvtDataMap = HashMap<String, TxPvtReadWriteSet>;

/// The private-data hashes on chain of one transaction that passed the per-transaction checks
/// (steps 1–6): what a peer asks its transient store for, as Fabric's private data coordinator
/// asks for the valid transactions of a block once it is validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxPvtHashes<'a> {
    /// The transaction's id.
    pub txid: &'a str,
    /// `(namespace, collection, pvt_rwset_hash)` of each collection with a non-empty hash, in
    /// read-write set order.
    pub hashes: Vec<(&'a str, &'a str, &'a [u8])>,
}

/// What committing a block produced, besides the commit event.
#[derive(Debug)]
pub struct CommittedBlock {
    /// The commit event (block as stored, codes).
    pub event: Arc<CommitEvent>,
    /// Whether a valid transaction of the block invoked `_lifecycle` (its definitions may have
    /// changed).
    pub lifecycle_invoked: bool,
}

/// Fewest transactions one validation task takes: smaller slices cost more in hand-offs than
/// they save.
const STAGE1_MIN_TXS: usize = 16;

/// The threads every committer of the process validates transactions on, one per core. They
/// live as long as the process: a block no longer pays for starting threads and for their fresh
/// allocator heaps. The pool is the process's own, so it leaves any global rayon pool alone.
fn validation_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("validate-{i}"))
            .build()
            .expect("validation threads start")
    })
}

/// Namespaces of system chaincodes an application chaincode may never write to.
const SYSTEM_NAMESPACES: [&str; 4] = ["lscc", "_lifecycle", "cscc", "qscc"];

/// Errors that stop a block from being committed at all (never a transaction's fault).
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The block has no header or data.
    #[error("malformed block: {0}")]
    MalformedBlock(String),
}

/// A chaincode's endorsement policy as its definition gives it.
#[derive(Debug, Clone)]
pub enum EndorsementPolicy {
    /// A signature policy.
    Signature(Arc<SignaturePolicyRule>),
    /// A reference to a channel configuration policy, e.g. `/Channel/Application/Endorsement`.
    ChannelConfig(String),
}

impl EndorsementPolicy {
    /// From a serialized `peer.ApplicationPolicy` (what `_lifecycle` stores).
    pub fn from_application_policy(bytes: &[u8]) -> Result<Self, crate::msp::policy::PolicyError> {
        use crate::msp::policy::PolicyError;
        let ap =
            ApplicationPolicy::decode(bytes).map_err(|e| PolicyError::Malformed(e.to_string()))?;
        match ap.r#type {
            Some(application_policy::Type::SignaturePolicy(env)) => Ok(
                EndorsementPolicy::Signature(Arc::new(SignaturePolicyRule::from_envelope(&env)?)),
            ),
            Some(application_policy::Type::ChannelConfigPolicyReference(r)) => {
                Ok(EndorsementPolicy::ChannelConfig(r))
            }
            None => Err(PolicyError::Malformed("empty ApplicationPolicy".into())),
        }
    }
}

/// What the committer knows about its channel: MSPs, configuration policies, chaincode
/// definitions' endorsement policies, collection membership, and the local organisation.
#[derive(Debug)]
pub struct ChannelContext {
    /// Channel name.
    pub channel_id: String,
    /// The channel's MSPs.
    pub msps: Arc<ChannelMsps>,
    /// The channel configuration's policies.
    pub policies: PolicyManager,
    /// This peer's organisation (decides which private data it stores).
    pub local_msp_id: String,
    chaincodes: RwLock<HashMap<String, EndorsementPolicy>>,
    collections: RwLock<HashMap<(String, String), HashSet<String>>>,
    collection_policies: RwLock<HashMap<(String, String), EndorsementPolicy>>,
}

impl ChannelContext {
    /// A context with no chaincodes defined yet.
    pub fn new(
        channel_id: &str,
        msps: Arc<ChannelMsps>,
        policies: PolicyManager,
        local_msp_id: &str,
    ) -> Self {
        ChannelContext {
            channel_id: channel_id.to_string(),
            msps,
            policies,
            local_msp_id: local_msp_id.to_string(),
            chaincodes: RwLock::new(HashMap::new()),
            collections: RwLock::new(HashMap::new()),
            collection_policies: RwLock::new(HashMap::new()),
        }
    }

    /// Records (or replaces) a chaincode definition's endorsement policy.
    pub fn define_chaincode(&self, name: &str, policy: EndorsementPolicy) {
        self.chaincodes
            .write()
            .expect("chaincodes")
            .insert(name.to_string(), policy);
    }

    /// Records an explicit collection's member organisations.
    pub fn define_collection(
        &self,
        ns: &str,
        coll: &str,
        members: impl IntoIterator<Item = String>,
    ) {
        self.collections.write().expect("collections").insert(
            (ns.to_string(), coll.to_string()),
            members.into_iter().collect(),
        );
    }

    /// Sets (or with `None` clears) a collection-level endorsement policy: writes to the
    /// collection are checked against it instead of the chaincode's policy (Fabric's
    /// `StaticCollectionConfig.endorsement_policy`, and `_lifecycle`'s implicit org collections).
    pub fn define_collection_policy(
        &self,
        ns: &str,
        coll: &str,
        policy: Option<EndorsementPolicy>,
    ) {
        let mut m = self
            .collection_policies
            .write()
            .expect("collection policies");
        let k = (ns.to_string(), coll.to_string());
        match policy {
            Some(p) => m.insert(k, p),
            None => m.remove(&k),
        };
    }

    /// The collection-level endorsement policy of `ns`'s collection `coll`, if it has one.
    pub fn collection_policy(&self, ns: &str, coll: &str) -> Option<EndorsementPolicy> {
        self.collection_policies
            .read()
            .expect("collection policies")
            .get(&(ns.to_string(), coll.to_string()))
            .cloned()
    }

    /// The endorsement policy of a defined chaincode.
    pub fn chaincode_policy(&self, name: &str) -> Option<EndorsementPolicy> {
        self.chaincodes
            .read()
            .expect("chaincodes")
            .get(name)
            .cloned()
    }

    /// Whether this peer's organisation is a member of the collection (implicit org collections
    /// `_implicit_org_<MSPID>` have exactly that organisation as member).
    pub fn is_local_member(&self, ns: &str, coll: &str) -> bool {
        if let Some(msp) = coll.strip_prefix("_implicit_org_") {
            return msp == self.local_msp_id;
        }
        self.collections
            .read()
            .expect("collections")
            .get(&(ns.to_string(), coll.to_string()))
            .is_some_and(|m| m.contains(&self.local_msp_id))
    }

    fn evaluate(&self, policy: &EndorsementPolicy, ids: &[Arc<CheckedIdentity>]) -> bool {
        match policy {
            EndorsementPolicy::Signature(rule) => rule.evaluate(&self.msps, ids),
            EndorsementPolicy::ChannelConfig(path) => self
                .policies
                .evaluate(path, &self.msps, ids)
                .unwrap_or(false),
        }
    }
}

/// A key a transaction writes, for key-level policy dependencies: (namespace, collection or
/// empty, key or key hash).
type WrittenKey = (String, String, Vec<u8>);

/// The outcome of the parallel per-transaction stage.
#[derive(Debug, Default)]
struct Stage1 {
    code: i32,
    txid: String,
    timestamp: (i64, i32),
    rwset: Option<TxRwSet>,
    written: Vec<WrittenKey>,
    vp_updates: Vec<WrittenKey>,
    /// The invoked chaincode is `_lifecycle`.
    lifecycle: bool,
    /// The txid was looked up and is not on the ledger.
    absent: bool,
}

fn fail(code: Code) -> Stage1 {
    Stage1 {
        code: code as i32,
        ..Default::default()
    }
}

/// Validates and commits blocks on one peer's ledger of one channel.
#[derive(Debug, Clone)]
pub struct Committer {
    ledger: Ledger,
    ctx: Arc<ChannelContext>,
}

/// The result of validating a block: one code per transaction and the ledger updates.
#[derive(Debug)]
pub struct ValidatedBlock {
    /// `TxValidationCode` per transaction, in block order.
    pub codes: Vec<i32>,
    /// Txids in block order (empty where the header could not be read).
    pub txids: Vec<String>,
    /// The updates to commit with the block.
    pub updates: BlockUpdates,
    /// Whether a valid transaction invoked `_lifecycle`.
    pub lifecycle_invoked: bool,
}

impl Committer {
    /// A committer for `ledger` in channel `ctx`.
    pub fn new(ledger: Ledger, ctx: Arc<ChannelContext>) -> Self {
        Committer { ledger, ctx }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The channel context.
    pub fn context(&self) -> &Arc<ChannelContext> {
        &self.ctx
    }

    /// Commits the channel's genesis (config) block as Fabric's `CreateLedger` does: it is the
    /// trust anchor, so its transaction is recorded valid without validation.
    pub fn commit_genesis(&self, mut block: Block) -> Result<Arc<CommitEvent>, CommitError> {
        let data = block
            .data
            .as_ref()
            .ok_or_else(|| CommitError::MalformedBlock("no data".into()))?;
        let mut updates = BlockUpdates::new();
        for (i, d) in data.data.iter().enumerate() {
            let txid = decode_headers(d)
                .map(|(_, chdr, _)| chdr.tx_id)
                .unwrap_or_default();
            updates.record_tx(&txid, i as u64, Code::Valid as i32);
        }
        let n = data.data.len();
        set_filter(&mut block, vec![Code::Valid as u8; n]);
        Ok(self.ledger.commit_shared(Arc::new(block), &updates)?)
    }

    /// Validates a block against the committed state without committing it.
    pub fn validate(&self, block: &Block, pvt: &PvtDataMap) -> Result<ValidatedBlock, CommitError> {
        self.validate_with(block, |_| Cow::Borrowed(pvt))
    }

    /// [`Committer::validate`] taking the private data from `fetch_pvt`, which is called once,
    /// after the per-transaction checks, with the private-data hashes of the transactions that
    /// passed them (so nothing has to decode the block again to know what to fetch).
    fn validate_with<'p>(
        &self,
        block: &Block,
        fetch_pvt: impl FnOnce(&[TxPvtHashes<'_>]) -> Cow<'p, PvtDataMap>,
    ) -> Result<ValidatedBlock, CommitError> {
        let header = block
            .header
            .as_ref()
            .ok_or_else(|| CommitError::MalformedBlock("no header".into()))?;
        let data = block
            .data
            .as_ref()
            .ok_or_else(|| CommitError::MalformedBlock("no data".into()))?;
        let snap = self.ledger.snapshot()?;
        let snap_height = snap.height()?;
        let number = header.number;

        // Stage 1: per transaction, in parallel.
        let mut stage1: Vec<Stage1> = validation_pool().install(|| {
            data.data
                .par_iter()
                .with_min_len(STAGE1_MIN_TXS)
                .map(|d| {
                    self.stage1(d, &snap).unwrap_or_else(|e| {
                        tracing::error!("ledger read during validation: {e}");
                        fail(Code::InvalidOtherReason)
                    })
                })
                .collect()
        });

        // Stage 2, in block order: key-level policy dependencies, then duplicate txids.
        let mut vp_updated: HashSet<WrittenKey> = HashSet::new();
        for tx in stage1.iter_mut() {
            if tx.code != Code::Valid as i32 {
                continue;
            }
            if tx.written.iter().any(|k| vp_updated.contains(k)) {
                tx.code = Code::EndorsementPolicyFailure as i32;
                continue;
            }
            vp_updated.extend(tx.vp_updates.iter().cloned());
        }
        let mut seen = HashSet::new();
        for tx in stage1.iter_mut() {
            if tx.code == Code::Valid as i32 && !tx.txid.is_empty() && !seen.insert(tx.txid.clone())
            {
                tx.code = Code::DuplicateTxid as i32;
            }
        }

        let wanted: Vec<TxPvtHashes> = stage1
            .iter()
            .filter(|tx| tx.code == Code::Valid as i32)
            .filter_map(|tx| {
                let rw = tx.rwset.as_ref()?;
                let hashes: Vec<_> = rw
                    .ns_rwsets
                    .iter()
                    .flat_map(|ns| {
                        ns.coll_hashed
                            .iter()
                            .filter(|c| !c.pvt_rwset_hash.is_empty())
                            .map(|c| {
                                (
                                    ns.namespace.as_str(),
                                    c.collection.as_str(),
                                    c.pvt_rwset_hash.as_slice(),
                                )
                            })
                    })
                    .collect();
                (!hashes.is_empty()).then_some(TxPvtHashes {
                    txid: &tx.txid,
                    hashes,
                })
            })
            .collect();
        let pvt = fetch_pvt(&wanted);
        drop(wanted);
        let pvt: &PvtDataMap = &pvt;

        // Stage 3, in block order: MVCC and phantom reads, then the updates.
        let mut lifecycle_invoked = false;
        let mut overlay = Overlay::default();
        let mut updates = BlockUpdates::new();
        for (i, tx) in stage1.iter_mut().enumerate() {
            let h = Height {
                block: number,
                tx: i as u64,
            };
            if tx.code == Code::Valid as i32 {
                if let Some(rw) = &tx.rwset {
                    let code = mvcc(rw, &snap, &overlay)?;
                    if code != Code::Valid {
                        tx.code = code as i32;
                    } else {
                        overlay.apply(rw, &snap, h)?;
                        lifecycle_invoked |= tx.lifecycle;
                        let pvt_writes = self.private_writes(&tx.txid, rw, pvt);
                        updates.add_block_tx(h, &tx.txid, tx.timestamp, rw, &pvt_writes);
                    }
                }
            }
            if tx.absent {
                updates.record_new_tx(&tx.txid, i as u64, tx.code, snap_height);
            } else {
                updates.record_tx(&tx.txid, i as u64, tx.code);
            }
        }
        Ok(ValidatedBlock {
            codes: stage1.iter().map(|t| t.code).collect(),
            txids: stage1.into_iter().map(|t| t.txid).collect(),
            updates,
            lifecycle_invoked,
        })
    }

    /// Validates `block`, fills its TRANSACTIONS_FILTER, and commits it with its updates in one
    /// durable ledger transaction. `pvt` holds the private write sets this peer received.
    pub fn commit_block(
        &self,
        block: Block,
        pvt: &PvtDataMap,
    ) -> Result<Arc<CommitEvent>, CommitError> {
        Ok(self.commit_validated(block, |_| Cow::Borrowed(pvt))?.event)
    }

    /// [`Committer::commit_block`] with the private write sets taken from `fetch_pvt`, called
    /// once during validation with the private-data hashes of the transactions that passed the
    /// per-transaction checks (a transaction that fails later, e.g. on MVCC, stores nothing).
    pub fn commit_block_with(
        &self,
        block: Block,
        fetch_pvt: impl FnOnce(&[TxPvtHashes<'_>]) -> PvtDataMap,
    ) -> Result<CommittedBlock, CommitError> {
        self.commit_validated(block, |txs| Cow::Owned(fetch_pvt(txs)))
    }

    fn commit_validated<'p>(
        &self,
        mut block: Block,
        fetch_pvt: impl FnOnce(&[TxPvtHashes<'_>]) -> Cow<'p, PvtDataMap>,
    ) -> Result<CommittedBlock, CommitError> {
        let v = self.validate_with(&block, fetch_pvt)?;
        set_filter(&mut block, v.codes.iter().map(|c| *c as u8).collect());
        let event = self.ledger.commit_shared(Arc::new(block), &v.updates)?;
        Ok(CommittedBlock {
            event,
            lifecycle_invoked: v.lifecycle_invoked,
        })
    }

    fn private_writes(&self, txid: &str, rw: &TxRwSet, pvt: &PvtDataMap) -> Vec<PvtCollWrites> {
        let Some(tx_pvt) = pvt.get(txid) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ns in &rw.ns_rwsets {
            for c in &ns.coll_hashed {
                if !self.ctx.is_local_member(&ns.namespace, &c.collection) {
                    continue;
                }
                let found = tx_pvt
                    .ns_pvt_rwset
                    .iter()
                    .filter(|p| p.namespace == ns.namespace)
                    .flat_map(|p| p.collection_pvt_rwset.iter())
                    .find(|cp| cp.collection_name == c.collection);
                let Some(cp) = found else { continue };
                if Sha256::digest(&cp.rwset)[..] != c.pvt_rwset_hash[..] {
                    tracing::warn!(txid, coll = %c.collection, "private data does not match its hash");
                    continue;
                }
                if let Ok(kv) = KvrwSet::decode(cp.rwset.as_slice()) {
                    out.push(PvtCollWrites {
                        namespace: ns.namespace.clone(),
                        collection: c.collection.clone(),
                        kv,
                    });
                }
            }
        }
        out
    }

    /// Steps 1–5 of the module docs for one transaction.
    fn stage1(&self, d: &[u8], snap: &Snapshot) -> Result<Stage1, LedgerError> {
        let Ok(env) = Envelope::decode(d) else {
            return Ok(fail(Code::InvalidOtherReason));
        };
        let Ok(payload) = Payload::decode(env.payload.as_slice()) else {
            return Ok(fail(Code::BadPayload));
        };
        let Some(hdr) = payload.header.as_ref() else {
            return Ok(fail(Code::BadCommonHeader));
        };
        let Ok(chdr) = ChannelHeader::decode(hdr.channel_header.as_slice()) else {
            return Ok(fail(Code::BadCommonHeader));
        };
        // Fabric's block store indexes every transaction by the txid in its header, whatever
        // its validation code.
        let mut out = self.stage1_with_header(&env, &payload, hdr, &chdr, snap)?;
        if out.txid.is_empty() {
            out.txid = chdr.tx_id.clone();
        }
        Ok(out)
    }

    fn stage1_with_header(
        &self,
        env: &Envelope,
        payload: &Payload,
        hdr: &fabric_protos::common::Header,
        chdr: &ChannelHeader,
        snap: &Snapshot,
    ) -> Result<Stage1, LedgerError> {
        let typ = HeaderType::try_from(chdr.r#type).ok();
        if !matches!(
            typ,
            Some(HeaderType::EndorserTransaction | HeaderType::ConfigUpdate | HeaderType::Config)
        ) || chdr.epoch != 0
        {
            return Ok(fail(Code::BadCommonHeader));
        }
        let Ok(shdr) = SignatureHeader::decode(hdr.signature_header.as_slice()) else {
            return Ok(fail(Code::BadCommonHeader));
        };
        if shdr.nonce.is_empty() || shdr.creator.is_empty() {
            return Ok(fail(Code::BadCommonHeader));
        }
        // Creator: known MSP of this channel, valid identity, signature over the payload.
        let creator_ok = chdr.channel_id == self.ctx.channel_id
            && !env.signature.is_empty()
            && self.ctx.msps.deserialize(&shdr.creator).is_ok_and(|c| {
                c.is_valid()
                    && crate::msp::sigcache::verify(
                        c.identity.public_key(),
                        &env.payload,
                        &env.signature,
                    )
                    .is_ok()
            });
        if !creator_ok {
            return Ok(fail(Code::BadCreatorSignature));
        }
        match typ {
            Some(HeaderType::ConfigUpdate) => return Ok(fail(Code::UnsupportedTxPayload)),
            // Config updates after genesis are not produced by the devnet's orderer.
            Some(HeaderType::Config) => return Ok(fail(Code::InvalidConfigTransaction)),
            _ => {}
        }
        let expected_txid = {
            let mut h = Sha256::new();
            h.update(&shdr.nonce);
            h.update(&shdr.creator);
            hex::encode(h.finalize())
        };
        if chdr.tx_id != expected_txid {
            return Ok(fail(Code::BadProposalTxid));
        }
        let timestamp = chdr
            .timestamp
            .as_ref()
            .map_or((0, 0), |t| (t.seconds, t.nanos));
        let mut out = Stage1 {
            code: Code::Valid as i32,
            txid: chdr.tx_id.clone(),
            timestamp,
            ..Default::default()
        };
        let Some((cap, prp)) = endorser_transaction(payload, hdr) else {
            out.code = Code::InvalidEndorserTransaction as i32;
            return Ok(out);
        };
        if snap.txid_exists(&chdr.tx_id)? {
            out.code = Code::DuplicateTxid as i32;
            return Ok(out);
        }
        out.absent = true;
        out.code = self.validate_action(chdr, &cap, &prp, snap, &mut out)? as i32;
        Ok(out)
    }

    /// The validation plugin (step 5).
    fn validate_action(
        &self,
        chdr: &ChannelHeader,
        cap: &ChaincodeActionPayload,
        prp: &ProposalResponsePayload,
        snap: &Snapshot,
        out: &mut Stage1,
    ) -> Result<Code, LedgerError> {
        let Ok(ext) = ChaincodeHeaderExtension::decode(chdr.extension.as_slice()) else {
            return Ok(Code::BadHeaderExtension);
        };
        let Ok(action) = ChaincodeAction::decode(prp.extension.as_slice()) else {
            return Ok(Code::BadResponsePayload);
        };
        let Ok(rwset) = TxRwSet::decode(&action.results) else {
            return Ok(Code::BadRwset);
        };
        let (Some(hdr_cc), Some(resp_cc)) =
            (ext.chaincode_id.as_ref(), action.chaincode_id.as_ref())
        else {
            return Ok(Code::InvalidOtherReason);
        };
        let cc = hdr_cc.name.as_str();
        if cc.is_empty() || cc != resp_cc.name || resp_cc.version.is_empty() {
            return Ok(Code::InvalidOtherReason);
        }
        if !action.events.is_empty() {
            match ChaincodeEvent::decode(action.events.as_slice()) {
                Ok(ev) if ev.chaincode_id == cc => {}
                _ => return Ok(Code::InvalidOtherReason),
            }
        }
        let mut namespaces = HashSet::new();
        let mut write_ns: Vec<&str> = vec![cc];
        let mut writes_system = false;
        for ns in &rwset.ns_rwsets {
            if !namespaces.insert(ns.namespace.as_str()) {
                return Ok(Code::IllegalWriteset);
            }
            let writes = !ns.kv.writes.is_empty()
                || !ns.kv.metadata_writes.is_empty()
                || ns.coll_hashed.iter().any(|c| {
                    !c.hashed.hashed_writes.is_empty() || !c.hashed.metadata_writes.is_empty()
                });
            if !writes {
                continue;
            }
            if ns.namespace != cc {
                write_ns.push(&ns.namespace);
            }
            writes_system |= SYSTEM_NAMESPACES.contains(&ns.namespace.as_str());
        }
        if writes_system && !SYSTEM_NAMESPACES.contains(&cc) {
            return Ok(Code::IllegalWriteset);
        }
        let mut policies = Vec::with_capacity(write_ns.len());
        for ns in &write_ns {
            match self.ctx.chaincode_policy(ns) {
                Some(p) => policies.push(p),
                None => return Ok(Code::InvalidChaincode),
            }
        }
        // Every endorsement signature is checked once here, for all the policies below.
        let action_body = cap
            .action
            .as_ref()
            .expect("checked by endorser_transaction");
        let prp_bytes = action_body.proposal_response_payload.as_slice();
        let mut seen_bytes = HashSet::new();
        let signed: Vec<(&[u8], Vec<u8>, &[u8])> = action_body
            .endorsements
            .iter()
            .filter(|e| seen_bytes.insert(e.endorser.as_slice()))
            .map(|e| {
                let mut data = Vec::with_capacity(prp_bytes.len() + e.endorser.len());
                data.extend_from_slice(prp_bytes);
                data.extend_from_slice(&e.endorser);
                (e.endorser.as_slice(), data, e.signature.as_slice())
            })
            .collect();
        let ids = verified_identities(
            &self.ctx.msps,
            signed.iter().map(|(i, d, s)| (*i, d.as_slice(), *s)),
        );
        for (ns, policy) in write_ns.iter().zip(&policies) {
            let Some(nsrw) = rwset.ns_rwsets.iter().find(|n| n.namespace == *ns) else {
                // The invoked chaincode wrote nothing: its policy must still hold (FAB-9473).
                if !self.ctx.evaluate(policy, &ids) {
                    return Ok(Code::EndorsementPolicyFailure);
                }
                continue;
            };
            let mut cc_checked = false;
            let mut any_checked = false;
            let mut checked_colls: HashSet<String> = HashSet::new();
            let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
            keys.extend(
                nsrw.kv
                    .writes
                    .iter()
                    .map(|w| (String::new(), w.key.as_bytes().to_vec())),
            );
            keys.extend(
                nsrw.kv
                    .metadata_writes
                    .iter()
                    .map(|w| (String::new(), w.key.as_bytes().to_vec())),
            );
            for c in &nsrw.coll_hashed {
                keys.extend(
                    c.hashed
                        .hashed_writes
                        .iter()
                        .map(|w| (c.collection.clone(), w.key_hash.clone())),
                );
                keys.extend(
                    c.hashed
                        .metadata_writes
                        .iter()
                        .map(|w| (c.collection.clone(), w.key_hash.clone())),
                );
            }
            for (coll, key) in &keys {
                out.written
                    .push((ns.to_string(), coll.clone(), key.clone()));
                let committed = if coll.is_empty() {
                    snap.get_state(ns, std::str::from_utf8(key).unwrap_or_default())?
                } else {
                    snap.get_private_hash(ns, coll, key)?
                };
                match committed.and_then(|v| v.metadata.get(VALIDATION_PARAMETER).cloned()) {
                    Some(vp) if !vp.is_empty() => {
                        let ok = SignaturePolicyRule::from_bytes(&vp)
                            .is_ok_and(|rule| rule.evaluate(&self.ctx.msps, &ids));
                        if !ok {
                            return Ok(Code::EndorsementPolicyFailure);
                        }
                        any_checked = true;
                    }
                    _ => {
                        // A collection-level policy stands in for the chaincode's.
                        let coll_policy = if coll.is_empty() {
                            None
                        } else {
                            self.ctx.collection_policy(ns, coll)
                        };
                        if let Some(cp) = coll_policy {
                            if checked_colls.insert(coll.clone()) {
                                if !self.ctx.evaluate(&cp, &ids) {
                                    return Ok(Code::EndorsementPolicyFailure);
                                }
                                any_checked = true;
                            }
                        } else if !cc_checked {
                            if !self.ctx.evaluate(policy, &ids) {
                                return Ok(Code::EndorsementPolicyFailure);
                            }
                            cc_checked = true;
                            any_checked = true;
                        }
                    }
                }
            }
            if !any_checked && !self.ctx.evaluate(policy, &ids) {
                return Ok(Code::EndorsementPolicyFailure);
            }
            out.vp_updates.extend(
                nsrw.kv
                    .metadata_writes
                    .iter()
                    .map(|w| (ns.to_string(), String::new(), w.key.as_bytes().to_vec())),
            );
            for c in &nsrw.coll_hashed {
                out.vp_updates.extend(
                    c.hashed
                        .metadata_writes
                        .iter()
                        .map(|w| (ns.to_string(), c.collection.clone(), w.key_hash.clone())),
                );
            }
        }
        out.lifecycle = cc == crate::lifecycle::LIFECYCLE;
        out.rwset = Some(rwset);
        Ok(Code::Valid)
    }
}

/// Decodes envelope, payload and channel header (for txids of blocks taken as they are).
fn decode_headers(d: &[u8]) -> Option<(Envelope, ChannelHeader, Payload)> {
    let env = Envelope::decode(d).ok()?;
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let chdr = ChannelHeader::decode(payload.header.as_ref()?.channel_header.as_slice()).ok()?;
    Some((env, chdr, payload))
}

/// Fabric's `validateEndorserTransaction`: one action, a well-formed action signature header, and
/// a proposal response whose proposal hash is SHA-256(channel header ‖ action signature header ‖
/// chaincode proposal payload).
fn endorser_transaction(
    payload: &Payload,
    hdr: &fabric_protos::common::Header,
) -> Option<(ChaincodeActionPayload, ProposalResponsePayload)> {
    let tx = Transaction::decode(payload.data.as_slice()).ok()?;
    if tx.actions.len() != 1 {
        return None;
    }
    let act = &tx.actions[0];
    let shdr = SignatureHeader::decode(act.header.as_slice()).ok()?;
    if shdr.nonce.is_empty() || shdr.creator.is_empty() {
        return None;
    }
    let cap = ChaincodeActionPayload::decode(act.payload.as_slice()).ok()?;
    let prp =
        ProposalResponsePayload::decode(cap.action.as_ref()?.proposal_response_payload.as_slice())
            .ok()?;
    let mut h = Sha256::new();
    h.update(&hdr.channel_header);
    h.update(&act.header);
    h.update(&cap.chaincode_proposal_payload);
    if h.finalize()[..] != prp.proposal_hash[..] {
        return None;
    }
    Some((cap, prp))
}

fn set_filter(block: &mut Block, filter: Vec<u8>) {
    let md = block.metadata.get_or_insert_with(Default::default);
    if md.metadata.len() < METADATA_SLOTS {
        md.metadata.resize(METADATA_SLOTS, Vec::new());
    }
    md.metadata[fabric_protos::common::BlockMetadataIndex::TransactionsFilter as usize] = filter;
}

/// Writes of earlier valid transactions of the block: key → new version (`None` = deleted).
#[derive(Debug, Default)]
struct Overlay {
    public: BTreeMap<(String, String), Option<Height>>,
    hashed: HashSet<(String, String, Vec<u8>)>,
}

impl Overlay {
    fn exists_after_block(
        &self,
        snap: &Snapshot,
        ns: &str,
        key: &str,
    ) -> Result<bool, LedgerError> {
        match self.public.get(&(ns.to_string(), key.to_string())) {
            Some(v) => Ok(v.is_some()),
            None => Ok(snap.get_version(ns, key)?.is_some()),
        }
    }

    /// Records a valid transaction's writes; a metadata write counts only for an existing key.
    fn apply(&mut self, rw: &TxRwSet, snap: &Snapshot, h: Height) -> Result<(), LedgerError> {
        for ns in &rw.ns_rwsets {
            for w in &ns.kv.writes {
                self.public.insert(
                    (ns.namespace.clone(), w.key.clone()),
                    (!w.is_delete).then_some(h),
                );
            }
            for m in &ns.kv.metadata_writes {
                let written = ns.kv.writes.iter().any(|w| w.key == m.key);
                if !written && self.exists_after_block(snap, &ns.namespace, &m.key)? {
                    self.public
                        .insert((ns.namespace.clone(), m.key.clone()), Some(h));
                }
            }
            for c in &ns.coll_hashed {
                for w in &c.hashed.hashed_writes {
                    self.hashed.insert((
                        ns.namespace.clone(),
                        c.collection.clone(),
                        w.key_hash.clone(),
                    ));
                }
                for m in &c.hashed.metadata_writes {
                    self.hashed.insert((
                        ns.namespace.clone(),
                        c.collection.clone(),
                        m.key_hash.clone(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Step 7: MVCC and phantom reads of one transaction.
fn mvcc(rw: &TxRwSet, snap: &Snapshot, overlay: &Overlay) -> Result<Code, LedgerError> {
    for ns in &rw.ns_rwsets {
        for r in &ns.kv.reads {
            if overlay
                .public
                .contains_key(&(ns.namespace.clone(), r.key.clone()))
            {
                return Ok(Code::MvccReadConflict);
            }
            let committed = snap.get_version(&ns.namespace, &r.key)?;
            let read = r.version.as_ref().map(Height::from_proto);
            if committed != read {
                return Ok(Code::MvccReadConflict);
            }
        }
        for q in &ns.kv.range_queries_info {
            if !range_query_still_valid(&ns.namespace, q, snap, overlay)? {
                return Ok(Code::PhantomReadConflict);
            }
        }
        for c in &ns.coll_hashed {
            for r in &c.hashed.hashed_reads {
                let k = (
                    ns.namespace.clone(),
                    c.collection.clone(),
                    r.key_hash.clone(),
                );
                if overlay.hashed.contains(&k) {
                    return Ok(Code::MvccReadConflict);
                }
                let committed = snap
                    .get_private_hash(&ns.namespace, &c.collection, &r.key_hash)?
                    .map(|v| v.version);
                if committed != r.version.as_ref().map(Height::from_proto) {
                    return Ok(Code::MvccReadConflict);
                }
            }
        }
    }
    Ok(Code::Valid)
}

/// Re-executes a recorded range query over committed state plus the block's earlier writes and
/// compares with what the simulation saw. When the simulation stopped early (iterator not
/// exhausted), `end_key` is the last key it read and is included.
fn range_query_still_valid(
    ns: &str,
    q: &RangeQueryInfo,
    snap: &Snapshot,
    overlay: &Overlay,
) -> Result<bool, LedgerError> {
    let include_end = !q.itr_exhausted && !q.end_key.is_empty();
    let mut results: BTreeMap<String, Height> = BTreeMap::new();
    for item in snap.state_range(ns, &q.start_key, &q.end_key)? {
        let (k, v) = item?;
        results.insert(k, v.version);
    }
    if include_end {
        if let Some(v) = snap.get_version(ns, &q.end_key)? {
            results.insert(q.end_key.clone(), v);
        }
    }
    let in_range = |k: &str| {
        k >= q.start_key.as_str()
            && (q.end_key.is_empty() || k < q.end_key.as_str() || (include_end && k == q.end_key))
    };
    let lo = (ns.to_string(), q.start_key.clone());
    for ((n, k), v) in overlay.public.range(lo..) {
        if n != ns {
            break;
        }
        if !in_range(k) {
            if !q.end_key.is_empty() && k.as_str() > q.end_key.as_str() {
                break;
            }
            continue;
        }
        match v {
            Some(h) => results.insert(k.clone(), *h),
            None => results.remove(k),
        };
    }
    let reads = results.into_iter().map(|(key, h)| KvRead {
        key,
        version: Some(h.to_proto()),
    });
    match &q.reads_info {
        Some(ReadsInfo::ReadsMerkleHashes(m)) => {
            let mut helper = RangeQueryResultsHelper::new(true, m.max_degree);
            for r in reads {
                helper.add(r);
            }
            Ok(matches!(helper.done(), RangeReads::Merkle(got) if got == *m))
        }
        Some(ReadsInfo::RawReads(r)) => Ok(reads.eq(r.kv_reads.iter().cloned())),
        // No recorded reads: valid only if the range is still empty.
        None => Ok(reads.count() == 0),
    }
}
