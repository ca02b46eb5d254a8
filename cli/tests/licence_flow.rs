//! The built `elicense` against a devnet it started itself (`devnet up --detach`): every licence
//! subcommand's success path and its documented failure exit codes, as a script would use them.

mod support;

use std::process::{Command, Output};

use support::*;

const VALUES: &str = r#"{"name":"李四","sex":"女","ethnicity":"汉","birth_date":"1988-08-08","address":"深圳市福田区福中三路1号","id_number":"440304198808081234","issuing_authority":"深圳市公安局福田分局","valid_from":"2021-01-01","valid_until":"2041-01-01"}"#;

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

#[test]
fn licence_lifecycle_holder_grants_window_verify_and_audit_through_the_binary() {
    let net = TestDevnet::start();
    let dir = net.dir.path();
    assert_eq!(net.up["running"], true);
    assert_eq!(net.up["channels"].as_array().unwrap().len(), 5);
    assert!(net.up["package_id"]
        .as_str()
        .unwrap()
        .starts_with("elicense_1.0:"));
    assert_eq!(
        net.up["seeded"].as_array().unwrap().len(),
        5,
        "catalogue seeded on every channel"
    );

    // devnet status answers from the running process; a second `up` on the same dir conflicts.
    let status = ok_json(run({
        let mut c = elicense();
        c.args(["-o", "json", "devnet", "status", "--data-dir"])
            .arg(dir);
        c
    }));
    assert_eq!(status["pid"], net.up["pid"]);
    assert!(status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["height"].as_u64().unwrap() >= 2));
    let again = run({
        let mut c = elicense();
        c.args(["-o", "json", "devnet", "up", "--detach", "--data-dir"])
            .arg(dir);
        c
    });
    assert_exit(&again, 5);

    let ch = ["--channel", "police-service"];
    let issuer = || {
        let mut c = net.cmd("PublicSecurity/issuer1");
        c.args(ch);
        c
    };
    let clerk = || {
        let mut c = net.cmd("ServiceCentre/clerk1");
        c.args(ch);
        c
    };
    let holder = || {
        let mut c = net.cmd("ServiceCentre/holder1");
        c.args(ch);
        c
    };

    // Catalogue.
    let list = ok_json(run({
        let mut c = clerk();
        c.args(["catalogue", "list"]);
        c
    }));
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["code"] == "ID_CARD"));
    let t = ok_json(run({
        let mut c = clerk();
        c.args(["catalogue", "show", "ID_CARD"]);
        c
    }));
    assert_eq!(t["issuers"][0]["msp_id"], "PublicSecurityMSP");
    let out = run({
        let mut c = clerk();
        c.args(["catalogue", "show", "NO_SUCH_TYPE"]);
        c
    });
    assert_exit(&out, 3);
    assert_eq!(json_err(&out)["error"]["code"], "NOT_FOUND");

    // Issue: values from standard input, holder key from the holder's certificate.
    let holder_cert = dir.join("msp/ServiceCentre/holder1/signcerts/cert.pem");
    let cred = net.path("cred.json");
    let issue = |serial: &str, who: fn(&TestDevnet) -> Command, out: &std::path::Path| {
        let mut c = who(&net);
        c.args(ch)
            .args([
                "licence",
                "issue",
                "--type",
                "ID_CARD",
                "--serial",
                serial,
                "--values",
                "-",
                "--holder-key",
            ])
            .arg(&holder_cert)
            .arg("--credential-out")
            .arg(out)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(VALUES.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let issued = ok_json(issue(
        "000000042",
        |n| n.cmd("PublicSecurity/issuer1"),
        &cred,
    ));
    let id = issued["licence_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("IDC-PSB-000000042-"), "{id}");
    assert_eq!(issued["status"], "active");
    let cred_text = std::fs::read_to_string(&cred).unwrap();
    assert!(
        cred_text.contains("李四"),
        "the holder's credential holds the values"
    );
    assert!(
        !issued.to_string().contains("李四"),
        "the printed record holds no value"
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&cred).unwrap().permissions().mode() & 0o077,
            0
        );
    }
    // The same identifier again: conflict (5). A department that is not an issuer: denied (4).
    assert_exit(
        &issue(
            "000000042",
            |n| n.cmd("PublicSecurity/issuer1"),
            &net.path("c2.json"),
        ),
        5,
    );
    let denied = issue(
        "000000043",
        |n| n.cmd("ServiceCentre/clerk1"),
        &net.path("c3.json"),
    );
    assert_exit(&denied, 4);
    assert_eq!(json_err(&denied)["error"]["code"], "NOT_ALLOWED");

    // Show: the public record; unknown (valid) and malformed identifiers.
    let shown = ok_json(run({
        let mut c = clerk();
        c.args(["licence", "show", &id]);
        c
    }));
    assert_eq!(shown["licence_id"], id.as_str());
    assert_eq!(shown["fields"].as_array().unwrap().len(), 9);
    let unknown = elicense_model::LicenceId::build("IDC", "PSB", "999999").unwrap();
    assert_exit(
        &run({
            let mut c = clerk();
            c.args(["licence", "show", unknown.as_str()]);
            c
        }),
        3,
    );
    assert_exit(
        &run({
            let mut c = clerk();
            c.args(["licence", "show", "IDC-PSB-1-X"]);
            c
        }),
        2,
    );

    // The holder creates a grant; the code comes out once, the secret never goes in inline.
    let secret = net.path("secret.txt");
    std::fs::write(&secret, "a holder secret of enough bytes\n").unwrap();
    let grants = net.path("grants");
    let presentation = net.path("presentation.json");
    let grant = ok_json(run({
        let mut c = holder();
        c.args([
            "grant",
            "create",
            "--grantee",
            "ServiceCentreMSP",
            "--matter",
            "SC-HOUSING-1",
            "--field",
            "name",
            "--field",
            "address",
        ])
        .arg("--credential")
        .arg(&cred)
        .arg("--secret")
        .arg(format!("file:{}", secret.display()))
        .arg("--grants-dir")
        .arg(&grants)
        .arg("--presentation-out")
        .arg(&presentation);
        c
    }));
    let grant_id = grant["grant_id"].as_str().unwrap().to_string();
    let code = grant["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    assert!(code.chars().all(|c| c.is_ascii_digit()));
    let inline = run({
        let mut c = holder();
        c.args([
            "grant",
            "create",
            "--grantee",
            "ServiceCentreMSP",
            "--matter",
            "M",
            "--secret",
            "my-secret-inline",
        ])
        .arg("--credential")
        .arg(&cred);
        c
    });
    assert_exit(&inline, 2);

    // The clerk: a wrong code is refused (6, WRONG_CODE); the right one verifies; again: spent.
    let verify = |code: &str, matter: &str| {
        let mut c = clerk();
        c.args([
            "verify",
            &grant_id,
            "--matter",
            matter,
            "--code",
            "env:HOLDER_CODE",
            "--presentation",
        ])
        .arg(&presentation)
        .env("HOLDER_CODE", code);
        c.output().unwrap()
    };
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let out = verify(wrong, "SC-HOUSING-1");
    assert_exit(&out, 6);
    assert_eq!(json_err(&out)["error"]["code"], "WRONG_CODE");
    let out = verify(&code, "SC-OTHER");
    assert_exit(&out, 6);
    assert_eq!(json_err(&out)["error"]["code"], "WRONG_MATTER");
    let v = ok_json(verify(&code, "SC-HOUSING-1"));
    assert_eq!(v["verified"], true);
    assert_eq!(v["matched"], serde_json::json!(["address", "name"]));
    let out = verify(&code, "SC-HOUSING-1");
    assert_exit(&out, 6);
    assert_eq!(json_err(&out)["error"]["code"], "GRANT_SPENT");

    // Retrieve after the verify: the values come from the issuer's library.
    let r = ok_json(run({
        let mut c = clerk();
        c.args(["retrieve", &grant_id]);
        c
    }));
    assert_eq!(r["fields"]["name"], "李四");
    assert_exit(
        &run({
            let mut c = clerk();
            c.args(["retrieve", "not-a-grant-id"]);
            c
        }),
        2,
    );

    // A second grant, withdrawn; grant list shows both with their ledger status.
    let g2 = ok_json(run({
        let mut c = holder();
        c.args([
            "grant",
            "create",
            "--grantee",
            "ServiceCentreMSP",
            "--matter",
            "SC-HOUSING-2",
            "--field",
            "name",
            "--secret",
            "env:HOLDER_SECRET",
        ])
        .env("HOLDER_SECRET", "a holder secret of enough bytes")
        .arg("--credential")
        .arg(&cred)
        .arg("--grants-dir")
        .arg(&grants);
        c
    }));
    let g2_id = g2["grant_id"].as_str().unwrap();
    let w = ok_json(run({
        let mut c = holder();
        c.args(["grant", "withdraw", g2_id]);
        c
    }));
    assert_eq!(w["status"], "withdrawn");
    let listed = ok_json(run({
        let mut c = holder();
        c.args(["grant", "list", "--grants-dir"]).arg(&grants);
        c
    }));
    let status_of = |gid: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["grant_id"] == gid)
            .map(|g| g["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of(&grant_id).as_deref(), Some("spent"));
    assert_eq!(status_of(g2_id).as_deref(), Some("withdrawn"));
    // Someone else's key cannot withdraw: the contract checks the holder signature before the
    // grant's state, so even this spent grant is refused by BAD_SIGNATURE (denied, 4).
    let other_key = dir.join("msp/ServiceCentre/holder2");
    let out = run({
        let mut c = net.cmd("ServiceCentre/holder2");
        c.args(ch).args(["grant", "withdraw", &grant_id]);
        c
    });
    assert!(other_key.is_dir());
    assert_exit(&out, 4);
    assert_eq!(json_err(&out)["error"]["code"], "BAD_SIGNATURE");
    // The holder's own key on the spent grant: the grant rule refuses (6).
    let out = run({
        let mut c = holder();
        c.args(["grant", "withdraw", &grant_id]);
        c
    });
    assert_exit(&out, 6);
    assert_eq!(json_err(&out)["error"]["code"], "GRANT_SPENT");

    // Usage: the holder's own trail; every use for the regulator's auditor; a clerk may not audit.
    let trail = ok_json(run({
        let mut c = holder();
        c.args(["usage", "--credential"]).arg(&cred);
        c
    }));
    let mut results: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    results.sort_unstable();
    assert_eq!(results, ["verified", "wrong_code"], "{trail}");
    let audit = ok_json(run({
        let mut c = net.cmd("Regulator/auditor1");
        c.args(ch).args(["usage", "--all", "--licence", &id]);
        c
    }));
    assert_eq!(audit.as_array().unwrap().len(), 2);
    let out = run({
        let mut c = clerk();
        c.args(["usage", "--all"]);
        c
    });
    assert_exit(&out, 4);

    // Status changes and history; a revoked licence cannot be reinstated.
    for (verb, status) in [
        ("suspend", "suspended"),
        ("reinstate", "active"),
        ("revoke", "revoked"),
    ] {
        let s = ok_json(run({
            let mut c = issuer();
            c.args(["licence", verb, &id, "--reason", "test"]);
            c
        }));
        assert_eq!(s["status"], status);
    }
    let out = run({
        let mut c = issuer();
        c.args(["licence", "reinstate", &id, "--reason", "test"]);
        c
    });
    assert_exit(&out, 6);
    assert_eq!(json_err(&out)["error"]["code"], "INVALID_TRANSITION");
    let history = ok_json(run({
        let mut c = issuer();
        c.args(["licence", "history", &id]);
        c
    }));
    assert_eq!(history.as_array().unwrap().len(), 4);

    // Blocks: the genesis block, a block with the issue transaction, and one that does not exist.
    let b0 = ok_json(run({
        let mut c = clerk();
        c.args(["block", "0"]);
        c
    }));
    assert_eq!(b0["number"], 0);
    let b = ok_json(run({
        let mut c = clerk();
        c.args(["block", &issued["block"].to_string()]);
        c
    }));
    let tx = b["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tx_id"] == issued["tx_id"])
        .expect("the issue transaction is in its block")
        .clone();
    assert_eq!(tx["function"], "Issue");
    assert_eq!(tx["validation"], "VALID");
    assert!(!b.to_string().contains("李四"), "no value in the block");
    assert_exit(
        &run({
            let mut c = clerk();
            c.args(["block", "100000"]);
            c
        }),
        3,
    );

    // Deploy another CCaaS chaincode definition onto the running devnet.
    let port = free_port();
    let d = ok_json(run({
        let mut c = elicense();
        c.args([
            "-o",
            "json",
            "--channel",
            "police-service",
            "devnet",
            "deploy",
            "--name",
            "othercc",
            "--address",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir);
        c
    }));
    assert!(d["package_id"]
        .as_str()
        .unwrap()
        .starts_with("othercc_1.0:"));
    assert_eq!(d["channels"], serde_json::json!(["police-service"]));
    let out = run({
        let mut c = elicense();
        c.args([
            "-o",
            "json",
            "--channel",
            "no-such-channel",
            "devnet",
            "deploy",
            "--name",
            "x",
            "--address",
            "127.0.0.1:1",
            "--data-dir",
        ])
        .arg(dir);
        c
    });
    assert_exit(&out, 3);

    // The organisation's CA from its connection profile: the registrar enrolls, registers a
    // holder with a role attribute, and the holder enrolls with the secret from a file.
    let profile = dir.join("profiles/ServiceCentre.json");
    let ca = |args: &[&str]| {
        let mut c = elicense();
        c.args(["-o", "json", "--profile"]).arg(&profile).args(args);
        c.env("CA_BOOTSTRAP", "adminpw").output().unwrap()
    };
    let registrar = net.path("registrar");
    let reg = registrar.display().to_string();
    ok_json(ca(&[
        "ca",
        "enroll",
        "--id",
        "admin",
        "--secret",
        "env:CA_BOOTSTRAP",
        "--msp-dir",
        &reg,
    ]));
    let secret_file = net.path("citizen.secret").display().to_string();
    ok_json(ca(&[
        "--identity",
        &reg,
        "ca",
        "register",
        "--id",
        "citizen-7",
        "--attr",
        "elicense.role=holder:ecert",
        "--secret-out",
        &secret_file,
    ]));
    let citizen = net.path("citizen").display().to_string();
    let enrolled = ok_json(ca(&[
        "ca",
        "enroll",
        "--id",
        "citizen-7",
        "--secret",
        &format!("file:{secret_file}"),
        "--msp-dir",
        &citizen,
    ]));
    assert_eq!(enrolled["attributes"]["elicense.role"], "holder");
    assert_eq!(
        enrolled["msp_id"], "ServiceCentreMSP",
        "from the profile's client organisation"
    );

    // Down, then status says nothing runs (3).
    let down = ok_json(run({
        let mut c = elicense();
        c.args(["-o", "json", "devnet", "down", "--data-dir"])
            .arg(dir);
        c
    }));
    assert_eq!(down["stopped"], true);
    assert_exit(
        &run({
            let mut c = elicense();
            c.args(["-o", "json", "devnet", "status", "--data-dir"])
                .arg(dir);
            c
        }),
        3,
    );
}
