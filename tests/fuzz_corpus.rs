//! The fuzz targets' seed corpus (`fuzz/corpus/<target>/`) and the inputs of past findings
//! (`fuzz/regressions/<target>/`), replayed through the same entry points on stable Rust.

use std::path::{Path, PathBuf};

/// A fuzz target's entry point.
type Target = fn(&[u8]);

/// Every target, by its directory name, with its entry point.
const TARGETS: [(&str, Target); 12] = [
    ("sniff", flashgate::fuzzing::sniff),
    ("policy_file", flashgate::fuzzing::policy_file),
    ("handshake", flashgate::fuzzing::handshake),
    ("inbound", flashgate::fuzzing::inbound),
    ("outbound", flashgate::fuzzing::outbound),
    ("boundary", flashgate::fuzzing::boundary),
    ("sockjs_path", flashgate::fuzzing::sockjs_path),
    ("sockjs_frames", flashgate::fuzzing::sockjs_frames),
    ("hixie76_handshake", flashgate::fuzzing::hixie76_handshake),
    ("hixie76_frames", flashgate::fuzzing::hixie76_frames),
    ("upstream_answer", flashgate::fuzzing::upstream_answer),
    ("upstream_request", flashgate::fuzzing::upstream_request),
];

/// The files in `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every file of `kind/<name>/` through `name`'s entry point; returns how many ran.
fn replay(kind: &str, name: &str, target: Target) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(name);
    let files = files(&dir);
    for file in &files {
        let data = std::fs::read(file).expect("a readable input");
        if std::panic::catch_unwind(|| target(&data)).is_err() {
            panic!("{} fails its target", file.display());
        }
    }
    files.len()
}

fn corpus(name: &str) {
    let (_, target) = TARGETS.iter().find(|(n, _)| *n == name).expect("a target");
    assert!(
        replay("corpus", name, *target) > 0,
        "fuzz/corpus/{name}/ is empty or missing"
    );
    replay("regressions", name, *target);
}

#[test]
fn sniff_corpus() {
    corpus("sniff");
}

#[test]
fn policy_file_corpus() {
    corpus("policy_file");
}

#[test]
fn handshake_corpus() {
    corpus("handshake");
}

#[test]
fn inbound_corpus() {
    corpus("inbound");
}

#[test]
fn outbound_corpus() {
    corpus("outbound");
}

#[test]
fn boundary_corpus() {
    corpus("boundary");
}

#[test]
fn hixie76_handshake_corpus() {
    corpus("hixie76_handshake");
}

#[test]
fn hixie76_frames_corpus() {
    corpus("hixie76_frames");
}

#[test]
fn upstream_answer_corpus() {
    corpus("upstream_answer");
}

#[test]
fn upstream_request_corpus() {
    corpus("upstream_request");
}

/// Each corpus and regression directory belongs to a target, and each target has a fuzz
/// target file: a renamed or added one cannot be skipped silently.
#[test]
fn every_directory_has_a_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|(n, _)| *n == name),
                "fuzz/{kind}/{name} has no target in tests/fuzz_corpus.rs"
            );
        }
    }
    for (name, _) in TARGETS {
        let file = fuzz.join("fuzz_targets").join(format!("{name}.rs"));
        assert!(file.is_file(), "no fuzz target {}", file.display());
    }
}
