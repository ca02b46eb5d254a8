//! `elicense events` through the built binary on a devnet: a stream stopped and resumed from a
//! checkpoint file sees every event exactly once, in ledger order; `--after-tx` starts right
//! after a given transaction; a damaged checkpoint is a usage error.

mod support;

use support::*;

fn lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn key(e: &serde_json::Value) -> (u64, String, String) {
    (
        e["block"].as_u64().unwrap(),
        e["tx_id"].as_str().unwrap().to_string(),
        e["event"].as_str().unwrap().to_string(),
    )
}

#[test]
fn an_event_stream_resumed_from_its_checkpoint_loses_and_repeats_nothing() {
    let net = TestDevnet::start();
    let ch = ["--channel", "police-service"];
    // Some history: twelve licences issued in a batch (several per block).
    let mut csv = String::from("type,serial,holder_key,name,sex,ethnicity,birth_date,address,id_number,issuing_authority,valid_from,valid_until\n");
    for i in 0..12 {
        let key = fabric_common::crypto::SigningKey::generate();
        let pem = elicense_model::HolderKey::from_public_key(key.public_key().clone()).to_pem();
        csv.push_str(&format!(
            "ID_CARD,E{i:04},\"{pem}\",N{i},M,Han,1990-01-01,A{i},X{i},PSB,2020-01-01,2040-01-01\n"
        ));
    }
    let batch = net.path("b.csv");
    std::fs::write(&batch, csv).unwrap();
    let out = net
        .cmd("PublicSecurity/issuer1")
        .args(ch)
        .args(["licence", "issue", "--batch"])
        .arg(&batch)
        .arg("--credentials-dir")
        .arg(net.path("creds"))
        .output()
        .unwrap();
    assert_exit(&out, 0);

    let events = |extra: &[&str]| {
        let mut c = net.cmd("ServiceCentre/clerk1");
        c.args(ch).arg("events").args(extra);
        lines(&c.output().unwrap())
    };
    // The reference: everything from block 0 (the catalogue, then twelve issuances).
    let all = events(&["--from-block", "0", "--idle", "2"]);
    assert_eq!(all.len(), 13, "{all:?}");
    assert_eq!(
        all.iter().filter(|e| e["event"] == "LicenceIssued").count(),
        12
    );

    // Read five, stop; read four more, stop; then the rest: together exactly the reference.
    let cp = net.path("checkpoint.json");
    let cp_arg = cp.display().to_string();
    let a = events(&["--from-block", "0", "--checkpoint", &cp_arg, "--count", "5"]);
    assert_eq!(a.len(), 5);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cp).unwrap()).unwrap();
    assert_eq!(
        saved["transactionId"], a[4]["tx_id"],
        "the checkpoint names the last event handled"
    );
    assert_eq!(saved["blockNumber"], a[4]["block"]);
    // --from-block 0 again is overridden by the non-empty checkpoint.
    let b = events(&["--from-block", "0", "--checkpoint", &cp_arg, "--count", "4"]);
    assert_eq!(b.len(), 4);
    let c = events(&["--checkpoint", &cp_arg, "--idle", "2"]);
    let resumed: Vec<_> = a.iter().chain(&b).chain(&c).map(key).collect();
    let reference: Vec<_> = all.iter().map(key).collect();
    assert_eq!(
        resumed, reference,
        "no event lost, none repeated, same order"
    );
    // Nothing new: a further resume prints nothing.
    assert!(events(&["--checkpoint", &cp_arg, "--idle", "1"]).is_empty());

    // --after-tx: everything after the sixth event's transaction.
    let after = events(&[
        "--after-tx",
        all[5]["tx_id"].as_str().unwrap(),
        "--idle",
        "2",
    ]);
    let expected: Vec<_> = all[6..].iter().map(key).collect();
    assert_eq!(after.iter().map(key).collect::<Vec<_>>(), expected);

    // A damaged checkpoint file is a usage error (2) that says how to start over.
    std::fs::write(&cp, "{not json").unwrap();
    let mut c = net.cmd("ServiceCentre/clerk1");
    let out = c
        .args(ch)
        .args(["events", "--checkpoint", &cp_arg, "--idle", "1"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(json_err(&out)["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("delete it"));
}
