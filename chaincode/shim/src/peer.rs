//! The peer-backed stub: each [`ChaincodeStub`] call becomes a request on the chaincode stream,
//! tagged with the transaction's channel ID and tx ID, and waits for the peer's RESPONSE or
//! ERROR. A transaction's requests are sent one at a time (the peer drops a second request for a
//! tx ID that still has one pending), while different transactions proceed independently.
//!
//! When the peer offered write batching in READY, writes are buffered (the last write of a key
//! wins) and sent as WRITE_BATCH_STATE messages of at most `max_size_write_batch` records before
//! COMPLETED; multi-key reads use GET_STATE_MULTIPLE when offered.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use fabric_protos::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use fabric_protos::protos::chaincode_message::Type as MsgType;
use fabric_protos::protos::write_record::Type as WriteType;
use fabric_protos::protos::{
    self as pb, ChaincodeInput, ChaincodeMessage, ChaincodeProposalPayload, Proposal,
};
use fabric_protos::queryresult;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::composite::{self, EMPTY_KEY_SUBSTITUTE};
use crate::error::{Error, Result};
use crate::handler::{short_txid, type_name, Connection};
use crate::stub::{ChaincodeStub, QueryIterator};
use crate::types::{
    ChaincodeEvent, KeyModification, QueryResponseMetadata, Response, SignedProposal, Timestamp,
    TransientMap, KV, VALIDATION_PARAMETER,
};

/// Buffered writes of one transaction when the peer accepts WRITE_BATCH_STATE.
#[derive(Default)]
struct WriteBatch {
    records: Vec<pb::WriteRecord>,
    /// (collection, key, is metadata) → index in `records`, so a later write replaces an earlier.
    index: HashMap<(String, String, bool), usize>,
}

impl WriteBatch {
    fn push(&mut self, record: pb::WriteRecord) {
        let is_meta = record.r#type == WriteType::PutStateMetadata as i32;
        let k = (record.collection.clone(), record.key.clone(), is_meta);
        match self.index.get(&k) {
            Some(i) => self.records[*i] = record,
            None => {
                self.index.insert(k, self.records.len());
                self.records.push(record);
            }
        }
    }
}

struct TxInner {
    conn: Arc<Connection>,
    channel_id: String,
    tx_id: String,
    args: Vec<Vec<u8>>,
    decorations: BTreeMap<String, Vec<u8>>,
    signed_proposal: Option<SignedProposal>,
    creator: Vec<u8>,
    transient: TransientMap,
    binding: Vec<u8>,
    timestamp: Option<Timestamp>,
    event: Mutex<Option<ChaincodeEvent>>,
    /// The peer's answers to this transaction. Holding the lock for a whole request/answer
    /// exchange keeps the transaction's requests strictly one at a time.
    responses: tokio::sync::Mutex<mpsc::UnboundedReceiver<ChaincodeMessage>>,
    batch: Option<Mutex<WriteBatch>>,
    /// Iterators dropped before exhaustion; closed before the next request or completion.
    pending_closes: Mutex<Vec<String>>,
}

