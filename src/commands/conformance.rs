//! `tagcast conformance …`: certify CI outputs, registries, brokers and CD
//! endpoints against the contract (`conformance/README.md`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use tagcast_conformance::{
    ApiExpectation, BrokerTarget, CdTarget, Config, Format, RegistryAuth, RegistryTarget, TagsTarget, Target, Url,
    parse_duration,
};
use tagcast_spec::webhook::Secret;
use tagcast_spec::{ApiVersion, Repository, Stage};

#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 no required check failed, 1 a check failed, 2 the runner could not run.")]
pub struct ConformanceArgs {
    #[command(subcommand)]
    target: TargetCommand,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Report format.
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text", value_parser = parse_format, env = "TAGCAST_CONFORMANCE_FORMAT")]
    format: Format,
    /// Write the report to FILE (the text report still goes to standard output).
    #[arg(long, global = true, value_name = "FILE", env = "TAGCAST_CONFORMANCE_OUTPUT")]
    output: Option<PathBuf>,
    /// Run only checks whose name starts with PREFIX (whole segments: `cd/signature`); repeatable.
    #[arg(long, global = true, value_name = "PREFIX")]
    only: Vec<String>,
    /// Do not run checks whose name starts with PREFIX; repeatable.
    #[arg(long, global = true, value_name = "PREFIX")]
    skip: Vec<String>,
    /// Timeout of each request and of each wait for a peer (500ms, 30s, 5m).
    #[arg(long, global = true, value_name = "DURATION", default_value = "15s", value_parser = parse_duration, env = "TAGCAST_CONFORMANCE_TIMEOUT")]
    timeout: Duration,
}

#[derive(Debug, Subcommand)]
enum TargetCommand {
    /// CI outputs: tags, tag files, `docker buildx --metadata-file` JSON, OCI image layouts.
    #[command(after_help = "Examples:\n  \
        tagcast conformance tags 1.1.0-production-261128-101500\n  \
        tagcast conformance tags --metadata-file metadata.json \\\n    \
        --stage production --api-version '^1.1'\n  \
        git tag --list | tagcast conformance tags --file -")]
    Tags(TagsArgs),
    /// A live CD endpoint: the runner plays the broker and sends signed callbacks.
    #[command(after_help = "Example:\n  \
        tagcast conformance cd --url https://cd.example.org/ --secret \"$WHSEC\" \\\n    \
        --format junit --output cd.xml")]
    Cd(CdArgs),
    /// A live broker, end to end: the runner registers test services, plays the registry and receives the callbacks.
    #[command(after_help = "Example:\n  \
        tagcast conformance broker --admin-token \"$TOKEN\" \\\n    \
        --url http://127.0.0.1:8080/ga4gh/registry/v1\n\n\
        The broker must be able to call the runner back at --listen (or --callback-base): run a\n\
        broker under test with private callbacks allowed when both are on one machine.")]
    Broker(BrokerArgs),
    /// A live OCI registry: its tags, listing with Link pagination and the bearer challenge; with --push a tiny image; with --notifications its push notification.
    #[command(after_help = "Example:\n  \
        tagcast conformance registry --url http://127.0.0.1:5000 \\\n    \
        --repository elixircloud/cwl-wes \\\n    \
        --push --notifications --listen 127.0.0.1:5055\n\n\
        With --notifications the registry must send its notifications to http://<listen>/notifications.")]
    Registry(RegistryArgs),
}

