//! Holder keys and holder signatures: P-256 ECDSA over SHA-256 of canonical bytes, DER encoded,
//! low-S only.
//!
//! Low-S is required (as Fabric requires it of every signature) because `(r, s)` and `(r, n - s)`
//! both verify: accepting both would give every signed message two encodings.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};

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
}

/// A holder's P-256 public key, the holder's pseudonym on the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderKey {
    key: VerifyingKey,
}

impl HolderKey {
    /// Parses a PEM `PUBLIC KEY` block.
    pub fn from_pem(pem: &str) -> Result<Self, SignatureError> {
        let key =
            VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| SignatureError::BadKey)?;
        Ok(Self { key })
    }

    /// Wraps a verifying key.
    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        Self { key }
    }

    /// The canonical PEM form stored in licence records (LF line endings).
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_else(|_| unreachable!("a P-256 point always encodes"))
    }

    /// Verifies a DER signature over `message` (hashed with SHA-256), requiring low-S.
    pub fn verify(&self, message: &[u8], der: &[u8]) -> Result<(), SignatureError> {
        let sig = Signature::from_der(der).map_err(|_| SignatureError::Malformed)?;
        if sig.normalize_s().is_some() {
            return Err(SignatureError::HighS);
        }
        self.key
            .verify(message, &sig)
            .map_err(|_| SignatureError::Invalid)
    }

    /// Verifies a hex-encoded DER signature.
    pub fn verify_hex(&self, message: &[u8], sig_hex: &str) -> Result<(), SignatureError> {
        let der = hex::decode(sig_hex).map_err(|_| SignatureError::Malformed)?;
        self.verify(message, &der)
    }
}

/// Signs `message` as a holder: ECDSA P-256 over SHA-256, low-S, DER.
pub fn sign_low_s(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: Signature = key.sign(message);
    let sig = sig.normalize_s().unwrap_or(sig);
    sig.to_der().as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::FieldBytes;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    #[test]
    fn sign_verify_and_reject_tampering() {
        let sk = key();
        let hk = HolderKey::from_pem(&HolderKey::from_verifying_key(*sk.verifying_key()).to_pem())
            .unwrap();
        let sig = sign_low_s(&sk, b"hello");
        hk.verify(b"hello", &sig).unwrap();
        assert_eq!(hk.verify(b"hellO", &sig), Err(SignatureError::Invalid));
        assert_eq!(
            hk.verify(b"hello", &sig[1..]),
            Err(SignatureError::Malformed)
        );
        let other = HolderKey::from_verifying_key(
            *SigningKey::from_slice(&[8u8; 32]).unwrap().verifying_key(),
        );
        assert_eq!(other.verify(b"hello", &sig), Err(SignatureError::Invalid));
    }

    #[test]
    fn high_s_is_refused() {
        let sk = key();
        let hk = HolderKey::from_verifying_key(*sk.verifying_key());
        let sig = Signature::from_der(&sign_low_s(&sk, b"m")).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(
            FieldBytes::from(r.as_ref().to_bytes()),
            FieldBytes::from((-*s.as_ref()).to_bytes()),
        )
        .unwrap();
        assert_eq!(
            hk.verify(b"m", high.to_der().as_bytes()),
            Err(SignatureError::HighS)
        );
    }

    #[test]
    fn bad_keys() {
        assert_eq!(HolderKey::from_pem("nope"), Err(SignatureError::BadKey));
    }
}
