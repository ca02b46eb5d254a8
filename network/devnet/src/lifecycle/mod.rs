//! The `_lifecycle` system chaincode, the subset a CCaaS network needs, with Fabric's state
//! layout, checks and messages (`core/chaincode/lifecycle`: `scc.go`, `lifecycle.go`,
//! `serializer.go`):
//!
//! * `InstallChaincode` (channel-less, a local admin): a `ccaas`/`external` package (tar.gz with
//!   `metadata.json` and `code.tar.gz` holding `connection.json`) is stored under the peer's data
//!   directory as `lifecycle/chaincodes/<label>.<hash>.tar.gz`; its package ID is
//!   `label:hex(SHA-256(package))`; `QueryInstalledChaincode(s)`, `GetInstalledChaincodePackage`;
//! * `ApproveChaincodeDefinitionForMyOrg` (a local admin): the definition's parameters and the
//!   org's package ID go into the org's implicit collection (`namespaces/…/<name>#<seq>`,
//!   `chaincode-sources/…`), validated by the org's `Endorsement` policy;
//! * `CheckCommitReadiness`, `CommitChaincodeDefinition` (channel writers): each org's approval
//!   is checked against the hashes of its implicit collection; the commit writes the public
//!   `namespaces/…/<name>` definition and needs this peer's org to have approved; the
//!   transaction is validated by `/Channel/Application/LifecycleEndorsement`;
//! * `QueryChaincodeDefinition(s)`, `QueryApprovedChaincodeDefinition`.
//!
//! Committed definitions are ledger state: after every block that touches `_lifecycle`, and
//! when a channel is joined, each peer re-reads them and runs the package its own org approved
//! (if installed).

pub mod serializer;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use fabric_common::msp::Principal;
use fabric_protos::common::msp_role::MspRoleType;
use fabric_protos::lifecycle as lb;
use fabric_protos::protos::{
    application_policy, ApplicationPolicy, CollectionConfigPackage, Response,
};
use prost::Message;

use crate::chaincode::ConnectionInfo;
use crate::configtx::ChannelBundle;
use crate::endorser::simulator::TxSimulator;
use crate::ledger::Snapshot;
use crate::msp::{ChannelMsps, CheckedIdentity};
use crate::peer::{ChaincodeDefinition, PeerChannel, PeerNode};
use serializer::{
    bytes_field, deserialize_metadata, int_field, is_serialized, serialize, string_field, Field,
    OpaqueState, State, Structure,
};

/// The system chaincode's name and namespace.
pub const LIFECYCLE: &str = "_lifecycle";
/// The version a system chaincode reports in its `ChaincodeAction`.
pub const SYSCC_VERSION: &str = "syscc";
/// The channel policy a definition without a validation parameter uses.
pub const DEFAULT_ENDORSEMENT_POLICY_REF: &str = "/Channel/Application/Endorsement";
/// The policy `_lifecycle`'s own public writes are validated with.
pub const LIFECYCLE_ENDORSEMENT_REF: &str = "/Channel/Application/LifecycleEndorsement";

const NAMESPACES: &str = "namespaces";
const SOURCES: &str = "chaincode-sources";
const DEFINITION_TYPE: &str = "ChaincodeDefinition";
const PARAMETERS_TYPE: &str = "ChaincodeParameters";
const LOCAL_PACKAGE_TYPE: &str = "ChaincodeLocalPackage";

/// An org's implicit collection name.
pub fn implicit_collection(msp_id: &str) -> String {
    format!("_implicit_org_{msp_id}")
}

/// An installed CCaaS package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// `label:sha256-hex`.
    pub package_id: String,
    /// The package's label.
    pub label: String,
    /// Its `connection.json`.
    pub connection: ConnectionInfo,
}

pub use fabric_common::ccaas::{is_valid_label, package_id};

fn untar_gz(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for e in ar.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let name = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).map_err(|e| e.to_string())?;
        out.insert(name, buf);
    }
    Ok(out)
}

/// Reads a chaincode install package: its label and `connection.json`. Only `ccaas` and
/// `external` packages (chaincode as a service) can run on the devnet.
pub fn parse_package(bytes: &[u8]) -> Result<(String, ConnectionInfo), String> {
    let files = untar_gz(bytes)
        .map_err(|e| format!("could not parse as a chaincode install package: {e}"))?;
    let md = files.get("metadata.json").ok_or(
        "could not parse as a chaincode install package: did not find any package metadata (missing metadata.json)",
    )?;
    #[derive(serde::Deserialize)]
    struct Md {
        #[serde(rename = "type")]
        kind: String,
        label: String,
    }
    let md: Md = serde_json::from_slice(md).map_err(|e| {
        format!("could not parse as a chaincode install package: could not unmarshal metadata.json: {e}")
    })?;
    if !is_valid_label(&md.label) {
        return Err(format!("could not parse as a chaincode install package: invalid label '{}'. Label must be non-empty, can only consist of alphanumerics, symbols from '.+-_', and can only begin with alphanumerics", md.label));
    }
    let code = files.get("code.tar.gz").ok_or(
        "could not parse as a chaincode install package: did not find a code package inside the package",
    )?;
    if !matches!(md.kind.to_ascii_lowercase().as_str(), "ccaas" | "external") {
        return Err(format!(
            "could not build chaincode: chaincode type '{}' cannot run on the devnet: only chaincode-as-a-service packages (ccaas, external) are supported",
            md.kind
        ));
    }
    let inner =
        untar_gz(code).map_err(|e| format!("could not build chaincode: code.tar.gz: {e}"))?;
    let conn = inner
        .get("connection.json")
        .ok_or("could not build chaincode: connection.json not found in code.tar.gz")?;
    let info = ConnectionInfo::from_json(&String::from_utf8_lossy(conn))
        .map_err(|e| format!("could not build chaincode: {e}"))?;
    Ok((md.label, info))
}

