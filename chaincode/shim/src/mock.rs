//! An in-memory ledger and stub for testing chaincode without a peer.
//!
//! [`MockLedger`] holds committed state (public, private per collection, key metadata, history)
//! of one channel. Each transaction gets a [`MockStub`] from [`MockLedger::stub`]; its writes are
//! buffered and applied by [`MockStub::commit`] (or dropped by [`MockStub::rollback`]), which
//! returns a [`TxRecord`] of what the transaction wrote and emitted.
//!
//! Reads follow Fabric's simulation rules, unlike Go's `shimtest.MockStub`: a transaction reads
//! committed state only (it does not see its own writes), range queries skip the composite key
//! namespace, private data queries are refused once the transaction wrote (and writes after such a
//! query), rich queries fail as they do on a LevelDB peer.
//!
//! ```
//! # use fabric_chaincode::{mock::MockLedger, ChaincodeStub};
//! # tokio_test_block_on(async {
//! let ledger = MockLedger::new("mychannel");
//! let stub = ledger.stub("tx1").function("put", ["k", "v"]).build();
//! stub.put_state("k", "v").await.unwrap();
//! assert_eq!(stub.get_state("k").await.unwrap(), None); // not committed yet
//! let record = stub.commit().unwrap();
//! assert_eq!(record.writes[0].key, "k");
//! let stub = ledger.stub("tx2").build();
//! assert_eq!(stub.get_state("k").await.unwrap(), Some(b"v".to_vec()));
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use crate::chaincode::Chaincode;
use crate::composite::{self, EMPTY_KEY_SUBSTITUTE};
use crate::error::{Error, Result};
use crate::stub::{ChaincodeStub, QueryIterator};
use crate::types::{
    ChaincodeEvent, KeyModification, QueryResponseMetadata, Response, SignedProposal, Timestamp,
    TransientMap, KV, VALIDATION_PARAMETER,
};

/// The first timestamp the ledger's clock hands out (2024-01-01T00:00:00Z); each transaction
/// without an explicit timestamp gets the next second, so runs are reproducible.
pub const MOCK_EPOCH_SECONDS: i64 = 1_704_067_200;

#[derive(Debug, Clone, Default)]
struct Entry {
    value: Vec<u8>,
    metadata: BTreeMap<String, Vec<u8>>,
}

type OtherChaincode = Arc<dyn Fn(&[Vec<u8>]) -> Response + Send + Sync>;

#[derive(Default)]
struct LedgerState {
    public: BTreeMap<String, Entry>,
    private: BTreeMap<String, BTreeMap<String, Entry>>,
    history: HashMap<String, Vec<KeyModification>>,
    log: Vec<TxRecord>,
    clock: i64,
    other_chaincodes: HashMap<String, OtherChaincode>,
}

struct LedgerInner {
    channel_id: String,
    namespace: String,
    default_creator: Mutex<Vec<u8>>,
    state: Mutex<LedgerState>,
}

/// The committed state of one channel's chaincode namespace, shared by the transactions run on it.
#[derive(Clone)]
pub struct MockLedger {
    inner: Arc<LedgerInner>,
}

/// One public write of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    /// The key written.
    pub key: String,
    /// The value, or `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// One private data write of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateWrite {
    /// The collection.
    pub collection: String,
    /// The key written.
    pub key: String,
    /// The value, or `None` for a delete or purge.
    pub value: Option<Vec<u8>>,
    /// Whether the write was a purge.
    pub purge: bool,
}

/// One key metadata write (for example a key-level endorsement policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataWrite {
    /// The collection, empty for public state.
    pub collection: String,
    /// The key.
    pub key: String,
    /// The metadata entry name, e.g. [`VALIDATION_PARAMETER`].
    pub name: String,
    /// The entry's value.
    pub value: Vec<u8>,
}

/// What one transaction wrote and emitted, as applied at commit (keys in sorted order, like a
/// Fabric read-write set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxRecord {
    /// The transaction ID.
    pub tx_id: String,
    /// The transaction timestamp.
    pub timestamp: Option<Timestamp>,
    /// Public writes.
    pub writes: Vec<StateWrite>,
    /// Private data writes.
    pub private_writes: Vec<PrivateWrite>,
    /// Key metadata writes.
    pub metadata_writes: Vec<MetadataWrite>,
    /// The chaincode event, if one was set.
    pub event: Option<ChaincodeEvent>,
}

