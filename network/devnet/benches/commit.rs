//! Ledger commit cost on its own: blocks of issuance-shaped transactions committed to one ledger,
//! one after another, on one thread (no validation, no network).
//!
//! ```text
//! cargo bench -p fabric-devnet --bench commit
//! COMMIT_BLOCKS=200 COMMIT_TXS=400 COMMIT_MERGE_AFTER=262144 cargo bench -p fabric-devnet --bench commit
//! ```
//!
//! Each transaction has a random 64-hex-digit txid, writes a licence key with a key-level
//! endorsement policy (value + metadata), two index keys, and one private-data hash (random
//! 32-byte key hash), like a licence issue; the issuer's peer also stores the private value.
//! History entries name their transactions, as the committer's do (the envelopes are filler
//! bytes of an envelope's size, never read back).
//! Printed per stretch of blocks: µs of this thread's CPU per transaction, wall µs per
//! transaction, and bytes written to storage per transaction (`/proc/self/io`), so the cost can
//! be watched as the ledger grows.

use std::time::Instant;

use fabric_devnet::ledger::block::new_block;
use fabric_devnet::ledger::{
    BlockUpdates, CollHashedRwSet, Height, Ledger, LedgerOptions, NsRwSet, PvtCollWrites, TxRwSet,
};
use fabric_protos::kvrwset::{
    HashedRwSet, KvMetadataEntry, KvMetadataWrite, KvWrite, KvWriteHash, KvrwSet,
};
use sha2::{Digest, Sha256};

mod support;
use support::{cpu_time, disk_write_bytes, env_or};

fn hex_id(seed: u64) -> String {
    hex::encode(Sha256::digest(seed.to_le_bytes()))
}

/// One issuance-shaped transaction: txid, envelope-sized data, write set, private writes.
fn tx(i: u64) -> (String, Vec<u8>, TxRwSet, PvtCollWrites) {
    let txid = hex_id(i);
    let licence = format!("\u{0}licence\u{0}IDC-PSB-{:08}\u{0}", i);
    let record = vec![b'r'; 900];
    let key_hash = Sha256::digest(licence.as_bytes()).to_vec();
    let value_hash = Sha256::digest(&record).to_vec();
    let rw = TxRwSet {
        ns_rwsets: vec![NsRwSet {
            namespace: "elicense".into(),
            kv: KvrwSet {
                writes: vec![
                    KvWrite {
                        key: licence.clone(),
                        is_delete: false,
                        value: record.clone(),
                    },
                    KvWrite {
                        key: format!("\u{0}holder\u{0}{}\u{0}{licence}", &txid[..16]),
                        is_delete: false,
                        value: b"1".to_vec(),
                    },
                    KvWrite {
                        key: format!("\u{0}type\u{0}ID_CARD\u{0}{licence}"),
                        is_delete: false,
                        value: b"1".to_vec(),
                    },
                ],
                metadata_writes: vec![KvMetadataWrite {
                    key: licence.clone(),
                    entries: vec![KvMetadataEntry {
                        name: "VALIDATION_PARAMETER".into(),
                        value: vec![7; 120],
                    }],
                }],
                ..Default::default()
            },
            coll_hashed: vec![CollHashedRwSet {
                collection: "_implicit_org_PublicSecurityMSP".into(),
                hashed: HashedRwSet {
                    hashed_writes: vec![KvWriteHash {
                        key_hash,
                        is_delete: false,
                        value_hash,
                        is_purge: false,
                    }],
                    ..Default::default()
                },
                pvt_rwset_hash: vec![1; 32],
            }],
        }],
    };
    let pvt = PvtCollWrites {
        namespace: "elicense".into(),
        collection: "_implicit_org_PublicSecurityMSP".into(),
        kv: KvrwSet {
            writes: vec![KvWrite {
                key: licence,
                is_delete: false,
                value: vec![b'p'; 600],
            }],
            ..Default::default()
        },
    };
    (txid, vec![b'e'; 4_500], rw, pvt)
}

fn main() {
    let blocks: u64 = env_or("COMMIT_BLOCKS", 150);
    let per_block: u64 = env_or("COMMIT_TXS", 400);
    let report_every: u64 = env_or("COMMIT_REPORT", 50).max(1);
    let dir = tempfile::tempdir().unwrap();
    let mut options = LedgerOptions::default();
    options.merge_after = env_or("COMMIT_MERGE_AFTER", options.merge_after);
    let ledger = Ledger::open_with(dir.path().join("bench.redb"), "ch", options).unwrap();
    println!(
        "ledger commit: blocks of {per_block} issuance-shaped transactions (4.5 KB envelope, 3 \
         writes + metadata, 1 private hash, private value), one ledger, one thread"
    );
    println!(
        "{:>10} {:>12} {:>12} {:>12}",
        "txs", "CPU µs/tx", "wall µs/tx", "disk KB/tx"
    );
    let mut n = 0u64;
    let mut b = 0u64;
    while b < blocks {
        // Build a stretch of blocks first, so only the commits are measured.
        let stretch = report_every.min(blocks - b);
        let mut built = Vec::with_capacity(stretch as usize);
        for _ in 0..stretch {
            let mut data = Vec::with_capacity(per_block as usize);
            let mut updates = BlockUpdates::new();
            for t in 0..per_block {
                let (txid, env, rw, pvt) = tx(n);
                n += 1;
                let h = Height { block: b, tx: t };
                updates.record_tx(&txid, t, 0);
                updates.add_block_tx(h, &txid, (0, 0), &rw, std::slice::from_ref(&pvt));
                data.push(env);
            }
            built.push((data, updates));
            b += 1;
        }
        let (cpu0, wall0, disk0) = (
            cpu_time("/proc/thread-self/stat"),
            Instant::now(),
            disk_write_bytes(),
        );
        for (data, updates) in built {
            let block = new_block(ledger.height(), ledger.last_header_hash(), data);
            ledger.commit(&block, &updates).unwrap();
        }
        let txs = stretch * per_block;
        let cpu = cpu_time("/proc/thread-self/stat").saturating_sub(cpu0);
        let wall = wall0.elapsed();
        let disk = disk_write_bytes().saturating_sub(disk0);
        println!(
            "{:>10} {:>12.1} {:>12.1} {:>12.1}",
            n,
            cpu.as_secs_f64() * 1e6 / txs as f64,
            wall.as_secs_f64() * 1e6 / txs as f64,
            disk as f64 / 1e3 / txs as f64
        );
    }
}
