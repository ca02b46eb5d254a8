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
//! through PublicSecurity's gateway by 512 concurrent submitters, so the blocks have the size and
//! contents the network cuts under load. Then, `REPLAY_ROUNDS` times (default 5), a new peer of
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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use elicense_chaincode::host::{HostOptions, HostedChaincode};
use elicense_model::{Catalogue, IssueRequest, LicenceId};
use elicense_sdk::fabric::profile::ConnectionProfile;
use elicense_sdk::{HolderKeyPair, LicenceClient, NewLicence};
use fabric_devnet::devnet::{Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::peer::{PeerNode, PeerNodeConfig, TransientStore};
use fabric_devnet::topology::Topology;
use fabric_protos::common::{Block, BlockMetadataIndex};

mod support;
use support::{cpu_time, disk_write_bytes, env_or};

const CH: &str = "police-service";
const CATALOGUE: &str = include_str!("../../../fixtures/catalogue.json");

fn client(s: &DevnetSummary, org: &str, user: &str) -> LicenceClient {
    let msp_id = &s.peers.iter().find(|p| p.org == org).unwrap().msp_id;
    let signing =
        elicense_sdk::fabric::msp::load_signing_identity(msp_id, &s.msp[org][user]).unwrap();
    let profile = ConnectionProfile::from_file(&s.profiles[org]).unwrap();
    LicenceClient::connect(&profile, &signing, CH).unwrap()
}

fn licence(serial: &str, holder_pem: &str, now: i64) -> NewLicence {
    let values: BTreeMap<String, String> = [
        ("name", format!("王五{serial}")),
        ("sex", "男".to_owned()),
        ("ethnicity", "汉".to_owned()),
        ("birth_date", "1975-06-30".to_owned()),
        ("address", format!("广东省深圳市福田区{serial}号")),
        (
            "id_number",
            format!("4403041975063{}", &serial[serial.len() - 5..]),
        ),
        ("issuing_authority", "深圳市公安局福田分局".to_owned()),
        ("valid_from", "2015-01-01".to_owned()),
        ("valid_until", "2035-01-01".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    NewLicence {
        request: IssueRequest {
            licence_id: LicenceId::build("IDC", "PSB", serial).unwrap(),
            licence_type: "ID_CARD".into(),
            holder_key: holder_pem.to_owned(),
            not_before: now - 86_400,
            not_after: now + 365 * 86_400,
        },
        values,
    }
}

fn filter(b: &Block) -> Vec<u8> {
    b.metadata.as_ref().unwrap().metadata[BlockMetadataIndex::TransactionsFilter as usize].clone()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count: usize = env_or("REPLAY_N", 10_000);
    let rounds: usize = env_or("REPLAY_ROUNDS", 5);
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(
        Topology::default_topology(),
        dir.path().join("net"),
    ))
    .await
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let deployed = devnet
        .deploy_topology_chaincode(&format!("127.0.0.1:{port}"), None)
        .unwrap();
    let cc = HostedChaincode::start(HostOptions::new(&deployed.package_id).port(port))
        .await
        .unwrap();
    let s = devnet.summary();
    client(&s, "Regulator", "Admin")
        .init_catalogue(&Catalogue::from_json(CATALOGUE).unwrap())
        .await
        .unwrap();
    let peer_of = |org: &str| {
        devnet
            .peers()
            .iter()
            .find(|p| p.org == org)
            .unwrap()
            .node
            .clone()
    };
    // Every peer has the catalogue before the issuer's gateway endorses against it.
    let orderer_ledger = devnet.orderer().chain(CH).unwrap().ledger().clone();
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

    let issuer = client(&s, "PublicSecurity", "issuer1");
    let holder = HolderKeyPair::generate().public_pem();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..512 {
        let (next, issuer, holder) = (next.clone(), issuer.clone(), holder.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                issuer
                    .issue(licence(&format!("R{i:08}"), &holder, now))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    while !caught_up(orderer_ledger.height()) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let live = peer_of("Regulator");
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
        .find(|d| d.definition.package_id == deployed.package_id)
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
    if let Err(e) = cc.stop().await {
        eprintln!("stopping the chaincode server: {e}");
    }
    devnet.down().await;
}
