//! Compact byte encodings of the ledger's table keys and values.
//!
//! Keys are laid out so that redb's byte order is the order Fabric's state database iterates in:
//! a namespace, a `0x00` separator (namespace and collection names never contain it), then the
//! key's own bytes. Values start with the version as two varints so that the committer's MVCC check
//! can read a version without decoding the value.

use std::collections::BTreeMap;

use fabric_protos::kvrwset::{KvMetadataEntry, KvMetadataWrite};
use prost::Message;

use super::{Height, LedgerError};

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint, returning it and the rest of the input.
pub(crate) fn get_varint(buf: &[u8]) -> Result<(u64, &[u8]), LedgerError> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, &buf[i + 1..]));
        }
    }
    Err(LedgerError::Corrupt("truncated varint".into()))
}

fn get_bytes(buf: &[u8]) -> Result<(&[u8], &[u8]), LedgerError> {
    let (len, rest) = get_varint(buf)?;
    let len = usize::try_from(len).map_err(|_| LedgerError::Corrupt("length".into()))?;
    if rest.len() < len {
        return Err(LedgerError::Corrupt("truncated field".into()));
    }
    Ok(rest.split_at(len))
}

/// `ns 0x00 key`: the state table key.
pub(crate) fn state_key(ns: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 1 + key.len());
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// `ns 0x00 coll 0x00 key`: the private data and private hash table key.
pub(crate) fn coll_key(ns: &str, coll: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + coll.len() + 2 + key.len());
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(coll.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// `ns 0x00 len(key) key`: the prefix every history entry of one key starts with. The length keeps
/// key `a` from matching the entries of key `a\0b` (composite keys contain `0x00`).
pub(crate) fn history_prefix(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 5 + key.len() + 12);
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

/// The history key: prefix, then the height big-endian so entries sort by commit order.
pub(crate) fn history_key(ns: &str, key: &str, h: Height) -> Vec<u8> {
    let mut k = history_prefix(ns, key);
    k.extend_from_slice(&h.block.to_be_bytes());
    k.extend_from_slice(&(h.tx as u32).to_be_bytes());
    k
}

/// Splits the height off the end of a history key.
pub(crate) fn history_key_height(k: &[u8]) -> Result<Height, LedgerError> {
    if k.len() < 16 {
        return Err(LedgerError::Corrupt("history key".into()));
    }
    let n = k.len();
    let block = u64::from_be_bytes(k[n - 12..n - 4].try_into().expect("8 bytes"));
    let tx = u64::from(u32::from_be_bytes(k[n - 4..].try_into().expect("4 bytes")));
    Ok(Height { block, tx })
}

/// Metadata entries (name → value) as Fabric serializes them: a `KVMetadataWrite` with entries
/// sorted by name.
pub(crate) fn encode_metadata(m: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    KvMetadataWrite {
        key: String::new(),
        entries: m
            .iter()
            .map(|(name, value)| KvMetadataEntry {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Decodes metadata written by [`encode_metadata`].
pub(crate) fn decode_metadata(b: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, LedgerError> {
    let m = KvMetadataWrite::decode(b).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
    Ok(m.entries.into_iter().map(|e| (e.name, e.value)).collect())
}

/// A versioned state value: `varint block, varint tx, varint len(metadata), metadata, value`.
pub(crate) fn encode_value(h: Height, metadata: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + metadata.len() + 12);
    put_varint(&mut out, h.block);
    put_varint(&mut out, h.tx);
    put_varint(&mut out, metadata.len() as u64);
    out.extend_from_slice(metadata);
    out.extend_from_slice(value);
    out
}

/// Splits an encoded state value into (version, serialized metadata, value).
pub(crate) fn decode_value(b: &[u8]) -> Result<(Height, &[u8], &[u8]), LedgerError> {
    let (block, rest) = get_varint(b)?;
    let (tx, rest) = get_varint(rest)?;
    let (meta, value) = get_bytes(rest)?;
    Ok((Height { block, tx }, meta, value))
}

/// The txid index value: block number, transaction number, validation code.
pub(crate) fn encode_tx_loc(block: u64, tx: u64, code: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    put_varint(&mut out, block);
    put_varint(&mut out, tx);
    out.push(code);
    out
}

/// Decodes a txid index value.
pub(crate) fn decode_tx_loc(b: &[u8]) -> Result<(u64, u64, u8), LedgerError> {
    let (block, rest) = get_varint(b)?;
    let (tx, rest) = get_varint(rest)?;
    let code = *rest
        .first()
        .ok_or_else(|| LedgerError::Corrupt("txid entry".into()))?;
    Ok((block, tx, code))
}

/// A history entry value: `varint len(txid) txid, varint secs, varint nanos, is_delete, value`.
pub(crate) fn encode_history(txid: &str, ts: (i64, i32), is_delete: bool, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(txid.len() + value.len() + 16);
    put_varint(&mut out, txid.len() as u64);
    out.extend_from_slice(txid.as_bytes());
    put_varint(&mut out, ts.0 as u64);
    put_varint(&mut out, ts.1 as u32 as u64);
    out.push(u8::from(is_delete));
    out.extend_from_slice(value);
    out
}

/// A decoded history value: txid, (secs, nanos), is_delete, value.
pub(crate) type HistoryValue = (String, (i64, i32), bool, Vec<u8>);

/// Decodes a history entry value.
pub(crate) fn decode_history(b: &[u8]) -> Result<HistoryValue, LedgerError> {
    let (txid, rest) = get_bytes(b)?;
    let (secs, rest) = get_varint(rest)?;
    let (nanos, rest) = get_varint(rest)?;
    let (&del, value) = rest
        .split_first()
        .ok_or_else(|| LedgerError::Corrupt("history entry".into()))?;
    Ok((
        String::from_utf8_lossy(txid).into_owned(),
        (secs as i64, nanos as u32 as i32),
        del != 0,
        value.to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let (got, rest) = get_varint(&b).unwrap();
            assert_eq!(got, v);
            assert!(rest.is_empty());
        }
        assert!(get_varint(&[0x80]).is_err());
    }

    #[test]
    fn values_keep_version_metadata_and_value_apart() {
        let mut m = BTreeMap::new();
        m.insert("VALIDATION_PARAMETER".to_string(), b"policy".to_vec());
        let meta = encode_metadata(&m);
        let enc = encode_value(Height { block: 300, tx: 7 }, &meta, b"v\0al");
        let (h, gm, v) = decode_value(&enc).unwrap();
        assert_eq!(h, Height { block: 300, tx: 7 });
        assert_eq!(decode_metadata(gm).unwrap(), m);
        assert_eq!(v, b"v\0al");
    }

    #[test]
    fn history_prefix_does_not_match_longer_keys() {
        let a = history_key("cc", "a", Height { block: 1, tx: 0 });
        let ab = history_key("cc", "a\0b", Height { block: 1, tx: 0 });
        assert!(a.starts_with(&history_prefix("cc", "a")));
        assert!(!ab.starts_with(&history_prefix("cc", "a")));
        assert_eq!(history_key_height(&a).unwrap(), Height { block: 1, tx: 0 });
    }
}
