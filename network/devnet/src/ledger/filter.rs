//! Key filters of the two tables whose keys are hashes (the txid index and the private-data
//! hashes): Bloom filters that answer "certainly not in the table" for most keys never written.
//!
//! # Why
//!
//! Almost every lookup in those tables is of a key that is not there: each new transaction's
//! txid (endorsement and validation check it is not a duplicate), each new private key's hash
//! (simulation, validation and commit read its metadata). In a table of a million random keys
//! each such miss is a descent of a B-tree on pages that are rarely in cache. A filter answers
//! it with a few memory probes, as the Bloom filters of Fabric's LevelDB do.
//!
//! # Correctness
//!
//! A filter only ever gains keys. Every key a merge writes to a table is added before the
//! merging transaction commits, and the keys already in the table when the ledger is opened are
//! added by a scan in the background; the filter is *ready* once that scan is done. Until then
//! it answers "maybe" for everything. A ready filter so holds every key any snapshot of the
//! ledger can see in the table (deletes leave keys in the filter: only a false "maybe").

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use super::recent::Kind;

/// Bits per key at a Bloom filter's capacity, and probes per key: about 1% false "maybe".
const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 7;
/// Keys the first Bloom filter of a table holds; each further one holds twice the previous.
const FIRST_CAPACITY: usize = 1 << 14;

/// One Bloom filter of a fixed capacity.
struct Bloom {
    words: Box<[AtomicU64]>,
    /// `words.len() * 64 - 1` (a power of two minus one).
    mask: u64,
    capacity: usize,
    count: AtomicUsize,
}

impl Bloom {
    fn new(capacity: usize) -> Self {
        let bits = (capacity * BITS_PER_KEY).next_power_of_two().max(64);
        Bloom {
            words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits as u64 - 1,
            capacity,
            count: AtomicUsize::new(0),
        }
    }

    /// The bit positions of a key's hash (double hashing).
    fn probes(&self, hash: u64) -> impl Iterator<Item = u64> + '_ {
        let h1 = hash & 0xffff_ffff;
        let h2 = (hash >> 32) | 1;
        (0..u64::from(PROBES)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & self.mask)
    }

    fn insert(&self, hash: u64) {
        for bit in self.probes(hash) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Release);
        }
    }

    fn may_contain(&self, hash: u64) -> bool {
        self.probes(hash).all(|bit| {
            self.words[(bit / 64) as usize].load(Ordering::Acquire) & (1 << (bit % 64)) != 0
        })
    }
}

/// A growing set of Bloom filters over one table's keys.
struct KeyFilter {
    blooms: RwLock<Vec<Arc<Bloom>>>,
}

impl KeyFilter {
    fn new() -> Self {
        KeyFilter {
            blooms: RwLock::new(vec![Arc::new(Bloom::new(FIRST_CAPACITY))]),
        }
    }

    fn insert(&self, hash: u64) {
        let last = {
            let blooms = self.blooms.read().expect("filter lock");
            Arc::clone(blooms.last().expect("at least one bloom"))
        };
        if last.count.fetch_add(1, Ordering::Relaxed) < last.capacity {
            last.insert(hash);
            return;
        }
        // Full: a new filter of twice the capacity takes this key and the next ones.
        let mut blooms = self.blooms.write().expect("filter lock");
        let last = blooms.last().expect("at least one bloom");
        if last.count.load(Ordering::Relaxed) >= last.capacity {
            let next = Bloom::new(last.capacity * 2);
            blooms.push(Arc::new(next));
        }
        let last = blooms.last().expect("at least one bloom");
        last.count.fetch_add(1, Ordering::Relaxed);
        last.insert(hash);
    }

    fn may_contain(&self, hash: u64) -> bool {
        let blooms = self.blooms.read().expect("filter lock");
        blooms.iter().any(|b| b.may_contain(hash))
    }
}

/// The key filters of a ledger's txid and private-hash tables.
pub(crate) struct Filters {
    txids: KeyFilter,
    pvt_hashes: KeyFilter,
    ready: AtomicBool,
    hasher: foldhash::quality::FixedState,
}

impl Filters {
    /// Empty filters, not ready.
    pub(crate) fn new() -> Self {
        Filters {
            txids: KeyFilter::new(),
            pvt_hashes: KeyFilter::new(),
            ready: AtomicBool::new(false),
            // A fixed seed: nothing stores the hashes, and keys are hashes already.
            hasher: foldhash::quality::FixedState::with_seed(0x656c_6963_656e_7365),
        }
    }

    fn filter(&self, kind: Kind) -> &KeyFilter {
        match kind {
            Kind::Txid => &self.txids,
            Kind::PvtHash => &self.pvt_hashes,
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// Adds a key the table of `kind` holds (or is about to).
    pub(crate) fn insert(&self, kind: Kind, key: &[u8]) {
        self.filter(kind).insert(self.hash(key));
    }

    /// Marks the filters complete: every key in the tables has been added.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether the filters are complete.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// False only if the table of `kind` certainly does not hold `key`.
    pub(crate) fn may_contain(&self, kind: Kind, key: &[u8]) -> bool {
        !self.is_ready() || self.filter(kind).may_contain(self.hash(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Vec<u8> {
        format!("{i:08x}-key").into_bytes()
    }

    #[test]
    fn an_unready_filter_answers_maybe_and_a_ready_one_never_misses_an_added_key() {
        let f = Filters::new();
        assert!(f.may_contain(Kind::Txid, b"never added"));
        // Enough keys to grow past several Bloom filters.
        let n = FIRST_CAPACITY as u32 * 5;
        for i in 0..n {
            f.insert(Kind::Txid, &key(i));
        }
        f.set_ready();
        assert!((0..n).all(|i| f.may_contain(Kind::Txid, &key(i))));
        // The kinds are separate filters.
        assert!(
            (0..1000)
                .filter(|i| f.may_contain(Kind::PvtHash, &key(*i)))
                .count()
                < 20
        );
        let false_maybes = (n..n + 100_000)
            .filter(|i| f.may_contain(Kind::Txid, &key(*i)))
            .count();
        // Each of the three Bloom filters is at about 1% when full.
        assert!(
            false_maybes < 4_000,
            "{false_maybes} false maybes in 100,000"
        );
    }

    #[test]
    fn keys_added_from_several_threads_are_all_found() {
        let f = Arc::new(Filters::new());
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let f = Arc::clone(&f);
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        f.insert(Kind::PvtHash, &key(t * 1_000_000 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        f.set_ready();
        for t in 0..4u32 {
            assert!((0..20_000).all(|i| f.may_contain(Kind::PvtHash, &key(t * 1_000_000 + i))));
        }
    }
}
