//! Runs the built `elicense` binary as a user would: completions, global conventions (flag over
//! environment over config file), output formats, chaincode packaging and the usage failures.

mod support;

use sha2_free_digest::sha256_hex;
use support::*;

/// SHA-256 via the system's `sha256sum`-free path: fabric-common's digest.
mod sha2_free_digest {
    pub fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(fabric_common::crypto::sha256(bytes))
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = elicense().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("elicense"),
            "{shell} script names the command"
        );
        assert!(
            text.contains("licence") || text.contains("chaincode"),
            "{shell} script lists subcommands"
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    let out = elicense().args(["completions", "nosh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = elicense().arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_broken_config_file_is_a_usage_error_reported_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("elicense.toml");
    std::fs::write(&cfg, "channel = [not toml").unwrap();
    let out = elicense()
        .args(["-o", "json", "--config"])
        .arg(&cfg)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["class"], "usage");
    assert_eq!(err["error"]["exit_code"], 2);
}

#[test]
fn chaincode_package_prints_fabrics_package_id_of_the_file_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("elicense.tar.gz");
    let out = elicense()
        .args([
            "-o",
            "json",
            "chaincode",
            "package",
            "--label",
            "elicense_1.0",
            "--address",
            "cc.police.elicense.gov:9999",
            "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let v = ok_json(out);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        v["package_id"],
        format!("elicense_1.0:{}", sha256_hex(&bytes))
    );
    assert_eq!(v["tls"], false);

    // Same label and connection: same ID (every org computes the same package ID).
    let again = ok_json(
        elicense()
            .args([
                "-o",
                "json",
                "chaincode",
                "package",
                "--label",
                "elicense_1.0",
                "--address",
                "cc.police.elicense.gov:9999",
                "--out",
            ])
            .arg(dir.path().join("again.tar.gz"))
            .output()
            .unwrap(),
    );
    assert_eq!(again["package_id"], v["package_id"]);

    // A label Fabric refuses: usage, exit 2, naming the rule.
    let out = elicense()
        .args([
            "-o",
            "json",
            "chaincode",
            "package",
            "--label",
            "bad label",
            "--address",
            "h:1",
            "--out",
        ])
        .arg(dir.path().join("bad.tar.gz"))
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(json_err(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("label"));

    // A TLS root file that does not exist: not found, exit 3.
    let out = elicense()
        .args([
            "-o",
            "table",
            "chaincode",
            "package",
            "--address",
            "h:1",
            "--tls-root-cert",
            "/nonexistent/ca.pem",
            "--out",
        ])
        .arg(dir.path().join("tls.tar.gz"))
        .output()
        .unwrap();
    assert_exit(&out, 3);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.starts_with("error: reading /nonexistent/ca.pem"),
        "human error, no colour off a terminal: {text}"
    );
}

#[test]
fn output_format_comes_from_flag_then_environment_then_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("elicense.toml");
    std::fs::write(&cfg, "output = \"yaml\"\n").unwrap();
    let package = |extra: &[&str], env: Option<&str>| {
        let mut c = elicense();
        c.current_dir(dir.path()).args(extra).args([
            "chaincode",
            "package",
            "--address",
            "h:7",
            "--out",
            "p.tgz",
        ]);
        if let Some(v) = env {
            c.env("ELICENSE_OUTPUT", v);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // elicense.toml in the working directory: YAML.
    assert!(package(&[], None).starts_with("package_id: elicense_1.0:"));
    // The environment beats the config file.
    assert!(package(&[], Some("json")).starts_with("{\"package_id\""));
    // The flag beats the environment.
    let table = package(&["-o", "table"], Some("json"));
    assert!(table.starts_with("FIELD"), "{table}");
    assert!(table.contains("package_id"));
}

#[test]
fn network_commands_without_a_profile_or_identity_explain_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = elicense()
        .current_dir(dir.path())
        .args(["-o", "json", "block", "0"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = json_err(&out);
    assert!(
        err["error"]["hint"].as_str().unwrap().contains("--profile"),
        "{err}"
    );

    let out = elicense()
        .current_dir(dir.path())
        .args(["-o", "json", "events", "--profile", "missing.json"])
        .output()
        .unwrap();
    assert_exit(&out, 3);

    std::fs::write(
        dir.path().join("p.json"),
        r#"{"name":"n","client":{"organization":"Org1"},"organizations":{"Org1":{"mspid":"Org1MSP","peers":["p0"]}},"peers":{"p0":{"url":"grpc://127.0.0.1:1"}},"channels":{"ch":{}}}"#,
    )
    .unwrap();
    let out = elicense()
        .current_dir(dir.path())
        .env("ELICENSE_PROFILE", "p.json")
        .args(["-o", "json", "block", "0"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(json_err(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("identity"));

    let out = elicense()
        .current_dir(dir.path())
        .args([
            "-o",
            "json",
            "block",
            "0",
            "--profile",
            "p.json",
            "--identity",
            "nobody",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 3);
}
