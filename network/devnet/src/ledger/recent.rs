//! Recent entries of the two tables whose keys are hashes — the txid index and the private-data
//! hashes — kept in memory and then written, in key order, to tables of their own (*runs*).
//!
//! # Why
//!
//! A key that is a hash lands on a random leaf. Once a table has many more leaves than a block has
//! transactions, every insert copies and rewrites a 4 KB page of its own (redb is copy-on-write),
//! so the cost of a commit grows with the ledger: at a million licences those two tables were most
//! of what a commit cost more than at ten thousand. Merging sorted generations into one big table
//! still rewrote every leaf of it once per generation, a cost that grows with the table. Fabric's
//! LevelDB sorts recent writes in memory and writes them out as sorted files of their own; this
//! does the same on top of redb.
//!
//! # How
//!
//! Entries go to the *live* generation. When it holds [`LedgerOptions::merge_after`] keys it is
//! frozen and a new live one starts; the frozen generation's keys are then appended, in key
//! order, to a run table named by the generation's first block (one per table kind), a slice
//! with every block, sized so that the run is complete before the live generation fills up
//! again. Appending in key order fills each leaf once, whatever the size of the ledger. A key's
//! value is the one in the newest run that holds it (a run records deletes), else the one in the
//! kind's base table (where earlier versions of the ledger merged everything). Runs are not
//! compacted; each has a Bloom filter of its own (`filter`), so a lookup reads only the runs
//! that may hold its key, and the filter over all of a kind's keys answers for the keys on none
//! (most lookups).
//!
//! # Durability
//!
//! Every block's entries are also written to a log table keyed by block number, in the block's own
//! database transaction (an append at the end of a B-tree, cheap). Slices go into the run in
//! later blocks' transactions, and the log rows of a generation are deleted in the transaction
//! that writes its last slice. So at every commit, each entry is in the log, in its run, or both;
//! [`Ledger::open`](super::Ledger::open) reads the log back into a live generation, whose first
//! block is then that of the unfinished run: once frozen, it continues writing to that run,
//! rewriting the entries written already with the same or newer values.
//!
//! # Visibility
//!
//! Entries carry their block number and a snapshot only sees those of blocks below its own height,
//! so a block's entries may be put in memory before its database commit (and are taken out again
//! if that fails). A snapshot holds the oldest generation it may need and follows the chain to
//! newer ones; a generation is dropped from the chain for new snapshots only after the
//! transaction that wrote its last slice to its run is committed, so their database view holds
//! the whole run.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use super::codec::{get_varint, put_varint};
use super::LedgerError;

/// The tables whose recent entries are kept here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// txid → (block, tx, code).
    Txid = 0,
    /// collection key hash → encoded versioned value.
    PvtHash = 1,
}

impl Kind {
    fn from_byte(b: u8) -> Result<Self, LedgerError> {
        match b {
            0 => Ok(Kind::Txid),
            1 => Ok(Kind::PvtHash),
            _ => Err(LedgerError::Corrupt(format!("recent-entry kind {b}"))),
        }
    }
}

/// A recent value: the bytes written, or `None` for a delete.
pub(crate) type Value = Option<Arc<[u8]>>;

/// One key's values, one per block that wrote it, in block order.
type Versions = Vec<(u64, Value)>;

/// Keys to versions. The keys are txids and key hashes, which nobody chooses freely, and SipHash
/// was a visible share of every lookup.
type Map = HashMap<Vec<u8>, Versions, foldhash::fast::RandomState>;

/// One generation of recent entries.
pub(crate) struct Generation {
    /// The first block whose entries may be here.
    first_block: u64,
    maps: [RwLock<Map>; 2],
    next: OnceLock<Arc<Generation>>,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("first_block", &self.first_block)
            .field("keys", &self.len())
            .finish()
    }
}

impl Generation {
    /// An empty generation for blocks from `first_block` on.
    pub(crate) fn new(first_block: u64) -> Arc<Self> {
        Arc::new(Generation {
            first_block,
            maps: [RwLock::default(), RwLock::default()],
            next: OnceLock::new(),
        })
    }

    fn map(&self, kind: Kind) -> &RwLock<Map> {
        &self.maps[kind as usize]
    }

    /// Number of keys held.
    pub(crate) fn len(&self) -> usize {
        self.maps
            .iter()
            .map(|m| m.read().expect("recent entries lock").len())
            .sum()
    }

    /// Records `value` for `key` as written by `block` (a later write of the same block replaces
    /// an earlier one).
    pub(crate) fn insert(&self, kind: Kind, key: &[u8], block: u64, value: Value) {
        let mut map = self.map(kind).write().expect("recent entries lock");
        let versions = map.entry(key.to_vec()).or_default();
        match versions.last_mut() {
            Some(last) if last.0 == block => last.1 = value,
            _ => versions.push((block, value)),
        }
    }

