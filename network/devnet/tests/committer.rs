//! The committer gives each transaction the validation code a real Fabric v3 peer gives it.

#[path = "committer_fixture.rs"]
mod fixture;

use std::sync::Arc;

use fabric_common::crypto::to_high_s;
use fabric_devnet::committer::{ChannelContext, Committer, EndorsementPolicy, PvtDataMap};
use fabric_devnet::configtx::{genesis_block, signed_by_any, signed_by_role, ChannelBundle};
use fabric_devnet::ledger::block::new_block;
use fabric_devnet::ledger::{CollHashedRwSet, Ledger, NsRwSet, TxRwSet, VALIDATION_PARAMETER};
use fabric_devnet::msp::policy::SignaturePolicyRule;
use fabric_protos::common::msp_role::MspRoleType;
use fabric_protos::common::{BlockMetadataIndex, Envelope};
use fabric_protos::kvrwset::{
    range_query_info::ReadsInfo, HashedRwSet, KvMetadataEntry, KvMetadataWrite, KvRead, KvWrite,
    KvWriteHash, KvrwSet, QueryReads, RangeQueryInfo, Version,
};
use fabric_protos::protos::TxValidationCode as Code;
use fabric_protos::rwset::{CollectionPvtReadWriteSet, NsPvtReadWriteSet, TxPvtReadWriteSet};
use fixture::{endorser_tx, Org, User};
use prost::Message;
use sha2::{Digest, Sha256};

const CH: &str = "ch1";
const CC: &str = "elicense";

struct Net {
    _dir: tempfile::TempDir,
    a: Org,
    b: Org,
    client: User,
    peer_a: User,
    peer_b: User,
    committer: Committer,
}

