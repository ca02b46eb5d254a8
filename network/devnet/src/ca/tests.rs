//! Tests of the CA service over HTTPS: Fabric CA's endpoints, envelopes, status and error codes,
//! token authentication, registrar rules, revocation, persistence and the start-up enrollment.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use fabric_common::crypto::{Signer, SigningKey};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::material::NetworkCrypto;
use fabric_common::msp::{read_signing_identity, Msp, NodeRole};

const ORG: &str = "PublicSecurity";

struct Fixture {
    _dir: tempfile::TempDir,
    crypto: NetworkCrypto,
    service: CaService,
    server: Option<CaServer>,
    tls_ca: String,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let topology = Topology::default_topology();
        let crypto = NetworkCrypto::load_or_create(dir.path(), &topology).unwrap();
        let options = CaOptions {
            affiliations: vec!["publicsecurity.users".into()],
            ..CaOptions::default()
        };
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (service, server) = start_org_ca(&crypto, ORG, options, addr).await.unwrap();
        let tls_ca = crypto.org(ORG).unwrap().tlsca.cert_pem().to_owned();
        Fixture {
            _dir: dir,
            crypto,
            service,
            server: Some(server),
            tls_ca,
        }
    }

    fn port(&self) -> u16 {
        self.server.as_ref().unwrap().port()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: &[u8],
    ) -> (u16, Value, String) {
        call(self.port(), &self.tls_ca, method, path, auth, body).await
    }

    /// Enrolls over HTTP with a fresh key; returns the certificate PEM and key.
    async fn enroll(&self, id: &str, secret: &str) -> (String, SigningKey) {
        let key = SigningKey::generate();
        let body = json!({ "certificate_request": csr_pem(&key, id, ORG, &[]).unwrap() });
        let (status, v, _) = self
            .call(
                "POST",
                "/enroll",
                Some(&basic(id, secret)),
                body.to_string().as_bytes(),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        (b64d(v["result"]["Cert"].as_str().unwrap()), key)
    }

    async fn with_token(
        &self,
        cert: &str,
        key: &SigningKey,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> (u16, Value, String) {
        let tok = token::create_token(cert, key, method, path, body).unwrap();
        self.call(method, path, Some(&tok), body).await
    }
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn b64d(s: &str) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

/// One HTTPS request; returns status, parsed JSON (Null if not JSON) and the raw body.
async fn call(
    port: u16,
    tls_ca: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> (u16, Value, String) {
    let mut roots = rustls::RootCertStore::empty();
    for der in x509::certs_from_pem(tls_ca.as_bytes()).unwrap() {
        roots.add(der.into()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS with the org's TLS CA as root");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", format!("127.0.0.1:{port}"));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&raw).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

fn assert_error(got: &(u16, Value, String), status: u16, code: u64, message: &str) {
    let (s, v, raw) = got;
    assert_eq!(*s, status, "{raw}");
    assert_eq!(v["success"], false, "{raw}");
    assert_eq!(v["result"], "", "{raw}");
    assert_eq!(v["messages"], json!([]), "{raw}");
    assert_eq!(v["errors"][0]["code"], code, "{raw}");
    let m = v["errors"][0]["message"].as_str().unwrap();
    assert!(
        m.starts_with(message),
        "{m:?} should start with {message:?}"
    );
}

#[tokio::test]
async fn cainfo_reports_name_chain_and_version() {
    let f = Fixture::new().await;
    for path in ["/cainfo", "/api/v1/cainfo"] {
        let (status, v, raw) = f.call("GET", path, None, b"").await;
        assert_eq!(status, 200, "{raw}");
        assert!(
            raw.starts_with("{\"result\":"),
            "Fabric CA's field order: {raw}"
        );
        assert_eq!(v["success"], true);
        assert_eq!(v["errors"], json!([]));
        assert_eq!(v["result"]["CAName"], "ca.police.elicense.gov");
        assert_eq!(v["result"]["Version"], FABRIC_CA_VERSION);
        assert_eq!(v["result"]["IssuerPublicKey"], "");
        let chain = b64d(v["result"]["CAChain"].as_str().unwrap());
        assert_eq!(chain, f.crypto.org(ORG).unwrap().ca.cert_pem());
    }
    let (status, v, _) = f
        .call(
            "POST",
            "/cainfo",
            None,
            br#"{"caname":"tlsca.police.elicense.gov"}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["CAName"], "tlsca.police.elicense.gov");
    let got = f.call("GET", "/cainfo?ca=nope", None, b"").await;
    assert_error(&got, 404, 19, "CA 'nope' does not exist");
    let (status, _, raw) = f.call("GET", "/api/v1/nothing", None, b"").await;
    assert_eq!((status, raw.as_str()), (404, "404 page not found\n"));
}

#[tokio::test]
async fn enroll_issues_a_certificate_and_rejects_bad_input() {
    let f = Fixture::new().await;
    let (cert, key) = f.enroll("admin", "adminpw").await;
    let info = x509::cert_info(&x509::certs_from_pem(cert.as_bytes()).unwrap()[0]).unwrap();
    assert_eq!(info.subject.common_name, "admin");
    assert_eq!(info.subject.organizational_unit, vec!["client"]);
    assert_eq!(info.public_key_spki, key.public_key().to_spki_der());

    let csr = csr_pem(&SigningKey::generate(), "admin", ORG, &[]).unwrap();
    let body = json!({ "certificate_request": csr }).to_string();
    let got = f.call("POST", "/enroll", None, body.as_bytes()).await;
    assert_error(&got, 401, 2, "No authorization header");
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("admin", "wrong")),
            body.as_bytes(),
        )
        .await;
    assert_error(&got, 401, 20, "Authentication failure");
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("nobody", "x")),
            body.as_bytes(),
        )
        .await;
    assert_error(&got, 401, 20, "Authentication failure");
    let got = f
        .call("POST", "/enroll", Some("Bearer abc"), body.as_bytes())
        .await;
    assert_error(&got, 401, 20, "Authentication failure");
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("admin", "adminpw")),
            br#"{"certificate_request":"x"}"#,
        )
        .await;
    assert_error(&got, 400, 31, "CSR Decode failed");
    let bad_der = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("admin", "adminpw")),
            json!({ "certificate_request": bad_der })
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_error(&got, 500, 0, "asn1");
    let got = f
        .call("POST", "/enroll", Some(&basic("admin", "adminpw")), b"{bad")
        .await;
    assert_error(&got, 400, 5, "Invalid request body:");
    let got = f
        .call("POST", "/enroll", Some(&basic("admin", "adminpw")), b"")
        .await;
    assert_error(&got, 400, 4, "Empty request body");
    let got = f.call("GET", "/enroll", None, b"").await;
    assert_error(&got, 405, 1, "Method GET is not allowed");
    let other = csr_pem(&SigningKey::generate(), "someoneelse", ORG, &[]).unwrap();
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("admin", "adminpw")),
            json!({ "certificate_request": other })
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_error(
        &got,
        403,
        77,
        "The CSR subject common name must equal the enrollment ID",
    );
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("admin", "adminpw")),
            json!({ "certificate_request": csr, "caname": "nope" })
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_error(&got, 404, 19, "CA 'nope' does not exist");
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("admin", "adminpw")),
            json!({ "certificate_request": csr, "attr_reqs": [{"name": "hf.Revoker"}, {"name": "x"}] })
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_error(
        &got,
        500,
        0,
        "Failed to find requested attributes: The following required attributes are missing: [x]",
    );
}