/// The packages installed on one peer, persisted under its data directory.
#[derive(Debug)]
pub struct PackageStore {
    dir: PathBuf,
    packages: Mutex<BTreeMap<String, InstalledPackage>>,
}

impl PackageStore {
    /// Opens the store in `dir`, loading the packages installed before.
    pub fn open(dir: PathBuf) -> Self {
        let mut packages = BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let Ok(bytes) = std::fs::read(e.path()) else {
                    continue;
                };
                match parse_package(&bytes) {
                    Ok((label, connection)) => {
                        let id = package_id(&label, &bytes);
                        packages.insert(
                            id.clone(),
                            InstalledPackage {
                                package_id: id,
                                label,
                                connection,
                            },
                        );
                    }
                    Err(err) => {
                        tracing::warn!(path = %e.path().display(), %err, "skipping an unreadable chaincode package")
                    }
                }
            }
        }
        PackageStore {
            dir,
            packages: Mutex::new(packages),
        }
    }

    /// Installs a package (Fabric's `InstallChaincode`).
    pub fn install(&self, bytes: &[u8]) -> Result<InstalledPackage, String> {
        let (label, connection) = parse_package(bytes)?;
        let id = package_id(&label, bytes);
        let mut packages = self.packages.lock().expect("packages");
        if packages.contains_key(&id) {
            return Err(format!(
                "chaincode already successfully installed (package ID '{id}')"
            ));
        }
        let hash = &id[label.len() + 1..];
        std::fs::create_dir_all(&self.dir)
            .and_then(|_| std::fs::write(self.dir.join(format!("{label}.{hash}.tar.gz")), bytes))
            .map_err(|e| format!("could not save cc install package: {e}"))?;
        let p = InstalledPackage {
            package_id: id.clone(),
            label,
            connection,
        };
        packages.insert(id, p.clone());
        Ok(p)
    }

    /// An installed package.
    pub fn get(&self, package_id: &str) -> Option<InstalledPackage> {
        self.packages
            .lock()
            .expect("packages")
            .get(package_id)
            .cloned()
    }

    /// Every installed package, by ID.
    pub fn list(&self) -> Vec<InstalledPackage> {
        self.packages
            .lock()
            .expect("packages")
            .values()
            .cloned()
            .collect()
    }

    /// The package bytes.
    pub fn load(&self, package_id: &str) -> Option<Vec<u8>> {
        let p = self.get(package_id)?;
        let hash = &p.package_id[p.label.len() + 1..];
        std::fs::read(self.dir.join(format!("{}.{hash}.tar.gz", p.label))).ok()
    }
}

/// A definition as `_lifecycle` stores it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Definition {
    /// Sequence.
    pub sequence: i64,
    /// Version, endorsement plugin, init required.
    pub endorsement: lb::ChaincodeEndorsementInfo,
    /// Validation plugin and parameter (a serialized `ApplicationPolicy`).
    pub validation: lb::ChaincodeValidationInfo,
    /// Collections.
    pub collections: CollectionConfigPackage,
}

impl Definition {
    fn parameter_fields(&self) -> Vec<(&'static str, Field)> {
        vec![
            (
                "EndorsementInfo",
                Field::Bytes(self.endorsement.encode_to_vec()),
            ),
            (
                "ValidationInfo",
                Field::Bytes(self.validation.encode_to_vec()),
            ),
            (
                "Collections",
                Field::Bytes(self.collections.encode_to_vec()),
            ),
        ]
    }

    fn parameters(&self) -> Structure {
        Structure {
            type_name: PARAMETERS_TYPE,
            fields: self.parameter_fields(),
        }
    }

    fn definition(&self) -> Structure {
        let mut fields = vec![("Sequence", Field::Int(self.sequence))];
        fields.extend(self.parameter_fields());
        Structure {
            type_name: DEFINITION_TYPE,
            fields,
        }
    }

