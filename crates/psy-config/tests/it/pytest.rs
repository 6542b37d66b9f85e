//! Pytest discovery, when python3 and pytest are installed (skipped with a note otherwise).

use crate::{expand, parse_in, project};
use std::process::Command;

pub(crate) fn pytest_available() -> bool {
    let ok = Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: skipping pytest discovery test: `python3 -m pytest` is not available (pip install pytest)");
    }
    ok
}

pub(crate) const TEST_A: &str = "import pytest\n\ndef test_x():\n    pass\n\n@pytest.mark.parametrize('n', [1, 2])\ndef test_p(n):\n    assert n in (1, 2)\n";
pub(crate) const TEST_B: &str = "class TestK:\n    def test_m(self):\n        pass\n";

#[test]
fn one_test_per_node_id_or_per_file() {
    if !pytest_available() {
        return;
    }
    let p = project(&[
        ("tests/test_a.py", TEST_A, false),
        ("tests/test_b.py", TEST_B, false),
        ("other/test_c.py", "def test_c(): pass\n", false),
    ]);
    let per_test = "[[discover]]\npytest = { args = [\"tests\"] }\n";
    let specs = expand(&parse_in(p.path(), per_test).unwrap()).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "tests/test_a.py::test_x",
            "tests/test_a.py::test_p[1]",
            "tests/test_a.py::test_p[2]",
            "tests/test_b.py::TestK::test_m"
        ]
    );
    assert_eq!(
        specs[1].command,
        [
            "python3",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--junit-xml={psy-result-file}",
            "tests/test_a.py::test_p[1]"
        ]
    );
    assert_eq!(specs[1].cwd, p.path());
    assert!(
        !p.path().join(".pytest_cache").exists(),
        "collection must not write into the project"
    );

    // As the runner does: the result file is the attempt's, outside the project.
    let result = tempfile::NamedTempFile::new().unwrap();
    let args = specs[2].command[1..]
        .iter()
        .map(|a| a.replace(psy_model::RESULT_FILE, result.path().to_str().unwrap()));
    let out = Command::new(&specs[2].command[0])
        .args(args)
        .current_dir(&specs[2].cwd)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(result.path()).unwrap();
    assert!(junit.contains("<testcase"), "{junit}");

    let per_file = "[[discover]]\npytest = { per = \"file\", python = \"python3\" }\n";
    let specs = expand(&parse_in(p.path(), per_file).unwrap()).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["other/test_c.py", "tests/test_a.py", "tests/test_b.py"]
    );
    assert_eq!(specs[1].command.last().unwrap(), "tests/test_a.py");
}

#[test]
fn empty_and_broken_collections() {
    if !pytest_available() {
        return;
    }
    let empty = project(&[("README", "", false)]);
    assert_eq!(
        expand(&parse_in(empty.path(), "[[discover]]\npytest = true\n").unwrap()).unwrap(),
        vec![]
    );

    let broken = project(&[("test_bad.py", "def test_x(:\n    pass\n", false)]);
    let err = expand(&parse_in(broken.path(), "[[discover]]\npytest = true\n").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("psyduck.toml:1 (discover pytest): `python3 -m pytest --collect-only -q -p no:cacheprovider` failed (exit status: 2); last line of its stdout: "),
        "{err}"
    );
    assert!(err.contains("1 error"), "{err}");
}
