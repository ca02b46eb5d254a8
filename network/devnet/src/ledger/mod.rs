//! The ledger of one peer on one channel: Fabric's `kvledger` (block store, state database,
//! history database, private data store and txid index). Blocks are appended to block files
//! (`<name>.blocks/blockfile_NNNNNN`, as Fabric's block file manager keeps them); everything else,
//! including the index that says which blocks exist and where, is in one redb file.
//!
//! # What is durable when
//!
//! [`Ledger::commit`] makes a block durable in two steps, in this order:
//!
//! 1. the block bytes are appended to the current block file and `fdatasync`ed (written around
//!    the page cache where the file system allows direct I/O, else dropped from it once clean:
//!    recent blocks are read from memory anyway; see `blockfile`);
//! 2. **one** redb write transaction holds, together: the block's index entry (number → file,
//!    offset, length), the state / private updates and history entries of its valid transactions,
//!    its txid index and private-hash entries (in the recent-entry log, see below), and the
//!    savepoint (the block's number). It is committed with [`redb::Durability::Immediate`] (redb
//!    fsyncs before returning; the pages it wrote are then released from the page cache, see
//!    `backend`).
//!
//! The redb commit is the moment the block is on the ledger: when `commit` returns `Ok`,
//! everything of that block is on disk, and after a crash at any earlier moment the database
//! holds *none* of it (redb's commit is atomic: the previous commit slot stays the live one).
//! Because of the order, an index entry never names bytes that are not durable. Bytes of a
//! block whose redb commit did not happen stay in the block file on no index, so no reader sees
//! them (a retried commit appends after them); [`Ledger::open`] cuts the files back to the end of
//! the last indexed block before anything is appended again.
//!
//! So blocks and state **cannot disagree by construction**: there is no window in which a block is
//! indexed without its state updates or the reverse, and no replay of blocks is ever needed.
//! [`Ledger::open`] still checks the invariant (savepoint = number of the last indexed block,
//! block files at least as long as the index says) and refuses a store that breaks it;
//! `tests/ledger_crash.rs` kills a committing process with SIGKILL repeatedly and checks that
//! every block reported committed is present, the hash chain verifies and the state equals a
//! replay of the blocks.
//!
//! # Keys that are hashes
//!
//! Txids and private-data key hashes would land on random B-tree leaves, and rewriting a leaf
//! per key made commits slower as the ledger grew. Their entries are logged per block (appended
//! in order, cheap), held in memory, and appended in key order to tables of their own (runs), a
//! slice per block; reads look at the recent entries first, then the runs from the newest, then
//! the base tables. `recent` has the details; what a commit makes durable is the same. Most
//! lookups in those tables are of keys never written (a new transaction's txid, a new private
//! key's hash): in-memory Bloom filters of the tables' keys
//! (`filter`, filled by a scan when the ledger opens) answer those without a B-tree descent.
//! They are never stored, so they change nothing of what is durable.
//!
//! Notifications ([`Ledger::subscribe`], [`Ledger::watch_height`]) are sent only after the
//! durable commit, so a Deliver stream or a commit-status waiter never reports a block that a crash
//! could take back.

mod backend;
mod blockfile;
mod codec;
mod filter;
mod recent;

pub mod block;
pub mod rwset;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use filter::Filters;
use recent::{Generation, Kind, Recent};

use fabric_protos::common::Block;
use fabric_protos::kvrwset::KvrwSet;
use prost::Message;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use tokio::sync::{broadcast, watch};

pub use rwset::{CollHashedRwSet, NsRwSet, TxRwSet};

/// A block's place in the block files as the index stores it: (file, offset, length).
type IndexedLoc = (u32, u64, u64);
/// Where the block files hold each block: number → (file, offset, length).
const BLOCK_INDEX: TableDefinition<u64, IndexedLoc> = TableDefinition::new("block_index");
/// Blocks as earlier versions stored them, inside the database; moved to the block files on open.
const LEGACY_BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const TXIDS: TableDefinition<&str, &[u8]> = TableDefinition::new("txids");
const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
const PVT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pvt");
const PVT_HASH: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pvt_hash");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Each block's entries of the txid and private-hash tables until they are written to their run
/// (see `recent`): (block number, chunk) → encoded entries. Chunks stay well below a page: redb
/// rewrites a leaf whole, and a leaf of a few huge values would be rewritten at every append.
const RECENT_LOG: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("recent_log");
const SAVEPOINT: &str = "savepoint";

/// A run table: a frozen generation's keys of one kind, each with [`RUN_VALUE`] and its value or
/// [`RUN_DELETE`] (see `recent`).
type RunTable<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;
const RUN_DELETE: u8 = 0;
const RUN_VALUE: u8 = 1;

/// The name of the run table of `kind` for the generation that starts at block `run`.
fn run_table_name(kind: Kind, run: u64) -> String {
    let base = match kind {
        Kind::Txid => TXIDS.name(),
        Kind::PvtHash => PVT_HASH.name(),
    };
    format!("{base}@{run:020}")
}

/// The kind and first block of a run table's name, if it is one.
fn parse_run_table_name(name: &str) -> Option<(Kind, u64)> {
    let (base, run) = name.split_once('@')?;
    let kind = if base == TXIDS.name() {
        Kind::Txid
    } else if base == PVT_HASH.name() {
        Kind::PvtHash
    } else {
        return None;
    };
    Some((kind, run.parse().ok()?))
}

/// The runs of a database, oldest first (a generation with keys of one kind only has one table).
fn stored_runs(rtx: &redb::ReadTransaction) -> Result<Vec<u64>, LedgerError> {
    let mut runs: Vec<u64> = rtx
        .list_tables()?
        .filter_map(|t| parse_run_table_name(t.name()).map(|(_, run)| run))
        .collect();
    runs.sort_unstable();
    runs.dedup();
    Ok(runs)
}

/// The run table of `kind` that starts at block `run`, if `rtx` holds it (a generation with keys
/// of one kind only has no table of the other; a run begun after `rtx` is not there yet).
fn open_run(
    rtx: &redb::ReadTransaction,
    kind: Kind,
    run: u64,
) -> Result<Option<BytesTable>, LedgerError> {
    match rtx.open_table(RunTable::new(&run_table_name(kind, run))) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The value of `key` in the newest of `runs` that holds it (`Some(None)`: deleted there), or
/// `None` when no run does. A run a view does not hold yet counts as empty; runs whose filter
/// rules the key out are not read.
fn run_lookup(
    rtx: &redb::ReadTransaction,
    runs: &[u64],
    filters: &Filters,
    kind: Kind,
    key: &[u8],
) -> Result<Option<recent::Value>, LedgerError> {
    for &run in runs.iter().rev() {
        if !filters.run_may_contain(kind, run, key) {
            continue;
        }
        let Some(table) = open_run(rtx, kind, run)? else {
            continue;
        };
        if let Some(g) = table.get(key)? {
            return match g.value().split_first() {
                Some((&RUN_VALUE, v)) => Ok(Some(Some(Arc::from(v)))),
                Some((&RUN_DELETE, [])) => Ok(Some(None)),
                _ => Err(LedgerError::Corrupt(format!(
                    "entry of run table {}",
                    run_table_name(kind, run)
                ))),
            };
        }
    }
    Ok(None)
}

/// redb's page cache per ledger, at most (it fills as pages are read and written, so a busy
/// channel's ledger soon takes all of it). Lookups of new txids and private keys are answered by
/// the key filters, not B-tree descents, so the cache serves mostly the branch pages and recent
/// leaves commits touch: with a million licences on the ledger, bulk issuance ran as fast with
/// 256 MiB per ledger as with 1 GiB (and lost less against 10,000 licences), and the devnet's
/// process held ≈1.9 GiB instead of ≈4.9. (Pages that left this cache are read back from disk:
/// see `warm_log` for the one place where that was in a commit's way.)
const DEFAULT_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Keys of the txid and private-hash tables held in memory before they are written to a run
/// (about 200 bytes each, and up to two generations): a run per about 100,000 transactions.
const DEFAULT_MERGE_AFTER: usize = 256 * 1024;

/// How a ledger is opened.
#[derive(Debug, Clone, Copy)]
pub struct LedgerOptions {
    /// redb's page cache in bytes.
    pub cache_bytes: usize,
    /// Recent txid and private-hash entries kept in memory before they are written to a run
    /// table (at least 1).
    pub merge_after: usize,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            cache_bytes: DEFAULT_CACHE_BYTES,
            merge_after: DEFAULT_MERGE_AFTER,
        }
    }
}

/// The metadata entry name Fabric uses for a key-level endorsement policy.
pub const VALIDATION_PARAMETER: &str = "VALIDATION_PARAMETER";

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database failed (I/O, corruption detected by redb, ...).
    #[error("ledger database: {0}")]
    Db(#[from] redb::Error),
    /// The block files could not be read or written.
    #[error("block files: {0}")]
    Io(#[from] std::io::Error),
    /// A stored record could not be decoded.
    #[error("corrupt ledger record: {0}")]
    Corrupt(String),
    /// A block was offered out of order.
    #[error("block {got} does not extend the ledger at height {height}")]
    OutOfOrder {
        /// The offered block's number.
        got: u64,
        /// The ledger's height (number of the next block).
        height: u64,
    },
    /// A block's previous hash is not the hash of the ledger's last block header.
    #[error("block {0}: previous hash does not match the last block's header hash")]
    BrokenChain(u64),
    /// A block has no header.
    #[error("block without header")]
    NoHeader,
    /// A block or message could not be decoded.
    #[error("decoding: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The store breaks the block/savepoint invariant (it cannot, unless the file was tampered with).
    #[error("inconsistent ledger: {0}")]
    Inconsistent(String),
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for LedgerError {
            fn from(e: $t) -> Self {
                LedgerError::Db(e.into())
            }
        }
    )*};
}
redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A version as Fabric's state database keeps it: the height (block, tx) of the last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Height {
    /// Block number.
    pub block: u64,
    /// Transaction number within the block.
    pub tx: u64,
}