    fn read(ns: &str, name: &str, state: &mut dyn State) -> Result<Option<Self>, String> {
        let Some(md) = deserialize_metadata(ns, name, state)? else {
            return Ok(None);
        };
        if md.datatype != DEFINITION_TYPE && md.datatype != PARAMETERS_TYPE {
            return Err(format!("not a chaincode type: {}", md.datatype));
        }
        let dec = |f: &str, b: Vec<u8>| {
            format!(
                "could not unmarshal key {}: {b:?}",
                serializer::field_key(ns, name, f)
            )
        };
        let e = bytes_field(ns, name, "EndorsementInfo", state)?;
        let v = bytes_field(ns, name, "ValidationInfo", state)?;
        let c = bytes_field(ns, name, "Collections", state)?;
        Ok(Some(Definition {
            sequence: if md.datatype == DEFINITION_TYPE {
                int_field(ns, name, "Sequence", state)?
            } else {
                0
            },
            endorsement: lb::ChaincodeEndorsementInfo::decode(e.as_slice())
                .map_err(|_| dec("EndorsementInfo", e.clone()))?,
            validation: lb::ChaincodeValidationInfo::decode(v.as_slice())
                .map_err(|_| dec("ValidationInfo", v.clone()))?,
            collections: CollectionConfigPackage::decode(c.as_slice())
                .map_err(|_| dec("Collections", c.clone()))?,
        }))
    }

    /// Fabric's `ChaincodeParameters.Equal` message for the first difference.
    fn parameters_differ(&self, o: &Definition) -> Option<String> {
        let (a, b) = (&self.endorsement, &o.endorsement);
        if a.version != b.version {
            return Some(format!(
                "expected Version '{}' does not match passed Version '{}'",
                a.version, b.version
            ));
        }
        if a.endorsement_plugin != b.endorsement_plugin {
            return Some(format!(
                "expected EndorsementPlugin '{}' does not match passed EndorsementPlugin '{}'",
                a.endorsement_plugin, b.endorsement_plugin
            ));
        }
        if a.init_required != b.init_required {
            return Some(format!(
                "expected InitRequired '{}' does not match passed InitRequired '{}'",
                a.init_required, b.init_required
            ));
        }
        let (a, b) = (&self.validation, &o.validation);
        if a.validation_plugin != b.validation_plugin {
            return Some(format!(
                "expected ValidationPlugin '{}' does not match passed ValidationPlugin '{}'",
                a.validation_plugin, b.validation_plugin
            ));
        }
        if a.validation_parameter != b.validation_parameter {
            return Some(format!(
                "expected ValidationParameter '{}' does not match passed ValidationParameter '{}'",
                hex::encode(&a.validation_parameter),
                hex::encode(&b.validation_parameter)
            ));
        }
        if self.collections != o.collections {
            return Some("Collections do not match".into());
        }
        None
    }

    /// Fabric's `SetChaincodeDefinitionDefaults`.
    fn set_defaults(&mut self, bundle: &ChannelBundle) -> Result<(), String> {
        if self.endorsement.endorsement_plugin.is_empty() {
            self.endorsement.endorsement_plugin = "escc".into();
        }
        if self.validation.validation_plugin.is_empty() {
            self.validation.validation_plugin = "vscc".into();
        }
        if self.validation.validation_parameter.is_empty() {
            if bundle
                .policies
                .get(DEFAULT_ENDORSEMENT_POLICY_REF)
                .is_none()
            {
                return Err(format!("could not set defaults for chaincode definition in channel {}: policy '{DEFAULT_ENDORSEMENT_POLICY_REF}' must be defined for channel '{}' before chaincode operations can be attempted", bundle.channel_id, bundle.channel_id));
            }
            self.validation.validation_parameter = ApplicationPolicy {
                r#type: Some(application_policy::Type::ChannelConfigPolicyReference(
                    DEFAULT_ENDORSEMENT_POLICY_REF.into(),
                )),
            }
            .encode_to_vec();
        }
        Ok(())
    }
}

/// The application organisations of a channel: (config group name, MSP ID).
pub fn application_orgs(bundle: &ChannelBundle) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(app) = bundle
        .config
        .channel_group
        .as_ref()
        .and_then(|g| g.groups.get("Application"))
    else {
        return out;
    };
    for (name, g) in &app.groups {
        let msp = g
            .values
            .get("MSP")
            .and_then(|v| fabric_protos::msp::MspConfig::decode(v.value.as_slice()).ok())
            .and_then(|m| fabric_protos::msp::FabricMspConfig::decode(m.config.as_slice()).ok())
            .map(|f| f.name);
        if let Some(msp) = msp {
            out.push((name.clone(), msp));
        }
    }
    out
}

struct Public<'a>(&'a mut TxSimulator);

impl State for Public<'_> {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get_state(LIFECYCLE, key).map_err(|e| e.to_string())
    }
    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.0
            .set_state(LIFECYCLE, key, value)
            .map_err(|e| e.to_string())
    }
    fn del(&mut self, key: &str) -> Result<(), String> {
        self.0
            .delete_state(LIFECYCLE, key)
            .map_err(|e| e.to_string())
    }
}

struct Org<'a> {
    sim: &'a mut TxSimulator,
    coll: String,
}

