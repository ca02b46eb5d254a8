//! Global options and where their values come from: a flag, then its environment variable, then
//! the config file (`--config`, `ELICENSE_CONFIG`, or `elicense.toml` in the working directory),
//! then the built-in default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::CliError;
use crate::output::Format;

/// Options every command accepts.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Connection profile (Fabric common connection profile, JSON or YAML).
    #[arg(long, global = true, env = "ELICENSE_PROFILE", value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Identity: an MSP directory, or a label in the wallet directory.
    #[arg(
        long,
        global = true,
        env = "ELICENSE_IDENTITY",
        value_name = "DIR|LABEL"
    )]
    pub identity: Option<String>,
    /// Wallet directory holding identities by label.
    #[arg(long, global = true, env = "ELICENSE_WALLET", value_name = "DIR")]
    pub wallet: Option<PathBuf>,
    /// MSP ID of an MSP-directory identity (default: the profile's client organisation's).
    #[arg(long, global = true, env = "ELICENSE_MSP_ID", value_name = "MSPID")]
    pub msp_id: Option<String>,
    /// A devnet data directory: --identity ORG/USER then names its MSP directory, and the
    /// profile defaults to that organisation's.
    #[arg(long, global = true, env = "ELICENSE_DEVNET", value_name = "DIR")]
    pub devnet: Option<PathBuf>,
    /// Channel name.
    #[arg(long, global = true, env = "ELICENSE_CHANNEL")]
    pub channel: Option<String>,
    /// Chaincode name.
    #[arg(long, global = true, env = "ELICENSE_CHAINCODE")]
    pub chaincode: Option<String>,
    /// Config file with defaults for the options above.
    #[arg(long, global = true, env = "ELICENSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        env = "ELICENSE_OUTPUT"
    )]
    pub output: Option<Format>,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// Defaults read from a config file.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Connection profile path.
    pub profile: Option<PathBuf>,
    /// Identity directory or wallet label.
    pub identity: Option<String>,
    /// Wallet directory.
    pub wallet: Option<PathBuf>,
    /// MSP ID of an MSP-directory identity.
    pub msp_id: Option<String>,
    /// Devnet data directory.
    pub devnet: Option<PathBuf>,
    /// Channel name.
    pub channel: Option<String>,
    /// Chaincode name.
    pub chaincode: Option<String>,
    /// Output format: json, yaml or table.
    pub output: Option<String>,
}

/// The resolved settings a command runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Connection profile path, if any.
    pub profile: Option<PathBuf>,
    /// Identity directory or wallet label, if any.
    pub identity: Option<String>,
    /// Wallet directory, if any.
    pub wallet: Option<PathBuf>,
    /// MSP ID for an MSP-directory identity, if given.
    pub msp_id: Option<String>,
    /// Devnet data directory, if given.
    pub devnet: Option<PathBuf>,
    /// Channel name, if any.
    pub channel: Option<String>,
    /// Chaincode name (default `elicense`).
    pub chaincode: String,
    /// Output format (default: table on a terminal, JSON otherwise).
    pub output: Format,
}

impl Settings {
    /// Resolves flags/env over the config file over defaults.
    pub fn resolve(args: &GlobalArgs, stdout_is_terminal: bool) -> Result<Self, CliError> {
        let file = match &args.config {
            Some(path) => load(path)?,
            None if Path::new("elicense.toml").exists() => load(Path::new("elicense.toml"))?,
            None => FileConfig::default(),
        };
        let output = match (args.output, file.output.as_deref()) {
            (Some(f), _) => f,
            (None, Some(name)) => {
                <Format as clap::ValueEnum>::from_str(name, true).map_err(|_| {
                    CliError::usage(format!("config file: unknown output format {name:?}"))
                })?
            }
            (None, None) if stdout_is_terminal => Format::Table,
            (None, None) => Format::Json,
        };
        Ok(Settings {
            profile: args.profile.clone().or(file.profile),
            identity: args.identity.clone().or(file.identity),
            wallet: args.wallet.clone().or(file.wallet),
            msp_id: args.msp_id.clone().or(file.msp_id),
            devnet: args.devnet.clone().or(file.devnet),
            channel: args.channel.clone().or(file.channel),
            chaincode: args
                .chaincode
                .clone()
                .or(file.chaincode)
                .unwrap_or_else(|| "elicense".to_string()),
            output,
        })
    }
}

/// Reads a config file; relative paths in it are taken relative to the file's directory, so a
/// config file can sit next to the profile and identities it names.
fn load(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("reading config file {}: {e}", path.display())))?;
    let mut cfg: FileConfig = toml::from_str(&text)
        .map_err(|e| CliError::usage(format!("config file {}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new(""));
    let rebase = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    cfg.profile = cfg.profile.map(rebase);
    cfg.wallet = cfg.wallet.map(rebase);
    cfg.devnet = cfg.devnet.map(rebase);
    if let Some(id) = &cfg.identity {
        let candidate = base.join(id);
        if Path::new(id).is_relative() && candidate.is_dir() {
            cfg.identity = Some(candidate.display().to_string());
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        g: GlobalArgs,
    }

    #[test]
    fn flags_win_over_the_config_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            "channel = \"police-service\"\nchaincode = \"cc\"\noutput = \"yaml\"\n",
        )
        .unwrap();
        let cfg_arg = cfg.display().to_string();
        let t = T::parse_from(["x", "--config", &cfg_arg, "--chaincode", "other"]);
        let s = Settings::resolve(&t.g, false).unwrap();
        assert_eq!(s.channel.as_deref(), Some("police-service"));
        assert_eq!(s.chaincode, "other");
        assert_eq!(s.output, Format::Yaml);
    }

    #[test]
    fn unknown_config_keys_are_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "chanel = \"typo\"\n").unwrap();
        let cfg_arg = cfg.display().to_string();
        let t = T::parse_from(["x", "--config", &cfg_arg]);
        let err = Settings::resolve(&t.g, false).unwrap_err();
        assert_eq!(err.class, crate::exit::Class::Usage);
        assert!(err.message.contains("chanel"), "{}", err.message);
    }
}
