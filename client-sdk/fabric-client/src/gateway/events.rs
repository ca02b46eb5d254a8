//! Event streams: chaincode events through `gateway.Gateway/ChaincodeEvents`, and blocks (full,
//! filtered, with private data) through the peer's `protos.Deliver` service with a signed
//! `DELIVER_SEEK_INFO` envelope. Both start from a block, from the next commit, or from a
//! [`Checkpoint`].

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use fabric_protos::common::{
    self, ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use fabric_protos::gateway::{
    ChaincodeEventsRequest as ChaincodeEventsRequestProto, SignedChaincodeEventsRequest,
};
use fabric_protos::orderer::{
    seek_info, seek_position, SeekInfo, SeekNextCommit, SeekPosition, SeekSpecified,
};
use fabric_protos::protos::{self as peer, deliver_response};
use tokio_stream::Stream;

use super::checkpoint::Checkpoint;
use super::error::{GatewayError, GrpcStatus};
use super::proposal::{new_nonce, now_timestamp, transaction_id};
use super::{decode, encode, Gateway, Network};

/// Where an event stream starts.
#[derive(Default, Clone, Copy)]
pub struct EventsOptions<'a> {
    /// Read from this block (Go: `WithStartBlock`); default: the next block committed.
    pub start_block: Option<u64>,
    /// Resume from a checkpoint (Go: `WithCheckpoint`); an empty checkpoint (block 0, no
    /// transaction) defers to `start_block`.
    pub checkpoint: Option<&'a (dyn Checkpoint + Sync)>,
}

impl std::fmt::Debug for EventsOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsOptions")
            .field("start_block", &self.start_block)
            .field(
                "checkpoint",
                &self
                    .checkpoint
                    .map(|c| (c.block_number(), c.transaction_id())),
            )
            .finish()
    }
}

impl<'a> EventsOptions<'a> {
    /// Starts at `block`.
    pub fn start_block(block: u64) -> Self {
        EventsOptions {
            start_block: Some(block),
            checkpoint: None,
        }
    }

    /// Resumes from `checkpoint`.
    pub fn checkpoint(checkpoint: &'a (dyn Checkpoint + Sync)) -> Self {
        EventsOptions {
            start_block: None,
            checkpoint: Some(checkpoint),
        }
    }

    /// The start position and the transaction to resume after.
    fn position(&self) -> (SeekPosition, String) {
        if let Some(cp) = self.checkpoint {
            let (block, tx) = (cp.block_number(), cp.transaction_id());
            if block != 0 || !tx.is_empty() {
                return (specified(block), tx);
            }
        }
        match self.start_block {
            Some(b) => (specified(b), String::new()),
            None => (
                SeekPosition {
                    r#type: Some(seek_position::Type::NextCommit(SeekNextCommit {})),
                },
                String::new(),
            ),
        }
    }
}

fn specified(number: u64) -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Specified(SeekSpecified { number })),
    }
}

/// A chaincode event with the block and transaction that emitted it (Go: `ChaincodeEvent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeEvent {
    /// The block number.
    pub block_number: u64,
    /// The transaction ID.
    pub transaction_id: String,
    /// The chaincode name.
    pub chaincode_name: String,
    /// The event name.
    pub event_name: String,
    /// The event payload.
    pub payload: Vec<u8>,
}

/// A signed `gateway.ChaincodeEventsRequest`.
#[derive(Debug, Clone)]
pub struct ChaincodeEventsRequest {
    gateway: Gateway,
    signed: SignedChaincodeEventsRequest,
}

