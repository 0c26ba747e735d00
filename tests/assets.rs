//! Static files over HTTP/1.1: MIME types, validators and 304s, HEAD, CORS on SWFs, hostile
//! paths, the missing-vendor answer and the `/assets.json` listing.

mod common;

use common::*;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn swf_is_served_with_flash_mime_type_and_validators() {
    let gw = TestGateway::start(&[]).await;
    let res = get(gw.main, "/WebSocketMain.swf").await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("application/x-shockwave-flash")
    );
    assert_eq!(res.body, SWF);
    assert!(res.header("etag").is_some());
    assert!(res.header("last-modified").is_some());
}

#[tokio::test]
async fn javascript_and_pages_have_their_mime_types() {
    let gw = TestGateway::start(&[]).await;
    let js = get(gw.main, "/web_socket.js").await;
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type").unwrap().contains("javascript"),
        "{js:?}"
    );
    assert_eq!(js.text(), WEB_SOCKET_JS);
    for page in ["/", "/index.html"] {
        let html = get(gw.main, page).await;
        assert_eq!(html.status, 200, "{page}");
        assert!(
            html.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(html.text(), INDEX_HTML);
    }
    let own = get(gw.main, "/own.js").await;
    assert_eq!(own.status, 200, "our own files in assets/ are served too");
}

#[tokio::test]
async fn matching_validators_get_304_without_body() {
    let gw = TestGateway::start(&[]).await;
    let first = get(gw.main, "/WebSocketMain.swf").await;
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();

    let by_etag = http(
        gw.main,
        "GET",
        "/WebSocketMain.swf",
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(by_etag.status, 304);
    assert!(by_etag.body.is_empty());
    let by_date = http(
        gw.main,
        "GET",
        "/WebSocketMain.swf",
        &[("If-Modified-Since", &modified)],
    )
    .await;
    assert_eq!(by_date.status, 304);

    let other = http(
        gw.main,
        "GET",
        "/WebSocketMain.swf",
        &[("If-None-Match", "W/\"nope\"")],
    )
    .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.body, SWF);
}

#[tokio::test]
async fn changed_file_gets_a_new_etag() {
    let gw = TestGateway::start(&[]).await;
    let before = get(gw.main, "/web_socket.js").await;
    std::fs::write(
        gw.path("assets/vendor/web_socket.js"),
        "/* a longer, newer web_socket.js */",
    )
    .unwrap();
    let after = get(gw.main, "/web_socket.js").await;
    assert_ne!(before.header("etag"), after.header("etag"));
    let stale = http(
        gw.main,
        "GET",
        "/web_socket.js",
        &[("If-None-Match", before.header("etag").unwrap())],
    )
    .await;
    assert_eq!(stale.status, 200);
}

#[tokio::test]
async fn head_gives_headers_and_no_body() {
    let gw = TestGateway::start(&[]).await;
    let res = http(gw.main, "HEAD", "/WebSocketMain.swf", &[]).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-length"),
        Some(SWF.len().to_string().as_str())
    );
    assert_eq!(
        res.header("content-type"),
        Some("application/x-shockwave-flash")
    );
    assert!(res.body.is_empty(), "HEAD has no body: {:?}", res.body);
}

