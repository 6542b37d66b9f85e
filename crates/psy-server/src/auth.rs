//! The authentication rule: every request but the public ones must carry a valid token, and
//! that is checked before routing, so an unknown path or a wrong method under a token-less
//! request is a 401, never a 404 or 405 that would tell what exists.
//!
//! Roles are checked by the handlers ([`Caller::require`]), after authentication and before
//! they read the request body.

use crate::api::error::ApiError;
use crate::api::AppState;
use crate::token::Role;
use crate::token_store::{self, Caller};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The paths anyone may read: liveness, metrics and the API's description. The OpenAPI
/// document marks exactly these with `"security": []` (checked by a test).
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/metrics", "/api/openapi.json"];

/// Middleware: lets public paths through, else authenticates the bearer token and hands the
/// [`Caller`] to the handlers as a request extension.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if PUBLIC_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Some(presented) = bearer(request.headers()) else {
        return unauthorized("missing bearer token (send `Authorization: Bearer TOKEN`)");
    };
    match token_store::authenticate(&state.db, presented).await {
        Ok(Some(caller)) => {
            tracing::debug!(token = %caller.name, role = %caller.role, path = %request.uri().path(), "authenticated");
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(None) => unauthorized("unknown or revoked token"),
        Err(e) => ApiError::Unavailable(e).into_response(),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(why: &str) -> Response {
    let mut response = ApiError::status(StatusCode::UNAUTHORIZED, why).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

impl Caller {
    /// `Ok` if this caller has `role`, else the 403 to answer.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        self.require_one_of(&[role])
    }

    /// `Ok` if this caller has one of `roles`, else the 403 to answer.
    pub fn require_one_of(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::status(
                StatusCode::FORBIDDEN,
                &format!(
                    "token {:?} has role {}; this needs role {}",
                    self.name,
                    self.role,
                    wanted.join(" or ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;
    use axum::http::{header, HeaderMap, HeaderValue};

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_bearer_tokens_are_read() {
        assert_eq!(bearer(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("Basic abc")), None);
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
