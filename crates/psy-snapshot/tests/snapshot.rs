//! Snapshots of real git work trees in temp dirs, materialised back, concurrently, refused when
//! hostile, and prepared once.

use psy_snapshot::testkit::git;
use psy_snapshot::{
    materialise, sha256, BlobSource, BoxError, Entry, EntryKind, Prepared, Snapshot, SnapshotError,
    WorkDir,
};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A repository with every kind of file the snapshot must decide about.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    write(d, ".gitignore", "target/\n*.log\n");
    write(d, "tracked.txt", "committed\n");
    write(d, "modified.txt", "old\n");
    write(d, "deleted.txt", "gone soon\n");
    write(d, "src/lib.rs", "fn main() {}\n");
    write(d, "run.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(d.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("src/lib.rs", d.join("link")).unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "first"]);
    write(d, "modified.txt", "new, uncommitted\n");
    std::fs::remove_file(d.join("deleted.txt")).unwrap();
    write(d, "untracked.txt", "not added\n");
    write(d, "target/debug/out", "ignored\n");
    write(d, "build.log", "ignored\n");
    write(d, ".psyduck/results.db", "state\n");
    write(d, "sub/.psyduck/x", "state too\n");
    dir
}

fn entry<'a>(s: &'a Snapshot, path: &str) -> Option<&'a Entry> {
    s.entries.iter().find(|e| e.path == path)
}

#[test]
fn a_worktree_snapshot_is_what_git_would_commit_with_everything_added() {
    let dir = repo();
    let local = Snapshot::of_worktree(dir.path()).unwrap();
    let s = &local.snapshot;
    let paths: Vec<&str> = s.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            ".gitignore",
            "link",
            "modified.txt",
            "run.sh",
            "src/lib.rs",
            "tracked.txt",
            "untracked.txt"
        ]
    );
    let modified = entry(s, "modified.txt").unwrap();
    assert_eq!(
        modified.digest,
        sha256(b"new, uncommitted\n"),
        "the working tree's content"
    );
    assert_eq!(modified.size, 17);
    assert_eq!(modified.mode, 0o644);
    assert_eq!(
        entry(s, "run.sh").unwrap().mode,
        0o755,
        "the executable bit is kept"
    );
    let link = entry(s, "link").unwrap();
    assert_eq!(link.kind, EntryKind::Symlink);
    assert_eq!(
        link.digest,
        sha256(b"src/lib.rs"),
        "a link is kept as a link"
    );
    assert_eq!(
        local.read_blob(&modified.digest).unwrap(),
        b"new, uncommitted\n"
    );
    // The same tree has the same name; one changed byte gives another.
    let again = Snapshot::of_worktree(dir.path()).unwrap().snapshot;
    assert_eq!(again.digest(), s.digest());
    write(dir.path(), "tracked.txt", "committed!\n");
    let changed = Snapshot::of_worktree(dir.path()).unwrap().snapshot;
    assert_ne!(changed.digest(), s.digest());
    let differing: Vec<&str> = changed
        .entries
        .iter()
        .filter(|e| !s.entries.contains(e))
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(differing, ["tracked.txt"]);
    // A file edited after the snapshot is not uploaded as if it were the snapshot's.
    let err = local
        .read_blob(&entry(s, "tracked.txt").unwrap().digest)
        .unwrap_err();
    assert!(matches!(err, SnapshotError::Changed { .. }), "{err}");
}

#[test]
fn without_git_every_file_but_psy_state_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "a");
    write(dir.path(), "target/x", "x");
    write(dir.path(), ".psyduck/results.db", "state");
    let s = Snapshot::of_worktree(dir.path()).unwrap().snapshot;
    let paths: Vec<&str> = s.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a.txt", "target/x"]);
}

/// Blobs and snapshot documents from memory, counting fetches.
#[derive(Default)]
struct Memory {
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    fetches: AtomicUsize,
}

impl Memory {
    fn of(local: &psy_snapshot::LocalSnapshot) -> Memory {
        let memory = Memory::default();
        let mut blobs = memory.blobs.lock().unwrap();
        for digest in local.snapshot.blobs() {
            blobs.insert(digest.clone(), local.read_blob(&digest).unwrap());
        }
        blobs.insert(local.snapshot.digest(), local.snapshot.canonical_json());
        drop(blobs);
        memory
    }
}

