//! `elicense`: the eLicense Ledger command line, as a library so its pieces are testable.
//!
//! A thin layer over the SDK and the devnet: it parses arguments, resolves settings (flag, then
//! environment, then config file), calls the library, prints the result as JSON, YAML or a
//! table, and maps failures to the exit codes documented in [`exit`].

pub mod commands;
pub mod config;
pub mod connect;
pub mod error;
pub mod exit;
pub mod input;
pub mod output;
pub mod secret;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::config::{GlobalArgs, Settings};
use crate::error::CliError;
use crate::output::Format;

/// Government electronic licences on Hyperledger Fabric.
#[derive(Debug, Parser)]
#[command(name = "elicense", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The whole licence story on the embedded devnet, narrated (or one JSON document).
    Demo(commands::demo::Args),
    /// The embedded Fabric-compatible network: up, down, status, deploy.
    #[command(subcommand)]
    Devnet(commands::devnet::Command),
    /// Run the licence chaincode as a CCaaS server, or write its install package.
    #[command(subcommand)]
    Chaincode(commands::chaincode::Command),
    /// Fabric CA operations: enroll, register, reenroll, revoke.
    #[command(subcommand)]
    Ca(commands::ca::Command),
    /// The channel's licence catalogue.
    #[command(subcommand)]
    Catalogue(commands::catalogue::Command),
    /// Issue licences and manage their status (issuer side).
    #[command(subcommand)]
    Licence(commands::licence::Command),
    /// Grants of a licence to a department (holder side).
    #[command(subcommand)]
    Grant(commands::grant::Command),
    /// Use a holder's grant at the window: check the code and presented fields.
    Verify(commands::verify::Args),
    /// After a verify, fetch the granted values from the issuer's library.
    Retrieve(commands::retrieve::Args),
    /// The usage trail: a holder's own, or every use for the regulator.
    Usage(commands::usage::Args),
    /// Print one block of the channel, decoded.
    Block(commands::block::Args),
    /// Stream the chaincode's events, optionally resuming from a checkpoint file.
    Events(commands::events::Args),
    /// Print a shell completion script.
    Completions(commands::completions::Args),
}

/// What every command runs with.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The resolved settings.
    pub settings: Settings,
    /// `-q`: print nothing but results and errors.
    pub quiet: bool,
    /// `-v` count.
    pub verbose: u8,
}

impl Ctx {
    /// The output format.
    pub fn format(&self) -> Format {
        self.settings.output
    }
}

/// Runs the command line and returns the process exit code.
pub fn main_exit() -> ExitCode {
    let cli = Cli::parse();

    init_logging(&cli.global);
    let settings = match Settings::resolve(&cli.global, std::io::stdout().is_terminal()) {
        Ok(s) => s,
        Err(e) => return report(&e, cli.global.output.unwrap_or(Format::Table)),
    };
    let ctx = Ctx {
        settings,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                &CliError::new(exit::Class::Internal, format!("starting the runtime: {e}")),
                ctx.format(),
            )
        }
    };
    let result = runtime.block_on(run(&ctx, cli.command));
    // Background tasks (lazy connections, streams) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e, ctx.format()),
    }
}

async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Demo(a) => commands::demo::run(ctx, a).await,
        Command::Devnet(c) => commands::devnet::run(ctx, c).await,
        Command::Chaincode(c) => commands::chaincode::run(ctx, c).await,
        Command::Ca(c) => commands::ca::run(ctx, c).await,
        Command::Catalogue(c) => commands::catalogue::run(ctx, c).await,
        Command::Licence(c) => commands::licence::run(ctx, c).await,
        Command::Grant(c) => commands::grant::run(ctx, c).await,
        Command::Verify(a) => commands::verify::run(ctx, a).await,
        Command::Retrieve(a) => commands::retrieve::run(ctx, a).await,
        Command::Usage(a) => commands::usage::run(ctx, a).await,
        Command::Block(a) => commands::block::run(ctx, a).await,
        Command::Events(a) => commands::events::run(ctx, a).await,
        Command::Completions(args) => commands::completions::run(&args),
    }
}

fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ELICENSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Prints a failure on standard error (as JSON with `-o json`) and returns its exit code.
fn report(err: &CliError, format: Format) -> ExitCode {
    if format == Format::Json {
        eprintln!("{}", err.to_json());
    } else {
        let colour = std::io::stderr().is_terminal();
        let label = if colour {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        eprintln!("{label}: {err}");
        if let Some(hint) = &err.hint {
            eprintln!("  hint: {hint}");
        }
    }
    err.class.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
