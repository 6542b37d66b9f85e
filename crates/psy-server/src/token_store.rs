//! Tokens in the database: create, list, revoke, and look up the caller a token speaks for.

use crate::token::{self, Role};
use crate::{Database, ServerError};

/// A token as the database knows it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC; `None` while the token is valid.
    pub revoked_at: Option<String>,
}

/// Who made a request: the token's id, name and role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Caller {
    pub token_id: i64,
    pub name: String,
    pub role: Role,
}

/// Timestamps as text, so no date crate is needed.
const TIMESTAMP: &str = r#"to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"#;

fn ts(column: &str) -> String {
    TIMESTAMP.replace("%s", column)
}

/// Creates a token for `role` named `name`; returns what is stored and the token, which is
/// shown once and never again.
pub async fn create(
    db: &Database,
    role: Role,
    name: &str,
) -> Result<(TokenInfo, String), ServerError> {
    let token = token::generate()?;
    let hash = token::hash(&token);
    let client = db.client().await?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO api_tokens (name, role, token_hash) VALUES ($1, $2, $3)
                 RETURNING token_id, {}",
                ts("created_at")
            ),
            &[&name, &role.as_str(), &&hash[..]],
        )
        .await
        .map_err(|e| db.query_error(&format!("creating token {name:?}"), e))?;
    let info = TokenInfo {
        id: row.get(0),
        name: name.to_string(),
        role,
        created_at: row.get(1),
        revoked_at: None,
    };
    Ok((info, token))
}

/// Every token, oldest first.
pub async fn list(db: &Database) -> Result<Vec<TokenInfo>, ServerError> {
    let client = db.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT token_id, name, role, {}, {} FROM api_tokens ORDER BY token_id",
                ts("created_at"),
                ts("revoked_at")
            ),
            &[],
        )
        .await
        .map_err(|e| db.query_error("listing tokens", e))?;
    Ok(rows
        .iter()
        .map(|row| TokenInfo {
            id: row.get(0),
            name: row.get(1),
            // The CHECK constraint admits only the two roles.
            role: Role::parse(row.get(2)).unwrap_or(Role::User),
            created_at: row.get(3),
            revoked_at: row.get(4),
        })
        .collect())
}

/// Revokes every valid token named `name`; returns how many. Takes effect on the next request
/// to any server: nothing is cached.
pub async fn revoke(db: &Database, name: &str) -> Result<u64, ServerError> {
    let client = db.client().await?;
    let revoked = client
        .execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
            &[&name],
        )
        .await
        .map_err(|e| db.query_error(&format!("revoking token {name:?}"), e))?;
    if revoked == 0 {
        return Err(ServerError::NoSuchToken {
            database: db.described().to_string(),
            name: name.to_string(),
        });
    }
    Ok(revoked)
}

/// The caller `presented` speaks for, or `None` for an unknown or revoked token.
pub async fn authenticate(db: &Database, presented: &str) -> Result<Option<Caller>, ServerError> {
    let hash = token::hash(presented);
    let client = db.client().await?;
    let err = |e| db.query_error("checking a token", e);
    // Prepared once per connection: every request runs it.
    let lookup = client
        .prepare_cached(
            "SELECT token_id, name, role, token_hash FROM api_tokens
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .await
        .map_err(err)?;
    let row = client
        .query_opt(&lookup, &[&&hash[..]])
        .await
        .map_err(err)?;
    Ok(row.and_then(|row| {
        let stored: &[u8] = row.get(3);
        if !token::constant_time_eq(stored, &hash) {
            return None;
        }
        Some(Caller {
            token_id: row.get(0),
            name: row.get(1),
            role: Role::parse(row.get(2))?,
        })
    }))
}
