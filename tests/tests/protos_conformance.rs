//! Conformance of our Fabric schema (`fabric-protos`) with Fabric's official one, judged by the
//! official npm package `@hyperledger/fabric-protos` 0.3.7 (google-protobuf bindings):
//!
//! * structure: per `.proto` file, the same messages and enums (names and values), and per
//!   message the same fields (numbers and wire writers, in declaration order), oneof groups,
//!   repeated fields; per service the same gRPC methods (paths, streaming, request and response
//!   types), which are also exactly [`fabric_protos::paths::ALL`];
//! * Rust to Node: every message of the schema is populated (every field, nested messages,
//!   repeated fields and maps with two entries, non-zero enums, each oneof variant in turn),
//!   encoded by our generated type, decoded and re-encoded by the official class; the official
//!   bytes must be exactly the predicted ones and its `toObject()` exactly the expected values;
//! * Node to Rust: the official classes build the same kind of values through their setters;
//!   our generated types decode them to the expected values and re-encode them exactly.
//!
//! Every message type of the compiled descriptor set is covered: a message without a generated
//! Rust type listed below, or without an official counterpart, fails the test.
//!
//! Byte identity: our encoding is Fabric's Go encoding (fields by number, map entries sorted by
//! key, each with key and value). google-protobuf writes fields in declaration order and sorts
//! map entries by the *string* form of their keys; where that differs (e.g. uint64 keys 9 and
//! 12), the official bytes are compared with our bytes re-ordered the way google-protobuf orders
//! them, and such messages are listed in the output. Nothing else is normalised.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use elicense_tests::{node_interop_dir, skip_or_fail};
use fabric_protos::{
    common, etcdraft, gateway, google, kvrwset, lifecycle, msp, orderer, protos, queryresult, rwset,
};
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value,
};
use serde_json::{json, Value as Json};

macro_rules! concrete_types {
    ($($name:literal => $ty:ty,)*) => {
        /// Full protobuf names of the generated Rust types listed here.
        const CONCRETE: &[&str] = &[$($name),*];

        /// Decodes `bytes` with the generated type named `full_name` and encodes it again.
        fn concrete_roundtrip(full_name: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
            match full_name {
                $($name => <$ty>::decode(bytes)
                    .map(|m| m.encode_to_vec())
                    .map_err(|e| format!("{full_name}: {e}")),)*
                other => Err(format!("no generated Rust type listed for {other}")),
            }
        }

        /// The full names the generated types report (`prost::Name`), with the listed names.
        fn concrete_reported_names() -> Vec<(&'static str, String)> {
            vec![$(($name, <$ty as prost::Name>::full_name()),)*]
        }
    };
}