/// The outcome of [`MockLedger::invoke`]: the chaincode's response and, when it succeeded, what
/// was committed.
#[derive(Debug, Clone)]
pub struct MockInvocation {
    /// The chaincode's response.
    pub response: Response,
    /// The committed record; `None` when the response was an error (nothing is committed).
    pub record: Option<TxRecord>,
}

impl MockLedger {
    /// An empty ledger for `channel_id`, chaincode namespace `"mockcc"`.
    pub fn new(channel_id: &str) -> Self {
        Self::with_namespace(channel_id, "mockcc")
    }

    /// An empty ledger for `channel_id` whose query results carry `namespace`.
    pub fn with_namespace(channel_id: &str, namespace: &str) -> Self {
        MockLedger {
            inner: Arc::new(LedgerInner {
                channel_id: channel_id.to_owned(),
                namespace: namespace.to_owned(),
                default_creator: Mutex::new(Vec::new()),
                state: Mutex::new(LedgerState::default()),
            }),
        }
    }

    /// The channel ID.
    pub fn channel_id(&self) -> &str {
        &self.inner.channel_id
    }

    /// Sets the creator (serialized identity) used by transactions that do not name one.
    pub fn set_default_creator(&self, creator: impl Into<Vec<u8>>) {
        *lock(&self.inner.default_creator) = creator.into();
    }

    /// Starts describing a transaction with ID `tx_id`.
    pub fn stub(&self, tx_id: &str) -> MockStubBuilder {
        MockStubBuilder {
            ledger: self.clone(),
            tx_id: tx_id.to_owned(),
            args: Vec::new(),
            creator: None,
            transient: TransientMap::new(),
            timestamp: None,
            nonce: Vec::new(),
            signed_proposal: None,
            decorations: BTreeMap::new(),
        }
    }

    /// Runs one transaction through a chaincode's `invoke`: commits its writes when the response
    /// is a success, discards them otherwise (as an unendorsed proposal would be).
    pub async fn invoke<C: Chaincode<MockStub>>(
        &self,
        chaincode: &C,
        builder: MockStubBuilder,
    ) -> Result<MockInvocation> {
        let stub = builder.build();
        let response = chaincode.invoke(stub.clone()).await;
        let record = if response.is_ok() {
            Some(stub.commit()?)
        } else {
            stub.rollback();
            None
        };
        Ok(MockInvocation { response, record })
    }

    /// Registers another chaincode that `invoke_chaincode(name, …)` reaches.
    pub fn register_chaincode(
        &self,
        name: &str,
        handler: impl Fn(&[Vec<u8>]) -> Response + Send + Sync + 'static,
    ) {
        lock(&self.inner.state)
            .other_chaincodes
            .insert(name.to_owned(), Arc::new(handler));
    }

    /// The committed public value of `key`.
    pub fn state(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.inner.state)
            .public
            .get(key)
            .map(|e| e.value.clone())
    }

    /// All committed public keys and values, in key order.
    pub fn public_state(&self) -> Vec<(String, Vec<u8>)> {
        lock(&self.inner.state)
            .public
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    /// The committed private value of `key` in `collection`.
    pub fn private_data(&self, collection: &str, key: &str) -> Option<Vec<u8>> {
        lock(&self.inner.state)
            .private
            .get(collection)
            .and_then(|c| c.get(key))
            .map(|e| e.value.clone())
    }

    /// A committed metadata entry of a key (`collection` empty for public state).
    pub fn metadata(&self, collection: &str, key: &str, name: &str) -> Option<Vec<u8>> {
        let state = lock(&self.inner.state);
        let entry = if collection.is_empty() {
            state.public.get(key)
        } else {
            state.private.get(collection).and_then(|c| c.get(key))
        };
        entry.and_then(|e| e.metadata.get(name).cloned())
    }

    /// Every committed transaction, oldest first.
    pub fn transactions(&self) -> Vec<TxRecord> {
        lock(&self.inner.state).log.clone()
    }

    /// The most recently committed transaction.
    pub fn last_transaction(&self) -> Option<TxRecord> {
        lock(&self.inner.state).log.last().cloned()
    }
}

/// Describes one transaction before it starts; [`build`](Self::build) gives its stub.
pub struct MockStubBuilder {
    ledger: MockLedger,
    tx_id: String,
    args: Vec<Vec<u8>>,
    creator: Option<Vec<u8>>,
    transient: TransientMap,
    timestamp: Option<Timestamp>,
    nonce: Vec<u8>,
    signed_proposal: Option<SignedProposal>,
    decorations: BTreeMap<String, Vec<u8>>,
}

