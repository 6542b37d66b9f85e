//! [`MemoryStore`]: an in-memory [`Store`] with SQLite's semantics (the conformance suite holds
//! it to them), for unit tests of the runner that need no database file.

use crate::{expected, ops, RunRecord, RunState, Store, StoreError, HISTORY_WINDOW};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, AttemptStatus, RunId, TestId, TestResult};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The name errors of a [`MemoryStore`] give as their database.
const DATABASE: &str = "(in memory)";

/// A write the database's constraints refuse (SQLite's primary and foreign keys).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("a run with this id already exists")]
    DuplicateRun,
    #[error("this attempt of this test is already recorded in this run")]
    DuplicateAttempt,
    #[error("this test already has a verdict in this run")]
    DuplicateVerdict,
    #[error("the run does not exist")]
    NoSuchRun,
}

/// Every fact a store keeps, in plain collections.
#[derive(Debug, Default)]
pub struct MemoryStore {
    runs: BTreeMap<String, RunRecord>,
    /// Verdicts by run, then test id (so a run's verdicts come out ordered by test id).
    tests: BTreeMap<String, BTreeMap<String, TestResult>>,
    /// Every attempt in the order recorded, which breaks ties in start time.
    attempts: Vec<(RunId, AttemptResult)>,
    imported: HashMap<TestId, Duration>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn refuse(op: String, why: Refused) -> StoreError {
        StoreError::Query {
            database: DATABASE.to_string(),
            op,
            source: why.into(),
        }
    }

    fn unknown_run(op: String, run_id: &RunId) -> StoreError {
        StoreError::UnknownRun {
            database: DATABASE.to_string(),
            op,
            run_id: run_id.to_string(),
        }
    }

    /// Attempts, newest first: by start time, later-recorded first among equal starts.
    fn newest_first(&self) -> impl Iterator<Item = &(RunId, AttemptResult)> {
        let mut all: Vec<_> = self.attempts.iter().enumerate().collect();
        all.sort_by(|(i, (_, a)), (j, (_, b))| (b.started_at_ms, j).cmp(&(a.started_at_ms, i)));
        all.into_iter().map(|(_, entry)| entry)
    }
}

