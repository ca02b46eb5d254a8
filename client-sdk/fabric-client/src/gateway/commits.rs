//! Commit statuses of many submitted transactions learnt from one filtered block stream.
//!
//! [`Commit::status`](super::Commit::status) asks the gateway once per transaction with a signed
//! `CommitStatusRequest`, which costs a signature here, a signature check on the peer and a
//! round trip. A client that keeps many transactions in flight can instead read the channel's
//! filtered blocks once ([`Network::commit_watcher`]) and pick out each transaction's
//! validation code and block, as Fabric's earlier SDKs did with their event hubs. The stream
//! starts at the newest block and is live before any transaction is registered, so no commit
//! can slip past; a transaction whose status does not arrive (the stream ended, or the
//! commit-status deadline passed) is asked for with `CommitStatus` after all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fabric_protos::orderer::{seek_position, SeekNewest, SeekPosition};
use fabric_protos::protos::FilteredBlock;
use tokio::sync::oneshot;

use super::events::{BlockEventStream, BlockEventsKind, BlockEventsRequest, DeliverEvent};
use super::proposal::Status;
use super::{GatewayError, Network, TxValidationCode};

/// Transactions waiting for their status, by transaction ID; `None` once the stream has ended.
type Waiting = Mutex<Option<HashMap<String, oneshot::Sender<Status>>>>;

/// Follows one channel's filtered blocks and hands each watched transaction its status (cheap to
/// clone; the stream closes when the last clone is dropped).
#[derive(Clone, Debug)]
pub struct CommitWatcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    channel: String,
    waiting: Arc<Waiting>,
    reader: tokio::task::AbortHandle,
    start_block: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl CommitWatcher {
    /// Opens the filtered block stream of `network`'s channel at its newest block and starts
    /// following it (needs the channel's `Readers` policy, as any block event stream).
    pub(crate) async fn start(network: &Network) -> Result<Self, GatewayError> {
        let newest = SeekPosition {
            r#type: Some(seek_position::Type::Newest(SeekNewest {})),
        };
        let request = BlockEventsRequest::build_at(network, BlockEventsKind::Filtered, newest)?;
        let mut stream = request.events().await?;
        // The newest block arriving proves the stream is being served: every block committed
        // from now on comes through it.
        let start_block = match stream.next().await {
            Some(Ok(block)) => block.block_number(),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(GatewayError::InvalidResponse(
                    "the filtered block stream ended before its first block".into(),
                ))
            }
        };
        let waiting: Arc<Waiting> = Arc::new(Mutex::new(Some(HashMap::new())));
        let reader = tokio::spawn(follow(stream, Arc::clone(&waiting))).abort_handle();
        Ok(CommitWatcher {
            inner: Arc::new(Inner {
                channel: network.name().to_string(),
                waiting,
                reader,
                start_block,
            }),
        })
    }

    /// The channel followed.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// The newest block when the stream opened; statuses come from the blocks after it.
    pub fn start_block(&self) -> u64 {
        self.inner.start_block
    }

    /// Whether the stream is still being read (once it ends, every wait falls back to
    /// `CommitStatus`).
    pub fn is_following(&self) -> bool {
        lock(&self.inner.waiting).is_some()
    }

    /// Registers `transaction_id` before it is submitted, so its block cannot be missed.
    pub(crate) fn watch(&self, channel: &str, transaction_id: &str) -> Watch {
        let (tx, rx) = oneshot::channel();
        if channel == self.inner.channel {
            if let Some(map) = lock(&self.inner.waiting).as_mut() {
                map.insert(transaction_id.to_string(), tx);
            }
        }
        // Otherwise `tx` is dropped here and the wait ends at once, without a status.
        Watch {
            transaction_id: transaction_id.to_string(),
            waiting: Arc::clone(&self.inner.waiting),
            rx,
        }
    }
}

/// One registered transaction.
pub(crate) struct Watch {
    transaction_id: String,
    waiting: Arc<Waiting>,
    rx: oneshot::Receiver<Status>,
}

