//! `claim`: an agent takes queued jobs that fit its free capacity and labels, each under a new
//! lease with a fresh fencing token, in one transaction.
//!
//! The transaction first reclaims jobs whose held lease expired (their leases end as
//! `expired`; the count is the lease-expiry metric), then reads candidates: for each active
//! run (highest priority, then fewest leased jobs first), its longest-expected queued jobs that
//! fit, locked `FOR UPDATE SKIP LOCKED` so concurrent claims pass each other by instead of
//! waiting or sharing. [`pack::pick`](super::pack::pick) chooses among them; the chosen get
//! their leases, the rest are unlocked at commit.

use super::pack::{self, Candidate, Free};
use super::{ts, QueueError};
use crate::Database;
use std::time::Duration;

pub use psy_fleet::wire::{ClaimRequest, Claimed, Lease};

/// How many expired leases one claim reclaims at most (the rest wait for the next claim).
const REAP_BATCH: i64 = 1000;
/// How many active runs one claim looks at, best first.
const RUNS_LOOKED_AT: i64 = 32;
/// The largest batch one claim hands out.
pub const MAX_JOBS_PER_CLAIM: u32 = 1000;

const REAP: &str = "
WITH expired AS (
    SELECT l.lease_id FROM leases l JOIN jobs j ON j.job_id = l.job_id
    WHERE l.outcome IS NULL AND l.expires_at < now() AND j.state = 'leased'
    ORDER BY l.expires_at LIMIT $1
    FOR UPDATE SKIP LOCKED),
ended AS (
    UPDATE leases l SET outcome = 'expired', ended_at = now()
    FROM expired e WHERE l.lease_id = e.lease_id RETURNING l.job_id)
UPDATE jobs j SET state = 'queued' FROM ended e WHERE j.job_id = e.job_id";

const CANDIDATES: &str = "
WITH active AS (
    SELECT r.run_id, r.priority, r.state,
           (SELECT count(*) FROM jobs l WHERE l.run_id = r.run_id AND l.state = 'leased') AS leased
    FROM runs r WHERE r.state IN ('queued', 'running')
    ORDER BY r.priority DESC, leased, r.run_id LIMIT $5)
SELECT c.job_id, a.run_id, a.priority, a.leased, c.cpu_millis, c.memory_bytes, c.expected_ms,
       a.state
FROM active a CROSS JOIN LATERAL (
    SELECT j.job_id, j.cpu_millis, j.memory_bytes, j.expected_ms FROM jobs j
    WHERE j.run_id = a.run_id AND j.state = 'queued'
      AND j.cpu_millis <= $1 AND j.memory_bytes <= $2 AND j.labels <@ $3
    ORDER BY j.expected_ms DESC, j.job_id
    LIMIT $4
    FOR UPDATE SKIP LOCKED) c";

fn grant_sql() -> String {
    format!(
        "WITH taken AS (
            UPDATE jobs j SET state = 'leased' WHERE j.job_id = ANY($1)
            RETURNING j.job_id, j.run_id, j.test_id, j.attempt, j.spec),
         granted AS (
            INSERT INTO leases (job_id, attempt, agent, token_id, expires_at)
            SELECT job_id, attempt, $2, $4, now() + make_interval(secs => $3) FROM taken
            RETURNING lease_id, job_id, fencing_token, expires_at)
         SELECT g.lease_id, g.fencing_token, t.job_id, t.run_id, t.test_id, t.attempt, t.spec, {}
         FROM granted g JOIN taken t USING (job_id) ORDER BY array_position($1, t.job_id)",
        ts("g.expires_at")
    )
}

/// Checks a claim before it touches the database.
trait Validate {
    fn validate(&self) -> Result<(), QueueError>;
}

