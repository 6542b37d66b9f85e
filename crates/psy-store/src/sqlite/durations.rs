//! Expected durations for the scheduler's longest-first order and `--shard`, from recent
//! history, and for tests without history from durations imported with `psy import`.

use super::SqliteStore;
use crate::{StoreError, HISTORY_WINDOW};
use psy_model::TestId;
use std::collections::HashMap;
use std::time::Duration;

/// The last `?1` pass/fail durations of every id, in one statement whose cost grows with the
/// number of ids, not with the length of history: `ids` walks the distinct test ids by
/// skipping along the history index (one seek per id), then each id's newest attempts are read
/// from the same index, stopping after the window. Ties in start time (two attempts of one id
/// in the same millisecond) may fall either way at the window's edge.
const WINDOWS: &str = "
WITH RECURSIVE ids(test_id) AS (
    SELECT MIN(test_id) FROM attempts
    UNION ALL
    SELECT (SELECT MIN(a.test_id) FROM attempts a WHERE a.test_id > ids.test_id)
    FROM ids WHERE ids.test_id IS NOT NULL
)
SELECT ids.test_id, recent.duration_ms
FROM ids JOIN attempts recent ON recent.rowid IN (
    SELECT rowid FROM attempts
    WHERE test_id = ids.test_id AND status IN ('pass', 'fail')
    ORDER BY started_at_ms DESC
    LIMIT ?1
)
";

impl SqliteStore {
    pub(super) fn median_durations(&self) -> Result<HashMap<TestId, Duration>, StoreError> {
        let mut windows: HashMap<String, Vec<u64>> = HashMap::new();
        self.conn
            .prepare_cached(WINDOWS)
            .and_then(|mut stmt| {
                let mut rows = stmt.query([HISTORY_WINDOW as i64])?;
                while let Some(row) = rows.next()? {
                    let id = row.get_ref(0)?.as_str()?;
                    // A negative duration (a corrupted row) counts as zero rather than
                    // failing every later run's scheduling.
                    let duration = row.get::<_, i64>(1)?.max(0) as u64;
                    match windows.get_mut(id) {
                        Some(window) => window.push(duration),
                        None => {
                            windows.insert(id.to_owned(), vec![duration]);
                        }
                    }
                }
                Ok(())
            })
            .map_err(|e| self.query_error("computing expected test durations".to_string(), e))?;
        let mut expected = self.imported_durations()?;
        expected.extend(
            windows
                .into_iter()
                .map(|(id, mut window)| (TestId(id), median(&mut window))),
        );
        Ok(expected)
    }

    fn imported_durations(&self) -> Result<HashMap<TestId, Duration>, StoreError> {
        let mut imported = HashMap::new();
        self.conn
            .prepare_cached("SELECT test_id, duration_us FROM imported_durations")
            .and_then(|mut stmt| {
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let us = row.get::<_, i64>(1)?.max(0) as u64;
                    imported.insert(TestId(row.get(0)?), Duration::from_micros(us));
                }
                Ok(())
            })
            .map_err(|e| self.query_error("reading imported test durations".to_string(), e))?;
        Ok(imported)
    }

    /// Replaces the imported duration of each id in `durations`, in one transaction.
    pub(super) fn upsert_imported(
        &mut self,
        durations: &HashMap<TestId, Duration>,
    ) -> Result<usize, StoreError> {
        let database = self.database.clone();
        let err = |source: rusqlite::Error| StoreError::Query {
            database: database.clone(),
            op: format!("importing {} test durations", durations.len()),
            source: source.into(),
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO imported_durations (test_id, duration_us) VALUES (?1, ?2)
                     ON CONFLICT (test_id) DO UPDATE SET duration_us = excluded.duration_us",
                )
                .map_err(err)?;
            for (id, d) in durations {
                let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
                insert
                    .execute(rusqlite::params![id.as_str(), us])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(durations.len())
    }
}

/// The middle value, or the mean of the two middle values (to the microsecond) for an even
/// count. `window` is never empty: ids without durations have no row.
fn median(window: &mut [u64]) -> Duration {
    window.sort_unstable();
    let n = window.len();
    let (lo, hi) = (window[(n - 1) / 2], window[n / 2]);
    Duration::from_micros(lo.saturating_add(hi).saturating_mul(500))
}

#[cfg(test)]
mod tests {
    use crate::sqlite::tests::{attempt, record_series, run, store};
    use crate::Store;
    use psy_model::AttemptStatus::{Error, Fail, Oom, Pass, Timeout};
    use psy_model::{RunId, TestId};
    use std::time::{Duration, Instant};

