//! Chaincode-as-a-service (CCaaS) install packages, as `peer lifecycle chaincode install` takes them.
//!
//! The package is a gzipped tar of two regular files:
//!
//! - `metadata.json`: `{"label":"<label>","type":"ccaas"}` — `ccaas` selects Fabric's built-in
//!   CCaaS external builder;
//! - `code.tar.gz`: a gzipped tar holding `connection.json`, which tells the peer where the
//!   chaincode server listens and how to reach it over TLS:
//!   `{"address","dial_timeout","tls_required","client_auth_required","root_cert","client_key","client_cert"}`.
//!
//! Fabric names an installed package `<label>:<hex SHA-256 of the package file>` (its
//! `persistence.PackageID`), and the peer prints the same ID on install. The package is built
//! deterministically (fixed mtimes, modes and owners, gzip without a timestamp), so every
//! organisation that packages the same label and connection gets the same package ID.

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;

/// Why a package cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The label does not match Fabric's `^[[:alnum:]][[:alnum:]_.+-]*$`.
    #[error("invalid label `{0}`: it must start with a letter or digit and contain only letters, digits and . + - _")]
    Label(String),
    /// The address is not `host:port`.
    #[error("invalid address `{0}`: expected HOST:PORT")]
    Address(String),
    /// Client authentication needs a client key and certificate (and TLS).
    #[error("client authentication requires TLS, a client certificate and a client key")]
    ClientAuth,
    /// Writing the archive failed.
    #[error("cannot write the package: {0}")]
    Io(#[from] std::io::Error),
}

/// `connection.json`: how the peer dials the chaincode server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// `host:port` the peer dials.
    pub address: String,
    /// Dial timeout as a Go duration, e.g. `10s`.
    pub dial_timeout: String,
    /// Whether the chaincode server uses TLS.
    pub tls_required: bool,
    /// Whether the chaincode server requires the peer's client certificate.
    pub client_auth_required: bool,
    /// PEM of the CA that signed the chaincode server's certificate (TLS).
    pub root_cert: String,
    /// PEM of the key the peer presents (mutual TLS).
    pub client_key: String,
    /// PEM of the certificate the peer presents (mutual TLS).
    pub client_cert: String,
}

impl Connection {
    /// A plaintext connection to `address` with a 10-second dial timeout.
    pub fn plaintext(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            dial_timeout: "10s".to_owned(),
            tls_required: false,
            client_auth_required: false,
            root_cert: String::new(),
            client_key: String::new(),
            client_cert: String::new(),
        }
    }
}

#[derive(Serialize)]
struct Metadata<'a> {
    label: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// Whether `label` is a valid Fabric package label.
pub fn is_valid_label(label: &str) -> bool {
    let mut chars = label.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
}

fn tar_gz(files: &[(&str, &[u8])]) -> Result<Vec<u8>, PackageError> {
    let gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, *bytes)?;
    }
    let gz = tar.into_inner()?;
    Ok(gz.finish()?)
}

/// Builds the install package for `label` and `connection`.
pub fn build(label: &str, connection: &Connection) -> Result<Vec<u8>, PackageError> {
    if !is_valid_label(label) {
        return Err(PackageError::Label(label.to_owned()));
    }
    match connection.address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => return Err(PackageError::Address(connection.address.clone())),
    }
    if connection.client_auth_required
        && (!connection.tls_required
            || connection.client_cert.is_empty()
            || connection.client_key.is_empty())
    {
        return Err(PackageError::ClientAuth);
    }
    let connection_json = serde_json::to_vec_pretty(connection)
        .map_err(|e| PackageError::Io(std::io::Error::other(e)))?;
    let code = tar_gz(&[("connection.json", &connection_json)])?;
    let metadata = serde_json::to_vec(&Metadata {
        label,
        kind: "ccaas",
    })
    .map_err(|e| PackageError::Io(std::io::Error::other(e)))?;
    tar_gz(&[("metadata.json", &metadata), ("code.tar.gz", &code)])
}

/// Fabric's package ID: `<label>:<hex SHA-256 of the package bytes>`.
pub fn package_id(label: &str, package: &[u8]) -> String {
    format!("{label}:{}", hex::encode(Sha256::digest(package)))
}

/// Builds the package, writes it to `out` and returns its package ID.
pub fn write(
    label: &str,
    connection: &Connection,
    out: &std::path::Path,
) -> Result<String, PackageError> {
    let bytes = build(label, connection)?;
    let mut f = std::fs::File::create(out)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    Ok(package_id(label, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn entries(gz: &[u8]) -> Vec<(String, Vec<u8>, tar::EntryType)> {
        let mut ar = tar::Archive::new(GzDecoder::new(gz));
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let kind = e.header().entry_type();
                let mut buf = Vec::new();
                e.read_to_end(&mut buf).unwrap();
                (name, buf, kind)
            })
            .collect()
    }

    #[test]
    fn layout_matches_what_the_peer_parses() {
        let pkg = build(
            "elicense_1.0",
            &Connection::plaintext("elicense.police:9999"),
        )
        .unwrap();
        let outer = entries(&pkg);
        assert_eq!(outer.len(), 2);
        assert!(outer.iter().all(|(_, _, k)| *k == tar::EntryType::Regular));
        assert_eq!(outer[0].0, "metadata.json");
        let meta: serde_json::Value = serde_json::from_slice(&outer[0].1).unwrap();
        assert_eq!(
            meta,
            serde_json::json!({"type": "ccaas", "label": "elicense_1.0"})
        );
        assert_eq!(outer[1].0, "code.tar.gz");
        let inner = entries(&outer[1].1);
        assert_eq!(inner.len(), 1);
        assert_eq!(inner[0].0, "connection.json");
        let conn: serde_json::Value = serde_json::from_slice(&inner[0].1).unwrap();
        assert_eq!(conn["address"], "elicense.police:9999");
        assert_eq!(conn["dial_timeout"], "10s");
        assert_eq!(conn["tls_required"], false);
        assert_eq!(conn["client_auth_required"], false);
        for k in ["root_cert", "client_key", "client_cert"] {
            assert_eq!(conn[k], "");
        }
    }

    #[test]
    fn deterministic_package_id() {
        let c = Connection::plaintext("h:1");
        let a = build("l", &c).unwrap();
        let b = build("l", &c).unwrap();
        assert_eq!(a, b);
        let id = package_id("l", &a);
        assert_eq!(id.len(), 2 + 64);
        assert!(id.starts_with("l:"));
    }

    #[test]
    fn rejects_bad_input() {
        let c = Connection::plaintext("h:1");
        assert!(matches!(build("_x", &c), Err(PackageError::Label(_))));
        assert!(matches!(build("a b", &c), Err(PackageError::Label(_))));
        assert!(matches!(
            build("x", &Connection::plaintext("nohost")),
            Err(PackageError::Address(_))
        ));
        let mut mtls = Connection::plaintext("h:1");
        mtls.client_auth_required = true;
        assert!(matches!(build("x", &mtls), Err(PackageError::ClientAuth)));
    }
}
