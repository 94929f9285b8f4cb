//! `tagcast reference parse`: OCI image references and their normalization.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tagcast_spec::ImageReference;

#[derive(Debug, Subcommand)]
pub enum ReferenceCommand {
    /// Parse an image reference `[host[:port]/]path[:tag][@digest]` and
    /// show its parts and normalized repository. Exit 1 when invalid.
    #[command(after_help = "Examples:\n  \
        tagcast reference parse elixircloud/cwl-wes:1.1-demo-201108-195630\n  \
        tagcast reference parse --format json localhost:5000/tes/funnel@sha256:<64 hex digits>")]
    Parse(ParseArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The reference.
    reference: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub fn run(command: ReferenceCommand) -> anyhow::Result<ExitCode> {
    let ReferenceCommand::Parse(args) = command;
    let reference = match ImageReference::parse(&args.reference) {
        Ok(reference) => reference,
        Err(err) => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    json!({"reference": args.reference, "valid": false, "errors": [err.to_string()]})
                ),
                Format::Text => eprintln!("{err}"),
            }
            return Ok(ExitCode::from(1));
        }
    };
    let tag = reference.tagcast_tag();
    let tag_error = match &tag {
        Some(Err(err)) => Some(err.to_string()),
        _ => None,
    };
    match args.format {
        Format::Json => println!(
            "{}",
            json!({
                "reference": args.reference,
                "valid": true,
                "host": reference.host(),
                "port": reference.port(),
                "path": reference.path(),
                "tag": reference.tag(),
                "digest": reference.digest().map(ToString::to_string),
                "repository": reference.repository().to_string(),
                "normalized": reference.normalized(),
                "tagcastTag": tag.as_ref().map(|t| t.is_ok()),
                "errors": tag_error.iter().collect::<Vec<_>>(),
            })
        ),
        Format::Text => {
            println!("repository  {}", reference.repository());
            println!("normalized  {}", reference.normalized());
            if let Some(tag) = reference.tag() {
                let verdict = tag_error.as_deref().unwrap_or("follows the tagcast grammar");
                println!("tag         {tag} ({verdict})");
            }
            if let Some(digest) = reference.digest() {
                println!("digest      {digest}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
