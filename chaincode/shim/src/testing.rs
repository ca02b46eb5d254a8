//! A test peer: the peer's side of the chaincode stream, in memory, for driving a chaincode
//! server over real gRPC in tests and benchmarks.
//!
//! [`TestPeer::connect`] dials a chaincode server as a Fabric peer does for CCaaS, expects
//! REGISTER, answers REGISTERED and READY (offering write batching and multi-key reads as
//! configured), and then serves the chaincode's requests — state, ranges with pagination and
//! QUERY_STATE_NEXT/CLOSE, history, private data and hashes, key metadata, write batches — from an
//! in-memory ledger with Fabric's rules (a transaction reads committed state; batches of 100
//! results; paginated bookmarks as LevelDB's; rich queries refused as on LevelDB; private data
//! refused in Init; private-data and paginated queries only in transactions that do not write;
//! purges of private keys only). INVOKE_CHAINCODE reaches chaincodes registered with
//! [`TestPeer::register_chaincode`], named as Fabric parses them (`name[:version][/channel]`).
//! [`TestPeer::invoke`] sends a TRANSACTION with a real `SignedProposal`
//! and, when the chaincode answers 200 and the transaction asks for it, commits its writes.
//!
//! ```no_run
//! # async fn demo(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use fabric_chaincode::testing::{TestPeer, TestPeerConfig, TestTx};
//! let peer = TestPeer::connect(&format!("http://{addr}"), TestPeerConfig::default()).await?;
//! let out = peer.invoke(TestTx::new("mychannel", ["Put", "k", "v"]).commit(true)).await?;
//! assert_eq!(out.response().unwrap().status, 200);
//! assert_eq!(peer.state("k"), Some(b"v".to_vec()));
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fabric_protos::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use fabric_protos::msp::SerializedIdentity;
use fabric_protos::protos::chaincode_client::ChaincodeClient;
use fabric_protos::protos::chaincode_message::Type as MsgType;
use fabric_protos::protos::write_record::Type as WriteType;
use fabric_protos::protos::{self as pb, ChaincodeMessage};
use fabric_protos::queryresult;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::transport::{ClientTlsConfig, Endpoint};

use crate::handler::{type_name, PeerCapabilities};
use crate::mock::MOCK_EPOCH_SECONDS;
use crate::server::MAX_MESSAGE_SIZE;
use crate::types::{ChaincodeEvent, Response, Timestamp, TransientMap};

/// Errors of the test peer.
#[derive(Debug, thiserror::Error)]
pub enum TestPeerError {
    /// Dialling or the stream failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The chaincode broke the handshake.
    #[error("handshake: {0}")]
    Handshake(String),
    /// The chaincode did not answer in time.
    #[error("transaction {0} timed out")]
    Timeout(String),
    /// The stream closed while a transaction was in flight.
    #[error("the chaincode stream closed")]
    Closed,
    /// A transaction with that channel and ID is already in flight on this peer.
    #[error("transaction {0} is already in flight")]
    Duplicate(String),
}

/// How the test peer behaves.
#[derive(Debug, Clone)]
pub struct TestPeerConfig {
    /// What READY offers (`ChaincodeAdditionalParams`); default offers nothing (classic protocol).
    pub capabilities: PeerCapabilities,
    /// Results per QueryResponse batch (Fabric: 100).
    pub query_batch_size: usize,
    /// Results per query in total (Fabric's `totalQueryLimit`: 100000).
    pub total_query_limit: usize,
    /// HTTP/2 keepalive ping interval towards the chaincode (Fabric peers: 60 s).
    pub keepalive_interval: Option<Duration>,
    /// How long a keepalive ping may go unanswered before the connection is dropped (Fabric
    /// peers: 20 s).
    pub keepalive_timeout: Duration,
    /// How long [`TestPeer::invoke`] waits for COMPLETED.
    pub timeout: Duration,
    /// The namespace reported in query results (the chaincode name).
    pub chaincode_name: String,
    /// TLS towards the chaincode server, if it serves TLS.
    pub tls: Option<ClientTlsConfig>,
    /// Private data collections this peer is not a member of: it holds only the hashes, and a
    /// read of a value that exists fails as on a Fabric peer ("private data matching public
    /// hash version is not available").
    pub hash_only_collections: Vec<String>,
}

impl Default for TestPeerConfig {
    fn default() -> Self {
        TestPeerConfig {
            capabilities: PeerCapabilities::default(),
            query_batch_size: 100,
            total_query_limit: 100_000,
            keepalive_interval: Some(Duration::from_secs(60)),
            keepalive_timeout: Duration::from_secs(20),
            timeout: Duration::from_secs(30),
            chaincode_name: "elicense".to_owned(),
            tls: None,
            hash_only_collections: Vec::new(),
        }
    }
}

impl TestPeerConfig {
    /// Offers write batching and multi-key reads with the given sizes, as a Fabric v3 peer can.
    pub fn with_batching(mut self, max_write_batch: u32, max_get_multiple: u32) -> Self {
        self.capabilities = PeerCapabilities {
            use_write_batch: true,
            max_size_write_batch: max_write_batch,
            use_get_multiple_keys: true,
            max_size_get_multiple_keys: max_get_multiple,
        };
        self
    }
}

