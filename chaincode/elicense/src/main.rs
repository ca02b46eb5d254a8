//! `elicense-chaincode`: the licence contract as a chaincode-as-a-service server, and the tool
//! that writes its CCaaS install package.
//!
//! ```text
//! elicense-chaincode [--address HOST:PORT] [--chaincode-id ID] [--tls-key F --tls-cert F [--client-ca-cert F]]
//! elicense-chaincode package --label L --address HOST:PORT [--tls-root-cert F [--client-cert F --client-key F]] --out FILE
//! ```
//!
//! The server takes its settings from flags or from the environment variables of Fabric's CCaaS
//! samples (`CHAINCODE_SERVER_ADDRESS`, `CHAINCODE_ID`, `CHAINCODE_TLS_KEY`, `CHAINCODE_TLS_CERT`,
//! `CHAINCODE_CLIENT_CA_CERT`, `CHAINCODE_TLS_DISABLED`), plus `ELICENSE_REGULATOR_MSP`.

use clap::{Parser, Subcommand};
use elicense_chaincode::package::{self, Connection};
use elicense_chaincode::{router, Settings};
use fabric_chaincode::server::{ChaincodeServer, ServerArgs, ServerConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "elicense-chaincode",
    version,
    about = "The eLicense Ledger chaincode (CCaaS server)"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
    /// MSP ID of the regulator (catalogue admins, auditors); must be the same for every org.
    #[arg(long, env = "ELICENSE_REGULATOR_MSP", default_value = "RegulatorMSP")]
    regulator_msp: String,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the CCaaS install package for `peer lifecycle chaincode install` and prints its
    /// package ID.
    Package {
        /// Package label, e.g. elicense_1.0.
        #[arg(long)]
        label: String,
        /// HOST:PORT where peers reach the chaincode server.
        #[arg(long)]
        address: String,
        /// How long the peer waits when dialling (a Go duration).
        #[arg(long, default_value = "10s")]
        dial_timeout: String,
        /// PEM file of the CA that signed the chaincode server's TLS certificate; enables TLS.
        #[arg(long)]
        tls_root_cert: Option<PathBuf>,
        /// PEM file of the client certificate the peer presents; enables mutual TLS.
        #[arg(long, requires = "client_key", requires = "tls_root_cert")]
        client_cert: Option<PathBuf>,
        /// PEM file of the client key the peer presents.
        #[arg(long, requires = "client_cert")]
        client_key: Option<PathBuf>,
        /// Where to write the package (e.g. elicense.tar.gz).
        #[arg(long)]
        out: PathBuf,
    },
}

fn read(path: &Option<PathBuf>) -> Result<String, String> {
    match path {
        None => Ok(String::new()),
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display())),
    }
}

fn package_cmd(cmd: Command) -> Result<(), String> {
    let Command::Package {
        label,
        address,
        dial_timeout,
        tls_root_cert,
        client_cert,
        client_key,
        out,
    } = cmd;
    let connection = Connection {
        address,
        dial_timeout,
        tls_required: tls_root_cert.is_some(),
        client_auth_required: client_cert.is_some(),
        root_cert: read(&tls_root_cert)?,
        client_key: read(&client_key)?,
        client_cert: read(&client_cert)?,
    };
    let id = package::write(&label, &connection, &out).map_err(|e| e.to_string())?;
    println!("{id}");
    Ok(())
}

async fn serve(args: ServerArgs, settings: Settings) -> Result<(), String> {
    let config = ServerConfig::from_env(args).map_err(|e| e.to_string())?;
    tracing::info!(address = %config.address, chaincode_id = %config.chaincode_id, tls = config.tls.is_some(), "starting the elicense chaincode server");
    ChaincodeServer::new(config, router(settings))
        .serve()
        .await
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(cmd) => package_cmd(cmd),
        None => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            let settings = Settings {
                regulator_msp: cli.regulator_msp,
            };
            match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(serve(cli.server, settings)),
                Err(e) => Err(format!("cannot start the runtime: {e}")),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("elicense-chaincode: {e}");
            ExitCode::FAILURE
        }
    }
}
