//! Catalogue transactions: the regulator's admin puts licence types; anyone reads them.

use crate::access::{caller, Role};
use crate::error::{err, TxError, TxResult};
use crate::support::{emit, from_json, get_json, mark, put_json, Arg};
use crate::{keys, Settings};
use elicense_model::{events, Catalogue, ErrorCode, LicenceEvent, LicenceType, TypeQuery};
use fabric_chaincode::contract::Context;
use fabric_chaincode::{ChaincodeStub, QueryIterator};

async fn require_regulator_admin<S: ChaincodeStub>(
    stub: &S,
    settings: &Settings,
) -> TxResult<String> {
    let c = caller(stub)?;
    c.require(Role::Admin, &settings.regulator_msp)?;
    Ok(c.msp_id)
}

async fn put_type<S: ChaincodeStub>(stub: &S, t: &LicenceType) -> TxResult<()> {
    t.validate()
        .map_err(|e| err(ErrorCode::InvalidArgument, e.to_string()))?;
    put_json(stub, &keys::licence_type(&t.code)?, t).await
}

/// `PutLicenceType`: adds or replaces one licence type (regulator admin).
pub async fn put_licence_type<S: ChaincodeStub>(
    ctx: Context<S>,
    settings: &Settings,
    (arg,): (Arg<LicenceType>,),
) -> TxResult<LicenceType> {
    let stub = ctx.stub();
    let msp_id = require_regulator_admin(stub, settings).await?;
    let t = arg.get()?;
    put_type(stub, &t).await?;
    let m = mark(stub)?;
    emit(
        stub,
        events::LICENCE_TYPE_PUT,
        &LicenceEvent {
            licence_id: None,
            grant_id: None,
            licence_type: Some(t.code.clone()),
            msp_id,
            tx_id: m.tx_id,
        },
    )?;
    Ok(t)
}

/// `InitCatalogue`: puts every type of a catalogue (regulator admin), e.g. the seed fixture.
pub async fn init_catalogue<S: ChaincodeStub>(
    ctx: Context<S>,
    settings: &Settings,
    (arg,): (Arg<Catalogue>,),
) -> TxResult<Vec<LicenceType>> {
    let stub = ctx.stub();
    let msp_id = require_regulator_admin(stub, settings).await?;
    let catalogue = arg.get()?;
    catalogue
        .validate()
        .map_err(|e| err(ErrorCode::InvalidArgument, e.to_string()))?;
    for t in &catalogue.types {
        put_type(stub, t).await?;
    }
    let m = mark(stub)?;
    emit(
        stub,
        events::LICENCE_TYPE_PUT,
        &LicenceEvent {
            licence_id: None,
            grant_id: None,
            licence_type: None,
            msp_id,
            tx_id: m.tx_id,
        },
    )?;
    Ok(catalogue.types)
}

/// Reads a licence type or fails with `NOT_FOUND`.
pub async fn load_type<S: ChaincodeStub>(stub: &S, code: &str) -> TxResult<LicenceType> {
    get_json(stub, "licence type", &keys::licence_type(code)?)
        .await?
        .ok_or_else(|| type_not_found(code))
}

/// [`load_type`] and the value of `other` (`None` if absent or empty), read in one request to
/// the peer: a transaction that needs both waits for one round trip instead of two.
pub async fn load_type_and<S: ChaincodeStub>(
    stub: &S,
    code: &str,
    other: &str,
) -> TxResult<(LicenceType, Option<Vec<u8>>)> {
    let type_key = keys::licence_type(code)?;
    let values = stub
        .get_multiple_states(&[type_key.as_str(), other])
        .await?;
    let [licence_type, other] = <[_; 2]>::try_from(values).map_err(|_| {
        err(
            ErrorCode::Internal,
            "the peer answered a two-key read with another number of values",
        )
    })?;
    let licence_type = licence_type
        .filter(|b| !b.is_empty())
        .ok_or_else(|| type_not_found(code))?;
    Ok((
        from_json("licence type", &licence_type)?,
        other.filter(|b| !b.is_empty()),
    ))
}

fn type_not_found(code: &str) -> TxError {
    err(
        ErrorCode::NotFound,
        format!("licence type {code} is not in the catalogue"),
    )
}

/// `GetLicenceType`: one licence type.
pub async fn get_licence_type<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<TypeQuery>,),
) -> TxResult<LicenceType> {
    let q = arg.get()?;
    load_type(ctx.stub(), &q.code).await
}

/// `ListLicenceTypes`: the whole catalogue, by type code.
pub async fn list_licence_types<S: ChaincodeStub>(
    ctx: Context<S>,
    _: (),
) -> TxResult<Vec<LicenceType>> {
    let stub = ctx.stub();
    let mut it = stub
        .get_state_by_partial_composite_key(keys::TYPE, &[])
        .await?;
    let mut out = Vec::new();
    while let Some(kv) = it.next().await? {
        out.push(crate::support::from_json("licence type", &kv.value)?);
    }
    Ok(out)
}
