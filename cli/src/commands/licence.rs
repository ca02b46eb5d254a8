//! `elicense licence issue|show|history|suspend|reinstate|revoke` (issuer side).
//!
//! Field values are personal data: they are read from a file or standard input, never from the
//! command line, and sent only as transient data. The holder's credential (values and salts) is
//! written to an owner-only file to hand to the holder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use elicense_model::{IssueRequest, LicenceId, LicenceRecord, LicenceType};
use elicense_sdk::{Credential, LicenceClient};
use serde::Serialize;

use crate::connect::Client;
use crate::error::CliError;
use crate::exit::Class;
use crate::input;
use crate::Ctx;

pub use super::batch::BatchArgs;

/// `licence` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Issue one licence, or many with --batch.
    Issue(IssueArgs),
    /// Show a licence's public record (commitments, status, validity; never values).
    Show {
        /// The licence identifier.
        licence_id: String,
    },
    /// Every version of a licence's public record, oldest first.
    History {
        /// The licence identifier.
        licence_id: String,
    },
    /// Suspend an active licence (its issuer only).
    Suspend(StatusArgs),
    /// Reinstate a suspended licence (its issuer only).
    Reinstate(StatusArgs),
    /// Revoke a licence for good (its issuer only).
    Revoke(StatusArgs),
}

/// Arguments of `licence suspend|reinstate|revoke`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The licence identifier.
    pub licence_id: String,
    /// Why (public: never personal data).
    #[arg(long)]
    pub reason: String,
}

/// Arguments of `licence issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// Licence type code (e.g. ID_CARD); the default type of batch lines without one.
    #[arg(long = "type", value_name = "CODE", required_unless_present = "batch")]
    pub licence_type: Option<String>,
    /// Serial number; the identifier is built with the catalogue's type tag and issuer code.
    #[arg(long, required_unless_present_any = ["licence_id", "batch"])]
    pub serial: Option<String>,
    /// The full licence identifier instead of --serial.
    #[arg(long, conflicts_with = "serial")]
    pub licence_id: Option<String>,
    /// The holder's public key, certificate or key (PEM file).
    #[arg(long, value_name = "FILE", required_unless_present = "batch")]
    pub holder_key: Option<PathBuf>,
    /// Field values as a JSON object {"name": "value", ...}, from a file or - (standard input).
    #[arg(long, value_name = "FILE", required_unless_present = "batch")]
    pub values: Option<PathBuf>,
    /// Start of validity: Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (default now).
    #[arg(long, value_parser = input::parse_time)]
    pub not_before: Option<i64>,
    /// End of validity (default: --valid-years after the start).
    #[arg(long, value_parser = input::parse_time)]
    pub not_after: Option<i64>,
    /// Validity in years when --not-after is not given.
    #[arg(long, default_value_t = 10)]
    pub valid_years: u32,
    /// Write the holder's credential (values and salts) to this new owner-only file.
    #[arg(long, value_name = "FILE", conflicts_with = "batch")]
    pub credential_out: Option<PathBuf>,
    /// Batch issuance.
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// The catalogue type and this organisation's issuer code for it.
pub fn issuer_code<'a>(t: &'a LicenceType, msp_id: &str) -> Result<&'a str, CliError> {
    t.issuer(msp_id).map(|i| i.code.as_str()).ok_or_else(|| {
        CliError::new(
            Class::Denied,
            format!("{msp_id} is not an issuer of {} in the catalogue", t.code),
        )
        .code("NOT_ALLOWED")
        .hint(format!(
            "{} is issued by {}",
            t.code,
            t.issuers
                .iter()
                .map(|i| i.msp_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Parses a licence identifier, naming the rule on failure.
pub fn parse_licence_id(s: &str) -> Result<LicenceId, CliError> {
    LicenceId::parse(s).map_err(|e| {
        CliError::usage(format!("licence identifier {s:?}: {e}"))
            .hint("identifiers look like IDC-PSB-000000123-N (type, issuer, serial, check)")
            .code("INVALID_ARGUMENT")
    })
}

/// The default validity window.
pub fn validity(
    not_before: Option<i64>,
    not_after: Option<i64>,
    years: u32,
) -> Result<(i64, i64), String> {
    let nb = not_before.unwrap_or_else(input::now);
    let na =
        not_after.unwrap_or(nb + i64::from(years) * 365 * 86_400 + i64::from(years / 4) * 86_400);
    if na < nb {
        return Err("not_after is before not_before".into());
    }
    Ok((nb, na))
}

/// Writes `text` to a new owner-only file (`create_new`: never overwrites).
pub fn write_new_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            let class = if e.kind() == std::io::ErrorKind::AlreadyExists {
                Class::Conflict
            } else {
                Class::Internal
            };
            CliError::new(class, format!("writing {}: {e}", path.display()))
        })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| CliError::new(Class::Internal, format!("writing {}: {e}", path.display())))
}

/// A licence record as printed: identifiers, status, validity, commitments.
#[derive(Serialize)]
pub struct RecordView<'a> {
    licence_id: &'a str,
    licence_type: &'a str,
    issuer_msp: &'a str,
    status: elicense_model::LicenceStatus,
    status_reason: &'a str,
    not_before: i64,
    not_after: i64,
    fields: Vec<&'a str>,
    commitments: &'a BTreeMap<String, elicense_model::Commitment>,
    holder_key: &'a str,
    issued_tx: &'a str,
    updated_tx: &'a str,
}