#[tokio::test]
async fn register_enroll_with_attributes_and_max_enrollments() {
    let f = Fixture::new().await;
    let (admin, admin_key) = f.enroll("admin", "adminpw").await;
    let body = json!({
        "id": "clerk7", "type": "client", "secret": "clerk7pw", "max_enrollments": 1,
        "affiliation": "publicsecurity.users",
        "attrs": [{"name": "elicense.role", "value": "clerk", "ecert": true}, {"name": "desk", "value": "3"}],
    })
    .to_string();
    let (status, v, raw) = f
        .with_token(&admin, &admin_key, "POST", "/register", body.as_bytes())
        .await;
    assert_eq!(status, 201, "{raw}");
    assert_eq!(v["result"]["secret"], "clerk7pw");
    let got = f
        .with_token(&admin, &admin_key, "POST", "/register", body.as_bytes())
        .await;
    assert_error(&got, 409, 74, "Identity 'clerk7' is already registered");

    let (cert, _) = f.enroll("clerk7", "clerk7pw").await;
    let info = x509::cert_info(&x509::certs_from_pem(cert.as_bytes()).unwrap()[0]).unwrap();
    let attrs = info.attributes.unwrap();
    assert_eq!(attrs["elicense.role"], "clerk");
    assert_eq!(attrs["hf.EnrollmentID"], "clerk7");
    assert_eq!(attrs["hf.Type"], "client");
    assert_eq!(attrs["hf.Affiliation"], "publicsecurity.users");
    assert!(!attrs.contains_key("desk"));
    // One multi-valued RDN, in DER SET order, as Fabric CA's certificates have them.
    assert_eq!(
        info.subject.organizational_unit,
        vec!["users", "client", "publicsecurity"]
    );

    // max_enrollments 1: the second enrollment is refused.
    let csr = csr_pem(&SigningKey::generate(), "clerk7", ORG, &[]).unwrap();
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("clerk7", "clerk7pw")),
            json!({ "certificate_request": csr }).to_string().as_bytes(),
        )
        .await;
    assert_error(&got, 401, 20, "Authentication failure");

    // Bad max_enrollments, unknown affiliation, reserved attributes.
    for (body, status, code, msg) in [
        (
            json!({"id": "u1", "max_enrollments": -5}),
            400,
            82,
            "Max enrollment in registration request may not be less than -1, but was -5",
        ),
        (
            json!({"id": "u2", "affiliation": "nosuch"}),
            403,
            71,
            "Authorization failure",
        ),
        (
            json!({"id": "u3", "attrs": [{"name": "hf.Type", "value": "x"}]}),
            403,
            71,
            "Authorization failure",
        ),
        (
            json!({"id": "u4", "attrs": [{"name": "hf.Foo", "value": "x"}]}),
            403,
            71,
            "Authorization failure",
        ),
    ] {
        let got = f
            .with_token(
                &admin,
                &admin_key,
                "POST",
                "/register",
                body.to_string().as_bytes(),
            )
            .await;
        assert_error(&got, status, code, msg);
    }
    let got = f
        .with_token(&admin, &admin_key, "POST", "/register", b"")
        .await;
    assert_error(&got, 400, 4, "Empty request body");
}

