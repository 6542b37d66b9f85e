//! `release`: an agent gives back a lease whose attempt it will not run (it claimed ahead and is
//! stopping): the job is queued again at once, for the same attempt, instead of when the lease
//! would have expired. Fenced like a result: only the lease's holder, with its fencing token,
//! while the lease is held; releasing it again is answered as the first time.

use super::lease::{self, Holder};
use super::QueueError;
use crate::Database;

pub use psy_fleet::wire::{ReleaseRequest, Released};

// Jobs then leases, as a result report locks them (see `report`).
fn release_sql() -> String {
    format!(
        "
WITH requeued AS (
    UPDATE jobs j SET state = 'queued'
    FROM leases l
    WHERE l.lease_id = $1 AND l.fencing_token = $2 AND l.outcome IS NULL
      AND j.job_id = l.job_id AND j.state = 'leased' AND {}
    RETURNING l.lease_id, j.job_id)
UPDATE leases l SET outcome = 'released', ended_at = now()
FROM requeued r WHERE l.lease_id = r.lease_id
RETURNING r.job_id",
        lease::held_by(3)
    )
}

/// Releases lease `lease_id`, presented by `holder` with `request`'s fencing token.
pub async fn release(
    db: &Database,
    lease_id: i64,
    holder: &Holder,
    request: &ReleaseRequest,
) -> Result<Released, QueueError> {
    let op = format!("releasing lease {lease_id}");
    let err = |e| db.query_error(&op, e);
    let client = db.client().await?;
    let statement = client.prepare_cached(&release_sql()).await.map_err(err)?;
    let row = client
        .query_opt(
            &statement,
            &[
                &lease_id,
                &request.fencing_token,
                &holder.token_id,
                &holder.agent,
            ],
        )
        .await
        .map_err(err)?;
    if let Some(row) = row {
        tracing::debug!(
            lease = lease_id,
            job = row.get::<_, i64>(0),
            "lease released"
        );
        return Ok(Released {
            lease_id,
            job_id: row.get(0),
            job_state: "queued".into(),
        });
    }
    let lease = lease::record(&client, db, lease_id).await?;
    lease.check_holder(lease_id, holder, "release refused")?;
    if lease.outcome.as_deref() == Some("released") && lease.fencing_token == request.fencing_token
    {
        return Ok(Released {
            lease_id,
            job_id: lease.job_id,
            job_state: lease.job_state,
        });
    }
    Err(lease.refusal(lease_id, holder, request.fencing_token, "release refused"))
}
