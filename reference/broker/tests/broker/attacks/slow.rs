//! Slow and many clients (finding 2): headers and bodies dribbled over a
//! real socket are cut off by the configured timeouts, and connections
//! beyond the cap are refused — the broker stays answerable.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::{assert_no_event, hook_url, raw_request, read_until_closed};
use crate::support::broker::Broker;
use crate::support::distribution::{MEDIA_TYPE_V1, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::sqlite;

const GUARD: Duration = Duration::from_secs(20);

fn addr(broker: &Broker) -> String {
    broker.url.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn headers_never_finished_are_cut_off() {
    let broker = Broker::start(sqlite().await, |c| c.header_read_timeout = Duration::from_millis(300)).await;
    let receiver = Receiver::start(&[]).await;
    let url = hook_url(&broker, &receiver).await;
    let path = url.trim_start_matches(&broker.url).to_owned();
    let mut stream = TcpStream::connect(addr(&broker)).await.unwrap();
    stream
        .write_all(format!("POST {path} HTTP/1.1\r\nHost: broker\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, GUARD).await;
    assert!(!answer.contains(" 202 "), "{answer}");
    assert_no_event(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn headers_dribbled_byte_by_byte_are_cut_off() {
    let broker = Broker::start(sqlite().await, |c| c.header_read_timeout = Duration::from_millis(500)).await;
    let stream = TcpStream::connect(addr(&broker)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // One header byte every 50 ms: each read makes progress, none finishes.
    let dribble = tokio::spawn(async move {
        write.write_all(b"GET /healthz HTTP/1.1\r\nHost: b\r\n").await.ok();
        for _ in 0..400 {
            if write.write_all(b"X").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(GUARD, tokio::io::AsyncReadExt::read_to_end(&mut read, &mut buf)).await;
    assert!(closed.is_ok(), "the broker kept reading dribbled headers");
    assert!(!String::from_utf8_lossy(&buf).contains(" 200 "));
    dribble.abort();
    broker.stop().await;
}

#[tokio::test]
async fn a_dribbled_body_gets_408_and_nothing_is_stored() {
    let broker = Broker::start(sqlite().await, |c| c.body_read_timeout = Duration::from_millis(300)).await;
    let receiver = Receiver::start(&[]).await;
    let url = hook_url(&broker, &receiver).await;
    let path = url.trim_start_matches(&broker.url).to_owned();
    let body = envelope(vec![manifest_push(
        "ev-slow",
        "team/app",
        Some("1.1.0-production-201108-195630"),
        1,
    )]);
    let mut stream = TcpStream::connect(addr(&broker)).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: broker\r\nContent-Type: {MEDIA_TYPE_V1}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // All but the last byte: the body never completes.
    stream.write_all(&body.as_bytes()[..body.len() - 1]).await.unwrap();
    let answer = read_until_closed(&mut stream, GUARD).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.contains(r#""status":408"#) && answer.contains("body read timeout"),
        "{answer}"
    );
    assert_no_event(&broker).await;
    assert!(receiver.received().is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_until_one_closes() {
    let broker = Broker::start(sqlite().await, |c| c.max_connections = 2).await;
    let health = "GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n";
    // Two kept-alive connections, each known to be accepted: they answered.
    let mut first = TcpStream::connect(addr(&broker)).await.unwrap();
    let mut second = TcpStream::connect(addr(&broker)).await.unwrap();
    assert!(raw_request(&mut first, health).await.starts_with("HTTP/1.1 200 "));
    assert!(raw_request(&mut second, health).await.starts_with("HTTP/1.1 200 "));
    // The third is told why and closed.
    let mut third = TcpStream::connect(addr(&broker)).await.unwrap();
    third.write_all(health.as_bytes()).await.ok();
    let refused = read_until_closed(&mut third, GUARD).await;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused:?}");
    assert!(refused.contains("connection cap"), "{refused}");
    // The kept-alive ones still work.
    assert!(raw_request(&mut first, health).await.starts_with("HTTP/1.1 200 "));
    // Closing one frees its slot (the server notices the close asynchronously).
    drop(first);
    let mut served = false;
    for _ in 0..200 {
        let mut next = TcpStream::connect(addr(&broker)).await.unwrap();
        if raw_request(&mut next, health).await.starts_with("HTTP/1.1 200 ") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(served, "a freed slot is served again");
    drop(second);
    broker.stop().await;
}
