//! Fabric MSP directories: the layout `fabric-ca-client enroll` and `cryptogen` write, and the one
//! peers, orderers and the CLI read (`signcerts/`, `keystore/`, `cacerts/`, `intermediatecerts/`,
//! `tlscacerts/`, optional `config.yaml` with Node OUs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::identity::{
    certificate_public_key, Identity, IdentityError, PrivateKeySigner, SigningIdentity,
};

/// Reads the signing identity of an MSP directory: the first certificate in `signcerts/` and the
/// private key in `keystore/` whose public key matches it (files are tried in name order).
pub fn load_signing_identity(
    msp_id: &str,
    msp_dir: impl AsRef<Path>,
) -> Result<SigningIdentity, IdentityError> {
    let dir = msp_dir.as_ref();
    let cert_path = first_file(&dir.join("signcerts"))?;
    let cert = std::fs::read(&cert_path).map_err(|e| IdentityError::io(&cert_path, e))?;
    let public = certificate_public_key(&cert)?;
    let keystore = dir.join("keystore");
    for path in sorted_files(&keystore)? {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        // Keystores may hold other keys (or non-key files): skip what does not parse or match.
        if let Ok(key) = PrivateKeySigner::from_pem(&pem) {
            if *key.public_key() == public {
                let identity = Identity::new(msp_id, cert)?;
                return Ok(SigningIdentity::new(identity, Arc::new(key)));
            }
        }
    }
    Err(IdentityError::KeyNotFound(keystore))
}

/// Reads only the identity (certificate) of an MSP directory.
pub fn load_identity(msp_id: &str, msp_dir: impl AsRef<Path>) -> Result<Identity, IdentityError> {
    let cert_path = first_file(&msp_dir.as_ref().join("signcerts"))?;
    Identity::from_pem_file(msp_id, cert_path)
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>, IdentityError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| IdentityError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn first_file(dir: &Path) -> Result<PathBuf, IdentityError> {
    sorted_files(dir)?
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

/// Writes an MSP directory, creating folders as needed; the key file is readable by its owner only.
pub fn write_msp_dir(
    dir: impl AsRef<Path>,
    contents: &MspDirContents,
) -> Result<(), IdentityError> {
    let dir = dir.as_ref();
    let stem = if contents.ca_file_stem.is_empty() {
        "ca-cert"
    } else {
        contents.ca_file_stem.as_str()
    };
    let write = |sub: &str, name: &str, data: &[u8]| -> Result<PathBuf, IdentityError> {
        let folder = dir.join(sub);
        std::fs::create_dir_all(&folder).map_err(|e| IdentityError::io(&folder, e))?;
        let path = folder.join(name);
        std::fs::write(&path, data).map_err(|e| IdentityError::io(&path, e))?;
        Ok(path)
    };
    write("signcerts", "cert.pem", &contents.signcert_pem)?;
    if let Some(key_pem) = &contents.private_key_pem {
        let key = PrivateKeySigner::from_pem(key_pem.as_bytes())?;
        let name = format!("{}_sk", hex::encode(key.public_key().ski()));
        let path = write("keystore", &name, key_pem.as_bytes())?;
        restrict_to_owner(&path)?;
    }
    let numbered = |i: usize| {
        if i == 0 {
            format!("{stem}.pem")
        } else {
            format!("{stem}-{i}.pem")
        }
    };
    for (i, pem) in contents.cacerts_pem.iter().enumerate() {
        write("cacerts", &numbered(i), pem)?;
    }
    for (i, pem) in contents.intermediatecerts_pem.iter().enumerate() {
        write("intermediatecerts", &numbered(i), pem)?;
    }
    for (i, pem) in contents.tlscacerts_pem.iter().enumerate() {
        write("tlscacerts", &numbered(i), pem)?;
    }
    if contents.node_ous {
        let ca = format!("cacerts/{stem}.pem");
        let mut yaml = String::from("NodeOUs:\n  Enable: true\n");
        for (key, ou) in [
            ("ClientOUIdentifier", "client"),
            ("PeerOUIdentifier", "peer"),
            ("AdminOUIdentifier", "admin"),
            ("OrdererOUIdentifier", "orderer"),
        ] {
            yaml.push_str(&format!(
                "  {key}:\n    Certificate: {ca}\n    OrganizationalUnitIdentifier: {ou}\n"
            ));
        }
        let path = dir.join("config.yaml");
        std::fs::write(&path, yaml).map_err(|e| IdentityError::io(&path, e))?;
    }
    Ok(())
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| IdentityError::io(path, e))
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        std::fs::remove_file(dir.join(format!("keystore/{ski}_sk"))).unwrap();
        assert!(matches!(
            load_signing_identity("Org1MSP", &dir),
            Err(IdentityError::KeyNotFound(_))
        ));
    }
}
