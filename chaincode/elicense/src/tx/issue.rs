//! `Issue`: an issuer records a licence once. The public record carries commitments only; the
//! values and salts arrive as transient data and go to the issuer's implicit collection.

use crate::access::{caller, Role};
use crate::error::{err, TxResult};
use crate::support::{emit, mark, put_json, to_json, transient_json, Arg};
use crate::tx::catalogue::load_type_and;
use crate::{keys, policy};
use elicense_model::{
    events, ErrorCode, HolderKey, IssueRequest, LicenceEvent, LicencePrivate, LicenceRecord,
    LicenceStatus, TRANSIENT_LICENCE,
};
use fabric_chaincode::contract::Context;
use fabric_chaincode::ChaincodeStub;

/// Longest field value, in bytes.
pub const MAX_VALUE_LEN: usize = 4096;

/// `Issue`.
pub async fn issue<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<IssueRequest>,),
) -> TxResult<LicenceRecord> {
    let stub = ctx.stub();
    let who = caller(stub)?;
    who.require_role(Role::Issuer)?;
    let req = arg.get()?;
    let key = keys::licence(req.licence_id.as_str())?;
    let (licence_type, existing) = load_type_and(stub, &req.licence_type, &key).await?;
    let issuer = licence_type.issuer(&who.msp_id).ok_or_else(|| {
        err(
            ErrorCode::NotAllowed,
            format!("{} does not issue {}", who.msp_id, licence_type.code),
        )
    })?;
    if req.licence_id.type_tag() != licence_type.id_tag
        || req.licence_id.issuer_code() != issuer.code
    {
        return Err(err(
            ErrorCode::InvalidArgument,
            format!(
                "licence identifier must start {}-{}-",
                licence_type.id_tag, issuer.code
            ),
        ));
    }
    let holder_key = HolderKey::from_pem(&req.holder_key)
        .map_err(|e| err(ErrorCode::InvalidArgument, e.to_string()))?;
    if req.not_after < req.not_before {
        return Err(err(
            ErrorCode::InvalidArgument,
            "not_after is before not_before",
        ));
    }
    let private: LicencePrivate = transient_json(stub, TRANSIENT_LICENCE)?;
    let missing: Vec<&str> = licence_type
        .fields
        .iter()
        .filter(|f| !private.fields.contains_key(*f))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = private
        .fields
        .keys()
        .filter(|f| !licence_type.has_field(f))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(err(
            ErrorCode::InvalidArgument,
            format!(
                "fields must be exactly those of {}: missing [{}], unknown [{}]",
                licence_type.code,
                missing.join(", "),
                extra.join(", ")
            ),
        ));
    }
    if let Some((name, _)) = private
        .fields
        .iter()
        .find(|(_, o)| o.value.len() > MAX_VALUE_LEN)
    {
        return Err(err(
            ErrorCode::InvalidArgument,
            format!("value of field {name} is longer than {MAX_VALUE_LEN} bytes"),
        ));
    }

    if existing.is_some() {
        return Err(err(
            ErrorCode::AlreadyExists,
            format!("licence {} already exists on this channel", req.licence_id),
        ));
    }
    let m = mark(stub)?;
    let record = LicenceRecord {
        id: req.licence_id.clone(),
        licence_type: licence_type.code.clone(),
        issuer_msp: who.msp_id.clone(),
        holder_key: holder_key.to_pem(),
        commitments: private.commitments(),
        not_before: req.not_before,
        not_after: req.not_after,
        status: LicenceStatus::Active,
        status_reason: String::new(),
        issued: m.clone(),
        updated: m.clone(),
    };
    put_json(stub, &key, &record).await?;
    stub.set_state_validation_parameter(&key, policy::peers_of(&[&who.msp_id]))
        .await?;
    stub.put_private_data(
        &keys::implicit_collection(&who.msp_id),
        &key,
        to_json(&private)?,
    )
    .await?;
    emit(
        stub,
        events::LICENCE_ISSUED,
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