concrete_types! {
    "common.ApplicationPolicy" => common::ApplicationPolicy,
    "common.Block" => common::Block,
    "common.BlockData" => common::BlockData,
    "common.BlockDataHashingStructure" => common::BlockDataHashingStructure,
    "common.BlockHeader" => common::BlockHeader,
    "common.BlockMetadata" => common::BlockMetadata,
    "common.BlockchainInfo" => common::BlockchainInfo,
    "common.BootstrappingSnapshotInfo" => common::BootstrappingSnapshotInfo,
    "common.Capabilities" => common::Capabilities,
    "common.Capability" => common::Capability,
    "common.ChannelHeader" => common::ChannelHeader,
    "common.CollectionConfig" => common::CollectionConfig,
    "common.CollectionConfigPackage" => common::CollectionConfigPackage,
    "common.CollectionPolicyConfig" => common::CollectionPolicyConfig,
    "common.CombinedPrincipal" => common::CombinedPrincipal,
    "common.Config" => common::Config,
    "common.ConfigEnvelope" => common::ConfigEnvelope,
    "common.ConfigGroup" => common::ConfigGroup,
    "common.ConfigPolicy" => common::ConfigPolicy,
    "common.ConfigSignature" => common::ConfigSignature,
    "common.ConfigUpdate" => common::ConfigUpdate,
    "common.ConfigUpdateEnvelope" => common::ConfigUpdateEnvelope,
    "common.ConfigValue" => common::ConfigValue,
    "common.Consenter" => common::Consenter,
    "common.Consortium" => common::Consortium,
    "common.Envelope" => common::Envelope,
    "common.HashingAlgorithm" => common::HashingAlgorithm,
    "common.Header" => common::Header,
    "common.IdentifierHeader" => common::IdentifierHeader,
    "common.ImplicitMetaPolicy" => common::ImplicitMetaPolicy,
    "common.LastConfig" => common::LastConfig,
    "common.MSPIdentityAnonymity" => common::MspIdentityAnonymity,
    "common.MSPPrincipal" => common::MspPrincipal,
    "common.MSPRole" => common::MspRole,
    "common.Metadata" => common::Metadata,
    "common.MetadataSignature" => common::MetadataSignature,
    "common.OrdererAddresses" => common::OrdererAddresses,
    "common.OrdererBlockMetadata" => common::OrdererBlockMetadata,
    "common.Orderers" => common::Orderers,
    "common.OrganizationUnit" => common::OrganizationUnit,
    "common.Payload" => common::Payload,
    "common.Policy" => common::Policy,
    "common.SignatureHeader" => common::SignatureHeader,
    "common.SignaturePolicy" => common::SignaturePolicy,
    "common.SignaturePolicy.NOutOf" => common::signature_policy::NOutOf,
    "common.SignaturePolicyEnvelope" => common::SignaturePolicyEnvelope,
    "common.StaticCollectionConfig" => common::StaticCollectionConfig,
    "etcdraft.BlockMetadata" => etcdraft::BlockMetadata,
    "etcdraft.ClusterMetadata" => etcdraft::ClusterMetadata,
    "etcdraft.ConfigMetadata" => etcdraft::ConfigMetadata,
    "etcdraft.Consenter" => etcdraft::Consenter,
    "etcdraft.Options" => etcdraft::Options,
    "gateway.ChaincodeEventsRequest" => gateway::ChaincodeEventsRequest,
    "gateway.ChaincodeEventsResponse" => gateway::ChaincodeEventsResponse,
    "gateway.CommitStatusRequest" => gateway::CommitStatusRequest,
    "gateway.CommitStatusResponse" => gateway::CommitStatusResponse,
    "gateway.EndorseRequest" => gateway::EndorseRequest,
    "gateway.EndorseResponse" => gateway::EndorseResponse,
    "gateway.ErrorDetail" => gateway::ErrorDetail,
    "gateway.EvaluateRequest" => gateway::EvaluateRequest,
    "gateway.EvaluateResponse" => gateway::EvaluateResponse,
    "gateway.PreparedTransaction" => gateway::PreparedTransaction,
    "gateway.ProposedTransaction" => gateway::ProposedTransaction,
    "gateway.SignedChaincodeEventsRequest" => gateway::SignedChaincodeEventsRequest,
    "gateway.SignedCommitStatusRequest" => gateway::SignedCommitStatusRequest,
    "gateway.SubmitRequest" => gateway::SubmitRequest,
    "gateway.SubmitResponse" => gateway::SubmitResponse,
    "google.rpc.Status" => google::rpc::Status,
    "kvrwset.HashedRWSet" => kvrwset::HashedRwSet,
    "kvrwset.KVMetadataEntry" => kvrwset::KvMetadataEntry,
    "kvrwset.KVMetadataWrite" => kvrwset::KvMetadataWrite,
    "kvrwset.KVMetadataWriteHash" => kvrwset::KvMetadataWriteHash,
    "kvrwset.KVRWSet" => kvrwset::KvrwSet,
    "kvrwset.KVRead" => kvrwset::KvRead,
    "kvrwset.KVReadHash" => kvrwset::KvReadHash,
    "kvrwset.KVWrite" => kvrwset::KvWrite,
    "kvrwset.KVWriteHash" => kvrwset::KvWriteHash,
    "kvrwset.QueryReads" => kvrwset::QueryReads,
    "kvrwset.QueryReadsMerkleSummary" => kvrwset::QueryReadsMerkleSummary,
    "kvrwset.RangeQueryInfo" => kvrwset::RangeQueryInfo,
    "kvrwset.Version" => kvrwset::Version,
    "lifecycle.ApproveChaincodeDefinitionForMyOrgArgs" => lifecycle::ApproveChaincodeDefinitionForMyOrgArgs,
    "lifecycle.ApproveChaincodeDefinitionForMyOrgResult" => lifecycle::ApproveChaincodeDefinitionForMyOrgResult,
    "lifecycle.ChaincodeEndorsementInfo" => lifecycle::ChaincodeEndorsementInfo,
    "lifecycle.ChaincodeSource" => lifecycle::ChaincodeSource,
    "lifecycle.ChaincodeSource.Local" => lifecycle::chaincode_source::Local,
    "lifecycle.ChaincodeSource.Unavailable" => lifecycle::chaincode_source::Unavailable,
    "lifecycle.ChaincodeValidationInfo" => lifecycle::ChaincodeValidationInfo,
    "lifecycle.CheckCommitReadinessArgs" => lifecycle::CheckCommitReadinessArgs,
    "lifecycle.CheckCommitReadinessResult" => lifecycle::CheckCommitReadinessResult,
    "lifecycle.CheckCommitReadinessResult.Mismatches" => lifecycle::check_commit_readiness_result::Mismatches,
    "lifecycle.CommitChaincodeDefinitionArgs" => lifecycle::CommitChaincodeDefinitionArgs,
    "lifecycle.CommitChaincodeDefinitionResult" => lifecycle::CommitChaincodeDefinitionResult,
    "lifecycle.GetInstalledChaincodePackageArgs" => lifecycle::GetInstalledChaincodePackageArgs,
    "lifecycle.GetInstalledChaincodePackageResult" => lifecycle::GetInstalledChaincodePackageResult,
    "lifecycle.InstallChaincodeArgs" => lifecycle::InstallChaincodeArgs,
    "lifecycle.InstallChaincodeResult" => lifecycle::InstallChaincodeResult,
    "lifecycle.QueryApprovedChaincodeDefinitionArgs" => lifecycle::QueryApprovedChaincodeDefinitionArgs,
    "lifecycle.QueryApprovedChaincodeDefinitionResult" => lifecycle::QueryApprovedChaincodeDefinitionResult,
    "lifecycle.QueryApprovedChaincodeDefinitionsArgs" => lifecycle::QueryApprovedChaincodeDefinitionsArgs,
    "lifecycle.QueryApprovedChaincodeDefinitionsResult.ApprovedChaincodeDefinition" =>
        lifecycle::query_approved_chaincode_definitions_result::ApprovedChaincodeDefinition,
    "lifecycle.QueryApprovedChaincodeDefinitionsResult" => lifecycle::QueryApprovedChaincodeDefinitionsResult,
    "lifecycle.QueryChaincodeDefinitionArgs" => lifecycle::QueryChaincodeDefinitionArgs,
    "lifecycle.QueryChaincodeDefinitionResult" => lifecycle::QueryChaincodeDefinitionResult,
    "lifecycle.QueryChaincodeDefinitionsArgs" => lifecycle::QueryChaincodeDefinitionsArgs,
    "lifecycle.QueryChaincodeDefinitionsResult" => lifecycle::QueryChaincodeDefinitionsResult,
    "lifecycle.QueryChaincodeDefinitionsResult.ChaincodeDefinition" => lifecycle::query_chaincode_definitions_result::ChaincodeDefinition,
    "lifecycle.QueryInstalledChaincodeArgs" => lifecycle::QueryInstalledChaincodeArgs,
    "lifecycle.QueryInstalledChaincodeResult" => lifecycle::QueryInstalledChaincodeResult,
    "lifecycle.QueryInstalledChaincodeResult.Chaincode" => lifecycle::query_installed_chaincode_result::Chaincode,
    "lifecycle.QueryInstalledChaincodeResult.References" => lifecycle::query_installed_chaincode_result::References,
    "lifecycle.QueryInstalledChaincodesArgs" => lifecycle::QueryInstalledChaincodesArgs,
    "lifecycle.QueryInstalledChaincodesResult" => lifecycle::QueryInstalledChaincodesResult,
    "lifecycle.QueryInstalledChaincodesResult.Chaincode" => lifecycle::query_installed_chaincodes_result::Chaincode,
    "lifecycle.QueryInstalledChaincodesResult.InstalledChaincode" => lifecycle::query_installed_chaincodes_result::InstalledChaincode,
    "lifecycle.QueryInstalledChaincodesResult.References" => lifecycle::query_installed_chaincodes_result::References,
    "lifecycle.StateData" => lifecycle::StateData,
    "lifecycle.StateMetadata" => lifecycle::StateMetadata,
    "msp.FabricCryptoConfig" => msp::FabricCryptoConfig,
    "msp.FabricMSPConfig" => msp::FabricMspConfig,
    "msp.FabricNodeOUs" => msp::FabricNodeOUs,
    "msp.FabricOUIdentifier" => msp::FabricOuIdentifier,
    "msp.IdemixMSPConfig" => msp::IdemixMspConfig,
    "msp.IdemixMSPSignerConfig" => msp::IdemixMspSignerConfig,
    "msp.KeyInfo" => msp::KeyInfo,
    "msp.MSPConfig" => msp::MspConfig,
    "msp.SerializedIdemixIdentity" => msp::SerializedIdemixIdentity,
    "msp.SerializedIdentity" => msp::SerializedIdentity,
    "msp.SigningIdentityInfo" => msp::SigningIdentityInfo,
    "orderer.BatchSize" => orderer::BatchSize,
    "orderer.BatchTimeout" => orderer::BatchTimeout,
    "orderer.BroadcastResponse" => orderer::BroadcastResponse,
    "orderer.ChannelRestrictions" => orderer::ChannelRestrictions,
    "orderer.ConsensusType" => orderer::ConsensusType,
    "orderer.DeliverResponse" => orderer::DeliverResponse,
    "orderer.KafkaBrokers" => orderer::KafkaBrokers,
    "orderer.SeekInfo" => orderer::SeekInfo,
    "orderer.SeekNewest" => orderer::SeekNewest,
    "orderer.SeekNextCommit" => orderer::SeekNextCommit,
    "orderer.SeekOldest" => orderer::SeekOldest,
    "orderer.SeekPosition" => orderer::SeekPosition,
    "orderer.SeekSpecified" => orderer::SeekSpecified,
    "protos.ACLs" => protos::AcLs,
    "protos.APIResource" => protos::ApiResource,
    "protos.AnchorPeer" => protos::AnchorPeer,
    "protos.AnchorPeers" => protos::AnchorPeers,
    "protos.ApplicationPolicy" => protos::ApplicationPolicy,
    "protos.BlockAndPrivateData" => protos::BlockAndPrivateData,
    "protos.CDSData" => protos::CdsData,
    "protos.ChaincodeAction" => protos::ChaincodeAction,
    "protos.ChaincodeActionPayload" => protos::ChaincodeActionPayload,
    "protos.ChaincodeAdditionalParams" => protos::ChaincodeAdditionalParams,
    "protos.ChaincodeCall" => protos::ChaincodeCall,
    "protos.ChaincodeData" => protos::ChaincodeData,
    "protos.ChaincodeDeploymentSpec" => protos::ChaincodeDeploymentSpec,
    "protos.ChaincodeEndorsedAction" => protos::ChaincodeEndorsedAction,
    "protos.ChaincodeEndorsement" => protos::ChaincodeEndorsement,
    "protos.ChaincodeEvent" => protos::ChaincodeEvent,
    "protos.ChaincodeHeaderExtension" => protos::ChaincodeHeaderExtension,
    "protos.ChaincodeID" => protos::ChaincodeId,
    "protos.ChaincodeIdentifier" => protos::ChaincodeIdentifier,
    "protos.ChaincodeInfo" => protos::ChaincodeInfo,
    "protos.ChaincodeInput" => protos::ChaincodeInput,
    "protos.ChaincodeInterest" => protos::ChaincodeInterest,
    "protos.ChaincodeInvocationSpec" => protos::ChaincodeInvocationSpec,
    "protos.ChaincodeMessage" => protos::ChaincodeMessage,
    "protos.ChaincodeProposalPayload" => protos::ChaincodeProposalPayload,
    "protos.ChaincodeQueryResponse" => protos::ChaincodeQueryResponse,
    "protos.ChaincodeSpec" => protos::ChaincodeSpec,
    "protos.ChaincodeValidation" => protos::ChaincodeValidation,
    "protos.ChannelInfo" => protos::ChannelInfo,
    "protos.ChannelQueryResponse" => protos::ChannelQueryResponse,
    "protos.CollectionConfig" => protos::CollectionConfig,
    "protos.CollectionConfigPackage" => protos::CollectionConfigPackage,
    "protos.CollectionPolicyConfig" => protos::CollectionPolicyConfig,
    "protos.ConfigTree" => protos::ConfigTree,
    "protos.DelState" => protos::DelState,
    "protos.DeliverResponse" => protos::DeliverResponse,
    "protos.Endorsement" => protos::Endorsement,
    "protos.FilteredBlock" => protos::FilteredBlock,
    "protos.FilteredChaincodeAction" => protos::FilteredChaincodeAction,
    "protos.FilteredTransaction" => protos::FilteredTransaction,
    "protos.FilteredTransactionActions" => protos::FilteredTransactionActions,
    "protos.GetHistoryForKey" => protos::GetHistoryForKey,
    "protos.GetQueryResult" => protos::GetQueryResult,
    "protos.GetState" => protos::GetState,
    "protos.GetStateByRange" => protos::GetStateByRange,
    "protos.GetStateMetadata" => protos::GetStateMetadata,
    "protos.GetStateMultiple" => protos::GetStateMultiple,
    "protos.GetStateMultipleResult" => protos::GetStateMultipleResult,
    "protos.JoinBySnapshotStatus" => protos::JoinBySnapshotStatus,
    "protos.LifecycleEvent" => protos::LifecycleEvent,
    "protos.ProcessedTransaction" => protos::ProcessedTransaction,
    "protos.Proposal" => protos::Proposal,
    "protos.ProposalResponse" => protos::ProposalResponse,
    "protos.ProposalResponsePayload" => protos::ProposalResponsePayload,
    "protos.PurgePrivateState" => protos::PurgePrivateState,
    "protos.PutState" => protos::PutState,
    "protos.PutStateMetadata" => protos::PutStateMetadata,
    "protos.QueryMetadata" => protos::QueryMetadata,
    "protos.QueryResponse" => protos::QueryResponse,
    "protos.QueryResponseMetadata" => protos::QueryResponseMetadata,
    "protos.QueryResultBytes" => protos::QueryResultBytes,
    "protos.QueryStateClose" => protos::QueryStateClose,
    "protos.QueryStateNext" => protos::QueryStateNext,
    "protos.Response" => protos::Response,
    "protos.SignedProposal" => protos::SignedProposal,
    "protos.StateMetadata" => protos::StateMetadata,
    "protos.StateMetadataResult" => protos::StateMetadataResult,
    "protos.StaticCollectionConfig" => protos::StaticCollectionConfig,
    "protos.Transaction" => protos::Transaction,
    "protos.TransactionAction" => protos::TransactionAction,
    "protos.VSCCArgs" => protos::VsccArgs,
    "protos.WriteBatchState" => protos::WriteBatchState,
    "protos.WriteRecord" => protos::WriteRecord,
    "queryresult.KV" => queryresult::Kv,
    "queryresult.KeyModification" => queryresult::KeyModification,
    "rwset.CollectionHashedReadWriteSet" => rwset::CollectionHashedReadWriteSet,
    "rwset.CollectionPvtReadWriteSet" => rwset::CollectionPvtReadWriteSet,
    "rwset.NsPvtReadWriteSet" => rwset::NsPvtReadWriteSet,
    "rwset.NsReadWriteSet" => rwset::NsReadWriteSet,
    "rwset.TxPvtReadWriteSet" => rwset::TxPvtReadWriteSet,
    "rwset.TxReadWriteSet" => rwset::TxReadWriteSet,
}

