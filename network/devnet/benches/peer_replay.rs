//! The peer side of issuance on its own: the blocks of a real issuance run, validated and
//! committed again by a fresh peer, one block after another (no client, gateway or endorsement).
//!
//! ```text
//! cargo bench -p fabric-devnet --bench peer_replay
//! REPLAY_N=8000 REPLAY_ROUNDS=5 cargo bench -p fabric-devnet --bench peer_replay
//! ```
//!
//! Setup as in the `issuance` bench: the default topology, channel `police-service`, the
//! topology's chaincode hosted in this process; `REPLAY_N` licences (default 10,000) are issued
//! through PublicSecurity's gateway with the SDK's bulk issuance, 512 in flight, so the blocks
//! have the size and contents the network cuts under load. Then, `REPLAY_ROUNDS` times (default 5), a new peer of
//! the Regulator organisation (a channel member that stores no private values of licences) joins
//! the channel from the genesis block, gets the same chaincode definition, and is handed every
//! block of the orderer's store through [`PeerChannel::deliver_block`], exactly as the orderer's
//! delivery thread hands them to a channel peer.
//!
//! Printed per round: process CPU per transaction (validation threads included), wall time per
//! transaction, and bytes written to storage per transaction; then the lowest CPU figure, the
//! one least disturbed by other work on the machine. The signature checks are answered
//! by the process's signature cache (the live run verified every signature once), as they are for
//! two of the three channel peers in the live network: the figure is the peer's cost besides the
//! one ECDSA verification per signature. Every replayed block must get the same validation codes
//! as the live peers gave it, or the bench stops.
//!
//! [`PeerChannel::deliver_block`]: fabric_devnet::peer::PeerChannel::deliver_block

use std::time::Instant;

use elicense_sdk::{BulkOptions, NewLicence, CHAINCODE_NAME};
use fabric_devnet::peer::{PeerNode, PeerNodeConfig, TransientStore};
use fabric_protos::common::{Block, BlockMetadataIndex};

mod support;
use support::{cpu_time, disk_write_bytes, env_or};
#[path = "support/licences.rs"]
mod licences;
use licences::{LicenceNet, CH};

fn filter(b: &Block) -> Vec<u8> {
    b.metadata.as_ref().unwrap().metadata[BlockMetadataIndex::TransactionsFilter as usize].clone()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count: usize = env_or("REPLAY_N", 10_000);
    let rounds: usize = env_or("REPLAY_ROUNDS", 5);
    let dir = tempfile::tempdir().unwrap();
    let net = LicenceNet::up(&dir.path().join("net")).await;
    let devnet = &net.devnet;
    let orderer_ledger = devnet.orderer().chain(CH).unwrap().ledger().clone();
    let licences: Vec<NewLicence> = (0..count)
        .map(|i| net.licence(&format!("R{i:08}")))
        .collect();
    let options = BulkOptions {
        concurrency: 512,
        ..BulkOptions::default()
    };
    for item in net.issuer.issue_bulk(licences, &options).await {
        item.outcome.unwrap();
    }
    // Every peer has committed every block before the blocks are replayed.
    let caught_up = |ledger_height: u64| {
        devnet
            .peers()
            .iter()
            .filter_map(|p| p.node.channel(CH))
            .all(|c| c.ledger().height() == ledger_height)
    };
    while !caught_up(orderer_ledger.height()) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let live = devnet
        .peers()
        .iter()
        .find(|p| p.org == "Regulator")
        .unwrap()
        .node
        .clone();
    let live_ch = live.channel(CH).unwrap();
    let height = live_ch.ledger().height();
    let blocks: Vec<Block> = (0..height)
        .map(|n| orderer_ledger.block(n).unwrap().unwrap())
        .collect();
    let codes: Vec<Vec<u8>> = (0..height)
        .map(|n| filter(&live_ch.ledger().block(n).unwrap().unwrap()))
        .collect();
    let txs: usize = blocks[1..]
        .iter()
        .map(|b| b.data.as_ref().map_or(0, |d| d.data.len()))
        .sum();
    let definition = live_ch
        .chaincodes()
        .into_iter()
        .find(|d| d.definition.name == CHAINCODE_NAME)
        .unwrap()
        .definition
        .clone();
    println!(
        "peer replay: channel {CH}, {} blocks, {txs} transactions ({count} licences issued), as a new Regulator peer",
        height - 1
    );
    println!("   round    CPU ms/tx   wall ms/tx   disk KB/tx");
    let mut best = f64::INFINITY;
    for round in 1..=rounds {
        let node = PeerNode::new(PeerNodeConfig {
            msp_id: live.msp_id().to_string(),
            name: format!("replay{round}.{}", live.name()),
            address: live.address().to_string(),
            signer: live.signer().clone(),
            data_dir: dir.path().join(format!("replay{round}")),
            transient: TransientStore::new(),
        });
        let ch = node.join_channel(&blocks[0]).unwrap();
        ch.define_chaincode(definition.clone()).unwrap();
        let cpu0 = cpu_time("/proc/self/stat");
        let disk0 = disk_write_bytes();
        let started = Instant::now();
        for b in &blocks[1..] {
            let n = b.header.as_ref().unwrap().number as usize;
            let ev = tokio::task::block_in_place(|| ch.deliver_block(b.clone())).unwrap();
            assert_eq!(
                filter(&ev.block),
                codes[n],
                "block {n} validated differently"
            );
        }
        let wall = started.elapsed();
        let cpu = cpu_time("/proc/self/stat").saturating_sub(cpu0);
        let disk = disk_write_bytes().saturating_sub(disk0);
        let cpu_per_tx = cpu.as_secs_f64() * 1000.0 / txs as f64;
        best = best.min(cpu_per_tx);
        println!(
            "{round:>8} {cpu_per_tx:>12.3} {:>12.3} {:>12.1}",
            wall.as_secs_f64() * 1000.0 / txs as f64,
            disk as f64 / 1024.0 / txs as f64,
        );
        node.shutdown();
    }
    println!("lowest CPU ms/tx: {best:.3}");
    net.down().await;
}
