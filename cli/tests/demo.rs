//! `elicense demo`: the whole story on the embedded devnet, as one JSON document holding every
//! step, or narrated; the devnet is stopped afterwards either way.

mod support;

use support::*;

const STEPS: [&str; 15] = [
    "devnet",
    "catalogue",
    "enrol",
    "issue",
    "authorize",
    "verify",
    "verify_again",
    "wrong_code",
    "withdraw",
    "retrieve",
    "usage",
    "revoke",
    "audit",
    "scan",
    "down",
];

#[test]
fn demo_json_holds_every_step_of_the_story() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = elicense()
        .args(["-o", "json", "demo", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let doc = ok_json(out);
    assert_eq!(doc["ok"], true);
    let steps = doc["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, STEPS);
    assert!(steps.iter().all(|s| s["ok"] == true));
    let step = |name: &str| steps.iter().find(|s| s["name"] == name).unwrap()["details"].clone();
    let code = step("authorize")["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    assert_eq!(
        step("verify")["matched"],
        serde_json::json!(["id_number", "name"])
    );
    assert_eq!(step("verify_again")["refused"], "GRANT_SPENT");
    assert_eq!(step("wrong_code")["refused"], "WRONG_CODE");
    assert_eq!(step("withdraw")["status"], "withdrawn");
    assert_eq!(step("retrieve")["fields"]["name"], "张三");
    assert_eq!(step("usage")["records"].as_array().unwrap().len(), 2);
    assert_eq!(step("revoke")["status"], "revoked");
    assert_eq!(step("audit")["records"], 2);
    let scan = step("scan");
    assert!(scan["blocks"].as_u64().unwrap() >= 8);
    assert_eq!(scan["values_checked"], 27);
    assert_eq!(scan["found"], serde_json::json!([]));
    assert!(doc["total_ms"].as_u64().is_some());
    // The enrolled citizen's MSP directory is kept; no devnet is left running there.
    let citizen = step("enrol")["enrollment_id"].as_str().unwrap().to_string();
    assert!(data
        .join("msp/ServiceCentre")
        .join(&citizen)
        .join("signcerts/cert.pem")
        .is_file());
    let status = elicense()
        .args(["devnet", "status", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_exit(&status, 3);
}

#[test]
fn demo_narrates_the_story_without_colour_off_a_terminal() {
    let out = elicense().args(["-o", "table", "demo"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("✔ 15. The devnet is stopped"), "{text}");
    assert!(
        text.contains("GRANT_SPENT") && text.contains("WRONG_CODE"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colour codes when stdout is not a terminal"
    );
}
