//! Enrolls an identity with a Fabric CA and writes it as an MSP directory and a wallet entry;
//! with `REGISTER=<id>:<secret>` it first registers that identity (with an `elicense.role=clerk`
//! ecert attribute) using the enrolled identity as registrar, then enrolls it.
//!
//! ```text
//! FABRIC_CA_URL=https://localhost:7054 FABRIC_CA_TLS_ROOT=ca-cert.pem FABRIC_MSP_ID=Org1MSP \
//! cargo run -p fabric-client --example ca_enroll -- admin adminpw out-dir
//! ```

use fabric_client::ca::{
    CaClient, CaClientOptions, EnrollmentRequest, MspWriteOptions, RegistrationRequest,
};
use fabric_client::wallet::Wallet;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let id = args.next().unwrap_or_else(|| "admin".into());
    let secret = args.next().unwrap_or_else(|| "adminpw".into());
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| "enrolled".into()));
    let msp_id = env("FABRIC_MSP_ID", "Org1MSP");

    let mut options = CaClientOptions {
        ca_name: std::env::var("FABRIC_CA_NAME").ok(),
        ..Default::default()
    };
    if let Ok(path) = std::env::var("FABRIC_CA_TLS_ROOT") {
        options.tls_root_pems.push(std::fs::read(path)?);
    }
    let ca = CaClient::new(&env("FABRIC_CA_URL", "https://localhost:7054"), options)?;
    let info = ca.cainfo().await?;
    println!("CA {:?} version {}", info.ca_name, info.version);

    let enrollment = ca.enroll(&EnrollmentRequest::new(&id, &secret)).await?;
    enrollment.write_msp_dir(
        out.join(&id).join("msp"),
        &MspWriteOptions {
            node_ous: true,
            ..Default::default()
        },
    )?;
    let wallet = Wallet::open(out.join("wallet"))?;
    wallet.put(&id, &enrollment.wallet_identity(&msp_id))?;
    println!("enrolled {id}: {}", out.join(&id).join("msp").display());

    if let Ok(spec) = std::env::var("REGISTER") {
        let (new_id, new_secret) = spec
            .split_once(':')
            .ok_or("REGISTER must be <id>:<secret>")?;
        let registrar = enrollment.signing_identity(&msp_id)?;
        ca.register(
            &registrar,
            &RegistrationRequest::new(new_id)
                .secret(new_secret)
                .attribute("elicense.role", "clerk", true),
        )
        .await?;
        let user = ca
            .enroll(&EnrollmentRequest::new(new_id, new_secret))
            .await?;
        wallet.put(new_id, &user.wallet_identity(&msp_id))?;
        println!(
            "registered and enrolled {new_id} into {}",
            wallet.dir().display()
        );
    }
    Ok(())
}
