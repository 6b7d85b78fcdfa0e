//! The axum router: `/feed` (the WebSocket), `/control/...` (see `control.rs`), then the static
//! directories; every answer may be read by any page (`Access-Control-Allow-Origin: *`) and is
//! never cached.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, RETRY_AFTER, UPGRADE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use resilient_ws_server::ResumeRequest;
use serde_json::json;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::debug;

use super::connection::ConnectionContext;
use super::control::{self, Params};
use super::feed::{self, Accepted, MAX_CLIENT_MESSAGE_BYTES};
use super::shared::ServerShared;
use super::static_dirs::{self, StaticMount};
use super::stats::StatsCounters;
use super::supervisor::AdoptedTask;

pub(crate) const FEED_PATH: &str = "/feed";
pub(crate) const CONTROL_PREFIX: &str = "/control/";

/// The whole HTTP face of the server. `/feed` and `/control/...` always come before the static
/// directories. Handlers expect the [`ConnectionContext`] extension that
/// [`serve_connection`](super::connection::serve_connection) puts on every request.
pub(crate) fn router(shared: Arc<ServerShared>, mounts: &[StaticMount]) -> Router {
    let routes = Router::new()
        .route(FEED_PATH, get(feed).head(get_only))
        .route(
            &format!("{CONTROL_PREFIX}{{*action}}"),
            get(control::control).head(get_only),
        );
    static_dirs::mount(routes, mounts)
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET]),
        )
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(shared)
}

/// `GET /feed[?cursor=N[&epoch=E]]`: the WebSocket handshake, unless the refusal fault answers it with an
/// HTTP status first.
async fn feed(
    State(shared): State<Arc<ServerShared>>,
    Extension(connection): Extension<ConnectionContext>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        // Not a WebSocket request at all.
        Err(
            WebSocketUpgradeRejection::InvalidConnectionHeader(_)
            | WebSocketUpgradeRejection::InvalidUpgradeHeader(_),
        ) => return (StatusCode::UPGRADE_REQUIRED, [(UPGRADE, "websocket")]).into_response(),
        Err(rejection) => return rejection.into_response(),
    };
    let params = Params::new(query);
    let request = match ResumeRequest::from_query(params.query("cursor"), params.query("epoch")) {
        Ok(request) => request,
        Err(error) => return error_answer(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    if let Some(refusal) = shared.take_refusal() {
        StatsCounters::count(&shared.stats.handshakes_refused, 1);
        debug!(status = refusal.status, "handshake refused by fault");
        let status =
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return match refusal.retry_after_secs {
            Some(seconds) => (status, [(RETRY_AFTER, seconds.to_string())]).into_response(),
            None => status.into_response(),
        };
    }
    let accepted = match Accepted::new(&shared, request, connection.muzzle.clone()) {
        Ok(accepted) => accepted,
        Err(error) => return error_answer(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
    };
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let task = feed::serve(socket, accepted, Arc::clone(&shared));
            shared.adopt(connection.generation, AdoptedTask::new(task));
        })
}

/// `HEAD` on the feed or a control endpoint (which act on `GET`, even when only asked for headers).
async fn get_only() -> Response {
    let mut response = error_answer(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(axum::http::header::ALLOW, HeaderValue::from_static("GET"));
    response
}

/// The JSON 404 of every path nothing serves.
pub(crate) async fn not_found() -> Response {
    error_answer(StatusCode::NOT_FOUND, "not found")
}

/// `{"ok":false,"error":message}` with `status`.
pub(crate) fn error_answer(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "ok": false, "error": message }))).into_response()
}
