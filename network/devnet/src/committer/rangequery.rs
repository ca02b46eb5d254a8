//! Range query results as recorded in a read set, and their merkle summary, as Fabric's
//! `rwsetutil.RangeQueryResultsHelper` builds them: once more than `max_degree` reads are
//! pending they are serialized as a `QueryReads`, hashed (SHA-256) and become a leaf; a level
//! holding more than
//! `max_degree` hashes is combined (SHA-256 of the concatenation) into one node of the next level.
//! If the tree stays empty (at most `max_degree` results) the raw reads are kept instead.
//!
//! The endorser uses [`RangeQueryResultsHelper`] to record a range query; the committer re-runs
//! the query and compares (phantom read check).

use std::collections::BTreeMap;

use fabric_protos::kvrwset::{KvRead, QueryReads, QueryReadsMerkleSummary};
use prost::Message;
use sha2::{Digest, Sha256};

/// Fabric's default `maxDegree` for range query hashing.
pub const DEFAULT_MAX_DEGREE: u32 = 50;

const LEAF_LEVEL: u32 = 1;

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

fn combine(hashes: &[Vec<u8>]) -> Vec<u8> {
    sha(&hashes.concat())
}

/// The recorded outcome of a range query: raw reads, or a merkle summary when there were many.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeReads {
    /// At most `max_degree` results (or hashing disabled): the reads themselves.
    Raw(Vec<KvRead>),
    /// More results: the merkle summary.
    Merkle(QueryReadsMerkleSummary),
}

/// Incremental builder of [`RangeReads`].
#[derive(Debug)]
pub struct RangeQueryResultsHelper {
    pending: Vec<KvRead>,
    tree: BTreeMap<u32, Vec<Vec<u8>>>,
    max_level: u32,
    max_degree: u32,
    hashing: bool,
}

impl RangeQueryResultsHelper {
    /// A helper; `max_degree` must be at least 2 when hashing is enabled.
    pub fn new(hashing: bool, max_degree: u32) -> Self {
        RangeQueryResultsHelper {
            pending: Vec::new(),
            tree: BTreeMap::new(),
            max_level: LEAF_LEVEL,
            max_degree: max_degree.max(2),
            hashing,
        }
    }

    /// Adds the next result (in key order).
    pub fn add(&mut self, read: KvRead) {
        self.pending.push(read);
        if self.hashing && self.pending.len() as u32 > self.max_degree {
            self.process_pending();
        }
    }

    fn process_pending(&mut self) {
        let bytes = QueryReads {
            kv_reads: std::mem::take(&mut self.pending),
        }
        .encode_to_vec();
        self.update(sha(&bytes));
    }

    fn update(&mut self, leaf: Vec<u8>) {
        self.tree.entry(LEAF_LEVEL).or_default().push(leaf);
        let mut level = LEAF_LEVEL;
        loop {
            let hashes = self.tree.get(&level).cloned().unwrap_or_default();
            if hashes.len() as u32 <= self.max_degree {
                return;
            }
            let next = combine(&hashes);
            self.tree.remove(&level);
            level += 1;
            self.tree.entry(level).or_default().push(next);
            self.max_level = self.max_level.max(level);
        }
    }

    fn finish_tree(&mut self) {
        let mut level = LEAF_LEVEL;
        while level < self.max_level {
            let hashes = self.tree.remove(&level).unwrap_or_default();
            level += 1;
            let h = match hashes.len() {
                0 => continue,
                1 => hashes.into_iter().next().expect("one hash"),
                _ => combine(&hashes),
            };
            self.tree.entry(level).or_default().push(h);
        }
        let finals = self.tree.get(&self.max_level).cloned().unwrap_or_default();
        if finals.len() as u32 > self.max_degree {
            self.tree.remove(&self.max_level);
            self.max_level += 1;
            self.tree.insert(self.max_level, vec![combine(&finals)]);
        }
    }

    /// Finishes: raw reads if the tree is empty, else the merkle summary.
    pub fn done(mut self) -> RangeReads {
        if !self.hashing || self.tree.is_empty() {
            return RangeReads::Raw(self.pending);
        }
        if !self.pending.is_empty() {
            self.process_pending();
        }
        self.finish_tree();
        RangeReads::Merkle(QueryReadsMerkleSummary {
            max_degree: self.max_degree,
            max_level: self.max_level,
            max_level_hashes: self.tree.get(&self.max_level).cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::kvrwset::Version;

    fn read(i: u32) -> KvRead {
        KvRead {
            key: format!("k{i:04}"),
            version: Some(Version {
                block_num: 1,
                tx_num: u64::from(i),
            }),
        }
    }

    #[test]
    fn few_results_stay_raw_and_many_become_a_summary() {
        let mut h = RangeQueryResultsHelper::new(true, 3);
        for i in 0..3 {
            h.add(read(i));
        }
        assert!(matches!(h.done(), RangeReads::Raw(r) if r.len() == 3));

        // 4 reads with degree 3: one leaf hash of all four, at level 1.
        let mut h = RangeQueryResultsHelper::new(true, 3);
        for i in 0..4 {
            h.add(read(i));
        }
        let leaf = sha(&QueryReads {
            kv_reads: (0..4).map(read).collect(),
        }
        .encode_to_vec());
        assert_eq!(
            h.done(),
            RangeReads::Merkle(QueryReadsMerkleSummary {
                max_degree: 3,
                max_level: 1,
                max_level_hashes: vec![leaf],
            })
        );
    }

    #[test]
    fn levels_combine_past_the_degree() {
        // 4 leaves of 4 reads each (16 reads) with degree 3: the fourth leaf pushes level 1 over
        // the degree, so the four leaves combine into one level-2 node.
        let mut h = RangeQueryResultsHelper::new(true, 3);
        for i in 0..16 {
            h.add(read(i));
        }
        let leaves: Vec<Vec<u8>> = (0..4)
            .map(|c| {
                sha(&QueryReads {
                    kv_reads: (c * 4..c * 4 + 4).map(read).collect(),
                }
                .encode_to_vec())
            })
            .collect();
        let RangeReads::Merkle(m) = h.done() else {
            panic!("expected a summary")
        };
        assert_eq!(m.max_level, 2);
        assert_eq!(m.max_level_hashes, vec![combine(&leaves)]);
    }
}
