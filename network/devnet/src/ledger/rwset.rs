//! A transaction's read-write set decoded once: Fabric's `rwset.TxReadWriteSet` with each
//! namespace's `KVRWSet` and each collection's `HashedRWSet` already unmarshalled (Fabric's
//! `rwsetutil.TxRwSet`).

use fabric_protos::kvrwset::{HashedRwSet, KvrwSet};
use fabric_protos::rwset::TxReadWriteSet;
use prost::Message;

/// A decoded transaction read-write set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TxRwSet {
    /// One entry per chaincode namespace the transaction touched, in the order the rwset lists them.
    pub ns_rwsets: Vec<NsRwSet>,
}

/// The reads and writes of one namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NsRwSet {
    /// The chaincode name (namespace).
    pub namespace: String,
    /// Public reads, range query infos, writes and metadata writes.
    pub kv: KvrwSet,
    /// Hashed reads and writes per private data collection.
    pub coll_hashed: Vec<CollHashedRwSet>,
}

/// The hashed reads and writes of one private data collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollHashedRwSet {
    /// The collection name.
    pub collection: String,
    /// Hashed keys and values.
    pub hashed: HashedRwSet,
    /// SHA-256 of the collection's serialized private `KVRWSet`, as the endorser computed it.
    pub pvt_rwset_hash: Vec<u8>,
}

impl TxRwSet {
    /// Decodes a serialized `rwset.TxReadWriteSet` and its nested sets.
    pub fn decode(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        let tx = TxReadWriteSet::decode(bytes)?;
        let mut ns_rwsets = Vec::with_capacity(tx.ns_rwset.len());
        for ns in tx.ns_rwset {
            let kv = KvrwSet::decode(ns.rwset.as_slice())?;
            let mut coll_hashed = Vec::with_capacity(ns.collection_hashed_rwset.len());
            for c in ns.collection_hashed_rwset {
                coll_hashed.push(CollHashedRwSet {
                    collection: c.collection_name,
                    hashed: HashedRwSet::decode(c.hashed_rwset.as_slice())?,
                    pvt_rwset_hash: c.pvt_rwset_hash,
                });
            }
            ns_rwsets.push(NsRwSet {
                namespace: ns.namespace,
                kv,
                coll_hashed,
            });
        }
        Ok(TxRwSet { ns_rwsets })
    }

    /// Encodes back to a serialized `rwset.TxReadWriteSet` (what an endorser puts in a response).
    pub fn encode(&self) -> Vec<u8> {
        use fabric_protos::rwset::{CollectionHashedReadWriteSet, NsReadWriteSet};
        TxReadWriteSet {
            data_model: 0,
            ns_rwset: self
                .ns_rwsets
                .iter()
                .map(|ns| NsReadWriteSet {
                    namespace: ns.namespace.clone(),
                    rwset: ns.kv.encode_to_vec(),
                    collection_hashed_rwset: ns
                        .coll_hashed
                        .iter()
                        .map(|c| CollectionHashedReadWriteSet {
                            collection_name: c.collection.clone(),
                            hashed_rwset: c.hashed.encode_to_vec(),
                            pvt_rwset_hash: c.pvt_rwset_hash.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
        .encode_to_vec()
    }
}
