//! Submission routes: a citizen posts a point, and erases it with its edit token.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{IdempotencyKey, Pending, Receipt, Stored};
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams};

/// Largest submission body: a point and a few answers fit in far less.
pub const MAX_SUBMISSION_BYTES: usize = 16 * 1024;

/// `/api/v1/campaigns/{slug}/submissions[/{id}]`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/campaigns/{slug}/submissions",
            post(create_submission).layer(DefaultBodyLimit::max(MAX_SUBMISSION_BYTES)),
        )
        .route(
            "/api/v1/campaigns/{slug}/submissions/{id}",
            delete(erase_submission),
        )
}

fn idempotency_key(headers: &HeaderMap, body: &Value) -> ApiResult<Option<IdempotencyKey>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters".into(),
            )
        })?;
    let canonical = serde_json::to_vec(body).map_err(anyhow::Error::from)?;
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_hash: crate::auth::hash_secret(&canonical),
    }))
}

/// Submits a point with the campaign's answers. The response is sent once committed.
#[utoipa::path(post, path = "/api/v1/campaigns/{slug}/submissions", tag = "public",
    params(
        ("slug" = String, Path, description = "Campaign name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request return the first result instead of a duplicate"),
    ),
    request_body(content = Object, content_type = "application/geo+json", description = "A GeoJSON Feature with a Point geometry; its properties are the answers"),
    responses(
        (status = 201, description = "Stored and counted; a retry with the same Idempotency-Key gets the first result again, with `Idempotent-Replayed: true`", body = Receipt),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 409, description = "Campaign not open, or key reused for another request", body = Problem),
        (status = 413, description = "Body over 16 KiB", body = Problem),
        (status = 422, description = "Invalid point or answers, each error naming its field", body = Problem),
        (status = 503, description = "Database unavailable; retry after Retry-After seconds", body = Problem),
    ))]
pub async fn create_submission(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers, &body)?;
    let mut attempts = 0;
    let (replayed, receipt) = loop {
        let campaign = state.campaigns.get_public(&state.db, &slug).await?;
        campaign.accepts_contributions(OffsetDateTime::now_utc())?;
        let submission = super::parse_feature(&campaign, &body).map_err(ApiError::Validation)?;
        let pending = Pending {
            campaign,
            submission,
            key: key.clone(),
        };
        match state.submissions.store(pending).await? {
            Stored::Created(receipt) => break (false, receipt),
            Stored::Replayed(receipt) => break (true, receipt),
            // The campaign changed since it was cached: check again against the new settings.
            Stored::Stale if attempts < 3 => {
                attempts += 1;
                state.campaigns.invalidate(&slug).await;
            }
            Stored::Stale => {
                return Err(ApiError::Conflict(
                    "the campaign is being changed; please retry".into(),
                ));
            }
        }
    };
    let location = format!("/api/v1/campaigns/{slug}/submissions/{}", receipt.id);
    let mut response = (StatusCode::CREATED, Json(receipt)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Erases a submission (right to erasure). Needs the edit token given at submission.
#[utoipa::path(delete, path = "/api/v1/campaigns/{slug}/submissions/{id}", tag = "public",
    params(
        ("slug" = String, Path, description = "Campaign name"),
        ("id" = String, Path, description = "Submission id"),
        ("X-Edit-Token" = String, Header, description = "The edit token returned at submission"),
    ),
    responses(
        (status = 204, description = "Erased and uncounted"),
        (status = 401, description = "No edit token", body = Problem),
        (status = 403, description = "Wrong edit token", body = Problem),
        (status = 404, description = "No such submission", body = Problem),
    ))]
pub async fn erase_submission(
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let campaign = state.campaigns.get_public(&state.db, &slug).await?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::NotFound(format!("no submission `{id}` (not a valid id)")))?;
    let token = headers
        .get("x-edit-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "erasing needs the `X-Edit-Token` header given at submission".into(),
            )
        })?;
    super::erase(&state.db, &campaign, id, token).await?;
    Ok(StatusCode::NO_CONTENT)
}
