//! Batching of ordered envelopes into blocks, as Fabric's `orderer/common/blockcutter` does it.
//!
//! Rules (from the channel's `Orderer.BatchSize`):
//!
//! * an envelope larger than `preferred_max_bytes` is isolated: the pending batch (if any) is cut,
//!   then the envelope is cut alone;
//! * otherwise, if adding it would make the pending batch exceed `preferred_max_bytes`, the
//!   pending batch is cut first;
//! * the envelope is enqueued, and the batch is cut once it holds `max_message_count` envelopes;
//! * `BatchTimeout` is measured from the moment the first envelope enters an empty batch; when it
//!   expires a non-empty batch is cut ([`BlockCutter::pending_since`] tells the caller when).
//!
//! An envelope's size is `len(payload) + len(signature)`. Envelopes above `absolute_max_bytes`
//! never reach the cutter: Broadcast rejects them.

use std::time::{Duration, Instant};

use fabric_protos::common::Envelope;

/// A channel's `Orderer.BatchSize` and `Orderer.BatchTimeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Maximum number of envelopes in a block.
    pub max_message_count: u32,
    /// Largest envelope size accepted at all.
    pub absolute_max_bytes: u32,
    /// Target size of a block's envelopes.
    pub preferred_max_bytes: u32,
    /// How long a non-empty batch may wait before it is cut.
    pub batch_timeout: Duration,
}

impl From<crate::topology::BatchSpec> for BatchConfig {
    fn from(b: crate::topology::BatchSpec) -> Self {
        BatchConfig {
            max_message_count: b.max_message_count,
            absolute_max_bytes: b.absolute_max_bytes,
            preferred_max_bytes: b.preferred_max_bytes,
            batch_timeout: Duration::from_millis(b.batch_timeout_ms),
        }
    }
}

/// Fabric's message size: payload plus signature bytes.
pub fn message_size(env: &Envelope) -> u32 {
    (env.payload.len() + env.signature.len()) as u32
}

/// The pending batch and the cutting rules.
#[derive(Debug)]
pub struct BlockCutter {
    config: BatchConfig,
    pending: Vec<Envelope>,
    pending_bytes: u32,
    pending_since: Option<Instant>,
}

impl BlockCutter {
    /// An empty cutter with `config`.
    pub fn new(config: BatchConfig) -> Self {
        BlockCutter {
            config,
            pending: Vec::new(),
            pending_bytes: 0,
            pending_since: None,
        }
    }

    /// The batch settings in force.
    pub fn config(&self) -> BatchConfig {
        self.config
    }

    /// Replaces the batch settings (after a config block); the pending batch is kept.
    pub fn set_config(&mut self, config: BatchConfig) {
        self.config = config;
    }

    /// Orders one envelope and returns the batches that are now complete: none, one or two, in
    /// order (Fabric's `Receiver.Ordered`).
    pub fn ordered(&mut self, env: Envelope) -> Vec<Vec<Envelope>> {
        let size = message_size(&env);
        let mut batches = Vec::new();
        if size > self.config.preferred_max_bytes {
            if !self.pending.is_empty() {
                batches.push(self.cut());
            }
            batches.push(vec![env]);
            return batches;
        }
        if self.pending_bytes.saturating_add(size) > self.config.preferred_max_bytes {
            batches.push(self.cut());
        }
        if self.pending.is_empty() {
            self.pending_since = Some(Instant::now());
        }
        self.pending.push(env);
        self.pending_bytes += size;
        if self.pending.len() as u32 >= self.config.max_message_count {
            batches.push(self.cut());
        }
        batches
    }

    /// Cuts the pending batch (possibly empty) and starts a new one.
    pub fn cut(&mut self) -> Vec<Envelope> {
        self.pending_bytes = 0;
        self.pending_since = None;
        std::mem::take(&mut self.pending)
    }

    /// When the pending batch's timer started (`None` when it is empty).
    pub fn pending_since(&self) -> Option<Instant> {
        self.pending_since
    }

    /// When the pending batch must be cut by the timeout (`None` when it is empty).
    pub fn deadline(&self) -> Option<Instant> {
        self.pending_since.map(|t| t + self.config.batch_timeout)
    }

    /// Number of envelopes waiting.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes waiting (Fabric's `pendingBatchSizeBytes`).
    pub fn pending_bytes(&self) -> u32 {
        self.pending_bytes
    }
}