impl Height {
    /// The height as `kvrwset.Version`.
    pub fn to_proto(self) -> fabric_protos::kvrwset::Version {
        fabric_protos::kvrwset::Version {
            block_num: self.block,
            tx_num: self.tx,
        }
    }
    /// The height from `kvrwset.Version`.
    pub fn from_proto(v: &fabric_protos::kvrwset::Version) -> Self {
        Height {
            block: v.block_num,
            tx: v.tx_num,
        }
    }
}

/// A state value with its version and metadata (e.g. [`VALIDATION_PARAMETER`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    /// The value bytes (for private hashes: the SHA-256 of the private value).
    pub value: Vec<u8>,
    /// Metadata entries, name → value.
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// The height of the transaction that last wrote the key.
    pub version: Height,
}

impl VersionedValue {
    fn decode(b: &[u8]) -> Result<Self, LedgerError> {
        let (version, meta, value) = codec::decode_value(b)?;
        let metadata = if meta.is_empty() {
            BTreeMap::new()
        } else {
            codec::decode_metadata(meta)?
        };
        Ok(VersionedValue {
            value: value.to_vec(),
            metadata,
            version,
        })
    }
}

/// Where a transaction is on the ledger and how it was validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Block number.
    pub block: u64,
    /// Index of the transaction in the block.
    pub tx: u64,
    /// The `TxValidationCode` recorded for it.
    pub code: i32,
}

/// One entry of a key's history (what `GetHistoryForKey` returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The writing transaction.
    pub txid: String,
    /// Its height.
    pub height: Height,
    /// Its channel header timestamp (seconds, nanos).
    pub timestamp: (i64, i32),
    /// Whether the write was a delete.
    pub is_delete: bool,
    /// The written value (empty for deletes).
    pub value: Vec<u8>,
}

/// What happened to one block, sent to subscribers after it is durable.
#[derive(Debug, Clone)]
pub struct CommitEvent {
    /// The block as stored (with its TRANSACTIONS_FILTER filled).
    pub block: Arc<Block>,
    /// Each transaction's id and validation code, in block order (empty txid for envelopes
    /// whose header could not be read).
    pub txs: Vec<(String, i32)>,
}

impl CommitEvent {
    /// The block number.
    pub fn number(&self) -> u64 {
        self.block.header.as_ref().map_or(0, |h| h.number)
    }
}

/// Private writes of one collection that this peer is eligible for, already checked against the
/// collection's `pvt_rwset_hash` by the committer.
#[derive(Debug, Clone)]
pub struct PvtCollWrites {
    /// Chaincode namespace.
    pub namespace: String,
    /// Collection name.
    pub collection: String,
    /// The private read-write set (only its writes are applied).
    pub kv: KvrwSet,
}

#[derive(Debug, Clone)]
enum ValueOp {
    Upsert(Vec<u8>),
    Delete,
}

/// One transaction's final effect on a key (Fabric's `keyOps`): a value operation and/or a
/// metadata operation (`Some(None)` clears metadata).
#[derive(Debug, Clone, Default)]
struct KeyOps {
    value: Option<ValueOp>,
    metadata: Option<Option<Vec<u8>>>,
}

#[derive(Debug, Clone)]
struct TxWrites {
    height: Height,
    txid: String,
    timestamp: (i64, i32),
    public: BTreeMap<(String, String), KeyOps>,
    hashed: BTreeMap<(String, String, Vec<u8>), KeyOps>,
    private: BTreeMap<(String, String, String), Option<Vec<u8>>>,
    history: Vec<(String, String, bool, Vec<u8>)>,
    /// The block holds this transaction's read-write set at `height`: history entries name it
    /// instead of copying the written values.
    history_in_block: bool,
}

/// Everything a block changes besides the block itself: its txid index entries and the writes of
/// its valid transactions, in order (Fabric's update batch, applied inside the commit).
#[derive(Debug, Clone, Default)]
pub struct BlockUpdates {
    txids: Vec<TxEntry>,
    txs: Vec<TxWrites>,
}

/// A transaction's txid index entry.
#[derive(Debug, Clone)]
struct TxEntry {
    txid: String,
    tx_num: u64,
    code: i32,
    /// The ledger height at which the txid was found absent from the ledger, if it was looked up.
    absent_at: Option<u64>,
}

fn entries_bytes(entries: &[fabric_protos::kvrwset::KvMetadataEntry]) -> Option<Vec<u8>> {
    // An empty entry list deletes the metadata, as in Fabric's `txOps.metadataDelete`.
    if entries.is_empty() {
        None
    } else {
        let m: BTreeMap<String, Vec<u8>> = entries
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect();
        Some(codec::encode_metadata(&m))
    }
}

impl BlockUpdates {
    /// An empty update set (e.g. for a config block, or the orderer's block store).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a transaction of the block (call once per transaction, in order): its code goes
    /// to the commit event, and its txid, valid or not, to the txid index (Fabric indexes every
    /// transaction; a txid once on the ledger is a duplicate forever). Empty txids (unreadable
    /// headers) are not indexed.
    pub fn record_tx(&mut self, txid: &str, tx_num: u64, code: i32) {
        self.push_txid(txid, tx_num, code, None);
    }

    /// [`BlockUpdates::record_tx`] for a txid that validation found absent from the ledger at
    /// height `checked_at`: committed as block `checked_at`, the block does not look it up again
    /// (validation already paid for that random read of the txid index).
    pub fn record_new_tx(&mut self, txid: &str, tx_num: u64, code: i32, checked_at: u64) {
        self.push_txid(txid, tx_num, code, Some(checked_at));
    }

    fn push_txid(&mut self, txid: &str, tx_num: u64, code: i32, absent_at: Option<u64>) {
        self.txids.push(TxEntry {
            txid: txid.to_string(),
            tx_num,
            code,
            absent_at,
        });
    }

    /// Adds the writes of a valid transaction: public writes and metadata writes, hashed private
    /// writes, the private writes this peer is eligible for, and history entries for public
    /// writes, which keep the written values. Transactions must be added in block order.
    pub fn add_valid_tx(
        &mut self,
        height: Height,
        txid: &str,
        timestamp: (i64, i32),
        rwset: &TxRwSet,
        pvt: &[PvtCollWrites],
    ) {
        self.add_tx(height, txid, timestamp, rwset, pvt, false);
    }

    /// [`BlockUpdates::add_valid_tx`] for the endorser transaction at `height` of the block being
    /// committed, whose envelope carries `rwset` (its channel header has `txid` and `timestamp`):
    /// its history entries only name the transaction, and a history query reads the values from
    /// the block, as Fabric's history database does.
    pub fn add_block_tx(
        &mut self,
        height: Height,
        txid: &str,
        timestamp: (i64, i32),
        rwset: &TxRwSet,
        pvt: &[PvtCollWrites],
    ) {
        self.add_tx(height, txid, timestamp, rwset, pvt, true);
    }

    fn add_tx(
        &mut self,
        height: Height,
        txid: &str,
        timestamp: (i64, i32),
        rwset: &TxRwSet,
        pvt: &[PvtCollWrites],
        history_in_block: bool,
    ) {
        let mut w = TxWrites {
            height,
            txid: txid.to_string(),
            timestamp,
            public: BTreeMap::new(),
            hashed: BTreeMap::new(),
            private: BTreeMap::new(),
            history: Vec::new(),
            history_in_block,
        };
        for ns in &rwset.ns_rwsets {
            for kw in &ns.kv.writes {
                let op = w
                    .public
                    .entry((ns.namespace.clone(), kw.key.clone()))
                    .or_default();
                op.value = Some(if kw.is_delete {
                    ValueOp::Delete
                } else {
                    ValueOp::Upsert(kw.value.clone())
                });
                w.history.push((
                    ns.namespace.clone(),
                    kw.key.clone(),
                    kw.is_delete,
                    if kw.is_delete || history_in_block {
                        Vec::new()
                    } else {
                        kw.value.clone()
                    },
                ));
            }
            for mw in &ns.kv.metadata_writes {
                let op = w
                    .public
                    .entry((ns.namespace.clone(), mw.key.clone()))
                    .or_default();
                op.metadata = Some(entries_bytes(&mw.entries));
            }
            for c in &ns.coll_hashed {
                for hw in &c.hashed.hashed_writes {
                    let op = w
                        .hashed
                        .entry((
                            ns.namespace.clone(),
                            c.collection.clone(),
                            hw.key_hash.clone(),
                        ))
                        .or_default();
                    op.value = Some(if hw.is_delete {
                        ValueOp::Delete
                    } else {
                        ValueOp::Upsert(hw.value_hash.clone())
                    });
                }
                for mw in &c.hashed.metadata_writes {
                    let op = w
                        .hashed
                        .entry((
                            ns.namespace.clone(),
                            c.collection.clone(),
                            mw.key_hash.clone(),
                        ))
                        .or_default();
                    op.metadata = Some(entries_bytes(&mw.entries));
                }
            }
        }
        for p in pvt {
            for kw in &p.kv.writes {
                w.private.insert(
                    (p.namespace.clone(), p.collection.clone(), kw.key.clone()),
                    (!kw.is_delete).then(|| kw.value.clone()),
                );
            }
        }
        self.txs.push(w);
    }

