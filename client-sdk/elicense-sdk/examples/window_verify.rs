//! A service-window clerk uses a holder's grant: verifies the code and the presented fields,
//! then retrieves the granted values that were not presented.
//!
//! Each refusal is a [`Failure`] the window system can act on: ask for the code again, tell the
//! holder the grant is spent or withdrawn, send them to the issuer for a suspended licence…
//!
//! ```text
//! ELICENSE_PROFILE=devnet/profiles/ServiceCentre.json ELICENSE_MSP_ID=ServiceCentreMSP \
//! ELICENSE_MSP_DIR=devnet/msp/ServiceCentre/clerk1 \
//! cargo run -p elicense-sdk --example window_verify -- police-service <grant id> SC-0001 12345678 \
//!     [credential.json name …]
//! ```

use std::collections::BTreeMap;

use elicense_sdk::fabric::{msp, profile::ConnectionProfile};
use elicense_sdk::model::{Code, GrantId, Presentation};
use elicense_sdk::{Credential, Failure, LicenceClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [channel, grant_id, matter, code, presented @ ..] = args.as_slice() else {
        return Err(
            "usage: window_verify <channel> <grant id> <matter> <code> [credential.json field…]"
                .into(),
        );
    };
    let profile = ConnectionProfile::from_file(std::env::var("ELICENSE_PROFILE")?)?;
    let signing = msp::load_signing_identity(
        &std::env::var("ELICENSE_MSP_ID")?,
        std::env::var("ELICENSE_MSP_DIR")?,
    )?;
    let client = LicenceClient::connect(&profile, &signing, channel)?;
    let grant_id = GrantId::parse(grant_id)?;
    // The holder hands over the values it chooses to present (here: read from its credential).
    let fields = match presented {
        [] => BTreeMap::new(),
        [credential, names @ ..] => Credential::load(credential)?.openings(names)?,
    };
    let presentation = Presentation {
        code: Code::parse(code)?,
        fields,
    };
    match client.verify(&grant_id, matter, &presentation).await {
        Ok(v) => {
            println!(
                "verified {} for {} (block {}): matched {:?}, {} use(s) left",
                v.licence_id, v.matter, v.block_number, v.matched, v.uses_left
            );
            if !v.not_presented.is_empty() {
                let values = client.retrieve_verified(&v).await?;
                for (name, value) in values.fields {
                    println!("  {name}: {value}");
                }
            }
        }
        Err(e) => {
            let advice = match e.failure() {
                Failure::WrongCode => "ask the holder for the code again",
                Failure::GrantLocked => "too many wrong codes: the holder must grant again",
                Failure::GrantSpent | Failure::GrantExpired | Failure::GrantWithdrawn => {
                    "the grant is no longer usable: the holder must grant again"
                }
                Failure::FieldMismatch => "presented values differ from the licence",
                Failure::LicenceSuspended | Failure::LicenceRevoked => {
                    "the licence is not valid: refer the holder to the issuer"
                }
                Failure::Network | Failure::Conflict => "try again",
                _ => "refused",
            };
            eprintln!("{advice}: {e}");
            if !e.fields().is_empty() {
                eprintln!("fields: {}", e.fields().join(", "));
            }
            std::process::exit(1);
        }
    }
    Ok(())
}