impl Store for MemoryStore {
    fn begin_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        if self.runs.contains_key(run.run_id.as_str()) {
            return Err(Self::refuse(
                ops::begin_run(&run.run_id),
                Refused::DuplicateRun,
            ));
        }
        self.runs.insert(run.run_id.0.clone(), run.clone());
        Ok(())
    }

    fn record_attempt(&mut self, run_id: &RunId, result: &AttemptResult) -> Result<(), StoreError> {
        let op = || ops::record_attempt(run_id, result);
        if !self.runs.contains_key(run_id.as_str()) {
            return Err(Self::refuse(op(), Refused::NoSuchRun));
        }
        let duplicate = self.attempts.iter().any(|(r, a)| {
            r == run_id && a.test_id == result.test_id && a.attempt == result.attempt
        });
        if duplicate {
            return Err(Self::refuse(op(), Refused::DuplicateAttempt));
        }
        self.attempts.push((run_id.clone(), result.clone()));
        Ok(())
    }

    fn record_test(
        &mut self,
        run_id: &RunId,
        result: &TestResult,
        _name: &str,
        _variant: Option<&str>,
    ) -> Result<(), StoreError> {
        let op = || ops::record_test(run_id, result);
        if !self.runs.contains_key(run_id.as_str()) {
            return Err(Self::refuse(op(), Refused::NoSuchRun));
        }
        let verdicts = self.tests.entry(run_id.0.clone()).or_default();
        if verdicts.contains_key(result.test_id.as_str()) {
            return Err(Self::refuse(op(), Refused::DuplicateVerdict));
        }
        verdicts.insert(result.test_id.0.clone(), result.clone());
        Ok(())
    }

    fn finish_run(
        &mut self,
        run_id: &RunId,
        summary: &RunSummary,
        finished_at_ms: u64,
        state: RunState,
    ) -> Result<(), StoreError> {
        let run = self
            .runs
            .get_mut(run_id.as_str())
            .ok_or_else(|| Self::unknown_run(ops::finish_run(run_id), run_id))?;
        run.summary = summary.clone();
        run.finished_at_ms = Some(finished_at_ms);
        run.state = state;
        Ok(())
    }

    fn note_run(&mut self, run_id: &RunId, note: &str) -> Result<(), StoreError> {
        let run = self
            .runs
            .get_mut(run_id.as_str())
            .ok_or_else(|| Self::unknown_run(ops::note_run(run_id), run_id))?;
        run.note = Some(note.to_string());
        Ok(())
    }

    fn expected_durations(&self) -> Result<HashMap<TestId, Duration>, StoreError> {
        let mut windows: HashMap<String, Vec<u64>> = HashMap::new();
        for (_, a) in self.newest_first() {
            if matches!(a.status, AttemptStatus::Pass | AttemptStatus::Fail) {
                let window = windows.entry(a.test_id.0.clone()).or_default();
                if window.len() < HISTORY_WINDOW {
                    window.push(a.duration_ms);
                }
            }
        }
        Ok(expected::expected_durations(self.imported.clone(), windows))
    }

    fn import_durations(
        &mut self,
        durations: &HashMap<TestId, Duration>,
    ) -> Result<usize, StoreError> {
        // Stored to the microsecond, as the SQL backends do.
        self.imported.extend(durations.iter().map(|(id, d)| {
            let us = u64::try_from(d.as_micros()).unwrap_or(i64::MAX as u64);
            (id.clone(), Duration::from_micros(us))
        }));
        Ok(durations.len())
    }

    fn test_ids(&self, prefix: &str, limit: usize) -> Result<Vec<TestId>, StoreError> {
        // The SQL backends' range scan: ids from `prefix` up to `prefix` + U+10FFFF.
        let end = format!("{prefix}\u{10FFFF}");
        let mut ids: Vec<&str> = self
            .attempts
            .iter()
            .map(|(_, a)| a.test_id.as_str())
            .filter(|id| *id >= prefix && *id < end.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids
            .into_iter()
            .take(limit)
            .map(|id| TestId(id.to_string()))
            .collect())
    }

    fn abort_unfinished_runs(&mut self) -> Result<usize, StoreError> {
        let mut aborted = 0;
        for run in self.runs.values_mut() {
            if run.state != RunState::Running {
                continue;
            }
            let verdicts = self.tests.get(run.run_id.as_str());
            let statuses = verdicts
                .into_iter()
                .flat_map(|v| v.values().map(|t| t.status));
            let last_end = self
                .attempts
                .iter()
                .filter(|(r, _)| *r == run.run_id)
                .map(|(_, a)| a.started_at_ms.saturating_add(a.duration_ms))
                .max();
            let (finished, summary) =
                expected::aborted_summary(run.started_at_ms, run.summary.total, statuses, last_end);
            run.state = RunState::Aborted;
            run.finished_at_ms = Some(finished);
            run.summary = summary;
            aborted += 1;
        }
        Ok(aborted)
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs: Vec<&RunRecord> = self.runs.values().collect();
        runs.sort_by(|a, b| (b.started_at_ms, &b.run_id.0).cmp(&(a.started_at_ms, &a.run_id.0)));
        Ok(runs.into_iter().take(limit).cloned().collect())
    }

    fn run(&self, prefix: &str) -> Result<Option<RunRecord>, StoreError> {
        if prefix.is_empty() {
            return Ok(None);
        }
        if let Some(exact) = self.runs.get(prefix) {
            return Ok(Some(exact.clone()));
        }
        let found: Vec<&RunRecord> = self
            .runs
            .range(prefix.to_string()..)
            .take_while(|(id, _)| id.starts_with(prefix))
            .take(2)
            .map(|(_, run)| run)
            .collect();
        match found[..] {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(StoreError::AmbiguousRun {
                database: DATABASE.to_string(),
                prefix: prefix.to_string(),
                candidates: found.iter().map(|r| r.run_id.0.clone()).collect(),
            }),
        }
    }

    fn latest_run(&self) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.runs(1)?.pop())
    }

    fn test_results(&self, run_id: &RunId) -> Result<Vec<TestResult>, StoreError> {
        Ok(self
            .tests
            .get(run_id.as_str())
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default())
    }

    fn attempts(&self, run_id: &RunId) -> Result<Vec<AttemptResult>, StoreError> {
        let mut of_run: Vec<AttemptResult> = self
            .attempts
            .iter()
            .filter(|(r, _)| r == run_id)
            .map(|(_, a)| a.clone())
            .collect();
        of_run.sort_by(|a, b| (&a.test_id.0, a.attempt).cmp(&(&b.test_id.0, b.attempt)));
        Ok(of_run)
    }

    fn history(
        &self,
        test_id: &TestId,
        limit: usize,
    ) -> Result<Vec<(RunId, AttemptResult)>, StoreError> {
        Ok(self
            .newest_first()
            .filter(|(_, a)| a.test_id == *test_id)
            .take(limit)
            .cloned()
            .collect())
    }
}
