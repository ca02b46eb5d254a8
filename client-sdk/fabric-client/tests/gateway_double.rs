//! The gateway client against an in-process `gateway.Gateway` + `protos.Deliver` server
//! (`support/double.rs`).
//!
//! The server is a test double for the *transport* only: it checks every signature against the
//! creator in the message (as a peer's gateway does), records what the client sent, and answers
//! with well-formed protocol messages (a prepared envelope built from the proposal as Fabric's
//! gateway builds it, commit statuses, event batches, blocks). The assertions are about what the
//! client sends and how it handles each answer and each error status.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_client::gateway::{
    BlockEventsKind, CallTimeouts, Checkpoint, Checkpointer, Connection, ConnectionOptions,
    DeliverEvent, Endpoint, EventsOptions, FileCheckpointer, Gateway, GatewayError, GatewayOptions,
    InMemoryCheckpointer, TxValidationCode,
};
use fabric_client::{HashAlgorithm, Identity, Signer};
use fabric_protos::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use fabric_protos::gateway::*;
use fabric_protos::orderer::seek_position;
use fabric_protos::protos::{self as peer};
use prost::Message;
use sha2::Digest as _;
use support::double::{args_of, client_identity, start, Double};

fn gateway_to(
    addrs: &[SocketAddr],
    signer: Option<Arc<dyn Signer>>,
    identity: Identity,
    options: GatewayOptions,
) -> Gateway {
    let endpoints = addrs
        .iter()
        .map(|a| Endpoint::new(format!("http://{a}")))
        .collect();
    let conn = Connection::new(endpoints, &ConnectionOptions::default()).unwrap();
    Gateway::new(conn, identity, signer, options)
}

#[tokio::test]
async fn evaluate_sends_a_signed_proposal_in_fabric_form() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway_to(
        &[addr],
        Some(Arc::new(key)),
        id.clone(),
        GatewayOptions::default(),
    );
    let contract = gw
        .network("police-service")
        .contract_with_name("elicense", "licence");
    let out = contract
        .new_proposal("read")
        .string_args(&["L-1"])
        .arg(vec![0u8, 1, 2])
        .transient("salt", b"s3cret".to_vec())
        .endorsing_organizations(["Org1MSP"])
        .evaluate()
        .await
        .unwrap();
    assert_eq!(out, b"licence:read|L-1|\x00\x01\x02");

    let rec = double.recorded.lock().unwrap();
    let req = &rec.evaluate[0];
    assert_eq!(req.channel_id, "police-service");
    assert_eq!(req.target_organizations, vec!["Org1MSP".to_string()]);
    let sp = req.proposed_transaction.as_ref().unwrap();
    let (args, transient, cc) = args_of(sp);
    assert_eq!(cc, "elicense");
    assert_eq!(args[0], b"licence:read");
    assert_eq!(
        transient.get("salt").map(Vec::as_slice),
        Some(&b"s3cret"[..])
    );
    let proposal = peer::Proposal::decode(sp.proposal_bytes.as_slice()).unwrap();
    let header = Header::decode(proposal.header.as_slice()).unwrap();
    let ch = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
    let sh = SignatureHeader::decode(header.signature_header.as_slice()).unwrap();
    assert_eq!(ch.r#type, HeaderType::EndorserTransaction as i32);
    assert_eq!(ch.tx_id, req.transaction_id);
    assert_eq!(sh.nonce.len(), 24);
    assert_eq!(sh.creator, id.serialized());
    assert!(ch.timestamp.is_some());
    let ext = peer::ChaincodeHeaderExtension::decode(ch.extension.as_slice()).unwrap();
    assert_eq!(ext.chaincode_id.unwrap().name, "elicense");
    assert!(fabric_common::crypto::is_low_s(&sp.signature).unwrap());
}

