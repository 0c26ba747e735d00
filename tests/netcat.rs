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

/// The tests run the netcat a user of the README has: Debian's `netcat-openbsd`. Without
/// it they fail, saying what to install; they never pass without having run.
fn require_nc() {
    let help = Command::new("sh").arg("-c").arg("nc -h 2>&1").output();
    let help = help
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        help.contains("OpenBSD netcat"),
        "netcat-openbsd is not installed (`nc -h` says {:?}): run `apt-get install netcat-openbsd` \
         (scripts/test installs it)",
        help.lines().next().unwrap_or("nothing")
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

#[tokio::test]
async fn printf_without_terminator_through_nc_q1_gets_the_policy_on_both_ports() {
    // The form docs/PROTOCOLS.md gives for a request ended by the end of the stream.
    policy_through("printf '<policy-file-request/>' | nc -q1 127.0.0.1 $PORT").await;
}
