//! The binary away from its checkout: its own pages are built in, and the third-party files
//! are looked for in `--assets-dir`, beside the binary, in the system location, then in the
//! checkout a `target/` binary is in; what it cannot find, it says where it looked.

mod common;

use std::path::{Path, PathBuf};

use common::running::Running;
use common::*;

const SYSTEM: &str = "/usr/share/flashgate/assets";

/// A copy of the built binary in `dir/bin/`, away from any checkout.
///
/// `cp` writes it in a process of its own: were this process to hold the copy open for
/// writing, a child that another test thread forks in that moment would inherit the
/// descriptor until its exec, and starting the copy would fail with "Text file busy".
fn copy_of_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let copy = bin.join("flashgate");
    let status = std::process::Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_flashgate"))
        .arg(&copy)
        .status()
        .expect("cp runs");
    assert!(status.success(), "cp: {status}");
    copy
}

fn started(binary: &Path, cwd: &Path, extra: &[&str]) -> Running {
    let mut command = common::binary(binary.to_str().unwrap());
    command
        .current_dir(cwd)
        .args(["--listen", "127.0.0.1:0", "--policy-listen", "off"])
        .args(extra);
    Running::spawn(command)
}

#[tokio::test]
async fn a_copy_of_the_binary_serves_its_pages_and_says_where_it_looked_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let binary = copy_of_binary(&root);
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut gateway = started(&binary, &elsewhere, &[]);
    let main = gateway.listening("main");

    // Its own pages and scripts, from the binary itself.
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (target, file) in [
        ("/", "web/index.html"),
        ("/flashgate.js", "web/flashgate.js"),
        ("/legacy.html", "web/legacy.html"),
        ("/flashgate-compat.js", "assets/flashgate-compat.js"),
    ] {
        let res = get(main, target).await;
        assert_eq!(res.status, 200, "{target}: {}", res.text());
        assert_eq!(
            res.body,
            std::fs::read(checkout.join(file)).unwrap(),
            "{target}"
        );
    }
    let index = get(main, "/").await;
    assert!(
        index
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let tag = index.header("etag").expect("an ETag").to_string();
    let again = http(main, "GET", "/", &[("If-None-Match", &tag)]).await;
    assert_eq!(again.status, 304);

    if Path::new(SYSTEM).join("vendor").is_dir() {
        // An installed package is the next place looked in.
        assert_eq!(get(main, "/web_socket.js").await.status, 200);
    } else {
        let line = gateway.line_with("no assets directory");
        assert!(line.contains("WARN"), "{line}");
        let beside = root.join("bin/assets").display().to_string();
        for place in [beside.as_str(), SYSTEM, "--assets-dir"] {
            assert!(line.contains(place), "{place} not named: {line}");
        }
        let res = get(main, "/web_socket.js").await;
        assert_eq!(res.status, 404);
        assert!(res.text().contains("--assets-dir"), "{}", res.text());
    }
    assert_eq!(gateway.terminate().code(), Some(0));

    // Assets beside the binary are found from wherever it starts, before the system's.
    std::fs::create_dir_all(root.join("bin/assets/vendor")).unwrap();
    std::fs::write(root.join("bin/assets/vendor/web_socket.js"), WEB_SOCKET_JS).unwrap();
    let mut gateway = started(&binary, &elsewhere, &[]);
    let main = gateway.listening("main");
    let res = get(main, "/web_socket.js").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), WEB_SOCKET_JS);
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[tokio::test]
async fn a_web_dir_of_ones_own_comes_first_and_the_built_in_pages_fill_in() {
    let dir = fixtures();
    let mut gateway = started(
        Path::new(env!("CARGO_BIN_EXE_flashgate")),
        dir.path(),
        &["--web-dir", "web", "--assets-dir", "assets"],
    );
    let main = gateway.listening("main");
    // The fixture's index.html replaces the built-in one; the rest are still there.
    assert_eq!(get(main, "/").await.text(), INDEX_HTML);
    let script = get(main, "/flashgate.js").await;
    assert_eq!(script.status, 200);
    let ours =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("web/flashgate.js")).unwrap();
    assert_eq!(script.body, ours);
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[test]
fn check_names_a_missing_directory_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().canonicalize().unwrap();
    for (option, name) in [("--assets-dir", "no-assets"), ("--web-dir", "no-pages")] {
        let out = common::binary(env!("CARGO_BIN_EXE_flashgate"))
            .current_dir(&here)
            .args(["--check", "--policy-listen", "off", option, name])
            .output()
            .unwrap();
        let all = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{all}");
        let line = all
            .lines()
            .find(|l| l.contains(option))
            .unwrap_or_else(|| panic!("{all}"));
        assert!(
            line.contains(&here.join(name).display().to_string()),
            "{line}"
        );
        assert!(line.contains("relative to the current directory"), "{line}");
        if option == "--assets-dir" {
            // The vendor files are not the problem: their directory is.
            assert!(!all.contains("fetch-vendor"), "{all}");
        }
    }
}