impl State for Org<'_> {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.sim
            .get_private_data(LIFECYCLE, &self.coll, key)
            .map_err(|e| e.to_string())
    }
    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.sim
            .set_private_data(LIFECYCLE, &self.coll, key, value)
            .map_err(|e| e.to_string())
    }
    fn del(&mut self, key: &str) -> Result<(), String> {
        self.sim
            .delete_private_data(LIFECYCLE, &self.coll, key)
            .map_err(|e| e.to_string())
    }
}

impl OpaqueState for Org<'_> {
    fn get_hash(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.sim
            .get_private_data_hash(LIFECYCLE, &self.coll, key)
            .map_err(|e| e.to_string())
    }
}

/// Read-only state over a committed snapshot (the definition refresh).
struct Committed<'a> {
    snap: &'a Snapshot,
    coll: Option<String>,
}

impl State for Committed<'_> {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let v = match &self.coll {
            None => self.snap.get_state(LIFECYCLE, key),
            Some(c) => self.snap.get_private(LIFECYCLE, c, key),
        };
        v.map(|v| v.map(|v| v.value)).map_err(|e| e.to_string())
    }
    fn put(&mut self, _: &str, _: Vec<u8>) -> Result<(), String> {
        Err("read-only".into())
    }
    fn del(&mut self, _: &str) -> Result<(), String> {
        Err("read-only".into())
    }
}

/// What an invocation of `_lifecycle` runs with.
pub(crate) struct Invocation<'a> {
    pub node: &'a PeerNode,
    pub channel: Option<&'a PeerChannel>,
    pub msps: &'a ChannelMsps,
    pub creator: &'a CheckedIdentity,
    pub sim: Option<&'a mut TxSimulator>,
}

enum Failure {
    NotFound(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Other(s)
    }
}

fn ok(payload: Vec<u8>) -> Response {
    Response {
        status: 200,
        message: String::new(),
        payload,
    }
}

fn error(message: String) -> Response {
    Response {
        status: 500,
        message,
        payload: Vec::new(),
    }
}

/// Runs a `_lifecycle` function (Fabric's `SCC.Invoke`): `args` are the function name and its
/// serialized arguments message.
pub(crate) fn invoke(inv: Invocation<'_>, args: &[Vec<u8>]) -> Response {
    if args.is_empty() {
        return error("lifecycle scc must be invoked with arguments".into());
    }
    if args.len() != 2 {
        return error(format!(
            "lifecycle scc operations require exactly two arguments but received {}",
            args.len()
        ));
    }
    let function = String::from_utf8_lossy(&args[0]).into_owned();
    if let Err(e) = check_acl(&inv, &function) {
        return error(format!(
            "Failed to authorize invocation due to failed ACL check: {e}"
        ));
    }
    match dispatch(inv, &function, &args[1]) {
        Ok(payload) => ok(payload),
        Err(Failure::NotFound(m)) => Response {
            status: 404,
            message: m,
            payload: Vec::new(),
        },
        Err(Failure::Other(m)) => error(format!(
            "failed to invoke backing implementation of '{function}': {m}"
        )),
    }
}

/// Fabric's default `_lifecycle` ACLs: local admins install and approve, channel writers
/// commit and query.
fn check_acl(inv: &Invocation<'_>, function: &str) -> Result<(), String> {
    let local_admin = matches!(
        function,
        "InstallChaincode"
            | "QueryInstalledChaincode"
            | "QueryInstalledChaincodes"
            | "GetInstalledChaincodePackage"
            | "ApproveChaincodeDefinitionForMyOrg"
            | "QueryApprovedChaincodeDefinition"
    );
    if local_admin {
        let msp = inv.node.msp_id();
        let admin = Principal::Role {
            msp_id: msp.to_string(),
            role: MspRoleType::Admin,
        };
        if !inv.msps.satisfies(inv.creator, &admin) {
            return Err(format!("Failed verifying that proposal's creator satisfies local MSP principal during channelless check policy with policy [Admins]: [The identity is not an admin under this MSP [{msp}]]"));
        }
        return Ok(());
    }
    let Some(ch) = inv.channel else {
        return Err(format!("resource _lifecycle/{function} requires a channel"));
    };
    const WRITERS: &str = "/Channel/Application/Writers";
    let ctx = ch.context();
    let creator = ctx
        .msps
        .deserialize(inv.creator.identity.serialized())
        .map_err(|e| e.to_string())?;
    if ctx
        .policies
        .evaluate(WRITERS, &ctx.msps, std::slice::from_ref(&creator))
        .unwrap_or(false)
    {
        Ok(())
    } else {
        Err(format!("failed evaluating policy on signed data during check policy [{WRITERS}]: [signature set did not satisfy policy]"))
    }
}

fn decode<M: Message + Default>(b: &[u8]) -> Result<M, Failure> {
    M::decode(b).map_err(|e| {
        Failure::Other(format!(
            "failed to decode input arg to '{}': {e}",
            std::any::type_name::<M>()
                .rsplit("::")
                .next()
                .unwrap_or("args")
        ))
    })
}

