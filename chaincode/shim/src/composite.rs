//! Composite keys, built and split exactly as Fabric's Go shim does: a `\x00` namespace byte, the
//! object type, then each attribute, each followed by a `\x00` separator. Attributes must be valid
//! UTF-8 and may contain neither U+0000 nor U+10FFFF (the latter closes partial-key ranges).

use crate::error::{Error, Result};

/// The first byte of every composite key; simple keys may not start with it.
pub const COMPOSITE_KEY_NAMESPACE: char = '\u{0}';
/// Separator after each composite key component.
pub const MIN_UNICODE_RUNE: char = '\u{0}';
/// The largest code point; appended to a partial composite key to end its range.
pub const MAX_UNICODE_RUNE: char = char::MAX;
/// The start key the Go shim substitutes for an empty range start, so that open ranges skip the
/// composite key namespace.
pub const EMPTY_KEY_SUBSTITUTE: &str = "\u{1}";

fn validate_attribute(s: &str) -> Result<()> {
    // `&str` is always valid UTF-8, so only the two reserved code points need checking.
    for (index, c) in s.char_indices() {
        if c == MIN_UNICODE_RUNE || c == MAX_UNICODE_RUNE {
            return Err(Error::invalid(format!(
                "input contains unicode {} starting at position [{index}]. {} and {} are not allowed in the input attribute of a composite key",
                go_rune(c),
                go_rune(MIN_UNICODE_RUNE),
                go_rune(MAX_UNICODE_RUNE)
            )));
        }
    }
    Ok(())
}

/// Formats a code point as Go's `%#U` does (`U+0000`, `U+10FFFF '…'`).
fn go_rune(c: char) -> String {
    if c.is_control() || c == MAX_UNICODE_RUNE {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

/// Builds a composite key from an object type and attributes.
pub fn create_composite_key<S: AsRef<str>>(object_type: &str, attributes: &[S]) -> Result<String> {
    validate_attribute(object_type)?;
    let len = 2
        + object_type.len()
        + attributes
            .iter()
            .map(|a| a.as_ref().len() + 1)
            .sum::<usize>();
    let mut key = String::with_capacity(len);
    key.push(COMPOSITE_KEY_NAMESPACE);
    key.push_str(object_type);
    key.push(MIN_UNICODE_RUNE);
    for attribute in attributes {
        let attribute = attribute.as_ref();
        validate_attribute(attribute)?;
        key.push_str(attribute);
        key.push(MIN_UNICODE_RUNE);
    }
    Ok(key)
}

/// Builds a composite key from raw bytes, refusing invalid UTF-8 as the Go shim does.
pub fn create_composite_key_from_bytes(object_type: &[u8], attributes: &[&[u8]]) -> Result<String> {
    let object_type = utf8(object_type)?;
    let attributes = attributes
        .iter()
        .map(|a| utf8(a))
        .collect::<Result<Vec<_>>>()?;
    create_composite_key(object_type, &attributes)
}

fn utf8(b: &[u8]) -> Result<&str> {
    std::str::from_utf8(b)
        .map_err(|_| Error::invalid(format!("not a valid utf8 string: [{}]", hex_of(b))))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Splits a composite key into its object type and attributes.
pub fn split_composite_key(composite_key: &str) -> Result<(String, Vec<String>)> {
    let bytes = composite_key.as_bytes();
    if bytes.first() != Some(&0) {
        return Err(Error::invalid(format!(
            "invalid composite key [{}]: it does not start with the composite key namespace",
            composite_key.escape_debug()
        )));
    }
    let mut components = Vec::new();
    let mut start = 1;
    for (i, b) in bytes.iter().enumerate().skip(1) {
        if *b == 0 {
            components.push(composite_key[start..i].to_owned());
            start = i + 1;
        }
    }
    if components.is_empty() {
        return Err(Error::invalid(format!(
            "invalid composite key [{}]: no object type",
            composite_key.escape_debug()
        )));
    }
    let object_type = components.remove(0);
    Ok((object_type, components))
}

/// The `[start, end)` range covering every composite key that begins with the given components.
pub fn partial_composite_key_range<S: AsRef<str>>(
    object_type: &str,
    attributes: &[S],
) -> Result<(String, String)> {
    let start = create_composite_key(object_type, attributes)?;
    let mut end = String::with_capacity(start.len() + 4);
    end.push_str(&start);
    end.push(MAX_UNICODE_RUNE);
    Ok((start, end))
}

/// Refuses simple keys in the composite key namespace (first byte `\x00`), as the Go shim does
/// for range bounds.
pub fn validate_simple_keys(keys: &[&str]) -> Result<()> {
    for key in keys {
        if key.as_bytes().first() == Some(&0) {
            return Err(Error::invalid(format!(
                "first character of the key [{key}] contains a null character which is not allowed"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_namespace_and_separators() {
        let k = create_composite_key("licence", &["L1", "x"]).unwrap();
        assert_eq!(k, "\u{0}licence\u{0}L1\u{0}x\u{0}");
        let (t, a) = split_composite_key(&k).unwrap();
        assert_eq!(t, "licence");
        assert_eq!(a, vec!["L1".to_owned(), "x".to_owned()]);
    }

    #[test]
    fn no_attributes_and_empty_attributes_round_trip() {
        let k = create_composite_key::<&str>("t", &[]).unwrap();
        assert_eq!(split_composite_key(&k).unwrap(), ("t".to_owned(), vec![]));
        let k = create_composite_key("t", &["", "b"]).unwrap();
        assert_eq!(
            split_composite_key(&k).unwrap().1,
            vec!["".to_owned(), "b".to_owned()]
        );
    }

    #[test]
    fn refuses_reserved_code_points_like_go() {
        let err = create_composite_key("t", &["a\u{0}b"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input contains unicode U+0000 starting at position [1]. U+0000 and U+10FFFF are not allowed in the input attribute of a composite key"
        );
        assert!(create_composite_key("t\u{10FFFF}", &["a"]).is_err());
        assert!(create_composite_key_from_bytes(b"t", &[&[0xff, 0xfe]])
            .unwrap_err()
            .to_string()
            .starts_with("not a valid utf8 string: [fffe]"));
    }

    #[test]
    fn partial_range_covers_children_only() {
        let (s, e) = partial_composite_key_range("t", &["a"]).unwrap();
        let child = create_composite_key("t", &["a", "z"]).unwrap();
        let other = create_composite_key("t", &["b"]).unwrap();
        assert!(s.as_str() <= child.as_str() && child.as_str() < e.as_str());
        assert!(!(s.as_str() <= other.as_str() && other.as_str() < e.as_str()));
    }

    #[test]
    fn simple_keys_may_not_start_with_nul() {
        assert!(validate_simple_keys(&["a", ""]).is_ok());
        assert!(validate_simple_keys(&["\u{0}a"]).is_err());
    }
}
