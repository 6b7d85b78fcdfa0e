//! Mounting a hub in axum: the upgrade handler and a ready-made router.

use axum::Router;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::connection;
use crate::error::ResumeQueryError;
use crate::hub::Hub;
use crate::resume::ResumeRequest;

/// The query parameters the handler reads (`?cursor=N&epoch=E`); others are ignored.
#[derive(Clone, Default, Deserialize)]
pub struct ResumeParams {
    /// The last cursor the client has (a decimal `u64`).
    pub cursor: Option<String>,
    /// The epoch of that cursor.
    pub epoch: Option<String>,
}

/// The WebSocket upgrade handler of a hub's feed: mount it with the hub as state (any
/// router state `S` with `Hub: FromRef<S>` works).
///
/// Answers 400 when `cursor` is not a decimal `u64`, 503 once the hub is shut down, and
/// otherwise upgrades and serves the feed as the crate's protocol section describes.
///
/// ```
/// use axum::{Router, routing::get};
/// use resilient_ws_server::{Hub, HubConfig};
///
/// let hub = Hub::new(HubConfig::default());
/// let app: Router = Router::new()
///     .route("/feed", get(resilient_ws_server::axum::handler))
///     .with_state(hub);
/// ```
pub async fn handler(
    State(hub): State<Hub>,
    Query(params): Query<ResumeParams>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let request = match ResumeRequest::from_query(params.cursor.as_deref(), params.epoch.as_deref())
    {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%error, "refused a connection");
            return error.into_response();
        }
    };
    if hub.is_shut_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the feed is shutting down").into_response();
    }
    // Counted from here, so a shutdown that starts during the upgrade waits for it.
    let guard = hub.open_connection();
    let buffer = hub.config().socket_buffer_size;
    upgrade
        .read_buffer_size(buffer)
        .write_buffer_size(buffer)
        .on_upgrade(move |socket| connection::serve(socket, hub, request, guard))
}

impl IntoResponse for ResumeQueryError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.to_string()).into_response()
    }
}

impl Hub {
    /// A router that serves this hub's feed at `path`; merge it into your app.
    ///
    /// ```
    /// # let hub = resilient_ws_server::Hub::new(Default::default());
    /// let app: axum::Router = axum::Router::new().merge(hub.router("/feed"));
    /// ```
    pub fn router<S>(&self, path: &str) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route(path, get(handler))
            .with_state(self.clone())
    }
}
