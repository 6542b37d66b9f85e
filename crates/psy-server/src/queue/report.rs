//! `result`: an agent reports how an attempt ended. Recorded exactly once, under a valid lease:
//! one statement moves the job on (done, or queued again for its next attempt when it failed
//! with attempts left), ends the lease and records the result.
//! A refused or repeated report is then looked at with [`lease::record`](super::lease::record).

use super::lease::{self, Holder, RecordedResult};
use super::{runs, QueueError};
use crate::Database;
use psy_model::AttemptStatus;

pub use psy_fleet::wire::{Recorded, ResultReport};

/// The name a status is stored under (its JSON name).
fn status_name(status: AttemptStatus) -> &'static str {
    match status {
        AttemptStatus::Pass => "pass",
        AttemptStatus::Fail => "fail",
        AttemptStatus::Timeout => "timeout",
        AttemptStatus::Oom => "oom",
        AttemptStatus::Error => "error",
        AttemptStatus::Skipped => "skipped",
    }
}

// The job's row is the lock: `moved` takes it (waiting for a claim's reap or a cancel that
// holds it, then checking again that the job is still leased), and a lease's outcome only
// changes while its job's row is locked (reap, report) or after the job left `leased`
// (cancel), so the lease read here cannot change before `ended` updates it.
fn record_sql() -> String {
    format!(
        "
WITH moved AS (
    UPDATE jobs j SET state = CASE WHEN $3 AND j.attempt < j.max_attempts
                                   THEN 'queued' ELSE 'done' END,
                      attempt = CASE WHEN $3 AND j.attempt < j.max_attempts
                                     THEN j.attempt + 1 ELSE j.attempt END
    FROM leases l
    WHERE l.lease_id = $1 AND l.fencing_token = $2 AND l.outcome IS NULL
      AND j.job_id = l.job_id AND j.state = 'leased' AND {}
    RETURNING l.lease_id, l.job_id, l.attempt, l.agent, l.fencing_token, j.run_id,
              j.state = 'queued' AS retry),
ended AS (
    UPDATE leases l SET outcome = 'reported', ended_at = now()
    FROM moved m WHERE l.lease_id = m.lease_id),
recorded AS (
    INSERT INTO results (job_id, attempt, lease_id, fencing_token, agent, status, duration_ms,
                         exit_code, signal, output, output_ref)
    SELECT job_id, attempt, lease_id, fencing_token, agent, $4, $5, $6, $7, $8, $9 FROM moved)
SELECT m.job_id, m.run_id, m.attempt, m.retry,
       EXISTS (SELECT 1 FROM jobs q WHERE q.run_id = m.run_id AND q.state = 'queued')
FROM moved m",
        lease::held_by(10)
    )
}

/// The fields of a report that a repeated report must match.
trait AsRecorded {
    fn recorded(&self) -> RecordedResult;
}

impl AsRecorded for ResultReport {
    fn recorded(&self) -> RecordedResult {
        RecordedResult {
            status: status_name(self.status).to_string(),
            duration_ms: self.duration_ms,
            exit_code: self.exit_code,
            signal: self.signal,
            output: self.output.clone(),
            output_ref: self.output_ref.clone(),
        }
    }
}

/// Records `report` under lease `lease_id`, presented by `holder`.
pub async fn record(
    db: &Database,
    lease_id: i64,
    holder: &Holder,
    report: &ResultReport,
) -> Result<Recorded, QueueError> {
    if report.duration_ms < 0 {
        return Err(QueueError::Invalid(format!(
            "result of lease {lease_id}: duration_ms must not be negative"
        )));
    }
    // PostgreSQL's text cannot hold NUL: refused (a client's mistake), not a 503 to retry.
    if [&report.output, &report.output_ref]
        .into_iter()
        .flatten()
        .any(|text| text.contains('\0'))
    {
        return Err(QueueError::Invalid(format!(
            "result of lease {lease_id}: output must not contain NUL bytes"
        )));
    }
    let op = format!("recording the result of lease {lease_id}");
    let err = |e| db.query_error(&op, e);
    let client = db.client().await?;
    let statement = client.prepare_cached(&record_sql()).await.map_err(err)?;
    let retry = !report.status.is_final_success();
    let row = client
        .query_opt(
            &statement,
            &[
                &lease_id,
                &report.fencing_token,
                &retry,
                &status_name(report.status),
                &report.duration_ms,
                &report.exit_code,
                &report.signal,
                &report.output,
                &report.output_ref,
                &holder.token_id,
                &holder.agent,
            ],
        )
        .await
        .map_err(err)?;
    let Some(row) = row else {
        return repeated(&client, db, lease_id, holder, report).await;
    };
    let (job_id, run_id, attempt): (i64, i64, i32) = (row.get(0), row.get(1), row.get(2));
    let (requeued, others_queued): (bool, bool) = (row.get(3), row.get(4));
    tracing::debug!(
        lease = lease_id,
        job = job_id,
        run = run_id,
        attempt,
        status = status_name(report.status),
        requeued,
        "result recorded"
    );
    // A run with queued jobs is not done, and whoever reports the last of them checks then; a
    // report that saw none checks after its commit (see `runs::finish_if_done`).
    if !requeued && !others_queued {
        runs::finish_if_done(&client, db, Some(run_id)).await?;
    }
    Ok(Recorded {
        job_id,
        run_id,
        attempt,
        job_state: if requeued { "queued" } else { "done" }.to_string(),
        duplicate: false,
    })
}

/// The answer to a report that found no valid lease: the first answer again when its holder
/// repeats the result recorded under that lease, else the refusal.
async fn repeated(
    client: &deadpool_postgres::Object,
    db: &Database,
    lease_id: i64,
    holder: &Holder,
    report: &ResultReport,
) -> Result<Recorded, QueueError> {
    let lease = lease::record(client, db, lease_id).await?;
    lease.check_holder(lease_id, holder, "result refused")?;
    let same_token = lease.fencing_token == report.fencing_token;
    match &lease.result {
        Some(recorded) if same_token && *recorded == report.recorded() => Ok(Recorded {
            job_id: lease.job_id,
            run_id: lease.run_id,
            attempt: lease.attempt,
            job_state: lease.job_state,
            duplicate: true,
        }),
        Some(_) if same_token => Err(QueueError::Conflict(format!(
            "result refused: lease {lease_id} of job {} already recorded a different result \
             for attempt {}",
            lease.job_id, lease.attempt
        ))),
        _ => Err(lease.refusal(lease_id, holder, report.fencing_token, "result refused")),
    }
}
