//! Ledger behaviour: commit and reopen, state semantics (versions, metadata merging, deletes),
//! range and composite-key scans, history, private data, txid index, chain checks, notifications.

use fabric_devnet::ledger::block::{block_header_hash, new_block};
use fabric_devnet::ledger::{
    BlockUpdates, CollHashedRwSet, Height, Ledger, LedgerError, LedgerOptions, NsRwSet,
    PvtCollWrites, TxRwSet, VALIDATION_PARAMETER,
};
use fabric_protos::kvrwset::{
    HashedRwSet, KvMetadataEntry, KvMetadataWrite, KvWrite, KvWriteHash, KvrwSet,
};

fn write(key: &str, value: &[u8]) -> KvWrite {
    KvWrite {
        key: key.into(),
        is_delete: false,
        value: value.to_vec(),
    }
}

fn delete(key: &str) -> KvWrite {
    KvWrite {
        key: key.into(),
        is_delete: true,
        value: vec![],
    }
}

fn ns(name: &str, kv: KvrwSet) -> TxRwSet {
    TxRwSet {
        ns_rwsets: vec![NsRwSet {
            namespace: name.into(),
            kv,
            coll_hashed: vec![],
        }],
    }
}

fn writes(ws: Vec<KvWrite>) -> KvrwSet {
    KvrwSet {
        writes: ws,
        ..Default::default()
    }
}

/// Commits a block of `txs` (all valid) on top of `l` and returns its number.
fn commit_txs(l: &Ledger, txs: &[(String, TxRwSet)]) -> u64 {
    let n = l.height();
    let data = txs.iter().map(|(id, _)| id.as_bytes().to_vec()).collect();
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
            (1_700_000_000 + n as i64, 5),
            rw,
            &[],
        );
    }
    l.commit(&block, &u).expect("commit");
    n
}

#[test]
fn commit_then_reopen_keeps_blocks_state_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ch.redb");
    let hash1;
    {
        let l = Ledger::open(&path, "ch").unwrap();
        assert_eq!(l.height(), 0);
        commit_txs(
            &l,
            &[("tx0".into(), ns("cc", writes(vec![write("a", b"1")])))],
        );
        commit_txs(
            &l,
            &[
                ("tx1".into(), ns("cc", writes(vec![write("b", b"2")]))),
                ("tx2".into(), ns("cc", writes(vec![write("a", b"3")]))),
            ],
        );
        hash1 = l.last_header_hash();
    }
    let l = Ledger::open(&path, "ch").unwrap();
    assert_eq!(l.height(), 2);
    assert_eq!(l.last_header_hash(), hash1);
    let a = l.get_state("cc", "a").unwrap().unwrap();
    assert_eq!(a.value, b"3");
    assert_eq!(a.version, Height { block: 1, tx: 1 });
    assert_eq!(
        l.get_state("cc", "b").unwrap().unwrap().version,
        Height { block: 1, tx: 0 }
    );
    let loc = l.tx_location("tx2").unwrap().unwrap();
    assert_eq!((loc.block, loc.tx, loc.code), (1, 1, 0));
    let b1 = l.block(1).unwrap().unwrap();
    assert_eq!(
        b1.header.as_ref().unwrap().previous_hash,
        block_header_hash(l.block(0).unwrap().unwrap().header.as_ref().unwrap())
    );
    assert!(l.block(2).unwrap().is_none());
}

#[test]
fn out_of_order_and_broken_chain_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    commit_txs(&l, &[]);
    let b = new_block(5, l.last_header_hash(), vec![]);
    assert!(matches!(
        l.commit(&b, &BlockUpdates::new()),
        Err(LedgerError::OutOfOrder { got: 5, height: 1 })
    ));
    let b = new_block(1, vec![0; 32], vec![]);
    assert!(matches!(
        l.commit(&b, &BlockUpdates::new()),
        Err(LedgerError::BrokenChain(1))
    ));
    assert_eq!(l.height(), 1);
}