/// Nested messages deeper than this are left unset (recursive types such as `SignaturePolicy`
/// and `ConfigGroup` would not end otherwise).
const MAX_DEPTH: usize = 3;
/// Seed of the values Rust encodes for Node to decode.
const SEED_RUST_TO_NODE: u64 = 1;
/// Seed of the values Node builds for Rust to decode.
const SEED_NODE_TO_RUST: u64 = 101;

// ---------------------------------------------------------------------------------------------
// Populating every field deterministically.

fn populate(desc: &MessageDescriptor, k: usize, seed: u64, depth: usize) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        if let Some(oneof) = field.containing_oneof() {
            let members: Vec<u32> = oneof.fields().map(|f| f.number()).collect();
            if members[k % members.len()] != field.number() {
                continue;
            }
        }
        if let Some(value) = field_value(&field, k, seed, depth) {
            msg.set_field(&field, value);
        }
    }
    msg
}

fn field_value(field: &FieldDescriptor, k: usize, seed: u64, depth: usize) -> Option<Value> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("map fields have entry messages")
        };
        let key_field = entry.map_entry_key_field();
        let value_field = entry.map_entry_value_field();
        let mut map = HashMap::new();
        for i in 0..2 {
            // The first instance's first entry has a default key and a default value: Fabric's
            // encoders still write both, and google-protobuf insists on reading both.
            let (key, value) = if k == 0 && i == 0 {
                (
                    default_key(&key_field.kind()),
                    Value::default_value(&value_field.kind()),
                )
            } else {
                let value = single(&value_field, k + i, seed, depth)
                    .unwrap_or_else(|| Value::default_value(&value_field.kind()));
                (map_key(&key_field.kind(), i, seed), value)
            };
            map.insert(key, value);
        }
        return Some(Value::Map(map));
    }
    if field.is_list() {
        let items: Vec<Value> = (0..2)
            .filter_map(|i| single(field, k + i, seed + i as u64, depth))
            .collect();
        return (!items.is_empty()).then_some(Value::List(items));
    }
    let value = single(field, k, seed, depth)?;
    let is_message = matches!(field.kind(), Kind::Message(_));
    if field.containing_oneof().is_none()
        && !is_message
        && value == Value::default_value(&field.kind())
    {
        // proto3 cannot tell a default from an unset field; leave it unset.
        return None;
    }
    Some(value)
}

