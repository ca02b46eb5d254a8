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
    Topology::parse(
        r#"
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
"#,
    )
    .expect("the interop topology is valid")
}

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

/// What a Node client needs to reach an organisation's peer as `user`.
pub fn client_input(summary: &DevnetSummary, org: &str, user: &str) -> serde_json::Value {
    let peer = summary.peers.iter().find(|p| p.org == org).expect("peer");
    serde_json::json!({
        "peer": peer.address,
        "host": peer.host,
        "tlsCaCert": peer.tls_ca_cert,
        "mspId": peer.msp_id,
        "mspDir": summary.msp[org][user],
    })
}