    /// Number of valid transactions added.
    pub fn valid_count(&self) -> usize {
        self.txs.len()
    }
}

/// Applies one key's operations as Fabric's `prepareTxOps` + `applyWriteSet` do: a write alone
/// keeps the committed metadata, a metadata write alone keeps the committed value (and is a no-op
/// for a missing key), a delete removes both.
fn apply_key_ops(
    table: &mut redb::Table<&[u8], &[u8]>,
    key: &[u8],
    ops: &KeyOps,
    h: Height,
) -> Result<(), LedgerError> {
    match (&ops.value, &ops.metadata) {
        (Some(ValueOp::Delete), _) => {
            table.remove(key)?;
        }
        (Some(ValueOp::Upsert(v)), None) => {
            // Written as if the key had no metadata, which is almost always so (new keys, keys
            // without a key-level policy): one descent of the tree instead of a read and a
            // write. Committed metadata, when the old value had some, is put back.
            let kept = match table.insert(key, codec::encode_value(h, &[], v).as_slice())? {
                Some(old) => {
                    let (_, meta, _) = codec::decode_value(old.value())?;
                    (!meta.is_empty()).then(|| codec::encode_value(h, meta, v))
                }
                None => None,
            };
            if let Some(enc) = kept {
                table.insert(key, enc.as_slice())?;
            }
        }
        _ => {
            // Only a metadata write alone depends on the committed value.
            let next = if ops.value.is_none() {
                let old = table.get(key)?;
                next_value(old.as_ref().map(|g| g.value()), ops, h)?
            } else {
                next_value(None, ops, h)?
            };
            match next {
                Some(Some(enc)) => {
                    table.insert(key, enc.as_slice())?;
                }
                Some(None) => {
                    table.remove(key)?;
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// The rule of [`apply_key_ops`] for a key whose committed encoded value is `old` (also used for
/// the tables whose recent entries are kept in memory): `None` leaves the key as it is,
/// `Some(None)` deletes it.
fn next_value(
    old: Option<&[u8]>,
    ops: &KeyOps,
    h: Height,
) -> Result<Option<Option<Vec<u8>>>, LedgerError> {
    Ok(match (&ops.value, &ops.metadata) {
        (Some(ValueOp::Delete), _) => old.map(|_| None),
        (Some(ValueOp::Upsert(v)), Some(m)) => {
            Some(Some(codec::encode_value(h, m.as_deref().unwrap_or(&[]), v)))
        }
        (Some(ValueOp::Upsert(v)), None) => {
            let meta = match old {
                Some(old) => codec::decode_value(old)?.1,
                None => &[],
            };
            Some(Some(codec::encode_value(h, meta, v)))
        }
        (None, Some(m)) => match old {
            Some(old) => {
                let (_, _, value) = codec::decode_value(old)?;
                Some(Some(codec::encode_value(
                    h,
                    m.as_deref().unwrap_or(&[]),
                    value,
                )))
            }
            None => None,
        },
        (None, None) => None,
    })
}

/// The history entry of public key `key` of namespace `ns` written by transaction `tx` of
/// `block`: its txid, timestamp, and last write of the key.
fn history_from_block(
    block: &Block,
    tx: u64,
    ns: &str,
    key: &str,
) -> Result<codec::HistoryValue, LedgerError> {
    let corrupt = |what: &str| {
        LedgerError::Corrupt(format!(
            "history entry of {ns}/{key} at {}:{tx}: {what}",
            block.header.as_ref().map_or(0, |h| h.number)
        ))
    };
    let data = block
        .data
        .as_ref()
        .and_then(|d| d.data.get(usize::try_from(tx).ok()?))
        .ok_or_else(|| corrupt("no such transaction"))?;
    let unpacked =
        fabric_common::tx::unpack_envelope_bytes(data).map_err(|e| corrupt(&e.to_string()))?;
    // Unpacking fails on a transaction without actions.
    let action = &unpacked.actions[0];
    let rwset = TxRwSet::decode(&action.chaincode_action.results)?;
    let chdr = unpacked.channel_header;
    let write = rwset
        .ns_rwsets
        .iter()
        .filter(|n| n.namespace == ns)
        .flat_map(|n| n.kv.writes.iter())
        .rfind(|w| w.key == key)
        .ok_or_else(|| corrupt("the transaction does not write the key"))?;
    let timestamp = chdr
        .timestamp
        .as_ref()
        .map_or((0, 0), |t| (t.seconds, t.nanos));
    let value = if write.is_delete {
        Vec::new()
    } else {
        write.value.clone()
    };
    Ok((chdr.tx_id, timestamp, write.is_delete, value))
}

/// Moves the blocks of a ledger written by an earlier version (inside the database) to the block
/// files, in one durable database transaction: a crash half-way leaves the old table in place and
/// unindexed bytes in the files, which the next open cuts off before migrating again.
fn migrate_legacy_blocks(
    db: &Database,
    files: &blockfile::BlockFiles,
    appender: &mut blockfile::Appender,
) -> Result<(), LedgerError> {
    let wtx = db.begin_write()?;
    if !wtx.list_tables()?.any(|t| t.name() == LEGACY_BLOCKS.name()) {
        return Ok(());
    }
    {
        let old = wtx.open_table(LEGACY_BLOCKS)?;
        let mut index = wtx.open_table(BLOCK_INDEX)?;
        for item in old.iter()? {
            let (n, bytes) = item?;
            let bytes = bytes.value();
            let loc = appender.append(files, bytes.len(), |b| b.extend_from_slice(bytes))?;
            index.insert(n.value(), IndexedLoc::from(loc))?;
        }
    }
    wtx.delete_table(LEGACY_BLOCKS)?;
    wtx.commit()?;
    Ok(())
}

/// A private write ready for the table: key, writing height, value (`None`: delete).
type PrivateWrite<'a> = (Vec<u8>, Height, Option<&'a [u8]>);

struct Tip {
    height: u64,
    last_header_hash: Vec<u8>,
    appender: blockfile::Appender,
    recent: Recent,
}

struct Inner {
    db: Arc<Database>,
    files: Arc<blockfile::BlockFiles>,
    /// Filters of the txid and private-hash tables' keys.
    filters: Arc<Filters>,
    /// The scan filling `filters` with the keys on the ledger when it was opened, if running.
    scan: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Tells the scan and the log warm-up to stop (the ledger is closing).
    closing: Arc<AtomicBool>,
    /// The read of a merging generation's log rows ahead of their deletion, if running.
    warm: Mutex<Option<std::thread::JoinHandle<()>>>,
    channel: String,
    tip: Mutex<Tip>,
    /// The oldest generation of recent entries a new snapshot may need, and the runs it looks
    /// in.
    head: Mutex<(Arc<Generation>, Arc<[u64]>)>,
    height_tx: watch::Sender<u64>,
    events: broadcast::Sender<Arc<CommitEvent>>,
    /// The latest committed blocks, as committed: Deliver streams and event readers follow the
    /// tip, and their bytes are not in the page cache (see the module docs).
    recent_blocks: Mutex<RecentBlocks>,
}

/// The latest committed blocks, newest last, at most [`RECENT_BLOCK_BYTES`] of them encoded
/// (and always the newest).
#[derive(Default)]
struct RecentBlocks {
    blocks: VecDeque<(u64, usize, Arc<Block>)>,
    bytes: usize,
}

/// Encoded bytes of recent blocks a ledger keeps in memory: a few full blocks, so every reader
/// within a few blocks of the tip is served without reading and decoding the block file.
const RECENT_BLOCK_BYTES: usize = 16 * 1024 * 1024;

impl RecentBlocks {
    fn push(&mut self, number: u64, len: usize, block: Arc<Block>) {
        self.blocks.push_back((number, len, block));
        self.bytes += len;
        while self.bytes > RECENT_BLOCK_BYTES && self.blocks.len() > 1 {
            if let Some((_, old, _)) = self.blocks.pop_front() {
                self.bytes -= old;
            }
        }
    }

    fn get(&self, number: u64) -> Option<Arc<Block>> {
        let first = self.blocks.front()?.0;
        let i = usize::try_from(number.checked_sub(first)?).ok()?;
        self.blocks
            .get(i)
            .filter(|(n, _, _)| *n == number)
            .map(|(_, _, b)| Arc::clone(b))
    }
}

/// One peer's ledger for one channel. Cloning is cheap (shared handle).
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The scan and the warm-up read the database: they must end before it closes.
        self.closing.store(true, Ordering::Relaxed);
        for reader in [&self.scan, &self.warm] {
            if let Some(thread) = reader.lock().expect("reader lock").take() {
                let _ = thread.join();
            }
        }
    }
}

/// Tables holding at most this many keys are scanned into the filters while the ledger opens;
/// larger ones in the background, so a big ledger opens as fast as a small one.
const FILTER_SCAN_INLINE_MAX: u64 = 64 * 1024;

/// Adds the keys of the txid and private-hash tables to `filters` and marks them ready; stops
/// early (leaving them not ready) when `stop` is set.
fn scan_into_filters(
    db: &Database,
    filters: &Filters,
    stop: &AtomicBool,
) -> Result<(), LedgerError> {
    let rtx = db.begin_read()?;
    let txids = rtx.open_table(TXIDS)?;
    for (i, row) in txids.iter()?.enumerate() {
        if i % 4096 == 0 && stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        filters.insert(Kind::Txid, row?.0.value().as_bytes());
    }
    let hashes = rtx.open_table(PVT_HASH)?;
    for (i, row) in hashes.iter()?.enumerate() {
        if i % 4096 == 0 && stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        filters.insert(Kind::PvtHash, row?.0.value());
    }
    for run in stored_runs(&rtx)? {
        for kind in [Kind::Txid, Kind::PvtHash] {
            let Some(table) = open_run(&rtx, kind, run)? else {
                continue;
            };
            for (i, row) in table.iter()?.enumerate() {
                if i % 4096 == 0 && stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                filters.insert_in_run(kind, run, row?.0.value());
            }
        }
    }
    filters.set_ready();
    Ok(())
}

/// Keys in the txid and in the private-hash tables, their runs included.
fn hashed_key_counts(rtx: &redb::ReadTransaction) -> Result<[(Kind, u64); 2], LedgerError> {
    let mut txids = rtx.open_table(TXIDS)?.len()?;
    let mut hashes = rtx.open_table(PVT_HASH)?.len()?;
    for run in stored_runs(rtx)? {
        if let Some(t) = open_run(rtx, Kind::Txid, run)? {
            txids += t.len()?;
        }
        if let Some(t) = open_run(rtx, Kind::PvtHash, run)? {
            hashes += t.len()?;
        }
    }
    Ok([(Kind::Txid, txids), (Kind::PvtHash, hashes)])
}

/// Fills the filters of a ledger being opened: at once if its tables are small, else on a
/// thread whose handle is returned (the filters answer "maybe" until it is done).
fn start_filter_scan(
    db: &Arc<Database>,
    filters: &Arc<Filters>,
    stop: &Arc<AtomicBool>,
    inline_max: u64,
) -> Result<Option<std::thread::JoinHandle<()>>, LedgerError> {
    let counts = hashed_key_counts(&db.begin_read()?)?;
    for (kind, keys) in counts {
        // Room for the keys there and as many again, so the scan fills one Bloom filter and
        // the ledger can double before lookups probe a second.
        filters.reserve(
            kind,
            usize::try_from(keys.saturating_mul(2)).unwrap_or(usize::MAX),
        );
    }
    let keys: u64 = counts.iter().map(|(_, n)| n).sum();
    if keys <= inline_max {
        scan_into_filters(db, filters, stop)?;
        return Ok(None);
    }
    let (db, filters, stop) = (Arc::clone(db), Arc::clone(filters), Arc::clone(stop));
    let scan = std::thread::Builder::new()
        .name("ledger-filter-scan".into())
        .spawn(move || {
            if let Err(e) = scan_into_filters(&db, &filters, &stop) {
                // Lookups keep reading the tables: slower, still right.
                tracing::warn!("scanning the ledger's keys into its filters: {e}");
            }
        })?;
    Ok(Some(scan))
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("channel", &self.inner.channel)
            .field("height", &self.height())
            .finish()
    }
}

impl Ledger {
    /// Opens (or creates) the ledger file at `path` for `channel`, checking that its savepoint
    /// and block store agree.
    pub fn open(path: impl AsRef<Path>, channel: &str) -> Result<Self, LedgerError> {
        Self::open_with(path, channel, LedgerOptions::default())
    }

    /// Like [`Ledger::open`] with an explicit redb cache size in bytes.
    pub fn open_with_cache(
        path: impl AsRef<Path>,
        channel: &str,
        cache_bytes: usize,
    ) -> Result<Self, LedgerError> {
        let options = LedgerOptions {
            cache_bytes,
            ..LedgerOptions::default()
        };
        Self::open_with(path, channel, options)
    }

    /// Like [`Ledger::open`] with explicit options.
    pub fn open_with(
        path: impl AsRef<Path>,
        channel: &str,
        options: LedgerOptions,
    ) -> Result<Self, LedgerError> {
        let path = path.as_ref();
        // Opened as redb's `create` opens it, with the page-cache-releasing backend.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create_with_backend(backend::ReleasingFile::new(file)?)?;
        {
            let wtx = db.begin_write()?;
            wtx.open_table(BLOCK_INDEX)?;
            wtx.open_table(TXIDS)?;
            wtx.open_table(STATE)?;
            wtx.open_table(HISTORY)?;
            wtx.open_table(PVT)?;
            wtx.open_table(PVT_HASH)?;
            wtx.open_table(META)?;
            wtx.open_table(RECENT_LOG)?;
            wtx.commit()?;
        }
        let last_loc = {
            let rtx = db.begin_read()?;
            let index = rtx.open_table(BLOCK_INDEX)?;
            let last = index
                .last()?
                .map(|(_, loc)| blockfile::BlockLoc::from(loc.value()));
            last
        };
        let (files, mut appender) =
            blockfile::BlockFiles::recover(blockfile::dir_for(path), last_loc)?;
        migrate_legacy_blocks(&db, &files, &mut appender)?;
        let (height, last_header_hash) = {
            let rtx = db.begin_read()?;
            let index = rtx.open_table(BLOCK_INDEX)?;
            let meta = rtx.open_table(META)?;
            let savepoint = meta.get(SAVEPOINT)?.map(|g| g.value());
            let last = index
                .last()?
                .map(|(n, loc)| (n.value(), blockfile::BlockLoc::from(loc.value())));
            match (savepoint, last) {
                (None, None) => (0, Vec::new()),
                (Some(sp), Some((num, loc))) if sp == num => {
                    let b = Block::decode(files.read(loc)?.as_slice())?;
                    let h = b.header.ok_or(LedgerError::NoHeader)?;
                    (sp + 1, block::block_header_hash(&h))
                }
                (sp, last) => {
                    return Err(LedgerError::Inconsistent(format!(
                        "savepoint {sp:?} but last stored block {:?}",
                        last.map(|(n, _)| n)
                    )))
                }
            }
        };
        let (live, runs) = {
            let rtx = db.begin_read()?;
            let runs = stored_runs(&rtx)?;
            let log = rtx.open_table(RECENT_LOG)?;
            let first = log.first()?.map_or(height, |(k, _)| k.value().0);
            let live = Generation::new(first);
            for row in log.iter()? {
                let (k, entries) = row?;
                recent::decode_log_into(&live, k.value().0, entries.value())?;
            }
            (live, runs)
        };
        let db = Arc::new(db);
        let filters = Arc::new(Filters::new());
        let closing = Arc::new(AtomicBool::new(false));
        let scan = start_filter_scan(&db, &filters, &closing, FILTER_SCAN_INLINE_MAX)?;
        let (height_tx, _) = watch::channel(height);
        let (events, _) = broadcast::channel(256);
        Ok(Ledger {
            inner: Arc::new(Inner {
                db,
                files: Arc::new(files),
                filters,
                scan: Mutex::new(scan),
                closing,
                warm: Mutex::new(None),
                channel: channel.to_string(),
                head: Mutex::new((Arc::clone(&live), runs.clone().into())),
                tip: Mutex::new(Tip {
                    height,
                    last_header_hash,
                    appender,
                    recent: Recent::new(live, options.merge_after, runs),
                }),
                height_tx,
                events,
                recent_blocks: Mutex::default(),
            }),
        })
    }

    /// The channel this ledger belongs to.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// Number of blocks on the ledger (the next block's number).
    pub fn height(&self) -> u64 {
        self.inner.tip.lock().expect("tip lock").height
    }

    /// Header hash of the last block (empty when the ledger is empty).
    pub fn last_header_hash(&self) -> Vec<u8> {
        self.inner
            .tip
            .lock()
            .expect("tip lock")
            .last_header_hash
            .clone()
    }

    /// Watches the height; changes after each durable commit (commit-status waiters, Deliver).
    pub fn watch_height(&self) -> watch::Receiver<u64> {
        self.inner.height_tx.subscribe()
    }

    /// Subscribes to commit events (block plus per-transaction codes) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommitEvent>> {
        self.inner.events.subscribe()
    }

    /// Commits `block` (whose metadata the caller has completed) and `updates` atomically and
    /// durably; see the module docs. The block must extend the chain. Copies the block for the
    /// commit event; [`Ledger::commit_shared`] takes it without a copy.
    pub fn commit(
        &self,
        block: &Block,
        updates: &BlockUpdates,
    ) -> Result<Arc<CommitEvent>, LedgerError> {
        self.commit_shared(Arc::new(block.clone()), updates)
    }

    /// [`Ledger::commit`] for a block the caller hands over: the commit event shares it rather
    /// than copying every transaction of a full block.
    pub fn commit_shared(
        &self,
        block: Arc<Block>,
        updates: &BlockUpdates,
    ) -> Result<Arc<CommitEvent>, LedgerError> {
        let header = block.header.as_ref().ok_or(LedgerError::NoHeader)?;
        let mut tip = self.inner.tip.lock().expect("tip lock");
        if header.number != tip.height {
            return Err(LedgerError::OutOfOrder {
                got: header.number,
                height: tip.height,
            });
        }
        if header.number > 0 && header.previous_hash != tip.last_header_hash {
            return Err(LedgerError::BrokenChain(header.number));
        }
        // 1. The block bytes, durable in the block file before anything indexes them.
        let block_len = block.encoded_len();
        let loc = tip.appender.append(&self.inner.files, block_len, |b| {
            block.encode(b).expect("a Vec grows as needed");
        })?;
        // 2. Index, state, history and savepoint in one durable database transaction.
        // If this fails, the appended bytes stay where they are, on no index: not on the ledger,
        // never read, and cut off by the next open. They are not cut off here, because a failed
        // commit may still have reached the disk (an fsync error says nothing certain), and an
        // index entry must never outlive the bytes it names. A retry appends after them.
        let merged = self.commit_index(header.number, loc, updates, &tip.recent)?;
        tip.recent.committed(merged, header.number);
        *self.inner.head.lock().expect("head lock") = (tip.recent.head(), tip.recent.runs());
        tip.height = header.number + 1;
        tip.last_header_hash = block::block_header_hash(header);
        let height = header.number + 1;
        self.inner
            .recent_blocks
            .lock()
            .expect("recent blocks lock")
            .push(header.number, block_len, Arc::clone(&block));
        // Released only now: the next commit must not push its block before this one.
        drop(tip);
        let event = Arc::new(CommitEvent {
            block,
            txs: updates
                .txids
                .iter()
                .map(|t| (t.txid.clone(), t.code))
                .collect(),
        });
        self.inner.height_tx.send_replace(height);
        // No receivers is fine: nobody is listening yet.
        let _ = self.inner.events.send(event.clone());
        Ok(event)
    }

    /// The database half of a commit: block `number`'s index entry (`loc`), its txid index
    /// entries, the state, private and history updates, and the savepoint, committed durably.
    /// The block's txid and private-hash entries go to the live generation of `recent` (taken out
    /// again if the commit fails) and to the log; a slice of the frozen generation goes to its
    /// run. Returns where the run stands when it is committed.
    fn commit_index(
        &self,
        number: u64,
        loc: blockfile::BlockLoc,
        updates: &BlockUpdates,
        recent: &Recent,
    ) -> Result<Option<usize>, LedgerError> {
        let live = Arc::clone(recent.live());
        let mut added: Vec<(Kind, Vec<u8>)> = Vec::new();
        let result = self.write_index(number, loc, updates, recent, &mut added);
        if result.is_err() {
            live.remove_block(number, &added);
        }
        result
    }

    /// Reads the log rows of blocks below `below` on a thread of its own, so their pages are in
    /// memory when the merge that began deletes them. Deleting rows reads each leaf, and those
    /// were written a generation ago: they have left redb's cache and, released once synced, the
    /// kernel's too, so the commit finishing the merge would otherwise wait on thousands of reads
    /// from disk (hundreds of MB at a million licences).
    fn warm_log(&self, below: u64) {
        let mut warm = self.inner.warm.lock().expect("warm lock");
        if warm.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        if let Some(done) = warm.take() {
            let _ = done.join();
        }
        let (db, stop) = (Arc::clone(&self.inner.db), Arc::clone(&self.inner.closing));
        let read = move || -> Result<(), LedgerError> {
            let rtx = db.begin_read()?;
            let log = rtx.open_table(RECENT_LOG)?;
            for (i, row) in log.range(..(below, 0))?.enumerate() {
                if i % 1024 == 0 && stop.load(Ordering::Relaxed) {
                    break;
                }
                row?;
            }
            Ok(())
        };
        // Only a cost saved: a warm-up that cannot run leaves the deletion to read the rows.
        *warm = std::thread::Builder::new()
            .name("ledger-log-warm".into())
            .spawn(move || {
                if let Err(e) = read() {
                    tracing::debug!("reading the merging generation's log ahead: {e}");
                }
            })
            .ok();
    }

    fn write_index(
        &self,
        number: u64,
        loc: blockfile::BlockLoc,
        updates: &BlockUpdates,
        recent: &Recent,
        added: &mut Vec<(Kind, Vec<u8>)>,
    ) -> Result<Option<usize>, LedgerError> {
        let head = recent.head();
        let live = recent.live();
        let runs = recent.runs();
        let filters = &self.inner.filters;
        // Runs are read through a read transaction (opening a table in the write transaction
        // would create it); it sees what this one does before its own writes, which are not
        // read back. Begun only for a key the filters do not rule out.
        let mut run_view: Option<redb::ReadTransaction> = None;
        let mut in_runs = |kind: Kind, key: &[u8]| -> Result<Option<recent::Value>, LedgerError> {
            let rtx = match &mut run_view {
                Some(rtx) => rtx,
                view => view.insert(self.inner.db.begin_read()?),
            };
            run_lookup(rtx, &runs, filters, kind, key)
        };
        let mut logged: Vec<(Kind, Vec<u8>, recent::Value)> = Vec::new();
        let mut wtx = self.inner.db.begin_write()?;
        wtx.set_durability(redb::Durability::Immediate)?;
        let merged;
        {
            let mut index = wtx.open_table(BLOCK_INDEX)?;
            index.insert(number, IndexedLoc::from(loc))?;
            // Each table's entries are handled in key order (stable, so a key written by two
            // transactions of the block is applied in block order): consecutive inserts land in
            // the same B-tree leaf while it is in cache, instead of hopping across the tree.
            let mut txid_entries: Vec<&TxEntry> = updates
                .txids
                .iter()
                .filter(|t| !t.txid.is_empty())
                .collect();
            txid_entries.sort_by(|a, b| a.txid.cmp(&b.txid));
            txid_entries.dedup_by(|later, first| later.txid == first.txid);
            let txids = wtx.open_table(TXIDS)?;
            for t in txid_entries {
                let key = t.txid.as_bytes();
                // The first occurrence of a txid is the one Fabric's index answers with: a txid
                // already on the ledger (rare: a DUPLICATE_TXID) keeps its entry. Found absent
                // at this block's height, it still is: blocks commit one at a time.
                if t.absent_at != Some(number)
                    && (recent::holds(&head, Kind::Txid, key)
                        || (filters.may_contain(Kind::Txid, key)
                            && (in_runs(Kind::Txid, key)?.is_some()
                                || txids.get(t.txid.as_str())?.is_some())))
                {
                    continue;
                }
                let value: recent::Value = Some(Arc::from(codec::encode_tx_loc(
                    number,
                    t.tx_num,
                    t.code as u8,
                )));
                live.insert(Kind::Txid, key, number, value.clone());
                added.push((Kind::Txid, key.to_vec()));
                logged.push((Kind::Txid, key.to_vec(), value));
            }
            let mut public: Vec<(Vec<u8>, Height, &KeyOps)> = Vec::new();
            let mut hashed: Vec<(Vec<u8>, Height, &KeyOps)> = Vec::new();
            let mut private: Vec<PrivateWrite> = Vec::new();
            let mut hist: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for tx in &updates.txs {
                for ((ns, key), ops) in &tx.public {
                    public.push((codec::state_key(ns, key.as_bytes()), tx.height, ops));
                }
                for ((ns, coll, kh), ops) in &tx.hashed {
                    hashed.push((codec::coll_key(ns, coll, kh), tx.height, ops));
                }
                for ((ns, coll, key), v) in &tx.private {
                    let k = codec::coll_key(ns, coll, key.as_bytes());
                    private.push((k, tx.height, v.as_deref()));
                }
                for (ns, key, is_delete, value) in &tx.history {
                    // An empty entry: everything is in the block's transaction at that height.
                    let entry = if tx.history_in_block {
                        Vec::new()
                    } else {
                        codec::encode_history(&tx.txid, tx.timestamp, *is_delete, value)
                    };
                    hist.push((codec::history_key(ns, key, tx.height), entry));
                }
            }
            public.sort_by(|a, b| a.0.cmp(&b.0));
            hashed.sort_by(|a, b| a.0.cmp(&b.0));
            private.sort_by(|a, b| a.0.cmp(&b.0));
            hist.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let mut state = wtx.open_table(STATE)?;
            for (k, h, ops) in &public {
                apply_key_ops(&mut state, k, ops, *h)?;
            }
            drop(state);
            let hashes = wtx.open_table(PVT_HASH)?;
            for (k, h, ops) in &hashed {
                // The committed value: the last recent one (this block's earlier writes
                // included), else the table's.
                let next = match recent::lookup(&head, Kind::PvtHash, k, u64::MAX) {
                    Some(old) => next_value(old.as_deref(), ops, *h)?,
                    None if !filters.may_contain(Kind::PvtHash, k) => next_value(None, ops, *h)?,
                    None => match in_runs(Kind::PvtHash, k)? {
                        Some(old) => next_value(old.as_deref(), ops, *h)?,
                        None => {
                            let old = hashes.get(k.as_slice())?;
                            next_value(old.as_ref().map(|g| g.value()), ops, *h)?
                        }
                    },
                };
                if let Some(value) = next {
                    let value: recent::Value = value.map(Arc::from);
                    live.insert(Kind::PvtHash, k, number, value.clone());
                    added.push((Kind::PvtHash, k.clone()));
                    logged.push((Kind::PvtHash, k.clone(), value));
                }
            }
            let mut log = wtx.open_table(RECENT_LOG)?;
            for (chunk, row) in recent::encode_log(&logged).iter().enumerate() {
                let chunk = u32::try_from(chunk).expect("fewer than 2^32 chunks in a block");
                log.insert((number, chunk), row.as_slice())?;
            }
            drop((txids, hashes));
            // A slice of the merging generation, in key order, appended to its run.
            let slice = recent.next_slice(logged.len());
            if let Some(slice) = &slice {
                if slice.starts {
                    self.warm_log(slice.log_below);
                }
                let mut entry = Vec::new();
                // The slice is in (kind, key) order: txids first, then private hashes.
                let split = slice.entries.partition_point(|e| e.0 == Kind::Txid);
                let (txids, hashes) = slice.entries.split_at(split);
                for (kind, of_kind) in [(Kind::Txid, txids), (Kind::PvtHash, hashes)] {
                    if of_kind.is_empty() {
                        continue;
                    }
                    let name = run_table_name(kind, slice.run);
                    let mut table = wtx.open_table(RunTable::new(&name))?;
                    for (_, key, value) in of_kind {
                        entry.clear();
                        match value {
                            Some(v) => {
                                entry.push(RUN_VALUE);
                                entry.extend_from_slice(v);
                            }
                            None if kind == Kind::Txid => {
                                return Err(LedgerError::Corrupt(
                                    "txid entry without a value".into(),
                                ))
                            }
                            None => entry.push(RUN_DELETE),
                        }
                        filters.insert_in_run(kind, slice.run, key);
                        table.insert(key.as_slice(), entry.as_slice())?;
                    }
                }
                if slice.finishes {
                    log.retain_in(..(slice.log_below, 0), |_, _| false)?;
                }
            }
            merged = slice.map(|s| s.end());
            drop(log);
            let mut pvt = wtx.open_table(PVT)?;
            for (k, h, v) in &private {
                match v {
                    Some(v) => {
                        pvt.insert(k.as_slice(), codec::encode_value(*h, &[], v).as_slice())?;
                    }
                    None => {
                        pvt.remove(k.as_slice())?;
                    }
                }
            }
            drop(pvt);
            // History keys end with the height, so they are unique and any sort keeps order.
            let mut history = wtx.open_table(HISTORY)?;
            for (k, v) in &hist {
                history.insert(k.as_slice(), v.as_slice())?;
            }
            drop(history);
            let mut meta = wtx.open_table(META)?;
            meta.insert(SAVEPOINT, number)?;
        }
        wtx.commit()?;
        Ok(merged)
    }

    /// A consistent read view of everything committed so far (Fabric's query executor / tx
    /// simulator snapshot). Later commits are not visible through it.
    pub fn snapshot(&self) -> Result<Snapshot, LedgerError> {
        // The generation first: if its run is completed and it is dropped from the chain in
        // between, the transaction that wrote its last slice is committed before, so the read
        // transaction begun after sees the whole run (and the list of runs taken with it names
        // that run).
        let (recent, runs) = self.inner.head.lock().expect("head lock").clone();
        Ok(Snapshot {
            rtx: self.inner.db.begin_read()?,
            recent,
            runs,
            visible_height: OnceLock::new(),
            filters: Arc::clone(&self.inner.filters),
            files: Arc::clone(&self.inner.files),
            txids: OnceLock::new(),
            state: OnceLock::new(),
            pvt: OnceLock::new(),
            pvt_hash: OnceLock::new(),
        })
    }

    /// The serialized block `number`, if stored.
    pub fn block_bytes(&self, number: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        self.snapshot()?.block_bytes(number)
    }

    /// Block `number`, if stored.
    pub fn block(&self, number: u64) -> Result<Option<Block>, LedgerError> {
        Ok(self.shared_block(number)?.map(Arc::unwrap_or_clone))
    }

    /// Block `number`, if stored, shared: one of the latest blocks without a copy, an older one
    /// read from its block file.
    pub fn shared_block(&self, number: u64) -> Result<Option<Arc<Block>>, LedgerError> {
        let cached = self
            .inner
            .recent_blocks
            .lock()
            .expect("recent blocks lock")
            .get(number);
        match cached {
            Some(block) => Ok(Some(block)),
            None => Ok(self.snapshot()?.block(number)?.map(Arc::new)),
        }
    }

    /// Where `txid` is and its validation code (commit status).
    pub fn tx_location(&self, txid: &str) -> Result<Option<TxLocation>, LedgerError> {
        self.snapshot()?.tx_location(txid)
    }

    /// The committed value of a public key.
    pub fn get_state(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError> {
        self.snapshot()?.get_state(ns, key)
    }
}

/// A consistent read view of a ledger (a redb read transaction).
pub struct Snapshot {
    rtx: redb::ReadTransaction,
    /// Recent txid and private-hash entries, from the oldest generation this view may need.
    recent: Arc<Generation>,
    /// The runs this view looks in, oldest first.
    runs: Arc<[u64]>,
    /// The height of this view (recent entries of blocks from it on are not visible).
    visible_height: OnceLock<u64>,
    /// Filters of the txid and private-hash tables' keys.
    filters: Arc<Filters>,
    files: Arc<blockfile::BlockFiles>,
    /// Tables of point reads, opened on first use: validation and simulation read many keys
    /// through one snapshot, and opening a table looks its root up in redb's table tree.
    txids: OnceLock<redb::ReadOnlyTable<&'static str, &'static [u8]>>,
    state: OnceLock<BytesTable>,
    pvt: OnceLock<BytesTable>,
    pvt_hash: OnceLock<BytesTable>,
}

/// A read-only table of byte keys and values.
type BytesTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// The table in `cell`, opening it in `rtx` the first time.
fn opened<'s, K: redb::Key + 'static, V: redb::Value + 'static>(
    cell: &'s OnceLock<redb::ReadOnlyTable<K, V>>,
    rtx: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<&'s redb::ReadOnlyTable<K, V>, LedgerError> {
    if let Some(t) = cell.get() {
        return Ok(t);
    }
    let t = rtx.open_table(def)?;
    Ok(cell.get_or_init(|| t))
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

/// Iterator over a key range of one namespace's state, in key order.
pub struct StateRange {
    inner: redb::Range<'static, &'static [u8], &'static [u8]>,
    prefix_len: usize,
}

impl Iterator for StateRange {
    type Item = Result<(String, VersionedValue), LedgerError>;
    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        Some((|| {
            let (k, v) = item?;
            let key = String::from_utf8(k.value()[self.prefix_len..].to_vec())
                .map_err(|_| LedgerError::Corrupt("non-UTF-8 key".into()))?;
            Ok((key, VersionedValue::decode(v.value())?))
        })())
    }
}

