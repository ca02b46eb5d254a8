//! MSP and TLS directories in the layout Fabric tools write and Fabric peers, the `peer` CLI and
//! the SDKs read:
//!
//! ```text
//! msp/signcerts/cert.pem            the identity's certificate
//! msp/keystore/<hex SKI>_sk         its private key, PKCS#8 PEM (SKI = SHA-256 of the public point)
//! msp/cacerts/ca-cert.pem           the org's root CA
//! msp/tlscacerts/tlsca-cert.pem     the org's TLS CA
//! msp/config.yaml                   NodeOUs enabled: client, peer, admin, orderer OUs
//! tls/ca.crt, tls/<server|client>.crt, tls/<server|client>.key
//! ```

use std::path::{Path, PathBuf};

use fabric_common::crypto::SigningKey;
pub use fabric_common::msp::MspConfigYaml;
use fabric_common::msp::MspDirContents;

use super::{write_file, write_secret_file, MaterialError};

/// The file name of the root CA certificate inside `cacerts/`.
pub const CA_CERT_FILE: &str = "ca-cert.pem";
/// The file name of the TLS CA certificate inside `tlscacerts/`.
pub const TLSCA_CERT_FILE: &str = "tlsca-cert.pem";

/// The file name Fabric's BCCSP keystore uses for a private key: hex SHA-256 of the public point.
pub fn keystore_file_name(key: &SigningKey) -> String {
    format!("{}_sk", hex::encode(key.public_key().ski()))
}

fn contents(ca_pem: &str, tlsca_pem: &str) -> MspDirContents {
    MspDirContents {
        cacerts: vec![(CA_CERT_FILE.into(), ca_pem.into())],
        tlscacerts: vec![(TLSCA_CERT_FILE.into(), tlsca_pem.into())],
        config: Some(MspConfigYaml::standard_node_ous(&format!(
            "cacerts/{CA_CERT_FILE}"
        ))),
        ..MspDirContents::default()
    }
}

fn write_via_fabric_common(dir: &Path, contents: &MspDirContents) -> Result<(), MaterialError> {
    // Written into a sibling and renamed, so a crash never leaves a half MSP that a restart
    // would mistake for a finished one.
    let tmp = sibling(dir, ".tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| MaterialError::io(&tmp, e))?;
    }
    fabric_common::msp::write_msp_dir(&tmp, contents)
        .map_err(|e| MaterialError::Msp(e.to_string()))?;
    replace_dir(&tmp, dir)
}

/// Writes an organisation-level MSP directory (roots and NodeOUs, no signing identity): what a
/// channel configuration is built from.
pub fn write_org_msp(dir: &Path, ca_pem: &str, tlsca_pem: &str) -> Result<(), MaterialError> {
    write_via_fabric_common(dir, &contents(ca_pem, tlsca_pem))
}

/// Writes a full MSP directory for a signing identity (fabric-common's writer: the key as
/// `keystore/<hex SKI>_sk`, mode 0600).
pub fn write_msp_dir(
    dir: &Path,
    cert_pem: &str,
    key: &SigningKey,
    ca_pem: &str,
    tlsca_pem: &str,
) -> Result<(), MaterialError> {
    let mut c = contents(ca_pem, tlsca_pem);
    c.signcert = Some(("cert.pem".into(), cert_pem.into()));
    c.key = Some(key.clone());
    write_via_fabric_common(dir, &c)
}

/// Writes a `tls/` directory: `ca.crt`, `<stem>.crt`, `<stem>.key` (`stem` is "server" for nodes,
/// "client" for users).
pub fn write_tls_dir(
    dir: &Path,
    stem: &str,
    cert_pem: &str,
    key: &SigningKey,
    tlsca_pem: &str,
) -> Result<(), MaterialError> {
    let tmp = sibling(dir, ".tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| MaterialError::io(&tmp, e))?;
    }
    write_file(&tmp.join("ca.crt"), tlsca_pem.as_bytes())?;
    write_file(&tmp.join(format!("{stem}.crt")), cert_pem.as_bytes())?;
    write_secret_file(
        &tmp.join(format!("{stem}.key")),
        key.to_pkcs8_pem().as_bytes(),
    )?;
    replace_dir(&tmp, dir)
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

fn replace_dir(tmp: &Path, dir: &Path) -> Result<(), MaterialError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| MaterialError::io(dir, e))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| MaterialError::io(parent, e))?;
    }
    std::fs::rename(tmp, dir).map_err(|e| MaterialError::io(dir, e))
}