impl MockStubBuilder {
    /// Sets the raw arguments (function name first).
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the function name and string parameters.
    pub fn function<I, A>(mut self, function: &str, params: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        self.args = std::iter::once(function.as_bytes().to_vec())
            .chain(params.into_iter().map(Into::into))
            .collect();
        self
    }

    /// Sets the creator (a serialized `msp.SerializedIdentity`).
    pub fn creator(mut self, creator: impl Into<Vec<u8>>) -> Self {
        self.creator = Some(creator.into());
        self
    }

    /// Adds one transient entry.
    pub fn transient(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.transient.insert(name.to_owned(), value.into());
        self
    }

    /// Replaces the transient map.
    pub fn transient_map(mut self, map: TransientMap) -> Self {
        self.transient = map;
        self
    }

    /// Sets the transaction timestamp.
    pub fn timestamp(mut self, seconds: i64, nanos: i32) -> Self {
        self.timestamp = Some(Timestamp { seconds, nanos });
        self
    }

    /// Sets the proposal nonce that enters the binding.
    pub fn nonce(mut self, nonce: impl Into<Vec<u8>>) -> Self {
        self.nonce = nonce.into();
        self
    }

    /// Sets the signed proposal returned by `signed_proposal()`.
    pub fn signed_proposal(mut self, proposal: SignedProposal) -> Self {
        self.signed_proposal = Some(proposal);
        self
    }

    /// Adds a decoration.
    pub fn decoration(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.decorations.insert(name.to_owned(), value.into());
        self
    }

    /// Starts the transaction.
    pub fn build(self) -> MockStub {
        let inner = &self.ledger.inner;
        let creator = self
            .creator
            .unwrap_or_else(|| lock(&inner.default_creator).clone());
        let timestamp = {
            let mut state = lock(&inner.state);
            match self.timestamp {
                Some(ts) => ts,
                None => {
                    state.clock += 1;
                    Timestamp {
                        seconds: MOCK_EPOCH_SECONDS + state.clock,
                        nanos: 0,
                    }
                }
            }
        };
        // Same construction as the Go shim: SHA-256(nonce ‖ creator ‖ epoch as u64 LE); the
        // mock's epoch is 0.
        let mut h = Sha256::new();
        h.update(&self.nonce);
        h.update(&creator);
        h.update(0u64.to_le_bytes());
        let binding = h.finalize().to_vec();
        MockStub {
            ctx: Arc::new(MockTxContext {
                tx_id: self.tx_id,
                args: self.args,
                creator,
                transient: self.transient,
                timestamp,
                binding,
                signed_proposal: self.signed_proposal,
                decorations: self.decorations,
            }),
            ledger: self.ledger,
            pending: Arc::new(Mutex::new(Pending::default())),
        }
    }
}

struct MockTxContext {
    tx_id: String,
    args: Vec<Vec<u8>>,
    creator: Vec<u8>,
    transient: TransientMap,
    timestamp: Timestamp,
    binding: Vec<u8>,
    signed_proposal: Option<SignedProposal>,
    decorations: BTreeMap<String, Vec<u8>>,
}

/// A pending private write: the value (`None` deletes) and whether it purges.
type PrivatePending = (Option<Vec<u8>>, bool);

#[derive(Default)]
struct Pending {
    writes: BTreeMap<String, Option<Vec<u8>>>,
    private_writes: BTreeMap<(String, String), PrivatePending>,
    metadata: BTreeMap<(String, String, String), Vec<u8>>,
    event: Option<ChaincodeEvent>,
    write_performed: bool,
    private_query_performed: bool,
    finished: bool,
}

/// A transaction on a [`MockLedger`], implementing [`ChaincodeStub`]. Clones share the
/// transaction.
#[derive(Clone)]
pub struct MockStub {
    ctx: Arc<MockTxContext>,
    ledger: MockLedger,
    pending: Arc<Mutex<Pending>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a test transaction must not turn every later access into a second panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn non_empty(v: &[u8]) -> Option<Vec<u8>> {
    (!v.is_empty()).then(|| v.to_vec())
}

impl MockStub {
    /// The ledger this transaction runs on.
    pub fn ledger(&self) -> &MockLedger {
        &self.ledger
    }

