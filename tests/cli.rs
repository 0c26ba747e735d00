//! The real `flashgate` binary: start-up lines, serving, SIGTERM, `--check`, bad
//! configurations, environment variables and `--help`.

mod common;

use std::process::Command;

use common::running::Running;
use common::*;

/// The binary, without the test's own `FLASHGATE_*` variables.
fn flashgate() -> Command {
    binary(env!("CARGO_BIN_EXE_flashgate"))
}

fn with_dirs(command: &mut Command, dir: &std::path::Path) {
    command
        .arg("--web-dir")
        .arg(dir.join("web"))
        .arg("--assets-dir")
        .arg(dir.join("assets"));
}

#[tokio::test]
async fn binary_logs_its_listeners_serves_and_stops_on_sigterm() {
    let dir = fixtures();
    let mut command = flashgate();
    command.args(["--listen", "127.0.0.1:0", "--policy-listen", "127.0.0.1:0"]);
    with_dirs(&mut command, dir.path());
    let mut gateway = Running::spawn(command);
    let main = gateway.listening("main");
    let policy = gateway.listening("policy");
    assert_ne!(main.port(), 0);
    assert_ne!(policy.port(), 0);

    let reply = exchange(policy, &[POLICY_REQUEST], false).await;
    assert!(String::from_utf8_lossy(&reply).contains(&format!("to-ports=\"{}\"", main.port())));
    let page = get(main, "/index.html").await;
    assert_eq!(page.status, 200);
    // A missing vendor file is reported once, with how to fetch it.
    gateway.line_with("scripts/fetch-vendor");

    let status = gateway.terminate();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    gateway.line_with("stopped");
}

#[test]
fn sigterm_as_soon_as_the_listening_line_appears_is_a_graceful_stop() {
    // A supervisor may stop the gateway the moment it reports it is listening; the signal
    // must already be handled then. The window is short, so try several times.
    let dir = fixtures();
    for attempt in 0..25 {
        let mut command = flashgate();
        command.args(["--listen", "127.0.0.1:0", "--policy-listen", "off"]);
        with_dirs(&mut command, dir.path());
        let mut gateway = Running::spawn(command);
        gateway.line_with("listener=main");
        let status = gateway.terminate();
        assert_eq!(status.code(), Some(0), "attempt {attempt}: {status:?}");
        gateway.line_with("stopped");
    }
}

/// The binary on port 0 with `command` set up by `setup`, and a WebSocket client on `/echo`.
async fn binary_with_echo_client(
    setup: impl FnOnce(&mut Command),
) -> (Running, Ws, tempfile::TempDir) {
    let mut command = flashgate();
    setup(&mut command);
    started_with_echo_client(command).await
}

/// `command` (the binary, or what execs it) on port 0, and a WebSocket client on `/echo`.
async fn started_with_echo_client(mut command: Command) -> (Running, Ws, tempfile::TempDir) {
    let dir = fixtures();
    command.args(["--listen", "127.0.0.1:0", "--policy-listen", "off"]);
    with_dirs(&mut command, dir.path());
    let mut gateway = Running::spawn(command);
    let main = gateway.listening("main");
    let (ws, _) = within(
        "websocket handshake",
        tokio_tungstenite::connect_async(format!("ws://{main}/echo")),
    )
    .await
    .unwrap();
    (gateway, ws, dir)
}

/// The names of process `pid`'s threads.
fn threads(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

#[tokio::test]
async fn on_one_cpu_the_binary_serves_from_one_thread_and_on_more_from_a_worker_each() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    for pinned in [true, false] {
        let command = match pinned {
            // taskset execs the binary: the same process, allowed one CPU.
            true => {
                let mut taskset = binary("taskset");
                taskset.args(["-c", "0", env!("CARGO_BIN_EXE_flashgate")]);
                taskset
            }
            false => flashgate(),
        };
        let (mut gateway, mut ws, _dir) = started_with_echo_client(command).await;
        send_text(&mut ws, "which thread?").await;
        assert_eq!(
            next_message(&mut ws).await,
            tokio_tungstenite::tungstenite::Message::text("which thread?")
        );
        let names = threads(gateway.child.id());
        // tokio names its workers (and blocking threads) "tokio-rt-worker".
        let workers = names.iter().filter(|n| *n == "tokio-rt-worker").count();
        match pinned || cpus == 1 {
            true => assert_eq!(names.len(), 1, "one thread serves it all: {names:?}"),
            false => assert!(workers >= cpus, "{cpus} CPUs, {workers} workers: {names:?}"),
        }
        gateway.terminate();
    }
}