impl BlobSource for Memory {
    fn blob(&self, digest: &str) -> Result<Vec<u8>, BoxError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let blobs = self.blobs.lock().unwrap();
        blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| format!("no blob {digest}").into())
    }

    fn snapshot(&self, digest: &str) -> Result<Vec<u8>, BoxError> {
        self.blob(digest)
    }
}

#[test]
fn materialising_gives_back_the_tree_once_per_machine() {
    let dir = repo();
    let local = Snapshot::of_worktree(dir.path()).unwrap();
    let memory = Memory::of(&local);
    let work_dir = tempfile::tempdir().unwrap();
    let work = WorkDir::open(work_dir.path()).unwrap();
    let tree = materialise(&local.snapshot, &work, &memory).unwrap();
    assert_eq!(tree, work.tree(&local.snapshot.digest()).unwrap());
    assert_eq!(
        std::fs::read_to_string(tree.join("modified.txt")).unwrap(),
        "new, uncommitted\n"
    );
    assert_eq!(
        std::fs::read_link(tree.join("link")).unwrap(),
        Path::new("src/lib.rs")
    );
    let mode = |p: &str| {
        std::fs::metadata(tree.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("run.sh"), 0o755);
    assert_eq!(mode("tracked.txt"), 0o644);
    assert!(!tree.join(".psyduck").exists());
    assert!(!tree.join("deleted.txt").exists());
    assert!(!tree.join("target").exists());
    // Its snapshot is the original's.
    assert_eq!(
        Snapshot::of_worktree(&tree).unwrap().snapshot.digest(),
        local.snapshot.digest()
    );
    let fetched = memory.fetches.load(Ordering::SeqCst);
    assert_eq!(fetched, local.snapshot.blobs().len());
    // Again: reused, nothing fetched. A second snapshot sharing blobs fetches only the new one.
    materialise(&local.snapshot, &work, &memory).unwrap();
    assert_eq!(memory.fetches.load(Ordering::SeqCst), fetched);
    write(dir.path(), "tracked.txt", "v2\n");
    let local2 = Snapshot::of_worktree(dir.path()).unwrap();
    let memory2 = Memory::of(&local2);
    materialise(&local2.snapshot, &work, &memory2).unwrap();
    assert_eq!(memory2.fetches.load(Ordering::SeqCst), 1, "one blob is new");
}

#[test]
fn two_threads_materialising_one_snapshot_both_get_the_whole_tree() {
    let dir = repo();
    for i in 0..50 {
        write(dir.path(), &format!("many/{i}.txt"), &format!("file {i}\n"));
    }
    let local = Snapshot::of_worktree(dir.path()).unwrap();
    let memory = Memory::of(&local);
    let work_dir = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        // A fresh work dir area per round, so every round races from nothing.
        let round = tempfile::tempdir_in(work_dir.path()).unwrap();
        let barrier = std::sync::Barrier::new(2);
        let trees: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        // Each "agent process" opens the work dir itself.
                        let work = WorkDir::open(round.path()).unwrap();
                        barrier.wait();
                        materialise(&local.snapshot, &work, &memory).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(trees[0], trees[1]);
        assert_eq!(
            Snapshot::of_worktree(&trees[0]).unwrap().snapshot.digest(),
            local.snapshot.digest()
        );
        let leftovers = std::fs::read_dir(round.path().join("snapshots/tmp"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 0, "the losing copy is removed");
    }
}

#[test]
fn hostile_snapshots_are_refused_before_anything_is_written() {
    let work_dir = tempfile::tempdir().unwrap();
    let work = WorkDir::open(work_dir.path()).unwrap();
    let victim = tempfile::tempdir().unwrap();
    let memory = Memory::default();
    let payload = b"owned\n".to_vec();
    memory
        .blobs
        .lock()
        .unwrap()
        .insert(sha256(&payload), payload.clone());
    let escape = format!("../../../../../../..{}/owned", victim.path().display());
    for path in [escape.as_str(), "/tmp/owned-by-snapshot", "a/../../owned"] {
        let s = Snapshot {
            version: 1,
            entries: vec![Entry {
                path: path.into(),
                kind: EntryKind::File,
                mode: 0o644,
                digest: sha256(&payload),
                size: 6,
            }],
        };
        let err = materialise(&s, &work, &memory).unwrap_err();
        assert!(
            matches!(err, SnapshotError::Invalid { .. }),
            "{path}: {err}"
        );
    }
    // A link to the victim, then a file "through" it.
    let target = victim.path().display().to_string();
    memory
        .blobs
        .lock()
        .unwrap()
        .insert(sha256(target.as_bytes()), target.clone().into_bytes());
    let s = Snapshot::new(vec![
        Entry {
            path: "esc".into(),
            kind: EntryKind::Symlink,
            mode: 0o777,
            digest: sha256(target.as_bytes()),
            size: target.len() as u64,
        },
        Entry {
            path: "esc/owned".into(),
            kind: EntryKind::File,
            mode: 0o644,
            digest: sha256(&payload),
            size: 6,
        },
    ]);
    let err = materialise(&s, &work, &memory).unwrap_err();
    assert!(err.to_string().contains("below the entry \"esc\""), "{err}");
    assert_eq!(std::fs::read_dir(victim.path()).unwrap().count(), 0);
    assert!(!Path::new("/tmp/owned-by-snapshot").exists());
    // A blob whose content is not its digest's is refused too.
    let liar = Memory::default();
    liar.blobs
        .lock()
        .unwrap()
        .insert(sha256(b"claimed"), b"other".to_vec());
    let s = Snapshot::new(vec![Entry {
        path: "f".into(),
        kind: EntryKind::File,
        mode: 0o644,
        digest: sha256(b"claimed"),
        size: 7,
    }]);
    let err = materialise(&s, &work, &liar).unwrap_err();
    assert!(matches!(err, SnapshotError::DigestMismatch { .. }), "{err}");
}

fn prepared_project(prepare: &str) -> (tempfile::TempDir, psy_snapshot::LocalSnapshot) {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proj/psyduck.toml",
        &format!("{prepare}\n[[test]]\nname = \"t\"\ncommand = [\"true\"]\n"),
    );
    let local = Snapshot::of_worktree(dir.path()).unwrap();
    (dir, local)
}

