//! The shim over real gRPC: a chaincode server on a free local port, driven by the test peer.

use std::time::Duration;

use fabric_chaincode::contract::{Context, Contract, Router};
use fabric_chaincode::handler::PeerCapabilities;
use fabric_chaincode::testing::{ChaincodeCall, TestPeer, TestPeerConfig, TestTx, TxOutcome};
use fabric_chaincode::{
    ChaincodeServer, ChaincodeStub, Error, PeerStub, QueryIterator, RunningServer, ServerConfig,
};
use fabric_protos::protos::chaincode_message::Type as MsgType;
use sha2::{Digest, Sha256};

const CH: &str = "police-service";
const PKG: &str = "elicense_1.0:0123456789abcdef";
const PDC: &str = "_implicit_org_Org1MSP";

/// Opened by the test that needs a transaction to stay in flight.
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

fn keys_arg(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A chaincode exercising the stub API; each function reports what it saw as text.
fn chaincode<S: ChaincodeStub>() -> Router<S> {
    let c = Contract::new("Test")
        .submit("Put", &["key", "value"], |ctx: Context<S>, (k, v): (String, String)| async move {
            ctx.put_state(&k, v).await?;
            ctx.set_event("Put", k.as_bytes())?;
            Ok::<_, Error>(())
        })
        .submit("PutMany", &["prefix", "n"], |ctx: Context<S>, (p, n): (String, u32)| async move {
            for i in 0..n {
                ctx.put_state(&format!("{p}{i:04}"), format!("v{i}")).await?;
            }
            Ok::<_, Error>(n)
        })
        .submit("PutBig", &["key", "size"], |ctx: Context<S>, (k, n): (String, usize)| async move {
            let mut v = vec![7u8; n];
            v[0] = 1;
            v[n - 1] = 9;
            ctx.put_state(&k, v).await?;
            Ok::<_, Error>(())
        })
        .evaluate("Get", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            let v = ctx.get_state(&k).await?;
            Ok::<_, Error>(v.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_else(|| "<none>".into()))
        })
        .evaluate("Shape", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            let v = ctx.get_state(&k).await?.unwrap_or_default();
            Ok::<_, Error>(format!("{}:{:?}:{:?}", v.len(), v.first(), v.last()))
        })
        .evaluate("GetMany", &["keys"], |ctx: Context<S>, (keys,): (String,)| async move {
            let keys = keys_arg(&keys);
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let vals = ctx.get_multiple_states(&refs).await?;
            Ok::<_, Error>(vals.iter().filter(|v| v.is_some()).count())
        })
        .submit("PutThenGet", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            ctx.put_state(&k, "new").await?;
            let v = ctx.get_state(&k).await?;
            Ok::<_, Error>(v.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_else(|| "<none>".into()))
        })
        .evaluate("Range", &["start", "end"], |ctx: Context<S>, (s, e): (String, String)| async move {
            let it = ctx.get_state_by_range(&s, &e).await?;
            Ok::<_, Error>(it.collect_all().await?.len())
        })
        .evaluate("RangeFirst", &["start", "end"], |ctx: Context<S>, (s, e): (String, String)| async move {
            // Drops the iterator after one item: the shim must close it on the peer.
            let mut it = ctx.get_state_by_range(&s, &e).await?;
            let first = it.next().await?.map(|kv| kv.key).unwrap_or_default();
            drop(it);
            let again = ctx.get_state(&first).await?.is_some();
            Ok::<_, Error>(format!("{first}:{again}"))
        })
        .evaluate("Page", &["start", "end", "size", "bookmark"], |ctx: Context<S>, (s, e, n, b): (String, String, i32, String)| async move {
            let (it, meta) = ctx.get_state_by_range_with_pagination(&s, &e, n, &b).await?;
            let keys: Vec<String> = it.collect_all().await?.into_iter().map(|kv| kv.key).collect();
            Ok::<_, Error>(serde_json::json!({"keys": keys.len(), "first": keys.first(), "fetched": meta.fetched_records_count, "bookmark": meta.bookmark}))
        })
        .submit("PutComposite", &["type", "a", "b"], |ctx: Context<S>, (t, a, b): (String, String, String)| async move {
            let k = ctx.create_composite_key(&t, &[&a, &b])?;
            ctx.put_state(&k, "c").await?;
            Ok::<_, Error>(())
        })
        .evaluate("Partial", &["type", "a"], |ctx: Context<S>, (t, a): (String, String)| async move {
            let attrs: Vec<&str> = if a.is_empty() { vec![] } else { vec![a.as_str()] };
            let found = ctx.get_state_by_partial_composite_key(&t, &attrs).await?.collect_all().await?;
            let parts: Vec<String> = found
                .iter()
                .map(|kv| ctx.split_composite_key(&kv.key).map(|(_, a)| a.join("/")))
                .collect::<Result<_, _>>()?;
            Ok::<_, Error>(parts.join(","))
        })
        .evaluate("History", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            let h = ctx.get_history_for_key(&k).await?.collect_all().await?;
            let parts: Vec<String> = h
                .iter()
                .map(|m| format!("{}={}", if m.is_delete { "del".to_owned() } else { String::from_utf8_lossy(&m.value).into_owned() }, m.timestamp.map(|t| t.seconds).unwrap_or(0)))
                .collect();
            Ok::<_, Error>(parts.join(","))
        })
        .submit("Del", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            ctx.del_state(&k).await?;
            Ok::<_, Error>(())
        })
        .submit("PutPrivate", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            let v = ctx.transient().get("value").cloned().ok_or_else(|| Error::invalid("no transient value"))?;
            ctx.put_private_data(PDC, &k, v).await?;
            Ok::<_, Error>(())
        })
        .evaluate("GetPrivate", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            let v = ctx.get_private_data(PDC, &k).await?.unwrap_or_default();
            let h = ctx.get_private_data_hash(PDC, &k).await?.unwrap_or_default();
            let n = ctx.get_private_data_by_range(PDC, "", "").await?.collect_all().await?.len();
            Ok::<_, Error>(format!("{}|{}|{n}", String::from_utf8_lossy(&v), h.iter().map(|b| format!("{b:02x}")).collect::<String>()))
        })
        .submit("Endorse", &["key", "policy"], |ctx: Context<S>, (k, p): (String, String)| async move {
            ctx.put_state(&k, "x").await?;
            ctx.set_state_validation_parameter(&k, p.into_bytes()).await?;
            Ok::<_, Error>(())
        })
        .evaluate("Policy", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            let p = ctx.get_state_validation_parameter(&k).await?.unwrap_or_default();
            Ok::<_, Error>(String::from_utf8_lossy(&p).into_owned())
        })
        .evaluate("Rich", &[], |ctx: Context<S>, ()| async move {
            ctx.get_query_result("{\"selector\":{}}").await.map(|_| ())
        })
        .submit("PutPrivateComposite", &["type", "a", "b"], |ctx: Context<S>, (t, a, b): (String, String, String)| async move {
            let k = ctx.create_composite_key(&t, &[&a, &b])?;
            let v = ctx.transient().get("value").cloned().ok_or_else(|| Error::invalid("no transient value"))?;
            ctx.put_private_data(PDC, &k, v).await?;
            Ok::<_, Error>(())
        })
        .evaluate("PrivatePartial", &["type", "a"], |ctx: Context<S>, (t, a): (String, String)| async move {
            let attrs: Vec<&str> = if a.is_empty() { vec![] } else { vec![a.as_str()] };
            let found = ctx.get_private_data_by_partial_composite_key(PDC, &t, &attrs).await?.collect_all().await?;
            let parts: Vec<String> = found
                .iter()
                .map(|kv| ctx.split_composite_key(&kv.key).map(|(_, a)| format!("{}={}", a.join("/"), String::from_utf8_lossy(&kv.value))))
                .collect::<Result<_, _>>()?;
            Ok::<_, Error>(parts.join(","))
        })
        .evaluate("GetPrivateMany", &["keys"], |ctx: Context<S>, (keys,): (String,)| async move {
            let keys = keys_arg(&keys);
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let vals = ctx.get_multiple_private_data(PDC, &refs).await?;
            let parts: Vec<String> = vals.iter().map(|v| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_else(|| "<none>".into())).collect();
            Ok::<_, Error>(parts.join(","))
        })
        .submit("EndorsePrivate", &["key", "policy"], |ctx: Context<S>, (k, p): (String, String)| async move {
            ctx.put_private_data(PDC, &k, "x").await?;
            ctx.set_private_data_validation_parameter(PDC, &k, p.into_bytes()).await?;
            Ok::<_, Error>(())
        })
        .evaluate("PrivatePolicy", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            let p = ctx.get_private_data_validation_parameter(PDC, &k).await?;
            Ok::<_, Error>(p.map(|p| String::from_utf8_lossy(&p).into_owned()).unwrap_or_else(|| "<none>".into()))
        })
        .evaluate("PrivateRich", &[], |ctx: Context<S>, ()| async move {
            ctx.get_private_data_query_result(PDC, "{\"selector\":{}}").await.map(|_| ())
        })
        .submit("WriteThenPrivateRange", &[], |ctx: Context<S>, ()| async move {
            ctx.put_state("w", "1").await?;
            ctx.get_private_data_by_range(PDC, "", "").await.map(|_| ())
        })
        .submit("PrivateRangeThenWrite", &[], |ctx: Context<S>, ()| async move {
            let n = ctx.get_private_data_by_range(PDC, "", "").await?.collect_all().await?.len();
            ctx.put_state("w", "1").await?;
            Ok::<_, Error>(n)
        })
        .submit("DelPrivate", &["key"], |ctx: Context<S>, (k,): (String,)| async move {
            ctx.del_private_data(PDC, &k).await?;
            Ok::<_, Error>(())
        })
        .submit("PurgePrivate", &["collection", "key"], |ctx: Context<S>, (c, k): (String, String)| async move {
            ctx.purge_private_data(&c, &k).await?;
            Ok::<_, Error>(())
        })
        .submit("Call", &["chaincode", "channel", "args"], |ctx: Context<S>, (cc, ch, args): (String, String, String)| async move {
            let args: Vec<Vec<u8>> = keys_arg(&args).into_iter().map(String::into_bytes).collect();
            let r = ctx.invoke_chaincode(&cc, args, &ch).await;
            Ok::<_, Error>(serde_json::json!({"status": r.status, "message": r.message, "payload": String::from_utf8_lossy(&r.payload)}))
        })
        .evaluate("Context", &[], |ctx: Context<S>, ()| async move {
            let ts = ctx.tx_timestamp()?;
            Ok::<_, Error>(format!("{}|{}|{}|{}|{}", ctx.channel_id(), ctx.tx_id().len(), ts.seconds, ctx.creator().len(), ctx.binding().len()))
        })
        .evaluate("Wait", &[], |_ctx: Context<S>, ()| async move {
            // Held until the test opens the gate: a transaction that is slow for as long as the
            // test needs, without timing.
            GATE.acquire().await.map_err(|e| Error::invalid(e.to_string()))?.forget();
            Ok::<_, Error>("released")
        });
    Router::new().title("shim-test").contract(c)
}

