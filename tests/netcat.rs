//! The policy request piped through the system's netcat (Debian `netcat-openbsd`), exactly as
//! a user types it.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::*;

/// Runs `command` (with `$PORT` set) under `sh -c` and returns its stdout.
async fn shell(command: &str, addr: SocketAddr) -> Vec<u8> {
    let script = command.to_string();
    let output = within(
        "nc to finish",
        tokio::task::spawn_blocking(move || {
            Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env("PORT", addr.port().to_string())
                .output()
        }),
    )
    .await
    .unwrap()
    .expect("sh runs");
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn require_nc() {
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v nc")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "netcat is not installed: `apt-get install netcat-openbsd` (scripts/test installs it)"
    );
}

fn is_policy(reply: &[u8], port: u16) -> bool {
    let text = String::from_utf8_lossy(reply);
    reply.last() == Some(&0)
        && text.starts_with("<?xml")
        && text.contains("<cross-domain-policy>")
        && text.contains(&format!("to-ports=\"{port}\""))
}

/// Runs `command` against both ports of a fresh gateway; each must print the policy.
async fn policy_through(command: &str) {
    require_nc();
    let gw = TestGateway::start(&[]).await;
    for addr in [gw.policy, gw.main] {
        let out = shell(command, addr).await;
        assert!(
            is_policy(&out, gw.main.port()),
            "{command} on {addr}: {:?}",
            String::from_utf8_lossy(&out)
        );
    }
}

#[tokio::test]
async fn printf_with_nul_through_nc_gets_the_policy_on_both_ports() {
    policy_through(r"printf '<policy-file-request/>\0' | nc -q1 127.0.0.1 $PORT").await;
}

#[tokio::test]
async fn echo_with_newline_through_nc_gets_the_policy_on_both_ports() {
    policy_through("echo '<policy-file-request/>' | nc -q1 127.0.0.1 $PORT").await;
}

#[tokio::test]
async fn nc_without_trailing_byte_gets_the_policy_at_eof() {
    policy_through("printf '<policy-file-request/>' | nc -N 127.0.0.1 $PORT").await;
}
