//! A small chaincode for tests and benchmarks on the devnet: `put key value` (returns the key,
//! emits event `put` with the key), `get key`.
#![allow(dead_code)]

use fabric_chaincode::{Chaincode, ChaincodeStub, Response as CcResponse};

/// A small chaincode: `put key value` (emits `put` with the key), `get key`.
pub struct Notes;

async fn run<S: ChaincodeStub>(stub: S) -> Result<CcResponse, String> {
    let args = stub.string_args();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
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
