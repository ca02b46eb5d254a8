//! Transaction envelopes and signed proposals from arbitrary bytes.
#![no_main]

use fabric_common::tx::{unpack_envelope_bytes, UnpackedProposal};
use fabric_protos::protos::SignedProposal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = unpack_envelope_bytes(data) {
        for action in &tx.actions {
            let _ = action.kv_rwsets();
        }
    }
    let signed = SignedProposal {
        proposal_bytes: data.to_vec(),
        signature: Vec::new(),
    };
    let _ = UnpackedProposal::from_signed(&signed);
});
