//! District routes: import (admin) and the public districts layer with published counts.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::UtoipaMethodRouterExt;
use utoipa_axum::routes;

use super::{DistrictError, ImportReport, PropertyNames};
use crate::auth::{Admin, Authorized};
use crate::http::AppState;
use crate::http::cache::{Basis, Key};
use crate::http::caching::Caching::{Figures, Private};
use crate::http::client_ip::ClientAddr;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams, QueryParams};
use crate::http::routes::{ADMIN, Access::Public, Routes};

impl From<DistrictError> for ApiError {
    fn from(error: DistrictError) -> Self {
        match error {
            DistrictError::Campaign(error) => error.into(),
            DistrictError::Invalid(invalid) => invalid.into(),
            DistrictError::Database(error) => error.into(),
        }
    }
}

/// Largest district file accepted by the API (the households' CSV keeps axum's 2 MB).
const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// `/api/v1/campaigns/{slug}/districts.geojson` and `/api/v1/admin/campaigns/{slug}/districts`.
pub fn routes() -> Routes {
    Routes::new()
        .add(Public, Figures, routes!(districts_geojson))
        .add(
            ADMIN,
            Private,
            routes!(import_districts).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .add(ADMIN, Private, routes!(import_households))
}

/// Replaces the number of households of a campaign's districts with a CSV of
/// `code;households` lines (`,`, `;` or a tab; a header line is allowed; UTF-8). All or
/// nothing: every bad line is named (`line 3`: bad code, not a number, unknown district).
#[utoipa::path(put, path = "/api/v1/admin/campaigns/{slug}/households", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    request_body(content = String, content_type = "text/csv", description = "`code;households` per line, e.g. `centre;4200`"),
    responses(
        (status = 200, description = "Imported", body = super::households::HouseholdsReport),
        (status = 404, description = "No such campaign", body = Problem),
        (status = 422, description = "Bad lines, each named (`line 3`), or no districts yet", body = Problem),
    ))]
pub async fn import_households(
    admin: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<super::households::HouseholdsReport>> {
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::from(crate::validation::Invalid::field(
            "body",
            format!(
                "is not UTF-8 text (byte {}): save the CSV as UTF-8",
                e.valid_up_to()
            ),
        ))
    })?;
    let report =
        super::households::import(&state.db, crate::audit::Actor::Staff(&admin.0), &slug, text)
            .await?;
    state.campaigns.invalidate(&slug).await;
    Ok(Json(report))
}

/// Which properties of the features hold the districts' names and codes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Property with the district's name (default `name`).
    name_prop: Option<String>,
    /// Property with the district's code (default `code`).
    code_prop: Option<String>,
}

/// The body of a district import as the OpenAPI document describes it: a GeoJSON
/// FeatureCollection of (Multi)Polygon features (RFC 7946). The handler reads it as JSON and
/// checks it with `parse_collection`, which refuses anything else with the feature's index.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct DistrictCollection {
    /// `FeatureCollection`.
    #[schema(rename = "type", pattern = "^FeatureCollection$")]
    kind: String,
    /// One feature per district, at least one.
    #[schema(min_items = 1)]
    features: Vec<DistrictFeature>,
}

/// A district.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct DistrictFeature {
    /// `Feature`.
    #[schema(rename = "type", pattern = "^Feature$")]
    kind: String,
    /// Holds the district's name and code (`name` and `code` unless `name_prop`, `code_prop`
    /// say otherwise), strings or numbers.
    #[schema(value_type = Object)]
    properties: Value,
    geometry: DistrictGeometry,
}

/// The outline of a district, in WGS 84 longitudes and latitudes.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum DistrictGeometry {
    Polygon(PolygonGeometry),
    MultiPolygon(MultiPolygonGeometry),
}

/// A GeoJSON Polygon: closed rings of at least 4 `[longitude, latitude]` positions.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct PolygonGeometry {
    /// `Polygon`.
    #[schema(rename = "type", pattern = "^Polygon$")]
    kind: String,
    coordinates: Vec<Vec<Vec<f64>>>,
}

/// A GeoJSON MultiPolygon: polygons of closed rings.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct MultiPolygonGeometry {
    /// `MultiPolygon`.
    #[schema(rename = "type", pattern = "^MultiPolygon$")]
    kind: String,
    coordinates: Vec<Vec<Vec<Vec<f64>>>>,
}

