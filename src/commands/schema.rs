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
    /// Write readable documentation of every schema: one Markdown page per
    /// schema and one self-contained HTML page.
    #[command(after_help = "Examples:\n  \
        tagcast schema docs                   # rewrites ./schemas/docs\n  \
        tagcast schema docs --out /tmp/docs")]
    Docs(DocsArgs),
}

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR", default_value = "schemas/docs")]
    out: PathBuf,
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
        SchemaCommand::Docs(args) => docs(args),
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

fn docs(args: DocsArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let documents: Vec<_> = tagcast_spec::schema::documents()
        .into_iter()
        .chain(tagcast_conformance::schema::documents())
        .collect();
    for page in tagcast_spec::schema::docs::pages(&documents) {
        let path = args.out.join(&page.file_name);
        std::fs::write(&path, &page.text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