#[derive(Debug, Args)]
struct RegistryArgs {
    /// The registry's base URL (`https://registry.example.org`).
    #[arg(long, value_name = "URL", env = "TAGCAST_CONFORMANCE_URL")]
    url: Url,
    /// The repository (`elixircloud/cwl-wes`).
    #[arg(long, value_name = "NAME")]
    repository: String,
    /// User name (Basic, or for the bearer token endpoint).
    #[arg(long, value_name = "U", env = "TAGCAST_CONFORMANCE_USERNAME", requires = "password")]
    username: Option<String>,
    /// Password (better from the environment).
    #[arg(
        long,
        value_name = "P",
        env = "TAGCAST_CONFORMANCE_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    password: Option<String>,
    /// A bearer token obtained elsewhere (better from the environment).
    #[arg(
        long,
        value_name = "T",
        env = "TAGCAST_CONFORMANCE_TOKEN",
        hide_env_values = true,
        conflicts_with = "username"
    )]
    token: Option<String>,
    /// Push a tiny OCI image under a fresh conformant tag, check it, then delete it.
    #[arg(long)]
    push: bool,
    /// Receive the registry's push notification on --listen (needs --push).
    #[arg(long, requires = "push")]
    notifications: bool,
    /// Where the notification receiver listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5055")]
    listen: std::net::SocketAddr,
    /// The stage of the pushed tag.
    #[arg(long, value_name = "STAGE", default_value = "development")]
    stage: Stage,
    /// The api-version of the pushed tag.
    #[arg(long, value_name = "V", default_value = "1.0.0")]
    api_version: String,
    /// Page size of the pagination check.
    #[arg(long, value_name = "N", default_value_t = 2)]
    page_size: usize,
    /// Digests of the repository's tags recorded by earlier runs (created when missing, new tags added,
    /// never replaced): a tag whose digest changed fails registry/tags/immutable (TAG-12). Keep it
    /// between CI runs, one file per repository.
    #[arg(long, value_name = "FILE")]
    known_digests: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct BrokerArgs {
    /// The broker's Service Registry base URL (`…/ga4gh/registry/v1`).
    #[arg(long, value_name = "BASE", env = "TAGCAST_CONFORMANCE_URL")]
    url: Url,
    /// The broker's admin token (better from the environment).
    #[arg(
        long,
        value_name = "T",
        env = "TAGCAST_CONFORMANCE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: String,
    /// Where the runner's callback receiver listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// The receiver's URL as the broker reaches it, when not http://<listen>.
    #[arg(long, value_name = "URL")]
    callback_base: Option<String>,
}

#[derive(Debug, Args)]
struct TagsArgs {
    /// Tags to check.
    #[arg(value_name = "TAG")]
    tags: Vec<String>,
    /// A file with one tag per line (`-` for standard input); repeatable.
    #[arg(long, value_name = "PATH")]
    file: Vec<PathBuf>,
    /// A `docker buildx build|bake --metadata-file` output; repeatable.
    #[arg(long, value_name = "PATH")]
    metadata_file: Vec<PathBuf>,
    /// An OCI image layout directory; repeatable.
    #[arg(long, value_name = "DIR")]
    oci_layout: Vec<PathBuf>,
    /// The stage every tag must have.
    #[arg(long, value_name = "STAGE")]
    stage: Option<Stage>,
    /// The api-version every tag must have (`1.1.0`), or a requirement it must match (`^1.1`).
    #[arg(long, value_name = "V")]
    api_version: Option<String>,
    /// How far a tag's time may be ahead of now or from org.opencontainers.image.created.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    max_skew: Duration,
}

#[derive(Debug, Args)]
struct CdArgs {
    /// The CD endpoint's URL.
    #[arg(long, value_name = "URL", env = "TAGCAST_CONFORMANCE_URL")]
    url: Url,
    /// The endpoint's secret, `whsec_…` (better from the environment).
    #[arg(
        long,
        value_name = "WHSEC",
        env = "TAGCAST_CONFORMANCE_SECRET",
        hide_env_values = true
    )]
    secret: String,
    /// A path to append to the URL (`/tagcast`).
    #[arg(long, value_name = "P")]
    path: Option<String>,
    /// A URL whose JSON shows what the endpoint applied; a duplicate callback must not change it.
    #[arg(long, value_name = "URL")]
    status_url: Option<Url>,
    /// A JSON pointer into the status to compare instead of all of it (`/applied`).
    #[arg(long, value_name = "POINTER", requires = "status_url")]
    status_pointer: Option<String>,
    /// A bearer token for --status-url (sent as Authorization: Bearer; the
    /// reference deployer's --admin-token).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TAGCAST_CONFORMANCE_STATUS_TOKEN",
        hide_env_values = true,
        requires = "status_url"
    )]
    status_token: Option<String>,
    /// The repository the test events name.
    #[arg(long, value_name = "REPO", default_value = "docker.io/tagcast/conformance")]
    image: String,
    /// The stage of the test events' tags.
    #[arg(long, value_name = "STAGE", default_value = "production")]
    stage: Stage,
    /// The api-version of the test events' tags.
    #[arg(long, value_name = "V", default_value = "1.0.0")]
    api_version: String,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|e: tagcast_conformance::report::FormatError| e.to_string())
}

