//! The suite `psy bench warm` measures: more-itertools' sdist from PyPI (or a given pytest
//! project) copied into the scratch project, the manifests of the psy series, and a venv with
//! pytest-xdist for the `pytest -n 2` series.

use super::harness::Project;
use anyhow::{bail, ensure, Context};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The real suite: several hundred small tests (664 with pytest 9), an sdist with its tests.
pub(crate) const SDIST: &str = "more-itertools==10.5.0";
const SDIST_FILE: &str = "more-itertools-10.5.0.tar.gz";

/// Every series runs with this environment: containers see the project read-only, and the
/// host series must not leave `__pycache__` behind that the later series would profit from.
pub(crate) const ENV: (&str, &str) = ("PYTHONDONTWRITEBYTECODE", "1");

/// How `psy run` runs the suite in one series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PsyMode {
    /// `per = "test"`: one cold container per node id.
    Cold,
    /// `per = "file"`: one cold container per test file.
    PerFile,
    /// `per = "test"`, `warm = true`.
    Warm,
}

impl PsyMode {
    pub(crate) fn label(self) -> &'static str {
        match self {
            PsyMode::Cold => "psy run, cold per test",
            PsyMode::PerFile => "psy run, per = \"file\"",
            PsyMode::Warm => "psy run, warm = true",
        }
    }

    /// The series' name in file names (`<project>/warm-bench-cold-1.log`).
    pub(crate) fn slug(self) -> &'static str {
        match self {
            PsyMode::Cold => "cold",
            PsyMode::PerFile => "per-file",
            PsyMode::Warm => "warm",
        }
    }

    /// The manifest of this series: pytest discovery in the suite's directory.
    pub(crate) fn manifest(self, python: &str, args: &[String]) -> String {
        let per = match self {
            PsyMode::PerFile => "file",
            PsyMode::Cold | PsyMode::Warm => "test",
        };
        let warm = match self {
            PsyMode::Warm => ", warm = true",
            PsyMode::Cold | PsyMode::PerFile => "",
        };
        let args = args
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "# psy bench warm: {}.\n[[discover]]\n\
             pytest = {{ args = [{args}], per = \"{per}\", python = {python:?}{warm} }}\n\
             env = {{ {} = \"{}\" }}\ntimeout = \"120s\"\nretries = 0\n",
            self.label(),
            ENV.0,
            ENV.1
        )
    }
}

/// Puts the suite into `project`: `suite`'s files, or the sdist downloaded with `pip download`
/// into `tools` and unpacked.
pub(crate) fn fill(
    project: &Project,
    suite: Option<&Path>,
    python: &str,
    tools: &Path,
) -> anyhow::Result<String> {
    if let Some(suite) = suite {
        let copied = Command::new("cp")
            .arg("-a")
            .arg(suite.join("."))
            .arg(project.path())
            .status()
            .context("running cp")?;
        ensure!(
            copied.success(),
            "copying {} failed ({copied})",
            suite.display()
        );
        return Ok(suite.display().to_string());
    }
    let download = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--no-binary", ":all:"])
        .args(["--timeout", "30", "--retries", "2", "-q", "-d"])
        .arg(tools)
        .arg(SDIST)
        .output()
        .with_context(|| format!("running {python} -m pip"))?;
    if !download.status.success() {
        bail!(
            "`pip download {SDIST}` failed (PyPI unreachable? pass --suite DIR): {}",
            String::from_utf8_lossy(&download.stderr).trim()
        );
    }
    let unpacked = Command::new("tar")
        .arg("xzf")
        .arg(tools.join(SDIST_FILE))
        .arg("--strip-components=1")
        .arg("-C")
        .arg(project.path())
        .status()
        .context("running tar")?;
    ensure!(
        unpacked.success(),
        "unpacking {SDIST_FILE} failed ({unpacked})"
    );
    Ok(format!("{SDIST} (sdist from PyPI)"))
}

/// A venv in `tools` that sees the host's packages (pytest) and has pytest-xdist; its
/// interpreter, or why there is none.
pub(crate) fn xdist_python(python: &str, tools: &Path) -> Result<PathBuf, String> {
    let venv = tools.join("xdist-venv");
    let quiet = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .output()
            .map_err(|e| e.to_string())
            .and_then(|out| match out.status.success() {
                true => Ok(()),
                false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            })
    };
    quiet(
        Command::new(python)
            .args(["-m", "venv", "--system-site-packages"])
            .arg(&venv),
    )
    .map_err(|e| format!("`{python} -m venv` failed: {e}"))?;
    let venv_python = venv.join("bin/python");
    quiet(Command::new(&venv_python).args([
        "-m",
        "pip",
        "install",
        "-q",
        "--timeout",
        "30",
        "pytest-xdist",
    ]))
    .map_err(|e| format!("`pip install pytest-xdist` failed: {e}"))?;
    Ok(venv_python)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_series_has_its_manifest() {
        let dir = Path::new("/suite");
        let args = vec!["tests/test_more.py".to_string()];
        let parse = |mode: PsyMode| {
            psy_config::parse(
                &dir.join("psyduck.toml"),
                dir,
                &mode.manifest("python3", &args),
            )
            .unwrap()
        };
        let options = |mode: PsyMode| match &parse(mode).discover[0].source {
            psy_config::DiscoverSource::Pytest(p) => p.clone(),
            other => panic!("{other:?}"),
        };
        let warm = options(PsyMode::Warm);
        assert!(warm.warm);
        assert_eq!(warm.args, args);
        assert_eq!(warm.per, psy_config::PytestPer::Test);
        assert!(!options(PsyMode::Cold).warm);
        assert_eq!(options(PsyMode::PerFile).per, psy_config::PytestPer::File);
        let env = &parse(PsyMode::Cold).discover[0].env;
        assert_eq!(env.get(ENV.0).map(String::as_str), Some(ENV.1));
    }
}
