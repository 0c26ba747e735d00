//! `/assets.json`: every asset that is served, with its size and sha256 (computed once per
//! size and modification time).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::{Exposure, lock};

/// A file's sha256 and what it was computed for.
pub(super) struct Digested {
    /// Size when hashed.
    len: u64,
    /// Modification time when hashed.
    modified: Option<SystemTime>,
    /// Hex sha256.
    sha256: String,
}

/// One entry of the listing.
#[derive(serde::Serialize)]
pub(super) struct Listed {
    /// Path under `assets/` (vendor files without the `vendor/`).
    name: String,
    /// Where the gateway serves it.
    url: String,
    /// Bytes.
    size: u64,
    /// Hex sha256 of the content.
    sha256: String,
}

/// Every file under `assets` that is served, by its URL path. What `exposure` keeps from
/// being served is not listed, and neither is what cannot be read.
pub(super) fn list(
    assets: &Path,
    exposure: Exposure,
    digests: &Mutex<HashMap<PathBuf, Digested>>,
) -> io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    let vendor = assets.join("vendor");
    let roots = (assets.canonicalize().ok(), vendor.canonicalize().ok());
    // Directories already walked, resolved: a link back up is not walked again.
    let mut walked: std::collections::HashSet<_> = roots.0.iter().cloned().collect();
    let mut dirs = vec![assets.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let in_vendor = path.starts_with(&vendor);
            let base = if in_vendor { &vendor } else { assets };
            let Ok(rel) = path.strip_prefix(base) else {
                continue;
            };
            let hidden = rel
                .components()
                .any(|c| c.as_os_str().as_encoded_bytes().first() == Some(&b'.'));
            if hidden && !exposure.hidden {
                continue;
            }
            let Ok(real) = path.canonicalize() else {
                continue; // a dangling link, a loop
            };
            let root = if in_vendor { &roots.1 } else { &roots.0 };
            let inside = root.as_ref().is_some_and(|root| real.starts_with(root));
            if !inside && !exposure.follow_symlinks {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&real) else {
                continue;
            };
            if meta.is_dir() {
                if walked.insert(real) {
                    dirs.push(path);
                }
                continue;
            }
            let name = rel.to_string_lossy().replace('\\', "/");
            // fetch-vendor's compressed copies are the same files, not more of them.
            if in_vendor && (name.ends_with(".gz") || name.ends_with(".br")) {
                continue;
            }
            let (len, modified) = (meta.len(), meta.modified().ok());
            let known = lock(digests)
                .get(&path)
                .filter(|d| d.len == len && d.modified == modified)
                .map(|d| d.sha256.clone());
            let sha256 = match known {
                Some(sha256) => sha256,
                None => {
                    let Ok(sum) = sha256_of(&real) else {
                        continue;
                    };
                    let sha256 = hex::encode(sum);
                    let digested = Digested {
                        len,
                        modified,
                        sha256: sha256.clone(),
                    };
                    lock(digests).insert(path.clone(), digested);
                    sha256
                }
            };
            out.push(Listed {
                url: format!("/{name}"),
                name,
                size: len,
                sha256,
            });
        }
    }
    out.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(out)
}

/// The sha256 of a file, read in blocks.
fn sha256_of(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut block)? {
            0 => return Ok(hasher.finalize().to_vec()),
            n => hasher.update(&block[..n]),
        }
    }
}
