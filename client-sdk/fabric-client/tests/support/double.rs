//! An in-process `gateway.Gateway` + `protos.Deliver` server for tests and benchmarks: it checks
//! every signature against the creator in the message (as a peer's gateway does), records what the
//! client sent, and answers with well-formed protocol messages.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_client::{Identity, PrivateKeySigner};
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

#[derive(Default)]
pub struct Behaviour {
    pub endorse_error: Option<(tonic::Code, String, Vec<ErrorDetail>)>,
    pub submit_error: Option<tonic::Code>,
    pub commit_status_error: Option<tonic::Code>,
    pub commit_code: i32,
    pub evaluate_delay: Option<Duration>,
    pub endorse_delay: Option<Duration>,
    pub submit_delay: Option<Duration>,
    pub commit_status_delay: Option<Duration>,
    pub unavailable: bool,
    pub events: Vec<ChaincodeEventsResponse>,
}

#[derive(Default)]
pub struct Recorded {
    pub evaluate: Vec<EvaluateRequest>,
    pub endorse: Vec<EndorseRequest>,
    pub submit: Vec<SubmitRequest>,
    pub commit: Vec<CommitStatusRequest>,
    pub events: Vec<fabric_protos::gateway::ChaincodeEventsRequest>,
    pub deliver: Vec<(String, SeekInfo, ChannelHeader)>,
    pub prepared: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Default)]
pub struct Double {
    pub behaviour: Arc<Mutex<Behaviour>>,
    pub recorded: Arc<Mutex<Recorded>>,
}

pub fn verify(creator: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Status> {
    let id = fabric_protos::msp::SerializedIdentity::decode(creator)
        .map_err(|e| Status::invalid_argument(format!("creator: {e}")))?;
    let cert = fabric_common::identity::Certificate::from_pem(&id.id_bytes)
        .map_err(|e| Status::invalid_argument(format!("creator certificate: {e}")))?;
    // Fabric verifies SHA-256 ECDSA with low-S; so does the double.
    cert.public_key()
        .verify(message, signature)
        .map_err(|e| Status::permission_denied(format!("bad signature: {e}")))
}

pub fn check_proposal(
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

pub fn args_of(sp: &peer::SignedProposal) -> (Vec<Vec<u8>>, BTreeMap<String, Vec<u8>>, String) {
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
pub fn result_for(args: &[Vec<u8>]) -> Vec<u8> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join("|")
        .into_bytes()
}

/// A prepared transaction envelope built from the proposal, as Fabric's gateway assembles it.
pub fn prepared_envelope(sp: &peer::SignedProposal, header: Header, result: Vec<u8>) -> Envelope {
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

pub fn status_with_details(code: tonic::Code, message: &str, details: &[ErrorDetail]) -> Status {
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
        let (delay, unavailable) = {
            let b = self.behaviour.lock().unwrap();
            (b.endorse_delay, b.unavailable)
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
        let delay = self.behaviour.lock().unwrap().submit_delay;
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
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
        let delay = self.behaviour.lock().unwrap().commit_status_delay;
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
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
pub struct ServerGuard(pub tokio::task::JoinHandle<()>);
impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn start(double: Double) -> (ServerGuard, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(GatewayServer::new(double.clone()))
            .add_service(DeliverServer::new(double))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            )
            .await
            .unwrap();
    });
    (ServerGuard(handle), addr)
}

/// Serves the double over TLS with `server` (certificate and key PEM), requiring a client
/// certificate issued by `client_ca` when it is given.
pub async fn start_tls(
    double: Double,
    server: (String, String),
    client_ca: Option<String>,
) -> (ServerGuard, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(server.0, server.1));
    if let Some(ca) = client_ca {
        tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(ca));
    }
    let handle = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(GatewayServer::new(double.clone()))
            .add_service(DeliverServer::new(double))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (ServerGuard(handle), addr)
}

/// A CA and certificates it issues, for TLS tests.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate (PEM).
    pub cert_pem: String,
}

impl TestCa {
    /// A fresh self-signed CA.
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `names` with the given extended key usage; (cert, key) PEM.
    pub fn issue(&self, names: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

pub fn client_identity() -> (Identity, PrivateKeySigner) {
    let key = PrivateKeySigner::generate();
    let kp = rcgen::KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "clerk1");
    let cert = params.self_signed(&kp).unwrap().pem();
    (Identity::new("Org1MSP", cert.into_bytes()).unwrap(), key)
}
