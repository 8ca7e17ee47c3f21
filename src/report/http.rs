//! The report's routes: `GET /api/v1/admin/campaigns/{slug}/report.pdf` and `report.zip`, for
//! planners.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::routes;

use super::Report;
use crate::auth::{Authorized, Planner};
use crate::campaigns::Lang;
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{PathParams, QueryParams};
use crate::http::routes::{PLANNER, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .add(PLANNER, Private, routes!(report_pdf))
        .add(PLANNER, Private, routes!(report_zip))
}

/// The report's language.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `fr` or `en`; the campaign's default language when absent.
    lang: Option<Lang>,
}

/// The report of campaign `slug`, from the figures the public sees now.
async fn report(state: &AppState, slug: &str, query: &ReportQuery) -> ApiResult<Report> {
    let campaign = crate::campaigns::get(&state.db, slug).await?;
    let (_, data_version) = state.versions.get(campaign.id).await?;
    let released = state.released(&campaign, data_version).await?;
    let reads = state
        .reads
        .at(campaign.id, campaign.config_version, data_version)
        .await;
    let (aggregate, series) = super::figures(&reads, &campaign, released.as_ref().as_ref()).await?;
    Report::new(
        &campaign,
        query.lang.unwrap_or(campaign.default_lang),
        data_version,
        &aggregate,
        &series,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| ApiError::Internal(e.into()))
}

fn attachment(body: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The operator's report as a PDF: the districts' map, the table per district, the curve per
/// week, the method and the privacy note, dated and stamped with the data version. Only
/// k-protected figures, the same as the public exports.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/report.pdf", tag = "planner", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), ReportQuery),
    responses(
        (status = 200, description = "A PDF of three A4 pages", content_type = "application/pdf", body = Vec<u8>),
        (status = 400, description = "A parameter is invalid (`lang` must be `fr` or `en`)", body = Problem),
        (status = 401, description = "No or invalid token", body = Problem),
        (status = 403, description = "Not a planner token", body = Problem),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn report_pdf(
    _staff: Authorized<Planner>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<ReportQuery>,
) -> ApiResult<Response> {
    let report = report(&state, &slug, &query).await?;
    Ok(attachment(
        report.pdf(),
        "application/pdf",
        &format!("{slug}-report.pdf"),
    ))
}

/// The report's PDF with the same figures as CSV and GeoJSON (the public exports, byte for
/// byte) and a README, in a ZIP.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/report.zip", tag = "planner", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), ReportQuery),
    responses(
        (status = 200, description = "README.txt, {slug}-report.pdf, {slug}-districts.csv, {slug}-districts.geojson, {slug}-weeks.csv", content_type = "application/zip", body = Vec<u8>),
        (status = 400, description = "A parameter is invalid (`lang` must be `fr` or `en`)", body = Problem),
        (status = 401, description = "No or invalid token", body = Problem),
        (status = 403, description = "Not a planner token", body = Problem),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn report_zip(
    _staff: Authorized<Planner>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<ReportQuery>,
) -> ApiResult<Response> {
    let report = report(&state, &slug, &query).await?;
    let zip = report
        .zip(&slug)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(attachment(
        zip,
        "application/zip",
        &format!("{slug}-report.zip"),
    ))
}
