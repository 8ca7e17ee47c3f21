//! Basemap routes: tiles `/basemap/{z}/{x}/{y}.mvt`, TileJSON `/basemap.json`, the style
//! `/basemap/style.json` and glyphs `/basemap/fonts/{fontstack}/{range}.pbf`. None reads the
//! database: what a citizen looks at on the map is between their browser and this server.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::routes;

use super::glyphs::{self, GlyphError};
use super::{ATTRIBUTION, Archive, BasemapError};
use crate::http::AppState;
use crate::http::caching::Caching::{Basemap, BasemapDocument};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::PathParams;
use crate::http::routes::{Access::Public, Routes};

impl From<BasemapError> for ApiError {
    fn from(error: BasemapError) -> Self {
        // Opening errors stop `serve` before it listens; a read error is a broken file.
        ApiError::Internal(error.into())
    }
}

impl From<GlyphError> for ApiError {
    fn from(error: GlyphError) -> Self {
        match error {
            GlyphError::BadRange(_) | GlyphError::BadStack(_) => {
                ApiError::BadRequest(error.to_string())
            }
            GlyphError::UnknownFonts { .. } => ApiError::NotFound(error.to_string()),
            GlyphError::Render { .. } => ApiError::Internal(error.into()),
        }
    }
}

const MVT: &str = "application/vnd.mapbox-vector-tile";

/// The basemap routes, public. The router cannot capture part of a segment, so tiles and
/// glyphs are routed without the `.mvt` and `.pbf` the document shows, which the handlers
/// take off themselves.
pub fn routes() -> Routes {
    Routes::new()
        .add(Public, BasemapDocument, routes!(tilejson))
        .add(Public, BasemapDocument, routes!(style))
        .add_routed_at(Public, Basemap, "/basemap/{z}/{x}/{y}", routes!(tile))
        .add_routed_at(
            Public,
            Basemap,
            "/basemap/fonts/{fontstack}/{range}",
            routes!(glyph_range),
        )
}

fn archive(state: &AppState) -> ApiResult<&Archive> {
    state.config.basemap.as_deref().ok_or_else(|| {
        ApiError::NotFound(
            "this server has no basemap; start it with `civicmap serve --basemap FILE.pmtiles`"
                .into(),
        )
    })
}

/// A tile of the basemap (MVT, Web Mercator, XYZ), as stored in the PMTiles file.
#[utoipa::path(get, path = "/basemap/{z}/{x}/{y}.mvt", tag = "basemap",
    params(
        ("z" = u32, Path, minimum = 0, maximum = 22, description = "Zoom, within the file's zooms"),
        ("x" = u32, Path, minimum = 0, maximum = 4_194_303, description = "Column, 0 to 2^z - 1"),
        ("y" = u32, Path, minimum = 0, maximum = 4_194_303, description = "Row from the north, 0 to 2^z - 1"),
    ),
    responses(
        (status = 200, description = "The tile, gzip-encoded when the client accepts it", content_type = "application/vnd.mapbox-vector-tile"),
        (status = 204, description = "No tile there (outside the file's area, or empty)"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "Invalid tile address", body = crate::http::error::Problem),
        (status = 404, description = "No basemap, or a zoom the file does not have", body = crate::http::error::Problem),
    ))]
pub async fn tile(
    State(state): State<AppState>,
    PathParams((z, x, y)): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let coord = crate::tiles::http::tile_address("/basemap", &z, &x, &y)?;
    let archive = archive(&state)?;
    if !archive.covers_zoom(coord.z()) {
        let (min, max) = archive.zooms();
        return Err(ApiError::NotFound(format!(
            "the basemap has zooms {min} to {max}, not {}",
            coord.z()
        )));
    }
    let etag = archive.etag(coord);
    // Kept a day (`Caching::Basemap`): tiles do not change while the server runs.
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    if crate::http::etag_matches(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    let Some(stored) = archive.tile(coord).await? else {
        return Ok((StatusCode::NO_CONTENT, response_headers).into_response());
    };
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MVT));
    let body = if !archive.is_gzip() {
        stored
    } else if crate::http::accepts_gzip(&headers) {
        // Passed through as stored: no work per request.
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        stored
    } else {
        super::gunzip(&stored)
            .map_err(|e| {
                ApiError::Internal(anyhow::anyhow!(
                    "basemap tile {} of {} is not valid gzip: {e}",
                    etag,
                    archive.path().display()
                ))
            })?
            .into()
    };
    Ok((StatusCode::OK, response_headers, body).into_response())
}

/// TileJSON 3.0.0 of the basemap.
#[utoipa::path(get, path = "/basemap.json", tag = "basemap",
    responses(
        (status = 200, description = "TileJSON 3.0.0", body = Object),
        (status = 404, description = "This server has no basemap", body = crate::http::error::Problem),
    ))]
pub async fn tilejson(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let archive = archive(&state)?;
    let base = crate::http::public_base_url(&headers);
    let (minzoom, maxzoom) = archive.zooms();
    let body = json!({
        "tilejson": "3.0.0",
        "name": "civicmap basemap",
        "tiles": [format!("{base}/basemap/{{z}}/{{x}}/{{y}}.mvt")],
        "scheme": "xyz",
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": archive.bounds(),
        "center": archive.center(),
        "attribution": ATTRIBUTION,
        "vector_layers": archive.vector_layers(),
    });
    Ok(document(body))
}

/// The basemap's MapLibre style (Protomaps schema), every URL in it this server's.
#[utoipa::path(get, path = "/basemap/style.json", tag = "basemap",
    responses(
        (status = 200, description = "MapLibre style, version 8", body = Object),
        (status = 404, description = "This server has no basemap", body = crate::http::error::Problem),
    ))]
pub async fn style(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let archive = archive(&state)?;
    let base = crate::http::public_base_url(&headers);
    Ok(document(super::style::style(&base, archive)))
}

/// The style or the TileJSON, which name this server's address: kept briefly
/// (`Caching::BasemapDocument`).
fn document(body: serde_json::Value) -> Response {
    Json(body).into_response()
}

/// 256 glyphs of a font stack as signed distance fields (MapLibre's `glyphs` URL), made from
/// the fonts of the server's `--fonts` folder.
#[utoipa::path(get, path = "/basemap/fonts/{fontstack}/{range}.pbf", tag = "basemap",
    params(
        ("fontstack" = String, Path, description = "Font names, comma-separated, e.g. `Noto Sans Regular`"),
        ("range" = String, Path, description = "`START-END`: START a multiple of 256, END = START + 255"),
    ),
    responses(
        (status = 200, description = "Glyphs (protobuf)", content_type = "application/x-protobuf"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "Invalid range or font stack", body = crate::http::error::Problem),
        (status = 404, description = "None of the fonts is on this server", body = crate::http::error::Problem),
    ))]
pub async fn glyph_range(
    State(state): State<AppState>,
    PathParams((fontstack, range)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let range = range.strip_suffix(".pbf").ok_or_else(|| {
        ApiError::NotFound(format!(
            "no route for /basemap/fonts/{fontstack}/{range}: glyph ranges end in .pbf"
        ))
    })?;
    let start = glyphs::parse_range(range)?;
    let glyphs = state.fonts.range(&fontstack, start).await?;
    let mut response_headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&glyphs.etag) {
        response_headers.insert(header::ETAG, value);
    }
    if crate::http::etag_matches(&headers, &glyphs.etag) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    Ok((StatusCode::OK, response_headers, glyphs.pbf.clone()).into_response())
}
