//! Static files: a `--web-dir` of the user's pages, when given, then our own pages and scripts
//! built into the binary (`embedded`), then the third-party files (`vendor/` of the assets
//! directory, which `locate` finds) and the rest of that directory, the files on disk served
//! by tower-http's `ServeDir` (MIME types, `ETag`, `Last-Modified`, 304s, `HEAD`), plus what
//! it lacks: CORS on the SWFs, a 404 that says how to fetch missing vendor files, and a JSON
//! listing with sizes and sha256 sums.
//!
//! Only what is plainly inside the served directories is served: names starting with `.` and
//! symbolic links that lead out of their directory are answered 404 unless [`Exposure`] allows
//! them, and a path the filesystem cannot even look up (a name too long, a file where a
//! directory should be, a loop of links) is a 404 too, never a server error.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, ORIGIN, VARY};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower_http::services::ServeDir;

mod confined;
mod embedded;
mod listing;
pub mod locate;

use crate::body::{Body, json, text};
use crate::origin::AllowList;
use confined::{Confined, is_absent};
use embedded::Embedded;
use listing::{Digested, list};

/// The third-party files, by URL path (which is also their path under `assets/vendor/`).
pub const VENDOR_FILES: [&str; 10] = [
    "swfobject.js",
    "web_socket.js",
    "web_socket.min.js",
    "WebSocketMain.swf",
    "hixie76/swfobject.js",
    "hixie76/web_socket.js",
    "hixie76/WebSocketMain.swf",
    "hixie76/WebSocketMainInsecure.swf",
    "ruffle/ruffle.js",
    // sockjs-client, for SockJS pages and the iframe page of SockJS's iframe transports.
    "sockjs/sockjs.min.js",
];

/// What to tell a user whose vendor files are missing.
pub const FETCH_HINT: &str = "the third-party files (web-socket-js, Ruffle, sockjs-client) are \
     not installed: run scripts/fetch-vendor (it fetches the pinned, checksummed files into assets/vendor/)";

/// What the static files may include beyond plain files inside their directories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Serve files and directories whose name starts with `.` (`--serve-hidden`).
    pub hidden: bool,
    /// Follow symbolic links that lead out of the directory they are in (`--follow-symlinks`);
    /// links that stay inside are always followed.
    pub follow_symlinks: bool,
}

/// One served directory.
type Dir<F> = ServeDir<F, Confined>;

/// Our files, then `vendor/`, then the rest of the assets directory, then [`NotFound`].
type Ours = Embedded<Dir<Dir<NotFound>>>;

/// Where a request is looked up first.
#[derive(Clone)]
enum Top {
    /// The user's `--web-dir`, then ours.
    Pages(Dir<Ours>),
    /// Ours.
    Ours(Ours),
}

/// The static file service.
#[derive(Clone)]
pub struct Files {
    serve: Top,
    /// `--web-dir`, for the start-up messages.
    web_dir: Option<PathBuf>,
    /// The assets directory, or where it was looked for in vain.
    assets_dir: Result<PathBuf, String>,
    /// What may be served.
    exposure: Exposure,
    /// sha256 sums already computed, by path, valid while size and modification time match
    /// (Ruffle's wasm files are megabytes: hashed once, not per request).
    digests: Arc<Mutex<HashMap<PathBuf, Digested>>>,
}

impl Files {
    /// Serves `web_dir` (when given) and our pages, and the assets directory (`assets_dir`,
    /// or the one [`locate`] finds) with its `vendor/`.
    pub fn new(web_dir: Option<&Path>, assets_dir: Option<&Path>, exposure: Exposure) -> Files {
        let dir =
            |path: PathBuf| ServeDir::with_backend(path.clone(), Confined::new(path, exposure));
        let assets = locate::assets_dir(assets_dir);
        let not_found = NotFound {
            assets: Arc::new(assets.clone().ok()),
        };
        // Nothing found: directories that do not exist, so that every file is a 404.
        let root = assets
            .clone()
            .unwrap_or_else(|_| PathBuf::from("/nonexistent/flashgate"));
        let own = dir(root.clone()).fallback(not_found);
        // The third-party files, compressed where fetch-vendor made a copy and the client
        // takes it (`Vary: Accept-Encoding` either way).
        let vendor = dir(root.join("vendor"))
            .precompressed_br()
            .precompressed_gzip();
        let ours = Embedded::new(vendor.fallback(own));
        let serve = match web_dir {
            Some(web) => Top::Pages(dir(web.to_path_buf()).fallback(ours)),
            None => Top::Ours(ours),
        };
        Files {
            serve,
            web_dir: web_dir.map(Path::to_path_buf),
            assets_dir: assets,
            exposure,
            digests: Default::default(),
        }
    }

