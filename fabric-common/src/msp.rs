//! Membership service providers: MSP directories as `fabric-ca-client` and `cryptogen` write
//! them, their `config.yaml` (NodeOUs), the `msp.MSPConfig` protobuf that channel configuration
//! carries, and the checks Fabric's X.509 MSP applies to an identity (chain of trust, NodeOU
//! role, admin, principal satisfaction).
//!
//! Directory layout (Fabric's `msp/configbuilder.go`):
//!
//! ```text
//! signcerts/          the signing certificate (first PEM file, by name)
//! keystore/           its private key: `<hex SKI>_sk` (fabric-ca-client) or `priv_sk` (cryptogen)
//! cacerts/            root CA certificates            (required)
//! intermediatecerts/  intermediate CA certificates    (optional)
//! tlscacerts/         TLS root CA certificates        (optional)
//! tlsintermediatecerts/                               (optional)
//! admincerts/         explicit admin certificates     (optional since NodeOUs)
//! config.yaml         NodeOUs and OrganizationalUnitIdentifiers (optional)
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use fabric_protos::common::{msp_principal, msp_role, MspPrincipal, MspRole, OrganizationUnit};
use fabric_protos::msp as pb;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crypto::{sha256, CryptoError, SigningKey};
use crate::identity::{Certificate, Identity, IdentityError, SigningIdentity};

/// `MSPConfig.type` of an X.509 (FABRIC) MSP.
pub const FABRIC_MSP_TYPE: i32 = 0;

/// Errors from reading, writing and applying MSP configuration.
#[derive(Debug, Error)]
pub enum MspError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A required directory holds no usable PEM file.
    #[error("no PEM material in {0}")]
    Missing(PathBuf),
    /// A certificate could not be parsed.
    #[error("{path}: {source}")]
    Certificate {
        /// The file or config element holding it.
        path: String,
        /// Why it failed.
        source: IdentityError,
    },
    /// No key in `keystore/` matches the signing certificate.
    #[error("no private key in {0} matches the signing certificate")]
    NoMatchingKey(PathBuf),
    /// A key file could not be parsed or used.
    #[error("key: {0}")]
    Key(#[from] CryptoError),
    /// `config.yaml` is not valid.
    #[error("config.yaml: {0}")]
    Config(String),
    /// A protobuf could not be decoded.
    #[error("malformed {what}: {reason}")]
    Proto {
        /// Which message.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The identity belongs to another MSP.
    #[error("identity belongs to MSP {actual}, not {expected}")]
    WrongMsp {
        /// The MSP asked about.
        expected: String,
        /// The identity's MSP.
        actual: String,
    },
    /// The identity's certificate does not chain to this MSP's root CAs.
    #[error("identity is not issued by a CA of MSP {0}")]
    UntrustedIdentity(String),
    /// A CA certificate cannot be an identity.
    #[error("a CA certificate cannot be used as an identity")]
    CaAsIdentity,
    /// NodeOUs are enabled and the identity carries none of the node OUs.
    #[error("identity has no OU that resolves to client, peer, orderer or admin")]
    NoNodeOu,
    /// NodeOUs are enabled and the identity carries more than one node OU.
    #[error("identity must be exactly one of client, peer, orderer or admin, not several")]
    SeveralNodeOus,
    /// The identity's OU matches but was certified by another CA than the one configured.
    #[error("OU {0} is certified by a different CA than the one configured")]
    CertifiersMismatch(String),
    /// OrganizationalUnitIdentifiers are configured and the identity matches none.
    #[error("identity matches none of the MSP's OrganizationalUnitIdentifiers")]
    NoMatchingOu,
    /// The identity does not satisfy a principal.
    #[error("identity does not satisfy the principal: {0}")]
    PrincipalNotSatisfied(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MspError + '_ {
    move |source| MspError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A node role NodeOUs classify identities into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRole {
    /// An application client.
    Client,
    /// A peer.
    Peer,
    /// An administrator.
    Admin,
    /// An ordering node.
    Orderer,
}

impl NodeRole {
    /// The role as `msp.MSPRole` names it.
    pub fn to_msp_role(self) -> msp_role::MspRoleType {
        match self {
            NodeRole::Client => msp_role::MspRoleType::Client,
            NodeRole::Peer => msp_role::MspRoleType::Peer,
            NodeRole::Admin => msp_role::MspRoleType::Admin,
            NodeRole::Orderer => msp_role::MspRoleType::Orderer,
        }
    }
}

/// One `Certificate` + `OrganizationalUnitIdentifier` entry of `config.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuIdentifierYaml {
    /// Path of a CA certificate, relative to the MSP directory (may be empty).
    #[serde(
        rename = "Certificate",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub certificate: String,
    /// The OU value.
    #[serde(
        rename = "OrganizationalUnitIdentifier",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub organizational_unit_identifier: String,
}

/// The `NodeOUs` section of `config.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeOusYaml {
    /// Whether identities are classified by OU.
    #[serde(rename = "Enable", default)]
    pub enable: bool,
    /// The client OU.
    #[serde(
        rename = "ClientOUIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client: Option<OuIdentifierYaml>,
    /// The peer OU.
    #[serde(
        rename = "PeerOUIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub peer: Option<OuIdentifierYaml>,
    /// The admin OU.
    #[serde(
        rename = "AdminOUIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub admin: Option<OuIdentifierYaml>,
    /// The orderer OU.
    #[serde(
        rename = "OrdererOUIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orderer: Option<OuIdentifierYaml>,
}

/// An MSP directory's `config.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MspConfigYaml {
    /// OUs every identity of the MSP must carry one of (rarely used).
    #[serde(
        rename = "OrganizationalUnitIdentifiers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub organizational_unit_identifiers: Vec<OuIdentifierYaml>,
    /// Node OU classification.
    #[serde(rename = "NodeOUs", default, skip_serializing_if = "Option::is_none")]
    pub node_ous: Option<NodeOusYaml>,
}

