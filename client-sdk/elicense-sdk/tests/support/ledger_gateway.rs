//! A `gateway.Gateway` gRPC server whose "peer" runs the licence contract on the shim's
//! `MockLedger`: Endorse simulates the proposal (creator, arguments, transient data and timestamp
//! taken from the signed proposal) and keeps its writes pending; Submit checks the client's
//! envelope signature and commits them; CommitStatus reports the validation code and block.
//! Chaincode failures come back as Fabric's Gateway shapes them: a status whose
//! `gateway.ErrorDetail` carries `chaincode response 500, <message>`.
//!
//! It can be told to invalidate the next N submits with `MVCC_READ_CONFLICT` (their writes are
//! discarded, as a committing peer discards an invalid transaction's writes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use elicense_chaincode::{router, Settings};
use fabric_chaincode::contract::Router;
use fabric_chaincode::mock::{MockLedger, MockStub};
use fabric_chaincode::Chaincode as _;
use fabric_client::gateway::{Connection, ConnectionOptions, Endpoint, GatewayOptions};
use fabric_client::Gateway;
use fabric_common::crypto::SigningKey;
use fabric_common::identity::Identity as CommonIdentity;
use fabric_common::tx::{
    create_proposal_response, create_tx_payload, ChaincodeResult, UnpackedProposal,
};
use fabric_protos::common::{Envelope, Payload, SignatureHeader};
use fabric_protos::gateway::gateway_server::{Gateway as GatewayService, GatewayServer};
use fabric_protos::gateway::*;
use fabric_protos::protos::{self as peer, ChaincodeId, TxValidationCode};
use prost::Message;
use tonic::{Request, Response, Status};

use super::{Users, CHANNEL};

/// The peer's address and organisation as reported in error details.
pub const PEER_ADDRESS: &str = "peer0.police.elicense.gov:7051";
/// The peer's MSP ID.
pub const PEER_MSP: &str = "PublicSecurityMSP";

struct Pending {
    stub: MockStub,
    payload: Vec<u8>,
}

/// The shared state of the server.
pub struct LedgerGateway {
    /// The ledger.
    pub ledger: MockLedger,
    cc: Router<MockStub>,
    endorser: Vec<u8>,
    endorser_key: SigningKey,
    pending: Mutex<HashMap<String, Pending>>,
    committed: Mutex<HashMap<String, (TxValidationCode, u64)>>,
    block: AtomicU64,
    /// Submits still to be invalidated with `MVCC_READ_CONFLICT`.
    pub conflicts_to_inject: AtomicU32,
    /// (function, endorsing/target organisations) of every endorse and evaluate.
    pub routed: Mutex<Vec<(String, Vec<String>)>>,
    events: Mutex<Vec<(u64, peer::ChaincodeEvent)>>,
}

#[derive(Clone)]
struct Service(Arc<LedgerGateway>);

fn bad(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

fn status_with_details(code: tonic::Code, message: &str, detail: &str) -> Status {
    let rpc = fabric_protos::google::rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details: vec![prost_types_any(ErrorDetail {
            address: PEER_ADDRESS.into(),
            msp_id: PEER_MSP.into(),
            message: detail.to_owned(),
        })],
    };
    Status::with_details(code, message, rpc.encode_to_vec().into())
}

fn prost_types_any(d: ErrorDetail) -> prost_types::Any {
    prost_types::Any {
        type_url: "type.googleapis.com/gateway.ErrorDetail".into(),
        value: d.encode_to_vec(),
    }
}

