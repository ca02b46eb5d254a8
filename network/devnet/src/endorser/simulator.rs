//! The transaction simulator an endorser runs a proposal with: Fabric's `lockbased_txmgr`
//! `txSimulator` and `queryHelper` with the `rwsetutil.RWSetBuilder`, over a consistent
//! [`Snapshot`] of the ledger.
//!
//! Semantics kept from Fabric (a chaincode must behave the same on both):
//!
//! * every read goes to committed state and is recorded with the version it saw (reads do not
//!   see the transaction's own writes);
//! * an empty value written is a delete;
//! * range queries are recorded as `RangeQueryInfo` with raw reads or, past 50 results, a merkle
//!   summary; the end key is the last key the chaincode consumed unless it exhausted the range;
//! * paginated queries only in read-only transactions, writes refused after them, and after
//!   range queries over private data;
//! * private reads are recorded hashed (`SHA-256(key)`) with the version of the hashed state, and
//!   refused when the private value does not match that version; private writes go to the
//!   private rwset and hashed into the public one with `pvt_rwset_hash` = SHA-256 of the
//!   collection's serialized private `KVRWSet`;
//! * namespaces, keys and collections are emitted in sorted order (Go's `GetSortedKeys`).

use std::collections::{BTreeMap, BTreeSet};

use fabric_protos::kvrwset::{
    range_query_info::ReadsInfo, HashedRwSet, KvMetadataEntry, KvMetadataWrite,
    KvMetadataWriteHash, KvRead, KvReadHash, KvWrite, KvWriteHash, KvrwSet, RangeQueryInfo,
};
use fabric_protos::rwset::{
    CollectionHashedReadWriteSet, CollectionPvtReadWriteSet, NsPvtReadWriteSet, NsReadWriteSet,
    TxPvtReadWriteSet, TxReadWriteSet,
};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::committer::rangequery::{RangeQueryResultsHelper, RangeReads, DEFAULT_MAX_DEGREE};
use crate::ledger::{Height, HistoryEntry, LedgerError, Snapshot, StateRange};

/// Errors a simulation step returns to the chaincode (their text reaches the chaincode as Fabric's
/// does).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The operation is not allowed in this transaction (Fabric's precondition errors).
    #[error("{0}")]
    Refused(String),
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

fn height_string(h: Option<Height>) -> String {
    // Go prints a *version.Height with its String method, or <nil>.
    match h {
        Some(h) => format!("{{BlockNum: {}, TxNum: {}}}", h.block, h.tx),
        None => "<nil>".into(),
    }
}

#[derive(Debug, Default)]
struct CollBuilder {
    hashed_reads: BTreeMap<Vec<u8>, Option<Height>>,
    hashed_writes: BTreeMap<Vec<u8>, KvWriteHash>,
    hashed_meta: BTreeMap<Vec<u8>, BTreeMap<String, Vec<u8>>>,
    pvt_writes: BTreeMap<String, KvWrite>,
    pvt_meta: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    has_pvt: bool,
}

#[derive(Debug, Default)]
struct NsBuilder {
    reads: BTreeMap<String, Option<Height>>,
    range_queries: Vec<RangeQueryInfo>,
    writes: BTreeMap<String, KvWrite>,
    meta_writes: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    colls: BTreeMap<String, CollBuilder>,
}

/// The committed metadata of each key a transaction writes: namespace → collection ("" for
/// public) → key → metadata entries. The endorser derives the `ChaincodeInterest` from it.
pub type WritesetMetadata =
    BTreeMap<String, BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<u8>>>>>;

/// What a finished simulation produced.
#[derive(Debug, Default, Clone)]
pub struct SimulationResults {
    /// The public read-write set (hashed private parts included).
    pub public: TxReadWriteSet,
    /// The private read-write set, if the transaction wrote private data.
    pub private: Option<TxPvtReadWriteSet>,
    /// Committed metadata of written keys.
    pub writeset_metadata: WritesetMetadata,
    /// Collections whose private data was read: (namespace, collection).
    pub private_reads: BTreeSet<(String, String)>,
}

/// A public range scan in progress.
pub struct RangeScan {
    ns: String,
    inner: StateRange,
    info: RangeQueryInfo,
    end_key: String,
    helper: Option<RangeQueryResultsHelper>,
    limit: Option<usize>,
    returned: usize,
    exhausted: bool,
}

