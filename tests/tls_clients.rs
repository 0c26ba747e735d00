//! TLS on the main port with clients the gateway did not write: Python's `ssl` module,
//! `openssl s_client` (which shares the port with netcat's policy request), and the binary
//! itself reloading its certificate on SIGHUP while clients keep talking.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::running::Running;
use common::tls::{TestCa, served};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// The gateway binary serving TLS with `cert` and `key` on loopback ports of its own.
fn spawn_tls(dir: &Path, cert: &Path, key: &Path) -> Running {
    let mut command = binary(env!("CARGO_BIN_EXE_flashgate"));
    command
        .args(["--listen", "127.0.0.1:0", "--policy-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .arg("--assets-dir")
        .arg(dir.join("assets"))
        .env("RUST_LOG", "info");
    Running::spawn(command)
}

/// Python's own TLS client, for each protocol version: the ALPN it was given, a page over
/// https, and a WebSocket echo over wss (the frames written by hand, masked as a client's
/// are). A name the certificate does not hold fails verification. One line per result.
const PYTHON_CLIENT: &str = r#"
import os, socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]

def connect(version, name="localhost"):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=name)

def read_until(s, end):
    got = b""
    while end not in got:
        piece = s.recv(65536)
        if not piece:
            break
        got += piece
    return got

for label, version in (("tls1.2", ssl.TLSVersion.TLSv1_2), ("tls1.3", ssl.TLSVersion.TLSv1_3)):
    s = connect(version)
    print(label, "version", s.version(), "alpn", s.selected_alpn_protocol())
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    print(label, "page", read_until(s, b"</html>").split(b"\r\n", 1)[0].decode())
    s.close()

    s = connect(version)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = read_until(s, b"\r\n\r\n")
    print(label, "upgrade", head.split(b"\r\n", 1)[0].decode())
    text = ("hello over " + label).encode()
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
    frame = read_until(s, text)
    print(label, "echo", frame[2:2 + frame[1]].decode())
    s.close()

try:
    connect(ssl.TLSVersion.TLSv1_3, name="elsewhere.example")
    print("wrong name accepted")
except ssl.SSLCertVerificationError as e:
    print("wrong name refused", e.verify_message)
"#;

#[tokio::test]
async fn pythons_ssl_client_gets_pages_and_websockets_on_tls_1_2_and_1_3() {
    let dir = complete_fixtures();
    let ca = TestCa::new();
    let issued = ca.issue(dir.path(), "server");
    let ca_file = ca.write(&dir.path().join("ca.pem"));
    let mut gateway = spawn_tls(dir.path(), &issued.cert, &issued.key);
    let main = gateway.listening("main");

    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg("-c")
            .arg(PYTHON_CLIENT)
            .arg(main.port().to_string())
            .arg(&ca_file)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for (label, version) in [("tls1.2", "TLSv1.2"), ("tls1.3", "TLSv1.3")] {
        for want in [
            format!("{label} version {version} alpn http/1.1"),
            format!("{label} page HTTP/1.1 200 OK"),
            format!("{label} upgrade HTTP/1.1 101 Switching Protocols"),
            format!("{label} echo hello over {label}"),
        ] {
            assert!(lines.contains(&want.as_str()), "no {want:?} in\n{stdout}");
        }
    }
    assert!(
        stdout.contains("wrong name refused"),
        "a name the certificate lacks: {stdout}"
    );
}

/// `openssl s_client` with `request` on its stdin: its whole output, and whether it exited 0.
fn s_client(port: u16, ca_file: &Path, request: &str) -> (String, bool) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-alpn", "http/1.1", "-ign_eof"])
        .arg("-CAfile")
        .arg(ca_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, out.status.success())
}

#[tokio::test]
async fn openssl_s_client_and_a_policy_request_share_the_main_port_not_the_policy_one() {
    let dir = complete_fixtures();
    let ca = TestCa::new();
    let issued = ca.issue(dir.path(), "server");
    let ca_file = ca.write(&dir.path().join("ca.pem"));
    let mut gateway = spawn_tls(dir.path(), &issued.cert, &issued.key);
    let (main, policy) = (gateway.listening("main"), gateway.listening("policy"));

    let request = "GET /crossdomain.xml HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (out, ok) = tokio::task::spawn_blocking({
        let ca_file = ca_file.clone();
        move || s_client(main.port(), &ca_file, request)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    for want in [
        "ALPN protocol: http/1.1",
        "Verify return code: 0 (ok)",
        "HTTP/1.1 200 OK",
        "<cross-domain-policy>",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }

    // netcat's policy request on the same port, as Flash Player sends it inline.
    let reply = exchange(main, &[POLICY_REQUEST], false).await;
    assert!(
        reply.ends_with(b"</cross-domain-policy>\0"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // The master policy port never speaks TLS: s_client gets no certificate there, and the
    // port answers Flash as before.
    let (out, _) = tokio::task::spawn_blocking(move || s_client(policy.port(), &ca_file, ""))
        .await
        .unwrap();
    assert!(!out.contains("BEGIN CERTIFICATE"), "{out}");
    assert!(
        out.contains("no peer certificate available") || out.contains("errno"),
        "{out}"
    );
    let reply = exchange(policy, &[POLICY_REQUEST], false).await;
    assert!(reply.ends_with(b"</cross-domain-policy>\0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_renews_the_certificate_while_clients_keep_talking() {
    let dir = complete_fixtures();
    let ca = TestCa::new();
    let first = ca.issue(dir.path(), "server");
    let mut gateway = spawn_tls(dir.path(), &first.cert, &first.key);
    let main = gateway.listening("main");
    let ca = std::sync::Arc::new(ca);

    // Clients echoing numbered messages, one after another, until told to stop; each says
    // how many came back, all in order.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut clients = Vec::new();
    for client in 0..8 {
        let (ca, mut stop) = (ca.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let tls = ca.connect(main).await.unwrap();
            let url = format!("wss://127.0.0.1:{}/echo", main.port());
            let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
            let mut n = 0u32;
            while !*stop.borrow_and_update() {
                let text = format!("{client}:{n}:{}", "x".repeat((n % 7) as usize * 300));
                ws.send(Message::text(text.clone())).await.unwrap();
                let got = within("an echo", ws.next()).await.unwrap().unwrap();
                assert_eq!(got, Message::text(text));
                n += 1;
            }
            n
        }));
    }
    drop(stop);

    let mut shown = first.der.clone();
    for round in 1..=3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let next = ca.issue(dir.path(), "server");
        let pid = gateway.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
        gateway.lines_with("reload: the TLS certificate and key were read again", round);
        let now = served(&ca.connect(main).await.unwrap());
        assert_eq!(
            now, next.der,
            "round {round}: the renewed certificate is served"
        );
        assert_ne!(now, shown);
        shown = now;
    }
    stop_tx.send(true).unwrap();
    for client in clients {
        let echoed = within("a client's end", client).await.unwrap();
        assert!(echoed > 0, "every client talked through the reloads");
    }
    assert_eq!(gateway.child.try_wait().unwrap(), None, "SIGHUP ended it");
    assert_eq!(gateway.terminate().code(), Some(0));
}
