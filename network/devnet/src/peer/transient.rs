//! The transient store, shared by every peer of the devnet: where an endorser leaves a
//! transaction's private write set until the peers that store the collections commit the block.
//!
//! In Fabric each endorsing peer keeps the private rwset in its own transient store and gossips
//! it to the collections' member peers; all of them sit in one process here, so one shared store
//! stands in for both (what a member peer finally stores is still decided by the committer from
//! the collection membership). An entry is dropped once every peer that joined the channel has
//! committed the block holding its transaction, or when it is older than Fabric's
//! `transientstoreMaxBlockRetention` (1000 blocks) — an orphaned endorsement.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use fabric_protos::common::Block;
use fabric_protos::rwset::{NsPvtReadWriteSet, TxPvtReadWriteSet};
use sha2::{Digest, Sha256};

use crate::committer::{PvtDataMap, TxPvtHashes};

/// Blocks after endorsement during which an uncommitted private write set is kept (Fabric's
/// `peer.gossip.pvtData.transientstoreMaxBlockRetention` default).
pub const MAX_BLOCK_RETENTION: u64 = 1000;

#[derive(Debug)]
struct Entry {
    endorsed_at: u64,
    /// Distinct write sets endorsers produced (normally one).
    candidates: Vec<TxPvtReadWriteSet>,
    /// Peers that have committed the transaction.
    consumed: HashSet<String>,
}

#[derive(Debug, Default)]
struct Channel {
    peers: HashSet<String>,
    entries: HashMap<String, Entry>,
}

/// Private write sets by channel and txid; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct TransientStore {
    inner: Arc<Mutex<HashMap<String, Channel>>>,
}

