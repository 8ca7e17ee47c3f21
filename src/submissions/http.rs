//! Submission routes: a citizen posts a point, and with the edit token given then, reads it,
//! corrects it or erases it.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa_axum::router::UtoipaMethodRouterExt;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Corrected, IdempotencyKey, Pending, Receipt, Stored, SubmissionError};
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::client_ip::{ClientAddr, ClientKey};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams};
use crate::http::routes::Access::{EditToken, Public};
use crate::http::routes::Routes;
use crate::safety::http::{admit, check_proof};

impl From<SubmissionError> for ApiError {
    fn from(error: SubmissionError) -> Self {
        use SubmissionError as E;
        match error {
            E::Campaign(error) => error.into(),
            E::Invalid(invalid) => invalid.into(),
            E::NotFound(_) => ApiError::NotFound(error.to_string()),
            E::WrongToken => ApiError::Forbidden(error.to_string()),
            E::KeyReused | E::TooManyCorrections => ApiError::Conflict(error.to_string()),
            E::Erased => ApiError::Gone(error.to_string()),
            E::Unavailable(cause) => ApiError::Unavailable(cause),
            E::Database(error) => error.into(),
            E::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// Largest submission body: a point and a few answers fit in far less.
pub const MAX_SUBMISSION_BYTES: usize = 16 * 1024;

/// `/api/v1/campaigns/{slug}/submissions[/{id}]`: posting is public; reading, correcting and
/// erasing one needs its edit token, which the handlers check.
pub fn routes() -> Routes {
    Routes::new()
        .add(
            Public,
            Private,
            routes!(create_submission).layer(DefaultBodyLimit::max(MAX_SUBMISSION_BYTES)),
        )
        .add(
            EditToken,
            Private,
            routes!(get_own_submission, correct_submission, erase_submission)
                .layer(DefaultBodyLimit::max(MAX_SUBMISSION_BYTES)),
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

/// The body of a submission or a correction as the OpenAPI document describes it: a GeoJSON
/// Point Feature whose properties are the answers. The handler reads it as JSON and checks it
/// with `parse_feature`, which refuses anything else naming each field.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct SubmissionFeature {
    /// `Feature`.
    #[schema(rename = "type", pattern = "^Feature$")]
    kind: String,
    geometry: PointGeometry,
    /// The answers, by field key, as the campaign's form asks them.
    #[schema(value_type = Option<Object>)]
    properties: Option<Value>,
}

/// A GeoJSON Point.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct PointGeometry {
    /// `Point`.
    #[schema(rename = "type", pattern = "^Point$")]
    kind: String,
    /// `[longitude, latitude]` in degrees (WGS 84), optionally followed by an altitude,
    /// which is ignored.
    #[schema(min_items = 2, max_items = 3)]
    coordinates: Vec<f64>,
}

/// Submits a point with the campaign's answers. The response is sent once committed.
#[utoipa::path(post, path = "/api/v1/campaigns/{slug}/submissions", tag = "public",
    params(
        ("slug" = String, Path, description = "Campaign name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request return the first result instead of a duplicate"),
        ("Civicmap-Honeypot" = Option<String>, Header, description = "The widget's hidden `website` field; must be empty"),
        ("Civicmap-Fill-Ms" = Option<u64>, Header, description = "Milliseconds between showing the form and submitting it; at least the campaign's `min_fill_seconds` × 1000"),
        ("Civicmap-Proof" = Option<String>, Header, description = "`<challenge>:<nonce>`, required by campaigns with `proof_of_work` (see POST …/challenges)"),
    ),
    request_body(content = SubmissionFeature, content_type = "application/geo+json", description = "A GeoJSON Feature with a Point geometry; its properties are the answers"),
    responses(
        (status = 201, description = "Stored and counted; a retry with the same Idempotency-Key gets the first result again, with `Idempotent-Replayed: true`", body = Receipt),
        (status = 400, description = "The body is not valid JSON, or a header cannot be read (`Idempotency-Key`, `Civicmap-Fill-Ms`)", body = Problem),
        (status = 403, description = "Sent by a page of a site the campaign does not allow", body = Problem),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 409, description = "Campaign not open, or key reused for another request", body = Problem),
        (status = 413, description = "Body over 16 KiB", body = Problem),
        (status = 422, description = "Invalid point or answers, each error naming its field; a form filled by a program (`website`, `form`); a missing or bad proof of work (`urn:civicmap:problem:proof-of-work-needed`, field `proof_of_work`): asked by campaigns with `proof_of_work`, and while the campaign is under pressure", body = Problem),
        (status = 429, description = "Too many submissions from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "Database unavailable; retry after Retry-After seconds", body = Problem),
    ))]
pub async fn create_submission(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers, &body)?;
    let client = ClientKey::from(client);
    let mut attempts = 0;
    let mut proven = None;
    let mut admitted = false;
    let (replayed, receipt) = loop {
        let campaign = state.campaigns.get_public(&state.db, &slug).await?;
        let now = OffsetDateTime::now_utc();
        campaign.accepts_contributions(now)?;
        crate::safety::http::check_form_signals(campaign.min_fill_seconds, &headers)?;
        let submission = super::parse_feature(&campaign, &body).map_err(ApiError::Validation)?;
        let mut refused = None;
        if let Some(proof) = campaign.proof_of_work
            && proven.is_none()
        {
            match check_proof(&state, &headers, &campaign, proof.difficulty, now).await {
                Ok(verified) => proven = Some(verified),
                Err(error) => refused = Some(error),
            }
        }
        // Only a submission that passed every check takes from the campaign's allowance.
        if refused.is_none() && !admitted {
            match admit(&state, &campaign, client, &headers, proven.as_ref(), now).await {
                Ok(()) => admitted = true,
                Err(error) => refused = Some(error),
            }
        }
        if let Some(refused) = refused {
            match replay_of(&state, &campaign, key.as_ref()).await? {
                // A retry of a request that was stored: its proof was spent by then, and the
                // campaign may be under pressure since.
                Some(receipt) => break (true, receipt),
                None => return Err(refused),
            }
        }
        let secret = state.secret.get(&state.db).await?;
        let client_hash = campaign.duplicates.map(|_| secret.client_hash(&client));
        let contributor = Some(secret.contributor(campaign.id, &client));
        let pending = Pending {
            campaign,
            submission,
            key: key.clone(),
            client_hash,
            contributor,
        };
        let stored = if pending.client_hash.is_some() {
            super::store_one_checked(&state.db, pending).await?
        } else {
            state.submissions.store(pending).await?
        };
        match stored {
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
    Ok(response)
}

/// The stored receipt of an earlier request with this idempotency key, if there is one.
async fn replay_of(
    state: &AppState,
    campaign: &crate::campaigns::Campaign,
    key: Option<&IdempotencyKey>,
) -> ApiResult<Option<Receipt>> {
    let Some(key) = key else {
        return Ok(None);
    };
    let mut connection = state.db.acquire().await?;
    match super::replay(&mut connection, campaign, key).await {
        Ok(Stored::Replayed(receipt)) => Ok(Some(receipt)),
        _ => Ok(None),
    }
}

/// The edit token of a request, or a 401 saying that `action` needs it.
fn edit_token<'h>(headers: &'h HeaderMap, action: &str) -> ApiResult<&'h str> {
    headers
        .get("x-edit-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "{action} needs the `X-Edit-Token` header given at submission"
            ))
        })
}