impl MspConfigYaml {
    /// Parses `config.yaml` text.
    pub fn parse(text: &str) -> Result<Self, MspError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml::from_str(text).map_err(|e| MspError::Config(e.to_string()))
    }

    /// Renders `config.yaml` text.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// The NodeOUs section Fabric's tools write: client/peer/admin/orderer OUs, each certified by
    /// `ca_cert_path` (relative to the MSP directory, e.g. `cacerts/ca.pem`).
    pub fn standard_node_ous(ca_cert_path: &str) -> Self {
        let ou = |name: &str| {
            Some(OuIdentifierYaml {
                certificate: ca_cert_path.to_string(),
                organizational_unit_identifier: name.to_string(),
            })
        };
        MspConfigYaml {
            organizational_unit_identifiers: Vec::new(),
            node_ous: Some(NodeOusYaml {
                enable: true,
                client: ou("client"),
                peer: ou("peer"),
                admin: ou("admin"),
                orderer: ou("orderer"),
            }),
        }
    }
}

/// Files of a directory as (path, contents).
type DirFiles = Vec<(PathBuf, Vec<u8>)>;

/// Reads the PEM files of a directory in name order, skipping files without PEM content (as
/// Fabric does). `Ok(None)` when the directory does not exist.
fn pem_files(dir: &Path) -> Result<Option<DirFiles>, MspError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        if crate::identity::pem_to_der(&bytes).is_ok() {
            out.push((path, bytes));
        }
    }
    Ok(Some(out))
}

fn pem_material(dir: &Path) -> Result<Vec<Vec<u8>>, MspError> {
    Ok(pem_files(dir)?
        .unwrap_or_default()
        .into_iter()
        .map(|(_, b)| b)
        .collect())
}

/// Builds `msp.MSPConfig` (type FABRIC, config = `FabricMSPConfig` bytes) from an MSP directory,
/// as Fabric's `GetVerifyingMspConfig` (`with_signing_identity = false`, what channel configuration
/// carries) or `GetLocalMspConfig` (`true`: the signing certificate is included, never the key).
pub fn msp_config_from_dir(
    dir: &Path,
    msp_id: &str,
    with_signing_identity: bool,
) -> Result<pb::MspConfig, MspError> {
    let cacerts = pem_material(&dir.join("cacerts"))?;
    if cacerts.is_empty() {
        return Err(MspError::Missing(dir.join("cacerts")));
    }
    let signing_identity = if with_signing_identity {
        let signcerts = pem_material(&dir.join("signcerts"))?;
        let first = signcerts
            .into_iter()
            .next()
            .ok_or_else(|| MspError::Missing(dir.join("signcerts")))?;
        Some(pb::SigningIdentityInfo {
            public_signer: first,
            private_signer: None,
        })
    } else {
        None
    };
    let tls_root_certs = pem_material(&dir.join("tlscacerts"))?;
    let tls_intermediate_certs = if tls_root_certs.is_empty() {
        Vec::new()
    } else {
        pem_material(&dir.join("tlsintermediatecerts"))?
    };

    let config_path = dir.join("config.yaml");
    let yaml = match fs::read_to_string(&config_path) {
        Ok(text) => MspConfigYaml::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => MspConfigYaml::default(),
        Err(e) => return Err(io_err(&config_path)(e)),
    };
    let mut ou_ids = Vec::new();
    for ou in &yaml.organizational_unit_identifiers {
        let path = dir.join(&ou.certificate);
        ou_ids.push(pb::FabricOuIdentifier {
            certificate: fs::read(&path).map_err(io_err(&path))?,
            organizational_unit_identifier: ou.organizational_unit_identifier.clone(),
        });
    }
    let fabric_node_ous = match &yaml.node_ous {
        Some(n) if n.enable => {
            // Fabric keeps an OU only when it names one, and loads its certificate when a path is
            // given; an unreadable certificate is skipped, as `loadCertificateAt` does.
            let load = |ou: &Option<OuIdentifierYaml>| {
                ou.as_ref()
                    .filter(|o| !o.organizational_unit_identifier.is_empty())
                    .map(|o| pb::FabricOuIdentifier {
                        certificate: if o.certificate.is_empty() {
                            Vec::new()
                        } else {
                            fs::read(dir.join(&o.certificate)).unwrap_or_default()
                        },
                        organizational_unit_identifier: o.organizational_unit_identifier.clone(),
                    })
            };
            Some(pb::FabricNodeOUs {
                enable: true,
                client_ou_identifier: load(&n.client),
                peer_ou_identifier: load(&n.peer),
                admin_ou_identifier: load(&n.admin),
                orderer_ou_identifier: load(&n.orderer),
            })
        }
        _ => None,
    };
    let config = pb::FabricMspConfig {
        name: msp_id.to_string(),
        root_certs: cacerts,
        intermediate_certs: pem_material(&dir.join("intermediatecerts"))?,
        admins: pem_material(&dir.join("admincerts"))?,
        revocation_list: pem_material(&dir.join("crls"))?,
        signing_identity,
        organizational_unit_identifiers: ou_ids,
        crypto_config: Some(pb::FabricCryptoConfig {
            signature_hash_family: "SHA2".into(),
            identity_identifier_hash_function: "SHA256".into(),
        }),
        tls_root_certs,
        tls_intermediate_certs,
        fabric_node_ous,
    };
    Ok(pb::MspConfig {
        r#type: FABRIC_MSP_TYPE,
        config: config.encode_to_vec(),
    })
}

