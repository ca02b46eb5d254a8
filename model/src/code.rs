//! The holder's 8-digit code and the grant's code check.
//!
//! # Why the public grant carries no plain digest of the code
//!
//! A code has only 10^8 values. Any *unkeyed* digest of it in public state (say
//! `SHA-256(grant id ‖ code)`) is brute-forced by any channel member in about a second, which
//! would let a clerk verify without asking the holder. So the check is keyed by a secret that is
//! never public:
//!
//! ```text
//! body digest = SHA-256(canonical grant body)                       (see grant.rs; no code in it)
//! code        = decimal8( HMAC-SHA256(holder secret, "elicense/code/v1"      ‖ body digest) )
//! code salt   =           HMAC-SHA256(holder secret, "elicense/code-salt/v1" ‖ body digest)
//! code check  = SHA-256( lp("elicense/code-check/v1") ‖ code salt (32 bytes) ‖ code (8 ASCII digits) )
//! ```
//!
//! where `lp(x)` is `x` preceded by its u32-BE length and `decimal8(mac)` is the first 8 bytes of
//! `mac` read as a big-endian `u64`, reduced modulo 10^8 and written as 8 digits with leading
//! zeros. The bias of that reduction is below 10^8 / 2^64 ≈ 2^-37: negligible.
//!
//! - The *code check* is part of the holder-signed grant and is public.
//! - The *code salt* (256 bits) travels only as transient data in `authorize` and is written only
//!   to the issuer's implicit private data collection (`_implicit_org_<issuer MSP>`). Fabric
//!   requires the issuer's peer to endorse that write, and only the issuer's peers hold it, so
//!   only they can test a code: `verify` must be endorsed by the issuer's peer (the grant key's
//!   endorsement policy names the issuer as well). Without the salt, the public check reveals
//!   nothing about the code. The block carries only SHA-256 of the private value, which is the
//!   salt itself (256 bits), not the code.
//! - Both code and salt derive from a holder secret (≥ 16 bytes) and the grant body, so the holder
//!   stores one secret, never types a key, and gets a different code for every grant.
//! - `authorize` should be submitted from the holder's side (its app or backend), not the window:
//!   whoever submits it sees the code salt.
//!
//! The contract compares checks in constant time and counts wrong codes on the ledger
//! (lockout after [`MAX_CODE_ATTEMPTS`]).

use crate::canonical::CanonicalWriter;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Wrong codes a grant tolerates; the attempt that reaches this count locks it.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// Minimum holder secret length in bytes.
pub const MIN_SECRET_LEN: usize = 16;

const CODE_TAG: &[u8] = b"elicense/code/v1";
const CODE_SALT_TAG: &[u8] = b"elicense/code-salt/v1";
const CODE_CHECK_TAG: &str = "elicense/code-check/v1";

/// Errors handling codes and code salts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The code is not exactly 8 ASCII digits.
    #[error("code must be 8 decimal digits")]
    Format,
    /// The holder secret is shorter than [`MIN_SECRET_LEN`].
    #[error("holder secret must be at least {MIN_SECRET_LEN} bytes")]
    SecretTooShort,
    /// The code salt is not 32 bytes.
    #[error("code salt must be 32 bytes")]
    SaltLength,
    /// Malformed hex.
    #[error("malformed hex in {0}")]
    Hex(&'static str),
}

/// An 8-digit code; `Debug` is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Code([u8; 8]);

impl Code {
    /// Parses 8 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let b: [u8; 8] = s.as_bytes().try_into().map_err(|_| CodeError::Format)?;
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(CodeError::Format);
        }
        Ok(Self(b))
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The holder's code secret (≥ 16 bytes); `Debug` is redacted.
#[derive(Clone)]
pub struct HolderSecret(Vec<u8>);

