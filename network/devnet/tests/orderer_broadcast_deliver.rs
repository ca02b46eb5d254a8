//! The solo orderer over gRPC: Broadcast answers with Fabric's statuses, blocks are cut by count
//! and by the batch timeout, chained, signed by the orderer, fanned out to a peer's committer
//! in order, and Deliver serves them with Fabric's SeekInfo semantics and access checks.

#[path = "committer_fixture.rs"]
mod fixture;

use std::sync::Arc;
use std::time::Duration;

use fabric_common::identity::{Identity, SigningIdentity};
use fabric_devnet::committer::{ChannelContext, Committer, EndorsementPolicy};
use fabric_devnet::configtx::{genesis_block, signed_by_any, ChannelBundle};
use fabric_devnet::ledger::block::{block_header_bytes, block_header_hash};
use fabric_devnet::ledger::{Ledger, NsRwSet, TxRwSet};
use fabric_devnet::msp::policy::SignaturePolicyRule;
use fabric_devnet::orderer::{Orderer, OrdererConfig};
use fabric_protos::common::msp_role::MspRoleType;
use fabric_protos::common::{
    BlockMetadataIndex, ChannelHeader, Envelope, Header, HeaderType, Metadata,
    OrdererBlockMetadata, Payload, SignatureHeader, Status,
};
use fabric_protos::kvrwset::{KvWrite, KvrwSet};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::{
    deliver_response, seek_info, seek_position, SeekInfo, SeekNewest, SeekPosition, SeekSpecified,
};
use fabric_protos::protos::TxValidationCode as Code;
use fixture::{endorser_tx, Org, User};
use prost::Message;

const CH: &str = "ch1";
const CC: &str = "cc";

struct Net {
    _dir: tempfile::TempDir,
    orderer: Orderer,
    orderer_user: User,
    client: User,
    stranger: User,
    peer: User,
    committer: Committer,
    addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Net {
    fn drop(&mut self) {
        self.server.abort();
        self.orderer.halt();
    }
}

async fn net(max_message_count: u32) -> Net {
    let a = Org::new("OrgA");
    let o = Org::new("Orderer");
    let outsider = Org::new("Outsider");
    let mut input = fixture::channel_input(CH, &[&a], &o);
    input.batch.max_message_count = max_message_count;
    input.batch.batch_timeout = Duration::from_millis(300);
    let genesis = genesis_block(&input);
    let dir = tempfile::tempdir().unwrap();

    let orderer_user = o.user("orderer0", "orderer", false);
    let signer = SigningIdentity::new(
        Identity::new(&o.msp_id, orderer_user.cert_pem.as_bytes()).unwrap(),
        Arc::new(orderer_user.key.clone()),
    );
    let orderer = Orderer::new(OrdererConfig {
        msp_id: o.msp_id.clone(),
        address: "127.0.0.1:0".into(),
        signer,
        data_dir: dir.path().join("orderer"),
    });
    orderer.join_channel(&genesis).unwrap();

    // OrgA's peer commits what the orderer cuts.
    let bundle = ChannelBundle::from_block(&genesis).unwrap();
    let ctx = Arc::new(ChannelContext::new(
        CH,
        bundle.msps.clone(),
        bundle.policies.clone(),
        &a.msp_id,
    ));
    let policy = signed_by_any(&[(&a.msp_id, MspRoleType::Peer)]);
    ctx.define_chaincode(
        CC,
        EndorsementPolicy::Signature(Arc::new(
            SignaturePolicyRule::from_envelope(&policy).unwrap(),
        )),
    );
    let ledger = Ledger::open(dir.path().join("peer.redb"), CH).unwrap();
    let committer = Committer::new(ledger, ctx);
    orderer.add_sink(CH, Arc::new(committer.clone())).unwrap();
    assert_eq!(
        committer.ledger().height(),
        1,
        "the peer is caught up with the genesis block"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = orderer.service();
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    Net {
        _dir: dir,
        orderer,
        orderer_user,
        client: a.user("client1", "client", false),
        stranger: outsider.user("client1", "client", false),
        peer: a.user("peer0", "peer", false),
        committer,
        addr,
        server,
    }
}

fn put(key: &str) -> TxRwSet {
    TxRwSet {
        ns_rwsets: vec![NsRwSet {
            namespace: CC.into(),
            kv: KvrwSet {
                writes: vec![KvWrite {
                    key: key.into(),
                    is_delete: false,
                    value: b"v".to_vec(),
                }],
                ..Default::default()
            },
            coll_hashed: vec![],
        }],
    }
}

async fn client(addr: std::net::SocketAddr) -> AtomicBroadcastClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    AtomicBroadcastClient::new(channel)
}

async fn broadcast(addr: std::net::SocketAddr, envs: Vec<Envelope>) -> Vec<(i32, String)> {
    let mut c = client(addr).await;
    let n = envs.len();
    let mut resp = c
        .broadcast(tokio_stream::iter(envs))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    for _ in 0..n {
        let r = resp.message().await.unwrap().unwrap();
        out.push((r.status, r.info));
    }
    out
}

fn seek_envelope(user: &User, channel: &str, seek: SeekInfo) -> Envelope {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let payload = Payload {
        header: Some(Header {
            channel_header: ChannelHeader {
                r#type: HeaderType::DeliverSeekInfo as i32,
                channel_id: channel.into(),
                timestamp: Some(prost_types::Timestamp {
                    seconds: now.as_secs() as i64,
                    nanos: 0,
                }),
                ..Default::default()
            }
            .encode_to_vec(),
            signature_header: SignatureHeader {
                creator: user.serialized.clone(),
                nonce: vec![1; 24],
            }
            .encode_to_vec(),
        }),
        data: seek.encode_to_vec(),
    }
    .encode_to_vec();
    Envelope {
        signature: user.sign(&payload),
        payload,
    }
}

fn specified(n: u64) -> Option<SeekPosition> {
    Some(SeekPosition {
        r#type: Some(seek_position::Type::Specified(SeekSpecified { number: n })),
    })
}

/// Runs one Deliver request; returns the block numbers received and the final status.
async fn deliver(
    addr: std::net::SocketAddr,
    env: Envelope,
) -> (Vec<fabric_protos::common::Block>, i32) {
    let mut c = client(addr).await;
    let mut stream = c
        .deliver(tokio_stream::iter(vec![env]))
        .await
        .unwrap()
        .into_inner();
    let mut blocks = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("deliver answers")
            .unwrap()
            .expect("a status ends the request");
        match msg.r#type.unwrap() {
            deliver_response::Type::Block(b) => blocks.push(b),
            deliver_response::Type::Status(s) => return (blocks, s),
        }
    }
}