#[test]
fn metadata_merges_like_fabric() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    let meta = |key: &str, v: &[u8]| KvMetadataWrite {
        key: key.into(),
        entries: vec![KvMetadataEntry {
            name: VALIDATION_PARAMETER.into(),
            value: v.to_vec(),
        }],
    };
    // Write with metadata.
    commit_txs(
        &l,
        &[(
            "t0".into(),
            ns(
                "cc",
                KvrwSet {
                    writes: vec![write("k", b"v1")],
                    metadata_writes: vec![meta("k", b"P1"), meta("missing", b"P")],
                    ..Default::default()
                },
            ),
        )],
    );
    let v = l.get_state("cc", "k").unwrap().unwrap();
    assert_eq!(v.metadata.get(VALIDATION_PARAMETER).unwrap(), b"P1");
    // A metadata write on a key that does not exist is a no-op.
    assert!(l.get_state("cc", "missing").unwrap().is_none());
    // A value write alone keeps the metadata.
    commit_txs(
        &l,
        &[("t1".into(), ns("cc", writes(vec![write("k", b"v2")])))],
    );
    let v = l.get_state("cc", "k").unwrap().unwrap();
    assert_eq!(v.value, b"v2");
    assert_eq!(v.metadata.get(VALIDATION_PARAMETER).unwrap(), b"P1");
    // A metadata write alone keeps the value and takes the new version.
    commit_txs(
        &l,
        &[(
            "t2".into(),
            ns(
                "cc",
                KvrwSet {
                    metadata_writes: vec![meta("k", b"P2")],
                    ..Default::default()
                },
            ),
        )],
    );
    let v = l.get_state("cc", "k").unwrap().unwrap();
    assert_eq!(v.value, b"v2");
    assert_eq!(v.version, Height { block: 2, tx: 0 });
    assert_eq!(v.metadata.get(VALIDATION_PARAMETER).unwrap(), b"P2");
    // An empty metadata write clears it.
    commit_txs(
        &l,
        &[(
            "t3".into(),
            ns(
                "cc",
                KvrwSet {
                    metadata_writes: vec![KvMetadataWrite {
                        key: "k".into(),
                        entries: vec![],
                    }],
                    ..Default::default()
                },
            ),
        )],
    );
    assert!(l.get_state("cc", "k").unwrap().unwrap().metadata.is_empty());
    // Delete removes the key.
    commit_txs(&l, &[("t4".into(), ns("cc", writes(vec![delete("k")])))]);
    assert!(l.get_state("cc", "k").unwrap().is_none());
}

#[test]
fn ranges_composite_keys_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    let ck = |t: &str, attrs: &[&str]| {
        let mut s = format!("\u{0}{t}\u{0}");
        for a in attrs {
            s.push_str(a);
            s.push('\u{0}');
        }
        s
    };
    commit_txs(
        &l,
        &[(
            "t0".into(),
            ns(
                "cc",
                writes(vec![
                    write("a", b"1"),
                    write("b", b"2"),
                    write("c", b"3"),
                    write(&ck("grant", &["h1", "g1"]), b"g1"),
                    write(&ck("grant", &["h1", "g2"]), b"g2"),
                    write(&ck("grant", &["h2", "g3"]), b"g3"),
                    write(&ck("grantx", &["h1"]), b"x"),
                ]),
            ),
        )],
    );
    commit_txs(
        &l,
        &[("other".into(), ns("zz", writes(vec![write("a", b"other")])))],
    );
    let snap = l.snapshot().unwrap();
    let keys = |r: fabric_devnet::ledger::StateRange| r.map(|e| e.unwrap().0).collect::<Vec<_>>();
    assert_eq!(keys(snap.state_range("cc", "a", "c").unwrap()), ["a", "b"]);
    assert_eq!(keys(snap.state_range("cc", "b", "").unwrap()), ["b", "c"]);
    assert_eq!(keys(snap.state_range("cc", "c", "a").unwrap()).len(), 0);
    // Empty start and end: the whole namespace, composite keys (leading 0x00) first.
    assert_eq!(keys(snap.state_range("cc", "", "").unwrap()).len(), 7);
    assert_eq!(
        keys(
            snap.state_by_partial_composite_key("cc", "grant", &["h1"])
                .unwrap()
        ),
        [ck("grant", &["h1", "g1"]), ck("grant", &["h1", "g2"])]
    );
    assert_eq!(
        keys(
            snap.state_by_partial_composite_key("cc", "grant", &[])
                .unwrap()
        )
        .len(),
        3
    );

    commit_txs(
        &l,
        &[("t2".into(), ns("cc", writes(vec![write("a", b"4")])))],
    );
    commit_txs(&l, &[("t3".into(), ns("cc", writes(vec![delete("a")])))]);
    let h = l.snapshot().unwrap().history("cc", "a").unwrap();
    let got: Vec<_> = h
        .iter()
        .map(|e| {
            (
                e.txid.as_str(),
                e.is_delete,
                e.value.as_slice(),
                e.height.block,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("t3", true, &b""[..], 3),
            ("t2", false, &b"4"[..], 2),
            ("t0", false, &b"1"[..], 0)
        ]
    );
    assert_eq!(h[0].timestamp, (1_700_000_003, 5));
    // The snapshot taken before the later commits does not see them.
    assert_eq!(snap.get_state("cc", "a").unwrap().unwrap().value, b"1");
}

