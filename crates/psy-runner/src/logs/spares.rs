//! Attempt log files that cost no inode when the test prints nothing.
//!
//! Each stream of an attempt needs a file the test can write from its first instruction, but
//! most streams of most tests stay empty. Creating a file allocates an ext4 inode, and on
//! filesystems without a journal (as here) ext4 skips every inode freed in the last minutes on
//! each allocation (`find_inode_bit` / `recently_deleted`): a suite that runs after any mass
//! deletion spent half its time there. So log files come from a pool of empty spare files in
//! `logs/.spare`: a spare is hard-linked at the attempt's log path (a directory entry, no new
//! inode) for the test to write, live, where the user expects it. When the attempt ends, an
//! empty log loses its name and the spare goes back to the pool; a log with output keeps its
//! name and the spare's name is dropped (the inode lives on as the log). A stream that wrote
//! nothing therefore leaves no file: readers treat a missing log as empty.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Empty files waiting to become some attempt's log.
#[derive(Debug)]
pub(crate) struct LogSpares {
    dir: PathBuf,
    /// Names new spares get: `<prefix>-<n>` (the run id keeps runs from colliding).
    prefix: String,
    free: Vec<PathBuf>,
    made: usize,
}

impl LogSpares {
    /// Opens (or creates) the spare directory. Spares left by an earlier run are kept when
    /// empty and unlinked elsewhere; a spare still linked to a log (psy was killed during that
    /// attempt) only loses its spare name, so the log survives.
    pub(crate) fn open(dir: PathBuf, prefix: String) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut free = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() && meta.nlink() == 1 && meta.len() == 0 {
                free.push(entry.path());
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(LogSpares {
            dir,
            prefix,
            free,
            made: 0,
        })
    }

    /// A file for the test to write, already visible at `path`; keep the returned spare path
    /// for [`Self::settle`].
    pub(crate) fn create(&mut self, path: &Path) -> io::Result<(File, PathBuf)> {
        let spare = match self.free.pop() {
            Some(spare) => spare,
            None => {
                let spare = self.dir.join(format!("{}-{}", self.prefix, self.made));
                self.made += 1;
                spare
            }
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&spare)?;
        if let Err(e) = std::fs::hard_link(&spare, path) {
            self.free.push(spare);
            return Err(e);
        }
        Ok((file, spare))
    }

    /// Ends the log at `path` (every writer gone): an empty one disappears and its spare is
    /// reused; one with output stays and the spare name goes.
    pub(crate) fn settle(&mut self, path: &Path, spare: PathBuf) {
        let empty = match std::fs::metadata(&spare) {
            Ok(meta) => meta.len() == 0,
            Err(e) => {
                tracing::warn!("log spare {}: {e}", spare.display());
                return;
            }
        };
        let (unlink, keep) = if empty {
            (path, Some(spare.clone()))
        } else {
            (spare.as_path(), None)
        };
        match std::fs::remove_file(unlink) {
            Ok(()) => self.free.extend(keep),
            Err(e) => tracing::warn!("settling log {}: {e}", unlink.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn inode(p: &Path) -> u64 {
        std::fs::metadata(p).unwrap().ino()
    }

    #[test]
    fn empty_logs_vanish_and_their_inode_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spares = LogSpares::open(dir.path().join(".spare"), "r1".into()).unwrap();
        let first = dir.path().join("a.1.out");
        let (_file, spare) = spares.create(&first).unwrap();
        assert!(first.exists(), "the log is visible while the test runs");
        let ino = inode(&first);
        spares.settle(&first, spare);
        assert!(!first.exists(), "an empty log leaves no file");

        let second = dir.path().join("b.1.out");
        let (_file, spare) = spares.create(&second).unwrap();
        assert_eq!(inode(&second), ino, "the spare was reused, no new inode");
        spares.settle(&second, spare);
    }

    #[test]
    fn logs_with_output_stay_and_a_new_spare_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let mut spares = LogSpares::open(dir.path().join(".spare"), "r1".into()).unwrap();
        let log = dir.path().join("a.1.out");
        let (mut file, spare) = spares.create(&log).unwrap();
        file.write_all(b"hello\n").unwrap();
        drop(file);
        spares.settle(&log, spare.clone());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello\n");
        assert!(!spare.exists());
        assert_eq!(std::fs::metadata(&log).unwrap().nlink(), 1);

        let next = dir.path().join("b.1.out");
        let (_file, next_spare) = spares.create(&next).unwrap();
        assert_ne!(inode(&next), inode(&log));
        assert_eq!(std::fs::metadata(&next).unwrap().len(), 0);
        spares.settle(&next, next_spare);
    }

    #[test]
    fn spares_left_by_a_killed_run_keep_their_logs() {
        let dir = tempfile::tempdir().unwrap();
        let spare_dir = dir.path().join(".spare");
        let log = dir.path().join("a.1.out");
        let mut spares = LogSpares::open(spare_dir.clone(), "r1".into()).unwrap();
        let (mut file, _spare) = spares.create(&log).unwrap();
        file.write_all(b"partial output\n").unwrap();
        let idle = dir.path().join("idle.1.out");
        let (_f, idle_spare) = spares.create(&idle).unwrap();
        spares.settle(&idle, idle_spare.clone());
        drop(spares); // psy killed: the first attempt's log is never settled

        let mut next = LogSpares::open(spare_dir.clone(), "r2".into()).unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "partial output\n");
        assert_eq!(std::fs::metadata(&log).unwrap().nlink(), 1);
        assert_eq!(next.free, vec![idle_spare], "the empty spare is adopted");
        let (_f, spare) = next.create(&dir.path().join("c.1.out")).unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "partial output\n");
        next.settle(&dir.path().join("c.1.out"), spare);
    }
}
