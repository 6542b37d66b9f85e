//! `POST /api/agents/register` (agents) and `GET /api/agents` (users): the fleet's members,
//! their capacity and labels.

use super::error::{self, ApiError};
use super::AppState;
use crate::queue::takeover;
use crate::token::Role;
use crate::token_store::Caller;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::{Extension, Json};

pub use psy_fleet::wire::{Agent, Registration};

const MAX_NAME: usize = 200;

/// Checks a registration before it touches the database.
trait Validate {
    /// The capacity in the units stored, or why it is refused.
    fn validate(&self) -> Result<(i64, i64), ApiError>;
}

impl Validate for Registration {
    fn validate(&self) -> Result<(i64, i64), ApiError> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME {
            return Err(ApiError::bad_request(format!(
                "agent name must be 1 to {MAX_NAME} bytes"
            )));
        }
        let millicpus = (self.cpus * 1000.0).round();
        if !self.cpus.is_finite() || !(1.0..=1e12).contains(&millicpus) {
            return Err(ApiError::bad_request(format!(
                "agent {:?}: cpus must be from 0.001 to 1e9, got {}",
                self.name, self.cpus
            )));
        }
        let memory = i64::try_from(self.memory_bytes)
            .ok()
            .filter(|m| *m > 0)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "agent {:?}: memory_bytes must be positive and below 2^63",
                    self.name
                ))
            })?;
        Ok((millicpus as i64, memory))
    }
}

const SELECT_AGENT: &str = r#"SELECT a.name, a.millicpus, a.memory_bytes, a.labels, t.name,
    to_char(a.registered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    to_char(a.last_seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    a.registration
    FROM agents a JOIN api_tokens t USING (token_id)"#;

fn agent_from_row(row: &tokio_postgres::Row) -> Agent {
    let labels: serde_json::Value = row.get(3);
    Agent {
        name: row.get(0),
        cpus: row.get::<_, i64>(1) as f64 / 1000.0,
        memory_bytes: row.get::<_, i64>(2).max(0) as u64,
        labels: serde_json::from_value(labels).unwrap_or_default(),
        token: row.get(4),
        registered_at: row.get(5),
        last_seen_at: row.get(6),
        registration: Some(row.get(7)),
    }
}

/// Records the calling agent's name, capacity and labels under a new registration number; a
/// name registered before is taken over (its leases end now: [`takeover`]).
pub async fn register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<Registration>, JsonRejection>,
) -> Result<Json<Agent>, ApiError> {
    caller.require(Role::Agent)?;
    let registration = error::body(body)?;
    let (millicpus, memory) = registration.validate()?;
    let labels = serde_json::to_value(&registration.labels)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let db = &state.db;
    let mut client = db.client().await?;
    let op = format!("registering agent {:?}", registration.name);
    let tx = client
        .transaction()
        .await
        .map_err(|e| db.query_error(&op, e))?;
    let sql = format!(
        "WITH up AS (
            INSERT INTO agents (name, token_id, millicpus, memory_bytes, labels)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (name) DO UPDATE SET token_id = EXCLUDED.token_id,
                millicpus = EXCLUDED.millicpus, memory_bytes = EXCLUDED.memory_bytes,
                labels = EXCLUDED.labels, last_seen_at = now(),
                registration = nextval('agent_registrations')
            RETURNING *)
         {}",
        SELECT_AGENT.replace("FROM agents a", "FROM up a")
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &registration.name,
                &caller.token_id,
                &millicpus,
                &memory,
                &labels,
            ],
        )
        .await
        .map_err(|e| db.query_error(&op, e))?;
    let agent = agent_from_row(&row);
    takeover::take_over(&tx, db, &agent.name).await?;
    tx.commit().await.map_err(|e| db.query_error(&op, e))?;
    tracing::info!(agent = %agent.name, token = %caller.name, cpus = agent.cpus, memory_bytes = agent.memory_bytes, "agent registered");
    Ok(Json(agent))
}

/// Every registered agent, by name.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<Agent>>, ApiError> {
    caller.require(Role::User)?;
    let db = &state.db;
    let client = db.client().await?;
    let rows = client
        .query(&format!("{SELECT_AGENT} ORDER BY a.name"), &[])
        .await
        .map_err(|e| db.query_error("listing agents", e))?;
    Ok(Json(rows.iter().map(agent_from_row).collect()))
}
