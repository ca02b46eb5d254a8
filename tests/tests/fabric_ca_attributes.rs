//! The SDK's Fabric CA client against the real `fabric-ca-server` of a running real network, and
//! the attributes it registers honoured by our licence chaincode on the real peers.
//!
//! A reduced network from `network/fabric/network.sh` (PublicSecurity, ServiceCentre and the
//! Regulator on `police-service`, three Raft orderers, one Fabric CA server per organisation)
//! with `elicense-chaincode` deployed as CCaaS. Through `fabric_client::ca::CaClient`, configured
//! from the service centre's generated connection profile:
//!
//! cainfo → enroll the CA's registrar → register a new clerk with `elicense.role=clerk` (in the
//! enrollment certificate) and a user without the attribute → enroll both → reenroll the clerk
//! (new key and certificate, the attribute kept) → write its MSP directory where the CLI looks →
//! revoke the clerk's superseded certificate and the unroled user.
//!
//! Then the chaincode sees the attributes: with a licence issued and a grant authorised by the
//! holder, the unroled user's `Verify` is refused (`NOT_ALLOWED`, the role is missing) and the new
//! clerk's `Verify` succeeds.
//!
//! Needs Fabric's binaries (`FABRIC_BIN` or `../shared/fabric`); skips without them, fails in CI.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use elicense_model::{
    Code, ContractError, ErrorCode, FieldOpening, GrantDraft, HolderKey, HolderSecret,
    IssueRequest, LicenceId, LicencePrivate, Nonce, Presentation, Salt, SealedGrant, SignedGrant,
    VerifyOutcome, VerifyRequest, VerifyResult, TRANSIENT_CODE_SALT, TRANSIENT_LICENCE,
    TRANSIENT_PRESENTATION,
};
use elicense_tests::fabric_net::FabricNetwork;
use fabric_client::ca::{
    CaClient, CaError, EnrollmentRequest, MspWriteOptions, ReenrollmentRequest,
    RegistrationRequest, RevocationRequest,
};
use fabric_client::{Gateway, GatewayError};
use fabric_common::crypto::SigningKey;
use sha2::{Digest, Sha256};

const CHANNEL: &str = "police-service";
const CHAINCODE: &str = "elicense";
const ORG: &str = "ServiceCentre";
const MSP: &str = "ServiceCentreMSP";
const ROLE: &str = "elicense.role";
const MATTER: &str = "SC-CA-0001";
const DAY: i64 = 86_400;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

/// The contract error carried by a failed endorsement or evaluation.
fn contract_error(e: &GatewayError) -> ContractError {
    let texts = std::iter::once(e.to_string()).chain(e.details().iter().map(|d| d.message.clone()));
    texts
        .filter_map(|t| ContractError::decode(&t))
        .next()
        .unwrap_or_else(|| panic!("no contract error in: {e} {:?}", e.details()))
}

/// The `elicense.role` attribute in an enrollment certificate, read as the chaincode reads it.
fn role_in(cert_pem: &[u8]) -> Option<String> {
    fabric_common::identity::Certificate::from_pem(cert_pem)
        .expect("certificate parses")
        .attributes()
        .get(ROLE)
        .map(str::to_owned)
}

#[test]
fn ca_client_on_the_real_network_registers_a_clerk_the_chaincode_honours() {
    let started = Instant::now();
    let Some(net) = FabricNetwork::up_with_elicense(CHANNEL, "ca-attributes") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(story(&net));
    drop(net);
    eprintln!("whole test {:.1?}", started.elapsed());
}

