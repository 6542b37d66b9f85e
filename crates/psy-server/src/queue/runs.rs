//! Runs as users see them: submit one with its jobs, list recent ones, show one with each
//! job's latest result, cancel one; and marking a run done when its last job is.

use super::{ts, QueueError};
use crate::Database;
use std::collections::HashSet;

pub use psy_fleet::wire::{
    Cancelled, JobCounts, JobRequest, JobResult, JobView, RunChanges, RunDetail, RunSummary,
    Submission,
};

/// How many runs `GET /api/runs` lists, newest first.
pub const RECENT_RUNS: i64 = 50;
/// The most jobs one run may have.
pub const MAX_JOBS_PER_RUN: usize = 1_000_000;

/// Checks a submission before it touches the database.
trait Validate {
    fn validate(&self) -> Result<(), QueueError>;
}

impl Validate for Submission {
    fn validate(&self) -> Result<(), QueueError> {
        let invalid = |why: String| Err(QueueError::Invalid(why));
        if self.jobs.is_empty() {
            return invalid("a run needs at least one job".into());
        }
        if self.jobs.len() > MAX_JOBS_PER_RUN {
            return invalid(format!(
                "a run has at most {MAX_JOBS_PER_RUN} jobs, got {}",
                self.jobs.len()
            ));
        }
        if self.metadata.as_ref().is_some_and(|m| !m.is_object()) {
            return invalid("run metadata must be a JSON object".into());
        }
        let mut seen = HashSet::new();
        for job in &self.jobs {
            let id = &job.test_id;
            if id.is_empty() {
                return invalid("a job has an empty test_id".into());
            }
            if !seen.insert(id.as_str()) {
                return invalid(format!("test {id:?} appears twice in the run"));
            }
            if job.cpu_millis < 0 || job.memory_bytes < 0 || job.expected_ms < 0 {
                return invalid(format!(
                    "test {id:?}: cpu_millis, memory_bytes and expected_ms must not be negative"
                ));
            }
            if job.max_attempts < 1 {
                return invalid(format!("test {id:?}: max_attempts must be at least 1"));
            }
        }
        Ok(())
    }
}

/// Queues `submission` for `submitter` (a token name); returns the run id.
pub async fn submit(
    db: &Database,
    submitter: &str,
    submission: &Submission,
) -> Result<i64, QueueError> {
    submission.validate()?;
    let op = format!(
        "submitting a run of {} jobs for {submitter:?}",
        submission.jobs.len()
    );
    let err = |e| db.query_error(&op, e);
    let jobs = &submission.jobs;
    let test_ids: Vec<&str> = jobs.iter().map(|j| j.test_id.as_str()).collect();
    let specs: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.spec).collect();
    let cpu: Vec<i64> = jobs.iter().map(|j| j.cpu_millis).collect();
    let memory: Vec<i64> = jobs.iter().map(|j| j.memory_bytes).collect();
    let labels: Vec<serde_json::Value> = jobs
        .iter()
        .map(|j| serde_json::Value::from_iter(j.labels.clone()))
        .collect();
    let expected: Vec<i64> = jobs.iter().map(|j| j.expected_ms).collect();
    let attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts).collect();
    let metadata = submission
        .metadata
        .clone()
        .unwrap_or_else(|| serde_json::json!({}));

    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(err)?;
    let run_id: i64 = tx
        .query_one(
            "INSERT INTO runs (name, submitter, priority, metadata) VALUES ($1, $2, $3, $4)
             RETURNING run_id",
            &[
                &submission.name,
                &submitter,
                &submission.priority,
                &metadata,
            ],
        )
        .await
        .map_err(err)?
        .get(0);
    tx.execute(
        "INSERT INTO jobs (run_id, test_id, spec, cpu_millis, memory_bytes, labels, expected_ms,
                           max_attempts)
         SELECT $1, * FROM unnest($2::text[], $3::jsonb[], $4::bigint[], $5::bigint[],
                                  $6::jsonb[], $7::bigint[], $8::int[])",
        &[
            &run_id, &test_ids, &specs, &cpu, &memory, &labels, &expected, &attempts,
        ],
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    tracing::info!(
        run = run_id,
        jobs = jobs.len(),
        submitter,
        priority = submission.priority,
        "run submitted"
    );
    Ok(run_id)
}

