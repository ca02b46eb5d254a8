//! `elicense chaincode serve`: the built binary serves the licence contract as a CCaaS server
//! that a peer (the shim's test peer, speaking the real chaincode protocol over gRPC) dials,
//! registers with the package ID given, and answers transactions on.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use fabric_chaincode::testing::{TestPeer, TestPeerConfig, TestTx};
use support::*;

#[tokio::test]
async fn chaincode_serve_registers_with_its_package_id_and_answers_the_peer() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let child = elicense()
        .args(["chaincode", "serve", "--address", &address])
        .env("CHAINCODE_ID", "elicense_1.0:0123abcd")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the chaincode server did not listen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let peer = TestPeer::connect(&format!("http://{address}"), TestPeerConfig::default())
        .await
        .expect("the peer's stream is accepted");
    // The package ID comes from CHAINCODE_ID, as in Fabric's CCaaS samples.
    assert_eq!(peer.registered_name(), "elicense_1.0:0123abcd");

    let out = peer
        .invoke(TestTx::new(
            "police-service",
            ["org.hyperledger.fabric:GetMetadata"],
        ))
        .await
        .unwrap();
    let response = out.response().expect("a response");
    assert_eq!(response.status, 200);
    let metadata: serde_json::Value = serde_json::from_slice(&response.payload).unwrap();
    assert!(
        metadata["contracts"].get("ELicense").is_some(),
        "the licence contract is served: {metadata}"
    );

    // An empty catalogue reads as an empty list; an unknown type is the contract's NOT_FOUND.
    let out = peer
        .invoke(TestTx::new("police-service", ["ListLicenceTypes"]))
        .await
        .unwrap();
    assert_eq!(out.response().unwrap().status, 200);
    let out = peer
        .invoke(TestTx::new(
            "police-service",
            ["GetLicenceType", r#"{"code":"NO_SUCH"}"#],
        ))
        .await
        .unwrap();
    let r = out.response().unwrap();
    assert_eq!(r.status, 500);
    assert!(r.message.contains("NOT_FOUND"), "{}", r.message);
    peer.disconnect().await;
}

#[test]
fn chaincode_serve_without_an_address_is_a_usage_error() {
    let out = elicense()
        .args(["-o", "json", "chaincode", "serve", "--chaincode-id", "x:1"])
        .env_remove("CHAINCODE_SERVER_ADDRESS")
        .env_remove("CORE_CHAINCODE_ADDRESS")
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(json_err(&out)["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("--address"));
}
