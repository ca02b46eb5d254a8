//! ECDSA P-256 over SHA-256, exactly as Fabric's `bccsp` signs and verifies.
//!
//! Fabric signatures are ASN.1 DER `ECDSA-Sig-Value`s whose `s` is in the lower half of the group
//! order: peers and orderers reject "high-S" signatures to remove ECDSA's malleability. So every
//! signature made here is normalised to low-S, and [`PublicKey::verify`] rejects high-S with
//! [`CryptoError::HighS`] before doing any curve arithmetic.
//!
//! # Implementation choice (measured, see `benches/ecdsa.rs`)
//!
//! * Signing and verifying a *message* use `ring` (~14 µs / ~41 µs on the reference machine,
//!   against ~125 µs / ~213 µs for the pure-Rust `p256`): that is the hot path of endorsement,
//!   validation and client submission.
//! * `ring` has no API that signs or verifies a caller-supplied digest, so the hash-then-sign entry
//!   points ([`Signer::sign_digest`], [`PublicKey::verify_digest`]) use `p256`'s prehash API. They
//!   exist so an HSM or remote signer can plug in behind [`Signer`], exactly like the Go gateway's
//!   `Sign(digest)` function; software keys override [`Signer::sign`] to keep the fast path.
//! * Key generation and parsing (PKCS#8, SEC1, SubjectPublicKeyInfo, PEM) use `p256`; the parsed
//!   scalar and point are then handed to `ring` once, at load time.

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::elliptic_curve::scalar::IsHigh as _;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ring::rand::SystemRandom;
use ring::signature::{self as ring_sig, KeyPair as _};
use sha2::Digest as _;
use thiserror::Error;

/// Errors from key parsing, signing and signature verification.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// The private key is not a P-256 key in a format Fabric tools write.
    #[error("malformed private key: {0}")]
    MalformedPrivateKey(String),
    /// The public key is not a valid P-256 point or SubjectPublicKeyInfo.
    #[error("malformed public key: {0}")]
    MalformedPublicKey(String),
    /// The input is not PEM, or its PEM label is not one this function reads.
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// The signature is not a DER-encoded ECDSA-Sig-Value with `r` and `s` in `1..n`.
    #[error("malformed signature: not a DER-encoded P-256 ECDSA signature")]
    MalformedSignature,
    /// The signature's `s` is in the upper half of the group order; Fabric rejects it.
    #[error("signature has a high S value; Fabric accepts only low-S signatures")]
    HighS,
    /// The signature does not verify under the public key.
    #[error("signature verification failed")]
    BadSignature,
    /// The signer (software key, HSM, remote service) failed to sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// SHA-256 of `data` (Fabric's hash for signatures, transaction IDs and proposal hashes).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// Something that signs SHA-256 digests with a P-256 key and returns DER, low-S signatures.
///
/// Implement [`Signer::sign_digest`] to plug in an HSM or a remote signing service: Fabric always
/// signs SHA-256(message), so a digest is all such a device needs to see. [`Signer::sign`] hashes
/// and delegates by default; [`SigningKey`] overrides it with a faster whole-message path.
pub trait Signer: Send + Sync {
    /// Signs a SHA-256 digest; the result must be a DER-encoded, low-S ECDSA signature.
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError>;

    /// Signs a message (SHA-256, then ECDSA); the result is DER-encoded and low-S.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.sign_digest(&sha256(message))
    }
}

impl<S: Signer + ?Sized> Signer for std::sync::Arc<S> {
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        (**self).sign_digest(digest)
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        (**self).sign(message)
    }
}

impl<S: Signer + ?Sized> Signer for Box<S> {
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        (**self).sign_digest(digest)
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        (**self).sign(message)
    }
}

/// A P-256 public key, kept both as the raw uncompressed point (for `ring`) and parsed (for `p256`).
#[derive(Clone)]
pub struct PublicKey {
    point: [u8; 65],
    key: p256::ecdsa::VerifyingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.point))
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.point == other.point
    }
}
impl Eq for PublicKey {}

impl PublicKey {
    fn from_verifying_key(key: p256::ecdsa::VerifyingKey) -> Self {
        let encoded = key.to_encoded_point(false);
        let mut point = [0u8; 65];
        point.copy_from_slice(encoded.as_bytes());
        PublicKey { point, key }
    }

