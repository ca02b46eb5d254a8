//! The contract layer: named transaction functions with typed (serde/JSON) arguments and results,
//! grouped into contracts and routed by a [`Router`], as Fabric's official contract APIs do.
//!
//! * A transaction is called as `"Contract:Function"` or, for the default (first) contract, as
//!   `"Function"`; the remaining arguments are the function's parameters.
//! * A parameter whose type reads from a string (`String`, unit enums, …) takes the argument text
//!   verbatim; any other type is parsed from the argument as JSON — the convention of the Go and
//!   Node contract APIs.
//! * A result that serialises to a JSON string is returned as its raw text; `()` returns an empty
//!   payload; anything else is returned as canonical JSON (sorted keys, no whitespace).
//! * An error returns status 500 with the error's text as message, which the peer reports to the
//!   client as `chaincode response 500, <message>`.
//! * `org.hyperledger.fabric:GetMetadata` returns the contract metadata in the schema of the
//!   official contract APIs.
//!
//! ```
//! use fabric_chaincode::{contract::{Context, Contract, Router}, ChaincodeStub, Error};
//!
//! async fn put<S: ChaincodeStub>(ctx: Context<S>, (key, value): (String, String)) -> Result<(), Error> {
//!     ctx.put_state(&key, value).await
//! }
//!
//! fn router<S: ChaincodeStub>() -> Router<S> {
//!     Router::new().contract(
//!         Contract::new("KV")
//!             .submit("Put", &["key", "value"], put::<S>)
//!             .evaluate("Get", &["key"], |ctx: Context<S>, (key,): (String,)| async move {
//!                 let v = ctx.get_state(&key).await?;
//!                 Ok::<_, Error>(String::from_utf8_lossy(&v.unwrap_or_default()).into_owned())
//!             }),
//!     )
//! }
//! # let _ = router::<fabric_chaincode::mock::MockStub>();
//! ```

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::chaincode::Chaincode;
use crate::json;
use crate::stub::ChaincodeStub;
use crate::types::Response;

/// The name of the built-in contract that serves `GetMetadata`.
pub const SYSTEM_CONTRACT_NAME: &str = "org.hyperledger.fabric";
/// The `$schema` URL of the official contract metadata schema.
pub const METADATA_SCHEMA_URL: &str =
    "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json";

/// The context a transaction function receives: the transaction's stub (reachable through
/// `Deref`, so `ctx.get_state(…)` works).
#[derive(Clone)]
pub struct Context<S> {
    stub: S,
}

impl<S: ChaincodeStub> Context<S> {
    /// Wraps a stub.
    pub fn new(stub: S) -> Self {
        Context { stub }
    }

    /// The transaction's stub.
    pub fn stub(&self) -> &S {
        &self.stub
    }
}

impl<S> Deref for Context<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.stub
    }
}

/// Whether a transaction changes the ledger (submit) or only reads it (evaluate); recorded in the
/// metadata as the official APIs do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// Submitted for ordering and commit.
    Submit,
    /// Evaluated on one peer; not committed.
    Evaluate,
}

/// Parameters of a transaction function: a tuple of `DeserializeOwned` types, one per argument.
pub trait FromArgs: Sized + Send + 'static {
    /// How many arguments the tuple takes.
    const COUNT: usize;
    /// Parses the arguments.
    fn from_args(args: &[Vec<u8>]) -> Result<Self, String>;
    /// A JSON schema per parameter, for the metadata.
    fn schemas() -> Vec<Value>;
}

/// Parses one argument: verbatim text for string-like types, JSON otherwise.
pub fn parse_arg<T: DeserializeOwned>(raw: &[u8], index: usize) -> Result<T, String> {
    let looks_structured = matches!(raw.first(), Some(b'{') | Some(b'['));
    if !looks_structured {
        if let Ok(text) = std::str::from_utf8(raw) {
            let de = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text);
            if let Ok(v) = T::deserialize(de) {
                return Ok(v);
            }
        }
    }
    serde_json::from_slice(raw).map_err(|e| format!("Error managing parameter param{index}. {e}"))
}