    /// Takes out what `block` wrote to `keys` (a commit that failed).
    pub(crate) fn remove_block(&self, block: u64, keys: &[(Kind, Vec<u8>)]) {
        for (kind, key) in keys {
            let mut map = self.map(*kind).write().expect("recent entries lock");
            if let Some(versions) = map.get_mut(key.as_slice()) {
                versions.retain(|(b, _)| *b != block);
                if versions.is_empty() {
                    map.remove(key.as_slice());
                }
            }
        }
    }

    fn contains(&self, kind: Kind, key: &[u8]) -> bool {
        self.map(kind)
            .read()
            .expect("recent entries lock")
            .contains_key(key)
    }

    /// Every key with its last value, sorted by table and key (the order of a run). Read in
    /// one pass over the maps: looking each key up again later missed the CPU caches.
    fn sorted_entries(&self) -> Vec<RunEntry> {
        let mut entries: Vec<RunEntry> = Vec::with_capacity(self.len());
        for kind in [Kind::Txid, Kind::PvtHash] {
            let map = self.map(kind).read().expect("recent entries lock");
            entries.extend(map.iter().map(|(k, versions)| {
                let (_, last) = versions.last().expect("a held key has a version");
                (kind, k.clone(), last.clone())
            }));
        }
        entries.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        entries
    }
}

/// The last of `versions` written by a block below `below`.
fn last_below(versions: &Versions, below: u64) -> Option<Value> {
    versions
        .iter()
        .rev()
        .find(|(b, _)| *b < below)
        .map(|(_, v)| v.clone())
}

/// The chain of generations from `head` on, newest last.
fn chain(head: &Arc<Generation>) -> impl Iterator<Item = &Arc<Generation>> {
    std::iter::successors(Some(head), |g| g.next.get())
}

/// Whether any generation from `head` on holds `key`, whatever the block.
pub(crate) fn holds(head: &Arc<Generation>, kind: Kind, key: &[u8]) -> bool {
    chain(head).any(|g| g.contains(kind, key))
}

/// The last value written to `key` by a block below `below`, in the generations from `head` on
/// (`None`: no such write is held here).
pub(crate) fn lookup(head: &Arc<Generation>, kind: Kind, key: &[u8], below: u64) -> Option<Value> {
    let found = lookup_with(head, kind, key, || Ok::<_, std::convert::Infallible>(below));
    found.unwrap_or_else(|never| match never {})
}

/// [`lookup`] with the bound asked for only when some generation holds `key` (finding the
/// bound costs a database read).
pub(crate) fn lookup_with<E>(
    head: &Arc<Generation>,
    kind: Kind,
    key: &[u8],
    mut below: impl FnMut() -> Result<u64, E>,
) -> Result<Option<Value>, E> {
    let mut found = None;
    for g in chain(head) {
        let map = g.map(kind).read().expect("recent entries lock");
        if let Some(versions) = map.get(key) {
            if let Some(v) = last_below(versions, below()?) {
                found = Some(v);
            }
        }
    }
    Ok(found)
}

/// A key of a frozen generation and its last value, as a run holds it.
pub(crate) type RunEntry = (Kind, Vec<u8>, Value);

/// A frozen generation being written to its run.
struct Merging {
    generation: Arc<Generation>,
    /// Its keys and their last values, in run order (a frozen generation does not change).
    keys: Vec<RunEntry>,
    /// How many of `keys` are in the run.
    done: usize,
}

/// The recent entries of one ledger, changed only by the committing thread.
pub(crate) struct Recent {
    live: Arc<Generation>,
    merging: Option<Merging>,
    merge_after: usize,
    /// The runs: first blocks of the generations written to tables of their own, oldest first
    /// (the one being written included).
    runs: Arc<[u64]>,
}

/// What one block's commit merges: keys `from..to` of the merging generation, and whether that
/// finishes it (its log rows below `log_below` are then deleted).
pub(crate) struct MergeSlice<'a> {
    /// The run they go to (the merging generation's first block).
    pub(crate) run: u64,
    /// The keys and their last values.
    pub(crate) entries: &'a [RunEntry],
    /// The merging generation's log rows are those of blocks below this number.
    pub(crate) log_below: u64,
    /// The first slice of its generation.
    pub(crate) starts: bool,
    /// The last slice of its generation: its commit deletes the log rows below `log_below`.
    pub(crate) finishes: bool,
    to: usize,
}

