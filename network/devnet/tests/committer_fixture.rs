//! Test fixture shared by the committer, configtx and orderer tests (included with `#[path]`):
//! organisations with CAs and NodeOU identities generated at test time, channel configuration,
//! and endorser transactions built as Fabric's `protoutil` builds them.
#![allow(dead_code, missing_docs)]

use fabric_common::crypto::{Signer, SigningKey};
use fabric_devnet::configtx::{ChannelInput, OrdererOrgInput, OrgMsp};
use fabric_devnet::ledger::TxRwSet;
use fabric_devnet::orderer::blockcutter::BatchConfig;
use fabric_protos::common::{
    ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use fabric_protos::msp::SerializedIdentity;
use fabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeHeaderExtension,
    ChaincodeId, ChaincodeProposalPayload, Endorsement, ProposalResponsePayload, Response,
    Transaction, TransactionAction,
};
use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
};
use sha2::{Digest, Sha256};

/// An organisation with its own CA.
pub struct Org {
    pub name: String,
    pub msp_id: String,
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// An enrolled identity.
pub struct User {
    pub msp_id: String,
    pub cert_pem: String,
    pub serialized: Vec<u8>,
    pub key: SigningKey,
}

impl User {
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.key.sign(msg).unwrap()
    }
}

impl Org {
    pub fn new(name: &str) -> Org {
        let msp_id = format!("{name}MSP");
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::OrganizationName, name);
        p.distinguished_name
            .push(DnType::CommonName, format!("ca.{name}"));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).unwrap();
        Org {
            name: name.into(),
            msp_id,
            ca_pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A NodeOU identity (`ou` = client, peer, admin or orderer), optionally already expired.
    pub fn user(&self, cn: &str, ou: &str, expired: bool) -> User {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::OrganizationName, self.name.as_str());
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, ou);
        p.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let cert_pem = cert.pem();
        let serialized = SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: cert_pem.as_bytes().to_vec(),
        }
        .encode_to_vec();
        User {
            msp_id: self.msp_id.clone(),
            cert_pem,
            serialized,
            key: SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap(),
        }
    }

    pub fn msp(&self) -> OrgMsp {
        OrgMsp {
            name: self.name.clone(),
            msp_id: self.msp_id.clone(),
            ca_certs: vec![self.ca_pem.clone()],
            tls_ca_certs: vec![self.ca_pem.clone()],
            node_ous: true,
            ..Default::default()
        }
    }
}

pub fn batch() -> BatchConfig {
    BatchConfig {
        max_message_count: 10,
        absolute_max_bytes: 1024 * 1024,
        preferred_max_bytes: 512 * 1024,
        batch_timeout: std::time::Duration::from_millis(200),
    }
}

pub fn channel_input(channel: &str, orgs: &[&Org], orderer: &Org) -> ChannelInput {
    ChannelInput {
        channel_id: channel.into(),
        application_orgs: orgs.iter().map(|o| o.msp()).collect(),
        orderer: OrdererOrgInput {
            msp: orderer.msp(),
            endpoints: vec!["127.0.0.1:7050".into()],
            consenter: (
                "127.0.0.1".into(),
                7050,
                orderer.ca_pem.as_bytes().to_vec(),
                orderer.ca_pem.as_bytes().to_vec(),
            ),
        },
        batch: batch(),
    }
}

/// An endorser transaction's parts before the envelope is sealed, so tests can tamper.
pub struct TxParts {
    pub txid: String,
    pub payload: Payload,
}

impl TxParts {
    pub fn seal(&self, creator: &User) -> Envelope {
        let payload = self.payload.encode_to_vec();
        Envelope {
            signature: creator.sign(&payload),
            payload,
        }
    }
}

/// Builds an endorser transaction like `protoutil.CreateSignedTx`: proposal hash over the
/// headers and proposal payload, each endorser signing `prp ‖ endorser`.
pub fn endorser_tx(
    channel: &str,
    creator: &User,
    cc: &str,
    rwset: &TxRwSet,
    endorsers: &[&User],
) -> TxParts {
    let nonce: [u8; 24] = rand::random();
    let txid = hex::encode(Sha256::digest([&nonce[..], &creator.serialized].concat()));
    let chdr = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        version: 0,
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        channel_id: channel.into(),
        tx_id: txid.clone(),
        epoch: 0,
        extension: ChaincodeHeaderExtension {
            chaincode_id: Some(ChaincodeId {
                path: String::new(),
                name: cc.into(),
                version: String::new(),
            }),
        }
        .encode_to_vec(),
        tls_cert_hash: vec![],
    }
    .encode_to_vec();
    let shdr = SignatureHeader {
        creator: creator.serialized.clone(),
        nonce: nonce.to_vec(),
    }
    .encode_to_vec();
    let ccpp = ChaincodeProposalPayload {
        input: b"invoke".to_vec(),
        transient_map: Default::default(),
    }
    .encode_to_vec();
    let proposal_hash = Sha256::digest([&chdr[..], &shdr[..], &ccpp[..]].concat()).to_vec();
    let action = ChaincodeAction {
        results: rwset.encode(),
        events: vec![],
        response: Some(Response {
            status: 200,
            message: String::new(),
            payload: vec![],
        }),
        chaincode_id: Some(ChaincodeId {
            path: String::new(),
            name: cc.into(),
            version: "1.0".into(),
        }),
    };
    let prp = ProposalResponsePayload {
        proposal_hash,
        extension: action.encode_to_vec(),
    }
    .encode_to_vec();
    let endorsements = endorsers
        .iter()
        .map(|e| Endorsement {
            endorser: e.serialized.clone(),
            signature: e.sign(&[&prp[..], &e.serialized[..]].concat()),
        })
        .collect();
    let cap = ChaincodeActionPayload {
        chaincode_proposal_payload: ccpp,
        action: Some(ChaincodeEndorsedAction {
            proposal_response_payload: prp,
            endorsements,
        }),
    };
    let tx = Transaction {
        actions: vec![TransactionAction {
            header: shdr.clone(),
            payload: cap.encode_to_vec(),
        }],
    };
    TxParts {
        txid,
        payload: Payload {
            header: Some(Header {
                channel_header: chdr,
                signature_header: shdr,
            }),
            data: tx.encode_to_vec(),
        },
    }
}
