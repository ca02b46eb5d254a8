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
//! A filter only ever gains keys. Every key written to a run is added before the transaction
//! writing it commits, and the keys already in the tables when the ledger is opened are
//! added by a scan in the background; the filter is *ready* once that scan is done. Until then
//! it answers "maybe" for everything. A ready filter so holds every key any snapshot of the
//! ledger can see in the table (deletes leave keys in the filter: only a false "maybe").

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use super::recent::Kind;

/// Bits per key at a Bloom filter's capacity, and probes per key: about 0.1% false "maybe" per
/// filter. A table's filters add up (a million keys added one by one take four; a ledger opened
/// on them, one), and each false "maybe" costs B-tree descents, so a few more bits per key pay.
const BITS_PER_KEY: usize = 16;
const PROBES: u32 = 8;
/// Keys the first Bloom filter of a table holds; each further one holds [`GROWTH`] times the
/// previous.
const FIRST_CAPACITY: usize = 1 << 14;
/// How much bigger each further Bloom filter is: a lookup of an absent key probes every filter
/// of the table (a cache miss each), so they should be few; a factor of four keeps a table of a
/// few million keys at five or fewer, and at most three quarters of the last one unused.
const GROWTH: usize = 4;

/// One cache line of a Bloom filter: all the bits of one key are in one line, so a lookup in a
/// filter far bigger than the CPU caches misses them once, not once per probe.
#[repr(align(64))]
struct Line([AtomicU64; 8]);

/// One Bloom filter of a fixed capacity (a blocked one: one [`Line`] per key).
struct Bloom {
    lines: Box<[Line]>,
    capacity: usize,
    count: AtomicUsize,
}

impl Bloom {
    fn new(capacity: usize) -> Self {
        let lines = (capacity * BITS_PER_KEY).div_ceil(512).max(1);
        Bloom {
            lines: (0..lines)
                .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            capacity,
            count: AtomicUsize::new(0),
        }
    }

    /// A key's line and its bit positions (0..512) in that line.
    fn probes(&self, hash: u64) -> (&Line, impl Iterator<Item = u32>) {
        // The line from the hash's high bits (a multiply-shift range reduction), the bits from
        // two remixes of it, nine bits each.
        let line = ((u128::from(hash) * self.lines.len() as u128) >> 64) as usize;
        let bits = [mix(hash), mix(hash ^ 0x5851_f42d_4c95_7f2d)];
        (
            &self.lines[line],
            (0..PROBES).map(move |i| ((bits[(i % 2) as usize] >> ((i / 2) * 9)) & 511) as u32),
        )
    }

    fn insert(&self, hash: u64) {
        let (line, bits) = self.probes(hash);
        for bit in bits {
            line.0[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Release);
        }
    }

    fn may_contain(&self, hash: u64) -> bool {
        let (line, mut bits) = self.probes(hash);
        bits.all(|bit| line.0[(bit / 64) as usize].load(Ordering::Acquire) & (1 << (bit % 64)) != 0)
    }
}

/// SplitMix64's finalizer: every bit of the result depends on every bit of `x`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
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
        // Full: a bigger filter takes this key and the next ones.
        let mut blooms = self.blooms.write().expect("filter lock");
        let last = blooms.last().expect("at least one bloom");
        if last.count.load(Ordering::Relaxed) >= last.capacity {
            let next = Bloom::new(last.capacity * GROWTH);
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

    /// Makes the next `keys` inserts go to one Bloom filter: the last one if it is empty (it is
    /// then replaced by one that big) or has room, else a new one.
    fn reserve(&self, keys: usize) {
        let mut blooms = self.blooms.write().expect("filter lock");
        let last = blooms.last().expect("at least one bloom");
        let used = last.count.load(Ordering::Relaxed);
        if last.capacity.saturating_sub(used) >= keys {
            return;
        }
        let bloom = Arc::new(Bloom::new(keys.max(FIRST_CAPACITY)));
        if used == 0 {
            *blooms.last_mut().expect("at least one bloom") = bloom;
        } else {
            blooms.push(bloom);
        }
    }

    #[cfg(test)]
    fn bloom_count(&self) -> usize {
        self.blooms.read().expect("filter lock").len()
    }
}

/// The key filters of a ledger's txid and private-hash tables: one over all of a kind's keys,
/// and one per run (see `recent`), so a lookup of a key on the ledger looks only in the runs
/// that may hold it.
pub(crate) struct Filters {
    txids: KeyFilter,
    pvt_hashes: KeyFilter,
    runs: RwLock<HashMap<(Kind, u64), Arc<KeyFilter>>>,
    ready: AtomicBool,
    hasher: foldhash::quality::FixedState,
}

