//! Tests of the material module: CA certificates as fabric-ca-server makes them, issued
//! certificates with Fabric CA's OUs and attributes, MSP directories, connection profiles.

use std::collections::BTreeMap;

use fabric_common::crypto::SigningKey;
use x509_parser::prelude::*;

use super::x509::{self, CertSpec, CertUsage, Name};
use super::*;

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der)
        .expect("x509-parser reads it")
        .1
}

#[test]
fn ca_certificate_has_fabric_ca_extensions() {
    let ca = CertAuthority::generate("ca.police.elicense.gov", "PublicSecurity", "CA").unwrap();
    let cert = parse(ca.cert_der());
    assert_eq!(cert.version(), X509Version::V3);
    assert_eq!(cert.subject(), cert.issuer(), "self-signed");
    cert.verify_signature(None)
        .expect("self-signature verifies");
    let bc = cert.basic_constraints().unwrap().expect("basicConstraints");
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(1));
    let ku = cert.key_usage().unwrap().expect("keyUsage");
    assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
    assert!(!ku.value.digital_signature());
    let ski = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .expect("SKI");
    assert_eq!(ski.len(), 20, "SHA-1 of the public key, as Go computes it");
    assert_eq!(ski, ca.ski());
    let cn: Vec<_> = cert.subject().iter_common_name().collect();
    assert_eq!(cn[0].as_str().unwrap(), "ca.police.elicense.gov");
    // The certificate's key is the CA key.
    assert_eq!(
        cert.public_key().raw,
        ca.key().public_key().to_spki_der().as_slice()
    );
}

fn leaf_spec(key: &SigningKey, ous: &[&str], usage: CertUsage) -> CertSpec {
    let (not_before, not_after) = x509::default_validity(CERT_LIFETIME);
    CertSpec {
        subject: Name {
            country: vec!["CN".into()],
            organization: vec!["PublicSecurity".into()],
            organizational_unit: ous.iter().map(|s| s.to_string()).collect(),
            common_name: "clerk1".into(),
            ..Name::default()
        },
        public_key_spki: key.public_key().to_spki_der(),
        usage,
        hosts: vec!["127.0.0.1".into(), "localhost".into()],
        attributes: Some(BTreeMap::from([
            ("elicense.role".to_string(), "clerk".to_string()),
            ("hf.EnrollmentID".to_string(), "clerk1".to_string()),
            ("hf.Type".to_string(), "client".to_string()),
            ("hf.Affiliation".to_string(), String::new()),
        ])),
        not_before,
        not_after,
    }
}

#[test]
fn issued_certificate_carries_ous_attributes_and_sans() {
    let ca = CertAuthority::generate("ca.police.elicense.gov", "PublicSecurity", "CA").unwrap();
    let key = SigningKey::generate();
    let issued = ca
        .issue(&leaf_spec(
            &key,
            &["client", "publicsecurity", "users"],
            CertUsage::Enrollment,
        ))
        .unwrap();
    let cert = parse(&issued.der);
    cert.verify_signature(Some(parse(ca.cert_der()).public_key()))
        .expect("signed by the CA");
    ca.verify_issued(&issued.der).unwrap();

    // All OUs in one multi-valued RDN, as Go's pkix.Name marshals them.
    let ou_rdns: Vec<_> = cert
        .subject()
        .iter_rdn()
        .filter(|rdn| {
            rdn.iter()
                .any(|a| a.attr_type() == &x509_parser::oid_registry::OID_X509_ORGANIZATIONAL_UNIT)
        })
        .collect();
    assert_eq!(ou_rdns.len(), 1);
    assert_eq!(ou_rdns[0].iter().count(), 3);

    let info = x509::cert_info(&issued.der).unwrap();
    let mut ous = info.subject.organizational_unit.clone();
    ous.sort();
    assert_eq!(ous, vec!["client", "publicsecurity", "users"]);
    assert_eq!(info.aki, ca.aki_hex());
    assert_eq!(info.serial, issued.serial);
    assert_eq!(info.hosts, vec!["localhost", "127.0.0.1"]);
    let attrs = info.attributes.unwrap();
    assert_eq!(attrs["elicense.role"], "clerk");
    assert_eq!(attrs["hf.Affiliation"], "");

    // The extension value is the JSON itself, keys sorted, as Fabric CA writes it.
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == x509::ATTRIBUTE_OID_STR)
        .unwrap();
    assert!(!ext.critical);
    assert_eq!(
        std::str::from_utf8(ext.value).unwrap(),
        r#"{"attrs":{"elicense.role":"clerk","hf.Affiliation":"","hf.EnrollmentID":"clerk1","hf.Type":"client"}}"#
    );
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.digital_signature() && !ku.value.key_cert_sign());
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && !bc.value.ca);
    assert!(cert.extended_key_usage().unwrap().is_none());
}

