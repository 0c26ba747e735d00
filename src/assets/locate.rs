//! Where the third-party files are: `--assets-dir` when given; else the first of the
//! places a gateway is installed with them that exists: beside the binary, the system's
//! share directory, and, for a binary in a checkout's `target/debug` or `target/release`,
//! that checkout's. Whoever cannot find them is told every place that was looked in.

use std::path::{Path, PathBuf};

/// The system location, where the package installs them.
pub const SYSTEM: &str = "/usr/share/flashgate/assets";

/// Where the assets are looked for, each with how to say it.
pub fn candidates() -> Vec<(PathBuf, &'static str)> {
    let mut places = Vec::new();
    let exe = std::env::current_exe().ok();
    let beside = exe.as_deref().and_then(Path::parent);
    if let Some(dir) = beside {
        places.push((dir.join("assets"), "beside the binary"));
    }
    places.push((PathBuf::from(SYSTEM), "the system location"));
    let target = beside.and_then(Path::parent);
    let in_target = target.filter(|t| t.file_name().is_some_and(|n| n == "target"));
    if let Some(checkout) = in_target.and_then(Path::parent) {
        places.push((checkout.join("assets"), "the checkout the binary is in"));
    }
    places
}

/// The assets directory: `given`, or the first candidate that is a directory.
pub fn assets_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    let places = candidates();
    if let Some((dir, _)) = places.iter().find(|(dir, _)| dir.join("vendor").is_dir()) {
        return Ok(dir.clone());
    }
    if let Some((dir, _)) = places.iter().find(|(dir, _)| dir.is_dir()) {
        return Ok(dir.clone());
    }
    let looked: Vec<String> = places
        .iter()
        .map(|(dir, what)| format!("{} ({what})", dir.display()))
        .collect();
    Err(format!(
        "no assets directory: looked in {}; pass --assets-dir with the directory that holds vendor/ \
         (scripts/fetch-vendor fills it)",
        looked.join(", ")
    ))
}
