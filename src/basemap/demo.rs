//! The demo basemap: a small PMTiles archive built from the repository's data when the demo
//! is loaded, so that `make run` shows streets and names without downloading anything, and the
//! repository holds no generated file.
//!
//! The district outlines (OpenStreetMap, ODbL) give the area, the district names and the city's
//! label; the streets, blocks of buildings and squares are synthetic
//! ([`crate::synthetic::streets_in`]) and named as such ("Rue Synthétique n°3"). PostGIS clips
//! the features and encodes the tiles (`ST_AsMVT`, as [`crate::tiles`] does) in the Protomaps
//! layer names the style uses; the `pmtiles` crate writes the archive.

use std::path::Path;

use anyhow::Context;
use geo::{BoundingRect, MultiPolygon};
use pmtiles::{PmTilesWriter, TileType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::synthetic::{self, StreetGrid};

/// Zooms of the demo archive (MapLibre draws higher zooms from the last).
pub const MAX_ZOOM: u8 = 15;
/// Metres between synthetic streets.
const SPACING_M: f64 = 250.0;
/// Seed of the synthetic streets and buildings.
pub const SEED: u64 = 17;
/// The layers written, in drawing order (Protomaps v4 names).
const LAYERS: [&str; 5] = ["earth", "landuse", "roads", "buildings", "places"];

/// What was written.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Tiles in the archive.
    pub tiles: usize,
    /// Their total size, gzip-compressed.
    pub bytes: u64,
}

/// One feature before clipping: its layer, `kind`, `name`, first zoom, and geometry.
struct Feature {
    layer: &'static str,
    kind: &'static str,
    name: Option<String>,
    min_zoom: i32,
    geometry: Value,
}