/// Upper bound (exclusive) of a whole namespace: `ns 0x01`.
fn ns_end(ns: &str) -> Vec<u8> {
    let mut k = ns.as_bytes().to_vec();
    k.push(1);
    k
}

/// The highest Unicode code point, which Fabric appends to a partial composite key to bound it.
pub const MAX_UNICODE_RUNE: char = '\u{10FFFF}';

impl Snapshot {
    /// The serialized block `number`, if stored.
    pub fn block_bytes(&self, number: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        let t = self.rtx.open_table(BLOCK_INDEX)?;
        let Some(loc) = t.get(number)?.map(|g| blockfile::BlockLoc::from(g.value())) else {
            return Ok(None);
        };
        // Indexed in this snapshot, so durable in the file before the index entry was committed.
        Ok(Some(self.files.read(loc)?))
    }

    /// Block `number`, if stored.
    pub fn block(&self, number: u64) -> Result<Option<Block>, LedgerError> {
        self.block_bytes(number)?
            .map(|b| Block::decode(b.as_slice()).map_err(LedgerError::from))
            .transpose()
    }

    /// Number of blocks visible in this snapshot.
    pub fn height(&self) -> Result<u64, LedgerError> {
        let t = self.rtx.open_table(BLOCK_INDEX)?;
        let last = t.last()?.map(|(k, _)| k.value());
        Ok(last.map_or(0, |n| n + 1))
    }