async fn start() -> RunningServer {
    let config = ServerConfig {
        address: "127.0.0.1:0".into(),
        chaincode_id: PKG.into(),
        tls: None,
    };
    ChaincodeServer::new(config, chaincode::<PeerStub>())
        .start()
        .await
        .expect("server starts")
}

async fn peer(server: &RunningServer, config: TestPeerConfig) -> TestPeer {
    TestPeer::connect(&format!("http://{}", server.local_addr()), config)
        .await
        .expect("peer connects")
}

fn ok(out: &TxOutcome) -> String {
    let r = out
        .response()
        .unwrap_or_else(|| panic!("not COMPLETED: {:?}", out.error()));
    assert_eq!(r.status, 200, "{}", r.message);
    String::from_utf8(r.payload).unwrap()
}

async fn call(p: &TestPeer, args: &[&str]) -> String {
    ok(&p
        .invoke(TestTx::new(CH, args.iter().copied()))
        .await
        .unwrap())
}

async fn submit(p: &TestPeer, args: &[&str]) -> TxOutcome {
    let out = p
        .invoke(TestTx::new(CH, args.iter().copied()).commit(true))
        .await
        .unwrap();
    ok(&out);
    out
}

#[tokio::test]
async fn handshake_and_classic_protocol() {
    let server = start().await;
    let p = peer(&server, TestPeerConfig::default()).await;
    assert_eq!(
        p.registered_name(),
        PKG,
        "REGISTER carries the exact package ID"
    );

    let out = submit(&p, &["Put", "a", "1"]).await;
    assert_eq!(out.writes, vec![("a".to_owned(), Some(b"1".to_vec()))]);
    assert_eq!(out.event().unwrap().event_name, "Put");
    assert_eq!(p.request_count(MsgType::PutState), 1);
    assert_eq!(p.request_count(MsgType::WriteBatchState), 0);
    assert_eq!(call(&p, &["Get", "a"]).await, "1");
    assert_eq!(
        call(&p, &["PutThenGet", "a"]).await,
        "1",
        "a transaction reads committed state"
    );

    submit(&p, &["Put", "b", "2"]).await;
    assert_eq!(call(&p, &["GetMany", "a,b,zz"]).await, "2");
    assert_eq!(
        p.request_count(MsgType::GetStateMultiple),
        0,
        "not offered in READY"
    );

    let ctx = call(&p, &["Context"]).await;
    let parts: Vec<&str> = ctx.split('|').collect();
    assert_eq!(parts[0], CH);
    assert_eq!(parts[1], "64", "Fabric tx IDs are hex SHA-256");
    assert!(parts[2].parse::<i64>().unwrap() > 1_700_000_000);
    assert_ne!(parts[3], "0");
    assert_eq!(parts[4], "32");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ready_parameters_enable_write_batches_and_multi_get() {
    let server = start().await;
    let p = peer(&server, TestPeerConfig::default().with_batching(100, 100)).await;
    let out = submit(&p, &["PutMany", "k", "250"]).await;
    assert_eq!(out.writes.len(), 250);
    assert_eq!(p.request_count(MsgType::PutState), 0);
    assert_eq!(
        p.request_count(MsgType::WriteBatchState),
        3,
        "250 writes in batches of 100"
    );

    let keys: Vec<String> = (0..150).map(|i| format!("k{i:04}")).collect();
    assert_eq!(call(&p, &["GetMany", &keys.join(",")]).await, "150");
    assert_eq!(p.request_count(MsgType::GetStateMultiple), 2);
    assert_eq!(p.request_count(MsgType::GetState), 0);

    // A small offered batch size is raised to the Go shim's minimum of 100.
    let p2 = peer(
        &server,
        TestPeerConfig {
            capabilities: PeerCapabilities {
                use_write_batch: true,
                max_size_write_batch: 10,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    submit(&p2, &["PutMany", "j", "150"]).await;
    assert_eq!(p2.request_count(MsgType::WriteBatchState), 2);
    // Failed transactions send no batch.
    let out = p2
        .invoke(TestTx::new(CH, ["Put", "only-one-arg"]).commit(true))
        .await
        .unwrap();
    assert_eq!(out.response().unwrap().status, 500);
    assert_eq!(p2.request_count(MsgType::WriteBatchState), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn slow_transaction_does_not_block_others_and_duplicates_are_refused() {
    let server = start().await;
    let p = std::sync::Arc::new(peer(&server, TestPeerConfig::default()).await);
    let slow_tx = TestTx::new(CH, ["Wait"]).tx_id("slow-tx-0001");
    let (_, raw) = p.prepare(&slow_tx);
    let slow = {
        let p = p.clone();
        tokio::spawn(async move { p.invoke(slow_tx).await.unwrap() })
    };
    for i in 0..50 {
        submit(&p, &["Put", &format!("fast{i}"), "v"]).await;
    }
    assert!(
        !slow.is_finished(),
        "the slow transaction is still in flight"
    );
    assert_eq!(call(&p, &["Get", "fast49"]).await, "v");
    // The same channel + tx ID again while the first is in flight.
    p.send_raw(raw).await.unwrap();
    let first = slow.await.unwrap();
    let err = first.error().expect("the duplicate is answered with ERROR");
    assert!(err.contains("channel exists"), "{err}");
    // The same tx ID on another channel is a different transaction.
    let other = p
        .invoke(TestTx::new("other-channel", ["Get", "fast0"]).tx_id("slow-tx-0001"))
        .await
        .unwrap();
    assert_eq!(ok(&other), "v");
    GATE.add_permits(1);
    let late = p
        .next_unrouted(Duration::from_secs(10))
        .await
        .expect("the original transaction still completes");
    assert_eq!(late.r#type, MsgType::Completed as i32);
    assert_eq!(late.txid, "slow-tx-0001");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn iterators_pagination_composite_keys_and_history() {
    let server = start().await;
    let p = peer(&server, TestPeerConfig::default()).await;
    submit(&p, &["PutMany", "r", "250"]).await;
    assert_eq!(call(&p, &["Range", "r", "s"]).await, "250");
    assert_eq!(
        p.request_count(MsgType::QueryStateNext),
        2,
        "batches of 100 from the peer"
    );
    assert_eq!(call(&p, &["Range", "", ""]).await, "250");

    assert_eq!(call(&p, &["RangeFirst", "r", "s"]).await, "r0000:true");
    assert_eq!(
        p.request_count(MsgType::QueryStateClose),
        1,
        "a dropped iterator is closed"
    );

    let page: serde_json::Value =
        serde_json::from_str(&call(&p, &["Page", "r", "s", "10", ""]).await).unwrap();
    assert_eq!(page["keys"], 10);
    assert_eq!(page["fetched"], 10);
    assert_eq!(page["bookmark"], "r0010");
    let page: serde_json::Value =
        serde_json::from_str(&call(&p, &["Page", "r", "s", "100", "r0200"]).await).unwrap();
    assert_eq!(page["keys"], 50);
    assert_eq!(page["first"], "r0200");
    assert_eq!(page["bookmark"], "");

    submit(&p, &["PutComposite", "lic", "L1", "f1"]).await;
    submit(&p, &["PutComposite", "lic", "L1", "f2"]).await;
    submit(&p, &["PutComposite", "lic", "L2", "f1"]).await;
    assert_eq!(call(&p, &["Partial", "lic", "L1"]).await, "L1/f1,L1/f2");
    assert_eq!(call(&p, &["Partial", "lic", ""]).await, "L1/f1,L1/f2,L2/f1");
    assert_eq!(
        call(&p, &["Range", "", ""]).await,
        "250",
        "open ranges skip composite keys"
    );

    p.invoke(
        TestTx::new(CH, ["Put", "h", "one"])
            .timestamp(100, 0)
            .commit(true),
    )
    .await
    .unwrap();
    p.invoke(
        TestTx::new(CH, ["Put", "h", "two"])
            .timestamp(200, 0)
            .commit(true),
    )
    .await
    .unwrap();
    p.invoke(TestTx::new(CH, ["Del", "h"]).timestamp(300, 0).commit(true))
        .await
        .unwrap();
    assert_eq!(call(&p, &["History", "h"]).await, "del=300,two=200,one=100");

    let out = p.invoke(TestTx::new(CH, ["Rich"])).await.unwrap();
    let r = out.response().unwrap();
    assert_eq!(r.status, 500);
    assert!(
        r.message.contains("ExecuteQuery not supported for leveldb"),
        "{}",
        r.message
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn private_data_validation_parameters_and_errors() {
    let server = start().await;
    let p = peer(&server, TestPeerConfig::default()).await;
    let out = p
        .invoke(
            TestTx::new(CH, ["PutPrivate", "p1"])
                .transient("value", "secret")
                .commit(true),
        )
        .await
        .unwrap();
    ok(&out);
    assert!(
        out.writes.is_empty(),
        "private values stay out of public writes"
    );
    assert_eq!(
        out.private_writes,
        vec![(PDC.to_owned(), "p1".to_owned(), Some(b"secret".to_vec()))]
    );
    let hash: String = Sha256::digest(b"secret")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        call(&p, &["GetPrivate", "p1"]).await,
        format!("secret|{hash}|1")
    );

    let init = p
        .invoke(
            TestTx::new(CH, ["PutPrivate", "p2"])
                .transient("value", "x")
                .init(true),
        )
        .await
        .unwrap();
    let err = init
        .error()
        .expect("a failed Init is an ERROR message, as in Go");
    assert!(
        err.contains("private data APIs are not allowed in chaincode Init()"),
        "{err}"
    );

    submit(&p, &["Endorse", "k", "policy-bytes"]).await;
    assert_eq!(call(&p, &["Policy", "k"]).await, "policy-bytes");
    assert_eq!(
        p.metadata("", "k", "VALIDATION_PARAMETER"),
        Some(b"policy-bytes".to_vec())
    );

    let out = p.invoke(TestTx::new(CH, ["NoSuchFn"])).await.unwrap();
    let r = out
        .response()
        .expect("contract errors are COMPLETED with status 500");
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "Function NoSuchFn not found in contract Test")
    );

    let md = call(&p, &["org.hyperledger.fabric:GetMetadata"]).await;
    let md: serde_json::Value = serde_json::from_str(&md).unwrap();
    assert!(
        md["contracts"]["Test"]["transactions"]
            .as_array()
            .unwrap()
            .len()
            > 10
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn messages_larger_than_four_mib_pass_both_ways() {
    let server = start().await;
    let p = peer(&server, TestPeerConfig::default()).await;
    // Close to Fabric's 100 MiB limit, far above gRPC's 4 MiB default: the chaincode sends it in
    // PUT_STATE, the peer returns it in the GET_STATE response.
    let size = 96 * 1024 * 1024;
    let out = submit(&p, &["PutBig", "big", &size.to_string()]).await;
    let written = out.writes[0].1.as_ref().unwrap();
    assert_eq!((written.len(), written[0], written[size - 1]), (size, 1, 9));
    assert_eq!(
        call(&p, &["Shape", "big"]).await,
        format!("{size}:Some(1):Some(9)")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn keepalive_pings_keep_the_stream_usable() {
    let server = start().await;
    let p = peer(
        &server,
        TestPeerConfig {
            // An unanswered ping drops the connection after 200 ms; the test waits far longer.
            keepalive_interval: Some(Duration::from_millis(50)),
            keepalive_timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await;
    submit(&p, &["Put", "a", "1"]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(call(&p, &["Get", "a"]).await, "1");
    // The shim echoes the peer's KEEPALIVE chaincode messages.
    p.send_raw(fabric_protos::protos::ChaincodeMessage {
        r#type: MsgType::Keepalive as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(call(&p, &["Get", "a"]).await, "1");
    assert_eq!(p.request_count(MsgType::Keepalive), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn next_connection_is_served_after_the_peer_goes_away() {
    let server = start().await;
    let p = peer(&server, TestPeerConfig::default()).await;
    submit(&p, &["Put", "a", "1"]).await;
    p.disconnect().await;
    let p2 = peer(&server, TestPeerConfig::default()).await;
    assert_eq!(p2.registered_name(), PKG);
    submit(&p2, &["Put", "b", "2"]).await;
    assert_eq!(call(&p2, &["Get", "b"]).await, "2");

    // A message the state does not allow ends that stream with ERROR; the server goes on.
    p2.send_raw(fabric_protos::protos::ChaincodeMessage {
        r#type: MsgType::Registered as i32,
        txid: "x".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let err = p2
        .next_unrouted(Duration::from_secs(5))
        .await
        .expect("ERROR");
    assert_eq!(err.r#type, MsgType::Error as i32);
    let text = String::from_utf8_lossy(&err.payload).into_owned();
    assert!(
        text.contains("(REGISTERED) while in state: ready"),
        "{text}"
    );
    let p3 = peer(&server, TestPeerConfig::default()).await;
    submit(&p3, &["Put", "c", "3"]).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_peer_outside_the_collection_refuses_private_values() {
    let server = start().await;
    let p = peer(
        &server,
        TestPeerConfig {
            hash_only_collections: vec![PDC.to_owned()],
            ..Default::default()
        },
    )
    .await;
    p.put_private_data(PDC, "p1", "secret");
    let out = p
        .invoke(TestTx::new(CH, ["GetPrivate", "p1"]))
        .await
        .unwrap();
    let r = out.response().expect("COMPLETED");
    assert_eq!(r.status, 500);
    assert!(
        r.message
            .contains("private data matching public hash version is not available"),
        "the peer's error reaches the chaincode as Fabric words it: {}",
        r.message
    );
    assert!(!r.message.contains("secret"));
    // Absent values read as absent.
    assert_eq!(call(&p, &["GetMany", "x,y"]).await, "0");
    server.shutdown().await.unwrap();
}

/// The classic protocol and write batching with multi-key reads: the private data calls must
/// behave the same over both.
fn both_protocols() -> [(&'static str, TestPeerConfig); 2] {
    [
        ("classic", TestPeerConfig::default()),
        (
            "batching",
            TestPeerConfig::default().with_batching(100, 100),
        ),
    ]
}

fn status_500(out: &TxOutcome) -> String {
    let r = out
        .response()
        .unwrap_or_else(|| panic!("not COMPLETED: {:?}", out.error()));
    assert_eq!(r.status, 500, "expected a failure, got {:?}", r.payload);
    r.message
}

#[tokio::test]
async fn private_data_by_partial_composite_key_and_several_keys() {
    let server = start().await;
    for (name, config) in both_protocols() {
        let batching = config.capabilities.use_write_batch;
        let p = peer(&server, config).await;
        for (a, b, v) in [("L1", "f1", "a"), ("L1", "f2", "b"), ("L2", "f1", "c")] {
            let out = p
                .invoke(
                    TestTx::new(CH, ["PutPrivateComposite", "lic", a, b])
                        .transient("value", v)
                        .commit(true),
                )
                .await
                .unwrap();
            ok(&out);
            assert_eq!(
                out.private_writes,
                vec![(
                    PDC.to_owned(),
                    format!("\u{0}lic\u{0}{a}\u{0}{b}\u{0}"),
                    Some(v.as_bytes().to_vec())
                )],
                "{name}"
            );
            assert!(out.writes.is_empty(), "{name}");
        }
        // The same object type in public state stays out of the collection's answers.
        submit(&p, &["PutComposite", "lic", "L1", "f9"]).await;
        let ranges = p.request_count(MsgType::GetStateByRange);
        assert_eq!(
            call(&p, &["PrivatePartial", "lic", "L1"]).await,
            "L1/f1=a,L1/f2=b",
            "{name}"
        );
        assert_eq!(
            call(&p, &["PrivatePartial", "lic", ""]).await,
            "L1/f1=a,L1/f2=b,L2/f1=c",
            "{name}"
        );
        assert_eq!(
            call(&p, &["PrivatePartial", "none", ""]).await,
            "",
            "{name}"
        );
        assert_eq!(call(&p, &["Partial", "lic", "L1"]).await, "L1/f9", "{name}");
        assert_eq!(p.request_count(MsgType::GetStateByRange), ranges + 4);

        p.put_private_data(PDC, "m1", "one");
        p.put_private_data(PDC, "m2", "two");
        assert_eq!(
            call(&p, &["GetPrivateMany", "m1,missing,m2"]).await,
            "one,<none>,two",
            "{name}"
        );
        if batching {
            assert_eq!(p.request_count(MsgType::GetStateMultiple), 1, "{name}");
            assert_eq!(p.request_count(MsgType::GetState), 0, "{name}");
        } else {
            assert_eq!(p.request_count(MsgType::GetStateMultiple), 0, "{name}");
            assert_eq!(p.request_count(MsgType::GetState), 3, "{name}");
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn private_validation_parameters_are_set_and_read_per_private_key() {
    let server = start().await;
    for (name, config) in both_protocols() {
        let batching = config.capabilities.use_write_batch;
        let p = peer(&server, config).await;
        let out = submit(&p, &["EndorsePrivate", "p1", "org-policy"]).await;
        assert!(out.writes.is_empty(), "{name}");
        assert_eq!(
            out.private_writes,
            vec![(PDC.to_owned(), "p1".to_owned(), Some(b"x".to_vec()))],
            "{name}"
        );
        assert_eq!(
            out.metadata_writes,
            vec![(
                PDC.to_owned(),
                "p1".to_owned(),
                "VALIDATION_PARAMETER".to_owned(),
                b"org-policy".to_vec()
            )],
            "{name}: the policy is metadata of the private key, in its collection"
        );
        assert_eq!(
            p.metadata(PDC, "p1", "VALIDATION_PARAMETER"),
            Some(b"org-policy".to_vec()),
            "{name}"
        );
        assert_eq!(p.metadata("", "p1", "VALIDATION_PARAMETER"), None, "{name}");
        if batching {
            assert_eq!(p.request_count(MsgType::PutStateMetadata), 0, "{name}");
            assert_eq!(p.request_count(MsgType::WriteBatchState), 1, "{name}");
        } else {
            assert_eq!(p.request_count(MsgType::PutStateMetadata), 1, "{name}");
        }

        assert_eq!(
            call(&p, &["PrivatePolicy", "p1"]).await,
            "org-policy",
            "{name}"
        );
        assert_eq!(
            call(&p, &["PrivatePolicy", "other"]).await,
            "<none>",
            "{name}"
        );
        // The public key of the same name has no policy.
        assert_eq!(call(&p, &["Policy", "p1"]).await, "", "{name}");
        assert_eq!(p.request_count(MsgType::GetStateMetadata), 3, "{name}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn private_rich_query_and_read_only_rules_return_the_peers_errors() {
    let server = start().await;
    let p = peer(&server, TestPeerConfig::default()).await;
    p.put_private_data(PDC, "k", "v");
    let out = p.invoke(TestTx::new(CH, ["PrivateRich"])).await.unwrap();
    assert_eq!(
        status_500(&out),
        format!(
            "GET_QUERY_RESULT failed: transaction ID: {}: ExecuteQuery not supported for leveldb",
            out.tx_id
        ),
        "the peer's error reaches the contract's response unchanged"
    );

    // Fabric's simulator: a query on private data only in a transaction that has not written,
    // and no write after one.
    let out = p
        .invoke(TestTx::new(CH, ["WriteThenPrivateRange"]).commit(true))
        .await
        .unwrap();
    assert_eq!(
        status_500(&out),
        format!(
            "GET_STATE_BY_RANGE failed: transaction ID: {tx}: txid [{tx}]: unsuppored transaction. Queries on pvt data is supported only in a read-only transaction",
            tx = out.tx_id
        )
    );
    assert!(!out.committed);
    let out = p
        .invoke(TestTx::new(CH, ["PrivateRangeThenWrite"]).commit(true))
        .await
        .unwrap();
    assert_eq!(
        status_500(&out),
        format!(
            "PUT_STATE failed: transaction ID: {tx}: txid [{tx}]: unsuppored transaction. Transaction has already performed queries on pvt data. Writes are not allowed",
            tx = out.tx_id
        )
    );
    assert_eq!(p.state("w"), None);

    // With write batching the writes reach the peer only at the end: the refused batch turns
    // the transaction into an ERROR instead of a success.
    let p = peer(&server, TestPeerConfig::default().with_batching(100, 100)).await;
    p.put_private_data(PDC, "k", "v");
    for f in ["PrivateRangeThenWrite", "WriteThenPrivateRange"] {
        let out = p.invoke(TestTx::new(CH, [f]).commit(true)).await.unwrap();
        let err = out
            .error()
            .unwrap_or_else(|| panic!("{f}: expected ERROR, got {:?}", out.response()));
        assert!(
            err.starts_with("failed send batch: WRITE_BATCH_STATE failed"),
            "{f}: {err}"
        );
        assert!(err.ends_with("Writes are not allowed"), "{f}: {err}");
        assert!(!out.committed, "{f}");
        assert_eq!(p.state("w"), None, "{f}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleting_and_purging_private_data() {
    let server = start().await;
    for (name, config) in both_protocols() {
        let batching = config.capabilities.use_write_batch;
        let p = peer(&server, config).await;
        p.put_private_data(PDC, "d1", "v1");
        p.put_private_data(PDC, "d2", "v2");

        let out = submit(&p, &["DelPrivate", "d1"]).await;
        assert_eq!(
            out.private_writes,
            vec![(PDC.to_owned(), "d1".to_owned(), None)],
            "{name}"
        );
        assert!(
            out.private_purges.is_empty(),
            "{name}: a delete is not a purge"
        );
        assert!(out.writes.is_empty(), "{name}");
        assert_eq!(p.private_data(PDC, "d1"), None, "{name}");
        assert_eq!(p.private_data(PDC, "d2"), Some(b"v2".to_vec()), "{name}");

        let out = submit(&p, &["PurgePrivate", PDC, "d2"]).await;
        assert_eq!(
            out.private_writes,
            vec![(PDC.to_owned(), "d2".to_owned(), None)],
            "{name}"
        );
        assert_eq!(
            out.private_purges,
            vec![(PDC.to_owned(), "d2".to_owned())],
            "{name}"
        );
        assert_eq!(p.private_data(PDC, "d2"), None, "{name}");
        assert!(
            call(&p, &["GetPrivate", "d2"]).await.starts_with("||0"),
            "{name}: neither value nor hash remains"
        );
        if batching {
            assert_eq!(p.request_count(MsgType::DelState), 0, "{name}");
            assert_eq!(p.request_count(MsgType::PurgePrivateData), 0, "{name}");
            assert_eq!(p.request_count(MsgType::WriteBatchState), 2, "{name}");
        } else {
            assert_eq!(p.request_count(MsgType::DelState), 1, "{name}");
            assert_eq!(p.request_count(MsgType::PurgePrivateData), 1, "{name}");
        }

        // Purging public state is refused by the shim before anything reaches the peer, as the
        // Go shim does.
        let sent =
            p.request_count(MsgType::PurgePrivateData) + p.request_count(MsgType::WriteBatchState);
        let out = p
            .invoke(TestTx::new(CH, ["PurgePrivate", "", "d1"]).commit(true))
            .await
            .unwrap();
        assert_eq!(
            status_500(&out),
            "collection must not be an empty string",
            "{name}"
        );
        assert_eq!(
            p.request_count(MsgType::PurgePrivateData) + p.request_count(MsgType::WriteBatchState),
            sent,
            "{name}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invoke_chaincode_reaches_the_named_chaincode_and_channel() {
    let server = start().await;
    let p = peer(&server, TestPeerConfig::default()).await;
    p.register_chaincode("other", |args| {
        let parts: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        fabric_chaincode::types::Response::success(parts.join("+"))
    });
    p.register_chaincode("failing", |_| {
        fabric_chaincode::types::Response::error("the called chaincode refused")
    });
    let called = |out: &TxOutcome| -> serde_json::Value { serde_json::from_str(&ok(out)).unwrap() };

    let out = submit(&p, &["Call", "other", "", "Fn,a,b"]).await;
    let r = called(&out);
    assert_eq!(
        (r["status"].as_i64(), r["payload"].as_str()),
        (Some(200), Some("Fn+a+b"))
    );
    let calls = p.chaincode_calls();
    assert_eq!(
        calls,
        vec![ChaincodeCall {
            tx_id: out.tx_id.clone(),
            channel_id: CH.to_owned(),
            chaincode_name: "other".to_owned(),
            args: vec![b"Fn".to_vec(), b"a".to_vec(), b"b".to_vec()],
        }],
        "no channel named: the caller's channel"
    );

    // Another channel travels in the name ("name/channel"); a version in it is ignored.
    let out = submit(&p, &["Call", "other", "civil-service", "G"]).await;
    assert_eq!(called(&out)["payload"], "G");
    let last = p.chaincode_calls().pop().unwrap();
    assert_eq!(
        (last.channel_id.as_str(), last.chaincode_name.as_str()),
        ("civil-service", "other")
    );
    let out = submit(&p, &["Call", "other:2.0", "", "V"]).await;
    assert_eq!(called(&out)["payload"], "V");

    // The called chaincode's failure is its response, status and message intact; the calling
    // transaction decides what to do with it.
    let out = submit(&p, &["Call", "failing", "", "x"]).await;
    let r = called(&out);
    assert_eq!(
        (r["status"].as_i64(), r["message"].as_str()),
        (Some(500), Some("the called chaincode refused"))
    );

    // An unknown chaincode: the peer's error, as a status 500 response.
    let out = submit(&p, &["Call", "nosuch", "", "x"]).await;
    let r = called(&out);
    assert_eq!(r["status"], 500);
    assert_eq!(
        r["message"],
        format!(
            "INVOKE_CHAINCODE failed: transaction ID: {}: execute failed: invalid invocation: [channel {CH}] failed to get chaincode container info for nosuch: chaincode nosuch not found",
            out.tx_id
        )
    );
    assert_eq!(
        p.chaincode_calls().len(),
        4,
        "the unknown chaincode was never called"
    );
    assert_eq!(p.request_count(MsgType::InvokeChaincode), 5);
    server.shutdown().await.unwrap();
}
