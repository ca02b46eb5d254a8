//! The gateway client against an in-process `gateway.Gateway` + `protos.Deliver` server.
//!
//! The server is a test double for the *transport* only: it checks every signature against the
//! creator in the message (as a peer's gateway does), records what the client sent, and answers
//! with well-formed protocol messages (a prepared envelope built from the proposal as Fabric's
//! gateway builds it, commit statuses, event batches, blocks). The assertions are about what the
//! client sends and how it handles each answer and each error status.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_client::gateway::{
    BlockEventsKind, CallTimeouts, Checkpoint, Checkpointer, Connection, ConnectionOptions,
    DeliverEvent, Endpoint, EventsOptions, FileCheckpointer, Gateway, GatewayError, GatewayOptions,
    InMemoryCheckpointer, TxValidationCode,
};
use fabric_client::{HashAlgorithm, Identity, PrivateKeySigner, Signer};
use fabric_protos::common::{
    self, ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use fabric_protos::gateway::gateway_server::{Gateway as GatewayService, GatewayServer};
use fabric_protos::gateway::*;
use fabric_protos::orderer::{seek_position, SeekInfo};
use fabric_protos::protos::deliver_server::{Deliver, DeliverServer};
use fabric_protos::protos::{self as peer};
use prost::Message;
use sha2::Digest as _;
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status};

// ---------------------------------------------------------------------------------------------
// The double

#[derive(Default)]
struct Behaviour {
    endorse_error: Option<(tonic::Code, String, Vec<ErrorDetail>)>,
    submit_error: Option<tonic::Code>,
    commit_status_error: Option<tonic::Code>,
    commit_code: i32,
    evaluate_delay: Option<Duration>,
    unavailable: bool,
    events: Vec<ChaincodeEventsResponse>,
}

#[derive(Default)]
struct Recorded {
    evaluate: Vec<EvaluateRequest>,
    endorse: Vec<EndorseRequest>,
    submit: Vec<SubmitRequest>,
    commit: Vec<CommitStatusRequest>,
    events: Vec<fabric_protos::gateway::ChaincodeEventsRequest>,
    deliver: Vec<(String, SeekInfo, ChannelHeader)>,
    prepared: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Default)]
struct Double {
    behaviour: Arc<Mutex<Behaviour>>,
    recorded: Arc<Mutex<Recorded>>,
}

fn verify(creator: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Status> {
    let id = fabric_protos::msp::SerializedIdentity::decode(creator)
        .map_err(|e| Status::invalid_argument(format!("creator: {e}")))?;
    let cert = fabric_common::identity::Certificate::from_pem(&id.id_bytes)
        .map_err(|e| Status::invalid_argument(format!("creator certificate: {e}")))?;
    // Fabric verifies SHA-256 ECDSA with low-S; so does the double.
    cert.public_key()
        .verify(message, signature)
        .map_err(|e| Status::permission_denied(format!("bad signature: {e}")))
}

fn check_proposal(
    sp: &peer::SignedProposal,
) -> Result<(Header, ChannelHeader, SignatureHeader), Status> {
    let proposal = peer::Proposal::decode(sp.proposal_bytes.as_slice())
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let header = Header::decode(proposal.header.as_slice())
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let ch = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let sh = SignatureHeader::decode(header.signature_header.as_slice())
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    verify(&sh.creator, &sp.proposal_bytes, &sp.signature)?;
    // Fabric's rule: the transaction ID is hex(SHA-256(nonce ‖ creator)).
    let expect = hex::encode(sha2::Sha256::digest(
        [sh.nonce.as_slice(), sh.creator.as_slice()].concat(),
    ));
    if ch.tx_id != expect {
        return Err(Status::invalid_argument(
            "transaction ID does not match nonce and creator",
        ));
    }
    Ok((header, ch, sh))
}

fn args_of(sp: &peer::SignedProposal) -> (Vec<Vec<u8>>, BTreeMap<String, Vec<u8>>, String) {
    let proposal = peer::Proposal::decode(sp.proposal_bytes.as_slice()).unwrap();
    let payload = peer::ChaincodeProposalPayload::decode(proposal.payload.as_slice()).unwrap();
    let cis = peer::ChaincodeInvocationSpec::decode(payload.input.as_slice()).unwrap();
    let spec = cis.chaincode_spec.unwrap();
    (
        spec.input.unwrap().args,
        payload.transient_map,
        spec.chaincode_id.unwrap().name,
    )
}

/// The chaincode's "result": the function name and arguments joined with '|'.
fn result_for(args: &[Vec<u8>]) -> Vec<u8> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join("|")
        .into_bytes()
}