impl RangeScan {
    /// Whether the underlying range has more keys after the page limit (the bookmark).
    pub fn bookmark(&mut self) -> Result<String, SimError> {
        match self.inner.next() {
            Some(r) => Ok(r?.0),
            None => Ok(String::new()),
        }
    }
}

/// A transaction simulator on a ledger snapshot.
pub struct TxSimulator {
    snapshot: Snapshot,
    txid: String,
    ns: BTreeMap<String, NsBuilder>,
    writeset_metadata: WritesetMetadata,
    private_reads: BTreeSet<(String, String)>,
    write_performed: bool,
    pvt_query_performed: bool,
    paginated_query_performed: bool,
}

impl std::fmt::Debug for TxSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSimulator")
            .field("txid", &self.txid)
            .finish()
    }
}

impl TxSimulator {
    /// A simulator for `txid` reading `snapshot`.
    pub fn new(snapshot: Snapshot, txid: &str) -> Self {
        TxSimulator {
            snapshot,
            txid: txid.to_string(),
            ns: BTreeMap::new(),
            writeset_metadata: BTreeMap::new(),
            private_reads: BTreeSet::new(),
            write_performed: false,
            pvt_query_performed: false,
            paginated_query_performed: false,
        }
    }

    /// The snapshot (for history queries and lookups that record nothing).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    fn ns(&mut self, ns: &str) -> &mut NsBuilder {
        if !self.ns.contains_key(ns) {
            self.ns.insert(ns.to_string(), NsBuilder::default());
        }
        self.ns.get_mut(ns).expect("just inserted")
    }

    fn coll(&mut self, ns: &str, coll: &str) -> &mut CollBuilder {
        let n = self.ns(ns);
        if !n.colls.contains_key(coll) {
            n.colls.insert(coll.to_string(), CollBuilder::default());
        }
        n.colls.get_mut(coll).expect("just inserted")
    }

    fn check_write(&mut self) -> Result<(), SimError> {
        if self.pvt_query_performed {
            return Err(SimError::Refused(format!(
                "txid [{}]: unsuppored transaction. Queries on pvt data is supported only in a read-only transaction",
                self.txid
            )));
        }
        if self.paginated_query_performed {
            return Err(SimError::Refused(format!(
                "txid [{}]: unsuppored transaction. Paginated queries are supported only in a read-only transaction",
                self.txid
            )));
        }
        self.write_performed = true;
        Ok(())
    }

    fn note_write_metadata(&mut self, ns: &str, coll: &str, key: &str) -> Result<(), SimError> {
        let meta = if coll.is_empty() {
            self.snapshot
                .get_state(ns, key)?
                .map(|v| v.metadata)
                .unwrap_or_default()
        } else {
            self.snapshot
                .get_private_hash(ns, coll, &sha256(key.as_bytes()))?
                .map(|v| v.metadata)
                .unwrap_or_default()
        };
        self.writeset_metadata
            .entry(ns.to_string())
            .or_default()
            .entry(coll.to_string())
            .or_default()
            .insert(key.to_string(), meta);
        Ok(())
    }

    /// `GetState`: the committed value, read recorded.
    pub fn get_state(&mut self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, SimError> {
        let v = self.snapshot.get_state(ns, key)?;
        let version = v.as_ref().map(|v| v.version);
        self.ns(ns).reads.insert(key.to_string(), version);
        Ok(v.map(|v| v.value))
    }

    /// `GetStateMetadata`: the committed metadata, read recorded.
    pub fn get_state_metadata(
        &mut self,
        ns: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, SimError> {
        let v = self.snapshot.get_state(ns, key)?;
        let version = v.as_ref().map(|v| v.version);
        self.ns(ns).reads.insert(key.to_string(), version);
        Ok(v.map(|v| v.metadata).unwrap_or_default())
    }

    /// `SetState` (an empty value deletes, as in Fabric's rwset builder).
    pub fn set_state(&mut self, ns: &str, key: &str, value: Vec<u8>) -> Result<(), SimError> {
        self.check_write()?;
        let is_delete = value.is_empty();
        self.ns(ns).writes.insert(
            key.to_string(),
            KvWrite {
                key: key.to_string(),
                is_delete,
                value,
            },
        );
        self.note_write_metadata(ns, "", key)
    }

    /// `DeleteState`.
    pub fn delete_state(&mut self, ns: &str, key: &str) -> Result<(), SimError> {
        self.set_state(ns, key, Vec::new())
    }

    /// `SetStateMetadata`: replaces the key's metadata written by this transaction.
    pub fn set_state_metadata(
        &mut self,
        ns: &str,
        key: &str,
        metadata: BTreeMap<String, Vec<u8>>,
    ) -> Result<(), SimError> {
        self.check_write()?;
        self.ns(ns).meta_writes.insert(key.to_string(), metadata);
        self.note_write_metadata(ns, "", key)
    }

    /// `GetPrivateData`: the value this peer holds, checked against the hashed state's version;
    /// the hashed read is recorded.
    pub fn get_private_data(
        &mut self,
        ns: &str,
        coll: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, SimError> {
        let pvt = self.snapshot.get_private(ns, coll, key)?;
        let key_hash = sha256(key.as_bytes());
        let hashed = self.snapshot.get_private_hash(ns, coll, &key_hash)?;
        let pvt_ver = pvt.as_ref().map(|v| v.version);
        let hash_ver = hashed.as_ref().map(|v| v.version);
        if pvt_ver != hash_ver {
            return Err(SimError::Refused(format!(
                "private data matching public hash version is not available. Public hash version = {}, Private data version = {}",
                height_string(hash_ver),
                height_string(pvt_ver)
            )));
        }
        self.coll(ns, coll).hashed_reads.insert(key_hash, hash_ver);
        self.private_reads
            .insert((ns.to_string(), coll.to_string()));
        Ok(pvt.map(|v| v.value))
    }

    /// `GetPrivateDataHash`: SHA-256 of the value, from the hashed state every peer holds.
    pub fn get_private_data_hash(
        &mut self,
        ns: &str,
        coll: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, SimError> {
        let key_hash = sha256(key.as_bytes());
        let hashed = self.snapshot.get_private_hash(ns, coll, &key_hash)?;
        let ver = hashed.as_ref().map(|v| v.version);
        self.coll(ns, coll).hashed_reads.insert(key_hash, ver);
        Ok(hashed.map(|v| v.value))
    }

    /// `GetPrivateDataMetadata`: metadata of the hashed key.
    pub fn get_private_data_metadata(
        &mut self,
        ns: &str,
        coll: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, SimError> {
        let key_hash = sha256(key.as_bytes());
        let hashed = self.snapshot.get_private_hash(ns, coll, &key_hash)?;
        let ver = hashed.as_ref().map(|v| v.version);
        self.coll(ns, coll).hashed_reads.insert(key_hash, ver);
        Ok(hashed.map(|v| v.metadata).unwrap_or_default())
    }

    /// `SetPrivateData` (empty value deletes).
    pub fn set_private_data(
        &mut self,
        ns: &str,
        coll: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), SimError> {
        self.check_write()?;
        let is_delete = value.is_empty();
        let key_hash = sha256(key.as_bytes());
        let value_hash = if is_delete {
            Vec::new()
        } else {
            sha256(&value)
        };
        let c = self.coll(ns, coll);
        c.has_pvt = true;
        c.hashed_writes.insert(
            key_hash.clone(),
            KvWriteHash {
                key_hash,
                is_delete,
                value_hash,
                is_purge: false,
            },
        );
        c.pvt_writes.insert(
            key.to_string(),
            KvWrite {
                key: key.to_string(),
                is_delete,
                value,
            },
        );
        self.note_write_metadata(ns, coll, key)
    }

    /// `DeletePrivateData`.
    pub fn delete_private_data(&mut self, ns: &str, coll: &str, key: &str) -> Result<(), SimError> {
        self.set_private_data(ns, coll, key, Vec::new())
    }

    /// `PurgePrivateData`: a delete that also purges history (flagged in the hashed write).
    pub fn purge_private_data(&mut self, ns: &str, coll: &str, key: &str) -> Result<(), SimError> {
        self.check_write()?;
        let key_hash = sha256(key.as_bytes());
        let c = self.coll(ns, coll);
        c.has_pvt = true;
        c.hashed_writes.insert(
            key_hash.clone(),
            KvWriteHash {
                key_hash,
                is_delete: true,
                value_hash: Vec::new(),
                is_purge: true,
            },
        );
        c.pvt_writes.insert(
            key.to_string(),
            KvWrite {
                key: key.to_string(),
                is_delete: true,
                value: Vec::new(),
            },
        );
        self.note_write_metadata(ns, coll, key)
    }

    /// `SetPrivateDataMetadata`.
    pub fn set_private_data_metadata(
        &mut self,
        ns: &str,
        coll: &str,
        key: &str,
        metadata: BTreeMap<String, Vec<u8>>,
    ) -> Result<(), SimError> {
        self.check_write()?;
        let key_hash = sha256(key.as_bytes());
        let c = self.coll(ns, coll);
        c.has_pvt = true;
        c.hashed_meta.insert(key_hash, metadata.clone());
        c.pvt_meta.insert(key.to_string(), metadata);
        self.note_write_metadata(ns, coll, key)
    }

    /// `GetStateRangeScanIterator` (and the paginated variant when `page_size` is given).
    pub fn range_scan(
        &mut self,
        ns: &str,
        start: &str,
        end: &str,
        page_size: Option<usize>,
    ) -> Result<RangeScan, SimError> {
        if page_size.is_some() {
            if self.write_performed {
                return Err(SimError::Refused(format!(
                    "txid [{}]: unsuppored transaction. Paginated queries are supported only in a read-only transaction",
                    self.txid
                )));
            }
            self.paginated_query_performed = true;
        }
        let inner = self.snapshot.state_range(ns, start, end)?;
        Ok(RangeScan {
            ns: ns.to_string(),
            inner,
            info: RangeQueryInfo {
                start_key: start.to_string(),
                end_key: String::new(),
                itr_exhausted: false,
                reads_info: None,
            },
            end_key: end.to_string(),
            helper: Some(RangeQueryResultsHelper::new(true, DEFAULT_MAX_DEGREE)),
            limit: page_size,
            returned: 0,
            exhausted: false,
        })
    }

    /// The next result of a range scan (key, value), updating its recorded range info.
    pub fn range_next(
        &mut self,
        scan: &mut RangeScan,
    ) -> Result<Option<(String, Vec<u8>)>, SimError> {
        if scan.exhausted || scan.limit.is_some_and(|l| scan.returned >= l) {
            scan.info.itr_exhausted = true;
            scan.info.end_key = scan.end_key.clone();
            return Ok(None);
        }
        match scan.inner.next() {
            None => {
                scan.exhausted = true;
                scan.info.itr_exhausted = true;
                scan.info.end_key = scan.end_key.clone();
                Ok(None)
            }
            Some(r) => {
                let (key, v) = r?;
                scan.returned += 1;
                if let Some(h) = scan.helper.as_mut() {
                    h.add(KvRead {
                        key: key.clone(),
                        version: Some(v.version.to_proto()),
                    });
                }
                scan.info.end_key = key.clone();
                Ok(Some((key, v.value)))
            }
        }
    }

    /// Closes a range scan and records it in the read set (Fabric's `resultsItr.Close`).
    pub fn range_close(&mut self, mut scan: RangeScan) {
        let Some(helper) = scan.helper.take() else {
            return;
        };
        scan.info.reads_info = Some(match helper.done() {
            RangeReads::Raw(kv_reads) => {
                ReadsInfo::RawReads(fabric_protos::kvrwset::QueryReads { kv_reads })
            }
            RangeReads::Merkle(m) => ReadsInfo::ReadsMerkleHashes(m),
        });
        let ns = scan.ns.clone();
        self.ns(&ns).range_queries.push(scan.info);
    }

    /// `GetPrivateDataRangeScanIterator`: the private keys this peer holds in `[start, end)`.
    /// Nothing is recorded in the read set (Fabric cannot re-validate private ranges), so such
    /// queries are only allowed in read-only transactions.
    pub fn private_range(
        &mut self,
        ns: &str,
        coll: &str,
        start: &str,
        end: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, SimError> {
        if self.write_performed {
            return Err(SimError::Refused(format!(
                "txid [{}]: unsuppored transaction. Queries on pvt data is supported only in a read-only transaction",
                self.txid
            )));
        }
        self.pvt_query_performed = true;
        let mut out = Vec::new();
        for item in self.snapshot.private_range(ns, coll, start, end)? {
            let (key, v) = item?;
            out.push((key, v.value));
            if out.len() >= crate::chaincode::TOTAL_QUERY_LIMIT {
                break;
            }
        }
        Ok(out)
    }

    /// `GetHistoryForKey` (records nothing).
    pub fn history(&self, ns: &str, key: &str) -> Result<Vec<HistoryEntry>, SimError> {
        Ok(self.snapshot.history(ns, key)?)
    }

    /// Finishes the simulation (Fabric's `GetTxSimulationResults`).
    pub fn results(&mut self) -> SimulationResults {
        let mut ns_rwset = Vec::with_capacity(self.ns.len());
        let mut pvt_ns = Vec::new();
        for (ns, b) in std::mem::take(&mut self.ns) {
            let kv = KvrwSet {
                reads: b
                    .reads
                    .into_iter()
                    .map(|(key, v)| KvRead {
                        key,
                        version: v.map(Height::to_proto),
                    })
                    .collect(),
                range_queries_info: b.range_queries,
                writes: b.writes.into_values().collect(),
                metadata_writes: b
                    .meta_writes
                    .into_iter()
                    .map(|(key, m)| KvMetadataWrite {
                        key,
                        entries: entries(m),
                    })
                    .collect(),
            };
            let mut coll_hashed = Vec::new();
            let mut coll_pvt = Vec::new();
            for (coll, c) in b.colls {
                let mut pvt_hash = Vec::new();
                if c.has_pvt {
                    let pvt = KvrwSet {
                        reads: Vec::new(),
                        range_queries_info: Vec::new(),
                        writes: c.pvt_writes.into_values().collect(),
                        metadata_writes: c
                            .pvt_meta
                            .into_iter()
                            .map(|(key, m)| KvMetadataWrite {
                                key,
                                entries: entries(m),
                            })
                            .collect(),
                    }
                    .encode_to_vec();
                    pvt_hash = sha256(&pvt);
                    coll_pvt.push(CollectionPvtReadWriteSet {
                        collection_name: coll.clone(),
                        rwset: pvt,
                    });
                }
                let hashed = HashedRwSet {
                    hashed_reads: c
                        .hashed_reads
                        .into_iter()
                        .map(|(key_hash, v)| KvReadHash {
                            key_hash,
                            version: v.map(Height::to_proto),
                        })
                        .collect(),
                    hashed_writes: c.hashed_writes.into_values().collect(),
                    metadata_writes: c
                        .hashed_meta
                        .into_iter()
                        .map(|(key_hash, m)| KvMetadataWriteHash {
                            key_hash,
                            entries: entries(m),
                        })
                        .collect(),
                };
                coll_hashed.push(CollectionHashedReadWriteSet {
                    collection_name: coll,
                    hashed_rwset: hashed.encode_to_vec(),
                    pvt_rwset_hash: pvt_hash,
                });
            }
            if !coll_pvt.is_empty() {
                pvt_ns.push(NsPvtReadWriteSet {
                    namespace: ns.clone(),
                    collection_pvt_rwset: coll_pvt,
                });
            }
            ns_rwset.push(NsReadWriteSet {
                namespace: ns,
                rwset: kv.encode_to_vec(),
                collection_hashed_rwset: coll_hashed,
            });
        }
        SimulationResults {
            public: TxReadWriteSet {
                data_model: 0,
                ns_rwset,
            },
            private: (!pvt_ns.is_empty()).then_some(TxPvtReadWriteSet {
                data_model: 0,
                ns_pvt_rwset: pvt_ns,
            }),
            writeset_metadata: std::mem::take(&mut self.writeset_metadata),
            private_reads: std::mem::take(&mut self.private_reads),
        }
    }
}

fn entries(m: BTreeMap<String, Vec<u8>>) -> Vec<KvMetadataEntry> {
    m.into_iter()
        .map(|(name, value)| KvMetadataEntry { name, value })
        .collect()
}
