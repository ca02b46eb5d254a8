//! A holder authorises one department to use one licence for one matter.
//!
//! Runs without a network: it loads (or creates) the holder key, reads the credential the issuer
//! handed over, builds and signs the grant, and prints the grant id and the 8-digit code to tell
//! the clerk. With `ELICENSE_PROFILE` set it also relays the grant to the ledger (`Authorize`)
//! as the identity in `ELICENSE_MSP_DIR` (the holder's app backend).
//!
//! ```text
//! HOLDER_SECRET='my long holder passphrase' \
//! cargo run -p elicense-sdk --example holder_grant -- holder.pem credential.json \
//!     ServiceCentreMSP SC-0001 name id_number
//! ```
//!
//! To relay it too: `ELICENSE_PROFILE=devnet/profiles/ServiceCentre.json
//! ELICENSE_MSP_ID=ServiceCentreMSP ELICENSE_MSP_DIR=devnet/msp/ServiceCentre/holder1`.

use elicense_sdk::fabric::{msp, profile::ConnectionProfile};
use elicense_sdk::holder;
use elicense_sdk::{Credential, HolderKeyPair, LicenceClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key_path, credential_path, grantee, matter, fields @ ..] = args.as_slice() else {
        return Err(
            "usage: holder_grant <holder.pem> <credential.json> <grantee MSP> <matter> <field>…"
                .into(),
        );
    };
    let key = match HolderKeyPair::load(key_path) {
        Ok(key) => key,
        Err(_) => {
            let key = HolderKeyPair::generate();
            key.store(key_path)?;
            println!(
                "new holder key stored in {key_path}; public key:\n{}",
                key.public_pem()
            );
            return Ok(());
        }
    };
    let secret = holder::secret(&std::env::var("HOLDER_SECRET").map_err(|_| "set HOLDER_SECRET")?)?;
    let credential = Credential::load(credential_path)?;
    let grant = credential
        .grant(grantee, matter)
        .fields(fields.iter().cloned())
        .valid_for(std::time::Duration::from_secs(3600))
        .sign(&secret, &key)?;
    std::fs::write(
        format!("grant-{}.json", grant.id()),
        serde_json::to_string_pretty(&grant.signed)?,
    )?;
    println!("grant {}\ncode  {}", grant.id(), grant.code.as_str());

    if let Ok(profile) = std::env::var("ELICENSE_PROFILE") {
        let profile = ConnectionProfile::from_file(profile)?;
        let signing = msp::load_signing_identity(
            &std::env::var("ELICENSE_MSP_ID")?,
            std::env::var("ELICENSE_MSP_DIR")?,
        )?;
        let client = LicenceClient::connect(&profile, &signing, &credential.channel)?;
        let stored = client.authorize(&grant).await?;
        println!("authorised in block {}", stored.block_number);
    }
    Ok(())
}
