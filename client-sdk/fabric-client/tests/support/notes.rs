//! A small chaincode for tests and benchmarks on the devnet: `put key value` (returns the key,
//! emits event `put` with the key), `get key`, `append key suffix` (reads then writes the key,
//! so two concurrent appends conflict) and `fail message` (refuses with the message). Names may
//! carry the contract `notes:` (`notes:put`), as a contract-API chaincode dispatches them; any
//! other contract name is refused.
#![allow(dead_code)]

use fabric_chaincode::{Chaincode, ChaincodeStub, Response as CcResponse};

/// A small chaincode: `put`, `get`, `append`, `fail`, in the default contract or `notes:`.
pub struct Notes;

async fn run<S: ChaincodeStub>(stub: S) -> Result<CcResponse, String> {
    let args = stub.string_args();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let name = arg(0);
    let function = match name.split_once(':') {
        Some(("notes", f)) => f.to_string(),
        Some((contract, _)) => return Err(format!("no contract {contract}")),
        None => name.clone(),
    };
    match function.as_str() {
        "put" => {
            stub.put_state(&arg(1), arg(2).into_bytes())
                .await
                .map_err(|e| e.to_string())?;
            stub.set_event("put", arg(1).into_bytes())
                .map_err(|e| e.to_string())?;
            Ok(CcResponse::success(arg(1)))
        }
        "get" => Ok(CcResponse::success(
            stub.get_state(&arg(1))
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default(),
        )),
        "append" => {
            let mut value = stub
                .get_state(&arg(1))
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            value.extend_from_slice(arg(2).as_bytes());
            stub.put_state(&arg(1), value.clone())
                .await
                .map_err(|e| e.to_string())?;
            Ok(CcResponse::success(value))
        }
        "fail" => Err(arg(1)),
        other => Err(format!("no function {other}")),
    }
}

impl<S: ChaincodeStub> Chaincode<S> for Notes {
    async fn init(&self, _stub: S) -> CcResponse {
        CcResponse::success(Vec::new())
    }

    async fn invoke(&self, stub: S) -> CcResponse {
        run(stub).await.unwrap_or_else(CcResponse::error)
    }
}
