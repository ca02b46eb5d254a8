//! Crypto material of the devnet: per organisation a root CA and a TLS CA, the MSP and TLS
//! directories of its nodes and users, and the connection profiles clients start from — the same
//! shapes, at the same places, as `network/fabric` writes for real Fabric.
//!
//! Keys are generated at first start (nothing is committed) and kept in the data dir, so a restart
//! on the same data dir keeps every identity. Node and user certificates are issued through the
//! organisation's Fabric CA service ([`crate::ca`]), so they carry exactly what Fabric CA puts in
//! an enrollment certificate (type and affiliation OUs, the attribute extension).
//!
//! Data dir layout:
//!
//! ```text
//! profiles/<org>.json                         Fabric common connection profile
//! msp/<org>/<user>/                           user MSP dirs (Admin, clerks, holders, ...)
//! crypto/<org>/ca/{ca-cert.pem,priv_sk}       the org's root CA (issues MSP identities)
//! crypto/<org>/tlsca/{tlsca-cert.pem,priv_sk} the org's TLS CA
//! crypto/<org>/msp/                           org MSP: cacerts, tlscacerts, config.yaml
//! crypto/<org>/peers/<host>/{msp,tls}/        peer identities (orderers/ for the orderer org)
//! crypto/<org>/users/Admin/tls/               the admin's TLS client certificate
//! ca/<org>/ca-cert.pem                        what clients trust for the CA's HTTPS endpoint
//! ca/<org>/tls-cert.pem, tls-key.pem          the CA endpoint's own TLS certificate
//! ca/<org>/registry.json                      the CA registry (identities, certificates)
//! ```

mod authority;
pub mod msp;
mod profile;
pub mod x509;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use authority::{CertAuthority, CA_LIFETIME, CERT_LIFETIME};
pub use msp::{write_msp_dir, write_org_msp, write_tls_dir, MspConfigYaml};
pub use profile::{connection_profile, write_profiles, ProfileEndpoints};
pub use x509::{CertInfo, CertSpec, CertUsage, IssuedCert, Name};

use crate::topology::{OrgSpec, Topology};

/// Errors creating, reading or writing crypto material.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key could not be parsed or used.
    #[error("key: {0}")]
    Crypto(#[from] fabric_common::crypto::CryptoError),
    /// A certificate could not be built, parsed or checked.
    #[error("certificate: {0}")]
    Certificate(String),
    /// PEM text is malformed.
    #[error("PEM: {0}")]
    Pem(String),
    /// A YAML file is malformed.
    #[error("YAML: {0}")]
    Yaml(String),
    /// fabric-common's MSP directory writer failed.
    #[error("MSP directory: {0}")]
    Msp(String),
    /// A JSON file is malformed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The topology names something this material does not have.
    #[error("unknown organisation {0}")]
    UnknownOrg(String),
}

impl MaterialError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        MaterialError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

pub(crate) fn read_string(path: &Path) -> Result<String, MaterialError> {
    std::fs::read_to_string(path).map_err(|e| MaterialError::io(path, e))
}

/// Writes a file atomically (temporary file, fsync, rename), creating parent directories.
pub(crate) fn write_file(path: &Path, data: &[u8]) -> Result<(), MaterialError> {
    write_with_mode(path, data, 0o644)
}

/// Like [`write_file`], readable by the owner only: for private keys and the CA registry.
pub(crate) fn write_secret_file(path: &Path, data: &[u8]) -> Result<(), MaterialError> {
    write_with_mode(path, data, 0o600)
}

fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), MaterialError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| MaterialError::io(parent, e))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| MaterialError::io(&tmp, e))?;
    f.write_all(data).map_err(|e| MaterialError::io(&tmp, e))?;
    f.sync_all().map_err(|e| MaterialError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| MaterialError::io(path, e))
}

/// Where everything lives in a data dir (see the module docs).
#[derive(Debug, Clone)]
pub struct DataLayout {
    root: PathBuf,
}

