//! Chaincode support: a peer hosting chaincodes served as external services (CCaaS). Mirrors
//! Fabric's `core/chaincode` (`chaincode_support.go`, `handler.go`, the external builder's
//! `connection.json`).
//!
//! The peer **dials** each chaincode server with the settings of its `connection.json`
//! ([`ConnectionInfo`]); the chaincode REGISTERs with its package ID (`label:sha256-hex`), the
//! peer answers REGISTERED then READY — offering write batching and multi-key reads — and then
//! sends TRANSACTION messages and serves the chaincode's ledger requests from the transaction's
//! simulator ([`handler`]). A connection that drops (a chaincode restart) is forgotten, and the
//! next transaction dials again, retrying until the dial timeout.

pub mod handler;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_protos::protos::chaincode_message::Type as MsgType;
use fabric_protos::protos::{
    ChaincodeEvent, ChaincodeInput, ChaincodeMessage, Response, SignedProposal,
};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::endorser::simulator::TxSimulator;
pub use handler::Handler;

/// The error text Fabric uses when a chaincode does not answer in time.
pub const ERROR_EXECUTION_TIMEOUT: &str = "timeout expired while executing transaction";
/// The error text Fabric uses when the chaincode stream ends during a transaction.
pub const ERROR_STREAM_TERMINATED: &str = "chaincode stream terminated";

/// Fabric's default `chaincode.executetimeout`.
pub const DEFAULT_EXECUTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Fabric's default dial timeout for a CCaaS connection (`connection.json` `dial_timeout`).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Results per `QueryResponse` batch (Fabric's `maxResultLimit`).
pub const QUERY_BATCH: usize = 100;
/// Results per query in total (Fabric's `ledger.state.totalQueryLimit`).
pub const TOTAL_QUERY_LIMIT: usize = 100_000;
/// Records per WRITE_BATCH_STATE and keys per GET_STATE_MULTIPLE the peer offers in READY
/// (Fabric's `chaincode.runtimeParams` defaults).
pub const MAX_BATCH: u32 = 1000;

/// Errors of chaincode support.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChaincodeError {
    /// The chaincode server could not be reached or broke the handshake.
    #[error("could not launch chaincode {package_id}: {reason}")]
    Launch {
        /// The package ID.
        package_id: String,
        /// Why.
        reason: String,
    },
    /// The connection settings are unusable.
    #[error("connection.json: {0}")]
    Connection(String),
    /// No chaincode server is known for this package ID.
    #[error("chaincode {0} is not installed on this peer")]
    NotInstalled(String),
    /// The execution failed (timeout, stream terminated, duplicate context...).
    #[error("{0}")]
    Execution(String),
}

/// Go-style duration strings as `connection.json` carries them (`10s`, `500ms`, `1m`).
fn parse_go_duration(s: &str) -> Result<Duration, ChaincodeError> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .ok_or_else(|| ChaincodeError::Connection(format!("bad dial_timeout {s:?}")))?;
    let n: f64 = num
        .parse()
        .map_err(|_| ChaincodeError::Connection(format!("bad dial_timeout {s:?}")))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(ChaincodeError::Connection(format!(
                "bad dial_timeout {s:?}"
            )))
        }
    };
    Ok(Duration::from_secs_f64(secs.max(0.0)))
}

/// A CCaaS `connection.json`, as Fabric's external builders read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// `host:port` of the chaincode server.
    pub address: String,
    /// How long to try dialling, Go duration syntax (`10s`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dial_timeout: String,
    /// Whether the server serves TLS.
    #[serde(default)]
    pub tls_required: bool,
    /// Whether the server wants the peer's client certificate.
    #[serde(default)]
    pub client_auth_required: bool,
    /// PEM of the peer's client key (mutual TLS).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_key: String,
    /// PEM of the peer's client certificate (mutual TLS).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_cert: String,
    /// PEM of the CA that signed the server's certificate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root_cert: String,
}

impl ConnectionInfo {
    /// A plaintext connection to `address`.
    pub fn plaintext(address: impl Into<String>) -> Self {
        ConnectionInfo {
            address: address.into(),
            ..Default::default()
        }
    }

    /// Parses `connection.json` text.
    pub fn from_json(text: &str) -> Result<Self, ChaincodeError> {
        let info: ConnectionInfo =
            serde_json::from_str(text).map_err(|e| ChaincodeError::Connection(e.to_string()))?;
        info.check()?;
        Ok(info)
    }

