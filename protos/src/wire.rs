//! The `prost` runtime as the generated code sees it, with two changes: map entries always carry
//! both their key and their value, and `bytes` fields are decoded with one copy instead of two.
//!
//! Plain prost leaves a map entry's key or value out when it equals the default (an empty string
//! key, a `0` key, a `false` value, an empty message). Fabric's Go code and the official
//! JavaScript bindings (google-protobuf) always write both, so e.g. a `Capabilities` entry (whose
//! value is the empty `Capability`) or a `BlockAndPrivateData` entry for transaction 0 would be
//! encoded differently from Fabric's own bytes. Decoders accept either form, but bytes that are
//! hashed, signed or compared with Fabric's must be Fabric's. The generated code is pointed here
//! (`prost_path`), so every map field of the schema is encoded as Fabric encodes it.
//!
//! Plain prost decodes a `bytes` field held in a `Vec<u8>` by first copying it into a `Bytes`
//! and then copying that into the `Vec` (it reuses the path meant for `Bytes` fields). Fabric's
//! messages are nests of `bytes` fields (an envelope's payload holds a header and data, which
//! hold further messages), so every transaction passes through it many times; [`encoding::bytes`]
//! copies once. Everything else is prost's own.

#[doc(hidden)]
pub use prost::*;

/// prost's encoding functions, with [`btree_map`](self::encoding::btree_map) and
/// [`bytes`](self::encoding::bytes) replaced.
pub mod encoding {
    #[doc(hidden)]
    pub use prost::encoding::*;

    /// `bytes` fields (`Vec<u8>`): prost's encoding, decoded straight into the field's `Vec`.
    pub mod bytes {
        use prost::bytes::{Buf, BufMut};
        use prost::encoding::{check_wire_type, decode_varint, DecodeContext, WireType};
        use prost::DecodeError;

        #[doc(hidden)]
        pub use prost::encoding::bytes::{
            encode, encode_repeated, encoded_len, encoded_len_repeated,
        };

        /// Replaces `value` with the field's bytes (last one wins, as protobuf requires).
        pub fn merge(
            wire_type: WireType,
            value: &mut Vec<u8>,
            buf: &mut impl Buf,
            _ctx: DecodeContext,
        ) -> Result<(), DecodeError> {
            check_wire_type(WireType::LengthDelimited, wire_type)?;
            let len = decode_varint(buf)?;
            if len > buf.remaining() as u64 {
                return Err(underflow());
            }
            let len = len as usize;
            value.clear();
            value.reserve(len);
            value.put(buf.take(len));
            Ok(())
        }

        /// Appends one element of a `repeated bytes` field.
        pub fn merge_repeated(
            wire_type: WireType,
            values: &mut Vec<Vec<u8>>,
            buf: &mut impl Buf,
            ctx: DecodeContext,
        ) -> Result<(), DecodeError> {
            let mut value = Vec::new();
            merge(wire_type, &mut value, buf, ctx)?;
            values.push(value);
            Ok(())
        }

        /// The error prost gives for a length that runs past the end of the input.
        #[cold]
        fn underflow() -> DecodeError {
            // prost's own decoder produces this error for a 1-byte field with no byte after it;
            // asking it keeps the error identical to prost's without its deprecated constructor.
            let mut value = Vec::new();
            prost::encoding::bytes::merge(
                WireType::LengthDelimited,
                &mut value,
                &mut &[1u8][..],
                DecodeContext::default(),
            )
            .expect_err("a length past the end underflows")
        }
    }

    /// Map fields (`BTreeMap`s): entries in key order, each with its key and its value.
    pub mod btree_map {
        use prost::alloc::collections::BTreeMap;
        use prost::bytes::{Buf, BufMut};
        use prost::encoding::{
            encode_key, encode_varint, encoded_len_varint, key_len, DecodeContext, WireType,
        };
        use prost::DecodeError;

