//! A file-system wallet: one JSON file per label, `<label>.id`, in the format of the official Node
//! `fabric-network` file-system wallet, so users can bring the wallets they already have:
//!
//! ```json
//! {"credentials":{"certificate":"-----BEGIN CERTIFICATE-----…","privateKey":"-----BEGIN PRIVATE KEY-----…"},
//!  "mspId":"Org1MSP","type":"X.509","version":1}
//! ```

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::identity::{Identity, IdentityError, PrivateKeySigner, SigningIdentity};

/// The X.509 credentials of a wallet entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletCredentials {
    /// The PEM certificate.
    pub certificate: String,
    /// The PEM private key (PKCS#8).
    #[serde(rename = "privateKey")]
    pub private_key: String,
}

/// One wallet entry, as stored in `<label>.id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletIdentity {
    /// The credentials.
    pub credentials: WalletCredentials,
    /// The MSP ID.
    #[serde(rename = "mspId")]
    pub msp_id: String,
    /// The identity type; only `X.509` is supported.
    #[serde(rename = "type")]
    pub kind: String,
    /// The format version (1).
    #[serde(default = "one")]
    pub version: u32,
}

fn one() -> u32 {
    1
}

impl WalletIdentity {
    /// A wallet entry for an X.509 certificate and key.
    pub fn x509(
        msp_id: impl Into<String>,
        certificate_pem: impl Into<String>,
        private_key_pem: impl Into<String>,
    ) -> Self {
        WalletIdentity {
            credentials: WalletCredentials {
                certificate: certificate_pem.into(),
                private_key: private_key_pem.into(),
            },
            msp_id: msp_id.into(),
            kind: "X.509".into(),
            version: 1,
        }
    }

    /// The signing identity of this entry (checks that key and certificate match).
    pub fn signing_identity(&self) -> Result<SigningIdentity, IdentityError> {
        if self.kind != "X.509" {
            return Err(IdentityError::Malformed {
                what: "wallet identity".into(),
                message: format!("unsupported identity type {:?}", self.kind),
            });
        }
        let identity = Identity::new(
            self.msp_id.clone(),
            self.credentials.certificate.as_bytes().to_vec(),
        )?;
        let key = PrivateKeySigner::from_pem(self.credentials.private_key.as_bytes())?;
        SigningIdentity::from_private_key(identity, key)
    }
}

/// A directory of wallet entries.
#[derive(Debug, Clone)]
pub struct Wallet {
    dir: PathBuf,
}

impl Wallet {
    /// Opens (creating if needed) a wallet directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, IdentityError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| IdentityError::io(&dir, e))?;
        Ok(Wallet { dir })
    }

    fn path(&self, label: &str) -> Result<PathBuf, IdentityError> {
        // Labels become file names: refuse anything that could escape the directory.
        if label.is_empty() || label.contains(['/', '\\']) || label == "." || label == ".." {
            return Err(IdentityError::Malformed {
                what: "wallet label".into(),
                message: format!("{label:?} is not a valid label"),
            });
        }
        Ok(self.dir.join(format!("{label}.id")))
    }

    /// Stores an entry under `label`, replacing any previous one.
    pub fn put(&self, label: &str, identity: &WalletIdentity) -> Result<(), IdentityError> {
        let path = self.path(label)?;
        let json = serde_json::to_vec(identity).map_err(|e| IdentityError::Malformed {
            what: "wallet identity".into(),
            message: e.to_string(),
        })?;
        // Write then rename, so a crash never leaves a half-written identity behind.
        let tmp = path.with_extension("id.tmp");
        std::fs::write(&tmp, json).map_err(|e| IdentityError::io(&tmp, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| IdentityError::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| IdentityError::io(&path, e))
    }

    /// Reads the entry stored under `label`, or `None`.
    pub fn get(&self, label: &str) -> Result<Option<WalletIdentity>, IdentityError> {
        let path = self.path(label)?;
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| IdentityError::Malformed {
                        what: format!("wallet identity {}", path.display()),
                        message: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IdentityError::io(path, e)),
        }
    }

    /// The signing identity stored under `label`.
    pub fn signing_identity(&self, label: &str) -> Result<SigningIdentity, IdentityError> {
        self.get(label)?
            .ok_or_else(|| IdentityError::Malformed {
                what: "wallet".into(),
                message: format!("no identity labelled {label:?} in {}", self.dir.display()),
            })?
            .signing_identity()
    }

    /// Removes the entry under `label` (no error if absent).
    pub fn remove(&self, label: &str) -> Result<(), IdentityError> {
        let path = self.path(label)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(IdentityError::io(path, e)),
            _ => Ok(()),
        }
    }

    /// The labels in the wallet, sorted.
    pub fn list(&self) -> Result<Vec<String>, IdentityError> {
        let mut labels: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| IdentityError::io(&self.dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".id")
                    .map(str::to_string)
            })
            .collect();
        labels.sort();
        Ok(labels)
    }

    /// The wallet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_node_wallet_format_and_round_trips() {
        let key = PrivateKeySigner::generate();
        let cert = String::from_utf8(crate::identity::tests::rcgen_cert(&key)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        // Exactly what fabric-network's FileSystemWallet writes.
        let node_json = serde_json::json!({
            "credentials": {"certificate": cert, "privateKey": key.to_pkcs8_pem()},
            "mspId": "Org1MSP", "type": "X.509", "version": 1
        });
        std::fs::write(tmp.path().join("appUser.id"), node_json.to_string()).unwrap();
        let wallet = Wallet::open(tmp.path()).unwrap();
        assert_eq!(wallet.list().unwrap(), vec!["appUser".to_string()]);
        let signing = wallet.signing_identity("appUser").unwrap();
        assert_eq!(signing.identity().msp_id(), "Org1MSP");
        let entry = wallet.get("appUser").unwrap().unwrap();
        wallet.put("copy", &entry).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("copy.id")).unwrap()).unwrap();
        assert_eq!(written, node_json);
        wallet.remove("copy").unwrap();
        assert!(wallet.get("copy").unwrap().is_none());
        assert!(wallet.put("../escape", &entry).is_err());
    }
}
