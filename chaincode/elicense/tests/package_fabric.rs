//! The CCaaS package judged by real Fabric: `peer lifecycle chaincode calculatepackageid` must
//! compute our package ID, and Fabric's CCaaS external builder must detect, build and release it.
//!
//! Real Fabric comes from `FABRIC_HOME`-style discovery: `FABRIC_BIN` (a directory with `peer`),
//! else the bundle in `../shared/fabric/` beside the repository. Without either the test says so
//! and checks only the archive layout; under `CI=true` their absence is a failure.

use elicense_chaincode::package::{self, Connection};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fabric_root() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("FABRIC_BIN") {
        let bin = PathBuf::from(bin);
        if bin.join("peer").exists() {
            return bin.parent().map(Path::to_path_buf);
        }
    }
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fabric/install.sh");
    if !install.exists() {
        return None;
    }
    let out = Command::new("bash").arg(&install).output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[test]
fn real_fabric_agrees_on_the_package() {
    let dir = std::env::temp_dir().join(format!("elicense-pkg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pkg_path = dir.join("elicense.tar.gz");
    let mut conn = Connection::plaintext("elicense.police.elicense.gov:9999");
    conn.dial_timeout = "15s".into();
    let id = package::write("elicense_1.0", &conn, &pkg_path).unwrap();
    assert!(id.starts_with("elicense_1.0:"));

    let Some(root) = fabric_root() else {
        let what = "real Fabric (FABRIC_BIN, or the bundle in ../shared/fabric)";
        // CI must run every judge; elsewhere the archive checks above still ran.
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("required in CI but missing: {what}");
        }
        eprintln!("SKIPPED: {what}: only the package's own checks ran");
        return;
    };
    let out = Command::new(root.join("bin/peer"))
        .args(["lifecycle", "chaincode", "calculatepackageid"])
        .arg(&pkg_path)
        .env("FABRIC_CFG_PATH", root.join("config"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id);

    // Fabric's CCaaS builder: detect (metadata.json type), build (connection.json), release.
    let meta = dir.join("meta");
    let src = dir.join("src");
    let build = dir.join("build");
    let release = dir.join("release");
    for d in [&meta, &src, &build, &release] {
        std::fs::create_dir_all(d).unwrap();
    }
    let untar = |archive: &Path, into: &Path| {
        let st = Command::new("tar")
            .arg("xzf")
            .arg(archive)
            .arg("-C")
            .arg(into)
            .status()
            .unwrap();
        assert!(st.success());
    };
    untar(&pkg_path, &meta);
    untar(&meta.join("code.tar.gz"), &src);
    let builder = root.join("builders/ccaas/bin");
    for (step, args) in [
        ("detect", vec![&src, &meta]),
        ("build", vec![&src, &meta, &build]),
        ("release", vec![&build, &release]),
    ] {
        let st = Command::new(builder.join(step))
            .args(args)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{step}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    let released: serde_json::Value = serde_json::from_slice(
        &std::fs::read(release.join("chaincode/server/connection.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(released["address"], "elicense.police.elicense.gov:9999");
    assert_eq!(released["dial_timeout"], "15s");
    let _ = std::fs::remove_dir_all(&dir);
}
