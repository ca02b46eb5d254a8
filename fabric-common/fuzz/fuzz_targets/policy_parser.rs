//! The policy language parser and the envelope compiler from arbitrary input.
#![no_main]

use fabric_common::policy::{parse_policy, print_policy, CompiledPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(envelope) = parse_policy(text) {
            // Whatever parses must print and parse back to the same envelope.
            let printed = print_policy(&envelope).expect("parsed policies are printable");
            assert_eq!(parse_policy(&printed).expect("printed policies parse"), envelope);
        }
    }
    let _ = CompiledPolicy::from_bytes(data);
});