    /// The event set so far.
    pub fn event(&self) -> Option<ChaincodeEvent> {
        lock(&self.pending).event.clone()
    }

    /// Applies the transaction's writes to the ledger and records it.
    pub fn commit(&self) -> Result<TxRecord> {
        let mut pending = lock(&self.pending);
        if pending.finished {
            return Err(Error::Unsupported(format!(
                "transaction {} already finished",
                self.ctx.tx_id
            )));
        }
        let taken = std::mem::take(&mut *pending);
        pending.finished = true;
        drop(pending);
        let pending = taken;
        let mut state = lock(&self.ledger.inner.state);
        let ts = self.ctx.timestamp;
        let mut record = TxRecord {
            tx_id: self.ctx.tx_id.clone(),
            timestamp: Some(ts),
            event: pending.event,
            ..TxRecord::default()
        };
        for (key, value) in pending.writes {
            let value = value.filter(|v| !v.is_empty());
            match &value {
                Some(v) => {
                    let entry = state.public.entry(key.clone()).or_default();
                    entry.value = v.clone();
                }
                None => {
                    state.public.remove(&key);
                }
            }
            state
                .history
                .entry(key.clone())
                .or_default()
                .push(KeyModification {
                    tx_id: self.ctx.tx_id.clone(),
                    value: value.clone().unwrap_or_default(),
                    timestamp: Some(ts),
                    is_delete: value.is_none(),
                });
            record.writes.push(StateWrite { key, value });
        }
        for ((collection, key), (value, purge)) in pending.private_writes {
            let value = value.filter(|v| !v.is_empty());
            let coll = state.private.entry(collection.clone()).or_default();
            match &value {
                Some(v) => coll.entry(key.clone()).or_default().value = v.clone(),
                None => {
                    coll.remove(&key);
                }
            }
            record.private_writes.push(PrivateWrite {
                collection,
                key,
                value,
                purge,
            });
        }
        for ((collection, key, name), value) in pending.metadata {
            // Metadata lives with a value: it is kept only for keys that exist after this
            // transaction's value writes.
            let entry = if collection.is_empty() {
                state.public.get_mut(&key)
            } else {
                state
                    .private
                    .get_mut(&collection)
                    .and_then(|c| c.get_mut(&key))
            };
            if let Some(entry) = entry {
                if value.is_empty() {
                    entry.metadata.remove(&name);
                } else {
                    entry.metadata.insert(name.clone(), value.clone());
                }
            }
            record.metadata_writes.push(MetadataWrite {
                collection,
                key,
                name,
                value,
            });
        }
        state.log.push(record.clone());
        Ok(record)
    }

    /// Discards the transaction's writes.
    pub fn rollback(&self) {
        let mut pending = lock(&self.pending);
        *pending = Pending::default();
        pending.finished = true;
    }

    fn state(&self) -> MutexGuard<'_, LedgerState> {
        lock(&self.ledger.inner.state)
    }

    fn check_write(&self) -> Result<()> {
        let mut pending = lock(&self.pending);
        if pending.finished {
            return Err(Error::Unsupported(format!(
                "transaction {} already finished",
                self.ctx.tx_id
            )));
        }
        if pending.private_query_performed {
            return Err(Error::Unsupported(format!(
                "txid [{}]: unsuppored transaction. Transaction has already performed queries on pvt data. Writes are not allowed",
                self.ctx.tx_id
            )));
        }
        pending.write_performed = true;
        Ok(())
    }

    fn check_private_query(&self) -> Result<()> {
        let mut pending = lock(&self.pending);
        if pending.write_performed {
            return Err(Error::Unsupported(format!(
                "txid [{}]: unsuppored transaction. Queries on pvt data is supported only in a read-only transaction",
                self.ctx.tx_id
            )));
        }
        pending.private_query_performed = true;
        Ok(())
    }