fn single(field: &FieldDescriptor, k: usize, seed: u64, depth: usize) -> Option<Value> {
    let n = u64::from(field.number());
    let s = seed + k as u64;
    let negative = (n + s) % 2 == 1;
    Some(match field.kind() {
        Kind::Double => Value::F64(0.5 + (n + s) as f64),
        Kind::Float => Value::F32(0.25 + (n + s) as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let v = (1000 + n * 37 + s) as i32;
            Value::I32(if negative { -v } else { v })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            // Beyond 32 bits, within JavaScript's exact integers (2^53).
            let v = (5_000_000_000 + n * 1_000_003 + s) as i64;
            Value::I64(if negative { -v } else { v })
        }
        // Beyond i32::MAX, so a signed reading would show.
        Kind::Uint32 | Kind::Fixed32 => Value::U32(3_000_000_000 + (n * 1000 + s) as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64((1 << 40) + n * 1_000_003 + s),
        Kind::Bool => Value::Bool(true),
        Kind::String => Value::String(format!("{}-{s}-{depth}-证照", field.name())),
        Kind::Bytes => Value::Bytes(vec![n as u8, s as u8, depth as u8, 0x00, 0xff, 0x80].into()),
        Kind::Enum(e) => {
            let non_zero: Vec<i32> = e.values().map(|v| v.number()).filter(|v| *v != 0).collect();
            if non_zero.is_empty() {
                Value::EnumNumber(0)
            } else {
                Value::EnumNumber(non_zero[(s as usize + n as usize) % non_zero.len()])
            }
        }
        Kind::Message(m) => {
            if depth >= MAX_DEPTH {
                return None;
            }
            Value::Message(populate(&m, k, seed + 1, depth + 1))
        }
    })
}

fn default_key(kind: &Kind) -> MapKey {
    match kind {
        Kind::String => MapKey::String(String::new()),
        Kind::Bool => MapKey::Bool(false),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(0),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(0),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(0),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(0),
        other => panic!("map key kind {other:?}"),
    }
}

fn map_key(kind: &Kind, i: usize, seed: u64) -> MapKey {
    // Numeric keys 9 and 1x sort differently as numbers and as strings.
    let number = if i == 0 { 9 } else { 10 + seed % 90 };
    match kind {
        Kind::String => MapKey::String(format!("{}-key-{seed}", ["b", "a"][i % 2])),
        Kind::Bool => MapKey::Bool(i == 1),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(number as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(number as i64),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(number as u32),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(number),
        other => panic!("map key kind {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// What the official classes should show and be told.

/// google-protobuf's JavaScript field name: words split at '_', lowercased, camel-cased.
fn js_name(name: &str) -> String {
    let mut out = String::new();
    for (i, word) in name.split('_').filter(|w| !w.is_empty()).enumerate() {
        let word = word.to_lowercase();
        if i == 0 {
            out.push_str(&word);
        } else {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        }
    }
    out
}

fn key_json(key: &MapKey) -> Json {
    match key {
        MapKey::String(s) => json!(s),
        MapKey::Bool(b) => json!(b),
        MapKey::I32(v) => json!(v),
        MapKey::I64(v) => json!(v),
        MapKey::U32(v) => json!(v),
        MapKey::U64(v) => json!(v),
    }
}

/// The string google-protobuf sorts map keys by, as UTF-16 code units (JavaScript order).
fn js_key_order(key: &MapKey) -> Vec<u16> {
    let text = match key {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
    };
    text.encode_utf16().collect()
}

fn value_json(value: &Value) -> Json {
    match value {
        Value::Bool(b) => json!(b),
        Value::I32(v) => json!(v),
        Value::I64(v) => json!(v),
        Value::U32(v) => json!(v),
        Value::U64(v) => json!(v),
        Value::F32(v) => json!(v),
        Value::F64(v) => json!(v),
        Value::String(s) => json!(s),
        Value::Bytes(b) => json!(B64.encode(b)),
        Value::EnumNumber(v) => json!(v),
        Value::Message(m) => to_object(m),
        Value::List(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Map(_) => unreachable!("maps are handled by to_object"),
    }
}

/// What google-protobuf's generated `toObject()` returns for this value.
fn to_object(msg: &DynamicMessage) -> Json {
    let mut obj = serde_json::Map::new();
    for field in msg.descriptor().fields() {
        let name = js_name(field.name());
        let value = msg.get_field(&field);
        if field.is_map() {
            let Value::Map(map) = value.as_ref() else {
                unreachable!("map field")
            };
            let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
            entries.sort_by_key(|(k, _)| js_key_order(k));
            let pairs = entries
                .into_iter()
                .map(|(k, v)| match v {
                    // google-protobuf's map toObject() leaves bytes as a Uint8Array (which
                    // roundtrip.js shows as { u8: base64 }), unlike bytes fields.
                    Value::Bytes(b) => json!([key_json(k), { "u8": B64.encode(b) }]),
                    v => json!([key_json(k), value_json(v)]),
                })
                .collect();
            obj.insert(format!("{name}Map"), Json::Array(pairs));
        } else if field.is_list() {
            obj.insert(format!("{name}List"), value_json(&value));
        } else if field.containing_oneof().is_some() {
            if msg.has_field(&field) {
                obj.insert(name, value_json(&value));
            } else if field.kind() == Kind::Bytes {
                // Unset oneof bytes still read as "" through the generated *_asB64 getter.
                obj.insert(name, json!(""));
            }
        } else if matches!(field.kind(), Kind::Message(_)) {
            if msg.has_field(&field) {
                obj.insert(name, value_json(&value));
            }
        } else {
            obj.insert(name, value_json(&value));
        }
    }
    Json::Object(obj)
}

fn kind_tag(kind: &Kind) -> &'static str {
    match kind {
        Kind::Bytes => "bytes",
        Kind::Message(_) => "message",
        Kind::Enum(_) => "enum",
        _ => "scalar",
    }
}

fn spec_value(value: &Value) -> Json {
    match value {
        Value::Message(m) => spec(m),
        Value::List(items) => Json::Array(items.iter().map(spec_value).collect()),
        other => value_json(other),
    }
}

/// Instructions for building this value with the official classes' setters.
fn spec(msg: &DynamicMessage) -> Json {
    let mut fields = Vec::new();
    for field in msg.descriptor().fields() {
        if !msg.has_field(&field) {
            continue;
        }
        let value = msg.get_field(&field);
        let (label, kind, json_value) = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("map field")
            };
            let Value::Map(map) = value.as_ref() else {
                unreachable!("map field")
            };
            let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let pairs = entries
                .into_iter()
                .map(|(k, v)| json!([key_json(k), spec_value(v)]))
                .collect();
            (
                "map",
                kind_tag(&entry.map_entry_value_field().kind()),
                Json::Array(pairs),
            )
        } else if field.is_list() {
            ("repeated", kind_tag(&field.kind()), spec_value(&value))
        } else {
            ("single", kind_tag(&field.kind()), spec_value(&value))
        };
        fields.push(json!({
            "name": field.name(),
            "kind": kind,
            "label": label,
            "value": json_value,
        }));
    }
    json!({ "type": msg.descriptor().full_name(), "fields": fields })
}

// ---------------------------------------------------------------------------------------------
// Predicting exact bytes: Fabric's (Go) field order, or google-protobuf's.

#[derive(Clone, Copy, PartialEq, Debug)]
enum Order {
    /// Fields by number; map entries by key (numbers numerically, strings bytewise).
    Fabric,
    /// Fields in declaration order; map entries by the key's string form (google-protobuf).
    GoogleProtobufJs,
}

fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = buf[*pos];
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        if value < 0x80 {
            out.push(value as u8);
            return;
        }
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
}

/// One field occurrence on the wire: number, wire type and payload (without length prefix).
struct WireField {
    number: u32,
    wire_type: u8,
    payload: Vec<u8>,
}

fn parse_wire(buf: &[u8]) -> Vec<WireField> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos);
        let (number, wire_type) = ((key >> 3) as u32, (key & 7) as u8);
        let start = pos;
        let payload = match wire_type {
            0 => {
                read_varint(buf, &mut pos);
                buf[start..pos].to_vec()
            }
            1 => {
                pos += 8;
                buf[start..pos].to_vec()
            }
            2 => {
                let len = read_varint(buf, &mut pos) as usize;
                pos += len;
                buf[pos - len..pos].to_vec()
            }
            5 => {
                pos += 4;
                buf[start..pos].to_vec()
            }
            other => panic!("wire type {other} in field {number}"),
        };
        out.push(WireField {
            number,
            wire_type,
            payload,
        });
    }
    out
}

