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
//!
//! The most recent successes are also kept with their message whole (the *memo*, two
//! generations of [`MEMO_GENERATION`]), found by signature and confirmed by comparing public
//! key, message and signature byte for byte. A transaction's signatures are checked again by
//! every committing peer within a block or two of the first check, and the memo answers those
//! without hashing the message (a comparison of a few kilobytes costs far less than SHA-256 of
//! them); older or larger inputs fall back to the digest-keyed entries.

use std::collections::{HashMap, HashSet};
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

/// Memo entries per generation; two generations are kept (a few tens of MB at most).
const MEMO_GENERATION: usize = 4096;

/// Largest message kept whole in the memo; larger ones are found by digest only.
const MEMO_MAX_MESSAGE: usize = 16 * 1024;

/// A memo entry: the public point and the message of one successful check, by its signature.
type MemoEntry = ([u8; 65], Box<[u8]>);

#[derive(Default)]
struct Memo {
    current: HashMap<Box<[u8]>, MemoEntry>,
    previous: HashMap<Box<[u8]>, MemoEntry>,
}

impl Memo {
    /// Whether exactly these inputs are remembered.
    fn holds(&self, point: &[u8; 65], message: &[u8], signature: &[u8]) -> bool {
        [&self.current, &self.previous].into_iter().any(|g| {
            g.get(signature)
                .is_some_and(|(p, m)| p == point && **m == *message)
        })
    }

    fn insert(&mut self, point: [u8; 65], message: &[u8], signature: &[u8]) {
        if message.len() > MEMO_MAX_MESSAGE || signature.len() > MAX_SIGNATURE {
            return;
        }
        if self.current.len() >= MEMO_GENERATION {
            // The oldest generation's table is emptied and reused, as in `insert`.
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        // A signature already remembered with other inputs is replaced: the memo is only a
        // shortcut, and the full check (or the digest-keyed entries) still answers the other.
        self.current
            .insert(signature.into(), (point, message.into()));
    }
}

fn memo() -> &'static Mutex<Memo> {
    static MEMO: OnceLock<Mutex<Memo>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(Memo::default()))
}

/// Whether the memo holds exactly these inputs as a success.
fn memo_holds(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    let memo = memo().lock().unwrap_or_else(|p| p.into_inner());
    memo.holds(key.to_uncompressed(), message, signature)
}

fn memo_insert(key: &PublicKey, message: &[u8], signature: &[u8]) {
    let mut memo = memo().lock().unwrap_or_else(|p| p.into_inner());
    memo.insert(*key.to_uncompressed(), message, signature);
}

/// Verifies a DER signature by `key` over `message` (low-S required), as
/// [`PublicKey::verify`], answering from memory when these exact inputs verified before.
pub fn verify(key: &PublicKey, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    if memo_holds(key, message, signature) {
        return Ok(());
    }
    let Some(entry) = entry(key, sha256(message), signature) else {
        return key.verify(message, signature);
    };
    let remembered = {
        let mut g = cache().lock().unwrap_or_else(|p| p.into_inner());
        if g.previous.remove(&entry) {
            // Still in use: carry it into the current generation so it outlives the old one.
            insert(&mut g, entry);
            true
        } else {
            g.current.contains(&entry)
        }
    };
    if !remembered {
        // The check itself runs without the lock so peers verify in parallel.
        key.verify(message, signature)?;
        insert(
            &mut cache().lock().unwrap_or_else(|p| p.into_inner()),
            entry,
        );
    }
    memo_insert(key, message, signature);
    Ok(())
}

/// Remembers a signature this process has just made over `message` with the private key of
/// `key`, so that checking it later (a committing peer checks every endorsement) is answered
/// from memory. The caller vouches that the private key is `key`'s (a peer tests its key pair
/// once when it starts); a high-S signature, which [`PublicKey::verify`] would reject, is not
/// remembered.
pub fn remember_own(key: &PublicKey, message: &[u8], signature: &[u8]) {
    if !is_low_s(signature).unwrap_or(false) {
        return;
    }
    let Some(entry) = entry(key, sha256(message), signature) else {
        return;
    };
    let mut g = cache().lock().unwrap_or_else(|p| p.into_inner());
    insert(&mut g, entry);
    drop(g);
    memo_insert(key, message, signature);
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
        // The current generation becomes the previous one, and the oldest one's table, emptied,
        // takes the new entries: it keeps its capacity, where a fresh table would grow by
        // doubling, rehashing every entry and faulting in megabytes of new memory each time.
        std::mem::swap(&mut g.current, &mut g.previous);
        g.current.clear();
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
        remember_own(&public, b"endorsement", &sig);
        assert!(verify(&public, b"endorsement", &sig).is_ok());
        // Remembering binds key, message and signature: any other combination is checked.
        assert!(verify(&public, b"another endorsement", &sig).is_err());
        let other = SigningKey::generate();
        assert!(verify(other.public_key(), b"endorsement", &sig).is_err());
        // A high-S twin is never remembered, so it still fails the low-S rule.
        let high = high_s_twin(&sig);
        remember_own(&public, b"endorsement", &high);
        assert!(verify(&public, b"endorsement", &high).is_err());
    }

    #[test]
    fn the_memo_matches_only_its_exact_inputs_and_stays_bounded() {
        let mut memo = Memo::default();
        let point = [4u8; 65];
        memo.insert(point, b"payload", b"sig-1");
        assert!(memo.holds(&point, b"payload", b"sig-1"));
        assert!(!memo.holds(&point, b"payload!", b"sig-1"));
        assert!(!memo.holds(&[5u8; 65], b"payload", b"sig-1"));
        assert!(!memo.holds(&point, b"payload", b"sig-2"));
        // A message too large to keep whole is left to the digest-keyed entries.
        memo.insert(point, &vec![0; MEMO_MAX_MESSAGE + 1], b"sig-big");
        assert!(!memo.holds(&point, &vec![0; MEMO_MAX_MESSAGE + 1], b"sig-big"));
        // Filling a generation moves it aside; a third one drops the oldest.
        for i in 0..MEMO_GENERATION {
            memo.insert(point, b"m", format!("a{i}").as_bytes());
        }
        assert!(memo.holds(&point, b"payload", b"sig-1"));
        for i in 0..MEMO_GENERATION {
            memo.insert(point, b"m", format!("b{i}").as_bytes());
        }
        assert!(!memo.holds(&point, b"payload", b"sig-1"));
        assert!(memo.current.len() + memo.previous.len() <= 2 * MEMO_GENERATION);
    }

    /// The same signature with `s` replaced by `n - s`.
    fn high_s_twin(der: &[u8]) -> Vec<u8> {
        let sig = p256::ecdsa::Signature::from_der(der).expect("DER");
        let (r, s) = sig.split_scalars();
        let twin = p256::ecdsa::Signature::from_scalars(r, -*s).expect("scalars");
        twin.to_der().as_bytes().to_vec()
    }
}