/// A best-effort JSON schema for a Rust type, from its name: primitives map to their JSON types,
/// everything else is an object.
pub fn schema_of<T: ?Sized>() -> Value {
    let name = std::any::type_name::<T>();
    let base = name.rsplit("::").next().unwrap_or(name);
    match base {
        "String" | "str" | "&str" | "char" => json!({"type": "string"}),
        "bool" => json!({"type": "boolean"}),
        "i8" | "i16" | "i32" | "i64" | "isize" | "u8" | "u16" | "u32" | "u64" | "usize" => {
            json!({"type": "integer"})
        }
        "f32" | "f64" => json!({"type": "number"}),
        _ if name.starts_with("alloc::vec::Vec<") => json!({"type": "array"}),
        _ => json!({"type": "object"}),
    }
}

impl FromArgs for () {
    const COUNT: usize = 0;
    fn from_args(args: &[Vec<u8>]) -> Result<Self, String> {
        check_count(args, 0)
    }
    fn schemas() -> Vec<Value> {
        Vec::new()
    }
}

fn check_count(args: &[Vec<u8>], expected: usize) -> Result<(), String> {
    if args.len() != expected {
        return Err(format!(
            "Incorrect number of params. Expected {expected}, received {}",
            args.len()
        ));
    }
    Ok(())
}

macro_rules! tuple_from_args {
    ($n:expr; $($t:ident $i:tt),+) => {
        impl<$($t: DeserializeOwned + Send + 'static),+> FromArgs for ($($t,)+) {
            const COUNT: usize = $n;
            fn from_args(args: &[Vec<u8>]) -> Result<Self, String> {
                check_count(args, $n)?;
                Ok(($(parse_arg::<$t>(&args[$i], $i)?,)+))
            }
            fn schemas() -> Vec<Value> {
                vec![$(schema_of::<$t>()),+]
            }
        }
    };
}

tuple_from_args!(1; A 0);
tuple_from_args!(2; A 0, B 1);
tuple_from_args!(3; A 0, B 1, C 2);
tuple_from_args!(4; A 0, B 1, C 2, D 3);
tuple_from_args!(5; A 0, B 1, C 2, D 3, E 4);
tuple_from_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_args!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_args!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Encodes a transaction result: JSON strings as raw text, `null` as empty, else canonical JSON.
pub fn encode_result<R: Serialize + ?Sized>(result: &R) -> Result<Vec<u8>, String> {
    let value = serde_json::to_value(result)
        .map_err(|e| format!("Error handling success response. {e}"))?;
    match value {
        Value::String(s) => Ok(s.into_bytes()),
        Value::Null => Ok(Vec::new()),
        other => {
            let mut out = Vec::with_capacity(128);
            json::write_value(&other, &mut out)
                .map_err(|e| format!("Error handling success response. {e}"))?;
            Ok(out)
        }
    }
}

type TxFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>;
type Handler<S> = Box<dyn Fn(Context<S>, &[Vec<u8>]) -> Result<TxFuture, String> + Send + Sync>;

struct Transaction<S> {
    name: String,
    kind: TxKind,
    params: Vec<(String, Value)>,
    returns: Value,
    handler: Handler<S>,
}

/// A named group of transaction functions.
pub struct Contract<S> {
    name: String,
    title: String,
    version: String,
    transactions: Vec<Transaction<S>>,
    index: HashMap<String, usize>,
}

