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
use serde::{Deserialize, Serialize};

use super::{read_string, write_file, write_secret_file, MaterialError};

/// The file name of the root CA certificate inside `cacerts/`.
pub const CA_CERT_FILE: &str = "ca-cert.pem";
/// The file name of the TLS CA certificate inside `tlscacerts/`.
pub const TLSCA_CERT_FILE: &str = "tlsca-cert.pem";

/// `config.yaml` of an MSP directory: Fabric's `msp.Configuration` with NodeOUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MspConfigYaml {
    /// The NodeOUs section.
    #[serde(rename = "NodeOUs")]
    pub node_ous: NodeOus,
}

/// Fabric's `NodeOUs` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeOus {
    /// Whether identity classification by OU is on.
    #[serde(rename = "Enable")]
    pub enable: bool,
    /// OU of client identities.
    #[serde(rename = "ClientOUIdentifier")]
    pub client: OuIdentifier,
    /// OU of peer identities.
    #[serde(rename = "PeerOUIdentifier")]
    pub peer: OuIdentifier,
    /// OU of admin identities.
    #[serde(rename = "AdminOUIdentifier")]
    pub admin: OuIdentifier,
    /// OU of orderer identities.
    #[serde(rename = "OrdererOUIdentifier")]
    pub orderer: OuIdentifier,
}

/// One OU identifier: the CA certificate (relative to the MSP dir) and the OU value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuIdentifier {
    /// Path of the issuing CA's certificate, relative to the MSP directory.
    #[serde(rename = "Certificate")]
    pub certificate: String,
    /// The OU value.
    #[serde(rename = "OrganizationalUnitIdentifier")]
    pub organizational_unit_identifier: String,
}

impl MspConfigYaml {
    /// NodeOUs enabled with Fabric CA's OU values, each pointing at `cacerts/<ca_file>`.
    pub fn node_ous(ca_file: &str) -> Self {
        let id = |ou: &str| OuIdentifier {
            certificate: format!("cacerts/{ca_file}"),
            organizational_unit_identifier: ou.to_owned(),
        };
        MspConfigYaml {
            node_ous: NodeOus {
                enable: true,
                client: id("client"),
                peer: id("peer"),
                admin: id("admin"),
                orderer: id("orderer"),
            },
        }
    }

    /// The YAML text Fabric reads.
    pub fn to_yaml(&self) -> Result<String, MaterialError> {
        serde_yaml::to_string(self).map_err(|e| MaterialError::Yaml(e.to_string()))
    }
}

/// The file name Fabric's BCCSP keystore uses for a private key: hex SHA-256 of the public point.
pub fn keystore_file_name(key: &SigningKey) -> String {
    format!("{}_sk", hex::encode(key.public_key().ski()))
}

/// Writes an organisation-level MSP directory (roots and NodeOUs, no signing identity): what a
/// channel configuration is built from.
pub fn write_org_msp(dir: &Path, ca_pem: &str, tlsca_pem: &str) -> Result<(), MaterialError> {
    write_file(&dir.join("cacerts").join(CA_CERT_FILE), ca_pem.as_bytes())?;
    write_file(
        &dir.join("tlscacerts").join(TLSCA_CERT_FILE),
        tlsca_pem.as_bytes(),
    )?;
    let yaml = MspConfigYaml::node_ous(CA_CERT_FILE).to_yaml()?;
    write_file(&dir.join("config.yaml"), yaml.as_bytes())
}

/// Writes a full MSP directory for a signing identity.
pub fn write_msp_dir(
    dir: &Path,
    cert_pem: &str,
    key: &SigningKey,
    ca_pem: &str,
    tlsca_pem: &str,
) -> Result<(), MaterialError> {
    // Written into a sibling and renamed, so a crash never leaves a half MSP that a restart
    // would mistake for a finished one.
    let tmp = sibling(dir, ".tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| MaterialError::io(&tmp, e))?;
    }
    write_org_msp(&tmp, ca_pem, tlsca_pem)?;
    write_file(&tmp.join("signcerts").join("cert.pem"), cert_pem.as_bytes())?;
    write_secret_file(
        &tmp.join("keystore").join(keystore_file_name(key)),
        key.to_pkcs8_pem().as_bytes(),
    )?;
    replace_dir(&tmp, dir)
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

/// An MSP directory as read back from disk.
#[derive(Debug, Clone)]
pub struct MspDir {
    /// `signcerts/` certificate, PEM (absent for an org-level MSP).
    pub signcert_pem: Option<String>,
    /// The private key from `keystore/` (absent for an org-level MSP).
    pub key: Option<SigningKey>,
    /// `cacerts/` certificates, PEM, sorted by file name.
    pub cacerts: Vec<String>,
    /// `tlscacerts/` certificates, PEM, sorted by file name.
    pub tlscacerts: Vec<String>,
    /// `config.yaml`, if present.
    pub config: Option<MspConfigYaml>,
}

fn read_pems(dir: &Path) -> Result<Vec<String>, MaterialError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| MaterialError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.iter().map(|p| read_string(p)).collect()
}

/// Reads an MSP directory written by this module, fabric-ca-client or cryptogen.
pub fn read_msp_dir(dir: &Path) -> Result<MspDir, MaterialError> {
    let signcert_pem = read_pems(&dir.join("signcerts"))?.into_iter().next();
    let key = match read_pems(&dir.join("keystore"))?.into_iter().next() {
        Some(pem) => Some(SigningKey::from_pem(pem.as_bytes())?),
        None => None,
    };
    let config_path = dir.join("config.yaml");
    let config = if config_path.exists() {
        let text = read_string(&config_path)?;
        Some(serde_yaml::from_str(&text).map_err(|e| MaterialError::Yaml(e.to_string()))?)
    } else {
        None
    };
    Ok(MspDir {
        signcert_pem,
        key,
        cacerts: read_pems(&dir.join("cacerts"))?,
        tlscacerts: read_pems(&dir.join("tlscacerts"))?,
        config,
    })
}
