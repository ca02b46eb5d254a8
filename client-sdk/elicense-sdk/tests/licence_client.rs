//! `LicenceClient` over real gRPC against a Gateway whose peer runs the licence contract on the
//! shim's mock ledger: every call, its typed result, and each failure a window system acts on.

mod support;

use std::collections::BTreeMap;

use elicense_model::{AuditUsageRequest, Code, GrantId, LicenceStatus, Presentation, UsageResult};
use elicense_sdk::holder::{self, HolderGrant};
use elicense_sdk::{BulkOptions, Credential, Failure, HolderKeyPair, LicenceClient};
use support::ledger_gateway::Running;
use support::*;

const ISSUER: &str = "police-issuer";
const CLERK: &str = "service-clerk";
const RELAY: &str = "service-holder";

struct Holder {
    key: HolderKeyPair,
    secret: elicense_model::HolderSecret,
}

impl Holder {
    fn new() -> Self {
        Holder {
            key: HolderKeyPair::generate(),
            secret: holder::secret(&holder::new_secret()).unwrap(),
        }
    }
}

async fn network() -> Running {
    let net = Running::start().await;
    let catalogue = elicense_model::Catalogue::from_json(CATALOGUE).unwrap();
    let seeded = net
        .client("regulator-admin")
        .init_catalogue(&catalogue)
        .await
        .unwrap();
    assert_eq!(seeded.value.len(), catalogue.types.len());
    net
}

async fn issue(net: &Running, h: &Holder, serial: &str) -> Credential {
    net.client(ISSUER)
        .issue(id_card(serial, h.key.public_pem()))
        .await
        .unwrap()
        .credential
}

async fn authorized(
    net: &Running,
    h: &Holder,
    c: &Credential,
    fields: &[&str],
    uses: u32,
) -> HolderGrant {
    let g = c
        .grant("ServiceCentreMSP", "SC-0001")
        .fields(fields.iter().copied())
        .uses(uses)
        .sign(&h.secret, &h.key)
        .unwrap();
    net.client(RELAY).authorize(&g).await.unwrap();
    g
}

fn wrong(code: &Code) -> Code {
    let n: u32 = code.as_str().parse().unwrap();
    Code::parse(&format!("{:08}", (n + 1) % 100_000_000)).unwrap()
}

fn routed_to(net: &Running, function: &str) -> Vec<Vec<String>> {
    net.state
        .routed
        .lock()
        .unwrap()
        .iter()
        .filter(|(f, _)| f == function)
        .map(|(_, orgs)| orgs.clone())
        .collect()
}

