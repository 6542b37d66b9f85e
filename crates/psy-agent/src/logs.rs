//! An attempt's log files uploaded as blobs before its result is reported, so that
//! `psy log TEST RUN --server` and `psy show RUN TEST --server` read them whole (the report
//! itself carries only their end). The files are those the engine keeps beside the attempt's
//! stdout, `<stem>.<attempt>.<name>`: `out`, `err`, and a scenario's `scenario.jsonl`
//! (timeline) and `node.NAME.out`/`.err` (its nodes' output) (see
//! `psy_runner::layout::scenario_file`). Each is named in the report by that `name`.
//!
//! A file larger than [`LOG_BLOB_CAP`] is uploaded as its first and last halves of the cap
//! with a line saying how much was cut between them.

use crate::source::Shared;
use psy_fleet::retry::{self, Backoff};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The most bytes of one log file uploaded (its head and its tail, half each).
pub const LOG_BLOB_CAP: u64 = 16 << 20;

/// The log files of the attempt whose stdout is `stdout`, by name (the suffix after
/// `<stem>.<attempt>.`), the empty ones left out.
pub(crate) fn files(stdout: &Path) -> BTreeMap<String, PathBuf> {
    let mut files = every_file(stdout);
    files.retain(|_, path| std::fs::metadata(path).is_ok_and(|m| m.len() > 0));
    files
}

/// The attempt's log files, the empty ones included.
fn every_file(stdout: &Path) -> BTreeMap<String, PathBuf> {
    let (Some(dir), Some(stem)) = (stdout.parent(), stdout.file_stem()) else {
        return BTreeMap::new();
    };
    let prefix = format!("{}.", stem.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| m.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_prefix(&prefix)?.to_string();
            Some((name, e.path()))
        })
        .collect()
}

/// Removes the attempt's log files (once its result is answered).
pub(crate) fn remove(stdout: &Path) {
    for path in every_file(stdout).values() {
        let _ = std::fs::remove_file(path);
    }
}

/// What [`upload`] keeps between attempts.
#[derive(Debug, Default)]
pub(crate) struct Uploads {
    /// The server refused an agent's upload (a server older than agents' logs): reports
    /// carry their output's end only, as before.
    refused: bool,
}

impl Uploads {
    /// Uploads the log files of the attempt whose stdout is `stdout`; their digests by name.
    /// A file that cannot be read or uploaded is left out (with a warning): the result is
    /// still reported, with the end of its output inline.
    pub(crate) fn upload(
        &mut self,
        shared: &Shared,
        stdout: &Path,
        what: &dyn std::fmt::Display,
        backoff: &mut Backoff,
        abandon: &AtomicBool,
    ) -> BTreeMap<String, String> {
        let mut uploaded = BTreeMap::new();
        if self.refused {
            return uploaded;
        }
        for (name, path) in files(stdout) {
            let content = match capped(&path, LOG_BLOB_CAP) {
                Ok(content) => content,
                Err(e) => {
                    tracing::warn!("{what}: cannot read log {}: {e}", path.display());
                    continue;
                }
            };
            let doing = format!("uploading log {name:?} of {what}");
            let stop = || abandon.load(Ordering::SeqCst);
            match retry::retry(&doing, backoff, &stop, || shared.client.put_blob(&content)) {
                Ok(digest) => {
                    uploaded.insert(name, digest);
                }
                Err(e) if matches!(e.status(), Some(403..=405)) => {
                    tracing::warn!("{doing}: {e}; this server takes no logs from agents");
                    self.refused = true;
                    return BTreeMap::new();
                }
                Err(e) => tracing::warn!("{doing}: {e}; reported without it"),
            }
        }
        uploaded
    }
}

/// `path`'s content, or its first and last `cap / 2` bytes around a line saying how many
/// were cut.
pub(crate) fn capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut content = Vec::new();
    if len <= cap {
        file.read_to_end(&mut content)?;
        return Ok(content);
    }
    let half = cap / 2;
    (&mut file).take(half).read_to_end(&mut content)?;
    let cut = len - 2 * half;
    content.extend_from_slice(
        format!("\n[psy: {cut} bytes cut here: a log keeps its first and last {half} bytes]\n")
            .as_bytes(),
    );
    file.seek(SeekFrom::Start(len - half))?;
    file.take(half).read_to_end(&mut content)?;
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_s_files_are_those_beside_its_stdout_named_by_their_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("r1-l7-t.2.out", "hello\n");
        write("r1-l7-t.2.err", "");
        write("r1-l7-t.2.scenario.jsonl", "{}\n");
        write("r1-l7-t.2.node.db.out", "db\n");
        write("r1-l70-t.2.out", "another lease's\n");
        write("r1-l7-t.1.out", "another attempt's\n");
        let stdout = dir.path().join("r1-l7-t.2.out");
        let names: Vec<String> = files(&stdout).into_keys().collect();
        assert_eq!(names, ["node.db.out", "out", "scenario.jsonl"]);
        remove(&stdout);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["r1-l7-t.1.out", "r1-l70-t.2.out"]);
    }

    #[test]
    fn a_log_over_the_cap_keeps_its_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, format!("HEAD{}TAIL", "x".repeat(1000))).unwrap();
        let content = String::from_utf8(capped(&path, 100).unwrap()).unwrap();
        assert!(
            content.starts_with("HEAD") && content.ends_with("TAIL"),
            "{content}"
        );
        assert!(content.contains("[psy: 908 bytes cut here"), "{content}");
        assert_eq!(capped(&path, 2000).unwrap().len(), 1008);
    }
}