    fn expected(store: &impl Store, test: &str) -> Option<Duration> {
        store
            .expected_durations()
            .unwrap()
            .get(&TestId(test.into()))
            .copied()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let (_dir, mut s) = store();
        record_series(&mut s, "odd", &[(Pass, 30), (Fail, 10), (Pass, 20)]);
        record_series(
            &mut s,
            "even",
            &[(Pass, 10), (Pass, 40), (Fail, 20), (Pass, 30)],
        );
        record_series(&mut s, "half", &[(Pass, 10), (Pass, 11)]);
        record_series(&mut s, "one", &[(Pass, 7)]);
        assert_eq!(expected(&s, "odd"), Some(Duration::from_millis(20)));
        assert_eq!(expected(&s, "even"), Some(Duration::from_millis(25)));
        assert_eq!(expected(&s, "half"), Some(Duration::from_micros(10_500)));
        assert_eq!(expected(&s, "one"), Some(Duration::from_millis(7)));
        assert_eq!(expected(&s, "never-seen"), None);
        assert_eq!(s.expected_durations().unwrap().len(), 4);
    }

    #[test]
    fn only_the_last_twenty_by_start_time_count() {
        let (_dir, mut s) = store();
        s.begin_run(&run("r", 0)).unwrap();
        let r = RunId("r".into());
        // Twenty recent 10 ms attempts recorded first, fifteen old 1 ms ones after them: the
        // window follows start times, not insertion order (by insertion the median is 1 ms).
        for i in 0..20 {
            s.record_attempt(&r, &attempt("t", i + 16, Pass, 10_000 + u64::from(i), 10))
                .unwrap();
        }
        for i in 0..15 {
            s.record_attempt(&r, &attempt("t", i + 1, Pass, u64::from(i), 1))
                .unwrap();
        }
        assert_eq!(expected(&s, "t"), Some(Duration::from_millis(10)));
        // Eleven newer 1 s attempts leave 9 x 10 ms + 11 x 1 s in the window; over the whole
        // history (15 x 1 ms, 20 x 10 ms, 11 x 1 s) the median would still be 10 ms.
        for i in 0..11 {
            s.record_attempt(
                &r,
                &attempt("t", 100 + i, Fail, 20_000 + u64::from(i), 1_000),
            )
            .unwrap();
        }
        assert_eq!(expected(&s, "t"), Some(Duration::from_millis(1_000)));
    }

    #[test]
    fn errors_timeouts_and_oom_are_ignored() {
        let (_dir, mut s) = store();
        let mut series = vec![(Pass, 10), (Fail, 30)];
        // Later non-pass/fail attempts neither count nor push the good ones out of the window.
        series.extend(
            [(Error, 1), (Timeout, 5_000), (Oom, 7_000)]
                .iter()
                .cycle()
                .take(30),
        );
        record_series(&mut s, "t", &series);
        record_series(&mut s, "broken", &[(Error, 1), (Timeout, 9_000)]);
        assert_eq!(expected(&s, "t"), Some(Duration::from_millis(20)));
        assert_eq!(expected(&s, "broken"), None);
    }

    #[test]
    fn imported_durations_fill_the_gaps_and_history_wins() {
        let (_dir, mut s) = store();
        record_series(&mut s, "local", &[(Pass, 10)]);
        let imported = [("local", 99), ("remote", 40)]
            .iter()
            .map(|&(id, ms)| (TestId(id.into()), Duration::from_millis(ms)))
            .collect();
        assert_eq!(s.import_durations(&imported).unwrap(), 2);
        assert_eq!(expected(&s, "local"), Some(Duration::from_millis(10)));
        assert_eq!(expected(&s, "remote"), Some(Duration::from_millis(40)));
        // A second import replaces the first one's value.
        let again = [(TestId("remote".into()), Duration::from_micros(1_500))].into();
        s.import_durations(&again).unwrap();
        assert_eq!(expected(&s, "remote"), Some(Duration::from_micros(1_500)));
    }

    #[test]
    fn ten_thousand_ids_in_one_query() {
        let (_dir, mut s) = store();
        s.begin_run(&run("big", 0)).unwrap();
        let tx = s.conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO attempts (run_id, test_id, attempt, status, started_at_ms,
                        duration_ms, stdout_path, stderr_path)
                     VALUES ('big', ?1, ?2, 'pass', ?3, ?4, '', '')",
                )
                .unwrap();
            for id in 0..10_000u32 {
                for n in 0..25u32 {
                    let test = format!("suite/test-{id:05}");
                    insert
                        .execute(rusqlite::params![test, n, n, (id % 97) + n])
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
        let start = Instant::now();
        let durations = s.expected_durations().unwrap();
        println!(
            "expected_durations over 10,000 ids x 25 attempts: {:?}",
            start.elapsed()
        );
        assert_eq!(durations.len(), 10_000);
        // Window = attempts 5..25, durations k+5..k+24 with k = id % 97: median k + 14.5.
        assert_eq!(
            durations[&TestId("suite/test-00100".into())],
            Duration::from_micros(17_500)
        );
    }
}
