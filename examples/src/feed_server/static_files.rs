//! Serving files from local directories (the dashboard page and the browser package) under URL
//! prefixes, e.g. `/` → `examples/dashboard` and `/pkg` → `client-wasm/pkg`.
//!
//! Only plain files under a mounted directory are served: every request path is percent-decoded
//! and split into segments, dot segments (`..`, `.`, `.hidden`) are refused, and the resolved
//! file's canonical path (symlinks followed) must still lie under the directory's canonical path.
//! Answers carry `Cache-Control: no-store`, so a rebuilt package is picked up on reload.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::json;
use tracing::debug;

use super::error::FeedServerError;
use super::http::Response;

/// Largest file served; larger ones are answered with 500.
pub(crate) const MAX_STATIC_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Served for a path that names a directory.
const INDEX_FILE: &str = "index.html";

/// One directory served under a URL prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// `/` or `/name(/name)*`, without a trailing slash.
    prefix: String,
    /// Canonical path of the directory.
    root: PathBuf,
}

/// The mounted directories, longest prefix first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StaticFiles {
    mounts: Vec<Mount>,
}

/// A request for a file under one mount, checked for dot segments but not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaticRequest {
    mount: usize,
    /// The decoded path segments below the mount, none empty or starting with a dot.
    segments: Vec<String>,
    /// The request path ended with `/` (or named the mount itself as `/`).
    trailing_slash: bool,
    /// The request path as sent, for redirects.
    path: String,
}

impl StaticFiles {
    /// Checks every directory and remembers its canonical path.
    pub(crate) fn new(dirs: &[(String, PathBuf)]) -> Result<Self, FeedServerError> {
        let mut mounts = Vec::with_capacity(dirs.len());
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
            if mounts.iter().any(|mount: &Mount| mount.prefix == prefix) {
                return Err(invalid(format!("prefix '{prefix}' is mounted twice")));
            }
            mounts.push(Mount { prefix, root });
        }
        mounts.sort_by_key(|mount| std::cmp::Reverse(mount.prefix.len()));
        Ok(Self { mounts })
    }

    /// The mount a request path falls under, with its checked segments. `None` when no mount
    /// matches (404); `Err` when the path is refused (403).
    pub(crate) fn match_path(&self, path: &str) -> Option<Result<StaticRequest, String>> {
        let (mount, rest) = self.mounts.iter().enumerate().find_map(|(index, mount)| {
            below_prefix(path, &mount.prefix).map(|rest| (index, rest))
        })?;
        Some(split_segments(rest).map(|segments| StaticRequest {
            mount,
            segments,
            trailing_slash: path.ends_with('/'),
            path: path.to_owned(),
        }))
    }

    /// Reads the requested file (blocking file-system work runs on tokio's blocking pool) and
    /// builds the answer: 200 with the file, 302 to add a slash to a directory, 403 for a path
    /// that leaves the directory, 404 for a missing file.
    pub(crate) async fn answer(&self, request: StaticRequest) -> Response {
        let Some(mount) = self.mounts.get(request.mount).cloned() else {
            return not_found();
        };
        let read = tokio::task::spawn_blocking(move || {
            resolve_and_read(&mount.root, &request, MAX_STATIC_FILE_BYTES)
        })
        .await;
        match read {
            Ok(Ok(Found::File { path, bytes })) => Response::bytes(200, content_type(&path), bytes)
                .with_header("Cache-Control", "no-store".into())
                .with_header("X-Content-Type-Options", "nosniff".into()),
            Ok(Ok(Found::Directory { location })) => {
                Response::empty(302).with_header("Location", location)
            }
            Ok(Err(Refused::NotFound)) => not_found(),
            Ok(Err(Refused::Outside)) => error_answer(403, "path leaves the static directory"),
            Ok(Err(Refused::TooLarge)) => error_answer(
                500,
                &format!("file larger than {MAX_STATIC_FILE_BYTES} bytes"),
            ),
            Ok(Err(Refused::Io(error))) => {
                debug!(%error, "static file unreadable");
                error_answer(500, "file unreadable")
            }
            Err(_) => error_answer(500, "file read was cancelled"),
        }
    }
}

/// `/` stays `/`; `/pkg/` becomes `/pkg`; anything else must be an absolute path without dot
/// segments or query.
fn normalize_prefix(prefix: &str) -> Result<String, String> {
    if !prefix.starts_with('/') {
        return Err(format!("URL prefix '{prefix}' must start with '/'"));
    }
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.split('/').skip(1).any(|segment| {
        segment.is_empty() || segment.starts_with('.') || segment.contains(['?', '#', '%'])
    }) {
        return Err(format!("URL prefix '{prefix}' is not a plain path"));
    }
    Ok(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// What is left of `path` below `prefix`, if `path` is the prefix itself or below it.
fn below_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix == "/" {
        return path.strip_prefix('/');
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Percent-decodes and splits a path below a mount; refuses dot segments, backslashes, NUL and
/// anything that does not decode to UTF-8.
fn split_segments(rest: &str) -> Result<Vec<String>, String> {
    let mut segments = Vec::new();
    for raw in rest.split('/').filter(|segment| !segment.is_empty()) {
        let segment = percent_decode(raw).ok_or("malformed percent-encoding")?;
        if segment.starts_with('.') {
            return Err("dot segments are refused".into());
        }
        if segment.contains(['/', '\\', '\0']) {
            return Err("encoded separators are refused".into());
        }
        segments.push(segment);
    }
    Ok(segments)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[derive(Debug)]
enum Found {
    File {
        path: PathBuf,
        bytes: Vec<u8>,
    },
    /// A directory asked for without the trailing slash: redirect, so relative links resolve.
    Directory {
        location: String,
    },
}

#[derive(Debug)]
enum Refused {
    NotFound,
    Outside,
    TooLarge,
    Io(io::Error),
}

impl From<io::Error> for Refused {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Self::NotFound,
            _ => Self::Io(error),
        }
    }
}

/// Blocking: resolves the request under `root` (canonical), checks it stays there, and reads it.
fn resolve_and_read(
    root: &Path,
    request: &StaticRequest,
    max_bytes: u64,
) -> Result<Found, Refused> {
    let mut candidate = root.to_path_buf();
    candidate.extend(&request.segments);
    let mut resolved = inside(root, &candidate)?;
    if resolved.is_dir() {
        if !request.trailing_slash {
            return Ok(Found::Directory {
                location: format!("{}/", request.path),
            });
        }
        resolved = inside(root, &resolved.join(INDEX_FILE))?;
    }
    if !resolved.is_file() {
        return Err(Refused::NotFound);
    }
    let file = std::fs::File::open(&resolved)?;
    if file.metadata()?.len() > max_bytes {
        return Err(Refused::TooLarge);
    }
    let mut bytes = Vec::new();
    // Bounded even if the file grows between the check and the read.
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Refused::TooLarge);
    }
    Ok(Found::File {
        path: resolved,
        bytes,
    })
}

