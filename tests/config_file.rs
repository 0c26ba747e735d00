//! The configuration file (`--config`): every option and each route's settings from it, what
//! wins over it (the command line, the environment), where a bad one is wrong, `--check`
//! on it, and the SockJS protocol suite's file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::CommandFactory;
use flashgate::config::{BackendSpec, Config, SockjsOptions};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::*;

/// Writes `text` to `name` in `dir`: the file's path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The configuration the command line `argv` (without the program's name) gives.
fn load(argv: &[&str]) -> anyhow::Result<Config> {
    let argv = std::iter::once("flashgate").chain(argv.iter().copied());
    let (args, given) = flashgate::args::try_parse_from(argv)?;
    Config::load(&args, &given)
}

/// The configuration of the file `text` and the options `extra`.
fn load_file(text: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf, anyhow::Result<Config>) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "flashgate.toml", text);
    let mut argv = vec!["--config", path.to_str().unwrap()];
    argv.extend_from_slice(extra);
    let config = load(&argv);
    (dir, path, config)
}

/// The error the file `text` gives, as it would be logged.
fn error_of(text: &str) -> (String, String) {
    let (_dir, path, config) = load_file(text, &[]);
    let error = config.expect_err("the file is refused");
    (path.display().to_string(), format!("{error:#}"))
}

/// The binary, without the test's own `FLASHGATE_*` variables.
fn flashgate() -> Command {
    binary(env!("CARGO_BIN_EXE_flashgate"))
}

/// Exit status, stdout and stderr.
fn output(command: &mut Command) -> (i32, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const POLICY: &str = "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
    <allow-access-from domain=\"*\" to-ports=\"8080\"/>\n</cross-domain-policy>\n";

#[test]
fn a_file_with_every_key_sets_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "policy.xml", POLICY);
    let text = format!(
        r#"
listen = "127.0.0.3:9000"
policy_listen = "127.0.0.3:9843"
allow_origin = ["https://game.example", "http://localhost:9000"]
policy_file = "{policy}"
proxy_target = ["self", "game.example:9001"]
web_dir = "/srv/pages"
assets_dir = "/srv/assets"
serve_hidden = true
follow_symlinks = true
read_timeout = "1s"
handshake_timeout = "2s"
idle_timeout = "1m 30s"
hibernate_after = "0s"
max_message_size = 4096
send_backlog = 65536
max_connections = 12
listen_backlog = 64
drain_timeout = "250ms"

[[route]]
path = "/talk"
backend = "broadcast"
[route.sockjs]
enabled = false
websocket = false
cookie = true
heartbeat = "10s"
disconnect_delay = "30s"
response_limit = 4096

[[route]]
path = "/relay"
backend = "proxy"

[[route]]
path = "/maintenance"
backend = "close"
code = 4001
reason = "Back soon"
"#,
        policy = policy.display()
    );
    let path = write(dir.path(), "flashgate.toml", &text);
    let config = load(&["--config", path.to_str().unwrap()]).unwrap();

    assert_eq!(config.listen, "127.0.0.3:9000".parse().unwrap());
    assert_eq!(
        config.policy_listen,
        Some("127.0.0.3:9843".parse().unwrap())
    );
    let allow = config
        .allow_origin
        .as_ref()
        .expect("an allow-list")
        .to_string();
    assert!(
        allow.contains("https://game.example") && allow.contains("http://localhost:9000"),
        "{allow}"
    );
    assert_eq!(config.policy_file.as_ref().unwrap().path, policy);
    let targets = format!("{:?}", config.proxy_targets);
    assert!(
        config.proxy_targets.len() == 2 && targets.contains("game.example"),
        "{targets}"
    );
    assert_eq!(config.web_dir, Some(PathBuf::from("/srv/pages")));
    assert_eq!(config.assets_dir, Some(PathBuf::from("/srv/assets")));
    assert!(config.exposure.hidden && config.exposure.follow_symlinks);
    let limits = config.limits;
    assert_eq!(limits.read_timeout, Duration::from_secs(1));
    assert_eq!(limits.handshake_timeout, Duration::from_secs(2));
    assert_eq!(limits.idle_timeout, Duration::from_secs(90));
    assert_eq!(limits.hibernate_after, Duration::ZERO);
    assert_eq!(limits.max_message_size, 4096);
    assert_eq!(limits.send_backlog, 65536);
    assert_eq!(limits.max_connections, 12);
    assert_eq!(limits.listen_backlog, 64);
    assert_eq!(limits.drain_timeout, Duration::from_millis(250));

    let paths: Vec<&str> = config.routes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/talk", "/relay", "/maintenance"],
        "the file's routes only"
    );
    let talk = config.route("/talk").unwrap();
    assert_eq!(talk.backend, BackendSpec::Broadcast);
    assert_eq!(
        talk.sockjs,
        SockjsOptions {
            enabled: false,
            websocket: false,
            cookie: true,
            heartbeat: Duration::from_secs(10),
            disconnect_delay: Duration::from_secs(30),
            response_limit: 4096,
        }
    );
    let relay = config.route("/relay").unwrap();
    assert_eq!(
        relay.sockjs,
        SockjsOptions::for_backend(&BackendSpec::Proxy)
    );
    assert!(!relay.sockjs.enabled, "a proxy route has no SockJS");
    let maintenance = config.route("/maintenance").unwrap();
    assert_eq!(
        maintenance.backend,
        BackendSpec::Close {
            code: 4001,
            reason: "Back soon".into()
        }
    );
    assert!(
        maintenance.sockjs.enabled,
        "SockJS stays on for a close route"
    );
}

