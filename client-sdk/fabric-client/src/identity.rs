//! Identities and signing, kept apart from the client as in Fabric's Go gateway
//! (`pkg/identity`): an [`Identity`] says *who* (MSP ID + X.509 certificate), a [`Signer`] proves
//! it, and a [`HashAlgorithm`] says what digest the signer receives.
//!
//! The split lets an HSM or remote signing service plug in: it implements [`Signer::sign`] over a
//! digest and never sees the message. The built-in [`PrivateKeySigner`] holds a software P-256
//! key and signs in one pass when the hash is SHA-256 (the common case), which is much faster than
//! signing a pre-computed digest.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fabric_common::crypto::{self, CryptoError, PublicKey, Signer as _, SigningKey};
use fabric_common::identity::Certificate;
use prost::Message as _;
use sha2::Digest as _;
use thiserror::Error;

/// Errors from loading identities, keys, MSP directories and wallets.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate is not a PEM-encoded X.509 certificate with a P-256 public key.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// A private key could not be parsed or used.
    #[error("invalid private key: {0}")]
    InvalidKey(#[from] CryptoError),
    /// No private key matching the certificate's public key was found.
    #[error("no private key in {0} matches the certificate")]
    KeyNotFound(PathBuf),
    /// An MSP directory, wallet entry or profile is malformed.
    #[error("malformed {what}: {message}")]
    Malformed {
        /// What was being read.
        what: String,
        /// What is wrong with it.
        message: String,
    },
}

impl IdentityError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IdentityError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The failure of a [`Signer`].
#[derive(Debug, Clone, Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

impl From<CryptoError> for SignError {
    fn from(e: CryptoError) -> Self {
        SignError(e.to_string())
    }
}

/// The hash applied to a message before it reaches [`Signer::sign`], the same choice the
/// official Gateway clients offer (Go: `hash.SHA256`, `hash.SHA384`, `hash.SHA3_256`,
/// `hash.SHA3_384`, `hash.NONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlgorithm {
    /// SHA-256, Fabric's default.
    #[default]
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA3-256 (FIPS 202).
    Sha3_256,
    /// SHA3-384 (FIPS 202).
    Sha3_384,
    /// No hashing: the signer receives the whole message (for signers that hash themselves).
    None,
}

impl HashAlgorithm {
    /// The digest of `message` under this algorithm (the message itself for [`HashAlgorithm::None`]).
    pub fn digest<'a>(&self, message: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            HashAlgorithm::Sha256 => Cow::Owned(sha2::Sha256::digest(message).to_vec()),
            HashAlgorithm::Sha384 => Cow::Owned(sha2::Sha384::digest(message).to_vec()),
            HashAlgorithm::Sha3_256 => Cow::Owned(sha3::Sha3_256::digest(message).to_vec()),
            HashAlgorithm::Sha3_384 => Cow::Owned(sha3::Sha3_384::digest(message).to_vec()),
            HashAlgorithm::None => Cow::Borrowed(message),
        }
    }
}

/// Signs digests: the hash-then-sign seam where an HSM or remote signer plugs in (Go: `identity.Sign`).
///
/// Implementations return an ASN.1 DER ECDSA signature whose `s` is in the lower half of the group
/// order (Fabric rejects high-S signatures; the gateway client normalises anyway, so a device that
/// cannot guarantee low-S still works).
pub trait Signer: Send + Sync {
    /// Signs a digest computed with the client's [`HashAlgorithm`].
    fn sign(&self, digest: &[u8]) -> Result<Vec<u8>, SignError>;

