//! Small helpers every transaction uses: typed JSON arguments with typed errors, JSON state
//! reads and writes, the transaction clock, events and transient data.

use crate::error::{err, TxResult};
use elicense_model::{ErrorCode, LicenceEvent, TxMark};
use fabric_chaincode::ChaincodeStub;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A JSON argument whose parse error becomes an `INVALID_ARGUMENT` contract error (instead of
/// the router's free-text message), so clients always get a decodable error.
#[derive(Debug)]
pub struct Arg<T>(Result<T, String>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Arg<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(Arg(serde_json::from_value(value).map_err(|e| e.to_string())))
    }
}

impl<T> Arg<T> {
    /// The parsed argument, or `INVALID_ARGUMENT`. Arguments are public (they are in the
    /// block), so echoing the parser's message reveals nothing new.
    pub fn get(self) -> TxResult<T> {
        self.0.map_err(|e| {
            err(
                ErrorCode::InvalidArgument,
                format!("malformed argument: {e}"),
            )
        })
    }
}

/// Parses transient JSON without ever echoing its content in the error (it holds secrets).
pub fn transient_json<S: ChaincodeStub, T: DeserializeOwned>(stub: &S, name: &str) -> TxResult<T> {
    let raw = transient_bytes(stub, name)?;
    serde_json::from_slice(raw).map_err(|e| {
        err(
            ErrorCode::InvalidArgument,
            format!(
                "transient `{name}` is malformed ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })
}

/// A required transient entry.
pub fn transient_bytes<'a, S: ChaincodeStub>(stub: &'a S, name: &str) -> TxResult<&'a [u8]> {
    stub.transient()
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| {
            err(
                ErrorCode::InvalidArgument,
                format!("transient `{name}` is required"),
            )
        })
}

/// The transaction timestamp in Unix seconds: the contract's only clock.
pub fn now<S: ChaincodeStub>(stub: &S) -> TxResult<i64> {
    Ok(stub.tx_timestamp()?.seconds)
}

/// This transaction's id and timestamp.
pub fn mark<S: ChaincodeStub>(stub: &S) -> TxResult<TxMark> {
    Ok(TxMark {
        tx_id: stub.tx_id().to_owned(),
        at: now(stub)?,
    })
}

/// Canonical JSON (sorted keys, no whitespace) of a value.
pub fn to_json<T: Serialize>(value: &T) -> TxResult<Vec<u8>> {
    fabric_chaincode::json::to_canonical_vec(value)
        .map_err(|e| err(ErrorCode::Internal, format!("cannot encode JSON: {e}")))
}

/// Parses a stored value; stored values were written by this contract.
pub fn from_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> TxResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        err(
            ErrorCode::Internal,
            format!("stored {what} is corrupt: {e:?}"),
        )
    })
}

/// Reads and parses a public value.
pub async fn get_json<S: ChaincodeStub, T: DeserializeOwned>(
    stub: &S,
    what: &str,
    key: &str,
) -> TxResult<Option<T>> {
    match stub.get_state(key).await? {
        Some(bytes) if !bytes.is_empty() => Ok(Some(from_json(what, &bytes)?)),
        _ => Ok(None),
    }
}

/// Writes a public value as canonical JSON.
pub async fn put_json<S: ChaincodeStub, T: Serialize>(
    stub: &S,
    key: &str,
    value: &T,
) -> TxResult<()> {
    stub.put_state(key, to_json(value)?).await?;
    Ok(())
}

/// Sets the transaction's event: one per state change, identifiers only.
pub fn emit<S: ChaincodeStub>(stub: &S, name: &str, event: &LicenceEvent) -> TxResult<()> {
    stub.set_event(name, to_json(event)?)?;
    Ok(())
}

/// Clamps a requested page size to 1..=1000 (default 100).
pub fn page_size(requested: Option<u32>) -> i32 {
    requested.unwrap_or(100).clamp(1, 1000) as i32
}

/// What a Fabric peer answers when asked for private data it holds only the hash of (it is not
/// a member of the collection).
const ONLY_HASH_HELD: &str = "private data matching public hash version is not available";

/// Reads private data that only the owning organisation's peers hold. An absent value, and a
/// peer that holds only its hash, both fail with `PRIVATE_DATA_UNAVAILABLE` and `message`, so
/// the client learns to ask the owner's peer (instead of an internal error).
pub async fn owned_private_data<S: ChaincodeStub>(
    stub: &S,
    collection: &str,
    key: &str,
    message: impl FnOnce() -> String,
) -> TxResult<Vec<u8>> {
    match stub.get_private_data(collection, key).await {
        Ok(Some(v)) if !v.is_empty() => Ok(v),
        Ok(_) => Err(err(ErrorCode::PrivateDataUnavailable, message())),
        Err(fabric_chaincode::Error::Peer(m)) if m.contains(ONLY_HASH_HELD) => {
            Err(err(ErrorCode::PrivateDataUnavailable, message()))
        }
        Err(e) => Err(e.into()),
    }
}
