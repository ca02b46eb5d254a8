//! Crash safety of the ledger's commit path.
//!
//! The test re-runs its own binary as a child process that commits blocks in a loop and prints
//! `committed N` after each `Ledger::commit` returns. The parent kills the child with SIGKILL at a
//! random moment, reopens the ledger and checks that:
//!
//! * every block the child reported committed is there (durability of a returned commit);
//! * the header hash chain verifies from block 0 to the tip;
//! * the state, private-data hashes, txid index and history equal a replay of the stored blocks
//!   into a fresh ledger (atomicity: no block without its state, no state without its block).
//!
//! The child keeps few recent txid and private-hash entries in memory, so merges into their
//! tables and the deletion of merged log rows happen every few blocks and get killed too.
//!
//! A SIGKILL loses the process but not the OS page cache, so this proves atomicity of the commit
//! against a process dying mid-write; durability against power loss rests on redb's fsync
//! (`Durability::Immediate`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use fabric_devnet::ledger::block::{block_header_hash, new_block};
use fabric_devnet::ledger::{
    BlockUpdates, CollHashedRwSet, Height, Ledger, LedgerOptions, NsRwSet, TxRwSet,
};
use fabric_protos::kvrwset::{HashedRwSet, KvWrite, KvWriteHash, KvrwSet};

const CHILD_ENV: &str = "DEVNET_LEDGER_CRASH_CHILD";
const COLL: &str = "coll";
/// Transactions per block.
const TXS: u64 = 50;

/// Key hash `i` of the collection (a small key space, so hashes are rewritten and deleted).
fn key_hash(i: u64) -> Vec<u8> {
    format!("h{i:03}").into_bytes()
}

/// Deterministic block content: block `n` carries 50 transactions, each an encoded rwset writing
/// or deleting keys and one private-data hash chosen from `n` and the transaction index (so
/// replays are reproducible).
fn block_txs(n: u64) -> Vec<(String, TxRwSet)> {
    (0..TXS)
        .map(|i| {
            let mut x = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i.wrapping_mul(1442695040888963407));
            let mut ws = Vec::new();
            for _ in 0..4 {
                x ^= x >> 29;
                x = x.wrapping_mul(0xbf58476d1ce4e5b9);
                let key = format!("k{:04}", x % 2000);
                ws.push(KvWrite {
                    key,
                    is_delete: x % 11 == 0,
                    value: if x % 11 == 0 {
                        vec![]
                    } else {
                        format!("v{n}-{i}-{x}").into_bytes()
                    },
                });
            }
            // A transaction's rwset holds each key once.
            ws.sort_by(|a, b| a.key.cmp(&b.key));
            ws.dedup_by(|a, b| a.key == b.key);
            x ^= x >> 31;
            let hashed = KvWriteHash {
                key_hash: key_hash(x % 300),
                is_delete: x % 7 == 0,
                value_hash: if x % 7 == 0 {
                    vec![]
                } else {
                    format!("vh{n}-{i}").into_bytes()
                },
                is_purge: false,
            };
            (
                format!("tx-{n}-{i}"),
                TxRwSet {
                    ns_rwsets: vec![NsRwSet {
                        namespace: "cc".into(),
                        kv: KvrwSet {
                            writes: ws,
                            ..Default::default()
                        },
                        coll_hashed: vec![CollHashedRwSet {
                            collection: COLL.into(),
                            hashed: HashedRwSet {
                                hashed_writes: vec![hashed],
                                ..Default::default()
                            },
                            pvt_rwset_hash: vec![],
                        }],
                    }],
                },
            )
        })
        .collect()
}

/// Commits the block that follows `l`'s tip, with its data being the encoded rwsets.
fn commit_next(l: &Ledger, txs: &[(String, TxRwSet)]) {
    let n = l.height();
    let data = txs.iter().map(|(_, rw)| rw.encode()).collect();
    let block = new_block(n, l.last_header_hash(), data);
    let mut u = BlockUpdates::new();
    for (i, (txid, rw)) in txs.iter().enumerate() {
        u.record_tx(txid, i as u64, 0);
        u.add_valid_tx(
            Height {
                block: n,
                tx: i as u64,
            },
            txid,
            (n as i64, 0),
            rw,
            &[],
        );
    }
    l.commit(&block, &u).expect("commit");
}

