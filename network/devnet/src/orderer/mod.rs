//! The ordering service: a solo orderer with Fabric's block cutting, block assembly and signing,
//! and the `AtomicBroadcast` gRPC service (mirrors Fabric's `orderer/common`: `blockcutter`,
//! `multichannel.BlockWriter`, `broadcast`, `msgprocessor`, and `common/deliver`).
//!
//! One [`Chain`] per channel holds the channel's [`BlockCutter`]: Broadcast cuts batches by size as
//! it orders each envelope, and the chain's thread cuts by the batch timeout, assembles each block
//! (number, previous hash, data hash), fills `LAST_CONFIG` and the `SIGNATURES` metadata signed by
//! the orderer identity, writes it durably to the orderer's block store (a [`Ledger`] per channel),
//! then hands it to every registered [`BlockSink`] (the joined peers' channels). Each sink has its
//! own delivery thread that commits blocks in order, so peers commit in parallel and the orderer
//! cuts the next block meanwhile. A sink that is behind (a restart after a crash between the
//! orderer's write and a peer's commit, or a failed commit) is first caught up from the block
//! store, so every peer sees every block exactly once and in order.

pub mod blockcutter;
mod broadcast;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use fabric_common::identity::SigningIdentity;
use fabric_protos::common::{
    Block, BlockMetadataIndex, Envelope, LastConfig, Metadata, MetadataSignature,
    OrdererBlockMetadata, SignatureHeader,
};
use prost::Message;

use crate::committer::ChannelContext;
use crate::configtx::{ChannelBundle, ConfigTxError};
use crate::ledger::block::{block_header_bytes, new_block};
use crate::ledger::{BlockUpdates, Ledger, LedgerError};
use blockcutter::BlockCutter;
pub use broadcast::{classify, AtomicBroadcastService, BroadcastError};

/// Fabric's default gRPC message size limit (100 MiB), for requests and responses.
pub const MAX_GRPC_MESSAGE_BYTES: usize = 100 * 1024 * 1024;

/// Errors of the ordering service.
#[derive(Debug, thiserror::Error)]
pub enum OrdererError {
    /// The block store failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The genesis block does not hold a usable channel configuration.
    #[error(transparent)]
    Config(#[from] ConfigTxError),
    /// The data directory could not be prepared.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A genesis block names a channel that already exists with another genesis block.
    #[error("channel {0} exists with a different genesis block")]
    GenesisMismatch(String),
    /// The channel does not exist on this orderer.
    #[error("channel does not exist")]
    NoChannel,
    /// The chain has been halted.
    #[error("chain is halted")]
    Halted,
    /// A registered sink could not be caught up.
    #[error("catching up a peer: {0}")]
    Sink(String),
}

/// Something that commits the blocks of one channel, in order: a joined peer's channel.
pub trait BlockSink: Send + Sync + 'static {
    /// The sink's ledger height (the number of the next block it expects).
    fn height(&self) -> u64;
    /// Validates and commits the next block.
    fn deliver_block(&self, block: Block) -> Result<(), String>;
}

