//! Failure paths of the built `elicense` against a devnet it started itself: each failure exits
//! with its documented code (see `cli/src/exit.rs`), human errors name the rule and a hint, `-q`
//! and `-v` change only what goes to standard error, and a network that cannot be reached is
//! exit 7.

mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::*;

const VALUES: &str = r#"{"name":"王五","sex":"男","ethnicity":"汉","birth_date":"1985-02-03","address":"上海市黄浦区人民大道200号","id_number":"310101198502031234","issuing_authority":"上海市公安局","valid_from":"2021-01-01","valid_until":"2041-01-01"}"#;
const CH: [&str; 2] = ["--channel", "police-service"];

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

/// `cmd` with `args`, run.
fn with(mut c: Command, args: &[&str]) -> Output {
    c.args(args);
    run(c)
}

/// The contract rule code of a JSON error on standard error.
fn code(out: &Output) -> String {
    json_err(out)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn issue(net: &TestDevnet, serial: &str, credential: &Path) -> serde_json::Value {
    let holder_cert = net
        .dir
        .path()
        .join("msp/ServiceCentre/holder1/signcerts/cert.pem");
    let mut c = net.cmd("PublicSecurity/issuer1");
    c.args(CH)
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
        .arg(credential)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(VALUES.as_bytes())
        .unwrap();
    ok_json(child.wait_with_output().unwrap())
}

#[test]
fn failure_paths_exit_with_their_documented_codes() {
    let net = TestDevnet::start();
    let dir = net.dir.path();
    let on_channel = |who: &str| {
        let mut c = net.cmd(who);
        c.args(CH);
        c
    };

    // catalogue list without an identity: usage (2), the hint says what to pass.
    let mut c = elicense();
    c.args(["-o", "json", "--devnet"]).arg(dir).args(CH);
    let out = with(c, &["catalogue", "list"]);
    assert_exit(&out, 2);
    // catalogue list on a channel no peer serves: not found (3), the hint names --channel.
    let mut c = net.cmd("ServiceCentre/clerk1");
    c.args(["--channel", "no-such-channel"]);
    let out = with(c, &["catalogue", "list"]);
    assert_exit(&out, 3);
    let err = json_err(&out);
    assert_eq!(err["error"]["class"], "not_found");
    assert!(
        err["error"]["hint"].as_str().unwrap().contains("--channel"),
        "{err}"
    );

    let credential = net.path("cred.json");
    let issued = issue(&net, "000000501", &credential);
    let id = issued["licence_id"].as_str().unwrap().to_string();
    let unknown = elicense_model::LicenceId::build("IDC", "PSB", "000000599").unwrap();

    // History of a licence that was never issued: not found (3).
    let out = with(
        on_channel("PublicSecurity/issuer1"),
        &["licence", "history", unknown.as_str()],
    );
    assert_exit(&out, 3);
    assert_eq!(code(&out), "NOT_FOUND");

    // Status changes by a clerk (not an issuer): denied (4) by the contract's NOT_ALLOWED rule;
    // of an unknown licence by the issuer: not found (3).
    for verb in ["suspend", "revoke"] {
        let out = with(
            on_channel("ServiceCentre/clerk1"),
            &["licence", verb, &id, "--reason", "not mine"],
        );
        assert_exit(&out, 4);
        assert_eq!(code(&out), "NOT_ALLOWED", "{verb}");
        let out = with(
            on_channel("PublicSecurity/issuer1"),
            &["licence", verb, unknown.as_str(), "--reason", "x"],
        );
        assert_exit(&out, 3);
        assert_eq!(code(&out), "NOT_FOUND", "{verb}");
    }
    let shown = ok_json(with(
        on_channel("ServiceCentre/clerk1"),
        &["licence", "show", &id],
    ));
    assert_eq!(
        shown["status"], "active",
        "the refused changes changed nothing"
    );

    // A human error (table output) names the rule that failed, then a hint line.
    let mut c = elicense();
    c.args(["-o", "table", "--devnet"])
        .arg(dir)
        .args(["--identity", "PublicSecurity/issuer1"])
        .args(CH);
    let out = with(c, &["licence", "reinstate", &id, "--reason", "x"]);
    assert_exit(&out, 6);
    assert!(out.stdout.is_empty());
    let text = String::from_utf8(out.stderr.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("error: "), "{text}");
    assert!(
        lines[0].contains("INVALID_TRANSITION refused"),
        "names the rule: {text}"
    );
    assert!(lines[0].contains(&id), "{text}");
    assert!(lines[1].starts_with("  hint: "), "{text}");
    assert!(lines[1].contains("suspended"), "{text}");

    // -v logs on standard error (the identity, channel and peers used); standard output still
    // holds only the result. Without -v nothing goes to standard error.
    let profile: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("profiles/ServiceCentre.json")).unwrap(),
    )
    .unwrap();
    let own_peer = profile["organizations"]["ServiceCentre"]["peers"][0]
        .as_str()
        .unwrap();
    let peer_port = profile["peers"][own_peer]["url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let mut c = on_channel("ServiceCentre/clerk1");
    c.arg("-v");
    let out = with(c, &["licence", "show", &id]);
    assert_eq!(json(&out)["licence_id"], id.as_str());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("INFO"), "{log}");
    assert!(log.contains("connecting to the gateway"), "{log}");
    assert!(log.contains("ServiceCentreMSP"), "{log}");
    assert!(log.contains(&format!("127.0.0.1:{peer_port}")), "{log}");
    let out = with(
        on_channel("ServiceCentre/clerk1"),
        &["licence", "show", &id],
    );
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // -q: only the result on standard output, nothing on standard error; without it the table
    // of `devnet status` comes with a summary and a next step on standard error.
    let status = |quiet: bool| {
        let mut c = elicense();
        c.args(["-o", "table"]);
        if quiet {
            c.arg("-q");
        }
        c.args(["devnet", "status", "--data-dir"]).arg(dir);
        run(c)
    };
    let loud = status(false);
    assert!(loud.status.success());
    assert!(String::from_utf8_lossy(&loud.stderr).contains("try: elicense"));
    let quiet = status(true);
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    assert_eq!(quiet.stdout, loud.stdout, "the result itself is the same");
    // -q with a failure: the error alone.
    let mut c = on_channel("PublicSecurity/issuer1");
    c.arg("-q");
    let out = with(c, &["licence", "history", unknown.as_str()]);
    assert_exit(&out, 3);
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);

    // grant list: a grants directory holding a file that is not a grant is a usage error (2)
    // naming the file.
    let grants = net.path("grants");
    let holder = || on_channel("ServiceCentre/holder1");
    let secret = net.path("secret.txt");
    std::fs::write(&secret, "a holder secret of enough bytes\n").unwrap();
    let mut c = holder();
    c.args([
        "grant",
        "create",
        "--grantee",
        "ServiceCentreMSP",
        "--matter",
        "SC-1",
        "--field",
        "name",
    ])
    .arg("--credential")
    .arg(&credential)
    .arg("--secret")
    .arg(format!("file:{}", secret.display()))
    .arg("--grants-dir")
    .arg(&grants);
    let grant = ok_json(run(c));
    let grant_id = grant["grant_id"].as_str().unwrap().to_string();
    let broken = net.path("broken-grants");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("junk.json"), "{\"not\": \"a grant\"}").unwrap();
    let mut c = holder();
    c.args(["grant", "list", "--grants-dir"]).arg(&broken);
    let out = run(c);
    assert_exit(&out, 2);
    assert!(json_err(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("junk.json"));

    // Withdrawing it with another holder's key: the holder signature does not verify, the
    // contract's BAD_SIGNATURE rule, denied (4).
    let out = with(
        on_channel("ServiceCentre/holder2"),
        &["grant", "withdraw", &grant_id],
    );
    assert_exit(&out, 4);
    assert_eq!(code(&out), "BAD_SIGNATURE");

    // ca revoke: a clerk lacks hf.Revoker (denied, 4); the registrar naming an identity the CA
    // does not know: not found (3).
    let out = with(
        net.cmd("ServiceCentre/clerk1"),
        &["ca", "revoke", "--id", "holder2"],
    );
    assert_exit(&out, 4);
    assert_eq!(json_err(&out)["error"]["class"], "denied");
    let profile_path = dir.join("profiles/ServiceCentre.json");
    let registrar = net.path("registrar").display().to_string();
    let ca = |args: &[&str]| {
        let mut c = elicense();
        c.args(["-o", "json", "--profile"])
            .arg(&profile_path)
            .args(args);
        c.env("CA_BOOTSTRAP", "adminpw").output().unwrap()
    };
    ok_json(ca(&[
        "ca",
        "enroll",
        "--id",
        "admin",
        "--secret",
        "env:CA_BOOTSTRAP",
        "--msp-dir",
        &registrar,
    ]));
    let out = ca(&[
        "--identity",
        &registrar,
        "ca",
        "revoke",
        "--id",
        "nobody-here",
    ]);
    assert_exit(&out, 3);
    assert!(json_err(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nobody-here"));

    // A profile whose peers cannot be reached: network (7), for a gateway-backed command.
    let mut dead = profile.clone();
    let port = free_port();
    for (_, peer) in dead["peers"].as_object_mut().unwrap() {
        peer["url"] = serde_json::json!(format!("grpcs://127.0.0.1:{port}"));
    }
    let dead_profile = net.path("dead.json");
    std::fs::write(&dead_profile, dead.to_string()).unwrap();
    let mut c = elicense();
    c.args(["-o", "json", "--profile"])
        .arg(&dead_profile)
        .arg("--identity")
        .arg(dir.join("msp/ServiceCentre/clerk1"))
        .args(CH);
    let out = with(c, &["licence", "show", &id]);
    assert_exit(&out, 7);
    let err = json_err(&out);
    assert_eq!(err["error"]["class"], "network");
    assert!(
        err["error"]["hint"].as_str().unwrap().contains("--profile"),
        "{err}"
    );

    // The devnet stopped: `licence show` and `grant list` (which asks the ledger for each
    // saved grant's status) are network failures (7).
    ok_json(run({
        let mut c = elicense();
        c.args(["-o", "json", "devnet", "down", "--data-dir"])
            .arg(dir);
        c
    }));
    let out = with(
        on_channel("ServiceCentre/clerk1"),
        &["licence", "show", &id],
    );
    assert_exit(&out, 7);
    assert_eq!(json_err(&out)["error"]["class"], "network");
    let mut c = holder();
    c.args(["grant", "list", "--grants-dir"]).arg(&grants);
    let out = run(c);
    assert_exit(&out, 7);
}