/// The child: commit forever (until killed), reporting each durable commit on stdout.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let options = LedgerOptions {
        merge_after: 120,
        ..LedgerOptions::default()
    };
    let l = Ledger::open_with(&path, "ch", options).expect("open in child");
    loop {
        let n = l.height();
        commit_next(&l, &block_txs(n));
        println!("committed {n}");
    }
}

#[test]
fn sigkill_during_commits_loses_nothing_reported_and_never_tears_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x2545F4914F6CDD1Du64;
    for round in 0..6 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wanted = 3 + seed % 12;
        let mut reported: Option<u64> = None;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < wanted {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("committed ") {
                reported = Some(n.trim().parse().unwrap());
                seen += 1;
            }
        }
        // Kill at a random point inside the next commit(s).
        std::thread::sleep(Duration::from_micros(seed % 20_000));
        child.kill().unwrap();
        child.wait().unwrap();
        // Drain whatever the child printed before dying: those commits were reported too.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("committed ") {
                reported = Some(n.trim().parse().unwrap());
            }
        }
        let reported = reported.expect("the child committed something");

        let l = Ledger::open(&path, "ch").expect("reopen after SIGKILL");
        assert!(
            l.height() > reported,
            "round {round}: block {reported} was reported committed but height is {}",
            l.height()
        );
        verify_chain_and_replay(&l, dir.path(), round);
    }
}

fn verify_chain_and_replay(l: &Ledger, dir: &std::path::Path, round: u32) {
    let replay = Ledger::open(dir.join(format!("replay-{round}.redb")), "ch").unwrap();
    let snap = l.snapshot().unwrap();
    let mut prev: Option<Vec<u8>> = None;
    for n in 0..l.height() {
        let b = snap
            .block(n)
            .unwrap()
            .expect("every block below the height is stored");
        let h = b.header.clone().unwrap();
        assert_eq!(h.number, n);
        if let Some(p) = &prev {
            assert_eq!(&h.previous_hash, p, "hash chain broken at block {n}");
        }
        assert_eq!(
            h.data_hash,
            fabric_devnet::ledger::block::block_data_hash(b.data.as_ref().unwrap())
        );
        prev = Some(block_header_hash(&h));
        // Replay from the block's own data.
        let txs: Vec<(String, TxRwSet)> = b
            .data
            .unwrap()
            .data
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("tx-{n}-{i}"), TxRwSet::decode(d).unwrap()))
            .collect();
        assert_eq!(txs, block_txs(n), "block {n} content");
        commit_next(&replay, &txs);
    }
    assert_eq!(prev.unwrap(), l.last_header_hash());
    let rs = replay.snapshot().unwrap();
    assert_eq!(snap.dump_state().unwrap(), rs.dump_state().unwrap());
    for n in 0..l.height() {
        for i in 0..TXS {
            let id = format!("tx-{n}-{i}");
            let at = snap.tx_location(&id).unwrap();
            assert_eq!(at, rs.tx_location(&id).unwrap(), "{id}");
            assert_eq!(at.map(|t| (t.block, t.tx)), Some((n, i)), "{id}");
        }
    }
    for i in 0..300 {
        assert_eq!(
            snap.get_private_hash("cc", COLL, &key_hash(i)).unwrap(),
            rs.get_private_hash("cc", COLL, &key_hash(i)).unwrap(),
            "private hash {i}"
        );
    }
    let next = format!("tx-{}-0", l.height());
    assert!(snap.tx_location(&next).unwrap().is_none());
    for k in ["k0001", "k0500", "k1999"] {
        assert_eq!(snap.history("cc", k).unwrap(), rs.history("cc", k).unwrap());
    }
}
