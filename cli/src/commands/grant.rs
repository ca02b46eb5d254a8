//! `elicense grant create|withdraw|list` (holder side).
//!
//! The holder signs with its own P-256 key (`--key`, or the key of the `--identity` MSP
//! directory) and derives the 8-digit code from a holder secret read from a file, the environment
//! or standard input. Created grants are kept in the holder's grants directory (`--grants-dir`,
//! `ELICENSE_GRANTS_DIR`, default `./grants`) as the signed grant only: the code is re-derived
//! from the secret, never stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use elicense_model::{FieldOpening, GrantId, HolderKey, SignedGrant};
use elicense_sdk::holder::{self, HolderKeyPair};
use serde::{Deserialize, Serialize};

use crate::commands::licence::{load_credential, write_new_private};
use crate::config::Settings;
use crate::connect::Client;
use crate::error::CliError;
use crate::exit::Class;
use crate::input;
use crate::secret::SecretSource;
use crate::Ctx;

/// `grant` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sign a grant of one licence to one department for one matter, and relay it to the ledger.
    Create(Box<CreateArgs>),
    /// Withdraw a grant: it is unusable from now on.
    Withdraw(WithdrawArgs),
    /// List the grants in the grants directory with their status on the ledger.
    List(ListArgs),
}

/// The holder's signing key.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// The holder's private key (PEM); default: the key of the --identity MSP directory.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// Arguments of `grant create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The licence's credential (from `licence issue --credential-out`).
    #[arg(long, value_name = "FILE")]
    pub credential: PathBuf,
    /// The department (MSP ID) whose clerks may use the grant.
    #[arg(long, value_name = "MSPID")]
    pub grantee: String,
    /// The matter code the grant is for.
    #[arg(long)]
    pub matter: String,
    /// A field the grantee may verify and retrieve (repeat; none: code-only).
    #[arg(long = "field", value_name = "NAME")]
    pub fields: Vec<String>,
    /// How many verifies the grant allows.
    #[arg(long, default_value_t = 1)]
    pub uses: u32,
    /// Validity in seconds from now (unless --not-after).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub valid_for: u64,
    /// Last second of validity: Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ.
    #[arg(long, value_parser = input::parse_time)]
    pub not_after: Option<i64>,
    /// Where the holder secret comes from: file:PATH, env:NAME or - (standard input).
    #[arg(long, value_name = "SOURCE")]
    pub secret: SecretSource,
    /// Write the 8-digit code to this new owner-only file instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub code_out: Option<PathBuf>,
    /// Write a presentation of the granted fields (values and salts) for the clerk to this file.
    #[arg(long, value_name = "FILE")]
    pub presentation_out: Option<PathBuf>,
    /// The grants directory.
    #[arg(
        long,
        env = "ELICENSE_GRANTS_DIR",
        default_value = "grants",
        value_name = "DIR"
    )]
    pub grants_dir: PathBuf,
    /// The holder key.
    #[command(flatten)]
    pub key: KeyArgs,
}

/// Arguments of `grant withdraw`.
#[derive(Debug, clap::Args)]
pub struct WithdrawArgs {
    /// The grant id.
    pub grant_id: String,
    /// The holder key.
    #[command(flatten)]
    pub key: KeyArgs,
}

/// Arguments of `grant list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The grants directory.
    #[arg(
        long,
        env = "ELICENSE_GRANTS_DIR",
        default_value = "grants",
        value_name = "DIR"
    )]
    pub grants_dir: PathBuf,
}

/// A presentation file: the openings of chosen fields, handed to the clerk with the grant id.
#[derive(Debug, Serialize, Deserialize)]
pub struct PresentationFile {
    /// The grant it is for.
    pub grant_id: GrantId,
    /// Field openings (value and salt) by name.
    pub fields: BTreeMap<String, FieldOpening>,
}

