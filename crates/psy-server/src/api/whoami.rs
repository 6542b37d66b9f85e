//! `GET /api/whoami`: the caller's token name and role, for any valid token.

use crate::token_store::Caller;
use axum::{Extension, Json};

/// The authenticated caller.
pub async fn whoami(Extension(caller): Extension<Caller>) -> Json<Caller> {
    Json(caller)
}
