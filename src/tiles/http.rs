//! Tile routes: `/tiles/{campaign}/{z}/{x}/{y}.mvt` and the TileJSON `/tiles/{campaign}.json`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::routes;

use super::{MAX_ZOOM, TileCoord, TileError};
use crate::http::AppState;
use crate::http::cache::{Basis, Key};
use crate::http::caching::Caching::{Settings, Tiles};
use crate::http::client_ip::ClientAddr;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::PathParams;
use crate::http::routes::{Access::Public, Routes};

impl From<TileError> for ApiError {
    fn from(error: TileError) -> Self {
        match error {
            TileError::Unavailable(cause) => ApiError::Unavailable(cause),
            TileError::Failed(cause) => ApiError::Internal(cause),
        }
    }
}

const MVT: &str = "application/vnd.mapbox-vector-tile";

/// The tile routes, public. The router cannot capture part of a segment, so they are routed
/// without the `.json` and `.mvt` the document shows, which the handlers take off themselves.
pub fn routes() -> Routes {
    Routes::new()
        .add_routed_at(Public, Settings, "/tiles/{tilejson}", routes!(tilejson))
        .add_routed_at(
            Public,
            Tiles,
            "/tiles/{campaign}/{z}/{x}/{y}",
            routes!(tile),
        )
}

fn parse_part(name: &str, value: &str) -> ApiResult<u32> {
    value
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{name} must be a whole number, got `{value}`")))
}

/// The tile of `{prefix}/{z}/{x}/{y}.mvt` (or `.pbf`), e.g. `/tiles/{slug}/…` or
/// `/basemap/…`: 404 without the extension, 400 naming the part that is not a whole number or
/// the coordinate out of range.
pub(crate) fn tile_address(
    prefix: impl std::fmt::Display,
    z: &str,
    x: &str,
    y: &str,
) -> ApiResult<TileCoord> {
    let y = y
        .strip_suffix(".mvt")
        .or_else(|| y.strip_suffix(".pbf"))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no route for {prefix}/{z}/{x}/{y}: tiles end in .mvt"
            ))
        })?;
    TileCoord::new(
        parse_part("z", z)?,
        parse_part("x", x)?,
        parse_part("y", y)?,
    )
    .map_err(ApiError::BadRequest)
}

/// A vector tile of a public campaign (MVT 2.1, extent 4096, Web Mercator, XYZ).
#[utoipa::path(get, path = "/tiles/{campaign}/{z}/{x}/{y}.mvt", tag = "tiles",
    params(
        ("campaign" = String, Path, description = "Campaign name"),
        ("z" = u32, Path, minimum = 0, maximum = 22, description = "Zoom, 0 to 22"),
        ("x" = u32, Path, minimum = 0, maximum = 4_194_303, description = "Column, 0 to 2^z - 1"),
        ("y" = u32, Path, minimum = 0, maximum = 4_194_303, description = "Row from the north, 0 to 2^z - 1"),
    ),
    responses(
        (status = 200, description = "Layers `districts` and `demand`", content_type = "application/vnd.mapbox-vector-tile"),
        (status = 204, description = "Nothing in this tile"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "Invalid tile address", body = crate::http::error::Problem),
        (status = 404, description = "No such public campaign", body = crate::http::error::Problem),
    ))]
pub async fn tile(
    State(state): State<AppState>,
    PathParams((slug, z, x, y)): PathParams<(String, String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let coord = tile_address(format_args!("/tiles/{slug}"), &z, &x, &y)?;
    // Versions kept in memory, fresh after a write here and within milliseconds of one
    // elsewhere (`figures::watch`).
    let (campaign, data_version) = state.public_campaign(&slug).await?;
    let released = state.released(&campaign, data_version).await?;
    let tile = state
        .tiles
        .get(&state.reads, &campaign, data_version, &released, coord)
        .await?;

    // How long it may be kept: `Caching::Tiles`. Revalidated with the ETag, a cheap 304 while
    // nothing changed. The gzipped bytes are another representation, with their own tag; a
    // client holding either gets a 304.
    let gzipped = crate::http::accepts_gzip(&headers) && !tile.raw.is_empty();
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let etag = if gzipped { &tile.etag_gzip } else { &tile.etag };
    if let Ok(etag) = HeaderValue::from_str(etag) {
        response_headers.insert(header::ETAG, etag);
    }
    if crate::http::etag_matches(&headers, &tile.etag)
        || crate::http::etag_matches(&headers, &tile.etag_gzip)
    {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    if tile.raw.is_empty() {
        return Ok((StatusCode::NO_CONTENT, response_headers).into_response());
    }
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MVT));
    let body = if gzipped {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        tile.gzip.clone()
    } else {
        tile.raw.clone()
    };
    Ok((StatusCode::OK, response_headers, body).into_response())
}

/// TileJSON 3.0.0 describing a campaign's tiles.
#[utoipa::path(get, path = "/tiles/{campaign}.json", tag = "tiles",
    params(("campaign" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "TileJSON 3.0.0", body = Object),
        (status = 404, description = "No such public campaign", body = crate::http::error::Problem),
        (status = 429, description = "Too many bodies built on demand for this client or its network; see Retry-After", body = crate::http::error::Problem),
        (status = 503, description = "This instance is building as many public bodies as it takes at once; see Retry-After", body = crate::http::error::Problem),
    ))]