    /// Fabric's checks: an address, and with TLS a root certificate, and with client auth a key
    /// and certificate.
    pub fn check(&self) -> Result<(), ChaincodeError> {
        if self.address.is_empty() {
            return Err(ChaincodeError::Connection(
                "chaincode address not provided".into(),
            ));
        }
        if self.tls_required && self.root_cert.is_empty() {
            return Err(ChaincodeError::Connection(
                "root cert must be provided when tls_required is true".into(),
            ));
        }
        if self.tls_required
            && self.client_auth_required
            && (self.client_key.is_empty() || self.client_cert.is_empty())
        {
            return Err(ChaincodeError::Connection(
                "client key and cert must be provided when client auth is required".into(),
            ));
        }
        Ok(())
    }

    /// The dial timeout (default 10 s).
    pub fn dial_timeout(&self) -> Result<Duration, ChaincodeError> {
        if self.dial_timeout.is_empty() {
            Ok(DEFAULT_DIAL_TIMEOUT)
        } else {
            parse_go_duration(&self.dial_timeout)
        }
    }
}

/// Everything a chaincode execution needs besides the chaincode: the transaction's identity and
/// its simulator (shared with chaincodes it invokes).
#[derive(Clone)]
pub struct TxParams {
    /// Channel.
    pub channel_id: String,
    /// Transaction ID.
    pub txid: String,
    /// The client's signed proposal (sent to the chaincode, as Fabric does).
    pub signed_proposal: Option<SignedProposal>,
    /// The proposal's creator, a serialized `msp.SerializedIdentity` (collection access checks).
    pub creator: Vec<u8>,
    /// The simulator.
    pub simulator: Arc<Mutex<TxSimulator>>,
}

impl std::fmt::Debug for TxParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxParams")
            .field("channel_id", &self.channel_id)
            .field("txid", &self.txid)
            .finish()
    }
}

/// Finds the chaincode behind a name on a channel (the chaincode definition and the package
/// installed for this peer's organisation).
pub trait ChaincodeResolver: Send + Sync {
    /// `(package_id, version)` of chaincode `name` on `channel`.
    fn resolve(&self, channel: &str, name: &str) -> Option<(String, String)>;
    /// A new simulator on `channel`'s committed state, for a call to a chaincode on another
    /// channel (its writes are discarded, as in Fabric); the creator must be a writer there
    /// (Fabric's `peer/ChaincodeToChaincode` ACL).
    fn channel_simulator(
        &self,
        channel: &str,
        txid: &str,
        creator: &[u8],
    ) -> Result<TxSimulator, String>;
    /// Whether `name`'s collection `coll` exists and the creator (a serialized identity) may
    /// read / write it: `Err(message)` when the collection is unknown, `Ok((read, write))`
    /// otherwise (Fabric's `RetrieveReadWritePermission`).
    fn collection_access(
        &self,
        channel: &str,
        name: &str,
        coll: &str,
        creator: &[u8],
    ) -> Result<(bool, bool), String>;
}

/// The chaincode servers a peer knows and its live connections to them.
pub struct ChaincodeSupport {
    servers: Mutex<HashMap<String, ConnectionInfo>>,
    handlers: Mutex<HashMap<String, Arc<Handler>>>,
    launching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    resolver: Mutex<Option<Arc<dyn ChaincodeResolver>>>,
    execute_timeout: Duration,
}

impl std::fmt::Debug for ChaincodeSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeSupport")
            .field(
                "servers",
                &self.servers.lock().map(|s| s.len()).unwrap_or(0),
            )
            .finish()
    }
}

impl Drop for ChaincodeSupport {
    fn drop(&mut self) {
        self.close_all();
    }
}

impl Default for ChaincodeSupport {
    fn default() -> Self {
        Self::new(DEFAULT_EXECUTE_TIMEOUT)
    }
}

impl ChaincodeSupport {
    /// Support with the given execute timeout.
    pub fn new(execute_timeout: Duration) -> Self {
        ChaincodeSupport {
            servers: Mutex::new(HashMap::new()),
            handlers: Mutex::new(HashMap::new()),
            launching: Mutex::new(HashMap::new()),
            resolver: Mutex::new(None),
            execute_timeout,
        }
    }

    /// The execute timeout.
    pub fn execute_timeout(&self) -> Duration {
        self.execute_timeout
    }

    /// Sets what resolves chaincode names for INVOKE_CHAINCODE and collection access.
    pub fn set_resolver(&self, resolver: Arc<dyn ChaincodeResolver>) {
        *self.resolver.lock().expect("resolver") = Some(resolver);
    }

    pub(crate) fn resolver(&self) -> Option<Arc<dyn ChaincodeResolver>> {
        self.resolver.lock().expect("resolver").clone()
    }

