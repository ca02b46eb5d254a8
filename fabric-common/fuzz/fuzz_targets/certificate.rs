//! Certificates, serialized identities and Fabric CA attribute JSON from arbitrary bytes.
#![no_main]

use fabric_common::identity::{Attributes, Certificate, Identity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = Certificate::from_der(data) {
        let _ = cert.client_id();
        let _ = cert.sanitized_der();
    }
    let _ = Certificate::from_pem(data);
    let _ = Certificate::all_from_pem(data);
    let _ = Identity::from_serialized(data);
    let _ = Attributes::from_json(data);
});
