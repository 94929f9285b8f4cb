//! `tagcast reference parse`: OCI image references and their normalization.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tagcast_spec::ImageReference;

#[derive(Debug, Subcommand)]
pub enum ReferenceCommand {
    /// Parse an image reference `[host[:port]/]path[:tag][@digest]` and
    /// show the registry host it names (and why), its parts and normalized
    /// repository. Exit 1 when invalid.
    #[command(after_help = "Examples:\n  \
        tagcast reference parse elixircloud/cwl-wes:1.1-demo-201108-195630\n  \
        DIGEST=sha256:$(printf x | sha256sum | cut -c1-64) && \\\n    \
        tagcast reference parse --format json \"localhost:5000/tes/funnel@$DIGEST\"")]
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
    let registry = reference.repository().domain().to_owned();
    let why = host_reason(&reference);
    let warning = upper_case_host_warning(&reference);
    if let Some(warning) = &warning {
        eprintln!("warning: {warning}");
    }
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
                "registry": registry,
                "registryReason": why,
                "warnings": warning.iter().collect::<Vec<_>>(),
                "tagcastTag": tag.as_ref().map(|t| t.is_ok()),
                "errors": tag_error.iter().collect::<Vec<_>>(),
            })
        ),
        Format::Text => {
            println!("registry    {registry} ({why})");
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

/// Why the registry is what it is: which rule of REF-6 made the first
/// component a host, or why there is none (Docker Hub).
fn host_reason(reference: &ImageReference) -> &'static str {
    match reference.host() {
        None if !reference.path().contains('/') => "Docker Hub: a name of one component is an official image",
        None => {
            "Docker Hub: the first component is no host, as it has no '.' or ':', is not localhost and is lower case"
        }
        Some(_) if reference.port().is_some() => "the first component has a port",
        Some("localhost") => "the first component is localhost",
        Some(host) if host.contains('.') || host.starts_with('[') => "the first component has a '.'",
        Some(_) => "the first component has an upper-case letter",
    }
}

/// A first component taken as a host only because of its upper-case letter
/// (REF-6) is, far more often, a mistyped Docker Hub namespace.
fn upper_case_host_warning(reference: &ImageReference) -> Option<String> {
    let host = reference.host()?;
    let only_upper_case =
        reference.port().is_none() && host != "localhost" && !host.contains('.') && !host.starts_with('[');
    only_upper_case.then(|| {
        format!(
            "{host:?} is taken as the registry host because it has an upper-case letter (REF-6); \
             a Docker Hub namespace is lower case: did you mean `{}/{}`?",
            host.to_ascii_lowercase(),
            reference.path()
        )
    })
}