impl BlockSink for crate::committer::Committer {
    fn height(&self) -> u64 {
        self.ledger().height()
    }
    fn deliver_block(&self, block: Block) -> Result<(), String> {
        self.commit_block(block, &Default::default())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// What the orderer node is: its identity, address and where it keeps its block stores.
#[derive(Clone)]
pub struct OrdererConfig {
    /// The orderer organisation's MSP ID.
    pub msp_id: String,
    /// `host:port` the node is reachable at (for gateway error details).
    pub address: String,
    /// The orderer's signing identity (signs block metadata).
    pub signer: SigningIdentity,
    /// The block stores live here, one file per channel.
    pub data_dir: PathBuf,
}

impl std::fmt::Debug for OrdererConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrdererConfig")
            .field("msp_id", &self.msp_id)
            .field("address", &self.address)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

enum ChainMsg {
    /// A cut batch: assemble, write and deliver it as the next block.
    Write(Vec<Envelope>),
    /// A pending batch started; cut it at this instant unless it fills up first.
    Arm(Instant),
    AddSink(Arc<dyn BlockSink>, std_mpsc::Sender<Result<(), String>>),
    Halt,
}

/// What Broadcast feeds a running chain: the block cutter and the chain thread's queue. The
/// submitting thread cuts under this lock and queues whole batches, so the chain thread wakes
/// once per block (and once per batch timer) rather than once per envelope: at thousands of
/// envelopes a second, a wake-up each cost more than the cutting itself.
struct ChainInput {
    cutter: BlockCutter,
    tx: std_mpsc::Sender<ChainMsg>,
}

impl ChainInput {
    fn send(&self, msg: ChainMsg) -> Result<(), OrdererError> {
        self.tx.send(msg).map_err(|_| OrdererError::Halted)
    }

    /// Tells the chain thread the deadline of a batch the last envelope started.
    fn arm(&self) -> Result<(), OrdererError> {
        match self.cutter.deadline() {
            Some(d) if self.cutter.pending_len() == 1 => self.send(ChainMsg::Arm(d)),
            _ => Ok(()),
        }
    }
}

/// The input of a chain, `None` once it is halted.
type SharedInput = Arc<Mutex<Option<ChainInput>>>;

/// One channel's ordering: its configuration, block store and the thread cutting blocks.
pub struct Chain {
    channel_id: String,
    ledger: Ledger,
    bundle: ChannelBundle,
    context: Arc<ChannelContext>,
    input: SharedInput,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("channel_id", &self.channel_id)
            .field("height", &self.ledger.height())
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// The channel name.
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }
    /// The orderer's block store of this channel.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
    /// The channel configuration (batch settings, MSPs, policies).
    pub fn bundle(&self) -> &ChannelBundle {
        &self.bundle
    }
    /// MSPs and policies for access checks.
    pub fn context(&self) -> &Arc<ChannelContext> {
        &self.context
    }

    /// Enqueues an envelope that passed Broadcast's checks (Fabric's `Order`).
    pub fn order(&self, env: Envelope) -> Result<(), OrdererError> {
        let mut input = self.input.lock().expect("chain input");
        let input = input.as_mut().ok_or(OrdererError::Halted)?;
        for batch in input.cutter.ordered(env) {
            input.send(ChainMsg::Write(batch))?;
        }
        input.arm()
    }

    /// Registers a sink: it is caught up from the block store, then receives every new block.
    /// Returns once the catch-up is done.
    pub fn add_sink(&self, sink: Arc<dyn BlockSink>) -> Result<(), OrdererError> {
        let (ack_tx, ack_rx) = std_mpsc::channel();
        self.input
            .lock()
            .expect("chain input")
            .as_ref()
            .ok_or(OrdererError::Halted)?
            .send(ChainMsg::AddSink(sink, ack_tx))?;
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(OrdererError::Sink(e)),
            Err(_) => Err(OrdererError::Halted),
        }
    }

    /// Stops the chain thread after it has written what it has cut; the pending batch is cut
    /// and written first so no accepted envelope is silently dropped.
    pub fn halt(&self) {
        stop(self.input.lock().expect("chain input").take());
        if let Some(h) = self.thread.lock().expect("chain thread").take() {
            let _ = h.join();
        }
    }
}

/// Queues the pending batch, then the stop, for a chain thread whose input was just taken.
fn stop(input: Option<ChainInput>) {
    if let Some(mut input) = input {
        let batch = input.cutter.cut();
        if !batch.is_empty() {
            let _ = input.send(ChainMsg::Write(batch));
        }
        let _ = input.send(ChainMsg::Halt);
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        stop(self.input.lock().expect("chain input").take());
    }
}

