//! Peers for the runner to check: small servers on loopback that keep the
//! contract, or break one rule of it on purpose.
//!
//! They prove that the runner can fail: every check has a test in which the
//! peer that breaks its rule makes it `fail`. They are public so that the
//! end-to-end tests of `tagcast conformance` (and anyone changing a check)
//! can use the same peers; they are not reference implementations.

pub mod broker;
pub mod cd;
pub mod registry;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` on a free loopback port; the server lives as long as the
/// test's runtime.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the peer serves");
    });
    addr
}

/// A loopback address where nothing listens.
pub async fn unreachable() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    drop(listener);
    addr
}
