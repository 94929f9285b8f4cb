//! `tagcast schema …`: the generated JSON Schemas of the contract.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Write every JSON Schema of the contract (draft 2020-12) into a folder.
    #[command(after_help = "Examples:\n  \
        tagcast schema export                 # rewrites ./schemas\n  \
        tagcast schema export --out /tmp/schemas")]
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    out: PathBuf,
}

pub fn run(command: SchemaCommand) -> anyhow::Result<ExitCode> {
    match command {
        SchemaCommand::Export(args) => export(args),
    }
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let documents = tagcast_spec::schema::documents()
        .into_iter()
        .chain(tagcast_conformance::schema::documents());
    for document in documents {
        let path = args.out.join(document.file_name);
        std::fs::write(&path, tagcast_spec::schema::render(&document))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
