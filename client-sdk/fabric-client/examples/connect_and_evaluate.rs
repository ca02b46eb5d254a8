//! Connects to a Fabric Gateway peer and evaluates (and optionally submits) a transaction.
//!
//! Shows the basic shape of the client: load an identity from an MSP directory, build a
//! [`Gateway`] for one endpoint with TLS, pick a channel and chaincode, call a transaction.
//!
//! ```text
//! FABRIC_GATEWAY_URL=https://localhost:7051 FABRIC_TLS_ROOT=peer-tls-ca.pem \
//! FABRIC_SERVER_NAME=peer0.org1.example.com FABRIC_MSP_ID=Org1MSP FABRIC_MSP_DIR=msp \
//! cargo run -p fabric-client --example connect_and_evaluate -- mychannel basic GetAllAssets
//! ```
//! Set `SUBMIT=1` to submit instead of evaluate.

use fabric_client::gateway::{Endpoint, Gateway, GatewayOptions};
use fabric_client::msp;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let channel = args.next().unwrap_or_else(|| "mychannel".into());
    let chaincode = args.next().unwrap_or_else(|| "basic".into());
    let function = args.next().unwrap_or_else(|| "GetAllAssets".into());
    let rest: Vec<String> = args.collect();

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
    let contract = gateway.network(channel).contract(chaincode);

    let result = if std::env::var("SUBMIT").is_ok() {
        contract.submit_transaction(&function, &rest).await
    } else {
        contract.evaluate_transaction(&function, &rest).await
    };
    match result {
        Ok(bytes) => println!("{}", String::from_utf8_lossy(&bytes)),
        Err(e) => {
            eprintln!("{e}");
            if let Some(tx) = e.transaction_id() {
                eprintln!("transaction: {tx}");
            }
            for detail in e.details() {
                eprintln!("  {detail}");
            }
            std::process::exit(1);
        }
    }
    Ok(())
}
