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

/// A synthetic street of the demo: a straight line across an area, named as synthetic.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticStreet {
    /// "Rue Synthétique n°N", or "Avenue Synthétique n°N" for a main street: N numbers the
    /// streets of an area once, east-west ones from the north, then north-south ones from the
    /// west, so that the same area, spacing and seed always give the same names.
    pub name: String,
    /// One street in four is a main street (wider on the map).
    pub major: bool,
    /// From west to east, or from north to south, in longitude/latitude.
    pub line: LineString<f64>,
}

/// Where the streets of [`streets_in`] run: the longitudes of the north-south ones and the
/// latitudes of the east-west ones, each sorted, for whatever lies between them (blocks).
#[derive(Debug, Clone, PartialEq)]
pub struct StreetGrid {
    /// Every street.
    pub streets: Vec<SyntheticStreet>,
    /// Longitudes of the north-south streets, west to east.
    pub lons: Vec<f64>,
    /// Latitudes of the east-west streets, south to north.
    pub lats: Vec<f64>,
}

/// A grid of synthetic streets across `bounds` (`[west, south, east, north]`), about
/// `spacing_m` metres apart, each moved by up to a fifth of that from its regular place;
/// always the same for the same arguments.
pub fn streets_in(bounds: [f64; 4], spacing_m: f64, seed: u64) -> StreetGrid {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let [west, south, east, north] = bounds;
    let metres_per_degree = 111_320.0;
    let dlat = spacing_m / metres_per_degree;
    let dlon = dlat / ((south + north) / 2.0).to_radians().cos().max(0.1);
    let mut along = |from: f64, to: f64, step: f64| -> Vec<f64> {
        let n = ((to - from) / step).floor().max(0.0) as usize;
        (1..=n)
            .map(|i| from + step * i as f64 + rng.random_range(-0.2..0.2) * step)
            .collect()
    };
    let mut lats = along(south, north, dlat);
    let lons = along(west, east, dlon);
    lats.reverse();
    let mut streets = Vec::with_capacity(lats.len() + lons.len());
    let name = |n: usize| {
        let major = n.is_multiple_of(4);
        let kind = if major { "Avenue" } else { "Rue" };
        (format!("{kind} Synthétique n°{n}"), major)
    };
    for &lat in &lats {
        let (name, major) = name(streets.len() + 1);
        let line = LineString::from(vec![(west, lat), (east, lat)]);
        streets.push(SyntheticStreet { name, major, line });
    }
    for &lon in &lons {
        let (name, major) = name(streets.len() + 1);
        let line = LineString::from(vec![(lon, north), (lon, south)]);
        streets.push(SyntheticStreet { name, major, line });
    }
    lats.reverse();
    StreetGrid {
        streets,
        lons,
        lats,
    }
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

    #[test]
    fn streets_are_named_as_synthetic_and_reproducible() {
        let bounds = [2.1693, 48.87423, 2.23423, 48.9206];
        let grid = streets_in(bounds, 250.0, 3);
        assert_eq!(grid, streets_in(bounds, 250.0, 3));
        assert_ne!(grid, streets_in(bounds, 250.0, 4));
        // About 5.2 km north-south and 4.8 km east-west at 250 m.
        assert!((18..=21).contains(&grid.lats.len()), "{}", grid.lats.len());
        assert!((17..=20).contains(&grid.lons.len()), "{}", grid.lons.len());
        assert_eq!(grid.streets.len(), grid.lats.len() + grid.lons.len());
        assert_eq!(grid.streets[2].name, "Rue Synthétique n°3");
        assert_eq!(grid.streets[3].name, "Avenue Synthétique n°4");
        assert!(grid.lats.windows(2).all(|w| w[0] < w[1]));
        assert!(grid.lons.windows(2).all(|w| w[0] < w[1]));
    }
}
