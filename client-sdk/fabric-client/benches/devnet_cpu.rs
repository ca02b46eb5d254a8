//! Client CPU per submitted transaction and per evaluate on the devnet, side by side with the
//! official Node `@hyperledger/fabric-gateway` client running the same workload against the same
//! peer over TLS.
//!
//! The Rust client runs on a single-threaded Tokio runtime on its own thread, so that thread's
//! CPU time (`/proc/thread-self/schedstat`) is all the client's work while the devnet (in this
//! process) runs on other threads. The Node client is a child process measured with
//! `process.cpuUsage()` (every Node thread: V8, GC, libuv). Both submit `SUBMITS` transactions
//! (default 1000) with `IN_FLIGHT` (default 32) in flight, each through commit status, then run
//! `EVALUATES` (default 1000) sequential evaluates. The floor: at most a quarter of Node's CPU.
//!
//! `cargo bench -p fabric-client --bench devnet_cpu` (needs `node` and `tests/interop`'s
//! `npm ci`; without them only the Rust figures are printed).

#[path = "../tests/support/notes.rs"]
mod notes;

use std::path::Path;
use std::time::Instant;

use fabric_client::gateway::{Connection, ConnectionOptions, Endpoint, Gateway, GatewayOptions};
use fabric_client::msp;
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig, PeerSummary};
use fabric_devnet::topology::Topology;

const CH: &str = "police-service";
const CC: &str = "notes";

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    submit_cpu_us: f64,
    submit_wall_ms: f64,
    evaluate_cpu_us: f64,
}

/// The Rust workload on its own thread and current-thread runtime.
fn rust_client(
    peer: &PeerSummary,
    msp_dir: &Path,
    submits: usize,
    in_flight: usize,
    evaluates: usize,
) -> Figures {
    let peer = peer.clone();
    let msp_dir = msp_dir.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let signing = msp::load_signing_identity(&peer.msp_id, &msp_dir).unwrap();
            let endpoint = Endpoint::new(peer.url.clone())
                .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
                .server_name(peer.host.clone());
            let connection =
                Connection::new(vec![endpoint], &ConnectionOptions::default()).unwrap();
            let gateway =
                Gateway::for_signing_identity(connection, &signing, GatewayOptions::default());
            let contract = gateway.network(CH).contract(CC);
            for i in 0..20 {
                let key = format!("rust-warm-{i}");
                contract
                    .submit_transaction("put", &[key.as_str(), "v"])
                    .await
                    .unwrap();
                contract
                    .evaluate_transaction("get", &[key.as_str()])
                    .await
                    .unwrap();
            }
            let next = std::rc::Rc::new(std::cell::Cell::new(0usize));
            let cpu = thread_cpu_ns();
            let wall = Instant::now();
            let local = tokio::task::LocalSet::new();
            for _ in 0..in_flight {
                let contract = contract.clone();
                let next = next.clone();
                local.spawn_local(async move {
                    loop {
                        let i = next.get();
                        if i >= submits {
                            break;
                        }
                        next.set(i + 1);
                        let (key, value) = (format!("rust-{i}"), format!("value-{i}"));
                        let (_, commit) = contract
                            .submit_async("put", &[key.as_str(), value.as_str()])
                            .await
                            .unwrap();
                        assert!(commit.status().await.unwrap().successful);
                    }
                });
            }
            local.await;
            let submit_cpu_us = (thread_cpu_ns() - cpu) as f64 / 1000.0 / submits as f64;
            let submit_wall_ms = wall.elapsed().as_secs_f64() * 1000.0;
            let cpu = thread_cpu_ns();
            for i in 0..evaluates {
                let key = format!("rust-{}", i % submits);
                contract
                    .evaluate_transaction("get", &[key.as_str()])
                    .await
                    .unwrap();
            }
            let evaluate_cpu_us = (thread_cpu_ns() - cpu) as f64 / 1000.0 / evaluates as f64;
            Figures {
                submit_cpu_us,
                submit_wall_ms,
                evaluate_cpu_us,
            }
        })
    })
    .join()
    .unwrap()
}

