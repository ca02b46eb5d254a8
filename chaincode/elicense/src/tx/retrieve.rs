//! `Retrieve` (evaluate only): after a verify, a clerk of the grantee gets the granted field
//! values from the issuer's collection. It writes nothing, so the values never enter a block.
//!
//! The window is [`RETRIEVE_WINDOW_SECS`] after the last successful verify's transaction
//! timestamp, compared with this proposal's timestamp. That timestamp is set by the client, so
//! the window keeps honest window systems honest; the hard guards are the caller's organisation
//! and role, the grant's state and the recorded verify.

use crate::access::{caller, Role};
use crate::error::{err, TxResult};
use crate::keys;
use crate::support::{from_json, now, owned_private_data, Arg};
use crate::tx::status::load_licence;
use crate::tx::withdraw::load_grant;
use elicense_model::{
    ErrorCode, GrantQuery, GrantStatus, LicencePrivate, RetrieveResult, RETRIEVE_WINDOW_SECS,
};
use fabric_chaincode::contract::Context;
use fabric_chaincode::ChaincodeStub;

/// `Retrieve`.
pub async fn retrieve<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<GrantQuery>,),
) -> TxResult<RetrieveResult> {
    let stub = ctx.stub();
    let who = caller(stub)?;
    who.require_role(Role::Clerk)?;
    let q = arg.get()?;
    let record = load_grant(stub, &q.grant_id).await?;
    who.require(Role::Clerk, &record.grant.grantee_msp)?;
    match record.status {
        GrantStatus::Withdrawn => {
            return Err(err(
                ErrorCode::GrantWithdrawn,
                format!("grant {} was withdrawn by the holder", q.grant_id),
            ))
        }
        GrantStatus::Locked => {
            return Err(err(
                ErrorCode::GrantLocked,
                format!("grant {} is locked", q.grant_id),
            ))
        }
        GrantStatus::Active | GrantStatus::Spent => {}
    }
    let t = now(stub)?;
    let open = record
        .last_verified
        .as_ref()
        .is_some_and(|v| t >= v.at && t <= v.at + RETRIEVE_WINDOW_SECS);
    if !open {
        return Err(err(
            ErrorCode::RetrieveWindowClosed,
            format!(
                "grant {} has no verify in the last {RETRIEVE_WINDOW_SECS} seconds",
                q.grant_id
            ),
        ));
    }
    let licence = load_licence(stub, &record.grant.licence_id).await?;
    licence.check_usable(t)?;
    let raw = owned_private_data(
        stub,
        &keys::implicit_collection(&record.issuer_msp),
        &keys::licence(licence.id.as_str())?,
        || {
            format!(
                "licence values are held only by peers of {}",
                record.issuer_msp
            )
        },
    )
    .await?;
    let private: LicencePrivate = from_json("licence values", &raw)?;
    let fields = private
        .fields
        .into_iter()
        .filter(|(name, _)| record.grant.allows_field(name))
        .map(|(name, opening)| (name, opening.value))
        .collect();
    Ok(RetrieveResult {
        grant_id: q.grant_id,
        licence_id: licence.id,
        fields,
    })
}