impl ChaincodeEventsRequest {
    pub(crate) fn build(
        network: &Network,
        chaincode: &str,
        options: &EventsOptions<'_>,
    ) -> Result<Self, GatewayError> {
        let (start, after) = options.position();
        let gateway = network.gateway().clone();
        let request = encode(&ChaincodeEventsRequestProto {
            channel_id: network.name().to_string(),
            chaincode_id: chaincode.to_string(),
            identity: gateway.identity().serialized().to_vec(),
            start_position: Some(start),
            after_transaction_id: after,
        });
        let signature = match gateway.sign(&request, "the chaincode events request") {
            Ok(s) => s,
            Err(GatewayError::Unsigned(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(ChaincodeEventsRequest {
            gateway,
            signed: SignedChaincodeEventsRequest { request, signature },
        })
    }

    pub(crate) fn from_bytes(gateway: Gateway, bytes: &[u8]) -> Result<Self, GatewayError> {
        let signed: SignedChaincodeEventsRequest = decode(bytes, "SignedChaincodeEventsRequest")?;
        let _: ChaincodeEventsRequestProto = decode(&signed.request, "ChaincodeEventsRequest")?;
        Ok(ChaincodeEventsRequest { gateway, signed })
    }

    pub(crate) fn set_signature(&mut self, signature: Vec<u8>) {
        self.signed.signature = signature;
    }

    /// The serialized `gateway.SignedChaincodeEventsRequest`.
    pub fn bytes(&self) -> Vec<u8> {
        encode(&self.signed)
    }

    /// The digest to sign offline: hash of the request bytes.
    pub fn digest(&self) -> Vec<u8> {
        self.gateway.digest(&self.signed.request)
    }

    /// Opens the stream.
    pub async fn events(&self) -> Result<ChaincodeEventStream, GatewayError> {
        if self.signed.signature.is_empty() {
            return Err(GatewayError::Unsigned("the chaincode events request"));
        }
        let stream = self
            .gateway
            .inner
            .connection
            .call(|ch| {
                let mut client = self.gateway.gateway_client(ch);
                let req = self.signed.clone();
                async move { client.chaincode_events(req).await }
            })
            .await
            .map_err(|s| GatewayError::Events(s.into()))?
            .into_inner();
        Ok(ChaincodeEventStream {
            inner: stream,
            buffer: VecDeque::new(),
            done: false,
        })
    }
}

/// A stream of chaincode events; ends when the server closes it, yields an error and ends when it fails.
pub struct ChaincodeEventStream {
    inner: tonic::codec::Streaming<fabric_protos::gateway::ChaincodeEventsResponse>,
    buffer: VecDeque<ChaincodeEvent>,
    done: bool,
}

impl std::fmt::Debug for ChaincodeEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeEventStream")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl ChaincodeEventStream {
    /// The next event, `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Result<ChaincodeEvent, GatewayError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ChaincodeEventStream {
    type Item = Result<ChaincodeEvent, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                return Poll::Ready(Some(Ok(ev)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.done = true;
                }
                Poll::Ready(Some(Err(status))) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(GatewayError::Events(GrpcStatus::from(status)))));
                }
                Poll::Ready(Some(Ok(response))) => {
                    let block = response.block_number;
                    self.buffer
                        .extend(response.events.into_iter().map(|e| ChaincodeEvent {
                            block_number: block,
                            transaction_id: e.tx_id,
                            chaincode_name: e.chaincode_id,
                            event_name: e.event_name,
                            payload: e.payload,
                        }));
                }
            }
        }
    }
}

/// Which `protos.Deliver` method to read blocks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockEventsKind {
    /// Full blocks (`Deliver`).
    Full,
    /// Filtered blocks: transaction IDs, validation codes, chaincode event names (`DeliverFiltered`).
    Filtered,
    /// Full blocks with the private data the client may read (`DeliverWithPrivateData`).
    WithPrivateData,
}

/// A block from a deliver stream.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliverEvent {
    /// A full block.
    Block(common::Block),
    /// A filtered block.
    Filtered(peer::FilteredBlock),
    /// A block with private data.
    WithPrivateData(peer::BlockAndPrivateData),
}

impl DeliverEvent {
    /// The block number.
    pub fn block_number(&self) -> u64 {
        match self {
            DeliverEvent::Block(b) => b.header.as_ref().map_or(0, |h| h.number),
            DeliverEvent::Filtered(f) => f.number,
            DeliverEvent::WithPrivateData(b) => b
                .block
                .as_ref()
                .and_then(|b| b.header.as_ref())
                .map_or(0, |h| h.number),
        }
    }
}

/// A signed deliver request: an `Envelope` of type `DELIVER_SEEK_INFO` carrying a `SeekInfo`.
#[derive(Debug, Clone)]
pub struct BlockEventsRequest {
    gateway: Gateway,
    kind: BlockEventsKind,
    envelope: Envelope,
}

impl BlockEventsRequest {
    pub(crate) fn build(
        network: &Network,
        kind: BlockEventsKind,
        options: &EventsOptions<'_>,
    ) -> Result<Self, GatewayError> {
        Self::build_at(network, kind, options.position().0)
    }