/// Assembles and writes blocks as Fabric's `BlockWriter` does.
struct BlockWriter {
    ledger: Ledger,
    signer: SigningIdentity,
    last_config: u64,
}

impl BlockWriter {
    /// `CreateNextBlock` + `commitBlock`: header, LAST_CONFIG, SIGNATURES, durable append.
    fn write(&self, batch: Vec<Envelope>) -> Result<Arc<Block>, OrdererError> {
        let data = batch.iter().map(|e| e.encode_to_vec()).collect();
        let mut block = new_block(self.ledger.height(), self.ledger.last_header_hash(), data);
        self.add_metadata(&mut block);
        let block = Arc::new(block);
        self.ledger
            .commit_shared(Arc::clone(&block), &BlockUpdates::new())?;
        Ok(block)
    }

    fn add_metadata(&self, block: &mut Block) {
        let header = block.header.as_ref().expect("new_block sets a header");
        let header_bytes = block_header_bytes(header);
        let md = &mut block
            .metadata
            .as_mut()
            .expect("new_block sets metadata")
            .metadata;
        // Fabric still fills the deprecated LAST_CONFIG slot for older readers.
        md[BlockMetadataIndex::LastConfig as usize] = Metadata {
            value: LastConfig {
                index: self.last_config,
            }
            .encode_to_vec(),
            signatures: vec![],
        }
        .encode_to_vec();
        let nonce = fabric_common::tx::new_nonce();
        let shdr = SignatureHeader {
            creator: self.signer.serialized().to_vec(),
            nonce: nonce.to_vec(),
        }
        .encode_to_vec();
        // A solo orderer has no consenter metadata: Fabric marshals an empty `Metadata`.
        let value = OrdererBlockMetadata {
            last_config: Some(LastConfig {
                index: self.last_config,
            }),
            consenter_metadata: Metadata::default().encode_to_vec(),
        }
        .encode_to_vec();
        let mut signed = Vec::with_capacity(value.len() + shdr.len() + header_bytes.len());
        signed.extend_from_slice(&value);
        signed.extend_from_slice(&shdr);
        signed.extend_from_slice(&header_bytes);
        let signature =
            fabric_common::crypto::Signer::sign(&self.signer, &signed).unwrap_or_else(|e| {
                // A software key cannot fail to sign; an unsigned block is rejected by peers'
                // block verification, which is the right outcome for a broken signer.
                tracing::error!("orderer failed to sign block metadata: {e}");
                Vec::new()
            });
        md[BlockMetadataIndex::Signatures as usize] = Metadata {
            value,
            signatures: vec![MetadataSignature {
                signature_header: shdr,
                signature,
                identifier_header: vec![],
            }],
        }
        .encode_to_vec();
    }
}

fn deliver_to(sink: &Arc<dyn BlockSink>, ledger: &Ledger, block: Arc<Block>) -> Result<(), String> {
    let number = block.header.as_ref().map_or(0, |h| h.number);
    // Catch a lagging sink up from the block store first.
    let mut next = sink.height();
    while next < number {
        let b = ledger
            .block(next)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("block {next} missing from the orderer's store"))?;
        sink.deliver_block(b)?;
        next += 1;
    }
    if next == number {
        // The sinks share the orderer's copy until each takes its own to commit.
        sink.deliver_block(Arc::unwrap_or_clone(block))?;
    }
    Ok(())
}

fn catch_up(sink: &Arc<dyn BlockSink>, ledger: &Ledger) -> Result<(), String> {
    let height = ledger.height();
    let mut next = sink.height();
    while next < height {
        let b = ledger
            .block(next)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("block {next} missing from the orderer's store"))?;
        sink.deliver_block(b)?;
        next += 1;
    }
    Ok(())
}

/// A sink's delivery thread: it commits the blocks handed to it in order, so peers commit in
/// parallel with each other and with the orderer cutting the next block, as Fabric's peers pull
/// blocks independently of the orderer.
struct SinkWorker {
    tx: std_mpsc::Sender<Arc<Block>>,
    thread: std::thread::JoinHandle<()>,
}

