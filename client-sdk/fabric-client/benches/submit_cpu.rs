//! Client CPU per submitted transaction: the full submit path (build + sign proposal, endorse,
//! parse and sign the prepared envelope, submit, sign the commit status request, wait for status)
//! against the in-process Gateway double, which runs on its own thread.
//!
//! The client runs on a single-threaded Tokio runtime, so the calling thread's CPU time
//! (`/proc/thread-self/schedstat`) is all the client's work: protobuf, signing, gRPC and HTTP/2.
//! The reference is the official Node client's 2.7–3.4 ms per transaction; the budget is a quarter.
//!
//! `cargo bench -p fabric-client --bench submit_cpu` (`TXS=n` to change the count).

#[path = "../tests/support/double.rs"]
mod double;

use std::sync::Arc;
use std::time::Instant;

use fabric_client::gateway::{Connection, ConnectionOptions, Endpoint, Gateway, GatewayOptions};

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let txs: usize = std::env::var("TXS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    // The server on its own thread and runtime.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (_guard, addr) = double::start(double::Double::default()).await;
            addr_tx.send(addr).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let addr = addr_rx.recv().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (identity, key) = double::client_identity();
        let conn = Connection::new(
            vec![Endpoint::new(format!("http://{addr}"))],
            &ConnectionOptions::default(),
        )
        .unwrap();
        let gateway = Gateway::new(
            conn,
            identity,
            Some(Arc::new(key)),
            GatewayOptions::default(),
        );
        let contract = gateway.network("bench").contract("elicense");
        let args = ["L-0000001", "ID_CARD", "{\"field\":\"commitment\"}"];
        for _ in 0..200 {
            contract.submit_transaction("issue", &args).await.unwrap();
        }

        // Sequential: one transaction at a time.
        let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
        for _ in 0..txs {
            contract.submit_transaction("issue", &args).await.unwrap();
        }
        let (cpu, wall) = (thread_cpu_ns() - cpu0, wall0.elapsed());
        println!(
            "sequential: {txs} submitted tx, client CPU {:.1} µs/tx, wall {:.1} µs/tx",
            cpu as f64 / 1e3 / txs as f64,
            wall.as_secs_f64() * 1e6 / txs as f64
        );

        // Concurrent: 64 in flight over the one shared HTTP/2 channel.
        let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
        let mut set = tokio::task::JoinSet::new();
        let per = txs / 64;
        for _ in 0..64 {
            let c = contract.clone();
            set.spawn(async move {
                for _ in 0..per {
                    c.submit_transaction("issue", &args).await.unwrap();
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        let n = per * 64;
        let (cpu, wall) = (thread_cpu_ns() - cpu0, wall0.elapsed());
        println!(
            "64 in flight: {n} submitted tx, client CPU {:.1} µs/tx, {:.0} tx/s",
            cpu as f64 / 1e3 / n as f64,
            n as f64 / wall.as_secs_f64()
        );
        println!(
            "reference: official Node client 2700-3400 µs/tx; budget (a quarter) <= 675 µs/tx"
        );
    });
}
