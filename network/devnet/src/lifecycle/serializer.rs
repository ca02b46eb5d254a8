//! Fabric's `_lifecycle` state serializer (`core/chaincode/lifecycle/serializer.go`): a struct is
//! stored as one `StateMetadata` key (`<ns>/metadata/<name>`: type name and field names) plus one
//! `StateData` key per field (`<ns>/fields/<name>/<Field>`). Only changed keys are written, so
//! read-write sets are exactly Fabric's; approvals are compared by the hashes of these values.

use fabric_protos::lifecycle::{state_data, StateData, StateMetadata};
use prost::Message;
use sha2::{Digest, Sha256};

/// One field value: `int64` or bytes (a serialized protobuf for message fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// An `int64` field.
    Int(i64),
    /// A `string` field.
    Str(String),
    /// A `[]byte` or protobuf message field.
    Bytes(Vec<u8>),
}

/// A struct as Fabric's serializer sees it: its Go type name and its fields in order.
#[derive(Debug, Clone)]
pub struct Structure {
    /// The Go type name (`ChaincodeDefinition`, `ChaincodeParameters`, `ChaincodeLocalPackage`).
    pub type_name: &'static str,
    /// Field names and values in declaration order.
    pub fields: Vec<(&'static str, Field)>,
}

/// Reads and writes of one state (the public namespace or an org's implicit collection).
pub trait State {
    /// The value of `key`.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Writes `key`.
    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), String>;
    /// Deletes `key`.
    fn del(&mut self, key: &str) -> Result<(), String>;
}

/// Hash-only reads of another organisation's implicit collection.
pub trait OpaqueState {
    /// SHA-256 of the value of `key`, if any.
    fn get_hash(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
}

/// `<ns>/metadata/<name>`.
pub fn metadata_key(ns: &str, name: &str) -> String {
    format!("{ns}/metadata/{name}")
}

/// `<ns>/fields/<name>/<field>`.
pub fn field_key(ns: &str, name: &str, field: &str) -> String {
    format!("{ns}/fields/{name}/{field}")
}

fn state_data(f: &Field) -> Vec<u8> {
    StateData {
        r#type: Some(match f {
            Field::Int(i) => state_data::Type::Int64(*i),
            Field::Str(s) => state_data::Type::String(s.clone()),
            Field::Bytes(b) => state_data::Type::Bytes(b.clone()),
        }),
    }
    .encode_to_vec()
}

fn metadata_of(s: &Structure) -> StateMetadata {
    StateMetadata {
        datatype: s.type_name.to_string(),
        fields: s.fields.iter().map(|(n, _)| n.to_string()).collect(),
    }
}

/// Reads `<ns>/metadata/<name>`.
pub fn deserialize_metadata(
    ns: &str,
    name: &str,
    state: &mut dyn State,
) -> Result<Option<StateMetadata>, String> {
    match state.get(&metadata_key(ns, name))? {
        None => Ok(None),
        Some(b) if b.is_empty() => Ok(None),
        Some(b) => StateMetadata::decode(b.as_slice())
            .map(Some)
            .map_err(|e| format!("could not unmarshal metadata for namespace {ns}/{name}: {e}")),
    }
}