#[test]
fn prepare_runs_once_per_snapshot_and_its_failure_fails_every_job() {
    let (_dir, local) =
        prepared_project("[prepare]\ncommand = [\"sh\", \"-c\", \"echo built >> prepared.txt\"]");
    let memory = Memory::of(&local);
    let work_dir = tempfile::tempdir().unwrap();
    let work = WorkDir::open(work_dir.path()).unwrap();
    let digest = local.snapshot.digest();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| Prepared::ensure(&work, &digest, "proj/psyduck.toml", &memory)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    let root = &results[0].root;
    assert_eq!(
        std::fs::read_to_string(root.join("proj/prepared.txt")).unwrap(),
        "built\n",
        "ran once, in the manifest's directory"
    );
    assert_eq!(
        results
            .iter()
            .filter(|p| p.prepare.as_ref().unwrap().ran_now)
            .count(),
        1
    );
    assert_eq!(results[0].manifest.tests[0].name, "t");

    let (_dir, failing) = prepared_project(
        "[prepare]\ncommand = [\"sh\", \"-c\", \"echo compiling; echo 'error: no' >&2; exit 3\"]",
    );
    let memory = Memory::of(&failing);
    let digest = failing.snapshot.digest();
    for _ in 0..2 {
        let err = Prepared::ensure(&work, &digest, "proj/psyduck.toml", &memory).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("exited with status 3") && text.contains("error: no"),
            "{text}"
        );
    }
    let err = Prepared::ensure(&work, &digest, "../psyduck.toml", &memory).unwrap_err();
    assert!(
        err.to_string().contains("not a plain relative path"),
        "{err}"
    );
}

#[test]
fn a_prepare_past_its_timeout_is_killed() {
    let (_dir, local) =
        prepared_project("[prepare]\ncommand = [\"sleep\", \"600\"]\ntimeout = \"200ms\"");
    let memory = Memory::of(&local);
    let work_dir = tempfile::tempdir().unwrap();
    let work = WorkDir::open(work_dir.path()).unwrap();
    let err = Prepared::ensure(
        &work,
        &local.snapshot.digest(),
        "proj/psyduck.toml",
        &memory,
    )
    .unwrap_err();
    assert!(err.to_string().contains("timed out after"), "{err}");
}
