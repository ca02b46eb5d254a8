//! An issuer clerk issues a licence and writes the holder's credential.
//!
//! The licence identifier is built from the catalogue (type tag, the issuer's code, a serial);
//! the SDK salts every field with fresh random bytes and sends values and salts as transient
//! data, so only commitments reach the ledger.
//!
//! ```text
//! ELICENSE_PROFILE=devnet/profiles/PublicSecurity.json ELICENSE_MSP_ID=PublicSecurityMSP \
//! ELICENSE_MSP_DIR=devnet/msp/PublicSecurity/issuer1 \
//! cargo run -p elicense-sdk --example issue -- police-service ID_CARD 000000123 holder.pub.pem \
//!     credential.json name=张三 sex=男 ethnicity=汉 birth_date=1990-03-07 address=北京市东城区 \
//!     id_number=110101199003070000 issuing_authority=北京市公安局 valid_from=2020-01-01 \
//!     valid_until=2040-01-01
//! ```

use std::collections::BTreeMap;

use elicense_sdk::fabric::{msp, profile::ConnectionProfile};
use elicense_sdk::model::{IssueRequest, LicenceId};
use elicense_sdk::{LicenceClient, NewLicence};

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [channel, licence_type, serial, holder_pem, out, values @ ..] = args.as_slice() else {
        return Err(
            "usage: issue <channel> <type> <serial> <holder.pub.pem> <credential.json> name=value…"
                .into(),
        );
    };
    let signing = msp::load_signing_identity(&env("ELICENSE_MSP_ID")?, env("ELICENSE_MSP_DIR")?)?;
    let profile = ConnectionProfile::from_file(env("ELICENSE_PROFILE")?)?;
    let client = LicenceClient::connect(&profile, &signing, channel)?;

    let entry = client.licence_type(licence_type).await?;
    let issuer = entry
        .issuer(signing.identity().msp_id())
        .ok_or("this organisation does not issue that licence type")?;
    let values: BTreeMap<String, String> = values
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("expected name=value, got {kv}"))
        })
        .collect::<Result<_, _>>()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let licence = NewLicence {
        request: IssueRequest {
            licence_id: LicenceId::build(&entry.id_tag, &issuer.code, serial)?,
            licence_type: entry.code.clone(),
            holder_key: std::fs::read_to_string(holder_pem)?,
            not_before: now,
            not_after: now + 10 * 365 * 86_400,
        },
        values,
    };
    match client.issue(licence).await {
        Ok(issued) => {
            issued.credential.save(out)?;
            println!(
                "issued {} in block {} (transaction {}); credential written to {out}",
                issued.record.id, issued.block_number, issued.transaction_id
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("not issued ({:?}): {e}", e.failure());
            std::process::exit(1);
        }
    }
}