fn node_client(
    peer: &PeerSummary,
    msp_dir: &Path,
    submits: usize,
    in_flight: usize,
    evaluates: usize,
) -> Option<Figures> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let modules = root.join("tests/interop/node_modules");
    if !modules.join("@hyperledger/fabric-gateway").is_dir() {
        println!("(Node client skipped: run `npm ci` in tests/interop)");
        return None;
    }
    let input = serde_json::json!({
        "peer": peer.address, "host": peer.host, "tlsCaCert": peer.tls_ca_cert,
        "mspId": peer.msp_id, "mspDir": msp_dir, "channel": CH, "chaincode": CC,
        "submits": submits, "inFlight": in_flight, "evaluates": evaluates,
    });
    let out = std::process::Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/node_gateway_cpu.js"))
        .arg(input.to_string())
        .env("NODE_PATH", &modules)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            println!(
                "(Node client failed: {})",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        Err(e) => {
            println!("(Node client skipped: {e})");
            return None;
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(Figures {
        submit_cpu_us: v["submitCpuUsPerTx"].as_f64()?,
        submit_wall_ms: v["submitWallMs"].as_f64()?,
        evaluate_cpu_us: v["evaluateCpuUsPerCall"].as_f64()?,
    })
}

fn main() {
    let submits = env("SUBMITS", 1000);
    let in_flight = env("IN_FLIGHT", 32);
    let evaluates = env("EVALUATES", 1000);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (devnet, chaincode) = rt.block_on(async {
        let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
            .await
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let deployed = devnet
            .deploy_ccaas(&DeployRequest {
                name: CC.into(),
                address: address.clone(),
                channels: vec![CH.into()],
                policy: Some(
                    "OR('PublicSecurityMSP.peer','ServiceCentreMSP.peer','RegulatorMSP.peer')"
                        .into(),
                ),
                ..Default::default()
            })
            .unwrap();
        let chaincode = fabric_chaincode::ChaincodeServer::new(
            fabric_chaincode::ServerConfig {
                address,
                chaincode_id: deployed.package_id,
                tls: None,
            },
            notes::Notes,
        )
        .start()
        .await
        .unwrap();
        (devnet, chaincode)
    });
    let summary = devnet.summary();
    let peer = summary
        .peers
        .iter()
        .find(|p| p.org == "ServiceCentre")
        .unwrap()
        .clone();
    let msp_dir = summary.msp["ServiceCentre"]["clerk1"].clone();

    println!(
        "client CPU on the devnet: {submits} submits ({in_flight} in flight, through commit status), {evaluates} evaluates"
    );
    let rust = rust_client(&peer, &msp_dir, submits, in_flight, evaluates);
    println!(
        "  Rust fabric-client:               {:>8.1} µs CPU/submit  {:>7.1} µs CPU/evaluate  ({:.0} tx/s)",
        rust.submit_cpu_us,
        rust.evaluate_cpu_us,
        submits as f64 / rust.submit_wall_ms * 1000.0
    );
    if let Some(node) = node_client(&peer, &msp_dir, submits, in_flight, evaluates) {
        println!(
            "  Node @hyperledger/fabric-gateway: {:>8.1} µs CPU/submit  {:>7.1} µs CPU/evaluate  ({:.0} tx/s)",
            node.submit_cpu_us,
            node.evaluate_cpu_us,
            submits as f64 / node.submit_wall_ms * 1000.0
        );
        println!(
            "  Rust / Node: submit {:.2}, evaluate {:.2} (floor: 0.25)",
            rust.submit_cpu_us / node.submit_cpu_us,
            rust.evaluate_cpu_us / node.evaluate_cpu_us
        );
    }
    rt.block_on(async {
        chaincode.shutdown().await.unwrap();
        devnet.down().await;
    });
}