impl<S: ChaincodeStub> Contract<S> {
    /// An empty contract called `name`.
    pub fn new(name: &str) -> Self {
        Contract {
            name: name.to_owned(),
            title: name.to_owned(),
            version: "latest".to_owned(),
            transactions: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The contract's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the title shown in the metadata (default: the name).
    pub fn title(mut self, title: &str) -> Self {
        self.title = title.to_owned();
        self
    }

    /// Sets the version shown in the metadata (default: `latest`).
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// Adds a submit transaction. `params` names the tuple's elements, in order.
    ///
    /// # Panics
    /// If the function is already defined or `params` has a different length than `A`.
    pub fn submit<A, R, E, F, Fut>(self, name: &str, params: &[&str], f: F) -> Self
    where
        A: FromArgs,
        R: Serialize + 'static,
        E: Display + 'static,
        F: Fn(Context<S>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.add(TxKind::Submit, name, params, f)
    }

    /// Adds an evaluate (read-only) transaction. See [`submit`](Self::submit).
    ///
    /// # Panics
    /// As [`submit`](Self::submit).
    pub fn evaluate<A, R, E, F, Fut>(self, name: &str, params: &[&str], f: F) -> Self
    where
        A: FromArgs,
        R: Serialize + 'static,
        E: Display + 'static,
        F: Fn(Context<S>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.add(TxKind::Evaluate, name, params, f)
    }

    fn add<A, R, E, F, Fut>(mut self, kind: TxKind, name: &str, params: &[&str], f: F) -> Self
    where
        A: FromArgs,
        R: Serialize + 'static,
        E: Display + 'static,
        F: Fn(Context<S>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        assert_eq!(
            params.len(),
            A::COUNT,
            "transaction {name} of contract {}: {} parameter names for {} parameters",
            self.name,
            params.len(),
            A::COUNT
        );
        assert!(
            !self.index.contains_key(name),
            "transaction {name} defined twice in contract {}",
            self.name
        );
        let handler: Handler<S> = Box::new(move |ctx, args| {
            let parsed = A::from_args(args)?;
            let fut = f(ctx, parsed);
            Ok(Box::pin(async move {
                match fut.await {
                    Ok(r) => encode_result(&r),
                    Err(e) => Err(e.to_string()),
                }
            }) as TxFuture)
        });
        let params = params
            .iter()
            .zip(A::schemas())
            .map(|(n, s)| ((*n).to_owned(), s))
            .collect();
        self.index.insert(name.to_owned(), self.transactions.len());
        self.transactions.push(Transaction {
            name: name.to_owned(),
            kind,
            params,
            returns: returns_schema::<R>(),
            handler,
        });
        self
    }

    fn lookup(&self, function: &str) -> Option<&Transaction<S>> {
        if let Some(i) = self.index.get(function) {
            return Some(&self.transactions[*i]);
        }
        // The Go contract API upper-cases the first letter before looking a function up.
        let mut chars = function.chars();
        let first = chars.next()?;
        if first.is_lowercase() {
            let upper: String = first.to_uppercase().chain(chars).collect();
            return self.index.get(&upper).map(|i| &self.transactions[*i]);
        }
        None
    }

    fn metadata(&self, default: bool) -> Value {
        let mut txs: Vec<&Transaction<S>> = self.transactions.iter().collect();
        txs.sort_by(|a, b| a.name.cmp(&b.name));
        let transactions: Vec<Value> = txs
            .into_iter()
            .map(|t| transaction_metadata(&t.name, t.kind, &t.params, &t.returns))
            .collect();
        json!({
            "info": {"title": self.title, "version": self.version},
            "name": self.name,
            "transactions": transactions,
            "default": default,
        })
    }
}

fn returns_schema<R: 'static>() -> Value {
    if std::any::TypeId::of::<R>() == std::any::TypeId::of::<()>() {
        Value::Null
    } else {
        schema_of::<R>()
    }
}

fn transaction_metadata(
    name: &str,
    kind: TxKind,
    params: &[(String, Value)],
    returns: &Value,
) -> Value {
    let tag = match kind {
        TxKind::Submit => json!(["submit", "SUBMIT"]),
        TxKind::Evaluate => json!(["evaluate", "EVALUATE"]),
    };
    let mut tx = json!({"name": name, "tag": tag});
    if !params.is_empty() {
        tx["parameters"] = params
            .iter()
            .map(|(n, s)| json!({"name": n, "schema": s}))
            .collect();
    }
    if !returns.is_null() {
        tx["returns"] = returns.clone();
    }
    tx
}

/// Routes invocations to contracts; implements [`Chaincode`].
pub struct Router<S> {
    contracts: Vec<Contract<S>>,
    by_name: HashMap<String, usize>,
    title: String,
    version: String,
    metadata: OnceLock<Vec<u8>>,
}

impl<S: ChaincodeStub> Default for Router<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: ChaincodeStub> Router<S> {
    /// A router without contracts.
    pub fn new() -> Self {
        Router {
            contracts: Vec::new(),
            by_name: HashMap::new(),
            title: "undefined".to_owned(),
            version: "latest".to_owned(),
            metadata: OnceLock::new(),
        }
    }

    /// Sets the chaincode title in the metadata's `info`.
    pub fn title(mut self, title: &str) -> Self {
        self.title = title.to_owned();
        self
    }