impl Recent {
    /// Recent entries starting from `live`, freezing generations of `merge_after` keys, on top
    /// of the runs already written (first blocks, oldest first).
    pub(crate) fn new(live: Arc<Generation>, merge_after: usize, runs: Vec<u64>) -> Self {
        Recent {
            live,
            merging: None,
            merge_after: merge_after.max(1),
            runs: runs.into(),
        }
    }

    /// The runs a new snapshot looks in, oldest first.
    pub(crate) fn runs(&self) -> Arc<[u64]> {
        Arc::clone(&self.runs)
    }

    /// The generation new snapshots start from.
    pub(crate) fn head(&self) -> Arc<Generation> {
        match &self.merging {
            Some(m) => Arc::clone(&m.generation),
            None => Arc::clone(&self.live),
        }
    }

    /// The live generation (where a block's entries go).
    pub(crate) fn live(&self) -> &Arc<Generation> {
        &self.live
    }

    /// The merge work of a block that adds `added` keys: a share of the merging generation that
    /// ends it before the live generation is full, or all of the rest once it is.
    pub(crate) fn next_slice(&self, added: usize) -> Option<MergeSlice<'_>> {
        let m = self.merging.as_ref()?;
        let left = m.keys.len() - m.done;
        let share = if self.live.len() >= self.merge_after {
            left
        } else {
            // 5/4 of the proportional share, so the merge ends with a quarter of the live
            // generation's room to spare.
            (m.keys.len() * added.max(1) * 5 / 4).div_ceil(self.merge_after)
        };
        let to = m.done + share.clamp(1, left);
        let entries = &m.keys[m.done..to];
        Some(MergeSlice {
            run: m.generation.first_block,
            entries,
            log_below: self.live.first_block,
            starts: m.done == 0,
            finishes: to == m.keys.len(),
            to,
        })
    }

    /// After a block's commit: records the merged slice, and freezes the live generation when it
    /// is full and nothing is being merged (the next block starts a new one).
    pub(crate) fn committed(&mut self, merged_to: Option<usize>, block: u64) {
        if let (Some(m), Some(to)) = (&mut self.merging, merged_to) {
            m.done = to;
            if m.done == m.keys.len() {
                self.merging = None;
            }
        }
        if self.merging.is_none() && self.live.len() >= self.merge_after {
            let next = Generation::new(block + 1);
            let frozen = std::mem::replace(&mut self.live, Arc::clone(&next));
            frozen
                .next
                .set(next)
                .expect("only the live generation gets a successor");
            let keys = frozen.sorted_entries();
            // A run reopened after a restart continues under the same first block.
            if self.runs.last() != Some(&frozen.first_block) {
                let mut runs = self.runs.to_vec();
                runs.push(frozen.first_block);
                self.runs = runs.into();
            }
            self.merging = Some(Merging {
                generation: frozen,
                keys,
                done: 0,
            });
        }
    }
}

impl MergeSlice<'_> {
    /// Where the merge stands once this slice is committed.
    pub(crate) fn end(&self) -> usize {
        self.to
    }
}

/// Encoded log rows of at most about this many bytes each.
const LOG_ROW_BYTES: usize = 1024;

/// Encodes a block's entries as log rows.
pub(crate) fn encode_log(entries: &[(Kind, Vec<u8>, Value)]) -> Vec<Vec<u8>> {
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for (kind, key, value) in entries {
        if out.len() >= LOG_ROW_BYTES {
            rows.push(std::mem::take(&mut out));
        }
        out.push(*kind as u8);
        put_varint(&mut out, key.len() as u64);
        out.extend_from_slice(key);
        match value {
            Some(v) => {
                out.push(1);
                put_varint(&mut out, v.len() as u64);
                out.extend_from_slice(v);
            }
            None => out.push(0),
        }
    }
    if !out.is_empty() {
        rows.push(out);
    }
    rows
}