/// The TOML example of `docs/CONFIG.md`.
fn documented_example() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CONFIG.md")).unwrap();
    let start = doc.find("```toml\n").expect("a TOML example") + "```toml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

#[test]
fn the_documented_example_loads_and_shows_every_option() {
    let example = documented_example();
    let (_dir, _, config) = load_file(&example, &[]);
    let config = config.unwrap_or_else(|e| panic!("docs/CONFIG.md's example: {e:#}"));
    assert_eq!(
        config.route("/chat").unwrap().backend,
        BackendSpec::Broadcast
    );
    assert_eq!(
        config.route("/maintenance").unwrap().backend,
        BackendSpec::Close {
            code: 3001,
            reason: "Under maintenance: back at 10:00".into()
        }
    );
    let BackendSpec::Upstream(game) = &config.route("/game").unwrap().backend else {
        panic!("/game relays to an upstream");
    };
    assert_eq!(game.url(), "ws://127.0.0.1:9000/live");
    assert_eq!(game.options.connect_timeout, Some(Duration::from_secs(10)));
    assert_eq!(game.options.write_timeout, Some(Duration::from_secs(90)));
    assert!(game.options.forwarded && !game.options.cookies);
    assert_eq!(game.options.max_message_size, Some(1048576));
    // Whatever options exist now: each has its key in the example (set, or shown commented).
    let actions = ["config", "check", "print-ruffle-config", "help", "version"];
    for arg in flashgate::args::Args::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if actions.contains(&long) {
            continue;
        }
        let key = match long {
            "route" => "[[route]]".to_string(),
            long => format!("{} = ", long.replace('-', "_")),
        };
        assert!(
            example.contains(&key),
            "docs/CONFIG.md's example does not show {key:?} (--{long})"
        );
    }
}

#[tokio::test]
async fn the_files_routes_and_limits_apply_in_the_running_gateway() {
    let dir = fixtures();
    let path = write(
        dir.path(),
        "flashgate.toml",
        r#"
max_message_size = 200

[[route]]
path = "/from-file"
backend = "echo"

[[route]]
path = "/gone"
backend = "close"
code = 4000
reason = "bye"
"#,
    );
    let gw = TestGateway::start_in(dir, &["--config", path.to_str().unwrap()]).await;
    let mut ws = gw.ws("/from-file").await;
    send_text(&mut ws, &"a".repeat(200)).await;
    assert_eq!(next_message(&mut ws).await, Message::text("a".repeat(200)));
    let _ = ws.send(Message::text("b".repeat(201))).await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size, "the file's max_message_size");
    assert!(frame.reason.contains("200"), "{}", frame.reason);

    let mut gone = gw.ws("/gone").await;
    let (frame, messages) = close_frame(&mut gone).await;
    let frame = frame.expect("a close frame");
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (4000, "bye")
    );
    assert_eq!(messages, 0);
    assert_eq!(
        get(gw.main, "/echo").await.status,
        404,
        "the file's routes replace the defaults"
    );
}

