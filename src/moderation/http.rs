//! Moderation routes: the queue, decisions and reports. Access is declared in
//! [`crate::http::routes`]: moderators and admins decide, any staff may report.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Action, Decision, Filed, MAX_PAGE, ModerationError, Queue, QueuePage};
use crate::audit::Actor;
use crate::auth::Staff;
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams, QueryParams};
use crate::http::routes::{ANY_STAFF, MODERATOR, Routes};

impl From<ModerationError> for ApiError {
    fn from(error: ModerationError) -> Self {
        match error {
            ModerationError::Invalid(invalid) => invalid.into(),
            ModerationError::NotFound(_) => ApiError::NotFound(error.to_string()),
            ModerationError::NotApplicable(why) => ApiError::Conflict(why),
            ModerationError::Database(error) => error.into(),
        }
    }
}

/// `/api/v1/moderation/campaigns/{slug}/...`.
pub fn routes() -> Routes {
    Routes::new()
        .add(MODERATOR, Private, routes!(read_queue))
        .add(MODERATOR, Private, routes!(decide))
        .add(ANY_STAFF, Private, routes!(report))
}

fn submission_id(text: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::NotFound(format!("no submission `{text}` (not a valid id)")))
}

/// Which queue, and where to start.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// `pending` (default), `reported`, `hidden` or `rejected`.
    #[param(value_type = Option<String>)]
    status: Option<Queue>,
    /// The previous page's `next_after`.
    #[param(value_type = Option<String>, format = Uuid)]
    after: Option<Uuid>,
    /// Items per page, 1 to 200 (50 by default).
    limit: Option<i64>,
}

/// A page of a campaign's moderation queue, oldest first, with exact positions and answers.
/// Each read is recorded in the audit log.
#[utoipa::path(get, path = "/api/v1/moderation/campaigns/{slug}/queue", tag = "moderation", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), QueueQuery),
    responses(
        (status = 200, description = "A page of the queue", body = QueuePage),
        (status = 400, description = "Invalid status, cursor or limit", body = Problem),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn read_queue(
    staff: Staff,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<QueueQuery>,
) -> ApiResult<Json<QueuePage>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    let page = super::queue(
        &state.db,
        Actor::Staff(&staff),
        &campaign,
        query.status.unwrap_or_default(),
        query.after,
        limit,
    )
    .await?;
    Ok(Json(page))
}

/// A moderator's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// `approve` (pending → published), `reject` (pending → rejected), `hide` (published →
    /// hidden), `restore` (hidden or rejected → published), `dismiss` (close open reports).
    pub action: Action,
    /// Why; required for `reject` and `hide`; kept in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Decides on a submission. Counts, tiles and exports reflect it as soon as it answers.
#[utoipa::path(post, path = "/api/v1/moderation/campaigns/{slug}/submissions/{id}/decision", tag = "moderation", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), ("id" = String, Path, description = "Submission id")),
    request_body = DecisionInput,
    responses(
        (status = 200, description = "Decided", body = Decision),
        (status = 404, description = "No such campaign or submission", body = Problem),
        (status = 409, description = "Not allowed from the submission's current status (named)", body = Problem),
        (status = 422, description = "Unknown action, or reason missing", body = Problem),
    ))]
pub async fn decide(
    staff: Staff,
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, String)>,
    JsonBody(input): JsonBody<DecisionInput>,
) -> ApiResult<Json<Decision>> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    let id = submission_id(&id)?;
    let decision = super::decide(
        &state.db,
        Actor::Staff(&staff),
        &campaign,
        id,
        input.action,
        input.reason.as_deref(),
    )
    .await?;
    Ok(Json(decision))
}

/// A report on a submission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    /// What is wrong with it (1 to 1000 characters).
    pub reason: Option<String>,
}

/// Flags a submission for moderators: it shows in the `reported` queue until decided on.
#[utoipa::path(post, path = "/api/v1/moderation/campaigns/{slug}/submissions/{id}/report", tag = "moderation", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), ("id" = String, Path, description = "Submission id")),
    request_body = ReportInput,
    responses(
        (status = 201, description = "Reported", body = Filed),
        (status = 404, description = "No such campaign or submission", body = Problem),
        (status = 422, description = "Reason missing or too long", body = Problem),
    ))]
pub async fn report(
    staff: Staff,
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, String)>,
    JsonBody(input): JsonBody<ReportInput>,
) -> ApiResult<(StatusCode, Json<Filed>)> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    let id = submission_id(&id)?;
    let filed = super::report(
        &state.db,
        Actor::Staff(&staff),
        &campaign,
        id,
        input.reason.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(filed)))
}
