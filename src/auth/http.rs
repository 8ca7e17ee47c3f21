//! `/api/v1/admin/tokens`: admins issue, list, expire and revoke staff tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use super::Staff;
use super::tokens::{self, IssuedToken, NewToken, TokenInfo};
use crate::audit::Actor;
use crate::campaigns::Rfc3339;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams};

/// The token routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/admin/tokens/{id}", patch(expire_token))
        .route("/api/v1/admin/tokens/{id}/revoke", post(revoke_token))
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