impl DataLayout {
    /// A layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataLayout { root: root.into() }
    }
    /// The data dir.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `profiles/<org>.json`.
    pub fn profile(&self, org: &str) -> PathBuf {
        self.root.join("profiles").join(format!("{org}.json"))
    }
    /// `msp/<org>/<user>/`: a user's MSP dir (`Admin` for the org admin).
    pub fn user_msp(&self, org: &str, user: &str) -> PathBuf {
        self.root.join("msp").join(org).join(user)
    }
    /// `crypto/<org>/`.
    pub fn org_dir(&self, org: &str) -> PathBuf {
        self.root.join("crypto").join(org)
    }
    /// `crypto/<org>/msp/`: the org-level MSP.
    pub fn org_msp(&self, org: &str) -> PathBuf {
        self.org_dir(org).join("msp")
    }
    /// `crypto/<org>/ca/`: root CA key and certificate.
    pub fn ca_dir(&self, org: &str) -> PathBuf {
        self.org_dir(org).join("ca")
    }
    /// `crypto/<org>/tlsca/`: TLS CA key and certificate.
    pub fn tlsca_dir(&self, org: &str) -> PathBuf {
        self.org_dir(org).join("tlsca")
    }
    /// `crypto/<org>/peers/<host>/` or `crypto/<org>/orderers/<host>/`.
    pub fn node_dir(&self, org: &str, kind: NodeKind, host: &str) -> PathBuf {
        let sub = match kind {
            NodeKind::Peer => "peers",
            NodeKind::Orderer => "orderers",
        };
        self.org_dir(org).join(sub).join(host)
    }
    /// `crypto/<org>/users/<user>/tls/`.
    pub fn user_tls(&self, org: &str, user: &str) -> PathBuf {
        self.org_dir(org).join("users").join(user).join("tls")
    }
    /// `ca/<org>/`: the CA service's home (endpoint TLS, registry).
    pub fn ca_home(&self, org: &str) -> PathBuf {
        self.root.join("ca").join(org)
    }
}

/// Peer or orderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A peer.
    Peer,
    /// An ordering service node.
    Orderer,
}

/// The Fabric CA identity type an identity is registered with; it becomes the type OU of its
/// enrollment certificate, which NodeOUs map to the MSP role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityType {
    /// `client`
    Client,
    /// `peer`
    Peer,
    /// `orderer`
    Orderer,
    /// `admin`
    Admin,
}

impl IdentityType {
    /// The type string Fabric CA uses.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityType::Client => "client",
            IdentityType::Peer => "peer",
            IdentityType::Orderer => "orderer",
            IdentityType::Admin => "admin",
        }
    }
}

/// Where an identity's TLS certificate goes, if it gets one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRole {
    /// A node's TLS server certificate for these hosts (IP and DNS SANs).
    Server(Vec<String>),
    /// A TLS client certificate.
    Client,
}

/// One identity an organisation has from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySpec {
    /// Enrollment ID (`peer0`, `Admin`, `clerk1`, ...).
    pub id: String,
    /// Registered type.
    pub kind: IdentityType,
    /// Value of the role attribute (`elicense.role`), embedded in the enrollment certificate.
    pub role: Option<String>,
    /// The node host name for peers and orderers (`peer0.police.elicense.gov`).
    pub host: Option<String>,
    /// Whether and which TLS certificate it gets.
    pub tls: Option<TlsRole>,
}

/// Every identity of `org` at start, in the order the real-Fabric scripts enroll them: its nodes,
/// `Admin` (type admin, role admin), then the topology's users (type client) with their roles.
/// The devnet runs one solo orderer, `orderer0.<domain>`.
pub fn org_identities(topology: &Topology, org: &OrgCrypto) -> Vec<IdentitySpec> {
    let mut out = Vec::new();
    for host in org.node_hosts() {
        let id = host.split('.').next().unwrap_or_default().to_owned();
        out.push(IdentitySpec {
            id,
            kind: if org.is_orderer {
                IdentityType::Orderer
            } else {
                IdentityType::Peer
            },
            role: None,
            host: Some(host.clone()),
            tls: Some(TlsRole::Server(vec![
                "127.0.0.1".into(),
                "localhost".into(),
                host,
            ])),
        });
    }
    out.push(IdentitySpec {
        id: "Admin".into(),
        kind: IdentityType::Admin,
        role: Some("admin".into()),
        host: None,
        tls: Some(TlsRole::Client),
    });
    if let Some(spec) = topology.org(&org.name) {
        for (user, role) in &spec.users {
            out.push(IdentitySpec {
                id: user.clone(),
                kind: IdentityType::Client,
                role: Some(role.clone()),
                host: None,
                tls: None,
            });
        }
    }
    out
}