impl TransientStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `peer` (its name) has joined `channel`, so entries wait for its commit too.
    pub fn register_peer(&self, channel: &str, peer: &str) {
        self.inner
            .lock()
            .expect("transient store")
            .entry(channel.to_string())
            .or_default()
            .peers
            .insert(peer.to_string());
    }

    /// Stores a private write set an endorser produced for `txid` at ledger height
    /// `endorsed_at` (Fabric's `Persist` plus dissemination).
    pub fn persist(&self, channel: &str, txid: &str, endorsed_at: u64, pvt: TxPvtReadWriteSet) {
        let mut inner = self.inner.lock().expect("transient store");
        let ch = inner.entry(channel.to_string()).or_default();
        let e = ch.entries.entry(txid.to_string()).or_insert_with(|| Entry {
            endorsed_at,
            candidates: Vec::new(),
            consumed: HashSet::new(),
        });
        if !e.candidates.contains(&pvt) {
            e.candidates.push(pvt);
        }
    }

    /// Number of transactions with private data waiting on `channel`.
    pub fn len(&self, channel: &str) -> usize {
        self.inner
            .lock()
            .expect("transient store")
            .get(channel)
            .map_or(0, |c| c.entries.len())
    }

    /// Whether nothing waits on `channel`.
    pub fn is_empty(&self, channel: &str) -> bool {
        self.len(channel) == 0
    }

    /// The private data for the transactions of `block`, one write set per txid: for each
    /// collection, the candidate whose hash is the one on chain (so a mismatching endorsement
    /// cannot shadow a matching one).
    pub fn for_block(&self, channel: &str, block: &Block) -> PvtDataMap {
        let hashes = block_pvt_hashes(block);
        let txs: Vec<TxPvtHashes> = hashes
            .iter()
            .map(|(txid, colls)| TxPvtHashes {
                txid,
                hashes: colls
                    .iter()
                    .map(|((ns, coll), h)| (ns.as_str(), coll.as_str(), h.as_slice()))
                    .collect(),
            })
            .collect();
        self.for_txs(channel, &txs)
    }

    /// The private data for transactions whose private-data hashes on chain are known (what the
    /// committer hands over), chosen as [`TransientStore::for_block`] chooses it.
    pub fn for_txs(&self, channel: &str, txs: &[TxPvtHashes<'_>]) -> PvtDataMap {
        let mut out = PvtDataMap::new();
        let inner = self.inner.lock().expect("transient store");
        let Some(ch) = inner.get(channel) else {
            return out;
        };
        if ch.entries.is_empty() {
            return out;
        }
        for tx in txs {
            let Some(e) = ch.entries.get(tx.txid) else {
                continue;
            };
            let mut merged: BTreeMap<&str, NsPvtReadWriteSet> = BTreeMap::new();
            for &(ns, coll, hash) in &tx.hashes {
                let found = e
                    .candidates
                    .iter()
                    .flat_map(|c| c.ns_pvt_rwset.iter())
                    .filter(|n| n.namespace == ns)
                    .flat_map(|n| n.collection_pvt_rwset.iter())
                    .find(|c| c.collection_name == coll && Sha256::digest(&c.rwset)[..] == *hash)
                    .or_else(|| {
                        // None matches: hand over the first, the committer reports the mismatch.
                        e.candidates
                            .iter()
                            .flat_map(|c| c.ns_pvt_rwset.iter())
                            .filter(|n| n.namespace == ns)
                            .flat_map(|n| n.collection_pvt_rwset.iter())
                            .find(|c| c.collection_name == coll)
                    });
                if let Some(c) = found {
                    merged
                        .entry(ns)
                        .or_insert_with(|| NsPvtReadWriteSet {
                            namespace: ns.to_string(),
                            collection_pvt_rwset: Vec::new(),
                        })
                        .collection_pvt_rwset
                        .push(c.clone());
                }
            }
            if !merged.is_empty() {
                out.insert(
                    tx.txid.to_string(),
                    TxPvtReadWriteSet {
                        data_model: 0,
                        ns_pvt_rwset: merged.into_values().collect(),
                    },
                );
            }
        }
        out
    }

    /// Records that `peer` committed block `number` holding `txids`, dropping entries every
    /// joined peer has committed and entries past the retention.
    pub fn committed<I>(&self, channel: &str, peer: &str, number: u64, txids: I)
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut inner = self.inner.lock().expect("transient store");
        let Some(ch) = inner.get_mut(channel) else {
            return;
        };
        if ch.entries.is_empty() {
            return;
        }
        for txid in txids {
            let txid = txid.as_ref();
            let done = match ch.entries.get_mut(txid) {
                Some(e) => {
                    e.consumed.insert(peer.to_string());
                    ch.peers.iter().all(|p| e.consumed.contains(p))
                }
                None => false,
            };
            if done {
                ch.entries.remove(txid);
            }
        }
        ch.entries
            .retain(|_, e| e.endorsed_at + MAX_BLOCK_RETENTION > number);
    }
}

type CollHashes = Vec<((String, String), Vec<u8>)>;