#[test]
fn the_command_line_wins_over_the_file() {
    let file = r#"
listen = "127.0.0.3:9000"
idle_timeout = "30s"
handshake_timeout = "4s"
serve_hidden = true
[[route]]
path = "/file"
backend = "echo"
"#;
    let (_dir, _, config) = load_file(
        file,
        &[
            "--idle-timeout",
            "7s",
            "--route",
            "/flag=echo",
            "--listen",
            "127.0.0.1:8080",
        ],
    );
    let config = config.unwrap();
    assert_eq!(config.limits.idle_timeout, Duration::from_secs(7));
    let paths: Vec<&str> = config.routes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/flag"], "--route replaces the file's routes");
    // Given on the command line, even with the default's value: the file does not move it.
    assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.policy_listen, Some("127.0.0.1:843".parse().unwrap()));
    // What the command line leaves to its default comes from the file.
    assert_eq!(config.limits.handshake_timeout, Duration::from_secs(4));
    assert!(config.exposure.hidden);
}

#[test]
fn the_policy_port_follows_the_files_listen_unless_set() {
    let (_dir, _, config) = load_file("listen = \"127.0.0.3:9000\"\n", &[]);
    assert_eq!(
        config.unwrap().policy_listen,
        Some("127.0.0.3:843".parse().unwrap())
    );
    let both = "listen = \"127.0.0.3:9000\"\npolicy_listen = \"off\"\n";
    let (_dir, _, config) = load_file(both, &[]);
    assert_eq!(config.unwrap().policy_listen, None);
    let file = "policy_listen = \"127.0.0.3:9843\"\n";
    let (_dir, _, config) = load_file(file, &["--policy-listen", "off"]);
    assert_eq!(config.unwrap().policy_listen, None);
}

#[test]
fn the_environment_wins_over_the_file_and_the_command_line_over_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "flashgate.toml",
        "listen = \"127.0.0.1:8123\"\nproxy_target = [\"self\", \"file.example:9000\"]\n",
    );
    let ruffle = |setup: &dyn Fn(&mut Command)| {
        let mut command = flashgate();
        command.arg("--print-ruffle-config");
        setup(&mut command);
        let (code, stdout, stderr) = output(&mut command);
        assert_eq!(code, 0, "{stderr}");
        stdout
    };
    // The file alone, named by its variable.
    let out = ruffle(&|c| {
        c.env("FLASHGATE_CONFIG", &path);
    });
    assert!(
        out.contains("port: 8123") && out.contains("file.example"),
        "{out}"
    );
    // The environment over the file.
    let out = ruffle(&|c| {
        c.arg("--config").arg(&path);
        c.env("FLASHGATE_PROXY_TARGET", "self,env.example:9001");
        c.env("FLASHGATE_LISTEN", "127.0.0.1:8124");
    });
    assert!(
        out.contains("env.example") && !out.contains("file.example"),
        "{out}"
    );
    assert!(out.contains("port: 8124"), "{out}");
    // The command line over both.
    let out = ruffle(&|c| {
        c.arg("--config")
            .arg(&path)
            .args(["--listen", "127.0.0.1:8125"]);
        c.env("FLASHGATE_LISTEN", "127.0.0.1:8124");
    });
    assert!(
        out.contains("port: 8125") && out.contains("file.example"),
        "{out}"
    );
}

#[test]
fn an_unknown_key_is_named_with_its_file_line_and_column() {
    for (text, at, key) in [
        (
            "listen = \"127.0.0.1:0\"\n\nidle_timout = \"1s\"\n",
            "3:1",
            "idle_timout",
        ),
        (
            "[[route]]\npath = \"/a\"\nbackend = \"echo\"\n  codes = 3000\n",
            "4:3",
            "codes",
        ),
        (
            "[[route]]\npath = \"/a\"\nbackend = \"echo\"\n[route.sockjs]\nheartbaet = \"1s\"\n",
            "5:1",
            "heartbaet",
        ),
    ] {
        let (path, error) = error_of(text);
        assert!(
            error.starts_with(&format!("{path}:{at}: ")),
            "{at}: {error}"
        );
        assert!(error.contains(&format!("unknown key `{key}`")), "{error}");
    }
}

