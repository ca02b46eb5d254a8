//! Committed transactions per second through a devnet peer's Gateway: the default topology, a
//! key-value chaincode from our shim on one channel (any member peer endorses), N concurrent
//! submitters each submitting and waiting for the commit status over TLS with the Rust Gateway
//! client. Prints throughput, latency percentiles and process CPU time per transaction.
//!
//! `cargo bench -p fabric-devnet --bench gateway_submit -- [submitters] [transactions] [evaluate]`
//! (`evaluate` measures evaluations instead: the endorsement path alone, without ordering).

#[path = "../tests/peer_fixture.rs"]
mod peer_fixture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_client::gateway::{Connection, ConnectionOptions, Endpoint, Gateway, GatewayOptions};
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig};
use fabric_devnet::topology::Topology;

const CH: &str = "police-service";

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (clock ticks of 1/100 s on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let submitters: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
    let total: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let evaluate = args.get(2).is_some_and(|a| a == "evaluate");
    rt.block_on(run(submitters, total, evaluate));
}

async fn run(submitters: usize, total: usize, evaluate: bool) {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
        .await
        .unwrap();
    println!("devnet up: {:?}", t0.elapsed());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "kv".into(),
            address: addr.clone(),
            channels: vec![CH.into()],
            policy: Some(
                "OR('PublicSecurityMSP.peer','ServiceCentreMSP.peer','RegulatorMSP.peer')".into(),
            ),
            ..Default::default()
        })
        .unwrap();
    let cc = peer_fixture::start_chaincode(&deployed.package_id, &addr).await;
    let summary = devnet.summary();
    let peer = summary
        .peers
        .iter()
        .find(|p| p.org == "ServiceCentre")
        .unwrap();
    let signing = fabric_client::msp::load_signing_identity(
        &peer.msp_id,
        &summary.msp["ServiceCentre"]["clerk1"],
    )
    .unwrap();
    let endpoint = Endpoint::new(format!("https://{}", peer.address))
        .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
        .server_name(peer.host.clone());
    let conn = Connection::new(vec![endpoint], &ConnectionOptions::default()).unwrap();
    let gw = Gateway::for_signing_identity(conn, &signing, GatewayOptions::default());
    // Warm up the chaincode connection.
    gw.network(CH)
        .contract("kv")
        .submit_transaction("put", &["warm", "up"])
        .await
        .unwrap();

    let per = total / submitters;
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let phases = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..submitters {
        let contract = gw.network(CH).contract("kv");
        let latencies = latencies.clone();
        let phases = phases.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let t = Instant::now();
                let key = format!("k{s}-{i}");
                if evaluate {
                    contract
                        .evaluate_transaction("get", &["warm"])
                        .await
                        .unwrap();
                } else {
                    let proposal = contract
                        .new_proposal("put")
                        .string_args(&[key.as_str(), "v"])
                        .build()
                        .unwrap();
                    let tx = proposal.endorse().await.unwrap();
                    let endorsed = t.elapsed();
                    let commit = tx.submit().await.unwrap();
                    let submitted = t.elapsed();
                    let st = commit.status().await.unwrap();
                    assert!(st.successful);
                    phases.lock().unwrap().push((
                        endorsed,
                        submitted - endorsed,
                        t.elapsed() - submitted,
                    ));
                }
                latencies.lock().unwrap().push(t.elapsed());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    let n = l.len();
    println!(
        "{n} {}, {submitters} submitters: {:.0} per second; latency p50 {:?} p95 {:?} p99 {:?}; CPU {:.2} ms per transaction (whole process: devnet, chaincode and client)",
        if evaluate { "evaluations" } else { "committed transactions" },
        n as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.95),
        pct(0.99),
        cpu * 1000.0 / n as f64,
    );
    let mut ph = phases.lock().unwrap().clone();
    if !ph.is_empty() {
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let mut e: Vec<Duration> = ph.iter().map(|p| p.0).collect();
        let mut s: Vec<Duration> = ph.iter().map(|p| p.1).collect();
        let mut c: Vec<Duration> = ph.drain(..).map(|p| p.2).collect();
        println!(
            "median per phase: endorse {:?}, submit {:?}, commit status {:?}",
            med(&mut e),
            med(&mut s),
            med(&mut c)
        );
    }
    if !evaluate {
        let blocks = devnet
            .summary()
            .channels
            .iter()
            .find(|c| c.name == CH)
            .map_or(0, |c| c.height);
        println!(
            "{blocks} blocks on {CH}: {:.0} transactions per block",
            (n + 1) as f64 / blocks.saturating_sub(2).max(1) as f64
        );
    }
    drop(gw);
    devnet.down().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), cc.shutdown()).await;
}