fn submission_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::NotFound(format!("no submission `{id}` (not a valid id)")))
}

/// A submitter's own submission as a GeoJSON Feature, never cached (its route is
/// `Caching::Private`).
fn own_feature(submission: &super::OwnSubmission) -> Response {
    let mut response = Json(submission.to_feature()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/geo+json"),
    );
    response
}

/// The submitter's own submission: exact point, answers, status, district and dates.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/submissions/{id}", tag = "public",
    params(
        ("slug" = String, Path, description = "Campaign name"),
        ("id" = String, Path, description = "Submission id"),
        ("X-Edit-Token" = String, Header, description = "The edit token returned at submission"),
    ),
    responses(
        (status = 200, description = "A GeoJSON Feature: `geometry` the exact point, `properties` the answers, `civicmap` {status, district ({code, name} or null), created_at, updated_at}; `Cache-Control: no-store`", content_type = "application/geo+json", body = Object),
        (status = 401, description = "No edit token", body = Problem),
        (status = 403, description = "Wrong edit token", body = Problem),
        (status = 404, description = "No such submission", body = Problem),
    ))]
pub async fn get_own_submission(
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let campaign = state.campaigns.get_public(&state.db, &slug).await?;
    let id = submission_id(&id)?;
    let token = edit_token(&headers, "reading a submission")?;
    let submission = super::view(&state.db, &campaign, id, token).await?;
    Ok(own_feature(&submission))
}