impl LedgerGateway {
    fn new() -> Self {
        let endorser_key = SigningKey::generate();
        let kp = rcgen::KeyPair::from_pem(&endorser_key.to_pkcs8_pem()).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "peer0.police.elicense.gov");
        let cert = params.self_signed(&kp).unwrap().pem();
        let endorser = CommonIdentity::new(PEER_MSP, cert.as_bytes())
            .unwrap()
            .serialized()
            .to_vec();
        LedgerGateway {
            ledger: MockLedger::with_namespace(CHANNEL, "elicense"),
            cc: router(Settings::default()),
            endorser,
            endorser_key,
            pending: Mutex::new(HashMap::new()),
            committed: Mutex::new(HashMap::new()),
            block: AtomicU64::new(0),
            conflicts_to_inject: AtomicU32::new(0),
            routed: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Runs a signed proposal on the contract; returns the unpacked proposal, the pending stub
    /// and the chaincode's response.
    async fn simulate(
        &self,
        signed: &peer::SignedProposal,
        orgs: &[String],
    ) -> Result<(UnpackedProposal, MockStub, fabric_chaincode::Response), Status> {
        let up = UnpackedProposal::from_signed(signed).map_err(bad)?;
        let creator = &up.signature_header.creator;
        CommonIdentity::from_serialized(creator)
            .map_err(bad)?
            .verify(&signed.proposal_bytes, &signed.signature)
            .map_err(|e| Status::permission_denied(format!("bad proposal signature: {e}")))?;
        if up.channel_header.channel_id != CHANNEL {
            return Err(Status::not_found(format!(
                "channel {} not found",
                up.channel_header.channel_id
            )));
        }
        let function =
            String::from_utf8_lossy(up.args().first().map_or(&[][..], |a| a)).into_owned();
        self.routed.lock().unwrap().push((function, orgs.to_vec()));
        let ts = up.channel_header.timestamp.unwrap_or_default();
        let stub = self
            .ledger
            .stub(&up.channel_header.tx_id)
            .args(up.args().to_vec())
            .creator(creator.clone())
            .transient_map(up.payload.transient_map.clone().into_iter().collect())
            .timestamp(ts.seconds, ts.nanos)
            .build();
        let response = self.cc.invoke(stub.clone()).await;
        Ok((up, stub, response))
    }
}

#[tonic::async_trait]
impl GatewayService for Service {
    async fn endorse(
        &self,
        request: Request<EndorseRequest>,
    ) -> Result<Response<EndorseResponse>, Status> {
        let req = request.into_inner();
        let signed = req.proposed_transaction.ok_or_else(|| bad("no proposal"))?;
        let (up, stub, response) = self
            .0
            .simulate(&signed, &req.endorsing_organizations)
            .await?;
        if !response.is_ok() {
            stub.rollback();
            return Err(status_with_details(
                tonic::Code::Aborted,
                "failed to endorse transaction, see attached details for more info",
                &format!(
                    "chaincode response {}, {}",
                    response.status, response.message
                ),
            ));
        }
        let result = ChaincodeResult {
            response: peer::Response {
                status: response.status,
                message: response.message,
                payload: response.payload,
            },
            results: Vec::new(),
            events: Vec::new(),
            chaincode_id: ChaincodeId {
                name: "elicense".into(),
                ..Default::default()
            },
        };
        let pr = create_proposal_response(&up, &result, &self.0.endorser, &self.0.endorser_key)
            .map_err(bad)?;
        let payload =
            create_tx_payload(&up.proposal, &up.signature_header.creator, &[pr]).map_err(bad)?;
        self.0.pending.lock().unwrap().insert(
            req.transaction_id.clone(),
            Pending {
                stub,
                payload: payload.clone(),
            },
        );
        Ok(Response::new(EndorseResponse {
            prepared_transaction: Some(Envelope {
                payload,
                signature: Vec::new(),
            }),
        }))
    }

    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let req = request.into_inner();
        let env = req.prepared_transaction.ok_or_else(|| bad("no envelope"))?;
        let payload = Payload::decode(env.payload.as_slice()).map_err(bad)?;
        let sh = SignatureHeader::decode(
            payload
                .header
                .ok_or_else(|| bad("no header"))?
                .signature_header
                .as_slice(),
        )
        .map_err(bad)?;
        CommonIdentity::from_serialized(&sh.creator)
            .map_err(bad)?
            .verify(&env.payload, &env.signature)
            .map_err(|e| Status::permission_denied(format!("bad envelope signature: {e}")))?;
        let pending = self
            .0
            .pending
            .lock()
            .unwrap()
            .remove(&req.transaction_id)
            .ok_or_else(|| bad("unknown transaction"))?;
        if pending.payload != env.payload {
            return Err(bad("envelope differs from the endorsed transaction"));
        }
        let block = self.0.block.fetch_add(1, Ordering::SeqCst) + 1;
        let inject = self
            .0
            .conflicts_to_inject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let code = if inject {
            pending.stub.rollback();
            TxValidationCode::MvccReadConflict
        } else {
            let record = pending.stub.commit().map_err(bad)?;
            if let Some(e) = record.event {
                self.0.events.lock().unwrap().push((
                    block,
                    peer::ChaincodeEvent {
                        chaincode_id: "elicense".into(),
                        tx_id: req.transaction_id.clone(),
                        event_name: e.event_name,
                        payload: e.payload,
                    },
                ));
            }
            TxValidationCode::Valid
        };
        self.0
            .committed
            .lock()
            .unwrap()
            .insert(req.transaction_id, (code, block));
        Ok(Response::new(SubmitResponse {}))
    }

