//! The third-party files in the copies fetch-vendor compresses (`NAME.br`, `NAME.gz`): served
//! in the encoding the client prefers among those it accepts, identical once decoded, with
//! `Vary: Accept-Encoding`; as they are to a client that accepts neither.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// `data` through `command` (a decompressor reading stdin).
fn through(command: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(command)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{command} failed");
    out.stdout
}

/// The gateway's answer for `path` with `Accept-Encoding: accept` (none when empty).
async fn fetched(main: std::net::SocketAddr, path: &str, accept: &str) -> Response {
    let headers: Vec<(&str, &str)> = match accept {
        "" => vec![],
        accept => vec![("Accept-Encoding", accept)],
    };
    http(main, "GET", path, &headers).await
}

#[tokio::test]
async fn ruffles_wasm_goes_out_in_brotli_or_gzip_and_decodes_to_the_file() {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ruffle = checkout.join("assets/vendor/ruffle");
    let wasm = std::fs::read_dir(&ruffle)
        .expect("the vendor files (scripts/fetch-vendor)")
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .expect("Ruffle's wasm");
    let name = wasm.file_name().unwrap().to_str().unwrap().to_string();
    let original = std::fs::read(&wasm).unwrap();
    // The checkout's assets, as fetch-vendor left them.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("web")).unwrap();
    std::os::unix::fs::symlink(checkout.join("assets"), dir.path().join("assets")).unwrap();
    let gw = TestGateway::start_in(dir, &[]).await;
    let path = format!("/ruffle/{name}");

    let plain = fetched(gw.main, &path, "").await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert!(plain.body == original, "the file as it is");

    for (accept, encoding, decoder) in [
        ("gzip, deflate, br", "br", ("brotli", &["-d", "-c"][..])),
        ("gzip", "gzip", ("gzip", &["-d", "-c"][..])),
    ] {
        let res = fetched(gw.main, &path, accept).await;
        assert_eq!(res.status, 200, "{accept}");
        assert_eq!(res.header("content-encoding"), Some(encoding), "{accept}");
        assert!(
            res.header("vary")
                .unwrap()
                .to_ascii_lowercase()
                .contains("accept-encoding")
        );
        assert!(
            res.body.len() < original.len() / 2,
            "{encoding}: {} bytes of {}",
            res.body.len(),
            original.len()
        );
        assert!(
            through(decoder.0, decoder.1, &res.body) == original,
            "{encoding} decodes to the file"
        );
    }
}

#[tokio::test]
async fn a_file_without_a_compressed_copy_is_served_as_it_is() {
    let gw = TestGateway::start(&[]).await;
    let res = fetched(gw.main, "/web_socket.js", "gzip, br").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), WEB_SOCKET_JS);
}
