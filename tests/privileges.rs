//! `--user`: started as root to bind a port below 1024, the binary serves as an ordinary
//! user; without it, root is warned about; a user that does not exist stops the start.

mod common;

use std::process::Command;

use common::running::Running;
use common::*;

fn flashgate() -> Command {
    let mut command = binary(env!("CARGO_BIN_EXE_flashgate"));
    command.env("RUST_LOG", "info");
    command
}

/// `id`'s answer for `nobody` (`-u` its uid, `-g` its group).
fn id_of_nobody(flag: &str) -> u32 {
    let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim() == "0"
}

/// The `Uid:`, `Gid:` and `Groups:` lines of a process's status.
fn ids(pid: u32) -> (String, String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    (field("Uid:"), field("Gid:"), field("Groups:"))
}

/// A port below 1024 nothing listens on now.
fn free_privileged_port() -> u16 {
    (700..1000)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below 1024")
}

#[tokio::test]
async fn root_binds_a_low_port_then_serves_it_as_the_user() {
    let dir = fixtures();
    let mut command = flashgate();
    command.current_dir(dir.path()).arg("--user").arg("nobody");
    if !is_root() {
        // Only root can become someone else, and it says so instead of running as itself.
        let out = command
            .args(["--listen", "127.0.0.1:0", "--policy-listen", "off"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("only root can become another user"),
            "{stderr}"
        );
        return;
    }
    let port = free_privileged_port();
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--policy-listen",
        &format!("127.0.0.1:{port}"),
    ]);
    let mut gateway = Running::spawn(command);
    let policy = gateway.listening("policy");
    assert_eq!(policy.port(), port);
    let main = gateway.listening("main");
    gateway.line_with("running as nobody");
    let (uid, gid) = (id_of_nobody("-u"), id_of_nobody("-g"));
    let (uids, gids, groups) = ids(gateway.child.id());
    // Real, effective, saved and file-system ids alike: nothing of root to take back.
    assert_eq!(uids, format!("{uid} {uid} {uid} {uid}"));
    assert_eq!(gids, format!("{gid} {gid} {gid} {gid}"));
    assert_eq!(groups, gid.to_string());
    // The port bound as root still answers, now from the ordinary user.
    let reply = exchange(policy, &[POLICY_REQUEST], false).await;
    assert!(
        reply.ends_with(b"</cross-domain-policy>\0"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(get(main, "/crossdomain.xml").await.status, 200);
    assert!(
        !gateway.seen.iter().any(|l| l.contains("running as root")),
        "{:?}",
        gateway.seen
    );
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[tokio::test]
async fn root_without_a_user_is_warned() {
    let dir = fixtures();
    let mut command = flashgate();
    command
        .current_dir(dir.path())
        .args(["--listen", "127.0.0.1:0", "--policy-listen", "off"]);
    let mut gateway = Running::spawn(command);
    gateway.listening("main");
    let root = is_root();
    let warned = {
        // The warning comes before the listening lines when it comes at all.
        let line = gateway.seen.iter().find(|l| l.contains("running as root"));
        line.map(|l| l.contains("WARN") && l.contains("--user"))
    };
    assert_eq!(warned, root.then_some(true), "{:?}", gateway.seen);
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[test]
fn a_user_that_does_not_exist_stops_the_start_and_the_check() {
    let dir = fixtures();
    for check in [false, true] {
        let mut command = flashgate();
        command.current_dir(dir.path()).args([
            "--listen",
            "127.0.0.1:0",
            "--policy-listen",
            "off",
            "--user",
            "no-such-user-here",
        ]);
        if check {
            command.arg("--check");
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("there is no user \"no-such-user-here\""),
            "{stderr}"
        );
        assert!(!stderr.contains("listening"), "{stderr}");
    }
}
