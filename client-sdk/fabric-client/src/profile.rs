//! Fabric's common connection profile (JSON or YAML), the file the Fabric samples and the official
//! SDKs use to describe a network to a client: `organizations` (MSP ID, peers, CAs), `peers` (URL,
//! TLS CA certificates, gRPC options such as `ssl-target-name-override`), `certificateAuthorities`
//! and `channels`. Relative `path`s resolve against the profile file's folder.
//!
//! For mutual TLS the client's own TLS certificate and key are read from `client.tlsCerts.client`
//! (`cert` and `key`, each a `path` or an inline `pem`), the section Fabric's Go SDK reads; they
//! are presented to every peer of the profile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::identity::IdentityError;

/// A parsed connection profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionProfile {
    /// The profile's name.
    #[serde(default)]
    pub name: String,
    /// The profile's version.
    #[serde(default)]
    pub version: String,
    /// Client settings: which organisation this client belongs to.
    #[serde(default)]
    pub client: ClientSection,
    /// Organisations by name.
    #[serde(default)]
    pub organizations: BTreeMap<String, OrganizationConfig>,
    /// Peers by name.
    #[serde(default)]
    pub peers: BTreeMap<String, PeerConfig>,
    /// Certificate authorities by name.
    #[serde(default)]
    pub certificate_authorities: BTreeMap<String, CaConfig>,
    /// Channels by name.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Folder against which relative paths resolve.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The `client` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientSection {
    /// The name of this client's organisation in `organizations`.
    #[serde(default)]
    pub organization: Option<String>,
    /// The client's TLS material (`tlsCerts`), for peers that require client certificates.
    #[serde(default, rename = "tlsCerts")]
    pub tls_certs: Option<ClientTlsCerts>,
}

/// `client.tlsCerts`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientTlsCerts {
    /// The client's TLS certificate and key (`client.tlsCerts.client`).
    #[serde(default)]
    pub client: Option<ClientTlsPair>,
}

/// A TLS client certificate and its private key.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientTlsPair {
    /// The certificate (PEM).
    #[serde(default)]
    pub cert: Option<PemSource>,
    /// The private key (PEM).
    #[serde(default)]
    pub key: Option<PemSource>,
}

/// One PEM document, inline (`pem`) or in a file (`path`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PemSource {
    /// Inline PEM text.
    #[serde(default)]
    pub pem: Option<String>,
    /// A PEM file path.
    #[serde(default)]
    pub path: Option<String>,
}

/// One organisation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationConfig {
    /// The MSP ID.
    #[serde(default)]
    pub mspid: String,
    /// Names of the organisation's peers.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Names of the organisation's CAs.
    #[serde(default)]
    pub certificate_authorities: Vec<String>,
}

/// TLS CA certificates given inline (`pem`, one string or a list) or by file (`path`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TlsCaCerts {
    /// Inline PEM text(s).
    #[serde(default)]
    pub pem: Option<OneOrMany>,
    /// A PEM file path (or list of paths).
    #[serde(default)]
    pub path: Option<OneOrMany>,
}

/// A value that may be one string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single string.
    One(String),
    /// A list of strings.
    Many(Vec<String>),
}

impl OneOrMany {
    fn iter(&self) -> impl Iterator<Item = &String> {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s).iter(),
            OneOrMany::Many(v) => v.iter(),
        }
    }
}

/// One peer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerConfig {
    /// `grpc://host:port` or `grpcs://host:port`.
    pub url: String,
    /// TLS CA certificates of the peer.
    #[serde(default, rename = "tlsCACerts")]
    pub tls_ca_certs: Option<TlsCaCerts>,
    /// gRPC options (`ssl-target-name-override`, `hostnameOverride`, …), kept as given.
    #[serde(default)]
    pub grpc_options: BTreeMap<String, serde_json::Value>,
}

