//! Bulk issuance throughput from one client process against the embedded devnet (the devnet,
//! the licence chaincode and the client all share this machine's cores, so the figures are a
//! floor for a client talking to a remote network).
//!
//! ```text
//! cargo bench -p elicense-sdk --bench bulk_issue            # BULK_N=400 licences per run
//! ```
//! Prints licences committed per second and mean latency for several pipeline depths.

use std::collections::BTreeMap;
use std::time::Instant;

use elicense_chaincode::host::{HostOptions, HostedChaincode};
use elicense_model::{Catalogue, IssueRequest, LicenceId};
use elicense_sdk::fabric::profile::ConnectionProfile;
use elicense_sdk::{BulkOptions, HolderKeyPair, LicenceClient, NewLicence};
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;

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

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("BULK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "elicense".into(),
            address: format!("127.0.0.1:{port}"),
            channels: vec![CH.into()],
            policy: Some(
                "OR('PublicSecurityMSP.peer','ServiceCentreMSP.peer','RegulatorMSP.peer')".into(),
            ),
            ..Default::default()
        })
        .unwrap();
    let cc = HostedChaincode::start(HostOptions::new(&deployed.package_id).port(port))
        .await
        .unwrap();
    let s = devnet.summary();
    let admin = client(&s, "Regulator", "Admin");
    if admin.catalogue().await.unwrap().is_empty() {
        admin
            .init_catalogue(&Catalogue::from_json(CATALOGUE).unwrap())
            .await
            .unwrap();
    }
    let issuer = client(&s, "PublicSecurity", "issuer1");
    // One holder key for every licence: key generation is not what is measured.
    let holder = HolderKeyPair::generate().public_pem();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    println!("bulk issuance, {n} licences per run, one client process, devnet in-process");
    println!(
        "{:>12} {:>14} {:>16} {:>10}",
        "in flight", "licences/s", "mean latency ms", "retries"
    );
    for (run, depth) in [1usize, 8, 32, 128].into_iter().enumerate() {
        let count = if depth == 1 { n.min(100) } else { n };
        let batch: Vec<NewLicence> = (0..count)
            .map(|i| licence(&format!("9{run}{i:07}"), &holder, now))
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
    cc.stop().await.unwrap();
    devnet.down().await;
}