#[test]
fn private_data_and_hashes() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    let kh = Sha256::digest(b"secret").to_vec();
    let vh = Sha256::digest(b"value").to_vec();
    let rw = TxRwSet {
        ns_rwsets: vec![NsRwSet {
            namespace: "cc".into(),
            kv: KvrwSet::default(),
            coll_hashed: vec![fabric_devnet::ledger::CollHashedRwSet {
                collection: "_implicit_org_Org1MSP".into(),
                hashed: HashedRwSet {
                    hashed_writes: vec![KvWriteHash {
                        key_hash: kh.clone(),
                        is_delete: false,
                        value_hash: vh.clone(),
                        is_purge: false,
                    }],
                    ..Default::default()
                },
                pvt_rwset_hash: vec![],
            }],
        }],
    };
    let n = l.height();
    let block = new_block(n, l.last_header_hash(), vec![b"x".to_vec()]);
    let mut u = BlockUpdates::new();
    u.record_tx("p0", 0, 0);
    u.add_valid_tx(
        Height { block: n, tx: 0 },
        "p0",
        (0, 0),
        &rw,
        &[PvtCollWrites {
            namespace: "cc".into(),
            collection: "_implicit_org_Org1MSP".into(),
            kv: writes(vec![write("secret", b"value")]),
        }],
    );
    l.commit(&block, &u).unwrap();
    let s = l.snapshot().unwrap();
    let h = s
        .get_private_hash("cc", "_implicit_org_Org1MSP", &kh)
        .unwrap()
        .unwrap();
    assert_eq!(h.value, vh);
    assert_eq!(
        s.get_private("cc", "_implicit_org_Org1MSP", "secret")
            .unwrap()
            .unwrap()
            .value,
        b"value"
    );
    // Private data never leaks into public state or history.
    assert!(s.get_state("cc", "secret").unwrap().is_none());
    assert!(s.history("cc", "secret").unwrap().is_empty());
}

#[test]
fn first_txid_occurrence_wins_and_invalid_txids_are_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    let block = new_block(0, vec![], vec![b"a".to_vec(), b"b".to_vec()]);
    let mut u = BlockUpdates::new();
    u.record_tx("dup", 0, 11);
    u.record_tx("dup", 1, 9);
    l.commit(&block, &u).unwrap();
    let s = l.snapshot().unwrap();
    let loc = s.tx_location("dup").unwrap().unwrap();
    assert_eq!((loc.tx, loc.code), (0, 11));
    assert!(s.txid_exists("dup").unwrap());
    assert!(!s.txid_exists("nope").unwrap());
    assert_eq!(s.dump_state().unwrap().len(), 0);
}

#[test]
fn a_txid_found_absent_at_another_height_is_looked_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    let mut u = BlockUpdates::new();
    u.record_tx("first", 0, 0);
    l.commit(&new_block(0, vec![], vec![b"a".to_vec()]), &u)
        .unwrap();
    // Checked absent before block 0 committed (a stale check): block 0's entry must win.
    let mut u = BlockUpdates::new();
    u.record_new_tx("first", 0, 11, 0);
    u.record_new_tx("fresh", 1, 0, 1);
    let block = new_block(1, l.last_header_hash(), vec![b"b".to_vec(), b"c".to_vec()]);
    l.commit(&block, &u).unwrap();
    let s = l.snapshot().unwrap();
    let first = s.tx_location("first").unwrap().unwrap();
    assert_eq!((first.block, first.tx, first.code), (0, 0, 0));
    let fresh = s.tx_location("fresh").unwrap().unwrap();
    assert_eq!((fresh.block, fresh.tx, fresh.code), (1, 1, 0));
}

/// A transaction writing (or deleting, with an empty value) private hash `key` of `coll`.
fn hashed_write(key: &[u8], value: &[u8]) -> TxRwSet {
    TxRwSet {
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
    }
}

