//! Where keepalived.conf and what it includes are read from: the disk
//! ([`Disk`]), or a set of files in memory ([`MemFiles`]) for tests and the
//! fuzz target, so includes, patterns and limits are exercised without a
//! file system.
//!
//! Owns: reading a file under the size limit and expanding an include
//! pattern. Must not touch: the grammar (the parent module splits words and
//! blocks, and calls back here for each include).

use crate::Error;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The largest keepalived.conf (or included file) read.
pub const MAX_FILE: u64 = 4 << 20;

/// A source of configuration files.
pub trait Files {
    /// The size of the file at `path`, in bytes.
    ///
    /// # Errors
    /// There is no such file, or it cannot be read.
    fn size(&self, path: &Path) -> io::Result<u64>;
    /// The text of the file at `path`.
    ///
    /// # Errors
    /// There is no such file, or it is not UTF-8 text.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The paths of the entries of directory `dir`, in any order.
    ///
    /// # Errors
    /// There is no such directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// The files on disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl Files for Disk {
    fn size(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect()
    }
}

/// Files held in memory, by path (`.` and `..` resolved as the disk
/// would, without links).
#[derive(Debug, Clone, Default)]
pub struct MemFiles(BTreeMap<PathBuf, String>);

impl MemFiles {
    /// Add (or replace) the file at `path`.
    pub fn insert(&mut self, path: impl AsRef<Path>, text: impl Into<String>) {
        self.0.insert(lexical(path.as_ref()), text.into());
    }
}

fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "No such file or directory")
}

impl Files for MemFiles {
    fn size(&self, path: &Path) -> io::Result<u64> {
        self.0
            .get(&lexical(path))
            .map(|t| t.len() as u64)
            .ok_or_else(not_found)
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        self.0.get(&lexical(path)).cloned().ok_or_else(not_found)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let dir = lexical(dir);
        let under: Vec<PathBuf> = self
            .0
            .keys()
            .filter(|p| p.parent() == Some(&dir))
            .cloned()
            .collect();
        if under.is_empty() && !self.0.keys().any(|p| p.starts_with(&dir)) {
            return Err(not_found());
        }
        Ok(under)
    }
}

/// The text of `path`, refused over [`MAX_FILE`].
pub(super) fn read(files: &dyn Files, path: &Path) -> Result<String, Error> {
    let cannot = |e: io::Error| {
        // A keepalived.conf is often 0600 (it holds auth_pass), and the
        // packaged daemon does not run as root.
        let fix = if e.kind() == io::ErrorKind::PermissionDenied {
            format!(
                " (the daemon's user must read it: chgrp ferrovs {0} && chmod 0640 {0})",
                path.display()
            )
        } else {
            String::new()
        };
        Error::new(format!("cannot read {}: {e}{fix}", path.display()))
    };
    let size = files.size(path).map_err(cannot)?;
    if size > MAX_FILE {
        return Err(Error::new(format!(
            "{}: {size} bytes, over the {MAX_FILE}-byte limit of a configuration file",
            path.display()
        )));
    }
    files.read(path).map_err(cannot)
}

/// The files an include pattern names, sorted; `*` in the file name.
pub(super) fn expand(files: &dyn Files, dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, Error> {
    let full = dir.join(pattern);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(vec![full]);
    }
    let parent = full.parent().unwrap_or(Path::new("."));
    let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
    let entries = files
        .list(parent)
        .map_err(|e| Error::new(format!("include {pattern}: {e}")))?;
    let mut found: Vec<PathBuf> = entries
        .into_iter()
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len()
        })
        .collect();
    found.sort();
    Ok(found)
}
