//! `tagcast broker hook-config`: what to configure by hand in registries
//! whose webhooks the broker cannot create through an API.
//!
//! - `distribution` (CNCF Distribution, `registry` 2.x/3.x): endpoints live
//!   only in the registry's configuration file; this prints the
//!   `notifications` block to paste. Keys and defaults: distribution/distribution
//!   `docs/content/about/configuration.md` ("notifications") and
//!   `notifications/endpoint.go` (`timeout` 1s, `threshold` 10, `backoff` 1s
//!   by default); `headers` values are lists. Both `ignore.mediatypes` and
//!   `ignore.actions` are set because action-only filtering does nothing
//!   before 3.1 (distribution/distribution#4729).
//! - `dockerhub`: Docker Hub's API reference has no webhook endpoints and
//!   its webhooks carry no secret (docs.docker.com, "Webhooks" under
//!   repositories); this prints the steps in the web interface.
//! - `ecr`: no webhooks; pushes are EventBridge "ECR Image Action" events
//!   sent to the broker by an API destination (AWS ECR user guide,
//!   "Amazon ECR events and EventBridge"; EventBridge user guide, "API
//!   destinations"); this prints the `aws events` commands.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use tagcast_spec::Repository;

const EXAMPLES: &str = "Examples:
  # The notifications block of a Distribution registry, with the hook URL
  # from the subscription's hooks[].url and the broker's --hook-token:
  TAGCAST_HOOK_TOKEN=\"$HOOK_TOKEN\" \\
    tagcast broker hook-config --kind distribution \\
    --image registry.example.org:5000/team/app \\
    --hook-url https://broker.example.org/hooks/distribution/9f3c...

  # The manual steps for Docker Hub:
  tagcast broker hook-config --kind dockerhub --image docker.io/team/app \\
    --hook-url https://broker.example.org/hooks/dockerhub/5d1a...";

/// `tagcast broker hook-config`: print the registry-side configuration of a hook.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct HookConfigArgs {
    /// The registry kind: distribution, dockerhub or ecr (the others are
    /// set up by the broker with `[[registries]] manage` credentials).
    #[arg(long, value_name = "KIND")]
    kind: String,
    /// The subscribed image, HOST/PATH.
    #[arg(long, value_name = "IMAGE")]
    image: String,
    /// The hook URL the broker gave the subscription (`hooks[].url`).
    #[arg(long, value_name = "URL")]
    hook_url: String,
    /// The broker's --hook-token: sent as `Authorization: Bearer …`.
    #[arg(long, env = "TAGCAST_HOOK_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    hook_token: Option<String>,
}

/// Prints the configuration.
pub fn run(args: &HookConfigArgs) -> anyhow::Result<ExitCode> {
    print!("{}", render(args)?);
    Ok(ExitCode::SUCCESS)
}

fn render(args: &HookConfigArgs) -> anyhow::Result<String> {
    let image = Repository::parse(&args.image).with_context(|| format!("invalid --image {:?}", args.image))?;
    let url = reqwest::Url::parse(&args.hook_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .with_context(|| {
            format!(
                "invalid --hook-url {:?}: expected the http(s) URL of hooks[].url",
                args.hook_url
            )
        })?;
    let expected = format!("/hooks/{}/", args.kind);
    if !url.path().contains(&expected) {
        bail!(
            "invalid --hook-url: a {} hook URL has {expected}<token> in its path (the subscription's hooks[].url of that kind)",
            args.kind
        );
    }
    if let Some(token) = &args.hook_token {
        if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'') {
            bail!("invalid --hook-token: must be at least 16 characters without whitespace or quotes");
        }
    }
    match args.kind.as_str() {
        "distribution" => Ok(distribution(&image, url.as_str(), args.hook_token.as_deref())),
        "dockerhub" => dockerhub(&image, url.as_str()),
        "ecr" => Ok(ecr(&image, url.as_str(), args.hook_token.as_deref())),
        other => bail!(
            "invalid --kind {other:?}: hook-config knows distribution, dockerhub and ecr; \
             for harbor, quay, ghcr and gitea the broker creates the hook itself when the registry has \
             [[registries]] manage credentials"
        ),
    }
}

fn distribution(image: &Repository, url: &str, token: Option<&str>) -> String {
    let headers = match token {
        Some(token) => format!("      headers:\n        Authorization: [\"Bearer {token}\"]\n"),
        None => String::new(),
    };
    format!(
        "# tagcast: push notifications of {host} for {image} (and every other repository\n\
         # of this registry) to the broker. Merge into the registry's configuration\n\
         # file (config.yml) and restart the registry.\n\
         notifications:\n  \
           endpoints:\n    \
             - name: tagcast\n      \
               url: {url}\n\
         {headers}      \
               timeout: 5s\n      \
               threshold: 5\n      \
               backoff: 1s\n      \
               ignore:\n        \
                 mediatypes:\n          \
                   - application/octet-stream\n        \
                 actions:\n          \
                   - pull\n",
        host = image.domain(),
    )
}