/// Decodes a log row into `generation` as written by `block`.
pub(crate) fn decode_log_into(
    generation: &Generation,
    block: u64,
    mut row: &[u8],
) -> Result<(), LedgerError> {
    fn take(buf: &[u8]) -> Result<(&[u8], &[u8]), LedgerError> {
        let (len, rest) = get_varint(buf)?;
        let len = usize::try_from(len).map_err(|_| LedgerError::Corrupt("log length".into()))?;
        if rest.len() < len {
            return Err(LedgerError::Corrupt(
                "truncated recent-entry log row".into(),
            ));
        }
        Ok(rest.split_at(len))
    }
    while let Some((&kind, rest)) = row.split_first() {
        let kind = Kind::from_byte(kind)?;
        let (key, rest) = take(rest)?;
        let (&flag, rest) = rest
            .split_first()
            .ok_or_else(|| LedgerError::Corrupt("truncated recent-entry log row".into()))?;
        let (value, rest) = match flag {
            0 => (None, rest),
            1 => {
                let (v, rest) = take(rest)?;
                (Some(Arc::from(v)), rest)
            }
            _ => return Err(LedgerError::Corrupt(format!("recent-entry flag {flag}"))),
        };
        generation.insert(kind, key, block, value);
        row = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: &[u8]) -> Value {
        Some(Arc::from(b))
    }

    #[test]
    fn a_snapshot_sees_the_last_write_below_its_height_across_generations() {
        let old = Generation::new(0);
        old.insert(Kind::PvtHash, b"k", 1, v(b"one"));
        old.insert(Kind::PvtHash, b"k", 3, None);
        let new = Generation::new(5);
        old.next.set(Arc::clone(&new)).unwrap();
        new.insert(Kind::PvtHash, b"k", 6, v(b"six"));
        assert_eq!(lookup(&old, Kind::PvtHash, b"k", 1), None);
        assert_eq!(lookup(&old, Kind::PvtHash, b"k", 2), Some(v(b"one")));
        assert_eq!(lookup(&old, Kind::PvtHash, b"k", 4), Some(None));
        assert_eq!(lookup(&old, Kind::PvtHash, b"k", 7), Some(v(b"six")));
        assert_eq!(lookup(&new, Kind::PvtHash, b"k", 4), None);
        assert_eq!(lookup(&old, Kind::Txid, b"k", 7), None, "tables are apart");
        assert!(holds(&old, Kind::PvtHash, b"k"));
    }

    #[test]
    fn a_failed_block_leaves_no_entries() {
        let g = Generation::new(0);
        g.insert(Kind::Txid, b"a", 1, v(b"x"));
        g.insert(Kind::Txid, b"a", 2, v(b"y"));
        g.insert(Kind::Txid, b"b", 2, v(b"z"));
        g.remove_block(
            2,
            &[(Kind::Txid, b"a".to_vec()), (Kind::Txid, b"b".to_vec())],
        );
        assert_eq!(lookup(&g, Kind::Txid, b"a", u64::MAX), Some(v(b"x")));
        assert!(!holds(&g, Kind::Txid, b"b"));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn log_rows_round_trip() {
        let entries = vec![
            (Kind::Txid, b"t1".to_vec(), v(b"loc")),
            (Kind::PvtHash, vec![0, 1, 2], None),
            (Kind::PvtHash, vec![], v(b"")),
        ];
        let g = Generation::new(4);
        for row in encode_log(&entries) {
            decode_log_into(&g, 4, &row).unwrap();
        }
        let many: Vec<_> = (0..100u8)
            .map(|i| (Kind::Txid, vec![i; 40], v(&[i; 30])))
            .collect();
        let rows = encode_log(&many);
        assert!(rows.len() > 3 && rows.iter().all(|r| r.len() < 2 * LOG_ROW_BYTES));
        for row in rows {
            decode_log_into(&g, 4, &row).unwrap();
        }
        assert_eq!(lookup(&g, Kind::Txid, &[99; 40], 5), Some(v(&[99; 30])));
        for (kind, key, value) in &entries {
            assert_eq!(lookup(&g, *kind, key, 5), Some(value.clone()));
        }
        assert!(decode_log_into(&g, 4, &[0, 9, 1]).is_err());
        assert!(decode_log_into(&g, 4, &[7, 0, 0]).is_err());
    }

    #[test]
    fn a_full_generation_is_merged_in_slices_before_the_next_one_fills() {
        let mut r = Recent::new(Generation::new(0), 8, Vec::new());
        let mut block = 0;
        let mut merged = Vec::new();
        // Two keys per block: the first generation fills after four blocks.
        for round in 0..12u8 {
            block += 1;
            for i in 0..2u8 {
                r.live().insert(Kind::Txid, &[round, i], block, v(b"x"));
            }
            let slice = r.next_slice(2);
            let to = slice.as_ref().map(|s| {
                merged.extend(s.entries.iter().map(|(_, k, _)| k.to_vec()));
                s.end()
            });
            let finished = slice.as_ref().filter(|s| s.finishes).map(|s| s.log_below);
            r.committed(to, block);
            if let Some(below) = finished {
                assert!(below > 1);
            }
            assert!(r.live().len() <= 8, "the live generation never overfills");
        }
        // Every key of the frozen generations was merged, in key order within a generation.
        assert!(merged.len() >= 8);
        assert!(merged[..8].windows(2).all(|w| w[0] < w[1]));
    }
}
