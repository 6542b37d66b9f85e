//! `psy server gc`: removes the snapshots and blobs that no run newer than a cutoff needs.
//!
//! Kept, whatever their age: a snapshot named by a job of a run created or finished after the
//! cutoff, or still queued or running; a blob that is a file of a kept snapshot, or a log of
//! a result of such a run. Everything created after the cutoff is kept too, so uploads in
//! flight (blobs sent, their snapshot or run not yet) survive a collection. Runs, their jobs
//! and results are never removed: a result of an old run keeps naming its logs, and
//! `psy log` then says they were collected.
//!
//! One transaction; snapshots first, so the blobs of those removed go in the same pass.
//! A submission that reuses a blob older than the cutoff (the server said it had it) while a
//! collection removes it gets a 400 naming the blob when it stores its snapshot, and
//! uploads it again on its next try.

use crate::{Database, ServerError};
use std::time::Duration;

/// What a collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub snapshots: u64,
    pub blobs: u64,
    /// The removed blobs' bytes.
    pub bytes: i64,
}

/// Runs that keep what they name: created or finished after the cutoff (`$1`), or active.
const RECENT_RUNS: &str = "
    SELECT r.run_id FROM runs r
    WHERE r.created_at >= $1 OR r.finished_at >= $1 OR r.state IN ('queued', 'running')";

fn delete_snapshots() -> String {
    format!(
        "WITH recent AS ({RECENT_RUNS}),
         named AS (
            SELECT DISTINCT j.spec->'source'->'snapshot'->>'digest' AS digest
            FROM jobs j JOIN recent USING (run_id)
            WHERE j.spec->'source'->'snapshot'->>'digest' IS NOT NULL)
         DELETE FROM snapshots s
         WHERE s.created_at < $1 AND NOT EXISTS (SELECT 1 FROM named n WHERE n.digest = s.digest)"
    )
}

fn delete_blobs() -> String {
    format!(
        "WITH recent AS ({RECENT_RUNS}),
         in_snapshots AS (
            SELECT DISTINCT e->>'digest' AS digest
            FROM snapshots s, jsonb_array_elements(s.document::jsonb->'entries') e),
         in_logs AS (
            SELECT DISTINCT l.digest
            FROM results res JOIN jobs j ON j.job_id = res.job_id JOIN recent USING (run_id),
                 jsonb_each_text(res.logs) AS l(name, digest)
            WHERE res.logs IS NOT NULL),
         gone AS (
            DELETE FROM blobs b
            WHERE b.created_at < $1
              AND NOT EXISTS (SELECT 1 FROM in_snapshots i WHERE i.digest = b.digest)
              AND NOT EXISTS (SELECT 1 FROM in_logs i WHERE i.digest = b.digest)
            RETURNING b.size)
         SELECT count(*), COALESCE(sum(size), 0)::bigint FROM gone"
    )
}

/// Removes the snapshots and blobs that no run newer than `older_than` ago needs, and that
/// are older than that themselves.
pub async fn collect(db: &Database, older_than: Duration) -> Result<Collected, ServerError> {
    let op = format!("collecting snapshots and blobs older than {older_than:?}");
    let err = |e| db.query_error(&op, e);
    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(err)?;
    let cutoff: std::time::SystemTime = tx
        .query_one(
            "SELECT now() - make_interval(secs => $1)",
            &[&older_than.as_secs_f64()],
        )
        .await
        .map_err(err)?
        .get(0);
    let snapshots = tx
        .execute(&delete_snapshots(), &[&cutoff])
        .await
        .map_err(err)?;
    let row = tx
        .query_one(&delete_blobs(), &[&cutoff])
        .await
        .map_err(err)?;
    let (blobs, bytes): (i64, i64) = (row.get(0), row.get(1));
    tx.commit().await.map_err(err)?;
    let collected = Collected {
        snapshots,
        blobs: blobs.max(0) as u64,
        bytes,
    };
    tracing::info!(
        snapshots,
        blobs,
        bytes,
        database = %db.described(),
        "collected snapshots and blobs no recent run needs"
    );
    Ok(collected)
}
