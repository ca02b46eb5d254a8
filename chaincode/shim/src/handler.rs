//! The shim side of the chaincode stream: the connection's life as explicit states, and the
//! multiplexing of concurrent transactions over one stream.
//!
//! Mirrors the Go shim's handler. The chaincode speaks first (REGISTER with its package ID); the
//! peer answers REGISTERED, then READY (whose payload may offer write batching and multi-key
//! reads). Only then are INIT and TRANSACTION accepted; each runs in its own task, and the peer's
//! answers to the transaction's requests (RESPONSE / ERROR) are routed to it by channel ID + tx ID.
//! A message the current state does not allow is answered with ERROR and ends the connection, as
//! Go's handler does.
//!
//! The handler only sees a stream of inbound messages and a sender for outbound ones, so it does
//! not care which side dialled.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use fabric_protos::protos::chaincode_message::Type as MsgType;
use fabric_protos::protos::{
    ChaincodeAdditionalParams, ChaincodeId, ChaincodeInput, ChaincodeMessage,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};

use crate::chaincode::Chaincode;
use crate::error::Error;
use crate::peer::PeerStub;
use crate::types::{Response, ERROR};

/// The smallest batch sizes the Go shim accepts when the peer offers batching.
const DEFAULT_MAX_SIZE_WRITE_BATCH: u32 = 100;
const DEFAULT_MAX_SIZE_GET_MULTIPLE_KEYS: u32 = 100;

/// What the peer offered in READY (`peer.ChaincodeAdditionalParams`), after the Go shim's
/// defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCapabilities {
    /// Writes are buffered and sent as WRITE_BATCH_STATE before COMPLETED.
    pub use_write_batch: bool,
    /// Records per WRITE_BATCH_STATE message.
    pub max_size_write_batch: u32,
    /// Multi-key reads use GET_STATE_MULTIPLE.
    pub use_get_multiple_keys: bool,
    /// Keys per GET_STATE_MULTIPLE message.
    pub max_size_get_multiple_keys: u32,
}

impl PeerCapabilities {
    fn from_ready_payload(payload: &[u8]) -> Self {
        if payload.is_empty() {
            return Self::default();
        }
        // As in Go, an undecodable payload is ignored: the peer gets the classic protocol.
        let Ok(p) = ChaincodeAdditionalParams::decode(payload) else {
            return Self::default();
        };
        let mut caps = PeerCapabilities {
            use_write_batch: p.use_write_batch,
            max_size_write_batch: p.max_size_write_batch,
            use_get_multiple_keys: p.use_get_multiple_keys,
            max_size_get_multiple_keys: p.max_size_get_multiple_keys,
        };
        if caps.use_write_batch && caps.max_size_write_batch < DEFAULT_MAX_SIZE_WRITE_BATCH {
            caps.max_size_write_batch = DEFAULT_MAX_SIZE_WRITE_BATCH;
        }
        if caps.use_get_multiple_keys
            && caps.max_size_get_multiple_keys < DEFAULT_MAX_SIZE_GET_MULTIPLE_KEYS
        {
            caps.max_size_get_multiple_keys = DEFAULT_MAX_SIZE_GET_MULTIPLE_KEYS;
        }
        caps
    }
}

/// The connection's states. Each inbound message is checked against the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// REGISTER sent; waiting for REGISTERED.
    Created,
    /// REGISTERED received; waiting for READY.
    Established,
    /// READY received: transactions are served.
    Ready(PeerCapabilities),
}

impl ConnectionState {
    fn name(&self) -> &'static str {
        match self {
            ConnectionState::Created => "created",
            ConnectionState::Established => "established",
            ConnectionState::Ready(_) => "ready",
        }
    }
}

/// Channel ID of one in-flight transaction and where its peer answers go.
struct TxSlot {
    channel_id: String,
    responses: mpsc::UnboundedSender<ChaincodeMessage>,
}