/// Builds the demo archive from the districts `collection` (GeoJSON, with `code` and `name`
/// properties) and writes it to `path` (through a temporary file renamed over it, so that a
/// server reading the previous one is not disturbed).
pub async fn write(
    pool: &PgPool,
    collection: &Value,
    city: &str,
    path: &Path,
) -> anyhow::Result<Summary> {
    let areas: Vec<MultiPolygon<f64>> = synthetic::polygons_of(collection, "code")
        .into_iter()
        .map(|(_, area)| area)
        .collect();
    let all = MultiPolygon(areas.iter().flat_map(|a| a.0.clone()).collect());
    let rect = all
        .bounding_rect()
        .context("the districts have no geometry to build a demo basemap around")?;
    let bounds = [rect.min().x, rect.min().y, rect.max().x, rect.max().y];
    let grid = synthetic::streets_in(bounds, SPACING_M, SEED);
    let features = features(collection, city, bounds, &grid);
    let tiles = encode(pool, collection, &features, bounds).await?;

    // One temporary file per process: two servers started at once do not write into one.
    let tmp = path.with_extension(format!("pmtiles.{}.tmp", std::process::id()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let [w, s, e, n] = bounds;
    let metadata = json!({
        "name": "civicmap demo basemap",
        "description": "District outlines of the repository (OpenStreetMap) and synthetic streets and buildings: not a real map",
        "attribution": super::ATTRIBUTION,
        "vector_layers": LAYERS.iter().map(|id| json!({"id": id, "fields": {"kind": "String", "name": "String"}})).collect::<Vec<_>>(),
    });
    let mut writer = PmTilesWriter::new(TileType::Mvt)
        .min_zoom(0)
        .max_zoom(MAX_ZOOM)
        .bounds(w, s, e, n)
        .center((w + e) / 2.0, (s + n) / 2.0)
        .center_zoom(13)
        .metadata(metadata.to_string())
        .create(file)?;
    let mut summary = Summary { tiles: 0, bytes: 0 };
    for (coord, bytes) in &tiles {
        writer.add_tile(*coord, bytes)?;
        summary.tiles += 1;
        summary.bytes += bytes.len() as u64;
    }
    writer.finalize()?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(summary)
}

/// The features of the demo map, in longitude/latitude.
fn features(collection: &Value, city: &str, bounds: [f64; 4], grid: &StreetGrid) -> Vec<Feature> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let [w, s, e, n] = bounds;
    let (mw, mh) = ((e - w) * 0.1, (n - s) * 0.1);
    let rectangle = |x0: f64, y0: f64, x1: f64, y1: f64| json!({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]});
    let mut features = vec![Feature {
        layer: "earth",
        kind: "earth",
        name: None,
        min_zoom: 0,
        geometry: rectangle(w - mw, s - mh, e + mw, n + mh),
    }];
    for street in &grid.streets {
        let coordinates: Vec<[f64; 2]> = street.line.coords().map(|c| [c.x, c.y]).collect();
        features.push(Feature {
            layer: "roads",
            kind: if street.major {
                "major_road"
            } else {
                "minor_road"
            },
            name: Some(street.name.clone()),
            min_zoom: if street.major { 10 } else { 12 },
            geometry: json!({"type": "LineString", "coordinates": coordinates}),
        });
    }
    // Each block between four streets: buildings around a courtyard, or now and then a square.
    let mut squares = 0;
    for (x0, x1) in grid.lons.iter().zip(grid.lons.iter().skip(1)) {
        for (y0, y1) in grid.lats.iter().zip(grid.lats.iter().skip(1)) {
            let (bw, bh) = ((x1 - x0) / 3.0, (y1 - y0) / 3.0);
            let (gx, gy) = (bw * 0.12, bh * 0.12);
            if rng.random_range(0..12) == 0 {
                squares += 1;
                features.push(Feature {
                    layer: "landuse",
                    kind: "park",
                    name: Some(format!("Square Synthétique n°{squares}")),
                    min_zoom: 11,
                    geometry: rectangle(x0 + gx, y0 + gy, x1 - gx, y1 - gy),
                });
                continue;
            }
            for i in 0..3 {
                for j in 0..3 {
                    if (i, j) == (1, 1) || rng.random_range(0..5) == 0 {
                        continue;
                    }
                    let (bx, by) = (x0 + bw * f64::from(i), y0 + bh * f64::from(j));
                    features.push(Feature {
                        layer: "buildings",
                        kind: "building",
                        name: None,
                        min_zoom: 13,
                        geometry: rectangle(
                            bx + gx * 2.0,
                            by + gy * 2.0,
                            bx + bw - gx,
                            by + bh - gy,
                        ),
                    });
                }
            }
        }
    }
    // The district names, at a point inside each district, and the city's name.
    let districts = collection
        .get("features")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for district in districts {
        let (Some(name), Some(geometry)) = (
            district
                .get("properties")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str),
            district.get("geometry"),
        ) else {
            continue;
        };
        features.push(Feature {
            layer: "places",
            kind: "neighbourhood",
            name: Some(name.to_owned()),
            min_zoom: 12,
            geometry: geometry.clone(),
        });
    }
    features.push(Feature {
        layer: "places",
        kind: "locality",
        name: Some(city.to_owned()),
        min_zoom: 0,
        geometry: json!({"type": "Point", "coordinates": [(w + e) / 2.0, (s + n) / 2.0]}),
    });
    features
}

