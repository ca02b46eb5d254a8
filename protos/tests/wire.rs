//! Fast checks of the compiled schema: exact bytes of small messages, deterministic maps, and the
//! gRPC method paths against the compiled descriptor set.

use fabric_protos::common::{
    self, ChannelHeader, ConfigGroup, ConfigValue, HeaderType, SignaturePolicy,
};
use fabric_protos::{orderer, paths, protos};
use prost::Message;
use prost_types::FileDescriptorSet;

#[test]
fn channel_header_encodes_to_the_hand_computed_bytes() {
    let header = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        version: 1,
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        channel_id: "mychannel".into(),
        tx_id: "ab".into(),
        epoch: 7,
        extension: vec![0x12, 0x00],
        tls_cert_hash: vec![0xff],
    };
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x08, 0x03][..],                                  // 1 type: varint 3
        &[0x10, 0x01],                                      // 2 version: varint 1
        &[0x1a, 0x08,                                       // 3 timestamp: 8 bytes
          0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06,               //   seconds 1_700_000_000
          0x10, 0x05],                                      //   nanos 5
        &[0x22, 0x09], b"mychannel",                        // 4 channel_id
        &[0x2a, 0x02], b"ab",                               // 5 tx_id
        &[0x30, 0x07],                                      // 6 epoch: varint 7
        &[0x3a, 0x02, 0x12, 0x00],                          // 7 extension
        &[0x42, 0x01, 0xff],                                // 8 tls_cert_hash
    ]
    .concat();
    assert_eq!(header.encode_to_vec(), expected);
    assert_eq!(ChannelHeader::decode(expected.as_slice()).unwrap(), header);
}

#[test]
fn default_values_are_not_written() {
    assert!(ChannelHeader::default().encode_to_vec().is_empty());
    let status_only = orderer::BroadcastResponse {
        status: common::Status::Success as i32,
        info: String::new(),
    };
    // 200 as a varint is 0xc8 0x01.
    assert_eq!(status_only.encode_to_vec(), [0x08, 0xc8, 0x01]);
}

#[test]
fn oneof_variants_use_their_own_field_numbers() {
    let signed_by = SignaturePolicy {
        r#type: Some(common::signature_policy::Type::SignedBy(0)),
    };
    // A set oneof member is written even when it holds the default value.
    assert_eq!(signed_by.encode_to_vec(), [0x08, 0x00]);
    let n_out_of = SignaturePolicy {
        r#type: Some(common::signature_policy::Type::NOutOf(
            common::signature_policy::NOutOf {
                n: 1,
                rules: vec![signed_by.clone(), signed_by],
            },
        )),
    };
    assert_eq!(
        n_out_of.encode_to_vec(),
        [0x12, 0x0a, 0x08, 0x01, 0x12, 0x02, 0x08, 0x00, 0x12, 0x02, 0x08, 0x00]
    );
}

#[test]
fn map_entries_are_written_in_key_order() {
    let mut group = ConfigGroup::default();
    for key in ["Org2MSP", "Org1MSP", "Application"] {
        group.values.insert(
            key.to_string(),
            ConfigValue {
                version: 1,
                ..Default::default()
            },
        );
    }
    let bytes = group.encode_to_vec();
    let mut keys = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        // Each entry: tag 0x1a (field 3), length, then key (0x0a len bytes) and value.
        assert_eq!(rest[0], 0x1a);
        let len = rest[1] as usize;
        let entry = &rest[2..2 + len];
        assert_eq!(entry[0], 0x0a);
        let key_len = entry[1] as usize;
        keys.push(String::from_utf8(entry[2..2 + key_len].to_vec()).unwrap());
        rest = &rest[2 + len..];
    }
    assert_eq!(keys, ["Application", "Org1MSP", "Org2MSP"]);
}

#[test]
fn map_entries_carry_default_keys_and_values() {
    // Fabric (Go) and google-protobuf write both fields of every entry, defaults included.
    let mut caps = common::Capabilities::default();
    caps.capabilities
        .insert("V2_0".into(), common::Capability::default());
    assert_eq!(
        caps.encode_to_vec(),
        [0x0a, 0x08, 0x0a, 0x04, b'V', b'2', b'_', b'0', 0x12, 0x00]
    );
    let mut with_private = protos::BlockAndPrivateData::default();
    with_private
        .private_data_map
        .insert(0, fabric_protos::rwset::TxPvtReadWriteSet::default());
    assert_eq!(
        with_private.encode_to_vec(),
        [0x12, 0x04, 0x08, 0x00, 0x12, 0x00]
    );
    // Entries without key or value (as other encoders may send) still decode to defaults.
    let sparse =
        common::Capabilities::decode(&[0x0a, 0x06, 0x0a, 0x04, b'V', b'2', b'_', b'0'][..])
            .unwrap();
    assert_eq!(sparse, caps);
    assert_eq!(
        protos::BlockAndPrivateData::decode(&[0x12, 0x00][..]).unwrap(),
        with_private
    );
}

