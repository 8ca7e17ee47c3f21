//! Staff routes of the figures: a campaign's privacy ledger and the preview of a budget
//! (`GET /api/v1/admin/campaigns/{slug}/privacy`), and a release made now (`POST
//! /api/v1/admin/campaigns/{slug}/releases`). The public reads the figures through the
//! downloads, the districts layer and the tiles.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::preview::{Preview, PreviewError};
use super::release::{Ledger, ReleaseError};
use crate::auth::{Admin, Authorized, Planner};
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{PathParams, QueryParams};
use crate::http::routes::{ADMIN, PLANNER, Routes};
use crate::validation::Invalid;

/// The privacy ledger and preview (planners and admins), and a release now (admins).
pub fn routes() -> Routes {
    Routes::new()
        .add(PLANNER, Private, routes!(privacy))
        .add(ADMIN, Private, routes!(release_now))
}

impl From<ReleaseError> for ApiError {
    fn from(error: ReleaseError) -> Self {
        match error {
            ReleaseError::Database(e) => e.into(),
            ReleaseError::Outline(..) => ApiError::Conflict(error.to_string()),
            ReleaseError::Noise(e) => ApiError::Internal(e.into()),
            ReleaseError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<PreviewError> for ApiError {
    fn from(error: PreviewError) -> Self {
        match error {
            PreviewError::Database(e) => e.into(),
            PreviewError::Noise(e) => ApiError::Internal(e.into()),
        }
    }
}

/// The query string of the privacy route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PrivacyQuery {
    /// A budget (ε, 0.1 to 10) to preview instead of the campaign's.
    pub budget: Option<String>,
}

/// A campaign's releases so far and what a budget means for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrivacyReport {
    pub ledger: Ledger,
    pub preview: Preview,
}

/// The campaign's privacy ledger (every release: when, what it counted, what each counted
/// contribution spent) and the preview of a budget on its own data: what an attacker can learn
/// and how noisy the estimates become. Exact counts: staff only.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/privacy", tag = "planner", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), PrivacyQuery),
    responses(
        (status = 200, description = "Ledger and preview", body = PrivacyReport),
        (status = 404, description = "No such campaign", body = Problem),
        (status = 422, description = "`budget` is not a number from 0.1 to 10", body = Problem),
    ))]
pub async fn privacy(
    _: Authorized<Planner>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<PrivacyQuery>,
) -> ApiResult<Json<PrivacyReport>> {
    use super::budget::{MAX_BUDGET, MIN_BUDGET};
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    let budget = match query.budget.as_deref() {
        None => campaign.privacy.budget,
        Some(text) => text
            .parse::<f64>()
            .ok()
            .filter(|b| (MIN_BUDGET..=MAX_BUDGET).contains(b))
            .ok_or_else(|| {
                Invalid::field(
                    "budget",
                    format!("must be a number from {MIN_BUDGET} to {MAX_BUDGET}, got `{text}`"),
                )
            })?,
    };
    let ledger = super::release::ledger(&state.db, &campaign).await?;
    let preview = super::preview::preview(
        &state.db,
        &campaign,
        budget,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(Json(PrivacyReport { ledger, preview }))
}

/// A release made now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseMade {
    pub id: i64,
    /// It counted the contributions published before this instant, not counted yet.
    #[serde(with = "time::serde::rfc3339")]
    pub period_end: time::OffsetDateTime,
    /// How many it counted.
    pub counted: usize,
    /// What each spent (ε).
    pub epsilon: f64,
}

/// Releases the campaign's figures finer than a district now, without waiting for the end of
/// the period (before a council meeting, say). Each contribution is still counted once: this
/// spends no more of anyone's budget, but adds one more release's noise to the estimates.
/// Written to the audit log.
#[utoipa::path(post, path = "/api/v1/admin/campaigns/{slug}/releases", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 201, description = "Released", body = ReleaseMade),
        (status = 404, description = "No such campaign", body = Problem),
        (status = 409, description = "A draft, which releases nothing; or a district outline that cannot be tiled", body = Problem),
    ))]
pub async fn release_now(
    staff: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> ApiResult<(StatusCode, Json<ReleaseMade>)> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    if campaign.status == crate::campaigns::Status::Draft {
        return Err(ApiError::Conflict(format!(
            "campaign `{slug}` is a draft: nothing of it is public, so nothing is released"
        )));
    }
    let actor = crate::audit::Actor::Staff(&staff.0);
    let made = super::release::release_now_audited(&state.db, actor, campaign.id)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict("a release covering this instant was just made".to_owned())
        })?;
    state.versions.touched(campaign.id);
    Ok((
        StatusCode::CREATED,
        Json(ReleaseMade {
            id: made.id,
            period_end: made.period_end,
            counted: made.counted,
            epsilon: made.epsilon,
        }),
    ))
}