/// Reads the signing identity of an MSP directory: the first `signcerts/` certificate and the
/// `keystore/` key that matches it (`<hex SKI>_sk` first, then any key file whose public key
/// matches, which covers cryptogen's `priv_sk`).
pub fn read_signing_identity(dir: &Path, msp_id: &str) -> Result<SigningIdentity, MspError> {
    let signcerts = pem_files(&dir.join("signcerts"))?.unwrap_or_default();
    let (cert_path, cert_pem) = signcerts
        .into_iter()
        .next()
        .ok_or_else(|| MspError::Missing(dir.join("signcerts")))?;
    let identity = Identity::new(msp_id, &cert_pem).map_err(|source| MspError::Certificate {
        path: cert_path.display().to_string(),
        source,
    })?;
    let keystore = dir.join("keystore");
    let wanted = identity.public_key().clone();
    let by_ski = keystore.join(format!("{}_sk", hex::encode(wanted.ski())));
    let mut candidates = vec![by_ski.clone()];
    let mut others: Vec<PathBuf> = fs::read_dir(&keystore)
        .map_err(io_err(&keystore))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && *p != by_ski)
        .collect();
    others.sort();
    candidates.extend(others);
    for path in candidates {
        let Ok(bytes) = fs::read(&path) else { continue };
        let Ok(key) = SigningKey::from_pem(&bytes) else {
            continue;
        };
        if key.public_key() == &wanted {
            return Ok(SigningIdentity::new(identity, std::sync::Arc::new(key)));
        }
    }
    Err(MspError::NoMatchingKey(keystore))
}

/// What [`write_msp_dir`] writes; each certificate is (file name, PEM).
#[derive(Debug, Clone, Default)]
pub struct MspDirContents {
    /// `signcerts/`: the node's or user's certificate.
    pub signcert: Option<(String, String)>,
    /// `keystore/<ski>_sk`: the private key for `signcert`.
    pub key: Option<SigningKey>,
    /// `cacerts/`.
    pub cacerts: Vec<(String, String)>,
    /// `intermediatecerts/`.
    pub intermediatecerts: Vec<(String, String)>,
    /// `tlscacerts/`.
    pub tlscacerts: Vec<(String, String)>,
    /// `admincerts/`.
    pub admincerts: Vec<(String, String)>,
    /// `config.yaml`.
    pub config: Option<MspConfigYaml>,
}

/// Writes an MSP directory the way fabric-ca-client lays it out (key named `<hex SKI>_sk`,
/// written with mode 0600 on Unix).
pub fn write_msp_dir(dir: &Path, contents: &MspDirContents) -> Result<(), MspError> {
    let write = |sub: &str, name: &str, data: &[u8]| -> Result<PathBuf, MspError> {
        let d = dir.join(sub);
        fs::create_dir_all(&d).map_err(io_err(&d))?;
        let path = d.join(name);
        fs::write(&path, data).map_err(io_err(&path))?;
        Ok(path)
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    if let Some((name, pem)) = &contents.signcert {
        write("signcerts", name, pem.as_bytes())?;
    }
    if let Some(key) = &contents.key {
        let name = format!("{}_sk", hex::encode(key.public_key().ski()));
        let path = write("keystore", &name, key.to_pkcs8_pem().as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io_err(&path))?;
        }
    }
    for (sub, certs) in [
        ("cacerts", &contents.cacerts),
        ("intermediatecerts", &contents.intermediatecerts),
        ("tlscacerts", &contents.tlscacerts),
        ("admincerts", &contents.admincerts),
    ] {
        for (name, pem) in certs {
            write(sub, name, pem.as_bytes())?;
        }
    }
    if let Some(config) = &contents.config {
        let path = dir.join("config.yaml");
        fs::write(&path, config.to_yaml()).map_err(io_err(&path))?;
    }
    Ok(())
}

/// A NodeOU (or OrganizationalUnitIdentifier) as the MSP applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuIdentifier {
    /// The OU value.
    pub organizational_unit_identifier: String,
    /// Hash of the certifying CA's chain, when a certificate was configured (Fabric's
    /// `CertifiersIdentifier`); empty means any CA of the MSP.
    pub certifiers_identifier: Vec<u8>,
}

/// A verifying MSP: what a peer knows about another organisation from channel configuration.
#[derive(Debug, Clone)]
pub struct Msp {
    msp_id: String,
    root_certs: Vec<Certificate>,
    intermediate_certs: Vec<Certificate>,
    admins: Vec<Certificate>,
    tls_root_certs: Vec<Certificate>,
    tls_intermediate_certs: Vec<Certificate>,
    ou_identifiers: Vec<OuIdentifier>,
    node_ous: Option<[Option<OuIdentifier>; 4]>,
    config: pb::MspConfig,
}

const ROLES: [NodeRole; 4] = [
    NodeRole::Client,
    NodeRole::Peer,
    NodeRole::Admin,
    NodeRole::Orderer,
];

fn parse_cert_list(list: &[Vec<u8>], what: &str) -> Result<Vec<Certificate>, MspError> {
    let mut out = Vec::new();
    for (i, pem) in list.iter().enumerate() {
        let cert = Certificate::from_pem(pem).map_err(|source| MspError::Certificate {
            path: format!("{what}[{i}]"),
            source,
        })?;
        out.push(cert);
    }
    Ok(out)
}

impl Msp {
    /// Reads a verifying MSP from a directory.
    pub fn from_dir(dir: &Path, msp_id: &str) -> Result<Self, MspError> {
        Self::from_config(&msp_config_from_dir(dir, msp_id, false)?)
    }

