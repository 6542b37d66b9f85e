//! A real suite from PyPI (more-itertools' sdist, with its tests): every test's warm verdict
//! equals plain pytest's. Skipped when PyPI is unreachable, except under `CI=true`.

use crate::support::{plain_categories, run_all, start, warm_categories, PYTHON};
use std::path::{Path, PathBuf};
use std::process::Command;

const SDIST: &str = "more-itertools==10.5.0";

/// Downloads and unpacks the sdist into `dir`; `None` (with the reason printed) when PyPI is
/// unreachable and this is not CI.
pub(crate) fn more_itertools(dir: &Path) -> Option<PathBuf> {
    let download = Command::new(PYTHON)
        .args(["-m", "pip", "download", "--no-deps", "--no-binary", ":all:"])
        .args(["--timeout", "20", "--retries", "1", "-q", "-d"])
        .arg(dir)
        .arg(SDIST)
        .output()
        .expect("pip runs");
    if !download.status.success() {
        let why = String::from_utf8_lossy(&download.stderr);
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "CI=true: downloading {SDIST} from PyPI failed: {why}");
        eprintln!("skipped: PyPI is unreachable (`pip download {SDIST}` failed: {why})");
        return None;
    }
    let archive = dir.join("more-itertools-10.5.0.tar.gz");
    let unpacked = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("tar runs");
    assert!(unpacked.success(), "unpacking {}", archive.display());
    Some(dir.join("more-itertools-10.5.0"))
}

#[test]
fn more_itertools_gives_plain_pytests_verdicts() {
    let download = tempfile::tempdir().unwrap();
    let Some(tree) = more_itertools(download.path()) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let env = vec![("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string())];
    let mut parent = start(&tree, &[], &env);
    assert!(parent.items().len() > 600, "{}", parent.items().len());
    let warm = warm_categories(&run_all(&mut parent, 1, files.path()));
    let plain = plain_categories(&tree, &[], &env, parent.items());
    assert_eq!(plain.len(), parent.items().len());
    let differ: Vec<_> = warm
        .iter()
        .filter(|(id, category)| plain.get(*id) != Some(category))
        .map(|(id, category)| format!("{id}: warm {category}, plain {:?}", plain.get(id)))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    parent.shutdown().unwrap();
}