impl SinkWorker {
    fn start(channel: &str, sink: Arc<dyn BlockSink>, ledger: Ledger) -> std::io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Arc<Block>>();
        let name = channel.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("deliver-{channel}"))
            .spawn(move || {
                for block in rx {
                    if let Err(e) = deliver_to(&sink, &ledger, block) {
                        tracing::error!("[channel: {name}] delivering block to a peer: {e}");
                    }
                }
            })?;
        Ok(SinkWorker { tx, thread })
    }
}

fn run_chain(
    channel: String,
    rx: std_mpsc::Receiver<ChainMsg>,
    input: SharedInput,
    writer: BlockWriter,
) {
    let mut sinks: Vec<SinkWorker> = Vec::new();
    let emit = |batch: Vec<Envelope>, sinks: &Vec<SinkWorker>| {
        if batch.is_empty() {
            return;
        }
        match writer.write(batch) {
            Ok(block) => {
                for s in sinks {
                    // A worker whose thread ended is caught up when the next block reaches it.
                    let _ = s.tx.send(Arc::clone(&block));
                }
            }
            Err(e) => tracing::error!("[channel: {channel}] writing block: {e}"),
        }
    };
    let mut deadline: Option<Instant> = None;
    loop {
        let msg = match deadline {
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(m) => m,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    deadline = cut_if_due(&input);
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => ChainMsg::Halt,
            },
            None => rx.recv().unwrap_or(ChainMsg::Halt),
        };
        match msg {
            ChainMsg::Write(batch) => emit(batch, &sinks),
            ChainMsg::Arm(d) => deadline = Some(d),
            ChainMsg::AddSink(sink, ack) => {
                let r = catch_up(&sink, &writer.ledger).and_then(|()| {
                    SinkWorker::start(&channel, sink, writer.ledger.clone())
                        .map_err(|e| e.to_string())
                });
                let r = r.map(|w| sinks.push(w));
                let _ = ack.send(r);
            }
            ChainMsg::Halt => {
                // Every cut block reaches every peer before the chain reports halted.
                for s in sinks {
                    drop(s.tx);
                    let _ = s.thread.join();
                }
                return;
            }
        }
    }
}

/// The batch timer fired: cuts the pending batch if its timeout has passed. The batch is
/// queued behind those the submitters cut before (blocks keep the order envelopes were
/// ordered in); returns the deadline to wait for next, if a newer batch is pending.
fn cut_if_due(input: &Mutex<Option<ChainInput>>) -> Option<Instant> {
    let mut guard = input.lock().expect("chain input");
    // A halted chain has its last batch and the stop queued already.
    let input = guard.as_mut()?;
    match input.cutter.deadline() {
        Some(d) if d <= Instant::now() => {
            let batch = input.cutter.cut();
            let _ = input.send(ChainMsg::Write(batch));
            None
        }
        later => later,
    }
}

/// A solo ordering node serving any number of channels. Cheap to clone.
#[derive(Clone)]
pub struct Orderer {
    inner: Arc<OrdererInner>,
}

struct OrdererInner {
    config: OrdererConfig,
    chains: RwLock<HashMap<String, Arc<Chain>>>,
}