fn summary_sql(filter: &str) -> String {
    format!(
        "SELECT r.run_id, r.name, r.submitter, r.priority, r.state, r.metadata, {}, {},
                count(j.job_id) FILTER (WHERE j.state = 'queued'),
                count(j.job_id) FILTER (WHERE j.state = 'leased'),
                count(j.job_id) FILTER (WHERE j.state = 'done'),
                count(j.job_id) FILTER (WHERE j.state = 'cancelled'),
                count(j.job_id)
         FROM (SELECT * FROM runs {filter}) r LEFT JOIN jobs j ON j.run_id = r.run_id
         GROUP BY r.run_id, r.name, r.submitter, r.priority, r.state, r.metadata, r.created_at,
                  r.finished_at
         ORDER BY r.run_id DESC",
        ts("r.created_at"),
        ts("r.finished_at")
    )
}

fn summary_from_row(row: &tokio_postgres::Row) -> RunSummary {
    RunSummary {
        run_id: row.get(0),
        name: row.get(1),
        submitter: row.get(2),
        priority: row.get(3),
        state: row.get(4),
        metadata: row.get(5),
        created_at: row.get(6),
        finished_at: row.get(7),
        jobs: JobCounts {
            queued: row.get(8),
            leased: row.get(9),
            done: row.get(10),
            cancelled: row.get(11),
            total: row.get(12),
        },
    }
}

/// The [`RECENT_RUNS`] newest runs, newest first.
pub async fn list(db: &Database) -> Result<Vec<RunSummary>, QueueError> {
    let client = db.client().await?;
    let rows = client
        .query(
            &summary_sql("ORDER BY run_id DESC LIMIT $1"),
            &[&RECENT_RUNS],
        )
        .await
        .map_err(|e| db.query_error("listing runs", e))?;
    Ok(rows.iter().map(summary_from_row).collect())
}

/// Run `run_id` with each job's state and latest result.
pub async fn show(db: &Database, run_id: i64) -> Result<RunDetail, QueueError> {
    let op = format!("reading run {run_id}");
    let err = |e| db.query_error(&op, e);
    let client = db.client().await?;
    let run = summary(&client, db, run_id).await?;
    let rows = client.query(&jobs_sql(""), &[&run_id]).await.map_err(err)?;
    Ok(RunDetail {
        run,
        jobs: rows.iter().map(job_from_row).collect(),
    })
}

/// Run `run_id` and its jobs changed since `after` (a cursor of a previous answer; every job
/// without one).
///
/// The cursor is the oldest transaction still running when the answer's snapshot was taken
/// (`pg_snapshot_xmin`): every change by an older transaction was visible then, so it was in
/// that answer or an earlier one, while a change by a transaction still running (invisible
/// then) has an id at or above it and comes in a later answer. Jobs record the transaction
/// of their last change (`jobs.changed`, schema version 8). A job may come twice; none is
/// missed, whatever order concurrent transactions commit in (which a counter or timestamp
/// taken at the change would not give).
pub async fn changes(
    db: &Database,
    run_id: i64,
    after: Option<&str>,
) -> Result<RunChanges, QueueError> {
    let after = after
        .map(|cursor| {
            cursor.parse::<u64>().map_err(|_| {
                QueueError::Invalid(format!("cursor {cursor:?}: a cursor is a number"))
            })
        })
        .transpose()?
        .map(|c| c.to_string());
    let op = format!("reading the changes of run {run_id}");
    let err = |e| db.query_error(&op, e);
    let mut client = db.client().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(err)?;
    // The first statement takes the transaction's snapshot; the rest read through it.
    let cursor: String = tx
        .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
        .await
        .map_err(err)?
        .get(0);
    let run = summary(&tx, db, run_id).await?;
    let rows = tx
        .query(
            &jobs_sql("AND ($2::text IS NULL OR j.changed >= $2::text::xid8)"),
            &[&run_id, &after],
        )
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(RunChanges {
        run,
        jobs: rows.iter().map(job_from_row).collect(),
        cursor,
    })
}

/// Run `run_id`'s summary.
async fn summary(
    client: &impl deadpool_postgres::GenericClient,
    db: &Database,
    run_id: i64,
) -> Result<RunSummary, QueueError> {
    let row = client
        .query_opt(&summary_sql("WHERE run_id = $1"), &[&run_id])
        .await
        .map_err(|e| db.query_error(&format!("reading run {run_id}"), e))?
        .ok_or_else(|| QueueError::NotFound(format!("no run {run_id}")))?;
    Ok(summary_from_row(&row))
}

