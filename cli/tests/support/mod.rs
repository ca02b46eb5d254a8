//! Shared helpers of the CLI tests: running the built `elicense`, and finding real Fabric
//! binaries (FABRIC_BIN, else the bundle's `install.sh --bin`; absent → skip, except under
//! CI=true, where it is a failure).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `Command` for the built binary, with no ELICENSE_* settings leaking in from the caller.
pub fn elicense() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_elicense"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ELICENSE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Standard output as JSON (panics with the whole output when it is not).
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): status {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Standard error as the CLI's JSON error document.
pub fn json_err(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON error on stderr: {text}"));
    serde_json::from_str(line).unwrap()
}

/// Asserts success and returns stdout as JSON.
pub fn ok_json(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "command failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

/// Asserts the exit code.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The directory holding a real Fabric binary `name`, or `None` (printing why) when none exists
/// outside CI. Under CI=true a missing binary fails the test.
pub fn fabric_binary(name: &str) -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("FABRIC_BIN") {
        let p = Path::new(&bin).join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fabric/install.sh");
    if install.is_file() {
        if let Ok(out) = Command::new("bash").arg(&install).arg("--bin").output() {
            if out.status.success() {
                let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let p = Path::new(&dir).join(name);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} not found: set FABRIC_BIN or provide ../shared/fabric/install.sh");
    }
    eprintln!("skipping: {name} not found (no FABRIC_BIN, no ../shared/fabric bundle)");
    None
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills a child process when dropped, even on panic.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A devnet started with `elicense devnet up --detach` in a temporary directory; stopped (by
/// `devnet down`, else by killing its process) when dropped, even on panic.
pub struct TestDevnet {
    /// The data directory.
    pub dir: tempfile::TempDir,
    /// What `devnet up -o json` printed.
    pub up: serde_json::Value,
    pid: u32,
}

impl TestDevnet {
    /// Starts a devnet (default topology, catalogue seeded).
    pub fn start() -> TestDevnet {
        let dir = tempfile::tempdir().unwrap();
        let out = elicense()
            .args(["-o", "json", "devnet", "up", "--detach", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let up = ok_json(out);
        let pid = up["pid"].as_u64().unwrap() as u32;
        TestDevnet { dir, up, pid }
    }

    /// `elicense` with `--devnet` pointing here and JSON output.
    pub fn cmd(&self, identity: &str) -> Command {
        let mut c = elicense();
        c.args(["-o", "json", "--devnet"])
            .arg(self.dir.path())
            .args(["--identity", identity]);
        c
    }

    /// A path inside the data directory's scratch area.
    pub fn path(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("scratch");
        std::fs::create_dir_all(&p).unwrap();
        p.join(name)
    }
}

impl Drop for TestDevnet {
    fn drop(&mut self) {
        let stopped = elicense()
            .args(["-q", "devnet", "down", "--data-dir"])
            .arg(self.dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !stopped {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}
