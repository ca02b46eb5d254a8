//! Private keys, public keys and signatures from arbitrary bytes.
#![no_main]

use fabric_common::crypto::{is_low_s, normalize_low_s, PublicKey, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SigningKey::from_pem(data);
    let _ = SigningKey::from_pkcs8_der(data);
    let _ = SigningKey::from_sec1_der(data);
    let _ = PublicKey::from_pem(data);
    let _ = PublicKey::from_spki_der(data);
    let _ = PublicKey::from_sec1_bytes(data);
    let _ = is_low_s(data);
    let _ = normalize_low_s(data);
});