/// One certificate authority.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaConfig {
    /// `https://host:port`.
    pub url: String,
    /// The CA name inside the server (`--ca.name`), if the server hosts several.
    #[serde(default)]
    pub ca_name: Option<String>,
    /// TLS CA certificates of the CA server.
    #[serde(default, rename = "tlsCACerts")]
    pub tls_ca_certs: Option<TlsCaCerts>,
    /// HTTP options (`verify`, …), kept as given.
    #[serde(default)]
    pub http_options: BTreeMap<String, serde_json::Value>,
}

/// One channel: which peers serve it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChannelConfig {
    /// Peers by name, with their roles (`endorsingPeer`, `chaincodeQuery`, …).
    #[serde(default)]
    pub peers: BTreeMap<String, serde_json::Value>,
}

/// A client TLS certificate and its private key, both PEM.
pub type ClientTlsPem = (Vec<u8>, Vec<u8>);

/// A peer endpoint resolved from a profile, ready for [`crate::gateway::Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEndpoint {
    /// The peer's name in the profile.
    pub name: String,
    /// `http(s)://host:port` form of the URL (gRPC `grpcs` becomes `https`).
    pub url: String,
    /// Whether TLS is used.
    pub tls: bool,
    /// TLS root certificates (PEM).
    pub tls_ca_pems: Vec<Vec<u8>>,
    /// TLS server name to verify instead of the URL's host.
    pub server_name_override: Option<String>,
    /// The client's TLS certificate and key (PEM) for mutual TLS, from `client.tlsCerts`.
    pub client_tls: Option<ClientTlsPem>,
}

/// A CA endpoint resolved from a profile, ready for [`crate::ca::CaClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaEndpoint {
    /// The CA's name in the profile.
    pub name: String,
    /// `https://host:port`.
    pub url: String,
    /// The CA name inside the server.
    pub ca_name: Option<String>,
    /// TLS root certificates (PEM).
    pub tls_ca_pems: Vec<Vec<u8>>,
}

fn malformed(message: String) -> IdentityError {
    IdentityError::Malformed {
        what: "connection profile".into(),
        message,
    }
}

