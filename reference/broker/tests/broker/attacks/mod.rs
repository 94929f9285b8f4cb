//! The broker's rows of the attack catalogue (issue 11, `SECURITY.md`): one
//! test per attack, each asserting the answer and that nothing changed (no
//! event stored, no delivery made).

mod callbacks;
mod hooks;
mod inputs;
mod reads;
mod registry;
mod slow;

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::broker::Broker;
use crate::support::receiver::Receiver;

pub const REPO: &str = "registry.example.org:5000/team/app";

/// A subscription and its hook URL.
pub async fn hook_url(broker: &Broker, receiver: &Receiver) -> String {
    let created = broker.subscribe("svc", &[REPO], "production", &receiver.url).await;
    created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned()
}

/// Nothing reached the store from a hook.
pub async fn assert_no_event(broker: &Broker) {
    let stored = broker.state.store.inbound_events(10).await.unwrap();
    assert!(stored.is_empty(), "no event may be stored: {stored:?}");
}

/// Reads what the server sends until it closes the connection; panics if
/// it is still open after `guard` (the guard only keeps a broken build from
/// hanging the suite: it is not a measure of speed).
pub async fn read_until_closed(stream: &mut TcpStream, guard: Duration) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(guard, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the broker kept the connection open; it sent {:?}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends a request on a raw socket and reads one answer's head and body
/// (the server closes or the answer is complete).
pub async fn raw_request(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|length| body.len() >= length) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
