//! The official Node `fabric-ca-client` (npm) against a devnet organisation's Fabric CA over
//! HTTPS: the bootstrap admin enrolls, registers a clerk with an ecert attribute, the clerk
//! enrolls and reenrolls, identities are listed, the clerk is revoked and can no longer enroll;
//! the certificates are the CA's and the channel's MSP accepts them as client identities.
//! Needs Node and `npm ci` in `tests/interop`.

#[path = "interop_support/mod.rs"]
mod support;

use std::time::Duration;

use fabric_common::identity::Identity;
use fabric_common::msp::NodeRole;
use fabric_devnet::devnet::{Devnet, DevnetConfig};
use fabric_devnet::material::x509;
use support::*;

fn der(pem: &serde_json::Value) -> Vec<u8> {
    x509::from_pem(pem.as_str().expect("a PEM string").as_bytes())
        .expect("PEM")
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabric_ca_client_node_enrolls_registers_reenrolls_and_revokes_on_the_devnet_ca() {
    if !node_ready("fabric-ca-client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(topology(), dir.path()))
        .await
        .unwrap();
    let summary = devnet.summary();
    let ca = summary.cas.iter().find(|c| c.org == "Police").unwrap();
    let org = devnet.crypto().org("Police").unwrap().clone();
    let input = serde_json::json!({
        "url": ca.url,
        "caName": ca.ca_name,
        "tlsCaCert": ca.tls_ca_cert,
        "mspId": "PoliceMSP",
        "user": "clerk9",
        "attr": { "name": "elicense.role", "value": "clerk" },
    });
    let out = run_node("devnet/ca.js", &input, Duration::from_secs(90)).await;
    println!("{}", serde_json::to_string_pretty(&out).unwrap());

    assert_eq!(out["caName"], "ca.police.interop.test");
    assert_eq!(out["cainfo"]["caName"], "ca.police.interop.test");
    assert!(
        out["cainfo"]["caChain"]
            .as_str()
            .unwrap()
            .contains(org.ca.cert_pem().trim()),
        "cainfo carries the org's root CA"
    );
    x509::verify_signed_by(&der(&out["adminCert"]), org.ca.cert_der()).unwrap();
    let bad = out["badSecretError"]
        .as_str()
        .expect("a wrong secret fails");
    assert!(bad.contains("Authentication failure"), "{bad}");
    assert!(!out["secret"].as_str().unwrap().is_empty());

    // The enrolled clerk: issued by the org's CA, CN = enrollment ID, the requested attribute
    // embedded as Fabric CA embeds it, a valid client of the channel's MSP.
    let ctx = devnet
        .peer("Service")
        .unwrap()
        .node
        .channel(CH)
        .unwrap()
        .context()
        .clone();
    let mut serials = Vec::new();
    for field in ["userCert", "reenrolledCert"] {
        let cert = der(&out[field]);
        x509::verify_signed_by(&cert, org.ca.cert_der()).unwrap();
        let info = x509::cert_info(&cert).unwrap();
        assert_eq!(info.subject.common_name, "clerk9", "{field}");
        let attrs = info.attributes.clone().expect("attribute extension");
        assert_eq!(
            attrs.get("elicense.role").map(String::as_str),
            Some("clerk")
        );
        // Enroll asked for the role only, so only it is embedded; reenroll asked for none, so
        // every ecert attribute is, as Fabric CA does.
        let expect_id = (field == "reenrolledCert").then_some("clerk9");
        assert_eq!(
            attrs.get("hf.EnrollmentID").map(String::as_str),
            expect_id,
            "{field}"
        );
        let id = Identity::new("PoliceMSP", out[field].as_str().unwrap().as_bytes()).unwrap();
        let checked = ctx.msps.deserialize(id.serialized()).unwrap();
        assert!(checked.is_valid(), "{field}: {:?}", checked.validity);
        assert_eq!(checked.role, Some(NodeRole::Client), "{field}");
        serials.push(info.serial);
    }
    assert_ne!(serials[0], serials[1], "reenroll issues a new certificate");

    let ids = out["identities"].as_array().unwrap();
    let clerk = ids.iter().find(|i| i["id"] == "clerk9").expect("listed");
    assert_eq!(clerk["type"], "client");
    assert!(
        clerk["attrs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "elicense.role" && a["value"] == "clerk" && a["ecert"] == true),
        "{clerk}"
    );
    assert!(ids.iter().any(|i| i["id"] == "admin"));
    let one = &out["identity"];
    assert_eq!(one["id"], "clerk9", "{one}");
    assert_eq!(one["type"], "client", "{one}");
    assert_eq!(one["max_enrollments"], -1, "{one}");
    assert_eq!(one["attrs"], clerk["attrs"], "{one}");

    let refused = out["clerkRegisterError"]
        .as_str()
        .expect("a clerk cannot register");
    assert!(refused.contains("Authorization failure"), "{refused}");
    // Revoking the identity revokes both its certificates; it cannot enroll any more.
    let mut revoked: Vec<String> = out["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| x509::normalize_hex(r["Serial"].as_str().unwrap()))
        .collect();
    revoked.sort();
    serials.sort();
    assert_eq!(revoked, serials);
    let after = out["enrollAfterRevokeError"]
        .as_str()
        .expect("a revoked identity cannot enroll");
    assert!(
        after.contains("Authentication failure") || after.contains("revoked"),
        "{after}"
    );
    devnet.down().await;
}