/// A prepared transaction envelope built from the proposal, as Fabric's gateway assembles it.
fn prepared_envelope(sp: &peer::SignedProposal, header: Header, result: Vec<u8>) -> Envelope {
    let proposal = peer::Proposal::decode(sp.proposal_bytes.as_slice()).unwrap();
    let mut cpp = peer::ChaincodeProposalPayload::decode(proposal.payload.as_slice()).unwrap();
    cpp.transient_map.clear(); // transient data never enters the transaction
    let action = peer::ChaincodeAction {
        response: Some(peer::Response {
            status: 200,
            message: String::new(),
            payload: result,
        }),
        ..Default::default()
    };
    let prp = peer::ProposalResponsePayload {
        proposal_hash: sha2::Sha256::digest(&sp.proposal_bytes).to_vec(),
        extension: action.encode_to_vec(),
    };
    let cap = peer::ChaincodeActionPayload {
        chaincode_proposal_payload: cpp.encode_to_vec(),
        action: Some(peer::ChaincodeEndorsedAction {
            proposal_response_payload: prp.encode_to_vec(),
            endorsements: vec![peer::Endorsement {
                endorser: b"peer0".to_vec(),
                signature: b"endorsement".to_vec(),
            }],
        }),
    };
    let tx = peer::Transaction {
        actions: vec![peer::TransactionAction {
            header: header.signature_header.clone(),
            payload: cap.encode_to_vec(),
        }],
    };
    let payload = Payload {
        header: Some(header),
        data: tx.encode_to_vec(),
    };
    Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    }
}

fn status_with_details(code: tonic::Code, message: &str, details: &[ErrorDetail]) -> Status {
    let rpc = fabric_protos::google::rpc::Status {
        code: code as i32,
        message: message.to_string(),
        details: details
            .iter()
            .map(|d| prost_types::Any {
                type_url: "type.googleapis.com/gateway.ErrorDetail".into(),
                value: d.encode_to_vec(),
            })
            .collect(),
    };
    Status::with_details(code, message, rpc.encode_to_vec().into())
}

