//! Removing a tree psy made for a test (an attempt's writable image layer, a run's volumes and
//! scratch directories) even where overlayfs left directories without permissions: its
//! `workdir/work` and `workdir/work/incompat` are mode 000. Root does not care; psy without
//! root owns them but cannot list them, so a plain `remove_dir_all` fails there.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Removes `path` and everything below; when that is refused, gives the owner full access to
/// every directory below (those psy owns) and tries once more.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            open_dirs(path);
            std::fs::remove_dir_all(path)
        }
        other => other,
    }
}

/// `chmod u+rwx` on `dir` and every directory below it that can then be read (symlinks are
/// not followed); failures are left to the removal to report.
fn open_dirs(dir: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                open_dirs(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_with_closed_directories_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        let closed = layer.join("work/work");
        std::fs::create_dir_all(closed.join("incompat/volatile")).unwrap();
        std::fs::write(layer.join("work/file"), "x").unwrap();
        for d in [closed.join("incompat"), closed.clone()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o000)).unwrap();
        }
        // (As root the first removal succeeds already: the opening is checked on its own.)
        open_dirs(&layer);
        for d in [closed.join("incompat"), closed.clone()] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode();
            assert_eq!(mode & 0o700, 0o700, "{}", d.display());
        }
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&layer).unwrap();
        assert!(!layer.exists());
        assert_eq!(
            remove_tree(&layer).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