pub async fn tilejson(
    State(state): State<AppState>,
    PathParams(file): PathParams<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let slug = file.strip_suffix(".json").ok_or_else(|| {
        ApiError::NotFound(format!(
            "no route for /tiles/{file}: TileJSON is at /tiles/{{campaign}}.json"
        ))
    })?;
    let (campaign, _) = state.public_campaign(slug).await?;
    // Absolute URLs, as TileJSON requires.
    let base = crate::http::public_base_url(&headers);
    let key = Key {
        campaign: campaign.id,
        config_version: campaign.config_version,
        basis: Basis::Settings,
        request: format!("tilejson/{base}"),
    };
    // One body per host the client names: each new one is a build, charged to the client.
    let body = state
        .responses
        .get_or_build_for(&state.limits, client, Some(key), async {
            Ok(serde_json::to_vec(&tilejson_of(&campaign, &base)).map_err(anyhow::Error::from)?)
        })
        .await?;
    Ok(body.respond(&headers, "application/json", None))
}

/// The TileJSON of `campaign`'s tiles, served from `base`.
fn tilejson_of(campaign: &crate::campaigns::Campaign, base: &str) -> Value {
    let [w, s, e, n] = campaign
        .bounds
        .unwrap_or([-180.0, -85.051_129, 180.0, 85.051_129]);
    json!({
        "tilejson": "3.0.0",
        "name": campaign.title.fr,
        "description": campaign.title.en,
        "tiles": [format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", campaign.slug)],
        "scheme": "xyz",
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": [w, s, e, n],
        "center": [(w + e) / 2.0, (s + n) / 2.0, 12],
        "attribution": crate::campaigns::ATTRIBUTION,
        "vector_layers": [
            {
                "id": "districts",
                "description": "Districts with their published counts; a count below the campaign's minimum is left out and `withheld` is true",
                "minzoom": 0, "maxzoom": MAX_ZOOM,
                "fields": {
                    "code": "String: district code",
                    "name": "String: district name",
                    "count": "Number: published submissions (absent when withheld)",
                    "withheld": "Boolean: true when the count is withheld",
                    "share": "Number: share of the campaign's published total, 0 to 1 (absent when withheld)"
                }
            },
            {
                "id": "demand",
                "description": "Published submissions aggregated on the campaign's public grid (its precision at street zoom, coarser below): one point per cell, at the cell's centre",
                "minzoom": 0, "maxzoom": MAX_ZOOM,
                "fields": {"count": "Number: published submissions in the cell"}
            }
        ],
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{parse_part, tile_address};
    use crate::testing::clear_error;
    use crate::tiles::MAX_ZOOM;

    /// A path segment: digits (sometimes too many), signs, spaces, or anything.
    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{1,12}",
            "[+-]?[0-9]{1,3}",
            any::<u64>().prop_map(|n| n.to_string()),
            ".{0,8}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// A part is a whole number or a 400 naming the part and what it got.
        #[test]
        fn a_part_is_a_number_or_refused_by_name(value in segment()) {
            match parse_part("z", &value) {
                Ok(n) => prop_assert_eq!(Ok(n), value.parse::<u32>()),
                Err(error) => {
                    clear_error(error.shared())?;
                    let detail = error.to_problem().detail;
                    prop_assert!(detail.starts_with("z must be a whole number"), "{detail}");
                    prop_assert!(detail.contains(&value), "{detail}");
                }
            }
        }

        /// Any tile path is a tile in range or a clear 400 (404 without `.mvt`).
        #[test]
        fn any_tile_path_is_a_tile_or_refused_clearly(
            z in segment(), x in segment(), y in segment(),
            extension in prop_oneof![Just(".mvt"), Just(".pbf"), Just(""), Just(".png")],
        ) {
            match tile_address("demo", &z, &x, &format!("{y}{extension}")) {
                Ok(tile) => {
                    prop_assert!(tile.z() <= MAX_ZOOM);
                    prop_assert!(u64::from(tile.x()) < 1 << tile.z());
                    prop_assert!(u64::from(tile.y()) < 1 << tile.z());
                }
                Err(error) => {
                    clear_error(error.shared())?;
                    let status = error.to_problem().status;
                    prop_assert!(status == 400 || (status == 404 && !matches!(extension, ".mvt" | ".pbf")));
                }
            }
        }

        /// Every tile of every zoom is addressed by its path.
        #[test]
        fn every_tile_in_range_is_found(z in 0..=MAX_ZOOM, fx in 0.0f64..1.0, fy in 0.0f64..1.0) {
            let n = 1u64 << z;
            let (x, y) = ((fx * n as f64) as u64, (fy * n as f64) as u64);
            let tile = tile_address("demo", &z.to_string(), &x.to_string(), &format!("{y}.mvt"))
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!((tile.z(), u64::from(tile.x()), u64::from(tile.y())), (z, x, y));
            // One past the last row or column is refused.
            let past = tile_address("demo", &z.to_string(), &n.to_string(), &format!("{y}.mvt"));
            prop_assert!(past.is_err());
        }
    }
}