    /// Builds the MSP from `msp.MSPConfig` (as found in a channel's configuration).
    pub fn from_config(config: &pb::MspConfig) -> Result<Self, MspError> {
        if config.r#type != FABRIC_MSP_TYPE {
            return Err(MspError::Proto {
                what: "MSPConfig",
                reason: format!("unsupported MSP type {}", config.r#type),
            });
        }
        let fabric =
            pb::FabricMspConfig::decode(config.config.as_slice()).map_err(|e| MspError::Proto {
                what: "FabricMSPConfig",
                reason: e.to_string(),
            })?;
        let mut msp = Msp {
            msp_id: fabric.name.clone(),
            root_certs: parse_cert_list(&fabric.root_certs, "root_certs")?,
            intermediate_certs: parse_cert_list(&fabric.intermediate_certs, "intermediate_certs")?,
            admins: parse_cert_list(&fabric.admins, "admins")?,
            tls_root_certs: parse_cert_list(&fabric.tls_root_certs, "tls_root_certs")?,
            tls_intermediate_certs: parse_cert_list(
                &fabric.tls_intermediate_certs,
                "tls_intermediate_certs",
            )?,
            ou_identifiers: Vec::new(),
            node_ous: None,
            config: config.clone(),
        };
        if msp.root_certs.is_empty() {
            return Err(MspError::Proto {
                what: "FabricMSPConfig",
                reason: "no root certificates".into(),
            });
        }
        for ou in &fabric.organizational_unit_identifiers {
            msp.ou_identifiers.push(msp.ou_identifier(ou)?);
        }
        if let Some(n) = fabric.fabric_node_ous.as_ref().filter(|n| n.enable) {
            let mut slots: [Option<OuIdentifier>; 4] = Default::default();
            for (slot, ou) in slots.iter_mut().zip([
                &n.client_ou_identifier,
                &n.peer_ou_identifier,
                &n.admin_ou_identifier,
                &n.orderer_ou_identifier,
            ]) {
                if let Some(ou) = ou {
                    *slot = Some(msp.ou_identifier(ou)?);
                }
            }
            msp.node_ous = Some(slots);
        }
        Ok(msp)
    }

    fn ou_identifier(&self, ou: &pb::FabricOuIdentifier) -> Result<OuIdentifier, MspError> {
        let certifiers_identifier = if ou.certificate.is_empty() {
            Vec::new()
        } else {
            let cert =
                Certificate::from_pem(&ou.certificate).map_err(|source| MspError::Certificate {
                    path: format!("OU {}", ou.organizational_unit_identifier),
                    source,
                })?;
            // Fabric requires the certificate to be one of the MSP's CAs and hashes its chain.
            let chain = self.ca_chain(&cert).ok_or_else(|| {
                MspError::Config(format!(
                    "certificate of OU {} is not a CA of this MSP",
                    ou.organizational_unit_identifier
                ))
            })?;
            chain_identifier(&chain)
        };
        Ok(OuIdentifier {
            organizational_unit_identifier: ou.organizational_unit_identifier.clone(),
            certifiers_identifier,
        })
    }

    /// The MSP ID.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The `msp.MSPConfig` this MSP was built from.
    pub fn config(&self) -> &pb::MspConfig {
        &self.config
    }

    /// Root CA certificates.
    pub fn root_certs(&self) -> &[Certificate] {
        &self.root_certs
    }

    /// Intermediate CA certificates.
    pub fn intermediate_certs(&self) -> &[Certificate] {
        &self.intermediate_certs
    }

    /// TLS root CA certificates.
    pub fn tls_root_certs(&self) -> &[Certificate] {
        &self.tls_root_certs
    }

    /// TLS intermediate CA certificates.
    pub fn tls_intermediate_certs(&self) -> &[Certificate] {
        &self.tls_intermediate_certs
    }

    /// Whether NodeOU classification is enabled.
    pub fn node_ous_enabled(&self) -> bool {
        self.node_ous.is_some()
    }

    /// The chain from `cert` (a CA certificate of this MSP) up to a root, `cert` first.
    fn ca_chain(&self, cert: &Certificate) -> Option<Vec<Certificate>> {
        let is_root = self.root_certs.iter().any(|r| r == cert);
        let is_inter = self.intermediate_certs.iter().any(|r| r == cert);
        if is_root {
            return Some(vec![cert.clone()]);
        }
        if !is_inter {
            return None;
        }
        let mut chain = self.chain_above(cert)?;
        chain.insert(0, cert.clone());
        Some(chain)
    }

    /// The issuers of `cert` up to a root (excluding `cert`), or `None` if it does not chain.
    fn chain_above(&self, cert: &Certificate) -> Option<Vec<Certificate>> {
        // Go's x509 verification checks every certificate at the leaf's NotBefore + 1 s, which
        // is how Fabric's MSP validates identities (expiry is enforced elsewhere).
        let at = cert.not_before().saturating_add(1);
        let mut chain = Vec::new();
        let mut current = cert.clone();
        for _ in 0..8 {
            if let Some(root) = self
                .root_certs
                .iter()
                .find(|r| r.is_valid_at(at) && current.verify_issued_by(r).is_ok())
            {
                chain.push(root.clone());
                return Some(chain);
            }
            let next = self
                .intermediate_certs
                .iter()
                .find(|c| {
                    c.is_valid_at(at) && *c != &current && current.verify_issued_by(c).is_ok()
                })?
                .clone();
            chain.push(next.clone());
            current = next;
        }
        None
    }

    /// Fabric's certifiers identifier of an identity: SHA-256 over its issuers' (sanitized) DER,
    /// issuer first, root last.
    pub fn certifiers_identifier(&self, identity: &Identity) -> Result<Vec<u8>, MspError> {
        let chain = self
            .chain_above(identity.certificate())
            .ok_or_else(|| MspError::UntrustedIdentity(self.msp_id.clone()))?;
        Ok(chain_identifier(&chain))
    }

    /// Validates an identity as Fabric's X.509 MSP does: same MSP ID, not a CA, chains to a root
    /// (through intermediates), carries a configured OU if any are configured, and, with NodeOUs,
    /// exactly one node OU.
    pub fn validate(&self, identity: &Identity) -> Result<(), MspError> {
        self.check_msp_id(identity)?;
        self.validate_chain_and_ous(identity).map(|_| ())
    }