/// One transaction to send.
#[derive(Debug, Clone)]
pub struct TestTx {
    channel_id: String,
    tx_id: Option<String>,
    args: Vec<Vec<u8>>,
    creator: Vec<u8>,
    transient: TransientMap,
    timestamp: Option<Timestamp>,
    init: bool,
    commit: bool,
}

impl TestTx {
    /// A transaction on `channel_id` with `args` (function name first). Not committed unless
    /// [`commit`](Self::commit) is set.
    pub fn new<I, A>(channel_id: &str, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        TestTx {
            channel_id: channel_id.to_owned(),
            tx_id: None,
            args: args.into_iter().map(Into::into).collect(),
            creator: SerializedIdentity {
                mspid: "Org1MSP".to_owned(),
                id_bytes: Vec::new(),
            }
            .encode_to_vec(),
            transient: TransientMap::new(),
            timestamp: None,
            init: false,
            commit: false,
        }
    }

    /// Uses this transaction ID instead of Fabric's `hex(SHA-256(nonce ‖ creator))`.
    pub fn tx_id(mut self, tx_id: &str) -> Self {
        self.tx_id = Some(tx_id.to_owned());
        self
    }

    /// Sets the creator (a serialized `msp.SerializedIdentity`).
    pub fn creator(mut self, creator: impl Into<Vec<u8>>) -> Self {
        self.creator = creator.into();
        self
    }

    /// Adds a transient entry.
    pub fn transient(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.transient.insert(name.to_owned(), value.into());
        self
    }

    /// Sets the channel header timestamp.
    pub fn timestamp(mut self, seconds: i64, nanos: i32) -> Self {
        self.timestamp = Some(Timestamp { seconds, nanos });
        self
    }

    /// Sends INIT instead of TRANSACTION.
    pub fn init(mut self, init: bool) -> Self {
        self.init = init;
        self
    }

    /// Commits the writes when the chaincode answers with status < 400.
    pub fn commit(mut self, commit: bool) -> Self {
        self.commit = commit;
        self
    }
}

/// What a transaction did, as the peer saw it.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    /// The transaction ID.
    pub tx_id: String,
    /// The chaincode's final message: COMPLETED or ERROR.
    pub message: ChaincodeMessage,
    /// Public writes (`None` deletes), in key order.
    pub writes: Vec<(String, Option<Vec<u8>>)>,
    /// Private writes: (collection, key, value or `None`).
    pub private_writes: Vec<(String, String, Option<Vec<u8>>)>,
    /// Private keys purged (PURGE_PRIVATE_DATA), as (collection, key); each also appears in
    /// `private_writes` with `None`, since a purge deletes the value as well as its history.
    pub private_purges: Vec<(String, String)>,
    /// Metadata writes: (collection, key, metakey, value).
    pub metadata_writes: Vec<(String, String, String, Vec<u8>)>,
    /// Whether the writes were committed.
    pub committed: bool,
}

impl TxOutcome {
    /// The decoded `Response` of a COMPLETED message.
    pub fn response(&self) -> Option<Response> {
        if self.message.r#type != MsgType::Completed as i32 {
            return None;
        }
        let r = pb::Response::decode(self.message.payload.as_slice()).ok()?;
        Some(Response {
            status: r.status,
            message: r.message,
            payload: r.payload,
        })
    }

    /// The text of an ERROR message.
    pub fn error(&self) -> Option<String> {
        (self.message.r#type == MsgType::Error as i32)
            .then(|| String::from_utf8_lossy(&self.message.payload).into_owned())
    }

    /// The chaincode event carried by COMPLETED.
    pub fn event(&self) -> Option<ChaincodeEvent> {
        self.message
            .chaincode_event
            .as_ref()
            .map(|e| ChaincodeEvent {
                event_name: e.event_name.clone(),
                payload: e.payload.clone(),
            })
    }
}

#[derive(Default, Clone)]
struct Entry {
    value: Vec<u8>,
    metadata: BTreeMap<String, Vec<u8>>,
}

#[derive(Default)]
struct Ledger {
    public: BTreeMap<String, Entry>,
    private: BTreeMap<String, BTreeMap<String, Entry>>,
    history: HashMap<String, Vec<queryresult::KeyModification>>,
}

struct QueryIter {
    results: VecDeque<Vec<u8>>,
    returned: usize,
    limit: usize,
    paginated: bool,
    bookmark: String,
}

type PrivateKey = (String, String);

struct Simulation {
    init: bool,
    timestamp: Timestamp,
    writes: BTreeMap<String, Option<Vec<u8>>>,
    private_writes: BTreeMap<PrivateKey, Option<Vec<u8>>>,
    /// Keys whose last private write is a purge.
    purges: BTreeSet<PrivateKey>,
    metadata: BTreeMap<(String, String, String), Vec<u8>>,
    iterators: HashMap<String, QueryIter>,
    done: Option<oneshot::Sender<ChaincodeMessage>>,
    /// Fabric's transaction simulator refuses private-data queries and paginated queries once a
    /// write was made, and writes once such a query was made: these record what happened.
    write_performed: bool,
    private_query_performed: bool,
    paginated_query_performed: bool,
}

type OtherChaincode = Arc<dyn Fn(&[Vec<u8>]) -> Response + Send + Sync>;

/// One chaincode-to-chaincode call the peer routed (INVOKE_CHAINCODE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeCall {
    /// The calling transaction's ID.
    pub tx_id: String,
    /// The channel the called chaincode ran on: the caller's unless the name carried one.
    pub channel_id: String,
    /// The called chaincode's name, without version or channel.
    pub chaincode_name: String,
    /// The arguments, function name first.
    pub args: Vec<Vec<u8>>,
}