    /// The recent value of `key` visible in this view: `Some(None)` for a recent delete, `None`
    /// when the table decides.
    fn recent(&self, kind: Kind, key: &[u8]) -> Result<Option<recent::Value>, LedgerError> {
        recent::lookup_with(&self.recent, kind, key, || {
            if let Some(h) = self.visible_height.get() {
                return Ok(*h);
            }
            let h = self.height()?;
            Ok(*self.visible_height.get_or_init(|| h))
        })
    }

    /// Where `txid` is and its validation code.
    pub fn tx_location(&self, txid: &str) -> Result<Option<TxLocation>, LedgerError> {
        // A txid is indexed once, so it does not matter whether it is found recent or in a
        // table (where one written to its run may also be).
        let (block, tx, code) = match self.recent(Kind::Txid, txid.as_bytes())? {
            Some(Some(v)) => codec::decode_tx_loc(&v)?,
            _ if !self.filters.may_contain(Kind::Txid, txid.as_bytes()) => return Ok(None),
            _ => match run_lookup(
                &self.rtx,
                &self.runs,
                &self.filters,
                Kind::Txid,
                txid.as_bytes(),
            )? {
                Some(Some(v)) => codec::decode_tx_loc(&v)?,
                _ => match opened(&self.txids, &self.rtx, TXIDS)?.get(txid)? {
                    Some(g) => codec::decode_tx_loc(g.value())?,
                    None => return Ok(None),
                },
            },
        };
        Ok(Some(TxLocation {
            block,
            tx,
            code: i32::from(code),
        }))
    }

