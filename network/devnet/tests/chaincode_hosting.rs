//! Chaincode hosting: a devnet peer dials a CCaaS chaincode served by our shim and serves the
//! whole shim API from its ledger — state, batched writes and multi-key reads, ranges with
//! pagination, composite keys, history, private data and hashes, key-level policies,
//! transient data, events, chaincode-to-chaincode calls — with Fabric's timeout and restart
//! behaviour.

#[path = "peer_fixture.rs"]
mod fx;

use fabric_devnet::chaincode::ConnectionInfo;
use fabric_protos::protos::{
    ChaincodeAction, ChaincodeEvent, ProposalResponsePayload, TxValidationCode as Code,
};
use fx::*;
use prost::Message;

const ANY: &str = "OR('OrgAMSP.peer','OrgBMSP.peer')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_written_through_the_shim_is_committed_and_read_back() {
    let net = Net::new(ANY).await;
    let codes = submit(&net, &net.client, &[&net.peer_a], &["put", "k1", "hello"]).await;
    assert_eq!(codes, vec![Code::Valid, Code::Valid]);
    for p in [&net.peer_a, &net.peer_b] {
        let v = p
            .channel(CH)
            .unwrap()
            .ledger()
            .get_state(CC, "k1")
            .unwrap()
            .unwrap();
        assert_eq!(v.value, b"hello");
        assert_eq!(
            payload_string(&evaluate(&net.client, p, &["get", "k1"]).await),
            "hello"
        );
    }
    submit(&net, &net.client, &[&net.peer_a], &["put", "k2", "world"]).await;
    let r = evaluate(&net.client, &net.peer_b, &["multi", "k1", "missing", "k2"]).await;
    assert_eq!(payload_string(&r), "hello,,world");
    submit(&net, &net.client, &[&net.peer_a], &["del", "k1"]).await;
    submit(&net, &net.client, &[&net.peer_a], &["put", "k1", "again"]).await;
    let r = evaluate(&net.client, &net.peer_a, &["history", "k1"]).await;
    assert_eq!(payload_string(&r), "again,<deleted>,hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_paginate_and_composite_keys_query_by_prefix() {
    let net = Net::new(ANY).await;
    // 250 writes in one transaction: the shim batches them (WRITE_BATCH_STATE).
    let codes = submit(&net, &net.client, &[&net.peer_a], &["putmany", "r", "250"]).await;
    assert_eq!(codes[0], Code::Valid);
    // A full range crosses the 100-result batches (QUERY_STATE_NEXT).
    let all = payload_string(&evaluate(&net.client, &net.peer_a, &["range", "r", "s"]).await);
    let keys: Vec<&str> = all.split(',').collect();
    assert_eq!(keys.len(), 250);
    assert_eq!(keys[0], "r0000");
    assert_eq!(keys[249], "r0249");
    let sub =
        payload_string(&evaluate(&net.client, &net.peer_a, &["range", "r0010", "r0013"]).await);
    assert_eq!(sub, "r0010,r0011,r0012");
    // Pages of 100: the bookmark is the next key, and empty after the last page.
    let p1 =
        payload_string(&evaluate(&net.client, &net.peer_a, &["page", "r", "s", "100", ""]).await);
    assert_eq!(p1, "100|100|r0100");
    let p2 = payload_string(
        &evaluate(
            &net.client,
            &net.peer_a,
            &["page", "r", "s", "100", "r0100"],
        )
        .await,
    );
    assert_eq!(p2, "100|100|r0200");
    let p3 = payload_string(
        &evaluate(
            &net.client,
            &net.peer_a,
            &["page", "r", "s", "100", "r0200"],
        )
        .await,
    );
    assert_eq!(p3, "50|50|");
    // A page larger than one QueryResponse batch still holds page-size results. (As with
    // Fabric's peer and Go shim, its metadata rides on the last batch, which the shim does not
    // read, so it reports no bookmark.)
    let big =
        payload_string(&evaluate(&net.client, &net.peer_a, &["page", "r", "s", "120", ""]).await);
    assert!(big.starts_with("120|"), "{big}");
    // A paginated query makes the transaction read-only, as in Fabric.
    let (_, rs) = endorse(
        &net.client,
        &[&net.peer_a],
        &["page", "r", "s", "5", ""],
        &[],
    )
    .await;
    assert_eq!(rs[0].response.as_ref().unwrap().status, 200);

    submit(
        &net,
        &net.client,
        &[&net.peer_a],
        &["ckput", "licence", "police", "L1", "a"],
    )
    .await;
    submit(
        &net,
        &net.client,
        &[&net.peer_a],
        &["ckput", "licence", "police", "L2", "b"],
    )
    .await;
    submit(
        &net,
        &net.client,
        &[&net.peer_a],
        &["ckput", "licence", "health", "L3", "c"],
    )
    .await;
    let q = payload_string(
        &evaluate(&net.client, &net.peer_b, &["ckquery", "licence", "police"]).await,
    );
    assert_eq!(q, "police/L1=a,police/L2=b");
    // Composite keys stay out of plain ranges (they start with U+0000).
    let plain = payload_string(&evaluate(&net.client, &net.peer_a, &["range", "", ""]).await);
    assert!(!plain.contains("licence"), "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_data_reaches_member_peers_only_and_hashes_everyone() {
    let net = Net::new(ANY).await;
    let secret: &[u8] = b"s3cret";
    let (prop, rs) = endorse(
        &net.client,
        &[&net.peer_a],
        &["putp", "aonly", "p1"],
        &[("value", secret)],
    )
    .await;
    assert_eq!(rs[0].response.as_ref().unwrap().status, 200);
    // The private value never appears in what the client sends to the orderer.
    let env = assemble(&net.client, &prop, &rs);
    assert!(!env.payload.windows(secret.len()).any(|w| w == secret));
    assert_eq!(net.transient.len(CH), 1);
    let codes = deliver(&[&net.peer_a, &net.peer_b], &[env]);
    assert_eq!(codes, vec![vec![Code::Valid], vec![Code::Valid]]);
    // Both peers committed: the transient store let go of it.
    assert!(net.transient.is_empty(CH));
    let snap_a = net.peer_a.channel(CH).unwrap().ledger().snapshot().unwrap();
    let snap_b = net.peer_b.channel(CH).unwrap().ledger().snapshot().unwrap();
    assert_eq!(
        snap_a
            .get_private(CC, "aonly", "p1")
            .unwrap()
            .unwrap()
            .value,
        secret
    );
    assert!(snap_b.get_private(CC, "aonly", "p1").unwrap().is_none());
    assert_eq!(
        payload_string(&evaluate(&net.client, &net.peer_a, &["getp", "aonly", "p1"]).await),
        "s3cret"
    );
    let want_hash = hex::encode(sha2::Sha256::digest(secret));
    for p in [&net.peer_a, &net.peer_b] {
        assert_eq!(
            payload_string(&evaluate(&net.client, p, &["hashp", "aonly", "p1"]).await),
            want_hash
        );
    }
    // OrgB's peer does not hold the value: Fabric refuses rather than answering "missing".
    let r = evaluate(&net.client, &net.peer_b, &["getp", "aonly", "p1"]).await;
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(
        resp.message
            .contains("private data matching public hash version is not available"),
        "{}",
        resp.message
    );
    // memberOnlyRead: OrgB's client may not read OrgA's collection at all.
    let r = evaluate(&net.client_b, &net.peer_a, &["getp", "aonly", "p1"]).await;
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(resp.message.contains("tx creator does not have read access permission on privatedata in chaincodeName:kv collectionName: aonly"), "{}", resp.message);
    // A shared collection is stored by both; private ranges read it back.
    submit_with(
        &net,
        &net.client,
        &[&net.peer_a],
        &["putp", "shared", "s1"],
        &[("value", b"x")],
    )
    .await;
    submit_with(
        &net,
        &net.client,
        &[&net.peer_a],
        &["putp", "shared", "s2"],
        &[("value", b"y")],
    )
    .await;
    for p in [&net.peer_a, &net.peer_b] {
        assert_eq!(
            payload_string(&evaluate(&net.client, p, &["rangep", "shared", "", ""]).await),
            "s1,s2"
        );
    }
    // Purging removes the value from member peers and the hash from every peer.
    let codes = submit(
        &net,
        &net.client,
        &[&net.peer_a],
        &["purgep", "shared", "s1"],
    )
    .await;
    assert_eq!(codes[0], Code::Valid);
    let s1_hash = sha2::Sha256::digest(b"s1").to_vec();
    for p in [&net.peer_a, &net.peer_b] {
        let snap = p.channel(CH).unwrap().ledger().snapshot().unwrap();
        assert!(snap.get_private(CC, "shared", "s1").unwrap().is_none());
        assert!(snap
            .get_private_hash(CC, "shared", &s1_hash)
            .unwrap()
            .is_none());
        assert_eq!(
            payload_string(&evaluate(&net.client, p, &["rangep", "shared", "", ""]).await),
            "s2"
        );
    }
    // Rich queries need CouchDB; the devnet's state database answers as LevelDB does.
    let r = evaluate(&net.client, &net.peer_a, &["rich", r#"{"selector":{}}"#]).await;
    let m = r.response.unwrap().message;
    assert!(m.contains("ExecuteQuery not supported for leveldb"), "{m}");
    // Unknown collections are errors.
    let r = evaluate(&net.client, &net.peer_a, &["getp", "nope", "p1"]).await;
    assert!(r
        .response
        .unwrap()
        .message
        .contains("collection ch1/kv/nope could not be found"));
}

use sha2::Digest as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_transient_data_and_chaincode_errors() {
    let net = Net::new(ANY).await;
    let (_, rs) = endorse(
        &net.client,
        &[&net.peer_a],
        &["event", "Issued", "L-1"],
        &[],
    )
    .await;
    let prp = ProposalResponsePayload::decode(rs[0].payload.as_slice()).unwrap();
    let action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    let ev = ChaincodeEvent::decode(action.events.as_slice()).unwrap();
    assert_eq!(ev.event_name, "Issued");
    assert_eq!(ev.payload, b"L-1");
    assert_eq!(ev.chaincode_id, CC);
    assert!(!ev.tx_id.is_empty());
    let (_, rs) = endorse(
        &net.client,
        &[&net.peer_a],
        &["transient", "salt"],
        &[("salt", b"pepper")],
    )
    .await;
    assert_eq!(payload_string(&rs[0]), "pepper");

    // A chaincode error: status 500 with the chaincode's message, no endorsement.
    let (_, rs) = endorse(
        &net.client,
        &[&net.peer_a],
        &["fail", "licence L-9 does not exist"],
        &[],
    )
    .await;
    let resp = rs[0].response.as_ref().unwrap();
    assert_eq!(resp.status, 500);
    assert_eq!(resp.message, "licence L-9 does not exist");
    assert!(rs[0].endorsement.is_none());
    assert!(!rs[0].payload.is_empty());
    // 400-499: the response only.
    let (_, rs) = endorse(
        &net.client,
        &[&net.peer_a],
        &["status", "404", "not here"],
        &[],
    )
    .await;
    assert_eq!(rs[0].response.as_ref().unwrap().status, 404);
    assert!(rs[0].endorsement.is_none());
    assert!(rs[0].payload.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_calls_another_in_the_same_transaction() {
    let net = Net::new(ANY).await;
    // A second chaincode "kv2" from its own server.
    let pkg2 = format!("kv2_1.0:{}", hex::encode([9u8; 32]));
    let s2 = start_chaincode(&pkg2, "127.0.0.1:0").await;
    for p in [&net.peer_a, &net.peer_b] {
        p.channel(CH)
            .unwrap()
            .define_chaincode(definition("kv2", &pkg2, &s2.local_addr().to_string(), ANY))
            .unwrap();
    }
    let codes = submit(
        &net,
        &net.client,
        &[&net.peer_a],
        &["call", "kv2", "put", "x", "from-kv"],
    )
    .await;
    assert_eq!(codes[0], Code::Valid);
    let v = net
        .peer_b
        .channel(CH)
        .unwrap()
        .ledger()
        .get_state("kv2", "x")
        .unwrap()
        .unwrap();
    assert_eq!(v.value, b"from-kv");
    assert!(net
        .peer_b
        .channel(CH)
        .unwrap()
        .ledger()
        .get_state(CC, "x")
        .unwrap()
        .is_none());
    let r = evaluate(&net.client, &net.peer_a, &["call", "kv2", "get", "x"]).await;
    assert_eq!(payload_string(&r), "from-kv");
    let r = evaluate(&net.client, &net.peer_a, &["call", "nosuch", "get", "x"]).await;
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(resp.message.contains("nosuch"), "{}", resp.message);
    s2.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_times_out_and_a_restarted_chaincode_is_dialled_again() {
    let mut net = Net::with_timeout(ANY, std::time::Duration::from_millis(700)).await;
    let r = evaluate(&net.client, &net.peer_a, &["sleep", "3000"]).await;
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(
        resp.message
            .starts_with("error in simulation: failed to execute transaction"),
        "{}",
        resp.message
    );
    assert!(
        resp.message
            .ends_with("timeout expired while executing transaction"),
        "{}",
        resp.message
    );

    // Restart the chaincode server on the same address: the next proposal dials it again.
    assert_eq!(
        payload_string(&evaluate(&net.client, &net.peer_a, &["get", "nothing"]).await),
        ""
    );
    let addr = net.chaincode_address();
    // A short dial timeout so the attempt while the server is down gives up quickly.
    let mut def = definition(CC, &net.package_id, &addr, ANY);
    def.connection.dial_timeout = "1s".into();
    net.peer_a
        .channel(CH)
        .unwrap()
        .define_chaincode(def)
        .unwrap();
    net.server.take().unwrap().shutdown().await.unwrap();
    let down = evaluate(&net.client, &net.peer_a, &["get", "nothing"]).await;
    let down = down.response.unwrap();
    assert_eq!(down.status, 500);
    assert!(down.message.contains("error dialing"), "{}", down.message);
    net.server = Some(start_chaincode(&net.package_id, &addr).await);
    let codes = submit(
        &net,
        &net.client,
        &[&net.peer_a],
        &["put", "after", "restart"],
    )
    .await;
    assert_eq!(codes[0], Code::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_registering_another_package_id_is_refused() {
    let net = Net::new(ANY).await;
    let wrong = start_chaincode("other_1.0:abcd", "127.0.0.1:0").await;
    let mut def = definition("kv3", "kv3_1.0:1234", &wrong.local_addr().to_string(), ANY);
    def.collections.config.clear();
    net.peer_a
        .channel(CH)
        .unwrap()
        .define_chaincode(def)
        .unwrap();
    let (prop, sp) = proposal(&net.client, "kv3", &["get", "x"], &[]);
    let _ = prop;
    let r = net.peer_a.process_proposal(sp).await.unwrap();
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(
        resp.message
            .contains("chaincode registered as other_1.0:abcd"),
        "{}",
        resp.message
    );
}

#[test]
fn connection_json_is_read_with_fabric_rules() {
    let c = ConnectionInfo::from_json(
        r#"{"address":"cc.example:9999","dial_timeout":"2s","tls_required":false}"#,
    )
    .unwrap();
    assert_eq!(c.address, "cc.example:9999");
    assert_eq!(c.dial_timeout().unwrap(), std::time::Duration::from_secs(2));
    let e = ConnectionInfo::from_json(r#"{"address":"x:1","tls_required":true}"#).unwrap_err();
    assert!(e.to_string().contains("root cert must be provided"), "{e}");
    let e = ConnectionInfo::from_json(
        r#"{"address":"x:1","tls_required":true,"client_auth_required":true,"root_cert":"PEM"}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("client key and cert"), "{e}");
    assert!(ConnectionInfo::from_json(r#"{"dial_timeout":"1s"}"#).is_err());
    assert!(
        ConnectionInfo::from_json(r#"{"address":"x:1","dial_timeout":"soon"}"#)
            .unwrap()
            .dial_timeout()
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_reads_from_a_chaincode_on_another_channel() {
    let net = Net::new(ANY).await;
    // A second channel with both organisations, the same chaincode defined on it.
    let genesis = fabric_devnet::configtx::genesis_block(&fx::cfix::channel_input(
        "ch2",
        &[&net.a, &net.b],
        &net.o,
    ));
    for p in [&net.peer_a, &net.peer_b] {
        let ch = p.join_channel(&genesis).unwrap();
        ch.define_chaincode(definition(
            CC,
            &net.package_id,
            &net.chaincode_address(),
            ANY,
        ))
        .unwrap();
    }
    // Write a key on ch2.
    let inv = fabric_common::tx::ChaincodeInvocation::new("ch2", CC, "put", &["far", "away"]);
    let up = fabric_common::tx::create_chaincode_proposal(&inv, &net.client.serialized);
    let r = net
        .peer_a
        .process_proposal(up.sign(&net.client.key).unwrap())
        .await
        .unwrap();
    assert_eq!(r.response.as_ref().unwrap().status, 200);
    let env = assemble(&net.client, &up.proposal, &[r]);
    let ch2 = net.peer_a.channel("ch2").unwrap();
    let block = fabric_devnet::ledger::block::new_block(
        ch2.ledger().height(),
        ch2.ledger().last_header_hash(),
        vec![prost::Message::encode_to_vec(&env)],
    );
    for p in [&net.peer_a, &net.peer_b] {
        p.channel("ch2")
            .unwrap()
            .deliver_block(block.clone())
            .unwrap();
    }
    // From ch1, read it through kv on ch2.
    let r = evaluate(&net.client, &net.peer_a, &["call", "kv/ch2", "get", "far"]).await;
    assert_eq!(payload_string(&r), "away");
    // Writes made on the other channel are not part of this transaction.
    let (_, rs) = endorse(
        &net.client,
        &[&net.peer_a],
        &["call", "kv/ch2", "put", "x", "y"],
        &[],
    )
    .await;
    let prp = ProposalResponsePayload::decode(rs[0].payload.as_slice()).unwrap();
    let action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    let rw = fabric_protos::rwset::TxReadWriteSet::decode(action.results.as_slice()).unwrap();
    for ns in &rw.ns_rwset {
        let kv = fabric_protos::kvrwset::KvrwSet::decode(ns.rwset.as_slice()).unwrap();
        assert!(kv.writes.is_empty(), "{:?}", kv.writes);
    }
    // An unknown channel.
    let r = evaluate(&net.client, &net.peer_a, &["call", "kv/ch9", "get", "far"]).await;
    let m = r.response.unwrap().message;
    assert!(m.contains("failed to find ledger for channel: ch9"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_peer_closes_its_chaincode_streams() {
    let net = Net::new(ANY).await;
    assert_eq!(
        payload_string(&evaluate(&net.client, &net.peer_a, &["get", "k"]).await),
        ""
    );
    assert!(net.peer_a.chaincode_support().is_connected(&net.package_id));
    let slow = evaluate(&net.client, &net.peer_a, &["sleep", "3000"]);
    let stop = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        net.peer_a.shutdown();
    };
    let (r, ()) = tokio::join!(slow, stop);
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(
        resp.message.ends_with("chaincode stream terminated"),
        "{}",
        resp.message
    );
    assert!(!net.peer_a.chaincode_support().is_connected(&net.package_id));
    // The peer dials again when it next needs the chaincode.
    assert_eq!(
        payload_string(&evaluate(&net.client, &net.peer_a, &["get", "k"]).await),
        ""
    );
}
