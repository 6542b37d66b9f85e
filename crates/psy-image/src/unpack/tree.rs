//! The layer directory being written: which of its directories are known to be real
//! directories (never symlinks), so no entry is written through a symlink.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) enum TreeError {
    /// The entry would go through a symlink or a file.
    Unsafe(&'static str),
    Io(PathBuf, io::Error),
}

/// The directory a layer is unpacked into.
#[derive(Debug)]
pub(crate) struct Tree {
    root: PathBuf,
    /// Relative directories checked (or made) to be real directories.
    dirs: HashSet<PathBuf>,
}

impl Tree {
    pub(crate) fn new(root: &Path) -> Tree {
        Tree {
            root: root.to_path_buf(),
            dirs: HashSet::new(),
        }
    }

    pub(crate) fn abs(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// Makes sure `rel` and its parents are real directories, creating missing ones; a
    /// symlink or a file on the way is refused, never followed.
    pub(crate) fn ensure_dir(&mut self, rel: &Path) -> Result<(), TreeError> {
        if rel.as_os_str().is_empty() || self.dirs.contains(rel) {
            return Ok(());
        }
        if let Some(parent) = rel.parent() {
            self.ensure_dir(parent)?;
        }
        let abs = self.abs(rel);
        match fs::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(TreeError::Unsafe(
                    "a directory on its path is a symlink (never followed while unpacking)",
                ));
            }
            Ok(_) => {
                return Err(TreeError::Unsafe(
                    "a directory on its path is not a directory",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&abs).map_err(|e| TreeError::Io(abs.clone(), e))?;
            }
            Err(e) => return Err(TreeError::Io(abs, e)),
        }
        self.dirs.insert(rel.to_path_buf());
        Ok(())
    }

    /// A directory at `rel` (its parent already ensured): kept if it is one, replacing what
    /// else is there.
    pub(crate) fn make_dir(&mut self, rel: &Path) -> Result<(), TreeError> {
        let abs = self.abs(rel);
        match fs::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                fs::remove_file(&abs).map_err(|e| TreeError::Io(abs.clone(), e))?;
                fs::create_dir(&abs).map_err(|e| TreeError::Io(abs.clone(), e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&abs).map_err(|e| TreeError::Io(abs.clone(), e))?;
            }
            Err(e) => return Err(TreeError::Io(abs, e)),
        }
        self.dirs.insert(rel.to_path_buf());
        Ok(())
    }

    /// Ensures the parent of `rel` and removes whatever is at `rel` (a later entry of the
    /// same path replaces an earlier one, as tar does).
    pub(crate) fn clear(&mut self, rel: &Path) -> Result<(), TreeError> {
        if let Some(parent) = rel.parent() {
            self.ensure_dir(parent)?;
        }
        let abs = self.abs(rel);
        match fs::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(&abs).map_err(|e| TreeError::Io(abs.clone(), e))?;
                self.dirs.retain(|d| !d.starts_with(rel));
            }
            Ok(_) => fs::remove_file(&abs).map_err(|e| TreeError::Io(abs.clone(), e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(TreeError::Io(abs, e)),
        }
        Ok(())
    }
}