#[tokio::test]
async fn tokens_are_checked_like_fabric_ca() {
    let f = Fixture::new().await;
    let (admin, key) = f.enroll("admin", "adminpw").await;
    let body = br#"{"id":"t1","secret":"t1pw"}"#;

    // Signed over another body, path or method: refused.
    let tok = token::create_token(&admin, &key, "POST", "/register", b"{}").unwrap();
    let got = f.call("POST", "/register", Some(&tok), body).await;
    assert_error(&got, 401, 20, "Authentication failure");
    let tok = token::create_token(&admin, &key, "POST", "/api/v1/register", body).unwrap();
    let got = f.call("POST", "/register", Some(&tok), body).await;
    assert_error(&got, 401, 20, "Authentication failure");
    // Signed by another key.
    let tok =
        token::create_token(&admin, &SigningKey::generate(), "POST", "/register", body).unwrap();
    let got = f.call("POST", "/register", Some(&tok), body).await;
    assert_error(&got, 401, 20, "Authentication failure");
    // High-S signature: BCCSP rejects it, so do we.
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let payload = format!(
        "POST.{}.{}.{}",
        b64(b"/register"),
        b64(body),
        b64(admin.as_bytes())
    );
    let low = key.sign(payload.as_bytes()).unwrap();
    let high = fabric_common::crypto::to_high_s(&low).unwrap();
    let got = f
        .call(
            "POST",
            "/register",
            Some(&format!("{}.{}", b64(admin.as_bytes()), b64(&high))),
            body,
        )
        .await;
    assert_error(&got, 401, 20, "Authentication failure");
    let ok = f
        .call(
            "POST",
            "/register",
            Some(&format!("{}.{}", b64(admin.as_bytes()), b64(&low))),
            body,
        )
        .await;
    assert_eq!(ok.0, 201, "{}", ok.2);
    // Garbage token; a certificate this CA did not issue.
    let got = f.call("POST", "/register", Some("abc"), body).await;
    assert_error(&got, 401, 20, "Authentication failure");
    let other = crate::material::CertAuthority::generate("ca.other", "Other", "CA").unwrap();
    let got = f
        .with_token(other.cert_pem(), other.key(), "POST", "/register", body)
        .await;
    assert_error(&got, 401, 20, "Authentication failure");
    // The query string is part of what is signed.
    let (status, v, raw) = f
        .with_token(
            &admin,
            &key,
            "GET",
            "/identities?ca=ca.police.elicense.gov",
            b"",
        )
        .await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(v["result"]["caname"], "ca.police.elicense.gov");
}

