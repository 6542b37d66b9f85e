//! `result`: an agent reports how an attempt ended, or several at once (a batch). Recorded
//! exactly once, under a valid lease: one statement, for the whole batch, moves each job on
//! (done, or queued again for its next attempt when it failed with attempts left), ends its
//! lease and records its result.
//! A refused or repeated report is then looked at with [`lease::record`](super::lease::record).

use super::lease::{self, Holder, RecordedResult};
use super::{runs, QueueError};
use crate::Database;
use psy_model::AttemptStatus;

pub use psy_fleet::wire::{LeaseResult, Recorded, ResultReport};
use std::collections::{HashMap, HashSet};

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
// changes while its job's row is locked (reap, report, release) or after the job left `leased`
// (cancel), so the lease read here cannot change before `ended` updates it. Each result of a
// batch is matched to its own lease by id and fencing token: one stale token refuses that
// result only. Jobs are locked in no set order, so a batch and a cancel of the same run may
// deadlock; PostgreSQL then aborts one of them (a 503 the agent retries; what was recorded is
// answered as a duplicate).
fn record_sql() -> String {
    format!(
        "
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::text[], $5::bigint[],
                         $6::int[], $7::int[], $8::text[], $9::text[], $12::jsonb[])
        AS i(lease_id, fencing_token, retry, status, duration_ms, exit_code, signal, output,
             output_ref, logs)),
moved AS (
    UPDATE jobs j SET state = CASE WHEN i.retry AND j.attempt < j.max_attempts
                                   THEN 'queued' ELSE 'done' END,
                      attempt = CASE WHEN i.retry AND j.attempt < j.max_attempts
                                     THEN j.attempt + 1 ELSE j.attempt END
    FROM leases l JOIN input i ON i.lease_id = l.lease_id
    WHERE l.fencing_token = i.fencing_token AND l.outcome IS NULL
      AND j.job_id = l.job_id AND j.state = 'leased' AND {}
    RETURNING l.lease_id, l.job_id, l.attempt, l.agent, l.fencing_token, j.run_id,
              j.state = 'queued' AS retry),
ended AS (
    UPDATE leases l SET outcome = 'reported', ended_at = now()
    FROM moved m WHERE l.lease_id = m.lease_id),
recorded AS (
    INSERT INTO results (job_id, attempt, lease_id, fencing_token, agent, status, duration_ms,
                         exit_code, signal, output, output_ref, logs)
    SELECT m.job_id, m.attempt, m.lease_id, m.fencing_token, m.agent, i.status, i.duration_ms,
           i.exit_code, i.signal, i.output, i.output_ref, i.logs
    FROM moved m JOIN input i ON i.lease_id = m.lease_id)
SELECT m.lease_id, m.job_id, m.run_id, m.attempt, m.retry,
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
            logs: logs_json(&self.logs),
        }
    }
}

/// The longest log name a result may give.
const MAX_LOG_NAME: usize = 255;
/// The most logs one result may name (a scenario's nodes each have two).
const MAX_LOGS: usize = 1024;

/// A result's logs as stored: a JSON object, or `NULL` for none.
fn logs_json(logs: &std::collections::BTreeMap<String, String>) -> Option<serde_json::Value> {
    (!logs.is_empty()).then(|| serde_json::Value::from_iter(logs.clone()))
}

