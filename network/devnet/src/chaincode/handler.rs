//! The peer side of one chaincode stream: Fabric's `core/chaincode/handler.go` with its
//! transaction contexts and query response builder.
//!
//! One reader task per connection takes the chaincode's messages in order: COMPLETED and ERROR
//! wake the waiting execution, ledger requests are answered from the transaction's simulator
//! right there (they are short, in-memory or page-cache reads; no task per request), and
//! INVOKE_CHAINCODE — which waits on another chaincode — runs as its own task. Failed requests
//! are answered with ERROR whose text is Fabric's: `<TYPE> failed: transaction ID: <txid>:
//! <reason>`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabric_protos::protos::chaincode_client::ChaincodeClient;
use fabric_protos::protos::chaincode_message::Type as MsgType;
use fabric_protos::protos::write_record::Type as WriteType;
use fabric_protos::protos::{self as pb, ChaincodeMessage};
use fabric_protos::queryresult;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::{
    ChaincodeError, ChaincodeSupport, ConnectionInfo, TxParams, MAX_BATCH, QUERY_BATCH,
    TOTAL_QUERY_LIMIT,
};
use crate::endorser::simulator::{RangeScan, SimError, TxSimulator};

/// The largest message either side accepts (Fabric's peer: 100 MiB).
const MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

const PRIVATE_IN_INIT: &str = "private data APIs are not allowed in chaincode Init()";

enum Iter {
    Range {
        scan: Box<RangeScan>,
        paginated: bool,
    },
    List(VecDeque<Vec<u8>>),
}

struct OpenQuery {
    iter: Iter,
    pending: Vec<Vec<u8>>,
    total: usize,
}

/// One transaction's context on one chaincode stream (Fabric's `TransactionContext`).
struct TxContext {
    params: TxParams,
    namespace: String,
    is_init: bool,
    notify: Mutex<Option<oneshot::Sender<ChaincodeMessage>>>,
    queries: Mutex<HashMap<String, OpenQuery>>,
}

impl TxContext {
    fn sim(&self) -> std::sync::MutexGuard<'_, TxSimulator> {
        self.params
            .simulator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Closes every open query, recording range scans in the read set (Fabric closes the
    /// context's iterators when the transaction completes).
    fn close_queries(&self) {
        let open: Vec<OpenQuery> = self
            .queries
            .lock()
            .expect("queries")
            .drain()
            .map(|(_, q)| q)
            .collect();
        let mut sim = self.sim();
        for q in open {
            if let Iter::Range { scan, .. } = q.iter {
                sim.range_close(*scan);
            }
        }
    }
}

/// A live connection to one chaincode server.
pub struct Handler {
    package_id: String,
    out: mpsc::Sender<ChaincodeMessage>,
    contexts: Mutex<HashMap<(String, String), Arc<TxContext>>>,
    alive: AtomicBool,
    support: std::sync::Weak<ChaincodeSupport>,
    next_query: AtomicU64,
    stop: tokio::sync::Notify,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("package_id", &self.package_id)
            .finish()
    }
}

fn tls_config(info: &ConnectionInfo) -> Result<Option<ClientTlsConfig>, ChaincodeError> {
    if !info.tls_required {
        return Ok(None);
    }
    let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&info.root_cert));
    if info.client_auth_required {
        cfg = cfg.identity(Identity::from_pem(&info.client_cert, &info.client_key));
    }
    Ok(Some(cfg))
}

fn type_name(t: i32) -> &'static str {
    MsgType::try_from(t).map_or("UNDEFINED", |t| t.as_str_name())
}

