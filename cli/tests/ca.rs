//! `elicense ca` against the real `fabric-ca-server` (v1.5) on a free 127.0.0.1 port: enroll the
//! bootstrap admin, register a clerk with a role attribute, enroll it, re-enroll it, revoke it,
//! and each documented failure's exit code.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

struct Ca {
    _guard: ChildGuard,
    url: String,
    tls: String,
}

fn start_ca(bin: &Path, home: &Path) -> Ca {
    let port = free_port();
    let log = std::fs::File::create(home.join("server.log")).unwrap();
    let child = Command::new(bin)
        .args([
            "start",
            "-b",
            "admin:adminpw",
            "--tls.enabled",
            "--csr.hosts",
            "127.0.0.1",
        ])
        .args(["--address", "127.0.0.1", "--port", &port.to_string()])
        .arg("-H")
        .arg(home)
        .env("FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting fabric-ca-server");
    let guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(home.join("tls-cert.pem").is_file()
        && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
    {
        assert!(
            Instant::now() < deadline,
            "fabric-ca-server did not start: {}",
            std::fs::read_to_string(home.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ca {
        _guard: guard,
        url: format!("https://127.0.0.1:{port}"),
        tls: home.join("ca-cert.pem").display().to_string(),
    }
}

impl Ca {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = elicense();
        c.args(["-o", "json"])
            .args(args)
            .args(["--ca-url", &self.url, "--ca-tls-cert", &self.tls]);
        c
    }
}

#[test]
fn ca_enroll_register_reenroll_revoke_against_real_fabric_ca() {
    let Some(bin) = fabric_binary("fabric-ca-server") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("server");
    std::fs::create_dir_all(&home).unwrap();
    let ca = start_ca(&bin, &home);
    let p = |name: &str| tmp.path().join(name).display().to_string();

    // The bootstrap admin enrolls with its secret from the environment.
    let out = ca
        .cmd(&[
            "ca",
            "enroll",
            "--id",
            "admin",
            "--secret",
            "env:CA_ADMIN_SECRET",
            "--msp-dir",
            &p("admin"),
        ])
        .env("CA_ADMIN_SECRET", "adminpw")
        .output()
        .unwrap();
    let admin = ok_json(out);
    assert_eq!(admin["enrollment_id"], "admin");
    assert_eq!(
        admin["msp_id"],
        serde_json::Value::Null,
        "no profile or --msp-id: unknown"
    );
    assert!(
        admin["subject"].as_str().unwrap().contains("CN=admin"),
        "{admin}"
    );
    let signing = fabric_client::msp::load_signing_identity("Org1MSP", p("admin"))
        .expect("the written MSP directory loads");
    assert_eq!(signing.identity().msp_id(), "Org1MSP");

    // An inline secret is refused before anything is sent: usage, exit 2.
    let out = ca
        .cmd(&[
            "ca",
            "enroll",
            "--id",
            "admin",
            "--secret",
            "adminpw",
            "--msp-dir",
            &p("x"),
        ])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(!tmp.path().join("x").exists());

    // A wrong secret is denied: exit 4, with the class in the JSON error.
    let out = ca
        .cmd(&[
            "ca",
            "enroll",
            "--id",
            "admin",
            "--secret",
            "-",
            "--msp-dir",
            &p("x"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"wrongpw\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_exit(&out, 4);
    assert_eq!(json_err(&out)["error"]["class"], "denied");

    // The admin registers a clerk with a role attribute; the secret goes to a private file.
    let admin_args = ["--identity", &p("admin"), "--msp-id", "Org1MSP"];
    let out = ca
        .cmd(&[
            "ca",
            "register",
            "--id",
            "clerk1",
            "--attr",
            "elicense.role=clerk:ecert",
            "--secret-out",
            &p("clerk1.secret"),
        ])
        .args(admin_args)
        .output()
        .unwrap();
    let reg = ok_json(out);
    assert_eq!(reg["enrollment_id"], "clerk1");
    assert!(
        reg.get("secret").is_none(),
        "the secret is not printed when --secret-out is given"
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(p("clerk1.secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret file is private");
    }

    // Registering the same ID again is a conflict: exit 5.
    let out = ca
        .cmd(&["ca", "register", "--id", "clerk1"])
        .args(admin_args)
        .output()
        .unwrap();
    assert_exit(&out, 5);

    // The clerk enrolls with the secret from the file; its certificate carries the role.
    let secret_src = format!("file:{}", p("clerk1.secret"));
    let clerk = ok_json(
        ca.cmd(&[
            "ca",
            "enroll",
            "--id",
            "clerk1",
            "--secret",
            &secret_src,
            "--msp-dir",
            &p("clerk1"),
        ])
        .output()
        .unwrap(),
    );
    assert_eq!(clerk["attributes"]["elicense.role"], "clerk", "{clerk}");

    // A clerk is no registrar: denied, exit 4.
    let out = ca
        .cmd(&["ca", "register", "--id", "someone"])
        .args(["--identity", &p("clerk1"), "--msp-id", "Org1MSP"])
        .output()
        .unwrap();
    assert_exit(&out, 4);

    // Re-enrollment replaces the certificate and key in the MSP directory.
    let again = ok_json(
        ca.cmd(&["ca", "reenroll"])
            .args(["--identity", &p("clerk1"), "--msp-id", "Org1MSP"])
            .output()
            .unwrap(),
    );
    assert_ne!(again["serial"], clerk["serial"]);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("clerk1/keystore"))
            .unwrap()
            .count(),
        1
    );
    let loaded =
        fabric_client::msp::load_signing_identity("Org1MSP", tmp.path().join("clerk1")).unwrap();
    let cert = fabric_common::identity::Certificate::from_pem(
        &std::fs::read(tmp.path().join("clerk1/signcerts/cert.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        hex::encode(cert.serial()),
        again["serial"].as_str().unwrap()
    );
    drop(loaded);

    // The admin revokes the clerk (with a CRL); the clerk's certificate no longer authenticates.
    let revoked = ok_json(
        ca.cmd(&[
            "ca",
            "revoke",
            "--id",
            "clerk1",
            "--reason",
            "keycompromise",
            "--crl-out",
            &p("crl.pem"),
        ])
        .args(admin_args)
        .output()
        .unwrap(),
    );
    assert!(
        revoked["revoked"].as_array().unwrap().len() >= 2,
        "{revoked}"
    );
    assert!(std::fs::metadata(p("crl.pem")).unwrap().len() > 0);
    let out = ca
        .cmd(&["ca", "reenroll"])
        .args(["--identity", &p("clerk1"), "--msp-id", "Org1MSP"])
        .output()
        .unwrap();
    assert_exit(&out, 4);

    // A wallet instead of an MSP directory: enroll into it by label, then act as that label.
    let wallet = p("wallet");
    let w = ok_json(
        ca.cmd(&[
            "ca",
            "enroll",
            "--id",
            "admin",
            "--secret",
            "env:CA_ADMIN_SECRET",
            "--wallet-label",
            "ca-admin",
        ])
        .args(["--wallet", &wallet, "--msp-id", "Org1MSP"])
        .env("CA_ADMIN_SECRET", "adminpw")
        .output()
        .unwrap(),
    );
    assert_eq!(w["wallet_label"], "ca-admin");
    assert_eq!(w["msp_id"], "Org1MSP");
    assert!(tmp.path().join("wallet/ca-admin.id").is_file());
    let reg = ok_json(
        ca.cmd(&["ca", "register", "--id", "clerk2"])
            .args(["--wallet", &wallet, "--identity", "ca-admin"])
            .output()
            .unwrap(),
    );
    assert!(
        reg["secret"].as_str().is_some_and(|s| !s.is_empty()),
        "a generated secret is printed without --secret-out"
    );
    let out = ca
        .cmd(&["ca", "register", "--id", "clerk3"])
        .args(["--wallet", &wallet, "--identity", "no-such-label"])
        .output()
        .unwrap();
    assert_exit(&out, 3);

    // An unreachable CA is a network failure: exit 7.
    let dead = format!("https://127.0.0.1:{}", free_port());
    let out = elicense()
        .args([
            "-o",
            "json",
            "ca",
            "enroll",
            "--id",
            "admin",
            "--secret",
            "env:CA_ADMIN_SECRET",
            "--msp-dir",
            &p("y"),
        ])
        .args(["--ca-url", &dead, "--ca-tls-cert", &ca.tls])
        .env("CA_ADMIN_SECRET", "adminpw")
        .output()
        .unwrap();
    assert_exit(&out, 7);
    assert_eq!(json_err(&out)["error"]["class"], "network");
}
