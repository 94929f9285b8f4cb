//! `--target deployer`: how many valid signed callbacks per second the
//! reference deployer verifies (CB-5, CB-6), deduplicates by `webhook-id`
//! and queues durably in its SQLite state file. The deployer's routes run
//! in this process without its worker, so nothing is applied: the figure is
//! the callback path alone. One in ten requests repeats the previous
//! callback exactly (a broker's retry), which must be answered 200 as a
//! duplicate; the others are new tags, answered 202 (queued).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tagcast_deployer::apply::Applier;
use tagcast_deployer::apply::exec::Exec;
use tagcast_deployer::{AppState, Config};
use tagcast_spec::webhook::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret};
use tagcast_spec::{ApiRequirement, CloudEvent, Digest, ImagePublished, Repository, Stage, Tag, UpdatePolicy};

use super::envelope::{REGISTRY, Tags};
use super::figures::healthz;
use super::load;
use super::target::client;

#[derive(Debug, Serialize)]
pub struct Deployer {
    pub connections: usize,
    pub seconds: f64,
    /// Answered 202: verified and queued.
    pub queued: u64,
    /// Answered 200: verified, a repeated `webhook-id`.
    pub duplicates: u64,
    /// Answered 200: verified, new, but not newer than a tag already queued.
    pub refused_not_newer: u64,
    pub failed: u64,
    pub callbacks_per_second: f64,
    pub healthz_per_second: f64,
    pub ratio_to_ceiling: f64,
}

/// One signed callback, kept to be sent again as a duplicate.
#[derive(Clone)]
struct Signed {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

pub async fn run(connections: usize, duration: Duration, dir: &std::path::Path) -> anyhow::Result<Deployer> {
    let secret = Secret::generate(rand::random());
    let image = Repository::parse(&format!("{REGISTRY}/bench/deploy")).context("the bench image")?;
    let policy = UpdatePolicy {
        stage: Stage::Production,
        requirement: ApiRequirement::parse("^1.1").context("the bench requirement")?,
    };
    let applier = Applier::Exec(Exec {
        command: "true".to_owned(),
        timeout: Duration::from_secs(10),
    });
    let mut config = Config::new(vec![secret.clone()], vec![image.clone()], policy, applier);
    config.state = Some(dir.join("deployer.db"));
    let state = AppState::open(config)
        .await
        .context("cannot open the deployer's state")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, tagcast_deployer::app(state)).await {
            eprintln!("bench: the deployer stopped: {err}");
        }
    });

    let tags = Arc::new(Tags::new());
    let previous: Arc<Vec<Mutex<Option<Signed>>>> = Arc::new((0..connections).map(|_| Mutex::new(None)).collect());
    let counts = Arc::new([const { std::sync::atomic::AtomicU64::new(0) }; 3]);
    let http = client();
    let (target, counted) = (format!("{url}/"), counts.clone());
    let burst = load::closed_loop(connections, duration, move |k, n| {
        let repeat = n % 10 == 9;
        let signed = match previous[k].lock().expect("not poisoned").clone() {
            Some(last) if repeat => last,
            _ => sign(&secret, &image, &tags.next()),
        };
        *previous[k].lock().expect("not poisoned") = Some(signed.clone());
        let (http, target, counted) = (http.clone(), target.clone(), counted.clone());
        async move {
            let answer = http
                .post(&target)
                .header("content-type", tagcast_spec::event::CONTENT_TYPE)
                .header(HEADER_ID, &signed.id)
                .header(HEADER_TIMESTAMP, &signed.timestamp)
                .header(HEADER_SIGNATURE, &signed.signature)
                .body(signed.body)
                .send()
                .await;
            // A repeat must be a 200; a new callback is queued (202) or,
            // when another connection queued a newer tag first, refused as
            // not an update (200): verified either way.
            let slot = match answer.map(|r| r.status().as_u16()) {
                Ok(200) if repeat => 1,
                Ok(202) if !repeat => 0,
                Ok(200) if !repeat => 2,
                _ => return false,
            };
            counted[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            true
        }
    })
    .await;
    let ceiling = healthz(&client(), &[url], connections, duration).await;
    let per_second = burst.per_second();
    Ok(Deployer {
        connections,
        seconds: burst.elapsed.as_secs_f64(),
        queued: counts[0].load(std::sync::atomic::Ordering::Relaxed),
        duplicates: counts[1].load(std::sync::atomic::Ordering::Relaxed),
        refused_not_newer: counts[2].load(std::sync::atomic::Ordering::Relaxed),
        failed: burst.failed,
        callbacks_per_second: per_second,
        healthz_per_second: ceiling,
        ratio_to_ceiling: per_second / ceiling.max(1e-9),
    })
}

/// A callback for `tag` as the broker would send it.
fn sign(secret: &Secret, image: &Repository, tag: &str) -> Signed {
    let id = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let tag = Tag::parse(tag).expect("the bench makes valid tags");
    let half = uuid::Uuid::new_v4().simple().to_string();
    let digest = Digest::parse(&format!("sha256:{half}{half}")).expect("64 hex digits are a valid digest");
    let data = ImagePublished::new("bench-deployer", image.clone(), tag, digest, None);
    let event = CloudEvent::new(
        id.clone(),
        "http://127.0.0.1/ga4gh/registry/v1",
        chrono::Utc::now(),
        data,
    );
    let body = serde_json::to_string(&event).expect("an event serializes");
    let timestamp = chrono::Utc::now().timestamp();
    let signature = webhook::sign(secret, &id, timestamp, body.as_bytes());
    Signed {
        id,
        timestamp: timestamp.to_string(),
        signature,
        body,
    }
}
