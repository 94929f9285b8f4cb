//! `tagcast tag …`: create, check, sort, pick and normalize tags.

mod at;
mod input;

use std::cmp::Ordering;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use tagcast_spec::{ApiRequirement, ApiVersion, Repository, Stage, Tag, UpdatePolicy};

use input::{Diagnostic, InputArgs, Origin, describe, for_each_input, refuse_empty};

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Print a new tag for an api-version and stage, at the current UTC time
    /// or at --at.
    #[command(after_help = "Examples:\n  \
        tagcast tag new --api-version 1.1.0 --stage production\n  \
        tagcast tag new --api-version 1.1.0 --stage demo \\\n    \
        --at 2020-11-08T19:56:30Z --image elixircloud/cwl-wes\n  \
        TAG=$(tagcast tag new --api-version \"$(cat API_VERSION)\" --stage staging)")]
    New(NewArgs),
    /// Check tags against the grammar. Exit 0 when all are valid, 1 when
    /// any is invalid or there are none (see --allow-empty), 2 on usage or
    /// I/O errors.
    #[command(after_help = "Examples:\n  \
        tagcast tag check 1.1-demo-201108-195630\n  \
        tagcast tag check --format json \\\n    \
        1.1.0-production-201108-195630 1.1-demo-200230-000000\n  \
        skopeo list-tags docker://elixircloud/cwl-wes | jq -r '.Tags[]' \\\n    \
        | tagcast tag check --file -")]
    Check(CheckArgs),
    /// Sort tags in channel order, oldest first, grouped by stage.
    #[command(after_help = "Examples:\n  \
        tagcast tag sort --file tags.txt\n  \
        tagcast tag sort 1.1.0-demo-201108-195630 1.0.9-demo-211231-000000")]
    Sort(InputArgs),
    /// Print the newest tag that the update rule allows; exit 1 if none.
    #[command(after_help = "Examples:\n  \
        tagcast tag latest --stage production --file tags.txt\n  \
        tagcast tag latest --stage production --api-version '^1.1' \\\n    \
        --after 1.1.0-production-201108-195630 --file -")]
    Latest(LatestArgs),
    /// Print the canonical (three-part) form of each tag.
    #[command(after_help = "Examples:\n  \
        tagcast tag normalize 1.1-demo-201108-195630    # 1.1.0-demo-201108-195630\n  \
        tagcast tag normalize --file tags.txt")]
    Normalize(InputArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The GA4GH API version the service implements (its service-info
    /// `type.version`): MAJOR.MINOR[.PATCH].
    #[arg(long, value_name = "VERSION")]
    api_version: String,
    /// The stage: production, staging, development or demo.
    #[arg(long)]
    stage: Stage,
    /// Build time as RFC 3339 (converted to UTC); default: now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Print REPO:TAG instead of the tag alone.
    #[arg(long, value_name = "REPO")]
    image: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format: text (one line per invalid tag, `SOURCE: message
    /// (TAG-n)` with a "did you mean" hint, then a summary) or json (one
    /// object per tag and line; each error an object with source, line,
    /// position, requirement, message and suggestion).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Debug, Args)]
pub struct LatestArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The subscribed stage.
    #[arg(long)]
    stage: Stage,
    /// Accepted api-versions, a SemVer requirement such as '^1.1'; default '*'.
    #[arg(long, value_name = "REQ")]
    api_version: Option<String>,
    /// The tag the subscriber has now: only newer tags qualify.
    #[arg(long, value_name = "TAG")]
    after: Option<String>,
}

pub fn run(command: TagCommand) -> anyhow::Result<ExitCode> {
    match command {
        TagCommand::New(args) => new(args),
        TagCommand::Check(args) => check(args),
        TagCommand::Sort(args) => sort(args),
        TagCommand::Latest(args) => latest(args),
        TagCommand::Normalize(args) => normalize(args),
    }
}

fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let api_version = ApiVersion::parse(&args.api_version)?;
    let at = match &args.at {
        Some(text) => at::parse(text)?,
        None => Utc::now(),
    };
    let tag = Tag::new(api_version, args.stage, at)?;
    match &args.image {
        Some(image) => {
            Repository::parse(image)?;
            println!("{image}:{tag}");
        }
        None => println!("{tag}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `tag check --format json`. Fields that do not apply are null.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckRecord<'a> {
    tag: &'a str,
    valid: bool,
    canonical: Option<String>,
    semver: Option<String>,
    api_version: Option<String>,
    stage: Option<Stage>,
    timestamp: Option<String>,
    errors: Vec<Diagnostic>,
}

impl<'a> CheckRecord<'a> {
    fn new(origin: Origin<'_>, input: &'a str, result: &Result<Tag, tagcast_spec::TagError>) -> Self {
        match result {
            Ok(tag) => Self {
                tag: input,
                valid: true,
                canonical: Some(tag.canonical().to_string()),
                semver: Some(tag.to_semver().to_string()),
                api_version: Some(tag.api_version().canonical().to_string()),
                stage: Some(tag.stage()),
                timestamp: Some(tag.timestamp().to_datetime().to_rfc3339_opts(SecondsFormat::Secs, true)),
                errors: Vec::new(),
            },
            Err(err) => Self {
                tag: input,
                valid: false,
                canonical: None,
                semver: None,
                api_version: None,
                stage: None,
                timestamp: None,
                errors: vec![Diagnostic::new(origin, err)],
            },
        }
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let (mut total, mut invalid) = (0u64, 0u64);
    let count = for_each_input(&args.input, |origin, input| {
        total += 1;
        let result = Tag::parse(input);
        if result.is_err() {
            invalid += 1;
        }
        match args.format {
            Format::Json => {
                serde_json::to_writer(&mut out, &CheckRecord::new(origin, input, &result))?;
                out.write_all(b"\n")?;
            }
            Format::Text => {
                if let Err(err) = &result {
                    writeln!(out, "{}", describe(origin, err))?;
                }
            }
        }
        Ok(())
    })?;
    out.flush()?;
    if let Some(code) = refuse_empty(&args.input, count) {
        return Ok(code);
    }
    if let Format::Text = args.format {
        writeln!(out, "{} checked, {} valid, {} invalid", total, total - invalid, invalid)?;
    }
    out.flush()?;
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Channel order for a sort: by stage (in the grammar's order), then by
/// precedence; equivalent tags keep their input order (stable sort).
fn sort_key_cmp(a: &Tag, b: &Tag) -> Ordering {
    a.channel_cmp(b).unwrap_or_else(|| a.stage().cmp(&b.stage()))
}

fn sort(args: InputArgs) -> anyhow::Result<ExitCode> {
    // Invalid tags are reported on standard error and left out.
    let mut tags = Vec::new();
    let mut invalid = 0;
    let count = for_each_input(&args, |origin, text| {
        match Tag::parse(text) {
            Ok(tag) => tags.push((text.to_owned(), tag)),
            Err(err) => {
                invalid += 1;
                eprintln!("skipped: {}", describe(origin, &err));
            }
        }
        Ok(())
    })?;
    if let Some(code) = refuse_empty(&args, count) {
        return Ok(code);
    }
    tags.sort_by(|(_, a), (_, b)| sort_key_cmp(a, b));
    let mut out = BufWriter::new(io::stdout().lock());
    for (text, _) in &tags {
        writeln!(out, "{text}")?;
    }
    out.flush()?;
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn latest(args: LatestArgs) -> anyhow::Result<ExitCode> {
    let requirement = match &args.api_version {
        Some(text) => ApiRequirement::parse(text)?,
        None => ApiRequirement::any(),
    };
    let after = args.after.as_deref().map(Tag::parse).transpose()?;
    let policy = UpdatePolicy {
        stage: args.stage,
        requirement,
    };
    let mut best: Option<(String, Tag)> = None;
    let count = for_each_input(&args.input, |_, text| {
        // Tags outside the grammar (`latest`, `main`, …) are not in any channel.
        let Ok(tag) = Tag::parse(text) else { return Ok(()) };
        if policy.check(after.as_ref(), &tag).is_err() {
            return Ok(());
        }
        if best
            .as_ref()
            .is_none_or(|(_, b)| tag.channel_cmp(b) == Some(Ordering::Greater))
        {
            best = Some((text.to_owned(), tag));
        }
        Ok(())
    })?;
    if let Some(code) = refuse_empty(&args.input, count) {
        return Ok(code);
    }
    match best {
        Some((text, _)) => {
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("no tag of stage {} is an update", args.stage);
            Ok(ExitCode::from(1))
        }
    }
}

fn normalize(args: InputArgs) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut failed = false;
    let count = for_each_input(&args, |origin, text| {
        match Tag::parse(text) {
            Ok(tag) => writeln!(out, "{}", tag.canonical())?,
            Err(err) => {
                eprintln!("{}", describe(origin, &err));
                failed = true;
            }
        }
        Ok(())
    })?;
    out.flush()?;
    if let Some(code) = refuse_empty(&args, count) {
        return Ok(code);
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
