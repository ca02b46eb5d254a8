//! Checkpointing of event streams, with the semantics of Fabric's Go gateway client: a checkpoint
//! is the *block number in which the next event is expected* plus the *ID of the last transaction
//! processed within that block*. Resuming from it starts reading at that block and skips events up
//! to and including that transaction, so a listener that checkpoints after handling each event
//! loses none and repeats none across a crash.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::events::ChaincodeEvent;

/// A checkpoint store failed.
#[derive(Debug, Error)]
#[error("checkpoint {path}: {message}")]
pub struct CheckpointError {
    /// The store's location.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// A position to resume events from (Go: `Checkpoint`).
pub trait Checkpoint {
    /// The block in which the next event is expected.
    fn block_number(&self) -> u64;
    /// The last transaction processed within [`Checkpoint::block_number`]; empty if none.
    fn transaction_id(&self) -> String;
}

/// Records progress through an event stream (Go: `Checkpointer`).
pub trait Checkpointer: Checkpoint + Send + Sync {
    /// Records a transaction processed within a block.
    fn checkpoint_transaction(
        &self,
        block_number: u64,
        transaction_id: &str,
    ) -> Result<(), CheckpointError>;

    /// Records a fully processed block: the next event is expected in the following block.
    fn checkpoint_block(&self, block_number: u64) -> Result<(), CheckpointError> {
        self.checkpoint_transaction(block_number + 1, "")
    }

    /// Records a processed chaincode event.
    fn checkpoint_chaincode_event(&self, event: &ChaincodeEvent) -> Result<(), CheckpointError> {
        self.checkpoint_transaction(event.block_number, &event.transaction_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    #[serde(rename = "blockNumber")]
    block_number: u64,
    #[serde(rename = "transactionId", default)]
    transaction_id: String,
}

/// A checkpointer in memory, for a process that keeps its own durable state elsewhere.
#[derive(Debug, Default)]
pub struct InMemoryCheckpointer {
    state: Mutex<State>,
}

impl InMemoryCheckpointer {
    /// An empty checkpointer (no position: streams start where their options say).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Checkpoint for InMemoryCheckpointer {
    fn block_number(&self) -> u64 {
        self.state.lock().expect("checkpoint lock").block_number
    }
    fn transaction_id(&self) -> String {
        self.state
            .lock()
            .expect("checkpoint lock")
            .transaction_id
            .clone()
    }
}

impl Checkpointer for InMemoryCheckpointer {
    fn checkpoint_transaction(
        &self,
        block_number: u64,
        transaction_id: &str,
    ) -> Result<(), CheckpointError> {
        let mut s = self.state.lock().expect("checkpoint lock");
        s.block_number = block_number;
        s.transaction_id = transaction_id.to_string();
        Ok(())
    }
}

/// A checkpointer persisted to a JSON file (`{"blockNumber":N,"transactionId":"…"}`, the format
/// of the Go client's `FileCheckpointer`).
///
/// Each checkpoint is written to a temporary file, flushed to disk and renamed over the previous
/// one, so after a crash the file holds either the previous or the new checkpoint, never a torn one.
#[derive(Debug)]
pub struct FileCheckpointer {
    path: PathBuf,
    state: Mutex<State>,
}

impl FileCheckpointer {
    /// Opens the checkpoint file, creating it (empty checkpoint) if missing.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        let path = path.into();
        let err = |message: String| CheckpointError {
            path: path.clone(),
            message,
        };
        let state = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => State::default(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(err(e.to_string())),
        };
        let cp = FileCheckpointer {
            path,
            state: Mutex::new(state.clone()),
        };
        cp.save(&state)?;
        Ok(cp)
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn save(&self, state: &State) -> Result<(), CheckpointError> {
        use std::io::Write as _;
        let err = |message: String| CheckpointError {
            path: self.path.clone(),
            message,
        };
        let tmp = self.path.with_extension("tmp");
        let json = serde_json::to_vec(state).map_err(|e| err(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| err(e.to_string()))?;
        f.write_all(&json).map_err(|e| err(e.to_string()))?;
        f.sync_all().map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| err(e.to_string()))?;
        // Make the rename itself durable.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Checkpoint for FileCheckpointer {
    fn block_number(&self) -> u64 {
        self.state.lock().expect("checkpoint lock").block_number
    }
    fn transaction_id(&self) -> String {
        self.state
            .lock()
            .expect("checkpoint lock")
            .transaction_id
            .clone()
    }
}

impl Checkpointer for FileCheckpointer {
    fn checkpoint_transaction(
        &self,
        block_number: u64,
        transaction_id: &str,
    ) -> Result<(), CheckpointError> {
        let mut s = self.state.lock().expect("checkpoint lock");
        let next = State {
            block_number,
            transaction_id: transaction_id.to_string(),
        };
        self.save(&next)?;
        *s = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_checkpointer_persists_go_format_and_block_semantics() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("cp.json");
        let cp = FileCheckpointer::open(&path).unwrap();
        assert_eq!((cp.block_number(), cp.transaction_id()), (0, String::new()));
        cp.checkpoint_transaction(7, "tx7a").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"blockNumber":7,"transactionId":"tx7a"})
        );
        drop(cp);
        let cp = FileCheckpointer::open(&path).unwrap();
        assert_eq!(
            (cp.block_number(), cp.transaction_id()),
            (7, "tx7a".to_string())
        );
        cp.checkpoint_block(7).unwrap();
        assert_eq!((cp.block_number(), cp.transaction_id()), (8, String::new()));
        let mem = InMemoryCheckpointer::new();
        mem.checkpoint_block(3).unwrap();
        assert_eq!(mem.block_number(), 4);
        std::fs::write(&path, "{not json").unwrap();
        assert!(FileCheckpointer::open(&path).is_err());
    }
}