    fn check_msp_id(&self, identity: &Identity) -> Result<(), MspError> {
        if identity.msp_id() != self.msp_id {
            return Err(MspError::WrongMsp {
                expected: self.msp_id.clone(),
                actual: identity.msp_id().to_string(),
            });
        }
        Ok(())
    }

    /// Returns the identity's node role when NodeOUs are enabled.
    fn validate_chain_and_ous(&self, identity: &Identity) -> Result<Option<NodeRole>, MspError> {
        let cert = identity.certificate();
        if cert.is_ca() {
            return Err(MspError::CaAsIdentity);
        }
        let certifiers = self.certifiers_identifier(identity)?;
        let ous = cert.subject().organizational_units();
        if !self.ou_identifiers.is_empty() {
            let ok = self.ou_identifiers.iter().any(|id| {
                ous.contains(&id.organizational_unit_identifier.as_str())
                    && (id.certifiers_identifier.is_empty()
                        || id.certifiers_identifier == certifiers)
            });
            if !ok {
                return Err(MspError::NoMatchingOu);
            }
        }
        let Some(node_ous) = &self.node_ous else {
            return Ok(None);
        };
        let mut found = None;
        let mut count = 0;
        for ou in &ous {
            let Some((role, nou)) = ROLES.iter().zip(node_ous.iter()).find_map(|(r, n)| {
                n.as_ref()
                    .filter(|n| n.organizational_unit_identifier == *ou)
                    .map(|n| (*r, n))
            }) else {
                continue;
            };
            if !nou.certifiers_identifier.is_empty() && nou.certifiers_identifier != certifiers {
                return Err(MspError::CertifiersMismatch(ou.to_string()));
            }
            count += 1;
            found = Some(role);
            if count > 1 {
                break;
            }
        }
        match count {
            0 => Err(MspError::NoNodeOu),
            1 => Ok(found),
            _ => Err(MspError::SeveralNodeOus),
        }
    }

    /// The identity's node role (NodeOUs must be enabled); validates the identity first.
    pub fn role_of(&self, identity: &Identity) -> Result<NodeRole, MspError> {
        self.check_msp_id(identity)?;
        self.validate_chain_and_ous(identity)?.ok_or_else(|| {
            MspError::Config("NodeOUs are not enabled; roles cannot be told apart".into())
        })
    }

    /// Whether the identity is listed in `admincerts/`.
    pub fn is_listed_admin(&self, identity: &Identity) -> bool {
        let cert = identity.certificate();
        let sanitized = cert.sanitized_der();
        self.admins
            .iter()
            .any(|a| a == cert || a.sanitized_der() == sanitized)
    }

    /// Whether the identity satisfies a principal of this MSP (Fabric's `SatisfiesPrincipal`):
    /// MEMBER = any valid identity; ADMIN = listed in admincerts or carrying the admin NodeOU;
    /// CLIENT / PEER / ORDERER = the matching NodeOU; ORGANIZATION_UNIT = that OU certified by that
    /// chain; IDENTITY = the same certificate.
    pub fn satisfies_principal(
        &self,
        identity: &Identity,
        principal: &Principal,
    ) -> Result<(), MspError> {
        let not = |why: &str| MspError::PrincipalNotSatisfied(why.to_string());
        match principal {
            Principal::Role { msp_id, role } => {
                if *msp_id != self.msp_id {
                    return Err(not("principal names another MSP"));
                }
                self.check_msp_id(identity)?;
                match role {
                    msp_role::MspRoleType::Member => self.validate(identity),
                    msp_role::MspRoleType::Admin => {
                        if self.is_listed_admin(identity) {
                            return self.validate(identity);
                        }
                        match self.validate_chain_and_ous(identity)? {
                            Some(NodeRole::Admin) => Ok(()),
                            _ => Err(not("identity is not an admin")),
                        }
                    }
                    msp_role::MspRoleType::Client
                    | msp_role::MspRoleType::Peer
                    | msp_role::MspRoleType::Orderer => {
                        let role_found = self.validate_chain_and_ous(identity)?;
                        let Some(found) = role_found else {
                            return Err(not("NodeOUs are not enabled; cannot tell roles apart"));
                        };
                        if found.to_msp_role() == *role {
                            Ok(())
                        } else {
                            Err(not("identity has another node role"))
                        }
                    }
                }
            }
            Principal::OrganizationUnit {
                msp_id,
                organizational_unit_identifier,
                certifiers_identifier,
            } => {
                if *msp_id != self.msp_id {
                    return Err(not("principal names another MSP"));
                }
                self.validate(identity)?;
                let certifiers = self.certifiers_identifier(identity)?;
                let has = identity
                    .certificate()
                    .subject()
                    .organizational_units()
                    .contains(&organizational_unit_identifier.as_str());
                if has && certifiers == *certifiers_identifier {
                    Ok(())
                } else {
                    Err(not("identity does not carry that OU from that CA"))
                }
            }
            Principal::Identity(serialized) => {
                let other = Identity::from_serialized(serialized).map_err(|source| {
                    MspError::Certificate {
                        path: "IDENTITY principal".into(),
                        source,
                    }
                })?;
                if other.certificate().sanitized_der() != identity.certificate().sanitized_der() {
                    return Err(not("a different identity"));
                }
                self.validate(identity)
            }
            Principal::Unsupported(classification) => Err(not(&format!(
                "principal classification {classification} is not supported"
            ))),
        }
    }
}

fn chain_identifier(chain: &[Certificate]) -> Vec<u8> {
    let mut all = Vec::new();
    for cert in chain {
        all.extend(cert.sanitized_der());
    }
    sha256(&all).to_vec()
}

