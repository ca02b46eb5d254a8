//! Fabric MSP directories: the layout `fabric-ca-client enroll` and `cryptogen` write, and the one
//! peers, orderers and the CLI read (`signcerts/`, `keystore/`, `cacerts/`, `intermediatecerts/`,
//! `tlscacerts/`, optional `config.yaml` with Node OUs).

use std::path::{Path, PathBuf};

use fabric_common::crypto::SigningKey;
use fabric_common::msp::{self as common_msp, MspConfigYaml, MspError};

use crate::identity::{Identity, IdentityError, SigningIdentity};

/// Maps `fabric-common`'s MSP errors onto this crate's identity errors.
fn from_msp(e: MspError) -> IdentityError {
    match e {
        MspError::Io { path, source } => IdentityError::Io { path, source },
        MspError::NoMatchingKey(keystore) => IdentityError::KeyNotFound(keystore),
        MspError::Certificate { path, source } => {
            IdentityError::InvalidCertificate(format!("{path}: {source}"))
        }
        MspError::Key(e) => IdentityError::InvalidKey(e),
        other => IdentityError::Malformed {
            what: "MSP directory".into(),
            message: other.to_string(),
        },
    }
}

/// Reads the signing identity of an MSP directory: the first certificate in `signcerts/` and the
/// private key in `keystore/` whose public key matches it (`<SKI>_sk` first, then every other
/// file in name order; files that are not keys are skipped). The reading is `fabric-common`'s,
/// the same the devnet's peers use.
pub fn load_signing_identity(
    msp_id: &str,
    msp_dir: impl AsRef<Path>,
) -> Result<SigningIdentity, IdentityError> {
    let signing = common_msp::read_signing_identity(msp_dir.as_ref(), msp_id).map_err(from_msp)?;
    SigningIdentity::try_from(signing)
}

/// Reads only the identity (certificate) of an MSP directory.
pub fn load_identity(msp_id: &str, msp_dir: impl AsRef<Path>) -> Result<Identity, IdentityError> {
    let cert_path = first_file(&msp_dir.as_ref().join("signcerts"))?;
    Identity::from_pem_file(msp_id, cert_path)
}

fn first_file(dir: &Path) -> Result<PathBuf, IdentityError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| IdentityError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .next()
        .ok_or_else(|| IdentityError::Malformed {
            what: "MSP directory".into(),
            message: format!("{} holds no file", dir.display()),
        })
}

/// What to write into an MSP directory.
#[derive(Debug, Clone, Default)]
pub struct MspDirContents {
    /// The signing certificate (PEM), written to `signcerts/cert.pem`.
    pub signcert_pem: Vec<u8>,
    /// The private key (PKCS#8 PEM), written to `keystore/<SKI hex>_sk`; `None` writes no key.
    pub private_key_pem: Option<String>,
    /// Root CA certificates (PEM), written to `cacerts/`.
    pub cacerts_pem: Vec<Vec<u8>>,
    /// Intermediate CA certificates (PEM), written to `intermediatecerts/`.
    pub intermediatecerts_pem: Vec<Vec<u8>>,
    /// TLS root certificates (PEM), written to `tlscacerts/`.
    pub tlscacerts_pem: Vec<Vec<u8>>,
    /// File name stem for CA files (fabric-ca-client uses `<host>-<port>[-<caname>]`).
    pub ca_file_stem: String,
    /// Writes a `config.yaml` enabling Node OUs (client, peer, admin, orderer) against the first
    /// root CA certificate.
    pub node_ous: bool,
}

fn pem_text(what: &str, pem: &[u8]) -> Result<String, IdentityError> {
    String::from_utf8(pem.to_vec()).map_err(|_| IdentityError::Malformed {
        what: what.into(),
        message: "PEM is not UTF-8 text".into(),
    })
}

/// Writes an MSP directory, creating folders as needed; the key file is readable by its owner
/// only. The layout and writing are `fabric-common`'s (fabric-ca-client's layout).
pub fn write_msp_dir(
    dir: impl AsRef<Path>,
    contents: &MspDirContents,
) -> Result<(), IdentityError> {
    let stem = if contents.ca_file_stem.is_empty() {
        "ca-cert"
    } else {
        contents.ca_file_stem.as_str()
    };
    let numbered = |i: usize| {
        if i == 0 {
            format!("{stem}.pem")
        } else {
            format!("{stem}-{i}.pem")
        }
    };
    let files = |what: &str, pems: &[Vec<u8>]| -> Result<Vec<(String, String)>, IdentityError> {
        pems.iter()
            .enumerate()
            .map(|(i, pem)| Ok((numbered(i), pem_text(what, pem)?)))
            .collect()
    };
    let key = contents
        .private_key_pem
        .as_deref()
        .map(|pem| SigningKey::from_pem(pem.as_bytes()))
        .transpose()?;
    let common = common_msp::MspDirContents {
        signcert: Some((
            "cert.pem".into(),
            pem_text("signing certificate", &contents.signcert_pem)?,
        )),
        key,
        cacerts: files("CA certificate", &contents.cacerts_pem)?,
        intermediatecerts: files("intermediate certificate", &contents.intermediatecerts_pem)?,
        tlscacerts: files("TLS CA certificate", &contents.tlscacerts_pem)?,
        admincerts: Vec::new(),
        config: contents
            .node_ous
            .then(|| MspConfigYaml::standard_node_ous(&format!("cacerts/{stem}.pem"))),
    };
    common_msp::write_msp_dir(dir.as_ref(), &common).map_err(from_msp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PrivateKeySigner;

    #[test]
    fn written_msp_dir_loads_back_with_the_matching_key() {
        let key = PrivateKeySigner::generate();
        let cert = crate::identity::tests::rcgen_cert(&key);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("msp");
        // A stray key in the keystore must be skipped, not used.
        std::fs::create_dir_all(dir.join("keystore")).unwrap();
        std::fs::write(
            dir.join("keystore/0000_sk"),
            PrivateKeySigner::generate().to_pkcs8_pem(),
        )
        .unwrap();
        write_msp_dir(
            &dir,
            &MspDirContents {
                signcert_pem: cert.clone(),
                private_key_pem: Some(key.to_pkcs8_pem()),
                cacerts_pem: vec![cert.clone()],
                ca_file_stem: "localhost-7054".into(),
                node_ous: true,
                ..Default::default()
            },
        )
        .unwrap();
        let ski = hex::encode(key.public_key().ski());
        assert!(dir.join(format!("keystore/{ski}_sk")).is_file());
        assert!(dir.join("cacerts/localhost-7054.pem").is_file());
        let yaml = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
        assert!(yaml.contains("Certificate: cacerts/localhost-7054.pem"));
        let signing = load_signing_identity("Org1MSP", &dir).unwrap();
        assert_eq!(signing.identity().credentials(), cert.as_slice());
        let sig = signing.sign(b"x").unwrap();
        key.public_key().verify(b"x", &sig).unwrap();
        // Other hashes reach the key as the leftmost 256 bits of the digest, as ECDSA takes them.
        let sig384 = signing
            .clone()
            .with_hash(crate::identity::HashAlgorithm::Sha384)
            .sign(b"x")
            .unwrap();
        let d384 = crate::identity::HashAlgorithm::Sha384.digest(b"x");
        let left: [u8; 32] = d384[..32].try_into().unwrap();
        key.public_key().verify_digest(&left, &sig384).unwrap();
        std::fs::remove_file(dir.join(format!("keystore/{ski}_sk"))).unwrap();
        assert!(matches!(
            load_signing_identity("Org1MSP", &dir),
            Err(IdentityError::KeyNotFound(_))
        ));
    }
}
