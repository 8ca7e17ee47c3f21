//! Export routes: public aggregates and time series, and the raw export for planners.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::format::{self, Csv, Format};
use super::timeseries::TimeseriesQuery;
use super::{AggregateQuery, ExportError, raw};
use crate::auth::{Authorized, Planner, Role, Staff};
use crate::figures;
use crate::http::AppState;
use crate::http::cache::{Basis, Key};
use crate::http::caching::Caching::{Figures, Private};
use crate::http::client_ip::ClientAddr;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{PathParams, QueryParams};
use crate::http::routes::{Access::Public, PLANNER, Routes};

impl From<ExportError> for ApiError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::Invalid(invalid) => invalid.into(),
            ExportError::NeedsPlanner(why) => ApiError::Forbidden(why),
            ExportError::Database(error) => error.into(),
            ExportError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// `/api/v1/campaigns/{slug}/aggregates.{geojson,csv}`, `…/timeseries.csv` and
/// `/api/v1/admin/campaigns/{slug}/submissions.{geojson,csv}`.
pub fn routes() -> Routes {
    Routes::new()
        // Public; a time window or an H3 breakdown also needs a planner token, checked by the
        // handler (`optional_staff`).
        .add(Public, Figures, routes!(aggregates_geojson))
        .add(Public, Figures, routes!(aggregates_csv))
        .add(Public, Figures, routes!(timeseries_csv))
        // Exact positions, audited.
        .add(PLANNER, Private, routes!(raw_geojson))
        .add(PLANNER, Private, routes!(raw_csv))
}

/// The staff member behind an optional bearer token (or the console's session, see
/// [`crate::auth::optional_staff`]): `None` without one. A token that is given must be valid
/// and of `role` (or admin): a bad token is refused, never silently treated as no token.
async fn optional_staff(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
) -> ApiResult<Option<Staff>> {
    let Some(staff) =
        crate::auth::optional_staff(&state.db, &axum::http::Method::GET, headers).await?
    else {
        return Ok(None);
    };
    if !staff.role.allows(role) {
        return Err(crate::auth::forbidden(&staff, &[role, Role::Admin]));
    }
    Ok(Some(staff))
}

async fn aggregates(
    state: AppState,
    slug: String,
    query: AggregateQuery,
    client: std::net::IpAddr,
    headers: HeaderMap,
    format: Format,
) -> ApiResult<Response> {
    let (campaign, data_version) = state.public_campaign(&slug).await?;
    let staff = optional_staff(&state, &headers, Role::Planner).await?;
    let request = query.check(&campaign, staff.is_some())?;
    // The public's figures are shared by every reader until the data moves (a counted change
    // or a release); a planner's exact ones are built for them alone.
    let key = staff.is_none().then(|| Key {
        campaign: campaign.id,
        config_version: campaign.config_version,
        basis: Basis::Data(data_version),
        request: format!("aggregates/{request:?}/{format:?}"),
    });
    let body = state
        .responses
        .get_or_build_for(&state.limits, client, key, async {
            let reads = state
                .reads
                .at(campaign.id, campaign.config_version, data_version)
                .await;
            let aggregate = if staff.is_some() {
                figures::aggregate::exact(&reads, &campaign, &request)
                    .await
                    .map_err(ExportError::from)?
            } else {
                let released = state.released(&campaign, data_version).await?;
                figures::aggregate::public(&reads, &campaign, &request, released.as_ref().as_ref())
                    .await
                    .map_err(ExportError::from)?
            };
            Ok(match format {
                Format::GeoJson => serde_json::to_vec(&format::geojson(&aggregate, &campaign.slug))
                    .map_err(anyhow::Error::from)?,
                Format::Csv(flavour) => {
                    format::csv(&aggregate, flavour).map_err(anyhow::Error::from)?
                }
            })
        })
        .await?;
    // CSV is a file to save; GeoJSON is read by maps as often as saved.
    let filename = matches!(format, Format::Csv(_)).then(|| {
        let by = request.by.as_query().replace(':', "");
        format!("{}-{by}.{}", campaign.slug, format.extension())
    });
    Ok(body.respond(&headers, format.content_type(), filename.as_deref()))
}

/// Counts by district (exact, live, withheld below k) or by H3 hexagon of the map, with splits
/// by a public answer and sums of a public number as estimates released with differential
/// privacy, as GeoJSON; a planner's token gets every figure exact.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/aggregates.geojson", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), AggregateQuery),
    responses(
        (status = 200, description = "FeatureCollection (RFC 7946): district polygons with `count` (null when withheld), `withheld`, `target`, `progress`, and the estimates `estimate_{field}={answer}` and `estimate_sum_{field}`; or H3 hexagons with `estimate_count`. `estimates` says how they were made (ε, release). With a planner token, exact figures without the `estimate_` prefix", content_type = "application/geo+json", body = Object),
        (status = 304, description = "Not modified since the ETag given in If-None-Match"),
        (status = 403, description = "A time window or an H3 breakdown without a planner token", body = Problem),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 422, description = "A parameter is invalid, named in `errors`", body = Problem),
        (status = 429, description = "Too many downloads built on demand from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "This instance is building as many downloads as it takes at once, or the database is unavailable; see Retry-After", body = Problem),
    ))]
pub async fn aggregates_geojson(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<AggregateQuery>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    aggregates(state, slug, query, client, headers, Format::GeoJson).await
}