struct Shared {
    config: TestPeerConfig,
    ledger: Mutex<Ledger>,
    sims: Mutex<HashMap<(String, String), Simulation>>,
    requests: Mutex<HashMap<i32, u64>>,
    others: Mutex<HashMap<String, OtherChaincode>>,
    calls: Mutex<Vec<ChaincodeCall>>,
    unrouted: mpsc::UnboundedSender<ChaincodeMessage>,
    next_iter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The peer side of one chaincode connection.
pub struct TestPeer {
    shared: Arc<Shared>,
    out: mpsc::Sender<ChaincodeMessage>,
    reader: tokio::task::JoinHandle<()>,
    registered_name: String,
    unrouted: tokio::sync::Mutex<mpsc::UnboundedReceiver<ChaincodeMessage>>,
    counter: AtomicU64,
    clock: AtomicU64,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

impl TestPeer {
    /// Dials the chaincode server at `uri` (`http://127.0.0.1:port`, or `https://…` with
    /// `config.tls`) and completes the REGISTER / REGISTERED / READY handshake.
    pub async fn connect(uri: &str, config: TestPeerConfig) -> Result<TestPeer, TestPeerError> {
        let mut endpoint = Endpoint::from_shared(uri.to_owned())
            .map_err(|e| TestPeerError::Transport(e.to_string()))?
            .tcp_nodelay(true)
            .initial_connection_window_size(Some(16 * 1024 * 1024))
            .initial_stream_window_size(Some(8 * 1024 * 1024))
            .connect_timeout(Duration::from_secs(5));
        if let Some(interval) = config.keepalive_interval {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(config.keepalive_timeout)
                .keep_alive_while_idle(true);
        }
        if let Some(tls) = &config.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| TestPeerError::Transport(e.to_string()))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| TestPeerError::Transport(format!("{e:?}")))?;
        let mut client = ChaincodeClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let (out, out_rx) = mpsc::channel(1024);
        let mut inbound = client
            .connect(ReceiverStream::new(out_rx))
            .await
            .map_err(|e| TestPeerError::Transport(e.to_string()))?
            .into_inner();

        let first = tokio::time::timeout(config.timeout, inbound.next())
            .await
            .map_err(|_| TestPeerError::Handshake("no REGISTER".into()))?
            .ok_or_else(|| TestPeerError::Handshake("stream closed before REGISTER".into()))?
            .map_err(|e| TestPeerError::Transport(e.to_string()))?;
        if first.r#type != MsgType::Register as i32 {
            return Err(TestPeerError::Handshake(format!(
                "expected REGISTER, got {}",
                type_name(first.r#type)
            )));
        }
        let id = pb::ChaincodeId::decode(first.payload.as_slice())
            .map_err(|e| TestPeerError::Handshake(format!("REGISTER payload: {e}")))?;
        let send = |m: ChaincodeMessage| {
            let out = out.clone();
            async move { out.send(m).await.map_err(|_| TestPeerError::Closed) }
        };
        send(ChaincodeMessage {
            r#type: MsgType::Registered as i32,
            ..Default::default()
        })
        .await?;
        let caps = config.capabilities;
        send(ChaincodeMessage {
            r#type: MsgType::Ready as i32,
            payload: pb::ChaincodeAdditionalParams {
                use_write_batch: caps.use_write_batch,
                max_size_write_batch: caps.max_size_write_batch,
                use_get_multiple_keys: caps.use_get_multiple_keys,
                max_size_get_multiple_keys: caps.max_size_get_multiple_keys,
            }
            .encode_to_vec(),
            ..Default::default()
        })
        .await?;

