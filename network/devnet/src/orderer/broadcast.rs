//! Broadcast as Fabric's `orderer/common/broadcast` and the standard channel's
//! `msgprocessor` filters check it, and the `AtomicBroadcast` gRPC service (Broadcast and the
//! orderer's Deliver).
//!
//! Per envelope, the first failing check answers (`BroadcastResponse.status`, `info`):
//!
//! 1. the channel header cannot be read → `BAD_REQUEST` "could not determine channel ID: …";
//! 2. the channel is not served → `BAD_REQUEST` "channel does not exist" (Fabric v3 has no system
//!    channel, so an unknown channel is just a wrong name);
//! 3. a `CONFIG` envelope → `BAD_REQUEST` "message is of type that cannot be processed directly";
//!    `CONFIG_UPDATE` is refused as `BAD_REQUEST` too (the devnet's channels are fixed by the
//!    topology);
//! 4. the standard filters, in Fabric's order: empty payload, size above `AbsoluteMaxBytes`,
//!    expired creator certificate (all `BAD_REQUEST`), then the `/Channel/Writers` policy over
//!    the envelope's signature (`FORBIDDEN`, "…: permission denied");
//! 5. enqueued → `SUCCESS`; a halted chain → `SERVICE_UNAVAILABLE`.

use std::pin::Pin;

use fabric_protos::common::{
    ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader, Status,
};
use fabric_protos::orderer::{atomic_broadcast_server::AtomicBroadcast, BroadcastResponse};
use prost::Message;
use tokio_stream::{Stream, StreamExt};

use super::Orderer;
use crate::deliver::{self, DeliverSource};

/// Why Broadcast refused an envelope, with the status Fabric classifies it as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{info}")]
pub struct BroadcastError {
    /// The `common.Status` answered.
    pub status: Status,
    /// The `info` text.
    pub info: String,
}

impl BroadcastError {
    fn bad(info: impl Into<String>) -> Self {
        BroadcastError {
            status: Status::BadRequest,
            info: info.into(),
        }
    }
}

/// The response Broadcast sends for a check's outcome.
pub fn classify(r: Result<(), BroadcastError>) -> BroadcastResponse {
    match r {
        Ok(()) => BroadcastResponse {
            status: Status::Success as i32,
            info: String::new(),
        },
        Err(e) => BroadcastResponse {
            status: e.status as i32,
            info: e.info,
        },
    }
}

pub(super) fn process_message(orderer: &Orderer, env: Envelope) -> BroadcastResponse {
    classify(check_and_order(orderer, env))
}

fn channel_header(env: &Envelope) -> Result<(ChannelHeader, SignatureHeader), String> {
    let payload = Payload::decode(env.payload.as_slice())
        .map_err(|e| format!("error unmarshalling payload: {e}"))?;
    let header = payload
        .header
        .ok_or_else(|| "no header was set".to_string())?;
    let chdr = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| format!("error unmarshalling channel header: {e}"))?;
    let shdr = SignatureHeader::decode(header.signature_header.as_slice())
        .map_err(|e| format!("error unmarshalling signature header: {e}"))?;
    Ok((chdr, shdr))
}

fn check_and_order(orderer: &Orderer, env: Envelope) -> Result<(), BroadcastError> {
    let (chdr, shdr) = channel_header(&env)
        .map_err(|e| BroadcastError::bad(format!("could not determine channel ID: {e}")))?;
    let chain = orderer
        .chain(&chdr.channel_id)
        .ok_or_else(|| BroadcastError::bad("channel does not exist"))?;
    match HeaderType::try_from(chdr.r#type) {
        Ok(HeaderType::Config) => {
            return Err(BroadcastError::bad(
                "message is of type that cannot be processed directly",
            ))
        }
        Ok(HeaderType::ConfigUpdate) | Ok(HeaderType::OrdererTransaction) => {
            return Err(BroadcastError::bad(
                "channel configuration updates are not accepted: the devnet's channels are defined by its topology",
            ))
        }
        _ => {}
    }
    // Standard channel filters, in Fabric's order.
    if env.payload.is_empty() {
        return Err(BroadcastError::bad("message was empty"));
    }
    let max = chain.bundle().batch.absolute_max_bytes;
    let size = super::blockcutter::message_size(&env);
    if size > max {
        return Err(BroadcastError::bad(format!(
            "message payload is {size} bytes and exceeds maximum allowed {max} bytes"
        )));
    }
    // The channel's identity cache has the creator's certificate parsed already (the policy
    // check below needs it too); only a creator of an MSP outside the channel is parsed here.
    let not_after = match chain.context().msps.deserialize(&shdr.creator) {
        Ok(id) => Some(id.identity.certificate().not_after()),
        Err(_) => fabric_common::identity::Identity::from_serialized(&shdr.creator)
            .ok()
            .map(|id| id.certificate().not_after()),
    };
    if not_after.is_some_and(|t| t < now_unix()) {
        return Err(BroadcastError::bad("broadcast client identity expired"));
    }
    deliver::check_policy(
        chain.context(),
        "/Channel/Writers",
        &shdr.creator,
        &env.payload,
        &env.signature,
    )
    .map_err(|e| BroadcastError {
        status: Status::Forbidden,
        info: format!("{e}: permission denied"),
    })?;
    chain.order(env).map_err(|e| BroadcastError {
        status: Status::ServiceUnavailable,
        info: e.to_string(),
    })
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The orderer's `AtomicBroadcast` gRPC service.
#[derive(Debug, Clone)]
pub struct AtomicBroadcastService {
    orderer: Orderer,
}

impl AtomicBroadcastService {
    /// The service over `orderer`.
    pub fn new(orderer: Orderer) -> Self {
        AtomicBroadcastService { orderer }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AtomicBroadcast for AtomicBroadcastService {
    type BroadcastStream = ResponseStream<BroadcastResponse>;

    async fn broadcast(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::BroadcastStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let orderer = self.orderer.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(msg) = inbound.next().await {
                let env = match msg {
                    Ok(env) => env,
                    Err(_) => return,
                };
                let resp = orderer.broadcast(env);
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    type DeliverStream = ResponseStream<fabric_protos::orderer::DeliverResponse>;

    async fn deliver(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverStream>, tonic::Status> {
        let orderer = self.orderer.clone();
        let lookup = move |channel: &str| {
            orderer.chain(channel).map(|c| DeliverSource {
                ledger: c.ledger().clone(),
                context: c.context().clone(),
                policy: "/Channel/Readers",
            })
        };
        use fabric_protos::orderer::{deliver_response::Type, DeliverResponse};
        let stream = deliver::serve(
            request.into_inner(),
            lookup,
            |_, _, b| DeliverResponse {
                r#type: Some(Type::Block(std::sync::Arc::unwrap_or_clone(b))),
            },
            |s| DeliverResponse {
                r#type: Some(Type::Status(s as i32)),
            },
        );
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}
