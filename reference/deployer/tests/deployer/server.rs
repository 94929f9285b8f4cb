//! Slow and numerous clients against the real server loop on a loopback
//! socket (issue 11, finding 2; attack catalogue: slow clients). Short
//! configured timeouts; the assertions are on what the client sees (an
//! answer, a closed connection) and on nothing having changed, never on
//! how long it took. The generous outer `timeout`s only keep a broken
//! build from hanging the suite.

use std::net::SocketAddr;

use tagcast_deployer::{Limits, serve_until};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::*;

const GUARD: Duration = Duration::from_secs(20);

struct Running {
    address: SocketAddr,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(
            vec![secret()],
            vec![Repository::parse(IMAGE).unwrap()],
            policy(),
            recording_exec(&dir.path().join("runs")),
        );
        config.limits = limits;
        config.state = Some(dir.path().join("state.db"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve_until(listener, config, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            address,
            dir,
            stop: Some(stop),
            task,
        }
    }

    /// Stops the server, then checks that nothing was queued, applied or
    /// recorded.
    async fn stop_unchanged(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(GUARD, self.task).await.unwrap().unwrap();
        assert!(runs(&self.dir.path().join("runs")).is_empty(), "the hook never ran");
        let store = tagcast_deployer::Store::open(&self.dir.path().join("state.db"))
            .await
            .unwrap();
        let status = store.status(100).await.unwrap();
        assert!(status.history.is_empty() && status.pending == 0 && status.applied.is_empty());
        store.close().await;
    }
}

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(30),
        max_connections: 16,
    }
}

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(GUARD, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn dribbled_headers_are_closed_after_the_header_read_timeout() {
    let server = Running::start(limits()).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    // Half a request, then silence (slowloris).
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: deployer\r\nContent-Type: appl")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(!answer.starts_with("HTTP/1.1 2"), "no request was served: {answer}");
    server.stop_unchanged().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_read_timeout() {
    let server = Running::start(limits()).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(answer, "", "closed without an answer");
    server.stop_unchanged().await;
}

#[tokio::test]
async fn dribbled_body_is_408_and_closed() {
    let server = Running::start(limits()).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let body = event("evt_1", IMAGE, V1, None);
    let signature = sign(&secret(), "evt_1", now(), &body);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: deployer\r\nContent-Type: {CONTENT_TYPE}\r\nwebhook-id: evt_1\r\n\
         webhook-timestamp: {}\r\nwebhook-signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        now(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // A tenth of the body, then silence.
    stream.write_all(&body[..body.len() / 10]).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.contains("\"code\":\"invalid_request\""), "{answer}");
    server.stop_unchanged().await;
}

/// A `GET /healthz` on a fresh connection; the status line.
async fn healthz(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: deployer\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn connections_beyond_the_cap_are_503_and_closed() {
    let server = Running::start(Limits {
        // Idle connections stay open for the test's whole length.
        header_read_timeout: Duration::from_secs(60),
        max_connections: 2,
        ..limits()
    })
    .await;
    let first = TcpStream::connect(server.address).await.unwrap();
    let _second = TcpStream::connect(server.address).await.unwrap();
    // Accepted in order: the third is over the cap.
    let mut third = TcpStream::connect(server.address).await.unwrap();
    let answer = read_to_close(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{answer}");
    assert!(
        answer.contains("connection: close") && answer.contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("\"code\":\"unavailable\""), "{answer}");

    // One closes: a new connection is served again (once the server has
    // seen the close).
    drop(first);
    let mut served = false;
    for _ in 0..200 {
        if healthz(server.address).await == "HTTP/1.1 200 OK" {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(served, "a freed slot is used again");
    server.stop_unchanged().await;
}

#[tokio::test]
async fn a_prompt_client_is_served_under_the_limits() {
    let server = Running::start(limits()).await;
    assert_eq!(healthz(server.address).await, "HTTP/1.1 200 OK");
    server.stop_unchanged().await;
}