async fn wait_height(ledger: &Ledger, h: u64) {
    let mut w = ledger.watch_height();
    tokio::time::timeout(Duration::from_secs(10), async {
        while *w.borrow_and_update() < h {
            w.changed().await.unwrap();
        }
    })
    .await
    .expect("height reached");
}

#[tokio::test]
async fn broadcast_cuts_signed_chained_blocks_that_peers_commit_and_deliver_serves() {
    let n = net(2).await;
    let txs: Vec<_> = (0..3)
        .map(|i| endorser_tx(CH, &n.client, CC, &put(&format!("k{i}")), &[&n.peer]))
        .collect();
    let envs = txs.iter().map(|t| t.seal(&n.client)).collect();
    let statuses = broadcast(n.addr, envs).await;
    assert!(
        statuses.iter().all(|(s, _)| *s == Status::Success as i32),
        "{statuses:?}"
    );
    // Two transactions fill a block at once; the third waits for the batch timeout.
    wait_height(n.committer.ledger(), 3).await;
    let ledger = n.committer.ledger();
    for (i, t) in txs.iter().enumerate() {
        let loc = ledger.tx_location(&t.txid).unwrap().expect("committed");
        assert_eq!(loc.code, Code::Valid as i32);
        assert_eq!(loc.block, 1 + i as u64 / 2);
    }
    assert_eq!(ledger.get_state(CC, "k2").unwrap().unwrap().value, b"v");

    // Deliver everything from the orderer: genesis to newest.
    let seek = SeekInfo {
        start: specified(0),
        stop: Some(SeekPosition {
            r#type: Some(seek_position::Type::Newest(SeekNewest {})),
        }),
        behavior: seek_info::SeekBehavior::BlockUntilReady as i32,
        ..Default::default()
    };
    let (blocks, status) = deliver(n.addr, seek_envelope(&n.client, CH, seek)).await;
    assert_eq!(status, Status::Success as i32);
    assert_eq!(blocks.len(), 3);
    let orderer_id = Identity::new("OrdererMSP", n.orderer_user.cert_pem.as_bytes()).unwrap();
    for w in blocks.windows(2) {
        let (prev, b) = (&w[0], &w[1]);
        let h = b.header.as_ref().unwrap();
        assert_eq!(
            h.previous_hash,
            block_header_hash(prev.header.as_ref().unwrap())
        );
        assert_eq!(
            h.data_hash,
            fabric_devnet::ledger::block::block_data_hash(b.data.as_ref().unwrap())
        );
        // SIGNATURES: OrdererBlockMetadata with LAST_CONFIG 0, signed by the orderer over
        // value ‖ signature header ‖ header bytes.
        let md = Metadata::decode(
            b.metadata.as_ref().unwrap().metadata[BlockMetadataIndex::Signatures as usize]
                .as_slice(),
        )
        .unwrap();
        let obm = OrdererBlockMetadata::decode(md.value.as_slice()).unwrap();
        assert_eq!(obm.last_config.unwrap().index, 0);
        let sig = &md.signatures[0];
        let shdr = SignatureHeader::decode(sig.signature_header.as_slice()).unwrap();
        assert_eq!(shdr.creator, orderer_id.serialized());
        let signed = [
            &md.value[..],
            &sig.signature_header[..],
            &block_header_bytes(h)[..],
        ]
        .concat();
        orderer_id.verify(&signed, &sig.signature).unwrap();
    }
    // The peer stored the same chain.
    assert_eq!(
        n.committer.ledger().last_header_hash(),
        block_header_hash(blocks[2].header.as_ref().unwrap())
    );
}