/// Loads the holder key: `--key`, else the `--identity` MSP directory's key.
pub fn holder_key(settings: &Settings, args: &KeyArgs) -> Result<HolderKeyPair, CliError> {
    if let Some(path) = &args.key {
        let pem = std::fs::read(path).map_err(|e| {
            CliError::new(Class::NotFound, format!("reading {}: {e}", path.display()))
        })?;
        return HolderKeyPair::from_pem(&pem).map_err(|e| {
            CliError::usage(format!("holder key {}: {e}", path.display()))
                .hint("a P-256 private key in PEM (PKCS#8 or EC PRIVATE KEY)")
        });
    }
    let dir = crate::connect::identity_dir(settings).ok_or_else(|| {
        CliError::usage("no holder key")
            .hint("pass --key FILE, or --identity with the holder's MSP directory")
    })?;
    let cert_dir = dir.join("signcerts");
    let cert_pem = std::fs::read_dir(&cert_dir)
        .ok()
        .and_then(|mut d| d.find_map(|e| e.ok()))
        .and_then(|e| std::fs::read(e.path()).ok())
        .ok_or_else(|| CliError::usage(format!("{} holds no certificate", cert_dir.display())))?;
    let public =
        input::holder_key_pem(&String::from_utf8_lossy(&cert_pem)).map_err(CliError::usage)?;
    std::fs::read_dir(dir.join("keystore"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|pem| HolderKeyPair::from_pem(&pem).ok())
        .find(|k| k.public_pem() == public)
        .ok_or_else(|| {
            CliError::usage(format!(
                "no key in {}/keystore matches its certificate",
                dir.display()
            ))
        })
}

/// Parses a grant id, naming the rule on failure.
pub fn parse_grant_id(s: &str) -> Result<GrantId, CliError> {
    GrantId::parse(s).map_err(|e| {
        CliError::usage(format!("grant id {s:?}: {e}"))
            .hint("a grant id is 64 hexadecimal characters")
            .code("INVALID_ARGUMENT")
    })
}

/// Settings with the channel defaulted to `channel` when none was given.
pub fn with_channel(settings: &Settings, channel: &str) -> Settings {
    let mut s = settings.clone();
    if s.channel.is_none() {
        s.channel = Some(channel.to_string());
    }
    s
}

fn holder_err(e: elicense_sdk::HolderError) -> CliError {
    CliError::from(elicense_sdk::LicenceError::from(e))
}

async fn create(ctx: &Ctx, a: CreateArgs) -> Result<(), CliError> {
    let credential = load_credential(&a.credential)?;
    let key = holder_key(&ctx.settings, &a.key)?;
    let recorded = HolderKey::from_pem(&credential.holder_key)
        .map_err(|e| CliError::usage(format!("credential holder key: {e}")))?;
    if recorded != key.public_key() {
        return Err(CliError::new(
            Class::Denied,
            "this key is not the holder key the licence was issued to",
        )
        .code("BAD_SIGNATURE")
        .hint("sign with the key whose public half the issuer recorded (--key)"));
    }
    let secret = holder::secret(&a.secret.read()?).map_err(|e| {
        holder_err(e)
            .hint("the holder secret is at least 16 bytes; keep the same one for every grant")
    })?;
    let mut builder = credential
        .grant(&a.grantee, &a.matter)
        .fields(a.fields.iter().cloned())
        .uses(a.uses)
        .valid_for(std::time::Duration::from_secs(a.valid_for));
    if let Some(t) = a.not_after {
        builder = builder.not_after(t);
    }
    let grant = builder.sign(&secret, &key).map_err(holder_err)?;
    let grant_id = grant.id();

    let settings = with_channel(&ctx.settings, &credential.channel);
    let client = Client::connect(&settings)?;
    let committed = client
        .licences(&settings.chaincode)
        .authorize(&grant)
        .await
        .map_err(|e| CliError::from(e).context("authorize"))?;

    std::fs::create_dir_all(&a.grants_dir).map_err(|e| {
        CliError::new(
            Class::Internal,
            format!("creating {}: {e}", a.grants_dir.display()),
        )
    })?;
    let saved = a.grants_dir.join(format!("{}.json", grant_id.as_str()));
    let json = serde_json::to_string_pretty(&grant.signed)
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    std::fs::write(&saved, json)
        .map_err(|e| CliError::new(Class::Internal, format!("writing {}: {e}", saved.display())))?;

    if let Some(path) = &a.presentation_out {
        let names: Vec<&str> = grant.grant().fields.iter().map(String::as_str).collect();
        let openings = credential.openings(&names).map_err(holder_err)?;
        let file = PresentationFile {
            grant_id: grant_id.clone(),
            fields: openings,
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
        write_new_private(path, &text)?;
    }
    let code = match &a.code_out {
        Some(path) => {
            write_new_private(path, &format!("{}\n", grant.code.as_str()))?;
            None
        }
        None => Some(grant.code.as_str().to_string()),
    };
    #[derive(Serialize)]
    struct Out<'a> {
        grant_id: &'a str,
        licence_id: &'a str,
        grantee: &'a str,
        matter: &'a str,
        fields: &'a [String],
        uses: u32,
        not_before: i64,
        not_after: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        saved: String,
        tx_id: &'a str,
        block: u64,
    }
    let g = grant.grant();
    crate::output::print(
        ctx.format(),
        &Out {
            grant_id: grant_id.as_str(),
            licence_id: g.licence_id.as_str(),
            grantee: &g.grantee_msp,
            matter: &g.matter,
            fields: &g.fields,
            uses: g.uses,
            not_before: g.not_before,
            not_after: g.not_after,
            code,
            saved: saved.display().to_string(),
            tx_id: &committed.transaction_id,
            block: committed.block_number,
        },
    )
}

fn load_saved(dir: &Path) -> Result<Vec<SignedGrant>, CliError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(CliError::new(
                Class::Internal,
                format!("reading {}: {e}", dir.display()),
            ))
        }
    };
    let mut grants = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CliError::new(Class::Internal, format!("reading {}: {e}", path.display()))
        })?;
        let g: SignedGrant = serde_json::from_str(&text)
            .map_err(|e| CliError::usage(format!("grant file {}: {e}", path.display())))?;
        grants.push(g);
    }
    grants.sort_by_key(|g| (g.grant.not_before, g.grant.id()));
    Ok(grants)
}

