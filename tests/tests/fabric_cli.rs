//! The built `elicense` binary, unchanged, against a real Hyperledger Fabric network: the reduced
//! network of `network/fabric/network.sh` (PublicSecurity, ServiceCentre and the Regulator on
//! `police-service`, three Raft orderers, Fabric CAs) with `elicense-chaincode` deployed as
//! chaincode-as-a-service, and every command given only that network's connection profile
//! (`<data>/profiles/<Org>.json`) and an MSP directory from the Fabric CA enrolments
//! (`<data>/msp/<Org>/<user>/`):
//!
//! catalogue init (regulator admin) → catalogue list → licence issue (police issuer) → licence
//! show → grant create (holder, secret from a file) → verify (service-centre clerk, code from the
//! environment) → the same verify again, refused with exit 6 → usage (holder) → licence revoke →
//! the official Node Gateway client suspends and reinstates it → licence history → block N →
//! events from block 0.
//!
//! Needs Fabric's binaries (`FABRIC_BIN` or `../shared/fabric`); skips without them, fails in CI.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use elicense_tests::fabric_net::{text, workspace_binary, FabricNetwork};
use elicense_tests::{repo_root, skip_or_fail};

const CHANNEL: &str = "police-service";
const CHAINCODE: &str = "elicense";
const MATTER: &str = "SC-CLI-0001";
const VALUES: &str = r#"{"name":"王小明","sex":"男","ethnicity":"汉","birth_date":"1991-04-05","address":"杭州市西湖区文三路90号","id_number":"330106199104051234","issuing_authority":"杭州市公安局西湖分局","valid_from":"2022-01-01","valid_until":"2042-01-01"}"#;

/// Runs the CLI as one user of one organisation of the real network.
struct Cli<'a> {
    bin: &'a Path,
    net: &'a FabricNetwork,
}

impl Cli<'_> {
    /// A command for `user` of `org`: that org's generated profile, the user's MSP directory,
    /// the channel and chaincode named, JSON output; no `ELICENSE_*` setting leaks in.
    fn as_user(&self, org: &str, user: &str) -> Command {
        let data = self.net.data_dir();
        let mut cmd = Command::new(self.bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("ELICENSE_") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(data)
            .arg("--profile")
            .arg(data.join(format!("profiles/{org}.json")))
            .arg("--identity")
            .arg(data.join(format!("msp/{org}/{user}")))
            .args(["--channel", CHANNEL, "--chaincode", CHAINCODE, "-o", "json"]);
        cmd
    }
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("running elicense")
}

/// Runs `licence-client.js` (the official Node Gateway client) against licence `id` and returns
/// its JSON report; `None` (skip, or failure in CI) without Node and its npm packages.
fn node_licence_client(data: &Path, id: &str) -> Option<serde_json::Value> {
    let dir = repo_root().join("network/fabric/testdata/kv-chaincode");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok
        || !dir
            .join("node_modules/@hyperledger/fabric-gateway")
            .is_dir()
    {
        skip_or_fail("node and `npm ci` in network/fabric/testdata/kv-chaincode");
        return None;
    }
    let out = Command::new("node")
        .arg(dir.join("licence-client.js"))
        .arg(data)
        .args([CHANNEL, id])
        .output()
        .expect("running node licence-client.js");
    assert!(out.status.success(), "licence-client.js: {}", text(&out));
    Some(serde_json::from_slice(&out.stdout).expect("licence-client.js prints JSON"))
}

/// Asserts success and returns standard output as JSON.
fn ok_json(what: &str, out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        text(out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}):\n{}", text(out)))
}

/// The CLI's JSON error document (last JSON line of standard error).
fn json_err(out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON error on stderr:\n{}", text(out)));
    serde_json::from_str(line).expect("error JSON")
}