/// A decoded `common.MSPPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `ROLE`: a role within an MSP.
    Role {
        /// The MSP.
        msp_id: String,
        /// The role.
        role: msp_role::MspRoleType,
    },
    /// `ORGANIZATION_UNIT`: an OU within an MSP, certified by a given chain.
    OrganizationUnit {
        /// The MSP.
        msp_id: String,
        /// The OU value.
        organizational_unit_identifier: String,
        /// Hash of the certifying chain.
        certifiers_identifier: Vec<u8>,
    },
    /// `IDENTITY`: one specific serialized identity.
    Identity(Vec<u8>),
    /// `ANONYMITY`, `COMBINED` or unknown classifications (never satisfied by X.509 MSPs here).
    Unsupported(i32),
}

impl Principal {
    /// A ROLE principal.
    pub fn role(msp_id: impl Into<String>, role: msp_role::MspRoleType) -> Self {
        Principal::Role {
            msp_id: msp_id.into(),
            role,
        }
    }

    /// Decodes a `common.MSPPrincipal`.
    pub fn from_proto(p: &MspPrincipal) -> Result<Self, MspError> {
        let bad = |what: &'static str| {
            move |e: prost::DecodeError| MspError::Proto {
                what,
                reason: e.to_string(),
            }
        };
        Ok(
            match msp_principal::Classification::try_from(p.principal_classification) {
                Ok(msp_principal::Classification::Role) => {
                    let r = MspRole::decode(p.principal.as_slice()).map_err(bad("MSPRole"))?;
                    let role =
                        msp_role::MspRoleType::try_from(r.role).map_err(|_| MspError::Proto {
                            what: "MSPRole",
                            reason: format!("unknown role {}", r.role),
                        })?;
                    Principal::Role {
                        msp_id: r.msp_identifier,
                        role,
                    }
                }
                Ok(msp_principal::Classification::OrganizationUnit) => {
                    let ou = OrganizationUnit::decode(p.principal.as_slice())
                        .map_err(bad("OrganizationUnit"))?;
                    Principal::OrganizationUnit {
                        msp_id: ou.msp_identifier,
                        organizational_unit_identifier: ou.organizational_unit_identifier,
                        certifiers_identifier: ou.certifiers_identifier,
                    }
                }
                Ok(msp_principal::Classification::Identity) => {
                    Principal::Identity(p.principal.clone())
                }
                _ => Principal::Unsupported(p.principal_classification),
            },
        )
    }

    /// Encodes as `common.MSPPrincipal`.
    pub fn to_proto(&self) -> MspPrincipal {
        match self {
            Principal::Role { msp_id, role } => MspPrincipal {
                principal_classification: msp_principal::Classification::Role as i32,
                principal: MspRole {
                    msp_identifier: msp_id.clone(),
                    role: *role as i32,
                }
                .encode_to_vec(),
            },
            Principal::OrganizationUnit {
                msp_id,
                organizational_unit_identifier,
                certifiers_identifier,
            } => MspPrincipal {
                principal_classification: msp_principal::Classification::OrganizationUnit as i32,
                principal: OrganizationUnit {
                    msp_identifier: msp_id.clone(),
                    organizational_unit_identifier: organizational_unit_identifier.clone(),
                    certifiers_identifier: certifiers_identifier.clone(),
                }
                .encode_to_vec(),
            },
            Principal::Identity(bytes) => MspPrincipal {
                principal_classification: msp_principal::Classification::Identity as i32,
                principal: bytes.clone(),
            },
            Principal::Unsupported(c) => MspPrincipal {
                principal_classification: *c,
                principal: Vec::new(),
            },
        }
    }
}

/// A set of verifying MSPs keyed by MSP ID (a channel's organisations).
#[derive(Debug, Clone, Default)]
pub struct MspManager {
    msps: std::collections::HashMap<String, Msp>,
}

