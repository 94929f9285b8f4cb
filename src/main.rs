//! `tagcast`: one binary for every role of the tagcast contract.
//!
//! Exit codes: 0 success, 1 the command found a problem (an invalid tag, a
//! failed conformance check, no matching tag), 2 it could not run (usage,
//! I/O, unreachable peer).

mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
