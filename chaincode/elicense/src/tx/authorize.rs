//! `Authorize`: anyone relays a holder-signed grant; the contract checks the signature against
//! the licence's holder key and stores the grant under its own key.
//!
//! The grant key gets a key-level policy naming the licence's issuer, and the code salt (sent as
//! transient data) is written to the issuer's implicit collection: so every later verify must be
//! endorsed by the issuer's peer, the only place the code can be checked.

use crate::access::caller;
use crate::error::{err, TxResult};
use crate::support::{emit, get_json, mark, put_json, transient_bytes, Arg};
use crate::tx::status::load_licence;
use crate::{keys, policy};
use elicense_model::grant::GrantError;
use elicense_model::{
    events, CodeSalt, ErrorCode, GrantRecord, HolderKey, LicenceEvent, SignedGrant,
    TRANSIENT_CODE_SALT,
};
use fabric_chaincode::contract::Context;
use fabric_chaincode::ChaincodeStub;

/// Maps a grant validation or signature failure to its contract error.
pub fn grant_error(e: GrantError) -> crate::error::TxError {
    match e {
        GrantError::Signature(s) => err(ErrorCode::BadSignature, format!("holder {s}")),
        other => err(ErrorCode::InvalidArgument, other.to_string()),
    }
}

/// Requires a message's channel to be this transaction's.
pub fn require_channel<S: ChaincodeStub>(stub: &S, channel: &str) -> TxResult<()> {
    if channel != stub.channel_id() {
        return Err(err(
            ErrorCode::InvalidArgument,
            format!(
                "signed for channel {channel}, submitted on {}",
                stub.channel_id()
            ),
        ));
    }
    Ok(())
}

/// `Authorize`.
pub async fn authorize<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<SignedGrant>,),
) -> TxResult<GrantRecord> {
    let stub = ctx.stub();
    let who = caller(stub)?;
    let signed = arg.get()?;
    let grant = &signed.grant;
    require_channel(stub, &grant.channel)?;
    let licence = load_licence(stub, &grant.licence_id).await?;
    let holder = HolderKey::from_pem(&licence.holder_key)
        .map_err(|e| err(ErrorCode::Internal, format!("stored holder key: {e}")))?;
    let grant_id = signed.verify(&holder).map_err(grant_error)?;
    if let Some(f) = grant
        .fields
        .iter()
        .find(|f| !licence.commitments.contains_key(*f))
    {
        return Err(err(
            ErrorCode::InvalidArgument,
            format!("licence {} has no field {f}", licence.id),
        ));
    }
    let now = crate::support::now(stub)?;
    licence.check_usable(now)?;
    if grant.not_after < now {
        return Err(err(
            ErrorCode::GrantExpired,
            format!("grant {grant_id} has already expired"),
        ));
    }
    let code_salt =
        CodeSalt::from_slice(transient_bytes(stub, TRANSIENT_CODE_SALT)?).map_err(|e| {
            err(
                ErrorCode::InvalidArgument,
                format!("transient `{TRANSIENT_CODE_SALT}`: {e}"),
            )
        })?;
    let key = keys::grant(grant_id.as_str())?;
    if get_json::<_, GrantRecord>(stub, "grant", &key)
        .await?
        .is_some()
    {
        return Err(err(
            ErrorCode::AlreadyExists,
            format!("grant {grant_id} is already authorised"),
        ));
    }
    let m = mark(stub)?;
    let record = GrantRecord::new(
        grant_id.clone(),
        grant.clone(),
        signed.signature.clone(),
        licence.issuer_msp.clone(),
        m.clone(),
    );
    put_json(stub, &key, &record).await?;
    stub.set_state_validation_parameter(&key, policy::peers_of(&[&licence.issuer_msp]))
        .await?;
    stub.put_private_data(
        &keys::implicit_collection(&licence.issuer_msp),
        &keys::code_salt(grant_id.as_str())?,
        code_salt.as_bytes().to_vec(),
    )
    .await?;
    emit(
        stub,
        events::GRANT_AUTHORIZED,
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