#[tokio::test]
async fn broadcast_rejections_carry_fabric_statuses() {
    let n = net(10).await;
    let good = endorser_tx(CH, &n.client, CC, &put("a"), &[&n.peer]);

    let mut other_channel = endorser_tx("nochannel", &n.client, CC, &put("a"), &[&n.peer]);
    let unknown = other_channel.seal(&n.client);
    let stranger = endorser_tx(CH, &n.stranger, CC, &put("a"), &[&n.peer]).seal(&n.stranger);
    let mut forged = good.seal(&n.client);
    forged.signature = n.stranger.sign(&forged.payload);
    let mut big = endorser_tx(CH, &n.client, CC, &put("a"), &[&n.peer]);
    big.payload.data.extend(vec![0u8; 1024 * 1024 + 1]);
    let big = big.seal(&n.client);
    other_channel.payload.header = None;
    let headerless = other_channel.seal(&n.client);

    let r = broadcast(n.addr, vec![unknown, stranger, forged, big, headerless]).await;
    assert_eq!(
        r[0],
        (Status::BadRequest as i32, "channel does not exist".into())
    );
    // An identity of an organisation outside the channel does not satisfy /Channel/Writers.
    assert_eq!(r[1].0, Status::Forbidden as i32, "{:?}", r[1]);
    assert!(r[1].1.ends_with(": permission denied"), "{}", r[1].1);
    assert!(
        r[1].1.contains(
            "sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies"
        ),
        "{}",
        r[1].1
    );
    // A signature that does not verify counts for nothing either.
    assert_eq!(r[2].0, Status::Forbidden as i32, "{:?}", r[2]);
    assert_eq!(r[3].0, Status::BadRequest as i32);
    assert!(
        r[3].1.starts_with("message payload is ")
            && r[3]
                .1
                .ends_with("bytes and exceeds maximum allowed 1048576 bytes"),
        "{}",
        r[3].1
    );
    assert_eq!(r[4].0, Status::BadRequest as i32);
    assert!(
        r[4].1.starts_with("could not determine channel ID"),
        "{}",
        r[4].1
    );
    // Nothing reached a block.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(n.committer.ledger().height(), 1);
}