    /// Whether any transaction with `txid` is on the ledger (Fabric's `TxIDExists`).
    pub fn txid_exists(&self, txid: &str) -> Result<bool, LedgerError> {
        Ok(self.tx_location(txid)?.is_some())
    }

    /// The committed value of a public key.
    pub fn get_state(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError> {
        let t = opened(&self.state, &self.rtx, STATE)?;
        let g = t.get(codec::state_key(ns, key.as_bytes()).as_slice())?;
        g.map(|g| VersionedValue::decode(g.value())).transpose()
    }

    /// Only the version of a public key (the MVCC check's read; no value copy).
    pub fn get_version(&self, ns: &str, key: &str) -> Result<Option<Height>, LedgerError> {
        let t = opened(&self.state, &self.rtx, STATE)?;
        let g = t.get(codec::state_key(ns, key.as_bytes()).as_slice())?;
        g.map(|g| codec::decode_value(g.value()).map(|(h, _, _)| h))
            .transpose()
    }

    /// Versions of many public keys with one table open (the committer's batched MVCC read).
    pub fn get_versions<'a>(
        &self,
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Vec<Option<Height>>, LedgerError> {
        let t = opened(&self.state, &self.rtx, STATE)?;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for (ns, key) in keys {
            buf.clear();
            buf.extend_from_slice(ns.as_bytes());
            buf.push(0);
            buf.extend_from_slice(key.as_bytes());
            let g = t.get(buf.as_slice())?;
            out.push(
                g.map(|g| codec::decode_value(g.value()).map(|(h, _, _)| h))
                    .transpose()?,
            );
        }
        Ok(out)
    }

    /// Public keys of `ns` in `[start, end)` in key order; an empty `end` means no upper bound
    /// (Fabric's `GetStateByRange`).
    pub fn state_range(&self, ns: &str, start: &str, end: &str) -> Result<StateRange, LedgerError> {
        let t = self.rtx.open_table(STATE)?;
        let lo = codec::state_key(ns, start.as_bytes());
        let hi = if end.is_empty() {
            ns_end(ns)
        } else {
            codec::state_key(ns, end.as_bytes())
        };
        let inner = if lo >= hi {
            t.range::<&[u8]>(hi.as_slice()..hi.as_slice())?
        } else {
            t.range::<&[u8]>(lo.as_slice()..hi.as_slice())?
        };
        Ok(StateRange {
            inner,
            prefix_len: ns.len() + 1,
        })
    }

    /// Keys of `ns` under a composite key prefix (Fabric's `GetStateByPartialCompositeKey`): the
    /// range `[prefix, prefix + U+10FFFF)` where `prefix = 0x00 type 0x00 (attr 0x00)*`.
    pub fn state_by_partial_composite_key(
        &self,
        ns: &str,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<StateRange, LedgerError> {
        let mut start = String::from("\u{0}");
        start.push_str(object_type);
        start.push('\u{0}');
        for a in attributes {
            start.push_str(a);
            start.push('\u{0}');
        }
        let mut end = start.clone();
        end.push(MAX_UNICODE_RUNE);
        self.state_range(ns, &start, &end)
    }

    /// A private key's value, where this peer holds the collection.
    pub fn get_private(
        &self,
        ns: &str,
        coll: &str,
        key: &str,
    ) -> Result<Option<VersionedValue>, LedgerError> {
        let t = opened(&self.pvt, &self.rtx, PVT)?;
        let g = t.get(codec::coll_key(ns, coll, key.as_bytes()).as_slice())?;
        g.map(|g| VersionedValue::decode(g.value())).transpose()
    }

    /// Private keys of a collection in `[start, end)` in key order, as this peer holds them; an
    /// empty `end` means no upper bound (Fabric's `GetPrivateDataRangeScanIterator`).
    pub fn private_range(
        &self,
        ns: &str,
        coll: &str,
        start: &str,
        end: &str,
    ) -> Result<StateRange, LedgerError> {
        let t = self.rtx.open_table(PVT)?;
        let lo = codec::coll_key(ns, coll, start.as_bytes());
        let hi = if end.is_empty() {
            let mut k = codec::coll_key(ns, coll, b"");
            *k.last_mut().expect("separator") = 1;
            k
        } else {
            codec::coll_key(ns, coll, end.as_bytes())
        };
        let inner = if lo >= hi {
            t.range::<&[u8]>(hi.as_slice()..hi.as_slice())?
        } else {
            t.range::<&[u8]>(lo.as_slice()..hi.as_slice())?
        };
        Ok(StateRange {
            inner,
            prefix_len: ns.len() + coll.len() + 2,
        })
    }

    /// A private key's hashed entry (value = SHA-256 of the value, plus version and metadata),
    /// held by every peer of the channel.
    pub fn get_private_hash(
        &self,
        ns: &str,
        coll: &str,
        key_hash: &[u8],
    ) -> Result<Option<VersionedValue>, LedgerError> {
        let key = codec::coll_key(ns, coll, key_hash);
        if let Some(recent) = self.recent(Kind::PvtHash, &key)? {
            return recent.map(|v| VersionedValue::decode(&v)).transpose();
        }
        if !self.filters.may_contain(Kind::PvtHash, &key) {
            return Ok(None);
        }
        if let Some(run) = run_lookup(&self.rtx, &self.runs, &self.filters, Kind::PvtHash, &key)? {
            return run.map(|v| VersionedValue::decode(&v)).transpose();
        }
        let t = opened(&self.pvt_hash, &self.rtx, PVT_HASH)?;
        let g = t.get(key.as_slice())?;
        g.map(|g| VersionedValue::decode(g.value())).transpose()
    }

    /// A key's history, newest first (Fabric's `GetHistoryForKey` order).
    pub fn history(&self, ns: &str, key: &str) -> Result<Vec<HistoryEntry>, LedgerError> {
        let t = self.rtx.open_table(HISTORY)?;
        let lo = codec::history_prefix(ns, key);
        let mut hi = lo.clone();
        hi.extend_from_slice(&[0xff; 12]);
        let mut out = Vec::new();
        // Entries naming their block's transaction are read from the block, decoded once for
        // all of its transactions that wrote the key.
        let mut block: Option<Block> = None;
        for item in t.range::<&[u8]>(lo.as_slice()..=hi.as_slice())?.rev() {
            let (k, v) = item?;
            let height = codec::history_key_height(k.value())?;
            let (txid, timestamp, is_delete, value) = if v.value().is_empty() {
                if block
                    .as_ref()
                    .and_then(|b| b.header.as_ref())
                    .map(|h| h.number)
                    != Some(height.block)
                {
                    block = Some(self.block(height.block)?.ok_or_else(|| {
                        LedgerError::Corrupt(format!(
                            "history names missing block {}",
                            height.block
                        ))
                    })?);
                }
                let block = block.as_ref().expect("just read");
                history_from_block(block, height.tx, ns, key)?
            } else {
                codec::decode_history(v.value())?
            };
            out.push(HistoryEntry {
                txid,
                height,
                timestamp,
                is_delete,
                value,
            });
        }
        Ok(out)
    }

    /// Every public state entry `(ns, key, value)` in order (for consistency checks and tests).
    pub fn dump_state(&self) -> Result<Vec<(String, String, VersionedValue)>, LedgerError> {
        let t = self.rtx.open_table(STATE)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            let k = k.value();
            let sep = k
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| LedgerError::Corrupt("state key".into()))?;
            out.push((
                String::from_utf8_lossy(&k[..sep]).into_owned(),
                String::from_utf8_lossy(&k[sep + 1..]).into_owned(),
                VersionedValue::decode(v.value())?,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_stored_inside_the_database_by_earlier_versions_move_to_the_block_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("old.redb");
        let b0 = block::new_block(0, Vec::new(), vec![b"genesis".to_vec()]);
        let b1 = block::new_block(
            1,
            block::block_header_hash(b0.header.as_ref().unwrap()),
            vec![b"tx".to_vec()],
        );
        {
            let db = Database::create(&path).unwrap();
            let wtx = db.begin_write().unwrap();
            {
                let mut t = wtx.open_table(LEGACY_BLOCKS).unwrap();
                t.insert(0, b0.encode_to_vec().as_slice()).unwrap();
                t.insert(1, b1.encode_to_vec().as_slice()).unwrap();
                wtx.open_table(META).unwrap().insert(SAVEPOINT, 1).unwrap();
            }
            wtx.commit().unwrap();
        }
        let l = Ledger::open(&path, "ch").unwrap();
        assert_eq!(l.height(), 2);
        assert_eq!(
            l.last_header_hash(),
            block::block_header_hash(b1.header.as_ref().unwrap())
        );
        assert_eq!(l.block_bytes(0).unwrap().unwrap(), b0.encode_to_vec());
        assert_eq!(l.block(1).unwrap().unwrap(), b1);
        let rtx = l.inner.db.begin_read().unwrap();
        assert!(!rtx.list_tables().unwrap().any(|t| t.name() == "blocks"));
        drop(rtx);
        drop(l);
        // Reopening finds nothing left to move and the same chain.
        let l = Ledger::open(&path, "ch").unwrap();
        assert_eq!(l.height(), 2);
        assert_eq!(l.block(0).unwrap().unwrap(), b0);
    }

    #[test]
    fn latest_blocks_are_shared_from_memory_and_older_ones_read_back_equal() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("l.redb");
        let l = Ledger::open(&path, "ch").unwrap();
        // Blocks of about 3 MiB: only the latest few fit in the in-memory window.
        let mut prev = Vec::new();
        let mut blocks = Vec::new();
        for n in 0..8u64 {
            let b = block::new_block(n, prev, vec![vec![n as u8; 3 << 20]]);
            prev = block::block_header_hash(b.header.as_ref().unwrap());
            let event = l
                .commit_shared(Arc::new(b.clone()), &BlockUpdates::default())
                .unwrap();
            // The commit event and a reader of the tip share one block.
            assert!(Arc::ptr_eq(
                &event.block,
                &l.shared_block(n).unwrap().unwrap()
            ));
            blocks.push(b);
        }
        let window = l.inner.recent_blocks.lock().unwrap().blocks.len();
        assert!((1..8).contains(&window), "{window} blocks kept in memory");
        for (n, b) in blocks.iter().enumerate() {
            assert_eq!(l.shared_block(n as u64).unwrap().as_deref(), Some(b));
            assert_eq!(l.block(n as u64).unwrap().as_ref(), Some(b));
        }
        assert!(l.shared_block(8).unwrap().is_none());
        drop(l);
        // Reopened, the same blocks come from the files.
        let l = Ledger::open(&path, "ch").unwrap();
        assert_eq!(l.shared_block(7).unwrap().as_deref(), Some(&blocks[7]));
    }

    /// A database whose txid and private-hash tables hold `n` keys each.
    fn tables_with_keys(path: &Path, n: u32) -> Arc<Database> {
        let db = Database::create(path).unwrap();
        let wtx = db.begin_write().unwrap();
        {
            let mut txids = wtx.open_table(TXIDS).unwrap();
            let mut hashes = wtx.open_table(PVT_HASH).unwrap();
            for i in 0..n {
                let loc = codec::encode_tx_loc(u64::from(i), 0, 0);
                txids
                    .insert(format!("tx{i}").as_str(), loc.as_slice())
                    .unwrap();
                hashes
                    .insert(format!("h{i}").as_bytes(), b"v".as_slice())
                    .unwrap();
            }
        }
        wtx.commit().unwrap();
        Arc::new(db)
    }

    /// A block of `txids`, the first of which also writes (or, with an empty value, deletes)
    /// private hash `key` of collection `coll` in namespace `cc`.
    fn commit_hashed(l: &Ledger, txids: &[String], key: &[u8], value: &[u8]) {
        use fabric_protos::kvrwset::{HashedRwSet, KvWriteHash};
        let n = l.height();
        let data = txids.iter().map(|t| t.as_bytes().to_vec()).collect();
        let block = block::new_block(n, l.last_header_hash(), data);
        let rw = TxRwSet {
            ns_rwsets: vec![NsRwSet {
                namespace: "cc".into(),
                kv: KvrwSet::default(),
                coll_hashed: vec![CollHashedRwSet {
                    collection: "coll".into(),
                    hashed: HashedRwSet {
                        hashed_writes: vec![KvWriteHash {
                            key_hash: key.to_vec(),
                            is_delete: value.is_empty(),
                            value_hash: value.to_vec(),
                            is_purge: false,
                        }],
                        ..Default::default()
                    },
                    pvt_rwset_hash: vec![],
                }],
            }],
        };
        let mut u = BlockUpdates::new();
        for (i, txid) in txids.iter().enumerate() {
            u.record_tx(txid, i as u64, 0);
            let rw = if i == 0 {
                rw.clone()
            } else {
                TxRwSet::default()
            };
            let h = Height {
                block: n,
                tx: i as u64,
            };
            u.add_valid_tx(h, txid, (0, 0), &rw, &[]);
        }
        l.commit(&block, &u).unwrap();
    }

    #[test]
    fn runs_shadow_the_base_tables_and_leave_them_as_they_were() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("l.redb");
        // Base tables as earlier versions left them: txids tx0..tx99 (block i), private hashes
        // h0..h99 of cc/coll.
        {
            let db = Database::create(&path).unwrap();
            let wtx = db.begin_write().unwrap();
            {
                let mut txids = wtx.open_table(TXIDS).unwrap();
                let mut hashes = wtx.open_table(PVT_HASH).unwrap();
                for i in 0..100u64 {
                    let loc = codec::encode_tx_loc(i, 0, 0);
                    txids
                        .insert(format!("tx{i}").as_str(), loc.as_slice())
                        .unwrap();
                    let h = Height { block: i, tx: 0 };
                    let key = codec::coll_key("cc", "coll", format!("h{i}").as_bytes());
                    let value = codec::encode_value(h, &[], b"base");
                    hashes.insert(key.as_slice(), value.as_slice()).unwrap();
                }
            }
            wtx.commit().unwrap();
        }
        let options = LedgerOptions {
            merge_after: 4,
            ..LedgerOptions::default()
        };
        let l = Ledger::open_with(&path, "ch", options).unwrap();
        // Block 0 deletes h1, block 1 rewrites h2, block 2 repeats txid tx7 (a duplicate: the
        // base table's entry stands); then enough blocks for several runs to complete.
        commit_hashed(&l, &["n0".into()], b"h1", b"");
        commit_hashed(&l, &["n1".into()], b"h2", b"new");
        commit_hashed(&l, &["tx7".into(), "n2".into()], b"x2", b"x");
        for n in 3..40 {
            commit_hashed(&l, &[format!("n{n}")], format!("x{n}").as_bytes(), b"x");
        }
        let check = |l: &Ledger| {
            let s = l.snapshot().unwrap();
            let hash = |k: &str| {
                s.get_private_hash("cc", "coll", k.as_bytes())
                    .unwrap()
                    .map(|v| v.value)
            };
            assert_eq!(hash("h1"), None, "deleted in a run");
            assert_eq!(hash("h2"), Some(b"new".to_vec()));
            assert_eq!(hash("h3"), Some(b"base".to_vec()));
            assert_eq!(hash("x39"), Some(b"x".to_vec()));
            assert_eq!(s.tx_location("tx7").unwrap().unwrap().block, 7);
            assert_eq!(s.tx_location("n0").unwrap().unwrap().block, 0);
            assert_eq!(s.tx_location("n39").unwrap().unwrap().block, 39);
            assert!(!s.txid_exists("n40").unwrap());
            let rtx = l.inner.db.begin_read().unwrap();
            let runs = stored_runs(&rtx).unwrap();
            assert!(runs.len() >= 5, "runs {runs:?}");
            assert_eq!(rtx.open_table(TXIDS).unwrap().len().unwrap(), 100);
            assert_eq!(rtx.open_table(PVT_HASH).unwrap().len().unwrap(), 100);
        };
        check(&l);
        drop(l);
        let l = Ledger::open_with(&path, "ch", options).unwrap();
        assert!(l.inner.filters.is_ready());
        check(&l);
        // Runs hold what their keys were named by: a run table of each kind, by first block.
        let rtx = l.inner.db.begin_read().unwrap();
        let names: Vec<String> = rtx
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .filter(|n| n.contains('@'))
            .collect();
        assert!(names
            .iter()
            .all(|n| parse_run_table_name(n).is_some_and(|(k, r)| run_table_name(k, r) == *n)));
    }

    #[test]
    fn a_background_scan_puts_every_key_of_the_tables_in_the_filters() {
        let tmp = tempfile::tempdir().unwrap();
        // More keys than a first Bloom filter holds unless the scan makes room for them.
        let n = 40_000;
        let db = tables_with_keys(&tmp.path().join("l.redb"), n);
        let filters = Arc::new(Filters::new());
        let stop = Arc::new(AtomicBool::new(false));
        let scan = start_filter_scan(&db, &filters, &stop, 0).unwrap();
        scan.expect("a scan on a thread").join().unwrap();
        assert!(filters.is_ready());
        assert!((0..n).all(|i| filters.may_contain(Kind::Txid, format!("tx{i}").as_bytes())));
        assert!((0..n).all(|i| filters.may_contain(Kind::PvtHash, format!("h{i}").as_bytes())));
        // One filter per kind: a lookup of an absent key probes one cache line, not a chain.
        assert_eq!(filters.bloom_count(Kind::Txid), 1);
        assert_eq!(filters.bloom_count(Kind::PvtHash), 1);
        let absent = (0..10_000)
            .filter(|i| filters.may_contain(Kind::Txid, format!("other{i}").as_bytes()))
            .count();
        assert!(
            absent < 50,
            "{absent} of 10,000 absent txids not filtered out"
        );
    }

    #[test]
    fn a_stopped_scan_leaves_the_filters_answering_maybe() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tables_with_keys(&tmp.path().join("l.redb"), 100);
        let filters = Arc::new(Filters::new());
        let stop = Arc::new(AtomicBool::new(true));
        scan_into_filters(&db, &filters, &stop).unwrap();
        assert!(!filters.is_ready());
        assert!(filters.may_contain(Kind::Txid, b"anything"));
    }

