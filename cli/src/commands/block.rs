//! `elicense block N`: one block of the channel, decoded (header, each transaction's ID, type,
//! creator, validation code, chaincode call, events and written keys).
//!
//! The block is read the way Fabric's own tools read one: from the query system chaincode
//! (`qscc GetBlockByNumber`) through the Gateway, and where a peer does not serve `qscc`, from the
//! peer's Deliver service (as `peer channel fetch` does).

use std::path::PathBuf;
use std::time::Duration;

use fabric_client::gateway::{BlockEventsKind, DeliverEvent, EventsOptions};
use fabric_protos::common::{Block, BlockMetadataIndex, ChannelHeader, HeaderType, Payload};
use fabric_protos::protos::TxValidationCode;
use prost::Message as _;
use serde_json::{json, Value};

use crate::connect::Client;
use crate::error::CliError;
use crate::exit::Class;
use crate::Ctx;

/// Arguments of `block`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The block number (0 is the genesis block).
    pub number: u64,
    /// Also write the block's protobuf bytes (common.Block) to this file.
    #[arg(long, value_name = "FILE")]
    pub raw: Option<PathBuf>,
    /// How long to wait for the block when it must be read from the Deliver service.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub wait: u64,
}

/// Reads block `number` of the client's channel.
pub async fn fetch(client: &Client, number: u64, wait: Duration) -> Result<Block, CliError> {
    let network = client.network();
    let qscc = network.contract("qscc");
    let channel = client.channel.clone();
    let n = number.to_string();
    match qscc
        .evaluate_transaction("GetBlockByNumber", &[channel.as_str(), n.as_str()])
        .await
    {
        Ok(bytes) => Block::decode(bytes.as_slice()).map_err(|e| {
            CliError::new(
                Class::Network,
                format!("the peer returned a malformed block: {e}"),
            )
        }),
        Err(e) => {
            let text = format!(
                "{e} {}",
                e.details()
                    .iter()
                    .map(|d| d.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
            .to_ascii_lowercase();
            let qscc_missing = text.contains("qscc")
                && (text.contains("not found")
                    || text.contains("not defined")
                    || text.contains("unknown")
                    || text.contains("no peers available"));
            if text.contains("entry not found") || (text.contains("not found") && !qscc_missing) {
                return Err(not_committed(number));
            }
            if !qscc_missing {
                return Err(CliError::from(e).context(format!("reading block {number}")));
            }
            deliver_one(client, number, wait).await
        }
    }
}

fn not_committed(number: u64) -> CliError {
    CliError::new(
        Class::NotFound,
        format!("block {number} is not on the channel's ledger"),
    )
    .hint("block numbers start at 0; the newest block is the ledger height minus one")
}

async fn deliver_one(client: &Client, number: u64, wait: Duration) -> Result<Block, CliError> {
    let network = client.network();
    let options = EventsOptions::start_block(number);
    let read = async {
        let mut stream = network
            .block_events(BlockEventsKind::Full, &options)
            .await
            .map_err(|e| CliError::from(e).context(format!("reading block {number}")))?;
        match stream.next().await {
            Some(Ok(DeliverEvent::Block(b))) => Ok(b),
            Some(Ok(other)) => Err(CliError::new(
                Class::Network,
                format!(
                    "the peer sent block {} in the wrong form",
                    other.block_number()
                ),
            )),
            Some(Err(e)) => Err(CliError::from(e).context(format!("reading block {number}"))),
            None => Err(not_committed(number)),
        }
    };
    match tokio::time::timeout(wait, read).await {
        Ok(r) => r,
        Err(_) => Err(not_committed(number)),
    }
}

fn timestamp(ts: &Option<prost_types::Timestamp>) -> Value {
    match ts {
        Some(t) => json!(t.seconds),
        None => Value::Null,
    }
}

/// The block as JSON: header, and each transaction's public facts.
pub fn describe(block: &Block) -> Value {
    let header = block.header.clone().unwrap_or_default();
    let filter = block
        .metadata
        .as_ref()
        .and_then(|m| {
            m.metadata
                .get(BlockMetadataIndex::TransactionsFilter as usize)
        })
        .cloned()
        .unwrap_or_default();
    let data = block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or(&[]);
    let mut txs = Vec::with_capacity(data.len());
    for (i, env_bytes) in data.iter().enumerate() {
        let code = filter.get(i).copied().map(i32::from);
        let validation = code.map(|c| {
            TxValidationCode::try_from(c)
                .map(|v| v.as_str_name().to_string())
                .unwrap_or_else(|_| c.to_string())
        });
        txs.push(describe_tx(i, env_bytes, validation));
    }
    json!({
        "number": header.number,
        "previous_hash": hex::encode(&header.previous_hash),
        "data_hash": hex::encode(&header.data_hash),
        "transactions": txs,
    })
}

fn describe_tx(index: usize, env_bytes: &[u8], validation: Option<String>) -> Value {
    let mut out = json!({ "index": index, "validation": validation });
    let envelope = match fabric_protos::common::Envelope::decode(env_bytes) {
        Ok(e) => e,
        Err(e) => {
            out["error"] = json!(format!("not an envelope: {e}"));
            return out;
        }
    };
    let header = Payload::decode(envelope.payload.as_slice())
        .ok()
        .and_then(|p| p.header)
        .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok());
    if let Some(ch) = &header {
        out["type"] = json!(HeaderType::try_from(ch.r#type)
            .map(|t| t.as_str_name().to_string())
            .unwrap_or_else(|_| ch.r#type.to_string()));
        out["tx_id"] = json!(ch.tx_id);
        out["timestamp"] = timestamp(&ch.timestamp);
    }
    if header.as_ref().map(|h| h.r#type) != Some(HeaderType::EndorserTransaction as i32) {
        return out;
    }
    let tx = match fabric_common::tx::unpack_envelope(&envelope) {
        Ok(t) => t,
        Err(e) => {
            out["error"] = json!(e.to_string());
            return out;
        }
    };
    if let Ok(id) = fabric_common::identity::Identity::from_serialized(tx.creator()) {
        out["creator_msp"] = json!(id.msp_id());
    }
    if let Some(action) = tx.actions.first() {
        let spec = action.invocation.chaincode_spec.clone().unwrap_or_default();
        out["chaincode"] = json!(spec.chaincode_id.map(|c| c.name).unwrap_or_default());
        let args = spec.input.map(|i| i.args).unwrap_or_default();
        out["function"] = json!(args
            .first()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default());
        let ev = &action.chaincode_action.events;
        if !ev.is_empty() {
            if let Ok(event) = fabric_protos::protos::ChaincodeEvent::decode(ev.as_slice()) {
                out["event"] = json!(event.event_name);
            }
        }
        if let Ok(sets) = action.kv_rwsets() {
            let writes: Vec<Value> = sets
                .iter()
                .flat_map(|(ns, set)| {
                    set.writes.iter().map(move |w| {
                        json!({"namespace": ns, "key": printable_key(&w.key), "delete": w.is_delete})
                    })
                })
                .collect();
            out["writes"] = json!(writes);
        }
        out["endorsers"] = json!(action
            .endorsements
            .iter()
            .filter_map(|e| fabric_common::identity::Identity::from_serialized(&e.endorser).ok())
            .map(|i| i.msp_id().to_string())
            .collect::<Vec<_>>());
    }
    out
}

/// Composite keys hold NUL separators: show them as `\u0000`-free `/`-joined text.
fn printable_key(key: &str) -> String {
    key.trim_start_matches('\u{0}')
        .replace('\u{0}', "/")
        .trim_end_matches('/')
        .to_string()
}

/// Runs `block`.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let client = Client::connect(&ctx.settings)?;
    let block = fetch(&client, args.number, Duration::from_secs(args.wait)).await?;
    if let Some(path) = &args.raw {
        std::fs::write(path, block.encode_to_vec()).map_err(|e| {
            CliError::new(Class::Internal, format!("writing {}: {e}", path.display()))
        })?;
    }
    crate::output::print(ctx.format(), &describe(&block))
}
