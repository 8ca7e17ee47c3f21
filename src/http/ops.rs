//! Operations: liveness, readiness and the OpenAPI document.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::AppState;
use super::error::{ApiError, ApiResult};

/// The OpenAPI document of the public and admin API, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "civicmap API", description = "Collaborative maps for cities: campaigns, districts, citizen submissions and their published counts."),
    paths(
        healthz,
        readyz,
        crate::campaigns::http::get_campaign,
        crate::campaigns::http::list_campaigns,
        crate::campaigns::http::create_campaign,
        crate::campaigns::http::update_campaign,
        crate::campaigns::http::get_campaign_admin,
        crate::campaigns::http::embed_snippet,
        crate::districts::http::import_districts,
        crate::districts::http::districts_geojson,
        crate::submissions::http::create_submission,
        crate::submissions::http::get_own_submission,
        crate::submissions::http::correct_submission,
        crate::submissions::http::erase_submission,
        crate::safety::http::create_challenge,
        crate::tiles::http::tile,
        crate::tiles::http::tilejson,
        crate::exports::http::aggregates_geojson,
        crate::exports::http::aggregates_csv,
        crate::exports::http::timeseries_csv,
        crate::exports::http::raw_geojson,
        crate::exports::http::raw_csv,
        crate::auth::http::list_tokens,
        crate::auth::http::create_token,
        crate::auth::http::expire_token,
        crate::auth::http::revoke_token,
        crate::audit::http::read_log,
        crate::moderation::http::read_queue,
        crate::moderation::http::decide,
        crate::moderation::http::report,
    ),
    components(schemas(super::error::Problem, super::error::FieldError)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// Routes outside `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Routes under `/api/v1`.
pub fn api_router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Ready to serve"),
    (status = 503, description = "Database unreachable or not migrated", body = super::error::Problem),
))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    crate::database::readiness(&state.db)
        .await
        .map_err(|e| match e {
            crate::database::NotReady::Unreachable(e) => ApiError::from(e),
            migrations => ApiError::NotReady(migrations.to_string()),
        })?;
    Ok(Json(json!({"status": "ready"})))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