#[tokio::test]
async fn the_whole_licence_flow_with_typed_results() {
    let net = network().await;
    let clerk = net.client(CLERK);
    let types = clerk.catalogue().await.unwrap();
    assert!(types.iter().any(|t| t.code == "MARRIAGE_CERT"));
    let id_card_type = clerk.licence_type("ID_CARD").await.unwrap();
    assert_eq!(id_card_type.issuers[0].msp_id, "PublicSecurityMSP");

    // Issue: values and salts go as transient data; the credential opens the record.
    let h = Holder::new();
    let issued = net
        .client(ISSUER)
        .issue(id_card("100000001", h.key.public_pem()))
        .await
        .unwrap();
    assert!(issued.block_number > 0);
    assert_eq!(issued.record.status, LicenceStatus::Active);
    assert_eq!(issued.record.holder_key, h.key.public_pem());
    issued.credential.check(&issued.record).unwrap();
    let read = clerk.licence(&issued.record.id).await.unwrap();
    assert_eq!(read, issued.record);
    // The public record carries commitments, never the values.
    let public = serde_json::to_string(&read).unwrap();
    assert!(!public.contains(issued.credential.value("name").unwrap()));

    // Grant, authorise, verify with two presented fields, retrieve the third.
    let g = authorized(
        &net,
        &h,
        &issued.credential,
        &["name", "id_number", "address"],
        1,
    )
    .await;
    let p = issued
        .credential
        .present(g.grant(), &g.code, &["name", "id_number"])
        .unwrap();
    let v = clerk.verify(&g.id(), "SC-0001", &p).await.unwrap();
    assert_eq!(v.matched, ["id_number", "name"]);
    assert_eq!(v.not_presented, ["address"]);
    assert_eq!(v.uses_left, 0);
    assert_eq!(v.licence_id, issued.record.id);
    // The verify went to the issuer's peers, which hold the code salt.
    assert_eq!(
        routed_to(&net, "Verify"),
        [vec!["PublicSecurityMSP".to_owned()]]
    );

    let r = clerk.retrieve(&g.id()).await.unwrap();
    assert_eq!(r, clerk.retrieve_verified(&v).await.unwrap());
    assert_eq!(r.fields.len(), 3);
    assert_eq!(
        r.fields["address"],
        issued.credential.value("address").unwrap()
    );
    assert_eq!(
        routed_to(&net, "Retrieve"),
        [
            vec!["PublicSecurityMSP".to_owned()],
            vec!["PublicSecurityMSP".to_owned()]
        ]
    );

    // Spent: the same grant is refused with a typed failure.
    let again = clerk.verify(&g.id(), "SC-0001", &p).await.unwrap_err();
    assert_eq!(again.failure(), Failure::GrantSpent);
    assert!(again.transaction_id().is_some());

    // History, the holder's own trail, the regulator's audit.
    let history = clerk.history(&issued.record.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].tx_id, issued.transaction_id);
    let trail = holder::trail_request(CHANNEL, issued.record.id.clone(), &h.key).unwrap();
    let page = net
        .client(RELAY)
        .holder_usage(&trail, None, "")
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].result, UsageResult::Verified);
    assert_eq!(page.records[0].fields, ["id_number", "name"]);
    let audit = net
        .client("auditor")
        .audit_usage(&AuditUsageRequest::default())
        .await
        .unwrap();
    assert_eq!(audit.records.len(), 1);
    let refused = clerk
        .audit_usage(&AuditUsageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.failure(), Failure::NotAllowed);
}

#[tokio::test]
async fn wrong_codes_are_counted_then_lock_the_grant() {
    let net = network().await;
    let h = Holder::new();
    let c = issue(&net, &h, "100000002").await;
    let g = authorized(&net, &h, &c, &["name"], 1).await;
    let clerk = net.client(CLERK);
    let bad = c.present(g.grant(), &wrong(&g.code), &["name"]).unwrap();
    for left in (1..=4).rev() {
        let e = clerk.verify(&g.id(), "SC-0001", &bad).await.unwrap_err();
        assert_eq!(e.failure(), Failure::WrongCode);
        assert!(
            matches!(e, elicense_sdk::LicenceError::WrongCode { attempts_left, .. } if attempts_left == left)
        );
    }
    let e = clerk.verify(&g.id(), "SC-0001", &bad).await.unwrap_err();
    assert_eq!(e.failure(), Failure::GrantLocked);
    // Even the right code is refused now.
    let good = c.present(g.grant(), &g.code, &["name"]).unwrap();
    let e = clerk.verify(&g.id(), "SC-0001", &good).await.unwrap_err();
    assert_eq!(e.failure(), Failure::GrantLocked);
}

