//! Block hashing exactly as Fabric's `protoutil` (blockutils.go) computes it.
//!
//! * The header hash is SHA-256 over the ASN.1 DER encoding of
//!   `SEQUENCE { number INTEGER, previousHash OCTET STRING, dataHash OCTET STRING }` — Go's
//!   `asn1.Marshal` of a struct holding a `*big.Int` and two byte slices.
//! * The data hash is SHA-256 over the concatenation of the block's envelope bytes.

use fabric_protos::common::{Block, BlockData, BlockHeader, BlockMetadata};
use sha2::{Digest, Sha256};

/// Number of metadata slots in a block (`common.BlockMetadataIndex` has five entries).
pub const METADATA_SLOTS: usize = 5;

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The DER bytes Fabric hashes for a block header (`protoutil.BlockHeaderBytes`).
pub fn block_header_bytes(h: &BlockHeader) -> Vec<u8> {
    // INTEGER: minimal big-endian two's complement of a non-negative number.
    let n = h.number.to_be_bytes();
    let skip = n.iter().take_while(|b| **b == 0).count().min(7);
    let mut int = n[skip..].to_vec();
    if int[0] & 0x80 != 0 {
        int.insert(0, 0);
    }
    let mut body = Vec::with_capacity(int.len() + h.previous_hash.len() + h.data_hash.len() + 12);
    body.push(0x02);
    der_len(&mut body, int.len());
    body.extend_from_slice(&int);
    for field in [&h.previous_hash, &h.data_hash] {
        body.push(0x04);
        der_len(&mut body, field.len());
        body.extend_from_slice(field);
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// `protoutil.BlockHeaderHash`: what the next block's `previous_hash` holds.
pub fn block_header_hash(h: &BlockHeader) -> Vec<u8> {
    Sha256::digest(block_header_bytes(h)).to_vec()
}

/// `protoutil.ComputeBlockDataHash`: SHA-256 of the concatenated envelopes.
pub fn block_data_hash(d: &BlockData) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for env in &d.data {
        hasher.update(env);
    }
    hasher.finalize().to_vec()
}

/// `protoutil.NewBlock` plus the data: header with number, previous hash and data hash, and
/// [`METADATA_SLOTS`] empty metadata entries.
pub fn new_block(number: u64, previous_hash: Vec<u8>, data: Vec<Vec<u8>>) -> Block {
    let data = BlockData { data };
    Block {
        header: Some(BlockHeader {
            number,
            previous_hash,
            data_hash: block_data_hash(&data),
        }),
        data: Some(data),
        metadata: Some(BlockMetadata {
            metadata: vec![Vec::new(); METADATA_SLOTS],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_der_matches_hand_encoding() {
        let h = BlockHeader {
            number: 0,
            previous_hash: vec![],
            data_hash: vec![0xab; 32],
        };
        let der = block_header_bytes(&h);
        let mut want = vec![0x30, 3 + 2 + 34, 0x02, 0x01, 0x00, 0x04, 0x00, 0x04, 0x20];
        want.extend_from_slice(&[0xab; 32]);
        assert_eq!(der, want);
        // 128 needs a leading zero so it is not read as negative.
        let h = BlockHeader {
            number: 128,
            previous_hash: vec![1; 32],
            data_hash: vec![2; 32],
        };
        let der = block_header_bytes(&h);
        assert_eq!(&der[..6], &[0x30, 0x48, 0x02, 0x02, 0x00, 0x80]);
    }

    #[test]
    fn data_hash_is_sha256_of_concatenation() {
        let d = BlockData {
            data: vec![b"ab".to_vec(), b"c".to_vec()],
        };
        assert_eq!(block_data_hash(&d), Sha256::digest(b"abc").to_vec());
    }
}