/// The state shared by a connection's reader and its transactions.
pub(crate) struct Connection {
    out: mpsc::Sender<ChaincodeMessage>,
    /// In-flight transactions by tx ID (then channel): lookups borrow the message's strings, so
    /// routing a response allocates nothing.
    txs: Mutex<HashMap<String, Vec<TxSlot>>>,
    caps: std::sync::OnceLock<PeerCapabilities>,
}

impl Connection {
    fn new(out: mpsc::Sender<ChaincodeMessage>) -> Self {
        Connection {
            out,
            txs: Mutex::new(HashMap::new()),
            caps: std::sync::OnceLock::new(),
        }
    }

    pub(crate) async fn send(&self, msg: ChaincodeMessage) -> Result<(), Error> {
        self.out
            .send(msg)
            .await
            .map_err(|_| Error::ConnectionClosed)
    }

    pub(crate) fn capabilities(&self) -> PeerCapabilities {
        self.caps.get().copied().unwrap_or_default()
    }

    fn txs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<TxSlot>>> {
        self.txs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an in-flight transaction; `false` if channel + tx ID is already in flight.
    fn register(
        &self,
        channel_id: &str,
        tx_id: &str,
        responses: mpsc::UnboundedSender<ChaincodeMessage>,
    ) -> bool {
        let mut txs = self.txs();
        let slots = txs.entry(tx_id.to_owned()).or_default();
        if slots.iter().any(|s| s.channel_id == channel_id) {
            return false;
        }
        slots.push(TxSlot {
            channel_id: channel_id.to_owned(),
            responses,
        });
        true
    }

    fn unregister(&self, channel_id: &str, tx_id: &str) {
        let mut txs = self.txs();
        if let Some(slots) = txs.get_mut(tx_id) {
            slots.retain(|s| s.channel_id != channel_id);
            if slots.is_empty() {
                txs.remove(tx_id);
            }
        }
    }

    /// Hands a RESPONSE / ERROR to the transaction it belongs to; gives it back if none waits.
    fn route(&self, msg: ChaincodeMessage) -> Option<ChaincodeMessage> {
        let txs = self.txs();
        let slot = txs
            .get(msg.txid.as_str())
            .and_then(|slots| slots.iter().find(|s| s.channel_id == msg.channel_id));
        match slot {
            Some(slot) => slot.responses.send(msg).err().map(|e| e.0),
            None => Some(msg),
        }
    }

    /// Drops every transaction's response channel so requests waiting on the peer fail.
    fn close_all(&self) {
        self.txs().clear();
    }
}

/// The first eight characters of a transaction ID, as Fabric logs it.
pub(crate) fn short_txid(txid: &str) -> &str {
    match txid.char_indices().nth(8) {
        Some((i, _)) => &txid[..i],
        None => txid,
    }
}

pub(crate) fn type_name(t: i32) -> &'static str {
    MsgType::try_from(t)
        .map(|t| t.as_str_name())
        .unwrap_or("UNKNOWN")
}

fn message(t: MsgType, payload: Vec<u8>, txid: &str, channel_id: &str) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: t as i32,
        payload,
        txid: txid.to_owned(),
        channel_id: channel_id.to_owned(),
        ..Default::default()
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The peer sent a message the connection's state does not allow.
    #[error("{0}")]
    Protocol(String),
    /// The stream failed.
    #[error("stream: {0}")]
    Stream(String),
    /// The outbound side closed.
    #[error("connection to the peer closed")]
    Closed,
}

