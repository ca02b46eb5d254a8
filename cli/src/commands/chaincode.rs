//! `elicense chaincode serve|package`: the licence chaincode as a chaincode-as-a-service server
//! (configured as Fabric's CCaaS samples are: flags or `CHAINCODE_SERVER_ADDRESS`,
//! `CHAINCODE_ID`, `CHAINCODE_TLS_*`), and its CCaaS install package, as
//! `peer lifecycle chaincode install` takes it, with Fabric's package ID.

use std::path::PathBuf;

use elicense_chaincode::package::{self, Connection, PackageError};
use serde::Serialize;

use crate::error::CliError;
use crate::exit::Class;
use crate::Ctx;

/// `chaincode` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the licence chaincode for peers to dial (CCaaS), until interrupted.
    Serve(ServeArgs),
    /// Write the CCaaS install package (connection.json + metadata.json) and print its package ID.
    Package(PackageArgs),
}

/// Arguments of `chaincode serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Listen address, package ID and TLS files.
    #[command(flatten)]
    pub server: fabric_chaincode::server::ServerArgs,
    /// MSP ID of the regulator (catalogue admins, auditors); the same for every organisation.
    #[arg(long, env = "ELICENSE_REGULATOR_MSP", default_value = "RegulatorMSP")]
    pub regulator_msp: String,
}

/// Arguments of `chaincode package`.
#[derive(Debug, clap::Args)]
pub struct PackageArgs {
    /// Package label, e.g. elicense_1.0.
    #[arg(long, default_value = "elicense_1.0")]
    pub label: String,
    /// HOST:PORT where peers reach the chaincode server.
    #[arg(long)]
    pub address: String,
    /// How long the peer waits when dialling (a Go duration).
    #[arg(long, default_value = "10s")]
    pub dial_timeout: String,
    /// PEM file of the CA that signed the chaincode server's TLS certificate; enables TLS.
    #[arg(long, value_name = "FILE")]
    pub tls_root_cert: Option<PathBuf>,
    /// PEM file of the client certificate the peer presents; enables mutual TLS.
    #[arg(long, value_name = "FILE", requires_all = ["client_key", "tls_root_cert"])]
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client key the peer presents.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Where to write the package.
    #[arg(long, value_name = "FILE", default_value = "elicense.tar.gz")]
    pub out: PathBuf,
}

#[derive(Serialize)]
struct Packaged {
    package_id: String,
    label: String,
    file: String,
    address: String,
    tls: bool,
    mutual_tls: bool,
}

fn read_pem(path: &Option<PathBuf>) -> Result<String, CliError> {
    match path {
        None => Ok(String::new()),
        Some(p) => std::fs::read_to_string(p).map_err(|e| {
            let class = if e.kind() == std::io::ErrorKind::NotFound {
                Class::NotFound
            } else {
                Class::Usage
            };
            CliError::new(class, format!("reading {}: {e}", p.display()))
        }),
    }
}

/// Runs a `chaincode` subcommand.
pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(a) => serve(ctx, a).await,
        Command::Package(a) => {
            let connection = Connection {
                address: a.address.clone(),
                dial_timeout: a.dial_timeout,
                tls_required: a.tls_root_cert.is_some(),
                client_auth_required: a.client_cert.is_some(),
                root_cert: read_pem(&a.tls_root_cert)?,
                client_key: read_pem(&a.client_key)?,
                client_cert: read_pem(&a.client_cert)?,
            };
            let id = package::write(&a.label, &connection, &a.out).map_err(|e| {
                let class = match e {
                    PackageError::Io(_) => Class::Internal,
                    _ => Class::Usage,
                };
                CliError::new(class, format!("chaincode package: {e}")).hint(
                    "a label is letters, digits, '.', '+', '-' and '_'; the address is HOST:PORT",
                )
            })?;
            crate::output::print(
                ctx.format(),
                &Packaged {
                    package_id: id,
                    label: a.label,
                    file: a.out.display().to_string(),
                    address: a.address,
                    tls: connection.tls_required,
                    mutual_tls: connection.client_auth_required,
                },
            )
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn serve(ctx: &Ctx, a: ServeArgs) -> Result<(), CliError> {
    use fabric_chaincode::server::{ChaincodeServer, ServerConfig};
    let config = ServerConfig::from_env(a.server).map_err(|e| {
        CliError::usage(format!("chaincode server: {e}")).hint(
            "give --address HOST:PORT and --chaincode-id LABEL:HASH (or CHAINCODE_SERVER_ADDRESS and CHAINCODE_ID)",
        )
    })?;
    if !ctx.quiet {
        eprintln!(
            "serving the licence chaincode {} on {}{} (Ctrl-C stops)",
            config.chaincode_id,
            config.address,
            if config.tls.is_some() {
                " with TLS"
            } else {
                ""
            }
        );
    }
    let settings = elicense_chaincode::Settings {
        regulator_msp: a.regulator_msp,
    };
    ChaincodeServer::new(config, elicense_chaincode::router(settings))
        .serve_with_shutdown(stop_signal())
        .await
        .map_err(|e| {
            CliError::usage(format!("chaincode server: {e}"))
                .hint("check the listen address is free and the TLS files are readable PEM")
        })
}
