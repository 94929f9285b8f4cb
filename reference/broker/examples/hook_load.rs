//! A load tool for the inbound hook path: registers a subscription on a
//! running broker, posts Distribution envelopes (blob push + tagged
//! manifest push, each tag new) from several concurrent clients, and prints
//! the latency percentiles of the acknowledgements.
//!
//! ```sh
//! tagcast broker --database-url sqlite://load.db --admin-token "$T" --allow-private-callbacks \
//!   --hook-rate-limit 0 --client-rate-limit 0 &
//! cargo run --release -p tagcast-broker --example hook_load -- http://127.0.0.1:8080 "$T" 2000 8
//! ```
//!
//! Arguments: broker URL, admin token, requests (default 2000), concurrency
//! (default 8). Callbacks go to a local sink that answers 204.
//!
//! With a database URL in place of the broker URL (`sqlite://load.db`,
//! `postgres://…`), the broker runs in this process on a loopback port (the
//! admin token argument is then ignored), and the tool also prints how long
//! the backlog took to deliver after the load stopped and the same server's
//! `GET /healthz` rate at the same concurrency, the ceiling ingest is
//! compared with:
//!
//! ```sh
//! cargo run --release -p tagcast-broker --example hook_load -- sqlite:///tmp/load.db - 20000 8
//! ```

use std::time::{Duration, Instant};

use serde_json::json;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let token = args
        .get(2)
        .cloned()
        .expect("usage: hook_load URL|DATABASE_URL ADMIN_TOKEN [REQUESTS] [CONCURRENCY]");
    let (broker, token, state) = if target.starts_with("http") {
        (target, token, None)
    } else {
        let (url, state) = in_process(&target).await;
        (url, "load-admin-token-0123456789".to_owned(), Some(state))
    };
    let requests: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let concurrency: usize = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(8);

    // A callback sink.
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_url = format!("http://{}/", sink.local_addr().unwrap());
    let callbacks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = callbacks.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }),
        );
        axum::serve(sink, app).await.unwrap();
    });

    let client = reqwest::Client::new();
    let id = format!("load-{}", uuid::Uuid::new_v4().simple());
    let created: serde_json::Value = client
        .post(format!("{broker}/ga4gh/registry/v1/services"))
        .bearer_auth(&token)
        .json(&json!({
            "id": id,
            "name": "load",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "organization": {"name": "load", "url": "https://example.org"},
            "version": "1",
            "url": "https://wes.example.org",
            "subscription": {
                "images": ["registry.example.org:5000/load/app"],
                "stage": "production",
                "callbackUrl": sink_url,
                "registry": {"kind": "distribution"}
            }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook = created["subscription"]["hooks"][0]["url"]
        .as_str()
        .expect("a hook URL")
        .to_owned();

    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let hook = hook.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (worker..requests).step_by(concurrency) {
                let seconds = u32::try_from(i).unwrap();
                let tag = format!(
                    "1.1.0-production-2011{:02}-{:02}{:02}{:02}",
                    1 + seconds / 86_400 % 28,
                    seconds / 3600 % 24,
                    seconds / 60 % 60,
                    seconds % 60
                );
                let digest = format!("sha256:{:064x}", i + 1);
                let body = json!({"events": [
                    {"id": format!("b-{i}"), "action": "push", "target": {"mediaType": "application/octet-stream", "digest": digest, "repository": "load/app"}},
                    {"id": format!("m-{i}"), "action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "repository": "load/app", "tag": tag}}
                ]})
                .to_string();
                let sent = Instant::now();
                let r = client
                    .post(&hook)
                    .header("content-type", "application/vnd.docker.distribution.events.v1+json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let total = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{} hooks, concurrency {concurrency}, {:.0}/s: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        all.len(),
        all.len() as f64 / total.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        all[all.len() - 1]
    );
    let Some(state) = state else { return };
    let delivered_during = callbacks.load(std::sync::atomic::Ordering::Relaxed);
    let ingest = all.len() as f64 / total.as_secs_f64();
    let drain = Instant::now();
    while state.store.queue_depth().await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "callbacks during the load: {delivered_during}; backlog delivered {:?} after the load stopped ({} callbacks in all)",
        drain.elapsed(),
        callbacks.load(std::sync::atomic::Ordering::Relaxed)
    );
    let health = format!("{broker}/healthz");
    let per_worker = (requests * 4).div_ceil(concurrency);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, health) = (client.clone(), health.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_worker {
                let r = client.get(&health).send().await.unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let ceiling = (per_worker * concurrency) as f64 / start.elapsed().as_secs_f64();
    println!(
        "GET /healthz at concurrency {concurrency}: {ceiling:.0}/s; ingest is {:.1} % of it",
        100.0 * ingest / ceiling
    );
}

/// Starts a broker on `database_url` in this process, on a loopback port.
async fn in_process(database_url: &str) -> (String, tagcast_broker::AppState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = tagcast_broker::Config::from_settings(tagcast_broker::Settings {
        database_url: Some(database_url.to_owned()),
        allow_private_callbacks: Some(true),
        verify_digests: Some(false),
        // All load comes from one address and one hook token.
        hook_rate_limit: Some("0".into()),
        client_rate_limit: Some("0".into()),
        ..tagcast_broker::Settings::default()
    })
    .expect("valid settings");
    config.admin_token = Some("load-admin-token-0123456789".into());
    config.listen = addr;
    config.public_url = format!("http://{addr}");
    let store = tagcast_broker::store::open(database_url, &tagcast_broker::keys::Keys::ephemeral())
        .await
        .expect("the database opens");
    let started = tagcast_broker::start(store, config).await.expect("the broker starts");
    let state = started.state.clone();
    tokio::spawn(tagcast_broker::run(listener, started.state, std::future::pending()));
    (format!("http://{addr}"), state)
}