#[tokio::test]
async fn swf_gets_cors_for_allowed_origins_only() {
    let gw = TestGateway::start(&["--allow-origin", "http://games.example:8000"]).await;
    let allowed = http(
        gw.main,
        "GET",
        "/WebSocketMain.swf",
        &[("Origin", "http://games.example:8000")],
    )
    .await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://games.example:8000")
    );
    assert!(allowed.header("vary").unwrap_or("").contains("Origin"));

    let refused = http(
        gw.main,
        "GET",
        "/WebSocketMain.swf",
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(refused.status, 200);
    assert_eq!(refused.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn hostile_paths_never_reach_a_file_outside() {
    let gw = TestGateway::start(&[]).await;
    for target in [
        "/../secret.txt",
        "/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/vendor/../../secret.txt",
        "/vendor/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/%00",
        "/index.html%00.js",
        "//secret.txt",
        "/%2fsecret.txt",
        &format!("/{}", gw.path("secret.txt").display()),
    ] {
        let res = get(gw.main, target).await;
        assert!(
            res.status == 400 || res.status == 404,
            "{target}: status {}",
            res.status
        );
        assert!(!res.text().contains(SECRET), "{target} leaked the secret");
    }
}

#[tokio::test]
async fn missing_vendor_file_gets_404_saying_how_to_fetch_it() {
    let gw = TestGateway::start(&[]).await;
    for target in ["/web_socket.min.js", "/hixie76/WebSocketMainInsecure.swf"] {
        let res = get(gw.main, target).await;
        assert_eq!(res.status, 404, "{target}");
        assert!(
            res.text().contains("scripts/fetch-vendor"),
            "{target}: {}",
            res.text()
        );
    }
    let other = get(gw.main, "/no-such-page.html").await;
    assert_eq!(other.status, 404);
    assert!(!other.text().contains("fetch-vendor"));
}

#[tokio::test]
async fn listing_gives_name_url_size_sha256_and_missing_files() {
    let gw = TestGateway::start(&[]).await;
    let res = get(gw.main, "/assets.json").await;
    assert_eq!(res.status, 200);
    assert!(res.header("content-type").unwrap().contains("json"));
    let listing: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
    let swf = listing["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "WebSocketMain.swf")
        .expect("the SWF is listed");
    assert_eq!(swf["url"], "/WebSocketMain.swf");
    assert_eq!(swf["size"], SWF.len());
    assert_eq!(swf["sha256"], hex::encode(Sha256::digest(SWF)));
    let missing: Vec<_> = listing["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(missing.contains(&"web_socket.min.js"), "{missing:?}");
    assert!(!missing.contains(&"WebSocketMain.swf"), "{missing:?}");
    // Every listed URL is really served, with the listed size.
    for asset in listing["assets"].as_array().unwrap() {
        let served = get(gw.main, asset["url"].as_str().unwrap()).await;
        assert_eq!(served.status, 200, "{asset}");
        assert_eq!(
            served.body.len() as u64,
            asset["size"].as_u64().unwrap(),
            "{asset}"
        );
    }
}

#[tokio::test]
async fn other_methods_are_refused() {
    let gw = TestGateway::start(&[]).await;
    let res = http(gw.main, "POST", "/index.html", &[("Content-Length", "0")]).await;
    assert_eq!(res.status, 405);
}

#[tokio::test]
async fn more_hostile_paths_never_reach_a_file_outside() {
    let gw = TestGateway::start(&[]).await;
    for target in [
        "/../Cargo.toml",
        "/assets/../../secret.txt",
        "/web/../../secret.txt",
        "//etc/passwd",
        "/..\\secret.txt",
        "/vendor\\..\\..\\secret.txt",
        "/%2e%2e%5c%2e%2e%5csecret.txt",
        "/.%2e/secret.txt",
        "/%252e%252e/secret.txt",
    ] {
        let raw = exchange(
            gw.main,
            &[request("GET", target, &[("Connection", "close")]).as_bytes()],
            false,
        )
        .await;
        let res = parse_response(&raw);
        assert!(
            res.status == 400 || res.status == 404,
            "{target}: status {}",
            res.status
        );
        let text = res.text();
        assert!(!text.contains(SECRET), "{target} leaked the secret");
        assert!(!text.contains("root:"), "{target} leaked /etc/passwd");
    }
}

#[tokio::test]
async fn a_304_carries_the_same_etag_as_the_200() {
    let gw = TestGateway::start(&[]).await;
    let full = get(gw.main, "/WebSocketMain.swf").await;
    let etag = full.header("etag").unwrap();
    let modified = full.header("last-modified").unwrap();
    for condition in [
        ("If-None-Match", etag),
        ("If-Modified-Since", modified),
        ("If-None-Match", "*"),
    ] {
        let res = http(gw.main, "GET", "/WebSocketMain.swf", &[condition]).await;
        assert_eq!(res.status, 304, "{condition:?}");
        assert_eq!(res.header("etag"), Some(etag), "{condition:?}");
    }
}

#[tokio::test]
async fn same_size_rewrite_within_one_second_is_not_answered_304() {
    let gw = TestGateway::start(&[]).await;
    let path = gw.path("web/index.html");
    let second = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let set_mtime = |at| {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(at)
            .unwrap()
    };
    set_mtime(second + std::time::Duration::from_millis(100));
    let before = get(gw.main, "/index.html").await;
    assert_eq!(before.text(), INDEX_HTML);
    // An editor saves a same-length change in the same second.
    let edited = INDEX_HTML.replace("test page", "TEST PAGE");
    assert_eq!(edited.len(), INDEX_HTML.len());
    std::fs::write(&path, &edited).unwrap();
    set_mtime(second + std::time::Duration::from_millis(600));
    let after = http(
        gw.main,
        "GET",
        "/index.html",
        &[("If-None-Match", before.header("etag").unwrap())],
    )
    .await;
    assert_eq!(after.status, 200, "a stale copy was confirmed as current");
    assert_eq!(after.text(), edited);
}

#[tokio::test]
async fn swf_responses_vary_on_origin_with_or_without_cors() {
    // The answer depends on Origin, so caches must key on it even when no CORS header was
    // given (otherwise a cached copy without CORS is replayed to an allowed page).
    let gw = TestGateway::start(&["--allow-origin", "http://games.example:8000"]).await;
    for headers in [
        &[][..],
        &[("Origin", "http://evil.example")][..],
        &[("Origin", "http://games.example:8000")][..],
    ] {
        let res = http(gw.main, "GET", "/WebSocketMain.swf", headers).await;
        assert_eq!(res.status, 200);
        assert!(
            res.headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("vary") && v.contains("Origin")),
            "{headers:?}: {:?}",
            res.headers
        );
    }
}

#[tokio::test]
async fn head_on_a_page_and_on_the_listing_has_no_body() {
    let gw = TestGateway::start(&[]).await;
    let page = http(gw.main, "HEAD", "/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-length"),
        Some(INDEX_HTML.len().to_string().as_str())
    );
    assert!(page.body.is_empty());
    let listing = http(gw.main, "HEAD", "/assets.json", &[]).await;
    assert_eq!(listing.status, 200);
    assert!(listing.body.is_empty());
}

#[tokio::test]
async fn listing_reports_missing_vendor_files_and_their_absence_from_assets() {
    let gw = TestGateway::start(&[]).await;
    let listing: serde_json::Value =
        serde_json::from_slice(&get(gw.main, "/assets.json").await.body).unwrap();
    let missing: Vec<_> = listing["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    let mut expected: Vec<_> = flashgate::VENDOR_FILES
        .iter()
        .filter(|f| !gw.path("assets/vendor").join(f).is_file())
        .map(|f| f.to_string())
        .collect();
    expected.sort();
    let mut sorted = missing.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    for asset in listing["assets"].as_array().unwrap() {
        assert!(
            !missing.iter().any(|m| asset["name"] == m.as_str()),
            "{asset} is both listed and missing"
        );
    }
    // A file fetched later shows up without a restart, with its digest.
    let min = b"/* minified */";
    std::fs::write(gw.path("assets/vendor/web_socket.min.js"), min).unwrap();
    let listing: serde_json::Value =
        serde_json::from_slice(&get(gw.main, "/assets.json").await.body).unwrap();
    let entry = listing["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "web_socket.min.js")
        .expect("listed once present");
    assert_eq!(entry["sha256"], hex::encode(Sha256::digest(min)));
    assert!(
        !listing["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "web_socket.min.js")
    );
}

#[tokio::test]
async fn paths_the_filesystem_cannot_hold_get_404_not_5xx() {
    let gw = TestGateway::start(&[]).await;
    std::os::unix::fs::symlink("loop", gw.path("web/loop")).unwrap();
    let long_segment = format!("/{}", "a".repeat(300));
    let long_path = format!("/{}", format!("{}/", "b".repeat(200)).repeat(30));
    for target in [
        long_segment.as_str(),
        &format!("{long_segment}.js"),
        &format!("/hixie76/{}.swf", "c".repeat(256)),
        &format!("/ruffle/{}", "d".repeat(1000)),
        long_path.as_str(),
        "/index.html/x",
        "/index.html/",
        "/own.js/web_socket.js",
        "/loop",
        "/loop/x",
        "/%ff%fe",
    ] {
        for method in ["GET", "HEAD"] {
            let res = http(gw.main, method, target, &[]).await;
            assert_eq!(res.status, 404, "{method} {target}: {:?}", res.text());
        }
    }
    // The gateway is unharmed.
    assert_eq!(get(gw.main, "/index.html").await.status, 200);
}

/// The fixtures with what a careless deployment holds: dotfiles, links that lead out of the
/// served directories, and links that stay inside them.
fn hostile_fixtures() -> tempfile::TempDir {
    use std::os::unix::fs::symlink;
    let dir = fixtures();
    let root = dir.path();
    std::fs::write(root.join("web/.secret"), SECRET).unwrap();
    std::fs::create_dir_all(root.join("web/.git")).unwrap();
    std::fs::write(root.join("web/.git/config"), SECRET).unwrap();
    std::fs::write(root.join("assets/.env"), SECRET).unwrap();
    std::fs::create_dir_all(root.join("assets/.cache")).unwrap();
    std::fs::write(root.join("assets/.cache/note.js"), SECRET).unwrap();
    // Out: to the secret beside the served directories, to a directory above them.
    symlink(root.join("secret.txt"), root.join("web/outside.txt")).unwrap();
    symlink("../secret.txt", root.join("assets/relative-out.txt")).unwrap();
    symlink("..", root.join("web/up")).unwrap();
    // In: a file and a directory that stay inside.
    std::fs::create_dir_all(root.join("web/real")).unwrap();
    std::fs::write(root.join("web/real/page.html"), "<p>inside</p>").unwrap();
    symlink("real", root.join("web/docs")).unwrap();
    symlink("index.html", root.join("web/alias.html")).unwrap();
    symlink("own.js", root.join("assets/alias.js")).unwrap();
    dir
}

#[tokio::test]
async fn dotfiles_and_links_out_of_the_served_directories_are_not_served() {
    let gw = TestGateway::start_in(hostile_fixtures(), &[]).await;
    for target in [
        "/.secret",
        "/%2esecret",
        "/.git/config",
        "/.git/",
        "/real/../.secret",
        "/.env",
        "/.cache/note.js",
        "/outside.txt",
        "/relative-out.txt",
        "/up/secret.txt",
        "/up/assets/own.js",
        "/up",
    ] {
        let res = get(gw.main, target).await;
        assert!(
            res.status == 404 || res.status == 400,
            "{target}: status {}",
            res.status
        );
        assert!(!res.text().contains(SECRET), "{target} leaked the secret");
    }
    // Links that stay inside are followed, even when they pass through a directory above.
    assert_eq!(get(gw.main, "/up/web/index.html").await.text(), INDEX_HTML);
    assert_eq!(get(gw.main, "/alias.html").await.text(), INDEX_HTML);
    assert_eq!(
        get(gw.main, "/docs/page.html").await.text(),
        "<p>inside</p>"
    );
    assert_eq!(
        get(gw.main, "/alias.js").await.text(),
        "/* our own asset */"
    );
    assert_eq!(get(gw.main, "/real/page.html").await.status, 200);
}

#[tokio::test]
async fn serve_hidden_and_follow_symlinks_allow_each_what_it_names() {
    let hidden = TestGateway::start_in(hostile_fixtures(), &["--serve-hidden"]).await;
    assert_eq!(get(hidden.main, "/.secret").await.text(), SECRET);
    assert_eq!(get(hidden.main, "/.git/config").await.text(), SECRET);
    assert_eq!(get(hidden.main, "/.cache/note.js").await.text(), SECRET);
    assert_eq!(get(hidden.main, "/outside.txt").await.status, 404);

    let links = TestGateway::start_in(hostile_fixtures(), &["--follow-symlinks"]).await;
    assert_eq!(get(links.main, "/outside.txt").await.text(), SECRET);
    assert_eq!(get(links.main, "/relative-out.txt").await.text(), SECRET);
    assert_eq!(
        get(links.main, "/up/web/index.html").await.text(),
        INDEX_HTML
    );
    assert_eq!(get(links.main, "/.secret").await.status, 404);
    // Not through a dot-directory either.
    assert_eq!(get(links.main, "/up/web/.secret").await.status, 404);
}

#[tokio::test]
async fn the_listing_holds_only_what_is_served() {
    let gw = TestGateway::start_in(hostile_fixtures(), &[]).await;
    // A link back up and a dangling one in the listed tree.
    std::os::unix::fs::symlink(".", gw.path("assets/again")).unwrap();
    std::os::unix::fs::symlink("nowhere", gw.path("assets/dangling.js")).unwrap();
    let res = get(gw.main, "/assets.json").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let listing: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
    let names: Vec<_> = listing["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    for name in [".env", ".cache/note.js", "relative-out.txt", "dangling.js"] {
        assert!(!names.iter().any(|n| n == name), "{name} listed: {names:?}");
    }
    assert!(names.iter().any(|n| n == "alias.js"), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| n.ends_with("own.js")).count(),
        1,
        "{names:?}"
    );
    for asset in listing["assets"].as_array().unwrap() {
        let served = get(gw.main, asset["url"].as_str().unwrap()).await;
        assert_eq!(served.status, 200, "{asset}");
    }

    let open =
        TestGateway::start_in(hostile_fixtures(), &["--serve-hidden", "--follow-symlinks"]).await;
    let listing: serde_json::Value =
        serde_json::from_slice(&get(open.main, "/assets.json").await.body).unwrap();
    for name in [".env", ".cache/note.js", "relative-out.txt"] {
        let entry = listing["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {listing}"));
        assert_eq!(
            get(open.main, entry["url"].as_str().unwrap()).await.text(),
            SECRET
        );
    }
}