#[tokio::test]
async fn websocket_clients_get_1001_when_the_binary_is_stopped() {
    let (mut gateway, mut ws, _dir) = binary_with_echo_client(|_| {}).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = gateway.terminate();
        (status, gateway)
    });
    let (frame, _) = close_frame(&mut ws).await;
    assert_eq!(
        frame.unwrap().code,
        tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away
    );
    let (status, _gateway) = within("the binary to exit", status).await.unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_silent_echo_client_sleeps_and_wakes_when_it_speaks() {
    let (mut gateway, mut ws, _dir) = binary_with_echo_client(|command| {
        command.env("RUST_LOG", "info,flashgate::ws::hibernate=debug");
        command.args(["--hibernate-after", "50ms"]);
    })
    .await;
    let asleep = gateway.line_with("websocket asleep");
    assert!(
        !gateway.seen.iter().any(|l| l.contains("websocket awake")),
        "{asleep}"
    );
    send_text(&mut ws, "good morning").await;
    assert_eq!(
        next_message(&mut ws).await,
        tokio_tungstenite::tungstenite::Message::text("good morning")
    );
    gateway.line_with("websocket awake");
}

fn output(command: &mut Command) -> (i32, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_passes_on_a_complete_configuration() {
    let dir = complete_fixtures();
    let mut command = flashgate();
    command.args([
        "--check",
        "--policy-listen",
        "off",
        "--listen",
        "127.0.0.1:0",
    ]);
    with_dirs(&mut command, dir.path());
    let (code, stdout, stderr) = output(&mut command);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn check_tries_the_listeners_and_reports_a_taken_port() {
    let dir = complete_fixtures();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut command = flashgate();
    command.args([
        "--check",
        "--listen",
        "127.0.0.1:0",
        "--policy-listen",
        &addr,
    ]);
    with_dirs(&mut command, dir.path());
    let (code, stdout, stderr) = output(&mut command);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let all = stdout + &stderr;
    assert!(
        all.contains(&format!("cannot listen on {addr} (--policy-listen)"))
            && all.contains("in use"),
        "{all}"
    );
    // Released: the port is free again once the check is done, and was never served.
    drop(taken);
    let mut command = flashgate();
    command.args(["--check", "--listen", &addr, "--policy-listen", "off"]);
    with_dirs(&mut command, dir.path());
    let (code, stdout, stderr) = output(&mut command);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn check_fails_on_missing_vendor_files_saying_how_to_fetch() {
    let dir = fixtures();
    let mut command = flashgate();
    command.args(["--check", "--policy-listen", "off"]);
    with_dirs(&mut command, dir.path());
    let (code, stdout, stderr) = output(&mut command);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let all = stdout + &stderr;
    assert!(
        all.contains("web_socket.min.js") && all.contains("scripts/fetch-vendor"),
        "{all}"
    );
}

#[test]
fn malformed_policy_file_stops_start_up_naming_the_line() {
    let dir = fixtures();
    let file = dir.path().join("broken-policy.xml");
    for (policy, problem) in [
        (
            "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n<allow-access-from domain=\"x\" to-ports=\"80\"\n</cross-domain-policy>\n",
            "",
        ),
        (
            "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  <allow-access-from domain=\"x\" to-ports=\"80-abc\"/>\n</cross-domain-policy>\n",
            "abc",
        ),
    ] {
        std::fs::write(&file, policy).unwrap();
        for extra in [&["--check"][..], &["--listen", "127.0.0.1:0"][..]] {
            let mut command = flashgate();
            command
                .args(extra)
                .args(["--policy-listen", "off"])
                .arg("--policy-file")
                .arg(&file);
            with_dirs(&mut command, dir.path());
            let (code, stdout, stderr) = output(&mut command);
            assert_eq!(code, 1, "{extra:?}: {stdout}{stderr}");
            let all = stdout + &stderr;
            assert!(all.contains("broken-policy.xml: line 3: "), "{all}");
            assert!(all.contains(problem), "{all}");
            assert!(!all.contains("listening"), "started anyway: {all}");
        }
    }
}

#[test]
fn bad_route_is_refused_with_a_clear_message() {
    let dir = fixtures();
    let mut command = flashgate();
    command.args(["--check", "--route", "/x=teleport"]);
    with_dirs(&mut command, dir.path());
    let (code, stdout, stderr) = output(&mut command);
    assert_ne!(code, 0);
    let all = stdout + &stderr;
    assert!(all.contains("teleport"), "{all}");
}

#[tokio::test]
async fn options_come_from_environment_variables_too() {
    let dir = fixtures();
    let mut command = flashgate();
    command
        .env("FLASHGATE_LISTEN", "127.0.0.1:0")
        .env("FLASHGATE_POLICY_LISTEN", "off")
        .env("FLASHGATE_ROUTE", "/only=echo");
    with_dirs(&mut command, dir.path());
    let mut gateway = Running::spawn(command);
    let main = gateway.listening("main");
    assert!(!gateway.seen.iter().any(|l| l.contains("listener=policy")));
    let (mut ws, _) = within(
        "websocket handshake",
        tokio_tungstenite::connect_async(format!("ws://{main}/only")),
    )
    .await
    .unwrap();
    send_text(&mut ws, "via env").await;
    assert_eq!(next_message(&mut ws).await.into_text().unwrap(), "via env");
    assert_eq!(
        get(main, "/echo").await.status,
        404,
        "--route replaces the defaults"
    );
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[test]
fn help_lists_every_option_and_its_variable() {
    let (code, stdout, _) = output(flashgate().arg("--help"));
    assert_eq!(code, 0);
    for option in [
        "--listen",
        "--policy-listen",
        "--allow-origin",
        "--policy-file",
        "--route",
        "--web-dir",
        "--assets-dir",
        "--read-timeout",
        "--handshake-timeout",
        "--idle-timeout",
        "--hibernate-after",
        "--max-message-size",
        "--send-backlog",
        "--listen-backlog",
        "--max-connections",
        "--drain-timeout",
        "--proxy-target",
        "--print-ruffle-config",
        "--check",
        "FLASHGATE_LISTEN",
        "FLASHGATE_POLICY_LISTEN",
    ] {
        assert!(stdout.contains(option), "--help does not mention {option}");
    }
    // Whatever options exist now: each is in --help with its variable, and in the README.
    use clap::CommandFactory;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for arg in flashgate::args::Args::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let option = format!("--{long}");
        assert!(stdout.contains(&option), "--help does not mention {option}");
        assert!(
            readme.contains(&format!("`{option}")),
            "README's option table does not mention {option}"
        );
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(stdout.contains(&*env), "--help does not mention {env}");
        }
    }
}

#[tokio::test]
async fn policy_port_that_cannot_be_bound_is_explained_and_main_port_keeps_serving() {
    // The port is taken, so binding fails whatever the privileges of the test.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let dir = fixtures();
    let mut command = flashgate();
    command.args(["--listen", "127.0.0.1:0", "--policy-listen", &taken_addr]);
    with_dirs(&mut command, dir.path());
    let mut gateway = Running::spawn(command);
    let line = gateway.line_with("cannot serve the master policy");
    assert!(line.contains(&taken_addr), "{line}");
    assert!(
        line.contains("inline on the main port") && line.contains("3 s"),
        "{line}"
    );
    let main = gateway.listening("main");
    assert!(!gateway.seen.iter().any(|l| l.contains("listener=policy")));
    let reply = exchange(main, &[POLICY_REQUEST], false).await;
    assert!(String::from_utf8_lossy(&reply).contains("<cross-domain-policy>"));
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[test]
fn print_ruffle_config_prints_the_socket_proxy_setting() {
    let (code, stdout, stderr) = output(flashgate().args([
        "--print-ruffle-config",
        "--listen",
        "127.0.0.1:8123",
        "--proxy-target",
        "self,game.example:9000",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("config.socketProxy"), "{stdout}");
    assert!(
        stdout.contains(
            "{ host: location.hostname, port: 8123, proxyUrl: base + \"127.0.0.1:8123\" }"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "{ host: \"game.example\", port: 9000, proxyUrl: base + \"game.example:9000\" }"
        ),
        "{stdout}"
    );
}

#[test]
fn bad_proxy_target_is_refused_with_a_clear_message() {
    let (code, stdout, stderr) =
        output(flashgate().args(["--check", "--proxy-target", "no-port-here"]));
    assert_ne!(code, 0);
    let all = stdout + &stderr;
    assert!(
        all.contains("--proxy-target") && all.contains("no-port-here"),
        "{all}"
    );
}

#[tokio::test]
async fn serve_hidden_and_follow_symlinks_come_from_the_environment() {
    let dir = fixtures();
    std::fs::write(dir.path().join("web/.hidden.txt"), "dot").unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("secret.txt"),
        dir.path().join("web/out.txt"),
    )
    .unwrap();
    for (value, allowed) in [("1", true), ("true", true), ("0", false), ("false", false)] {
        let mut command = flashgate();
        command
            .args(["--listen", "127.0.0.1:0", "--policy-listen", "off"])
            .env("FLASHGATE_SERVE_HIDDEN", value)
            .env("FLASHGATE_FOLLOW_SYMLINKS", value);
        with_dirs(&mut command, dir.path());
        let mut gateway = Running::spawn(command);
        let main = gateway.listening("main");
        let expected = if allowed { 200 } else { 404 };
        for target in ["/.hidden.txt", "/out.txt"] {
            assert_eq!(
                get(main, target).await.status,
                expected,
                "{value}: {target}"
            );
        }
        assert_eq!(gateway.terminate().code(), Some(0));
    }
}
