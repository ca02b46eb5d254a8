//! `HolderUsage` (a holder's trail of one licence, on a holder-signed fresh request) and
//! `AuditUsage` (the regulator's auditors read all usage), both paginated.

use crate::access::{caller, Role};
use crate::error::{err, TxResult};
use crate::keys;
use crate::support::{from_json, now, page_size, Arg};
use crate::tx::authorize::{grant_error, require_channel};
use crate::tx::status::load_licence;
use crate::Settings;
use elicense_model::grant::TRAIL_FRESHNESS_SECS;
use elicense_model::{AuditUsageRequest, ErrorCode, HolderKey, HolderUsageRequest, UsagePage};
use fabric_chaincode::contract::Context;
use fabric_chaincode::{ChaincodeStub, QueryIterator};

async fn page<S: ChaincodeStub>(
    stub: &S,
    attrs: &[&str],
    size: Option<u32>,
    bookmark: &str,
) -> TxResult<UsagePage> {
    let (mut it, meta) = stub
        .get_state_by_partial_composite_key_with_pagination(
            keys::USAGE,
            attrs,
            page_size(size),
            bookmark,
        )
        .await?;
    let mut records = Vec::new();
    while let Some(kv) = it.next().await? {
        records.push(from_json("usage record", &kv.value)?);
    }
    Ok(UsagePage {
        records,
        bookmark: meta.bookmark,
    })
}

/// `HolderUsage`.
pub async fn holder_usage<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<HolderUsageRequest>,),
) -> TxResult<UsagePage> {
    let stub = ctx.stub();
    caller(stub)?;
    let req = arg.get()?;
    let r = &req.signed.request;
    require_channel(stub, &r.channel)?;
    let licence = load_licence(stub, &r.licence_id).await?;
    let holder = HolderKey::from_pem(&licence.holder_key)
        .map_err(|e| err(ErrorCode::Internal, format!("stored holder key: {e}")))?;
    req.signed.verify(&holder).map_err(grant_error)?;
    if !r.is_fresh(now(stub)?) {
        return Err(err(
            ErrorCode::StaleRequest,
            format!("trail request must be signed within {TRAIL_FRESHNESS_SECS} seconds of the transaction"),
        ));
    }
    page(stub, &[licence.id.as_str()], req.page_size, &req.bookmark).await
}

/// `AuditUsage`.
pub async fn audit_usage<S: ChaincodeStub>(
    ctx: Context<S>,
    settings: &Settings,
    (arg,): (Arg<AuditUsageRequest>,),
) -> TxResult<UsagePage> {
    let stub = ctx.stub();
    caller(stub)?.require(Role::Auditor, &settings.regulator_msp)?;
    let req = arg.get()?;
    match &req.licence_id {
        Some(id) => page(stub, &[id.as_str()], req.page_size, &req.bookmark).await,
        None => page(stub, &[], req.page_size, &req.bookmark).await,
    }
}