#[tokio::test]
async fn deliver_checks_readers_policy_and_seek_positions() {
    let n = net(1).await;
    let tx = endorser_tx(CH, &n.client, CC, &put("a"), &[&n.peer]).seal(&n.client);
    broadcast(n.addr, vec![tx]).await;
    wait_height(n.committer.ledger(), 2).await;

    let seek = |start, stop, behavior: seek_info::SeekBehavior| SeekInfo {
        start,
        stop,
        behavior: behavior as i32,
        ..Default::default()
    };
    use seek_info::SeekBehavior::*;
    // Outsiders are refused.
    let (b, s) = deliver(
        n.addr,
        seek_envelope(
            &n.stranger,
            CH,
            seek(specified(0), specified(0), BlockUntilReady),
        ),
    )
    .await;
    assert!(b.is_empty());
    assert_eq!(s, Status::Forbidden as i32);
    // Unknown channel.
    let (_, s) = deliver(
        n.addr,
        seek_envelope(
            &n.client,
            "nochannel",
            seek(specified(0), specified(0), BlockUntilReady),
        ),
    )
    .await;
    assert_eq!(s, Status::NotFound as i32);
    // Missing stop.
    let (_, s) = deliver(
        n.addr,
        seek_envelope(&n.client, CH, seek(specified(0), None, BlockUntilReady)),
    )
    .await;
    assert_eq!(s, Status::BadRequest as i32);
    // Stop before start.
    let (_, s) = deliver(
        n.addr,
        seek_envelope(
            &n.client,
            CH,
            seek(specified(1), specified(0), BlockUntilReady),
        ),
    )
    .await;
    assert_eq!(s, Status::BadRequest as i32);
    // Beyond the height.
    let (_, s) = deliver(
        n.addr,
        seek_envelope(
            &n.client,
            CH,
            seek(specified(5), specified(6), BlockUntilReady),
        ),
    )
    .await;
    assert_eq!(s, Status::NotFound as i32);
    // FAIL_IF_NOT_READY sends what exists, then NOT_FOUND.
    let (b, s) = deliver(
        n.addr,
        seek_envelope(
            &n.client,
            CH,
            seek(specified(1), specified(2), FailIfNotReady),
        ),
    )
    .await;
    assert_eq!(b.len(), 1);
    assert_eq!(s, Status::NotFound as i32);

    // BLOCK_UNTIL_READY waits for the next block.
    let addr = n.addr;
    let env = seek_envelope(
        &n.client,
        CH,
        seek(specified(2), specified(2), BlockUntilReady),
    );
    let waiting = tokio::spawn(async move { deliver(addr, env).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    let tx = endorser_tx(CH, &n.client, CC, &put("b"), &[&n.peer]).seal(&n.client);
    broadcast(n.addr, vec![tx]).await;
    let (b, s) = waiting.await.unwrap();
    assert_eq!(s, Status::Success as i32);
    assert_eq!(b[0].header.as_ref().unwrap().number, 2);
}

#[tokio::test]
async fn restart_continues_the_chain_and_catches_a_lagging_peer_up() {
    let n = net(1).await;
    let tx = endorser_tx(CH, &n.client, CC, &put("a"), &[&n.peer]).seal(&n.client);
    broadcast(n.addr, vec![tx]).await;
    wait_height(n.committer.ledger(), 2).await;
    let genesis = n
        .orderer
        .chain(CH)
        .unwrap()
        .ledger()
        .block(0)
        .unwrap()
        .unwrap();
    let dir = n._dir.path().to_path_buf();
    n.orderer.halt();
    let last = n.orderer.chain(CH).map(|c| c.ledger().height());
    assert!(last.is_none(), "halted orderer serves no channel");

    // Reopened on the same store, the chain continues from block 2.
    let signer = SigningIdentity::new(
        Identity::new("OrdererMSP", n.orderer_user.cert_pem.as_bytes()).unwrap(),
        Arc::new(n.orderer_user.key.clone()),
    );
    let orderer = Orderer::new(OrdererConfig {
        msp_id: "OrdererMSP".into(),
        address: "127.0.0.1:0".into(),
        signer,
        data_dir: dir.join("orderer"),
    });
    // The old chain's thread has stopped and released the store.
    let chain = orderer.join_channel(&genesis).unwrap();
    assert_eq!(chain.ledger().height(), 2);
    // A peer that only has the genesis block is caught up on registration.
    let lagging = Committer::new(
        Ledger::open(dir.join("lagging.redb"), CH).unwrap(),
        n.committer.context().clone(),
    );
    lagging.commit_genesis(genesis).unwrap();
    orderer.add_sink(CH, Arc::new(lagging.clone())).unwrap();
    assert_eq!(lagging.ledger().height(), 2);
    assert_eq!(
        lagging.ledger().last_header_hash(),
        chain.ledger().last_header_hash()
    );
    orderer.halt();
}
