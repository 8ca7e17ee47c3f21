//! Campaign routes: the public metadata and the admin API.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::routes;

use super::staff::{ExactFigures, ListedCampaign};
use super::wire::{PublicCampaign, StaffCampaign};
use super::{CampaignError, CampaignInput};
use crate::auth::{Admin, Authorized, Planner, Staff};
use crate::http::AppState;
use crate::http::caching::Caching::{Private, Settings};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams};
use crate::http::routes::{ADMIN, ANY_STAFF, Access::Public, PLANNER, Routes};

/// `/api/v1/campaigns/{slug}` (public: what a campaign shows, never a submission),
/// `/api/v1/admin/campaigns[/{slug}]` (admins), `/api/v1/staff/campaigns` (any staff role) and
/// `/api/v1/admin/campaigns/{slug}/figures` (planners).
pub fn routes() -> Routes {
    Routes::new()
        .add(Public, Settings, routes!(get_campaign))
        .add(ADMIN, Private, routes!(create_campaign, list_campaigns))
        .add(ADMIN, Private, routes!(get_campaign_admin, update_campaign))
        .add(ADMIN, Private, routes!(embed_snippet))
        .add(ANY_STAFF, Private, routes!(staff_campaigns))
        .add(PLANNER, Private, routes!(exact_figures))
}

impl From<CampaignError> for ApiError {
    fn from(error: CampaignError) -> Self {
        match error {
            CampaignError::NotFound(_) => ApiError::NotFound(error.to_string()),
            CampaignError::SlugTaken(_) | CampaignError::NotAccepting(_) => {
                ApiError::Conflict(error.to_string())
            }
            CampaignError::Invalid(invalid) => invalid.into(),
            CampaignError::Database(error) => error.into(),
        }
    }
}

/// What a city's web team pastes into its pages.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EmbedSnippet {
    /// The one-line iframe snippet (survives any host CSS; the host's CSP must allow the frame).
    pub script: String,
    /// The inline custom element, rendered in a Shadow DOM, and the script that defines it.
    pub element: String,
    /// The iframe page itself, for CMSs that only accept an iframe URL.
    pub iframe_url: String,
}

/// The ready-to-paste embed snippets of a campaign, with this server's address.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/embed", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "Snippets", body = EmbedSnippet),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn embed_snippet(
    _: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Json<EmbedSnippet>> {
    let campaign = super::get(&state.db, &slug).await?;
    let base = crate::http::public_base_url(&headers);
    let slug = &campaign.slug;
    Ok(Json(EmbedSnippet {
        script: format!(r#"<script src="{base}/embed.js" data-campaign="{slug}" async></script>"#),
        element: format!(
            r#"<civicmap-map campaign="{slug}"></civicmap-map><script src="{base}/widget/civicmap.js" defer></script>"#
        ),
        iframe_url: format!("{base}/embed/{slug}"),
    }))
}

/// A public campaign's metadata and form.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}", tag = "public",
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign", body = PublicCampaign),
        (status = 404, description = "No such public campaign", body = Problem),
    ))]
pub async fn get_campaign(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Json<PublicCampaign>> {
    let campaign = state.campaigns.get_public(&state.db, &slug).await?;
    let mut public = PublicCampaign::from(&*campaign);
    // The campaign's own basemap wins; without one, the server's own, when it has one.
    if public.basemap.is_none() && state.config.basemap.is_some() {
        let base = crate::http::public_base_url(&headers);
        public.basemap = Some(super::Basemap::Style {
            url: format!("{base}/basemap/style.json"),
        });
    }
    public.notices = state.config.email_notices && campaign.status == super::Status::Open;
    Ok(Json(public))
}

/// Every campaign, drafts included.
#[utoipa::path(get, path = "/api/v1/admin/campaigns", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "All campaigns", body = [StaffCampaign]),
              (status = 401, description = "No valid token", body = Problem)))]
pub async fn list_campaigns(
    _: Authorized<Admin>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<StaffCampaign>>> {
    let campaigns = super::list(&state.db).await?;
    let pressure = crate::safety::limits::pressure(&state.db).await?;
    Ok(Json(
        campaigns
            .iter()
            .map(|c| StaffCampaign::new(c, &pressure))
            .collect(),
    ))
}

/// Every campaign, drafts included, with how many submissions wait for a moderator: what a
/// moderator or a planner picks a campaign from.
#[utoipa::path(get, path = "/api/v1/staff/campaigns", tag = "staff", security(("bearer" = [])),
    responses((status = 200, description = "All campaigns, newest first", body = [ListedCampaign]),
              (status = 401, description = "No valid token", body = Problem)))]
pub async fn staff_campaigns(
    _: Staff,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ListedCampaign>>> {
    Ok(Json(super::staff::list(&state.db).await?))
}

/// A campaign's exact counts, live and without the k threshold: by status, by district and by
/// answer (choice and boolean fields). Planners and admins only; each read is in the audit log.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/figures", tag = "planner", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "Exact figures", body = ExactFigures),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a planner or admin token", body = Problem),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn exact_figures(
    staff: Authorized<Planner>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> ApiResult<Json<ExactFigures>> {
    let campaign = super::get(&state.db, &slug).await?;
    let figures =
        super::staff::exact_figures(&state.db, crate::audit::Actor::Staff(&staff.0), &campaign)
            .await?;
    Ok(Json(figures))
}

/// A campaign, drafts included.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign", body = StaffCampaign),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn get_campaign_admin(
    _: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> ApiResult<Json<StaffCampaign>> {
    let campaign = super::get(&state.db, &slug).await?;
    let pressure = crate::safety::limits::pressure(&state.db).await?;
    Ok(Json(StaffCampaign::new(&campaign, &pressure)))
}

/// Creates a campaign.
#[utoipa::path(post, path = "/api/v1/admin/campaigns", tag = "admin", security(("bearer" = [])),
    request_body = CampaignInput,
    responses(
        (status = 201, description = "Created", body = StaffCampaign),
        (status = 409, description = "Slug taken", body = Problem),
        (status = 422, description = "Invalid settings", body = Problem),
    ))]
pub async fn create_campaign(
    _: Authorized<Admin>,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<CampaignInput>,
) -> ApiResult<(StatusCode, Json<StaffCampaign>)> {
    let campaign = super::create(&state.db, input).await?;
    tracing::info!(campaign = %campaign.slug, "campaign created");
    Ok((
        StatusCode::CREATED,
        Json(StaffCampaign::new(
            &campaign,
            &crate::safety::limits::pressure(&state.db).await?,
        )),
    ))
}

/// Changes a campaign: absent fields stay as they are, `null` clears a nullable one.
#[utoipa::path(patch, path = "/api/v1/admin/campaigns/{slug}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    request_body = CampaignInput,
    responses(
        (status = 200, description = "Updated", body = StaffCampaign),
        (status = 404, description = "No such campaign", body = Problem),
        (status = 422, description = "Invalid settings", body = Problem),
    ))]
pub async fn update_campaign(
    _: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    JsonBody(input): JsonBody<CampaignInput>,
) -> ApiResult<Json<StaffCampaign>> {
    let campaign = super::update(&state.db, &slug, input).await?;
    state.campaigns.invalidate(&slug).await;
    Ok(Json(StaffCampaign::new(
        &campaign,
        &crate::safety::limits::pressure(&state.db).await?,
    )))
}