#[test]
fn bytes_fields_decode_as_protobuf_requires() {
    // A repeated scalar field: the last occurrence wins, as in every protobuf decoder.
    let twice = [
        &[0x0a, 0x02][..],
        b"ab",
        &[0x12, 0x01, 0x07],
        &[0x0a, 0x01],
        b"z",
    ]
    .concat();
    let env = common::Envelope::decode(&twice[..]).expect("decode");
    assert_eq!(env.payload, b"z");
    assert_eq!(env.signature, [0x07]);
    // Repeated bytes keep their order, empty elements included; a Bytes input decodes the same.
    let data = [&[0x0a, 0x01][..], b"a", &[0x0a, 0x00], &[0x0a, 0x02], b"bc"].concat();
    let block = common::BlockData::decode(prost::bytes::Bytes::from(data)).expect("decode");
    assert_eq!(block.data, vec![b"a".to_vec(), vec![], b"bc".to_vec()]);
    // A length past the end is the error prost gives, and the message round-trips otherwise.
    let err = common::Envelope::decode(&[0x0a, 0x05, b'a', b'b'][..]).expect_err("truncated");
    assert!(err.to_string().contains("buffer underflow"), "{err}");
    let err = common::Envelope::decode(&[0x0d, 0, 0, 0, 0][..]).expect_err("fixed32 for bytes");
    assert!(err.to_string().contains("invalid wire type"), "{err}");
    let env = common::Envelope {
        payload: vec![1; 300],
        signature: vec![2; 70],
    };
    assert_eq!(
        common::Envelope::decode(&env.encode_to_vec()[..]).unwrap(),
        env
    );
}

#[test]
fn messages_know_their_type_urls() {
    use prost::Name;
    assert_eq!(
        fabric_protos::gateway::ErrorDetail::type_url(),
        "type.googleapis.com/gateway.ErrorDetail"
    );
    assert_eq!(
        protos::ChaincodeMessage::full_name(),
        "protos.ChaincodeMessage"
    );
}

#[test]
fn chaincode_message_types_include_batch_and_multiple_get() {
    use protos::chaincode_message::Type;
    assert_eq!(Type::WriteBatchState as i32, 24);
    assert_eq!(Type::GetStateMultiple as i32, 25);
    assert_eq!(
        Type::from_str_name("PURGE_PRIVATE_DATA"),
        Some(Type::PurgePrivateData)
    );
}

fn descriptor_method_paths() -> Vec<String> {
    let set = FileDescriptorSet::decode(fabric_protos::FILE_DESCRIPTOR_SET).unwrap();
    let mut out = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                out.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    out
}

#[test]
fn method_path_constants_are_exactly_the_services_of_the_schema() {
    let mut from_schema = descriptor_method_paths();
    let mut constants: Vec<String> = paths::ALL.iter().map(|p| p.to_string()).collect();
    from_schema.sort();
    constants.sort();
    assert_eq!(constants, from_schema);
}

#[test]
fn method_paths_are_fabrics() {
    assert_eq!(paths::GATEWAY_ENDORSE, "/gateway.Gateway/Endorse");
    assert_eq!(paths::CHAINCODE_CONNECT, "/protos.Chaincode/Connect");
    assert_eq!(
        paths::ATOMIC_BROADCAST_BROADCAST,
        "/orderer.AtomicBroadcast/Broadcast"
    );
    assert_eq!(
        paths::DELIVER_DELIVER_FILTERED,
        "/protos.Deliver/DeliverFiltered"
    );
    assert_eq!(
        paths::ENDORSER_PROCESS_PROPOSAL,
        "/protos.Endorser/ProcessProposal"
    );
    assert_eq!(
        paths::CHAINCODE_SUPPORT_REGISTER,
        "/protos.ChaincodeSupport/Register"
    );
}

#[test]
fn generated_servers_route_the_method_paths() {
    // The generated server source names each path literally; a renamed rpc would drop it.
    let generated = [
        include_str!(concat!(env!("OUT_DIR"), "/gateway.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/protos.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/orderer.rs")),
    ]
    .concat();
    for path in paths::ALL {
        assert!(
            generated.contains(&format!("\"{path}\"")),
            "{path} not in generated code"
        );
    }
}
