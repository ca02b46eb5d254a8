//! Bulk issuance through the built binary on a devnet: 1,000 licences with one bad line (that
//! line reported, the rest issued, a re-run issuing nothing twice), and a batch killed midway
//! and re-run (no duplicates, every credential complete).

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use base64::Engine as _;
use support::*;

/// A CSV batch of `n` ID cards for freshly generated holder keys; `bad` lines get a broken key.
fn csv_batch(n: usize, prefix: &str, bad: &[usize]) -> String {
    let mut text = String::from("type,serial,holder_key,name,sex,ethnicity,birth_date,address,id_number,issuing_authority,valid_from,valid_until\n");
    for i in 0..n {
        let key = fabric_common::crypto::SigningKey::generate();
        let der = key.public_key().to_spki_der();
        let holder = if bad.contains(&i) {
            "bm90IGEga2V5".to_string()
        } else {
            base64::engine::general_purpose::STANDARD.encode(der)
        };
        text.push_str(&format!(
            "ID_CARD,{prefix}{i:06},{holder},Citizen {i},F,Han,1990-01-01,\"No. {i}, Example Road\",ID{i:012},PSB,2020-01-01,2040-01-01\n"
        ));
    }
    text
}

fn results(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("result line {l:?}: {e}")))
        .collect()
}

fn count(rs: &[serde_json::Value], status: &str) -> usize {
    rs.iter().filter(|r| r["status"] == status).count()
}

#[test]
fn a_batch_of_1000_with_one_bad_line_reports_that_line_and_issues_the_rest() {
    let net = TestDevnet::start();
    let batch = net.path("licences.csv");
    // Data line 500 (file line 501, after the header) carries a holder key that is not a key.
    std::fs::write(&batch, csv_batch(1000, "B", &[499])).unwrap();
    let creds = net.path("credentials");
    let issue = || {
        net.cmd("PublicSecurity/issuer1")
            .args([
                "--channel",
                "police-service",
                "licence",
                "issue",
                "--concurrency",
                "64",
                "--batch",
            ])
            .arg(&batch)
            .arg("--credentials-dir")
            .arg(&creds)
            .output()
            .unwrap()
    };
    let out = issue();
    // A bad input line makes the batch a usage failure, after every other line was issued.
    assert_exit(&out, 2);
    let rs = results(&out.stdout);
    assert_eq!(rs.len(), 1000, "one result per line");
    assert_eq!(count(&rs, "issued"), 999);
    let failed: Vec<_> = rs.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["line"], 501);
    assert!(
        failed[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holder_key"),
        "{}",
        failed[0]
    );
    let err = json_err(&out);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 501"),
        "{err}"
    );
    // Every issued licence has its credential, none is left pending.
    let files: Vec<_> = std::fs::read_dir(&creds)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(files.len(), 999);
    assert!(files.iter().all(|f| f.to_string_lossy().ends_with(".json")));
    let ids: BTreeSet<String> = rs
        .iter()
        .filter_map(|r| r["licence_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        ids.len(),
        1000,
        "distinct identifiers, the bad line's included"
    );

    // The same command again: nothing is issued twice; the bad line is reported again.
    let out = issue();
    assert_exit(&out, 2);
    let rs = results(&out.stdout);
    assert_eq!(count(&rs, "issued"), 0);
    assert_eq!(count(&rs, "skipped"), 999);
    assert_eq!(count(&rs, "failed"), 1);
}

#[test]
fn an_interrupted_batch_re_run_issues_no_duplicates_and_completes_every_credential() {
    let net = TestDevnet::start();
    let batch = net.path("licences.jsonl");
    let n = 200;
    let mut text = String::new();
    for line in csv_batch(n, "J", &[]).lines().skip(1) {
        let cells: Vec<&str> = line.splitn(4, ',').collect();
        text.push_str(
            &serde_json::json!({
                "type": cells[0], "serial": cells[1], "holder_key": cells[2],
                "fields": {"name": format!("Citizen {}", cells[1]), "sex": "M", "ethnicity": "Han",
                           "birth_date": "1990-01-01", "address": "Somewhere", "id_number": cells[1],
                           "issuing_authority": "PSB", "valid_from": "2020-01-01", "valid_until": "2040-01-01"}
            })
            .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(&batch, text).unwrap();
    let creds = net.path("credentials");
    let command = || {
        let mut c = net.cmd("PublicSecurity/issuer1");
        c.args([
            "--channel",
            "police-service",
            "licence",
            "issue",
            "--concurrency",
            "8",
            "--batch",
        ])
        .arg(&batch)
        .arg("--credentials-dir")
        .arg(&creds);
        c
    };

    // First run: killed (SIGKILL) after 40 results, with transactions still in flight.
    let mut child = command()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first: Vec<serde_json::Value> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        first.push(serde_json::from_str(&line.unwrap()).unwrap());
        if first.len() == 40 {
            child.kill().unwrap();
            break;
        }
    }
    let _ = child.wait();
    assert_eq!(first.len(), 40);
    assert!(first.iter().all(|r| r["status"] == "issued"), "{first:?}");

    // Re-run to completion: the first run's licences are skipped, nothing is issued twice.
    let out = command().output().unwrap();
    assert_exit(&out, 0);
    let second = results(&out.stdout);
    assert_eq!(second.len(), n);
    assert_eq!(count(&second, "failed"), 0, "{second:?}");
    let issued_first: BTreeSet<&str> = first
        .iter()
        .map(|r| r["licence_id"].as_str().unwrap())
        .collect();
    for r in &second {
        let id = r["licence_id"].as_str().unwrap();
        if issued_first.contains(id) {
            assert_eq!(r["status"], "skipped", "{r}");
        }
    }
    assert!(count(&second, "skipped") >= 40);
    assert_eq!(count(&second, "issued") + count(&second, "skipped"), n);
    // Every licence has a complete credential, and none is pending.
    let files: Vec<String> = std::fs::read_dir(&creds)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files.iter().filter(|f| f.ends_with(".json")).count(),
        n,
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.contains("pending")), "{files:?}");

    // The ledger has exactly one issuance per licence: one LicenceIssued event each.
    let events = net
        .cmd("PublicSecurity/issuer1")
        .args([
            "--channel",
            "police-service",
            "events",
            "--from-block",
            "0",
            "--idle",
            "3",
        ])
        .output()
        .unwrap();
    let issued: Vec<String> = results(&events.stdout)
        .iter()
        .filter(|e| e["event"] == "LicenceIssued")
        .map(|e| e["payload"]["licence_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(issued.len(), n, "one issuance per licence");
    assert_eq!(issued.iter().collect::<BTreeSet<_>>().len(), n);
    // A credential from the killed run opens its licence's commitments on the ledger.
    let some = issued_first.iter().next().unwrap();
    let cred: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(creds.join(format!("{some}.json"))).unwrap())
            .unwrap();
    let record = ok_json(
        net.cmd("PublicSecurity/issuer1")
            .args(["--channel", "police-service", "licence", "show", some])
            .output()
            .unwrap(),
    );
    for (name, opening) in cred["fields"].as_object().unwrap() {
        let salt = hex::decode(opening["salt"].as_str().unwrap()).unwrap();
        let value = opening["value"].as_str().unwrap();
        let mut pre = salt.clone();
        pre.extend((name.len() as u32).to_be_bytes());
        pre.extend(name.as_bytes());
        pre.extend(value.as_bytes());
        assert_eq!(
            hex::encode(fabric_common::crypto::sha256(&pre)),
            record["commitments"][name].as_str().unwrap(),
            "the credential opens the commitment of {name}"
        );
    }
}
