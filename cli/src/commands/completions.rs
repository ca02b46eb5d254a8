//! `elicense completions SHELL`: prints a shell completion script.

use clap::CommandFactory;

use crate::error::CliError;

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the completion script for `args.shell` to standard output.
pub fn run(args: &Args) -> Result<(), CliError> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "elicense", &mut std::io::stdout());
    Ok(())
}