/// Clips the features to the districts and encodes every tile of the area up to [`MAX_ZOOM`],
/// in the order of their PMTiles ids.
async fn encode(
    pool: &PgPool,
    collection: &Value,
    features: &[Feature],
    [w, s, e, n]: [f64; 4],
) -> anyhow::Result<Vec<(pmtiles::TileCoord, Vec<u8>)>> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE demo_basemap (layer text, kind text, name text, min_zoom int, geom geometry)
         ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let column = |f: fn(&Feature) -> Option<String>| features.iter().map(f).collect::<Vec<_>>();
    let districts: Vec<String> = collection
        .get("features")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| Some(f.get("geometry")?.to_string()))
        .collect();
    // Streets are cut at the edge of the districts, buildings and squares outside them
    // dropped; districts become the point where their name is written.
    sqlx::query(
        "WITH area AS (
             SELECT ST_MakeValid(ST_Union(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(d), 4326), 3857))) AS a
             FROM unnest($6::text[]) AS d
         ), input AS (
             SELECT layer, kind, name, min_zoom,
                    ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(geojson), 4326), 3857) AS g
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[])
                  AS f(layer, kind, name, min_zoom, geojson)
         )
         INSERT INTO demo_basemap
         SELECT layer, kind, name, min_zoom,
                CASE WHEN layer = 'roads' THEN ST_Intersection(g, area.a)
                     WHEN layer = 'places' AND kind = 'neighbourhood' THEN ST_PointOnSurface(ST_MakeValid(g))
                     ELSE g END
         FROM input, area
         WHERE layer NOT IN ('buildings', 'landuse') OR ST_Within(g, area.a)",
    )
    .bind(column(|f| Some(f.layer.to_owned())))
    .bind(column(|f| Some(f.kind.to_owned())))
    .bind(column(|f| f.name.clone()))
    .bind(features.iter().map(|f| f.min_zoom).collect::<Vec<_>>())
    .bind(column(|f| Some(f.geometry.to_string())))
    .bind(districts)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM demo_basemap WHERE ST_IsEmpty(geom)")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE INDEX ON demo_basemap USING gist (geom)")
        .execute(&mut *tx)
        .await?;

    let layers: String = LAYERS
        .iter()
        .map(|layer| {
            format!(
                "COALESCE((SELECT ST_AsMVT(t, '{layer}', 4096, 'geom') FROM
                   (SELECT kind, name, geom FROM features WHERE layer = '{layer}') t), '')"
            )
        })
        .collect::<Vec<_>>()
        .join(" || ");
    let sql = format!(
        "WITH env AS (SELECT ST_TileEnvelope($1, $2, $3) AS e,
                             ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096) AS m),
              features AS (
                  SELECT f.layer, f.kind, f.name,
                         ST_AsMVTGeom(f.geom, env.e, 4096, 64, true) AS geom
                  FROM demo_basemap f, env
                  WHERE f.geom && env.m AND f.min_zoom <= $1)
         SELECT {layers}"
    );
    let mut tiles = Vec::new();
    for z in 0..=MAX_ZOOM {
        let (x0, y0) = tile_of(w, n, z);
        let (x1, y1) = tile_of(e, s, z);
        for x in x0..=x1 {
            for y in y0..=y1 {
                // Built above from the constant layer names only.
                let mvt: Vec<u8> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(i32::from(z))
                    .bind(x as i32)
                    .bind(y as i32)
                    .fetch_one(&mut *tx)
                    .await
                    .with_context(|| format!("cannot encode demo basemap tile {z}/{x}/{y}"))?;
                if !mvt.is_empty() {
                    tiles.push((pmtiles::TileCoord::new(z, x, y)?, mvt));
                }
            }
        }
    }
    tx.rollback().await?;
    tiles.sort_by_key(|(coord, _)| pmtiles::TileId::from(*coord).value());
    Ok(tiles)
}

/// The tile holding longitude `lon`, latitude `lat` at zoom `z` (XYZ).
fn tile_of(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let lat = lat.to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    let clamp = |v: f64| v.clamp(0.0, n - 1.0) as u32;
    (clamp(x), clamp(y))
}

#[cfg(test)]
mod tests {
    use super::tile_of;

    #[test]
    fn nanterre_is_in_its_tiles() {
        assert_eq!(tile_of(2.2, 48.9, 0), (0, 0));
        // By the other formula of the row: (1 - asinh(tan(lat)) / pi) / 2 * 2^z.
        assert_eq!(tile_of(2.2066, 48.8924, 12), (2073, 1408));
    }
}