    #[test]
    fn a_ledger_answers_from_its_tables_while_and_after_its_filters_fill() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("l.redb");
        let n = u32::try_from(FILTER_SCAN_INLINE_MAX).unwrap() / 2 + 1;
        drop(tables_with_keys(&path, n));
        // More keys than are scanned inline: the filters fill on a thread.
        let l = Ledger::open(&path, "ch").unwrap();
        let check = |l: &Ledger| {
            let s = l.snapshot().unwrap();
            for i in [0, n / 2, n - 1] {
                assert_eq!(
                    s.tx_location(&format!("tx{i}")).unwrap().unwrap().block,
                    u64::from(i)
                );
                assert!(s.txid_exists(&format!("tx{i}")).unwrap());
                let key = format!("h{i}");
                let t = s.rtx.open_table(PVT_HASH).unwrap();
                assert!(t.get(key.as_bytes()).unwrap().is_some());
            }
            assert!(!s.txid_exists("missing").unwrap());
        };
        check(&l);
        let scan = l.inner.scan.lock().unwrap().take();
        scan.expect("a scan on a thread").join().unwrap();
        assert!(l.inner.filters.is_ready());
        check(&l);
        // Closing while a scan runs waits for it: the database reopens at once.
        let l2 = {
            drop(l);
            Ledger::open(&path, "ch").unwrap()
        };
        drop(l2);
        Ledger::open(&path, "ch").unwrap();
    }
}
