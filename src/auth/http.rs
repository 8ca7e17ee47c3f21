//! `/api/v1/admin/tokens`: admins issue, list, expire and revoke staff tokens.

use std::marker::PhantomData;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::tokens::{self, IssuedToken, NewToken, TokenInfo};
use super::{AuthError, Role, Staff, verify};
use crate::audit::Actor;
use crate::campaigns::Rfc3339;
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams};
use crate::http::routes::{ADMIN, Routes};

/// The token routes.
pub fn routes() -> Routes {
    Routes::new()
        .add(ADMIN, Private, routes!(list_tokens, create_token))
        .add(ADMIN, Private, routes!(expire_token))
        .add(ADMIN, Private, routes!(revoke_token))
}

fn token_id(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::NotFound(format!("no token with id `{text}` (ids are numbers)")))
}

/// Every staff token, without its secret.
#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Tokens, oldest first", body = [TokenInfo])))]
pub async fn list_tokens(State(state): State<AppState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(tokens::list(&state.db).await?))
}

/// Issues a token. The response holds the token itself, shown only this once.
#[utoipa::path(post, path = "/api/v1/admin/tokens", tag = "admin", security(("bearer" = [])),
    request_body = NewToken,
    responses(
        (status = 201, description = "Issued; `token` is shown only here", body = IssuedToken),
        (status = 422, description = "Invalid name, role or expiry", body = Problem),
    ))]
pub async fn create_token(
    staff: Staff,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    if new
        .expires_at
        .is_some_and(|t| t.0 <= time::OffsetDateTime::now_utc())
    {
        return Err(ApiError::field("expires_at", "must be in the future"));
    }
    let issued = tokens::issue(&state.db, Actor::Staff(&staff), new).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// A token's new expiry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiryInput {
    /// When the token stops working (RFC 3339; a past time expires it at once), or `null`
    /// for never.
    #[serde(default, deserialize_with = "crate::campaigns::double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<Rfc3339>>,
}

/// Sets or clears when a token stops working.
#[utoipa::path(patch, path = "/api/v1/admin/tokens/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Token id")),
    request_body = ExpiryInput,
    responses(
        (status = 200, description = "Changed", body = TokenInfo),
        (status = 404, description = "No such token", body = Problem),
        (status = 409, description = "The token is revoked", body = Problem),
        (status = 422, description = "`expires_at` missing or not RFC 3339", body = Problem),
    ))]
pub async fn expire_token(
    staff: Staff,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(input): JsonBody<ExpiryInput>,
) -> ApiResult<Json<TokenInfo>> {
    let id = token_id(&id)?;
    let expires_at = input
        .expires_at
        .ok_or_else(|| ApiError::field("expires_at", "is required: a time, or null for never"))?;
    let info =
        tokens::set_expiry(&state.db, Actor::Staff(&staff), id, expires_at.map(|t| t.0)).await?;
    Ok(Json(info))
}

/// Why a token is revoked.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    /// Kept in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Revokes a token for good (it stays listed, as revoked).
#[utoipa::path(post, path = "/api/v1/admin/tokens/{id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Token id")),
    request_body = RevokeInput,
    responses(
        (status = 200, description = "Revoked", body = TokenInfo),
        (status = 404, description = "No such token", body = Problem),
        (status = 409, description = "Already revoked", body = Problem),
    ))]
pub async fn revoke_token(
    staff: Staff,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(input): JsonBody<RevokeInput>,
) -> ApiResult<Json<TokenInfo>> {
    let id = token_id(&id)?;
    Ok(Json(
        tokens::revoke(&state.db, Actor::Staff(&staff), id, input.reason).await?,
    ))
}

// ---------------------------------------------------------------- extractors

/// Reads `Authorization: Bearer <token>` and verifies the token.
pub async fn authenticate(pool: &PgPool, headers: &HeaderMap) -> Result<Staff, ApiError> {
    let header = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("this route needs an `Authorization: Bearer <token>` header".into())
    })?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
    Ok(verify(pool, token.trim()).await?)
}

/// Extractor: the staff member the route table's check let through (see
/// [`crate::http::routes`]). On a route the table declares public it answers 401: a handler
/// that needs a staff member must be declared as a staff route.
impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Staff>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a handler needs a staff token on a route declared public");
            ApiError::Unauthorized("this route needs a staff token".into())
        })
    }
}

/// A role required by a route, as a type: `Authorized<Admin>` in a handler's arguments
/// checks again, inside the handler, what the route table ([`crate::http::routes`]) already
/// enforced. The table is the source of truth; this is a second lock on the same door.
pub trait RequiredRole: Send + Sync {
    /// The role.
    const ROLE: Role;
}

/// Marker for routes that need an admin token.
pub struct Admin;
impl RequiredRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// Marker for routes that need a moderator token.
pub struct Moderator;
impl RequiredRole for Moderator {
    const ROLE: Role = Role::Moderator;
}

/// Marker for routes that need a planner token.
pub struct Planner;
impl RequiredRole for Planner {
    const ROLE: Role = Role::Planner;
}

/// Extractor: the request carries a valid token of role `R` (or admin). Uses the staff member
/// the route table's check stashed in the request; verifies the header itself when there is
/// none (a route declared public), so that a mismatch fails closed.
pub struct Authorized<R: RequiredRole>(pub Staff, PhantomData<R>);

impl<R: RequiredRole> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let staff = match parts.extensions.get::<Staff>() {
            Some(staff) => staff.clone(),
            None => authenticate(&state.db, &parts.headers).await?,
        };
        if !staff.role.allows(R::ROLE) {
            return Err(forbidden(&staff, &[R::ROLE]));
        }
        Ok(Self(staff, PhantomData))
    }
}
/// The 403 for a token whose role is not among `allowed`.
pub fn forbidden(staff: &Staff, allowed: &[Role]) -> ApiError {
    let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
    ApiError::Forbidden(format!(
        "this route needs the {} role; this token has the {} role",
        names.join(" or "),
        staff.role.as_str()
    ))
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Database(error) => error.into(),
            refused => ApiError::Unauthorized(refused.to_string()),
        }
    }
}

impl From<super::tokens::TokenError> for ApiError {
    fn from(error: super::tokens::TokenError) -> Self {
        use super::tokens::TokenError as E;
        match error {
            E::Invalid(invalid) => invalid.into(),
            E::NotFound(_) => ApiError::NotFound(error.to_string()),
            E::Revoked { .. } => ApiError::Conflict(error.to_string()),
            E::Database(error) => error.into(),
        }
    }
}