    fn range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
        limit: Option<usize>,
    ) -> (Vec<KV>, String) {
        let state = self.state();
        let empty = BTreeMap::new();
        let map = if collection.is_empty() {
            &state.public
        } else {
            state.private.get(collection).unwrap_or(&empty)
        };
        let upper = if end.is_empty() {
            std::ops::Bound::Unbounded
        } else {
            std::ops::Bound::Excluded(end.to_owned())
        };
        if !end.is_empty() && start >= end {
            return (Vec::new(), String::new());
        }
        let mut iter = map.range((std::ops::Bound::Included(start.to_owned()), upper));
        let mut out = Vec::new();
        for (k, e) in iter.by_ref() {
            out.push(KV {
                namespace: self.ledger.inner.namespace.clone(),
                key: k.clone(),
                value: e.value.clone(),
            });
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        // As LevelDB's paginated scanner: the bookmark is the key after the page, if any.
        let bookmark = if limit.is_some() {
            iter.next().map(|(k, _)| k.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        (out, bookmark)
    }

    fn paginated(
        &self,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> (MockIterator<KV>, QueryResponseMetadata) {
        let start = if bookmark.is_empty() { start } else { bookmark };
        // The peer treats a non-positive page size as "up to the total query limit".
        let limit = if page_size > 0 {
            page_size as usize
        } else {
            usize::MAX
        };
        let (items, bookmark) = self.range("", start, end, Some(limit));
        let meta = QueryResponseMetadata {
            fetched_records_count: items.len() as i32,
            bookmark,
        };
        (MockIterator::new(items), meta)
    }

    fn metadata_of(&self, collection: &str, key: &str) -> Option<Vec<u8>> {
        let state = self.state();
        let entry = if collection.is_empty() {
            state.public.get(key)
        } else {
            state.private.get(collection).and_then(|c| c.get(key))
        };
        entry.and_then(|e| e.metadata.get(VALIDATION_PARAMETER).cloned())
    }

    fn put_metadata(&self, collection: &str, key: &str, value: Vec<u8>) -> Result<()> {
        self.check_write()?;
        lock(&self.pending).metadata.insert(
            (
                collection.to_owned(),
                key.to_owned(),
                VALIDATION_PARAMETER.to_owned(),
            ),
            value,
        );
        Ok(())
    }
}

fn require_collection(collection: &str) -> Result<()> {
    if collection.is_empty() {
        return Err(Error::invalid("collection must not be an empty string"));
    }
    Ok(())
}

fn require_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key must not be an empty string"));
    }
    Ok(())
}

/// The iterator type of [`MockStub`]: results are taken when the query runs.
pub struct MockIterator<T> {
    items: VecDeque<T>,
}

impl<T> MockIterator<T> {
    fn new(items: Vec<T>) -> Self {
        MockIterator {
            items: items.into(),
        }
    }
}

impl<T: Send> QueryIterator for MockIterator<T> {
    type Item = T;

    async fn next(&mut self) -> Result<Option<T>> {
        Ok(self.items.pop_front())
    }

    async fn close(self) -> Result<()> {
        Ok(())
    }
}

impl ChaincodeStub for MockStub {
    type StateIterator = MockIterator<KV>;
    type HistoryIterator = MockIterator<KeyModification>;

    fn args(&self) -> &[Vec<u8>] {
        &self.ctx.args
    }

    fn tx_id(&self) -> &str {
        &self.ctx.tx_id
    }

    fn channel_id(&self) -> &str {
        &self.ledger.inner.channel_id
    }

    fn creator(&self) -> &[u8] {
        &self.ctx.creator
    }

    fn transient(&self) -> &TransientMap {
        &self.ctx.transient
    }

    fn binding(&self) -> &[u8] {
        &self.ctx.binding
    }

    fn signed_proposal(&self) -> Option<&SignedProposal> {
        self.ctx.signed_proposal.as_ref()
    }

    fn tx_timestamp(&self) -> Result<Timestamp> {
        Ok(self.ctx.timestamp)
    }

    fn decorations(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.ctx.decorations
    }

    fn set_event(&self, name: &str, payload: impl Into<Vec<u8>>) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid("event name can not be empty string"));
        }
        lock(&self.pending).event = Some(ChaincodeEvent {
            event_name: name.to_owned(),
            payload: payload.into(),
        });
        Ok(())
    }

    async fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .state()
            .public
            .get(key)
            .and_then(|e| non_empty(&e.value)))
    }

    async fn get_multiple_states(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let state = self.state();
        Ok(keys
            .iter()
            .map(|k| state.public.get(*k).and_then(|e| non_empty(&e.value)))
            .collect())
    }

    async fn put_state(&self, key: &str, value: impl Into<Vec<u8>> + Send) -> Result<()> {
        require_key(key)?;
        self.check_write()?;
        lock(&self.pending)
            .writes
            .insert(key.to_owned(), Some(value.into()));
        Ok(())
    }

    async fn del_state(&self, key: &str) -> Result<()> {
        self.check_write()?;
        lock(&self.pending).writes.insert(key.to_owned(), None);
        Ok(())
    }

    async fn set_state_validation_parameter(
        &self,
        key: &str,
        policy: impl Into<Vec<u8>> + Send,
    ) -> Result<()> {
        self.put_metadata("", key, policy.into())
    }

    async fn get_state_validation_parameter(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.metadata_of("", key))
    }

    async fn get_state_by_range(&self, start_key: &str, end_key: &str) -> Result<MockIterator<KV>> {
        let start = if start_key.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start_key
        };
        composite::validate_simple_keys(&[start, end_key])?;
        Ok(MockIterator::new(self.range("", start, end_key, None).0))
    }

    async fn get_state_by_range_with_pagination(
        &self,
        start_key: &str,
        end_key: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<(MockIterator<KV>, QueryResponseMetadata)> {
        let start = if start_key.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start_key
        };
        composite::validate_simple_keys(&[start, end_key])?;
        Ok(self.paginated(start, end_key, page_size, bookmark))
    }

    async fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<MockIterator<KV>> {
        let (start, end) = composite::partial_composite_key_range(object_type, attributes)?;
        Ok(MockIterator::new(self.range("", &start, &end, None).0))
    }

    async fn get_state_by_partial_composite_key_with_pagination(
        &self,
        object_type: &str,
        attributes: &[&str],
        page_size: i32,
        bookmark: &str,
    ) -> Result<(MockIterator<KV>, QueryResponseMetadata)> {
        let (start, end) = composite::partial_composite_key_range(object_type, attributes)?;
        Ok(self.paginated(&start, &end, page_size, bookmark))
    }

    async fn get_query_result(&self, _query: &str) -> Result<MockIterator<KV>> {
        Err(Error::Peer(format!(
            "GET_QUERY_RESULT failed: transaction ID: {}: ExecuteQuery not supported for leveldb",
            self.ctx.tx_id
        )))
    }

    async fn get_query_result_with_pagination(
        &self,
        _query: &str,
        _page_size: i32,
        _bookmark: &str,
    ) -> Result<(MockIterator<KV>, QueryResponseMetadata)> {
        Err(Error::Peer(format!(
            "GET_QUERY_RESULT failed: transaction ID: {}: ExecuteQueryWithMetadata not supported for leveldb",
            self.ctx.tx_id
        )))
    }

    async fn get_history_for_key(&self, key: &str) -> Result<MockIterator<KeyModification>> {
        let state = self.state();
        let mut items = state.history.get(key).cloned().unwrap_or_default();
        items.reverse();
        Ok(MockIterator::new(items))
    }

    async fn get_private_data(&self, collection: &str, key: &str) -> Result<Option<Vec<u8>>> {
        require_collection(collection)?;
        Ok(self
            .state()
            .private
            .get(collection)
            .and_then(|c| c.get(key))
            .and_then(|e| non_empty(&e.value)))
    }

    async fn get_multiple_private_data(
        &self,
        collection: &str,
        keys: &[&str],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        require_collection(collection)?;
        let state = self.state();
        let coll = state.private.get(collection);
        Ok(keys
            .iter()
            .map(|k| {
                coll.and_then(|c| c.get(*k))
                    .and_then(|e| non_empty(&e.value))
            })
            .collect())
    }

    async fn get_private_data_hash(&self, collection: &str, key: &str) -> Result<Option<Vec<u8>>> {
        require_collection(collection)?;
        Ok(self
            .state()
            .private
            .get(collection)
            .and_then(|c| c.get(key))
            .filter(|e| !e.value.is_empty())
            .map(|e| Sha256::digest(&e.value).to_vec()))
    }

    async fn put_private_data(
        &self,
        collection: &str,
        key: &str,
        value: impl Into<Vec<u8>> + Send,
    ) -> Result<()> {
        require_collection(collection)?;
        require_key(key)?;
        self.check_write()?;
        lock(&self.pending).private_writes.insert(
            (collection.to_owned(), key.to_owned()),
            (Some(value.into()), false),
        );
        Ok(())
    }

    async fn del_private_data(&self, collection: &str, key: &str) -> Result<()> {
        require_collection(collection)?;
        self.check_write()?;
        lock(&self.pending)
            .private_writes
            .insert((collection.to_owned(), key.to_owned()), (None, false));
        Ok(())
    }

    async fn purge_private_data(&self, collection: &str, key: &str) -> Result<()> {
        require_collection(collection)?;
        self.check_write()?;
        lock(&self.pending)
            .private_writes
            .insert((collection.to_owned(), key.to_owned()), (None, true));
        Ok(())
    }

    async fn get_private_data_by_range(
        &self,
        collection: &str,
        start_key: &str,
        end_key: &str,
    ) -> Result<MockIterator<KV>> {
        require_collection(collection)?;
        let start = if start_key.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start_key
        };
        composite::validate_simple_keys(&[start, end_key])?;
        self.check_private_query()?;
        Ok(MockIterator::new(
            self.range(collection, start, end_key, None).0,
        ))
    }

    async fn get_private_data_by_partial_composite_key(
        &self,
        collection: &str,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<MockIterator<KV>> {
        require_collection(collection)?;
        let (start, end) = composite::partial_composite_key_range(object_type, attributes)?;
        self.check_private_query()?;
        Ok(MockIterator::new(
            self.range(collection, &start, &end, None).0,
        ))
    }

    async fn get_private_data_query_result(
        &self,
        collection: &str,
        _query: &str,
    ) -> Result<MockIterator<KV>> {
        require_collection(collection)?;
        self.check_private_query()?;
        Err(Error::Peer(format!(
            "GET_QUERY_RESULT failed: transaction ID: {}: ExecuteQuery not supported for leveldb",
            self.ctx.tx_id
        )))
    }

    async fn set_private_data_validation_parameter(
        &self,
        collection: &str,
        key: &str,
        policy: impl Into<Vec<u8>> + Send,
    ) -> Result<()> {
        require_collection(collection)?;
        self.put_metadata(collection, key, policy.into())
    }

    async fn get_private_data_validation_parameter(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>> {
        require_collection(collection)?;
        Ok(self.metadata_of(collection, key))
    }

    async fn invoke_chaincode(
        &self,
        chaincode_name: &str,
        args: Vec<Vec<u8>>,
        channel: &str,
    ) -> Response {
        if !channel.is_empty() && channel != self.ledger.inner.channel_id {
            return Response::error(format!(
                "mock ledger has no channel {channel} to invoke {chaincode_name} on"
            ));
        }
        let handler = self.state().other_chaincodes.get(chaincode_name).cloned();
        match handler {
            Some(h) => h(&args),
            None => Response::error(format!("chaincode {chaincode_name} is not registered")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn reads_do_not_see_own_writes_until_commit() {
        rt().block_on(async {
            let ledger = MockLedger::new("ch");
            let s = ledger.stub("t1").build();
            s.put_state("a", "1").await.unwrap();
            assert_eq!(s.get_state("a").await.unwrap(), None);
            let rec = s.commit().unwrap();
            assert_eq!(
                rec.writes,
                vec![StateWrite {
                    key: "a".into(),
                    value: Some(b"1".to_vec())
                }]
            );
            let s = ledger.stub("t2").build();
            assert_eq!(s.get_state("a").await.unwrap(), Some(b"1".to_vec()));
            s.del_state("a").await.unwrap();
            s.commit().unwrap();
            assert_eq!(ledger.state("a"), None);
            assert!(s.commit().is_err(), "a transaction commits once");
        });
    }

    #[test]
    fn ranges_pagination_and_composite_keys() {
        rt().block_on(async {
            let ledger = MockLedger::new("ch");
            let s = ledger.stub("t1").build();
            for k in ["a", "b", "c", "d", "e"] {
                s.put_state(k, k).await.unwrap();
            }
            let ck = s.create_composite_key("lic", &["L1", "f1"]).unwrap();
            s.put_state(&ck, "x").await.unwrap();
            let ck2 = s.create_composite_key("lic", &["L2", "f1"]).unwrap();
            s.put_state(&ck2, "y").await.unwrap();
            s.commit().unwrap();

            let s = ledger.stub("t2").build();
            let all = s.get_state_by_range("", "").await.unwrap();
            let keys: Vec<_> = all
                .collect_all()
                .await
                .unwrap()
                .into_iter()
                .map(|kv| kv.key)
                .collect();
            assert_eq!(
                keys,
                ["a", "b", "c", "d", "e"],
                "open ranges skip composite keys"
            );

            let (page, meta) = s
                .get_state_by_range_with_pagination("a", "e", 2, "")
                .await
                .unwrap();
            assert_eq!(page.collect_all().await.unwrap().len(), 2);
            assert_eq!(meta.fetched_records_count, 2);
            assert_eq!(meta.bookmark, "c");
            let (page, meta) = s
                .get_state_by_range_with_pagination("a", "e", 2, &meta.bookmark)
                .await
                .unwrap();
            let keys: Vec<_> = page
                .collect_all()
                .await
                .unwrap()
                .into_iter()
                .map(|kv| kv.key)
                .collect();
            assert_eq!(keys, ["c", "d"]);
            assert_eq!(meta.bookmark, "", "end key is exclusive, nothing follows");

            let l1 = s
                .get_state_by_partial_composite_key("lic", &["L1"])
                .await
                .unwrap()
                .collect_all()
                .await
                .unwrap();
            assert_eq!(l1.len(), 1);
            assert_eq!(l1[0].value, b"x");
            let (_, meta) = s
                .get_state_by_partial_composite_key_with_pagination("lic", &[], 1, "")
                .await
                .unwrap();
            assert_eq!(meta.bookmark, ck2);
            assert!(s.get_state_by_range("\u{0}x", "").await.is_err());
        });
    }

    #[test]
    fn history_private_data_metadata_events() {
        rt().block_on(async {
            let ledger = MockLedger::new("ch");
            let s = ledger.stub("t1").timestamp(10, 0).build();
            s.put_state("k", "v1").await.unwrap();
            s.set_state_validation_parameter("k", vec![1, 2])
                .await
                .unwrap();
            s.put_private_data("_implicit_org_Org1MSP", "p", "secret")
                .await
                .unwrap();
            s.set_event("Issued", "k").unwrap();
            let rec = s.commit().unwrap();
            assert_eq!(rec.event.unwrap().event_name, "Issued");
            assert_eq!(rec.private_writes[0].value.as_deref(), Some(&b"secret"[..]));
            assert_eq!(rec.metadata_writes[0].name, VALIDATION_PARAMETER);

            let s = ledger.stub("t2").timestamp(20, 0).build();
            assert_eq!(
                s.get_state_validation_parameter("k").await.unwrap(),
                Some(vec![1, 2])
            );
            assert_eq!(
                s.get_private_data_hash("_implicit_org_Org1MSP", "p")
                    .await
                    .unwrap(),
                Some(Sha256::digest(b"secret").to_vec())
            );
            let found = s
                .get_private_data_by_range("_implicit_org_Org1MSP", "", "")
                .await
                .unwrap()
                .collect_all()
                .await
                .unwrap();
            assert_eq!(found.len(), 1);
            let err = s.put_state("k", "v2").await.unwrap_err();
            assert!(err.to_string().contains("Writes are not allowed"), "{err}");
            s.rollback();

            let s = ledger.stub("t3").timestamp(30, 0).build();
            s.del_state("k").await.unwrap();
            let err = s
                .get_private_data_by_range("_implicit_org_Org1MSP", "", "")
                .await
                .err()
                .unwrap();
            assert!(err.to_string().contains("read-only transaction"));
            s.commit().unwrap();

            let s = ledger.stub("t4").build();
            let h = s
                .get_history_for_key("k")
                .await
                .unwrap()
                .collect_all()
                .await
                .unwrap();
            assert_eq!(h.len(), 2);
            assert_eq!(h[0].tx_id, "t3");
            assert!(h[0].is_delete);
            assert_eq!(h[1].value, b"v1");
            assert_eq!(h[1].timestamp.unwrap().seconds, 10);
            assert!(s.get_query_result("{}").await.is_err());
            assert!(s.set_event("", "x").is_err());
            assert!(s.put_private_data("", "k", "v").await.is_err());
        });
    }

    #[test]
    fn binding_and_context() {
        let ledger = MockLedger::new("ch");
        ledger.set_default_creator(b"creator".to_vec());
        let s = ledger
            .stub("t1")
            .function("f", ["a", "b"])
            .nonce(b"n".to_vec())
            .transient("t", "v")
            .build();
        assert_eq!(
            s.function_and_parameters(),
            ("f".to_owned(), vec!["a".to_owned(), "b".to_owned()])
        );
        let mut h = Sha256::new();
        h.update(b"ncreator");
        h.update([0u8; 8]);
        assert_eq!(s.binding(), &h.finalize()[..]);
        assert_eq!(s.transient().get("t").unwrap(), b"v");
        assert_eq!(s.channel_id(), "ch");
        assert_eq!(s.tx_timestamp().unwrap().seconds, MOCK_EPOCH_SECONDS + 1);
    }
}
