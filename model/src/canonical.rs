//! Length-prefixed canonical encoding shared by every holder-signed message.
//!
//! Every signed structure is encoded as a sequence of items, each written as a 4-byte big-endian
//! length followed by that many bytes, starting with a domain-separation tag such as
//! `elicense/grant/v1`. Fixed-width integers (`i64`, `u32`) are written big-endian without a
//! prefix. Length prefixes make the encoding injective (no two different messages share bytes)
//! and the leading tag keeps a signature over one kind of message from being replayed as another.

/// Builds a canonical byte string item by item.
#[derive(Debug, Default, Clone)]
pub struct CanonicalWriter {
    buf: Vec<u8>,
}

impl CanonicalWriter {
    /// Starts an encoding with its domain-separation tag.
    pub fn new(tag: &str) -> Self {
        let mut w = Self {
            buf: Vec::with_capacity(256),
        };
        w.bytes(tag.as_bytes());
        w
    }

    /// Appends a length-prefixed byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        // Lengths are bounded far below 4 GiB by argument validation; saturate rather than panic.
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(b);
        self
    }

    /// Appends a length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends a list: its element count as `u32` big-endian, then each element length-prefixed.
    pub fn str_list<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
        self.u32(n);
        for item in items {
            self.str(item.as_ref());
        }
        self
    }

    /// Appends a fixed-width big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a fixed-width big-endian two's-complement `i64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends raw bytes of a fixed, known width (e.g. a 32-byte digest) without a prefix.
    pub fn fixed(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Returns the encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_integers_are_big_endian() {
        let mut w = CanonicalWriter::new("t");
        w.str("ab").u32(1).i64(-1).str_list(&["x"]);
        assert_eq!(
            w.finish(),
            vec![
                0, 0, 0, 1, b't', 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, 255, 255, 255, 255, 255, 255,
                255, 255, 0, 0, 0, 1, 0, 0, 0, 1, b'x'
            ]
        );
    }

    #[test]
    fn boundaries_are_unambiguous() {
        let mut a = CanonicalWriter::new("t");
        a.str("ab").str("c");
        let mut b = CanonicalWriter::new("t");
        b.str("a").str("bc");
        assert_ne!(a.finish(), b.finish());
    }
}
