//! `elicense catalogue list|show|init`: the channel's licence types, their issuers and fields.

use std::path::PathBuf;

use elicense_model::{Catalogue, LicenceType};
use serde::Serialize;

use crate::connect::Client;
use crate::error::CliError;
use crate::Ctx;

/// `catalogue` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List every licence type of the channel.
    List,
    /// Show one licence type.
    Show {
        /// The type code, e.g. ID_CARD.
        code: String,
    },
    /// Seed the catalogue from a JSON file (regulator admins only).
    Init {
        /// The catalogue file ({"types":[...]}), or - for standard input.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Serialize)]
struct Row<'a> {
    code: &'a str,
    name: &'a str,
    id_tag: &'a str,
    issuers: Vec<&'a str>,
    fields: usize,
}

/// Runs a `catalogue` subcommand.
pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let client = Client::connect(&ctx.settings)?;
    let licences = client.licences(&ctx.settings.chaincode);
    match command {
        Command::List => {
            let types: Vec<LicenceType> = licences.catalogue().await?;
            if ctx.format() == crate::output::Format::Table {
                let rows: Vec<Row> = types
                    .iter()
                    .map(|t| Row {
                        code: &t.code,
                        name: &t.name,
                        id_tag: &t.id_tag,
                        issuers: t.issuers.iter().map(|i| i.msp_id.as_str()).collect(),
                        fields: t.fields.len(),
                    })
                    .collect();
                crate::output::print(ctx.format(), &rows)
            } else {
                crate::output::print(ctx.format(), &types)
            }
        }
        Command::Show { code } => {
            let t = licences
                .licence_type(&code)
                .await
                .map_err(|e| CliError::from(e).context(format!("licence type {code}")))?;
            crate::output::print(ctx.format(), &t)
        }
        Command::Init { file } => {
            let text = crate::input::read_text(&file)?;
            let catalogue = Catalogue::from_json(&text).map_err(|e| {
                CliError::usage(format!("catalogue {}: {e}", file.display()))
                    .hint("see fixtures/catalogue.json for the shape")
            })?;
            let committed = licences.init_catalogue(&catalogue).await?;
            #[derive(Serialize)]
            struct Seeded {
                types: Vec<String>,
                tx_id: String,
                block: u64,
            }
            crate::output::print(
                ctx.format(),
                &Seeded {
                    types: committed.value.iter().map(|t| t.code.clone()).collect(),
                    tx_id: committed.transaction_id,
                    block: committed.block_number,
                },
            )
        }
    }
}