#[test]
fn tls_certificate_has_server_and_client_auth() {
    let ca = CertAuthority::generate("tlsca.police.elicense.gov", "PublicSecurity", "TLS").unwrap();
    let key = SigningKey::generate();
    let mut spec = leaf_spec(&key, &["peer"], CertUsage::Tls);
    spec.attributes = None;
    let issued = ca.issue(&spec).unwrap();
    let cert = parse(&issued.der);
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment() && ku.key_agreement());
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert!(san
        .general_names
        .iter()
        .any(|n| matches!(n, GeneralName::IPAddress(ip) if *ip == [127, 0, 0, 1])));
    assert!(x509::cert_info(&issued.der).unwrap().attributes.is_none());
}

#[test]
fn issued_certificate_never_outlives_its_ca() {
    let ca = CertAuthority::generate("ca.x", "X", "CA").unwrap();
    let key = SigningKey::generate();
    let mut spec = leaf_spec(&key, &["client"], CertUsage::Enrollment);
    spec.not_after = ca.not_after() + ::time::Duration::days(400);
    let issued = ca.issue(&spec).unwrap();
    assert_eq!(issued.not_after, ca.not_after());
}

#[test]
fn certificate_from_another_ca_is_not_verified_as_issued() {
    let a = CertAuthority::generate("ca.a", "A", "CA").unwrap();
    let b = CertAuthority::generate("ca.b", "B", "CA").unwrap();
    let key = SigningKey::generate();
    let issued = a
        .issue(&leaf_spec(&key, &["client"], CertUsage::Enrollment))
        .unwrap();
    assert!(b.verify_issued(&issued.der).is_err());
}

#[test]
fn msp_dir_layout_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::generate("ca.x", "X", "CA").unwrap();
    let tlsca = CertAuthority::generate("tlsca.x", "X", "TLS").unwrap();
    let key = SigningKey::generate();
    let issued = ca
        .issue(&leaf_spec(&key, &["admin"], CertUsage::Enrollment))
        .unwrap();
    let msp_dir = dir.path().join("msp");
    write_msp_dir(&msp_dir, &issued.pem, &key, ca.cert_pem(), tlsca.cert_pem()).unwrap();

    let sk = format!("{}_sk", hex::encode(key.public_key().ski()));
    for f in [
        "signcerts/cert.pem".to_string(),
        format!("keystore/{sk}"),
        "cacerts/ca-cert.pem".into(),
        "tlscacerts/tlsca-cert.pem".into(),
        "config.yaml".into(),
    ] {
        assert!(msp_dir.join(&f).is_file(), "{f}");
    }
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(msp_dir.join("keystore").join(&sk))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "private keys are owner-only");
    let pem = std::fs::read_to_string(msp_dir.join("keystore").join(&sk)).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");

    // fabric-common's reader loads it, and its MSP classifies the identity by NodeOU.
    let signer = fabric_common::msp::read_signing_identity(&msp_dir, "XMSP").unwrap();
    assert_eq!(signer.identity().public_key(), key.public_key());
    signer.check_key().unwrap();
    let msp = fabric_common::msp::Msp::from_dir(&msp_dir, "XMSP").unwrap();
    assert!(msp.node_ous_enabled());
    assert_eq!(msp.root_certs().len(), 1);
    assert_eq!(msp.tls_root_certs().len(), 1);
    msp.validate(signer.identity()).unwrap();
    assert_eq!(
        msp.role_of(signer.identity()).unwrap(),
        fabric_common::msp::NodeRole::Admin
    );
    let yaml = std::fs::read_to_string(msp_dir.join("config.yaml")).unwrap();
    assert!(
        yaml.contains("NodeOUs:") && yaml.contains("OrdererOUIdentifier:"),
        "{yaml}"
    );

    write_tls_dir(
        &dir.path().join("tls"),
        "server",
        &issued.pem,
        &key,
        tlsca.cert_pem(),
    )
    .unwrap();
    for f in ["ca.crt", "server.crt", "server.key"] {
        assert!(dir.path().join("tls").join(f).is_file(), "{f}");
    }
}

#[test]
fn network_crypto_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::default_topology();
    let first = NetworkCrypto::load_or_create(dir.path(), &topology).unwrap();
    assert_eq!(first.orgs.len(), topology.organizations.len() + 1);
    let police = first.org("PublicSecurity").unwrap();
    assert_eq!(police.ca_name(), "ca.police.elicense.gov");
    assert_eq!(police.node_hosts(), vec!["peer0.police.elicense.gov"]);
    let orderer = first.org("OrdererOrg").unwrap();
    assert_eq!(orderer.node_hosts(), vec!["orderer0.orderer.elicense.gov"]);
    let org_msp = fabric_common::msp::Msp::from_dir(
        &first.layout.org_msp("PublicSecurity"),
        "PublicSecurityMSP",
    )
    .unwrap();
    assert!(org_msp.node_ous_enabled());
    assert_eq!(org_msp.root_certs().len(), 1);
    assert!(!first
        .layout
        .org_msp("PublicSecurity")
        .join("signcerts")
        .exists());

    let again = NetworkCrypto::load_or_create(dir.path(), &topology).unwrap();
    let police2 = again.org("PublicSecurity").unwrap();
    assert_eq!(police.ca.cert_pem(), police2.ca.cert_pem());
    assert_eq!(police.tlsca.cert_pem(), police2.tlsca.cert_pem());
    assert!(matches!(
        first.org("Nowhere"),
        Err(MaterialError::UnknownOrg(_))
    ));
}

