//! `elicense events`: the chaincode's events as they commit, one result per line.
//!
//! With `--checkpoint FILE` (the Go gateway client's checkpoint file format) each event is
//! recorded after it is printed, and a later run resumes right after the last printed event:
//! nothing lost, nothing repeated. `--from-block N` and `--after-tx ID` choose where a stream
//! without a checkpoint starts; a non-empty checkpoint wins over both.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use fabric_client::gateway::{
    ChaincodeEvent, Checkpoint, Checkpointer, EventsOptions, FileCheckpointer, InMemoryCheckpointer,
};
use serde_json::{json, Value};

use crate::connect::Client;
use crate::error::CliError;
use crate::exit::Class;
use crate::output::Format;
use crate::Ctx;

/// Arguments of `events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start at this block (default: the next block committed).
    #[arg(long, value_name = "N", conflicts_with = "after_tx")]
    pub from_block: Option<u64>,
    /// Start right after this transaction's events.
    #[arg(long, value_name = "TXID")]
    pub after_tx: Option<String>,
    /// Resume from, and record progress to, this checkpoint file.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop when no event has arrived for this many seconds.
    #[arg(long, value_name = "SECS")]
    pub idle: Option<u64>,
}

/// An event as printed: payload as JSON when it is JSON, else base64.
pub fn event_json(e: &ChaincodeEvent) -> Value {
    let payload = serde_json::from_slice::<Value>(&e.payload)
        .unwrap_or_else(|_| json!(base64::engine::general_purpose::STANDARD.encode(&e.payload)));
    json!({
        "block": e.block_number,
        "tx_id": e.transaction_id,
        "chaincode": e.chaincode_name,
        "event": e.event_name,
        "payload": payload,
    })
}

fn print_line(format: Format, e: &ChaincodeEvent) -> Result<(), CliError> {
    let value = event_json(e);
    let text = match format {
        Format::Json => format!("{value}\n"),
        Format::Yaml => format!(
            "---\n{}",
            serde_yaml::to_string(&value)
                .map_err(|e| CliError::new(Class::Internal, e.to_string()))?
        ),
        Format::Table => format!(
            "{:>6}  {}  {:<20}  {}\n",
            e.block_number, e.transaction_id, e.event_name, value["payload"]
        ),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::new(Class::Internal, format!("writing output: {e}")))
}

/// Runs `events`.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let client = Client::connect(&ctx.settings)?;
    let network = client.network();
    let chaincode = ctx.settings.chaincode.clone();

    let file_cp = match &args.checkpoint {
        Some(path) => Some(FileCheckpointer::open(path).map_err(|e| {
            CliError::usage(e.to_string())
                .hint("the checkpoint file holds {\"blockNumber\":N,\"transactionId\":\"…\"}; delete it to start over")
        })?),
        None => None,
    };
    let start_cp = InMemoryCheckpointer::new();
    if let Some(tx) = &args.after_tx {
        // Fabric's gateway finds the block of this transaction and skips up to it.
        start_cp
            .checkpoint_transaction(0, tx)
            .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    }
    let resume = file_cp
        .as_ref()
        .filter(|cp| cp.block_number() != 0 || !cp.transaction_id().is_empty());
    let mut options = match resume {
        Some(cp) => EventsOptions::checkpoint(cp),
        None if args.after_tx.is_some() => EventsOptions::checkpoint(&start_cp),
        None => EventsOptions::default(),
    };
    options.start_block = options.start_block.or(args.from_block);
    if let Some(cp) = resume {
        tracing::info!(
            block = cp.block_number(),
            after = %cp.transaction_id(),
            "resuming from the checkpoint"
        );
    }

    let mut stream = network
        .chaincode_events(&chaincode, &options)
        .await
        .map_err(|e| CliError::from(e).context("opening the event stream"))?;
    let mut seen = 0u64;
    loop {
        if args.count.is_some_and(|c| seen >= c) {
            break;
        }
        let next = match args.idle {
            Some(secs) => {
                match tokio::time::timeout(Duration::from_secs(secs), stream.next()).await {
                    Ok(n) => n,
                    Err(_) => break,
                }
            }
            None => stream.next().await,
        };
        let event = match next {
            None => break,
            Some(Err(e)) => return Err(CliError::from(e).context("event stream")),
            Some(Ok(e)) => e,
        };
        print_line(ctx.format(), &event)?;
        if let Some(cp) = &file_cp {
            cp.checkpoint_chaincode_event(&event)
                .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
        }
        seen += 1;
    }
    Ok(())
}
