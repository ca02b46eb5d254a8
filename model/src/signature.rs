//! Holder keys and holder signatures: P-256 ECDSA over SHA-256 of canonical bytes, DER encoded,
//! low-S only.
//!
//! Low-S is required (as Fabric requires it of every signature) because `(r, s)` and `(r, n - s)`
//! both verify: accepting both would give every signed message two encodings. The primitives
//! are `fabric-common`'s, so holder signatures follow exactly the rules of Fabric's own.

use fabric_common::crypto::{CryptoError, PublicKey, Signer};
use p256::pkcs8::der::pem::{self, LineEnding};

/// Why a holder key or signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The holder key is not a PEM `PUBLIC KEY` (SPKI) of a P-256 point.
    #[error("holder key must be a PEM-encoded P-256 SubjectPublicKeyInfo")]
    BadKey,
    /// The signature is not valid hex or DER.
    #[error("signature is not a DER-encoded ECDSA signature")]
    Malformed,
    /// The signature's S is in the upper half of the group order.
    #[error("signature is not in low-S form")]
    HighS,
    /// The signature does not verify under the holder key.
    #[error("signature does not verify under the holder key")]
    Invalid,
    /// The holder's signer failed.
    #[error("signing failed")]
    Signing,
}

impl From<CryptoError> for SignatureError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::HighS => Self::HighS,
            CryptoError::BadSignature => Self::Invalid,
            CryptoError::MalformedSignature => Self::Malformed,
            CryptoError::Signing(_) => Self::Signing,
            CryptoError::MalformedPrivateKey(_)
            | CryptoError::MalformedPublicKey(_)
            | CryptoError::MalformedPem(_) => Self::BadKey,
        }
    }
}

/// A holder's P-256 public key, the holder's pseudonym on the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderKey {
    key: PublicKey,
}

impl HolderKey {
    /// Parses a PEM `PUBLIC KEY` block.
    pub fn from_pem(pem: &str) -> Result<Self, SignatureError> {
        let key = PublicKey::from_pem(pem.trim().as_bytes()).map_err(|_| SignatureError::BadKey)?;
        Ok(Self { key })
    }

    /// Wraps a public key.
    pub fn from_public_key(key: PublicKey) -> Self {
        Self { key }
    }

    /// The canonical PEM form stored in licence records (64-column base64, LF line endings).
    pub fn to_pem(&self) -> String {
        pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.key.to_spki_der())
            .unwrap_or_else(|_| unreachable!("SPKI of a P-256 point always encodes"))
    }

    /// Verifies a DER signature over `message` (hashed with SHA-256), requiring low-S.
    pub fn verify(&self, message: &[u8], der: &[u8]) -> Result<(), SignatureError> {
        Ok(self.key.verify(message, der)?)
    }

    /// Verifies a hex-encoded DER signature.
    pub fn verify_hex(&self, message: &[u8], sig_hex: &str) -> Result<(), SignatureError> {
        let der = hex::decode(sig_hex).map_err(|_| SignatureError::Malformed)?;
        self.verify(message, &der)
    }
}

/// Signs `message` as a holder (ECDSA P-256 over SHA-256, low-S, DER) with any [`Signer`]: a
/// software key, an HSM or a remote signer.
pub fn sign(signer: &dyn Signer, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
    Ok(signer.sign(message)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::crypto::{to_high_s, SigningKey};

    fn key(b: u8) -> SigningKey {
        SigningKey::from_scalar_bytes(&[b; 32]).unwrap()
    }

    #[test]
    fn sign_verify_and_reject_tampering() {
        let sk = key(7);
        let pem = HolderKey::from_public_key(sk.public_key().clone()).to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let hk = HolderKey::from_pem(&pem).unwrap();
        let sig = sign(&sk, b"hello").unwrap();
        hk.verify(b"hello", &sig).unwrap();
        assert_eq!(hk.verify(b"hellO", &sig), Err(SignatureError::Invalid));
        assert_eq!(
            hk.verify(b"hello", &sig[1..]),
            Err(SignatureError::Malformed)
        );
        let other = HolderKey::from_public_key(key(8).public_key().clone());
        assert_eq!(other.verify(b"hello", &sig), Err(SignatureError::Invalid));
        assert_eq!(
            hk.verify_hex(b"hello", "zz"),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn high_s_is_refused() {
        let sk = key(7);
        let hk = HolderKey::from_public_key(sk.public_key().clone());
        let high = to_high_s(&sign(&sk, b"m").unwrap()).unwrap();
        assert_eq!(hk.verify(b"m", &high), Err(SignatureError::HighS));
    }

    #[test]
    fn bad_keys() {
        assert_eq!(HolderKey::from_pem("nope"), Err(SignatureError::BadKey));
    }
}