    /// What keeps the pages or the third-party files from being served, each saying how to
    /// fix it; empty when all is in place.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(web) = self.web_dir.as_ref().filter(|web| !web.is_dir()) {
            problems.push(no_dir("pages", "--web-dir", web));
        }
        match &self.assets_dir {
            Err(looked) => problems.push(looked.clone()),
            Ok(dir) if !dir.is_dir() => problems.push(no_dir("assets", "--assets-dir", dir)),
            Ok(dir) => {
                let missing = self.missing_vendor();
                if !missing.is_empty() {
                    problems.push(format!(
                        "missing in {}: {}; {FETCH_HINT}",
                        absolute(&dir.join("vendor")).display(),
                        missing.join(", ")
                    ));
                }
            }
        }
        problems
    }

    /// Vendor files that are not there.
    pub fn missing_vendor(&self) -> Vec<&'static str> {
        let vendor = self.assets_dir.as_ref().map(|dir| dir.join("vendor"));
        VENDOR_FILES
            .into_iter()
            .filter(|f| !vendor.as_ref().is_ok_and(|vendor| vendor.join(f).is_file()))
            .collect()
    }

    /// Answers a GET or HEAD for a file.
    pub async fn serve<B>(&self, req: Request<B>, allow: &AllowList) -> Response<Body>
    where
        B: http_body::Body + Send + 'static,
    {
        if let Err(reason) = check_path(req.uri().path()) {
            return text(StatusCode::BAD_REQUEST, reason);
        }
        if !self.exposure.hidden && is_hidden(req.uri().path()) {
            return text(StatusCode::NOT_FOUND, "not found");
        }
        let varies = has_cors(req.uri().path());
        let cors = cors_origin(&req, allow);
        let res = match self.serve.clone() {
            Top::Pages(mut pages) => pages
                .try_call(req)
                .await
                .map(|res| res.map(|body| body.map_err(std::io::Error::other).boxed_unsync())),
            Top::Ours(mut ours) => Ok(tower::Service::call(&mut ours, req)
                .await
                .unwrap_or_else(|never| match never {})),
        };
        let res = match res {
            Ok(res) => res,
            // What a path alone can cause never gets here (see `Confined`): this is the
            // machine's trouble (I/O, descriptors), not the client's.
            Err(error) if is_absent(&error) => return text(StatusCode::NOT_FOUND, "not found"),
            Err(error) => {
                tracing::warn!(%error, "could not read a static file");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "could not read the file");
            }
        };
        let (mut parts, body) = res.into_parts();
        parts
            .headers
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if varies {
            // Also without a CORS header: a cache must not replay that answer to an allowed page.
            // One `Vary`, after the `Accept-Encoding` of a compressed file's.
            let vary = match parts.headers.get(VARY).and_then(|v| v.to_str().ok()) {
                Some(other) => HeaderValue::from_str(&format!("{other}, Origin")).ok(),
                None => Some(HeaderValue::from_static("Origin")),
            };
            if let Some(vary) = vary {
                parts.headers.insert(VARY, vary);
            }
        }
        if let Some(origin) = cors {
            parts.headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        Response::from_parts(parts, body)
    }

    /// `/assets.json`: every file under `assets/` with its URL, size and sha256.
    pub async fn listing(&self) -> Response<Body> {
        let Ok(dir) = self.assets_dir.clone() else {
            let missing = self.missing_vendor();
            return json(&serde_json::json!({ "assets": [], "missing": missing }));
        };
        let digests = self.digests.clone();
        let missing = self.missing_vendor();
        let exposure = self.exposure;
        match tokio::task::spawn_blocking(move || list(&dir, exposure, &digests)).await {
            Ok(Ok(files)) => json(&serde_json::json!({ "assets": files, "missing": missing })),
            _ => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not list the assets",
            ),
        }
    }
}

/// Refuses paths that try to leave the served directories. `ServeDir` already refuses them;
/// this answers with a clear 400 instead of a 404.
fn check_path(path: &str) -> Result<(), &'static str> {
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    if decoded.contains(&0) {
        return Err("bad path: NUL byte");
    }
    if decoded.contains(&b'\\') {
        return Err("bad path: backslash");
    }
    if decoded.split(|&b| b == b'/').any(|seg| seg == b"..") {
        return Err("bad path: '..'");
    }
    Ok(())
}