/// Checks a report before it touches the database.
pub(crate) fn validate(lease_id: i64, report: &ResultReport) -> Result<(), QueueError> {
    if report.duration_ms < 0 {
        return Err(QueueError::Invalid(format!(
            "result of lease {lease_id}: duration_ms must not be negative"
        )));
    }
    for (name, digest) in &report.logs {
        let plain = !name.is_empty()
            && name.len() <= MAX_LOG_NAME
            && !name.contains(['/', '\0'])
            && !name.starts_with('.');
        if !plain || !psy_snapshot::is_digest(digest) {
            return Err(QueueError::Invalid(format!(
                "result of lease {lease_id}: log {name:?} -> {digest:?}: a log is a plain name \
                 (at most {MAX_LOG_NAME} bytes, no '/') and a sha256:... digest"
            )));
        }
    }
    if report.logs.len() > MAX_LOGS {
        return Err(QueueError::Invalid(format!(
            "result of lease {lease_id}: at most {MAX_LOGS} logs, got {}",
            report.logs.len()
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
    Ok(())
}

/// Records `report` under lease `lease_id`, presented by `holder`.
pub async fn record(
    db: &Database,
    lease_id: i64,
    holder: &Holder,
    report: &ResultReport,
) -> Result<Recorded, QueueError> {
    let one = [LeaseResult {
        lease_id,
        report: report.clone(),
    }];
    let mut outcomes = record_batch(db, holder, &one).await?;
    outcomes.pop().unwrap_or_else(|| {
        Err(QueueError::Invalid(format!(
            "result of lease {lease_id}: no outcome"
        )))
    })
}

/// Records each result of `batch` under its own lease, all presented by `holder`, with one
/// statement; the outcome of each, in the batch's order. `Err` only when the database failed
/// (nothing of the batch may have been recorded: the same batch again is safe, what was
/// recorded is answered as a duplicate).
pub async fn record_batch(
    db: &Database,
    holder: &Holder,
    batch: &[LeaseResult],
) -> Result<Vec<Result<Recorded, QueueError>>, QueueError> {
    let mut outcomes: Vec<Option<Result<Recorded, QueueError>>> = Vec::with_capacity(batch.len());
    let mut seen = HashSet::new();
    for item in batch {
        let checked = validate(item.lease_id, &item.report).and_then(|()| {
            let why = if !seen.insert(item.lease_id) {
                "the lease appears twice in the batch"
            } else if item.report.agent != holder.agent {
                "the results of one batch must name the same agent"
            } else {
                return Ok(());
            };
            Err(QueueError::Invalid(format!(
                "result of lease {}: {why}",
                item.lease_id
            )))
        });
        outcomes.push(checked.err().map(Err));
    }
    let sent: Vec<&LeaseResult> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|(item, _)| item)
        .collect();
    let op = match batch {
        [one] => format!("recording the result of lease {}", one.lease_id),
        _ => format!("recording a batch of {} results", batch.len()),
    };
    let err = |e| db.query_error(&op, e);
    let client = db.client().await?;
    let mut recorded: HashMap<i64, (Recorded, bool)> = HashMap::new();
    if !sent.is_empty() {
        let statement = client.prepare_cached(&record_sql()).await.map_err(err)?;
        let column = |f: &dyn Fn(&ResultReport) -> i64| -> Vec<i64> {
            sent.iter().map(|item| f(&item.report)).collect()
        };
        let lease_ids: Vec<i64> = sent.iter().map(|item| item.lease_id).collect();
        let tokens = column(&|r| r.fencing_token);
        let durations = column(&|r| r.duration_ms);
        let retries: Vec<bool> = sent
            .iter()
            .map(|item| !item.report.status.is_final_success())
            .collect();
        let statuses: Vec<&str> = sent
            .iter()
            .map(|item| status_name(item.report.status))
            .collect();
        let exit_codes: Vec<Option<i32>> = sent.iter().map(|i| i.report.exit_code).collect();
        let signals: Vec<Option<i32>> = sent.iter().map(|i| i.report.signal).collect();
        let outputs: Vec<Option<&str>> = sent.iter().map(|i| i.report.output.as_deref()).collect();
        let refs: Vec<Option<&str>> = sent
            .iter()
            .map(|i| i.report.output_ref.as_deref())
            .collect();
        let logs: Vec<Option<serde_json::Value>> =
            sent.iter().map(|i| logs_json(&i.report.logs)).collect();
        let rows = client
            .query(
                &statement,
                &[
                    &lease_ids,
                    &tokens,
                    &retries,
                    &statuses,
                    &durations,
                    &exit_codes,
                    &signals,
                    &outputs,
                    &refs,
                    &holder.token_id,
                    &holder.agent,
                    &logs,
                ],
            )
            .await
            .map_err(err)?;
        for row in rows {
            let (lease_id, job_id, run_id, attempt): (i64, i64, i64, i32) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let (requeued, others_queued): (bool, bool) = (row.get(4), row.get(5));
            tracing::debug!(
                lease = lease_id,
                job = job_id,
                run = run_id,
                attempt,
                requeued,
                "result recorded"
            );
            let answer = Recorded {
                job_id,
                run_id,
                attempt,
                job_state: if requeued { "queued" } else { "done" }.to_string(),
                duplicate: false,
            };
            recorded.insert(lease_id, (answer, !requeued && !others_queued));
        }
    }
    // A run with queued jobs is not done, and whoever reports the last of them checks then; a
    // report that saw none checks after its commit (see `runs::finish_if_done`).
    let mut finishing: Vec<i64> = recorded
        .values()
        .filter(|(_, check)| *check)
        .map(|(answer, _)| answer.run_id)
        .collect();
    finishing.sort_unstable();
    finishing.dedup();
    for run_id in finishing {
        runs::finish_if_done(&client, db, Some(run_id)).await?;
    }
    let mut answers = Vec::with_capacity(batch.len());
    for (item, outcome) in batch.iter().zip(outcomes) {
        let answer = match (outcome, recorded.remove(&item.lease_id)) {
            (Some(refused), _) => refused,
            (None, Some((answer, _))) => Ok(answer),
            (None, None) => {
                match repeated(&client, db, item.lease_id, holder, &item.report).await {
                    Err(QueueError::Database(e)) => return Err(QueueError::Database(e)),
                    answer => answer,
                }
            }
        };
        answers.push(answer);
    }
    Ok(answers)
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