fn emit(number: u32, wire_type: u8, payload: &[u8], out: &mut Vec<u8>) {
    write_varint((u64::from(number) << 3) | u64::from(wire_type), out);
    if wire_type == 2 {
        write_varint(payload.len() as u64, out);
    }
    out.extend_from_slice(payload);
}

fn wire_type_of(kind: &Kind) -> u8 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => 1,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => 5,
        Kind::String | Kind::Bytes | Kind::Message(_) => 2,
        _ => 0,
    }
}

fn default_payload(kind: &Kind) -> Vec<u8> {
    match wire_type_of(kind) {
        0 => vec![0],
        1 => vec![0; 8],
        5 => vec![0; 4],
        _ => Vec::new(),
    }
}

/// Sort key of an encoded map key under the given order.
fn map_key_order(kind: &Kind, payload: &[u8], order: Order) -> (Vec<u8>, Vec<u16>, i128) {
    let numeric = |payload: &[u8]| -> i128 {
        let mut pos = 0;
        let raw = read_varint(payload, &mut pos);
        match kind {
            Kind::Int32 => i128::from(raw as i32),
            Kind::Int64 => i128::from(raw as i64),
            Kind::Uint32 | Kind::Uint64 | Kind::Bool => i128::from(raw),
            other => panic!("map key kind {other:?} not modelled"),
        }
    };
    match (kind, order) {
        (Kind::String, Order::Fabric) => (payload.to_vec(), Vec::new(), 0),
        (Kind::String, Order::GoogleProtobufJs) => (
            Vec::new(),
            String::from_utf8_lossy(payload).encode_utf16().collect(),
            0,
        ),
        (_, Order::Fabric) => (Vec::new(), Vec::new(), numeric(payload)),
        (Kind::Bool, Order::GoogleProtobufJs) => {
            let text = if numeric(payload) != 0 {
                "true"
            } else {
                "false"
            };
            (Vec::new(), text.encode_utf16().collect(), 0)
        }
        (_, Order::GoogleProtobufJs) => (
            Vec::new(),
            numeric(payload).to_string().encode_utf16().collect(),
            0,
        ),
    }
}