    /// Sets the chaincode version in the metadata's `info`.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// Adds a contract; the first one added is the default contract.
    ///
    /// # Panics
    /// If a contract of that name (or the system contract's name) is already present.
    pub fn contract(mut self, contract: Contract<S>) -> Self {
        assert!(
            contract.name != SYSTEM_CONTRACT_NAME && !self.by_name.contains_key(&contract.name),
            "Multiple contracts being merged into chaincode with name {}",
            contract.name
        );
        self.by_name
            .insert(contract.name.clone(), self.contracts.len());
        self.contracts.push(contract);
        self
    }

    /// The contract metadata (the `GetMetadata` answer) as a JSON value.
    pub fn metadata(&self) -> Value {
        let mut contracts = serde_json::Map::new();
        for (i, c) in self.contracts.iter().enumerate() {
            contracts.insert(c.name.clone(), c.metadata(i == 0));
        }
        contracts.insert(
            SYSTEM_CONTRACT_NAME.to_owned(),
            json!({
                "info": {"title": SYSTEM_CONTRACT_NAME, "version": "latest"},
                "name": SYSTEM_CONTRACT_NAME,
                "transactions": [transaction_metadata(
                    "GetMetadata",
                    TxKind::Evaluate,
                    &[],
                    &json!({"type": "string"}),
                )],
                "default": false,
            }),
        );
        json!({
            "$schema": METADATA_SCHEMA_URL,
            "info": {"title": self.title, "version": self.version},
            "contracts": contracts,
            "components": {"schemas": {}},
        })
    }

    fn metadata_bytes(&self) -> &[u8] {
        self.metadata.get_or_init(|| {
            let mut out = Vec::new();
            // Writing a Value into a Vec cannot fail.
            let _ = json::write_value(&self.metadata(), &mut out);
            out
        })
    }

    /// Runs the transaction the stub's arguments name and returns the peer response.
    pub async fn dispatch(&self, stub: S) -> Response {
        let Some(first) = stub.args().first() else {
            return Response::error("Blank function name passed");
        };
        let Ok(name) = std::str::from_utf8(first) else {
            return Response::error("Function name is not valid UTF-8");
        };
        let (ns, function) = match name.rfind(':') {
            Some(i) => (&name[..i], &name[i + 1..]),
            None => (
                self.contracts
                    .first()
                    .map(|c| c.name.as_str())
                    .unwrap_or(""),
                name,
            ),
        };
        if ns == SYSTEM_CONTRACT_NAME {
            return match function {
                "GetMetadata" => Response::success(self.metadata_bytes()),
                "" => Response::error("Blank function name passed"),
                other => Response::error(format!(
                    "Function {other} not found in contract {SYSTEM_CONTRACT_NAME}"
                )),
            };
        }
        let Some(contract) = self.by_name.get(ns).map(|i| &self.contracts[*i]) else {
            return Response::error(format!("Contract not found with name {ns}"));
        };
        if function.is_empty() {
            return Response::error("Blank function name passed");
        }
        let Some(tx) = contract.lookup(function) else {
            return Response::error(format!("Function {function} not found in contract {ns}"));
        };
        let args = &stub.args()[1..];
        let fut = match (tx.handler)(Context::new(stub.clone()), args) {
            Ok(f) => f,
            Err(e) => return Response::error(e),
        };
        match fut.await {
            Ok(payload) => Response::success(payload),
            Err(message) => Response::error(message),
        }
    }
}

impl<S: ChaincodeStub> Chaincode<S> for Router<S> {
    async fn init(&self, stub: S) -> Response {
        // As the Go contract API: an Init without a function name just succeeds.
        if stub.args().first().is_none_or(|f| f.is_empty()) {
            return Response::success(&b"Default initiator successful."[..]);
        }
        self.dispatch(stub).await
    }

