//! `Suspend`, `Reinstate`, `Revoke`: the issuer changes a licence's status with a reason. The
//! record's key history keeps every change.

use crate::access::{caller, Role};
use crate::error::{err, TxResult};
use crate::keys;
use crate::support::{emit, get_json, mark, put_json, Arg};
use elicense_model::licence::MAX_REASON_LEN;
use elicense_model::{
    events, ErrorCode, LicenceEvent, LicenceId, LicenceRecord, StatusChange, StatusRequest,
};
use fabric_chaincode::contract::Context;
use fabric_chaincode::ChaincodeStub;

/// Reads a licence record or fails with `NOT_FOUND`.
pub async fn load_licence<S: ChaincodeStub>(stub: &S, id: &LicenceId) -> TxResult<LicenceRecord> {
    get_json(stub, "licence", &keys::licence(id.as_str())?)
        .await?
        .ok_or_else(|| err(ErrorCode::NotFound, format!("licence {id} does not exist")))
}

/// Applies one status change.
pub async fn change_status<S: ChaincodeStub>(
    ctx: Context<S>,
    change: StatusChange,
    (arg,): (Arg<StatusRequest>,),
) -> TxResult<LicenceRecord> {
    let stub = ctx.stub();
    let who = caller(stub)?;
    who.require_role(Role::Issuer)?;
    let req = arg.get()?;
    if req.reason.trim().is_empty() || req.reason.len() > MAX_REASON_LEN {
        return Err(err(
            ErrorCode::InvalidArgument,
            format!("reason must be 1-{MAX_REASON_LEN} bytes"),
        ));
    }
    let mut record = load_licence(stub, &req.licence_id).await?;
    who.require(Role::Issuer, &record.issuer_msp)?;
    let m = mark(stub)?;
    record.change_status(change, &req.reason, m.clone())?;
    put_json(stub, &keys::licence(record.id.as_str())?, &record).await?;
    let name = match change {
        StatusChange::Suspend => events::LICENCE_SUSPENDED,
        StatusChange::Reinstate => events::LICENCE_REINSTATED,
        StatusChange::Revoke => events::LICENCE_REVOKED,
    };
    emit(
        stub,
        name,
        &LicenceEvent {
            licence_id: Some(record.id.clone()),
            grant_id: None,
            licence_type: Some(record.licence_type.clone()),
            msp_id: who.msp_id,
            tx_id: m.tx_id,
        },
    )?;
    Ok(record)
}
