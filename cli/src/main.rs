//! The `elicense` binary.

fn main() -> std::process::ExitCode {
    elicense_cli::main_exit()
}