fn dockerhub(image: &Repository, url: &str) -> anyhow::Result<String> {
    if image.domain() != tagcast_spec::DOCKER_HUB {
        bail!("invalid --image {image}: a dockerhub hook is for images on docker.io");
    }
    let path = image.path();
    Ok(format!(
        "Docker Hub has no API to create webhooks: create it by hand.\n\
         1. Sign in to Docker Hub as an owner of {path} and open the repository.\n\
         2. Open the Webhooks tab.\n\
         3. Webhook name: tagcast\n   \
            Webhook URL:  {url}\n   \
            Select Create.\n\
         Docker Hub sends no secret or signature: the URL's token is the credential\n\
         (keep it private), and the broker resolves every pushed tag's digest\n\
         against the registry before delivering. For a private repository, give\n\
         the broker pull credentials: [[registries]] host = \"docker.io\" with\n\
         pull = {{ username = \"…\", password-env = \"…\" }}.\n"
    ))
}

fn ecr(image: &Repository, url: &str, token: Option<&str>) -> String {
    let repository = image.path();
    let key = token.map_or_else(|| "<the broker's --hook-token>".to_owned(), |t| format!("Bearer {t}"));
    format!(
        "Amazon ECR has no webhooks: EventBridge sends its \"ECR Image Action\" events to the\n\
         broker through an API destination. In the registry's account and region:\n\
         \n\
         aws events create-connection --name tagcast \\\n  \
           --authorization-type API_KEY \\\n  \
           --auth-parameters 'ApiKeyAuthParameters={{ApiKeyName=Authorization,ApiKeyValue={key}}}'\n\
         aws events create-api-destination --name tagcast \\\n  \
           --connection-arn <ConnectionArn from above> \\\n  \
           --invocation-endpoint '{url}' --http-method POST\n\
         aws events put-rule --name tagcast-ecr-push --event-pattern \\\n  \
           '{{\"source\":[\"aws.ecr\"],\"detail-type\":[\"ECR Image Action\"],\"detail\":{{\"action-type\":[\"PUSH\"],\"result\":[\"SUCCESS\"],\"repository-name\":[\"{repository}\"]}}}}'\n\
         aws events put-targets --rule tagcast-ecr-push --targets \\\n  \
           'Id=tagcast,Arn=<ApiDestinationArn from above>,RoleArn=<a role allowed events:InvokeApiDestination>'\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kind: &str, image: &str, url: &str, token: Option<&str>) -> HookConfigArgs {
        HookConfigArgs {
            kind: kind.into(),
            image: image.into(),
            hook_url: url.into(),
            hook_token: token.map(str::to_owned),
        }
    }

    #[test]
    fn distribution_yaml_carries_the_url_and_the_token() {
        let out = render(&args(
            "distribution",
            "registry.example.org:5000/team/app",
            "https://b.example.org/hooks/distribution/abc",
            Some("0123456789abcdef0123"),
        ))
        .unwrap();
        assert!(
            out.contains("      url: https://b.example.org/hooks/distribution/abc\n"),
            "{out}"
        );
        assert!(
            out.contains("      headers:\n        Authorization: [\"Bearer 0123456789abcdef0123\"]\n"),
            "{out}"
        );
        let without = render(&args(
            "distribution",
            "registry.example.org:5000/team/app",
            "https://b.example.org/hooks/distribution/abc",
            None,
        ))
        .unwrap();
        assert!(!without.contains("headers"), "{without}");
    }

    #[test]
    fn bad_input_names_the_flag_and_the_rule() {
        let err = |a: HookConfigArgs| render(&a).unwrap_err().to_string();
        assert!(
            err(args("harbor", "h.example.org/p/a", "https://b/hooks/harbor/x", None))
                .contains("creates the hook itself")
        );
        assert!(
            err(args(
                "distribution",
                "r.example.org/a",
                "https://b/hooks/generic/x",
                None
            ))
            .contains("--hook-url")
        );
        assert!(err(args("dockerhub", "ghcr.io/a/b", "https://b/hooks/dockerhub/x", None)).contains("docker.io"));
        assert!(
            err(args(
                "distribution",
                "r.example.org/a",
                "https://b/hooks/distribution/x",
                Some("short")
            ))
            .contains("--hook-token")
        );
    }

    #[test]
    fn dockerhub_and_ecr_steps_name_the_url() {
        let hub = render(&args(
            "dockerhub",
            "docker.io/team/app",
            "https://b/hooks/dockerhub/x",
            None,
        ))
        .unwrap();
        assert!(hub.contains("Webhook URL:  https://b/hooks/dockerhub/x"), "{hub}");
        let ecr = render(&args(
            "ecr",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app",
            "https://b/hooks/ecr/x",
            Some("0123456789abcdef0123"),
        ))
        .unwrap();
        assert!(ecr.contains("\"repository-name\":[\"team/app\"]"), "{ecr}");
        assert!(ecr.contains("ApiKeyValue=Bearer 0123456789abcdef0123"), "{ecr}");
    }
}
