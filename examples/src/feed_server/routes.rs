//! Maps a request head to what the server does with it. New routes (e.g. the static dashboard
//! at `/`) go here.

use super::control::ControlRequest;
use super::http::RequestHead;

pub(crate) const FEED_PATH: &str = "/feed";
const CONTROL_PREFIX: &str = "/control/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// A WebSocket upgrade to the feed, optionally resuming after `cursor`.
    Feed {
        cursor: Option<u64>,
    },
    Control(ControlRequest),
    /// `/feed` asked for without `Upgrade: websocket`.
    UpgradeRequired,
    MethodNotAllowed,
    NotFound,
    BadRequest(String),
}

pub(crate) fn route(head: &RequestHead) -> Route {
    if head.method != "GET" {
        return Route::MethodNotAllowed;
    }
    if head.path == FEED_PATH {
        return feed_route(head);
    }
    match head.path.strip_prefix(CONTROL_PREFIX) {
        Some(action) => match ControlRequest::parse(action, head) {
            Ok(Some(request)) => Route::Control(request),
            Ok(None) => Route::NotFound,
            Err(message) => Route::BadRequest(message),
        },
        None => Route::NotFound,
    }
}

fn feed_route(head: &RequestHead) -> Route {
    let wants_websocket = head.header("Upgrade").is_some_and(|value| {
        value
            .split(',')
            .any(|protocol| protocol.trim().eq_ignore_ascii_case("websocket"))
    });
    if !wants_websocket {
        return Route::UpgradeRequired;
    }
    match head.parse_query("cursor") {
        Ok(cursor) => Route::Feed { cursor },
        Err(message) => Route::BadRequest(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed_server::http::parse_request_head;

    fn route_of(head: &str) -> Route {
        route(&parse_request_head(head.as_bytes()).expect("valid head"))
    }

    #[test]
    fn routes_feed_control_and_unknown_paths() {
        assert_eq!(
            route_of("GET /feed?cursor=5 HTTP/1.1\r\nUpgrade: WebSocket\r\n\r\n"),
            Route::Feed { cursor: Some(5) }
        );
        assert_eq!(
            route_of("GET /feed HTTP/1.1\r\n\r\n"),
            Route::UpgradeRequired
        );
        assert!(matches!(
            route_of("GET /feed?cursor=x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
            Route::BadRequest(_)
        ));
        assert_eq!(
            route_of("GET /control/stats HTTP/1.1\r\n\r\n"),
            Route::Control(ControlRequest::Stats)
        );
        assert_eq!(route_of("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route_of("GET /control/nope HTTP/1.1\r\n\r\n"),
            Route::NotFound
        );
        assert_eq!(
            route_of("POST /feed HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
    }
}
