//! Crash safety of the ledger's commit path.
//!
//! The test re-runs its own binary as a child process that commits blocks in a loop and prints
//! `committed N` after each `Ledger::commit` returns. The parent kills the child with SIGKILL at a
//! random moment, reopens the ledger and checks that:
//!
//! * every block the child reported committed is there (durability of a returned commit);
//! * the header hash chain verifies from block 0 to the tip;
//! * the state, txid index and history equal a replay of the stored blocks into a fresh ledger
//!   (atomicity: no block without its state, no state without its block).
//!
//! A SIGKILL loses the process but not the OS page cache, so this proves atomicity of the commit
//! against a process dying mid-write; durability against power loss rests on redb's fsync
//! (`Durability::Immediate`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use fabric_devnet::ledger::block::{block_header_hash, new_block};
use fabric_devnet::ledger::{BlockUpdates, Height, Ledger, NsRwSet, TxRwSet};
use fabric_protos::kvrwset::{KvWrite, KvrwSet};

const CHILD_ENV: &str = "DEVNET_LEDGER_CRASH_CHILD";

/// Deterministic block content: block `n` carries 50 transactions, each an encoded rwset writing
/// or deleting keys chosen from `n` and the transaction index (so replays are reproducible).
fn block_txs(n: u64) -> Vec<(String, TxRwSet)> {
    (0..50u64)
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
            (
                format!("tx-{n}-{i}"),
                TxRwSet {
                    ns_rwsets: vec![NsRwSet {
                        namespace: "cc".into(),
                        kv: KvrwSet {
                            writes: ws,
                            ..Default::default()
                        },
                        coll_hashed: vec![],
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
    let l = Ledger::open(&path, "ch").expect("open in child");
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
    for n in [0, l.height() - 1] {
        let id = format!("tx-{n}-7");
        assert_eq!(snap.tx_location(&id).unwrap(), rs.tx_location(&id).unwrap());
    }
    let next = format!("tx-{}-0", l.height());
    assert!(snap.tx_location(&next).unwrap().is_none());
    for k in ["k0001", "k0500", "k1999"] {
        assert_eq!(snap.history("cc", k).unwrap(), rs.history("cc", k).unwrap());
    }
}
