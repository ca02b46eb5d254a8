//! `elicense retrieve GRANT_ID`: after a successful verify, the granted field values from the
//! issuer's library (the issuer's peer, by an evaluate: the values never enter a block).

use serde::Serialize;

use crate::commands::grant::parse_grant_id;
use crate::connect::Client;
use crate::error::CliError;
use crate::Ctx;

/// Arguments of `retrieve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The grant id verified.
    pub grant_id: String,
}

/// Runs `retrieve`.
pub async fn run(ctx: &Ctx, a: Args) -> Result<(), CliError> {
    let grant_id = parse_grant_id(&a.grant_id)?;
    let client = Client::connect(&ctx.settings)?;
    let r = client
        .licences(&ctx.settings.chaincode)
        .retrieve(&grant_id)
        .await
        .map_err(|e| CliError::from(e).context(format!("retrieve {}", a.grant_id)))?;
    #[derive(Serialize)]
    struct Out<'a> {
        grant_id: &'a str,
        licence_id: &'a str,
        fields: &'a std::collections::BTreeMap<String, String>,
    }
    crate::output::print(
        ctx.format(),
        &Out {
            grant_id: r.grant_id.as_str(),
            licence_id: r.licence_id.as_str(),
            fields: &r.fields,
        },
    )
}