#[test]
fn org_identities_follow_the_topology() {
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::default_topology();
    let crypto = NetworkCrypto::load_or_create(dir.path(), &topology).unwrap();
    let ids = org_identities(&topology, crypto.org("ServiceCentre").unwrap());
    let names: Vec<_> = ids.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        names,
        vec!["peer0", "Admin", "clerk1", "clerk2", "holder1", "holder2", "holder3"]
    );
    assert_eq!(ids[0].kind, IdentityType::Peer);
    assert!(
        matches!(&ids[0].tls, Some(TlsRole::Server(h)) if h.contains(&"127.0.0.1".to_string()))
    );
    assert_eq!(ids[1].kind, IdentityType::Admin);
    assert_eq!(ids[1].role.as_deref(), Some("admin"));
    assert_eq!(ids[4].role.as_deref(), Some("holder"));
    let orderer = org_identities(&topology, crypto.org("OrdererOrg").unwrap());
    assert_eq!(orderer[0].kind, IdentityType::Orderer);
    assert_eq!(orderer[0].id, "orderer0");
}

#[test]
fn connection_profile_has_the_common_profile_shape() {
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::default_topology();
    let crypto = NetworkCrypto::load_or_create(dir.path(), &topology).unwrap();
    let mut endpoints = ProfileEndpoints::default();
    endpoints
        .peers
        .insert("peer0.police.elicense.gov".into(), 7051);
    endpoints
        .peers
        .insert("peer0.service.elicense.gov".into(), 8051);
    endpoints.cas.insert("PublicSecurity".into(), 7054);
    let paths = write_profiles(&topology, &crypto, &endpoints).unwrap();
    assert_eq!(paths.len(), topology.organizations.len());
    let p: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crypto.layout.profile("PublicSecurity")).unwrap(),
    )
    .unwrap();
    assert_eq!(p["version"], "1.0.0");
    assert_eq!(p["client"]["organization"], "PublicSecurity");
    let org = &p["organizations"]["PublicSecurity"];
    assert_eq!(org["mspid"], "PublicSecurityMSP");
    assert_eq!(org["peers"][0], "peer0.police.elicense.gov");
    assert_eq!(org["certificateAuthorities"][0], "ca.police.elicense.gov");
    // Channel partners are listed (police shares channels with the service centre and the
    // regulator and HR), others are not.
    assert!(p["organizations"]["ServiceCentre"].is_object());
    assert!(p["organizations"]["HumanResources"].is_object());
    assert!(p["organizations"]["Taxation"].is_null());
    let peer = &p["peers"]["peer0.police.elicense.gov"];
    assert_eq!(peer["url"], "grpcs://127.0.0.1:7051");
    assert_eq!(
        peer["grpcOptions"]["ssl-target-name-override"],
        "peer0.police.elicense.gov"
    );
    assert_eq!(
        peer["grpcOptions"]["hostnameOverride"],
        "peer0.police.elicense.gov"
    );
    let tls_pem = peer["tlsCACerts"]["pem"].as_str().unwrap();
    assert_eq!(
        tls_pem,
        crypto.org("PublicSecurity").unwrap().tlsca.cert_pem()
    );
    let ca = &p["certificateAuthorities"]["ca.police.elicense.gov"];
    assert_eq!(ca["url"], "https://127.0.0.1:7054");
    assert_eq!(ca["caName"], "ca.police.elicense.gov");
    assert!(ca["tlsCACerts"]["pem"][0]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    let ch = &p["channels"]["police-service"]["peers"]["peer0.service.elicense.gov"];
    for k in [
        "endorsingPeer",
        "chaincodeQuery",
        "ledgerQuery",
        "eventSource",
    ] {
        assert_eq!(ch[k], true, "{k}");
    }
    assert!(p["channels"]["market-tax"].is_null());
}

#[test]
fn pem_round_trip_and_garbage() {
    let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
    let pem = x509::to_pem("CERTIFICATE", &der);
    assert_eq!(x509::certs_from_pem(pem.as_bytes()).unwrap(), vec![der]);
    assert!(x509::from_pem(b"not pem").is_err());
    assert!(x509::parse_csr("garbage").is_err());
}
