//! Secrets (codes, keys, holder secrets) come from a file, the environment or standard input,
//! never from the command line itself, where they would land in shell history and `ps`.

use std::io::Read;
use std::str::FromStr;

use crate::error::CliError;

/// Where to read a secret from: `file:PATH`, `env:NAME`, or `-` for standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file's contents (trailing newline removed).
    File(std::path::PathBuf),
    /// An environment variable's value.
    Env(String),
    /// Standard input (first line).
    Stdin,
}

impl FromStr for SecretSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "-" || s == "stdin" {
            Ok(SecretSource::Stdin)
        } else if let Some(path) = s.strip_prefix("file:") {
            Ok(SecretSource::File(path.into()))
        } else if let Some(name) = s.strip_prefix("env:") {
            Ok(SecretSource::Env(name.to_string()))
        } else {
            Err("a secret is read from `file:PATH`, `env:NAME` or `-` (standard input), never given inline".into())
        }
    }
}

impl SecretSource {
    /// Reads the secret.
    pub fn read(&self) -> Result<String, CliError> {
        let raw = match self {
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                CliError::usage(format!("reading secret file {}: {e}", path.display()))
            })?,
            SecretSource::Env(name) => std::env::var(name).map_err(|_| {
                CliError::usage(format!("environment variable {name} is not set"))
                    .hint("export it, or pass file:PATH or - instead")
            })?,
            SecretSource::Stdin => {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map_err(|e| {
                    CliError::usage(format!("reading secret from standard input: {e}"))
                })?;
                s.lines().next().unwrap_or_default().to_string()
            }
        };
        let secret = raw.trim_end_matches(['\r', '\n']).to_string();
        if secret.is_empty() {
            return Err(CliError::usage("the secret is empty"));
        }
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secrets_are_refused_and_sources_parse() {
        assert!("12345678".parse::<SecretSource>().is_err());
        assert_eq!("-".parse::<SecretSource>().unwrap(), SecretSource::Stdin);
        assert_eq!(
            "env:CODE".parse::<SecretSource>().unwrap(),
            SecretSource::Env("CODE".into())
        );
    }

    #[test]
    fn file_secret_drops_the_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code");
        std::fs::write(&path, "87654321\n").unwrap();
        let src: SecretSource = format!("file:{}", path.display()).parse().unwrap();
        assert_eq!(src.read().unwrap(), "87654321");
        std::fs::write(&path, "\n").unwrap();
        assert!(src.read().is_err());
    }
}
