//! `elicense usage`: the usage trail — a holder's own (holder-signed request, `--credential`) or
//! every use on the channel for the regulator's auditors (`--all`, optionally one `--licence`).

use std::path::PathBuf;

use elicense_model::{AuditUsageRequest, UsageRecord};
use elicense_sdk::holder;
use serde::Serialize;

use crate::commands::grant::{holder_key, with_channel, KeyArgs};
use crate::commands::licence::{load_credential, parse_licence_id};
use crate::connect::Client;
use crate::error::CliError;
use crate::Ctx;

/// Arguments of `usage`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The holder's credential: list the trail of that licence (signed with the holder key).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub credential: Option<PathBuf>,
    /// Every use on the channel (regulator auditors only).
    #[arg(long)]
    pub all: bool,
    /// With --all: only this licence's uses.
    #[arg(long, value_name = "ID", requires = "all")]
    pub licence: Option<String>,
    /// Records per page fetched (the whole trail is printed).
    #[arg(long, default_value_t = 500)]
    pub page_size: u32,
    /// The holder key.
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Serialize)]
struct Row<'a> {
    at: i64,
    licence_id: &'a str,
    licence_type: &'a str,
    grantee: &'a str,
    matter: &'a str,
    fields: &'a [String],
    result: elicense_model::UsageResult,
    clerk: &'a str,
    grant_id: &'a str,
    tx_id: &'a str,
}

/// Runs `usage`.
pub async fn run(ctx: &Ctx, a: Args) -> Result<(), CliError> {
    let mut records: Vec<UsageRecord> = Vec::new();
    if let Some(path) = &a.credential {
        let credential = load_credential(path)?;
        let key = holder_key(&ctx.settings, &a.key)?;
        let settings = with_channel(&ctx.settings, &credential.channel);
        let client = Client::connect(&settings)?;
        let licences = client.licences(&settings.chaincode);
        let mut bookmark = String::new();
        loop {
            // A fresh signed request per page: the contract accepts each for a few minutes only.
            let request =
                holder::trail_request(client.channel.clone(), credential.licence_id.clone(), &key)
                    .map_err(|e| CliError::from(elicense_sdk::LicenceError::from(e)))?;
            let page = licences
                .holder_usage(&request, Some(a.page_size), &bookmark)
                .await
                .map_err(|e| CliError::from(e).context("holder usage"))?;
            records.extend(page.records);
            if page.bookmark.is_empty() {
                break;
            }
            bookmark = page.bookmark;
        }
    } else {
        let licence_id = a.licence.as_deref().map(parse_licence_id).transpose()?;
        let client = Client::connect(&ctx.settings)?;
        let licences = client.licences(&ctx.settings.chaincode);
        let mut request = AuditUsageRequest {
            licence_id,
            page_size: Some(a.page_size),
            bookmark: String::new(),
        };
        loop {
            let page = licences
                .audit_usage(&request)
                .await
                .map_err(|e| CliError::from(e).context("audit usage"))?;
            records.extend(page.records);
            if page.bookmark.is_empty() {
                break;
            }
            request.bookmark = page.bookmark;
        }
    }
    if ctx.format() == crate::output::Format::Table {
        let rows: Vec<Row> = records
            .iter()
            .map(|r| Row {
                at: r.at,
                licence_id: r.licence_id.as_str(),
                licence_type: &r.licence_type,
                grantee: &r.grantee_msp,
                matter: &r.matter,
                fields: &r.fields,
                result: r.result,
                clerk: &r.clerk,
                grant_id: r.grant_id.as_str(),
                tx_id: &r.tx_id,
            })
            .collect();
        crate::output::print(ctx.format(), &rows)
    } else {
        crate::output::print(ctx.format(), &records)
    }
}