#[tokio::test]
async fn refusals_a_window_system_acts_on() {
    let net = network().await;
    let h = Holder::new();
    let c = issue(&net, &h, "100000003").await;
    let clerk = net.client(CLERK);
    let issuer = net.client(ISSUER);

    // Field mismatch names the field, never the value.
    let g = authorized(&net, &h, &c, &["name", "sex"], 3).await;
    let mut p = c.present(g.grant(), &g.code, &["sex"]).unwrap();
    p.fields.get_mut("sex").unwrap().value = "女".into();
    let e = clerk.verify(&g.id(), "SC-0001", &p).await.unwrap_err();
    assert_eq!(e.failure(), Failure::FieldMismatch);
    assert_eq!(e.fields(), ["sex"]);
    assert!(!e.to_string().contains('女'));

    let code_only = Presentation {
        code: g.code.clone(),
        fields: BTreeMap::new(),
    };
    let e = clerk
        .verify(&g.id(), "SC-9999", &code_only)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::WrongMatter);
    let e = net
        .client("tax-clerk")
        .verify(&g.id(), "SC-0001", &code_only)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::NotAllowed);
    let unknown = GrantId::parse(&"ab".repeat(32)).unwrap();
    let e = clerk
        .verify(&unknown, "SC-0001", &code_only)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::NotFound);
    let e = clerk.retrieve(&g.id()).await.unwrap_err();
    assert_eq!(e.failure(), Failure::RetrieveWindowClosed);

    // Status changes by the issuer only; suspended and revoked licences cannot be used.
    let e = net
        .client("civil-issuer")
        .suspend(&c.licence_id, "lost")
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::NotAllowed);
    let s = issuer
        .suspend(&c.licence_id, "reported lost")
        .await
        .unwrap();
    assert_eq!(s.value.status, LicenceStatus::Suspended);
    let e = clerk
        .verify(&g.id(), "SC-0001", &code_only)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::LicenceSuspended);
    let r = issuer.reinstate(&c.licence_id, "found").await.unwrap();
    assert_eq!(r.value.status, LicenceStatus::Active);
    assert!(r.block_number > s.block_number);
    clerk.verify(&g.id(), "SC-0001", &code_only).await.unwrap();
    issuer.revoke(&c.licence_id, "superseded").await.unwrap();
    let e = clerk
        .verify(&g.id(), "SC-0001", &code_only)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::LicenceRevoked);
    let e = issuer.reinstate(&c.licence_id, "oops").await.unwrap_err();
    assert_eq!(e.failure(), Failure::InvalidTransition);
    assert_eq!(clerk.history(&c.licence_id).await.unwrap().len(), 4);

    // Re-issuing an existing identifier.
    let e = issuer
        .issue(id_card("100000003", h.key.public_pem()))
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::AlreadyExists);
    // Clerks cannot issue.
    let e = clerk
        .issue(id_card("100000004", h.key.public_pem()))
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::NotAllowed);
}

#[tokio::test]
async fn withdrawn_and_forged_grants() {
    let net = network().await;
    let h = Holder::new();
    let c = issue(&net, &h, "100000005").await;
    let relay = net.client(RELAY);

    let forged = c
        .grant("ServiceCentreMSP", "SC-0001")
        .field("name")
        .sign(&h.secret, &HolderKeyPair::generate())
        .unwrap();
    let e = relay.authorize(&forged).await.unwrap_err();
    assert_eq!(e.failure(), Failure::BadSignature);

    let g = authorized(&net, &h, &c, &["name"], 1).await;
    let w = holder::withdrawal(CHANNEL, g.id(), &h.key).unwrap();
    let rec = relay.withdraw(&w).await.unwrap();
    assert_eq!(rec.value.status, elicense_model::GrantStatus::Withdrawn);
    let p = c.present(g.grant(), &g.code, &["name"]).unwrap();
    let e = net
        .client(CLERK)
        .verify(&g.id(), "SC-0001", &p)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::GrantWithdrawn);
    assert_eq!(
        net.client(CLERK).grant(&g.id()).await.unwrap().status,
        elicense_model::GrantStatus::Withdrawn
    );
}

