//! `Withdraw`: anyone relays a holder-signed withdrawal; the grant is unusable from then on.

use crate::access::caller;
use crate::error::{err, TxResult};
use crate::keys;
use crate::support::{emit, get_json, mark, put_json, Arg};
use crate::tx::authorize::{grant_error, require_channel};
use crate::tx::status::load_licence;
use elicense_model::{
    events, ErrorCode, GrantId, GrantRecord, HolderKey, LicenceEvent, SignedWithdrawal,
};
use fabric_chaincode::contract::Context;
use fabric_chaincode::ChaincodeStub;

/// Reads a grant record or fails with `NOT_FOUND`.
pub async fn load_grant<S: ChaincodeStub>(stub: &S, id: &GrantId) -> TxResult<GrantRecord> {
    get_json(stub, "grant", &keys::grant(id.as_str())?)
        .await?
        .ok_or_else(|| err(ErrorCode::NotFound, format!("grant {id} does not exist")))
}

/// `Withdraw`.
pub async fn withdraw<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<SignedWithdrawal>,),
) -> TxResult<GrantRecord> {
    let stub = ctx.stub();
    let who = caller(stub)?;
    let signed = arg.get()?;
    require_channel(stub, &signed.withdrawal.channel)?;
    let record = load_grant(stub, &signed.withdrawal.grant_id).await?;
    let licence = load_licence(stub, &record.grant.licence_id).await?;
    let holder = HolderKey::from_pem(&licence.holder_key)
        .map_err(|e| err(ErrorCode::Internal, format!("stored holder key: {e}")))?;
    signed.verify(&holder).map_err(grant_error)?;
    let m = mark(stub)?;
    let grant_id = record.id.clone();
    let record = record.state_at(m.at).withdraw(m.clone())?;
    put_json(stub, &keys::grant(grant_id.as_str())?, &record).await?;
    // The code can never be used again: drop its salt from the issuer's collection.
    stub.del_private_data(
        &keys::implicit_collection(&record.issuer_msp),
        &keys::code_salt(grant_id.as_str())?,
    )
    .await?;
    emit(
        stub,
        events::GRANT_WITHDRAWN,
        &LicenceEvent {
            licence_id: Some(licence.id.clone()),
            grant_id: Some(grant_id),
            licence_type: Some(licence.licence_type.clone()),
            msp_id: who.msp_id,
            tx_id: m.tx_id,
        },
    )?;
    Ok(record)
}
