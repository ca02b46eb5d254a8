//! `ReadLicence`, `LicenceHistory`, `ReadGrant`: public records for channel members.

use crate::access::caller;
use crate::error::TxResult;
use crate::keys;
use crate::support::{from_json, Arg};
use crate::tx::status::load_licence;
use crate::tx::withdraw::load_grant;
use elicense_model::{GrantQuery, GrantRecord, HistoryEntry, LicenceQuery, LicenceRecord};
use fabric_chaincode::contract::Context;
use fabric_chaincode::{ChaincodeStub, QueryIterator};

/// `ReadLicence`.
pub async fn read_licence<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<LicenceQuery>,),
) -> TxResult<LicenceRecord> {
    caller(ctx.stub())?;
    let q = arg.get()?;
    load_licence(ctx.stub(), &q.licence_id).await
}

/// `LicenceHistory`: every committed version of the record, newest first.
pub async fn licence_history<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<LicenceQuery>,),
) -> TxResult<Vec<HistoryEntry>> {
    let stub = ctx.stub();
    caller(stub)?;
    let q = arg.get()?;
    let mut it = stub
        .get_history_for_key(&keys::licence(q.licence_id.as_str())?)
        .await?;
    let mut out = Vec::new();
    while let Some(m) = it.next().await? {
        let record = if m.is_delete || m.value.is_empty() {
            None
        } else {
            Some(from_json("licence", &m.value)?)
        };
        out.push(HistoryEntry {
            tx_id: m.tx_id,
            at: m.timestamp.map(|t| t.seconds).unwrap_or_default(),
            record,
        });
    }
    Ok(out)
}

/// `ReadGrant`.
pub async fn read_grant<S: ChaincodeStub>(
    ctx: Context<S>,
    (arg,): (Arg<GrantQuery>,),
) -> TxResult<GrantRecord> {
    caller(ctx.stub())?;
    let q = arg.get()?;
    load_grant(ctx.stub(), &q.grant_id).await
}