        let (unrouted_tx, unrouted_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            ledger: Mutex::new(Ledger::default()),
            sims: Mutex::new(HashMap::new()),
            requests: Mutex::new(HashMap::new()),
            others: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            unrouted: unrouted_tx,
            next_iter: AtomicU64::new(1),
        });
        let reader = {
            let shared = shared.clone();
            let out = out.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = inbound.next().await {
                    if let Some(reply) = shared.handle(msg) {
                        if out.send(reply).await.is_err() {
                            break;
                        }
                    }
                }
                // Fail whatever still waits: the stream is gone.
                lock(&shared.sims).clear();
            })
        };
        Ok(TestPeer {
            shared,
            out,
            reader,
            registered_name: id.name,
            unrouted: tokio::sync::Mutex::new(unrouted_rx),
            counter: AtomicU64::new(0),
            clock: AtomicU64::new(0),
        })
    }

    /// The package ID the chaincode registered with.
    pub fn registered_name(&self) -> &str {
        &self.registered_name
    }

    /// Registers another chaincode reachable through INVOKE_CHAINCODE, on every channel. Its
    /// writes are not modelled: it answers with a response only.
    pub fn register_chaincode(
        &self,
        name: &str,
        handler: impl Fn(&[Vec<u8>]) -> Response + Send + Sync + 'static,
    ) {
        lock(&self.shared.others).insert(name.to_owned(), Arc::new(handler));
    }

    /// The chaincode-to-chaincode calls routed so far, oldest first.
    pub fn chaincode_calls(&self) -> Vec<ChaincodeCall> {
        lock(&self.shared.calls).clone()
    }

    /// Builds the transaction's signed proposal and TRANSACTION (or INIT) message.
    pub fn prepare(&self, tx: &TestTx) -> (String, ChaincodeMessage) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nonce = Sha256::digest(n.to_le_bytes())[..24].to_vec();
        let tx_id = tx.tx_id.clone().unwrap_or_else(|| {
            let mut h = Sha256::new();
            h.update(&nonce);
            h.update(&tx.creator);
            hex(&h.finalize())
        });
        let timestamp = tx.timestamp.unwrap_or_else(|| {
            let t = self.clock.fetch_add(1, Ordering::Relaxed) as i64 + 1;
            Timestamp {
                seconds: MOCK_EPOCH_SECONDS + t,
                nanos: 0,
            }
        });
        let chaincode_id = pb::ChaincodeId {
            name: self.shared.config.chaincode_name.clone(),
            ..Default::default()
        };
        let input = pb::ChaincodeInput {
            args: tx.args.clone(),
            is_init: tx.init,
            ..Default::default()
        };
        let channel_header = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            timestamp: Some(timestamp),
            channel_id: tx.channel_id.clone(),
            tx_id: tx_id.clone(),
            epoch: 0,
            extension: pb::ChaincodeHeaderExtension {
                chaincode_id: Some(chaincode_id.clone()),
            }
            .encode_to_vec(),
            ..Default::default()
        };
        let header = Header {
            channel_header: channel_header.encode_to_vec(),
            signature_header: SignatureHeader {
                creator: tx.creator.clone(),
                nonce,
            }
            .encode_to_vec(),
        };
        let payload = pb::ChaincodeProposalPayload {
            input: pb::ChaincodeInvocationSpec {
                chaincode_spec: Some(pb::ChaincodeSpec {
                    r#type: 0,
                    chaincode_id: Some(chaincode_id),
                    input: Some(input.clone()),
                    timeout: 0,
                }),
            }
            .encode_to_vec(),
            transient_map: tx.transient.clone(),
        };
        let proposal = pb::Proposal {
            header: header.encode_to_vec(),
            payload: payload.encode_to_vec(),
            extension: Vec::new(),
        };
        let signed = pb::SignedProposal {
            proposal_bytes: proposal.encode_to_vec(),
            signature: Vec::new(),
        };
        let msg = ChaincodeMessage {
            r#type: if tx.init {
                MsgType::Init
            } else {
                MsgType::Transaction
            } as i32,
            payload: input.encode_to_vec(),
            txid: tx_id.clone(),
            proposal: Some(signed),
            channel_id: tx.channel_id.clone(),
            ..Default::default()
        };
        (tx_id, msg)
    }

    /// Sends a transaction and waits for the chaincode's COMPLETED or ERROR; commits the writes
    /// if the transaction asks for it and the response is a success.
    pub async fn invoke(&self, tx: TestTx) -> Result<TxOutcome, TestPeerError> {
        let (tx_id, msg) = self.prepare(&tx);
        let (done_tx, done_rx) = oneshot::channel();
        let timestamp = msg
            .proposal
            .as_ref()
            .and_then(|sp| pb::Proposal::decode(sp.proposal_bytes.as_slice()).ok())
            .and_then(|p| Header::decode(p.header.as_slice()).ok())
            .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
            .and_then(|c| c.timestamp)
            .unwrap_or_default();
        let key = (tx.channel_id.clone(), tx_id.clone());
        {
            let mut sims = lock(&self.shared.sims);
            if sims.contains_key(&key) {
                return Err(TestPeerError::Duplicate(tx_id));
            }
            sims.insert(
                key.clone(),
                Simulation {
                    init: tx.init,
                    timestamp,
                    writes: BTreeMap::new(),
                    private_writes: BTreeMap::new(),
                    purges: BTreeSet::new(),
                    metadata: BTreeMap::new(),
                    iterators: HashMap::new(),
                    done: Some(done_tx),
                    write_performed: false,
                    private_query_performed: false,
                    paginated_query_performed: false,
                },
            );
        }
        if self.out.send(msg).await.is_err() {
            lock(&self.shared.sims).remove(&key);
            return Err(TestPeerError::Closed);
        }
        let result = tokio::time::timeout(self.shared.config.timeout, done_rx).await;
        let sim = lock(&self.shared.sims).remove(&key);
        let message = match result {
            Err(_) => return Err(TestPeerError::Timeout(tx_id)),
            Ok(Err(_)) => return Err(TestPeerError::Closed),
            Ok(Ok(m)) => m,
        };
        let sim = sim.ok_or(TestPeerError::Closed)?;
        let mut outcome = TxOutcome {
            tx_id,
            message,
            writes: sim.writes.into_iter().collect(),
            private_writes: sim
                .private_writes
                .into_iter()
                .map(|((c, k), v)| (c, k, v))
                .collect(),
            private_purges: sim.purges.into_iter().collect(),
            metadata_writes: sim
                .metadata
                .into_iter()
                .map(|((c, k, m), v)| (c, k, m, v))
                .collect(),
            committed: false,
        };
        if tx.commit && outcome.response().is_some_and(|r| r.is_ok()) {
            self.shared.commit(&outcome, sim.timestamp);
            outcome.committed = true;
        }
        Ok(outcome)
    }

    /// Sends a raw message to the chaincode (for protocol tests).
    pub async fn send_raw(&self, msg: ChaincodeMessage) -> Result<(), TestPeerError> {
        self.out.send(msg).await.map_err(|_| TestPeerError::Closed)
    }

    /// The next message from the chaincode that belonged to no in-flight transaction.
    pub async fn next_unrouted(&self, wait: Duration) -> Option<ChaincodeMessage> {
        let mut rx = self.unrouted.lock().await;
        tokio::time::timeout(wait, rx.recv()).await.ok().flatten()
    }

    /// How many requests of `t` the chaincode sent.
    pub fn request_count(&self, t: MsgType) -> u64 {
        lock(&self.shared.requests)
            .get(&(t as i32))
            .copied()
            .unwrap_or(0)
    }

    /// Seeds committed public state.
    pub fn put_state(&self, key: &str, value: impl Into<Vec<u8>>) {
        lock(&self.shared.ledger)
            .public
            .entry(key.to_owned())
            .or_default()
            .value = value.into();
    }

    /// Seeds committed private data.
    pub fn put_private_data(&self, collection: &str, key: &str, value: impl Into<Vec<u8>>) {
        lock(&self.shared.ledger)
            .private
            .entry(collection.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default()
            .value = value.into();
    }

    /// The committed public value of `key`.
    pub fn state(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.shared.ledger)
            .public
            .get(key)
            .map(|e| e.value.clone())
    }

    /// The committed private value of `key` in `collection`.
    pub fn private_data(&self, collection: &str, key: &str) -> Option<Vec<u8>> {
        lock(&self.shared.ledger)
            .private
            .get(collection)
            .and_then(|c| c.get(key))
            .map(|e| e.value.clone())
    }

    /// A committed metadata entry (`collection` empty for public state).
    pub fn metadata(&self, collection: &str, key: &str, metakey: &str) -> Option<Vec<u8>> {
        let ledger = lock(&self.shared.ledger);
        let entry = if collection.is_empty() {
            ledger.public.get(key)
        } else {
            ledger.private.get(collection).and_then(|c| c.get(key))
        };
        entry.and_then(|e| e.metadata.get(metakey).cloned())
    }

    /// Closes the stream, as a peer that goes away.
    pub async fn disconnect(mut self) {
        // The reader owns the inbound half and a sender clone; ending it closes the stream, and
        // dropping `self` then drops the last sender.
        self.reader.abort();
        let _ = (&mut self.reader).await;
    }
}