    /// A request for blocks from `start` on.
    pub(crate) fn build_at(
        network: &Network,
        kind: BlockEventsKind,
        start: SeekPosition,
    ) -> Result<Self, GatewayError> {
        let gateway = network.gateway().clone();
        let creator = gateway.identity().serialized();
        let nonce = new_nonce();
        let channel_header = ChannelHeader {
            r#type: HeaderType::DeliverSeekInfo as i32,
            timestamp: Some(now_timestamp()),
            channel_id: network.name().to_string(),
            tx_id: transaction_id(&nonce, creator),
            epoch: 0,
            tls_cert_hash: gateway.options().tls_cert_hash.clone().unwrap_or_default(),
            ..Default::default()
        };
        let seek = SeekInfo {
            start: Some(start),
            stop: Some(specified(u64::MAX)),
            behavior: seek_info::SeekBehavior::BlockUntilReady as i32,
            error_response: seek_info::SeekErrorResponse::Strict as i32,
            content_type: seek_info::SeekContentType::Block as i32,
        };
        let payload = encode(&Payload {
            header: Some(Header {
                channel_header: encode(&channel_header),
                signature_header: encode(&SignatureHeader {
                    creator: creator.to_vec(),
                    nonce: nonce.to_vec(),
                }),
            }),
            data: encode(&seek),
        });
        let signature = match gateway.sign(&payload, "the block events request") {
            Ok(s) => s,
            Err(GatewayError::Unsigned(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(BlockEventsRequest {
            gateway,
            kind,
            envelope: Envelope { payload, signature },
        })
    }

    pub(crate) fn from_bytes(
        gateway: Gateway,
        kind: BlockEventsKind,
        bytes: &[u8],
    ) -> Result<Self, GatewayError> {
        let envelope: Envelope = decode(bytes, "Envelope")?;
        let _: Payload = decode(&envelope.payload, "Payload")?;
        Ok(BlockEventsRequest {
            gateway,
            kind,
            envelope,
        })
    }

    pub(crate) fn set_signature(&mut self, signature: Vec<u8>) {
        self.envelope.signature = signature;
    }

    /// The serialized signed `common.Envelope`.
    pub fn bytes(&self) -> Vec<u8> {
        encode(&self.envelope)
    }

    /// The digest to sign offline: hash of the envelope payload.
    pub fn digest(&self) -> Vec<u8> {
        self.gateway.digest(&self.envelope.payload)
    }

    /// Opens the deliver stream.
    pub async fn events(&self) -> Result<BlockEventStream, GatewayError> {
        if self.envelope.signature.is_empty() {
            return Err(GatewayError::Unsigned("the block events request"));
        }
        let kind = self.kind;
        let conn = &self.gateway.inner.connection;
        let stream = conn
            .call(|ch| {
                let mut client = peer::deliver_client::DeliverClient::new(ch)
                    .max_decoding_message_size(conn.max_decoding)
                    .max_encoding_message_size(conn.max_encoding);
                let request = tokio_stream::once(self.envelope.clone());
                async move {
                    match kind {
                        BlockEventsKind::Full => client.deliver(request).await,
                        BlockEventsKind::Filtered => client.deliver_filtered(request).await,
                        BlockEventsKind::WithPrivateData => {
                            client.deliver_with_private_data(request).await
                        }
                    }
                }
            })
            .await
            .map_err(|s| GatewayError::Events(s.into()))?
            .into_inner();
        Ok(BlockEventStream {
            inner: stream,
            done: false,
        })
    }
}

/// A stream of blocks from a peer's deliver service.
pub struct BlockEventStream {
    inner: tonic::codec::Streaming<peer::DeliverResponse>,
    done: bool,
}

impl std::fmt::Debug for BlockEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockEventStream").finish_non_exhaustive()
    }
}

impl BlockEventStream {
    /// The next block, `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Result<DeliverEvent, GatewayError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for BlockEventStream {
    type Item = Result<DeliverEvent, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => None,
            Poll::Ready(Some(Err(status))) => Some(Err(GatewayError::Events(status.into()))),
            Poll::Ready(Some(Ok(response))) => match response.r#type {
                Some(deliver_response::Type::Block(b)) => {
                    return Poll::Ready(Some(Ok(DeliverEvent::Block(b))))
                }
                Some(deliver_response::Type::FilteredBlock(b)) => {
                    return Poll::Ready(Some(Ok(DeliverEvent::Filtered(b))))
                }
                Some(deliver_response::Type::BlockAndPrivateData(b)) => {
                    return Poll::Ready(Some(Ok(DeliverEvent::WithPrivateData(b))))
                }
                Some(deliver_response::Type::Status(s)) if s == common::Status::Success as i32 => {
                    None
                }
                Some(deliver_response::Type::Status(s)) => {
                    Some(Err(GatewayError::Deliver { status: s }))
                }
                None => Some(Err(GatewayError::InvalidResponse(
                    "empty DeliverResponse".into(),
                ))),
            },
        };
        self.done = true;
        Poll::Ready(item)
    }
}
