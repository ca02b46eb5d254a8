//! `Verify`: a clerk of the grantee uses a grant at the window.
//!
//! Checks, in order (each failure is a typed error and changes nothing):
//! caller is a clerk of the grantee MSP → grant usable now (not withdrawn, spent, locked,
//! expired, not-yet-valid) → same matter → presented fields allowed by the grant → licence active
//! and within validity → the code salt is on this peer (the issuer's) → **code** → each presented
//! value opens its commitment.
//!
//! A wrong code is *not* an error: a failed transaction is never committed, so an error could not
//! count towards the lockout. A wrong code therefore commits: it increments the grant's failed
//! attempts (locking it at the fifth), writes a usage record with result `wrong_code` or
//! `locked`, and returns [`VerifyOutcome::WrongCode`] / [`VerifyOutcome::Locked`], which the SDK
//! turns into a `WRONG_CODE` / `GRANT_LOCKED` error after commit.
//!
//! Both a successful and a wrong-code verify read and write the grant key, so two verifies of one
//! grant racing in a block cannot both commit: the second fails Fabric's MVCC check.
//!
//! Limitation inherent to Fabric: the lockout counts *committed* attempts. A clerk who collects
//! endorsements without submitting them learns the outcome without it being counted; only clerks
//! of the grantee organisation can do so, and only through the issuer's peer, which logs
//! proposals.

use crate::access::{caller, Role};
use crate::error::{err, TxResult};
use crate::keys;
use crate::support::{emit, mark, owned_private_data, put_json, transient_json, Arg};
use crate::tx::status::load_licence;
use crate::tx::withdraw::load_grant;
use elicense_model::{
    events, CodeSalt, ContractError, ErrorCode, GrantStatus, LicenceEvent, Presentation,
    UsageRecord, UsageResult, VerifyOutcome, VerifyRequest, VerifyResult, RETRIEVE_WINDOW_SECS,
    TRANSIENT_PRESENTATION,
};
use fabric_chaincode::contract::Context;
use fabric_chaincode::ChaincodeStub;

/// `Verify`.
pub async fn verify<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<VerifyRequest>,),
) -> TxResult<VerifyResult> {
    let stub = ctx.stub();
    let who = caller(stub)?;
    who.require_role(Role::Clerk)?;
    let req = arg.get()?;
    let presentation: Presentation = transient_json(stub, TRANSIENT_PRESENTATION)?;
    let record = load_grant(stub, &req.grant_id).await?;
    who.require(Role::Clerk, &record.grant.grantee_msp)?;
    let m = mark(stub)?;
    let active = record.state_at(m.at).require_active()?;
    let grant = &active.record().grant;
    if req.matter != grant.matter {
        return Err(err(
            ErrorCode::WrongMatter,
            format!("grant {} is for another matter", req.grant_id),
        ));
    }
    let not_granted: Vec<String> = presentation
        .fields
        .keys()
        .filter(|f| !grant.allows_field(f))
        .cloned()
        .collect();
    if !not_granted.is_empty() {
        return Err(ContractError::new(
            ErrorCode::FieldNotGranted,
            format!("fields not granted: {}", not_granted.join(", ")),
        )
        .with_fields(not_granted)
        .into());
    }
    let licence = load_licence(stub, &grant.licence_id).await?;
    licence.check_usable(m.at)?;

    let collection = keys::implicit_collection(&active.record().issuer_msp);
    let salt_key = keys::code_salt(req.grant_id.as_str())?;
    let salt = owned_private_data(stub, &collection, &salt_key, || {
        format!(
            "the code of grant {} can only be checked on a peer of {}",
            req.grant_id,
            active.record().issuer_msp
        )
    })
    .await?;
    let salt = CodeSalt::from_slice(&salt)
        .map_err(|_| err(ErrorCode::Internal, "stored code salt is corrupt"))?;
    let presented: Vec<String> = presentation.fields.keys().cloned().collect();
    let usage = |result: UsageResult| UsageRecord {
        licence_id: licence.id.clone(),
        licence_type: licence.licence_type.clone(),
        grant_id: req.grant_id.clone(),
        grantee_msp: who.msp_id.clone(),
        clerk: who.id.clone(),
        matter: req.matter.clone(),
        fields: presented.clone(),
        at: m.at,
        tx_id: m.tx_id.clone(),
        result,
    };
    let event = LicenceEvent {
        licence_id: Some(licence.id.clone()),
        grant_id: Some(req.grant_id.clone()),
        licence_type: Some(licence.licence_type.clone()),
        msp_id: who.msp_id.clone(),
        tx_id: m.tx_id.clone(),
    };
    let grant_key = keys::grant(req.grant_id.as_str())?;
    let usage_key = keys::usage(licence.id.as_str(), m.at, &m.tx_id)?;

    if !grant.code_check.matches(&salt, &presentation.code) {
        let outcome = active.wrong_code(m.clone());
        put_json(stub, &grant_key, &outcome.record).await?;
        let (result, verdict, name) = if outcome.record.status == GrantStatus::Locked {
            stub.del_private_data(&collection, &salt_key).await?;
            (
                UsageResult::Locked,
                VerifyOutcome::Locked,
                events::GRANT_LOCKED,
            )
        } else {
            (
                UsageResult::WrongCode,
                VerifyOutcome::WrongCode {
                    attempts_left: outcome.attempts_left,
                },
                events::GRANT_CODE_REJECTED,
            )
        };
        put_json(stub, &usage_key, &usage(result)).await?;
        emit(stub, name, &event)?;
        return Ok(VerifyResult {
            grant_id: req.grant_id,
            licence_id: licence.id,
            matter: req.matter,
            tx_id: m.tx_id,
            outcome: verdict,
        });
    }

    let mismatched: Vec<String> = presentation
        .fields
        .iter()
        .filter(|(name, opening)| {
            licence
                .commitments
                .get(*name)
                .is_none_or(|c| *c != opening.commitment(name))
        })
        .map(|(name, _)| name.clone())
        .collect();
    if !mismatched.is_empty() {
        return Err(ContractError::new(
            ErrorCode::FieldMismatch,
            format!(
                "presented values do not match the licence for fields: {}",
                mismatched.join(", ")
            ),
        )
        .with_fields(mismatched)
        .into());
    }

    let not_presented: Vec<String> = grant
        .fields
        .iter()
        .filter(|f| !presentation.fields.contains_key(*f))
        .cloned()
        .collect();
    let record = active.spend(m.clone());
    put_json(stub, &grant_key, &record).await?;
    if record.status == GrantStatus::Spent {
        // No use left: the code can never be checked again.
        stub.del_private_data(&collection, &salt_key).await?;
    }
    put_json(stub, &usage_key, &usage(UsageResult::Verified)).await?;
    emit(stub, events::GRANT_VERIFIED, &event)?;
    Ok(VerifyResult {
        grant_id: req.grant_id,
        licence_id: licence.id,
        matter: req.matter,
        tx_id: m.tx_id,
        outcome: VerifyOutcome::Verified {
            matched: presented,
            not_presented,
            uses_left: record.uses_left,
            retrieve_until: m.at + RETRIEVE_WINDOW_SECS,
        },
    })
}