/// The stub of a transaction served over the chaincode stream. Cheap to clone.
#[derive(Clone)]
pub struct PeerStub {
    inner: Arc<TxInner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The transaction context extracted from a signed proposal, as the Go shim extracts it.
struct ProposalContext {
    creator: Vec<u8>,
    transient: TransientMap,
    binding: Vec<u8>,
    timestamp: Option<Timestamp>,
}

fn proposal_context(signed: &pb::SignedProposal) -> Result<ProposalContext> {
    let proposal = Proposal::decode(signed.proposal_bytes.as_slice())
        .map_err(|e| Error::decode("Proposal from SignedProposal", e))?;
    if proposal.header.is_empty() {
        return Err(Error::invalid(
            "failed to extract Proposal fields: proposal header is nil",
        ));
    }
    let header = Header::decode(proposal.header.as_slice())
        .map_err(|e| Error::decode("proposal header", e))?;
    let chdr = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| Error::decode("channel header", e))?;
    if chdr.r#type != HeaderType::EndorserTransaction as i32
        && chdr.r#type != HeaderType::Config as i32
    {
        return Err(Error::invalid(format!(
            "invalid channel header type. Expected ENDORSER_TRANSACTION or CONFIG, received {}",
            HeaderType::try_from(chdr.r#type)
                .map(|t| t.as_str_name().to_owned())
                .unwrap_or_else(|_| chdr.r#type.to_string())
        )));
    }
    let shdr = SignatureHeader::decode(header.signature_header.as_slice())
        .map_err(|e| Error::decode("signature header", e))?;
    let payload = ChaincodeProposalPayload::decode(proposal.payload.as_slice())
        .map_err(|e| Error::decode("proposal payload", e))?;
    // The binding as the Go shim computes it: SHA-256(nonce ‖ creator ‖ epoch, u64 LE).
    let mut h = Sha256::new();
    h.update(&shdr.nonce);
    h.update(&shdr.creator);
    h.update(chdr.epoch.to_le_bytes());
    Ok(ProposalContext {
        creator: shdr.creator,
        transient: payload.transient_map,
        binding: h.finalize().to_vec(),
        timestamp: chdr.timestamp,
    })
}

impl PeerStub {
    pub(crate) fn new(
        conn: Arc<Connection>,
        channel_id: String,
        tx_id: String,
        input: ChaincodeInput,
        proposal: Option<pb::SignedProposal>,
        responses: mpsc::UnboundedReceiver<ChaincodeMessage>,
    ) -> Result<Self> {
        let (ctx, signed_proposal) = match proposal {
            Some(sp) => {
                let ctx = proposal_context(&sp)?;
                (
                    Some(ctx),
                    Some(SignedProposal {
                        proposal_bytes: sp.proposal_bytes,
                        signature: sp.signature,
                    }),
                )
            }
            None => (None, None),
        };
        let batch = conn
            .capabilities()
            .use_write_batch
            .then(|| Mutex::new(WriteBatch::default()));
        let (creator, transient, binding, timestamp) = match ctx {
            Some(c) => (c.creator, c.transient, c.binding, c.timestamp),
            None => (Vec::new(), TransientMap::new(), Vec::new(), None),
        };
        Ok(PeerStub {
            inner: Arc::new(TxInner {
                conn,
                channel_id,
                tx_id,
                args: input.args,
                decorations: input.decorations,
                signed_proposal,
                creator,
                transient,
                binding,
                timestamp,
                event: Mutex::new(None),
                responses: tokio::sync::Mutex::new(responses),
                batch,
                pending_closes: Mutex::new(Vec::new()),
            }),
        })
    }

    pub(crate) fn take_event(&self) -> Option<ChaincodeEvent> {
        lock(&self.inner.event).take()
    }

    /// Ends the transaction's conversation: closes dropped iterators and, if `commit` and the
    /// peer batches writes, sends the buffered writes.
    pub(crate) async fn finish(&self, commit: bool) -> Result<()> {
        let mut rx = self.inner.responses.lock().await;
        self.inner.flush_closes(&mut rx).await?;
        let Some(batch) = &self.inner.batch else {
            return Ok(());
        };
        let records = std::mem::take(&mut lock(batch).records);
        if !commit || records.is_empty() {
            return Ok(());
        }
        let max = self.inner.conn.capabilities().max_size_write_batch.max(1) as usize;
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let rec: Vec<_> = records.by_ref().take(max).collect();
            let payload = pb::WriteBatchState { rec }.encode_to_vec();
            self.inner
                .exchange(&mut rx, MsgType::WriteBatchState, payload)
                .await?;
        }
        Ok(())
    }

    async fn request(&self, t: MsgType, payload: Vec<u8>) -> Result<Vec<u8>> {
        let mut rx = self.inner.responses.lock().await;
        self.inner.flush_closes(&mut rx).await?;
        self.inner.exchange(&mut rx, t, payload).await
    }

    async fn get(&self, collection: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let payload = pb::GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        }
        .encode_to_vec();
        let value = self.request(MsgType::GetState, payload).await?;
        Ok((!value.is_empty()).then_some(value))
    }

