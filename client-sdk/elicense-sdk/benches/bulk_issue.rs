//! Bulk issuance throughput from one client process against the embedded devnet (the devnet,
//! the licence chaincode and the client all share this machine's cores, so the figures are a
//! floor for a client talking to a remote network).
//!
//! ```text
//! cargo bench -p elicense-sdk --bench bulk_issue            # BULK_N=400 licences per run
//! ```
//! Prints licences committed per second and mean latency for several pipeline depths.

use std::time::Instant;

use elicense_sdk::{BulkOptions, NewLicence};

// The devnet's licence benches set the network up the same way.
#[path = "../../../network/devnet/benches/support/licences.rs"]
mod licences;
use licences::LicenceNet;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("BULK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let dir = tempfile::tempdir().unwrap();
    let net = LicenceNet::up(dir.path()).await;
    let issuer = &net.issuer;

    println!("bulk issuance, {n} licences per run, one client process, devnet in-process");
    println!(
        "{:>12} {:>14} {:>16} {:>10}",
        "in flight", "licences/s", "mean latency ms", "retries"
    );
    for (run, depth) in [1usize, 8, 32, 128].into_iter().enumerate() {
        let count = if depth == 1 { n.min(100) } else { n };
        let batch: Vec<NewLicence> = (0..count)
            .map(|i| net.licence(&format!("9{run}{i:07}")))
            .collect();
        let started = Instant::now();
        let items = issuer
            .issue_bulk(
                batch,
                &BulkOptions {
                    concurrency: depth,
                    ..Default::default()
                },
            )
            .await;
        let elapsed = started.elapsed();
        let failed = items.iter().filter(|i| i.outcome.is_err()).count();
        assert_eq!(failed, 0, "{:?}", items.iter().find(|i| i.outcome.is_err()));
        let retries: u32 = items.iter().map(|i| i.attempts - 1).sum();
        let rate = count as f64 / elapsed.as_secs_f64();
        let latency_ms = elapsed.as_secs_f64() * 1000.0 * depth.min(count) as f64 / count as f64;
        println!("{depth:>12} {rate:>14.1} {latency_ms:>16.1} {retries:>10}");
    }
    net.down().await;
}
