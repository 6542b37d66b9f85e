//! The snapshot document: sorted entries, canonical JSON, its digest, and the checks that
//! make a received snapshot safe to write to disk.

use crate::digest::{is_digest, sha256};
use crate::SnapshotError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Component, Path};

/// The document's format version.
pub const FORMAT_VERSION: u32 = 1;

/// A tree of files, content-addressed. Entries are sorted by path (bytewise) and unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u32,
    pub entries: Vec<Entry>,
}

/// One file or symbolic link of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Relative, `/`-separated, without `.` or `..` components.
    pub path: String,
    pub kind: EntryKind,
    /// `0o755` (executable) or `0o644` for files; `0o777` for links.
    pub mode: u32,
    /// `sha256:...` of the content (of a link: its target).
    pub digest: String,
    pub size: u64,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Symlink,
}

impl Snapshot {
    /// A snapshot of `entries`, sorted.
    pub fn new(mut entries: Vec<Entry>) -> Snapshot {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Snapshot {
            version: FORMAT_VERSION,
            entries,
        }
    }

    /// The canonical JSON: fields in declaration order, entries sorted, no whitespace.
    pub fn canonical_json(&self) -> Vec<u8> {
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `sha256:...` of [`Snapshot::canonical_json`]: the snapshot's name.
    pub fn digest(&self) -> String {
        sha256(&self.canonical_json())
    }

    /// Reads a snapshot document, checks it is canonical, safe to materialise, and has the
    /// digest `expected` (if given).
    pub fn from_json(bytes: &[u8], expected: Option<&str>) -> Result<Snapshot, SnapshotError> {
        let name = expected.unwrap_or("(received)").to_string();
        let snapshot: Snapshot =
            serde_json::from_slice(bytes).map_err(|e| SnapshotError::Unreadable {
                snapshot: name.clone(),
                reason: e.to_string(),
            })?;
        snapshot.validate()?;
        if let Some(expected) = expected {
            let actual = snapshot.digest();
            if actual != expected {
                return Err(SnapshotError::DigestMismatch {
                    what: "snapshot",
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        Ok(snapshot)
    }

    /// Refuses what must never be written: a path that is absolute, has `..`, `.` or empty
    /// components, a NUL, or is `.psyduck`'s; duplicate or unsorted paths; an entry below
    /// another entry (a file written through a link the snapshot made); bad digests or modes.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        let invalid = |problem: String| SnapshotError::Invalid {
            snapshot: self.digest(),
            problem,
        };
        if self.version != FORMAT_VERSION {
            return Err(invalid(format!(
                "format version {} (this psy reads {FORMAT_VERSION})",
                self.version
            )));
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut previous: Option<&str> = None;
        for entry in &self.entries {
            let path = entry.path.as_str();
            if let Some(problem) = bad_path(path) {
                return Err(invalid(format!("path {path:?}: {problem}")));
            }
            if previous.is_some_and(|p| p >= path) {
                return Err(invalid(format!(
                    "path {path:?} is out of order or repeated"
                )));
            }
            previous = Some(path);
            if !is_digest(&entry.digest) {
                return Err(invalid(format!(
                    "path {path:?}: bad digest {:?}",
                    entry.digest
                )));
            }
            let mode_ok = match entry.kind {
                EntryKind::File => matches!(entry.mode, 0o644 | 0o755),
                EntryKind::Symlink => entry.mode == 0o777,
            };
            if !mode_ok {
                return Err(invalid(format!("path {path:?}: mode {:o}", entry.mode)));
            }
            seen.insert(path);
        }
        for entry in &self.entries {
            let mut dir = Path::new(&entry.path).parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                if let Some(d) = d.to_str().filter(|d| seen.contains(d)) {
                    return Err(invalid(format!(
                        "path {:?} is below the entry {d:?}, which is not a directory",
                        entry.path
                    )));
                }
                dir = d.parent();
            }
        }
        Ok(())
    }

    /// The distinct blob digests the snapshot needs, sorted.
    pub fn blobs(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.entries.iter().map(|e| e.digest.as_str()).collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// The sum of the entries' sizes.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// Why `path` may not be an entry's path, if it may not.
fn bad_path(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("empty");
    }
    if path.contains('\0') {
        return Some("contains NUL");
    }
    if path.starts_with('/') {
        return Some("absolute");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Some("has an empty, `.` or `..` component");
    }
    if Path::new(path)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Some("not a plain relative path");
    }
    if path.split('/').any(|c| c == crate::build::STATE_DIR) {
        return Some("is inside psy's state directory");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File,
            mode: 0o644,
            digest: sha256(path.as_bytes()),
            size: path.len() as u64,
        }
    }

    #[test]
    fn digest_is_of_the_canonical_sorted_json() {
        let a = Snapshot::new(vec![file("b"), file("a")]);
        let b = Snapshot::new(vec![file("a"), file("b")]);
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.entries[0].path, "a");
        let json = a.canonical_json();
        assert!(
            json.starts_with(br#"{"version":1,"entries":[{"path":"a","kind":"file","mode":420,"#)
        );
        assert_eq!(Snapshot::from_json(&json, Some(&a.digest())).unwrap(), a);
        let other = Snapshot::new(vec![file("a")]);
        let err = Snapshot::from_json(&json, Some(&other.digest())).unwrap_err();
        assert!(matches!(err, SnapshotError::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn hostile_paths_are_refused() {
        for path in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "",
            "a/.psyduck/x",
            "a\0b",
        ] {
            let s = Snapshot {
                version: FORMAT_VERSION,
                entries: vec![file(path)],
            };
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains("path"), "{path:?}: {err}");
        }
        let mut link = file("a");
        link.kind = EntryKind::Symlink;
        link.mode = 0o777;
        let below = Snapshot::new(vec![link, file("a/b")]);
        let err = below.validate().unwrap_err().to_string();
        assert!(err.contains("below the entry \"a\""), "{err}");
        let unsorted = Snapshot {
            version: FORMAT_VERSION,
            entries: vec![file("b"), file("a")],
        };
        assert!(unsorted.validate().is_err());
        let twice = Snapshot {
            version: FORMAT_VERSION,
            entries: vec![file("a"), file("a")],
        };
        assert!(twice.validate().is_err());
        let mut setuid = file("a");
        setuid.mode = 0o4755;
        assert!(Snapshot::new(vec![setuid]).validate().is_err());
    }
}