/// True when a segment of the (decoded) request path names a dotfile or a dot-directory.
fn is_hidden(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    decoded
        .split(|&b| b == b'/')
        .any(|seg| seg.first() == Some(&b'.'))
}

/// The absolute form of a configured directory, for messages.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What to say when a configured directory does not exist.
fn no_dir(what: &str, option: &str, dir: &Path) -> String {
    let relative = match dir.is_relative() {
        true => match std::env::current_dir() {
            Ok(cwd) => format!(", relative to the current directory {}", cwd.display()),
            Err(_) => ", relative to the current directory".to_string(),
        },
        false => String::new(),
    };
    format!(
        "no {what} directory at {} ({option} {}{relative}): pass {option} with the directory \
         that holds the {what}",
        absolute(dir).display(),
        dir.display()
    )
}

/// The allowed `Origin` of a request for a SWF or a Ruffle file, to be echoed in
/// `Access-Control-Allow-Origin`. Ruffle fetches SWFs (and its own wasm) with `fetch()`, so
/// a page on another origin needs it.
fn cors_origin<B>(req: &Request<B>, allow: &AllowList) -> Option<HeaderValue> {
    if !has_cors(req.uri().path()) {
        return None;
    }
    let origin = req.headers().get(ORIGIN)?;
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    allow
        .allows(origin.to_str().ok()?, host)
        .then(|| origin.clone())
}

/// True for the files that get `Access-Control-Allow-Origin`: SWFs and Ruffle's files.
fn has_cors(path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    path.ends_with(".swf") || path.starts_with("/ruffle/")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The end of the `ServeDir` chain: a 404 that says how to fix a missing vendor file or a
/// missing directory (without naming it: the start-up log does).
#[derive(Clone)]
pub struct NotFound {
    /// The assets directory, when there is one.
    assets: Arc<Option<PathBuf>>,
}

impl<B> tower::Service<Request<B>> for NotFound {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let path = req.uri().path().trim_start_matches('/');
        let vendor = VENDOR_FILES.contains(&path)
            || path.starts_with("ruffle/")
            || path.starts_with("sockjs/");
        let found = self
            .assets
            .as_ref()
            .as_ref()
            .is_some_and(|dir| dir.is_dir());
        let res = if vendor && !found {
            text(StatusCode::NOT_FOUND, &no_dir_answer("assets"))
        } else if vendor {
            text(StatusCode::NOT_FOUND, FETCH_HINT)
        } else {
            text(StatusCode::NOT_FOUND, "not found")
        };
        ready(Ok(res))
    }
}

/// The 404 for a file of a directory that the gateway did not find (`web` or `assets`).
fn no_dir_answer(dir: &str) -> String {
    format!(
        "not found: the gateway has no {dir} directory (its start-up log says where it looked): \
         pass --{dir}-dir"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_are_refused() {
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/%2E%2E/x",
            "/a%00.js",
            "/..%5cwindows",
            "/a\\b",
        ] {
            assert!(check_path(bad).is_err(), "{bad} accepted");
        }
        for good in [
            "/",
            "/web_socket.js",
            "/hixie76/WebSocketMain.swf",
            "/a..b.js",
        ] {
            assert!(check_path(good).is_ok(), "{good} refused");
        }
    }

    /// The answer `NotFound` gives for `path`, as text.
    fn not_found(path: &str, assets: &Path) -> String {
        use tower::Service;
        let mut service = NotFound {
            assets: Arc::new(Some(assets.to_path_buf())),
        };
        let req = Request::get(path).body(()).unwrap();
        let res = service.call(req).into_inner().unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body = futures_util::FutureExt::now_or_never(res.into_body().collect())
            .expect("a full body")
            .unwrap()
            .to_bytes();
        String::from_utf8(body.to_vec())
            .unwrap()
            .trim_end()
            .to_string()
    }

    #[test]
    fn a_missing_sockjs_client_file_says_how_to_fetch_it() {
        // The iframe page of SockJS's iframe transports loads /sockjs/sockjs.min.js.
        let assets = std::env::temp_dir();
        assert_eq!(not_found("/sockjs/sockjs.min.js", &assets), FETCH_HINT);
        assert_eq!(not_found("/sockjs/LICENSE", &assets), FETCH_HINT);
        assert_eq!(not_found("/sockjs.min.js", &assets), "not found");
    }
}
