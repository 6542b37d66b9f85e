//! Heartbeats, who may use a lease, and why a lease is refused: the fencing rules in one place.
//!
//! A lease may be used (heartbeat, result) only with the token that claimed it and, when the
//! request names its agent, only by the agent it was granted to; anything else is refused with
//! a 403 before its fencing token is looked at (lease ids and fencing tokens are in logs, they
//! are not secrets). A lease is valid while it is held (`outcome IS NULL`), its job is leased,
//! and the presented fencing token is its own. Past `expires_at` it stays valid until a claim
//! reclaims its job: an agent that was slow but not replaced loses nothing.

use super::{ts, QueueError};
use crate::Database;
use std::time::Duration;

pub use psy_fleet::wire::{HeartbeatRequest, Renewed};

/// Who presents a lease: the caller's token, and the agent name the request gave, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub token_id: i64,
    /// The token's name, for messages (never the token).
    pub token: String,
    pub agent: Option<String>,
}

/// The condition that lease `l` is held by the holder whose token id is parameter `$n` and
/// whose optional agent name is parameter `$n+1`. A lease without a token (granted by a server
/// older than schema version 4, during a rolling upgrade) is bound to its agent's name only.
pub(crate) fn held_by(n: usize) -> String {
    format!(
        "(l.token_id IS NULL OR l.token_id = ${n}) AND (${}::text IS NULL OR l.agent = ${})",
        n + 1,
        n + 1
    )
}

/// A lease as it stands, and the result recorded under it (if any).
#[derive(Debug, Clone)]
pub(crate) struct LeaseRecord {
    pub(crate) fencing_token: i64,
    /// The token that claimed it (`None`: granted by a server older than schema V4).
    pub(crate) token_id: Option<i64>,
    /// The agent it was granted to.
    pub(crate) agent: String,
    /// `None` while held; `reported`, `expired`, `cancelled` or `released`.
    pub(crate) outcome: Option<String>,
    pub(crate) job_id: i64,
    pub(crate) run_id: i64,
    pub(crate) attempt: i32,
    pub(crate) job_state: String,
    pub(crate) result: Option<RecordedResult>,
}

/// The fields of a recorded result that an identical report repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordedResult {
    pub(crate) status: String,
    pub(crate) duration_ms: i64,
    pub(crate) exit_code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) output: Option<String>,
    pub(crate) output_ref: Option<String>,
    pub(crate) logs: Option<serde_json::Value>,
}

/// Lease `lease_id` as it stands now.
pub(crate) async fn record(
    client: &deadpool_postgres::Object,
    db: &Database,
    lease_id: i64,
) -> Result<LeaseRecord, QueueError> {
    let row = client
        .query_opt(
            "SELECT l.fencing_token, l.outcome, l.job_id, j.run_id, l.attempt, j.state,
                    r.status, r.duration_ms, r.exit_code, r.signal, r.output, r.output_ref,
                    l.token_id, l.agent, r.logs
             FROM leases l JOIN jobs j ON j.job_id = l.job_id
             LEFT JOIN results r ON r.lease_id = l.lease_id
             WHERE l.lease_id = $1",
            &[&lease_id],
        )
        .await
        .map_err(|e| db.query_error(&format!("reading lease {lease_id}"), e))?
        .ok_or_else(|| QueueError::NotFound(format!("no lease {lease_id}")))?;
    Ok(LeaseRecord {
        fencing_token: row.get(0),
        token_id: row.get(12),
        agent: row.get(13),
        outcome: row.get(1),
        job_id: row.get(2),
        run_id: row.get(3),
        attempt: row.get(4),
        job_state: row.get(5),
        result: row
            .get::<_, Option<String>>(6)
            .map(|status| RecordedResult {
                status,
                duration_ms: row.get(7),
                exit_code: row.get(8),
                signal: row.get(9),
                output: row.get(10),
                output_ref: row.get(11),
                logs: row.get(14),
            }),
    })
}