    /// Parses a SEC1-encoded point (uncompressed `04‖X‖Y` or compressed).
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
            .map(Self::from_verifying_key)
            .map_err(|_| CryptoError::MalformedPublicKey("not a P-256 point".into()))
    }

    /// Parses a DER SubjectPublicKeyInfo, as found in a certificate (id-ecPublicKey, prime256v1).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        p256::ecdsa::VerifyingKey::from_public_key_der(der)
            .map(Self::from_verifying_key)
            .map_err(|e| CryptoError::MalformedPublicKey(e.to_string()))
    }

    /// Parses a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo).
    pub fn from_pem(pem: &[u8]) -> Result<Self, CryptoError> {
        let (label, der) = decode_pem(pem)?;
        if label != "PUBLIC KEY" {
            return Err(CryptoError::MalformedPem(format!(
                "expected a PUBLIC KEY block, found {label}"
            )));
        }
        Self::from_spki_der(&der)
    }

    /// The DER SubjectPublicKeyInfo of this key.
    pub fn to_spki_der(&self) -> Vec<u8> {
        // Encoding a valid point into SPKI cannot fail; an empty vector would only signal a bug.
        self.key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The uncompressed SEC1 point `04‖X‖Y`.
    pub fn to_uncompressed(&self) -> &[u8; 65] {
        &self.point
    }

    /// Fabric's subject key identifier: SHA-256 of the uncompressed point (names `<ski>_sk` files).
    pub fn ski(&self) -> [u8; 32] {
        sha256(&self.point)
    }

    /// Verifies a DER signature over `message` (SHA-256 is applied here), rejecting high-S.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        check_low_s(signature)?;
        ring_sig::UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Verifies a DER signature over a SHA-256 `digest`, rejecting high-S.
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), CryptoError> {
        let sig = check_low_s(signature)?;
        self.key
            .verify_prehash(digest, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Verifies a DER signature over `message` accepting high-S too, as Go's x509 does for
    /// certificate signatures (Fabric normalises certificates, not the CAs that issued them).
    pub fn verify_allow_high_s(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        ring_sig::UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }
}

fn parse_signature(der: &[u8]) -> Result<p256::ecdsa::Signature, CryptoError> {
    p256::ecdsa::Signature::from_der(der).map_err(|_| CryptoError::MalformedSignature)
}

fn check_low_s(der: &[u8]) -> Result<p256::ecdsa::Signature, CryptoError> {
    let sig = parse_signature(der)?;
    if bool::from(sig.s().is_high()) {
        return Err(CryptoError::HighS);
    }
    Ok(sig)
}

/// Whether a DER signature has a low `s` (the only form Fabric accepts).
pub fn is_low_s(signature: &[u8]) -> Result<bool, CryptoError> {
    Ok(!bool::from(parse_signature(signature)?.s().is_high()))
}

/// Rewrites a DER signature into its low-S form (`s := n - s` when `s > n/2`); low-S input is
/// returned unchanged.
pub fn normalize_low_s(signature: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let sig = parse_signature(signature)?;
    Ok(match sig.normalize_s() {
        Some(low) => low.to_der().as_bytes().to_vec(),
        None => signature.to_vec(),
    })
}

/// The high-S twin of a DER signature (`s := n - s` when `s` is low): equally valid to plain ECDSA,
/// rejected by Fabric. Exists so tests across the workspace can prove high-S is refused.
pub fn to_high_s(signature: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let sig = parse_signature(signature)?;
    if bool::from(sig.s().is_high()) {
        return Ok(signature.to_vec());
    }
    let (r, s) = sig.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-s).to_bytes())
        .map_err(|_| CryptoError::MalformedSignature)?;
    Ok(high.to_der().as_bytes().to_vec())
}

/// A software P-256 private key: `ring` signs messages, `p256` signs digests.
pub struct SigningKey {
    secret: p256::ecdsa::SigningKey,
    ring: ring_sig::EcdsaKeyPair,
    rng: SystemRandom,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret scalar.
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> Self {
        // Rebuilding from the same scalar cannot fail: it was accepted once already.
        Self::from_secret(p256::SecretKey::from(self.secret.as_nonzero_scalar()))
            .expect("a key that loaded once loads again")
    }
}

impl SigningKey {
    fn from_secret(secret: p256::SecretKey) -> Result<Self, CryptoError> {
        let public =
            PublicKey::from_verifying_key(*p256::ecdsa::SigningKey::from(&secret).verifying_key());
        let rng = SystemRandom::new();
        let ring = ring_sig::EcdsaKeyPair::from_private_key_and_public_key(
            &ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            &secret.to_bytes()[..],
            public.to_uncompressed(),
            &rng,
        )
        .map_err(|e| CryptoError::MalformedPrivateKey(e.to_string()))?;
        debug_assert_eq!(ring.public_key().as_ref(), public.to_uncompressed());
        Ok(SigningKey {
            secret: p256::ecdsa::SigningKey::from(&secret),
            ring,
            rng,
            public,
        })
    }

