//! The directories served over plain HTTP (the dashboard page and the browser package), each
//! under a URL prefix, by tower-http's `ServeDir`: it percent-decodes the path, refuses any
//! `..` or absolute component (a path cannot leave its directory), serves `index.html` for a
//! directory, answers `HEAD`, and takes the content type from the file name. Every answer carries
//! `Cache-Control: no-store` (set for the whole router), so a rebuilt package is picked up on
//! reload; text types get `; charset=utf-8`. A missing file gets the JSON 404 of the router.

use std::path::PathBuf;

use axum::Router;
use axum::handler::HandlerWithoutStateExt;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Response};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeader;

use super::error::FeedServerError;
use super::router::{CONTROL_PREFIX, FEED_PATH, not_found};

/// One directory to serve under a URL prefix, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaticMount {
    /// `/` or `/name(/name)*`, without a trailing slash.
    prefix: String,
    /// Canonical path of the directory.
    root: PathBuf,
}

/// Checks every directory (it must exist) and prefix (a plain path, not under `/feed` or
/// `/control`, mounted once).
pub(crate) fn check_mounts(
    dirs: &[(String, PathBuf)],
) -> Result<Vec<StaticMount>, FeedServerError> {
    let mut mounts: Vec<StaticMount> = Vec::with_capacity(dirs.len());
    for (prefix, dir) in dirs {
        let invalid = |reason: String| FeedServerError::StaticDir {
            dir: dir.clone(),
            reason,
        };
        let prefix = normalize_prefix(prefix).map_err(invalid)?;
        let root = dir
            .canonicalize()
            .map_err(|error| invalid(error.to_string()))?;
        if !root.is_dir() {
            return Err(invalid("not a directory".into()));
        }
        if mounts.iter().any(|mount| mount.prefix == prefix) {
            return Err(invalid(format!("prefix '{prefix}' is mounted twice")));
        }
        mounts.push(StaticMount { prefix, root });
    }
    Ok(mounts)
}

/// Adds the mounts to `router`: the one at `/` answers every path no route or other mount
/// takes; without one, such paths get the JSON 404.
pub(crate) fn mount<S: Clone + Send + Sync + 'static>(
    mut router: Router<S>,
    mounts: &[StaticMount],
) -> Router<S> {
    let mut has_root = false;
    for mount in mounts {
        let mut serve_dir = ServeDir::new(&mount.root);
        if mount.prefix != "/" {
            // The nested service sees paths without the prefix; its redirects must add it back.
            serve_dir = serve_dir.redirect_path_prefix(mount.prefix.clone());
        }
        let service = SetResponseHeader::overriding(
            serve_dir.not_found_service(not_found.into_service()),
            CONTENT_TYPE,
            text_in_utf8,
        );
        if mount.prefix == "/" {
            has_root = true;
            router = router.fallback_service(service);
        } else {
            router = router.nest_service(&mount.prefix, service);
        }
    }
    if has_root {
        router
    } else {
        router.fallback(not_found)
    }
}

/// `text/...` without parameters becomes `text/...; charset=utf-8`: every text file here is
/// UTF-8, and a browser must not guess.
fn text_in_utf8<B>(response: &Response<B>) -> Option<HeaderValue> {
    let content_type = response.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    if content_type.starts_with("text/") && !content_type.contains(';') {
        HeaderValue::from_str(&format!("{content_type}; charset=utf-8")).ok()
    } else {
        None
    }
}

/// `/` stays `/`; `/pkg/` becomes `/pkg`; anything else must be an absolute path of plain
/// segments (letters, digits, `-`, `_`, `.`, `~`, not starting with a dot), outside the
/// server's own paths.
fn normalize_prefix(prefix: &str) -> Result<String, String> {
    if !prefix.starts_with('/') {
        return Err(format!("URL prefix '{prefix}' must start with '/'"));
    }
    let trimmed = prefix.trim_end_matches('/');
    let plain_segment = |segment: &str| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte))
    };
    if !trimmed.split('/').skip(1).all(plain_segment) {
        return Err(format!("URL prefix '{prefix}' is not a plain path"));
    }
    let control = CONTROL_PREFIX.trim_end_matches('/');
    for reserved in [FEED_PATH, control] {
        if trimmed == reserved || trimmed.starts_with(&format!("{reserved}/")) {
            return Err(format!("URL prefix '{prefix}' is the server's own path"));
        }
    }
    Ok(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert_eq!(normalize_prefix("/"), Ok("/".into()));
        assert_eq!(normalize_prefix("/pkg/"), Ok("/pkg".into()));
        assert_eq!(normalize_prefix("/a/b-c_d.e"), Ok("/a/b-c_d.e".into()));
        for bad in [
            "pkg",
            "/a//b",
            "/../x",
            "/a?b",
            "/{x}",
            "/*x",
            "/feed",
            "/control",
            "/control/x",
        ] {
            assert!(normalize_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_bare_text_types_get_a_charset() {
        let with = |content_type: &str| {
            let response = Response::builder()
                .header(CONTENT_TYPE, content_type)
                .body(())
                .expect("response");
            text_in_utf8(&response)
        };
        assert_eq!(
            with("text/html"),
            Some(HeaderValue::from_static("text/html; charset=utf-8"))
        );
        assert_eq!(with("text/css; charset=utf-8"), None);
        assert_eq!(with("application/wasm"), None);
        assert_eq!(with("application/json"), None);
    }

    #[tokio::test]
    async fn the_longest_prefix_wins() {
        use axum::body::Body;
        use axum::http::Request;
        use tower::ServiceExt;

        let base = std::env::temp_dir().join(format!("feed-mounts-{}", std::process::id()));
        for (dir, contents) in [("root", "root"), ("pkg", "pkg"), ("deep", "deep")] {
            std::fs::create_dir_all(base.join(dir)).expect("dir");
            std::fs::write(base.join(dir).join("who.txt"), contents).expect("file");
        }
        let mounts = check_mounts(&[
            ("/".into(), base.join("root")),
            ("/pkg".into(), base.join("pkg")),
            ("/pkg/deep".into(), base.join("deep")),
        ])
        .expect("valid mounts");
        let router: Router = mount(Router::new(), &mounts);
        for (path, expected) in [
            ("/who.txt", "root"),
            ("/pkg/who.txt", "pkg"),
            ("/pkg/deep/who.txt", "deep"),
            ("/pkgs/who.txt", ""),
        ] {
            let request = Request::get(path).body(Body::empty()).expect("request");
            let response = router.clone().oneshot(request).await.expect("infallible");
            let found = response.status().is_success();
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .expect("body");
            if expected.is_empty() {
                assert!(!found, "{path}");
            } else {
                assert_eq!(&body[..], expected.as_bytes(), "{path}");
            }
        }
        std::fs::remove_dir_all(&base).expect("cleaned up");
    }

    #[test]
    fn twice_the_same_prefix_or_a_missing_dir_is_refused() {
        let dir = std::env::temp_dir();
        assert!(check_mounts(&[("/".into(), dir.clone()), ("/pkg/".into(), dir.clone())]).is_ok());
        assert!(check_mounts(&[("/a".into(), dir.clone()), ("/a/".into(), dir.clone())]).is_err());
        assert!(check_mounts(&[("/".into(), dir.join("surely-missing-feed-dir"))]).is_err());
    }
}