async fn story(net: &FabricNetwork) {
    let t0 = Instant::now();
    let tag = format!("{:x}", now());
    let clerk_id = format!("clerk-{tag}");
    let plain_id = format!("plain-{tag}");

    // ---- the service centre's CA, as its connection profile describes it
    let profile = fabric_client::profile::ConnectionProfile::from_file(
        net.data_dir().join(format!("profiles/{ORG}.json")),
    )
    .expect("connection profile");
    let endpoint = profile.organization_ca(ORG).expect("the org's CA");
    let ca = CaClient::from_profile(&endpoint).expect("CA client");
    let info = ca.cainfo().await.expect("cainfo");
    assert_eq!(info.ca_name, "ca.service.elicense.gov");
    assert!(
        info.version.trim_start_matches('v').starts_with("1.5"),
        "{info:?}"
    );
    // The CA's root is the one the channel's MSP trusts for the organisation.
    let org_root = std::fs::read(
        net.data_dir()
            .join(format!("crypto/{ORG}/msp/cacerts/ca-cert.pem")),
    )
    .expect("org MSP root");
    assert_eq!(
        info.root_certs(),
        vec![org_root.clone()],
        "cainfo's root is the org MSP's"
    );

    // ---- enroll the registrar (the CA's bootstrap identity) with its generated secret
    let secrets: serde_json::Value = serde_json::from_slice(
        &std::fs::read(net.data_dir().join(format!("crypto/{ORG}/secrets.json")))
            .expect("registrar secret"),
    )
    .expect("secrets JSON");
    let registrar = ca
        .enroll(&EnrollmentRequest::new(
            "registrar",
            secrets["registrar"].as_str().expect("registrar secret"),
        ))
        .await
        .expect("enroll the registrar")
        .signing_identity(MSP)
        .expect("registrar identity");

    // ---- register a clerk with the role in its enrollment certificates, and a user without
    let affiliation = ORG.to_lowercase();
    let clerk_secret = ca
        .register(
            &registrar,
            &RegistrationRequest::new(&clerk_id)
                .kind("client")
                .affiliation(&affiliation)
                .attribute(ROLE, "clerk", true),
        )
        .await
        .expect("register the clerk");
    let plain_secret = ca
        .register(
            &registrar,
            &RegistrationRequest::new(&plain_id)
                .kind("client")
                .affiliation(&affiliation),
        )
        .await
        .expect("register the user without a role");
    let registered = ca
        .identity(&registrar, &clerk_id)
        .await
        .expect("the clerk as registered");
    assert!(
        registered
            .attributes
            .iter()
            .any(|a| a.name == ROLE && a.value == "clerk" && a.ecert),
        "{registered:?}"
    );
    // Registering the same name twice is refused by the CA.
    let again = ca
        .register(
            &registrar,
            &RegistrationRequest::new(&clerk_id)
                .kind("client")
                .affiliation(&affiliation),
        )
        .await
        .expect_err("a second registration of the same name");
    assert!(again.code().is_some(), "{again:?}");

    // ---- enroll both; the role is in the clerk's certificate only
    let clerk_first = ca
        .enroll(&EnrollmentRequest::new(&clerk_id, &clerk_secret))
        .await
        .expect("enroll the clerk");
    assert_eq!(
        role_in(&clerk_first.certificate_pem).as_deref(),
        Some("clerk")
    );
    let plain = ca
        .enroll(&EnrollmentRequest::new(&plain_id, &plain_secret))
        .await
        .expect("enroll the user without a role");
    assert_eq!(role_in(&plain.certificate_pem), None);

    // ---- reenroll the clerk: a new key and certificate, the attribute kept
    let clerk_now = ca
        .reenroll(
            &clerk_first.signing_identity(MSP).expect("clerk identity"),
            &ReenrollmentRequest::default(),
        )
        .await
        .expect("reenroll the clerk");
    assert_ne!(clerk_now.certificate_pem, clerk_first.certificate_pem);
    assert_ne!(clerk_now.key.public_key(), clerk_first.key.public_key());
    assert_eq!(
        role_in(&clerk_now.certificate_pem).as_deref(),
        Some("clerk")
    );
    // Its MSP directory goes where the CLI and the SDK look for the org's users.
    let clerk_msp = net.data_dir().join(format!("msp/{ORG}/{clerk_id}"));
    clerk_now
        .write_msp_dir(
            &clerk_msp,
            &MspWriteOptions {
                node_ous: true,
                ..Default::default()
            },
        )
        .expect("write the clerk's MSP directory");
    assert_eq!(
        std::fs::read(clerk_msp.join("cacerts/ca-cert.pem")).expect("cacerts"),
        org_root
    );

    // ---- revoke the clerk's superseded certificate, and the unroled user altogether
    let superseded = RevocationRequest::certificate_pem(&clerk_first.certificate_pem)
        .expect("serial and AKI")
        .reason("superseded");
    let revoked = ca
        .revoke(&registrar, &superseded)
        .await
        .expect("revoke the superseded certificate");
    assert_eq!(revoked.revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked.revoked[0].serial, superseded.serial);
    // The superseded certificate no longer authenticates at the CA; the current one does.
    let err = ca
        .reenroll(
            &clerk_first.signing_identity(MSP).expect("clerk identity"),
            &ReenrollmentRequest::default(),
        )
        .await
        .expect_err("a revoked certificate cannot reenroll");
    assert!(matches!(err, CaError::Authentication { .. }), "{err:?}");
    ca.identity(
        &clerk_now.signing_identity(MSP).expect("clerk identity"),
        &clerk_id,
    )
    .await
    .map(|_| ())
    .or_else(|e| match e {
        // A clerk may not read identities; what matters is that the CA authenticated it.
        CaError::Authorization { .. } => Ok(()),
        other => Err(other),
    })
    .expect("the current certificate authenticates");

    // ---- the licence chaincode sees the attributes
    let regulator = net.gateway("Regulator", "Admin");
    let issuer = net.gateway("PublicSecurity", "issuer1");
    let holder_app = net.gateway(ORG, "holder1");
    let clerk = net.gateway(ORG, &clerk_id);
    let unroled = net.gateway_for(ORG, &plain.signing_identity(MSP).expect("identity"));
    let contract = |g: &Gateway| g.network(CHANNEL).contract(CHAINCODE);

    let catalogue = std::fs::read(elicense_tests::repo_root().join("fixtures/catalogue.json"))
        .expect("catalogue");
    contract(&regulator)
        .new_proposal("InitCatalogue")
        .arg(catalogue)
        .submit()
        .await
        .expect("InitCatalogue by the regulator's admin");

    let serial = format!("{:06}", now() % 1_000_000);
    let licence_id = LicenceId::build("IDC", "PSB", &serial).expect("licence id");
    let holder_key = SigningKey::generate();
    let holder_secret =
        HolderSecret::new(Sha256::digest(format!("secret/{tag}")).to_vec()).expect("secret");
    let private = id_card(&tag, &serial);
    let t = now();
    contract(&issuer)
        .new_proposal("Issue")
        .arg(json(&IssueRequest {
            licence_id: licence_id.clone(),
            licence_type: "ID_CARD".into(),
            holder_key: HolderKey::from_public_key(holder_key.public_key().clone()).to_pem(),
            not_before: t - DAY,
            not_after: t + 365 * DAY,
        }))
        .transient(TRANSIENT_LICENCE, json(&private))
        .submit()
        .await
        .expect("Issue by the police issuer");

    let draft = GrantDraft {
        channel: CHANNEL.into(),
        licence_id: licence_id.clone(),
        grantee_msp: MSP.into(),
        matter: MATTER.into(),
        fields: vec!["name".to_owned()],
        not_before: now() - 60,
        not_after: now() + DAY,
        uses: 1,
        nonce: Nonce::new(Sha256::digest(format!("nonce/{tag}"))[..16].to_vec()).expect("nonce"),
    };
    let sealed: SealedGrant = draft.seal(&holder_secret).expect("seal");
    let signed = SignedGrant::sign(sealed.grant.clone(), &holder_key).expect("sign");
    contract(&holder_app)
        .new_proposal("Authorize")
        .arg(json(&signed))
        .transient(TRANSIENT_CODE_SALT, sealed.code_salt.as_bytes().to_vec())
        .submit()
        .await
        .expect("Authorize by the holder");

    let verify = |g: &Gateway, code: &Code| {
        let presentation = Presentation {
            code: code.clone(),
            fields: BTreeMap::from([("name".to_owned(), private.fields["name"].clone())]),
        };
        contract(g)
            .new_proposal("Verify")
            .arg(json(&VerifyRequest {
                grant_id: sealed.grant.id(),
                matter: MATTER.into(),
            }))
            .transient(TRANSIENT_PRESENTATION, json(&presentation))
            .endorsing_organizations(["PublicSecurityMSP"])
            .submit()
    };
    // Without the attribute: refused before anything else, the grant untouched.
    let refused = verify(&unroled, &sealed.code)
        .await
        .expect_err("a user without elicense.role=clerk cannot verify");
    let refusal = contract_error(&refused);
    assert_eq!(refusal.code, ErrorCode::NotAllowed, "{refusal:?}");
    assert!(
        refusal.message.contains("elicense.role=clerk"),
        "{refusal:?}"
    );
    // The newly registered clerk, with its reenrolled certificate: verified.
    let result: VerifyResult = serde_json::from_slice(
        &verify(&clerk, &sealed.code)
            .await
            .expect("Verify by the newly registered clerk"),
    )
    .expect("VerifyResult");
    let VerifyOutcome::Verified { matched, .. } = result.outcome else {
        panic!("expected Verified, got {:?}", result.outcome);
    };
    assert_eq!(matched, ["name"]);
    eprintln!(
        "CA enroll/register/reenroll/revoke and the chaincode's role checks: {:.1?}",
        t0.elapsed()
    );

    // ---- revoking an identity: none of its certificates authenticates, it cannot enroll again
    let revoked = ca
        .revoke(
            &registrar,
            &RevocationRequest::identity(&plain_id).reason("keycompromise"),
        )
        .await
        .expect("revoke the unroled user");
    let (plain_serial, _) =
        fabric_client::ca::certificate_serial_and_aki(&plain.certificate_pem).expect("serial");
    assert!(
        revoked.revoked.iter().any(|r| r.serial == plain_serial),
        "{revoked:?}"
    );
    let err = ca
        .enroll(&EnrollmentRequest::new(&plain_id, &plain_secret))
        .await
        .expect_err("a revoked identity cannot enroll");
    assert!(matches!(err, CaError::Authentication { .. }), "{err:?}");
}

/// The holder's ID card: every field the catalogue's ID_CARD needs, one fresh salt per field.
fn id_card(tag: &str, serial: &str) -> LicencePrivate {
    let values = [
        ("name", format!("李四-{tag}")),
        ("sex", format!("女性-{tag}")),
        ("ethnicity", format!("汉族-{tag}")),
        ("birth_date", format!("1991-04-08/{tag}")),
        ("address", format!("北京市西城区{serial}号-{tag}")),
        ("id_number", format!("110102199104{serial}")),
        ("issuing_authority", format!("北京市公安局西城分局-{tag}")),
        ("valid_from", format!("2021-01-01/{tag}")),
        ("valid_until", format!("2041-01-01/{tag}")),
    ];
    let fields = values
        .into_iter()
        .map(|(name, value)| {
            let salt = Salt::new(Sha256::digest(format!("salt/{tag}/{name}")).into());
            (name.to_owned(), FieldOpening { salt, value })
        })
        .collect();
    LicencePrivate { fields }
}
