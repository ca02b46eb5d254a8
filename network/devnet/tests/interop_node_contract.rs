//! A chaincode written with the official Node `fabric-contract-api`, served by `fabric-shim`'s
//! chaincode server (CCaaS) with TLS, deployed on a running devnet with `deploy_ccaas`: world
//! state, composite keys, ranges with pagination, private data from the transient map (with only
//! its hash on chain) and chaincode events all work through the devnet's Gateway. Needs Node and
//! `npm ci` in `tests/interop`.

#[path = "peer_fixture.rs"]
mod peer_fixture;
#[path = "interop_support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use fabric_client::gateway::EventsOptions;
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig};
use fabric_protos::protos::CollectionConfigPackage;
use sha2::{Digest, Sha256};
use support::*;

fn json(bytes: Vec<u8>) -> serde_json::Value {
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_contract_api_chaincode_runs_on_the_devnet_through_its_gateway() {
    if !node_ready("fabric-contract-api") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(topology(), dir.path().join("net")))
        .await
        .unwrap();
    let (ca_pem, cert, key) = tls_server_files(dir.path());
    let addr = format!("127.0.0.1:{}", free_port());
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "licences".into(),
            address: addr.clone(),
            collections: Some(CollectionConfigPackage {
                config: vec![
                    peer_fixture::collection(
                        "shared",
                        "OR('PoliceMSP.member','ServiceMSP.member')",
                        true,
                    ),
                    peer_fixture::collection("policeonly", "OR('PoliceMSP.member')", true),
                ],
            }),
            tls_root_cert: Some(ca_pem),
            ..Default::default()
        })
        .unwrap();
    let start_server = || {
        Killed(
            Command::new("node")
                .arg("devnet/contract-server.js")
                .arg("--chaincode-address")
                .arg(&addr)
                .arg("--chaincode-id")
                .arg(&deployed.package_id)
                .arg("--chaincode-tls-cert-file")
                .arg(&cert)
                .arg("--chaincode-tls-key-file")
                .arg(&key)
                .current_dir(interop_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting the Node chaincode server"),
        )
    };
    let mut node = start_server();
    let summary = devnet.summary();
    let police = gateway(&summary, "Police", "issuer1");
    let service = gateway(&summary, "Service", "clerk1");
    let licences = police.network(CH).contract("licences");
    let from_service = service.network(CH).contract("licences");

    // World state, endorsed by both organisations (the default majority policy). The chaincode
    // server may still be starting: the first call is retried for a while.
    let holders = ["alice", "bob", "alice", "carol", "alice"];
    let mut first = None;
    for _ in 0..50 {
        match licences
            .submit_transaction("put", &["lic-001", holders[0]])
            .await
        {
            Ok(r) => {
                first = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(first.expect("the Node chaincode answers"), b"alice");
    for (i, h) in holders.iter().enumerate().skip(1) {
        let id = format!("lic-{:03}", i + 1);
        let r = licences
            .submit_transaction("put", &[id.as_str(), h])
            .await
            .unwrap();
        assert_eq!(r, h.as_bytes());
    }
    assert_eq!(
        from_service
            .evaluate_transaction("get", &["lic-004"])
            .await
            .unwrap(),
        b"carol"
    );
    let err = from_service
        .evaluate_transaction("get", &["lic-404"])
        .await
        .unwrap_err();
    let status = err.grpc_status().expect("a gRPC status");
    assert_eq!(status.code, tonic::Code::Unknown);
    assert!(
        status
            .message
            .ends_with("chaincode response 500, licence lic-404 does not exist"),
        "{}",
        status.message
    );
    settle(&devnet, CH).await;
    for p in devnet.peers() {
        let v = p
            .node
            .channel(CH)
            .unwrap()
            .ledger()
            .get_state("licences", "lic-003")
            .unwrap()
            .unwrap();
        assert_eq!(v.value, b"alice", "{}", p.host);
    }

    // Ranges, pagination with Fabric's bookmark, composite keys.
    let r = licences
        .evaluate_transaction("range", &["lic-002", "lic-004"])
        .await
        .unwrap();
    assert_eq!(json(r), serde_json::json!(["lic-002", "lic-003"]));
    let page1 = json(
        licences
            .evaluate_transaction("page", &["lic-000", "lic-999", "2", ""])
            .await
            .unwrap(),
    );
    assert_eq!(
        page1,
        serde_json::json!({"keys": ["lic-001", "lic-002"], "count": 2, "bookmark": "lic-003"})
    );
    let page3 = json(
        licences
            .evaluate_transaction("page", &["lic-000", "lic-999", "2", "lic-005"])
            .await
            .unwrap(),
    );
    assert_eq!(page3["keys"], serde_json::json!(["lic-005"]));
    assert_eq!(page3["count"], 1);
    let r = from_service
        .evaluate_transaction("byHolder", &["alice"])
        .await
        .unwrap();
    assert_eq!(
        json(r),
        serde_json::json!(["lic-001", "lic-003", "lic-005"])
    );

    // Private data: the value travels in the transient map, both members store it, the block
    // carries only its hash.
    let secret = "photo-hash-7f3a9c";
    let (_, commit) = licences
        .new_proposal("putPrivate")
        .string_args(&["shared", "lic-001"])
        .transient("secret", secret.as_bytes().to_vec())
        .submit_async()
        .await
        .unwrap();
    let st = commit.status().await.unwrap();
    assert!(st.successful, "{st:?}");
    // CommitStatus answers for the Police peer; the Service peer commits on its own.
    let service_ledger = devnet
        .peer("Service")
        .unwrap()
        .node
        .channel(CH)
        .unwrap()
        .ledger()
        .clone();
    let mut height = service_ledger.watch_height();
    tokio::time::timeout(
        Duration::from_secs(10),
        height.wait_for(|h| *h > st.block_number),
    )
    .await
    .expect("the Service peer commits the block")
    .unwrap();
    let got = from_service
        .evaluate_transaction("getPrivate", &["shared", "lic-001"])
        .await
        .unwrap();
    assert_eq!(got, secret.as_bytes());
    let hash = licences
        .evaluate_transaction("privateHash", &["shared", "lic-001"])
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(hash).unwrap(),
        hex::encode(Sha256::digest(secret.as_bytes()))
    );
    let r = licences
        .evaluate_transaction("privateRange", &["shared", "lic-000", "lic-999"])
        .await
        .unwrap();
    assert_eq!(json(r), serde_json::json!(["lic-001"]));
    for p in devnet.peers() {
        let ledger = p.node.channel(CH).unwrap().ledger().clone();
        let block = ledger.block_bytes(st.block_number).unwrap().unwrap();
        assert!(
            !block.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{}: the private value is not in the block",
            p.host
        );
    }

    // A member-only-read collection refuses another organisation's client, with the peer's
    // words reaching the contract and the client.
    let err = from_service
        .evaluate_transaction("getPrivate", &["policeonly", "lic-001"])
        .await
        .unwrap_err();
    let status = err.grpc_status().expect("a gRPC status");
    assert!(
        status.message.contains(
            "tx creator does not have read access permission on privatedata in chaincodeName:licences collectionName: policeonly"
        ),
        "{}",
        status.message
    );

    // The chaincode server restarts: the peers dial it again on the next call.
    drop(node);
    node = start_server();
    let mut again = None;
    for _ in 0..50 {
        match from_service.evaluate_transaction("get", &["lic-002"]).await {
            Ok(v) => {
                again = Some(v);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(again.expect("the restarted chaincode answers"), b"bob");
    licences
        .submit_transaction("del", &["lic-002"])
        .await
        .unwrap();
    settle(&devnet, CH).await;
    for p in devnet.peers() {
        let ledger = p.node.channel(CH).unwrap().ledger().clone();
        assert!(ledger.get_state("licences", "lic-002").unwrap().is_none());
    }

    // Events: one `LicencePut` per put, in commit order, from the start of the chain.
    let mut events = licences
        .network()
        .chaincode_events("licences", &EventsOptions::start_block(0))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < holders.len() {
        let e = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("events arrive")
            .expect("stream open")
            .unwrap();
        assert_eq!(e.event_name, "LicencePut");
        assert_eq!(e.chaincode_name, "licences");
        seen.push(json(e.payload.clone()));
    }
    let expect: Vec<serde_json::Value> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| serde_json::json!({"id": format!("lic-{:03}", i + 1), "holder": h}))
        .collect();
    assert_eq!(seen, expect);
    drop(events);
    devnet.down().await;
    drop(node);
}
