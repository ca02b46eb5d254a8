//! The official `@hyperledger/fabric-gateway` Node client (with `@grpc/grpc-js`) against a devnet
//! peer over TLS, found through the connection profile and signing as an identity from the MSP
//! directory the devnet wrote: evaluate, submit, commit status, chaincode events resumed from a
//! checkpoint, blocks from Deliver, and the gateway's errors, all as the client sees them
//! against Fabric. Needs Node and `npm ci` in `tests/interop`.

#[path = "peer_fixture.rs"]
mod peer_fixture;
#[path = "interop_support/mod.rs"]
mod support;

use std::time::Duration;

use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig};
use fabric_protos::protos::TxValidationCode;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabric_gateway_node_client_evaluates_submits_and_reads_events_with_a_checkpoint() {
    if !node_ready("@hyperledger/fabric-gateway") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(topology(), dir.path()))
        .await
        .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    // Default policy: a majority of the channel's two organisations, so both must endorse.
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "kv".into(),
            address: addr.clone(),
            ..Default::default()
        })
        .unwrap();
    let _cc = peer_fixture::start_chaincode(&deployed.package_id, &addr).await;
    let summary = devnet.summary();

    let mut input = client_input(&summary, "Service", "clerk1");
    input["channel"] = CH.into();
    input["chaincode"] = "kv".into();
    let out = run_node("devnet/gateway.js", &input, Duration::from_secs(90)).await;
    println!("{}", serde_json::to_string_pretty(&out).unwrap());

    settle(&devnet, CH).await;
    assert_eq!(out["put"], "");
    assert_eq!(out["get"], "blue");
    let ledger = devnet
        .peer("Police")
        .unwrap()
        .node
        .channel(CH)
        .unwrap()
        .ledger()
        .clone();
    // The other organisation's peer committed the put.
    assert_eq!(
        ledger.get_state("kv", "colour").unwrap().unwrap().value,
        b"blue"
    );

    // Each async submit's commit status is VALID in the block the ledger holds it in.
    let commits = out["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 3);
    for c in commits {
        assert_eq!(c["successful"], true, "{c}");
        assert_eq!(c["code"], TxValidationCode::Valid as i32, "{c}");
        let txid = c["transactionId"].as_str().unwrap();
        let loc = ledger.tx_location(txid).unwrap().expect("committed");
        assert_eq!(c["blockNumber"].as_u64().unwrap(), loc.block, "{c}");
        assert_eq!(loc.code, TxValidationCode::Valid as i32);
    }

    // Events in chain order; the checkpoint resumes after the first, on a new connection.
    let names = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["chaincodeName"], "kv");
                assert_eq!(e["eventName"], "issued");
                (
                    e["payload"].as_str().unwrap().to_string(),
                    e["transactionId"].as_str().unwrap().to_string(),
                    e["blockNumber"].to_string(),
                )
            })
            .collect()
    };
    // The chain's order: by block, then position in the block.
    let mut ordered: Vec<&serde_json::Value> = commits.iter().collect();
    ordered.sort_by_key(|c| {
        let loc = ledger
            .tx_location(c["transactionId"].as_str().unwrap())
            .unwrap()
            .unwrap();
        (loc.block, loc.tx)
    });
    let expect: Vec<(String, String, String)> = ordered
        .iter()
        .map(|c| {
            (
                c["payload"].as_str().unwrap().to_string(),
                c["transactionId"].as_str().unwrap().to_string(),
                c["blockNumber"].to_string(),
            )
        })
        .collect();
    println!(
        "event blocks: {:?} (resuming within a block when they share one)",
        expect.iter().map(|e| e.2.clone()).collect::<Vec<_>>()
    );
    assert_eq!(names(&out["firstRead"]), expect[..1]);
    assert_eq!(names(&out["resumed"]), expect[1..]);
    assert_eq!(out["checkpoint"]["transactionId"], expect[0].1);

    // The official client decodes the devnet's blocks from Deliver and DeliverFiltered.
    let first = ordered[0];
    let n = first["blockNumber"].as_u64().unwrap();
    let block = ledger.block(n).unwrap().unwrap();
    let b = &out["block"];
    assert_eq!(b["number"].as_u64(), Some(n));
    assert_eq!(
        b["dataHash"].as_str().unwrap(),
        hex::encode(&block.header.as_ref().unwrap().data_hash)
    );
    let count = block.data.as_ref().unwrap().data.len();
    assert_eq!(b["transactions"].as_u64(), Some(count as u64));
    assert_eq!(b["filter"], serde_json::json!(vec![0; count]), "all VALID");
    let fb = &out["filteredBlock"];
    assert_eq!(fb["number"].as_u64(), Some(n));
    assert_eq!(fb["channelId"], CH);
    assert!(
        fb["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["txid"] == first["transactionId"]
                && t["code"] == TxValidationCode::Valid as i32
                && t["type"] == fabric_protos::common::HeaderType::EndorserTransaction as i32),
        "{fb}"
    );

    // Chaincode failures: UNKNOWN (2) with one detail per endorser, as the real gateway.
    let e = &out["evaluateError"];
    assert_eq!(e["name"], "GatewayError", "{e}");
    assert_eq!(e["code"], 2, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("chaincode response 500, no such licence"),
        "{e}"
    );
    let e = &out["submitError"];
    assert_eq!(e["name"], "EndorseError", "{e}");
    assert_eq!(e["code"], 10, "ABORTED: {e}");
    assert!(!e["transactionId"].as_str().unwrap().is_empty(), "{e}");
    let details = e["details"].as_array().unwrap();
    assert!(!details.is_empty(), "{e}");
    for d in details {
        assert!(
            d["message"].as_str().unwrap().contains("refused"),
            "detail {d}"
        );
        assert!(
            summary
                .peers
                .iter()
                .any(|p| d["address"].as_str() == Some(p.address.as_str())),
            "detail names a devnet peer: {d}"
        );
    }

    // One organisation's endorsement against the majority policy: a CommitError with
    // ENDORSEMENT_POLICY_FAILURE, and the value is unchanged.
    let e = &out["commitError"];
    assert_eq!(e["name"], "CommitError", "{e}");
    assert_eq!(
        e["code"],
        TxValidationCode::EndorsementPolicyFailure as i32,
        "{e}"
    );
    let txid = e["transactionId"].as_str().unwrap();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("ENDORSEMENT_POLICY_FAILURE"),
        "{e}"
    );
    settle(&devnet, CH).await;
    let loc = ledger
        .tx_location(txid)
        .unwrap()
        .expect("ordered and recorded");
    assert_eq!(loc.code, TxValidationCode::EndorsementPolicyFailure as i32);
    assert_eq!(out["afterCommitError"], "blue");
    assert_eq!(
        out["invalidEvent"]["code"],
        TxValidationCode::EndorsementPolicyFailure as i32
    );
    let next = &out["afterInvalid"][0];
    assert_eq!(
        next["transactionId"], out["validEvent"]["transactionId"],
        "{next}"
    );
    assert_eq!(next["payload"], "licence-4");
    devnet.down().await;
}