impl Validate for ClaimRequest {
    fn validate(&self) -> Result<(), QueueError> {
        if self.agent.trim().is_empty() {
            return Err(QueueError::Invalid("claim: agent name is empty".into()));
        }
        if self.cpu_millis < 0 || self.memory_bytes < 0 {
            return Err(QueueError::Invalid(format!(
                "claim by agent {:?}: free cpu_millis and memory_bytes must not be negative",
                self.agent
            )));
        }
        if self.max_jobs > MAX_JOBS_PER_CLAIM {
            return Err(QueueError::Invalid(format!(
                "claim by agent {:?}: max_jobs {} is above {MAX_JOBS_PER_CLAIM}",
                self.agent, self.max_jobs
            )));
        }
        Ok(())
    }
}

/// Grants `request.agent` leases of `lease` on the jobs it should run next (maybe none), bound
/// to the claiming token `token_id`: only it may heartbeat them or report their results.
pub async fn claim(
    db: &Database,
    request: &ClaimRequest,
    token_id: i64,
    lease: Duration,
) -> Result<Claimed, QueueError> {
    request.validate()?;
    if request.max_jobs == 0 {
        return Ok(Claimed { leases: Vec::new() });
    }
    let op = format!("claiming jobs for agent {:?}", request.agent);
    let err = |e| db.query_error(&op, e);
    let labels = serde_json::to_value(&request.labels)
        .map_err(|e| QueueError::Invalid(format!("{op}: labels: {e}")))?;
    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(err)?;
    if let Some(registration) = request.registration {
        super::takeover::check_current(&tx, db, &request.agent, registration).await?;
    }

    let reap = tx.prepare_cached(REAP).await.map_err(err)?;
    let reclaimed = tx.execute(&reap, &[&REAP_BATCH]).await.map_err(err)?;
    if reclaimed > 0 {
        tracing::info!(reclaimed, agent = %request.agent, "leases expired; their jobs are queued again");
    }

    let candidates = tx.prepare_cached(CANDIDATES).await.map_err(err)?;
    let rows = tx
        .query(
            &candidates,
            &[
                &request.cpu_millis,
                &request.memory_bytes,
                &labels,
                &i64::from(request.max_jobs),
                &RUNS_LOOKED_AT,
            ],
        )
        .await
        .map_err(err)?;
    let found: Vec<Candidate> = rows
        .iter()
        .map(|r| Candidate {
            job_id: r.get(0),
            run_id: r.get(1),
            priority: r.get(2),
            run_leased: r.get(3),
            cpu_millis: r.get(4),
            memory_bytes: r.get(5),
            expected_ms: r.get(6),
        })
        .collect();
    let free = Free {
        cpu_millis: request.cpu_millis,
        memory_bytes: request.memory_bytes,
        max_jobs: request.max_jobs as usize,
    };
    let picked = pack::pick(&found, free);
    let mut starting_runs: Vec<i64> = picked
        .iter()
        .filter(|&&i| rows[i].get::<_, &str>(7) == "queued")
        .map(|&i| found[i].run_id)
        .collect();
    starting_runs.sort_unstable();
    starting_runs.dedup();
    let job_ids: Vec<i64> = picked.iter().map(|&i| found[i].job_id).collect();

    let leases = if job_ids.is_empty() {
        Vec::new()
    } else {
        let grant = tx.prepare_cached(&grant_sql()).await.map_err(err)?;
        tx.query(
            &grant,
            &[&job_ids, &request.agent, &lease.as_secs_f64(), &token_id],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| Lease {
            lease_id: r.get(0),
            fencing_token: r.get(1),
            job_id: r.get(2),
            run_id: r.get(3),
            test_id: r.get(4),
            attempt: r.get(5),
            spec: r.get(6),
            expires_at: r.get(7),
        })
        .collect()
    };
    tx.commit().await.map_err(err)?;

    // Outside the claim's transaction, so a claim never waits on a run's row (a cancel holds it).
    if !starting_runs.is_empty() {
        client
            .execute(
                "UPDATE runs SET state = 'running' WHERE run_id = ANY($1) AND state = 'queued'",
                &[&starting_runs],
            )
            .await
            .map_err(|e| db.query_error("marking runs as running", e))?;
    }
    if leases.is_empty() {
        super::runs::finish_if_done(&client, db, None).await?;
    }
    tracing::debug!(agent = %request.agent, granted = leases.len(), candidates = found.len(), "claimed");
    Ok(Claimed { leases })
}