    /// Hashes `message` with `hash` and signs the digest. Software keys override this with a
    /// one-pass implementation; the result must equal signing [`HashAlgorithm::digest`].
    fn sign_message(&self, message: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>, SignError> {
        self.sign(&hash.digest(message))
    }
}

impl<S: Signer + ?Sized> Signer for Arc<S> {
    fn sign(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        (**self).sign(digest)
    }
    fn sign_message(&self, message: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>, SignError> {
        (**self).sign_message(message, hash)
    }
}

impl<S: Signer + ?Sized> Signer for Box<S> {
    fn sign(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        (**self).sign(digest)
    }
    fn sign_message(&self, message: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>, SignError> {
        (**self).sign_message(message, hash)
    }
}

/// A [`Signer`] from a closure over the digest, for HSM or remote-signing glue code.
pub struct SignFn<F>(pub F);

impl<F> Signer for SignFn<F>
where
    F: Fn(&[u8]) -> Result<Vec<u8>, SignError> + Send + Sync,
{
    fn sign(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        (self.0)(digest)
    }
}

/// A software P-256 private key (Go: `identity.NewPrivateKeySign`).
#[derive(Debug, Clone)]
pub struct PrivateKeySigner {
    key: SigningKey,
}

impl PrivateKeySigner {
    /// Wraps a key already loaded with `fabric-common`.
    pub fn new(key: SigningKey) -> Self {
        PrivateKeySigner { key }
    }

    /// Generates a fresh random key.
    pub fn generate() -> Self {
        Self::new(SigningKey::generate())
    }

    /// Parses a PEM private key (`PRIVATE KEY` PKCS#8, as Fabric tools write, or `EC PRIVATE KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, IdentityError> {
        Ok(Self::new(SigningKey::from_pem(pem)?))
    }

    /// Reads a PEM private key file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, IdentityError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| IdentityError::io(path, e))?;
        Self::from_pem(&pem)
    }

    /// The underlying key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The key's public half.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The key as PKCS#8 PEM (what `keystore/` files hold).
    pub fn to_pkcs8_pem(&self) -> String {
        self.key.to_pkcs8_pem()
    }
}

/// ECDSA signs the leftmost 256 bits of a longer digest and left-pads a shorter one (SEC 1
/// `bits2int`), so any digest reduces to the 32 bytes a P-256 prehash signer takes.
fn p256_digest(digest: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if digest.len() >= 32 {
        out.copy_from_slice(&digest[..32]);
    } else {
        out[32 - digest.len()..].copy_from_slice(digest);
    }
    out
}

impl Signer for PrivateKeySigner {
    fn sign(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.key.sign_digest(&p256_digest(digest))?)
    }

    fn sign_message(&self, message: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>, SignError> {
        match hash {
            // The fast path: one pass of SHA-256 + ECDSA inside `ring`.
            HashAlgorithm::Sha256 => Ok(self.key.sign(message)?),
            other => self.sign(&other.digest(message)),
        }
    }
}

/// A client identity: the MSP ID of its organisation and its PEM X.509 certificate
/// (Go: `identity.X509Identity`).
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    msp_id: String,
    certificate: Vec<u8>,
    serialized: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("msp_id", &self.msp_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// An identity from an MSP ID and a PEM certificate; the certificate is checked to parse.
    pub fn new(
        msp_id: impl Into<String>,
        certificate_pem: impl Into<Vec<u8>>,
    ) -> Result<Self, IdentityError> {
        let certificate = certificate_pem.into();
        certificate_public_key(&certificate)?;
        Ok(Self::new_unchecked(msp_id.into(), certificate))
    }

    /// An identity whose credentials are not checked (for non-X.509 identities or tests).
    pub fn new_unchecked(msp_id: String, credentials: Vec<u8>) -> Self {
        // The serialized form is the `creator` of every proposal and envelope: computed once.
        let serialized = fabric_protos::msp::SerializedIdentity {
            mspid: msp_id.clone(),
            id_bytes: credentials.clone(),
        }
        .encode_to_vec();
        Identity {
            msp_id,
            certificate: credentials,
            serialized,
        }
    }

    /// Reads the certificate from a PEM file.
    pub fn from_pem_file(
        msp_id: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Self, IdentityError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| IdentityError::io(path, e))?;
        Self::new(msp_id, pem)
    }

    /// The MSP ID of the identity's organisation.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The PEM certificate (Go: `Credentials()`).
    pub fn credentials(&self) -> &[u8] {
        &self.certificate
    }

    /// The protobuf `msp.SerializedIdentity` bytes: the `creator` in Fabric headers.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// The certificate's public key.
    pub fn public_key(&self) -> Result<PublicKey, IdentityError> {
        certificate_public_key(&self.certificate)
    }
}

