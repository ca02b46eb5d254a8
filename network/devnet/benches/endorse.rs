//! Endorsements per second on one devnet peer: N concurrent clients send signed proposals
//! (a write of one key, as an issuance does) to `PeerNode::process_proposal`, which checks them,
//! simulates them on a CCaaS chaincode from our shim and signs the response. Prints throughput,
//! latency percentiles and process CPU time per endorsement.
//!
//! `cargo bench -p fabric-devnet --bench endorse -- [clients] [proposals]`

#[path = "../tests/peer_fixture.rs"]
mod peer_fixture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use peer_fixture::{proposal, Net, CC};

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
    let clients: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(32);
    let total: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(clients, total));
}

async fn run(clients: usize, total: usize) {
    let net = Arc::new(Net::new("OR('OrgAMSP.peer','OrgBMSP.peer')").await);
    // Proposals are signed up front: the figure is the peer's cost, not the client's.
    let proposals: Vec<_> = (0..total)
        .map(|i| {
            proposal(
                &net.client,
                CC,
                &["put", &format!("licence{i:08}"), "issued"],
                &[],
            )
            .1
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(proposals));
    // Warm the chaincode connection.
    let (_, sp) = proposal(&net.client, CC, &["get", "warm"], &[]);
    net.peer_a.process_proposal(sp).await.unwrap();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let net = net.clone();
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let Some(sp) = queue.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                let r = net.peer_a.process_proposal(sp).await.unwrap();
                assert_eq!(r.response.unwrap().status, 200);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "endorse: {total} proposals, {clients} clients: {:.0} endorsements/s, p50 {:?} p95 {:?} p99 {:?}, CPU {:.0} µs/endorsement",
        total as f64 / wall,
        p(0.50),
        p(0.95),
        p(0.99),
        cpu / total as f64 * 1e6
    );
}
