//! Helpers shared by the cross-crate tests: locating real Fabric and Node, skipping honestly.
//!
//! Tests that need an external judge (real Fabric binaries, Node with the official npm clients)
//! call these helpers. Outside CI a missing judge makes the test print why it skips and return;
//! with `CI=true` a missing judge is a failure, because CI must exercise every judge.

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod fabric_net;
pub mod kv_chaincode;

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate sits in the workspace")
        .to_path_buf()
}

/// True when running under CI, where every judge must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing prerequisite: panics in CI, otherwise prints why the test skips.
pub fn skip_or_fail(what: &str) {
    if in_ci() {
        panic!("required in CI but missing: {what}");
    }
    eprintln!("SKIPPED: {what}");
}

/// The directory holding Fabric's binaries: `FABRIC_BIN` if set, else the bundle beside the
/// repository (`../shared/fabric/install.sh --bin`), else `None`.
pub fn fabric_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("FABRIC_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("peer").exists().then_some(dir);
    }
    let install = repo_root().join("../shared/fabric/install.sh");
    if !install.exists() {
        return None;
    }
    let out = Command::new("bash")
        .arg(&install)
        .arg("--bin")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    dir.join("peer").exists().then_some(dir)
}

/// The interop directory with its npm packages installed (`tests/interop/node_modules`), if Node
/// and the packages are there.
pub fn node_interop_dir() -> Option<PathBuf> {
    let dir = repo_root().join("tests/interop");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (node_ok && dir.join("node_modules").is_dir()).then_some(dir)
}

/// A TCP port on 127.0.0.1 that was free when asked.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port on 127.0.0.1")
}