/// Runs one connection to completion: registers as `package_id`, then serves transactions with
/// `chaincode` until the peer closes the stream (`Ok`) or breaks the protocol (`Err`).
pub async fn run_connection<C, In, E>(
    chaincode: Arc<C>,
    package_id: &str,
    mut inbound: In,
    out: mpsc::Sender<ChaincodeMessage>,
) -> Result<(), ConnectionError>
where
    C: Chaincode<PeerStub>,
    In: Stream<Item = Result<ChaincodeMessage, E>> + Unpin,
    E: std::fmt::Display,
{
    let conn = Arc::new(Connection::new(out));
    let register = ChaincodeId {
        name: package_id.to_owned(),
        ..Default::default()
    };
    conn.send(message(MsgType::Register, register.encode_to_vec(), "", ""))
        .await
        .map_err(|_| ConnectionError::Closed)?;
    let mut state = ConnectionState::Created;
    let result = loop {
        let msg = match inbound.next().await {
            None => break Ok(()),
            Some(Err(e)) => break Err(ConnectionError::Stream(e.to_string())),
            Some(Ok(m)) => m,
        };
        if msg.r#type == MsgType::Keepalive as i32 {
            // The Go shim echoes the peer's keepalive.
            if conn.send(msg).await.is_err() {
                break Err(ConnectionError::Closed);
            }
            continue;
        }
        match step(state, msg, &conn, &chaincode).await {
            Ok(next) => state = next,
            Err((txid, err)) => {
                tracing::error!(%err, "chaincode stream protocol error; ending the connection");
                let _ = conn
                    .send(message(MsgType::Error, err.clone().into_bytes(), &txid, ""))
                    .await;
                break Err(ConnectionError::Protocol(err));
            }
        }
    };
    conn.close_all();
    result
}

