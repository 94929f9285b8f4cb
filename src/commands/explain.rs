//! `tagcast broker explain`: why a push was (not) delivered — the broker's
//! decision for each subscriber of one event of its log, read from the
//! admin route `GET /hooks/events/{id}` (issue 14, item 1).

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;

const EXAMPLES: &str = "Examples:
  # The event ids are in the broker's INFO lines (event=…) and in
  # GET /hooks/events; the token also comes from TAGCAST_ADMIN_TOKEN:
  tagcast broker explain --admin-token \"$TOKEN\" \\
    --event 01a224f8-6d9d-7691-a21d-741f11899645

  # As JSON, from a broker elsewhere:
  tagcast broker explain --url https://registry.example.org \\
    --event 01a224f8-6d9d-7691-a21d-741f11899645 --format json

Exit codes: 0 printed, 1 no such event (or pruned), 2 could not ask.";

/// Print why a push was (not) delivered: what the broker decided for each
/// subscriber of one event of its log.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ExplainArgs {
    /// The event's id in the broker's event log.
    #[arg(long, value_name = "ID")]
    event: String,
    /// The broker's base URL (its --public-url).
    #[arg(
        long,
        env = "TAGCAST_BROKER_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// The broker's admin token.
    #[arg(long, env = "TAGCAST_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Asks the broker and prints the trail.
pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let url = format!(
        "{}/hooks/events/{}",
        args.url.trim_end_matches('/'),
        url::form_urlencoded::byte_serialize(args.event.as_bytes()).collect::<String>()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (status, body) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&args.admin_token)
            .send()
            .await
            .with_context(|| format!("cannot reach the broker at {}", args.url))?;
        let status = response.status();
        let body = response.text().await.context("the broker's answer was cut off")?;
        anyhow::Ok((status, body))
    })?;
    match status.as_u16() {
        200 => {}
        404 => {
            eprintln!(
                "tagcast broker explain: no event {:?} in the broker's log at {} (a wrong id, or pruned: retain-events)",
                args.event, args.url
            );
            return Ok(ExitCode::from(1));
        }
        401 | 403 => bail!("the broker at {} refused the admin token ({status})", args.url),
        _ => bail!("the broker at {} answered {status}: {body}", args.url),
    }
    let event: Value = serde_json::from_str(&body).context("the broker's answer is not JSON")?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&event)?),
        Format::Text => print!("{}", render(&event)),
    }
    Ok(ExitCode::SUCCESS)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("-")
}

/// The event, then one block per subscriber: decision, delivery, reason.
fn render(event: &Value) -> String {
    let mut out = format!(
        "event     {}\npush      {}:{} ({})\nhook      {} from {}\nstatus    {}",
        text(event, "id"),
        text(event, "image"),
        text(event, "tag"),
        text(event, "digest"),
        text(event, "kind"),
        text(event, "registry"),
        text(event, "status"),
    );
    if let Some(reason) = event["reason"].as_str() {
        out.push_str(&format!(" ({reason})"));
    }
    out.push_str(&format!(
        "\nreceived  {}\ndecided   {}\n",
        text(event, "receivedAt"),
        event["matchedAt"].as_str().unwrap_or("not yet"),
    ));
    let decisions = event["decisions"].as_array().map(Vec::as_slice).unwrap_or_default();
    if decisions.is_empty() {
        out.push_str("\nno subscriber decision recorded");
        if event["matchedAt"].is_null() && event["status"] == "accepted" {
            out.push_str(" yet: the event is waiting to be matched\n");
        } else {
            out.push_str(": no subscription covers this image, or the event was ignored or dropped (see status)\n");
        }
        return out;
    }
    for d in decisions {
        out.push_str(&format!("\n{}: {}\n", text(d, "serviceId"), text(d, "decision")));
        if let Some(id) = d["deliveryId"].as_str() {
            out.push_str(&format!(
                "  delivery  {id} (webhook-id), {}\n",
                d["deliveryOutcome"].as_str().unwrap_or("pruned")
            ));
        }
        // One line per line of the reason, indented under its subscriber.
        for line in text(d, "reason").lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}