/// Standard output as JSON lines.
fn json_lines(what: &str, out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        text(out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: line {l}: {e}")))
        .collect()
}

#[test]
fn cli_unchanged_against_a_real_fabric_network() {
    let started = Instant::now();
    let bin = workspace_binary("elicense-cli", "elicense");
    let Some(net) = FabricNetwork::up_with_elicense(CHANNEL, "cli") else {
        return;
    };
    let t0 = Instant::now();
    story(&Cli {
        bin: &bin,
        net: &net,
    });
    eprintln!("CLI story on real Fabric {:.1?}", t0.elapsed());
    drop(net);
    eprintln!("whole test {:.1?}", started.elapsed());
}

fn story(cli: &Cli) {
    let data = cli.net.data_dir();
    let work = data.join("cli-work");
    std::fs::create_dir_all(&work).expect("work dir");
    let regulator = || cli.as_user("Regulator", "Admin");
    let issuer = || cli.as_user("PublicSecurity", "issuer1");
    let holder = || cli.as_user("ServiceCentre", "holder1");
    let clerk = || cli.as_user("ServiceCentre", "clerk1");

    // ---- the regulator's admin seeds the catalogue; any member lists it
    ok_json(
        "catalogue init",
        &run({
            let mut c = regulator();
            c.args(["catalogue", "init", "--file"])
                .arg(repo_root().join("fixtures/catalogue.json"));
            c
        }),
    );
    let list = ok_json(
        "catalogue list",
        &run({
            let mut c = clerk();
            c.args(["catalogue", "list"]);
            c
        }),
    );
    let id_card = list
        .as_array()
        .expect("catalogue list is an array")
        .iter()
        .find(|t| t["code"] == "ID_CARD")
        .unwrap_or_else(|| panic!("ID_CARD in the catalogue: {list}"));
    assert_eq!(
        id_card["issuers"][0]["msp_id"], "PublicSecurityMSP",
        "{id_card}"
    );

    // ---- the police issuer issues an ID card to the holder (key from the holder's certificate)
    let values = work.join("values.json");
    std::fs::write(&values, VALUES).expect("values file");
    let credential = work.join("credential.json");
    let holder_cert = data.join("msp/ServiceCentre/holder1/signcerts/cert.pem");
    assert!(holder_cert.is_file(), "{}", holder_cert.display());
    let serial = format!(
        "{:09}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            % 1_000_000_000
    );
    let issued = ok_json(
        "licence issue",
        &run({
            let mut c = issuer();
            c.args(["licence", "issue", "--type", "ID_CARD", "--serial", &serial])
                .arg("--values")
                .arg(&values)
                .arg("--holder-key")
                .arg(&holder_cert)
                .arg("--credential-out")
                .arg(&credential);
            c
        }),
    );
    let id = issued["licence_id"]
        .as_str()
        .unwrap_or_else(|| panic!("licence_id in {issued}"))
        .to_owned();
    assert!(id.starts_with(&format!("IDC-PSB-{serial}-")), "{id}");
    assert_eq!(issued["status"], "active");
    assert!(!issued.to_string().contains("王小明"), "no value printed");
    assert!(
        std::fs::read_to_string(&credential)
            .expect("credential written")
            .contains("王小明"),
        "the holder's credential holds the values"
    );

    // ---- any member reads the public record
    let shown = ok_json(
        "licence show",
        &run({
            let mut c = clerk();
            c.args(["licence", "show", &id]);
            c
        }),
    );
    assert_eq!(shown["licence_id"], id.as_str());
    assert_eq!(shown["issuer_msp"], "PublicSecurityMSP", "{shown}");
    assert_eq!(shown["fields"].as_array().expect("fields").len(), 9);
    assert!(!shown.to_string().contains("王小明"));

    // ---- the holder grants the service centre one use; the secret comes from a file
    let secret = work.join("holder.secret");
    std::fs::write(&secret, "the holder's secret, long enough\n").expect("secret file");
    let presentation = work.join("presentation.json");
    let grant = ok_json(
        "grant create",
        &run({
            let mut c = holder();
            c.args([
                "grant",
                "create",
                "--grantee",
                "ServiceCentreMSP",
                "--matter",
                MATTER,
                "--field",
                "name",
                "--field",
                "address",
            ])
            .arg("--credential")
            .arg(&credential)
            .arg("--secret")
            .arg(format!("file:{}", secret.display()))
            .arg("--grants-dir")
            .arg(work.join("grants"))
            .arg("--presentation-out")
            .arg(&presentation);
            c
        }),
    );
    let grant_id = grant["grant_id"]
        .as_str()
        .unwrap_or_else(|| panic!("grant_id in {grant}"))
        .to_owned();
    let code = grant["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 8, "{grant}");
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{grant}");

    // ---- the clerk verifies at the window (code from the environment), then again: spent
    let verify = || {
        let mut c = clerk();
        c.args([
            "verify",
            &grant_id,
            "--matter",
            MATTER,
            "--code",
            "env:HOLDER_CODE",
        ])
        .arg("--presentation")
        .arg(&presentation)
        .env("HOLDER_CODE", &code);
        run(c)
    };
    let verified = ok_json("verify", &verify());
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(
        verified["matched"],
        serde_json::json!(["address", "name"]),
        "{verified}"
    );
    let again = verify();
    assert_eq!(
        again.status.code(),
        Some(6),
        "a second verify is refused by the rule:\n{}",
        text(&again)
    );
    let err = json_err(&again);
    assert_eq!(err["error"]["code"], "GRANT_SPENT", "{err}");
    assert_eq!(err["error"]["class"], "rule_failed", "{err}");
    assert_eq!(err["error"]["exit_code"], 6, "{err}");

    // ---- the holder's usage trail: the one verified use
    let trail = ok_json(
        "usage",
        &run({
            let mut c = holder();
            c.arg("usage").arg("--credential").arg(&credential);
            c
        }),
    );
    let trail = trail.as_array().expect("usage is an array");
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(trail[0]["result"], "verified", "{trail:?}");
    assert_eq!(trail[0]["grant_id"], grant_id.as_str(), "{trail:?}");
    assert_eq!(trail[0]["grantee_msp"], "ServiceCentreMSP", "{trail:?}");

    // ---- the official Node Gateway client on the same network and licence: the issuer
    // suspends and reinstates, another department's clerk reads it and is refused a suspension;
    // the CLI then sees those transactions in the licence's history
    let node = node_licence_client(data, &id);
    let node_ran = node.is_some();
    if let Some(node) = node {
        assert_eq!(node["suspend"]["status"], "VALID", "{node}");
        assert_eq!(node["suspend"]["result"]["status"], "suspended", "{node}");
        assert_eq!(node["afterSuspend"], "suspended", "{node}");
        assert_eq!(node["reinstate"]["status"], "VALID", "{node}");
        assert_eq!(node["afterReinstate"], "active", "{node}");
        assert_eq!(node["issuerMsp"], "PublicSecurityMSP", "{node}");
        // endorsement refused by the chaincode: the gateway's ABORTED, with the peer's detail
        assert_eq!(node["clerkSuspend"]["name"], "EndorseError", "{node}");
        assert_eq!(node["clerkSuspend"]["code"], 10, "{node}");
        let detail = node["clerkSuspend"]["details"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            detail.contains("NOT_ALLOWED") && detail.contains("elicense.role=issuer"),
            "{node}"
        );
        let history = ok_json(
            "licence history",
            &run({
                let mut c = clerk();
                c.args(["licence", "history", &id]);
                c
            }),
        );
        let entries = history.as_array().expect("history is an array");
        let statuses: Vec<&str> = entries
            .iter()
            .map(|e| e["status"].as_str().unwrap_or("?"))
            .collect();
        // newest first, as Fabric's key history returns it
        assert_eq!(statuses, ["active", "suspended", "active"], "{history}");
        assert_eq!(entries[0]["tx_id"], node["reinstate"]["txId"], "{history}");
        assert_eq!(entries[0]["reason"], "check done", "{history}");
        assert_eq!(entries[1]["tx_id"], node["suspend"]["txId"], "{history}");
        assert_eq!(entries[2]["tx_id"], issued["tx_id"], "{history}");
    }

    // ---- the issuer revokes
    let revoked = ok_json(
        "licence revoke",
        &run({
            let mut c = issuer();
            c.args(["licence", "revoke", &id, "--reason", "reported stolen"]);
            c
        }),
    );
    assert_eq!(revoked["status"], "revoked", "{revoked}");

    // ---- the block holding the issue transaction, decoded: valid, and no value in it
    let block = ok_json(
        "block",
        &run({
            let mut c = clerk();
            c.args(["block", &issued["block"].to_string()]);
            c
        }),
    );
    assert_eq!(block["number"], issued["block"], "{block}");
    let tx = block["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .find(|t| t["tx_id"] == issued["tx_id"])
        .unwrap_or_else(|| panic!("the issue transaction in its block: {block}"));
    assert_eq!(tx["function"], "Issue", "{tx}");
    assert_eq!(tx["validation"], "VALID", "{tx}");
    assert!(
        !block.to_string().contains("王小明"),
        "no value in the block"
    );
    // A block beyond the height: the real peer's qscc refuses it with its own wording ("no such
    // block number [N] in index", where the devnet's Deliver fallback simply times out). The
    // command must fail and carry the peer's reason; the exit class it maps to is checked on
    // the devnet by cli/tests/licence_flow.rs.
    let missing = run({
        let mut c = clerk();
        c.args(["block", "100000"]);
        c
    });
    assert!(!missing.status.success(), "{}", text(&missing));
    let err = json_err(&missing);
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("block 100000") && message.contains("no such block number [100000]"),
        "{err}"
    );

    // ---- the chaincode's events from the first block: every event until the stream is idle,
    // then the same stream again ended by --count alone
    let all = json_lines(
        "events --idle",
        &run({
            let mut c = clerk();
            c.args(["events", "--from-block", "0", "--idle", "5"]);
            c
        }),
    );
    let names: Vec<&str> = all
        .iter()
        .map(|e| e["event"].as_str().expect("event name"))
        .collect();
    let story: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !n.starts_with("LicenceType"))
        .collect();
    let mut expected = vec!["LicenceIssued", "GrantAuthorized", "GrantVerified"];
    if node_ran {
        expected.extend(["LicenceSuspended", "LicenceReinstated"]);
    }
    expected.push("LicenceRevoked");
    assert_eq!(story, expected, "all events: {names:?}");
    let issued_event = all
        .iter()
        .find(|e| e["event"] == "LicenceIssued")
        .expect("issued event");
    assert_eq!(issued_event["tx_id"], issued["tx_id"]);
    assert_eq!(issued_event["block"], issued["block"]);
    assert_eq!(issued_event["chaincode"], CHAINCODE);
    let counted = json_lines(
        "events --count",
        &run({
            let mut c = clerk();
            c.args(["events", "--from-block", "0", "--count"])
                .arg(all.len().to_string());
            c
        }),
    );
    assert_eq!(counted, all, "--count stops after exactly that many events");
}
