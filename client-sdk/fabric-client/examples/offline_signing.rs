//! Offline signing: the application holds only the certificate; the private key lives elsewhere
//! (an HSM, a signing service, a holder's device). Each message — proposal, transaction, commit
//! status request — is built unsigned, its digest is handed to the external signer, and the
//! signature is attached with `Gateway::new_signed_*`. The serialized bytes can cross process or
//! machine boundaries in between.
//!
//! ```text
//! FABRIC_GATEWAY_URL=https://localhost:7051 FABRIC_TLS_ROOT=peer-tls-ca.pem \
//! FABRIC_MSP_ID=Org1MSP FABRIC_MSP_DIR=msp \
//! cargo run -p fabric-client --example offline_signing -- mychannel basic CreateAsset asset7 blue
//! ```
//! Here the "external signer" is the MSP directory's key, loaded separately from the gateway.

use fabric_client::gateway::{Connection, ConnectionOptions, Endpoint, Gateway, GatewayOptions};
use fabric_client::{msp, Signer};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let channel = args.next().unwrap_or_else(|| "mychannel".into());
    let chaincode = args.next().unwrap_or_else(|| "basic".into());
    let function = args.next().unwrap_or_else(|| "CreateAsset".into());
    let rest: Vec<String> = args.collect();

    let msp_id = env("FABRIC_MSP_ID", "Org1MSP");
    let msp_dir = env("FABRIC_MSP_DIR", "msp");
    let identity = msp::load_identity(&msp_id, &msp_dir)?;
    // The external signer: it sees digests only.
    let external = msp::load_signing_identity(&msp_id, &msp_dir)?;
    let sign = |digest: &[u8]| external.signer().sign(digest);

    let mut endpoint = Endpoint::new(env("FABRIC_GATEWAY_URL", "https://localhost:7051"));
    if let Ok(path) = std::env::var("FABRIC_TLS_ROOT") {
        endpoint = endpoint.tls_root(std::fs::read(path)?);
    }
    if let Ok(name) = std::env::var("FABRIC_SERVER_NAME") {
        endpoint = endpoint.server_name(name);
    }
    let connection = Connection::new(vec![endpoint], &ConnectionOptions::default())?;
    // No signer: the gateway cannot sign anything itself.
    let gateway = Gateway::new(connection, identity, None, GatewayOptions::default());
    let contract = gateway.network(channel).contract(chaincode);

    let unsigned = contract
        .new_proposal(&function)
        .string_args(&rest)
        .build()?;
    let proposal = gateway.new_signed_proposal(&unsigned.bytes(), sign(&unsigned.digest())?)?;
    let unsigned_tx = proposal.endorse().await?;
    println!("result: {}", String::from_utf8_lossy(unsigned_tx.result()));
    let transaction =
        gateway.new_signed_transaction(&unsigned_tx.bytes(), sign(&unsigned_tx.digest())?)?;
    let unsigned_commit = transaction.submit().await?;
    let commit =
        gateway.new_signed_commit(&unsigned_commit.bytes(), sign(&unsigned_commit.digest())?)?;
    let status = commit.status().await?;
    println!(
        "transaction {} committed in block {} with {}",
        status.transaction_id,
        status.block_number,
        status.code.as_str_name()
    );
    Ok(())
}