#[test]
fn snapshots_keep_their_view_of_txids_and_private_hashes_while_recent_entries_merge() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let options = LedgerOptions {
        merge_after: 16,
        ..LedgerOptions::default()
    };
    let l = Ledger::open_with(&path, "ch", options).unwrap();
    // Block n: txids t{n}-0..3; hash key k{n%5} rewritten, k{(n+1)%5} deleted.
    let block = |n: u64| -> Vec<(String, TxRwSet)> {
        let mut txs: Vec<(String, TxRwSet)> = (0..3)
            .map(|i| (format!("t{n}-{i}"), TxRwSet::default()))
            .collect();
        txs.push((
            format!("t{n}-3"),
            hashed_write(format!("k{}", n % 5).as_bytes(), format!("v{n}").as_bytes()),
        ));
        txs.push((
            format!("t{n}-4"),
            hashed_write(format!("k{}", (n + 1) % 5).as_bytes(), b""),
        ));
        txs
    };
    let hash_of = |s: &fabric_devnet::ledger::Snapshot, k: u64| {
        s.get_private_hash("cc", "coll", format!("k{k}").as_bytes())
            .unwrap()
            .map(|v| (v.value, v.version))
    };
    for n in 0..7 {
        commit_txs(&l, &block(n));
    }
    let early = l.snapshot().unwrap();
    let early_hashes: Vec<_> = (0..5).map(|k| hash_of(&early, k)).collect();
    assert_eq!(
        early_hashes[1],
        Some((b"v6".to_vec(), Height { block: 6, tx: 3 }))
    );
    assert_eq!(early_hashes[2], None, "deleted by block 6");
    // Many generations merge and are dropped while the early snapshot is held.
    for n in 7..60 {
        commit_txs(&l, &block(n));
    }
    let late = l.snapshot().unwrap();
    for k in 0..5 {
        assert_eq!(hash_of(&early, k), early_hashes[k as usize], "k{k}");
    }
    assert_eq!(
        hash_of(&late, 4),
        Some((b"v59".to_vec(), Height { block: 59, tx: 3 }))
    );
    assert_eq!(hash_of(&late, 0), None, "deleted by block 59");
    assert_eq!(
        early.tx_location("t3-1").unwrap().map(|t| (t.block, t.tx)),
        Some((3, 1))
    );
    assert!(!early.txid_exists("t7-0").unwrap(), "committed after it");
    for n in 0..60 {
        for i in 0..5 {
            let at = late.tx_location(&format!("t{n}-{i}")).unwrap();
            assert_eq!(at.map(|t| (t.block, t.tx)), Some((n, i)));
        }
    }
    // Reopened, with or without recent entries in memory, the ledger answers the same.
    let late_hashes: Vec<_> = (0..5).map(|k| hash_of(&late, k)).collect();
    drop((early, late, l));
    for merge_after in [16, 1 << 20] {
        let l = Ledger::open_with(
            &path,
            "ch",
            LedgerOptions {
                merge_after,
                ..LedgerOptions::default()
            },
        )
        .unwrap();
        let s = l.snapshot().unwrap();
        assert_eq!(
            (0..5).map(|k| hash_of(&s, k)).collect::<Vec<_>>(),
            late_hashes
        );
        assert!(s.txid_exists("t0-0").unwrap() && s.txid_exists("t59-4").unwrap());
    }
}

#[tokio::test]
async fn subscribers_hear_of_commits_after_they_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    let mut events = l.subscribe();
    let mut height = l.watch_height();
    let l2 = l.clone();
    tokio::task::spawn_blocking(move || {
        commit_txs(
            &l2,
            &[("t0".into(), ns("cc", writes(vec![write("a", b"1")])))],
        )
    })
    .await
    .unwrap();
    height.changed().await.unwrap();
    assert_eq!(*height.borrow(), 1);
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.number(), 0);
    assert_eq!(ev.txs, vec![("t0".to_string(), 0)]);
    // By the time the event is out, a fresh reader sees the block.
    assert!(l.block(0).unwrap().is_some());
}