    /// Generates a fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        Self::from_secret(secret).expect("a freshly generated P-256 key is valid")
    }

    /// Parses a raw 32-byte big-endian private scalar.
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let secret = p256::SecretKey::from_slice(bytes)
            .map_err(|_| CryptoError::MalformedPrivateKey("not a P-256 scalar in 1..n".into()))?;
        Self::from_secret(secret)
    }

    /// Parses a DER PKCS#8 `PrivateKeyInfo` (what fabric-ca-client and cryptogen write).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let secret = p256::SecretKey::from_pkcs8_der(der)
            .map_err(|e| CryptoError::MalformedPrivateKey(format!("PKCS#8: {e}")))?;
        Self::from_secret(secret)
    }

    /// Parses a DER SEC1 `ECPrivateKey` (OpenSSL's `EC PRIVATE KEY`).
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, CryptoError> {
        let secret = p256::SecretKey::from_sec1_der(der)
            .map_err(|e| CryptoError::MalformedPrivateKey(format!("SEC1: {e}")))?;
        Self::from_secret(secret)
    }

    /// Parses a PEM private key: `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, CryptoError> {
        let (label, der) = decode_pem(pem)?;
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "EC PRIVATE KEY" => Self::from_sec1_der(&der),
            other => Err(CryptoError::MalformedPem(format!(
                "expected a PRIVATE KEY or EC PRIVATE KEY block, found {other}"
            ))),
        }
    }

    /// The key as a PKCS#8 `PRIVATE KEY` PEM, the format Fabric tools write to `keystore/`.
    pub fn to_pkcs8_pem(&self) -> String {
        p256::SecretKey::from(self.secret.as_nonzero_scalar())
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .map(|z| z.to_string())
            .expect("encoding a valid P-256 key as PKCS#8 cannot fail")
    }

    /// The key's public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
}

impl Signer for SigningKey {
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        let sig: p256::ecdsa::Signature = self
            .secret
            .sign_prehash(digest)
            .map_err(|e| CryptoError::Signing(e.to_string()))?;
        let sig = sig.normalize_s().unwrap_or(sig);
        Ok(sig.to_der().as_bytes().to_vec())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig = self
            .ring
            .sign(&self.rng, message)
            .map_err(|_| CryptoError::Signing("ring ECDSA signing failed".into()))?;
        normalize_low_s(sig.as_ref())
    }
}