    async fn get_multiple(&self, collection: &str, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let caps = self.inner.conn.capabilities();
        let mut out = Vec::with_capacity(keys.len());
        if !caps.use_get_multiple_keys {
            for key in keys {
                out.push(self.get(collection, key).await?);
            }
            return Ok(out);
        }
        for chunk in keys.chunks(caps.max_size_get_multiple_keys.max(1) as usize) {
            let payload = pb::GetStateMultiple {
                keys: chunk.iter().map(|k| (*k).to_owned()).collect(),
                collection: collection.to_owned(),
            }
            .encode_to_vec();
            let bytes = self.request(MsgType::GetStateMultiple, payload).await?;
            let result = pb::GetStateMultipleResult::decode(bytes.as_slice())
                .map_err(|_| Error::decode("get state multiple keys response", "invalid"))?;
            if result.values.len() != chunk.len() {
                return Err(Error::Peer(format!(
                    "GET_STATE_MULTIPLE returned {} values for {} keys",
                    result.values.len(),
                    chunk.len()
                )));
            }
            out.extend(
                result
                    .values
                    .into_iter()
                    .map(|v| (!v.is_empty()).then_some(v)),
            );
        }
        Ok(out)
    }

    async fn write(&self, record: pb::WriteRecord) -> Result<()> {
        if let Some(batch) = &self.inner.batch {
            lock(batch).push(record);
            return Ok(());
        }
        let t = WriteType::try_from(record.r#type).unwrap_or(WriteType::Undefined);
        let (msg_type, payload) = match t {
            WriteType::PutState => (
                MsgType::PutState,
                pb::PutState {
                    key: record.key,
                    value: record.value,
                    collection: record.collection,
                }
                .encode_to_vec(),
            ),
            WriteType::DelState => (
                MsgType::DelState,
                pb::DelState {
                    key: record.key,
                    collection: record.collection,
                }
                .encode_to_vec(),
            ),
            WriteType::PurgePrivateData => (
                MsgType::PurgePrivateData,
                pb::DelState {
                    key: record.key,
                    collection: record.collection,
                }
                .encode_to_vec(),
            ),
            WriteType::PutStateMetadata => (
                MsgType::PutStateMetadata,
                pb::PutStateMetadata {
                    key: record.key,
                    collection: record.collection,
                    metadata: record.metadata,
                }
                .encode_to_vec(),
            ),
            WriteType::Undefined => return Err(Error::invalid("undefined write type")),
        };
        self.request(msg_type, payload).await.map(|_| ())
    }

    fn record(t: WriteType, collection: &str, key: &str, value: Vec<u8>) -> pb::WriteRecord {
        pb::WriteRecord {
            key: key.to_owned(),
            value,
            collection: collection.to_owned(),
            metadata: None,
            r#type: t as i32,
        }
    }

    async fn put_validation_parameter(
        &self,
        collection: &str,
        key: &str,
        ep: Vec<u8>,
    ) -> Result<()> {
        self.write(pb::WriteRecord {
            key: key.to_owned(),
            value: Vec::new(),
            collection: collection.to_owned(),
            metadata: Some(pb::StateMetadata {
                metakey: VALIDATION_PARAMETER.to_owned(),
                value: ep,
            }),
            r#type: WriteType::PutStateMetadata as i32,
        })
        .await
    }

    async fn get_validation_parameter(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>> {
        let payload = pb::GetStateMetadata {
            key: key.to_owned(),
            collection: collection.to_owned(),
        }
        .encode_to_vec();
        let bytes = self.request(MsgType::GetStateMetadata, payload).await?;
        let result = pb::StateMetadataResult::decode(bytes.as_slice())
            .map_err(|_| Error::decode("metadata response", "invalid"))?;
        Ok(result
            .entries
            .into_iter()
            .find(|e| e.metakey == VALIDATION_PARAMETER)
            .map(|e| e.value))
    }

    async fn range_query(
        &self,
        collection: &str,
        start: &str,
        end: &str,
        metadata: Option<pb::QueryMetadata>,
    ) -> Result<(PeerIterator<KV>, QueryResponseMetadata)> {
        let payload = pb::GetStateByRange {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            collection: collection.to_owned(),
            metadata: metadata.map(|m| m.encode_to_vec()).unwrap_or_default(),
        }
        .encode_to_vec();
        let bytes = self.request(MsgType::GetStateByRange, payload).await?;
        self.iterator(bytes)
    }

    async fn rich_query(
        &self,
        collection: &str,
        query: &str,
        metadata: Option<pb::QueryMetadata>,
    ) -> Result<(PeerIterator<KV>, QueryResponseMetadata)> {
        let payload = pb::GetQueryResult {
            query: query.to_owned(),
            collection: collection.to_owned(),
            metadata: metadata.map(|m| m.encode_to_vec()).unwrap_or_default(),
        }
        .encode_to_vec();
        let bytes = self.request(MsgType::GetQueryResult, payload).await?;
        self.iterator(bytes)
    }

    fn iterator<T: QueryItem>(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(PeerIterator<T>, QueryResponseMetadata)> {
        let response = pb::QueryResponse::decode(bytes.as_slice())
            .map_err(|e| Error::decode("query response", e))?;
        let meta = pb::QueryResponseMetadata::decode(response.metadata.as_slice())
            .map_err(|e| Error::decode("query response metadata", e))?;
        Ok((
            PeerIterator {
                tx: self.inner.clone(),
                response,
                pos: 0,
                finished: false,
                _item: PhantomData,
            },
            QueryResponseMetadata {
                fetched_records_count: meta.fetched_records_count,
                bookmark: meta.bookmark,
            },
        ))
    }
}

fn pagination(page_size: i32, bookmark: &str) -> Option<pb::QueryMetadata> {
    Some(pb::QueryMetadata {
        page_size,
        bookmark: bookmark.to_owned(),
    })
}

fn start_or_substitute(start: &str) -> &str {
    if start.is_empty() {
        EMPTY_KEY_SUBSTITUTE
    } else {
        start
    }
}

fn require_collection(collection: &str) -> Result<()> {
    if collection.is_empty() {
        return Err(Error::invalid("collection must not be an empty string"));
    }
    Ok(())
}

impl TxInner {
    /// Sends one request and waits for its answer; the caller holds the response lock.
    async fn exchange(
        &self,
        rx: &mut mpsc::UnboundedReceiver<ChaincodeMessage>,
        t: MsgType,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let msg = ChaincodeMessage {
            r#type: t as i32,
            payload,
            txid: self.tx_id.clone(),
            channel_id: self.channel_id.clone(),
            ..Default::default()
        };
        self.conn.send(msg).await?;
        let answer = rx.recv().await.ok_or(Error::ConnectionClosed)?;
        match MsgType::try_from(answer.r#type) {
            Ok(MsgType::Response) => Ok(answer.payload),
            Ok(MsgType::Error) => Err(Error::Peer(
                String::from_utf8_lossy(&answer.payload).into_owned(),
            )),
            _ => Err(Error::UnexpectedMessage {
                txid: short_txid(&answer.txid).to_owned(),
                got: type_name(answer.r#type).to_owned(),
            }),
        }
    }

    async fn flush_closes(&self, rx: &mut mpsc::UnboundedReceiver<ChaincodeMessage>) -> Result<()> {
        let ids = std::mem::take(&mut *lock(&self.pending_closes));
        for id in ids {
            let payload = pb::QueryStateClose { id }.encode_to_vec();
            self.exchange(rx, MsgType::QueryStateClose, payload).await?;
        }
        Ok(())
    }
}

/// A query result type decoded from `QueryResultBytes`.
pub trait QueryItem: Send + Sized + 'static {
    /// Decodes one result.
    fn decode_item(bytes: &[u8]) -> Result<Self>;
}

impl QueryItem for KV {
    fn decode_item(bytes: &[u8]) -> Result<Self> {
        let kv =
            queryresult::Kv::decode(bytes).map_err(|e| Error::decode("result from bytes", e))?;
        Ok(KV {
            namespace: kv.namespace,
            key: kv.key,
            value: kv.value,
        })
    }
}

impl QueryItem for KeyModification {
    fn decode_item(bytes: &[u8]) -> Result<Self> {
        let m = queryresult::KeyModification::decode(bytes)
            .map_err(|e| Error::decode("result from bytes", e))?;
        Ok(KeyModification {
            tx_id: m.tx_id,
            value: m.value,
            timestamp: m.timestamp,
            is_delete: m.is_delete,
        })
    }
}

/// The iterator of [`PeerStub`] queries: holds one batch from the peer, fetches the next with
/// QUERY_STATE_NEXT, and is closed with QUERY_STATE_CLOSE if dropped while the peer still holds
/// results.
pub struct PeerIterator<T> {
    tx: Arc<TxInner>,
    response: pb::QueryResponse,
    pos: usize,
    finished: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T: QueryItem> QueryIterator for PeerIterator<T> {
    type Item = T;

    async fn next(&mut self) -> Result<Option<T>> {
        loop {
            if self.finished {
                return Ok(None);
            }
            if let Some(r) = self.response.results.get_mut(self.pos) {
                self.pos += 1;
                let bytes = std::mem::take(&mut r.result_bytes);
                return T::decode_item(&bytes).map(Some);
            }
            if !self.response.has_more {
                self.finished = true;
                return Ok(None);
            }
            let payload = pb::QueryStateNext {
                id: self.response.id.clone(),
            }
            .encode_to_vec();
            let bytes = {
                let mut rx = self.tx.responses.lock().await;
                self.tx.flush_closes(&mut rx).await?;
                self.tx
                    .exchange(&mut rx, MsgType::QueryStateNext, payload)
                    .await?
            };
            self.response = pb::QueryResponse::decode(bytes.as_slice())
                .map_err(|e| Error::decode("query response", e))?;
            self.pos = 0;
        }
    }

    async fn close(mut self) -> Result<()> {
        if self.finished || !self.response.has_more {
            self.finished = true;
            return Ok(());
        }
        self.finished = true;
        let payload = pb::QueryStateClose {
            id: self.response.id.clone(),
        }
        .encode_to_vec();
        let mut rx = self.tx.responses.lock().await;
        self.tx.flush_closes(&mut rx).await?;
        self.tx
            .exchange(&mut rx, MsgType::QueryStateClose, payload)
            .await
            .map(|_| ())
    }
}

impl<T> Drop for PeerIterator<T> {
    fn drop(&mut self) {
        // Once the peer said there is nothing more it has released the iterator itself.
        if !self.finished && self.response.has_more {
            lock(&self.tx.pending_closes).push(std::mem::take(&mut self.response.id));
        }
    }
}

impl ChaincodeStub for PeerStub {
    type StateIterator = PeerIterator<KV>;
    type HistoryIterator = PeerIterator<KeyModification>;

    fn args(&self) -> &[Vec<u8>] {
        &self.inner.args
    }

    fn tx_id(&self) -> &str {
        &self.inner.tx_id
    }

    fn channel_id(&self) -> &str {
        &self.inner.channel_id
    }

    fn creator(&self) -> &[u8] {
        &self.inner.creator
    }

    fn transient(&self) -> &TransientMap {
        &self.inner.transient
    }

    fn binding(&self) -> &[u8] {
        &self.inner.binding
    }

    fn signed_proposal(&self) -> Option<&SignedProposal> {
        self.inner.signed_proposal.as_ref()
    }

    fn tx_timestamp(&self) -> Result<Timestamp> {
        self.inner
            .timestamp
            .ok_or_else(|| Error::Unsupported("the transaction carries no timestamp".into()))
    }

    fn decorations(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.inner.decorations
    }

    fn set_event(&self, name: &str, payload: impl Into<Vec<u8>>) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid("event name can not be empty string"));
        }
        *lock(&self.inner.event) = Some(ChaincodeEvent {
            event_name: name.to_owned(),
            payload: payload.into(),
        });
        Ok(())
    }

    async fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.get("", key).await
    }

