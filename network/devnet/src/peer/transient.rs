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

    /// The private data for transactions whose private-data hashes on chain are known (what the
    /// committer hands over), one write set per txid: for each collection, the candidate whose
    /// hash is the one on chain (so a mismatching endorsement cannot shadow a matching one).
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

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::rwset::CollectionPvtReadWriteSet;

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

    /// The hash on chain of one collection's private write set `bytes`.
    fn on_chain(bytes: &[u8]) -> Vec<u8> {
        Sha256::digest(bytes).to_vec()
    }

    #[test]
    fn the_candidate_matching_the_hash_on_chain_is_handed_over() {
        let store = TransientStore::new();
        store.persist("ch", "tx1", 3, pvt("cc", "c1", b"forged"));
        store.persist("ch", "tx1", 3, pvt("cc", "c1", b"genuine"));
        store.persist("ch", "tx1", 3, pvt("cc", "c1", b"genuine"));
        let hash = on_chain(b"genuine");
        let txs = [TxPvtHashes {
            txid: "tx1",
            hashes: vec![("cc", "c1", hash.as_slice())],
        }];
        let got = store.for_txs("ch", &txs);
        let c = &got["tx1"].ns_pvt_rwset[0].collection_pvt_rwset[0];
        assert_eq!(c.rwset, b"genuine");
        // Another channel's store is separate.
        assert!(store.for_txs("other", &txs).is_empty());
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