/// A run's jobs (`$1`) with their latest results, those `filter` keeps.
fn jobs_sql(filter: &str) -> String {
    format!(
        "SELECT j.job_id, j.test_id, j.state, j.attempt, j.max_attempts,
                r.attempt, r.status, r.duration_ms, r.exit_code, r.signal, r.output,
                r.output_ref, r.agent, r.fencing_token, {}, r.logs
         FROM jobs j LEFT JOIN LATERAL (
             SELECT * FROM results r WHERE r.job_id = j.job_id
             ORDER BY r.attempt DESC LIMIT 1) r ON true
         WHERE j.run_id = $1 {filter} ORDER BY j.job_id",
        ts("r.recorded_at")
    )
}

fn job_from_row(row: &tokio_postgres::Row) -> JobView {
    JobView {
        job_id: row.get(0),
        test_id: row.get(1),
        state: row.get(2),
        attempt: row.get(3),
        max_attempts: row.get(4),
        result: row.get::<_, Option<i32>>(5).map(|attempt| JobResult {
            attempt,
            status: row.get(6),
            duration_ms: row.get(7),
            exit_code: row.get(8),
            signal: row.get(9),
            output: row.get(10),
            output_ref: row.get(11),
            logs: row
                .get::<_, Option<serde_json::Value>>(15)
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default(),
            agent: row.get(12),
            fencing_token: row.get(13),
            recorded_at: row.get(14),
        }),
    }
}

/// Cancels run `run_id`: its queued and leased jobs are cancelled, the leases held on them end
/// (their heartbeats and results are refused from now on). Cancelling a cancelled run again
/// does nothing; a finished run cannot be cancelled.
pub async fn cancel(db: &Database, run_id: i64) -> Result<Cancelled, QueueError> {
    let op = format!("cancelling run {run_id}");
    let err = |e| db.query_error(&op, e);
    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(err)?;
    let state: Option<String> = tx
        .query_opt(
            "UPDATE runs SET state = CASE WHEN state = 'done' THEN state ELSE 'cancelled' END,
                 finished_at = COALESCE(finished_at, now())
             WHERE run_id = $1 RETURNING state",
            &[&run_id],
        )
        .await
        .map_err(err)?
        .map(|row| row.get(0));
    match state.as_deref() {
        None => return Err(QueueError::NotFound(format!("no run {run_id}"))),
        Some("done") => {
            return Err(QueueError::Conflict(format!(
                "run {run_id} is already done; there is nothing to cancel"
            )))
        }
        Some(_) => {}
    }
    let cancelled_jobs = tx
        .execute(
            "UPDATE jobs SET state = 'cancelled'
             WHERE run_id = $1 AND state IN ('queued', 'leased')",
            &[&run_id],
        )
        .await
        .map_err(err)?;
    // A statement of its own, so that it sees the leases of claims that committed while the
    // one above waited for their jobs. Locks jobs then leases, as a result report does.
    tx.execute(
        "UPDATE leases SET outcome = 'cancelled', ended_at = now()
         WHERE outcome IS NULL
           AND job_id IN (SELECT job_id FROM jobs WHERE run_id = $1 AND state = 'cancelled')",
        &[&run_id],
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    tracing::info!(run = run_id, cancelled_jobs, "run cancelled");
    Ok(Cancelled {
        run_id,
        cancelled_jobs,
    })
}

/// Marks runs done that have no job queued or leased, among those `filter` keeps.
fn finish_sql(filter: &str) -> String {
    format!(
        "UPDATE runs r SET state = 'done', finished_at = now()
         WHERE {filter} r.state IN ('queued', 'running')
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE run_id = r.run_id AND state = 'queued')
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE run_id = r.run_id AND state = 'leased')
         RETURNING r.run_id"
    )
}

/// Marks run `run_id` (or, given `None`, every active run) done if none of its jobs is queued
/// or leased; the runs finished. Called after a result's transaction committed, so that of two
/// last results committed at once, the later one's check sees both; and by claims that found
/// nothing, so a run whose last reporter's server died between commit and check still ends.
pub async fn finish_if_done(
    client: &deadpool_postgres::Object,
    db: &Database,
    run_id: Option<i64>,
) -> Result<Vec<i64>, QueueError> {
    let op = match run_id {
        Some(id) => format!("finishing run {id}"),
        None => "finishing runs with nothing left to do".to_string(),
    };
    let err = |e| db.query_error(&op, e);
    let rows = match run_id {
        Some(id) => {
            let finish = client
                .prepare_cached(&finish_sql("r.run_id = $1 AND"))
                .await
                .map_err(err)?;
            client.query(&finish, &[&id]).await
        }
        None => {
            let finish = client.prepare_cached(&finish_sql("")).await.map_err(err)?;
            client.query(&finish, &[]).await
        }
    }
    .map_err(err)?;
    let finished: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
    for run in &finished {
        tracing::info!(run, "run done");
    }
    Ok(finished)
}
