//! Maps a request head to what the server does with it: `/feed` first, then `/control/...`,
//! then the static directories.

use super::control::ControlRequest;
use super::http::RequestHead;
use super::static_files::{StaticFiles, StaticRequest};

pub(crate) const FEED_PATH: &str = "/feed";
const CONTROL_PREFIX: &str = "/control/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// A WebSocket upgrade to the feed, optionally resuming after `cursor`.
    Feed {
        cursor: Option<u64>,
    },
    Control(ControlRequest),
    /// A file under one of the static directories.
    Static(StaticRequest),
    /// A static path that tries to leave its directory.
    Forbidden(String),
    /// `/feed` asked for without `Upgrade: websocket`.
    UpgradeRequired,
    MethodNotAllowed,
    NotFound,
    BadRequest(String),
}

/// `GET` everywhere; `HEAD` only for static files (the feed and the control endpoints act on `GET`).
pub(crate) fn route(head: &RequestHead, static_files: &StaticFiles) -> Route {
    let is_head = head.method == "HEAD";
    if head.method != "GET" && !is_head {
        return Route::MethodNotAllowed;
    }
    if head.path == FEED_PATH {
        return if is_head {
            Route::MethodNotAllowed
        } else {
            feed_route(head)
        };
    }
    if let Some(action) = head.path.strip_prefix(CONTROL_PREFIX) {
        if is_head {
            return Route::MethodNotAllowed;
        }
        return match ControlRequest::parse(action, head) {
            Ok(Some(request)) => Route::Control(request),
            Ok(None) => Route::NotFound,
            Err(message) => Route::BadRequest(message),
        };
    }
    match static_files.match_path(&head.path) {
        Some(Ok(request)) => Route::Static(request),
        Some(Err(message)) => Route::Forbidden(message),
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
        route_with(head, &StaticFiles::default())
    }

    fn route_with(head: &str, static_files: &StaticFiles) -> Route {
        route(
            &parse_request_head(head.as_bytes()).expect("valid head"),
            static_files,
        )
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

    #[test]
    fn feed_and_control_come_before_a_static_root() {
        let static_files =
            StaticFiles::new(&[("/".to_owned(), std::env::temp_dir())]).expect("temp dir mounts");
        assert_eq!(
            route_with("GET /feed HTTP/1.1\r\n\r\n", &static_files),
            Route::UpgradeRequired
        );
        assert_eq!(
            route_with("GET /control/stats HTTP/1.1\r\n\r\n", &static_files),
            Route::Control(ControlRequest::Stats)
        );
        assert_eq!(
            route_with("GET /control/nope HTTP/1.1\r\n\r\n", &static_files),
            Route::NotFound
        );
        assert!(matches!(
            route_with("GET /index.html HTTP/1.1\r\n\r\n", &static_files),
            Route::Static(_)
        ));
        assert!(matches!(
            route_with("GET /../secret HTTP/1.1\r\n\r\n", &static_files),
            Route::Forbidden(_)
        ));
        assert!(matches!(
            route_with("HEAD /index.html HTTP/1.1\r\n\r\n", &static_files),
            Route::Static(_)
        ));
        for refused in [
            "POST /index.html HTTP/1.1\r\n\r\n",
            "HEAD /feed HTTP/1.1\r\n\r\n",
            "HEAD /control/drop HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                route_with(refused, &static_files),
                Route::MethodNotAllowed,
                "{refused}"
            );
        }
    }
}