#[test]
fn a_bad_value_is_reported_where_it_is() {
    let route = |path: &str, backend: &str, rest: &str| {
        format!("[[route]]\npath = \"{path}\"\nbackend = \"{backend}\"\n{rest}")
    };
    let long_reason = format!("reason = \"{}\"\n", "x".repeat(124));
    let echo_twice = format!("{}{}", route("/a", "echo", ""), route("/a", "echo", ""));
    for (text, at, needle) in [
        (
            "idle_timeout = \"soon\"\n".to_string(),
            "1:16",
            "idle_timeout: \"soon\" is not a duration",
        ),
        ("\n  drain_timeout = 5\n".to_string(), "2:19", "string"),
        (route("/chat/", "echo", ""), "2:8", "without a trailing /"),
        (
            route("/ruffle", "echo", ""),
            "2:8",
            "would hide /ruffle/ruffle.js",
        ),
        (route("chat", "echo", ""), "2:8", "must start with /"),
        (echo_twice, "5:8", "/a is routed twice"),
        (
            route("/a", "teleport", ""),
            "3:11",
            "unknown backend \"teleport\"",
        ),
        (
            route("/a", "close", "code = 1005\n"),
            "4:8",
            "close code 1005",
        ),
        (route("/a", "close", "code = 70000\n"), "4:8", "u16"),
        (route("/a", "close", &long_reason), "4:10", "124 bytes"),
        (
            route("/a", "echo", "code = 3000\n"),
            "4:8",
            "only a close backend",
        ),
        (
            route("/a", "proxy", "[route.sockjs]\nenabled = true\n"),
            "5:11",
            "SockJS carries text",
        ),
        (
            route("/a", "echo", "[route.sockjs]\nheartbeat = \"0s\"\n"),
            "5:13",
            "more than 0s",
        ),
        (
            route("/a", "echo", "[route.sockjs]\nresponse_limit = 0\n"),
            "5:18",
            "at least 1",
        ),
        (
            "max_message_size = 100\n".to_string(),
            "1:20",
            "max_message_size must be at least 125 bytes",
        ),
        ("send_backlog = 10\n".to_string(), "1:16", "at least 1024"),
        ("listen_backlog = -1\n".to_string(), "1:18", "u32"),
        (
            "listen = \"nowhere\"\n".to_string(),
            "1:10",
            "listen: \"nowhere\" is not an address",
        ),
        (
            "policy_listen = \"on\"\n".to_string(),
            "1:17",
            "policy_listen",
        ),
        ("serve_hidden = \"yes\"\n".to_string(), "1:16", "bool"),
        (
            "allow_origin = [\"ftp://x\"]\n".to_string(),
            "1:16",
            "http or https",
        ),
        (
            "proxy_target = [\"self\", \"no-port\"]\n".to_string(),
            "1:25",
            "\"no-port\" is not HOST:PORT",
        ),
        (
            "policy_file = \"/no/such/policy.xml\"\n".to_string(),
            "1:15",
            "policy_file /no/such/policy.xml",
        ),
        (
            "[[route]]\npath = \"/a\"\n".to_string(),
            "1:1",
            "missing key `backend`",
        ),
        ("listen = \"127.0.0.1:0\n".to_string(), "1:", "string"),
    ] {
        let (path, error) = error_of(&text);
        assert!(
            error.starts_with(&format!("{path}:{at}")),
            "{text:?}: expected at {at}: {error}"
        );
        assert!(error.contains(needle), "{text:?}: {error}");
    }
}

#[test]
fn an_upstream_table_takes_only_what_its_server_can_use() {
    let route = |backend: &str, table: &str| {
        format!("[[route]]\npath = \"/up\"\nbackend = \"{backend}\"\n[route.upstream]\n{table}\n")
    };
    for (backend, table, why) in [
        (
            "echo",
            "cookies = true",
            "3:11: upstream: only an upstream backend",
        ),
        (
            "tcp://h:1",
            "cookies = true",
            "5:11: upstream.cookies: only a WebSocket upstream",
        ),
        (
            "tcp://h:1",
            "forwarded = false",
            "upstream.forwarded: only a WebSocket upstream",
        ),
        (
            "ws://h/",
            "ca_file = \"x.pem\"",
            "upstream.ca_file: only a wss:// upstream",
        ),
        (
            "wss://h/",
            "ca_file = \"/nowhere/ca.pem\"",
            "upstream.ca_file: cannot read /nowhere/ca.pem",
        ),
        (
            "ws://h/",
            "proxy_protocol = \"v3\"",
            "upstream.proxy_protocol: PROXY protocol \"v3\" is not v1 or v2",
        ),
        (
            "ws://h/",
            "connect_timeout = \"0s\"",
            "upstream.connect_timeout must be more than 0s",
        ),
        (
            "ws://h/",
            "max_message_size = 1",
            "upstream.max_message_size",
        ),
        ("ws://h/", "tls = true", "unknown key `tls`"),
        (
            "ws://h/a b",
            "",
            "backend: upstream \"ws://h/a b\": the path may not hold spaces",
        ),
    ] {
        let (path, error) = error_of(&route(backend, table));
        assert!(error.starts_with(&path), "{error}");
        assert!(error.contains(why), "{backend} {table}: {error}");
    }
    let (_dir, _, config) = load_file(
        &route("tcp+xmlsocket://h:9", "proxy_protocol = \"v1\""),
        &[],
    );
    let config = config.unwrap();
    let BackendSpec::Upstream(up) = &config.route("/up").unwrap().backend else {
        panic!("an upstream");
    };
    assert_eq!(up.url(), "tcp+xmlsocket://h:9");
    assert!(up.options.proxy_header.is_some());
}

