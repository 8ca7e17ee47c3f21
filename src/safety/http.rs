//! The challenge route of campaigns that ask for a proof of work.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use time::OffsetDateTime;

use super::pow::{self, Challenge};
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::PathParams;

/// `POST /api/v1/campaigns/{slug}/challenges`.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/campaigns/{slug}/challenges",
        post(create_challenge),
    )
}

/// A proof-of-work challenge for one submission (campaigns with `proof_of_work` only).
#[utoipa::path(post, path = "/api/v1/campaigns/{slug}/challenges", tag = "public",
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 201, description = "Find a decimal nonce such that SHA-256(challenge + \":\" + nonce) starts with `difficulty` zero bits, then send `Civicmap-Proof: <challenge>:<nonce>` with the submission, before `expires_at`; each challenge is usable once", body = Challenge),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 409, description = "The campaign does not ask for a proof of work, or is not open", body = Problem),
        (status = 429, description = "Too many requests from this client or to this campaign; see Retry-After", body = Problem),
    ))]
pub async fn create_challenge(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> ApiResult<Response> {
    let campaign = state.campaigns.get_public(&state.db, &slug).await?;
    let now = OffsetDateTime::now_utc();
    campaign.accepts_contributions(now)?;
    let Some(proof) = campaign.proof_of_work else {
        return Err(ApiError::Conflict(format!(
            "campaign `{slug}` does not ask for a proof of work: submit without one"
        )));
    };
    let secret = state.secret.get(&state.db).await?;
    let challenge = pow::issue(secret, campaign.id, proof.difficulty, now);
    let mut response = (StatusCode::CREATED, Json(challenge)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