impl Watch {
    /// The status, or `None` if the stream ended or `deadline` passed first.
    pub(crate) async fn wait(mut self, deadline: Duration) -> Option<Status> {
        match tokio::time::timeout(deadline, &mut self.rx).await {
            Ok(Ok(status)) => Some(status),
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // A watch given up (submit failed, deadline passed) leaves no entry behind; an entry of
        // the same transaction ID registered by another watch is left alone.
        self.rx.close();
        if let Some(map) = lock(&self.waiting).as_mut() {
            if map
                .get(&self.transaction_id)
                .is_some_and(oneshot::Sender::is_closed)
            {
                map.remove(&self.transaction_id);
            }
        }
    }
}

fn lock(
    waiting: &Waiting,
) -> std::sync::MutexGuard<'_, Option<HashMap<String, oneshot::Sender<Status>>>> {
    waiting.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads filtered blocks until the stream ends, then lets every waiter fall back.
async fn follow(mut stream: BlockEventStream, waiting: Arc<Waiting>) {
    while let Some(Ok(DeliverEvent::Filtered(block))) = stream.next().await {
        if !dispatch(&waiting, &block) {
            return;
        }
    }
    lock(&waiting).take();
}

/// Hands the watched transactions of `block` their status; `false` once nothing is followed.
fn dispatch(waiting: &Waiting, block: &FilteredBlock) -> bool {
    let mut guard = lock(waiting);
    let Some(map) = guard.as_mut() else {
        return false;
    };
    for tx in &block.filtered_transactions {
        let Some(sender) = map.remove(&tx.txid) else {
            continue;
        };
        // An unknown code is left to `CommitStatus` to report (dropping the sender).
        if let Ok(code) = TxValidationCode::try_from(tx.tx_validation_code) {
            let _ = sender.send(Status {
                transaction_id: tx.txid.clone(),
                code,
                block_number: block.number,
                successful: code == TxValidationCode::Valid,
            });
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::protos::FilteredTransaction;

    fn watcher() -> CommitWatcher {
        let reader = tokio::spawn(std::future::pending::<()>()).abort_handle();
        CommitWatcher {
            inner: Arc::new(Inner {
                channel: "licences".into(),
                waiting: Arc::new(Mutex::new(Some(HashMap::new()))),
                reader,
                start_block: 7,
            }),
        }
    }

    fn block(number: u64, txs: &[(&str, i32)]) -> FilteredBlock {
        FilteredBlock {
            channel_id: "licences".into(),
            number,
            filtered_transactions: txs
                .iter()
                .map(|(id, code)| FilteredTransaction {
                    txid: (*id).into(),
                    tx_validation_code: *code,
                    ..Default::default()
                })
                .collect(),
        }
    }

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn watched_transactions_get_their_code_and_block_others_are_ignored() {
        let w = watcher();
        let a = w.watch("licences", "tx-a");
        let b = w.watch("licences", "tx-b");
        let waiting = Arc::clone(&w.inner.waiting);
        assert!(dispatch(
            &waiting,
            &block(
                8,
                &[
                    ("someone-elses", 0),
                    ("tx-b", TxValidationCode::MvccReadConflict as i32),
                ],
            ),
        ));
        assert!(dispatch(&waiting, &block(9, &[("tx-a", 0)])));
        let a = a.wait(SHORT).await.expect("tx-a has a status");
        assert_eq!(
            (a.block_number, a.code, a.successful),
            (9, TxValidationCode::Valid, true)
        );
        let b = b.wait(SHORT).await.expect("tx-b has a status");
        assert_eq!(
            (b.block_number, b.code, b.successful),
            (8, TxValidationCode::MvccReadConflict, false)
        );
        assert!(lock(&waiting).as_ref().unwrap().is_empty());
    }

    #[tokio::test]
    async fn waits_end_without_a_status_when_they_cannot_be_answered() {
        let w = watcher();
        let waiting = Arc::clone(&w.inner.waiting);
        // Another channel: not registered at all.
        assert!(w.watch("other", "tx-x").wait(SHORT).await.is_none());
        // An unknown validation code: left to CommitStatus.
        let odd = w.watch("licences", "tx-odd");
        dispatch(&waiting, &block(8, &[("tx-odd", 9999)]));
        assert!(odd.wait(SHORT).await.is_none());
        // No block brings it before the deadline: the entry goes with the abandoned wait.
        assert!(w.watch("licences", "tx-late").wait(SHORT).await.is_none());
        assert!(lock(&waiting).as_ref().unwrap().is_empty());
        // The stream ended: pending waits end at once, later ones are never registered.
        let pending = w.watch("licences", "tx-p");
        lock(&waiting).take();
        assert!(!w.is_following());
        assert!(pending.wait(Duration::from_secs(60)).await.is_none());
        assert!(!dispatch(&waiting, &block(10, &[("tx-p", 0)])));
        assert!(w
            .watch("licences", "tx-q")
            .wait(Duration::from_secs(60))
            .await
            .is_none());
    }

    #[tokio::test]
    async fn a_second_watch_of_the_same_id_survives_the_first_being_dropped() {
        let w = watcher();
        let first = w.watch("licences", "tx-dup");
        let second = w.watch("licences", "tx-dup");
        drop(first);
        dispatch(&w.inner.waiting, &block(8, &[("tx-dup", 0)]));
        assert_eq!(second.wait(SHORT).await.map(|s| s.block_number), Some(8));
    }
}