/// Replaces a campaign's districts with a GeoJSON FeatureCollection of (Multi)Polygons.
#[utoipa::path(put, path = "/api/v1/admin/campaigns/{slug}/districts", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), ImportQuery),
    request_body(content = DistrictCollection, content_type = "application/geo+json", description = "A GeoJSON FeatureCollection"),
    responses(
        (status = 200, description = "Imported", body = ImportReport),
        (status = 422, description = "A feature is refused, with its index and reason", body = Problem),
    ))]
pub async fn import_districts(
    _: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<ImportQuery>,
    JsonBody(collection): JsonBody<Value>,
) -> ApiResult<Json<ImportReport>> {
    let defaults = PropertyNames::default();
    let names = PropertyNames {
        name: query.name_prop.unwrap_or(defaults.name),
        code: query.code_prop.unwrap_or(defaults.code),
    };
    let report = super::import(&state.db, &slug, &collection, &names).await?;
    state.campaigns.invalidate(&slug).await;
    Ok(Json(report))
}

/// The districts of a public campaign with their published counts. A count below the
/// campaign's minimum is `null` and flagged `withheld`, never shown as 0.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/districts.geojson", tag = "public",
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "GeoJSON FeatureCollection; each feature has code, name, count, withheld, target, progress (count / target), households (on file, or null) and per_1000_households (count per 1,000 households, null when the count is withheld)", content_type = "application/geo+json", body = Object),
        (status = 304, description = "Not modified since the ETag given in If-None-Match"),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 429, description = "Too many downloads built on demand from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "This instance is building as many downloads as it takes at once, or the database is unavailable; see Retry-After", body = Problem),
    ))]
pub async fn districts_geojson(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (campaign, data_version) = state.public_campaign(&slug).await?;
    // Live district totals: shared by every reader until the data or the settings (districts,
    // targets, k) move.
    let key = Key {
        campaign: campaign.id,
        config_version: campaign.config_version,
        basis: Basis::Data(data_version),
        request: "districts.geojson".to_owned(),
    };
    let body =
        state
            .responses
            .get_or_build_for(&state.limits, client, Some(key), async {
                let reads = state
                    .reads
                    .at(campaign.id, campaign.config_version, data_version)
                    .await;
                Ok(serde_json::to_vec(&layer(&reads, &campaign).await?)
                    .map_err(anyhow::Error::from)?)
            })
            .await?;
    Ok(body.respond(&headers, "application/geo+json", None))
}

/// The districts layer of `campaign`: outlines with their published counts.
async fn layer(db: &sqlx::PgPool, campaign: &crate::campaigns::Campaign) -> ApiResult<Value> {
    let (shapes, counts, households) = tokio::try_join!(
        super::shapes(db, campaign.id),
        crate::figures::district_counts(db, campaign.id),
        super::households::of(db, campaign.id)
    )?;
    let published = counts.published(i64::from(campaign.privacy.min_count));
    let features: Vec<Value> = shapes
        .into_iter()
        .map(|shape| {
            let position = counts.districts.iter().position(|(id, _)| *id == shape.id);
            // A district created between the two reads has no count yet: withhold it.
            let count = position.map_or(crate::figures::PublishedCount { count: None, withheld: true }, |i| published.cells[i]);
            let target = campaign.targets.get(&shape.code).copied();
            let progress = count
                .count
                .zip(target.filter(|t| *t > 0))
                .map(|(c, t)| ((c as f64 / t as f64) * 1e4).round() / 1e4);
            // The rate comes from the published count alone: withheld with it.
            let homes = households.get(&shape.code).copied();
            let per_1000 = super::households::per_thousand(count, homes);
            json!({
                "type": "Feature",
                "id": shape.code,
                "properties": {
                    "code": shape.code, "name": shape.name, "count": count.count, "withheld": count.withheld,
                    "target": target, "progress": progress, "households": homes, "per_1000_households": per_1000,
                },
                "geometry": shape.geometry.0,
            })
        })
        .collect();
    let outside = published.cells.last().copied();
    Ok(json!({
        "type": "FeatureCollection",
        "features": features,
        "campaign": campaign.slug,
        "min_count": campaign.privacy.min_count,
        "total": published.total,
        "outside_districts": outside,
        "attribution": crate::campaigns::ATTRIBUTION,
    }))
}
