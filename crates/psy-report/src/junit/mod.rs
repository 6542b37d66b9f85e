//! The JUnit XML report for CI systems, written once at the end of the run.

mod case;

use crate::{OutputSource, ReportError, Reporter};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, Resources, RunEvent, RunId, TestId, TestResult};
use quick_junit::{Property, Report, TestCase, TestSuite};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the JUnit report is named and how much output it keeps.
#[derive(Clone, Debug)]
pub struct JunitOptions {
    /// Name of `<testsuites>` and its one `<testsuite>`; by default the run id, or "psyduck"
    /// when the run never started.
    pub suite_name: Option<String>,
    /// Last lines of stdout and of stderr kept per failed attempt.
    pub tail_lines: usize,
    /// Each test's `classname` (its [`psy_model::TestSpec::group`]: the test binary, the
    /// pytest file, the discover entry); a test not listed gets the module part of its id.
    pub classnames: HashMap<TestId, String>,
    /// Where tests' output is read.
    pub logs: OutputSource,
}

impl Default for JunitOptions {
    fn default() -> Self {
        JunitOptions {
            suite_name: None,
            tail_lines: 100,
            classnames: HashMap::new(),
            logs: OutputSource::default(),
        }
    }
}

/// Collects results and writes JUnit XML to a file at `RunFinished` (or, with what it has, when
/// finished early). The file is replaced atomically, so a reader never sees half a report.
#[derive(Debug)]
pub struct JunitReporter {
    path: PathBuf,
    options: JunitOptions,
    run_id: Option<RunId>,
    started_at_ms: Option<u64>,
    warnings: Vec<String>,
    limits: HashMap<TestId, Resources>,
    attempts: HashMap<TestId, Vec<AttemptResult>>,
    finished: Vec<TestResultCase>,
    written: bool,
}

/// A finished test whose case is built when the report is written (the suite name may come late).
#[derive(Debug)]
struct TestResultCase {
    result: TestResult,
    attempts: Vec<AttemptResult>,
    limits: Option<Resources>,
}

impl JunitReporter {
    pub fn new(path: impl Into<PathBuf>, options: JunitOptions) -> Self {
        JunitReporter {
            path: path.into(),
            options,
            run_id: None,
            started_at_ms: None,
            warnings: Vec::new(),
            limits: HashMap::new(),
            attempts: HashMap::new(),
            finished: Vec::new(),
            written: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn suite_name(&self) -> String {
        self.options
            .suite_name
            .clone()
            .or_else(|| self.run_id.as_ref().map(|id| id.to_string()))
            .unwrap_or_else(|| "psyduck".to_string())
    }

    /// The report as XML; `summary` is `None` when the run was aborted.
    pub fn to_xml(&self, summary: Option<&RunSummary>) -> Result<String, ReportError> {
        let name = self.suite_name();
        let mut suite = TestSuite::new(name.as_str());
        if let Some(id) = &self.run_id {
            suite.add_property(Property::new("run-id", id.as_str()));
        }
        for w in &self.warnings {
            suite.add_property(Property::new("warning", w.as_str()));
        }
        match summary {
            Some(s) => {
                suite.add_property(Property::new("not-run", s.not_run.to_string()));
                suite.set_time(Duration::from_millis(s.duration_ms));
            }
            None => {
                suite.add_property(Property::new("aborted", "true"));
            }
        }
        if let Some(ts) = self.started_at_ms.and_then(|ms| i64::try_from(ms).ok()) {
            if let Some(t) = chrono::DateTime::from_timestamp_millis(ts) {
                suite.set_timestamp(t.fixed_offset());
            }
        }
        let tail = self.options.tail_lines;
        suite.add_test_cases(self.finished.iter().map(|f| -> TestCase {
            let mut attempts = f.attempts.clone();
            let id = f.result.test_id.as_str();
            let classname = match self.options.classnames.get(&f.result.test_id) {
                Some(group) => group.as_str(),
                None => case::classname(id, &name),
            };
            let logs = self.options.logs.of_run(self.run_id.as_ref());
            case::test_case(
                &f.result,
                &mut attempts,
                f.limits.as_ref(),
                classname,
                logs,
                tail,
            )
        }));

        let mut report = Report::new(name.as_str());
        if let Some(time) = suite.time {
            report.set_time(time);
        }
        report.add_test_suite(suite);
        report
            .to_string()
            .map_err(|source| ReportError::JunitSerialize {
                path: self.path.clone(),
                source,
            })
    }

    fn write(&mut self, summary: Option<&RunSummary>) -> Result<(), ReportError> {
        if self.written {
            return Ok(());
        }
        self.written = true;
        let xml = self.to_xml(summary)?;
        let io_err = |source| ReportError::JunitWrite {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        fs::write(&tmp, xml).map_err(io_err)?;
        fs::rename(&tmp, &self.path).map_err(io_err)?;
        tracing::info!(path = %self.path.display(), tests = self.finished.len(), "wrote JUnit report");
        Ok(())
    }
}

impl Reporter for JunitReporter {
    fn on_event(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        match event {
            RunEvent::RunStarted {
                run_id,
                started_at_ms,
                ..
            } => {
                self.run_id = Some(run_id.clone());
                self.started_at_ms = Some(*started_at_ms);
            }
            RunEvent::Warning { message } => {
                if !self.warnings.contains(message) {
                    self.warnings.push(message.clone());
                }
            }
            RunEvent::AttemptStarted {
                test_id, resources, ..
            } => {
                self.limits.insert(test_id.clone(), resources.clone());
            }
            RunEvent::AttemptFinished { result } => {
                self.attempts
                    .entry(result.test_id.clone())
                    .or_default()
                    .push(result.clone());
            }
            RunEvent::AttemptRetrying { .. } => {}
            RunEvent::TestFinished { result } => {
                let case = TestResultCase {
                    attempts: self.attempts.remove(&result.test_id).unwrap_or_default(),
                    limits: self.limits.remove(&result.test_id),
                    result: result.clone(),
                };
                self.finished.push(case);
            }
            RunEvent::RunFinished { run_id, summary } => {
                self.run_id = Some(run_id.clone());
                self.write(Some(summary))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        self.write(None)
    }
}
