//! Prints ECDSA P-256 sign and verify cost (µs/op, one core) for the implementation fabric-common
//! uses next to pure-Rust `p256`, so the choice documented in `crypto.rs` can be re-checked on any
//! machine. Figures only; nothing here asserts a time.
//!
//! Run with `cargo bench -p fabric-common --bench ecdsa`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use fabric_common::crypto::{sha256, Signer, SigningKey};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::DecodePrivateKey;

fn measure(name: &str, mut op: impl FnMut(u64)) {
    // Warm up, then run for a fixed wall-clock budget and report the mean.
    for i in 0..200 {
        op(i);
    }
    let budget = Duration::from_millis(700);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            op(n);
            n += 1;
        }
    }
    let per_op = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{name:<58} {per_op:>8.1} µs/op  ({n} ops)");
}

fn main() {
    let key = SigningKey::generate();
    let public = key.public_key().clone();
    let message = vec![0x5au8; 512];
    let digest = sha256(&message);

    let pure = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let pure_vk = *pure.verifying_key();

    println!("ECDSA P-256 / SHA-256, 512-byte message, one thread");
    measure(
        "sign    fabric-common SigningKey::sign (ring + low-S)",
        |_| {
            black_box(key.sign(black_box(&message)).unwrap());
        },
    );
    measure(
        "sign    fabric-common SigningKey::sign_digest (p256)",
        |_| {
            black_box(key.sign_digest(black_box(&digest)).unwrap());
        },
    );
    let ring_key = {
        use p256::pkcs8::EncodePrivateKey;
        let der = p256::SecretKey::from_pkcs8_pem(&key.to_pkcs8_pem())
            .unwrap()
            .to_pkcs8_der()
            .unwrap();
        ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            der.as_bytes(),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap()
    };
    let rng = ring::rand::SystemRandom::new();
    measure(
        "sign    raw ring EcdsaKeyPair::sign (no low-S step)",
        |_| {
            black_box(ring_key.sign(&rng, black_box(&message)).unwrap());
        },
    );
    measure("sign    pure p256 SigningKey::sign", |_| {
        let sig: p256::ecdsa::Signature = pure.sign(black_box(&message));
        black_box(sig.to_der());
    });

    let sig = key.sign(&message).unwrap();
    let pure_sig: p256::ecdsa::Signature = pure.sign(&message);
    let pure_sig = pure_sig.normalize_s().unwrap_or(pure_sig);
    let pure_der = pure_sig.to_der();
    measure(
        "verify  fabric-common PublicKey::verify (low-S + ring)",
        |_| {
            public.verify(black_box(&message), black_box(&sig)).unwrap();
        },
    );
    let ring_pub = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        public.to_uncompressed().to_vec(),
    );
    measure(
        "verify  raw ring UnparsedPublicKey::verify (no low-S check)",
        |_| {
            ring_pub
                .verify(black_box(&message), black_box(&sig))
                .unwrap();
        },
    );
    measure(
        "verify  fabric-common PublicKey::verify_digest (p256)",
        |_| {
            public
                .verify_digest(black_box(&digest), black_box(&sig))
                .unwrap();
        },
    );
    measure("verify  pure p256 VerifyingKey::verify (DER parse)", |_| {
        let s = p256::ecdsa::Signature::from_der(black_box(pure_der.as_bytes())).unwrap();
        pure_vk.verify(black_box(&message), &s).unwrap();
    });

    // Parsing a creator once per transaction is on every validation path, so show its cost too.
    let cert_der = {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["peer0.org1.example.com".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "peer0.org1.example.com");
        params.self_signed(&kp).unwrap().der().to_vec()
    };
    let identity = fabric_common::identity::Identity::from_certificate(
        "Org1MSP",
        fabric_common::identity::Certificate::from_der(&cert_der).unwrap(),
    );
    let serialized = identity.serialized().to_vec();
    measure(
        "parse   Identity::from_serialized (PEM + X.509 + key)",
        |_| {
            black_box(
                fabric_common::identity::Identity::from_serialized(black_box(&serialized)).unwrap(),
            );
        },
    );
}
