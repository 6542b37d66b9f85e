//! Per-attempt scratch directories, recycled through a pool of slots.
//!
//! Creating and deleting one directory per attempt made ext4's inode allocator the bottleneck
//! of large suites: freed inodes stay "recently deleted" for minutes and every new allocation
//! scans past them (`find_inode_bit` / `recently_deleted`), so a 2,000-test run spent most of
//! its time there. A slot is emptied when its attempt ends and handed to the next one; most
//! tests write nothing, so most attempts create and delete no inode at all.

use std::io;
use std::path::{Path, PathBuf};

/// Empty, writable directories `<root>/slot-N`, at most as many as attempts ran at once.
#[derive(Debug)]
pub(crate) struct ScratchPool {
    root: PathBuf,
    free: Vec<PathBuf>,
    made: usize,
}

impl ScratchPool {
    pub(crate) fn new(root: PathBuf) -> Self {
        ScratchPool {
            root,
            free: Vec::new(),
            made: 0,
        }
    }

    /// An empty directory for one attempt.
    pub(crate) fn take(&mut self) -> io::Result<PathBuf> {
        if let Some(dir) = self.free.pop() {
            return Ok(dir);
        }
        let dir = self.root.join(format!("slot-{}", self.made));
        std::fs::create_dir_all(&dir)?;
        self.made += 1;
        Ok(dir)
    }

    /// Empties `dir` and keeps it for the next attempt (or drops it if it cannot be emptied).
    pub(crate) fn give_back(&mut self, dir: PathBuf) {
        match empty_dir(&dir) {
            Ok(()) => self.free.push(dir),
            Err(e) => tracing::warn!("cannot empty scratch directory {}: {e}", dir.display()),
        }
    }
}

fn empty_dir(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_recycled_empty() {
        let root = tempfile::tempdir().unwrap();
        let mut pool = ScratchPool::new(root.path().join("run"));
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_ne!(a, b);
        std::fs::create_dir_all(a.join("sub/deeper")).unwrap();
        std::fs::write(a.join("sub/file"), "x").unwrap();
        std::fs::write(a.join("top"), "x").unwrap();
        pool.give_back(a.clone());
        let again = pool.take().unwrap();
        assert_eq!(again, a);
        assert_eq!(
            std::fs::read_dir(&again).unwrap().count(),
            0,
            "handed back empty"
        );
        assert_ne!(pool.take().unwrap(), b, "b is still in use");
    }
}
