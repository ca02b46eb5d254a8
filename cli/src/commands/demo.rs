//! `elicense demo`: the whole licence story on the embedded devnet, narrated step by step (or one
//! JSON document with every step), then the devnet stops.
//!
//! Every step goes through the same code paths as the other commands: the devnet, the Fabric CA
//! client, the licence SDK over the Gateway, and the peer's Deliver service for the final scan.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Instant;

use elicense_model::{Code, IssueRequest, LicenceId, Presentation};
use elicense_sdk::holder::{self, HolderKeyPair};
use elicense_sdk::{Failure, LicenceClient, NewLicence};
use fabric_client::ca::{CaClient, EnrollmentRequest, MspWriteOptions, RegistrationRequest};
use fabric_client::gateway::{BlockEventsKind, DeliverEvent, EventsOptions};
use prost::Message as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::commands::devnet::{self, licence_client};
use crate::error::CliError;
use crate::exit::Class;
use crate::output::Format;
use crate::Ctx;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the devnet's data here (default: a temporary directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

const CHANNEL: &str = "police-service";
const MATTER: &str = "SC-RESIDENCE-2026";
const OTHER_MATTER: &str = "SC-SOCIAL-2026";

/// One step of the story.
#[derive(Debug, Serialize)]
struct Step {
    step: usize,
    name: &'static str,
    title: String,
    ok: bool,
    ms: u64,
    details: Value,
}

struct Story {
    steps: Vec<Step>,
    started: Instant,
    step_started: Instant,
    narrate: bool,
    colour: bool,
}

impl Story {
    fn done(&mut self, name: &'static str, title: impl Into<String>, details: Value) {
        let title = title.into();
        let ms = self.step_started.elapsed().as_millis() as u64;
        let n = self.steps.len() + 1;
        if self.narrate {
            let mark = if self.colour {
                "\x1b[32m✔\x1b[0m"
            } else {
                "✔"
            };
            println!("{mark} {n:>2}. {title}  ({ms} ms)");
        }
        self.steps.push(Step {
            step: n,
            name,
            title,
            ok: true,
            ms,
            details,
        });
        self.step_started = Instant::now();
    }

    fn fail(&self, name: &str, e: CliError) -> CliError {
        e.context(format!("demo step {} ({name})", self.steps.len() + 1))
    }
}