/// Re-encodes `bytes` (a `desc` message) with fields, nested messages and map entries in the
/// given order; map entries always carry key and value. Field contents are untouched.
fn reorder(bytes: &[u8], desc: &MessageDescriptor, order: Order) -> Vec<u8> {
    let declared: Vec<u32> = desc
        .descriptor_proto()
        .field
        .iter()
        .map(|f| f.number() as u32)
        .collect();
    let mut fields = parse_wire(bytes);
    match order {
        Order::Fabric => fields.sort_by_key(|f| f.number),
        Order::GoogleProtobufJs => fields.sort_by_key(|f| {
            declared
                .iter()
                .position(|n| *n == f.number)
                .unwrap_or(usize::MAX)
        }),
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < fields.len() {
        let number = fields[i].number;
        let Some(field) = desc.get_field(number) else {
            let f = &fields[i];
            emit(f.number, f.wire_type, &f.payload, &mut out);
            i += 1;
            continue;
        };
        let run_end = fields[i..]
            .iter()
            .position(|f| f.number != number)
            .map_or(fields.len(), |p| i + p);
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("map field")
            };
            let key_kind = entry.map_entry_key_field().kind();
            let value_kind = entry.map_entry_value_field().kind();
            let mut entries = Vec::new();
            for f in &fields[i..run_end] {
                let mut key = default_payload(&key_kind);
                let mut value = default_payload(&value_kind);
                for part in parse_wire(&f.payload) {
                    match part.number {
                        1 => key = part.payload,
                        2 => value = part.payload,
                        _ => {}
                    }
                }
                if let Kind::Message(m) = &value_kind {
                    value = reorder(&value, m, order);
                }
                let mut body = Vec::new();
                emit(1, wire_type_of(&key_kind), &key, &mut body);
                emit(2, wire_type_of(&value_kind), &value, &mut body);
                entries.push((map_key_order(&key_kind, &key, order), body));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, body) in entries {
                emit(number, 2, &body, &mut out);
            }
        } else {
            for f in &fields[i..run_end] {
                match field.kind() {
                    Kind::Message(m) if f.wire_type == 2 => {
                        emit(number, 2, &reorder(&f.payload, &m, order), &mut out)
                    }
                    _ => emit(number, f.wire_type, &f.payload, &mut out),
                }
            }
        }
        i = run_end;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The official schema as its generated code describes it.

/// The google-protobuf writer our descriptor implies for a field (or a map key or value).
fn writer_of(field: &FieldDescriptor, element: bool) -> String {
    let base = match field.kind() {
        Kind::Double => "Double",
        Kind::Float => "Float",
        Kind::Int32 => "Int32",
        Kind::Int64 => "Int64",
        Kind::Uint32 => "Uint32",
        Kind::Uint64 => "Uint64",
        Kind::Sint32 => "Sint32",
        Kind::Sint64 => "Sint64",
        Kind::Fixed32 => "Fixed32",
        Kind::Fixed64 => "Fixed64",
        Kind::Sfixed32 => "Sfixed32",
        Kind::Sfixed64 => "Sfixed64",
        Kind::Bool => "Bool",
        Kind::String => "String",
        Kind::Bytes => "Bytes",
        Kind::Enum(_) => "Enum",
        Kind::Message(_) => "Message",
    };
    if element || !field.is_list() {
        format!("write{base}")
    } else if matches!(field.kind(), Kind::String | Kind::Bytes | Kind::Message(_)) {
        format!("writeRepeated{base}")
    } else if field.is_packed() {
        format!("writePacked{base}")
    } else {
        format!("writeRepeated{base}")
    }
}

/// Our description of one message in the official description's form.
fn our_message_shape(desc: &MessageDescriptor) -> Json {
    let mut fields = Vec::new();
    let mut repeated = Vec::new();
    for proto in &desc.descriptor_proto().field {
        let field = desc
            .get_field(proto.number() as u32)
            .expect("declared field");
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("map field")
            };
            fields.push(json!({
                "number": field.number(),
                "writer": "map",
                "keyWriter": writer_of(&entry.map_entry_key_field(), true),
                "valueWriter": writer_of(&entry.map_entry_value_field(), true),
            }));
        } else {
            if field.is_list() {
                repeated.push(field.number());
            }
            fields.push(json!({ "number": field.number(), "writer": writer_of(&field, false) }));
        }
    }
    let oneofs: Vec<Vec<u32>> = desc
        .oneofs()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.fields().map(|f| f.number()).collect())
        .collect();
    json!({ "fields": fields, "oneofs": oneofs, "repeated": repeated })
}

