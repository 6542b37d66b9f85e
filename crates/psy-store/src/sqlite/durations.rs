//! Expected durations for the scheduler's longest-first order and `--shard`, from recent
//! history, and for tests without history from durations imported with `psy import`.

use super::SqliteStore;
use crate::{expected, ops, StoreError, HISTORY_WINDOW};
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
            .map_err(|e| self.query_error(ops::EXPECTED_DURATIONS.to_string(), e))?;
        Ok(expected::expected_durations(
            self.imported_durations()?,
            windows,
        ))
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
            .map_err(|e| self.query_error(ops::IMPORTED_DURATIONS.to_string(), e))?;
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
            op: ops::import_durations(durations.len()),
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

#[cfg(test)]
mod tests {
    use crate::sqlite::tests::{run, store};
    use crate::Store;
    use psy_model::TestId;
    use std::time::{Duration, Instant};

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