#[tonic::async_trait]
impl GatewayService for Double {
    async fn endorse(
        &self,
        request: Request<EndorseRequest>,
    ) -> Result<Response<EndorseResponse>, Status> {
        let req = request.into_inner();
        if self.behaviour.lock().unwrap().unavailable {
            return Err(Status::unavailable("gateway down"));
        }
        let sp = req
            .proposed_transaction
            .clone()
            .ok_or_else(|| Status::invalid_argument("no proposal"))?;
        let (header, ch, _) = check_proposal(&sp)?;
        if ch.tx_id != req.transaction_id || ch.channel_id != req.channel_id {
            return Err(Status::invalid_argument("request does not match proposal"));
        }
        self.recorded.lock().unwrap().endorse.push(req.clone());
        if let Some((code, msg, details)) = self.behaviour.lock().unwrap().endorse_error.clone() {
            return Err(status_with_details(code, &msg, &details));
        }
        let (args, _, _) = args_of(&sp);
        let env = prepared_envelope(&sp, header, result_for(&args));
        self.recorded
            .lock()
            .unwrap()
            .prepared
            .insert(req.transaction_id.clone(), env.payload.clone());
        Ok(Response::new(EndorseResponse {
            prepared_transaction: Some(env),
        }))
    }

    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let req = request.into_inner();
        let env = req
            .prepared_transaction
            .clone()
            .ok_or_else(|| Status::invalid_argument("no envelope"))?;
        let payload = Payload::decode(env.payload.as_slice())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let sh =
            SignatureHeader::decode(payload.header.unwrap().signature_header.as_slice()).unwrap();
        verify(&sh.creator, &env.payload, &env.signature)?;
        let mut rec = self.recorded.lock().unwrap();
        if rec.prepared.get(&req.transaction_id) != Some(&env.payload) {
            return Err(Status::invalid_argument(
                "envelope differs from the prepared transaction",
            ));
        }
        rec.submit.push(req);
        drop(rec);
        if let Some(code) = self.behaviour.lock().unwrap().submit_error {
            return Err(status_with_details(
                code,
                "failed to submit",
                &[ErrorDetail {
                    address: "orderer0:7050".into(),
                    msp_id: "OrdererMSP".into(),
                    message: "SERVICE_UNAVAILABLE".into(),
                }],
            ));
        }
        Ok(Response::new(SubmitResponse {}))
    }

    async fn commit_status(
        &self,
        request: Request<SignedCommitStatusRequest>,
    ) -> Result<Response<CommitStatusResponse>, Status> {
        let signed = request.into_inner();
        let req = CommitStatusRequest::decode(signed.request.as_slice())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        verify(&req.identity, &signed.request, &signed.signature)?;
        self.recorded.lock().unwrap().commit.push(req);
        let b = self.behaviour.lock().unwrap();
        if let Some(code) = b.commit_status_error {
            return Err(Status::new(code, "commit status unavailable"));
        }
        Ok(Response::new(CommitStatusResponse {
            result: b.commit_code,
            block_number: 42,
        }))
    }

    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let req = request.into_inner();
        let (delay, unavailable) = {
            let b = self.behaviour.lock().unwrap();
            (b.evaluate_delay, b.unavailable)
        };
        if unavailable {
            return Err(Status::unavailable("gateway down"));
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let sp = req
            .proposed_transaction
            .clone()
            .ok_or_else(|| Status::invalid_argument("no proposal"))?;
        check_proposal(&sp)?;
        let (args, _, _) = args_of(&sp);
        self.recorded.lock().unwrap().evaluate.push(req);
        Ok(Response::new(EvaluateResponse {
            result: Some(peer::Response {
                status: 200,
                message: String::new(),
                payload: result_for(&args),
            }),
        }))
    }

    type ChaincodeEventsStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<ChaincodeEventsResponse, Status>>>;

    async fn chaincode_events(
        &self,
        request: Request<SignedChaincodeEventsRequest>,
    ) -> Result<Response<Self::ChaincodeEventsStream>, Status> {
        let signed = request.into_inner();
        let req = fabric_protos::gateway::ChaincodeEventsRequest::decode(signed.request.as_slice())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        verify(&req.identity, &signed.request, &signed.signature)?;
        // The gateway's own semantics: start at the block, skip up to and including the
        // transaction to resume after.
        let start = match req.start_position.as_ref().and_then(|p| p.r#type.as_ref()) {
            Some(seek_position::Type::Specified(s)) => s.number,
            _ => 0,
        };
        let mut out = Vec::new();
        for resp in self
            .behaviour
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|r| r.block_number >= start)
        {
            let mut resp = resp.clone();
            if resp.block_number == start && !req.after_transaction_id.is_empty() {
                if let Some(i) = resp
                    .events
                    .iter()
                    .position(|e| e.tx_id == req.after_transaction_id)
                {
                    resp.events.drain(..=i);
                }
            }
            if !resp.events.is_empty() {
                out.push(Ok(resp));
            }
        }
        self.recorded.lock().unwrap().events.push(req);
        Ok(Response::new(tokio_stream::iter(out)))
    }
}

type DeliverStream = tokio_stream::Iter<std::vec::IntoIter<Result<peer::DeliverResponse, Status>>>;