fn is_valid_name(name: &str) -> bool {
    // ^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$
    !name.is_empty()
        && name
            .split(['-', '_'])
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn is_valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
}

fn validate_input(
    name: &str,
    version: &str,
    colls: &CollectionConfigPackage,
) -> Result<(), String> {
    if !is_valid_name(name) {
        return Err(format!("invalid chaincode name '{name}'. Names can only consist of alphanumerics, '_', and '-' and can only begin with alphanumerics"));
    }
    if crate::endorser::SYSTEM_CHAINCODES.contains(&name) {
        return Err(format!(
            "chaincode name '{name}' is the name of a system chaincode"
        ));
    }
    if !is_valid_version(version) {
        return Err(format!("invalid chaincode version '{version}'. Versions can only consist of alphanumerics, '_', '-', '+', and '.'"));
    }
    let mut seen = std::collections::HashSet::new();
    for c in &colls.config {
        let Some(fabric_protos::protos::collection_config::Payload::StaticCollectionConfig(sc)) =
            &c.payload
        else {
            return Err("invalid collection configuration: not a static collection".into());
        };
        if sc.name.starts_with("_implicit_org_") {
            return Err(format!(
                "collection-name: {} -- collection names cannot start with '_implicit_org_'",
                sc.name
            ));
        }
        if !seen.insert(sc.name.clone()) {
            return Err(format!(
                "collection-name: {} -- found duplicate in collection configuration",
                sc.name
            ));
        }
    }
    Ok(())
}

fn channel<'a>(inv: &Invocation<'a>) -> Result<&'a PeerChannel, Failure> {
    inv.channel
        .ok_or_else(|| Failure::Other("no channel provided".into()))
}