/// `(txid, [((namespace, collection), pvt_rwset_hash)])` of every endorser transaction of a
/// block that has private writes.
fn block_pvt_hashes(block: &Block) -> Vec<(String, CollHashes)> {
    let Some(data) = block.data.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in &data.data {
        let Ok(tx) = fabric_common::tx::unpack_envelope_bytes(d) else {
            continue;
        };
        let mut hashes = Vec::new();
        for a in &tx.actions {
            let Ok(Some(rw)) = a.rwset() else { continue };
            for ns in rw.ns_rwset {
                for c in ns.collection_hashed_rwset {
                    if !c.pvt_rwset_hash.is_empty() {
                        hashes.push(((ns.namespace.clone(), c.collection_name), c.pvt_rwset_hash));
                    }
                }
            }
        }
        if !hashes.is_empty() {
            out.push((tx.tx_id().to_string(), hashes));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::common::{ChannelHeader, Envelope, Header, HeaderType, Payload};
    use fabric_protos::protos::{
        ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeInvocationSpec,
        ChaincodeProposalPayload, ProposalResponsePayload, Transaction, TransactionAction,
    };
    use fabric_protos::rwset::{
        CollectionHashedReadWriteSet, CollectionPvtReadWriteSet, NsReadWriteSet, TxReadWriteSet,
    };
    use prost::Message;

    fn pvt(ns: &str, coll: &str, bytes: &[u8]) -> TxPvtReadWriteSet {
        TxPvtReadWriteSet {
            data_model: 0,
            ns_pvt_rwset: vec![NsPvtReadWriteSet {
                namespace: ns.into(),
                collection_pvt_rwset: vec![CollectionPvtReadWriteSet {
                    collection_name: coll.into(),
                    rwset: bytes.to_vec(),
                }],
            }],
        }
    }

    /// A block with one endorser transaction whose hashed rwset names `coll` with the hash of
    /// `bytes`.
    fn block(txid: &str, ns: &str, coll: &str, bytes: &[u8]) -> Block {
        let rw = TxReadWriteSet {
            data_model: 0,
            ns_rwset: vec![NsReadWriteSet {
                namespace: ns.into(),
                rwset: Vec::new(),
                collection_hashed_rwset: vec![CollectionHashedReadWriteSet {
                    collection_name: coll.into(),
                    hashed_rwset: Vec::new(),
                    pvt_rwset_hash: Sha256::digest(bytes).to_vec(),
                }],
            }],
        };
        let prp = ProposalResponsePayload {
            proposal_hash: vec![1],
            extension: ChaincodeAction {
                results: rw.encode_to_vec(),
                ..Default::default()
            }
            .encode_to_vec(),
        };
        let cap = ChaincodeActionPayload {
            chaincode_proposal_payload: ChaincodeProposalPayload {
                input: ChaincodeInvocationSpec::default().encode_to_vec(),
                transient_map: Default::default(),
            }
            .encode_to_vec(),
            action: Some(ChaincodeEndorsedAction {
                proposal_response_payload: prp.encode_to_vec(),
                endorsements: Vec::new(),
            }),
        };
        let payload = Payload {
            header: Some(Header {
                channel_header: ChannelHeader {
                    r#type: HeaderType::EndorserTransaction as i32,
                    tx_id: txid.into(),
                    ..Default::default()
                }
                .encode_to_vec(),
                signature_header: Vec::new(),
            }),
            data: Transaction {
                actions: vec![TransactionAction {
                    header: Vec::new(),
                    payload: cap.encode_to_vec(),
                }],
            }
            .encode_to_vec(),
        };
        let env = Envelope {
            payload: payload.encode_to_vec(),
            signature: Vec::new(),
        };
        crate::ledger::block::new_block(5, Vec::new(), vec![env.encode_to_vec()])
    }

    #[test]
    fn the_candidate_matching_the_hash_on_chain_is_handed_over() {
        let store = TransientStore::new();
        store.persist("ch", "tx1", 3, pvt("cc", "c1", b"forged"));
        store.persist("ch", "tx1", 3, pvt("cc", "c1", b"genuine"));
        store.persist("ch", "tx1", 3, pvt("cc", "c1", b"genuine"));
        let got = store.for_block("ch", &block("tx1", "cc", "c1", b"genuine"));
        let c = &got["tx1"].ns_pvt_rwset[0].collection_pvt_rwset[0];
        assert_eq!(c.rwset, b"genuine");
        // Another channel's store is separate.
        assert!(store
            .for_block("other", &block("tx1", "cc", "c1", b"genuine"))
            .is_empty());
    }

    #[test]
    fn entries_go_once_every_joined_peer_committed_or_after_the_retention() {
        let store = TransientStore::new();
        store.register_peer("ch", "p1");
        store.register_peer("ch", "p2");
        store.persist("ch", "tx1", 3, pvt("cc", "c1", b"v"));
        store.persist("ch", "orphan", 3, pvt("cc", "c1", b"w"));
        store.committed("ch", "p1", 5, &["tx1".to_string()]);
        assert_eq!(store.len("ch"), 2);
        store.committed("ch", "p2", 5, &["tx1".to_string()]);
        assert_eq!(store.len("ch"), 1);
        store.committed("ch", "p1", 3 + MAX_BLOCK_RETENTION - 1, [""; 0]);
        assert_eq!(store.len("ch"), 1);
        store.committed("ch", "p1", 3 + MAX_BLOCK_RETENTION, [""; 0]);
        assert!(store.is_empty("ch"));
    }
}