pub fn run(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let common = args.common;
    let target = match args.target {
        TargetCommand::Tags(tags) => Target::Tags(tags_target(tags)?),
        TargetCommand::Cd(cd) => Target::Cd(cd_target(cd)?),
        TargetCommand::Registry(registry) => Target::Registry(registry_target(registry)?),
        TargetCommand::Broker(broker) => {
            let mut target = BrokerTarget::new(broker.url, broker.admin_token);
            target.listen = broker.listen;
            target.callback_base = broker.callback_base;
            Target::Broker(target)
        }
    };
    let config = Config {
        only: common.only,
        skip: common.skip,
        timeout: common.timeout,
        ..Config::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(tagcast_conformance::run(&target, &config));
    let rendered = report.render(common.format);
    match &common.output {
        Some(path) => {
            std::fs::write(path, &rendered).with_context(|| format!("cannot write {}", path.display()))?;
            print!("{}", report.render(Format::Text));
        }
        None => print!("{rendered}"),
    }
    Ok(ExitCode::from(report.exit_code()))
}

fn tags_target(args: TagsArgs) -> anyhow::Result<TagsTarget> {
    let mut target = TagsTarget {
        tags: args.tags,
        metadata_files: args.metadata_file,
        oci_layouts: args.oci_layout,
        stage: args.stage,
        max_skew: args.max_skew,
        ..TagsTarget::default()
    };
    for file in args.file {
        if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read tags from standard input")?;
            target.tags.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        } else {
            target.files.push(file);
        }
    }
    if let Some(expected) = args.api_version {
        let expected: ApiExpectation = expected
            .parse()
            .with_context(|| format!("invalid --api-version {expected:?}"))?;
        target.api_version = Some(expected);
    }
    Ok(target)
}

fn registry_target(args: RegistryArgs) -> anyhow::Result<RegistryTarget> {
    let mut target = RegistryTarget::new(args.url, args.repository);
    target.auth = match (args.username, args.password, args.token) {
        (_, _, Some(token)) => RegistryAuth::Token(token),
        (Some(username), Some(password), None) => RegistryAuth::Basic { username, password },
        _ => RegistryAuth::Anonymous,
    };
    target.push = args.push;
    target.notifications = args.notifications;
    target.listen = args.listen;
    target.stage = args.stage;
    target.api_version = ApiVersion::parse(&args.api_version)
        .with_context(|| format!("invalid --api-version {:?}", args.api_version))?;
    target.page_size = args.page_size.max(1);
    target.known_digests = args.known_digests;
    Ok(target)
}

fn cd_target(args: CdArgs) -> anyhow::Result<CdTarget> {
    let secret = Secret::parse(&args.secret).context("invalid --secret")?;
    let mut url = args.url;
    if let Some(path) = args.path {
        let joined = format!("{}/{}", url.path().trim_end_matches('/'), path.trim_start_matches('/'));
        url.set_path(&joined);
    }
    let mut target = CdTarget::new(url, secret);
    target.image = Repository::parse(&args.image).with_context(|| format!("invalid --image {:?}", args.image))?;
    target.stage = args.stage;
    target.api_version = ApiVersion::parse(&args.api_version)
        .with_context(|| format!("invalid --api-version {:?}", args.api_version))?;
    target.status_url = args.status_url;
    target.status_pointer = args.status_pointer;
    target.status_token = args.status_token.map(tagcast_conformance::StatusToken);
    Ok(target)
}