impl Drop for TestPeer {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn reply(t: MsgType, payload: Vec<u8>, msg: &ChaincodeMessage) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: t as i32,
        payload,
        txid: msg.txid.clone(),
        channel_id: msg.channel_id.clone(),
        ..Default::default()
    }
}

const PRIVATE_IN_INIT: &str = "private data APIs are not allowed in chaincode Init()";

/// The simulator's rule for a query on private data: only in a transaction that has not written.
fn begin_private_query(sim: &mut Simulation, tx_id: &str) -> Result<(), String> {
    if sim.write_performed {
        return Err(format!(
            "txid [{tx_id}]: unsuppored transaction. Queries on pvt data is supported only in a read-only transaction"
        ));
    }
    sim.private_query_performed = true;
    Ok(())
}

/// The simulator's rule for a paginated query: only in a transaction that has not written.
fn begin_paginated_query(sim: &mut Simulation, tx_id: &str) -> Result<(), String> {
    if sim.write_performed {
        return Err(format!(
            "txid [{tx_id}]: unsuppored transaction. Paginated queries are supported only in a read-only transaction"
        ));
    }
    sim.paginated_query_performed = true;
    Ok(())
}

impl Shared {
    /// Handles one message from the chaincode; returns the answer to send, if any.
    fn handle(&self, msg: ChaincodeMessage) -> Option<ChaincodeMessage> {
        let t = MsgType::try_from(msg.r#type).unwrap_or(MsgType::Undefined);
        *lock(&self.requests).entry(msg.r#type).or_default() += 1;
        match t {
            MsgType::Keepalive => None,
            MsgType::Completed | MsgType::Error => {
                let key = (msg.channel_id.clone(), msg.txid.clone());
                let done = lock(&self.sims).get_mut(&key).and_then(|s| s.done.take());
                match done {
                    Some(done) => {
                        let _ = done.send(msg);
                    }
                    None => {
                        let _ = self.unrouted.send(msg);
                    }
                }
                None
            }
            _ => {
                let key = (msg.channel_id.clone(), msg.txid.clone());
                let mut sims = lock(&self.sims);
                let result = match sims.get_mut(&key) {
                    None => Err("no ledger context".to_owned()),
                    Some(sim) => self.serve(t, &msg, sim),
                };
                Some(match result {
                    Ok(payload) => reply(MsgType::Response, payload, &msg),
                    Err(e) => reply(
                        MsgType::Error,
                        format!(
                            "{} failed: transaction ID: {}: {e}",
                            type_name(msg.r#type),
                            msg.txid
                        )
                        .into_bytes(),
                        &msg,
                    ),
                })
            }
        }
    }

    fn serve(
        &self,
        t: MsgType,
        msg: &ChaincodeMessage,
        sim: &mut Simulation,
    ) -> Result<Vec<u8>, String> {
        let p = msg.payload.as_slice();
        let bad = |e: prost::DecodeError| format!("unmarshal failed: {e}");
        let private_check = |sim: &Simulation, collection: &str| {
            if !collection.is_empty() && sim.init {
                Err(PRIVATE_IN_INIT.to_owned())
            } else {
                Ok(())
            }
        };
        match t {
            MsgType::GetState => {
                let g = pb::GetState::decode(p).map_err(bad)?;
                private_check(sim, &g.collection)?;
                self.read_value(&g.collection, &g.key)
            }
            MsgType::GetStateMultiple => {
                let g = pb::GetStateMultiple::decode(p).map_err(bad)?;
                private_check(sim, &g.collection)?;
                let values = g
                    .keys
                    .iter()
                    .map(|k| self.read_value(&g.collection, k))
                    .collect::<Result<_, _>>()?;
                Ok(pb::GetStateMultipleResult { values }.encode_to_vec())
            }
            MsgType::GetPrivateDataHash => {
                let g = pb::GetState::decode(p).map_err(bad)?;
                if sim.init {
                    return Err(PRIVATE_IN_INIT.to_owned());
                }
                Ok(self
                    .read(&g.collection, &g.key)
                    .map(|v| Sha256::digest(&v).to_vec())
                    .unwrap_or_default())
            }
            MsgType::GetStateMetadata => {
                let g = pb::GetStateMetadata::decode(p).map_err(bad)?;
                private_check(sim, &g.collection)?;
                let ledger = lock(&self.ledger);
                let entry = if g.collection.is_empty() {
                    ledger.public.get(&g.key)
                } else {
                    ledger
                        .private
                        .get(&g.collection)
                        .and_then(|c| c.get(&g.key))
                };
                let entries = entry
                    .map(|e| {
                        e.metadata
                            .iter()
                            .map(|(k, v)| pb::StateMetadata {
                                metakey: k.clone(),
                                value: v.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(pb::StateMetadataResult { entries }.encode_to_vec())
            }
            MsgType::PutState => {
                let w = pb::PutState::decode(p).map_err(bad)?;
                self.apply_write(
                    sim,
                    &msg.txid,
                    pb::WriteRecord {
                        key: w.key,
                        value: w.value,
                        collection: w.collection,
                        metadata: None,
                        r#type: WriteType::PutState as i32,
                    },
                )?;
                Ok(Vec::new())
            }
            MsgType::DelState | MsgType::PurgePrivateData => {
                let w = pb::DelState::decode(p).map_err(bad)?;
                let wt = if t == MsgType::DelState {
                    WriteType::DelState
                } else {
                    WriteType::PurgePrivateData
                };
                self.apply_write(
                    sim,
                    &msg.txid,
                    pb::WriteRecord {
                        key: w.key,
                        value: Vec::new(),
                        collection: w.collection,
                        metadata: None,
                        r#type: wt as i32,
                    },
                )?;
                Ok(Vec::new())
            }
            MsgType::PutStateMetadata => {
                let w = pb::PutStateMetadata::decode(p).map_err(bad)?;
                self.apply_write(
                    sim,
                    &msg.txid,
                    pb::WriteRecord {
                        key: w.key,
                        value: Vec::new(),
                        collection: w.collection,
                        metadata: w.metadata,
                        r#type: WriteType::PutStateMetadata as i32,
                    },
                )?;
                Ok(Vec::new())
            }
            MsgType::WriteBatchState => {
                let b = pb::WriteBatchState::decode(p).map_err(bad)?;
                for rec in b.rec {
                    self.apply_write(sim, &msg.txid, rec)?;
                }
                Ok(Vec::new())
            }
            MsgType::GetStateByRange => {
                let r = pb::GetStateByRange::decode(p).map_err(bad)?;
                private_check(sim, &r.collection)?;
                let meta = if r.metadata.is_empty() {
                    None
                } else {
                    Some(pb::QueryMetadata::decode(r.metadata.as_slice()).map_err(bad)?)
                };
                // As the peer: pagination applies to public ranges only.
                let paging = meta.filter(|m| {
                    r.collection.is_empty() && (m.page_size != 0 || !m.bookmark.is_empty())
                });
                if !r.collection.is_empty() {
                    begin_private_query(sim, &msg.txid)?;
                } else if paging.is_some() {
                    begin_paginated_query(sim, &msg.txid)?;
                }
                let start = match &paging {
                    Some(m) if !m.bookmark.is_empty() => m.bookmark.clone(),
                    _ => r.start_key.clone(),
                };
                let (results, limit) = match &paging {
                    Some(m) if m.page_size > 0 => {
                        let limit = (m.page_size as usize).min(self.config.total_query_limit);
                        (
                            self.range(&r.collection, &start, &r.end_key, Some(limit + 1)),
                            limit,
                        )
                    }
                    _ => (
                        self.range(&r.collection, &start, &r.end_key, None),
                        self.config.total_query_limit,
                    ),
                };
                let mut results: VecDeque<(String, Vec<u8>)> = results.into();
                let bookmark = if paging.is_some() && results.len() > limit {
                    results
                        .get(limit)
                        .map(|(k, _)| k.clone())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                results.truncate(limit);
                let ns = self.config.chaincode_name.clone();
                let iter = QueryIter {
                    results: results
                        .into_iter()
                        .map(|(key, value)| {
                            queryresult::Kv {
                                namespace: ns.clone(),
                                key,
                                value,
                            }
                            .encode_to_vec()
                        })
                        .collect(),
                    returned: 0,
                    limit,
                    paginated: paging.is_some(),
                    bookmark,
                };
                Ok(self.first_batch(sim, iter))
            }
            MsgType::GetHistoryForKey => {
                let h = pb::GetHistoryForKey::decode(p).map_err(bad)?;
                let mods: VecDeque<Vec<u8>> = lock(&self.ledger)
                    .history
                    .get(&h.key)
                    .map(|v| v.iter().rev().map(|m| m.encode_to_vec()).collect())
                    .unwrap_or_default();
                let iter = QueryIter {
                    results: mods,
                    returned: 0,
                    limit: self.config.total_query_limit,
                    paginated: false,
                    bookmark: String::new(),
                };
                Ok(self.first_batch(sim, iter))
            }
            MsgType::QueryStateNext => {
                let n = pb::QueryStateNext::decode(p).map_err(bad)?;
                let mut iter = sim
                    .iterators
                    .remove(&n.id)
                    .ok_or_else(|| "query iterator not found".to_owned())?;
                let resp = self.batch(&mut iter, &n.id);
                if resp.has_more {
                    sim.iterators.insert(n.id, iter);
                }
                Ok(resp.encode_to_vec())
            }
            MsgType::QueryStateClose => {
                let c = pb::QueryStateClose::decode(p).map_err(bad)?;
                sim.iterators.remove(&c.id);
                Ok(pb::QueryResponse {
                    has_more: false,
                    id: c.id,
                    ..Default::default()
                }
                .encode_to_vec())
            }
            MsgType::GetQueryResult => {
                let q = pb::GetQueryResult::decode(p).map_err(bad)?;
                private_check(sim, &q.collection)?;
                // LevelDB has no rich queries, for public state and collections alike (a
                // collection is a namespace of the same database); the simulator's read-only
                // rules are checked first and still count the attempt.
                if !q.collection.is_empty() {
                    begin_private_query(sim, &msg.txid)?;
                    return Err("ExecuteQuery not supported for leveldb".to_owned());
                }
                let meta = if q.metadata.is_empty() {
                    None
                } else {
                    Some(pb::QueryMetadata::decode(q.metadata.as_slice()).map_err(bad)?)
                };
                if meta.is_some_and(|m| m.page_size != 0 || !m.bookmark.is_empty()) {
                    begin_paginated_query(sim, &msg.txid)?;
                    Err("ExecuteQueryWithMetadata not supported for leveldb".to_owned())
                } else {
                    Err("ExecuteQuery not supported for leveldb".to_owned())
                }
            }
            MsgType::InvokeChaincode => {
                let spec = pb::ChaincodeSpec::decode(p).map_err(bad)?;
                // Fabric's ParseName: "name[:version][/channel]"; no channel means the caller's.
                let full = spec.chaincode_id.map(|c| c.name).unwrap_or_default();
                let (name_version, channel) = full.split_once('/').unwrap_or((&full, ""));
                let name = name_version.split(':').next().unwrap_or_default();
                let channel = if channel.is_empty() {
                    msg.channel_id.as_str()
                } else {
                    channel
                };
                let handler = lock(&self.others).get(name).cloned().ok_or_else(|| {
                    format!(
                        "execute failed: invalid invocation: [channel {channel}] failed to get chaincode container info for {name}: chaincode {name} not found"
                    )
                })?;
                let args = spec.input.map(|i| i.args).unwrap_or_default();
                lock(&self.calls).push(ChaincodeCall {
                    tx_id: msg.txid.clone(),
                    channel_id: channel.to_owned(),
                    chaincode_name: name.to_owned(),
                    args: args.clone(),
                });
                let r = handler(&args);
                // The caller receives the called chaincode's own final message, COMPLETED with
                // its response whatever the status, wrapped in this RESPONSE.
                let inner = ChaincodeMessage {
                    r#type: MsgType::Completed as i32,
                    payload: pb::Response {
                        status: r.status,
                        message: r.message,
                        payload: r.payload,
                    }
                    .encode_to_vec(),
                    txid: msg.txid.clone(),
                    channel_id: channel.to_owned(),
                    ..Default::default()
                };
                Ok(inner.encode_to_vec())
            }
            other => Err(format!(
                "Fabric side handler cannot handle message ({}) while in ready state",
                other.as_str_name()
            )),
        }
    }

    /// A value as the chaincode may read it: empty when absent, refused when this peer holds
    /// only the hash of a private value.
    fn read_value(&self, collection: &str, key: &str) -> Result<Vec<u8>, String> {
        let value = self.read(collection, key);
        if value.is_some()
            && self
                .config
                .hash_only_collections
                .iter()
                .any(|c| c == collection)
        {
            return Err(
                "private data matching public hash version is not available. Public hash version = {BlockNum: 1, TxNum: 0}, Private data version = <nil>"
                    .to_owned(),
            );
        }
        Ok(value.unwrap_or_default())
    }

    fn read(&self, collection: &str, key: &str) -> Option<Vec<u8>> {
        let ledger = lock(&self.ledger);
        let entry = if collection.is_empty() {
            ledger.public.get(key)
        } else {
            ledger.private.get(collection).and_then(|c| c.get(key))
        };
        entry.map(|e| e.value.clone()).filter(|v| !v.is_empty())
    }

    fn range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
        limit: Option<usize>,
    ) -> Vec<(String, Vec<u8>)> {
        let ledger = lock(&self.ledger);
        let empty = BTreeMap::new();
        let map = if collection.is_empty() {
            &ledger.public
        } else {
            ledger.private.get(collection).unwrap_or(&empty)
        };
        if !end.is_empty() && start >= end {
            return Vec::new();
        }
        let upper = if end.is_empty() {
            std::ops::Bound::Unbounded
        } else {
            std::ops::Bound::Excluded(end.to_owned())
        };
        map.range((std::ops::Bound::Included(start.to_owned()), upper))
            .take(limit.unwrap_or(usize::MAX))
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    fn first_batch(&self, sim: &mut Simulation, mut iter: QueryIter) -> Vec<u8> {
        let id = format!("iter-{}", self.next_iter.fetch_add(1, Ordering::Relaxed));
        let resp = self.batch(&mut iter, &id);
        if resp.has_more {
            sim.iterators.insert(id, iter);
        }
        resp.encode_to_vec()
    }

    /// One QueryResponse, cut as Fabric's query response builder does.
    fn batch(&self, iter: &mut QueryIter, id: &str) -> pb::QueryResponse {
        let mut results = Vec::new();
        loop {
            if iter.returned >= iter.limit || iter.results.is_empty() {
                let metadata = if iter.paginated {
                    pb::QueryResponseMetadata {
                        fetched_records_count: iter.returned as i32,
                        bookmark: iter.bookmark.clone(),
                    }
                    .encode_to_vec()
                } else {
                    Vec::new()
                };
                return pb::QueryResponse {
                    results,
                    has_more: false,
                    id: id.to_owned(),
                    metadata,
                };
            }
            if results.len() == self.config.query_batch_size {
                return pb::QueryResponse {
                    results,
                    has_more: true,
                    id: id.to_owned(),
                    metadata: Vec::new(),
                };
            }
            let next = iter.results.pop_front().unwrap_or_default();
            results.push(pb::QueryResultBytes { result_bytes: next });
            iter.returned += 1;
        }
    }

    /// Records one write as the peer's handler and transaction simulator would accept it.
    fn apply_write(
        &self,
        sim: &mut Simulation,
        tx_id: &str,
        rec: pb::WriteRecord,
    ) -> Result<(), String> {
        let t = WriteType::try_from(rec.r#type).unwrap_or(WriteType::Undefined);
        if t == WriteType::Undefined {
            return Err("unknown operation type".to_owned());
        }
        // The handler refuses a purge of public state before anything else.
        if t == WriteType::PurgePrivateData && rec.collection.is_empty() {
            return Err("only applicable for private data".to_owned());
        }
        if !rec.collection.is_empty() && sim.init {
            return Err(PRIVATE_IN_INIT.to_owned());
        }
        if sim.private_query_performed {
            return Err(format!(
                "txid [{tx_id}]: unsuppored transaction. Transaction has already performed queries on pvt data. Writes are not allowed"
            ));
        }
        if sim.paginated_query_performed {
            return Err(format!(
                "txid [{tx_id}]: unsuppored transaction. Transaction has already performed a paginated query. Writes are not allowed"
            ));
        }
        sim.write_performed = true;
        match t {
            WriteType::PutState | WriteType::DelState | WriteType::PurgePrivateData => {
                let value = (t == WriteType::PutState).then_some(rec.value);
                if rec.collection.is_empty() {
                    sim.writes.insert(rec.key, value);
                } else {
                    let k = (rec.collection, rec.key);
                    // The last write of a key decides whether it is a purge.
                    if t == WriteType::PurgePrivateData {
                        sim.purges.insert(k.clone());
                    } else {
                        sim.purges.remove(&k);
                    }
                    sim.private_writes.insert(k, value);
                }
            }
            WriteType::PutStateMetadata => {
                let md = rec.metadata.unwrap_or_default();
                sim.metadata
                    .insert((rec.collection, rec.key, md.metakey), md.value);
            }
            WriteType::Undefined => unreachable!("refused above"),
        }
        Ok(())
    }

    fn commit(&self, outcome: &TxOutcome, timestamp: Timestamp) {
        let mut ledger = lock(&self.ledger);
        for (key, value) in &outcome.writes {
            let value = value.clone().filter(|v| !v.is_empty());
            match &value {
                Some(v) => ledger.public.entry(key.clone()).or_default().value = v.clone(),
                None => {
                    ledger.public.remove(key);
                }
            }
            ledger
                .history
                .entry(key.clone())
                .or_default()
                .push(queryresult::KeyModification {
                    tx_id: outcome.tx_id.clone(),
                    is_delete: value.is_none(),
                    value: value.unwrap_or_default(),
                    timestamp: Some(timestamp),
                });
        }
        for (collection, key, value) in &outcome.private_writes {
            let coll = ledger.private.entry(collection.clone()).or_default();
            match value.clone().filter(|v| !v.is_empty()) {
                Some(v) => coll.entry(key.clone()).or_default().value = v,
                None => {
                    coll.remove(key);
                }
            }
        }
        for (collection, key, metakey, value) in &outcome.metadata_writes {
            let entry = if collection.is_empty() {
                ledger.public.get_mut(key)
            } else {
                ledger
                    .private
                    .get_mut(collection)
                    .and_then(|c| c.get_mut(key))
            };
            if let Some(e) = entry {
                e.metadata.insert(metakey.clone(), value.clone());
            }
        }
    }
}
