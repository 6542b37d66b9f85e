//! Freshness: the project sources a worker imported, so a driver restarts it when one changes.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// A source file under pytest's rootdir that the worker imported, as it was then.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Source {
    pub path: PathBuf,
    /// Nanoseconds since the epoch, as Python's `st_mtime_ns`.
    pub mtime_ns: i64,
    pub size: u64,
}

impl Source {
    /// Whether the file is no longer what the worker imported (changed, or gone).
    pub fn changed(&self) -> bool {
        std::fs::metadata(&self.path).map_or(true, |meta| {
            meta.len() != self.size || mtime_ns(&meta) != Some(self.mtime_ns)
        })
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> Option<i64> {
    let modified = meta.modified().ok()?;
    match modified.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).ok(),
        Err(before) => i64::try_from(before.duration().as_nanos()).ok().map(|n| -n),
    }
}

/// The sources among `sources` that changed since the worker imported them.
pub(crate) fn changed(sources: &[Source]) -> Vec<&Path> {
    sources
        .iter()
        .filter(|s| s.changed())
        .map(|s| s.path.as_path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_or_removed_file_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.py");
        std::fs::write(&path, "x = 1\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let source = Source {
            path: path.clone(),
            mtime_ns: mtime_ns(&meta).unwrap(),
            size: meta.len(),
        };
        assert!(changed(std::slice::from_ref(&source)).is_empty());
        std::fs::write(&path, "x = 22\n").unwrap();
        assert_eq!(changed(std::slice::from_ref(&source)), [path.as_path()]);
        std::fs::remove_file(&path).unwrap();
        assert!(source.changed());
    }
}