impl LeaseRecord {
    /// `Ok` if `holder` may use lease `lease_id` (to `doing` what), else the 403.
    pub(crate) fn check_holder(
        &self,
        lease_id: i64,
        holder: &Holder,
        doing: &str,
    ) -> Result<(), QueueError> {
        let granted = &self.agent;
        let why = match (self.token_id, &holder.agent) {
            (Some(id), _) if id != holder.token_id => format!(
                "lease {lease_id} was granted to agent {granted:?} under another token, not \
                 token {:?}",
                holder.token
            ),
            (_, Some(agent)) if agent != granted => {
                format!("lease {lease_id} was granted to agent {granted:?}, not {agent:?}")
            }
            _ => return Ok(()),
        };
        Err(QueueError::Forbidden(format!("{doing}: {why}")))
    }

    /// Why lease `lease_id` presented by `holder` with `token` may not be used (to `doing`
    /// what): not its holder (403), or no longer valid (409).
    pub(crate) fn refusal(
        &self,
        lease_id: i64,
        holder: &Holder,
        token: i64,
        doing: &str,
    ) -> QueueError {
        if let Err(forbidden) = self.check_holder(lease_id, holder, doing) {
            return forbidden;
        }
        let (job, run) = (self.job_id, self.run_id);
        let why = if token != self.fencing_token {
            format!(
                "fencing token {token} is stale: lease {lease_id} of job {job} has token {}",
                self.fencing_token
            )
        } else {
            match self.outcome.as_deref() {
                Some("expired") => format!(
                    "lease {lease_id} expired and job {job} was claimed again; its attempt {} \
                     belongs to the new lease",
                    self.attempt
                ),
                Some("reported") => {
                    format!("lease {lease_id} of job {job} already reported its result")
                }
                Some("released") => {
                    format!("lease {lease_id} was released by its agent and job {job} queued again")
                }
                _ if self.outcome.as_deref() == Some("cancelled")
                    || self.job_state == "cancelled" =>
                {
                    format!("run {run} was cancelled: lease {lease_id} of job {job} has ended")
                }
                _ => format!(
                    "lease {lease_id} of job {job} changed during the request (job {}); retry",
                    self.job_state
                ),
            }
        };
        QueueError::Conflict(format!("{doing}: {why}"))
    }
}

/// Extends lease `lease_id` to `lease` from now, if `holder` holds it, `request` presents its
/// fencing token and the lease was not ended (reclaimed after expiry, reported or cancelled).
pub async fn heartbeat(
    db: &Database,
    lease_id: i64,
    holder: &Holder,
    request: &HeartbeatRequest,
    lease: Duration,
) -> Result<Renewed, QueueError> {
    let op = format!("renewing lease {lease_id}");
    let client = db.client().await?;
    let renew = client
        .prepare_cached(&format!(
            "UPDATE leases l SET expires_at = now() + make_interval(secs => $3)
             FROM jobs j
             WHERE l.lease_id = $1 AND l.fencing_token = $2 AND l.outcome IS NULL
               AND j.job_id = l.job_id AND j.state = 'leased' AND {}
             RETURNING {}",
            held_by(4),
            ts("l.expires_at")
        ))
        .await
        .map_err(|e| db.query_error(&op, e))?;
    let renewed = client
        .query_opt(
            &renew,
            &[
                &lease_id,
                &request.fencing_token,
                &lease.as_secs_f64(),
                &holder.token_id,
                &holder.agent,
            ],
        )
        .await
        .map_err(|e| db.query_error(&op, e))?;
    match renewed {
        Some(row) => Ok(Renewed {
            lease_id,
            expires_at: row.get(0),
        }),
        None => Err(record(&client, db, lease_id).await?.refusal(
            lease_id,
            holder,
            request.fencing_token,
            "heartbeat refused",
        )),
    }
}
