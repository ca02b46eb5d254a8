//! What the licence benches (`issuance`, `peer_replay`, and the SDK's `bulk_issue`) set up the
//! same way: the default topology's devnet running the licence chaincode in this process, its
//! catalogue seeded, and PublicSecurity's issuer connected to channel `police-service`.

use std::collections::BTreeMap;
use std::path::Path;

use elicense_chaincode::host::{HostOptions, HostedChaincode};
use elicense_model::{Catalogue, IssueRequest, LicenceId};
use elicense_sdk::fabric::profile::ConnectionProfile;
use elicense_sdk::{HolderKeyPair, LicenceClient, NewLicence};
use fabric_devnet::devnet::{Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;

/// The channel the benches issue on (PublicSecurity, ServiceCentre, Regulator).
pub const CH: &str = "police-service";
const CATALOGUE: &str = include_str!("../../../../fixtures/catalogue.json");

/// A running devnet with the licence chaincode, ready to issue.
pub struct LicenceNet {
    /// The devnet.
    pub devnet: Devnet,
    /// PublicSecurity's issuer, on [`CH`].
    pub issuer: LicenceClient,
    /// One holder key (PEM) for every licence: key generation is not what is measured.
    pub holder: String,
    /// Unix time in seconds when the network came up.
    pub now: i64,
    chaincode: HostedChaincode,
}

impl LicenceNet {
    /// Brings the default topology up in `dir`, hosts the licence chaincode, seeds the catalogue
    /// and waits until the issuer's own peer has committed it.
    pub async fn up(dir: &Path) -> Self {
        let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir))
            .await
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let deployed = devnet
            .deploy_topology_chaincode(&format!("127.0.0.1:{port}"), None)
            .unwrap();
        let chaincode = HostedChaincode::start(HostOptions::new(&deployed.package_id).port(port))
            .await
            .unwrap();
        let s = devnet.summary();
        let seeded = client(&s, "Regulator", "Admin")
            .init_catalogue(&Catalogue::from_json(CATALOGUE).unwrap())
            .await
            .unwrap();
        let issuer = client(&s, "PublicSecurity", "issuer1");
        // The catalogue was committed on the regulator's peer: the issuer's own peer must have it
        // too before the first issue is endorsed there.
        issuer.wait_for_block(seeded.block_number).await.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        LicenceNet {
            devnet,
            issuer,
            holder: HolderKeyPair::generate().public_pem(),
            now,
            chaincode,
        }
    }

    /// A licence of the issuer's ID card type with serial `serial` (9 characters or more).
    pub fn licence(&self, serial: &str) -> NewLicence {
        licence(serial, &self.holder, self.now)
    }

    /// Stops the chaincode server and the devnet.
    pub async fn down(self) {
        if let Err(e) = self.chaincode.stop().await {
            eprintln!("stopping the chaincode server: {e}");
        }
        self.devnet.down().await;
    }
}

fn client(s: &DevnetSummary, org: &str, user: &str) -> LicenceClient {
    let msp_id = &s.peers.iter().find(|p| p.org == org).unwrap().msp_id;
    let signing =
        elicense_sdk::fabric::msp::load_signing_identity(msp_id, &s.msp[org][user]).unwrap();
    let profile = ConnectionProfile::from_file(&s.profiles[org]).unwrap();
    LicenceClient::connect(&profile, &signing, CH).unwrap()
}

fn licence(serial: &str, holder_pem: &str, now: i64) -> NewLicence {
    let values: BTreeMap<String, String> = [
        ("name", format!("王五{serial}")),
        ("sex", "男".to_owned()),
        ("ethnicity", "汉".to_owned()),
        ("birth_date", "1975-06-30".to_owned()),
        ("address", format!("广东省深圳市福田区{serial}号")),
        (
            "id_number",
            format!("4403041975063{}", &serial[serial.len() - 5..]),
        ),
        ("issuing_authority", "深圳市公安局福田分局".to_owned()),
        ("valid_from", "2015-01-01".to_owned()),
        ("valid_until", "2035-01-01".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    NewLicence {
        request: IssueRequest {
            licence_id: LicenceId::build("IDC", "PSB", serial).unwrap(),
            licence_type: "ID_CARD".into(),
            holder_key: holder_pem.to_owned(),
            not_before: now - 86_400,
            not_after: now + 365 * 86_400,
        },
        values,
    }
}
