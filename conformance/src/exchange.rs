//! One HTTP exchange as a report shows it: what was sent and what came back.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use url::Url;

/// An HTTP client for talking to peers: the `--timeout` per request, no
/// redirects followed (a 3xx is an answer to report, not to chase).
pub(crate) fn client(timeout: Duration) -> Client {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tagcast-conformance/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's configuration is valid")
}

/// A request to send, kept so that it can be described in a report.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The request as a report shows it: request line, headers, body excerpt.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!("{} {}", self.method, self.url);
        for (name, value) in &self.headers {
            // Reports are shared; credentials never go into them.
            if name.eq_ignore_ascii_case("authorization") {
                let scheme = value.split_once(' ').map_or("", |(scheme, _)| scheme);
                text.push_str(&format!("\n{name}: {scheme} <redacted>"));
            } else {
                text.push_str(&format!("\n{name}: {value}"));
            }
        }
        if !self.body.is_empty() {
            text.push_str(&format!("\n\n{}", excerpt(&String::from_utf8_lossy(&self.body))));
        }
        text
    }

    /// Sends the request.
    ///
    /// # Errors
    ///
    /// A description of the transport failure (refused, reset, timed out).
    pub(crate) async fn send(&self, client: &Client) -> Result<Response, String> {
        let mut builder = client.request(self.method.clone(), self.url.clone());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        if !self.body.is_empty() {
            builder = builder.body(self.body.clone());
        }
        let start = Instant::now();
        let response = builder.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Ok(Response {
            status,
            headers,
            body,
            elapsed: start.elapsed(),
        })
    }
}

/// What a peer answered.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The answer as a report shows it: status, time, body excerpt.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!("{} after {} ms", self.status, self.elapsed.as_millis());
        if !self.body.is_empty() {
            text.push_str(&format!("\n{}", excerpt(&String::from_utf8_lossy(&self.body))));
        }
        text
    }
}

/// A transport error with its cause chain, which is where reqwest keeps the
/// useful part ("connection refused").
pub(crate) fn transport_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

/// Shortens a peer's answer for a report: reports stay readable when a peer
/// answers with a megabyte of HTML.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 500;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}