/// Decodes the first PEM block of `input` into its label and DER bytes, skipping text before it
/// (as Go's `pem.Decode` does).
pub(crate) fn decode_pem(input: &[u8]) -> Result<(String, Vec<u8>), CryptoError> {
    let text = std::str::from_utf8(input)
        .map_err(|_| CryptoError::MalformedPem("PEM input is not text".into()))?;
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| CryptoError::MalformedPem("no PEM block found".into()))?;
    let (label, der) = p256::pkcs8::der::pem::decode_vec(text[start..].trim_end().as_bytes())
        .map_err(|e| CryptoError::MalformedPem(e.to_string()))?;
    Ok((label.to_string(), der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_always_low_s_and_verify() {
        let key = SigningKey::generate();
        let msg = b"endorse this proposal";
        for i in 0..200u32 {
            let m = [msg.as_slice(), &i.to_be_bytes()].concat();
            let sig = key.sign(&m).unwrap();
            assert!(is_low_s(&sig).unwrap(), "ring path produced high-S");
            key.public_key().verify(&m, &sig).unwrap();
            let digest = sha256(&m);
            let sig2 = key.sign_digest(&digest).unwrap();
            assert!(is_low_s(&sig2).unwrap(), "prehash path produced high-S");
            key.public_key().verify_digest(&digest, &sig2).unwrap();
            // Both paths produce signatures the other path accepts.
            key.public_key().verify_digest(&digest, &sig).unwrap();
            key.public_key().verify(&m, &sig2).unwrap();
        }
    }

    #[test]
    fn high_s_twin_is_rejected_but_is_otherwise_valid() {
        let key = SigningKey::generate();
        let msg = b"payload";
        let sig = key.sign(msg).unwrap();
        let high = to_high_s(&sig).unwrap();
        assert_ne!(high, sig);
        assert!(!is_low_s(&high).unwrap());
        assert_eq!(key.public_key().verify(msg, &high), Err(CryptoError::HighS));
        assert_eq!(
            key.public_key().verify_digest(&sha256(msg), &high),
            Err(CryptoError::HighS)
        );
        // It is a mathematically valid ECDSA signature: only the low-S rule rejects it.
        key.public_key().verify_allow_high_s(msg, &high).unwrap();
        assert_eq!(normalize_low_s(&high).unwrap(), sig);
    }

    #[test]
    fn wrong_message_key_or_garbage_fail_with_typed_errors() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let sig = key.sign(b"a").unwrap();
        assert_eq!(
            key.public_key().verify(b"b", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            other.public_key().verify(b"a", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            key.public_key().verify(b"a", b"\x30\x02\x01"),
            Err(CryptoError::MalformedSignature)
        );
        assert_eq!(
            key.public_key().verify(b"a", &[]),
            Err(CryptoError::MalformedSignature)
        );
        let mut trailing = sig.clone();
        trailing.push(0);
        assert!(key.public_key().verify(b"a", &trailing).is_err());
    }

    #[test]
    fn pem_round_trips_in_pkcs8_and_sec1() {
        let key = SigningKey::generate();
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SigningKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(again.public_key(), key.public_key());

        let sec1 = p256::SecretKey::from(key.secret.as_nonzero_scalar())
            .to_sec1_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let from_sec1 = SigningKey::from_pem(sec1.as_bytes()).unwrap();
        assert_eq!(from_sec1.public_key(), key.public_key());

        // Leading text before the block is skipped, as Go's pem.Decode does.
        let noisy = format!("key for peer0\n{pem}");
        assert!(SigningKey::from_pem(noisy.as_bytes()).is_ok());
    }

    #[test]
    fn rcgen_written_pkcs8_key_loads() {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = SigningKey::from_pem(kp.serialize_pem().as_bytes()).unwrap();
        let spki =
            PublicKey::from_spki_der(&rcgen::PublicKeyData::subject_public_key_info(&kp)).unwrap();
        assert_eq!(&spki, key.public_key());
    }

    #[test]
    fn malformed_keys_give_typed_errors() {
        assert!(matches!(
            SigningKey::from_pem(b"not pem"),
            Err(CryptoError::MalformedPem(_))
        ));
        assert!(matches!(
            SigningKey::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(CryptoError::MalformedPem(_))
        ));
        assert!(matches!(
            SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(CryptoError::MalformedPrivateKey(_))
        ));
        assert!(matches!(
            SigningKey::from_scalar_bytes(&[0u8; 32]),
            Err(CryptoError::MalformedPrivateKey(_))
        ));
        assert!(matches!(
            PublicKey::from_sec1_bytes(&[4u8; 65]),
            Err(CryptoError::MalformedPublicKey(_))
        ));
        assert!(matches!(
            PublicKey::from_spki_der(b"\x30\x00"),
            Err(CryptoError::MalformedPublicKey(_))
        ));
    }

    #[test]
    fn ski_is_sha256_of_uncompressed_point() {
        let key = SigningKey::generate();
        let point = key.public_key().to_uncompressed();
        assert_eq!(point[0], 4);
        let expected: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, point)
            .as_ref()
            .try_into()
            .unwrap();
        assert_eq!(key.public_key().ski(), expected);
        let spki = key.public_key().to_spki_der();
        assert_eq!(&PublicKey::from_spki_der(&spki).unwrap(), key.public_key());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = SigningKey::from_pem(&data);
            let _ = SigningKey::from_pkcs8_der(&data);
            let _ = SigningKey::from_sec1_der(&data);
            let _ = PublicKey::from_spki_der(&data);
            let _ = PublicKey::from_sec1_bytes(&data);
            let _ = is_low_s(&data);
            let _ = normalize_low_s(&data);
            let key = SigningKey::from_scalar_bytes(&[7u8; 32]).unwrap();
            let _ = key.public_key().verify(b"m", &data);
            let _ = key.public_key().verify_digest(&[0u8; 32], &data);
        }

        #[test]
        fn arbitrary_pem_bodies_never_panic(body in "[A-Za-z0-9+/=\n]{0,300}", label in "(PRIVATE KEY|EC PRIVATE KEY|PUBLIC KEY)") {
            let pem = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
            let _ = SigningKey::from_pem(pem.as_bytes());
            let _ = PublicKey::from_pem(pem.as_bytes());
        }
    }
}