impl Double {
    async fn deliver_common(
        &self,
        method: &str,
        request: Request<tonic::Streaming<Envelope>>,
    ) -> Result<Response<DeliverStream>, Status> {
        let mut stream = request.into_inner();
        let env = stream
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("no envelope"))??;
        let payload = Payload::decode(env.payload.as_slice())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let header = payload.header.unwrap();
        let ch = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
        let sh = SignatureHeader::decode(header.signature_header.as_slice()).unwrap();
        verify(&sh.creator, &env.payload, &env.signature)?;
        if ch.r#type != HeaderType::DeliverSeekInfo as i32 {
            return Err(Status::invalid_argument("not a DELIVER_SEEK_INFO envelope"));
        }
        let seek = SeekInfo::decode(payload.data.as_slice()).unwrap();
        let start = match seek.start.as_ref().and_then(|p| p.r#type.as_ref()) {
            Some(seek_position::Type::Specified(s)) => s.number,
            _ => 5,
        };
        self.recorded
            .lock()
            .unwrap()
            .deliver
            .push((method.to_string(), seek, ch.clone()));
        let mut out = Vec::new();
        for n in start..start + 2 {
            let header = Some(common::BlockHeader {
                number: n,
                ..Default::default()
            });
            let r#type = match method {
                "full" => peer::deliver_response::Type::Block(common::Block {
                    header,
                    ..Default::default()
                }),
                "filtered" => peer::deliver_response::Type::FilteredBlock(peer::FilteredBlock {
                    channel_id: ch.channel_id.clone(),
                    number: n,
                    filtered_transactions: vec![],
                }),
                _ => peer::deliver_response::Type::BlockAndPrivateData(peer::BlockAndPrivateData {
                    block: Some(common::Block {
                        header,
                        ..Default::default()
                    }),
                    private_data_map: Default::default(),
                }),
            };
            out.push(Ok(peer::DeliverResponse {
                r#type: Some(r#type),
            }));
        }
        // A peer ends a bounded read with a status; FORBIDDEN shows how errors surface.
        let status = if ch.channel_id == "forbidden" {
            common::Status::Forbidden
        } else {
            common::Status::Success
        };
        out.push(Ok(peer::DeliverResponse {
            r#type: Some(peer::deliver_response::Type::Status(status as i32)),
        }));
        Ok(Response::new(tokio_stream::iter(out)))
    }
}

#[tonic::async_trait]
impl Deliver for Double {
    type DeliverStream = DeliverStream;
    type DeliverFilteredStream = DeliverStream;
    type DeliverWithPrivateDataStream = DeliverStream;

    async fn deliver(
        &self,
        request: Request<tonic::Streaming<Envelope>>,
    ) -> Result<Response<DeliverStream>, Status> {
        self.deliver_common("full", request).await
    }
    async fn deliver_filtered(
        &self,
        request: Request<tonic::Streaming<Envelope>>,
    ) -> Result<Response<DeliverStream>, Status> {
        self.deliver_common("filtered", request).await
    }
    async fn deliver_with_private_data(
        &self,
        request: Request<tonic::Streaming<Envelope>>,
    ) -> Result<Response<DeliverStream>, Status> {
        self.deliver_common("private", request).await
    }
}

/// Stops the server when dropped.
struct ServerGuard(tokio::task::JoinHandle<()>);
impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn start(double: Double) -> (ServerGuard, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(GatewayServer::new(double.clone()))
            .add_service(DeliverServer::new(double))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (ServerGuard(handle), addr)
}

fn client_identity() -> (Identity, PrivateKeySigner) {
    let key = PrivateKeySigner::generate();
    let kp = rcgen::KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "clerk1");
    let cert = params.self_signed(&kp).unwrap().pem();
    (Identity::new("Org1MSP", cert.into_bytes()).unwrap(), key)
}

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

// ---------------------------------------------------------------------------------------------
// Tests

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

    // No options: the stream starts at the next commit.
    drop(rec);
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
