//! The chaincode stub: everything a chaincode can ask of its transaction, at parity with Go's
//! `shim.ChaincodeStubInterface`.
//!
//! [`ChaincodeStub`] is implemented by the peer-backed stub the server hands to each transaction
//! and by [`MockStub`](crate::mock::MockStub) for tests. It is used through generics (`S:
//! ChaincodeStub`), never as `dyn`, so calls compile to direct calls.
//!
//! Semantics follow Fabric, not a naive map: reads (`get_state`, ranges, history, private data)
//! see *committed* state only — a transaction does not read its own writes — and writes become
//! visible when the transaction commits.

use std::future::Future;

use crate::composite;
use crate::error::Result;
use crate::types::{
    KeyModification, QueryResponseMetadata, Response, SignedProposal, Timestamp, TransientMap, KV,
};

/// A result iterator of a range, partial composite key, rich or history query.
///
/// Pages are fetched from the peer on demand (QUERY_STATE_NEXT). An iterator closes itself: once
/// exhausted the peer has released it, and one dropped early is closed (QUERY_STATE_CLOSE) before
/// the transaction's next request to the peer or its completion. [`close`](Self::close) closes it
/// at once.
pub trait QueryIterator: Send {
    /// What the iterator yields: [`KV`] or [`KeyModification`].
    type Item: Send;

    /// The next result, or `None` when the query is exhausted.
    fn next(&mut self) -> impl Future<Output = Result<Option<Self::Item>>> + Send;

    /// Closes the iterator now.
    fn close(self) -> impl Future<Output = Result<()>> + Send;

    /// Drains the iterator into a vector.
    fn collect_all(mut self) -> impl Future<Output = Result<Vec<Self::Item>>> + Send
    where
        Self: Sized,
    {
        async move {
            let mut out = Vec::new();
            while let Some(item) = self.next().await? {
                out.push(item);
            }
            Ok(out)
        }
    }
}