/// One organisation's CAs and names.
#[derive(Debug, Clone)]
pub struct OrgCrypto {
    /// Organisation name (paths, profiles).
    pub name: String,
    /// MSP ID.
    pub msp_id: String,
    /// DNS domain of its nodes.
    pub domain: String,
    /// Number of peers (0 for the orderer organisation).
    pub peers: u32,
    /// Whether this is the ordering service organisation.
    pub is_orderer: bool,
    /// Root CA: issues MSP identities.
    pub ca: Arc<CertAuthority>,
    /// TLS CA: issues TLS certificates.
    pub tlsca: Arc<CertAuthority>,
}

impl OrgCrypto {
    /// The root CA's name as Fabric CA serves it: `ca.<domain>`.
    pub fn ca_name(&self) -> String {
        format!("ca.{}", self.domain)
    }
    /// The TLS CA's name: `tlsca.<domain>`.
    pub fn tlsca_name(&self) -> String {
        format!("tlsca.{}", self.domain)
    }
    /// Host names of its nodes: `peer<i>.<domain>`, or `orderer0.<domain>` for the orderer org.
    pub fn node_hosts(&self) -> Vec<String> {
        if self.is_orderer {
            vec![format!("orderer0.{}", self.domain)]
        } else {
            (0..self.peers)
                .map(|i| format!("peer{i}.{}", self.domain))
                .collect()
        }
    }
}

/// The crypto material of a whole network: every organisation's CAs and org MSP.
#[derive(Debug, Clone)]
pub struct NetworkCrypto {
    /// The data dir layout.
    pub layout: DataLayout,
    /// Organisations by name, the orderer organisation included.
    pub orgs: BTreeMap<String, OrgCrypto>,
}

impl NetworkCrypto {
    /// Loads every organisation's CAs from the data dir, generating (and saving) the missing ones,
    /// and writes each org-level MSP directory.
    pub fn load_or_create(data_dir: &Path, topology: &Topology) -> Result<Self, MaterialError> {
        let layout = DataLayout::new(data_dir);
        let mut orgs = BTreeMap::new();
        let orderer = OrgSpec {
            name: topology.orderer.org.clone(),
            msp_id: topology.orderer.msp_id.clone(),
            domain: topology.orderer.domain.clone(),
            description: String::new(),
            peers: 0,
            users: BTreeMap::new(),
        };
        for (spec, is_orderer) in std::iter::once((&orderer, true))
            .chain(topology.organizations.iter().map(|o| (o, false)))
        {
            let ca = CertAuthority::load_or_generate(
                &layout.ca_dir(&spec.name),
                msp::CA_CERT_FILE,
                &format!("ca.{}", spec.domain),
                &spec.name,
                "CA",
            )?;
            let tlsca = CertAuthority::load_or_generate(
                &layout.tlsca_dir(&spec.name),
                msp::TLSCA_CERT_FILE,
                &format!("tlsca.{}", spec.domain),
                &spec.name,
                "TLS",
            )?;
            msp::write_org_msp(&layout.org_msp(&spec.name), ca.cert_pem(), tlsca.cert_pem())?;
            orgs.insert(
                spec.name.clone(),
                OrgCrypto {
                    name: spec.name.clone(),
                    msp_id: spec.msp_id.clone(),
                    domain: spec.domain.clone(),
                    peers: spec.peers,
                    is_orderer,
                    ca: Arc::new(ca),
                    tlsca: Arc::new(tlsca),
                },
            );
        }
        Ok(NetworkCrypto { layout, orgs })
    }

    /// One organisation's material.
    pub fn org(&self, name: &str) -> Result<&OrgCrypto, MaterialError> {
        self.orgs
            .get(name)
            .ok_or_else(|| MaterialError::UnknownOrg(name.to_owned()))
    }
}

#[cfg(test)]
mod tests;
