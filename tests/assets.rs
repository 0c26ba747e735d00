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