/// A serialized endorser transaction envelope with `txid`, `timestamp` (seconds) and `rw` as its
/// chaincode action's results (what a committer reads a history value back from).
fn endorser_envelope(txid: &str, seconds: i64, rw: &TxRwSet) -> Vec<u8> {
    use fabric_protos::common::{ChannelHeader, Envelope, Header, Payload};
    use fabric_protos::protos::{
        ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ProposalResponsePayload,
        Transaction, TransactionAction,
    };
    use prost::Message;
    let action = ChaincodeAction {
        results: rw.encode(),
        ..Default::default()
    };
    let prp = ProposalResponsePayload {
        extension: action.encode_to_vec(),
        ..Default::default()
    };
    let cap = ChaincodeActionPayload {
        action: Some(ChaincodeEndorsedAction {
            proposal_response_payload: prp.encode_to_vec(),
            endorsements: vec![],
        }),
        ..Default::default()
    };
    let tx = Transaction {
        actions: vec![TransactionAction {
            header: vec![],
            payload: cap.encode_to_vec(),
        }],
    };
    let chdr = ChannelHeader {
        r#type: 3,
        tx_id: txid.into(),
        timestamp: Some(prost_types::Timestamp { seconds, nanos: 7 }),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: chdr.encode_to_vec(),
            signature_header: vec![],
        }),
        data: tx.encode_to_vec(),
    };
    Envelope {
        payload: payload.encode_to_vec(),
        signature: vec![],
    }
    .encode_to_vec()
}

/// Commits one block of endorser transactions whose history entries name the block.
fn commit_block_txs(l: &Ledger, txs: &[(&str, TxRwSet)]) -> u64 {
    let n = l.height();
    let data = txs
        .iter()
        .map(|(id, rw)| endorser_envelope(id, 1_700_000_000 + n as i64, rw))
        .collect();
    let block = new_block(n, l.last_header_hash(), data);
    let mut u = BlockUpdates::new();
    for (i, (txid, rw)) in txs.iter().enumerate() {
        let h = Height {
            block: n,
            tx: i as u64,
        };
        u.record_tx(txid, i as u64, 0);
        u.add_block_tx(h, txid, (1_700_000_000 + n as i64, 7), rw, &[]);
    }
    l.commit(&block, &u).expect("commit");
    n
}

#[test]
fn history_read_from_blocks_and_history_with_values_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    // An entry with its value (as earlier versions wrote them), then entries naming their blocks:
    // two transactions of one block, a delete, and a transaction writing another key only.
    commit_txs(
        &l,
        &[("old".into(), ns("cc", writes(vec![write("k", b"v0")])))],
    );
    commit_block_txs(
        &l,
        &[
            (
                "b1",
                ns("cc", writes(vec![write("k", b"v1"), write("j", b"x")])),
            ),
            ("b2", ns("cc", writes(vec![write("k", b"v2")]))),
        ],
    );
    commit_block_txs(&l, &[("b3", ns("cc", writes(vec![delete("k")])))]);
    commit_block_txs(&l, &[("b4", ns("cc", writes(vec![write("j", b"y")])))]);
    let got: Vec<_> = l
        .snapshot()
        .unwrap()
        .history("cc", "k")
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.txid,
                (e.height.block, e.height.tx),
                e.timestamp,
                e.is_delete,
                e.value,
            )
        })
        .collect();
    let at = |n: i64, nanos: i32| (1_700_000_000 + n, nanos);
    assert_eq!(
        got,
        [
            ("b3".to_string(), (2, 0), at(2, 7), true, vec![]),
            ("b2".to_string(), (1, 1), at(1, 7), false, b"v2".to_vec()),
            ("b1".to_string(), (1, 0), at(1, 7), false, b"v1".to_vec()),
            ("old".to_string(), (0, 0), at(0, 5), false, b"v0".to_vec()),
        ]
    );
    let j: Vec<_> = l.snapshot().unwrap().history("cc", "j").unwrap();
    assert_eq!(
        j.iter().map(|e| e.value.as_slice()).collect::<Vec<_>>(),
        [&b"y"[..], b"x"]
    );
}

#[test]
fn a_history_entry_naming_a_transaction_without_that_write_is_a_corrupt_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("l"), "ch").unwrap();
    // The block's transaction does not carry the write the updates claim.
    let block = new_block(
        0,
        vec![],
        vec![endorser_envelope("t", 1, &ns("cc", writes(vec![])))],
    );
    let mut u = BlockUpdates::new();
    u.record_tx("t", 0, 0);
    let rw = ns("cc", writes(vec![write("k", b"v")]));
    u.add_block_tx(Height { block: 0, tx: 0 }, "t", (1, 0), &rw, &[]);
    l.commit(&block, &u).unwrap();
    let err = l.snapshot().unwrap().history("cc", "k").unwrap_err();
    assert!(
        matches!(&err, LedgerError::Corrupt(m) if m.contains("does not write the key")),
        "{err}"
    );
    // The state itself is unaffected.
    assert_eq!(l.get_state("cc", "k").unwrap().unwrap().value, b"v");
}