impl Handler {
    /// Dials the chaincode server (retrying until the dial timeout), waits for REGISTER with
    /// `package_id`, and answers REGISTERED and READY.
    pub(crate) async fn connect(
        support: Arc<ChaincodeSupport>,
        package_id: &str,
        info: &ConnectionInfo,
    ) -> Result<Arc<Handler>, ChaincodeError> {
        let fail = |reason: String| ChaincodeError::Launch {
            package_id: package_id.to_string(),
            reason,
        };
        let dial_timeout = info.dial_timeout()?;
        let tls = tls_config(info)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", info.address))
            .map_err(|e| fail(e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(dial_timeout)
            .initial_connection_window_size(Some(16 * 1024 * 1024))
            .initial_stream_window_size(Some(8 * 1024 * 1024));
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(|e| fail(e.to_string()))?;
        }
        let deadline = Instant::now() + dial_timeout;
        let channel = loop {
            match endpoint.connect().await {
                Ok(c) => break c,
                Err(e) if Instant::now() >= deadline => {
                    return Err(fail(format!("error dialing {}: {e}", info.address)))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let mut client = ChaincodeClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let (out, out_rx) = mpsc::channel(4096);
        let mut inbound = client
            .connect(ReceiverStream::new(out_rx))
            .await
            .map_err(|e| fail(format!("error connecting to chaincode: {}", e.message())))?
            .into_inner();
        let remaining = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        let first = tokio::time::timeout(remaining, inbound.next())
            .await
            .map_err(|_| fail("timeout expired while starting chaincode".into()))?
            .ok_or_else(|| fail("chaincode stream closed before REGISTER".into()))?
            .map_err(|e| fail(e.message().to_string()))?;
        if first.r#type != MsgType::Register as i32 {
            return Err(fail(format!(
                "[{}] Fabric side handler cannot handle message ({}) while in created state",
                first.txid,
                type_name(first.r#type)
            )));
        }
        let id = pb::ChaincodeId::decode(first.payload.as_slice())
            .map_err(|e| fail(format!("could not unmarshal registration info: {e}")))?;
        if id.name.is_empty() {
            return Err(fail(
                "error in handling register chaincode, chaincodeID name is empty".into(),
            ));
        }
        if id.name != package_id {
            return Err(fail(format!(
                "chaincode registered as {}, but the peer launched {package_id}",
                id.name
            )));
        }
        let send = |m: ChaincodeMessage| {
            let out = out.clone();
            async move { out.send(m).await }
        };
        let closed = |_| fail("chaincode stream closed during registration".into());
        send(ChaincodeMessage {
            r#type: MsgType::Registered as i32,
            ..Default::default()
        })
        .await
        .map_err(closed)?;
        send(ChaincodeMessage {
            r#type: MsgType::Ready as i32,
            payload: pb::ChaincodeAdditionalParams {
                use_write_batch: true,
                max_size_write_batch: MAX_BATCH,
                use_get_multiple_keys: true,
                max_size_get_multiple_keys: MAX_BATCH,
            }
            .encode_to_vec(),
            ..Default::default()
        })
        .await
        .map_err(closed)?;
        let handler = Arc::new(Handler {
            package_id: package_id.to_string(),
            out,
            contexts: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            support: Arc::downgrade(&support),
            next_query: AtomicU64::new(1),
            stop: tokio::sync::Notify::new(),
        });
        let h = handler.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    m = inbound.next() => m,
                    _ = h.stop.notified() => None,
                };
                let Some(Ok(msg)) = msg else { break };
                if !h.handle_message(msg).await {
                    break;
                }
            }
            h.terminate();
        });
        Ok(handler)
    }

    /// Whether the stream is still up.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Closes the stream: pending executions fail with "chaincode stream terminated" and the
    /// chaincode sees the peer go away.
    pub fn close(&self) {
        self.stop.notify_one();
    }

    /// The package ID the chaincode registered with.
    pub fn package_id(&self) -> &str {
        &self.package_id
    }

    fn terminate(&self) {
        self.alive.store(false, Ordering::Release);
        let contexts: Vec<Arc<TxContext>> = self
            .contexts
            .lock()
            .expect("contexts")
            .drain()
            .map(|(_, c)| c)
            .collect();
        for c in contexts {
            // Dropping the sender wakes the execution with "chaincode stream terminated".
            c.notify.lock().expect("notify").take();
        }
    }

