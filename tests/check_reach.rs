//! `flashgate --check` lists what the gateway reaches (each route, the servers it connects
//! to, the Flash policy) and fails when they contradict each other: a route that relays to
//! the gateway itself, a policy file that grants Flash nothing on the main port, or one that
//! disagrees with the origin allow-list.

mod common;

use std::process::Command;

use common::*;

/// `flashgate --check` with complete fixtures, on a port of its own, and `args`: exit
/// status, stdout and stderr.
fn check(args: &[&str]) -> (i32, String, String) {
    let dir = complete_fixtures();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let policy = dir.path().join("policy.xml");
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{port}", &port.to_string())
                .replace("{policy}", policy.to_str().unwrap())
        })
        .collect();
    if let Some(xml) = args.iter().find_map(|a| a.strip_prefix("xml:")) {
        std::fs::write(&policy, xml).unwrap();
    }
    let mut command: Command = binary(env!("CARGO_BIN_EXE_flashgate"));
    command
        .args(["--check", "--policy-listen", "off", "--listen", &listen])
        .arg("--web-dir")
        .arg(dir.path().join("web"))
        .arg("--assets-dir")
        .arg(dir.path().join("assets"))
        .args(args.iter().filter(|a| !a.starts_with("xml:")));
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_lists_each_route_and_the_servers_it_connects_to() {
    let (code, stdout, stderr) = check(&[
        "--route",
        "/chat=broadcast",
        "--route",
        "/game=ws://game.example/live?v=2",
        "--route",
        "/legacy=tcp+xmlsocket://10.0.0.9:9000?proxy-protocol=v1",
        "--route",
        "/socket=proxy",
        "--proxy-target",
        "self,10.0.0.9:9000",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let line = |start: &str| {
        let found = stdout.lines().find(|l| l.trim_start().starts_with(start));
        found
            .unwrap_or_else(|| panic!("no line for {start} in\n{stdout}"))
            .to_string()
    };
    assert!(line("/chat").contains("broadcast"));
    assert!(line("/game").contains("relay to ws://game.example:80/live?v=2"));
    assert!(line("/legacy").contains("tcp+xmlsocket://10.0.0.9:9000 (PROXY v1)"));
    assert!(line("/socket").contains("socket proxy"));
    // One server reached two ways is listed once, with both.
    let legacy = line("10.0.0.9:9000");
    assert!(
        legacy.contains("route /legacy") && legacy.contains("socket proxy /socket"),
        "{legacy}"
    );
    assert!(line("game.example:80").contains("route /game"));
    assert!(line("127.0.0.1:").contains("(the gateway itself)"));
    assert!(
        stdout.contains("Flash socket policy (made from --allow-origin)"),
        "{stdout}"
    );
    assert!(stdout.ends_with("configuration OK\n"), "{stdout}");
}

#[test]
fn check_fails_on_a_route_that_relays_to_the_gateway_itself() {
    let (code, stdout, stderr) = check(&["--route", "/loop=ws://127.0.0.1:{port}/echo"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("route /loop relays to 127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("the gateway itself"), "{stderr}");
}

#[test]
fn check_fails_when_the_policy_file_and_the_allow_list_disagree() {
    let policy = |domain: &str, ports: &str| {
        format!(
            "xml:<?xml version=\"1.0\"?><cross-domain-policy>\
             <allow-access-from domain=\"{domain}\" to-ports=\"{ports}\"/></cross-domain-policy>"
        )
    };
    let origin = ["--allow-origin", "http://kiosk.example"];
    let file = ["--policy-file", "{policy}"];

    // Agreeing: passes, and the listing says where the policy comes from.
    let agreeing = policy("kiosk.example", "{port}");
    let (code, stdout, stderr) = check(&[&agreeing, file[0], file[1], origin[0], origin[1]]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Flash socket policy (from "), "{stdout}");

    // No grant of the main port.
    let elsewhere = policy("kiosk.example", "1");
    let (code, _, stderr) = check(&[&elsewhere, file[0], file[1], origin[0], origin[1]]);
    assert_eq!(code, 1);
    assert!(stderr.contains("grants no page the main port"), "{stderr}");

    // A page the allow-list admits gets no socket, and one it refuses does.
    let other = policy("other.example", "{port}");
    let (code, _, stderr) = check(&[&other, file[0], file[1], origin[0], origin[1]]);
    assert_eq!(code, 1);
    assert!(
        stderr
            .contains("admits pages from kiosk.example, but the policy file grants them no socket"),
        "{stderr}"
    );
    assert!(
        stderr.contains("domain=\"other.example\", whose pages --allow-origin refuses"),
        "{stderr}"
    );
}