/// One transition of the connection's state machine.
async fn step<C: Chaincode<PeerStub>>(
    state: ConnectionState,
    msg: ChaincodeMessage,
    conn: &Arc<Connection>,
    chaincode: &Arc<C>,
) -> Result<ConnectionState, (String, String)> {
    let t = MsgType::try_from(msg.r#type).unwrap_or(MsgType::Undefined);
    match (state, t) {
        (ConnectionState::Created, MsgType::Registered) => Ok(ConnectionState::Established),
        (ConnectionState::Established, MsgType::Ready) => {
            let caps = PeerCapabilities::from_ready_payload(&msg.payload);
            let _ = conn.caps.set(caps);
            tracing::debug!(?caps, "chaincode ready");
            Ok(ConnectionState::Ready(caps))
        }
        (ConnectionState::Ready(_), MsgType::Response | MsgType::Error) => {
            if let Some(msg) = conn.route(msg) {
                // A late answer for a transaction that already finished: nothing waits for it.
                tracing::warn!(
                    txid = short_txid(&msg.txid),
                    r#type = type_name(msg.r#type),
                    "response for a transaction that is not in flight"
                );
            }
            Ok(state)
        }
        (ConnectionState::Ready(_), MsgType::Transaction | MsgType::Init) => {
            start_transaction(conn, chaincode, msg, t == MsgType::Init).await;
            Ok(state)
        }
        _ => Err((
            msg.txid.clone(),
            format!(
                "[{}] Chaincode handler cannot handle message ({}) while in state: {}",
                msg.txid,
                type_name(msg.r#type),
                state.name()
            ),
        )),
    }
}

async fn start_transaction<C: Chaincode<PeerStub>>(
    conn: &Arc<Connection>,
    chaincode: &Arc<C>,
    msg: ChaincodeMessage,
    is_init: bool,
) {
    let (responses, rx) = mpsc::unbounded_channel();
    if !conn.register(&msg.channel_id, &msg.txid, responses) {
        // Same words as the Go shim's response-channel clash for a duplicate channel + tx ID.
        let err = format!(
            "[{}] channel exists: transaction {} is already executing on channel {}",
            short_txid(&msg.txid),
            msg.txid,
            msg.channel_id
        );
        tracing::warn!(%err, "duplicate transaction refused");
        let _ = conn
            .send(message(
                MsgType::Error,
                err.into_bytes(),
                &msg.txid,
                &msg.channel_id,
            ))
            .await;
        return;
    }
    let conn = conn.clone();
    let chaincode = chaincode.clone();
    tokio::spawn(async move {
        let channel_id = msg.channel_id.clone();
        let txid = msg.txid.clone();
        let reply = CatchUnwind(AssertUnwindSafe(Box::pin(execute(
            conn.clone(),
            chaincode,
            msg,
            rx,
            is_init,
        ))))
        .await
        .unwrap_or_else(|_| {
            message(
                MsgType::Error,
                b"chaincode panicked while executing the transaction".to_vec(),
                &txid,
                &channel_id,
            )
        });
        conn.unregister(&channel_id, &txid);
        if conn.send(reply).await.is_err() {
            tracing::warn!(
                txid = short_txid(&txid),
                "peer went away before the transaction completed"
            );
        }
    });
}

/// Runs one transaction and builds its final message (COMPLETED or ERROR).
async fn execute<C: Chaincode<PeerStub>>(
    conn: Arc<Connection>,
    chaincode: Arc<C>,
    mut msg: ChaincodeMessage,
    rx: mpsc::UnboundedReceiver<ChaincodeMessage>,
    is_init: bool,
) -> ChaincodeMessage {
    let txid = std::mem::take(&mut msg.txid);
    let channel_id = std::mem::take(&mut msg.channel_id);
    let fail = |text: String| message(MsgType::Error, text.into_bytes(), &txid, &channel_id);
    let input = match ChaincodeInput::decode(msg.payload.as_slice()) {
        Ok(i) => i,
        Err(e) => return fail(format!("failed to unmarshal input: {e}")),
    };
    drop(std::mem::take(&mut msg.payload));
    let stub = match PeerStub::new(
        conn,
        channel_id.clone(),
        txid.clone(),
        input,
        msg.proposal.take(),
        rx,
    ) {
        Ok(s) => s,
        Err(e) => return fail(format!("failed to create new ChaincodeStub: {e}")),
    };
    let response = if is_init {
        chaincode.init(stub.clone()).await
    } else {
        chaincode.invoke(stub.clone()).await
    };
    // As the Go shim: a failed Init is reported as ERROR, a failed Invoke as a COMPLETED whose
    // Response carries status and message (the peer turns both into an endorsement failure).
    if is_init && response.status >= ERROR {
        return message(
            MsgType::Error,
            response.message.into_bytes(),
            &txid,
            &channel_id,
        );
    }
    if let Err(e) = stub.finish(response.is_ok()).await {
        return fail(format!("failed send batch: {e}"));
    }
    let event = stub.take_event();
    let payload = encode_response(response);
    ChaincodeMessage {
        r#type: MsgType::Completed as i32,
        payload,
        txid,
        channel_id,
        chaincode_event: event.map(|e| fabric_protos::protos::ChaincodeEvent {
            event_name: e.event_name,
            payload: e.payload,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn encode_response(r: Response) -> Vec<u8> {
    fabric_protos::protos::Response {
        status: r.status,
        message: r.message,
        payload: r.payload,
    }
    .encode_to_vec()
}

/// Turns a panic inside the chaincode into an error answer instead of a transaction the peer
/// waits on until its execute timeout.
struct CatchUnwind<F>(AssertUnwindSafe<Pin<Box<F>>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_params_follow_go_defaults() {
        assert_eq!(
            PeerCapabilities::from_ready_payload(&[]),
            PeerCapabilities::default()
        );
        let p = ChaincodeAdditionalParams {
            use_write_batch: true,
            max_size_write_batch: 5,
            use_get_multiple_keys: true,
            max_size_get_multiple_keys: 500,
        };
        let caps = PeerCapabilities::from_ready_payload(&p.encode_to_vec());
        assert!(caps.use_write_batch && caps.use_get_multiple_keys);
        assert_eq!(
            caps.max_size_write_batch, 100,
            "raised to the Go shim's minimum"
        );
        assert_eq!(caps.max_size_get_multiple_keys, 500);
        assert_eq!(
            PeerCapabilities::from_ready_payload(&[0xff, 0xff]),
            PeerCapabilities::default()
        );
    }

    #[test]
    fn short_txid_takes_eight_characters() {
        assert_eq!(short_txid("0123456789"), "01234567");
        assert_eq!(short_txid("abc"), "abc");
    }
}
