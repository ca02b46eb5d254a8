//! The `elicense-chaincode` executable as operators run it: the CCaaS server configured the way
//! Fabric's images and CCaaS samples configure it (environment or flags), and the `package`
//! subcommand that writes the install package and prints its package ID.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fabric_chaincode::testing::{TestPeer, TestPeerConfig, TestTx};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_elicense-chaincode");

/// A server process, killed when dropped (also when the test fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn clean_command() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "CHAINCODE_SERVER_ADDRESS",
        "CHAINCODE_ID",
        "CHAINCODE_TLS_DISABLED",
        "CHAINCODE_TLS_KEY",
        "CHAINCODE_TLS_CERT",
        "CHAINCODE_CLIENT_CA_CERT",
        "CORE_CHAINCODE_ADDRESS",
        "CORE_CHAINCODE_ID_NAME",
        "CORE_CHAINCODE_ID",
    ] {
        c.env_remove(var);
    }
    c.env("RUST_LOG", "warn").stdout(Stdio::null());
    c
}

/// Dials the server until it listens (the process needs a moment to bind).
async fn dial(port: u16, server: &mut Server) -> TestPeer {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the server exited: {status}");
        }
        match TestPeer::connect(
            &format!("http://127.0.0.1:{port}"),
            TestPeerConfig::default(),
        )
        .await
        {
            Ok(p) => return p,
            Err(e) if Instant::now() > deadline => panic!("server not reachable: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn metadata_contracts(peer: &TestPeer) -> serde_json::Value {
    let out = peer
        .invoke(TestTx::new(
            "police-service",
            ["org.hyperledger.fabric:GetMetadata"],
        ))
        .await
        .unwrap();
    let r = out.response().expect("COMPLETED");
    assert_eq!(r.status, 200, "{}", r.message);
    serde_json::from_slice::<serde_json::Value>(&r.payload).unwrap()["contracts"].clone()
}

#[tokio::test]
async fn serves_with_the_environment_fabric_images_set() {
    let port = free_port();
    let mut server = Server(
        clean_command()
            .env("CORE_CHAINCODE_ADDRESS", format!("127.0.0.1:{port}"))
            .env("CORE_CHAINCODE_ID_NAME", "elicense_1.0:cafe")
            .spawn()
            .unwrap(),
    );
    let peer = dial(port, &mut server).await;
    assert_eq!(peer.registered_name(), "elicense_1.0:cafe");
    assert!(metadata_contracts(&peer).await["ELicense"].is_object());
}

#[tokio::test]
async fn flags_win_over_the_environment() {
    let port = free_port();
    let mut server = Server(
        clean_command()
            .env("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:1")
            .env("CHAINCODE_ID", "from-env:1")
            .args(["--address", &format!("127.0.0.1:{port}")])
            .args(["--chaincode-id", "elicense_1.0:f1a9"])
            .spawn()
            .unwrap(),
    );
    let peer = dial(port, &mut server).await;
    assert_eq!(peer.registered_name(), "elicense_1.0:f1a9");
}

#[test]
fn missing_or_broken_configuration_is_reported() {
    let out = clean_command()
        .env("CHAINCODE_ID", "elicense_1.0:x")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CHAINCODE_SERVER_ADDRESS"), "{err}");

    let out = clean_command()
        .env("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:0")
        .env("CHAINCODE_ID", "elicense_1.0:x")
        .env("CHAINCODE_TLS_KEY", "/nonexistent/server.key")
        .env("CHAINCODE_TLS_CERT", "/nonexistent/server.crt")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/server.crt"), "{err}");
}

#[test]
fn package_subcommand_writes_a_ccaas_package_and_prints_its_id() {
    let dir = tempfile_dir();
    let out_file = dir.join("elicense.tar.gz");
    let out = clean_command()
        .stdout(Stdio::piped())
        .args(["package", "--label", "elicense_1.0"])
        .args(["--address", "cc.police.elicense.gov:9999"])
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let bytes = std::fs::read(&out_file).unwrap();
    // Fabric's package ID: label ":" hex(SHA-256(package file)).
    assert_eq!(
        printed.trim(),
        format!("elicense_1.0:{:x}", Sha256::digest(&bytes))
    );
    let mut files = std::collections::BTreeMap::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    let meta: serde_json::Value = serde_json::from_slice(&files["metadata.json"]).unwrap();
    assert_eq!(meta["type"], "ccaas");
    assert_eq!(meta["label"], "elicense_1.0");
    let mut code = tar::Archive::new(flate2::read::GzDecoder::new(
        files["code.tar.gz"].as_slice(),
    ));
    let mut conn = None;
    for entry in code.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("connection.json") {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            conn = Some(serde_json::from_slice::<serde_json::Value>(&data).unwrap());
        }
    }
    let conn = conn.expect("connection.json in code.tar.gz");
    assert_eq!(conn["address"], "cc.police.elicense.gov:9999");
    assert_eq!(conn["tls_required"], false);

    // Mutual TLS needs the client key with the client certificate.
    let out = clean_command()
        .args(["package", "--label", "l", "--address", "a:1"])
        .args(["--tls-root-cert", "ca.pem", "--client-cert", "c.pem"])
        .arg("--out")
        .arg(dir.join("x.tar.gz"))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--client-key"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "elicense-bin-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_server_cleanly_with_a_peer_connected() {
    let port = free_port();
    let mut server = Server(
        clean_command()
            .env("CHAINCODE_SERVER_ADDRESS", format!("127.0.0.1:{port}"))
            .env("CHAINCODE_ID", "elicense_1.0:7e57")
            .spawn()
            .unwrap(),
    );
    let peer = dial(port, &mut server).await;
    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    // The connected peer's stream is closed and the process exits with success.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    assert!(peer
        .invoke(TestTx::new("police-service", ["ListLicenceTypes"]))
        .await
        .is_err());
}