/// `Serialize`: writes changed fields, the metadata when it changes, and deletes fields the
/// struct no longer has.
pub fn serialize(ns: &str, name: &str, s: &Structure, state: &mut dyn State) -> Result<(), String> {
    let existing_md = deserialize_metadata(ns, name, state)?.unwrap_or_default();
    let mut existing: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for f in &existing_md.fields {
        let k = field_key(ns, name, f);
        let v = state.get(&k)?;
        existing.push((k, v));
    }
    for (fname, value) in &s.fields {
        let k = field_key(ns, name, fname);
        let bytes = state_data(value);
        let pos = existing.iter().position(|(ek, _)| *ek == k);
        let unchanged = pos.is_some_and(|i| existing[i].1.as_deref() == Some(bytes.as_slice()));
        if !unchanged {
            state.put(&k, bytes)?;
        }
        if let Some(i) = pos {
            existing.remove(i);
        }
    }
    if !existing.is_empty()
        || existing_md.datatype != s.type_name
        || existing_md.fields.len() != s.fields.len()
    {
        state.put(&metadata_key(ns, name), metadata_of(s).encode_to_vec())?;
    }
    for (k, _) in existing {
        state.del(&k)?;
    }
    Ok(())
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// `IsSerialized`: whether the hashes in `state` are those of `s` serialized under `name`.
pub fn is_serialized(
    ns: &str,
    name: &str,
    s: &Structure,
    state: &mut dyn OpaqueState,
) -> Result<bool, String> {
    let md = metadata_of(s).encode_to_vec();
    if state.get_hash(&metadata_key(ns, name))? != Some(sha256(&md)) {
        return Ok(false);
    }
    for (fname, value) in &s.fields {
        if state.get_hash(&field_key(ns, name, fname))? != Some(sha256(&state_data(value))) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One field of a stored struct (`None` when absent or unset).
pub fn field(
    ns: &str,
    name: &str,
    fname: &str,
    state: &mut dyn State,
) -> Result<Option<Field>, String> {
    let k = field_key(ns, name, fname);
    let Some(b) = state.get(&k)? else {
        return Ok(None);
    };
    let d = StateData::decode(b.as_slice())
        .map_err(|e| format!("could not unmarshal state for key {k}: {e}"))?;
    Ok(d.r#type.map(|t| match t {
        state_data::Type::Int64(i) => Field::Int(i),
        state_data::Type::Bytes(b) => Field::Bytes(b),
        state_data::Type::String(s) => Field::Str(s),
    }))
}

/// An `int64` field (0 when absent, as Fabric's `DeserializeFieldAsInt64`).
pub fn int_field(ns: &str, name: &str, fname: &str, state: &mut dyn State) -> Result<i64, String> {
    match field(ns, name, fname, state)? {
        None => Ok(0),
        Some(Field::Int(i)) => Ok(i),
        Some(_) => Err(format!(
            "expected key {} to encode a value of type Int64",
            field_key(ns, name, fname)
        )),
    }
}

/// A bytes field (empty when absent).
pub fn bytes_field(
    ns: &str,
    name: &str,
    fname: &str,
    state: &mut dyn State,
) -> Result<Vec<u8>, String> {
    match field(ns, name, fname, state)? {
        None => Ok(Vec::new()),
        Some(Field::Bytes(b)) => Ok(b),
        Some(_) => Err(format!(
            "expected key {} to encode a value of type []byte",
            field_key(ns, name, fname)
        )),
    }
}

/// A string field (empty when absent).
pub fn string_field(
    ns: &str,
    name: &str,
    fname: &str,
    state: &mut dyn State,
) -> Result<String, String> {
    match field(ns, name, fname, state)? {
        None => Ok(String::new()),
        Some(Field::Str(s)) => Ok(s),
        Some(_) => Err(format!(
            "expected key {} to encode a value of type String",
            field_key(ns, name, fname)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Mem(BTreeMap<String, Vec<u8>>, Vec<String>);

    impl State for Mem {
        fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(key).cloned())
        }
        fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), String> {
            self.1.push(key.to_string());
            self.0.insert(key.into(), value);
            Ok(())
        }
        fn del(&mut self, key: &str) -> Result<(), String> {
            self.1.push(format!("-{key}"));
            self.0.remove(key);
            Ok(())
        }
    }

    impl OpaqueState for Mem {
        fn get_hash(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(key).map(|v| sha256(v)))
        }
    }

    fn s(seq: i64, v: &[u8]) -> Structure {
        Structure {
            type_name: "ChaincodeDefinition",
            fields: vec![
                ("Sequence", Field::Int(seq)),
                ("Collections", Field::Bytes(v.to_vec())),
            ],
        }
    }

    #[test]
    fn values_are_encoded_as_go_proto_marshals_state_data() {
        // A set oneof is always encoded, zero values included.
        assert_eq!(state_data(&Field::Int(0)), [0x08, 0x00]);
        assert_eq!(state_data(&Field::Bytes(vec![])), [0x12, 0x00]);
        assert_eq!(state_data(&Field::Str("p".into())), [0x1a, 0x01, b'p']);
        assert_eq!(
            field_key("namespaces", "cc#1", "Sequence"),
            "namespaces/fields/cc#1/Sequence"
        );
        assert_eq!(metadata_key("namespaces", "cc"), "namespaces/metadata/cc");
    }

    #[test]
    fn only_changed_keys_are_written_and_hashes_recognise_the_structure() {
        let mut m = Mem::default();
        serialize("namespaces", "cc", &s(1, b"a"), &mut m).unwrap();
        assert_eq!(m.1.len(), 3, "{:?}", m.1);
        m.1.clear();
        serialize("namespaces", "cc", &s(2, b"a"), &mut m).unwrap();
        assert_eq!(m.1, vec!["namespaces/fields/cc/Sequence".to_string()]);
        assert_eq!(
            int_field("namespaces", "cc", "Sequence", &mut m).unwrap(),
            2
        );
        assert!(is_serialized("namespaces", "cc", &s(2, b"a"), &mut m).unwrap());
        assert!(!is_serialized("namespaces", "cc", &s(2, b"b"), &mut m).unwrap());
        // A struct with fewer fields deletes the stale one and rewrites the metadata.
        m.1.clear();
        let smaller = Structure {
            type_name: "ChaincodeDefinition",
            fields: vec![("Sequence", Field::Int(2))],
        };
        serialize("namespaces", "cc", &smaller, &mut m).unwrap();
        assert_eq!(
            m.1,
            vec![
                "namespaces/metadata/cc".to_string(),
                "-namespaces/fields/cc/Collections".to_string()
            ]
        );
    }
}
