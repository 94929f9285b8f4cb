//! The error body every tagcast service returns (`spec/service-api.md`
//! API-13).
//!
//! It is the GA4GH Service Registry `Error` (`status`, `title`, `detail`)
//! plus a stable machine-readable `code` and, where a rule of the contract
//! was broken, its `requirement` ID: so a GA4GH client reads it as a GA4GH
//! error and a tagcast client can branch on `code`.

use std::fmt;

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// "Every 4xx and 5xx answer of a tagcast service has an `application/json`
/// body of this shape, and `status` equals the HTTP status" (API-13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(
    description = "The error body of every tagcast service (spec/service-api.md API-13): the GA4GH Service Registry `Error` (`status`, `title`, `detail`) plus a stable `code` and, where a rule of the contract was broken, its requirement ID.",
    example = serde_json::json!({
        "status": 422,
        "title": "Unprocessable Content",
        "detail": "callbackUrl \"https://10.0.0.7/tagcast\" resolves to a private address",
        "code": "callback_url_refused",
        "requirement": "CB-16"
    })
))]
pub struct ErrorBody {
    /// The HTTP status; "must match the status code in the actual HTTP
    /// response" (GA4GH).
    #[cfg_attr(feature = "schema", schemars(range(min = 400, max = 599)))]
    pub status: u16,
    /// The status's reason phrase, e.g. `Not Found`.
    pub title: String,
    /// What went wrong with this request, for people: names the input and
    /// the rule. Never an internal cause (stack, SQL, file path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable machine-readable error code. The schema admits any
    /// snake_case word, so that a validator accepts codes added later
    /// (API-13: a client treats a code it does not know like the status alone).
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_code"))]
    pub code: ErrorCode,
    /// The requirement ID of `spec/` that the request broke, e.g. `API-6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = "^[A-Z]+-[1-9][0-9]*$")))]
    pub requirement: Option<String>,
}

impl ErrorBody {
    /// The body for `code` with its usual status and title.
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::error_body::{ErrorBody, ErrorCode};
    ///
    /// let body = ErrorBody::new(ErrorCode::NotFound, "no service \"x\"").with_requirement("API-4");
    /// assert_eq!(
    ///     serde_json::to_string(&body).unwrap(),
    ///     r#"{"status":404,"title":"Not Found","detail":"no service \"x\"","code":"not_found","requirement":"API-4"}"#
    /// );
    /// ```
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            title: code.title().to_owned(),
            detail: Some(detail.into()),
            code,
            requirement: None,
        }
    }

    /// The same body naming the requirement ID that was broken.
    pub fn with_requirement(mut self, requirement: impl Into<String>) -> Self {
        self.requirement = Some(requirement.into());
        self
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.status, self.title, self.code.as_str())?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

/// The stable error codes (API-13). Clients MUST treat an unknown code like
/// the generic code of its status class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON, or not of the schema.
    InvalidRequest,
    /// 401: no or a wrong `Authorization: Bearer` admin token.
    Unauthorized,
    /// 401: a signed request (callback, generic hook) failed verification:
    /// missing header, bad signature, or timestamp outside the tolerance.
    InvalidSignature,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: no such service, delivery or hook token.
    NotFound,
    /// 405: the method is not defined for the path.
    MethodNotAllowed,
    /// 409: `POST /services` with an `id` that exists.
    Conflict,
    /// 410: a CD endpoint wants no more callbacks for this subscription
    /// (callbacks.md CB-10).
    Gone,
    /// 413: the body is larger than the service accepts.
    PayloadTooLarge,
    /// 415: the `Content-Type` is not one the path accepts.
    UnsupportedMediaType,
    /// 422: the body is of the schema but breaks a rule it cannot express
    /// (duplicate image, path and body `id` differ, no default requirement).
    InvalidSubscription,
    /// 422: the callback URL resolves to a loopback, private, link-local or
    /// metadata address (CB-16).
    CallbackUrlRefused,
    /// 429: too many requests; `Retry-After` says when to come back.
    TooManyRequests,
    /// 500: an internal failure, logged by the service, not described.
    Internal,
    /// 503: not ready (starting, draining, database unreachable).
    Unavailable,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidSignature,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::Gone,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InvalidSubscription,
        ErrorCode::CallbackUrlRefused,
        ErrorCode::TooManyRequests,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    /// The code as serialized, e.g. `not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Gone => "gone",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidSubscription => "invalid_subscription",
            ErrorCode::CallbackUrlRefused => "callback_url_refused",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized | ErrorCode::InvalidSignature => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::Gone => 410,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::InvalidSubscription | ErrorCode::CallbackUrlRefused => 422,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The status's reason phrase.
    pub fn title(self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            410 => "Gone",
            413 => "Content Too Large",
            415 => "Unsupported Media Type",
            422 => "Unprocessable Content",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            _ => "Service Unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The schema of `code`: open, with the known codes listed.
#[cfg(feature = "schema")]
fn open_code(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let known: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|code| format!("`{}` ({})", code.as_str(), code.status()))
        .collect();
    let examples: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    schemars::json_schema!({
        "type": "string",
        "pattern": "^[a-z][a-z0-9_]*$",
        "description": format!(
            "A stable machine-readable code (spec/service-api.md API-13). Known codes: {}. \
             New codes may be added in a minor version of the contract; a client MUST treat a code it \
             does not know like the HTTP status alone.",
            known.join(", ")
        ),
        "examples": examples
    })
}
