//! Runs the built `elicense` binary as a user would.

use std::process::Command;

fn elicense() -> Command {
    Command::new(env!("CARGO_BIN_EXE_elicense"))
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = elicense().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("elicense"),
            "{shell} script names the command"
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    let out = elicense().args(["completions", "nosh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = elicense().arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_broken_config_file_is_a_usage_error_reported_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("elicense.toml");
    std::fs::write(&cfg, "channel = [not toml").unwrap();
    let out = elicense()
        .args(["-o", "json", "--config"])
        .arg(&cfg)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["class"], "usage");
    assert_eq!(err["error"]["exit_code"], 2);
}