fn dispatch(inv: Invocation<'_>, function: &str, input: &[u8]) -> Result<Vec<u8>, Failure> {
    match function {
        "InstallChaincode" => {
            let a: lb::InstallChaincodeArgs = decode(input)?;
            let p = inv.node.packages().install(&a.chaincode_install_package)?;
            inv.node
                .chaincode_support()
                .install(&p.package_id, p.connection.clone())
                .map_err(|e| Failure::Other(format!("could not build chaincode: {e}")))?;
            tracing::info!(package_id = %p.package_id, "installed chaincode package");
            Ok(lb::InstallChaincodeResult {
                package_id: p.package_id,
                label: p.label,
            }
            .encode_to_vec())
        }
        "QueryInstalledChaincodes" => {
            let _: lb::QueryInstalledChaincodesArgs = decode(input)?;
            use lb::query_installed_chaincodes_result as r;
            let installed_chaincodes = inv
                .node
                .packages()
                .list()
                .into_iter()
                .map(|p| r::InstalledChaincode {
                    references: references(inv.node, &p.package_id)
                        .into_iter()
                        .map(|(ch, ccs)| {
                            (
                                ch,
                                r::References {
                                    chaincodes: ccs
                                        .into_iter()
                                        .map(|(name, version)| r::Chaincode { name, version })
                                        .collect(),
                                },
                            )
                        })
                        .collect(),
                    package_id: p.package_id,
                    label: p.label,
                })
                .collect();
            Ok(lb::QueryInstalledChaincodesResult {
                installed_chaincodes,
            }
            .encode_to_vec())
        }
        "QueryInstalledChaincode" => {
            let a: lb::QueryInstalledChaincodeArgs = decode(input)?;
            use lb::query_installed_chaincode_result as r;
            let p = inv.node.packages().get(&a.package_id).ok_or_else(|| {
                Failure::NotFound(format!(
                    "chaincode install package '{}' not found",
                    a.package_id
                ))
            })?;
            Ok(lb::QueryInstalledChaincodeResult {
                references: references(inv.node, &p.package_id)
                    .into_iter()
                    .map(|(ch, ccs)| {
                        (
                            ch,
                            r::References {
                                chaincodes: ccs
                                    .into_iter()
                                    .map(|(name, version)| r::Chaincode { name, version })
                                    .collect(),
                            },
                        )
                    })
                    .collect(),
                package_id: p.package_id,
                label: p.label,
            }
            .encode_to_vec())
        }
        "GetInstalledChaincodePackage" => {
            let a: lb::GetInstalledChaincodePackageArgs = decode(input)?;
            let bytes = inv.node.packages().load(&a.package_id).ok_or_else(|| {
                Failure::NotFound(format!(
                    "chaincode install package '{}' not found",
                    a.package_id
                ))
            })?;
            Ok(lb::GetInstalledChaincodePackageResult {
                chaincode_install_package: bytes,
            }
            .encode_to_vec())
        }
        "ApproveChaincodeDefinitionForMyOrg" => {
            let a: lb::ApproveChaincodeDefinitionForMyOrgArgs = decode(input)?;
            let ch = channel(&inv)?;
            let collections = a.collections.unwrap_or_default();
            validate_input(&a.name, &a.version, &collections)?;
            let package_id = match a.source.and_then(|s| s.r#type) {
                Some(lb::chaincode_source::Type::LocalPackage(l)) => l.package_id,
                _ => String::new(),
            };
            let mut cd = Definition {
                sequence: a.sequence,
                endorsement: lb::ChaincodeEndorsementInfo {
                    version: a.version,
                    init_required: a.init_required,
                    endorsement_plugin: a.endorsement_plugin,
                },
                validation: lb::ChaincodeValidationInfo {
                    validation_plugin: a.validation_plugin,
                    validation_parameter: a.validation_parameter,
                },
                collections,
            };
            let sim = inv.sim.ok_or_else(|| Failure::Other("no ledger".into()))?;
            approve(ch, inv.node.msp_id(), &a.name, &mut cd, &package_id, sim)?;
            Ok(lb::ApproveChaincodeDefinitionForMyOrgResult {}.encode_to_vec())
        }
        "CheckCommitReadiness" | "CommitChaincodeDefinition" => {
            // Both argument messages share their field numbers.
            let a: lb::CommitChaincodeDefinitionArgs = decode(input)?;
            let ch = channel(&inv)?;
            let collections = a.collections.unwrap_or_default();
            validate_input(&a.name, &a.version, &collections)?;
            let mut cd = Definition {
                sequence: a.sequence,
                endorsement: lb::ChaincodeEndorsementInfo {
                    version: a.version,
                    init_required: a.init_required,
                    endorsement_plugin: a.endorsement_plugin,
                },
                validation: lb::ChaincodeValidationInfo {
                    validation_plugin: a.validation_plugin,
                    validation_parameter: a.validation_parameter,
                },
                collections,
            };
            let sim = inv.sim.ok_or_else(|| Failure::Other("no ledger".into()))?;
            let current = int_field(NAMESPACES, &a.name, "Sequence", &mut Public(sim))
                .map_err(|e| format!("could not get current sequence: {e}"))?;
            if cd.sequence != current + 1 {
                return Err(format!(
                    "requested sequence is {}, but new definition must be sequence {}",
                    cd.sequence,
                    current + 1
                )
                .into());
            }
            cd.set_defaults(ch.bundle())?;
            let approvals = org_approvals(ch, &a.name, &cd, sim)?;
            if function == "CheckCommitReadiness" {
                return Ok(lb::CheckCommitReadinessResult {
                    approvals,
                    ..Default::default()
                }
                .encode_to_vec());
            }
            serialize(NAMESPACES, &a.name, &cd.definition(), &mut Public(sim))
                .map_err(|e| format!("could not serialize chaincode definition: {e}"))?;
            let own = inv.node.msp_id();
            if !approvals.get(own).copied().unwrap_or(false) {
                return Err(
                    format!("chaincode definition not agreed to by this org ({own})").into(),
                );
            }
            tracing::info!(name = %a.name, sequence = cd.sequence, channel = %ch.channel_id(), "committed chaincode definition (endorsed)");
            Ok(lb::CommitChaincodeDefinitionResult {}.encode_to_vec())
        }
        "QueryChaincodeDefinition" => {
            let a: lb::QueryChaincodeDefinitionArgs = decode(input)?;
            let ch = channel(&inv)?;
            let sim = inv.sim.ok_or_else(|| Failure::Other("no ledger".into()))?;
            let cd = Definition::read(NAMESPACES, &a.name, &mut Public(sim))
                .map_err(|e| format!("could not fetch metadata for namespace {}: {e}", a.name))?
                .ok_or_else(|| Failure::NotFound(format!("namespace {} is not defined", a.name)))?;
            let approvals = org_approvals(ch, &a.name, &cd, sim)?;
            Ok(lb::QueryChaincodeDefinitionResult {
                sequence: cd.sequence,
                version: cd.endorsement.version,
                endorsement_plugin: cd.endorsement.endorsement_plugin,
                validation_plugin: cd.validation.validation_plugin,
                validation_parameter: cd.validation.validation_parameter,
                collections: Some(cd.collections),
                init_required: cd.endorsement.init_required,
                approvals,
            }
            .encode_to_vec())
        }
        "QueryChaincodeDefinitions" => {
            let _: lb::QueryChaincodeDefinitionsArgs = decode(input)?;
            let sim = inv.sim.ok_or_else(|| Failure::Other("no ledger".into()))?;
            let names = defined_names_sim(sim)?;
            let mut chaincode_definitions = Vec::new();
            for name in names {
                let Some(cd) = Definition::read(NAMESPACES, &name, &mut Public(sim))? else {
                    continue;
                };
                chaincode_definitions.push(
                    lb::query_chaincode_definitions_result::ChaincodeDefinition {
                        name,
                        sequence: cd.sequence,
                        version: cd.endorsement.version,
                        endorsement_plugin: cd.endorsement.endorsement_plugin,
                        validation_plugin: cd.validation.validation_plugin,
                        validation_parameter: cd.validation.validation_parameter,
                        collections: Some(cd.collections),
                        init_required: cd.endorsement.init_required,
                    },
                );
            }
            Ok(lb::QueryChaincodeDefinitionsResult {
                chaincode_definitions,
            }
            .encode_to_vec())
        }
        "QueryApprovedChaincodeDefinition" => {
            let a: lb::QueryApprovedChaincodeDefinitionArgs = decode(input)?;
            let ch = channel(&inv)?;
            let sim = inv.sim.ok_or_else(|| Failure::Other("no ledger".into()))?;
            let coll = implicit_collection(inv.node.msp_id());
            let mut seq = a.sequence;
            if seq == 0 {
                seq = int_field(NAMESPACES, &a.name, "Sequence", &mut Public(sim))
                    .map_err(|e| format!("could not get current sequence: {e}"))?;
                let next = format!("{}#{}", a.name, seq + 1);
                let mut org = Org {
                    sim,
                    coll: coll.clone(),
                };
                if deserialize_metadata(NAMESPACES, &next, &mut org)?.is_some() {
                    seq += 1;
                }
            }
            let private = format!("{}#{seq}", a.name);
            let not_found = || {
                Failure::Other(format!(
                    "could not fetch approved chaincode definition (name: '{}', sequence: '{}') on channel '{}'",
                    a.name,
                    a.sequence,
                    ch.channel_id()
                ))
            };
            let mut org = Org { sim, coll };
            let cd = Definition::read(NAMESPACES, &private, &mut org)?.ok_or_else(not_found)?;
            if deserialize_metadata(SOURCES, &private, &mut org)?.is_none() {
                return Err(not_found());
            }
            let pkg = string_field(SOURCES, &private, "PackageID", &mut org)?;
            let source = if pkg.is_empty() {
                lb::chaincode_source::Type::Unavailable(lb::chaincode_source::Unavailable {})
            } else {
                lb::chaincode_source::Type::LocalPackage(lb::chaincode_source::Local {
                    package_id: pkg,
                })
            };
            Ok(lb::QueryApprovedChaincodeDefinitionResult {
                sequence: seq,
                version: cd.endorsement.version,
                endorsement_plugin: cd.endorsement.endorsement_plugin,
                validation_plugin: cd.validation.validation_plugin,
                validation_parameter: cd.validation.validation_parameter,
                collections: Some(cd.collections),
                init_required: cd.endorsement.init_required,
                source: Some(lb::ChaincodeSource {
                    r#type: Some(source),
                }),
            }
            .encode_to_vec())
        }
        other => Err(Failure::Other(format!(
            "receiver *lifecycle.Invocation.{other} does not exist"
        ))),
    }
}