    /// Sends a TRANSACTION/INIT message in the transaction's new context and waits for the
    /// chaincode's COMPLETED or ERROR (Fabric's `Handler.Execute`).
    pub(crate) async fn execute(
        &self,
        params: &TxParams,
        namespace: &str,
        msg: ChaincodeMessage,
        timeout: Duration,
    ) -> Result<ChaincodeMessage, String> {
        let key = (params.channel_id.clone(), params.txid.clone());
        let (tx, rx) = oneshot::channel();
        let ctx = Arc::new(TxContext {
            params: params.clone(),
            namespace: namespace.to_string(),
            is_init: msg.r#type == MsgType::Init as i32,
            notify: Mutex::new(Some(tx)),
            queries: Mutex::new(HashMap::new()),
        });
        {
            let mut contexts = self.contexts.lock().expect("contexts");
            if contexts.contains_key(&key) {
                return Err(format!("txid: {}({}) exists", key.1, key.0));
            }
            if !self.is_alive() {
                return Err(super::ERROR_STREAM_TERMINATED.into());
            }
            contexts.insert(key.clone(), ctx.clone());
        }
        let result = if self.out.send(msg).await.is_err() {
            Err(super::ERROR_STREAM_TERMINATED.to_string())
        } else {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(resp)) => Ok(resp),
                Ok(Err(_)) => Err(super::ERROR_STREAM_TERMINATED.to_string()),
                Err(_) => Err(super::ERROR_EXECUTION_TIMEOUT.to_string()),
            }
        };
        self.contexts.lock().expect("contexts").remove(&key);
        ctx.close_queries();
        result
    }

    fn context(&self, channel: &str, txid: &str) -> Option<Arc<TxContext>> {
        self.contexts
            .lock()
            .expect("contexts")
            .get(&(channel.to_string(), txid.to_string()))
            .cloned()
    }

    /// Handles one message from the chaincode; `false` ends the stream.
    async fn handle_message(self: &Arc<Self>, msg: ChaincodeMessage) -> bool {
        let Ok(t) = MsgType::try_from(msg.r#type) else {
            return false;
        };
        match t {
            MsgType::Keepalive => true,
            MsgType::Completed | MsgType::Error => {
                if let Some(ctx) = self.context(&msg.channel_id, &msg.txid) {
                    ctx.close_queries();
                    if let Some(tx) = ctx.notify.lock().expect("notify").take() {
                        let _ = tx.send(msg);
                    }
                }
                true
            }
            MsgType::InvokeChaincode => {
                let h = self.clone();
                tokio::spawn(async move {
                    let reply = h.reply(&msg, h.invoke_chaincode(&msg).await);
                    let _ = h.out.send(reply).await;
                });
                true
            }
            MsgType::GetState
            | MsgType::GetStateMultiple
            | MsgType::PutState
            | MsgType::DelState
            | MsgType::PurgePrivateData
            | MsgType::WriteBatchState
            | MsgType::GetStateByRange
            | MsgType::GetQueryResult
            | MsgType::GetHistoryForKey
            | MsgType::QueryStateNext
            | MsgType::QueryStateClose
            | MsgType::GetPrivateDataHash
            | MsgType::GetStateMetadata
            | MsgType::PutStateMetadata => {
                let result = match self.context(&msg.channel_id, &msg.txid) {
                    Some(ctx) => self.handle_request(t, &msg, &ctx),
                    None => Err("no ledger context".to_string()),
                };
                let reply = self.reply(&msg, result);
                self.out.send(reply).await.is_ok()
            }
            // Anything else in the ready state ends the stream, as in Fabric.
            _ => false,
        }
    }

    fn reply(&self, msg: &ChaincodeMessage, result: Result<Vec<u8>, String>) -> ChaincodeMessage {
        match result {
            Ok(payload) => ChaincodeMessage {
                r#type: MsgType::Response as i32,
                payload,
                txid: msg.txid.clone(),
                channel_id: msg.channel_id.clone(),
                ..Default::default()
            },
            Err(e) => ChaincodeMessage {
                r#type: MsgType::Error as i32,
                payload: format!(
                    "{} failed: transaction ID: {}: {e}",
                    type_name(msg.r#type),
                    msg.txid
                )
                .into_bytes(),
                txid: msg.txid.clone(),
                channel_id: msg.channel_id.clone(),
                ..Default::default()
            },
        }
    }

    fn check_collection(&self, ctx: &TxContext, coll: &str, write: bool) -> Result<(), String> {
        if ctx.is_init {
            return Err(PRIVATE_IN_INIT.into());
        }
        let support = self.support.upgrade().ok_or("peer is shutting down")?;
        let resolver = support.resolver().ok_or("no chaincode definitions")?;
        let (read, write_ok) = resolver.collection_access(
            &ctx.params.channel_id,
            &ctx.namespace,
            coll,
            &ctx.params.creator,
        )?;
        if write && !write_ok {
            return Err(format!("tx creator does not have write access permission on privatedata in chaincodeName:{} collectionName: {coll}", ctx.namespace));
        }
        if !write && !read {
            return Err(format!("tx creator does not have read access permission on privatedata in chaincodeName:{} collectionName: {coll}", ctx.namespace));
        }
        Ok(())
    }

    fn apply_write(&self, ctx: &TxContext, rec: pb::WriteRecord) -> Result<(), String> {
        let t = WriteType::try_from(rec.r#type).unwrap_or(WriteType::Undefined);
        let ns = ctx.namespace.as_str();
        let private = !rec.collection.is_empty();
        match t {
            WriteType::PurgePrivateData if !private => {
                return Err("only applicable for private data".into());
            }
            WriteType::Undefined => return Err("unknown operation type".into()),
            _ => {}
        }
        if private {
            self.check_collection(ctx, &rec.collection, true)?;
        }
        let mut sim = ctx.sim();
        let r = match (t, private) {
            (WriteType::PutState, false) => sim.set_state(ns, &rec.key, rec.value),
            (WriteType::PutState, true) => {
                sim.set_private_data(ns, &rec.collection, &rec.key, rec.value)
            }
            (WriteType::DelState, false) => sim.delete_state(ns, &rec.key),
            (WriteType::DelState, true) => sim.delete_private_data(ns, &rec.collection, &rec.key),
            (WriteType::PurgePrivateData, _) => {
                sim.purge_private_data(ns, &rec.collection, &rec.key)
            }
            (WriteType::PutStateMetadata, _) => {
                let md = rec.metadata.unwrap_or_default();
                let m = BTreeMap::from([(md.metakey, md.value)]);
                if private {
                    sim.set_private_data_metadata(ns, &rec.collection, &rec.key, m)
                } else {
                    sim.set_state_metadata(ns, &rec.key, m)
                }
            }
            (WriteType::Undefined, _) => unreachable!("refused above"),
        };
        r.map_err(|e| e.to_string())
    }

    fn handle_request(
        &self,
        t: MsgType,
        msg: &ChaincodeMessage,
        ctx: &TxContext,
    ) -> Result<Vec<u8>, String> {
        let p = msg.payload.as_slice();
        let bad = |e: prost::DecodeError| format!("unmarshal failed: {e}");
        let ns = ctx.namespace.clone();
        let sim_err = |e: SimError| e.to_string();
        match t {
            MsgType::GetState => {
                let g = pb::GetState::decode(p).map_err(bad)?;
                let v = if g.collection.is_empty() {
                    ctx.sim().get_state(&ns, &g.key)
                } else {
                    self.check_collection(ctx, &g.collection, false)?;
                    ctx.sim().get_private_data(&ns, &g.collection, &g.key)
                };
                Ok(v.map_err(sim_err)?.unwrap_or_default())
            }
            MsgType::GetStateMultiple => {
                let g = pb::GetStateMultiple::decode(p).map_err(bad)?;
                if !g.collection.is_empty() {
                    self.check_collection(ctx, &g.collection, false)?;
                }
                let mut sim = ctx.sim();
                let mut values = Vec::with_capacity(g.keys.len());
                for k in &g.keys {
                    let v = if g.collection.is_empty() {
                        sim.get_state(&ns, k)
                    } else {
                        sim.get_private_data(&ns, &g.collection, k)
                    };
                    values.push(v.map_err(sim_err)?.unwrap_or_default());
                }
                Ok(pb::GetStateMultipleResult { values }.encode_to_vec())
            }
            MsgType::GetPrivateDataHash => {
                let g = pb::GetState::decode(p).map_err(bad)?;
                if ctx.is_init {
                    return Err(PRIVATE_IN_INIT.into());
                }
                let v = ctx
                    .sim()
                    .get_private_data_hash(&ns, &g.collection, &g.key)
                    .map_err(sim_err)?;
                Ok(v.unwrap_or_default())
            }
            MsgType::GetStateMetadata => {
                let g = pb::GetStateMetadata::decode(p).map_err(bad)?;
                let m = if g.collection.is_empty() {
                    ctx.sim().get_state_metadata(&ns, &g.key)
                } else {
                    self.check_collection(ctx, &g.collection, false)?;
                    ctx.sim()
                        .get_private_data_metadata(&ns, &g.collection, &g.key)
                };
                let entries = m
                    .map_err(sim_err)?
                    .into_iter()
                    .map(|(metakey, value)| pb::StateMetadata { metakey, value })
                    .collect();
                Ok(pb::StateMetadataResult { entries }.encode_to_vec())
            }
            MsgType::PutState => {
                let w = pb::PutState::decode(p).map_err(bad)?;
                self.apply_write(
                    ctx,
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
                    ctx,
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
                    ctx,
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
                    self.apply_write(ctx, rec)?;
                }
                Ok(Vec::new())
            }
            MsgType::GetStateByRange => {
                let r = pb::GetStateByRange::decode(p).map_err(bad)?;
                let meta = if r.metadata.is_empty() {
                    None
                } else {
                    Some(pb::QueryMetadata::decode(r.metadata.as_slice()).map_err(bad)?)
                };
                let paging = meta.filter(|m| m.page_size != 0 || !m.bookmark.is_empty());
                let total_limit = match &paging {
                    Some(m) if m.page_size > 0 && (m.page_size as usize) < TOTAL_QUERY_LIMIT => {
                        m.page_size as usize
                    }
                    _ => TOTAL_QUERY_LIMIT,
                };
                let (iter, paginated) = if !r.collection.is_empty() {
                    self.check_collection(ctx, &r.collection, false)?;
                    let items = ctx
                        .sim()
                        .private_range(&ns, &r.collection, &r.start_key, &r.end_key)
                        .map_err(sim_err)?;
                    let list = items
                        .into_iter()
                        .map(|(key, value)| {
                            queryresult::Kv {
                                namespace: ns.clone(),
                                key,
                                value,
                            }
                            .encode_to_vec()
                        })
                        .collect();
                    (Iter::List(list), false)
                } else if let Some(m) = &paging {
                    let start = if m.bookmark.is_empty() {
                        r.start_key.clone()
                    } else {
                        m.bookmark.clone()
                    };
                    let page = usize::try_from(m.page_size.max(0)).unwrap_or(0);
                    let scan = ctx
                        .sim()
                        .range_scan(&ns, &start, &r.end_key, Some(page))
                        .map_err(sim_err)?;
                    (
                        Iter::Range {
                            scan: Box::new(scan),
                            paginated: true,
                        },
                        true,
                    )
                } else {
                    let scan = ctx
                        .sim()
                        .range_scan(&ns, &r.start_key, &r.end_key, None)
                        .map_err(sim_err)?;
                    (
                        Iter::Range {
                            scan: Box::new(scan),
                            paginated: false,
                        },
                        false,
                    )
                };
                self.first_response(ctx, iter, paginated, total_limit)
            }
            MsgType::GetQueryResult => {
                let q = pb::GetQueryResult::decode(p).map_err(bad)?;
                if !q.collection.is_empty() {
                    self.check_collection(ctx, &q.collection, false)?;
                    return Err("ExecuteQuery not supported for leveldb".into());
                }
                let meta = if q.metadata.is_empty() {
                    None
                } else {
                    Some(pb::QueryMetadata::decode(q.metadata.as_slice()).map_err(bad)?)
                };
                if meta.is_some_and(|m| m.page_size != 0 || !m.bookmark.is_empty()) {
                    Err("ExecuteQueryWithMetadata not supported for leveldb".into())
                } else {
                    Err("ExecuteQuery not supported for leveldb".into())
                }
            }
            MsgType::GetHistoryForKey => {
                let h = pb::GetHistoryForKey::decode(p).map_err(bad)?;
                let entries = ctx.sim().history(&ns, &h.key).map_err(sim_err)?;
                let list = entries
                    .into_iter()
                    .map(|e| {
                        queryresult::KeyModification {
                            tx_id: e.txid,
                            value: e.value,
                            timestamp: Some(prost_types::Timestamp {
                                seconds: e.timestamp.0,
                                nanos: e.timestamp.1,
                            }),
                            is_delete: e.is_delete,
                        }
                        .encode_to_vec()
                    })
                    .collect();
                self.first_response(ctx, Iter::List(list), false, TOTAL_QUERY_LIMIT)
            }
            MsgType::QueryStateNext => {
                let n = pb::QueryStateNext::decode(p).map_err(bad)?;
                let q = ctx.queries.lock().expect("queries").remove(&n.id);
                let q = q.ok_or("query iterator not found")?;
                self.build_response(ctx, n.id, q, TOTAL_QUERY_LIMIT)
            }
            MsgType::QueryStateClose => {
                let c = pb::QueryStateClose::decode(p).map_err(bad)?;
                let q = ctx.queries.lock().expect("queries").remove(&c.id);
                if let Some(OpenQuery {
                    iter: Iter::Range { scan, .. },
                    ..
                }) = q
                {
                    ctx.sim().range_close(*scan);
                }
                Ok(pb::QueryResponse {
                    has_more: false,
                    id: c.id,
                    ..Default::default()
                }
                .encode_to_vec())
            }
            other => Err(format!(
                "[{}] Fabric side handler cannot handle message ({}) while in ready state",
                msg.txid,
                other.as_str_name()
            )),
        }
    }

    fn first_response(
        &self,
        ctx: &TxContext,
        iter: Iter,
        _paginated: bool,
        total_limit: usize,
    ) -> Result<Vec<u8>, String> {
        let id = format!(
            "{}-{}",
            self.package_id.len(),
            self.next_query.fetch_add(1, Ordering::Relaxed)
        );
        let q = OpenQuery {
            iter,
            pending: Vec::new(),
            total: 0,
        };
        self.build_response(ctx, id, q, total_limit)
    }

    /// One `QueryResponse`, cut exactly as Fabric's `QueryResponseGenerator` does: batches of
    /// 100, the result that overflows a batch kept for the next one, pagination metadata on the
    /// last response of a paginated query.
    fn build_response(
        &self,
        ctx: &TxContext,
        id: String,
        mut q: OpenQuery,
        total_limit: usize,
    ) -> Result<Vec<u8>, String> {
        let page_limit = match &q.iter {
            Iter::Range {
                paginated: true, ..
            } => usize::MAX,
            _ => total_limit,
        };
        loop {
            let next = if q.total >= page_limit {
                None
            } else {
                match &mut q.iter {
                    Iter::Range { scan, .. } => {
                        let r = ctx.sim().range_next(scan).map_err(|e| e.to_string())?;
                        r.map(|(key, value)| {
                            queryresult::Kv {
                                namespace: ctx.namespace.clone(),
                                key,
                                value,
                            }
                            .encode_to_vec()
                        })
                    }
                    Iter::List(l) => l.pop_front(),
                }
            };
            match next {
                None => {
                    let results = std::mem::take(&mut q.pending)
                        .into_iter()
                        .map(|result_bytes| pb::QueryResultBytes { result_bytes })
                        .collect();
                    let mut metadata = Vec::new();
                    if let Iter::Range {
                        mut scan,
                        paginated,
                    } = q.iter
                    {
                        if paginated {
                            let bookmark = scan.bookmark().map_err(|e| e.to_string())?;
                            metadata = pb::QueryResponseMetadata {
                                fetched_records_count: q.total as i32,
                                bookmark,
                            }
                            .encode_to_vec();
                        }
                        ctx.sim().range_close(*scan);
                    }
                    return Ok(pb::QueryResponse {
                        results,
                        has_more: false,
                        id,
                        metadata,
                    }
                    .encode_to_vec());
                }
                Some(r) if q.pending.len() == QUERY_BATCH => {
                    let batch = std::mem::replace(&mut q.pending, vec![r]);
                    q.total += 1;
                    let resp = pb::QueryResponse {
                        results: batch
                            .into_iter()
                            .map(|result_bytes| pb::QueryResultBytes { result_bytes })
                            .collect(),
                        has_more: true,
                        id: id.clone(),
                        metadata: Vec::new(),
                    };
                    ctx.queries.lock().expect("queries").insert(id, q);
                    return Ok(resp.encode_to_vec());
                }
                Some(r) => {
                    q.pending.push(r);
                    q.total += 1;
                }
            }
        }
    }

    async fn invoke_chaincode(&self, msg: &ChaincodeMessage) -> Result<Vec<u8>, String> {
        let ctx = self
            .context(&msg.channel_id, &msg.txid)
            .ok_or("could not get valid transaction")?;
        let spec = pb::ChaincodeSpec::decode(msg.payload.as_slice())
            .map_err(|e| format!("unmarshal failed: {e}"))?;
        let full = spec.chaincode_id.map(|c| c.name).unwrap_or_default();
        // "name:version/channel", version and channel optional (Fabric's ParseName).
        let (name_version, channel) = match full.split_once('/') {
            Some((n, c)) => (n, c),
            None => (full.as_str(), ""),
        };
        let name = name_version
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let channel = if channel.is_empty() {
            ctx.params.channel_id.clone()
        } else {
            channel.to_string()
        };
        let support = self.support.upgrade().ok_or("peer is shutting down")?;
        let resolver = support.resolver().ok_or("no chaincode definitions")?;
        // Another channel: its own simulator, whose results are dropped (read-only, as Fabric).
        let params = if channel == ctx.params.channel_id {
            ctx.params.clone()
        } else {
            let sim = resolver.channel_simulator(&channel, &msg.txid, &ctx.params.creator)?;
            TxParams {
                channel_id: channel.clone(),
                txid: ctx.params.txid.clone(),
                signed_proposal: ctx.params.signed_proposal.clone(),
                creator: ctx.params.creator.clone(),
                simulator: Arc::new(Mutex::new(sim)),
            }
        };
        let (package_id, _) = resolver.resolve(&channel, &name).ok_or_else(|| {
            format!("execute failed: invalid invocation: [channel {channel}] failed to get chaincode container info for {name}: chaincode {name} not found")
        })?;
        let input = spec.input.unwrap_or_default();
        let resp = support
            .execute_raw(&params, &name, &package_id, input)
            .await
            .map_err(|e| format!("execute failed: {e}"))?;
        Ok(resp.encode_to_vec())
    }
}

impl ChaincodeSupport {
    /// Runs `input` on a chaincode and returns its raw COMPLETED or ERROR message (what a calling
    /// chaincode receives for INVOKE_CHAINCODE).
    ///
    /// Boxed because it closes a cycle (a handler's reader task invokes chaincodes, which may
    /// launch handlers), which the compiler can only prove `Send` through a named type.
    pub(crate) fn execute_raw<'a>(
        self: &'a Arc<Self>,
        params: &'a TxParams,
        name: &'a str,
        package_id: &'a str,
        input: pb::ChaincodeInput,
    ) -> BoxFuture<'a, Result<ChaincodeMessage, ChaincodeError>> {
        Box::pin(self.execute_raw_inner(params, name, package_id, input))
    }

    async fn execute_raw_inner(
        self: &Arc<Self>,
        params: &TxParams,
        name: &str,
        package_id: &str,
        input: pb::ChaincodeInput,
    ) -> Result<ChaincodeMessage, ChaincodeError> {
        let handler = self.launch(package_id).await?;
        let msg = ChaincodeMessage {
            r#type: MsgType::Transaction as i32,
            payload: input.encode_to_vec(),
            txid: params.txid.clone(),
            proposal: params.signed_proposal.clone(),
            channel_id: params.channel_id.clone(),
            ..Default::default()
        };
        handler
            .execute(params, name, msg, self.execute_timeout())
            .await
            .map_err(ChaincodeError::Execution)
    }
}