        /// Encodes every entry with both key (field 1) and value (field 2).
        pub fn encode<K, V, B, KE, KL, VE, VL>(
            key_encode: KE,
            key_encoded_len: KL,
            val_encode: VE,
            val_encoded_len: VL,
            tag: u32,
            values: &BTreeMap<K, V>,
            buf: &mut B,
        ) where
            B: BufMut,
            KE: Fn(u32, &K, &mut B),
            KL: Fn(u32, &K) -> usize,
            VE: Fn(u32, &V, &mut B),
            VL: Fn(u32, &V) -> usize,
        {
            for (key, val) in values {
                let len = key_encoded_len(1, key) + val_encoded_len(2, val);
                encode_key(tag, WireType::LengthDelimited, buf);
                encode_varint(len as u64, buf);
                key_encode(1, key, buf);
                val_encode(2, val, buf);
            }
        }

        /// As [`encode`]; the value default does not matter since values are always written.
        #[allow(clippy::too_many_arguments)]
        pub fn encode_with_default<K, V, B, KE, KL, VE, VL>(
            key_encode: KE,
            key_encoded_len: KL,
            val_encode: VE,
            val_encoded_len: VL,
            _val_default: &V,
            tag: u32,
            values: &BTreeMap<K, V>,
            buf: &mut B,
        ) where
            B: BufMut,
            KE: Fn(u32, &K, &mut B),
            KL: Fn(u32, &K) -> usize,
            VE: Fn(u32, &V, &mut B),
            VL: Fn(u32, &V) -> usize,
        {
            encode(
                key_encode,
                key_encoded_len,
                val_encode,
                val_encoded_len,
                tag,
                values,
                buf,
            )
        }

        /// The encoded length of [`encode`]'s output.
        pub fn encoded_len<K, V, KL, VL>(
            key_encoded_len: KL,
            val_encoded_len: VL,
            tag: u32,
            values: &BTreeMap<K, V>,
        ) -> usize
        where
            KL: Fn(u32, &K) -> usize,
            VL: Fn(u32, &V) -> usize,
        {
            key_len(tag) * values.len()
                + values
                    .iter()
                    .map(|(key, val)| {
                        let len = key_encoded_len(1, key) + val_encoded_len(2, val);
                        encoded_len_varint(len as u64) + len
                    })
                    .sum::<usize>()
        }

        /// As [`encoded_len`].
        pub fn encoded_len_with_default<K, V, KL, VL>(
            key_encoded_len: KL,
            val_encoded_len: VL,
            _val_default: &V,
            tag: u32,
            values: &BTreeMap<K, V>,
        ) -> usize
        where
            KL: Fn(u32, &K) -> usize,
            VL: Fn(u32, &V) -> usize,
        {
            encoded_len(key_encoded_len, val_encoded_len, tag, values)
        }

        /// Decodes one entry; a missing key or value is its default, as everywhere in protobuf.
        pub fn merge<K, V, B, KM, VM>(
            key_merge: KM,
            val_merge: VM,
            values: &mut BTreeMap<K, V>,
            buf: &mut B,
            ctx: DecodeContext,
        ) -> Result<(), DecodeError>
        where
            K: Default + Eq + core::hash::Hash + Ord,
            V: Default,
            B: Buf,
            KM: Fn(WireType, &mut K, &mut B, DecodeContext) -> Result<(), DecodeError>,
            VM: Fn(WireType, &mut V, &mut B, DecodeContext) -> Result<(), DecodeError>,
        {
            prost::encoding::btree_map::merge(key_merge, val_merge, values, buf, ctx)
        }

        /// As [`merge`], starting the value from `val_default`.
        pub fn merge_with_default<K, V, B, KM, VM>(
            key_merge: KM,
            val_merge: VM,
            val_default: V,
            values: &mut BTreeMap<K, V>,
            buf: &mut B,
            ctx: DecodeContext,
        ) -> Result<(), DecodeError>
        where
            K: Default + Eq + core::hash::Hash + Ord,
            B: Buf,
            KM: Fn(WireType, &mut K, &mut B, DecodeContext) -> Result<(), DecodeError>,
            VM: Fn(WireType, &mut V, &mut B, DecodeContext) -> Result<(), DecodeError>,
        {
            prost::encoding::btree_map::merge_with_default(
                key_merge,
                val_merge,
                val_default,
                values,
                buf,
                ctx,
            )
        }
    }
}
