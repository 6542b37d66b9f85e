//! Copies of the fixture projects in `tests/fixtures/` (a Rust crate, a pytest suite), each in a
//! throwaway project directory so runs do not share builds, stores or results.

use crate::support::Project;
use std::path::{Path, PathBuf};

/// `tests/fixtures/<name>` of the repository.
fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A project holding a copy of fixture `name` (without its build or psy state).
pub(crate) fn copy(name: &str) -> Project {
    let project = Project::empty();
    copy_tree(&source(name), project.dir());
    project
}

fn copy_tree(from: &Path, to: &Path) {
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if [".psyduck", "target", "__pycache__"].contains(&name.to_string_lossy().as_ref()) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), dst.display()));
        }
    }
}

/// Whether `program args` runs and exits 0 (a tool the test needs is installed); prints why
/// not.
pub(crate) fn tool_works(program: &str, args: &[&str]) -> bool {
    let works = std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        eprintln!("skipped: `{program} {}` does not run here", args.join(" "));
    }
    works
}