impl ConnectionProfile {
    /// Parses a profile from JSON or YAML text (YAML is a superset of JSON, so both parse).
    pub fn parse(text: &str, base_dir: impl Into<PathBuf>) -> Result<Self, IdentityError> {
        let mut profile: ConnectionProfile = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?
        } else {
            serde_yaml::from_str(text).map_err(|e| malformed(e.to_string()))?
        };
        profile.base_dir = base_dir.into();
        Ok(profile)
    }

    /// Reads a profile file (`.json`, `.yaml` or `.yml`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, IdentityError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| IdentityError::io(path, e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, base)
    }

    /// The client's organisation name (`client.organization`), or the only organisation.
    pub fn client_organization(&self) -> Option<&str> {
        self.client.organization.as_deref().or_else(|| {
            (self.organizations.len() == 1)
                .then(|| self.organizations.keys().next().map(String::as_str))?
        })
    }

    /// The MSP ID of an organisation.
    pub fn msp_id(&self, organization: &str) -> Result<&str, IdentityError> {
        self.organizations
            .get(organization)
            .map(|o| o.mspid.as_str())
            .ok_or_else(|| malformed(format!("no organization {organization:?}")))
    }

    fn tls_pems(&self, certs: &Option<TlsCaCerts>) -> Result<Vec<Vec<u8>>, IdentityError> {
        let mut out = Vec::new();
        if let Some(certs) = certs {
            if let Some(pem) = &certs.pem {
                out.extend(pem.iter().map(|p| p.as_bytes().to_vec()));
            }
            if let Some(paths) = &certs.path {
                for p in paths.iter() {
                    let path = self.base_dir.join(p);
                    out.push(std::fs::read(&path).map_err(|e| IdentityError::io(&path, e))?);
                }
            }
        }
        Ok(out)
    }

    fn pem_source(&self, source: &PemSource, what: &str) -> Result<Vec<u8>, IdentityError> {
        match (&source.pem, &source.path) {
            (Some(pem), _) => Ok(pem.as_bytes().to_vec()),
            (None, Some(p)) => {
                let path = self.base_dir.join(p);
                std::fs::read(&path).map_err(|e| IdentityError::io(&path, e))
            }
            (None, None) => Err(malformed(format!("{what} has neither pem nor path"))),
        }
    }

    /// The client's TLS certificate and key for mutual TLS (`client.tlsCerts.client`), when the
    /// profile gives them; a certificate without its key (or the reverse) is malformed.
    pub fn client_tls(&self) -> Result<Option<ClientTlsPem>, IdentityError> {
        let Some(pair) = self
            .client
            .tls_certs
            .as_ref()
            .and_then(|t| t.client.as_ref())
        else {
            return Ok(None);
        };
        match (&pair.cert, &pair.key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some((
                self.pem_source(cert, "client.tlsCerts.client.cert")?,
                self.pem_source(key, "client.tlsCerts.client.key")?,
            ))),
            _ => Err(malformed(
                "client.tlsCerts.client needs both cert and key".into(),
            )),
        }
    }

    /// Resolves one peer by name.
    pub fn peer(&self, name: &str) -> Result<PeerEndpoint, IdentityError> {
        let peer = self
            .peers
            .get(name)
            .ok_or_else(|| malformed(format!("no peer {name:?}")))?;
        let (tls, rest) = if let Some(rest) = peer.url.strip_prefix("grpcs://") {
            (true, rest)
        } else if let Some(rest) = peer.url.strip_prefix("grpc://") {
            (false, rest)
        } else if let Some(rest) = peer.url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = peer.url.strip_prefix("http://") {
            (false, rest)
        } else {
            (true, peer.url.as_str())
        };
        let override_name = ["ssl-target-name-override", "hostnameOverride"]
            .iter()
            .find_map(|k| peer.grpc_options.get(*k)?.as_str().map(str::to_string));
        Ok(PeerEndpoint {
            name: name.to_string(),
            url: format!("{}://{rest}", if tls { "https" } else { "http" }),
            tls,
            tls_ca_pems: self.tls_pems(&peer.tls_ca_certs)?,
            server_name_override: override_name,
            client_tls: if tls { self.client_tls()? } else { None },
        })
    }

    /// The peers of an organisation, in the profile's order.
    pub fn organization_peers(
        &self,
        organization: &str,
    ) -> Result<Vec<PeerEndpoint>, IdentityError> {
        let org = self
            .organizations
            .get(organization)
            .ok_or_else(|| malformed(format!("no organization {organization:?}")))?;
        org.peers.iter().map(|p| self.peer(p)).collect()
    }

    /// Resolves one certificate authority by name.
    pub fn certificate_authority(&self, name: &str) -> Result<CaEndpoint, IdentityError> {
        let ca = self
            .certificate_authorities
            .get(name)
            .ok_or_else(|| malformed(format!("no certificate authority {name:?}")))?;
        Ok(CaEndpoint {
            name: name.to_string(),
            url: ca.url.clone(),
            ca_name: ca.ca_name.clone(),
            tls_ca_pems: self.tls_pems(&ca.tls_ca_certs)?,
        })
    }

    /// The first certificate authority of an organisation.
    pub fn organization_ca(&self, organization: &str) -> Result<CaEndpoint, IdentityError> {
        let org = self
            .organizations
            .get(organization)
            .ok_or_else(|| malformed(format!("no organization {organization:?}")))?;
        let name = org
            .certificate_authorities
            .first()
            .ok_or_else(|| malformed(format!("organization {organization:?} lists no CA")))?;
        self.certificate_authority(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fabric_samples_profile_shape_in_json_and_yaml() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("ca.pem"), "CA PEM").unwrap();
        let json = r#"{
          "name": "test-network-org1", "version": "1.0.0",
          "client": {"organization": "Org1", "connection": {"timeout": {"peer": {"endorser": "300"}}}},
          "organizations": {"Org1": {"mspid": "Org1MSP", "peers": ["peer0.org1.example.com"],
                                      "certificateAuthorities": ["ca.org1.example.com"]}},
          "peers": {"peer0.org1.example.com": {"url": "grpcs://localhost:7051",
                     "tlsCACerts": {"pem": "PEER PEM"},
                     "grpcOptions": {"ssl-target-name-override": "peer0.org1.example.com",
                                     "hostnameOverride": "peer0.org1.example.com"}}},
          "certificateAuthorities": {"ca.org1.example.com": {"url": "https://localhost:7054",
                     "caName": "ca-org1", "tlsCACerts": {"pem": ["CA1"], "path": "ca.pem"},
                     "httpOptions": {"verify": false}}},
          "channels": {"mychannel": {"peers": {"peer0.org1.example.com": {"endorsingPeer": true}}}}
        }"#;
        let p = ConnectionProfile::parse(json, tmp.path()).unwrap();
        assert_eq!(p.client_organization(), Some("Org1"));
        assert_eq!(p.msp_id("Org1").unwrap(), "Org1MSP");
        let peers = p.organization_peers("Org1").unwrap();
        assert_eq!(
            peers,
            vec![PeerEndpoint {
                name: "peer0.org1.example.com".into(),
                url: "https://localhost:7051".into(),
                tls: true,
                tls_ca_pems: vec![b"PEER PEM".to_vec()],
                server_name_override: Some("peer0.org1.example.com".into()),
                client_tls: None,
            }]
        );
        let ca = p.organization_ca("Org1").unwrap();
        assert_eq!(ca.ca_name.as_deref(), Some("ca-org1"));
        assert_eq!(ca.tls_ca_pems, vec![b"CA1".to_vec(), b"CA PEM".to_vec()]);
        assert!(p.channels.contains_key("mychannel"));

        let yaml = "name: y\nclient:\n  organization: Org1\norganizations:\n  Org1:\n    mspid: Org1MSP\n    peers: [p0]\npeers:\n  p0:\n    url: grpc://127.0.0.1:7051\n";
        let y = ConnectionProfile::parse(yaml, tmp.path()).unwrap();
        let peers = y.organization_peers("Org1").unwrap();
        assert_eq!(peers[0].url, "http://127.0.0.1:7051");
        assert!(!peers[0].tls);
        assert!(y.peer("missing").is_err());
    }

    #[test]
    fn client_tls_certificate_and_key_come_from_client_tls_certs() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("client.key"), "KEY PEM").unwrap();
        let yaml = "client:\n  organization: Org1\n  tlsCerts:\n    client:\n      cert:\n        pem: CERT PEM\n      key:\n        path: client.key\norganizations:\n  Org1:\n    mspid: Org1MSP\n    peers: [p0, p1]\npeers:\n  p0:\n    url: grpcs://127.0.0.1:7051\n  p1:\n    url: grpc://127.0.0.1:7052\n";
        let p = ConnectionProfile::parse(yaml, tmp.path()).unwrap();
        let pair = (b"CERT PEM".to_vec(), b"KEY PEM".to_vec());
        assert_eq!(p.client_tls().unwrap(), Some(pair.clone()));
        let peers = p.organization_peers("Org1").unwrap();
        // Presented to TLS peers; a plaintext peer has no TLS to present it on.
        assert_eq!(peers[0].client_tls, Some(pair.clone()));
        assert_eq!(peers[1].client_tls, None);
        let endpoint = crate::gateway::Endpoint::from(peers[0].clone());
        assert_eq!(endpoint.client_tls, Some(pair));

        // A certificate without its key cannot be used: refused when the profile is resolved.
        let half = "client:\n  tlsCerts:\n    client:\n      cert:\n        pem: CERT PEM\npeers:\n  p0:\n    url: grpcs://127.0.0.1:7051\n";
        let p = ConnectionProfile::parse(half, tmp.path()).unwrap();
        let err = p.peer("p0").unwrap_err().to_string();
        assert!(err.contains("needs both cert and key"), "{err}");
        // A key file that is not there names the file.
        let missing = "client:\n  tlsCerts:\n    client:\n      cert:\n        pem: C\n      key:\n        path: nowhere.key\n";
        let p = ConnectionProfile::parse(missing, tmp.path()).unwrap();
        assert!(p
            .client_tls()
            .unwrap_err()
            .to_string()
            .contains("nowhere.key"));
    }
}