#[tokio::test]
async fn only_registrars_register_and_list() {
    let f = Fixture::new().await;
    let (admin, admin_key) = f.enroll("admin", "adminpw").await;
    let body = json!({"id": "plain", "secret": "plainpw"}).to_string();
    let (status, _, _) = f
        .with_token(&admin, &admin_key, "POST", "/register", body.as_bytes())
        .await;
    assert_eq!(status, 201);
    let (plain, plain_key) = f.enroll("plain", "plainpw").await;
    let got = f
        .with_token(&plain, &plain_key, "POST", "/register", br#"{"id":"x"}"#)
        .await;
    assert_error(&got, 403, 71, "Authorization failure");
    let got = f
        .with_token(&plain, &plain_key, "GET", "/identities", b"")
        .await;
    assert_error(&got, 403, 71, "Authorization failure");
    let got = f
        .with_token(&plain, &plain_key, "POST", "/revoke", br#"{"id":"admin"}"#)
        .await;
    assert_error(&got, 403, 71, "Authorization failure");

    // A registrar limited to peers may not register clients.
    let body = json!({"id": "reg", "secret": "regpw", "attrs": [
        {"name": "hf.Registrar.Roles", "value": "peer"},
        {"name": "hf.Registrar.Attributes", "value": "elicense.*"}]})
    .to_string();
    let (status, _, raw) = f
        .with_token(&admin, &admin_key, "POST", "/register", body.as_bytes())
        .await;
    assert_eq!(status, 201, "{raw}");
    let (reg, reg_key) = f.enroll("reg", "regpw").await;
    let got = f
        .with_token(
            &reg,
            &reg_key,
            "POST",
            "/register",
            br#"{"id":"c1","type":"client"}"#,
        )
        .await;
    assert_error(&got, 403, 71, "Authorization failure");
    let ok = f
        .with_token(
            &reg,
            &reg_key,
            "POST",
            "/register",
            br#"{"id":"p1","type":"peer","attrs":[{"name":"elicense.role","value":"x"}]}"#,
        )
        .await;
    assert_eq!(ok.0, 201, "{}", ok.2);
    let got = f
        .with_token(
            &reg,
            &reg_key,
            "POST",
            "/register",
            br#"{"id":"p2","type":"peer","attrs":[{"name":"other","value":"x"}]}"#,
        )
        .await;
    assert_error(&got, 403, 71, "Authorization failure");

    // The admin sees everyone; the limited registrar only the peers.
    let (status, v, _) = f
        .with_token(&admin, &admin_key, "GET", "/identities", b"")
        .await;
    assert_eq!(status, 200);
    let ids: Vec<_> = v["result"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["admin", "plain", "reg", "p1"]);
    let (_, v, _) = f
        .with_token(&reg, &reg_key, "GET", "/api/v1/identities", b"")
        .await;
    assert_eq!(v["result"]["identities"].as_array().unwrap().len(), 1);
    let (status, v, _) = f
        .with_token(&admin, &admin_key, "GET", "/identities/plain", b"")
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["id"], "plain");
    assert_eq!(v["result"]["type"], "client");
    assert_eq!(v["result"]["max_enrollments"], -1);
    assert_eq!(v["result"]["caname"], "ca.police.elicense.gov");
    let got = f
        .with_token(&admin, &admin_key, "GET", "/identities/nobody", b"")
        .await;
    assert_error(&got, 404, 63, "Failed to get User");
}

#[tokio::test]
async fn revocation_blocks_reenroll_and_enroll_and_persists() {
    let mut f = Fixture::new().await;
    let (admin, admin_key) = f.enroll("admin", "adminpw").await;
    let body = json!({"id": "h1", "secret": "h1pw"}).to_string();
    f.with_token(&admin, &admin_key, "POST", "/register", body.as_bytes())
        .await;
    let (h1, h1_key) = f.enroll("h1", "h1pw").await;
    let info = x509::cert_info(&x509::certs_from_pem(h1.as_bytes()).unwrap()[0]).unwrap();

    // Reenroll works with a valid token.
    let csr = csr_pem(&SigningKey::generate(), "h1", ORG, &[]).unwrap();
    let req = json!({ "certificate_request": csr }).to_string();
    let (status, _, raw) = f
        .with_token(&h1, &h1_key, "POST", "/reenroll", req.as_bytes())
        .await;
    assert_eq!(status, 201, "{raw}");

    let got = f
        .with_token(&admin, &admin_key, "POST", "/revoke", b"{}")
        .await;
    assert_error(
        &got,
        400,
        15,
        "Either Name or Serial and AKI are required for a revoke request",
    );
    let got = f
        .with_token(&admin, &admin_key, "POST", "/revoke", br#"{"id":"nobody"}"#)
        .await;
    assert_error(&got, 404, 10, "Identity nobody was not found");
    let got = f
        .with_token(
            &admin,
            &admin_key,
            "POST",
            "/revoke",
            br#"{"serial":"1234","aki":"abcd"}"#,
        )
        .await;
    assert_error(
        &got,
        404,
        8,
        "Certificate with serial 1234 and AKI abcd was not found",
    );

    let (status, v, raw) = f
        .with_token(
            &admin,
            &admin_key,
            "POST",
            "/revoke",
            br#"{"id":"h1","reason":"keycompromise","gencrl":true}"#,
        )
        .await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(v["result"]["RevokedCerts"].as_array().unwrap().len(), 2);
    let crl = b64d(v["result"]["CRL"].as_str().unwrap());
    assert!(crl.starts_with("-----BEGIN X509 CRL-----"), "{crl}");
    assert!(f.service.is_revoked(&info.serial, &info.aki));
    assert!(f
        .service
        .revocations()
        .is_certificate_revoked(&x509::certs_from_pem(h1.as_bytes()).unwrap()[0]));

    let got = f
        .with_token(&h1, &h1_key, "POST", "/reenroll", req.as_bytes())
        .await;
    assert_error(&got, 401, 20, "Authentication failure");
    let got = f
        .call(
            "POST",
            "/enroll",
            Some(&basic("h1", "h1pw")),
            req.as_bytes(),
        )
        .await;
    assert_error(&got, 401, 20, "Authentication failure");
    // Revoking again revokes nothing more.
    let (status, v, _) = f
        .with_token(&admin, &admin_key, "POST", "/revoke", br#"{"id":"h1"}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["RevokedCerts"], Value::Null);
    let by_serial = json!({"serial": info.serial, "aki": info.aki}).to_string();
    let got = f
        .with_token(&admin, &admin_key, "POST", "/revoke", by_serial.as_bytes())
        .await;
    assert_error(&got, 404, 66, "Certificate with serial");

    // A restart on the same data dir keeps identities, counts and revocations.
    f.server.take().unwrap().stop().await;
    let home = f.crypto.layout.ca_home(ORG);
    let reopened =
        CaService::open(f.crypto.org(ORG).unwrap(), &home, CaOptions::default()).unwrap();
    assert!(reopened.is_registered("h1"));
    assert!(reopened.is_revoked(&info.serial, &info.aki));
    let e = reopened
        .enroll_new_key("h1", "h1pw", "", "", &[])
        .unwrap_err();
    assert_eq!(
        (e.status(), e.code(), e.local_code()),
        (401, 20, codes::INVALID_PASS)
    );
    let text = std::fs::read_to_string(registry_path(&home)).unwrap();
    assert!(
        !text.contains("h1pw") && !text.contains("adminpw"),
        "secrets are hashed"
    );
}

#[tokio::test]
async fn start_up_enrollment_writes_msp_dirs_with_node_ous_and_roles() {
    let f = Fixture::new().await;
    let topology = Topology::default_topology();
    let done = enroll_org_identities(&f.service, &topology, &f.crypto, ORG).unwrap();
    assert_eq!(done, vec!["peer0", "Admin", "clerk1", "issuer1"]);
    let layout = &f.crypto.layout;

    // fabric-common's MSP reads each directory, validates the identity against the org's roots
    // and classifies it by NodeOU.
    let check = |dir: &std::path::Path, role: NodeRole| -> x509::CertInfo {
        let signer = read_signing_identity(dir, "PublicSecurityMSP").unwrap();
        signer.check_key().unwrap();
        let msp = Msp::from_dir(dir, "PublicSecurityMSP").unwrap();
        msp.validate(signer.identity()).unwrap();
        assert_eq!(
            msp.role_of(signer.identity()).unwrap(),
            role,
            "{}",
            dir.display()
        );
        let pem = std::fs::read(dir.join("signcerts/cert.pem")).unwrap();
        x509::cert_info(&x509::certs_from_pem(&pem).unwrap()[0]).unwrap()
    };

    let peer_dir = layout.node_dir(ORG, NodeKind::Peer, "peer0.police.elicense.gov");
    let info = check(&peer_dir.join("msp"), NodeRole::Peer);
    assert_eq!(info.subject.organizational_unit, vec!["peer"]);
    assert_eq!(info.subject.common_name, "peer0");
    let tls = std::fs::read(peer_dir.join("tls/server.crt")).unwrap();
    let tls = x509::cert_info(&x509::certs_from_pem(&tls).unwrap()[0]).unwrap();
    assert!(tls.hosts.contains(&"127.0.0.1".into()));
    assert!(tls.hosts.contains(&"peer0.police.elicense.gov".into()));
    assert_eq!(tls.aki, f.crypto.org(ORG).unwrap().tlsca.aki_hex());
    assert!(peer_dir.join("tls/server.key").exists() && peer_dir.join("tls/ca.crt").exists());

    let info = check(&layout.user_msp(ORG, "Admin"), NodeRole::Admin);
    assert_eq!(info.subject.organizational_unit, vec!["admin"]);
    assert_eq!(info.attributes.unwrap()["elicense.role"], "admin");
    assert!(layout.user_tls(ORG, "Admin").join("client.crt").exists());

    let info = check(&layout.user_msp(ORG, "clerk1"), NodeRole::Client);
    assert_eq!(info.subject.organizational_unit, vec!["client"]);
    let attrs = info.attributes.unwrap();
    assert_eq!(attrs["elicense.role"], "clerk");
    assert_eq!(attrs["hf.EnrollmentID"], "clerk1");
    assert_eq!(attrs["hf.Type"], "client");
    assert_eq!(attrs["hf.Affiliation"], "");

    // Everything exists now: a second start enrolls nothing and keeps the certificates.
    let again = enroll_org_identities(&f.service, &topology, &f.crypto, ORG).unwrap();
    assert!(again.is_empty());
    let orderer_crypto = f.crypto.org("OrdererOrg").unwrap();
    let orderer_service = CaService::open(
        orderer_crypto,
        &layout.ca_home("OrdererOrg"),
        CaOptions::default(),
    )
    .unwrap();
    let done = enroll_org_identities(&orderer_service, &topology, &f.crypto, "OrdererOrg").unwrap();
    assert_eq!(done, vec!["orderer0", "Admin"]);
    let dir = layout.node_dir(
        "OrdererOrg",
        NodeKind::Orderer,
        "orderer0.orderer.elicense.gov",
    );
    let info = x509::cert_info(
        &x509::certs_from_pem(&std::fs::read(dir.join("msp/signcerts/cert.pem")).unwrap()).unwrap()
            [0],
    )
    .unwrap();
    assert_eq!(info.subject.organizational_unit, vec!["orderer"]);
}

#[tokio::test]
async fn wrong_passwords_lock_the_identity_like_fabric_ca() {
    let f = Fixture::new().await;
    let admin = f.service.bootstrap_id().to_owned();
    f.service
        .register(
            &admin,
            &RegistrationRequest {
                name: "locked".into(),
                secret: "right".into(),
                ..RegistrationRequest::default()
            },
        )
        .unwrap();
    for _ in 0..PASSWORD_ATTEMPTS {
        let e = f.service.login("locked", "wrong").unwrap_err();
        assert_eq!(e.local_code(), codes::INVALID_PASS);
    }
    let e = f.service.login("locked", "right").unwrap_err();
    assert_eq!((e.status(), e.code()), (401, codes::AUTHENTICATION_FAILURE));
    assert_eq!(e.local_code(), codes::PASSWORD_ATTEMPTS);
    // Fewer failures are forgotten after a successful login.
    for _ in 0..3 {
        assert!(f.service.login("admin", "nope").is_err());
    }
    f.service.login("admin", "adminpw").unwrap();
}