/// The canonical form of `path`, if it lies under `root`.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, Refused> {
    let resolved = path.canonicalize()?;
    if resolved.starts_with(root) {
        Ok(resolved)
    } else {
        Err(Refused::Outside)
    }
}

/// The Content-Type for a file name.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if name.ends_with(".d.ts") {
        return "text/plain; charset=utf-8";
    }
    let extension = name.rsplit_once('.').map_or("", |(_, extension)| extension);
    match extension {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" | "md" | "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn not_found() -> Response {
    error_answer(404, "not found")
}

fn error_answer(status: u16, message: &str) -> Response {
    Response::json(status, json!({ "ok": false, "error": message }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(prefixes: &[&str]) -> StaticFiles {
        let root = std::env::temp_dir().canonicalize().expect("temp dir");
        StaticFiles {
            mounts: {
                let mut mounts: Vec<Mount> = prefixes
                    .iter()
                    .map(|prefix| Mount {
                        prefix: normalize_prefix(prefix).expect("valid prefix"),
                        root: root.clone(),
                    })
                    .collect();
                mounts.sort_by_key(|mount| std::cmp::Reverse(mount.prefix.len()));
                mounts
            },
        }
    }

    fn matched(files: &StaticFiles, path: &str) -> Option<(String, Vec<String>, bool)> {
        files.match_path(path).map(|request| {
            let request = request.expect("path accepted");
            (
                files.mounts[request.mount].prefix.clone(),
                request.segments,
                request.trailing_slash,
            )
        })
    }

    #[test]
    fn longest_prefix_wins_and_segments_are_decoded() {
        let files = mounts(&["/", "/pkg/"]);
        assert_eq!(
            matched(&files, "/pkg/resilient-ws.js"),
            Some(("/pkg".into(), vec!["resilient-ws.js".into()], false))
        );
        assert_eq!(
            matched(&files, "/pkgs/a%20b.css"),
            Some(("/".into(), vec!["pkgs".into(), "a b.css".into()], false))
        );
        assert_eq!(matched(&files, "/"), Some(("/".into(), vec![], true)));
        assert_eq!(
            matched(&files, "/pkg"),
            Some(("/pkg".into(), vec![], false))
        );
        assert_eq!(
            matched(&files, "/pkg/"),
            Some(("/pkg".into(), vec![], true))
        );
        assert_eq!(matched(&mounts(&["/pkg"]), "/other.js"), None);
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_refused() {
        let files = mounts(&["/"]);
        for bad in [
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/secret",
            "/.git/config",
            "/a%2fb",
            "/a%5c..%5cb",
            "/a%00b",
            "/%zz",
            "/%ff",
        ] {
            assert!(matches!(files.match_path(bad), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn prefixes_are_checked() {
        assert_eq!(normalize_prefix("/"), Ok("/".into()));
        assert_eq!(normalize_prefix("/pkg/"), Ok("/pkg".into()));
        for bad in ["pkg", "/a//b", "/../x", "/a?b"] {
            assert!(normalize_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_types() {
        for (name, expected) in [
            ("index.html", "text/html; charset=utf-8"),
            ("a.mjs", "text/javascript; charset=utf-8"),
            ("resilient-ws.js", "text/javascript; charset=utf-8"),
            ("resilient_ws_wasm_bg.wasm", "application/wasm"),
            ("resilient-ws.d.ts", "text/plain; charset=utf-8"),
            ("package.json", "application/json"),
            ("logo.SVG", "image/svg+xml"),
            ("shot.png", "image/png"),
            ("style.css", "text/css; charset=utf-8"),
            ("LICENSE", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("feed-static-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("big.bin"), [0_u8; 64]).expect("file written");
        let root = dir.canonicalize().expect("canonical");
        let request = |max| {
            resolve_and_read(
                &root,
                &StaticRequest {
                    mount: 0,
                    segments: vec!["big.bin".into()],
                    trailing_slash: false,
                    path: "/big.bin".into(),
                },
                max,
            )
        };
        assert!(matches!(request(63), Err(Refused::TooLarge)));
        assert!(matches!(request(64), Ok(Found::File { bytes, .. }) if bytes.len() == 64));
        std::fs::remove_dir_all(&dir).expect("temp dir removed");
    }
}