/// Runs a `grant` subcommand.
pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Create(a) => create(ctx, *a).await,
        Command::Withdraw(a) => {
            let grant_id = parse_grant_id(&a.grant_id)?;
            let key = holder_key(&ctx.settings, &a.key)?;
            let client = Client::connect(&ctx.settings)?;
            let withdrawal = holder::withdrawal(client.channel.clone(), grant_id.clone(), &key)
                .map_err(holder_err)?;
            let committed = client
                .licences(&ctx.settings.chaincode)
                .withdraw(&withdrawal)
                .await
                .map_err(|e| {
                    CliError::from(e).context(format!("withdrawing grant {}", a.grant_id))
                })?;
            #[derive(Serialize)]
            struct Out<'a> {
                grant_id: &'a str,
                status: elicense_model::GrantStatus,
                tx_id: &'a str,
                block: u64,
            }
            crate::output::print(
                ctx.format(),
                &Out {
                    grant_id: grant_id.as_str(),
                    status: committed.value.status,
                    tx_id: &committed.transaction_id,
                    block: committed.block_number,
                },
            )
        }
        Command::List(a) => {
            let grants = load_saved(&a.grants_dir)?;
            #[derive(Serialize)]
            struct Row {
                grant_id: String,
                licence_id: String,
                grantee: String,
                matter: String,
                fields: Vec<String>,
                not_after: i64,
                status: String,
                uses_left: Option<u32>,
            }
            let mut rows = Vec::new();
            let mut clients: BTreeMap<String, Client> = BTreeMap::new();
            for g in grants {
                let channel = g.grant.channel.clone();
                if !clients.contains_key(&channel) {
                    clients.insert(
                        channel.clone(),
                        Client::connect(&with_channel(&ctx.settings, &channel))?,
                    );
                }
                let client = &clients[&channel];
                let (status, uses_left) = match client
                    .licences(&ctx.settings.chaincode)
                    .grant(&g.grant.id())
                    .await
                {
                    Ok(record) => {
                        let uses_left = record.uses_left;
                        let state = record.state_at(input::now());
                        (state.name().to_string(), Some(uses_left))
                    }
                    Err(e) if e.failure() == elicense_sdk::Failure::NotFound => {
                        ("not_on_ledger".to_string(), None)
                    }
                    Err(e) => {
                        return Err(
                            CliError::from(e).context(format!("grant {}", g.grant.id().as_str()))
                        )
                    }
                };
                rows.push(Row {
                    grant_id: g.grant.id().as_str().to_string(),
                    licence_id: g.grant.licence_id.as_str().to_string(),
                    grantee: g.grant.grantee_msp.clone(),
                    matter: g.grant.matter.clone(),
                    fields: g.grant.fields.clone(),
                    not_after: g.grant.not_after,
                    status,
                    uses_left,
                });
            }
            crate::output::print(ctx.format(), &rows)
        }
    }
}
