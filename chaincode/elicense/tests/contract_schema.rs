//! The `org.hyperledger.fabric:GetMetadata` answer judged by the official contract schema: the
//! JSON schema shipped inside the npm package `fabric-contract-api`, validated as `fabric-shim`
//! validates a contract's metadata (`tests/interop/metadata/validate.js`).
//!
//! Needs Node and `tests/interop/node_modules` (`cd tests/interop && npm ci`). Without them the
//! test prints why it skips; under `CI=true` their absence is a failure, since CI must run every
//! judge.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use elicense_chaincode::{router, Settings};
use fabric_chaincode::contract::{Context, Contract, Router};
use fabric_chaincode::mock::{MockLedger, MockStub};
use fabric_chaincode::Error;
use serde_json::{json, Value};

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// True when Node and the official packages are installed; otherwise skips (or fails in CI).
fn judge_ready() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let modules = interop_dir().join("node_modules");
    if node
        && modules
            .join("fabric-contract-api/schema/contract-schema.json")
            .is_file()
        && modules.join("fabric-shim").is_dir()
    {
        return true;
    }
    let what = "node and fabric-contract-api's contract schema (cd tests/interop && npm ci)";
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("required in CI but missing: {what}");
    }
    eprintln!("SKIPPED: {what}");
    false
}

/// The validator's verdict on `metadata`.
fn judge(metadata: &[u8]) -> (bool, Value) {
    let mut child = Command::new("node")
        .arg("metadata/validate.js")
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(metadata)
        .expect("metadata written to the validator");
    let out = child.wait_with_output().expect("the validator ends");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "validator output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    match out.status.code() {
        Some(0) => assert_eq!(report["valid"], true),
        Some(1) => assert_eq!(report["valid"], false),
        other => panic!("validator failed ({other:?}): {report}"),
    }
    (report["valid"] == true, report)
}

/// The exact bytes a peer gets back for `org.hyperledger.fabric:GetMetadata`.
async fn metadata_answer(router: &Router<MockStub>) -> Vec<u8> {
    let ledger = MockLedger::new("police-service");
    let out = ledger
        .invoke(
            router,
            ledger
                .stub("metadata")
                .function("org.hyperledger.fabric:GetMetadata", Vec::<&str>::new()),
        )
        .await
        .unwrap();
    assert_eq!(out.response.status, 200, "{}", out.response.message);
    out.response.payload
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Item {
    name: String,
    count: u32,
}

/// A contract with every kind of parameter and result the contract API describes.
fn varied_router() -> Router<MockStub> {
    type C = Context<MockStub>;
    Router::new()
        .title("varied")
        .version("1.2.3")
        .contract(
            Contract::new("Kinds")
                .submit(
                    "Scalars",
                    &["text", "count", "ratio", "flag"],
                    |_ctx: C, (t, n, r, f): (String, i64, f64, bool)| async move {
                        Ok::<_, Error>(format!("{t}{n}{r}{f}"))
                    },
                )
                .submit(
                    "Object",
                    &["item"],
                    |_ctx: C, (item,): (Item,)| async move { Ok::<_, Error>(item) },
                )
                .evaluate(
                    "List",
                    &["names"],
                    |_ctx: C, (names,): (Vec<String>,)| async move {
                        Ok::<_, Error>(names.len() as u64)
                    },
                )
                .evaluate(
                    "Nothing",
                    &[],
                    |_ctx: C, ()| async move { Ok::<_, Error>(()) },
                )
                .evaluate(
                    "Flag",
                    &[],
                    |_ctx: C, ()| async move { Ok::<_, Error>(true) },
                ),
        )
        .contract(Contract::new("Second").title("second contract").evaluate(
            "Ping",
            &[],
            |_ctx: C, ()| async move { Ok::<_, Error>(vec![1u8, 2]) },
        ))
}

#[tokio::test]
async fn licence_contract_metadata_matches_the_official_schema() {
    if !judge_ready() {
        return;
    }
    let answer = metadata_answer(&router::<MockStub>(Settings::default())).await;
    let (valid, report) = judge(&answer);
    assert!(
        valid,
        "the official contract schema rejects our metadata: {report}"
    );

    // What the official contract APIs put there and clients rely on.
    let md: Value = serde_json::from_slice(&answer).unwrap();
    let lic = &md["contracts"]["ELicense"];
    assert_eq!(lic["default"], true);
    let verify = lic["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Verify")
        .expect("Verify is described");
    assert_eq!(verify["tag"], json!(["submit", "SUBMIT"]));
    assert_eq!(verify["parameters"][0]["name"], "request");
    assert!(md["contracts"]["org.hyperledger.fabric"]["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "GetMetadata"));
}

#[tokio::test]
async fn every_kind_of_transaction_is_described_within_the_schema() {
    if !judge_ready() {
        return;
    }
    let answer = metadata_answer(&varied_router()).await;
    let (valid, report) = judge(&answer);
    assert!(
        valid,
        "the official contract schema rejects our metadata: {report}"
    );
    let md: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(md["info"], json!({"title": "varied", "version": "1.2.3"}));
    assert_eq!(md["contracts"]["Second"]["default"], false);
    let txs = md["contracts"]["Kinds"]["transactions"].as_array().unwrap();
    let scalars = txs.iter().find(|t| t["name"] == "Scalars").unwrap();
    let types: Vec<&Value> = scalars["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["schema"]["type"])
        .collect();
    assert_eq!(
        types,
        [
            &json!("string"),
            &json!("integer"),
            &json!("number"),
            &json!("boolean")
        ]
    );
    let nothing = txs.iter().find(|t| t["name"] == "Nothing").unwrap();
    assert!(nothing.get("returns").is_none(), "no result, no returns");
}

#[tokio::test]
async fn the_judge_rejects_metadata_that_breaks_the_schema() {
    if !judge_ready() {
        return;
    }
    let answer = metadata_answer(&router::<MockStub>(Settings::default())).await;
    let good: Value = serde_json::from_slice(&answer).unwrap();

    // A type that draft-04 does not know: the schema's references into the draft-04 meta-schema
    // must resolve for this to be caught.
    let mut bad = good.clone();
    bad["contracts"]["ELicense"]["transactions"][0]["parameters"][0]["schema"] =
        json!({"type": "text"});
    let (valid, report) = judge(&serde_json::to_vec(&bad).unwrap());
    assert!(!valid, "{report}");

    // A parameter may carry only what the schema lists.
    let mut bad = good.clone();
    bad["contracts"]["ELicense"]["transactions"][0]["parameters"][0]["example"] = json!(1);
    assert!(!judge(&serde_json::to_vec(&bad).unwrap()).0);

    // Top-level info is required.
    let mut bad = good;
    bad.as_object_mut().unwrap().remove("info");
    let (valid, report) = judge(&serde_json::to_vec(&bad).unwrap());
    assert!(!valid);
    assert!(report.to_string().contains("info"), "{report}");
}
