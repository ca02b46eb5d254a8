//! The whole devnet with the default topology, driven through the Rust Gateway client over TLS:
//! a CCaaS chaincode from our shim is deployed, transactions are evaluated, endorsed by several
//! organisations, ordered, committed and their events streamed; failures come back with the
//! real gateway's codes, messages and details; a restart on the same data dir keeps the ledger.

#[path = "peer_fixture.rs"]
mod peer_fixture;

use std::time::Instant;

use fabric_client::gateway::{
    Connection, ConnectionOptions, Endpoint, EventsOptions, Gateway, GatewayOptions,
};
use fabric_client::GatewayError;
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;
use fabric_protos::protos::TxValidationCode;

const CH: &str = "police-service";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gateway(summary: &DevnetSummary, org: &str, user: &str) -> Gateway {
    let peer = summary.peers.iter().find(|p| p.org == org).unwrap();
    let msp_id = &peer.msp_id;
    let signing =
        fabric_client::msp::load_signing_identity(msp_id, &summary.msp[org][user]).unwrap();
    let endpoint = Endpoint::new(format!("https://{}", peer.address))
        .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
        .server_name(peer.host.clone());
    let conn = Connection::new(vec![endpoint], &ConnectionOptions::default()).unwrap();
    Gateway::for_signing_identity(conn, &signing, GatewayOptions::default())
}

fn status_of(e: &GatewayError) -> (tonic::Code, String, Vec<(String, String, String)>) {
    let s = e.grpc_status().expect("a gRPC status");
    (
        s.code,
        s.message.clone(),
        s.details
            .iter()
            .map(|d| (d.address.clone(), d.msp_id.clone(), d.message.clone()))
            .collect(),
    )
}