    async fn commit_status(
        &self,
        request: Request<SignedCommitStatusRequest>,
    ) -> Result<Response<CommitStatusResponse>, Status> {
        let signed = request.into_inner();
        let req = CommitStatusRequest::decode(signed.request.as_slice()).map_err(bad)?;
        CommonIdentity::from_serialized(&req.identity)
            .map_err(bad)?
            .verify(&signed.request, &signed.signature)
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        let (code, block) = *self
            .0
            .committed
            .lock()
            .unwrap()
            .get(&req.transaction_id)
            .ok_or_else(|| Status::not_found("transaction not committed"))?;
        Ok(Response::new(CommitStatusResponse {
            result: code as i32,
            block_number: block,
        }))
    }

    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let req = request.into_inner();
        let signed = req.proposed_transaction.ok_or_else(|| bad("no proposal"))?;
        let (_, stub, response) = self.0.simulate(&signed, &req.target_organizations).await?;
        stub.rollback();
        if !response.is_ok() {
            return Err(status_with_details(
                tonic::Code::Unknown,
                &format!(
                    "evaluate call to endorser returned error: chaincode response {}, {}",
                    response.status, response.message
                ),
                &format!(
                    "chaincode response {}, {}",
                    response.status, response.message
                ),
            ));
        }
        Ok(Response::new(EvaluateResponse {
            result: Some(peer::Response {
                status: response.status,
                message: response.message,
                payload: response.payload,
            }),
        }))
    }

    type ChaincodeEventsStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<ChaincodeEventsResponse, Status>>>;

    /// Every committed event from the start block on, one response per block; the stream then
    /// ends (a real Gateway keeps it open for blocks to come).
    async fn chaincode_events(
        &self,
        request: Request<SignedChaincodeEventsRequest>,
    ) -> Result<Response<Self::ChaincodeEventsStream>, Status> {
        let signed = request.into_inner();
        let req = ChaincodeEventsRequest::decode(signed.request.as_slice()).map_err(bad)?;
        CommonIdentity::from_serialized(&req.identity)
            .map_err(bad)?
            .verify(&signed.request, &signed.signature)
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        let start = match req.start_position.and_then(|p| p.r#type) {
            Some(fabric_protos::orderer::seek_position::Type::Specified(s)) => s.number,
            _ => 0,
        };
        let mut by_block: Vec<ChaincodeEventsResponse> = Vec::new();
        for (block, event) in self.0.events.lock().unwrap().iter() {
            if *block < start {
                continue;
            }
            match by_block.last_mut() {
                Some(r) if r.block_number == *block => r.events.push(event.clone()),
                _ => by_block.push(ChaincodeEventsResponse {
                    events: vec![event.clone()],
                    block_number: *block,
                }),
            }
        }
        Ok(Response::new(tokio_stream::iter(
            by_block.into_iter().map(Ok).collect::<Vec<_>>(),
        )))
    }
}

/// A running server; stopped when dropped.
pub struct Running {
    /// The shared state.
    pub state: Arc<LedgerGateway>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every test user.
    pub users: Users,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    /// Starts a server on a free 127.0.0.1 port.
    pub async fn start() -> Self {
        let state = Arc::new(LedgerGateway::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = Service(Arc::clone(&state));
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(GatewayServer::new(service))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        Running {
            state,
            addr,
            users: Users::new(),
            task,
        }
    }

    /// A Gateway connection for user `who`.
    pub fn gateway(&self, who: &str) -> Gateway {
        let connection = Connection::new(
            vec![Endpoint::new(format!("http://{}", self.addr))],
            &ConnectionOptions::default(),
        )
        .unwrap();
        let user = self.users.get(who);
        Gateway::new(
            connection,
            user.identity.clone(),
            Some(self.users.signer(who)),
            GatewayOptions::default(),
        )
    }

    /// A licence client for user `who` on [`CHANNEL`].
    pub fn client(&self, who: &str) -> elicense_sdk::LicenceClient {
        elicense_sdk::LicenceClient::new(
            self.gateway(who)
                .network(CHANNEL)
                .contract(elicense_sdk::CHAINCODE_NAME),
        )
    }
}
