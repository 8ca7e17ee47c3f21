//! Deterministic synthetic points inside polygons, for the demo, tests and load benchmarks.

use geo::{Area, BoundingRect, Contains, Coord, LineString, MultiPolygon, Point, Polygon};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::location::WgsPoint;

/// The (Multi)Polygons of a GeoJSON FeatureCollection, with each feature's `code` property.
pub fn polygons_of(collection: &Value, code_prop: &str) -> Vec<(String, MultiPolygon<f64>)> {
    let features = collection
        .get("features")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    features
        .iter()
        .filter_map(|f| {
            let code = f.get("properties")?.get(code_prop)?.as_str()?.to_owned();
            let geometry = f.get("geometry")?;
            let polygons = match geometry.get("type")?.as_str()? {
                "Polygon" => vec![polygon(geometry.get("coordinates")?)?],
                "MultiPolygon" => geometry
                    .get("coordinates")?
                    .as_array()?
                    .iter()
                    .map(polygon)
                    .collect::<Option<_>>()?,
                _ => return None,
            };
            Some((code, MultiPolygon(polygons)))
        })
        .collect()
}

fn polygon(rings: &Value) -> Option<Polygon<f64>> {
    let mut rings = rings.as_array()?.iter().map(|ring| {
        ring.as_array()?
            .iter()
            .map(|p| {
                Some(Coord {
                    x: p.get(0)?.as_f64()?,
                    y: p.get(1)?.as_f64()?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .map(LineString::from)
    });
    let exterior = rings.next()??;
    Some(Polygon::new(exterior, rings.collect::<Option<_>>()?))
}

/// `n` points drawn uniformly inside `areas` (each area weighted by its size), always the same
/// for the same `seed`.
pub fn points_in(areas: &[MultiPolygon<f64>], n: usize, seed: u64) -> Vec<WgsPoint> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights: Vec<f64> = areas.iter().map(|a| a.unsigned_area()).collect();
    let total: f64 = weights.iter().sum();
    let mut points = Vec::with_capacity(n);
    if areas.is_empty() || total <= 0.0 {
        return points;
    }
    while points.len() < n {
        let mut pick = rng.random_range(0.0..total);
        let area = areas
            .iter()
            .zip(&weights)
            .find(|(_, w)| {
                pick -= **w;
                pick < 0.0
            })
            .map_or(&areas[areas.len() - 1], |(a, _)| a);
        let Some(rect) = area.bounding_rect() else {
            continue;
        };
        let x = rng.random_range(rect.min().x..=rect.max().x);
        let y = rng.random_range(rect.min().y..=rect.max().y);
        if area.contains(&Point::new(x, y))
            && let Ok(point) = WgsPoint::new(x, y)
        {
            points.push(point);
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_inside_and_reproducible() {
        let collection: Value = serde_json::from_str(crate::demo::NANTERRE_DISTRICTS).unwrap();
        let areas: Vec<MultiPolygon<f64>> = polygons_of(&collection, "code")
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        assert_eq!(areas.len(), 11);
        let points = points_in(&areas, 500, 7);
        assert_eq!(points.len(), 500);
        assert_eq!(points, points_in(&areas, 500, 7));
        assert_ne!(points, points_in(&areas, 500, 8));
        for p in &points {
            assert!(
                areas
                    .iter()
                    .any(|a| a.contains(&Point::new(p.lon(), p.lat())))
            );
        }
    }
}