impl Filters {
    /// Empty filters, not ready.
    pub(crate) fn new() -> Self {
        Filters {
            txids: KeyFilter::new(),
            pvt_hashes: KeyFilter::new(),
            runs: RwLock::default(),
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

    /// Makes room for `keys` more keys of `kind` in one Bloom filter, so a table's keys added by
    /// a scan take one filter rather than a chain of growing ones.
    pub(crate) fn reserve(&self, kind: Kind, keys: usize) {
        self.filter(kind).reserve(keys);
    }

    /// Number of Bloom filters a lookup of an absent key of `kind` probes.
    #[cfg(test)]
    pub(crate) fn bloom_count(&self, kind: Kind) -> usize {
        self.filter(kind).bloom_count()
    }

    /// Adds a key the run of `kind` that starts at block `run` holds (or is about to).
    pub(crate) fn insert_in_run(&self, kind: Kind, run: u64, key: &[u8]) {
        let hash = self.hash(key);
        self.filter(kind).insert(hash);
        let filter = match self.run_filter(kind, run) {
            Some(f) => f,
            None => Arc::clone(
                self.runs
                    .write()
                    .expect("filter lock")
                    .entry((kind, run))
                    .or_insert_with(|| Arc::new(KeyFilter::new())),
            ),
        };
        filter.insert(hash);
    }

    /// False only if the run of `kind` that starts at block `run` certainly does not hold `key`.
    pub(crate) fn run_may_contain(&self, kind: Kind, run: u64, key: &[u8]) -> bool {
        if !self.is_ready() {
            return true;
        }
        // No filter: no key of that kind was ever added to the run.
        self.run_filter(kind, run)
            .is_some_and(|f| f.may_contain(self.hash(key)))
    }

    fn run_filter(&self, kind: Kind, run: u64) -> Option<Arc<KeyFilter>> {
        let runs = self.runs.read().expect("filter lock");
        runs.get(&(kind, run)).cloned()
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
        // Each of the two Bloom filters is at about 0.1% when full.
        assert!(false_maybes < 400, "{false_maybes} false maybes in 100,000");
        assert_eq!(f.bloom_count(Kind::Txid), 2);
    }

    #[test]
    fn reserved_room_takes_the_keys_in_one_bloom_filter_and_misses_none() {
        let f = Filters::new();
        let n = FIRST_CAPACITY as u32 * 20;
        f.reserve(Kind::Txid, n as usize);
        for i in 0..n {
            f.insert(Kind::Txid, &key(i));
        }
        f.set_ready();
        assert_eq!(f.bloom_count(Kind::Txid), 1);
        assert!((0..n).all(|i| f.may_contain(Kind::Txid, &key(i))));
        // Room already there is kept; more room after keys are in adds a filter, the keys stay.
        f.reserve(Kind::Txid, 0);
        assert_eq!(f.bloom_count(Kind::Txid), 1);
        f.reserve(Kind::Txid, FIRST_CAPACITY);
        assert_eq!(f.bloom_count(Kind::Txid), 2);
        for i in n..n + 1000 {
            f.insert(Kind::Txid, &key(i));
        }
        assert!((0..n + 1000).all(|i| f.may_contain(Kind::Txid, &key(i))));
        assert_eq!(f.bloom_count(Kind::Txid), 2);
        let false_maybes = (n + 1000..n + 101_000)
            .filter(|i| f.may_contain(Kind::Txid, &key(*i)))
            .count();
        assert!(false_maybes < 400, "{false_maybes} false maybes in 100,000");
    }

    #[test]
    fn a_run_filter_holds_its_run_keys_only() {
        let f = Filters::new();
        for i in 0..5_000 {
            f.insert_in_run(Kind::PvtHash, 7, &key(i));
            f.insert_in_run(Kind::PvtHash, 9, &key(i + 1_000_000));
        }
        assert!(f.run_may_contain(Kind::PvtHash, 7, b"not ready: maybe"));
        f.set_ready();
        assert!((0..5_000).all(|i| f.run_may_contain(Kind::PvtHash, 7, &key(i))));
        assert!((0..5_000).all(|i| f.may_contain(Kind::PvtHash, &key(i + 1_000_000))));
        let elsewhere = (0..5_000)
            .filter(|i| f.run_may_contain(Kind::PvtHash, 9, &key(*i)))
            .count();
        assert!(elsewhere < 50, "{elsewhere} of run 7's keys maybe in run 9");
        assert!(
            !f.run_may_contain(Kind::Txid, 7, &key(0)),
            "no txid in run 7"
        );
        assert!(!f.run_may_contain(Kind::PvtHash, 8, &key(0)), "no run 8");
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