/// A channel of OrgA and OrgB, committer on OrgA's peer, chaincode policy OR(A.peer, B.peer).
fn net() -> Net {
    let a = Org::new("OrgA");
    let b = Org::new("OrgB");
    let o = Org::new("Orderer");
    let genesis = genesis_block(&fixture::channel_input(CH, &[&a, &b], &o));
    let bundle = ChannelBundle::from_block(&genesis).unwrap();
    let ctx = Arc::new(ChannelContext::new(
        CH,
        bundle.msps.clone(),
        bundle.policies.clone(),
        &a.msp_id,
    ));
    let policy = signed_by_any(&[
        (&a.msp_id, MspRoleType::Peer),
        (&b.msp_id, MspRoleType::Peer),
    ]);
    ctx.define_chaincode(
        CC,
        EndorsementPolicy::Signature(Arc::new(
            SignaturePolicyRule::from_envelope(&policy).unwrap(),
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("l.redb"), CH).unwrap();
    let committer = Committer::new(ledger, ctx);
    committer.commit_genesis(genesis).unwrap();
    Net {
        _dir: dir,
        client: a.user("client1", "client", false),
        peer_a: a.user("peer0", "peer", false),
        peer_b: b.user("peer0", "peer", false),
        a,
        b,
        committer,
    }
}

fn kv(kv: KvrwSet) -> TxRwSet {
    TxRwSet {
        ns_rwsets: vec![NsRwSet {
            namespace: CC.into(),
            kv,
            coll_hashed: vec![],
        }],
    }
}

fn put(key: &str, value: &[u8]) -> TxRwSet {
    kv(KvrwSet {
        writes: vec![KvWrite {
            key: key.into(),
            is_delete: false,
            value: value.to_vec(),
        }],
        ..Default::default()
    })
}

impl Net {
    fn tx(&self, rw: &TxRwSet) -> Envelope {
        endorser_tx(CH, &self.client, CC, rw, &[&self.peer_a]).seal(&self.client)
    }

    /// Cuts a block of the given envelopes, commits it and returns the codes.
    fn commit(&self, envs: &[Vec<u8>]) -> Vec<Code> {
        self.commit_pvt(envs, &PvtDataMap::new())
    }

    fn commit_pvt(&self, envs: &[Vec<u8>], pvt: &PvtDataMap) -> Vec<Code> {
        let l = self.committer.ledger();
        let block = new_block(l.height(), l.last_header_hash(), envs.to_vec());
        let ev = self.committer.commit_block(block, pvt).unwrap();
        let filter = &ev.block.metadata.as_ref().unwrap().metadata
            [BlockMetadataIndex::TransactionsFilter as usize];
        assert_eq!(filter.len(), envs.len());
        assert_eq!(
            ev.txs.iter().map(|t| t.1 as u8).collect::<Vec<_>>(),
            *filter
        );
        filter
            .iter()
            .map(|c| Code::try_from(i32::from(*c)).unwrap())
            .collect()
    }

    fn version(&self, key: &str) -> Option<Version> {
        self.committer
            .ledger()
            .get_state(CC, key)
            .unwrap()
            .map(|v| v.version.to_proto())
    }
}

#[test]
fn a_valid_transaction_commits_its_writes() {
    let n = net();
    let env = n.tx(&put("k", b"v"));
    assert_eq!(n.commit(&[env.encode_to_vec()]), [Code::Valid]);
    let v = n.committer.ledger().get_state(CC, "k").unwrap().unwrap();
    assert_eq!(v.value, b"v");
    assert_eq!((v.version.block, v.version.tx), (1, 0));
}

#[test]
fn forged_and_high_s_creator_signatures_are_bad_creator_signature() {
    let n = net();
    let parts = endorser_tx(CH, &n.client, CC, &put("k", b"v"), &[&n.peer_a]);
    // Signed by someone else's key.
    let forged = parts.seal(&n.peer_a);
    // The creator's own signature, made high-S.
    let mut high = parts.seal(&n.client);
    high.signature = to_high_s(&high.signature).unwrap();
    let codes = n.commit(&[forged.encode_to_vec(), high.encode_to_vec()]);
    assert_eq!(
        codes,
        [Code::BadCreatorSignature, Code::BadCreatorSignature]
    );
    assert!(n.committer.ledger().get_state(CC, "k").unwrap().is_none());
}

#[test]
fn creator_of_an_unknown_org_or_channel_is_bad_creator_signature() {
    let n = net();
    let stranger = Org::new("Stranger").user("c", "client", false);
    let env = endorser_tx(CH, &stranger, CC, &put("k", b"v"), &[&n.peer_a]).seal(&stranger);
    let other_channel =
        endorser_tx("other", &n.client, CC, &put("k", b"v"), &[&n.peer_a]).seal(&n.client);
    assert_eq!(
        n.commit(&[env.encode_to_vec(), other_channel.encode_to_vec()]),
        [Code::BadCreatorSignature, Code::BadCreatorSignature]
    );
}

#[test]
fn an_expired_creator_certificate_is_not_a_committer_concern() {
    // Fabric's MSP validates chains as of NotBefore + 1s; expiry is enforced by the orderer.
    let n = net();
    let old = n.a.user("old", "client", true);
    let env = endorser_tx(CH, &old, CC, &put("k", b"v"), &[&n.peer_a]).seal(&old);
    assert_eq!(n.commit(&[env.encode_to_vec()]), [Code::Valid]);
}

#[test]
fn malformed_envelopes_get_fabric_codes() {
    let n = net();
    let garbage = vec![0xff, 0xff, 0xff];
    let bad_payload = Envelope {
        payload: vec![0xff, 0x01],
        signature: vec![1],
    }
    .encode_to_vec();
    let no_header = Envelope {
        payload: vec![],
        signature: vec![1],
    }
    .encode_to_vec();
    let mut parts = endorser_tx(CH, &n.client, CC, &put("k", b"v"), &[&n.peer_a]);
    // A txid that is not SHA-256(nonce || creator): re-encode the channel header with another id.
    let hdr = parts.payload.header.as_mut().unwrap();
    let mut chdr =
        fabric_protos::common::ChannelHeader::decode(hdr.channel_header.as_slice()).unwrap();
    chdr.tx_id = "not-the-txid".into();
    hdr.channel_header = chdr.encode_to_vec();
    let bad_txid = parts.seal(&n.client).encode_to_vec();
    assert_eq!(
        n.commit(&[garbage, bad_payload, no_header, bad_txid]),
        [
            Code::InvalidOtherReason,
            Code::BadPayload,
            Code::BadCommonHeader,
            Code::BadProposalTxid
        ]
    );
}

#[test]
fn endorsement_by_the_wrong_org_or_role_fails_the_policy() {
    let n = net();
    let only_a = signed_by_role(&n.a.msp_id, MspRoleType::Peer);
    n.committer.context().define_chaincode(
        CC,
        EndorsementPolicy::Signature(Arc::new(
            SignaturePolicyRule::from_envelope(&only_a).unwrap(),
        )),
    );
    let rw = put("k", b"v");
    let by_b = endorser_tx(CH, &n.client, CC, &rw, &[&n.peer_b]).seal(&n.client);
    // A client of the right org is not a peer.
    let by_client = endorser_tx(CH, &n.client, CC, &rw, &[&n.client]).seal(&n.client);
    let none = endorser_tx(CH, &n.client, CC, &rw, &[]).seal(&n.client);
    let by_a = endorser_tx(CH, &n.client, CC, &rw, &[&n.peer_a]).seal(&n.client);
    assert_eq!(
        n.commit(&[
            by_b.encode_to_vec(),
            by_client.encode_to_vec(),
            none.encode_to_vec(),
            by_a.encode_to_vec()
        ]),
        [
            Code::EndorsementPolicyFailure,
            Code::EndorsementPolicyFailure,
            Code::EndorsementPolicyFailure,
            Code::Valid
        ]
    );
}

#[test]
fn a_forged_or_high_s_endorsement_does_not_count() {
    let n = net();
    let mut parts = endorser_tx(CH, &n.client, CC, &put("k", b"v"), &[&n.peer_a]);
    let mut tx = fabric_protos::protos::Transaction::decode(parts.payload.data.as_slice()).unwrap();
    let mut cap =
        fabric_protos::protos::ChaincodeActionPayload::decode(tx.actions[0].payload.as_slice())
            .unwrap();
    let e = &mut cap.action.as_mut().unwrap().endorsements[0];
    e.signature = to_high_s(&e.signature).unwrap();
    tx.actions[0].payload = cap.encode_to_vec();
    parts.payload.data = tx.encode_to_vec();
    assert_eq!(
        n.commit(&[parts.seal(&n.client).encode_to_vec()]),
        [Code::EndorsementPolicyFailure]
    );
}

#[test]
fn the_channel_endorsement_policy_reference_needs_a_majority() {
    let n = net();
    n.committer.context().define_chaincode(
        CC,
        EndorsementPolicy::ChannelConfig("/Channel/Application/Endorsement".into()),
    );
    let rw = put("k", b"v");
    let one = endorser_tx(CH, &n.client, CC, &rw, &[&n.peer_a]).seal(&n.client);
    let both = endorser_tx(CH, &n.client, CC, &rw, &[&n.peer_a, &n.peer_b]).seal(&n.client);
    assert_eq!(
        n.commit(&[one.encode_to_vec(), both.encode_to_vec()]),
        [Code::EndorsementPolicyFailure, Code::Valid]
    );
}

#[test]
fn key_level_policies_override_the_chaincode_policy() {
    let n = net();
    // Set key "lic" with a key-level policy: only OrgB's peer may endorse changes.
    let vp = signed_by_role(&n.b.msp_id, MspRoleType::Peer).encode_to_vec();
    let set = kv(KvrwSet {
        writes: vec![KvWrite {
            key: "lic".into(),
            is_delete: false,
            value: b"v1".to_vec(),
        }],
        metadata_writes: vec![KvMetadataWrite {
            key: "lic".into(),
            entries: vec![KvMetadataEntry {
                name: VALIDATION_PARAMETER.into(),
                value: vp,
            }],
        }],
        ..Default::default()
    });
    assert_eq!(n.commit(&[n.tx(&set).encode_to_vec()]), [Code::Valid]);
    let rw = put("lic", b"v2");
    let by_a = endorser_tx(CH, &n.client, CC, &rw, &[&n.peer_a]).seal(&n.client);
    assert_eq!(
        n.commit(&[by_a.encode_to_vec()]),
        [Code::EndorsementPolicyFailure]
    );
    let by_b = endorser_tx(CH, &n.client, CC, &rw, &[&n.peer_b]).seal(&n.client);
    assert_eq!(n.commit(&[by_b.encode_to_vec()]), [Code::Valid]);
    // Other keys still follow the chaincode policy.
    assert_eq!(
        n.commit(&[n.tx(&put("other", b"x")).encode_to_vec()]),
        [Code::Valid]
    );
}

#[test]
fn a_key_policy_changed_earlier_in_the_block_fails_later_writers() {
    let n = net();
    assert_eq!(
        n.commit(&[n.tx(&put("lic", b"v1")).encode_to_vec()]),
        [Code::Valid]
    );
    let vp = signed_by_role(&n.a.msp_id, MspRoleType::Peer).encode_to_vec();
    let change = kv(KvrwSet {
        metadata_writes: vec![KvMetadataWrite {
            key: "lic".into(),
            entries: vec![KvMetadataEntry {
                name: VALIDATION_PARAMETER.into(),
                value: vp,
            }],
        }],
        ..Default::default()
    });
    let write = put("lic", b"v2");
    assert_eq!(
        n.commit(&[n.tx(&change).encode_to_vec(), n.tx(&write).encode_to_vec()]),
        [Code::Valid, Code::EndorsementPolicyFailure]
    );
}

#[test]
fn private_key_level_policies_apply_to_hashed_writes() {
    let n = net();
    let coll = format!("_implicit_org_{}", n.b.msp_id);
    let kh = Sha256::digest(b"secret").to_vec();
    let vp = signed_by_role(&n.b.msp_id, MspRoleType::Peer).encode_to_vec();
    let hashed = |metadata: bool| TxRwSet {
        ns_rwsets: vec![NsRwSet {
            namespace: CC.into(),
            kv: KvrwSet::default(),
            coll_hashed: vec![CollHashedRwSet {
                collection: coll.clone(),
                hashed: HashedRwSet {
                    hashed_writes: vec![KvWriteHash {
                        key_hash: kh.clone(),
                        is_delete: false,
                        value_hash: Sha256::digest(b"x").to_vec(),
                        is_purge: false,
                    }],
                    metadata_writes: if metadata {
                        vec![fabric_protos::kvrwset::KvMetadataWriteHash {
                            key_hash: kh.clone(),
                            entries: vec![KvMetadataEntry {
                                name: VALIDATION_PARAMETER.into(),
                                value: vp.clone(),
                            }],
                        }]
                    } else {
                        vec![]
                    },
                    ..Default::default()
                },
                pvt_rwset_hash: vec![],
            }],
        }],
    };
    assert_eq!(
        n.commit(&[n.tx(&hashed(true)).encode_to_vec()]),
        [Code::Valid]
    );
    assert_eq!(
        n.commit(&[n.tx(&hashed(false)).encode_to_vec()]),
        [Code::EndorsementPolicyFailure]
    );
}

#[test]
fn stale_reads_are_mvcc_conflicts_against_ledger_and_block() {
    let n = net();
    assert_eq!(
        n.commit(&[n.tx(&put("k", b"v1")).encode_to_vec()]),
        [Code::Valid]
    );
    let v1 = n.version("k");
    let read_then_write = |ver: Option<Version>| {
        kv(KvrwSet {
            reads: vec![KvRead {
                key: "k".into(),
                version: ver,
            }],
            writes: vec![KvWrite {
                key: "k".into(),
                is_delete: false,
                value: b"v2".to_vec(),
            }],
            ..Default::default()
        })
    };
    // Read of a version that is not the committed one, and a read of a missing key as missing.
    let stale = read_then_write(Some(Version {
        block_num: 0,
        tx_num: 0,
    }));
    let absent_ok = kv(KvrwSet {
        reads: vec![KvRead {
            key: "nokey".into(),
            version: None,
        }],
        ..Default::default()
    });
    // Two transactions reading the same committed version: the second sees the first's write.
    let first = read_then_write(v1);
    let second = read_then_write(v1);
    assert_eq!(
        n.commit(&[
            n.tx(&stale).encode_to_vec(),
            n.tx(&absent_ok).encode_to_vec(),
            n.tx(&first).encode_to_vec(),
            n.tx(&second).encode_to_vec()
        ]),
        [
            Code::MvccReadConflict,
            Code::Valid,
            Code::Valid,
            Code::MvccReadConflict
        ]
    );
    assert_eq!(
        n.committer
            .ledger()
            .get_state(CC, "k")
            .unwrap()
            .unwrap()
            .value,
        b"v2"
    );
}

#[test]
fn range_queries_that_would_now_see_other_keys_are_phantom_reads() {
    let n = net();
    assert_eq!(
        n.commit(&[n
            .tx(&kv(KvrwSet {
                writes: ["a", "b", "c"]
                    .iter()
                    .map(|k| KvWrite {
                        key: (*k).into(),
                        is_delete: false,
                        value: b"1".to_vec()
                    })
                    .collect(),
                ..Default::default()
            }))
            .encode_to_vec()]),
        [Code::Valid]
    );
    let reads: Vec<KvRead> = ["a", "b"]
        .iter()
        .map(|k| KvRead {
            key: (*k).into(),
            version: n.version(k),
        })
        .collect();
    let query = |reads: Vec<KvRead>| {
        kv(KvrwSet {
            range_queries_info: vec![RangeQueryInfo {
                start_key: "a".into(),
                end_key: "c".into(),
                itr_exhausted: true,
                reads_info: Some(ReadsInfo::RawReads(QueryReads { kv_reads: reads })),
            }],
            writes: vec![KvWrite {
                key: "z".into(),
                is_delete: false,
                value: b"q".to_vec(),
            }],
            ..Default::default()
        })
    };
    let insert_in_range = put("b2", b"new");
    assert_eq!(
        n.commit(&[
            n.tx(&query(reads.clone())).encode_to_vec(),
            n.tx(&insert_in_range).encode_to_vec(),
            n.tx(&query(reads.clone())).encode_to_vec()
        ]),
        [Code::Valid, Code::Valid, Code::PhantomReadConflict]
    );
    // Against the ledger too: the committed b2 is a phantom for the old result.
    assert_eq!(
        n.commit(&[n.tx(&query(reads)).encode_to_vec()]),
        [Code::PhantomReadConflict]
    );
}

#[test]
fn duplicate_txids_within_a_block_and_across_blocks() {
    let n = net();
    let env = n.tx(&put("k", b"v")).encode_to_vec();
    let other = n.tx(&put("j", b"v")).encode_to_vec();
    assert_eq!(
        n.commit(&[env.clone(), other, env.clone()]),
        [Code::Valid, Code::Valid, Code::DuplicateTxid]
    );
    assert_eq!(n.commit(&[env]), [Code::DuplicateTxid]);
    // An invalid transaction's txid is on the ledger too and cannot be reused.
    let mut bad = n.tx(&put("k", b"w"));
    bad.signature = to_high_s(&bad.signature).unwrap();
    let parts_txid = {
        let p = fabric_protos::common::Payload::decode(bad.payload.as_slice()).unwrap();
        fabric_protos::common::ChannelHeader::decode(p.header.unwrap().channel_header.as_slice())
            .unwrap()
            .tx_id
    };
    assert_eq!(
        n.commit(&[bad.encode_to_vec()]),
        [Code::BadCreatorSignature]
    );
    let loc = n
        .committer
        .ledger()
        .tx_location(&parts_txid)
        .unwrap()
        .unwrap();
    assert_eq!(loc.code, Code::BadCreatorSignature as i32);
}

#[test]
fn unknown_chaincode_and_system_namespace_writes() {
    let n = net();
    let env =
        endorser_tx(CH, &n.client, "nochaincode", &put("k", b"v"), &[&n.peer_a]).seal(&n.client);
    let sys = TxRwSet {
        ns_rwsets: vec![
            NsRwSet {
                namespace: CC.into(),
                kv: KvrwSet::default(),
                coll_hashed: vec![],
            },
            NsRwSet {
                namespace: "_lifecycle".into(),
                kv: KvrwSet {
                    writes: vec![KvWrite {
                        key: "x".into(),
                        is_delete: false,
                        value: vec![1],
                    }],
                    ..Default::default()
                },
                coll_hashed: vec![],
            },
        ],
    };
    assert_eq!(
        n.commit(&[env.encode_to_vec(), n.tx(&sys).encode_to_vec()]),
        [Code::InvalidChaincode, Code::IllegalWriteset]
    );
}

#[test]
fn private_data_is_stored_only_by_member_orgs_and_hashes_by_all() {
    let n = net();
    let coll_a = format!("_implicit_org_{}", n.a.msp_id);
    let coll_b = format!("_implicit_org_{}", n.b.msp_id);
    let pvt_kv = KvrwSet {
        writes: vec![KvWrite {
            key: "secret".into(),
            is_delete: false,
            value: b"s3cret".to_vec(),
        }],
        ..Default::default()
    }
    .encode_to_vec();
    let hashed = |coll: &str| CollHashedRwSet {
        collection: coll.into(),
        hashed: HashedRwSet {
            hashed_writes: vec![KvWriteHash {
                key_hash: Sha256::digest(b"secret").to_vec(),
                is_delete: false,
                value_hash: Sha256::digest(b"s3cret").to_vec(),
                is_purge: false,
            }],
            ..Default::default()
        },
        pvt_rwset_hash: Sha256::digest(&pvt_kv).to_vec(),
    };
    let rw = TxRwSet {
        ns_rwsets: vec![NsRwSet {
            namespace: CC.into(),
            kv: KvrwSet::default(),
            coll_hashed: vec![hashed(&coll_a), hashed(&coll_b)],
        }],
    };
    let parts = endorser_tx(CH, &n.client, CC, &rw, &[&n.peer_a]);
    let pvt = |coll: &str| CollectionPvtReadWriteSet {
        collection_name: coll.into(),
        rwset: pvt_kv.clone(),
    };
    let mut map = PvtDataMap::new();
    map.insert(
        parts.txid.clone(),
        TxPvtReadWriteSet {
            data_model: 0,
            ns_pvt_rwset: vec![NsPvtReadWriteSet {
                namespace: CC.into(),
                collection_pvt_rwset: vec![pvt(&coll_a), pvt(&coll_b)],
            }],
        },
    );
    assert_eq!(
        n.commit_pvt(&[parts.seal(&n.client).encode_to_vec()], &map),
        [Code::Valid]
    );
    let s = n.committer.ledger().snapshot().unwrap();
    // This committer is OrgA's peer: it keeps OrgA's collection only.
    assert_eq!(
        s.get_private(CC, &coll_a, "secret").unwrap().unwrap().value,
        b"s3cret"
    );
    assert!(s.get_private(CC, &coll_b, "secret").unwrap().is_none());
    for c in [&coll_a, &coll_b] {
        let h = s
            .get_private_hash(CC, c, &Sha256::digest(b"secret"))
            .unwrap()
            .unwrap();
        assert_eq!(h.value, Sha256::digest(b"s3cret").to_vec());
    }
    assert!(s.get_state(CC, "secret").unwrap().is_none());
}