/// Corrects a submission: a new point and answers, checked like a new submission, counted in
/// the new place instead of the old one.
#[utoipa::path(patch, path = "/api/v1/campaigns/{slug}/submissions/{id}", tag = "public",
    params(
        ("slug" = String, Path, description = "Campaign name"),
        ("id" = String, Path, description = "Submission id"),
        ("X-Edit-Token" = String, Header, description = "The edit token returned at submission"),
        ("Civicmap-Honeypot" = Option<String>, Header, description = "The widget's hidden `website` field; must be empty"),
        ("Civicmap-Fill-Ms" = Option<u64>, Header, description = "Milliseconds between showing the form and sending the correction; at least the campaign's `min_fill_seconds` × 1000"),
    ),
    request_body(content = SubmissionFeature, content_type = "application/geo+json", description = "A GeoJSON Feature with a Point geometry; its properties are the answers (all of them, as on submission)"),
    responses(
        (status = 200, description = "Corrected; the submission as it is now (as GET returns it)", content_type = "application/geo+json", body = Object),
        (status = 400, description = "The body is not valid JSON, or `Civicmap-Fill-Ms` is not a number", body = Problem),
        (status = 401, description = "No edit token", body = Problem),
        (status = 403, description = "Wrong edit token, or a site the campaign does not allow", body = Problem),
        (status = 404, description = "No such submission", body = Problem),
        (status = 409, description = "Campaign not open, or the submission was already corrected the most times allowed", body = Problem),
        (status = 422, description = "Invalid point or answers, each error naming its field", body = Problem),
        (status = 429, description = "Too many writes from this client; see Retry-After", body = Problem),
    ))]
pub async fn correct_submission(
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let id = submission_id(&id)?;
    let token = edit_token(&headers, "correcting a submission")?;
    for _ in 0..3 {
        let campaign = state.campaigns.get_public(&state.db, &slug).await?;
        campaign.accepts_contributions(OffsetDateTime::now_utc())?;
        crate::safety::http::check_form_signals(campaign.min_fill_seconds, &headers)?;
        let submission = super::parse_feature(&campaign, &body).map_err(ApiError::Validation)?;
        match super::correct(&state.db, &campaign, id, token, &submission).await? {
            Corrected::Done(corrected) => return Ok(own_feature(&corrected)),
            Corrected::Stale => state.campaigns.invalidate(&slug).await,
        }
    }
    Err(ApiError::Conflict(
        "the campaign is being changed; please retry".into(),
    ))
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
    let id = submission_id(&id)?;
    let token = edit_token(&headers, "erasing")?;
    super::erase(&state.db, &campaign, id, token).await?;
    Ok(StatusCode::NO_CONTENT)
}
