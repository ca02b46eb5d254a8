//! Listens to a chaincode's events and checkpoints each one to a file, so that a restarted
//! listener resumes exactly after the last event it handled: nothing lost, nothing repeated.
//!
//! ```text
//! FABRIC_GATEWAY_URL=https://localhost:7051 FABRIC_TLS_ROOT=peer-tls-ca.pem \
//! FABRIC_MSP_ID=Org1MSP FABRIC_MSP_DIR=msp CHECKPOINT=events.json \
//! cargo run -p fabric-client --example events_with_checkpoint -- mychannel elicense [start-block]
//! ```
//! Stop it with Ctrl-C at any point and run it again: it continues from the checkpoint file.

use fabric_client::gateway::{
    Checkpoint, Checkpointer, Endpoint, EventsOptions, FileCheckpointer, Gateway, GatewayOptions,
};
use fabric_client::msp;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let channel = args.next().unwrap_or_else(|| "mychannel".into());
    let chaincode = args.next().unwrap_or_else(|| "elicense".into());
    let start_block = args.next().map(|s| s.parse::<u64>()).transpose()?;

    let signing = msp::load_signing_identity(
        &env("FABRIC_MSP_ID", "Org1MSP"),
        env("FABRIC_MSP_DIR", "msp"),
    )?;
    let mut endpoint = Endpoint::new(env("FABRIC_GATEWAY_URL", "https://localhost:7051"));
    if let Ok(path) = std::env::var("FABRIC_TLS_ROOT") {
        endpoint = endpoint.tls_root(std::fs::read(path)?);
    }
    if let Ok(name) = std::env::var("FABRIC_SERVER_NAME") {
        endpoint = endpoint.server_name(name);
    }
    let gateway = Gateway::connect(
        endpoint,
        signing.identity().clone(),
        signing.signer().clone(),
        GatewayOptions::default(),
    )?;

    let checkpointer = FileCheckpointer::open(env("CHECKPOINT", "events.json"))?;
    eprintln!(
        "resuming at block {} after transaction {:?}",
        checkpointer.block_number(),
        checkpointer.transaction_id()
    );
    // A non-empty checkpoint wins; otherwise start at the given block (or the next commit).
    let mut options = EventsOptions::checkpoint(&checkpointer);
    options.start_block = start_block;
    let mut events = gateway
        .network(channel)
        .chaincode_events(&chaincode, &options)
        .await?;
    while let Some(event) = events.next().await {
        let event = event?;
        println!(
            "block {} tx {} {}: {}",
            event.block_number,
            event.transaction_id,
            event.event_name,
            String::from_utf8_lossy(&event.payload)
        );
        // Checkpoint only after the event is fully handled.
        checkpointer.checkpoint_chaincode_event(&event)?;
    }
    Ok(())
}