/// The values of the demo citizen's ID card.
fn id_card_values() -> BTreeMap<String, String> {
    [
        ("name", "张三"),
        ("sex", "男"),
        ("ethnicity", "汉"),
        ("birth_date", "1990-03-07"),
        ("address", "北京市东城区景山前街4号"),
        ("id_number", "11010119900307663X"),
        ("issuing_authority", "北京市公安局东城分局"),
        ("valid_from", "2020-05-01"),
        ("valid_until", "2040-05-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn expect_refusal<T: std::fmt::Debug>(
    r: Result<T, elicense_sdk::LicenceError>,
    want: Failure,
) -> Result<elicense_sdk::LicenceError, CliError> {
    match r {
        Err(e) if e.failure() == want => Ok(e),
        Err(e) => Err(CliError::from(e)),
        Ok(v) => Err(CliError::new(
            Class::Internal,
            format!("expected a {want:?} refusal, but the call succeeded: {v:?}"),
        )),
    }
}

/// Waits until `check` holds: each organisation's peer commits blocks on its own, so the next
/// actor's peer may be a block behind the previous actor's commit.
async fn until<F, Fut>(what: &str, mut check: F) -> Result<(), CliError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + std::time::Duration::from_secs(15);
    while !check().await {
        if Instant::now() > deadline {
            return Err(CliError::new(
                Class::Network,
                format!("timed out waiting for {what}"),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Runs `demo`.
pub async fn run(ctx: &Ctx, a: Args) -> Result<(), CliError> {
    let temp;
    let data_dir = match &a.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("elicense-demo-")
                .tempdir()
                .map_err(|e| CliError::new(Class::Internal, format!("temporary directory: {e}")))?;
            temp.path().to_path_buf()
        }
    };
    let json_out = ctx.format() == Format::Json;
    let mut story = Story {
        steps: Vec::new(),
        started: Instant::now(),
        step_started: Instant::now(),
        narrate: !json_out && !ctx.quiet,
        colour: std::io::stdout().is_terminal(),
    };
    if story.narrate {
        println!(
            "eLicense Ledger demo: the licence story on the embedded devnet ({})",
            data_dir.display()
        );
    }
    let running = devnet::start(
        fabric_devnet::topology::Topology::default_topology(),
        &data_dir,
        true,
    )
    .await?;
    let result = play(&mut story, &running).await;
    let stop = Instant::now();
    running.stop().await;
    let outcome = match result {
        Ok(()) => {
            story.step_started = stop;
            story.done("down", "The devnet is stopped", json!({}));
            Ok(())
        }
        Err(e) => Err(e),
    };
    let total_ms = story.started.elapsed().as_millis() as u64;
    if json_out {
        let doc = json!({
            "ok": outcome.is_ok(),
            "channel": CHANNEL,
            "total_ms": total_ms,
            "steps": story.steps,
            "error": outcome.as_ref().err().map(|e| e.to_json()["error"].clone()),
        });
        crate::output::print(Format::Json, &doc)?;
    } else if story.narrate && outcome.is_ok() {
        println!("The whole story took {:.1} s.", total_ms as f64 / 1000.0);
    }
    outcome
}

async fn play(story: &mut Story, running: &devnet::Running) -> Result<(), CliError> {
    let summary = running.devnet.summary();
    story.step_started = story.started;
    story.done(
        "devnet",
        format!(
            "Devnet up: {} peers, a solo orderer and {} Fabric CAs on 127.0.0.1, {} channels",
            summary.peers.len(),
            summary.cas.len(),
            summary.channels.len()
        ),
        json!({
            "peers": summary.peers.iter().map(|p| json!({"org": p.org, "msp_id": p.msp_id, "url": p.url})).collect::<Vec<_>>(),
            "channels": summary.channels.iter().map(|c| json!({"name": c.name, "members": c.members})).collect::<Vec<_>>(),
            "startup_ms": summary.startup_ms,
        }),
    );
    story.done(
        "catalogue",
        format!(
            "Licence chaincode hosted as CCaaS ({}) on every channel; catalogue seeded by the regulator",
            running.package_id
        ),
        json!({"package_id": running.package_id, "chaincode_address": running.chaincode.address().to_string(), "seeded": running.seeded}),
    );

    // Identities through the CA: the service centre's registrar registers and enrolls a citizen.
    let sc_profile =
        fabric_client::profile::ConnectionProfile::from_file(&summary.profiles["ServiceCentre"])
            .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    let ca = CaClient::from_profile(
        &sc_profile
            .organization_ca("ServiceCentre")
            .map_err(|e| CliError::new(Class::Internal, e.to_string()))?,
    )
    .map_err(CliError::from)?;
    let registrar = ca
        .enroll(&EnrollmentRequest::new("admin", "adminpw"))
        .await
        .map_err(|e| story.fail("enrol", CliError::from(e)))?
        .signing_identity("ServiceCentreMSP")
        .map_err(CliError::from)?;
    let serial = format!(
        "{:X}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let citizen = format!("citizen-{}", serial.to_lowercase());
    let citizen_secret = holder::new_secret();
    ca.register(
        &registrar,
        &RegistrationRequest::new(&citizen)
            .secret(&citizen_secret)
            .attribute("elicense.role", "holder", true),
    )
    .await
    .map_err(|e| story.fail("enrol", CliError::from(e)))?;
    let enrollment = ca
        .enroll(&EnrollmentRequest::new(&citizen, &citizen_secret))
        .await
        .map_err(|e| story.fail("enrol", CliError::from(e)))?;
    let citizen_dir = summary
        .data_dir
        .join("msp")
        .join("ServiceCentre")
        .join(&citizen);
    enrollment
        .write_msp_dir(&citizen_dir, &MspWriteOptions::default())
        .map_err(CliError::from)?;
    let holder_signing = enrollment
        .signing_identity("ServiceCentreMSP")
        .map_err(CliError::from)?;
    let holder_key = HolderKeyPair::from_pem(enrollment.key.to_pkcs8_pem().as_bytes())
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    let holder =
        LicenceClient::connect(&sc_profile, &holder_signing, CHANNEL).map_err(CliError::from)?;
    story.done(
        "enrol",
        format!("The Service Centre's CA registers and enrols the citizen {citizen} (elicense.role=holder)"),
        json!({"enrollment_id": citizen, "msp_dir": citizen_dir, "ca": enrollment.ca_info.ca_name}),
    );

    // Public Security issues an ID card to the holder's key.
    let issuer = licence_client(&summary, "PublicSecurity", "issuer1", CHANNEL)?;
    let values = id_card_values();
    let now = crate::input::now();
    let licence_id = LicenceId::build("IDC", "PSB", &serial)
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    let issued = issuer
        .issue(NewLicence {
            request: IssueRequest {
                licence_id: licence_id.clone(),
                licence_type: "ID_CARD".into(),
                holder_key: holder_key.public_pem(),
                not_before: now - 60,
                not_after: now + 20 * 365 * 86_400,
            },
            values: values.clone(),
        })
        .await
        .map_err(|e| story.fail("issue", CliError::from(e)))?;
    let credential = issued.credential.clone();
    story.done(
        "issue",
        format!("Public Security issues ID card {} to the citizen; the ledger holds only salted commitments", licence_id.as_str()),
        json!({"licence_id": licence_id.as_str(), "issuer_msp": issued.record.issuer_msp, "fields": issued.record.commitments.keys().collect::<Vec<_>>(), "tx_id": issued.transaction_id, "block": issued.block_number}),
    );

    // The holder authorises the Government Service Centre for a matter: an 8-digit code.
    let secret = holder::secret(&holder::new_secret())
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    let grant = credential
        .grant("ServiceCentreMSP", MATTER)
        .fields(["name", "id_number", "address"])
        .sign(&secret, &holder_key)
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    until("the licence on the Service Centre's peer", || async {
        holder.licence(&licence_id).await.is_ok()
    })
    .await?;
    let authorised = holder
        .authorize(&grant)
        .await
        .map_err(|e| story.fail("authorize", CliError::from(e)))?;
    let grant_id = grant.id();
    story.done(
        "authorize",
        format!(
            "The citizen authorises the Government Service Centre for {MATTER} (name, id_number, address); code {}",
            grant.code.as_str()
        ),
        json!({"grant_id": grant_id.as_str(), "grantee": "ServiceCentreMSP", "matter": MATTER, "fields": grant.grant().fields, "uses": grant.grant().uses, "code": grant.code.as_str(), "tx_id": authorised.transaction_id, "block": authorised.block_number}),
    );

    // The window clerk verifies with the code and the presented fields.
    let clerk = licence_client(&summary, "ServiceCentre", "clerk1", CHANNEL)?;
    let presentation = credential
        .present(grant.grant(), &grant.code, &["name", "id_number"])
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    until("the grant on Public Security's peer", || async {
        issuer.grant(&grant_id).await.is_ok()
    })
    .await?;
    let verified = clerk
        .verify(&grant_id, MATTER, &presentation)
        .await
        .map_err(|e| story.fail("verify", CliError::from(e)))?;
    story.done(
        "verify",
        format!(
            "The window clerk verifies with the code: {} match the issuer's commitments; the grant is spent",
            verified.matched.join(", ")
        ),
        json!({"grant_id": grant_id.as_str(), "matched": verified.matched, "not_presented": verified.not_presented, "uses_left": verified.uses_left, "tx_id": verified.transaction_id, "block": verified.block_number}),
    );

    // A second verify on the same grant is refused.
    until("the spent grant on Public Security's peer", || async {
        issuer
            .grant(&grant_id)
            .await
            .is_ok_and(|g| g.uses_left == 0)
    })
    .await?;
    let again = expect_refusal(
        clerk.verify(&grant_id, MATTER, &presentation).await,
        Failure::GrantSpent,
    )
    .map_err(|e| story.fail("verify_again", e))?;
    story.done(
        "verify_again",
        "A second verify on the same grant is refused: GRANT_SPENT",
        json!({"refused": "GRANT_SPENT", "message": again.to_string()}),
    );

    // A wrong code is refused (and counted), on a second grant.
    let grant2 = credential
        .grant("ServiceCentreMSP", OTHER_MATTER)
        .fields(["name"])
        .sign(&secret, &holder_key)
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    holder
        .authorize(&grant2)
        .await
        .map_err(|e| story.fail("wrong_code", CliError::from(e)))?;
    until("the second grant on Public Security's peer", || async {
        issuer.grant(&grant2.id()).await.is_ok()
    })
    .await?;
    let wrong = if grant2.code.as_str() == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let wrong_presentation = Presentation {
        code: Code::parse(wrong).map_err(|e| CliError::new(Class::Internal, e.to_string()))?,
        fields: BTreeMap::new(),
    };
    let refused = expect_refusal(
        clerk
            .verify(&grant2.id(), OTHER_MATTER, &wrong_presentation)
            .await,
        Failure::WrongCode,
    )
    .map_err(|e| story.fail("wrong_code", e))?;
    let attempts_left = match &refused {
        elicense_sdk::LicenceError::WrongCode { attempts_left, .. } => Some(*attempts_left),
        _ => None,
    };
    story.done(
        "wrong_code",
        format!("A wrong code on another grant ({OTHER_MATTER}) is refused: WRONG_CODE, recorded on the ledger"),
        json!({"grant_id": grant2.id().as_str(), "refused": "WRONG_CODE", "attempts_left": attempts_left, "tx_id": refused.transaction_id()}),
    );

    // The refusal was committed on the clerk's peer; Public Security's peer endorses the
    // withdrawal too and must have read the same grant.
    until("the refused attempt on Public Security's peer", || async {
        issuer
            .grant(&grant2.id())
            .await
            .is_ok_and(|g| g.failed_attempts > 0)
    })
    .await?;
    // The holder withdraws that grant; it cannot be used any more.
    let withdrawal = holder::withdrawal(CHANNEL, grant2.id(), &holder_key)
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    let withdrawn = holder
        .withdraw(&withdrawal)
        .await
        .map_err(|e| story.fail("withdraw", CliError::from(e)))?;
    until("the withdrawal on Public Security's peer", || async {
        issuer
            .grant(&grant2.id())
            .await
            .is_ok_and(|g| g.status == elicense_model::GrantStatus::Withdrawn)
    })
    .await?;
    let right_presentation = credential
        .present(grant2.grant(), &grant2.code, &["name"])
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    expect_refusal(
        clerk
            .verify(&grant2.id(), OTHER_MATTER, &right_presentation)
            .await,
        Failure::GrantWithdrawn,
    )
    .map_err(|e| story.fail("withdraw", e))?;
    story.done(
        "withdraw",
        "The citizen withdraws that grant: even the right code is now refused (GRANT_WITHDRAWN)",
        json!({"grant_id": grant2.id().as_str(), "status": withdrawn.value.status, "tx_id": withdrawn.transaction_id, "block": withdrawn.block_number}),
    );

    // The granted values come from the issuer's library (an evaluate on the issuer's peer).
    let retrieved = clerk
        .retrieve(&grant_id)
        .await
        .map_err(|e| story.fail("retrieve", CliError::from(e)))?;
    story.done(
        "retrieve",
        format!(
            "The clerk retrieves the granted values from Public Security's library: {}",
            retrieved
                .fields
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
        json!({"grant_id": grant_id.as_str(), "fields": retrieved.fields}),
    );

    // The holder lists the usage trail of the licence.
    let trail_req = holder::trail_request(CHANNEL, licence_id.clone(), &holder_key)
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    let trail = holder
        .holder_usage(&trail_req, None, "")
        .await
        .map_err(|e| story.fail("usage", CliError::from(e)))?;
    story.done(
        "usage",
        format!(
            "The citizen lists the usage trail: {}",
            trail
                .records
                .iter()
                .map(|r| format!(
                    "{} by {} for {} ({:?})",
                    r.licence_type, r.grantee_msp, r.matter, r.result
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        json!({"records": trail.records}),
    );

    // The issuer revokes the licence.
    let revoked = issuer
        .revoke(&licence_id, "replaced by a new card")
        .await
        .map_err(|e| story.fail("revoke", CliError::from(e)))?;
    story.done(
        "revoke",
        format!("Public Security revokes {}", licence_id.as_str()),
        json!({"licence_id": licence_id.as_str(), "status": revoked.value.status, "reason": revoked.value.status_reason, "tx_id": revoked.transaction_id, "block": revoked.block_number}),
    );

    // The regulator audits every use on the channel.
    let auditor = licence_client(&summary, "Regulator", "auditor1", CHANNEL)?;
    until("the revocation on the regulator's peer", || async {
        auditor
            .licence(&licence_id)
            .await
            .is_ok_and(|l| l.status == elicense_model::LicenceStatus::Revoked)
    })
    .await?;
    let audit = auditor
        .audit_usage(&elicense_model::AuditUsageRequest::default())
        .await
        .map_err(|e| story.fail("audit", CliError::from(e)))?;
    story.done(
        "audit",
        format!(
            "The regulator audits the channel: {} use(s) recorded, none with a value",
            audit.records.len()
        ),
        json!({"records": audit.records.len(), "trail": audit.records}),
    );

    // Every block of the channel is scanned for the citizen's values: none may appear.
    let last = revoked.block_number;
    let scan = scan_blocks(auditor.contract().network(), last, &credential).await?;
    if scan.found.is_empty() {
        story.done(
            "scan",
            format!(
                "Every block of {CHANNEL} (0..={last}, {} bytes) scanned: none of the {} personal values or salts is there",
                scan.bytes, scan.needles
            ),
            json!({"blocks": last + 1, "bytes": scan.bytes, "values_checked": scan.needles, "found": scan.found}),
        );
        Ok(())
    } else {
        Err(CliError::new(
            Class::Internal,
            format!("personal data found on the ledger: {:?}", scan.found),
        ))
    }
}

struct Scan {
    bytes: u64,
    needles: usize,
    found: Vec<String>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

async fn scan_blocks(
    network: &fabric_client::Network,
    last: u64,
    credential: &elicense_sdk::Credential,
) -> Result<Scan, CliError> {
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, opening) in &credential.fields {
        needles.push((
            format!("value of {name}"),
            opening.value.as_bytes().to_vec(),
        ));
        let salt = opening.salt.as_bytes().to_vec();
        needles.push((
            format!("salt of {name} (hex)"),
            hex::encode(&salt).into_bytes(),
        ));
        needles.push((format!("salt of {name}"), salt));
    }
    let mut stream = network
        .block_events(BlockEventsKind::Full, &EventsOptions::start_block(0))
        .await
        .map_err(|e| CliError::from(e).context("scanning blocks"))?;
    let mut scan = Scan {
        bytes: 0,
        needles: needles.len(),
        found: Vec::new(),
    };
    while let Some(event) = stream.next().await {
        let block = match event.map_err(|e| CliError::from(e).context("scanning blocks"))? {
            DeliverEvent::Block(b) => b,
            other => {
                return Err(CliError::new(
                    Class::Network,
                    format!(
                        "unexpected deliver event for block {}",
                        other.block_number()
                    ),
                ))
            }
        };
        let number = block.header.as_ref().map_or(0, |h| h.number);
        let bytes = block.encode_to_vec();
        scan.bytes += bytes.len() as u64;
        for (what, needle) in &needles {
            if contains(&bytes, needle) {
                scan.found.push(format!("{what} in block {number}"));
            }
        }
        if number >= last {
            break;
        }
    }
    Ok(scan)
}