/// The same figures as `aggregates.geojson`, as CSV (RFC 4180, UTF-8).
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/aggregates.csv", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), AggregateQuery),
    responses(
        (status = 200, description = "CSV with a header row; `lon`/`lat` hold a point inside each area; a withheld count is empty; estimates are in `estimate_…` columns. `excel=1`: BOM, `;` and decimal comma", content_type = "text/csv", body = String),
        (status = 304, description = "Not modified since the ETag given in If-None-Match"),
        (status = 403, description = "A time window or an H3 breakdown without a planner token", body = Problem),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 422, description = "A parameter is invalid, named in `errors`", body = Problem),
        (status = 429, description = "Too many downloads built on demand from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "This instance is building as many downloads as it takes at once, or the database is unavailable; see Retry-After", body = Problem),
    ))]
pub async fn aggregates_csv(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<AggregateQuery>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = Format::new(true, query.excel());
    aggregates(state, slug, query, client, headers, format).await
}

/// Contributions per period: for the public, one estimate per release (differential
/// privacy); with a planner's token, exact counts per UTC day or week, optionally by district.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/timeseries.csv", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), TimeseriesQuery),
    responses(
        (status = 200, description = "CSV: `period` (first day), then `code`/`name` with `by=district`; public: `period_end`, `estimate` (empty when withheld), `withheld`; staff: `count`", content_type = "text/csv", body = String),
        (status = 304, description = "Not modified since the ETag given in If-None-Match"),
        (status = 403, description = "A series by district without a planner token", body = Problem),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 422, description = "A parameter is invalid, named in `errors`", body = Problem),
        (status = 429, description = "Too many downloads built on demand from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "This instance is building as many downloads as it takes at once, or the database is unavailable; see Retry-After", body = Problem),
    ))]
pub async fn timeseries_csv(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<TimeseriesQuery>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (campaign, data_version) = state.public_campaign(&slug).await?;
    let staff = optional_staff(&state, &headers, Role::Planner).await?;
    let request = query.check(&campaign, staff.is_some())?;
    let flavour = Csv::from_excel(query.excel());
    let key = staff.is_none().then(|| Key {
        campaign: campaign.id,
        config_version: campaign.config_version,
        basis: Basis::Data(data_version),
        request: format!("timeseries/{request:?}/{flavour:?}"),
    });
    let body = state
        .responses
        .get_or_build_for(&state.limits, client, key, async {
            let series = if staff.is_some() {
                let reads = state
                    .reads
                    .at(campaign.id, campaign.config_version, data_version)
                    .await;
                figures::series::exact(&reads, &campaign, &request)
                    .await
                    .map_err(ExportError::from)?
            } else {
                let released = state.released(&campaign, data_version).await?;
                figures::series::public(&campaign, &request, released.as_ref().as_ref())
            };
            Ok(super::timeseries::csv(&series, flavour).map_err(anyhow::Error::from)?)
        })
        .await?;
    let filename = format!("{}-timeseries.csv", campaign.slug);
    Ok(body.respond(
        &headers,
        "text/csv; charset=utf-8; header=present",
        Some(&filename),
    ))
}

/// Every published submission with its exact position and all answers, as GeoJSON, streamed.
/// Planner token; each export is written to the audit log.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/submissions.geojson", tag = "planner", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), raw::RawQuery),
    responses(
        (status = 200, description = "FeatureCollection of Points; properties: id, created_at, district, then the answers", content_type = "application/geo+json", body = Object),
        (status = 401, description = "No or invalid token", body = Problem),
        (status = 403, description = "Not a planner token", body = Problem),
        (status = 404, description = "No such campaign", body = Problem),
        (status = 422, description = "A filter is invalid (`from`, `to`, `excel`), named in `errors`", body = Problem),
    ))]
pub async fn raw_geojson(
    staff: Authorized<Planner>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<raw::RawQuery>,
) -> ApiResult<Response> {
    raw_response(state, staff.0, &slug, query, Format::GeoJson).await
}

/// Every published submission with its exact position and all answers, as CSV, streamed.
/// Planner token; each export is written to the audit log.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/submissions.csv", tag = "planner", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), raw::RawQuery),
    responses(
        (status = 200, description = "CSV: id, created_at, district_code, district_name, lon, lat, then one column per form field", content_type = "text/csv", body = String),
        (status = 401, description = "No or invalid token", body = Problem),
        (status = 403, description = "Not a planner token", body = Problem),
        (status = 404, description = "No such campaign", body = Problem),
        (status = 422, description = "A filter is invalid (`from`, `to`, `excel`), named in `errors`", body = Problem),
    ))]
pub async fn raw_csv(
    staff: Authorized<Planner>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<raw::RawQuery>,
) -> ApiResult<Response> {
    let format = Format::new(true, query.excel());
    raw_response(state, staff.0, &slug, query, format).await
}

/// The raw export response: streamed from a task, audited when it ends.
async fn raw_response(
    state: AppState,
    staff: Staff,
    slug: &str,
    query: raw::RawQuery,
    format: Format,
) -> ApiResult<Response> {
    let campaign = crate::campaigns::get(&state.db, slug).await?;
    let filter = query.check()?;
    raw::check_district(&state.db, &campaign, &filter).await?;
    // The entry first: without it, not a row leaves (a failure here is this request's error).
    let entry = raw::begin_audit(
        &state.db,
        crate::audit::Actor::Staff(&staff),
        &campaign,
        &filter,
        format,
    )
    .await?;
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(raw::CHUNKS_IN_FLIGHT);
    // The rows from a replica that holds the versions this instance knows, else the primary.
    let (config_version, data_version) = state.versions.get(campaign.id).await?;
    let reads = state
        .reads
        .at(campaign.id, config_version, data_version)
        .await;
    let db = state.db.clone();
    tokio::spawn(async move {
        if let Err(e) =
            raw::export_audited(db, reads, entry, campaign, filter, format, sender).await
        {
            tracing::warn!(error = %e, "raw export or its audit entry failed");
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        receiver.poll_recv(cx)
    }));
    let (content_type, extension) = (format.content_type(), format.extension());
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{slug}-submissions.{extension}\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