/// The chaincode's view of one transaction. Cheap to clone: clones share the transaction.
///
/// Methods that talk to the peer are `async`; their futures are `Send` so a transaction can run on
/// any runtime thread. Values are returned as `Option<Vec<u8>>`: `None` when the key does not
/// exist (Fabric does not distinguish an empty value from a missing key).
pub trait ChaincodeStub: Clone + Send + Sync + 'static {
    /// Iterator over state query results.
    type StateIterator: QueryIterator<Item = KV>;
    /// Iterator over a key's history.
    type HistoryIterator: QueryIterator<Item = KeyModification>;

    // ---- transaction context -------------------------------------------------------------

    /// The arguments of the invocation, the function name first (`GetArgs`).
    fn args(&self) -> &[Vec<u8>];

    /// The arguments as strings (lossy for non-UTF-8 bytes) (`GetStringArgs`).
    fn string_args(&self) -> Vec<String> {
        self.args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// The first argument as the function name and the rest as parameters
    /// (`GetFunctionAndParameters`).
    fn function_and_parameters(&self) -> (String, Vec<String>) {
        let mut args = self.string_args();
        if args.is_empty() {
            return (String::new(), Vec::new());
        }
        let function = args.remove(0);
        (function, args)
    }

    /// All arguments concatenated (`GetArgsSlice`).
    fn args_slice(&self) -> Vec<u8> {
        self.args().concat()
    }

    /// The transaction ID (`GetTxID`).
    fn tx_id(&self) -> &str;

    /// The channel the transaction runs on (`GetChannelID`).
    fn channel_id(&self) -> &str;

    /// The serialized identity (`msp.SerializedIdentity`) of the proposal's creator
    /// (`GetCreator`); empty when the transaction carries no proposal.
    fn creator(&self) -> &[u8];

    /// The proposal's transient data (`GetTransient`).
    fn transient(&self) -> &TransientMap;

    /// The proposal binding: SHA-256 over nonce ‖ creator ‖ epoch (8 bytes little-endian)
    /// (`GetBinding`).
    fn binding(&self) -> &[u8];

    /// The client's signed proposal, if the transaction carries one (`GetSignedProposal`).
    fn signed_proposal(&self) -> Option<&SignedProposal>;

    /// The transaction timestamp from the proposal's channel header (`GetTxTimestamp`): the only
    /// clock a deterministic chaincode may read.
    fn tx_timestamp(&self) -> Result<Timestamp>;

    /// Decorations the peer passed with the input (`GetDecorations`).
    fn decorations(&self) -> &std::collections::BTreeMap<String, Vec<u8>>;

    /// Sets the transaction's event; a later call replaces an earlier one (`SetEvent`).
    fn set_event(&self, name: &str, payload: impl Into<Vec<u8>>) -> Result<()>;

    // ---- public state ----------------------------------------------------------------------

    /// The committed value of `key` (`GetState`).
    fn get_state(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// The committed values of several keys, in order (`GetMultipleStates`). Uses
    /// GET_STATE_MULTIPLE when the peer offers it.
    fn get_multiple_states(
        &self,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>>> + Send;

    /// Writes `value` to `key` when the transaction commits (`PutState`).
    fn put_state(
        &self,
        key: &str,
        value: impl Into<Vec<u8>> + Send,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes `key` when the transaction commits (`DelState`).
    fn del_state(&self, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Sets the key-level endorsement policy of `key` (`SetStateValidationParameter`); `policy` is
    /// a serialized `common.SignaturePolicyEnvelope`, e.g. from
    /// [`KeyEndorsementPolicy`](crate::statebased::KeyEndorsementPolicy).
    fn set_state_validation_parameter(
        &self,
        key: &str,
        policy: impl Into<Vec<u8>> + Send,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The key-level endorsement policy of `key`, if any (`GetStateValidationParameter`).
    fn get_state_validation_parameter(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// Keys in `[start_key, end_key)` (`GetStateByRange`). An empty `start_key` starts after the
    /// composite key namespace; an empty `end_key` means no upper bound.
    fn get_state_by_range(
        &self,
        start_key: &str,
        end_key: &str,
    ) -> impl Future<Output = Result<Self::StateIterator>> + Send;

    /// One page of a range query (`GetStateByRangeWithPagination`).
    fn get_state_by_range_with_pagination(
        &self,
        start_key: &str,
        end_key: &str,
        page_size: i32,
        bookmark: &str,
    ) -> impl Future<Output = Result<(Self::StateIterator, QueryResponseMetadata)>> + Send;

    /// Composite keys that start with `object_type` and `attributes`
    /// (`GetStateByPartialCompositeKey`).
    fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> impl Future<Output = Result<Self::StateIterator>> + Send;

    /// One page of a partial composite key query
    /// (`GetStateByPartialCompositeKeyWithPagination`).
    fn get_state_by_partial_composite_key_with_pagination(
        &self,
        object_type: &str,
        attributes: &[&str],
        page_size: i32,
        bookmark: &str,
    ) -> impl Future<Output = Result<(Self::StateIterator, QueryResponseMetadata)>> + Send;

    /// A rich (CouchDB) query (`GetQueryResult`). With LevelDB the peer refuses it and the
    /// peer's error is returned.
    fn get_query_result(
        &self,
        query: &str,
    ) -> impl Future<Output = Result<Self::StateIterator>> + Send;

    /// One page of a rich query (`GetQueryResultWithPagination`).
    fn get_query_result_with_pagination(
        &self,
        query: &str,
        page_size: i32,
        bookmark: &str,
    ) -> impl Future<Output = Result<(Self::StateIterator, QueryResponseMetadata)>> + Send;

    /// Every committed modification of `key`, newest first (`GetHistoryForKey`).
    fn get_history_for_key(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Self::HistoryIterator>> + Send;

    // ---- composite keys --------------------------------------------------------------------

    /// Builds a composite key (`CreateCompositeKey`).
    fn create_composite_key(&self, object_type: &str, attributes: &[&str]) -> Result<String> {
        composite::create_composite_key(object_type, attributes)
    }

    /// Splits a composite key into object type and attributes (`SplitCompositeKey`).
    fn split_composite_key(&self, composite_key: &str) -> Result<(String, Vec<String>)> {
        composite::split_composite_key(composite_key)
    }

    // ---- private data ----------------------------------------------------------------------

    /// The committed private value of `key` in `collection` (`GetPrivateData`).
    fn get_private_data(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// Several private values of one collection, in order (`GetMultiplePrivateData`).
    fn get_multiple_private_data(
        &self,
        collection: &str,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>>> + Send;

    /// The SHA-256 hash of a private value, readable by any channel member
    /// (`GetPrivateDataHash`).
    fn get_private_data_hash(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// Writes a private value when the transaction commits (`PutPrivateData`).
    fn put_private_data(
        &self,
        collection: &str,
        key: &str,
        value: impl Into<Vec<u8>> + Send,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a private value when the transaction commits (`DelPrivateData`).
    fn del_private_data(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a private value and purges its history (`PurgePrivateData`).
    fn purge_private_data(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Private keys in `[start_key, end_key)` of `collection` (`GetPrivateDataByRange`).
    fn get_private_data_by_range(
        &self,
        collection: &str,
        start_key: &str,
        end_key: &str,
    ) -> impl Future<Output = Result<Self::StateIterator>> + Send;

    /// Private composite keys with the given prefix (`GetPrivateDataByPartialCompositeKey`).
    fn get_private_data_by_partial_composite_key(
        &self,
        collection: &str,
        object_type: &str,
        attributes: &[&str],
    ) -> impl Future<Output = Result<Self::StateIterator>> + Send;

    /// A rich query over a collection (`GetPrivateDataQueryResult`).
    fn get_private_data_query_result(
        &self,
        collection: &str,
        query: &str,
    ) -> impl Future<Output = Result<Self::StateIterator>> + Send;

    /// Sets the key-level endorsement policy of a private key
    /// (`SetPrivateDataValidationParameter`).
    fn set_private_data_validation_parameter(
        &self,
        collection: &str,
        key: &str,
        policy: impl Into<Vec<u8>> + Send,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The key-level endorsement policy of a private key (`GetPrivateDataValidationParameter`).
    fn get_private_data_validation_parameter(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    // ---- other chaincodes ------------------------------------------------------------------

    /// Calls another chaincode in this transaction (`InvokeChaincode`); an empty `channel` means
    /// this channel. Failures come back as a status 500 [`Response`], as in Go.
    fn invoke_chaincode(
        &self,
        chaincode_name: &str,
        args: Vec<Vec<u8>>,
        channel: &str,
    ) -> impl Future<Output = Response> + Send;
}