#[tokio::test]
async fn submit_signs_the_prepared_envelope_and_the_commit_status_request() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway_to(
        &[addr],
        Some(Arc::new(key)),
        id.clone(),
        GatewayOptions::default(),
    );
    let contract = gw.network("ch1").contract("elicense");
    let result = contract
        .submit_transaction("issue", &["L-1", "ID_CARD"])
        .await
        .unwrap();
    assert_eq!(result, b"issue|L-1|ID_CARD");

    // submit_async: the result at once, the status later.
    let (result, commit) = contract.submit_async("suspend", &["L-1"]).await.unwrap();
    assert_eq!(result, b"suspend|L-1");
    let status = commit.status().await.unwrap();
    assert!(status.successful);
    assert_eq!(status.code, TxValidationCode::Valid);
    assert_eq!(status.block_number, 42);
    assert_eq!(status.transaction_id, commit.transaction_id());

    let rec = double.recorded.lock().unwrap();
    assert_eq!(rec.endorse.len(), 2);
    assert_eq!(rec.submit.len(), 2);
    assert_eq!(rec.commit.len(), 2);
    assert_eq!(rec.submit[1].transaction_id, commit.transaction_id());
    assert_eq!(rec.commit[1].transaction_id, commit.transaction_id());
    assert_eq!(rec.commit[1].channel_id, "ch1");
    assert_eq!(rec.commit[1].identity, id.serialized());
}

#[tokio::test]
async fn step_by_step_proposal_endorse_submit_status() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway_to(&[addr], Some(Arc::new(key)), id, GatewayOptions::default());
    let proposal = gw
        .network("ch1")
        .contract("cc")
        .new_proposal("f")
        .string_args(&["a"])
        .build()
        .unwrap();
    let tx = proposal.endorse().await.unwrap();
    assert_eq!(tx.transaction_id(), proposal.transaction_id());
    assert_eq!(tx.result(), b"f|a");
    let commit = tx.submit().await.unwrap();
    let status = commit.status().await.unwrap();
    assert!(status.successful);
}

#[tokio::test]
async fn errors_are_typed_by_stage_with_peer_details() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway_to(&[addr], Some(Arc::new(key)), id, GatewayOptions::default());
    let contract = gw.network("ch1").contract("cc");

    let details = vec![
        ErrorDetail {
            address: "peer0.org1:7051".into(),
            msp_id: "Org1MSP".into(),
            message: "chaincode response 500, licence L-9 not found".into(),
        },
        ErrorDetail {
            address: "peer0.org2:9051".into(),
            msp_id: "Org2MSP".into(),
            message: "chaincode response 500, licence L-9 not found".into(),
        },
    ];
    double.behaviour.lock().unwrap().endorse_error = Some((
        tonic::Code::Aborted,
        "failed to endorse transaction".into(),
        details,
    ));
    let err = contract
        .submit_transaction("verify", &["L-9"])
        .await
        .unwrap_err();
    let GatewayError::Endorse(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::Aborted);
    assert_eq!(e.status.message, "failed to endorse transaction");
    assert_eq!(e.status.details.len(), 2);
    assert_eq!(e.status.details[1].msp_id, "Org2MSP");
    assert_eq!(e.status.details[0].address, "peer0.org1:7051");
    assert_eq!(err.transaction_id().unwrap().len(), 64);
    double.behaviour.lock().unwrap().endorse_error = None;

    double.behaviour.lock().unwrap().submit_error = Some(tonic::Code::Unavailable);
    let err = contract
        .submit_transaction("issue", &["L-1"])
        .await
        .unwrap_err();
    let GatewayError::Submit(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::Unavailable);
    assert_eq!(err.details()[0].msp_id, "OrdererMSP");
    double.behaviour.lock().unwrap().submit_error = None;

    double.behaviour.lock().unwrap().commit_code = TxValidationCode::MvccReadConflict as i32;
    let err = contract
        .submit_transaction("issue", &["L-1"])
        .await
        .unwrap_err();
    let GatewayError::Commit(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, TxValidationCode::MvccReadConflict);
    assert_eq!(e.block_number, 42);
    double.behaviour.lock().unwrap().commit_code = 0;

    double.behaviour.lock().unwrap().commit_status_error = Some(tonic::Code::NotFound);
    let (_, commit) = contract.submit_async("issue", &["L-1"]).await.unwrap();
    let err = commit.status().await.unwrap_err();
    let GatewayError::CommitStatus(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.transaction_id, commit.transaction_id());
    assert_eq!(e.status.code, tonic::Code::NotFound);
}

