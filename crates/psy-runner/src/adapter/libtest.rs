//! libtest's verdict on one test: its closing `test result:` line says whether the test ran or
//! was `#[ignore]`d (both exit 0), and catches a name that no longer matches any test.

use super::Verdict;
use psy_model::{AttemptStatus, TestSpec};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// libtest prints its summary last; the end of the log is enough, however much the test wrote.
const TAIL_BYTES: u64 = 64 * 1024;

pub(super) fn verdict(code: i32, stdout: &Path, test: &TestSpec) -> Option<Verdict> {
    if code != 0 {
        return None;
    }
    let tail = match read_tail(stdout) {
        Ok(tail) => tail,
        Err(e) => {
            tracing::warn!(test = %test.id, "reading {}: {e}", stdout.display());
            return None;
        }
    };
    let counts = summary(&tail)?;
    let name = test.env.get("NEXTEST_TEST_NAME").map_or("", String::as_str);
    if counts.passed == 0 && counts.failed == 0 && counts.ignored > 0 {
        let reason = ignore_reason(&tail, name);
        return Some(Verdict {
            status: AttemptStatus::Skipped,
            message: Some(match reason {
                Some(reason) => format!("ignored: {reason}"),
                None => "ignored".to_string(),
            }),
        });
    }
    if counts.passed == 0 && counts.failed == 0 {
        return Some(Verdict {
            status: AttemptStatus::Error,
            message: Some(format!(
                "the test binary ran no test named `{name}` (the list is older than the binary? rerun psy to rebuild)"
            )),
        });
    }
    None
}

fn read_tail(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// The counts of the last `test result: ok. 1 passed; 0 failed; 0 ignored; ...` line.
fn summary(output: &str) -> Option<Counts> {
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("test result: "))?;
    let mut counts = Counts::default();
    for part in line.split(['.', ';']) {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => counts.passed = n,
            "failed" => counts.failed = n,
            "ignored" => counts.ignored = n,
            _ => {}
        }
    }
    Some(counts)
}

/// The reason of `#[ignore = "reason"]`, from `test NAME ... ignored, reason`.
fn ignore_reason(output: &str, name: &str) -> Option<String> {
    let prefix = format!("test {name} ... ignored, ");
    output
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|r| r.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IGNORED: &str = "\nrunning 1 test\ntest it::slow ... ignored, needs a GPU\n\ntest result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 2 filtered out; finished in 0.00s\n\n";

    #[test]
    fn reads_the_summary_line() {
        assert_eq!(
            summary(IGNORED),
            Some(Counts {
                passed: 0,
                failed: 0,
                ignored: 1
            })
        );
        let failed =
            "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(summary(failed).map(|c| c.failed), Some(1));
        assert_eq!(summary("hello\n"), None);
        assert_eq!(
            ignore_reason(IGNORED, "it::slow").as_deref(),
            Some("needs a GPU")
        );
        assert_eq!(ignore_reason(IGNORED, "it::other"), None);
    }

    fn verdict_of(output: &str, code: i32) -> Option<Verdict> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stdout");
        std::fs::write(&log, output).unwrap();
        let mut test = crate::attempt::tests::spec();
        test.env
            .insert("NEXTEST_TEST_NAME".into(), "it::slow".into());
        verdict(code, &log, &test)
    }

    #[test]
    fn ignored_is_skipped_and_nothing_run_is_an_error() {
        let skipped = verdict_of(IGNORED, 0).unwrap();
        assert_eq!(skipped.status, AttemptStatus::Skipped);
        assert_eq!(skipped.message.as_deref(), Some("ignored: needs a GPU"));
        let none = "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out\n";
        let error = verdict_of(none, 0).unwrap();
        assert_eq!(error.status, AttemptStatus::Error);
        assert!(error.message.unwrap().contains("no test named `it::slow`"));
        let passed = "test it::slow ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored\n";
        assert_eq!(verdict_of(passed, 0), None);
        // A failing exit status stands, whatever the log says.
        assert_eq!(verdict_of(IGNORED, 101), None);
        // A custom harness without libtest's summary keeps its exit status.
        assert_eq!(verdict_of("all good\n", 0), None);
    }
}