#[tokio::test]
async fn bulk_issuance_retries_conflicts_and_reports_each_item() {
    let net = network().await;
    let holders: Vec<Holder> = (0..20).map(|_| Holder::new()).collect();
    let mut batch: Vec<_> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| id_card(&format!("2000{i:05}"), h.key.public_pem()))
        .collect();
    // One duplicate identifier: that item alone fails.
    batch.push(id_card("200000003", holders[0].key.public_pem()));
    net.state
        .conflicts_to_inject
        .store(3, std::sync::atomic::Ordering::SeqCst);
    let options = BulkOptions {
        concurrency: 4,
        initial_backoff: std::time::Duration::from_millis(5),
        ..BulkOptions::default()
    };
    let items = net.client(ISSUER).issue_bulk(batch, &options).await;
    assert_eq!(items.len(), 21);
    assert!(items.iter().enumerate().all(|(i, item)| item.index == i));
    let failed: Vec<_> = items.iter().filter(|i| i.outcome.is_err()).collect();
    assert_eq!(failed.len(), 1);
    let dup = failed[0];
    assert_eq!(dup.licence_id.serial(), "200000003");
    assert_eq!(
        dup.outcome.as_ref().unwrap_err().failure(),
        Failure::AlreadyExists
    );
    let attempts: u32 = items.iter().map(|i| i.attempts).sum();
    assert_eq!(attempts, 21 + 3, "each injected conflict costs one retry");
    for item in items.iter().filter(|i| i.outcome.is_ok()) {
        let issued = item.outcome.as_ref().unwrap();
        assert_eq!(issued.record.id, item.licence_id);
        // The retried licence's credential still opens the committed record.
        let record = net.client(CLERK).licence(&item.licence_id).await.unwrap();
        issued.credential.check(&record).unwrap();
    }

    // Without retries, a conflict is reported as such.
    net.state
        .conflicts_to_inject
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let once = BulkOptions {
        max_attempts: 1,
        ..options
    };
    let items = net
        .client(ISSUER)
        .issue_bulk(
            vec![id_card("300000001", holders[1].key.public_pem())],
            &once,
        )
        .await;
    let e = items[0].outcome.as_ref().unwrap_err();
    assert_eq!(e.failure(), Failure::Conflict);
    assert!(e.failure().is_retryable());
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_network_failure() {
    let net = Running::start().await;
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let user = net.users.get(CLERK);
    let connection = fabric_client::gateway::Connection::new(
        vec![fabric_client::gateway::Endpoint::new(format!(
            "http://{addr}"
        ))],
        &fabric_client::gateway::ConnectionOptions::default(),
    )
    .unwrap();
    let gateway = fabric_client::Gateway::new(
        connection,
        user.identity.clone(),
        Some(net.users.signer(CLERK)),
        fabric_client::gateway::GatewayOptions::default(),
    );
    let client = LicenceClient::new(gateway.network(CHANNEL).contract("elicense"));
    let e = client.catalogue().await.unwrap_err();
    assert_eq!(e.failure(), Failure::Network);
    assert!(e.failure().is_retryable());
}

#[tokio::test]
async fn connects_from_a_connection_profile_as_the_signing_identity() {
    let net = network().await;
    let profile = format!(
        r#"{{"name":"devnet","version":"1.0.0",
            "organizations":{{"ServiceCentre":{{"mspid":"ServiceCentreMSP","peers":["peer0.service.elicense.gov"]}}}},
            "peers":{{"peer0.service.elicense.gov":{{"url":"grpc://{}"}}}}}}"#,
        net.addr
    );
    let tmp = tempfile::tempdir().unwrap();
    let profile = fabric_client::profile::ConnectionProfile::parse(&profile, tmp.path()).unwrap();
    let user = net.users.get(CLERK);
    let signing =
        fabric_client::SigningIdentity::from_private_key(user.identity.clone(), user.key.clone())
            .unwrap();
    let client = LicenceClient::connect(&profile, &signing, CHANNEL).unwrap();
    assert_eq!(client.channel(), CHANNEL);
    assert!(!client.catalogue().await.unwrap().is_empty());

    let regulator = net.users.get("auditor");
    let other = fabric_client::SigningIdentity::from_private_key(
        regulator.identity.clone(),
        regulator.key.clone(),
    )
    .unwrap();
    let e = LicenceClient::connect(&profile, &other, CHANNEL).unwrap_err();
    assert_eq!(e.failure(), Failure::InvalidInput);
}