    /// Installs a CCaaS chaincode: its package ID and where to dial it.
    pub fn install(&self, package_id: &str, info: ConnectionInfo) -> Result<(), ChaincodeError> {
        info.check()?;
        let old = self
            .servers
            .lock()
            .expect("servers")
            .insert(package_id.to_string(), info.clone());
        if old.is_some_and(|o| o != info) {
            // New connection settings: the next execution dials with them.
            self.handlers.lock().expect("handlers").remove(package_id);
        }
        Ok(())
    }

    /// Closes every chaincode connection (the peer is stopping); later executions dial again.
    pub fn close_all(&self) {
        let handlers: Vec<Arc<Handler>> = self
            .handlers
            .lock()
            .expect("handlers")
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in handlers {
            h.close();
        }
    }

    /// Whether a package is installed.
    pub fn is_installed(&self, package_id: &str) -> bool {
        self.servers
            .lock()
            .expect("servers")
            .contains_key(package_id)
    }

    /// Whether a live, registered connection to the package's server exists.
    pub fn is_connected(&self, package_id: &str) -> bool {
        self.handlers
            .lock()
            .expect("handlers")
            .get(package_id)
            .is_some_and(|h| h.is_alive())
    }

    fn live_handler(&self, package_id: &str) -> Option<Arc<Handler>> {
        let mut handlers = self.handlers.lock().expect("handlers");
        match handlers.get(package_id) {
            Some(h) if h.is_alive() => Some(h.clone()),
            Some(_) => {
                handlers.remove(package_id);
                None
            }
            None => None,
        }
    }

    /// The handler for a package, dialling its server if there is no live connection (Fabric's
    /// `Launch`).
    pub async fn launch(
        self: &Arc<Self>,
        package_id: &str,
    ) -> Result<Arc<Handler>, ChaincodeError> {
        if let Some(h) = self.live_handler(package_id) {
            return Ok(h);
        }
        // One dial at a time per package; other packages launch concurrently.
        let lock = self
            .launching
            .lock()
            .expect("launching")
            .entry(package_id.to_string())
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        if let Some(h) = self.live_handler(package_id) {
            return Ok(h);
        }
        let info = self
            .servers
            .lock()
            .expect("servers")
            .get(package_id)
            .cloned()
            .ok_or_else(|| ChaincodeError::NotInstalled(package_id.to_string()))?;
        let handler = Handler::connect(self.clone(), package_id, &info).await?;
        self.handlers
            .lock()
            .expect("handlers")
            .insert(package_id.to_string(), handler.clone());
        Ok(handler)
    }

    /// Runs `input` on chaincode `name` (package `package_id`) in the transaction's context and
    /// returns the chaincode's response and event (Fabric's `ChaincodeSupport.Execute` with
    /// `processChaincodeExecutionResult`). Errors carry Fabric's messages.
    pub async fn execute(
        self: &Arc<Self>,
        params: &TxParams,
        name: &str,
        package_id: &str,
        input: ChaincodeInput,
    ) -> Result<(Response, Option<ChaincodeEvent>), ChaincodeError> {
        let handler = self.launch(package_id).await.map_err(|e| {
            ChaincodeError::Execution(format!(
                "failed to execute transaction {}: {e}",
                params.txid
            ))
        })?;
        let msg_type = if input.is_init {
            MsgType::Init
        } else {
            MsgType::Transaction
        };
        let msg = ChaincodeMessage {
            r#type: msg_type as i32,
            payload: input.encode_to_vec(),
            txid: params.txid.clone(),
            proposal: params.signed_proposal.clone(),
            channel_id: params.channel_id.clone(),
            ..Default::default()
        };
        let resp = handler
            .execute(params, name, msg, self.execute_timeout)
            .await
            .map_err(|e| {
                ChaincodeError::Execution(format!(
                    "failed to execute transaction {}: {e}",
                    params.txid
                ))
            })?;
        let mut event = resp.chaincode_event;
        if let Some(ev) = event.as_mut() {
            ev.chaincode_id = name.to_string();
            ev.tx_id = params.txid.clone();
        }
        match MsgType::try_from(resp.r#type) {
            Ok(MsgType::Completed) => {
                let r = Response::decode(resp.payload.as_slice()).map_err(|e| {
                    ChaincodeError::Execution(format!(
                        "failed to unmarshal response for transaction {}: {e}",
                        params.txid
                    ))
                })?;
                Ok((r, event))
            }
            Ok(MsgType::Error) => Err(ChaincodeError::Execution(format!(
                "transaction returned with failure: {}",
                String::from_utf8_lossy(&resp.payload)
            ))),
            _ => Err(ChaincodeError::Execution(format!(
                "unexpected response type {} for transaction {}",
                resp.r#type, params.txid
            ))),
        }
    }
}