/// Fabric's `ApproveChaincodeDefinitionForOrg`.
fn approve(
    ch: &PeerChannel,
    msp_id: &str,
    name: &str,
    cd: &mut Definition,
    package_id: &str,
    sim: &mut TxSimulator,
) -> Result<(), String> {
    let current = int_field(NAMESPACES, name, "Sequence", &mut Public(sim))
        .map_err(|e| format!("could not get current sequence: {e}"))?;
    let requested = cd.sequence;
    if current == requested && requested == 0 {
        return Err("requested sequence is 0, but first definable sequence number is 1".into());
    }
    if requested < current {
        return Err(format!(
            "currently defined sequence {current} is larger than requested sequence {requested}"
        ));
    }
    if requested > current + 1 {
        return Err(format!(
            "requested sequence {requested} is larger than the next available sequence number {}",
            current + 1
        ));
    }
    cd.set_defaults(ch.bundle())?;
    let private = format!("{name}#{requested}");
    let coll = implicit_collection(msp_id);
    if requested == current {
        let defined = Definition::read(NAMESPACES, name, &mut Public(sim))?.ok_or_else(|| {
            format!("missing metadata for currently committed sequence number ({current})")
        })?;
        if let Some(diff) = defined.parameters_differ(cd) {
            return Err(format!("attempted to redefine the current committed sequence ({current}) for namespace {name} with different parameters: {diff}"));
        }
        if redefines(
            &private,
            package_id,
            cd,
            &mut Org {
                sim,
                coll: coll.clone(),
            },
        )? {
            return Err(format!(
                "attempted to redefine the current committed sequence ({current}) for namespace {name}"
            ));
        }
    } else if redefines(
        &private,
        package_id,
        cd,
        &mut Org {
            sim,
            coll: coll.clone(),
        },
    )? {
        return Err(format!("attempted to redefine uncommitted sequence ({requested}) for namespace {name} with unchanged content"));
    }
    let mut org = Org { sim, coll };
    serialize(NAMESPACES, &private, &cd.parameters(), &mut org)
        .map_err(|e| format!("could not serialize chaincode parameters to state: {e}"))?;
    serialize(
        SOURCES,
        &private,
        &Structure {
            type_name: LOCAL_PACKAGE_TYPE,
            fields: vec![("PackageID", Field::Str(package_id.to_string()))],
        },
        &mut org,
    )
    .map_err(|e| format!("could not serialize chaincode package info to state: {e}"))?;
    Ok(())
}