impl HolderSecret {
    /// Wraps secret bytes, refusing fewer than [`MIN_SECRET_LEN`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, CodeError> {
        let v = bytes.into();
        if v.len() < MIN_SECRET_LEN {
            return Err(CodeError::SecretTooShort);
        }
        Ok(Self(v))
    }

    fn mac(&self, tag: &[u8], body_digest: &[u8; 32]) -> [u8; 32] {
        // HMAC accepts keys of any length.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(tag);
        m.update(body_digest);
        m.finalize().into_bytes().into()
    }

    /// The code for the grant whose body digest is `body_digest`.
    pub fn code(&self, body_digest: &[u8; 32]) -> Code {
        let mac = self.mac(CODE_TAG, body_digest);
        let mut first = [0u8; 8];
        first.copy_from_slice(&mac[..8]);
        let n = u64::from_be_bytes(first) % 100_000_000;
        let text = format!("{n:08}");
        let mut out = [0u8; 8];
        out.copy_from_slice(text.as_bytes());
        Code(out)
    }

    /// The code salt for the grant whose body digest is `body_digest`.
    pub fn code_salt(&self, body_digest: &[u8; 32]) -> CodeSalt {
        CodeSalt(self.mac(CODE_SALT_TAG, body_digest))
    }
}

impl fmt::Debug for HolderSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HolderSecret(<redacted>)")
    }
}

/// The 32-byte secret salt of a grant's code check; kept in the issuer's private collection.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeSalt(pub [u8; 32]);

impl CodeSalt {
    /// Parses 32 raw bytes (as sent in transient data).
    pub fn from_slice(b: &[u8]) -> Result<Self, CodeError> {
        Ok(Self(b.try_into().map_err(|_| CodeError::SaltLength)?))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for CodeSalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeSalt(<redacted>)")
    }
}

/// The public check of a grant's code: SHA-256 keyed by the private code salt.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeCheck(pub [u8; 32]);

impl CodeCheck {
    /// Computes the check for `code` under `salt` (construction in the module doc).
    pub fn compute(salt: &CodeSalt, code: &Code) -> Self {
        let mut w = CanonicalWriter::new(CODE_CHECK_TAG);
        w.fixed(salt.as_bytes()).fixed(&code.0);
        Self(Sha256::digest(w.finish()).into())
    }

    /// Whether `code` under `salt` matches, compared in constant time.
    pub fn matches(&self, salt: &CodeSalt, code: &Code) -> bool {
        let other = Self::compute(salt, code);
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for CodeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeCheck({})", self.to_hex())
    }
}

impl Serialize for CodeCheck {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for CodeCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.as_ref(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_vector() {
        let secret = HolderSecret::new(b"0123456789abcdef".to_vec()).unwrap();
        let digest = [0x11u8; 32];
        // Independently: hmac.new(b"0123456789abcdef", b"elicense/code/v1" + b"\x11"*32, sha256),
        // first 8 bytes big-endian mod 10**8.
        assert_eq!(secret.code(&digest).as_str(), "29766145");
        assert_eq!(
            hex::encode(secret.code_salt(&digest).0),
            "7e5f06127d1c15c87c397d4c89e54978a6a345458e0e48e01395a6c10441617c"
        );
        let check = CodeCheck::compute(&secret.code_salt(&digest), &secret.code(&digest));
        assert_eq!(
            check.to_hex(),
            "18b6170f5a1dad90f83db2ec7fec7d1e9e51f9d1d732b82672761a8312cf7b3a"
        );
    }

    #[test]
    fn check_matches_only_the_right_code() {
        let salt = CodeSalt([3; 32]);
        let code = Code::parse("01234567").unwrap();
        let check = CodeCheck::compute(&salt, &code);
        assert!(check.matches(&salt, &code));
        assert!(!check.matches(&salt, &Code::parse("01234568").unwrap()));
        assert!(!check.matches(&CodeSalt([4; 32]), &code));
    }

    #[test]
    fn parsing_and_redaction() {
        assert_eq!(Code::parse("1234567"), Err(CodeError::Format));
        assert_eq!(Code::parse("1234567a"), Err(CodeError::Format));
        assert_eq!(Code::parse("١٢٣٤"), Err(CodeError::Format));
        assert_eq!(
            format!("{:?}", Code::parse("12345678").unwrap()),
            "Code(<redacted>)"
        );
        assert!(HolderSecret::new(vec![0; 15]).is_err());
        assert!(CodeSalt::from_slice(&[0; 31]).is_err());
    }
}
