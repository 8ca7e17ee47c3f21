//! Story routes: the public story and its Atom feed, and the admin API that writes it.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{EntryInput, PublicEntry, StaffEntry, StoryError};
use crate::audit::Actor;
use crate::auth::{Admin, Authorized};
use crate::campaigns::Lang;
use crate::http::AppState;
use crate::http::cache::{Basis, Key};
use crate::http::caching::Caching::{Private, Settings};
use crate::http::client_ip::ClientAddr;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams, QueryParams};
use crate::http::routes::{ADMIN, Access::Public, Routes};

impl From<StoryError> for ApiError {
    fn from(error: StoryError) -> Self {
        match error {
            StoryError::Campaign(error) => error.into(),
            StoryError::NotFound(_) => ApiError::NotFound(error.to_string()),
            StoryError::Full => ApiError::Conflict(error.to_string()),
            StoryError::Invalid(invalid) => invalid.into(),
            StoryError::Database(error) => error.into(),
        }
    }
}

/// `/api/v1/campaigns/{slug}/story` and `story.atom` (public), and
/// `/api/v1/admin/campaigns/{slug}/story[/{id}]` (admins).
pub fn routes() -> Routes {
    Routes::new()
        .add(Public, Settings, routes!(public_story))
        .add(Public, Settings, routes!(story_atom))
        .add(ADMIN, Private, routes!(list_story, create_entry))
        .add(ADMIN, Private, routes!(replace_entry, delete_entry))
}

/// A campaign's published story.
#[derive(Debug, Serialize, ToSchema)]
pub struct Story {
    /// The campaign's name.
    pub campaign: String,
    /// The entries in the order they happened (by date, then as posted).
    pub entries: Vec<PublicEntry>,
}

/// The published milestones and updates of a public campaign, oldest first.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/story", tag = "public",
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The published story", body = Story),
        (status = 304, description = "Not modified since the ETag given in If-None-Match"),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 429, description = "Too many downloads built on demand from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "This instance is building as many downloads as it takes at once, or the database is unavailable; see Retry-After", body = Problem),
    ))]
pub async fn public_story(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (campaign, _) = state.public_campaign(&slug).await?;
    // Every story write moves the settings version: one body per version.
    let key = Key {
        campaign: campaign.id,
        config_version: campaign.config_version,
        basis: Basis::Settings,
        request: "story.json".to_owned(),
    };
    let body = state
        .responses
        .get_or_build_for(&state.limits, client, Some(key), async {
            let entries = super::list(&state.db, campaign.id, false).await?;
            let story = Story {
                campaign: campaign.slug.clone(),
                entries: entries.iter().map(PublicEntry::from).collect(),
            };
            Ok(serde_json::to_vec(&story).map_err(anyhow::Error::from)?)
        })
        .await?;
    Ok(body.respond(&headers, "application/json", None))
}

/// The language of a feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// `fr` or `en` (default: the campaign's language).
    #[param(value_type = Option<String>, pattern = "^(fr|en)$")]
    lang: Option<Lang>,
}

/// The published story of a public campaign as an Atom 1.0 feed, latest first, in one language.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/story.atom", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), FeedQuery),
    responses(
        (status = 200, description = "Atom 1.0 feed (RFC 4287)", content_type = "application/atom+xml", body = String),
        (status = 304, description = "Not modified since the ETag given in If-None-Match"),
        (status = 400, description = "`lang` is not `fr` or `en`", body = Problem),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 429, description = "Too many downloads built on demand from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "This instance is building as many downloads as it takes at once, or the database is unavailable; see Retry-After", body = Problem),
    ))]
pub async fn story_atom(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<FeedQuery>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (campaign, _) = state.public_campaign(&slug).await?;
    let lang = query.lang.unwrap_or(campaign.default_lang);
    // The feed names its own address (its id and links): one body per address it was asked at.
    let base = crate::http::public_base_url(&headers);
    let key = Key {
        campaign: campaign.id,
        config_version: campaign.config_version,
        basis: Basis::Settings,
        request: format!("story.atom/{lang:?}/{base}"),
    };
    let body = state
        .responses
        .get_or_build_for(&state.limits, client, Some(key), async {
            let entries = super::list(&state.db, campaign.id, false).await?;
            let updated = sqlx::query_scalar!(
                "SELECT updated_at FROM campaigns WHERE id = $1",
                campaign.id
            )
            .fetch_one(&state.db)
            .await?;
            Ok(super::feed::write(
                &campaign, &entries, lang, &base, updated,
            ))
        })
        .await?;
    Ok(body.respond(&headers, super::feed::CONTENT_TYPE, None))
}

/// Every entry of a campaign's story, drafts included, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/story", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The story, drafts included", body = [StaffEntry]),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn list_story(
    _: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> ApiResult<Json<Vec<StaffEntry>>> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    let entries = super::list(&state.db, campaign.id, true).await?;
    Ok(Json(entries.iter().map(StaffEntry::from).collect()))
}

/// Adds a milestone or an update to a campaign's story (audited).
#[utoipa::path(post, path = "/api/v1/admin/campaigns/{slug}/story", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    request_body = EntryInput,
    responses(
        (status = 201, description = "Posted", body = StaffEntry),
        (status = 404, description = "No such campaign", body = Problem),
        (status = 409, description = "The story holds as many entries as it may", body = Problem),
        (status = 422, description = "Invalid entry, every field named", body = Problem),
    ))]
pub async fn create_entry(
    admin: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    JsonBody(input): JsonBody<EntryInput>,
) -> ApiResult<(StatusCode, Json<StaffEntry>)> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    let saved = super::create(&state.db, Actor::Staff(&admin.0), &campaign, input).await?;
    state.campaigns.invalidate(&slug).await;
    Ok((StatusCode::CREATED, Json(StaffEntry::from(&saved.entry))))
}

/// Replaces an entry of a campaign's story (audited).
#[utoipa::path(put, path = "/api/v1/admin/campaigns/{slug}/story/{id}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), ("id" = Uuid, Path, description = "Entry")),
    request_body = EntryInput,
    responses(
        (status = 200, description = "Replaced", body = StaffEntry),
        (status = 404, description = "No such campaign or entry", body = Problem),
        (status = 422, description = "Invalid entry, every field named", body = Problem),
    ))]
pub async fn replace_entry(
    admin: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, Uuid)>,
    JsonBody(input): JsonBody<EntryInput>,
) -> ApiResult<Json<StaffEntry>> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    let saved = super::replace(&state.db, Actor::Staff(&admin.0), &campaign, id, input).await?;
    state.campaigns.invalidate(&slug).await;
    Ok(Json(StaffEntry::from(&saved.entry)))
}

/// Deletes an entry of a campaign's story (audited).
#[utoipa::path(delete, path = "/api/v1/admin/campaigns/{slug}/story/{id}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), ("id" = Uuid, Path, description = "Entry")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such campaign or entry", body = Problem),
    ))]
pub async fn delete_entry(
    admin: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, Uuid)>,
) -> ApiResult<StatusCode> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    super::delete(&state.db, Actor::Staff(&admin.0), &campaign, id).await?;
    state.campaigns.invalidate(&slug).await;
    Ok(StatusCode::NO_CONTENT)
}