#[test]
fn check_validates_a_file_without_serving() {
    let dir = complete_fixtures();
    let good = write(
        dir.path(),
        "good.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\npolicy_listen = \"off\"\nweb_dir = \"{}\"\nassets_dir = \"{}\"\n\
             [[route]]\npath = \"/maint\"\nbackend = \"close\"\n",
            dir.path().join("web").display(),
            dir.path().join("assets").display()
        ),
    );
    let (code, stdout, stderr) = output(flashgate().arg("--check").arg("--config").arg(&good));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");

    let bad = write(
        dir.path(),
        "bad.toml",
        "listen = \"127.0.0.1:0\"\nbogus = 1\n",
    );
    for extra in [&["--check"][..], &["--policy-listen", "off"][..]] {
        let (code, stdout, stderr) = output(flashgate().args(extra).arg("--config").arg(&bad));
        assert_eq!(code, 1, "{extra:?}: {stdout}{stderr}");
        let all = stdout + &stderr;
        assert!(
            all.contains(&format!("{}:2:1: unknown key `bogus`", bad.display())),
            "{all}"
        );
        assert!(
            !all.contains("listening") && !all.contains("configuration OK"),
            "{all}"
        );
    }

    let missing = dir.path().join("missing.toml");
    let (code, _, stderr) = output(flashgate().arg("--check").arg("--config").arg(&missing));
    assert_eq!(code, 1);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

/// `tests/sockjs/protocol-suite.toml`, as the suite's runner uses it.
const SUITE: &[&str] = &[
    "--config",
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sockjs/protocol-suite.toml"
    ),
    "--listen",
    "127.0.0.1:0",
    "--policy-listen",
    "off",
];

#[test]
fn the_protocol_suite_file_has_its_four_services() {
    let config = load(SUITE).unwrap();
    assert_eq!(config.allow_origin.as_ref().unwrap().to_string(), "*");
    let echo = SockjsOptions {
        response_limit: 4096,
        ..SockjsOptions::for_backend(&BackendSpec::Echo)
    };
    let expected = [
        ("/echo", BackendSpec::Echo, echo.clone()),
        (
            "/disabled_websocket_echo",
            BackendSpec::Echo,
            SockjsOptions {
                websocket: false,
                ..echo.clone()
            },
        ),
        (
            "/cookie_needed_echo",
            BackendSpec::Echo,
            SockjsOptions {
                cookie: true,
                ..echo.clone()
            },
        ),
        (
            "/close",
            BackendSpec::Close {
                code: 3000,
                reason: "Go away!".into(),
            },
            echo.clone(),
        ),
    ];
    assert_eq!(config.routes.len(), expected.len(), "{:?}", config.routes);
    for (path, backend, sockjs) in expected {
        let route = config.route(path).unwrap_or_else(|| panic!("no {path}"));
        assert_eq!(
            (&route.backend, &route.sockjs),
            (&backend, &sockjs),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_protocol_suite_file_serves_what_the_suite_asks() {
    let gw = TestGateway::start(SUITE).await;
    // The suite's Origin is `null` or `test`: allowed.
    let mut ws = gw.ws_with("/echo/websocket", &[("Origin", "null")]).await;
    send_text(&mut ws, "suite").await;
    assert_eq!(next_message(&mut ws).await, Message::text("suite"));
    let off = get(gw.main, "/disabled_websocket_echo/websocket").await;
    assert_eq!(off.status, 404);
    let info = get(gw.main, "/cookie_needed_echo/info").await;
    assert!(
        info.text().contains("\"cookie_needed\":true"),
        "{}",
        info.text()
    );
    let mut close = gw.ws_with("/close/websocket", &[("Origin", "test")]).await;
    let (frame, _) = close_frame(&mut close).await;
    let frame = frame.expect("a close frame");
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (3000, "Go away!")
    );
}