fn compare_structure(pool: &DescriptorPool, files: &[String], schema: &Json) -> Vec<String> {
    let mut failures = Vec::new();
    let mut official_paths = BTreeSet::new();
    for file in files {
        let official = &schema[file.as_str()];
        if official.get("missing").is_some() || official.is_null() {
            failures.push(format!(
                "{file}: no official counterpart in @hyperledger/fabric-protos"
            ));
            continue;
        }
        // Messages.
        let ours: BTreeMap<String, MessageDescriptor> = pool
            .all_messages()
            .filter(|m| m.parent_file().name() == file && !m.is_map_entry())
            .map(|m| (m.full_name().to_string(), m))
            .collect();
        let theirs = official["messages"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for name in ours.keys() {
            if !theirs.contains_key(name) {
                failures.push(format!(
                    "{file}: message {name} is not in the official schema"
                ));
            }
        }
        for (name, shape) in &theirs {
            match ours.get(name) {
                None => failures.push(format!("{file}: official message {name} is missing here")),
                Some(desc) => {
                    let mine = our_message_shape(desc);
                    for key in ["fields", "oneofs"] {
                        if mine[key] != shape[key] {
                            failures.push(format!(
                                "{name}: {key} differ\n  ours:     {}\n  official: {}",
                                mine[key], shape[key]
                            ));
                        }
                    }
                    let set = |v: &Json| -> BTreeSet<u64> {
                        v.as_array()
                            .map(|a| a.iter().filter_map(Json::as_u64).collect())
                            .unwrap_or_default()
                    };
                    if set(&mine["repeated"]) != set(&shape["repeated"]) {
                        failures.push(format!(
                            "{name}: repeated fields differ: ours {} official {}",
                            mine["repeated"], shape["repeated"]
                        ));
                    }
                }
            }
        }
        // Enums, names and values.
        let ours: BTreeMap<String, BTreeMap<String, i64>> = pool
            .all_enums()
            .filter(|e| e.parent_file().name() == file)
            .map(|e| {
                let values = e
                    .values()
                    .map(|v| (v.name().to_string(), i64::from(v.number())))
                    .collect();
                (e.full_name().to_string(), values)
            })
            .collect();
        let theirs: BTreeMap<String, BTreeMap<String, i64>> = official["enums"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(name, values)| {
                        let values = values
                            .as_object()
                            .map(|v| {
                                v.iter()
                                    .map(|(k, n)| (k.clone(), n.as_i64().unwrap_or(i64::MIN)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (name.clone(), values)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if ours != theirs {
            failures.push(format!(
                "{file}: enums differ\n  ours:     {ours:?}\n  official: {theirs:?}"
            ));
        }
        // Services.
        let fd = pool.get_file_by_name(file).expect("file in pool");
        let ours: BTreeSet<String> = fd
            .services()
            .flat_map(|s| {
                s.methods()
                    .map(|m| {
                        format!(
                            "/{}/{} {} {} {} {}",
                            s.full_name(),
                            m.name(),
                            m.is_client_streaming(),
                            m.is_server_streaming(),
                            m.input().full_name(),
                            m.output().full_name()
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut theirs = BTreeSet::new();
        if let Some(services) = official["services"].as_object() {
            for methods in services.values() {
                for m in methods.as_array().into_iter().flatten() {
                    official_paths.insert(m["path"].as_str().unwrap_or_default().to_string());
                    theirs.insert(format!(
                        "{} {} {} {} {}",
                        m["path"].as_str().unwrap_or_default(),
                        m["requestStream"],
                        m["responseStream"],
                        m["requestType"].as_str().unwrap_or("?"),
                        m["responseType"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
        if ours != theirs {
            failures.push(format!(
                "{file}: services differ\n  ours:     {ours:?}\n  official: {theirs:?}"
            ));
        }
    }
    let constants: BTreeSet<String> = fabric_protos::paths::ALL
        .iter()
        .map(|p| p.to_string())
        .collect();
    if constants != official_paths {
        failures.push(format!(
            "fabric_protos::paths::ALL {constants:?} != official method paths {official_paths:?}"
        ));
    }
    failures
}

// ---------------------------------------------------------------------------------------------
// The test.

fn run_node(dir: &Path, request: &Json) -> Json {
    let request_path = std::env::temp_dir().join(format!(
        "elicense-protos-conformance-{}.json",
        std::process::id()
    ));
    std::fs::write(&request_path, serde_json::to_vec(request).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(dir.join("protos/roundtrip.js"))
        .arg(&request_path)
        .current_dir(dir)
        .output()
        .expect("running node");
    let _ = std::fs::remove_file(&request_path);
    assert!(
        out.status.success(),
        "roundtrip.js failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("roundtrip.js output is JSON")
}

struct Case {
    id: String,
    desc: MessageDescriptor,
    value: DynamicMessage,
    /// The value's bytes (prost-reflect's encoding, before any ordering).
    bytes: Vec<u8>,
}

fn cases(messages: &[MessageDescriptor], seed: u64, prefix: &str) -> Vec<Case> {
    let mut out = Vec::new();
    for desc in messages {
        let instances = desc
            .oneofs()
            .map(|o| o.fields().len())
            .max()
            .unwrap_or(1)
            .max(1);
        for k in 0..instances {
            let value = populate(desc, k, seed, 0);
            let bytes = value.encode_to_vec();
            out.push(Case {
                id: format!("{prefix}:{}#{k}", desc.full_name()),
                desc: desc.clone(),
                value,
                bytes,
            });
        }
    }
    out
}

fn decode_b64(v: &Json) -> Vec<u8> {
    B64.decode(v.as_str().unwrap_or_default())
        .expect("base64 from node")
}

#[test]
fn schema_matches_official_fabric_protos_both_ways() {
    let Some(dir) = node_interop_dir() else {
        skip_or_fail("node and tests/interop/node_modules (cd tests/interop && npm ci)");
        return;
    };
    if !dir
        .join("node_modules/@hyperledger/fabric-protos/package.json")
        .exists()
    {
        skip_or_fail("@hyperledger/fabric-protos in tests/interop/node_modules (npm ci)");
        return;
    }

    let pool = DescriptorPool::decode(fabric_protos::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let files: Vec<String> = pool
        .files()
        .map(|f| f.name().to_string())
        .filter(|name| !name.starts_with("google/protobuf/"))
        .collect();
    let messages: Vec<MessageDescriptor> = pool
        .all_messages()
        .filter(|m| files.iter().any(|f| f == m.parent_file().name()) && !m.is_map_entry())
        .collect();

    let mut failures = Vec::new();

    // Every message has a generated Rust type listed here, and the list has nothing else.
    let listed: BTreeSet<&str> = CONCRETE.iter().copied().collect();
    let schema_names: BTreeSet<String> =
        messages.iter().map(|m| m.full_name().to_string()).collect();
    for name in &schema_names {
        if !listed.contains(name.as_str()) {
            failures.push(format!(
                "{name}: no generated Rust type listed in this test"
            ));
        }
    }
    for name in &listed {
        if !schema_names.contains(*name) {
            failures.push(format!("{name}: listed but not in the schema"));
        }
    }
    for (listed, reported) in concrete_reported_names() {
        if listed != reported {
            failures.push(format!("{listed}: generated type reports {reported}"));
        }
    }

    let forward = cases(&messages, SEED_RUST_TO_NODE, "rust");
    let reverse = cases(&messages, SEED_NODE_TO_RUST, "node");

    // Rust side of the forward direction: our generated types encode the value as Fabric does.
    let mut ours_forward = HashMap::new();
    for case in &forward {
        let name = case.desc.full_name();
        match concrete_roundtrip(name, &case.bytes) {
            Err(e) => failures.push(e),
            Ok(ours) => {
                let fabric = reorder(&case.bytes, &case.desc, Order::Fabric);
                if ours != fabric {
                    failures.push(format!(
                        "{}: our bytes differ from Fabric's encoding\n  ours:   {}\n  fabric: {}",
                        case.id,
                        B64.encode(&ours),
                        B64.encode(&fabric)
                    ));
                }
                match DynamicMessage::decode(case.desc.clone(), ours.as_slice()) {
                    Ok(back) if back == case.value => {}
                    other => failures.push(format!("{}: our bytes decode to {other:?}", case.id)),
                }
                ours_forward.insert(case.id.clone(), ours);
            }
        }
    }

    let request = json!({
        "files": files,
        "decode": forward
            .iter()
            .filter_map(|c| ours_forward.get(&c.id).map(|ours| json!({
                "id": c.id,
                "type": c.desc.full_name(),
                "b64": B64.encode(ours),
            })))
            .collect::<Vec<_>>(),
        "build": reverse
            .iter()
            .map(|c| json!({ "id": c.id, "spec": spec(&c.value) }))
            .collect::<Vec<_>>(),
    });
    let response = run_node(&dir, &request);

    failures.extend(compare_structure(&pool, &files, &response["schema"]));

    let mut order_only = BTreeSet::new();
    let by_id = |list: &Json| -> HashMap<String, Json> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|r| (r["id"].as_str().unwrap_or_default().to_string(), r.clone()))
            .collect()
    };

    // Forward: the official class decodes our bytes to the expected values and re-encodes them.
    let decoded = by_id(&response["decoded"]);
    let mut forward_checked = 0;
    for case in &forward {
        let Some(ours) = ours_forward.get(&case.id) else {
            continue;
        };
        let Some(result) = decoded.get(&case.id) else {
            failures.push(format!("{}: node returned nothing", case.id));
            continue;
        };
        if let Some(error) = result.get("error") {
            failures.push(format!("{}: official decoder failed: {error}", case.id));
            continue;
        }
        let official = decode_b64(&result["b64"]);
        let expected = reorder(ours, &case.desc, Order::GoogleProtobufJs);
        if official != expected {
            failures.push(format!(
                "{}: official re-encoding differs\n  ours:     {}\n  expected: {}\n  official: {}",
                case.id,
                B64.encode(ours),
                B64.encode(&expected),
                B64.encode(&official)
            ));
        } else if official != *ours {
            order_only.insert(case.desc.full_name().to_string());
        }
        let want = to_object(&case.value);
        if result["obj"] != want {
            failures.push(format!(
                "{}: official decoder saw other values\n  expected: {want}\n  official: {}",
                case.id, result["obj"]
            ));
        }
        forward_checked += 1;
    }

    // Reverse: values built by the official classes decode here to what was asked for.
    let built = by_id(&response["built"]);
    let mut reverse_checked = 0;
    for case in &reverse {
        let Some(result) = built.get(&case.id) else {
            failures.push(format!("{}: node returned nothing", case.id));
            continue;
        };
        if let Some(error) = result.get("error") {
            failures.push(format!(
                "{}: official classes could not build it: {error}",
                case.id
            ));
            continue;
        }
        let official = decode_b64(&result["b64"]);
        let expected_js = reorder(&case.bytes, &case.desc, Order::GoogleProtobufJs);
        if official != expected_js {
            failures.push(format!(
                "{}: official encoding is not the expected one\n  expected: {}\n  official: {}",
                case.id,
                B64.encode(&expected_js),
                B64.encode(&official)
            ));
        }
        match DynamicMessage::decode(case.desc.clone(), official.as_slice()) {
            Ok(back) if back == case.value => {}
            Ok(back) => failures.push(format!(
                "{}: decoded other values\n  expected: {}\n  decoded:  {}",
                case.id,
                to_object(&case.value),
                to_object(&back)
            )),
            Err(e) => failures.push(format!("{}: decoding failed: {e}", case.id)),
        }
        match concrete_roundtrip(case.desc.full_name(), &official) {
            Err(e) => failures.push(e),
            Ok(ours) => {
                let fabric = reorder(&case.bytes, &case.desc, Order::Fabric);
                if ours != fabric {
                    failures.push(format!(
                        "{}: our re-encoding differs from Fabric's\n  fabric: {}\n  ours:   {}",
                        case.id,
                        B64.encode(&fabric),
                        B64.encode(&ours)
                    ));
                }
                if ours != official {
                    order_only.insert(case.desc.full_name().to_string());
                }
            }
        }
        reverse_checked += 1;
    }

    println!(
        "{} files, {} message types: {} values checked Rust→Node, {} values checked Node→Rust",
        files.len(),
        messages.len(),
        forward_checked,
        reverse_checked
    );
    println!(
        "official bytes differ from ours only in field/map-entry order ({} types): {:?}",
        order_only.len(),
        order_only
    );
    let declared_out_of_order: Vec<&str> = messages
        .iter()
        .filter(|m| {
            let numbers: Vec<i32> = m
                .descriptor_proto()
                .field
                .iter()
                .map(|f| f.number())
                .collect();
            numbers.windows(2).any(|w| w[0] > w[1])
        })
        .map(|m| m.full_name())
        .collect();
    println!(
        "message types declaring fields out of number order (google-protobuf writes them in \
         declaration order): {declared_out_of_order:?}"
    );
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(40).collect();
        panic!(
            "{} conformance failures (first {}):\n{}",
            failures.len(),
            shown.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert_eq!(forward_checked, forward.len());
    assert_eq!(reverse_checked, reverse.len());
}