#[tokio::test]
async fn contract_events_arrive_typed_and_carry_no_personal_data() {
    let net = network().await;
    let h = Holder::new();
    let c = issue(&net, &h, "100000007").await;
    let g = authorized(&net, &h, &c, &["name"], 1).await;
    let p = c.present(g.grant(), &g.code, &["name"]).unwrap();
    let v = net
        .client(CLERK)
        .verify(&g.id(), "SC-0001", &p)
        .await
        .unwrap();

    let clerk = net.client(CLERK);
    let mut stream = clerk
        .events(&fabric_client::gateway::EventsOptions::start_block(0))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(e) = stream.next().await {
        seen.push(e.unwrap());
    }
    let names: Vec<&str> = seen.iter().map(|e| e.name.as_str()).collect();
    // Catalogue seeding, issuance, authorisation, verify: one event each, in commit order.
    assert_eq!(
        names,
        [
            "LicenceTypePut",
            "LicenceIssued",
            "GrantAuthorized",
            "GrantVerified"
        ]
    );
    let public = format!("{seen:?}");
    assert!(!public.contains(c.value("name").unwrap()));
    let verified = seen.iter().find(|e| e.name == "GrantVerified").unwrap();
    assert_eq!(verified.event.grant_id.as_ref(), Some(&g.id()));
    assert_eq!(verified.transaction_id, v.transaction_id);
    assert_eq!(verified.block_number, v.block_number);
    let issued = seen.iter().find(|e| e.name == "LicenceIssued").unwrap();
    assert_eq!(issued.event.licence_id.as_ref(), Some(&c.licence_id));
    // From a later block on, earlier events are not repeated.
    let mut later = clerk
        .events(&fabric_client::gateway::EventsOptions::start_block(
            v.block_number,
        ))
        .await
        .unwrap();
    let first = later.next().await.unwrap().unwrap();
    assert_eq!(first.name, "GrantVerified");
    assert!(later.next().await.is_none());
}

#[tokio::test]
async fn usage_trails_are_read_page_by_page() {
    let net = network().await;
    let h = Holder::new();
    let c = issue(&net, &h, "100000008").await;
    let g = authorized(&net, &h, &c, &["name"], 3).await;
    let clerk = net.client(CLERK);
    let good = c.present(g.grant(), &g.code, &["name"]).unwrap();
    let bad = c.present(g.grant(), &wrong(&g.code), &["name"]).unwrap();
    clerk.verify(&g.id(), "SC-0001", &good).await.unwrap();
    clerk.verify(&g.id(), "SC-0001", &bad).await.unwrap_err();
    clerk.verify(&g.id(), "SC-0001", &good).await.unwrap();
    // Another holder's licence, used once: not in this holder's trail.
    let other = Holder::new();
    let oc = issue(&net, &other, "100000009").await;
    let og = authorized(&net, &other, &oc, &["sex"], 1).await;
    let op = oc.present(og.grant(), &og.code, &["sex"]).unwrap();
    clerk.verify(&og.id(), "SC-0001", &op).await.unwrap();

    let trail = holder::trail_request(CHANNEL, c.licence_id.clone(), &h.key).unwrap();
    let relay = net.client(RELAY);
    let first = relay.holder_usage(&trail, Some(1), "").await.unwrap();
    assert_eq!(first.records.len(), 1);
    assert!(!first.bookmark.is_empty());
    let all = relay.holder_usage_all(&trail, Some(1)).await.unwrap();
    let results: Vec<UsageResult> = all.iter().map(|r| r.result).collect();
    // Records are keyed by transaction second, then transaction id: compare as a multiset.
    let count = |r: UsageResult| results.iter().filter(|x| **x == r).count();
    assert_eq!(results.len(), 3);
    assert_eq!(count(UsageResult::Verified), 2);
    assert_eq!(count(UsageResult::WrongCode), 1);
    assert!(all.iter().all(|r| r.licence_id == c.licence_id));

    let auditor = net.client("auditor");
    assert_eq!(
        auditor.audit_usage_all(None, Some(2)).await.unwrap().len(),
        4
    );
    let one = auditor
        .audit_usage_all(Some(&oc.licence_id), Some(2))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].fields, ["sex"]);
}

/// Every call's future can be spawned on a multi-threaded runtime (`tokio::spawn` needs `Send`):
/// a window system waits for blocks, streams events and reads from spawned tasks. Checked by the
/// compiler; never run.
#[allow(dead_code)]
fn call_futures_are_send(c: &LicenceClient, id: &elicense_model::LicenceId, g: &GrantId) {
    fn send<T: Send>(_: T) {}
    send(c.wait_for_block(1));
    send(c.events(&fabric_client::gateway::EventsOptions::start_block(0)));
    send(c.catalogue());
    send(c.licence(id));
    send(c.history(id));
    send(c.grant(g));
    send(c.retrieve(g));
}
