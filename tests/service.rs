//! `contrib/`: the systemd unit passes `systemd-analyze verify` and its security review,
//! and the binary started as the unit starts it (its `ExecStart`, the default
//! configuration, an ordinary user holding only the capability to bind low ports) binds
//! port 843's kind of port, serves, takes the unit's reload and stops on SIGTERM.

mod common;

use std::path::Path;
use std::process::Command;

use common::running::Running;
use common::*;

const BINARY: &str = env!("CARGO_BIN_EXE_flashgate");

fn unit() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/flashgate.service"))
        .unwrap()
}

/// The unit's value of `key`, the last one given.
fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    let line = unit.lines().rev().find(|l| l.starts_with(&prefix));
    line.unwrap_or_else(|| panic!("no {key} in the unit"))[prefix.len()..].trim()
}

/// The unit with its `ExecStart` pointing at the built binary, in a directory of its own.
fn unit_here(dir: &Path) -> std::path::PathBuf {
    let unit = unit().replace("/usr/bin/flashgate", BINARY);
    let path = dir.join("flashgate.service");
    std::fs::write(&path, unit).unwrap();
    path
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim() == "0"
}

#[test]
fn the_unit_verifies_cleanly_and_is_well_confined() {
    let dir = tempfile::tempdir().unwrap();
    let path = unit_here(dir.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    // An unknown or misspelt setting is only a warning: there must be none.
    assert!(!said.contains("flashgate.service"), "{said}");

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let exposure = said
        .lines()
        .find_map(|l| l.split("flashgate.service: ").nth(1))
        .unwrap_or_else(|| panic!("no overall exposure in {said}"));
    assert!(
        out.status.success(),
        "exposure above 2.0 (of 10): {exposure}"
    );

    let unit = unit();
    assert_eq!(value(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value(&unit, "AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
    assert_eq!(value(&unit, "DynamicUser"), "yes");
}

#[tokio::test]
async fn the_binary_runs_as_the_unit_runs_it() {
    let dir = fixtures();
    // The user the unit makes reads the pages as anyone may.
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir.path())
        .status()
        .unwrap();
    let unit = unit();
    let exec = value(&unit, "ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/flashgate"));
    let args: Vec<&str> = words.collect();
    assert_eq!(args, ["--config", "/etc/flashgate/flashgate.toml"]);
    let config = dir.path().join("flashgate.toml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/flashgate.toml"),
        &config,
    )
    .unwrap();
    Command::new("chmod")
        .arg("a+r")
        .arg(&config)
        .status()
        .unwrap();

    let root = is_root();
    // A port of 843's kind (below 1024) where the test can have one: only the capability
    // the unit grants binds it.
    let policy_port = match root {
        true => (700..1000)
            .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
            .unwrap(),
        false => 0,
    };
    let mut command = match root {
        true => {
            let mut command = Command::new("setpriv");
            command.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--inh-caps=+net_bind_service",
                "--ambient-caps=+net_bind_service",
                BINARY,
            ]);
            command
        }
        false => binary(BINARY),
    };
    command
        .env_remove("RUST_LOG")
        .current_dir("/")
        .arg("--config")
        .arg(&config)
        // Where the test's own files and ports are: the file's other settings stand.
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .arg("--policy-listen")
        .arg(format!("127.0.0.1:{policy_port}"))
        .arg("--web-dir")
        .arg(dir.path().join("web"))
        .arg("--assets-dir")
        .arg(dir.path().join("assets"));
    let mut gateway = Running::spawn(command);
    let policy = gateway.listening("policy");
    let main = gateway.listening("main");
    let metrics = gateway.listening("metrics");
    if root {
        assert_eq!(policy.port(), policy_port);
    }
    assert!(
        !gateway.seen.iter().any(|l| l.contains("running as root")),
        "{:?}",
        gateway.seen
    );
    let reply = exchange(policy, &[POLICY_REQUEST], false).await;
    assert!(
        reply.ends_with(b"</cross-domain-policy>\0"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // The file's routes.
    let url = format!("ws://{main}/echo");
    let (mut ws, _) = within("handshake", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    send_text(&mut ws, "hello").await;
    assert_eq!(
        next_message(&mut ws).await.into_text().unwrap().as_str(),
        "hello"
    );
    assert_eq!(get(metrics, "/healthz").await.status, 200);

    // The unit's reload: the gateway stays, and serves on.
    let pid = gateway.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    gateway.line_with("reload: nothing to read again");
    send_text(&mut ws, "still here").await;
    let echoed = next_message(&mut ws).await.into_text().unwrap();
    assert_eq!(echoed.as_str(), "still here");
    assert_eq!(gateway.child.try_wait().unwrap(), None, "SIGHUP ended it");
    assert_eq!(gateway.terminate().code(), Some(0));
}

/// A port free now on loopback.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn socket_activation_takes_the_main_policy_and_metrics_sockets_in_order() {
    let dir = fixtures();
    let ports = [free_port(), free_port(), free_port()];
    let socket = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/flashgate.socket"),
    )
    .unwrap();
    // The socket unit's order is the gateway's: main, policy, metrics.
    let listens: Vec<&str> = socket
        .lines()
        .filter_map(|l| l.strip_prefix("ListenStream="))
        .collect();
    assert_eq!(listens, ["8080", "843", "127.0.0.1:9843"]);
    // systemd's own tool binds the sockets, waits for a connection, then starts the gateway
    // with them, as systemd does for the socket unit.
    let mut command = Command::new("systemd-socket-activate");
    for port in ports {
        command.arg(format!("--listen=127.0.0.1:{port}"));
    }
    command
        .env("RUST_LOG", "info")
        .current_dir(dir.path())
        .arg(BINARY)
        // Addresses of its own that it must not bind: the sockets passed are the ones.
        .args([
            "--listen",
            "127.0.0.1:1",
            "--policy-listen",
            "127.0.0.1:2",
            "--metrics-listen",
            "127.0.0.1:3",
        ])
        .args(["--web-dir", "web", "--assets-dir", "assets"]);
    let mut gateway = Running::spawn(command);
    gateway.line_with("Listening on 127.0.0.1");
    let [main, policy, metrics] = ports.map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)));
    // The first connection starts it.
    let reply = exchange(policy, &[POLICY_REQUEST], false).await;
    assert!(
        reply.ends_with(b"</cross-domain-policy>\0"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    gateway.line_with("sockets the service manager passed");
    assert_eq!(get(main, "/crossdomain.xml").await.status, 200);
    assert_eq!(get(metrics, "/healthz").await.status, 200);
    assert_eq!(gateway.listening("main"), main);
    assert_eq!(gateway.listening("policy"), policy);
    assert_eq!(gateway.listening("metrics"), metrics);
    assert_eq!(gateway.terminate().code(), Some(0));
}
