//! A process-wide, bounded memory of ECDSA signature checks that succeeded, shared by every
//! peer and orderer of the devnet running in this process.
//!
//! One transaction's signatures are checked many times over in one devnet: each channel peer
//! verifies the creator's signature and every endorsement again when it commits the block, the
//! orderer verifies the creator on Broadcast, and each endorsing peer verifies the same signed
//! proposal. The ECDSA math is a pure function of (public key, message, signature), so its
//! answer for the exact same three inputs never changes; this cache remembers that answer.
//!
//! Why it is safe:
//! - The key is the exact input: the signer's uncompressed public point, the SHA-256 of the
//!   signed message and the signature's bytes, compared in full (no truncated hash of the key).
//!   A different key, message or signature (a forged one, a high-S twin of a valid one, another
//!   DER encoding) is a different entry and goes through the full check.
//! - Only successes are stored, and only from [`PublicKey::verify`], which rejects high-S; a
//!   signature that fails is checked again every time it is presented.
//! - Only the math is cached. Whether the identity is known to the channel, chains to its
//!   roots, is revoked or has expired is decided by the callers on every use, before they ask
//!   for the signature check.
//! - It is bounded: two generations of at most [`GENERATION`] entries each; when the current
//!   one fills up it becomes the previous one and the oldest is dropped, so memory stays fixed
//!   and recently used entries survive.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use fabric_common::crypto::{is_low_s, sha256, CryptoError, PublicKey};

/// Entries per generation; two generations are kept (about 20 MB at most).
const GENERATION: usize = 32_768;

/// Longest DER encoding of a P-256 ECDSA signature: a SEQUENCE of two INTEGERs of at most 33
/// bytes each. A longer signature is never remembered, so it is checked in full every time.
const MAX_SIGNATURE: usize = 72;

/// The exact inputs of one successful check: public point, SHA-256 of the message, signature
/// (its length and bytes, zero-padded), kept inline so a lookup allocates nothing.
type Entry = ([u8; 65], [u8; 32], u8, [u8; MAX_SIGNATURE]);

#[derive(Default)]
struct Generations {
    current: HashSet<Entry>,
    previous: HashSet<Entry>,
}

fn cache() -> &'static Mutex<Generations> {
    static CACHE: OnceLock<Mutex<Generations>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Generations::default()))
}

/// Verifies a DER signature by `key` over `message` (low-S required), as
/// [`PublicKey::verify`], answering from memory when these exact inputs verified before.
pub fn verify(key: &PublicKey, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let Some(entry) = entry(key, sha256(message), signature) else {
        return key.verify(message, signature);
    };
    {
        let mut g = cache().lock().unwrap_or_else(|p| p.into_inner());
        if g.current.contains(&entry) {
            return Ok(());
        }
        if g.previous.remove(&entry) {
            // Still in use: carry it into the current generation so it outlives the old one.
            insert(&mut g, entry);
            return Ok(());
        }
    }
    // The check itself runs without the lock so peers verify in parallel.
    key.verify(message, signature)?;
    let mut g = cache().lock().unwrap_or_else(|p| p.into_inner());
    insert(&mut g, entry);
    Ok(())
}

/// Remembers a signature this process has just made over a message with SHA-256 `digest`,
/// with the private key of `key`, so that checking it later (a committing peer checks every
/// endorsement) is answered from memory. The caller vouches that the private key is `key`'s
/// (a peer tests its key pair once when it starts); a high-S signature, which
/// [`PublicKey::verify`] would reject, is not remembered.
pub fn remember_own(key: &PublicKey, digest: [u8; 32], signature: &[u8]) {
    if !is_low_s(signature).unwrap_or(false) {
        return;
    }
    let Some(entry) = entry(key, digest, signature) else {
        return;
    };
    let mut g = cache().lock().unwrap_or_else(|p| p.into_inner());
    insert(&mut g, entry);
}

/// The cache entry of these inputs; `None` for a signature too long to be a P-256 one.
fn entry(key: &PublicKey, digest: [u8; 32], signature: &[u8]) -> Option<Entry> {
    if signature.len() > MAX_SIGNATURE {
        return None;
    }
    let mut sig = [0u8; MAX_SIGNATURE];
    sig[..signature.len()].copy_from_slice(signature);
    Some((*key.to_uncompressed(), digest, signature.len() as u8, sig))
}

fn insert(g: &mut Generations, entry: Entry) {
    if g.current.len() >= GENERATION {
        g.previous = std::mem::take(&mut g.current);
    }
    g.current.insert(entry);
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::crypto::{Signer, SigningKey};

    #[test]
    fn repeated_success_and_failures_are_checked_each_time() {
        let key = SigningKey::generate();
        let public = key.public_key().clone();
        let sig = key.sign(b"licence issued").expect("sign");
        assert!(verify(&public, b"licence issued", &sig).is_ok());
        // Same inputs again: answered from memory, still a success.
        assert!(verify(&public, b"licence issued", &sig).is_ok());
        // Another message with the remembered signature is checked and rejected, repeatedly.
        for _ in 0..2 {
            assert!(verify(&public, b"licence revoked", &sig).is_err());
        }
        // Another key with the remembered message and signature is rejected too.
        let other = SigningKey::generate();
        assert!(verify(other.public_key(), b"licence issued", &sig).is_err());
        // The remembered signature with a trailing zero byte (the padding of the stored copy)
        // is another input, checked and rejected.
        let mut padded = sig.clone();
        padded.push(0);
        assert!(verify(&public, b"licence issued", &padded).is_err());
    }

    #[test]
    fn own_signatures_are_remembered_only_for_their_exact_inputs() {
        let key = SigningKey::generate();
        let public = key.public_key().clone();
        let sig = key.sign(b"endorsement").expect("sign");
        remember_own(&public, sha256(b"endorsement"), &sig);
        assert!(verify(&public, b"endorsement", &sig).is_ok());
        // Remembering binds key, message and signature: any other combination is checked.
        assert!(verify(&public, b"another endorsement", &sig).is_err());
        let other = SigningKey::generate();
        assert!(verify(other.public_key(), b"endorsement", &sig).is_err());
        // A high-S twin is never remembered, so it still fails the low-S rule.
        let high = high_s_twin(&sig);
        remember_own(&public, sha256(b"endorsement"), &high);
        assert!(verify(&public, b"endorsement", &high).is_err());
    }

    /// The same signature with `s` replaced by `n - s`.
    fn high_s_twin(der: &[u8]) -> Vec<u8> {
        let sig = p256::ecdsa::Signature::from_der(der).expect("DER");
        let (r, s) = sig.split_scalars();
        let twin = p256::ecdsa::Signature::from_scalars(r, -*s).expect("scalars");
        twin.to_der().as_bytes().to_vec()
    }
}
