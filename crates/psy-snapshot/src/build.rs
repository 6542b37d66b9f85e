//! Building a snapshot of a working tree: the files git would commit if everything were added
//! (tracked files as they are on disk, untracked files git does not ignore; deleted files are
//! absent), or every file when the tree is not in a git repository. `.psyduck/` never.

use crate::digest::sha256;
use crate::snapshot::{Entry, EntryKind, Snapshot};
use crate::SnapshotError;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// psy's own state directory, never part of a snapshot.
pub(crate) const STATE_DIR: &str = ".psyduck";

/// A snapshot of a local tree, with where each blob's content is.
#[derive(Debug, Clone)]
pub struct LocalSnapshot {
    /// The tree's root: entry paths are relative to it.
    pub root: PathBuf,
    pub snapshot: Snapshot,
    /// Each distinct blob: a file (re-read and checked on upload) or a link's target.
    contents: BTreeMap<String, Content>,
}

#[derive(Debug, Clone)]
enum Content {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// The root a project's snapshot is taken from: the git work tree that holds `dir` (so files
/// outside the manifest's directory that tests use are there too), else `dir` itself.
pub fn project_root(dir: &Path) -> PathBuf {
    match git(dir, &["rev-parse", "--show-toplevel"]) {
        Ok(out) if out.status.success() => {
            let top = String::from_utf8_lossy(&out.stdout)
                .trim_end_matches('\n')
                .to_string();
            if top.is_empty() {
                dir.to_path_buf()
            } else {
                PathBuf::from(top)
            }
        }
        _ => dir.to_path_buf(),
    }
}

impl Snapshot {
    /// The snapshot of the tree at `dir` (see the module's doc).
    pub fn of_worktree(dir: &Path) -> Result<LocalSnapshot, SnapshotError> {
        let paths = match git_files(dir)? {
            Some(paths) => paths,
            None => walk(dir)?,
        };
        let mut entries = Vec::with_capacity(paths.len());
        let mut contents = BTreeMap::new();
        for rel in paths {
            if rel.split('/').any(|c| c == STATE_DIR || c.is_empty()) {
                continue;
            }
            let path = dir.join(&rel);
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                // Tracked but deleted in the working tree: not part of it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(SnapshotError::io(&path, "cannot read its metadata")(e)),
            };
            let (kind, mode, bytes, content) = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)
                    .map_err(SnapshotError::io(&path, "cannot read the link"))?;
                let bytes = target.as_os_str().as_bytes().to_vec();
                (
                    EntryKind::Symlink,
                    0o777,
                    bytes.clone(),
                    Content::Bytes(bytes),
                )
            } else if meta.is_file() {
                let bytes =
                    std::fs::read(&path).map_err(SnapshotError::io(&path, "cannot read it"))?;
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                };
                (EntryKind::File, mode, bytes, Content::File(path.clone()))
            } else {
                // A submodule (a directory git lists as one path), a socket, a fifo.
                tracing::debug!(path = %path.display(), "not a file or link: left out of the snapshot");
                continue;
            };
            let digest = sha256(&bytes);
            entries.push(Entry {
                path: rel,
                kind,
                mode,
                digest: digest.clone(),
                size: bytes.len() as u64,
            });
            contents.entry(digest).or_insert(content);
        }
        let snapshot = Snapshot::new(entries);
        snapshot.validate()?;
        Ok(LocalSnapshot {
            root: dir.to_path_buf(),
            snapshot,
            contents,
        })
    }
}

impl LocalSnapshot {
    /// The content of blob `digest`, read again and checked against its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, SnapshotError> {
        match self.contents.get(digest) {
            Some(Content::Bytes(bytes)) => Ok(bytes.clone()),
            Some(Content::File(path)) => {
                let bytes =
                    std::fs::read(path).map_err(SnapshotError::io(path, "cannot read it"))?;
                if sha256(&bytes) == digest {
                    Ok(bytes)
                } else {
                    Err(SnapshotError::Changed { path: path.clone() })
                }
            }
            None => Err(SnapshotError::Invalid {
                snapshot: self.snapshot.digest(),
                problem: format!("no entry has content {digest}"),
            }),
        }
    }
}

/// `git -C dir args...`, its output collected.
fn git(dir: &Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("git").arg("-C").arg(dir).args(args).output()
}

/// The paths `git ls-files` lists under `dir` (tracked, and untracked but not ignored), or
/// `None` when `dir` is not in a git work tree.
fn git_files(dir: &Path) -> Result<Option<Vec<String>>, SnapshotError> {
    match git(dir, &["rev-parse", "--is-inside-work-tree"]) {
        Ok(out) if out.status.success() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.ancestors().any(|d| d.join(".git").exists()) {
                return Err(SnapshotError::Git {
                    dir: dir.to_path_buf(),
                    args: "rev-parse".into(),
                    detail: "git is not installed, and the tree is a git work tree (install git, so ignored files stay out of the snapshot)".into(),
                });
            }
            return Ok(None);
        }
        Err(e) => return Err(SnapshotError::io(dir, "cannot run git")(e)),
    }
    let args = [
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ];
    let out = git(dir, &args).map_err(SnapshotError::io(dir, "cannot run git"))?;
    if !out.status.success() {
        return Err(SnapshotError::Git {
            dir: dir.to_path_buf(),
            args: args.join(" "),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let mut paths = Vec::new();
    for raw in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        match std::str::from_utf8(raw) {
            Ok(p) => paths.push(p.to_string()),
            Err(_) => {
                return Err(SnapshotError::Git {
                    dir: dir.to_path_buf(),
                    args: args.join(" "),
                    detail: format!(
                        "the path {:?} is not UTF-8, which snapshots cannot carry",
                        String::from_utf8_lossy(raw)
                    ),
                })
            }
        }
    }
    // A path both tracked (modified or with a conflict) and listed again.
    paths.sort();
    paths.dedup();
    Ok(Some(paths))
}

/// Every file and link under `dir` (links not followed), relative, without `.psyduck` or `.git`.
fn walk(dir: &Path) -> Result<Vec<String>, SnapshotError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let read = std::fs::read_dir(&abs).map_err(SnapshotError::io(&abs, "cannot list it"))?;
        for item in read {
            let item = item.map_err(SnapshotError::io(&abs, "cannot list it"))?;
            let name = item.file_name();
            if name == STATE_DIR || name == ".git" {
                continue;
            }
            let child = rel.join(&name);
            let file_type = item
                .file_type()
                .map_err(SnapshotError::io(abs.join(&name), "cannot read its type"))?;
            if file_type.is_dir() {
                stack.push(child);
            } else {
                let text = child.to_str().ok_or_else(|| SnapshotError::Invalid {
                    snapshot: dir.display().to_string(),
                    problem: format!(
                        "the path {child:?} is not UTF-8, which snapshots cannot carry"
                    ),
                })?;
                out.push(text.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}
