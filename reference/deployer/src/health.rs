//! `GET /healthz`: 200 while the state store answers.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tagcast_spec::error_body::ErrorCode;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(get_health))
}

async fn get_health(State(state): State<AppState>) -> Response {
    match state.store.hold().await {
        Ok(hold) => (StatusCode::OK, axum::Json(json!({ "status": "ok", "held": hold.held }))).into_response(),
        Err(err) => {
            tracing::error!("health: {err}");
            ApiError::new(ErrorCode::Unavailable, "state store unavailable").into_response()
        }
    }
}
