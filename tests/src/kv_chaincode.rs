//! A small key-value chaincode on our Rust shim, served as chaincode-as-a-service from the test
//! process, for tests that run the same transactions on the devnet and on real Fabric.
//!
//! Functions (string arguments):
//!
//! | function | does |
//! |---|---|
//! | `put k v` | writes `v` to `k` |
//! | `del k` | deletes `k` |
//! | `incr k` | reads `k` (an integer, 0 when missing) and writes it plus one; returns the new value |
//! | `countrange start end out` | counts the keys in `[start, end)` and writes the count to `out` |
//! | `lock k v msp...` | writes `v` to `k` and sets `k`'s key-level endorsement policy: a peer of each named MSP |
//! | `get k` | the value of `k`; an error `no such key: k` when it is missing |
//! | `range start end` | JSON `[[key, value], ...]` of the keys in `[start, end)` |
//! | `history k` | JSON `[{"tx_id", "value", "is_delete"}, ...]`, newest first, as the peer returns it |
//! | `whoami` | JSON `{"mspid", "id", "role"}` of the caller, `role` its `elicense.role` attribute |

use fabric_chaincode::statebased::{KeyEndorsementPolicy, RoleType};
use fabric_chaincode::types::Response;
use fabric_chaincode::{
    Chaincode, ChaincodeServer, ChaincodeStub, ClientIdentity, QueryIterator, RunningServer,
    ServerConfig,
};
use serde_json::json;

/// The chaincode; stateless, everything lives in the ledger.
#[derive(Debug, Clone, Copy, Default)]
pub struct KvChaincode;

async fn run<S: ChaincodeStub>(stub: S) -> Result<Vec<u8>, String> {
    let (function, params) = stub.function_and_parameters();
    let p = |i: usize| params.get(i).cloned().unwrap_or_default();
    let e = |e: fabric_chaincode::Error| e.to_string();
    match function.as_str() {
        "put" => {
            stub.put_state(&p(0), p(1).into_bytes()).await.map_err(e)?;
            Ok(Vec::new())
        }
        "del" => {
            stub.del_state(&p(0)).await.map_err(e)?;
            Ok(Vec::new())
        }
        "incr" => {
            let current = match stub.get_state(&p(0)).await.map_err(e)? {
                Some(v) => String::from_utf8_lossy(&v)
                    .parse::<i64>()
                    .map_err(|err| format!("{} is not a number: {err}", p(0)))?,
                None => 0,
            };
            let next = (current + 1).to_string();
            stub.put_state(&p(0), next.clone().into_bytes())
                .await
                .map_err(e)?;
            Ok(next.into_bytes())
        }
        "countrange" => {
            let n = stub
                .get_state_by_range(&p(0), &p(1))
                .await
                .map_err(e)?
                .collect_all()
                .await
                .map_err(e)?
                .len();
            stub.put_state(&p(2), n.to_string().into_bytes())
                .await
                .map_err(e)?;
            Ok(n.to_string().into_bytes())
        }
        "lock" => {
            let mut policy = KeyEndorsementPolicy::new(None).map_err(e)?;
            policy.add_orgs(RoleType::Peer, params.iter().skip(2).map(String::as_str));
            stub.put_state(&p(0), p(1).into_bytes()).await.map_err(e)?;
            stub.set_state_validation_parameter(&p(0), policy.policy())
                .await
                .map_err(e)?;
            Ok(Vec::new())
        }
        "get" => stub
            .get_state(&p(0))
            .await
            .map_err(e)?
            .ok_or_else(|| format!("no such key: {}", p(0))),
        "range" => {
            let kvs = stub
                .get_state_by_range(&p(0), &p(1))
                .await
                .map_err(e)?
                .collect_all()
                .await
                .map_err(e)?;
            let rows: Vec<_> = kvs
                .iter()
                .map(|kv| json!([kv.key, String::from_utf8_lossy(&kv.value)]))
                .collect();
            Ok(serde_json::to_vec(&rows).expect("JSON"))
        }
        "history" => {
            let mods = stub
                .get_history_for_key(&p(0))
                .await
                .map_err(e)?
                .collect_all()
                .await
                .map_err(e)?;
            let rows: Vec<_> = mods
                .iter()
                .map(|m| {
                    json!({
                        "tx_id": m.tx_id,
                        "value": String::from_utf8_lossy(&m.value),
                        "is_delete": m.is_delete,
                    })
                })
                .collect();
            Ok(serde_json::to_vec(&rows).expect("JSON"))
        }
        "whoami" => {
            let who = ClientIdentity::new(&stub).map_err(e)?;
            Ok(serde_json::to_vec(&json!({
                "mspid": who.msp_id(),
                "id": who.id(),
                "role": who.attribute_value("elicense.role"),
            }))
            .expect("JSON"))
        }
        other => Err(format!("unknown function {other:?}")),
    }
}

impl<S: ChaincodeStub> Chaincode<S> for KvChaincode {
    async fn init(&self, _stub: S) -> Response {
        Response::success(Vec::new())
    }

    async fn invoke(&self, stub: S) -> Response {
        match run(stub).await {
            Ok(payload) => Response::success(payload),
            Err(message) => Response::error(message),
        }
    }
}

/// Serves [`KvChaincode`] without TLS on `address` (`127.0.0.1:0` for a free port) under
/// `package_id`, on the current tokio runtime; stop it with [`RunningServer::shutdown`] or by
/// dropping it.
pub async fn serve(package_id: &str, address: &str) -> RunningServer {
    let config = ServerConfig {
        address: address.to_owned(),
        chaincode_id: package_id.to_owned(),
        tls: None,
    };
    ChaincodeServer::new(config, KvChaincode)
        .start()
        .await
        .unwrap_or_else(|e| panic!("serving the test chaincode on {address}: {e}"))
}