/// Fabric's `isAttemptToRedefine`: the same parameters and package approved already.
fn redefines(
    private: &str,
    package_id: &str,
    cd: &Definition,
    org: &mut Org<'_>,
) -> Result<bool, String> {
    let Some(existing) = Definition::read(NAMESPACES, private, org)? else {
        return Ok(false);
    };
    if existing.parameters_differ(cd).is_some() {
        return Ok(false);
    }
    if deserialize_metadata(SOURCES, private, org)?.is_none() {
        return Ok(false);
    }
    Ok(string_field(SOURCES, private, "PackageID", org)? == package_id)
}

/// Fabric's `QueryOrgApprovals` over every application org's implicit collection.
fn org_approvals(
    ch: &PeerChannel,
    name: &str,
    cd: &Definition,
    sim: &mut TxSimulator,
) -> Result<BTreeMap<String, bool>, String> {
    let private = format!("{name}#{}", cd.sequence);
    let mut out = BTreeMap::new();
    for (_, msp) in application_orgs(ch.bundle()) {
        let mut org = Org {
            sim,
            coll: implicit_collection(&msp),
        };
        let ok = is_serialized(NAMESPACES, &private, &cd.parameters(), &mut org)
            .map_err(|e| format!("serialization check failed for key {private}: {e}"))?;
        out.insert(msp, ok);
    }
    Ok(out)
}

const METADATA_PREFIX: &str = "namespaces/metadata/";

fn defined_names_sim(sim: &mut TxSimulator) -> Result<Vec<String>, String> {
    let end = format!("{}{}", &METADATA_PREFIX[..METADATA_PREFIX.len() - 1], '0');
    let mut scan = sim
        .range_scan(LIFECYCLE, METADATA_PREFIX, &end, None)
        .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    loop {
        match sim.range_next(&mut scan) {
            Ok(Some((k, _))) => names.push(k[METADATA_PREFIX.len()..].to_string()),
            Ok(None) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    sim.range_close(scan);
    Ok(names)
}

/// Channel → definitions `(name, version)` on this peer that run `package_id`.
fn references(node: &PeerNode, package_id: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for ch_id in node.channel_ids() {
        let Some(ch) = node.channel(&ch_id) else {
            continue;
        };
        let refs: Vec<(String, String)> = ch
            .chaincodes()
            .into_iter()
            .filter(|d| d.definition.package_id == package_id)
            .map(|d| (d.definition.name.clone(), d.definition.version.clone()))
            .collect();
        if !refs.is_empty() {
            out.insert(ch_id, refs);
        }
    }
    out
}

/// Re-reads the committed definitions of a channel and applies them to the peer: endorsement
/// policies and collections to the committer, and the package this peer's org approved for the
/// definition's sequence to chaincode support (Fabric's lifecycle cache).
pub(crate) fn refresh(node: &PeerNode, ch: &PeerChannel) -> Result<(), String> {
    let snap = ch.ledger().snapshot().map_err(|e| e.to_string())?;
    let end = format!("{}{}", &METADATA_PREFIX[..METADATA_PREFIX.len() - 1], '0');
    let mut names = Vec::new();
    for item in snap
        .state_range(LIFECYCLE, METADATA_PREFIX, &end)
        .map_err(|e| e.to_string())?
    {
        let (k, _) = item.map_err(|e| e.to_string())?;
        names.push(k[METADATA_PREFIX.len()..].to_string());
    }
    let coll = implicit_collection(node.msp_id());
    for name in names {
        let mut public = Committed {
            snap: &snap,
            coll: None,
        };
        let Some(cd) = Definition::read(NAMESPACES, &name, &mut public)? else {
            continue;
        };
        if ch
            .chaincode(&name)
            .is_some_and(|d| d.definition.sequence == cd.sequence && d.from_lifecycle)
        {
            continue;
        }
        let private = format!("{name}#{}", cd.sequence);
        let mut org = Committed {
            snap: &snap,
            coll: Some(coll.clone()),
        };
        // The package is ours only if our approval matches the committed parameters.
        let approved = Definition::read(NAMESPACES, &private, &mut org)
            .ok()
            .flatten()
            .is_some_and(|p| p.parameters_differ(&cd).is_none());
        let package_id = if approved {
            string_field(SOURCES, &private, "PackageID", &mut org).unwrap_or_default()
        } else {
            String::new()
        };
        let connection = node
            .packages()
            .get(&package_id)
            .map(|p| p.connection)
            .unwrap_or_default();
        let def = ChaincodeDefinition {
            name: name.clone(),
            version: cd.endorsement.version.clone(),
            sequence: cd.sequence,
            package_id,
            connection,
            endorsement_policy: cd.validation.validation_parameter.clone(),
            collections: cd.collections.clone(),
            init_required: cd.endorsement.init_required,
        };
        ch.apply_lifecycle_definition(def)
            .map_err(|e| format!("chaincode {name}: {e}"))?;
        tracing::info!(peer = %node.name(), channel = %ch.channel_id(), %name, sequence = cd.sequence, "chaincode definition applied from the ledger");
    }
    Ok(())
}