/// The P-256 public key of a PEM certificate, parsed by `fabric-common` (the workspace's one
/// X.509 reader, the same the chaincode and the devnet's MSP use).
pub(crate) fn certificate_public_key(pem: &[u8]) -> Result<PublicKey, IdentityError> {
    Ok(parse_certificate(pem)?.public_key().clone())
}

/// Parses the first PEM block of a certificate text with `fabric-common`.
pub(crate) fn parse_certificate(pem: &[u8]) -> Result<Certificate, IdentityError> {
    Certificate::from_pem(pem).map_err(|e| IdentityError::InvalidCertificate(e.to_string()))
}

impl TryFrom<&fabric_common::identity::Identity> for Identity {
    type Error = IdentityError;

    /// The same identity as `fabric-common` models it (MSP ID and PEM certificate).
    fn try_from(identity: &fabric_common::identity::Identity) -> Result<Self, IdentityError> {
        Identity::new(identity.msp_id(), identity.cert_pem().to_vec())
    }
}

/// A `fabric-common` signer (SHA-256 digests, low-S DER) behind this crate's [`Signer`]: digests
/// of other lengths reduce to the 32 bytes a P-256 signer takes, as ECDSA itself does.
struct CommonSigner(Arc<dyn crypto::Signer>);

impl Signer for CommonSigner {
    fn sign(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.0.sign_digest(&p256_digest(digest))?)
    }

    fn sign_message(&self, message: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>, SignError> {
        match hash {
            // One pass over the message where the underlying signer has a fast path (ring).
            HashAlgorithm::Sha256 => Ok(self.0.sign(message)?),
            other => self.sign(&other.digest(message)),
        }
    }
}

impl TryFrom<fabric_common::identity::SigningIdentity> for SigningIdentity {
    type Error = IdentityError;

    /// A `fabric-common` signing identity (e.g. from its MSP directory reader), hashing with
    /// SHA-256.
    fn try_from(signing: fabric_common::identity::SigningIdentity) -> Result<Self, IdentityError> {
        let identity = Identity::try_from(signing.identity())?;
        Ok(SigningIdentity::new(
            identity,
            Arc::new(CommonSigner(Arc::clone(signing.signer()))),
        ))
    }
}

/// An identity together with the signer that proves it.
#[derive(Clone)]
pub struct SigningIdentity {
    identity: Identity,
    signer: Arc<dyn Signer>,
    hash: HashAlgorithm,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("identity", &self.identity)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Pairs an identity with its signer, hashing with SHA-256.
    pub fn new(identity: Identity, signer: Arc<dyn Signer>) -> Self {
        SigningIdentity {
            identity,
            signer,
            hash: HashAlgorithm::Sha256,
        }
    }

    /// Pairs an identity with a software key, checking that the key matches the certificate.
    pub fn from_private_key(
        identity: Identity,
        key: PrivateKeySigner,
    ) -> Result<Self, IdentityError> {
        if identity.public_key()? != *key.public_key() {
            return Err(IdentityError::Malformed {
                what: "signing identity".into(),
                message: "the private key does not match the certificate".into(),
            });
        }
        Ok(Self::new(identity, Arc::new(key)))
    }

    /// Uses another hash algorithm.
    pub fn with_hash(mut self, hash: HashAlgorithm) -> Self {
        self.hash = hash;
        self
    }

    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The signer.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// The hash algorithm.
    pub fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    /// Hashes and signs `message`, returning a low-S DER signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig = self.signer.sign_message(message, self.hash)?;
        Ok(ensure_low_s(sig)?)
    }
}