/// Reads every block of `channel` from the orderer over TLS; returns how many arrived.
async fn orderer_deliver(summary: &DevnetSummary, org: &str, user: &str, channel: &str) -> u64 {
    use fabric_common::crypto::Signer;
    use fabric_protos::common::{
        ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
    };
    use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
    use fabric_protos::orderer::{
        deliver_response, seek_position, SeekInfo, SeekNewest, SeekPosition, SeekSpecified,
    };
    use prost::Message;

    let msp_id = &summary.peers.iter().find(|p| p.org == org).unwrap().msp_id;
    let signer =
        fabric_common::msp::read_signing_identity(&summary.msp[org][user], msp_id).unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&summary.orderer_tls_ca_cert).unwrap(),
        ))
        .domain_name(summary.orderer_host.clone());
    let conn = tonic::transport::Endpoint::from_shared(format!("https://{}", summary.orderer))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let seek = SeekInfo {
        start: Some(SeekPosition {
            r#type: Some(seek_position::Type::Specified(SeekSpecified { number: 0 })),
        }),
        stop: Some(SeekPosition {
            r#type: Some(seek_position::Type::Newest(SeekNewest {})),
        }),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ChannelHeader {
                r#type: HeaderType::DeliverSeekInfo as i32,
                channel_id: channel.into(),
                timestamp: Some(fabric_common::tx::now_timestamp()),
                ..Default::default()
            }
            .encode_to_vec(),
            signature_header: SignatureHeader {
                creator: signer.serialized().to_vec(),
                nonce: fabric_common::tx::new_nonce().to_vec(),
            }
            .encode_to_vec(),
        }),
        data: seek.encode_to_vec(),
    }
    .encode_to_vec();
    let env = Envelope {
        signature: signer.sign(&payload).unwrap(),
        payload,
    };
    let mut stream = AtomicBroadcastClient::new(conn)
        .deliver(tokio_stream::iter(vec![env]))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    loop {
        match stream.message().await.unwrap().unwrap().r#type.unwrap() {
            deliver_response::Type::Block(b) => {
                assert_eq!(b.header.unwrap().number, n);
                n += 1;
            }
            deliver_response::Type::Status(s) => {
                assert_eq!(s, fabric_protos::common::Status::Success as i32);
                return n;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_end_to_end_on_an_up_devnet_and_restart_keeps_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let config = DevnetConfig::new(Topology::default_topology(), dir.path());
    let t0 = Instant::now();
    let devnet = Devnet::up(config.clone()).await.unwrap();
    println!(
        "devnet up (first start, identities enrolled): {:?}",
        t0.elapsed()
    );
    let summary = devnet.summary();
    assert_eq!(summary.peers.len(), 7);
    assert_eq!(summary.channels.len(), 5);
    for p in summary.profiles.values() {
        let profile: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        // The profile names live ports.
        let url = profile["peers"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            summary.peers.iter().any(|p| p.url == url),
            "{url} is a running peer"
        );
    }
    assert!(summary.msp["ServiceCentre"]["holder1"]
        .join("signcerts/cert.pem")
        .exists());
    // The summary is what `devnet up -o json` prints.
    let json = serde_json::to_string(&summary).unwrap();
    let back: DevnetSummary = serde_json::from_str(&json).unwrap();
    assert_eq!(back, summary);

    // Deploy our test chaincode on one channel, with the default policy (a majority of the
    // channel's three organisations, so two must endorse).
    let addr = format!("127.0.0.1:{}", free_port());
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "kv".into(),
            address: addr.clone(),
            channels: vec![CH.into()],
            ..Default::default()
        })
        .unwrap();
    assert!(deployed.package_id.starts_with("kv_1.0:"));
    let cc = peer_fixture::start_chaincode(&deployed.package_id, &addr).await;
    // Another process finds the running devnet, deployed chaincode included.
    let (running, pid) = Devnet::running_summary(dir.path()).unwrap().unwrap();
    assert_eq!(pid, std::process::id());
    assert_eq!(running, devnet.summary());
    assert_eq!(running.chaincodes[CH]["kv"], deployed.package_id);

    let gw = gateway(&summary, "ServiceCentre", "clerk1");
    let contract = gw.network(CH).contract("kv");
    let (_, commit) = contract.submit_async("put", &["k1", "v1"]).await.unwrap();
    let status = commit.status().await.unwrap();
    assert!(status.successful, "{status:?}");
    assert_eq!(status.code, TxValidationCode::Valid);
    // The committed transaction carries endorsements of two organisations.
    let peer = devnet.peer("ServiceCentre").unwrap();
    let block = peer
        .node
        .channel(CH)
        .unwrap()
        .ledger()
        .block(status.block_number)
        .unwrap()
        .unwrap();
    let tx = fabric_common::tx::unpack_envelope_bytes(&block.data.unwrap().data[0]).unwrap();
    let mut orgs: Vec<String> = tx.actions[0]
        .endorsements
        .iter()
        .map(|e| {
            fabric_common::identity::Identity::from_serialized(&e.endorser)
                .unwrap()
                .msp_id()
                .to_string()
        })
        .collect();
    orgs.sort();
    assert_eq!(orgs.len(), 2, "{orgs:?}");
    assert!(orgs.contains(&"ServiceCentreMSP".to_string()), "{orgs:?}");

    // Every member peer committed it; evaluation reads it.
    let got = contract.evaluate_transaction("get", &["k1"]).await.unwrap();
    assert_eq!(got, b"v1");

    // Chaincode error on evaluate: UNKNOWN with the endorser's detail.
    let err = contract
        .evaluate_transaction("fail", &["boom"])
        .await
        .unwrap_err();
    let (code, msg, details) = status_of(&err);
    assert_eq!(code, tonic::Code::Unknown);
    assert_eq!(
        msg,
        "evaluate call to endorser returned error: chaincode response 500, boom"
    );
    assert_eq!(
        details,
        vec![(
            peer.address.to_string(),
            "ServiceCentreMSP".to_string(),
            "chaincode response 500, boom".to_string()
        )]
    );
    // Chaincode error on endorse: ABORTED.
    let err = contract
        .submit_transaction("fail", &["boom"])
        .await
        .unwrap_err();
    let (code, msg, details) = status_of(&err);
    assert_eq!(code, tonic::Code::Aborted);
    assert_eq!(
        msg,
        "failed to endorse transaction, see attached details for more info"
    );
    assert_eq!(details[0].2, "chaincode response 500, boom");
    // Unknown chaincode.
    let err = gw
        .network(CH)
        .contract("nope")
        .evaluate_transaction("get", &["k1"])
        .await
        .unwrap_err();
    let (code, msg, _) = status_of(&err);
    assert_eq!(code, tonic::Code::FailedPrecondition);
    assert_eq!(
        msg,
        "no peers available to evaluate chaincode nope in channel police-service"
    );

    // Transient data is never sent to organisations outside the collection: the majority
    // policy needs a second organisation, which is not a member of ServiceCentre's implicit
    // collection.
    let err = contract
        .new_proposal("putp")
        .string_args(&["_implicit_org_ServiceCentreMSP", "k"])
        .transient("value", b"secret".to_vec())
        .submit_async()
        .await
        .unwrap_err();
    let (code, msg, _) = status_of(&err);
    assert_eq!(code, tonic::Code::FailedPrecondition);
    assert_eq!(
        msg,
        "requires endorsement from organisation(s) that are not in the distribution policy of the private data collection(s): [_implicit_org_ServiceCentreMSP]; retry specifying trusted endorsing organizations to protect transient data"
    );

    // Chaincode events from the block of a transaction that emits one.
    let (_, commit) = contract
        .submit_async("event", &["issued", "payload-1"])
        .await
        .unwrap();
    let st = commit.status().await.unwrap();
    assert!(st.successful);
    let mut events = gw
        .network(CH)
        .chaincode_events("kv", &EventsOptions::start_block(status.block_number))
        .await
        .unwrap();
    let ev = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.event_name, "issued");
    assert_eq!(ev.payload, b"payload-1");
    assert_eq!(ev.transaction_id, commit.transaction_id());
    assert_eq!(ev.block_number, st.block_number);
    drop(events);

    // The orderer's Deliver over TLS, for a member organisation's client.
    let orderer_blocks = orderer_deliver(&summary, "ServiceCentre", "clerk1", CH).await;
    assert_eq!(
        orderer_blocks,
        peer.node.channel(CH).unwrap().ledger().height()
    );

    // Restart on the same data dir: the ledger and the chaincode definition continue.
    let height = peer.node.channel(CH).unwrap().ledger().height();
    drop(contract);
    drop(gw);
    devnet.down().await;
    assert!(Devnet::running_summary(dir.path()).unwrap().is_none());
    let t1 = Instant::now();
    let devnet = Devnet::up(config).await.unwrap();
    println!(
        "devnet up (restart on the same data dir): {:?}",
        t1.elapsed()
    );
    let summary = devnet.summary();
    assert_eq!(summary.chaincodes[CH]["kv"], deployed.package_id);
    let peer = devnet.peer("ServiceCentre").unwrap();
    assert_eq!(peer.node.channel(CH).unwrap().ledger().height(), height);
    let gw = gateway(&summary, "Regulator", "auditor1");
    let contract = gw.network(CH).contract("kv");
    assert_eq!(
        contract.evaluate_transaction("get", &["k1"]).await.unwrap(),
        b"v1"
    );
    contract
        .submit_transaction("put", &["k2", "v2"])
        .await
        .unwrap();
    assert_eq!(
        contract.evaluate_transaction("get", &["k2"]).await.unwrap(),
        b"v2"
    );
    drop(contract);
    drop(gw);
    devnet.down().await;
    cc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_follow_key_level_policies_and_reads_are_access_checked() {
    use fabric_client::gateway::{
        BlockEventsKind, Checkpointer, DeliverEvent, InMemoryCheckpointer,
    };
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
        .await
        .unwrap();
    let summary = devnet.summary();
    let addr = format!("127.0.0.1:{}", free_port());
    // Any one member peer may endorse at chaincode level.
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "kv".into(),
            address: addr.clone(),
            channels: vec![CH.into()],
            policy: Some(
                "OR('PublicSecurityMSP.peer','ServiceCentreMSP.peer','RegulatorMSP.peer')".into(),
            ),
            ..Default::default()
        })
        .unwrap();
    let cc = peer_fixture::start_chaincode(&deployed.package_id, &addr).await;
    let gw = gateway(&summary, "ServiceCentre", "clerk1");
    let contract = gw.network(CH).contract("kv");
    let endorsers = |block_number: u64, txid: &str| -> Vec<String> {
        let ledger = devnet
            .peer("ServiceCentre")
            .unwrap()
            .node
            .channel(CH)
            .unwrap();
        let block = ledger.ledger().block(block_number).unwrap().unwrap();
        for d in &block.data.unwrap().data {
            let tx = fabric_common::tx::unpack_envelope_bytes(d).unwrap();
            if tx.tx_id() == txid {
                let mut orgs: Vec<String> = tx.actions[0]
                    .endorsements
                    .iter()
                    .map(|e| {
                        fabric_common::identity::Identity::from_serialized(&e.endorser)
                            .unwrap()
                            .msp_id()
                            .to_string()
                    })
                    .collect();
                orgs.sort();
                return orgs;
            }
        }
        panic!("{txid} not in block {block_number}");
    };

    // Chaincode level: the gateway's own organisation suffices.
    let (_, c) = contract.submit_async("put", &["lic", "v1"]).await.unwrap();
    let st = c.status().await.unwrap();
    assert!(st.successful);
    assert_eq!(
        endorsers(st.block_number, c.transaction_id()),
        ["ServiceCentreMSP"]
    );

    // A key-level policy naming two other organisations: the next write of that key is
    // endorsed by exactly them, and commits valid.
    let (_, c) = contract
        .submit_async(
            "setvp",
            &["lic", "AND('PublicSecurityMSP.peer','RegulatorMSP.peer')"],
        )
        .await
        .unwrap();
    assert!(c.status().await.unwrap().successful);
    let (_, c) = contract.submit_async("put", &["lic", "v2"]).await.unwrap();
    let st = c.status().await.unwrap();
    assert!(st.successful, "{st:?}");
    assert_eq!(
        endorsers(st.block_number, c.transaction_id()),
        ["PublicSecurityMSP", "RegulatorMSP"]
    );

    // Endorsing organisations chosen by the client are used as given: ServiceCentre alone
    // cannot satisfy the key's policy, so the transaction commits invalid.
    let (_, c) = contract
        .new_proposal("put")
        .string_args(&["lic", "v3"])
        .endorsing_organizations(["ServiceCentreMSP"])
        .submit_async()
        .await
        .unwrap();
    let st = c.status().await.unwrap();
    assert_eq!(st.code, TxValidationCode::EndorsementPolicyFailure);
    // An organisation without a peer on the channel is refused up front.
    let err = contract
        .new_proposal("put")
        .string_args(&["lic", "v3"])
        .endorsing_organizations(["TaxationMSP"])
        .submit_async()
        .await
        .unwrap_err();
    let (code, msg, _) = status_of(&err);
    assert_eq!(code, tonic::Code::Unavailable);
    assert_eq!(
        msg,
        "failed to find any endorsing peers for org(s): TaxationMSP"
    );

    // Chaincode events resume after a checkpointed transaction.
    let (_, c1) = contract.submit_async("event", &["e", "one"]).await.unwrap();
    let s1 = c1.status().await.unwrap();
    let (_, c2) = contract.submit_async("event", &["e", "two"]).await.unwrap();
    c2.status().await.unwrap();
    let checkpoint = InMemoryCheckpointer::new();
    checkpoint
        .checkpoint_transaction(s1.block_number, c1.transaction_id())
        .unwrap();
    let mut events = gw
        .network(CH)
        .chaincode_events("kv", &EventsOptions::checkpoint(&checkpoint))
        .await
        .unwrap();
    let ev = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        ev.payload, b"two",
        "resumes after the checkpointed transaction"
    );
    drop(events);

    // Filtered blocks from the peer's Deliver service name the transaction and its code.
    let mut blocks = gw
        .network(CH)
        .block_events(
            BlockEventsKind::Filtered,
            &EventsOptions::start_block(st.block_number),
        )
        .await
        .unwrap();
    let b = tokio::time::timeout(std::time::Duration::from_secs(10), blocks.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let DeliverEvent::Filtered(fb) = b else {
        panic!("filtered block expected");
    };
    assert_eq!(fb.channel_id, CH);
    let ft = fb
        .filtered_transactions
        .iter()
        .find(|t| t.txid == st.transaction_id)
        .unwrap();
    assert_eq!(
        ft.tx_validation_code,
        TxValidationCode::EndorsementPolicyFailure as i32
    );
    drop(blocks);

    // Private data: written through the transient map into ServiceCentre's implicit
    // collection, it is delivered with the block to ServiceCentre's clients only.
    let coll = "_implicit_org_ServiceCentreMSP";
    let (_, c) = contract
        .new_proposal("putp")
        .string_args(&[coll, "secret-key"])
        .transient("value", b"secret-value".to_vec())
        .submit_async()
        .await
        .unwrap();
    let pst = c.status().await.unwrap();
    assert!(pst.successful, "{pst:?}");
    let private_of = |gw: Gateway| async move {
        let mut blocks = gw
            .network(CH)
            .block_events(
                BlockEventsKind::WithPrivateData,
                &EventsOptions::start_block(pst.block_number),
            )
            .await
            .unwrap();
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), blocks.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let DeliverEvent::WithPrivateData(bp) = ev else {
            panic!("block with private data expected");
        };
        assert_eq!(bp.block.unwrap().header.unwrap().number, pst.block_number);
        bp.private_data_map
    };
    let mine = private_of(gateway(&summary, "ServiceCentre", "clerk2")).await;
    let tx_pvt = mine
        .values()
        .next()
        .expect("the member gets the private write set");
    let cp = &tx_pvt.ns_pvt_rwset[0].collection_pvt_rwset[0];
    assert_eq!(cp.collection_name, coll);
    let kv =
        <fabric_protos::kvrwset::KvrwSet as prost::Message>::decode(cp.rwset.as_slice()).unwrap();
    assert_eq!(kv.writes[0].key, "secret-key");
    assert_eq!(kv.writes[0].value, b"secret-value");
    let theirs = private_of(gateway(&summary, "Regulator", "auditor1")).await;
    assert!(
        theirs.is_empty(),
        "a non-member gets the block without private data"
    );

    // A client of an organisation outside the channel may not read its commit statuses or
    // blocks.
    let civil = {
        let peer = summary
            .peers
            .iter()
            .find(|p| p.org == "ServiceCentre")
            .unwrap();
        let signing = fabric_client::msp::load_signing_identity(
            "CivilAffairsMSP",
            &summary.msp["CivilAffairs"]["clerk1"],
        )
        .unwrap();
        let endpoint = Endpoint::new(format!("https://{}", peer.address))
            .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
            .server_name(peer.host.clone());
        let conn = Connection::new(vec![endpoint], &ConnectionOptions::default()).unwrap();
        Gateway::for_signing_identity(conn, &signing, GatewayOptions::default())
    };
    let err = civil
        .network(CH)
        .chaincode_events("kv", &EventsOptions::start_block(0))
        .await;
    let err = match err {
        Err(e) => e,
        Ok(mut s) => s.next().await.unwrap().unwrap_err(),
    };
    let (code, msg, _) = status_of(&err);
    assert_eq!(code, tonic::Code::PermissionDenied, "{msg}");
    assert_eq!(
        msg,
        "Failed evaluating policy on signed data during check policy on channel [police-service] with policy [/Channel/Application/Readers]: [implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Readers' sub-policies to be satisfied]"
    );
    let err = civil
        .network(CH)
        .block_events(BlockEventsKind::Full, &EventsOptions::start_block(0))
        .await;
    let status = match err {
        Err(GatewayError::Deliver { status }) => status,
        Ok(mut s) => match s.next().await.unwrap() {
            Err(GatewayError::Deliver { status }) => status,
            other => panic!("{other:?}"),
        },
        Err(other) => panic!("{other:?}"),
    };
    assert_eq!(status, 403);

    // The topology's chaincode on every channel, with ANY_MEMBER_PEER expanded per channel:
    // one member organisation's endorsement suffices.
    let addr2 = format!("127.0.0.1:{}", free_port());
    let deployed = devnet.deploy_topology_chaincode(&addr2, None).unwrap();
    assert!(deployed.package_id.starts_with("elicense_1.0:"));
    assert_eq!(deployed.channels.len(), 5);
    let cc2 = peer_fixture::start_chaincode(&deployed.package_id, &addr2).await;
    let summary = devnet.summary();
    assert!(summary
        .chaincodes
        .values()
        .all(|c| c["elicense"] == deployed.package_id));
    let tax = gateway(&summary, "Taxation", "clerk1");
    let (_, c) = tax
        .network("market-tax")
        .contract("elicense")
        .submit_async("put", &["t", "1"])
        .await
        .unwrap();
    let st = c.status().await.unwrap();
    assert!(st.successful, "{st:?}");
    let block = devnet
        .peer("Taxation")
        .unwrap()
        .node
        .channel("market-tax")
        .unwrap()
        .ledger()
        .block(st.block_number)
        .unwrap()
        .unwrap();
    let tx = fabric_common::tx::unpack_envelope_bytes(&block.data.unwrap().data[0]).unwrap();
    assert_eq!(tx.actions[0].endorsements.len(), 1);
    drop(tax);
    cc2.shutdown().await.unwrap();

    drop(contract);
    drop(gw);
    devnet.down().await;
    cc.shutdown().await.unwrap();
}