    async fn get_multiple_states(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        self.get_multiple("", keys).await
    }

    async fn put_state(&self, key: &str, value: impl Into<Vec<u8>> + Send) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key must not be an empty string"));
        }
        self.write(Self::record(WriteType::PutState, "", key, value.into()))
            .await
    }

    async fn del_state(&self, key: &str) -> Result<()> {
        self.write(Self::record(WriteType::DelState, "", key, Vec::new()))
            .await
    }

    async fn set_state_validation_parameter(
        &self,
        key: &str,
        policy: impl Into<Vec<u8>> + Send,
    ) -> Result<()> {
        self.put_validation_parameter("", key, policy.into()).await
    }

    async fn get_state_validation_parameter(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.get_validation_parameter("", key).await
    }

    async fn get_state_by_range(&self, start_key: &str, end_key: &str) -> Result<PeerIterator<KV>> {
        let start = start_or_substitute(start_key);
        composite::validate_simple_keys(&[start, end_key])?;
        Ok(self.range_query("", start, end_key, None).await?.0)
    }

    async fn get_state_by_range_with_pagination(
        &self,
        start_key: &str,
        end_key: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<(PeerIterator<KV>, QueryResponseMetadata)> {
        let start = start_or_substitute(start_key);
        composite::validate_simple_keys(&[start, end_key])?;
        self.range_query("", start, end_key, pagination(page_size, bookmark))
            .await
    }

    async fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<PeerIterator<KV>> {
        let (start, end) = composite::partial_composite_key_range(object_type, attributes)?;
        Ok(self.range_query("", &start, &end, None).await?.0)
    }

    async fn get_state_by_partial_composite_key_with_pagination(
        &self,
        object_type: &str,
        attributes: &[&str],
        page_size: i32,
        bookmark: &str,
    ) -> Result<(PeerIterator<KV>, QueryResponseMetadata)> {
        let (start, end) = composite::partial_composite_key_range(object_type, attributes)?;
        self.range_query("", &start, &end, pagination(page_size, bookmark))
            .await
    }

    async fn get_query_result(&self, query: &str) -> Result<PeerIterator<KV>> {
        Ok(self.rich_query("", query, None).await?.0)
    }

    async fn get_query_result_with_pagination(
        &self,
        query: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<(PeerIterator<KV>, QueryResponseMetadata)> {
        self.rich_query("", query, pagination(page_size, bookmark))
            .await
    }

    async fn get_history_for_key(&self, key: &str) -> Result<PeerIterator<KeyModification>> {
        let payload = pb::GetHistoryForKey {
            key: key.to_owned(),
        }
        .encode_to_vec();
        let bytes = self.request(MsgType::GetHistoryForKey, payload).await?;
        Ok(self.iterator(bytes)?.0)
    }

    async fn get_private_data(&self, collection: &str, key: &str) -> Result<Option<Vec<u8>>> {
        require_collection(collection)?;
        self.get(collection, key).await
    }

    async fn get_multiple_private_data(
        &self,
        collection: &str,
        keys: &[&str],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        require_collection(collection)?;
        self.get_multiple(collection, keys).await
    }

    async fn get_private_data_hash(&self, collection: &str, key: &str) -> Result<Option<Vec<u8>>> {
        require_collection(collection)?;
        let payload = pb::GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        }
        .encode_to_vec();
        let hash = self.request(MsgType::GetPrivateDataHash, payload).await?;
        Ok((!hash.is_empty()).then_some(hash))
    }

    async fn put_private_data(
        &self,
        collection: &str,
        key: &str,
        value: impl Into<Vec<u8>> + Send,
    ) -> Result<()> {
        require_collection(collection)?;
        if key.is_empty() {
            return Err(Error::invalid("key must not be an empty string"));
        }
        self.write(Self::record(
            WriteType::PutState,
            collection,
            key,
            value.into(),
        ))
        .await
    }

    async fn del_private_data(&self, collection: &str, key: &str) -> Result<()> {
        require_collection(collection)?;
        self.write(Self::record(
            WriteType::DelState,
            collection,
            key,
            Vec::new(),
        ))
        .await
    }

    async fn purge_private_data(&self, collection: &str, key: &str) -> Result<()> {
        require_collection(collection)?;
        self.write(Self::record(
            WriteType::PurgePrivateData,
            collection,
            key,
            Vec::new(),
        ))
        .await
    }

    async fn get_private_data_by_range(
        &self,
        collection: &str,
        start_key: &str,
        end_key: &str,
    ) -> Result<PeerIterator<KV>> {
        require_collection(collection)?;
        let start = start_or_substitute(start_key);
        composite::validate_simple_keys(&[start, end_key])?;
        Ok(self.range_query(collection, start, end_key, None).await?.0)
    }

    async fn get_private_data_by_partial_composite_key(
        &self,
        collection: &str,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<PeerIterator<KV>> {
        require_collection(collection)?;
        let (start, end) = composite::partial_composite_key_range(object_type, attributes)?;
        Ok(self.range_query(collection, &start, &end, None).await?.0)
    }

    async fn get_private_data_query_result(
        &self,
        collection: &str,
        query: &str,
    ) -> Result<PeerIterator<KV>> {
        require_collection(collection)?;
        Ok(self.rich_query(collection, query, None).await?.0)
    }

    async fn set_private_data_validation_parameter(
        &self,
        collection: &str,
        key: &str,
        policy: impl Into<Vec<u8>> + Send,
    ) -> Result<()> {
        self.put_validation_parameter(collection, key, policy.into())
            .await
    }

    async fn get_private_data_validation_parameter(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.get_validation_parameter(collection, key).await
    }

    async fn invoke_chaincode(
        &self,
        chaincode_name: &str,
        args: Vec<Vec<u8>>,
        channel: &str,
    ) -> Response {
        // Internally the peer names a chaincode on another channel "name/channel".
        let name = if channel.is_empty() {
            chaincode_name.to_owned()
        } else {
            format!("{chaincode_name}/{channel}")
        };
        let spec = pb::ChaincodeSpec {
            chaincode_id: Some(pb::ChaincodeId {
                name,
                ..Default::default()
            }),
            input: Some(ChaincodeInput {
                args,
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = match self
            .request(MsgType::InvokeChaincode, spec.encode_to_vec())
            .await
        {
            Ok(b) => b,
            Err(e) => return Response::error(e.to_string()),
        };
        let inner = match ChaincodeMessage::decode(bytes.as_slice()) {
            Ok(m) => m,
            Err(e) => return Response::error(e.to_string()),
        };
        if inner.r#type != MsgType::Completed as i32 {
            return Response::error(String::from_utf8_lossy(&inner.payload).into_owned());
        }
        match pb::Response::decode(inner.payload.as_slice()) {
            Ok(r) => Response {
                status: r.status,
                message: r.message,
                payload: r.payload,
            },
            Err(e) => Response::error(e.to_string()),
        }
    }
}