#[tokio::test]
async fn evaluate_deadline_is_enforced() {
    let double = Double::default();
    double.behaviour.lock().unwrap().evaluate_delay = Some(Duration::from_secs(3));
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let options = GatewayOptions {
        timeouts: CallTimeouts {
            evaluate: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let gw = gateway_to(&[addr], Some(Arc::new(key)), id, options);
    let started = std::time::Instant::now();
    let err = gw
        .network("ch1")
        .contract("cc")
        .evaluate_transaction("slow", &[] as &[&str])
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let GatewayError::Evaluate(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::DeadlineExceeded);
}

#[tokio::test]
async fn fails_over_to_the_next_endpoint_when_unavailable() {
    // Endpoint 1: nothing listens. Endpoint 2: a gateway that answers UNAVAILABLE. Endpoint 3: up.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = Double::default();
    down.behaviour.lock().unwrap().unavailable = true;
    let (_g1, down_addr) = start(down.clone()).await;
    let up = Double::default();
    let (_g2, up_addr) = start(up.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway_to(
        &[dead, down_addr, up_addr],
        Some(Arc::new(key)),
        id,
        GatewayOptions::default(),
    );
    let contract = gw.network("ch1").contract("cc");
    assert_eq!(
        contract.evaluate_transaction("f", &["x"]).await.unwrap(),
        b"f|x"
    );
    assert_eq!(
        contract.submit_transaction("g", &["y"]).await.unwrap(),
        b"g|y"
    );
    assert_eq!(up.recorded.lock().unwrap().evaluate.len(), 1);
    // The working endpoint stays current: the dead ones are not tried again.
    assert!(down.recorded.lock().unwrap().endorse.is_empty());
}

#[tokio::test]
async fn offline_signing_of_proposal_transaction_and_commit() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    // No signer: every message must be signed elsewhere (an HSM, another machine).
    let gw = gateway_to(&[addr], None, id.clone(), GatewayOptions::default());
    let contract = gw.network("ch1").contract("cc");
    let unsigned = contract
        .new_proposal("issue")
        .string_args(&["L-1"])
        .build()
        .unwrap();
    assert!(matches!(
        unsigned.endorse().await,
        Err(GatewayError::Unsigned(_))
    ));

    let proposal_bytes = unsigned.bytes();
    let digest = unsigned.digest();
    assert_eq!(
        digest,
        sha2::Sha256::digest(&unsigned.signed_proposal().proposal_bytes).to_vec()
    );
    let signature = key.sign(&digest).unwrap();
    let proposal = gw.new_signed_proposal(&proposal_bytes, signature).unwrap();
    assert_eq!(proposal.transaction_id(), unsigned.transaction_id());
    assert_eq!(proposal.channel(), "ch1");

    let tx = proposal.endorse().await.unwrap();
    assert!(matches!(tx.submit().await, Err(GatewayError::Unsigned(_))));
    let tx = gw
        .new_signed_transaction(&tx.bytes(), key.sign(&tx.digest()).unwrap())
        .unwrap();
    assert_eq!(tx.result(), b"issue|L-1");
    let commit = tx.submit().await.unwrap();
    assert!(matches!(
        commit.status().await,
        Err(GatewayError::Unsigned(_))
    ));
    let commit = gw
        .new_signed_commit(&commit.bytes(), key.sign(&commit.digest()).unwrap())
        .unwrap();
    let status = commit.status().await.unwrap();
    assert!(status.successful);
    assert_eq!(status.transaction_id, unsigned.transaction_id());

    // Chaincode events requests are signed offline the same way.
    let req = gw
        .network("ch1")
        .new_chaincode_events_request("cc", &EventsOptions::start_block(0))
        .unwrap();
    assert!(matches!(req.events().await, Err(GatewayError::Unsigned(_))));
    let req = gw
        .new_signed_chaincode_events_request(&req.bytes(), key.sign(&req.digest()).unwrap())
        .unwrap();
    req.events().await.unwrap();
    // And block events requests.
    let req = gw
        .network("ch1")
        .new_block_events_request(BlockEventsKind::Filtered, &EventsOptions::start_block(3))
        .unwrap();
    let req = gw
        .new_signed_block_events_request(
            BlockEventsKind::Filtered,
            &req.bytes(),
            key.sign(&req.digest()).unwrap(),
        )
        .unwrap();
    let mut stream = req.events().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().block_number(), 3);
    // Garbage bytes are refused with a typed error.
    assert!(matches!(
        gw.new_signed_proposal(b"\xff\xff\xff", vec![1]),
        Err(GatewayError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn sha384_hashing_reaches_the_signer() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let seen = Arc::new(Mutex::new(Vec::<usize>::new()));
    let seen2 = seen.clone();
    let public = key.public_key().clone();
    let signer = fabric_client::SignFn(move |digest: &[u8]| {
        seen2.lock().unwrap().push(digest.len());
        key.sign(digest)
    });
    let options = GatewayOptions {
        hash: HashAlgorithm::Sha384,
        ..Default::default()
    };
    let gw = gateway_to(&[addr], Some(Arc::new(signer)), id, options);
    let proposal = gw
        .network("ch1")
        .contract("cc")
        .new_proposal("f")
        .build()
        .unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), &[48]);
    let digest = proposal.digest();
    assert_eq!(digest.len(), 48);
    let mut left = [0u8; 32];
    left.copy_from_slice(&digest[..32]);
    public
        .verify_digest(&left, &proposal.signed_proposal().signature)
        .unwrap();
}

fn event(tx: &str, name: &str) -> peer::ChaincodeEvent {
    peer::ChaincodeEvent {
        chaincode_id: "elicense".into(),
        tx_id: tx.into(),
        event_name: name.into(),
        payload: name.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn chaincode_events_resume_from_a_file_checkpoint_without_loss_or_repeat() {
    let double = Double::default();
    double.behaviour.lock().unwrap().events = vec![
        ChaincodeEventsResponse {
            block_number: 10,
            events: vec![event("t1", "Issued"), event("t2", "Issued")],
        },
        ChaincodeEventsResponse {
            block_number: 11,
            events: vec![event("t3", "Verified")],
        },
        ChaincodeEventsResponse {
            block_number: 12,
            events: vec![event("t4", "Revoked")],
        },
    ];
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway_to(&[addr], Some(Arc::new(key)), id, GatewayOptions::default());
    let network = gw.network("ch1");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events.json");

    // First run: start at block 10, handle two events, then "crash".
    let mut handled = Vec::new();
    {
        let cp = FileCheckpointer::open(&path).unwrap();
        let mut options = EventsOptions::checkpoint(&cp);
        options.start_block = Some(10);
        let mut stream = network
            .chaincode_events("elicense", &options)
            .await
            .unwrap();
        for _ in 0..2 {
            let ev = stream.next().await.unwrap().unwrap();
            handled.push(ev.transaction_id.clone());
            cp.checkpoint_chaincode_event(&ev).unwrap();
        }
    }
    // Second run: the file says block 10 after t2; the stream continues with t3.
    let cp = FileCheckpointer::open(&path).unwrap();
    assert_eq!(
        (cp.block_number(), cp.transaction_id()),
        (10, "t2".to_string())
    );
    let mut options = EventsOptions::checkpoint(&cp);
    options.start_block = Some(0); // a checkpoint with a position wins over the start block
    let mut stream = network
        .chaincode_events("elicense", &options)
        .await
        .unwrap();
    while let Some(ev) = stream.next().await {
        let ev = ev.unwrap();
        handled.push(ev.transaction_id.clone());
        cp.checkpoint_chaincode_event(&ev).unwrap();
    }
    assert_eq!(handled, vec!["t1", "t2", "t3", "t4"]);

    {
        let rec = double.recorded.lock().unwrap();
        let (first, second) = (&rec.events[0], &rec.events[1]);
        assert_eq!(first.chaincode_id, "elicense");
        assert_eq!(first.channel_id, "ch1");
        assert!(matches!(
            first.start_position.as_ref().unwrap().r#type,
            Some(seek_position::Type::Specified(
                fabric_protos::orderer::SeekSpecified { number: 10 }
            ))
        ));
        assert_eq!(first.after_transaction_id, "");
        assert!(matches!(
            second.start_position.as_ref().unwrap().r#type,
            Some(seek_position::Type::Specified(
                fabric_protos::orderer::SeekSpecified { number: 10 }
            ))
        ));
        assert_eq!(second.after_transaction_id, "t2");
    }

    // No options: the stream starts at the next commit.
    let mem = InMemoryCheckpointer::new();
    network
        .chaincode_events("elicense", &EventsOptions::checkpoint(&mem))
        .await
        .unwrap();
    let rec = double.recorded.lock().unwrap();
    assert!(matches!(
        rec.events[2].start_position.as_ref().unwrap().r#type,
        Some(seek_position::Type::NextCommit(_))
    ));
}

#[tokio::test]
async fn block_events_send_a_signed_seek_envelope_and_resume_from_checkpoint() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway_to(&[addr], Some(Arc::new(key)), id, GatewayOptions::default());
    let network = gw.network("ch1");

    let cp = InMemoryCheckpointer::new();
    cp.checkpoint_block(6).unwrap(); // blocks up to 6 handled: resume at 7
    let mut stream = network
        .block_events(BlockEventsKind::Full, &EventsOptions::checkpoint(&cp))
        .await
        .unwrap();
    let mut numbers = Vec::new();
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        assert!(matches!(b, DeliverEvent::Block(_)));
        numbers.push(b.block_number());
        cp.checkpoint_block(b.block_number()).unwrap();
    }
    assert_eq!(numbers, vec![7, 8]);
    assert_eq!(cp.block_number(), 9);

    let mut filtered = network
        .block_events(BlockEventsKind::Filtered, &EventsOptions::start_block(2))
        .await
        .unwrap();
    assert!(
        matches!(filtered.next().await.unwrap().unwrap(), DeliverEvent::Filtered(f) if f.number == 2)
    );
    let mut private = network
        .block_events(BlockEventsKind::WithPrivateData, &EventsOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        private.next().await.unwrap().unwrap(),
        DeliverEvent::WithPrivateData(_)
    ));

    {
        let rec = double.recorded.lock().unwrap();
        let (method, seek, ch) = &rec.deliver[0];
        assert_eq!(method, "full");
        assert_eq!(ch.channel_id, "ch1");
        assert_eq!(ch.r#type, HeaderType::DeliverSeekInfo as i32);
        assert!(matches!(
            seek.start.as_ref().unwrap().r#type,
            Some(seek_position::Type::Specified(
                fabric_protos::orderer::SeekSpecified { number: 7 }
            ))
        ));
        assert!(matches!(
            seek.stop.as_ref().unwrap().r#type,
            Some(seek_position::Type::Specified(
                fabric_protos::orderer::SeekSpecified { number: u64::MAX }
            ))
        ));
        assert_eq!(rec.deliver[1].0, "filtered");
        assert_eq!(rec.deliver[2].0, "private");
        assert!(matches!(
            rec.deliver[2].1.start.as_ref().unwrap().r#type,
            Some(seek_position::Type::NextCommit(_))
        ));
    }

    // A deliver stream that ends with a non-success status surfaces it.
    let mut forbidden = gw
        .network("forbidden")
        .block_events(BlockEventsKind::Full, &EventsOptions::start_block(0))
        .await
        .unwrap();
    forbidden.next().await.unwrap().unwrap();
    forbidden.next().await.unwrap().unwrap();
    let err = forbidden.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err, GatewayError::Deliver { status: 403 }),
        "{err:?}"
    );
    assert!(forbidden.next().await.is_none());
}
