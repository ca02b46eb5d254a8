//! `elicense verify GRANT_ID`: the window clerk uses a holder's grant, with the holder's code and
//! optionally a presentation of field values (checked against the licence's commitments).

use std::collections::BTreeMap;
use std::path::PathBuf;

use elicense_model::{Code, Presentation};
use serde::Serialize;

use crate::commands::grant::{parse_grant_id, PresentationFile};
use crate::connect::Client;
use crate::error::CliError;
use crate::input;
use crate::secret::SecretSource;
use crate::Ctx;

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The grant id the holder gave.
    pub grant_id: String,
    /// The matter being handled (must be the grant's).
    #[arg(long)]
    pub matter: String,
    /// Where the holder's 8-digit code comes from: file:PATH, env:NAME or - (standard input).
    #[arg(long, value_name = "SOURCE")]
    pub code: SecretSource,
    /// The holder's presentation file (field values and salts), or - for standard input.
    #[arg(long, value_name = "FILE")]
    pub presentation: Option<PathBuf>,
}

/// Runs `verify`.
pub async fn run(ctx: &Ctx, a: Args) -> Result<(), CliError> {
    let grant_id = parse_grant_id(&a.grant_id)?;
    let code = Code::parse(a.code.read()?.trim()).map_err(|e| {
        CliError::usage(format!("code: {e}"))
            .hint("the code is the 8 digits the holder was given")
            .code("INVALID_ARGUMENT")
    })?;
    let fields = match &a.presentation {
        Some(path) => {
            let p: PresentationFile = input::read_json(path, "presentation")?;
            if p.grant_id != grant_id {
                return Err(CliError::usage(format!(
                    "the presentation is for grant {}, not {}",
                    p.grant_id.as_str(),
                    grant_id.as_str()
                )));
            }
            p.fields
        }
        None => BTreeMap::new(),
    };
    let client = Client::connect(&ctx.settings)?;
    let v = client
        .licences(&ctx.settings.chaincode)
        .verify(&grant_id, &a.matter, &Presentation { code, fields })
        .await
        .map_err(|e| CliError::from(e).context(format!("verify {}", a.grant_id)))?;
    #[derive(Serialize)]
    struct Out<'a> {
        verified: bool,
        grant_id: &'a str,
        licence_id: &'a str,
        matter: &'a str,
        matched: &'a [String],
        not_presented: &'a [String],
        uses_left: u32,
        retrieve_until: i64,
        tx_id: &'a str,
        block: u64,
    }
    crate::output::print(
        ctx.format(),
        &Out {
            verified: true,
            grant_id: v.grant_id.as_str(),
            licence_id: v.licence_id.as_str(),
            matter: &v.matter,
            matched: &v.matched,
            not_presented: &v.not_presented,
            uses_left: v.uses_left,
            retrieve_until: v.retrieve_until,
            tx_id: &v.transaction_id,
            block: v.block_number,
        },
    )
}
