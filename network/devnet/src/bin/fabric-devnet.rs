//! `fabric-devnet`: runs the devnet as its own process until SIGINT or SIGTERM.
//!
//! ```text
//! fabric-devnet --data-dir DIR [--topology FILE] [--deploy NAME=HOST:PORT]... [--exit-with-parent]
//! ```
//!
//! Starts (or restarts: the same data dir continues the ledger) the devnet, defines each
//! `--deploy`ed CCaaS chaincode on every channel with the default policy, and prints one JSON
//! line: `{"summary": <DevnetSummary>, "deployed": {NAME: <Deployed>}}`. Tests run it as a
//! separate process so they can kill it at any moment and restart it on the same data dir;
//! `--exit-with-parent` stops it (cleanly) once the process that started it is gone, so a test
//! that dies without cleaning up leaves no devnet behind.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig};
use fabric_devnet::topology::Topology;

struct Args {
    data_dir: PathBuf,
    topology: Option<PathBuf>,
    deploy: Vec<(String, String)>,
    exit_with_parent: bool,
}

const USAGE: &str = "usage: fabric-devnet --data-dir DIR [--topology FILE] \
                     [--deploy NAME=HOST:PORT]... [--exit-with-parent]";

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut data_dir = None;
    let mut topology = None;
    let mut deploy = Vec::new();
    let mut exit_with_parent = false;
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--topology" => topology = Some(PathBuf::from(value("--topology")?)),
            "--deploy" => {
                let v = value("--deploy")?;
                let (name, addr) = v
                    .split_once('=')
                    .ok_or(format!("--deploy {v}: expected NAME=HOST:PORT"))?;
                deploy.push((name.to_string(), addr.to_string()));
            }
            "--exit-with-parent" => exit_with_parent = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Args {
        data_dir: data_dir.ok_or(format!("--data-dir is required\n{USAGE}"))?,
        topology,
        deploy,
        exit_with_parent,
    })
}

async fn run(args: Args) -> Result<(), String> {
    let topology = match &args.topology {
        Some(path) => Topology::load(path).map_err(|e| e.to_string())?,
        None => Topology::default_topology(),
    };
    let devnet = Devnet::up(DevnetConfig::new(topology, &args.data_dir))
        .await
        .map_err(|e| e.to_string())?;
    let mut deployed = BTreeMap::new();
    for (name, address) in &args.deploy {
        let d = devnet
            .deploy_ccaas(&DeployRequest {
                name: name.clone(),
                address: address.clone(),
                ..Default::default()
            })
            .map_err(|e| e.to_string())?;
        deployed.insert(name.clone(), d);
    }
    let line = serde_json::json!({ "summary": devnet.summary(), "deployed": deployed });
    println!("{line}");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    let parent = std::os::unix::process::parent_id();
    let orphaned = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if args.exit_with_parent && std::os::unix::process::parent_id() != parent {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = orphaned => {}
    }
    devnet.down().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fabric-devnet: {e}");
            ExitCode::FAILURE
        }
    }
}