impl<'a> From<&'a LicenceRecord> for RecordView<'a> {
    fn from(r: &'a LicenceRecord) -> Self {
        RecordView {
            licence_id: r.id.as_str(),
            licence_type: &r.licence_type,
            issuer_msp: &r.issuer_msp,
            status: r.status,
            status_reason: &r.status_reason,
            not_before: r.not_before,
            not_after: r.not_after,
            fields: r.commitments.keys().map(String::as_str).collect(),
            commitments: &r.commitments,
            holder_key: &r.holder_key,
            issued_tx: &r.issued.tx_id,
            updated_tx: &r.updated.tx_id,
        }
    }
}

async fn issue_one(
    ctx: &Ctx,
    client: &Client,
    licences: &LicenceClient,
    a: IssueArgs,
) -> Result<(), CliError> {
    let code = a.licence_type.clone().unwrap_or_default();
    let msp_id = client.identity.identity().msp_id().to_string();
    let licence_id = match (&a.licence_id, &a.serial) {
        (Some(id), _) => parse_licence_id(id)?,
        (None, Some(serial)) => {
            let t = licences
                .licence_type(&code)
                .await
                .map_err(|e| CliError::from(e).context(format!("licence type {code}")))?;
            LicenceId::build(&t.id_tag, issuer_code(&t, &msp_id)?, serial).map_err(|e| {
                CliError::usage(format!("serial {serial:?}: {e}")).code("INVALID_ARGUMENT")
            })?
        }
        (None, None) => return Err(CliError::usage("give --serial or --licence-id")),
    };
    let holder_key = input::holder_key_file(a.holder_key.as_deref().unwrap_or(Path::new("-")))?;
    let values: BTreeMap<String, String> = input::read_json(
        a.values.as_deref().unwrap_or(Path::new("-")),
        "field values",
    )?;
    let (not_before, not_after) =
        validity(a.not_before, a.not_after, a.valid_years).map_err(CliError::usage)?;
    let out = a.credential_out.clone().ok_or_else(|| {
        CliError::usage("--credential-out FILE is required: the holder needs the credential")
    })?;
    if out.exists() {
        return Err(
            CliError::new(Class::Conflict, format!("{} already exists", out.display()))
                .hint("credentials are never overwritten; choose another file"),
        );
    }
    let request = IssueRequest {
        licence_id,
        licence_type: code,
        holder_key,
        not_before,
        not_after,
    };
    let private = elicense_sdk::client::salt_values(&values);
    let issued = licences.issue_salted(&request, &private).await?;
    write_new_private(&out, &issued.credential.to_json())?;
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        record: RecordView<'a>,
        credential: String,
        tx_id: String,
        block: u64,
    }
    crate::output::print(
        ctx.format(),
        &Out {
            record: RecordView::from(&issued.record),
            credential: out.display().to_string(),
            tx_id: issued.transaction_id.clone(),
            block: issued.block_number,
        },
    )
}

