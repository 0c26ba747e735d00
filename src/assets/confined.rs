//! The filesystem as one served directory sees it ([`Confined`]): what a request path alone
//! can make fail is "not found", and a path that resolves outside the directory is refused
//! unless links may lead anywhere.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tower_http::services::fs::{Backend, TokioBackend, TokioFile};

use super::Exposure;

/// True for the errors that a request path alone can cause: no such file, a file where a
/// directory was expected (or the other way round), a name too long or that the filesystem
/// cannot hold, a loop of symbolic links, no permission. They mean "not here", a 404.
pub(super) fn is_absent(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        NotFound | NotADirectory | IsADirectory | InvalidFilename | InvalidInput | PermissionDenied
    ) || matches!(
        error.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::ENOTDIR
                | libc::EISDIR
                | libc::ENAMETOOLONG
                | libc::ELOOP
                | libc::EILSEQ
                | libc::EINVAL
                | libc::EACCES
        )
    )
}

/// The filesystem as one served directory sees it: what a path alone can make fail is "not
/// found" (so the next directory is tried, and the last one answers 404), and unless
/// [`Exposure::follow_symlinks`], a path that resolves outside the directory is not found
/// either, and what is opened is the resolved path that was checked.
#[derive(Clone)]
pub(super) struct Confined {
    /// The served directory, as given.
    root: Arc<Path>,
    /// Links out of `root` are followed.
    follow_symlinks: bool,
}

/// A `Confined` answer.
type Pending<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl Confined {
    pub(super) fn new(root: PathBuf, exposure: Exposure) -> Confined {
        Confined {
            root: root.into(),
            follow_symlinks: exposure.follow_symlinks,
        }
    }

    /// The path to use for `path`: itself when links may lead anywhere, otherwise its
    /// resolved form, which must lie inside the served directory.
    async fn admit(&self, path: PathBuf) -> io::Result<PathBuf> {
        if self.follow_symlinks {
            return Ok(path);
        }
        let root = self.root.clone();
        let resolved = tokio::task::spawn_blocking(move || {
            let root = root.canonicalize()?;
            let real = path.canonicalize()?;
            Ok::<_, io::Error>(real.starts_with(&root).then_some(real))
        })
        .await
        .map_err(io::Error::other)?;
        match resolved {
            Ok(Some(real)) => Ok(real),
            Ok(None) => Err(io::ErrorKind::NotFound.into()),
            Err(error) => Err(error),
        }
    }
}

/// A path error becomes "not found", so that `ServeDir` tries its fallback.
fn absent_as_not_found(error: io::Error) -> io::Error {
    match is_absent(&error) {
        true => io::ErrorKind::NotFound.into(),
        false => error,
    }
}

impl Backend for Confined {
    type File = TokioFile;
    type Metadata = std::fs::Metadata;
    type OpenFuture = Pending<TokioFile>;
    type MetadataFuture = Pending<std::fs::Metadata>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let this = self.clone();
        Box::pin(async move {
            let path = this.admit(path).await.map_err(absent_as_not_found)?;
            TokioBackend.open(path).await.map_err(absent_as_not_found)
        })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let this = self.clone();
        Box::pin(async move {
            let path = this.admit(path).await.map_err(absent_as_not_found)?;
            TokioBackend
                .metadata(path)
                .await
                .map_err(absent_as_not_found)
        })
    }
}
