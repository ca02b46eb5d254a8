//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant whitespace, so the
//! same value always serialises to the same bytes on every endorsing peer.

use serde::Serialize;
use serde_json::Value;

/// Serialises `value` as canonical JSON.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(128);
    write_value(&value, &mut out)?;
    Ok(out)
}

/// Serialises `value` as a canonical JSON string.
pub fn to_canonical_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let bytes = to_canonical_vec(value)?;
    // serde_json writes only valid UTF-8.
    Ok(String::from_utf8(bytes).expect("JSON is UTF-8"))
}

/// Writes an already built [`Value`] canonically into `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            // Sort explicitly: serde_json's map keeps insertion order when its
            // `preserve_order` feature is on anywhere in the build.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write_value(v, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_recursively_without_whitespace() {
        #[derive(Serialize)]
        struct S {
            zeta: u32,
            alpha: Vec<Inner>,
        }
        #[derive(Serialize)]
        struct Inner {
            b: &'static str,
            a: Option<bool>,
        }
        let s = S {
            zeta: 1,
            alpha: vec![Inner { b: "x\"y", a: None }],
        };
        assert_eq!(
            to_canonical_string(&s).unwrap(),
            r#"{"alpha":[{"a":null,"b":"x\"y"}],"zeta":1}"#
        );
    }
}