/// Runs a `licence` subcommand.
pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let client = Client::connect(&ctx.settings)?;
    let licences = client.licences(&ctx.settings.chaincode);
    match command {
        Command::Issue(a) => {
            if a.batch.batch.is_some() {
                super::batch::run(ctx, &client, &licences, a).await
            } else {
                issue_one(ctx, &client, &licences, a).await
            }
        }
        Command::Show { licence_id } => {
            let id = parse_licence_id(&licence_id)?;
            let record = licences
                .licence(&id)
                .await
                .map_err(|e| CliError::from(e).context(format!("licence {licence_id}")))?;
            crate::output::print(ctx.format(), &RecordView::from(&record))
        }
        Command::History { licence_id } => {
            let id = parse_licence_id(&licence_id)?;
            let entries = licences
                .history(&id)
                .await
                .map_err(|e| CliError::from(e).context(format!("licence {licence_id}")))?;
            if entries.is_empty() {
                return Err(CliError::new(
                    Class::NotFound,
                    format!("licence {licence_id} has no history"),
                )
                .code("NOT_FOUND"));
            }
            #[derive(Serialize)]
            struct Entry<'a> {
                tx_id: &'a str,
                at: i64,
                status: Option<elicense_model::LicenceStatus>,
                reason: Option<&'a str>,
                deleted: bool,
            }
            let rows: Vec<Entry> = entries
                .iter()
                .map(|e| Entry {
                    tx_id: &e.tx_id,
                    at: e.at,
                    status: e.record.as_ref().map(|r| r.status),
                    reason: e.record.as_ref().map(|r| r.status_reason.as_str()),
                    deleted: e.record.is_none(),
                })
                .collect();
            crate::output::print(ctx.format(), &rows)
        }
        Command::Suspend(a) => change_status(ctx, &licences, "suspend", a).await,
        Command::Reinstate(a) => change_status(ctx, &licences, "reinstate", a).await,
        Command::Revoke(a) => change_status(ctx, &licences, "revoke", a).await,
    }
}

/// Runs `licence suspend|reinstate|revoke`.
async fn change_status(
    ctx: &Ctx,
    licences: &LicenceClient,
    which: &str,
    a: StatusArgs,
) -> Result<(), CliError> {
    let id = parse_licence_id(&a.licence_id)?;
    let committed = match which {
        "suspend" => licences.suspend(&id, &a.reason).await,
        "reinstate" => licences.reinstate(&id, &a.reason).await,
        _ => licences.revoke(&id, &a.reason).await,
    }
    .map_err(|e| CliError::from(e).context(format!("{which} {}", a.licence_id)))?;
    #[derive(Serialize)]
    struct Out<'a> {
        licence_id: &'a str,
        status: elicense_model::LicenceStatus,
        reason: &'a str,
        tx_id: &'a str,
        block: u64,
    }
    crate::output::print(
        ctx.format(),
        &Out {
            licence_id: committed.value.id.as_str(),
            status: committed.value.status,
            reason: &committed.value.status_reason,
            tx_id: &committed.transaction_id,
            block: committed.block_number,
        },
    )
}

/// Reads a credential file.
pub fn load_credential(path: &Path) -> Result<Credential, CliError> {
    let text = input::read_text(path)?;
    Credential::from_json(&text).map_err(|e| {
        CliError::usage(format!("credential {}: {e}", path.display()))
            .hint("the credential is the file `licence issue --credential-out` wrote")
    })
}