impl std::fmt::Debug for Orderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orderer")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Orderer {
    /// An orderer with no channel yet.
    pub fn new(config: OrdererConfig) -> Self {
        Orderer {
            inner: Arc::new(OrdererInner {
                config,
                chains: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The orderer's MSP ID.
    pub fn msp_id(&self) -> &str {
        &self.inner.config.msp_id
    }

    /// The address the orderer is reachable at.
    pub fn address(&self) -> &str {
        &self.inner.config.address
    }

    /// Creates (or reopens) a channel from its genesis block (the channel participation API's
    /// join): the block store is opened at `<data_dir>/<channel>.redb`, the genesis block is
    /// written when the store is new, and the chain thread starts.
    pub fn join_channel(&self, genesis: &Block) -> Result<Arc<Chain>, OrdererError> {
        let bundle = ChannelBundle::from_block(genesis)?;
        let channel = bundle.channel_id.clone();
        if let Some(c) = self.chain(&channel) {
            return Ok(c);
        }
        let dir = &self.inner.config.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| OrdererError::Io {
            path: dir.clone(),
            source,
        })?;
        let ledger = Ledger::open(ledger_path(dir, &channel), &channel)?;
        if ledger.height() == 0 {
            ledger.commit(genesis, &BlockUpdates::new())?;
        } else {
            let stored = ledger.block(0)?.ok_or(LedgerError::NoHeader)?;
            if stored.header != genesis.header {
                return Err(OrdererError::GenesisMismatch(channel));
            }
        }
        let context = Arc::new(ChannelContext::new(
            &channel,
            bundle.msps.clone(),
            bundle.policies.clone(),
            &self.inner.config.msp_id,
        ));
        let (tx, rx) = std_mpsc::channel();
        let writer = BlockWriter {
            ledger: ledger.clone(),
            signer: self.inner.config.signer.clone(),
            // No config updates are ordered on the devnet: the genesis block is the last config.
            last_config: 0,
        };
        let input: SharedInput = Arc::new(Mutex::new(Some(ChainInput {
            cutter: BlockCutter::new(bundle.batch),
            tx,
        })));
        let name = channel.clone();
        let thread_input = Arc::clone(&input);
        let thread = std::thread::Builder::new()
            .name(format!("orderer-{channel}"))
            .spawn(move || run_chain(name, rx, thread_input, writer))
            .map_err(|source| OrdererError::Io {
                path: dir.clone(),
                source,
            })?;
        let chain = Arc::new(Chain {
            channel_id: channel.clone(),
            ledger,
            bundle,
            context,
            input,
            thread: Mutex::new(Some(thread)),
        });
        self.inner
            .chains
            .write()
            .expect("chains")
            .insert(channel, chain.clone());
        Ok(chain)
    }

    /// The chain of a channel, if the orderer serves it.
    pub fn chain(&self, channel: &str) -> Option<Arc<Chain>> {
        self.inner
            .chains
            .read()
            .expect("chains")
            .get(channel)
            .cloned()
    }

    /// Names of the channels served.
    pub fn channels(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .chains
            .read()
            .expect("chains")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Registers a sink on a channel (see [`Chain::add_sink`]).
    pub fn add_sink(&self, channel: &str, sink: Arc<dyn BlockSink>) -> Result<(), OrdererError> {
        self.chain(channel)
            .ok_or(OrdererError::NoChannel)?
            .add_sink(sink)
    }

    /// Runs Broadcast's checks on one envelope and enqueues it (Fabric's
    /// `broadcast.Handler.ProcessMessage`), answering as the gRPC service would.
    pub fn broadcast(&self, env: Envelope) -> fabric_protos::orderer::BroadcastResponse {
        broadcast::process_message(self, env)
    }

    /// The `AtomicBroadcast` gRPC service of this orderer.
    pub fn service(
        &self,
    ) -> fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcastServer<
        AtomicBroadcastService,
    > {
        fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcastServer::new(
            AtomicBroadcastService::new(self.clone()),
        )
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES)
    }

    /// Stops every chain (pending batches are written first).
    pub fn halt(&self) {
        let chains: Vec<Arc<Chain>> = self
            .inner
            .chains
            .write()
            .expect("chains")
            .drain()
            .map(|(_, c)| c)
            .collect();
        for c in chains {
            c.halt();
        }
    }
}

fn ledger_path(dir: &Path, channel: &str) -> PathBuf {
    dir.join(format!("{channel}.redb"))
}
