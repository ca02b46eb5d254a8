//! Shared by the interop tests (included with `#[path]`): a two-organisation topology, the Node
//! judges in `tests/interop` (the official Fabric npm packages, pinned by its lockfile), child
//! processes that are always killed, and free ports.
#![allow(dead_code, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fabric_devnet::devnet::DevnetSummary;
use fabric_devnet::topology::Topology;

/// The channel of [`topology`].
pub const CH: &str = "licensing";

/// Two organisations on one channel, plus the orderer organisation; quick to start.
pub fn topology() -> Topology {
    Topology::parse(TOPOLOGY).expect("the interop topology is valid")
}

/// The text of [`topology`] (a topology file).
pub const TOPOLOGY: &str = r#"
name = "interop"

[orderer]
org = "OrdererOrg"
msp_id = "OrdererMSP"
domain = "orderer.interop.test"
consenters = 1

[orderer.batch]
max_message_count = 10
absolute_max_bytes = 10485760
preferred_max_bytes = 2097152
batch_timeout_ms = 100

[roles]
attribute = "elicense.role"

[[organizations]]
name = "Police"
msp_id = "PoliceMSP"
domain = "police.interop.test"
peers = 1
users = { issuer1 = "issuer", clerk1 = "clerk" }

[[organizations]]
name = "Service"
msp_id = "ServiceMSP"
domain = "service.interop.test"
peers = 1
users = { clerk1 = "clerk", holder1 = "holder" }

[[channels]]
name = "licensing"
members = ["Police", "Service"]

[chaincode]
name = "elicense"
version = "1.0"
endorsement_policy = "ANY_MEMBER_PEER"
"#;

/// `tests/interop` at the workspace root.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// True when Node and the npm package `package` (in `tests/interop/node_modules`) are there;
/// otherwise prints why the test skips, or fails under CI, where every judge must run.
pub fn node_ready(package: &str) -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node && interop_dir().join("node_modules").join(package).is_dir() {
        return true;
    }
    let what = format!("node and {package} (cd tests/interop && npm ci)");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("required in CI but missing: {what}");
    }
    eprintln!("SKIPPED: {what}");
    false
}

/// A TCP port on 127.0.0.1 that was free when asked.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `node <script> <json>` in `tests/interop` (killed if it outlives `limit` or the test),
/// and returns the JSON it prints last on stdout; panics with its stderr when it fails.
pub async fn run_node(
    script: &str,
    input: &serde_json::Value,
    limit: Duration,
) -> serde_json::Value {
    let child = tokio::process::Command::new("node")
        .arg(script)
        .arg(input.to_string())
        .current_dir(interop_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("node {script} did not finish within {limit:?}"))
        .expect("waiting for node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {script} failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("node {script} printed no JSON:\n{stdout}\n{stderr}"));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("node {script} output {last}: {e}"))
}

/// A child process killed (SIGKILL) and reaped when dropped, even on panic.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a Node client needs to reach an organisation's peer as `user`: the connection profile
/// and MSP directory the devnet wrote.
pub fn client_input(summary: &DevnetSummary, org: &str, user: &str) -> serde_json::Value {
    let peer = summary.peers.iter().find(|p| p.org == org).expect("peer");
    serde_json::json!({
        "profile": summary.profiles[org],
        "mspDir": summary.msp[org][user],
        "mspId": peer.msp_id,
    })
}

/// A Rust Gateway client (fabric-client) for `user` of `org`, over TLS to the org's peer.
pub fn gateway(summary: &DevnetSummary, org: &str, user: &str) -> fabric_client::gateway::Gateway {
    use fabric_client::gateway::{
        Connection, ConnectionOptions, Endpoint, Gateway, GatewayOptions,
    };
    let peer = summary.peers.iter().find(|p| p.org == org).expect("peer");
    let signing =
        fabric_client::msp::load_signing_identity(&peer.msp_id, &summary.msp[org][user]).unwrap();
    let endpoint = Endpoint::new(format!("https://{}", peer.address))
        .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
        .server_name(peer.host.clone());
    let conn = Connection::new(vec![endpoint], &ConnectionOptions::default()).unwrap();
    Gateway::for_signing_identity(conn, &signing, GatewayOptions::default())
}

/// A throwaway TLS CA and a server certificate for 127.0.0.1 signed by it, written to `dir`:
/// (CA PEM, server cert file, server key file).
pub fn tls_server_files(dir: &Path) -> (String, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "chaincode-tls-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "chaincode");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap().pem();
    let (cert_file, key_file) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (ca_pem, cert_file, key_file)
}

/// Waits until every peer has committed every block the orderer has cut on `channel` (each peer
/// commits on its own, so a commit status from one peer says nothing of the others).
pub async fn settle(devnet: &fabric_devnet::devnet::Devnet, channel: &str) {
    let chain = devnet.orderer().chain(channel).expect("channel");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let h = chain.ledger().height();
        if devnet
            .peers()
            .iter()
            .filter_map(|p| p.node.channel(channel))
            .all(|c| c.ledger().height() >= h)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "peers did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