/// The CLI and SDK hold a devnet across tasks.
#[test]
fn devnet_handles_move_across_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Devnet>();
    send_sync::<DevnetSummary>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endorser_rejections_are_classified_by_where_the_endorser_runs() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
        .await
        .unwrap();
    let summary = devnet.summary();
    let addr = format!("127.0.0.1:{}", free_port());
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "kv".into(),
            address: addr.clone(),
            channels: vec![CH.into()],
            ..Default::default()
        })
        .unwrap();
    let cc = peer_fixture::start_chaincode(&deployed.package_id, &addr).await;

    // clerk1's certificate with clerk2's key: every endorser rejects the proposal signature.
    let peer = summary
        .peers
        .iter()
        .find(|p| p.org == "ServiceCentre")
        .unwrap();
    let clerk1 = fabric_client::msp::load_signing_identity(
        &peer.msp_id,
        &summary.msp["ServiceCentre"]["clerk1"],
    )
    .unwrap();
    let clerk2 = fabric_client::msp::load_signing_identity(
        &peer.msp_id,
        &summary.msp["ServiceCentre"]["clerk2"],
    )
    .unwrap();
    let endpoint = Endpoint::new(format!("https://{}", peer.address))
        .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
        .server_name(peer.host.clone());
    let forged = Gateway::connect(
        endpoint,
        clerk1.identity().clone(),
        clerk2.signer().clone(),
        GatewayOptions::default(),
    )
    .unwrap();
    let contract = forged.network(CH).contract("kv");

    // The gateway's own peer answers in-process: a client error, not retried.
    let err = contract
        .evaluate_transaction("get", &["k"])
        .await
        .unwrap_err();
    let (code, msg, details) = status_of(&err);
    assert_eq!(code, tonic::Code::FailedPrecondition, "{msg}");
    assert!(
        msg.starts_with("evaluate call to endorser returned error: "),
        "{msg}"
    );
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].0, peer.address);

    // Another organisation's peer is reached as over gRPC: unavailable, tried, then given up.
    let regulator = summary.peers.iter().find(|p| p.org == "Regulator").unwrap();
    let err = contract
        .new_proposal("get")
        .string_args(&["k"])
        .endorsing_organizations(["RegulatorMSP"])
        .build()
        .unwrap()
        .evaluate()
        .await
        .unwrap_err();
    let (code, msg, details) = status_of(&err);
    assert_eq!(code, tonic::Code::Unavailable, "{msg}");
    assert_eq!(
        msg,
        "failed to evaluate transaction, see attached details for more info"
    );
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].0, regulator.address);
    assert_eq!(details[0].1, "RegulatorMSP");
    assert!(
        details[0].2.starts_with("rpc error: code = "),
        "{}",
        details[0].2
    );

    drop(contract);
    drop(forged);
    devnet.down().await;
    cc.shutdown().await.unwrap();
}
