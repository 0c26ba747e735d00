//! The crate's layers point one way: read from the source itself, every file's references to
//! other modules (`use crate::…`, `super::…`, paths in code) make a graph, which must have no
//! cycle, and in which transports and backends never reach each other.
//!
//! A module's own tests (`#[cfg(test)]` blocks and the files of modules declared under
//! `#[cfg(test)]`) are left out: they may look at anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`ws::asleep`, `""` for the crate root) to the modules it refers to.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every module with a file of its own, by module path, and its source without its tests
/// and comments.
fn modules() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut test_only = BTreeSet::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            if parts.last().is_some_and(|p| p == "tests") || relative == Path::new("main") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            // Children declared as `#[cfg(test)] mod name;` are tests.
            for after in source.split("#[cfg(test)]").skip(1) {
                let decl = after.trim_start();
                if let Some(child) = decl.strip_prefix("mod ").and_then(|d| d.split_once(';')) {
                    let mut child_path = parts.clone();
                    child_path.push(child.0.trim().to_string());
                    test_only.insert(child_path.join("::"));
                }
            }
            let code = source.split("#[cfg(test)]").next().unwrap();
            let code: String = code
                .lines()
                .map(|line| line.split("//").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(parts.join("::"), code);
        }
    }
    out.retain(|name, _| {
        !test_only
            .iter()
            .any(|t| name == t || name.starts_with(&format!("{t}::")))
    });
    out
}

/// The paths `code` names after `prefix` (`crate::`, `super::`), braces of a `use` unfolded
/// one level: `crate::{a, b::c}` gives `a` and `b::c`.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let is_path = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue; // `super::` inside `super::super::`, or a longer name
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Split at the group's own commas, up to its own closing brace.
            let (mut depth, mut start) = (0, 0);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(group[start..i].trim());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(group[start..i].trim());
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            out.retain(|p| !p.is_empty());
        } else {
            let end = rest.find(|c| !is_path(c)).unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':'));
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module with a file.
fn resolve(path: &str, modules: &BTreeMap<String, String>) -> String {
    let parts: Vec<&str> = path.split("::").take_while(|p| !p.contains('{')).collect();
    (0..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains_key(m))
        .unwrap_or_default()
}

fn graph() -> Graph {
    let modules = modules();
    let mut graph = Graph::new();
    for (name, code) in &modules {
        let mut refers = BTreeSet::new();
        for path in paths_after(code, "crate::") {
            refers.insert(resolve(path, &modules));
        }
        // `super::` from `a::b` is `a`; from a `mod.rs` it is the same as its name's parent.
        let parent = name.rsplit_once("::").map_or("", |(p, _)| p);
        for path in paths_after(code, "super::") {
            let full = match parent {
                "" => path.to_string(),
                p => format!("{p}::{path}"),
            };
            refers.insert(resolve(&full, &modules));
        }
        refers.remove(name);
        graph.insert(name.clone(), refers);
    }
    graph
}

/// A cycle through `graph`, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    assert!(graph.len() > 20, "the source was not found: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        let shown: Vec<&str> = cycle
            .iter()
            .map(|m| if m.is_empty() { "crate" } else { m })
            .collect();
        panic!("import cycle: {}", shown.join(" → "));
    }
}

#[test]
fn transports_and_backends_never_reach_each_other_or_the_server() {
    let graph = graph();
    let transports = ["ws", "sockjs"];
    let server = ["server", "http", "gateway", ""];
    for (module, refers) in &graph {
        let forbidden: Vec<&str> = match top(module) {
            // The traffic counting sits between them, and neither knows it.
            "backend" => transports
                .iter()
                .chain(&server)
                .chain(&["tally"])
                .copied()
                .collect(),
            t if transports.contains(&t) => ["backend"].iter().chain(&server).copied().collect(),
            "session" | "tally" => ["backend"]
                .iter()
                .chain(&transports)
                .chain(&server)
                .copied()
                .collect(),
            _ => continue,
        };
        for to in refers {
            assert!(
                !forbidden.contains(&top(to)),
                "{module} refers to {}",
                if to.is_empty() { "the crate root" } else { to }
            );
        }
    }
}

#[test]
fn the_check_sees_a_cycle_and_a_crossing() {
    // The check itself: a graph with a cycle is caught, one without is not.
    let mut graph = Graph::new();
    graph.insert("a".into(), ["b".to_string()].into());
    graph.insert("b".into(), ["c".to_string()].into());
    graph.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    graph.get_mut("c").unwrap().insert("a".into());
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    // And the parser finds what a file refers to.
    let code = "use crate::{session::{Payload}, shutdown::Signal};\nuse super::codec::opcode;\nlet x = crate::body::text(s);";
    assert_eq!(
        paths_after(code, "crate::"),
        ["session::{Payload}", "shutdown::Signal", "body::text"]
    );
    assert_eq!(paths_after(code, "super::"), ["codec::opcode"]);
}
