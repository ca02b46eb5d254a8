//! A peer's channels: joining from a genesis block, refusing a second join, and continuing the
//! ledger after a restart on the same data directory.

#[path = "peer_fixture.rs"]
mod fx;

use fabric_devnet::peer::{
    ChaincodeDefinition, PeerError, PeerNode, PeerNodeConfig, TransientStore,
};
use fabric_protos::protos::TxValidationCode as Code;
use fx::*;

const ANY: &str = "OR('OrgAMSP.peer','OrgBMSP.peer')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_continues_its_ledger() {
    let net = Net::new(ANY).await;
    submit(&net, &net.client, &[&net.peer_a], &["put", "k", "before"]).await;
    let ch = net.peer_a.channel(CH).unwrap();
    let genesis = ch.ledger().block(0).unwrap().unwrap();
    let height = ch.ledger().height();
    assert_eq!(height, 2);
    assert!(
        matches!(net.peer_a.join_channel(&genesis), Err(PeerError::AlreadyJoined(c)) if c == CH)
    );
    assert_eq!(net.peer_a.channel_ids(), vec![CH.to_string()]);
    // Definitions survive as JSON (the devnet persists them).
    let def: ChaincodeDefinition = serde_json::from_str(
        &serde_json::to_string(&ch.chaincode(CC).unwrap().definition).unwrap(),
    )
    .unwrap();
    assert_eq!(def, ch.chaincode(CC).unwrap().definition);
    drop(ch);

    // Stop the peer (its ledger file is released) and start a new one on the same directory.
    let Net {
        peer_a,
        a,
        client,
        dir,
        server: _server,
        ..
    } = net;
    drop(peer_a);
    let id = a.user("peer0.orga", "peer", false);
    let restarted = PeerNode::new(PeerNodeConfig {
        msp_id: a.msp_id.clone(),
        name: "peer0.orga".into(),
        address: "peer0.orga:7051".into(),
        signer: signing_identity(&id),
        data_dir: dir.path().join("peer0.orga"),
        transient: TransientStore::new(),
    });
    let ch = restarted.join_channel(&genesis).unwrap();
    assert_eq!(ch.ledger().height(), height);
    assert_eq!(
        ch.ledger().get_state(CC, "k").unwrap().unwrap().value,
        b"before"
    );
    ch.define_chaincode(def).unwrap();
    let r = evaluate(&client, &restarted, &["get", "k"]).await;
    assert_eq!(payload_string(&r), "before");
    // It keeps committing: endorse on the restarted peer, commit on it.
    let (prop, rs) = endorse(&client, &[&restarted], &["put", "k", "after"], &[]).await;
    let env = assemble(&client, &prop, &rs);
    assert_eq!(deliver(&[&restarted], &[env])[0], vec![Code::Valid]);
    assert_eq!(
        ch.ledger().get_state(CC, "k").unwrap().unwrap().value,
        b"after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_must_extend_the_channel() {
    let net = Net::new(ANY).await;
    let (prop, rs) = endorse(&net.client, &[&net.peer_a], &["put", "k", "v"], &[]).await;
    let env = assemble(&net.client, &prop, &rs);
    let ch = net.peer_a.channel(CH).unwrap();
    let l = ch.ledger();
    let block = fabric_devnet::ledger::block::new_block(
        l.height() + 1,
        l.last_header_hash(),
        vec![prost::Message::encode_to_vec(&env)],
    );
    let e = ch.deliver_block(block).unwrap_err();
    assert!(e.to_string().contains("does not extend the ledger"), "{e}");
}