    async fn invoke(&self, stub: S) -> Response {
        self.dispatch(stub).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::mock::MockLedger;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Item {
        name: String,
        count: u32,
    }

    async fn put_item<S: ChaincodeStub>(ctx: Context<S>, (item,): (Item,)) -> Result<Item, Error> {
        ctx.put_state(&item.name, serde_json::to_vec(&item).unwrap())
            .await?;
        Ok(item)
    }

    fn router<S: ChaincodeStub>() -> Router<S> {
        Router::new()
            .title("test")
            .contract(
                Contract::new("Items")
                    .submit("PutItem", &["item"], put_item::<S>)
                    .evaluate(
                        "Echo",
                        &["text", "n"],
                        |_ctx: Context<S>, (t, n): (String, i64)| async move {
                            Ok::<_, Error>(format!("{t}/{n}"))
                        },
                    )
                    .submit("Fail", &[], |_ctx: Context<S>, ()| async move {
                        Err::<(), _>("licence L1 is revoked")
                    }),
            )
            .contract(
                Contract::new("Other").evaluate("Ping", &[], |_ctx: Context<S>, ()| async {
                    Ok::<_, Error>(true)
                }),
            )
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn routes_typed_arguments_and_results() {
        rt().block_on(async {
            let ledger = MockLedger::new("ch");
            let r = router();
            let out = ledger
                .invoke(
                    &r,
                    ledger
                        .stub("t1")
                        .function("PutItem", [r#"{"name":"a","count":2}"#]),
                )
                .await
                .unwrap();
            assert_eq!(out.response.status, 200, "{}", out.response.message);
            assert_eq!(out.response.payload, br#"{"count":2,"name":"a"}"#);
            assert_eq!(out.record.unwrap().writes[0].key, "a");

            let out = ledger
                .invoke(&r, ledger.stub("t2").function("Items:Echo", ["hi", "5"]))
                .await
                .unwrap();
            assert_eq!(
                out.response.payload, b"hi/5",
                "raw string in, raw string out"
            );

            let out = ledger
                .invoke(
                    &r,
                    ledger.stub("t3").function("Other:Ping", Vec::<&str>::new()),
                )
                .await
                .unwrap();
            assert_eq!(out.response.payload, b"true");

            let out = ledger
                .invoke(&r, ledger.stub("t4").function("echo", ["x", "1"]))
                .await
                .unwrap();
            assert_eq!(
                out.response.status, 200,
                "lower-case first letter is accepted"
            );
        });
    }

    #[test]
    fn errors_name_the_problem() {
        rt().block_on(async {
            let ledger = MockLedger::new("ch");
            let r = router();
            let call = |f: &'static str, args: Vec<&'static str>| {
                let ledger = ledger.clone();
                let r = &r;
                async move {
                    ledger
                        .invoke(r, ledger.stub("t").function(f, args))
                        .await
                        .unwrap()
                        .response
                }
            };
            let resp = call("Nope", vec![]).await;
            assert_eq!(resp.status, 500);
            assert_eq!(resp.message, "Function Nope not found in contract Items");
            let resp = call("Missing:Fn", vec![]).await;
            assert_eq!(resp.message, "Contract not found with name Missing");
            let resp = call("Echo", vec!["only-one"]).await;
            assert_eq!(
                resp.message,
                "Incorrect number of params. Expected 2, received 1"
            );
            let resp = call("Echo", vec!["a", "notanumber"]).await;
            assert!(resp.message.starts_with("Error managing parameter param1."));
            let resp = call("Fail", vec![]).await;
            assert_eq!(resp.message, "licence L1 is revoked");
            assert!(
                ledger.transactions().is_empty(),
                "failed transactions commit nothing"
            );
        });
    }

    #[test]
    fn metadata_follows_the_contract_schema() {
        rt().block_on(async {
            let ledger = MockLedger::new("ch");
            let r = router();
            let out = ledger
                .invoke(
                    &r,
                    ledger
                        .stub("t")
                        .function("org.hyperledger.fabric:GetMetadata", Vec::<&str>::new()),
                )
                .await
                .unwrap();
            let md: Value = serde_json::from_slice(&out.response.payload).unwrap();
            assert_eq!(md["$schema"], METADATA_SCHEMA_URL);
            assert_eq!(md["info"]["title"], "test");
            let items = &md["contracts"]["Items"];
            assert_eq!(items["default"], true);
            assert_eq!(items["name"], "Items");
            let txs = items["transactions"].as_array().unwrap();
            let names: Vec<_> = txs.iter().map(|t| t["name"].as_str().unwrap()).collect();
            assert_eq!(names, ["Echo", "Fail", "PutItem"], "sorted by name");
            assert_eq!(txs[0]["tag"], json!(["evaluate", "EVALUATE"]));
            assert_eq!(
                txs[0]["parameters"],
                json!([{"name":"text","schema":{"type":"string"}},{"name":"n","schema":{"type":"integer"}}])
            );
            assert_eq!(txs[2]["tag"], json!(["submit", "SUBMIT"]));
            assert!(md["contracts"][SYSTEM_CONTRACT_NAME].is_object());
            assert_eq!(md["components"], json!({"schemas": {}}));
        });
    }
}