/// Returns `signature` in low-S form; cheap for signatures that already are.
pub(crate) fn ensure_low_s(signature: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
    if crypto::is_low_s(&signature)? {
        Ok(signature)
    } else {
        crypto::normalize_low_s(&signature)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sha384_and_none_reduce_to_p256_digests_that_verify() {
        let signer = PrivateKeySigner::generate();
        let msg = b"a message to sign";
        // SHA-384: the signature verifies over the leftmost 256 bits of the digest.
        let sig = signer.sign_message(msg, HashAlgorithm::Sha384).unwrap();
        let d384 = sha2::Sha384::digest(msg);
        let mut left = [0u8; 32];
        left.copy_from_slice(&d384[..32]);
        signer.public_key().verify_digest(&left, &sig).unwrap();
        // SHA-256 fast path and the digest path agree.
        let sig256 = signer.sign_message(msg, HashAlgorithm::Sha256).unwrap();
        signer.public_key().verify(msg, &sig256).unwrap();
        let via_digest = signer.sign(&HashAlgorithm::Sha256.digest(msg)).unwrap();
        signer.public_key().verify(msg, &via_digest).unwrap();
        // NONE hands the message through unchanged.
        assert_eq!(&*HashAlgorithm::None.digest(msg), msg);
    }

    /// FIPS 202 test vectors for the empty message: a wrong algorithm or a swapped variant
    /// (Keccak instead of SHA-3 padding) changes these.
    #[test]
    fn sha3_digests_match_fips_202() {
        assert_eq!(
            hex::encode(HashAlgorithm::Sha3_256.digest(b"")),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
        assert_eq!(
            hex::encode(HashAlgorithm::Sha3_384.digest(b"")),
            "0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2a\
             c3713831264adb47fb6bd1e058d5f004"
        );
    }

    #[test]
    fn sha3_signatures_verify_over_their_own_digest_only() {
        let signer = PrivateKeySigner::generate();
        let public = signer.public_key().clone();
        let msg = b"a proposal to sign";
        for (hash, len) in [(HashAlgorithm::Sha3_256, 32), (HashAlgorithm::Sha3_384, 48)] {
            let digest = hash.digest(msg);
            assert_eq!(digest.len(), len, "{hash:?}");
            let sig = signer.sign_message(msg, hash).unwrap();
            // The signature is over the SHA-3 digest (its leftmost 256 bits for SHA3-384) ...
            public.verify_digest(&p256_digest(&digest), &sig).unwrap();
            // ... and not over the SHA-256 digest a verifier would use by default.
            assert!(public
                .verify_digest(&p256_digest(&HashAlgorithm::Sha256.digest(msg)), &sig)
                .is_err());
            assert!(public.verify(msg, &sig).is_err(), "{hash:?}");
            // A signing identity with this hash produces low-S signatures over the same digest.
            let id = Identity::new("Org1MSP", rcgen_cert(&signer)).unwrap();
            let signing = SigningIdentity::from_private_key(id, signer.clone())
                .unwrap()
                .with_hash(hash);
            let sig = signing.sign(msg).unwrap();
            assert!(crypto::is_low_s(&sig).unwrap());
            public.verify_digest(&p256_digest(&digest), &sig).unwrap();
        }
    }

    #[test]
    fn sign_fn_plugs_in_and_high_s_is_normalised() {
        let key = PrivateKeySigner::generate();
        let public = key.public_key().clone();
        let cert = rcgen_cert(&key);
        let id = Identity::new("Org1MSP", cert).unwrap();
        // A "device" that returns high-S signatures.
        let device = SignFn(move |digest: &[u8]| {
            let sig = key.sign(digest)?;
            Ok(crypto::to_high_s(&sig)?)
        });
        let signing = SigningIdentity::new(id, Arc::new(device));
        let sig = signing.sign(b"hello").unwrap();
        assert!(crypto::is_low_s(&sig).unwrap());
        public.verify(b"hello", &sig).unwrap();
    }

    #[test]
    fn identity_serializes_as_msp_serialized_identity() {
        let key = PrivateKeySigner::generate();
        let cert = rcgen_cert(&key);
        let id = Identity::new("Org1MSP", cert.clone()).unwrap();
        let decoded = fabric_protos::msp::SerializedIdentity::decode(id.serialized()).unwrap();
        assert_eq!(decoded.mspid, "Org1MSP");
        assert_eq!(decoded.id_bytes, cert);
        assert!(SigningIdentity::from_private_key(id.clone(), key).is_ok());
        assert!(SigningIdentity::from_private_key(id, PrivateKeySigner::generate()).is_err());
        assert!(Identity::new("Org1MSP", b"not a cert".to_vec()).is_err());
    }

    pub(crate) fn rcgen_cert(key: &PrivateKeySigner) -> Vec<u8> {
        let kp = rcgen::KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
        let params = rcgen::CertificateParams::new(vec!["test".to_string()]).unwrap();
        params.self_signed(&kp).unwrap().pem().into_bytes()
    }
}