impl MspManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an MSP.
    pub fn insert(&mut self, msp: Msp) {
        self.msps.insert(msp.msp_id.clone(), msp);
    }

    /// The MSP with this ID.
    pub fn get(&self, msp_id: &str) -> Option<&Msp> {
        self.msps.get(msp_id)
    }

    /// All MSPs.
    pub fn iter(&self) -> impl Iterator<Item = &Msp> {
        self.msps.values()
    }

    /// Deserializes and validates an identity against the MSP it names.
    pub fn deserialize_identity(&self, serialized: &[u8]) -> Result<Identity, MspError> {
        let identity =
            Identity::from_serialized(serialized).map_err(|source| MspError::Certificate {
                path: "serialized identity".into(),
                source,
            })?;
        let msp = self
            .get(identity.msp_id())
            .ok_or_else(|| MspError::UntrustedIdentity(identity.msp_id().to_string()))?;
        msp.validate(&identity)?;
        Ok(identity)
    }

    /// Whether `identity` satisfies `principal`, asking the MSP the identity names.
    pub fn satisfies_principal(
        &self,
        identity: &Identity,
        principal: &Principal,
    ) -> Result<(), MspError> {
        let msp = self
            .get(identity.msp_id())
            .ok_or_else(|| MspError::UntrustedIdentity(identity.msp_id().to_string()))?;
        msp.satisfies_principal(identity, principal)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::Signer as _;
    use crate::identity::tests::{ca_dn, issue, make_ca, user_dn, TestCa};

    /// An organisation for tests: its CA and an MSP directory with NodeOUs.
    pub(crate) struct TestOrg {
        pub msp_id: String,
        pub ca: TestCa,
        pub dir: tempfile::TempDir,
    }

    impl TestOrg {
        pub(crate) fn new(msp_id: &str) -> Self {
            let ca = make_ca(ca_dn());
            let dir = tempfile::tempdir().unwrap();
            write_msp_dir(
                dir.path(),
                &MspDirContents {
                    cacerts: vec![("ca-cert.pem".into(), ca.cert.pem())],
                    config: Some(MspConfigYaml::standard_node_ous("cacerts/ca-cert.pem")),
                    ..Default::default()
                },
            )
            .unwrap();
            TestOrg {
                msp_id: msp_id.to_string(),
                ca,
                dir,
            }
        }

        pub(crate) fn msp(&self) -> Msp {
            Msp::from_dir(self.dir.path(), &self.msp_id).unwrap()
        }

        /// An identity with the given OUs plus its key.
        pub(crate) fn identity(&self, cn: &str, ous: &[&str]) -> (Identity, SigningKey) {
            let (pem, key) = issue(&self.ca, user_dn(cn, ous), None);
            (Identity::new(&self.msp_id, pem.as_bytes()).unwrap(), key)
        }
    }

    #[test]
    fn config_yaml_as_fabric_tools_write_it() {
        let text = r#"NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/localhost-7054-ca-org1.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/localhost-7054-ca-org1.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/localhost-7054-ca-org1.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/localhost-7054-ca-org1.pem
    OrganizationalUnitIdentifier: orderer
"#;
        let parsed = MspConfigYaml::parse(text).unwrap();
        assert_eq!(
            parsed,
            MspConfigYaml::standard_node_ous("cacerts/localhost-7054-ca-org1.pem")
        );
        assert_eq!(MspConfigYaml::parse(&parsed.to_yaml()).unwrap(), parsed);
        assert!(matches!(
            MspConfigYaml::parse("NodeOUs: [1, 2"),
            Err(MspError::Config(_))
        ));
        assert_eq!(MspConfigYaml::parse("").unwrap(), MspConfigYaml::default());
    }

    #[test]
    fn node_ou_roles_are_detected() {
        let org = TestOrg::new("Org1MSP");
        let msp = org.msp();
        assert!(msp.node_ous_enabled());
        for (ou, role) in [
            ("client", NodeRole::Client),
            ("peer", NodeRole::Peer),
            ("admin", NodeRole::Admin),
            ("orderer", NodeRole::Orderer),
        ] {
            let (id, _) = org.identity("x", &[ou, "org1", "department1"]);
            assert_eq!(msp.role_of(&id).unwrap(), role, "OU {ou}");
        }
        let (none, _) = org.identity("x", &["org1"]);
        assert!(matches!(msp.role_of(&none), Err(MspError::NoNodeOu)));
        assert!(matches!(msp.validate(&none), Err(MspError::NoNodeOu)));
        let (both, _) = org.identity("x", &["client", "peer"]);
        assert!(matches!(msp.role_of(&both), Err(MspError::SeveralNodeOus)));
    }

    #[test]
    fn identities_from_another_ca_are_rejected() {
        let org = TestOrg::new("Org1MSP");
        let rogue = TestOrg::new("Org1MSP");
        let (id, _) = rogue.identity("mallory", &["client"]);
        assert!(matches!(
            org.msp().validate(&id),
            Err(MspError::UntrustedIdentity(_))
        ));
        let (id, _) = org.identity("alice", &["client"]);
        org.msp().validate(&id).unwrap();
        let other_msp = Identity::new("Org2MSP", id.cert_pem()).unwrap();
        assert!(matches!(
            org.msp().validate(&other_msp),
            Err(MspError::WrongMsp { .. })
        ));
    }

    #[test]
    fn principals_follow_fabric_semantics() {
        use msp_role::MspRoleType as R;
        let org = TestOrg::new("Org1MSP");
        let msp = org.msp();
        let (client, _) = org.identity("c", &["client"]);
        let (peer, _) = org.identity("p", &["peer"]);
        let (admin, _) = org.identity("a", &["admin"]);
        let p = |r| Principal::role("Org1MSP", r);
        for id in [&client, &peer, &admin] {
            msp.satisfies_principal(id, &p(R::Member)).unwrap();
        }
        msp.satisfies_principal(&client, &p(R::Client)).unwrap();
        assert!(msp.satisfies_principal(&client, &p(R::Peer)).is_err());
        msp.satisfies_principal(&peer, &p(R::Peer)).unwrap();
        assert!(msp.satisfies_principal(&peer, &p(R::Admin)).is_err());
        msp.satisfies_principal(&admin, &p(R::Admin)).unwrap();
        assert!(msp.satisfies_principal(&admin, &p(R::Orderer)).is_err());
        assert!(msp
            .satisfies_principal(&client, &Principal::role("Org2MSP", R::Member))
            .is_err());
        msp.satisfies_principal(&client, &Principal::Identity(client.serialized().to_vec()))
            .unwrap();
        assert!(msp
            .satisfies_principal(&peer, &Principal::Identity(client.serialized().to_vec()))
            .is_err());
        let ou = Principal::OrganizationUnit {
            msp_id: "Org1MSP".into(),
            organizational_unit_identifier: "client".into(),
            certifiers_identifier: msp.certifiers_identifier(&client).unwrap(),
        };
        msp.satisfies_principal(&client, &ou).unwrap();
        assert!(msp.satisfies_principal(&peer, &ou).is_err());
    }

    #[test]
    fn admincerts_make_an_admin() {
        let org = TestOrg::new("Org1MSP");
        let (client, _) = org.identity("boss", &["client"]);
        let admin = Principal::role("Org1MSP", msp_role::MspRoleType::Admin);
        assert!(org.msp().satisfies_principal(&client, &admin).is_err());
        let pem = String::from_utf8(client.cert_pem().to_vec()).unwrap();
        write_msp_dir(
            org.dir.path(),
            &MspDirContents {
                admincerts: vec![("boss.pem".into(), pem)],
                ..Default::default()
            },
        )
        .unwrap();
        let msp = org.msp();
        assert!(msp.is_listed_admin(&client));
        msp.satisfies_principal(&client, &admin).unwrap();
    }

    #[test]
    fn signing_identity_round_trips_through_a_directory() {
        let org = TestOrg::new("Org1MSP");
        let (id, key) = org.identity("user1", &["client"]);
        let user_dir = tempfile::tempdir().unwrap();
        let ski = hex::encode(key.public_key().ski());
        write_msp_dir(
            user_dir.path(),
            &MspDirContents {
                signcert: Some((
                    "cert.pem".into(),
                    String::from_utf8(id.cert_pem().to_vec()).unwrap(),
                )),
                key: Some(key),
                cacerts: vec![("ca.pem".into(), org.ca.cert.pem())],
                config: Some(MspConfigYaml::standard_node_ous("cacerts/ca.pem")),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(user_dir.path().join(format!("keystore/{ski}_sk")).exists());
        let signing = read_signing_identity(user_dir.path(), "Org1MSP").unwrap();
        assert_eq!(signing.identity(), &id);
        let sig = signing.sign(b"tx").unwrap();
        id.verify(b"tx", &sig).unwrap();

        // cryptogen names the key priv_sk.
        let ks = user_dir.path().join("keystore");
        fs::rename(ks.join(format!("{ski}_sk")), ks.join("priv_sk")).unwrap();
        read_signing_identity(user_dir.path(), "Org1MSP").unwrap();
        // A foreign key is not taken for ours.
        fs::write(ks.join("priv_sk"), SigningKey::generate().to_pkcs8_pem()).unwrap();
        assert!(matches!(
            read_signing_identity(user_dir.path(), "Org1MSP"),
            Err(MspError::NoMatchingKey(_))
        ));
    }

    #[test]
    fn msp_config_proto_matches_the_directory() {
        let org = TestOrg::new("Org1MSP");
        fs::write(org.dir.path().join("cacerts/README"), "not pem").unwrap();
        let config = msp_config_from_dir(org.dir.path(), "Org1MSP", false).unwrap();
        assert_eq!(config.r#type, 0);
        let fabric = pb::FabricMspConfig::decode(config.config.as_slice()).unwrap();
        assert_eq!(fabric.name, "Org1MSP");
        assert_eq!(fabric.root_certs, vec![org.ca.cert.pem().into_bytes()]);
        assert!(fabric.admins.is_empty());
        assert!(fabric.signing_identity.is_none());
        let crypto = fabric.crypto_config.unwrap();
        assert_eq!(crypto.signature_hash_family, "SHA2");
        assert_eq!(crypto.identity_identifier_hash_function, "SHA256");
        let nous = fabric.fabric_node_ous.unwrap();
        assert!(nous.enable);
        let client = nous.client_ou_identifier.unwrap();
        assert_eq!(client.organizational_unit_identifier, "client");
        assert_eq!(client.certificate, org.ca.cert.pem().into_bytes());
        assert_eq!(
            nous.orderer_ou_identifier
                .unwrap()
                .organizational_unit_identifier,
            "orderer"
        );
        // The MSP rebuilt from the proto behaves like the one read from the directory.
        let msp = Msp::from_config(&config).unwrap();
        let (id, _) = org.identity("p", &["peer"]);
        assert_eq!(msp.role_of(&id).unwrap(), NodeRole::Peer);
        assert!(matches!(
            msp_config_from_dir(Path::new("/nonexistent/msp"), "X", false),
            Err(MspError::Missing(_))
        ));
    }

    #[test]
    fn node_ou_certificate_must_be_the_issuing_ca() {
        // NodeOUs certified by CA #2 while identities come from CA #1 (also a root of the MSP).
        let org = TestOrg::new("Org1MSP");
        let second = make_ca(ca_dn());
        write_msp_dir(
            org.dir.path(),
            &MspDirContents {
                cacerts: vec![("second.pem".into(), second.cert.pem())],
                config: Some(MspConfigYaml::standard_node_ous("cacerts/second.pem")),
                ..Default::default()
            },
        )
        .unwrap();
        let (id, _) = org.identity("c", &["client"]);
        assert!(matches!(
            org.msp().role_of(&id),
            Err(MspError::CertifiersMismatch(_))
        ));
    }

    #[test]
    fn manager_deserializes_and_matches() {
        let org1 = TestOrg::new("Org1MSP");
        let org2 = TestOrg::new("Org2MSP");
        let mut mgr = MspManager::new();
        mgr.insert(org1.msp());
        mgr.insert(org2.msp());
        let (id, _) = org1.identity("c", &["client"]);
        let back = mgr.deserialize_identity(id.serialized()).unwrap();
        assert_eq!(back, id);
        let forged = Identity::new("Org2MSP", id.cert_pem()).unwrap();
        assert!(mgr.deserialize_identity(forged.serialized()).is_err());
        let unknown = Identity::new("Org9MSP", id.cert_pem()).unwrap();
        assert!(matches!(
            mgr.deserialize_identity(unknown.serialized()),
            Err(MspError::UntrustedIdentity(_))
        ));
    }

    #[test]
    fn principal_proto_round_trip() {
        let p = Principal::role("Org1MSP", msp_role::MspRoleType::Peer);
        let proto = p.to_proto();
        assert_eq!(proto.principal_classification, 0);
        let role = MspRole::decode(proto.principal.as_slice()).unwrap();
        assert_eq!(role.msp_identifier, "Org1MSP");
        assert_eq!(role.role, 3);
        assert_eq!(Principal::from_proto(&proto).unwrap(), p);
        let bad = MspPrincipal {
            principal_classification: 0,
            principal: vec![0xff],
        };
        assert!(matches!(
            Principal::from_proto(&bad),
            Err(MspError::Proto { .. })
        ));
    }
}
