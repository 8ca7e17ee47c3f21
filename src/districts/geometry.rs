//! Checks on polygon GeoJSON before PostGIS sees it, and the SQL that repairs what it can.

use geojson::{Geometry, GeometryValue, PolygonType};
use serde_json::Value;

/// SQL turning the GeoJSON text in `$text` (a parameter or a column) into a valid
/// MultiPolygon in SRID 4326: invalid rings are repaired by `ST_MakeValid`, and whatever is not
/// polygonal after repair is dropped. A macro so that queries stay static strings.
#[macro_export]
macro_rules! repaired_polygonal {
    ($text:literal) => {
        concat!(
            "ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(",
            $text,
            "), 4326)), 3))"
        )
    };
}

/// Checks that `value` is a GeoJSON Polygon or MultiPolygon whose positions are finite
/// longitudes/latitudes and whose rings are closed with at least four positions. Returns the
/// geometry as GeoJSON text for PostGIS, or the reason it is refused.
pub fn polygonal_geojson(value: &Value) -> Result<String, String> {
    let geometry: Geometry = serde_json::from_value(value.clone())
        .map_err(|e| format!("is not a GeoJSON geometry: {e}"))?;
    match &geometry.value {
        GeometryValue::Polygon { coordinates } => check_polygon(coordinates, "")?,
        GeometryValue::MultiPolygon { coordinates } => {
            if coordinates.is_empty() {
                return Err("is an empty MultiPolygon".to_owned());
            }
            for (i, polygon) in coordinates.iter().enumerate() {
                check_polygon(polygon, &format!("polygon {i}, "))?;
            }
        }
        other => {
            return Err(format!(
                "must be a Polygon or a MultiPolygon, not a {}",
                other.type_name()
            ));
        }
    }
    serde_json::to_string(&geometry).map_err(|e| e.to_string())
}

fn check_polygon(rings: &PolygonType, at: &str) -> Result<(), String> {
    if rings.is_empty() {
        return Err(format!("{at}has no ring"));
    }
    for (r, ring) in rings.iter().enumerate() {
        if ring.len() < 4 {
            return Err(format!(
                "{at}ring {r} has {} positions; a ring needs at least 4",
                ring.len()
            ));
        }
        for position in ring {
            // The geojson crate reads `[]` and `[x]` as positions too.
            let &[lon, lat, ..] = position.as_slice() else {
                return Err(format!(
                    "{at}ring {r} has a position with {} number(s); a position is [longitude, latitude]",
                    position.len()
                ));
            };
            if crate::location::WgsPoint::new(lon, lat).is_err() {
                return Err(format!(
                    "{at}ring {r} has a position [{lon}, {lat}] outside longitude/latitude range (coordinates must be WGS 84, EPSG:4326)"
                ));
            }
        }
        if ring.first() != ring.last() {
            return Err(format!(
                "{at}ring {r} is not closed (its first and last positions differ)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_polygons_and_multipolygons() {
        let square = json!([[[2.0, 48.0], [2.1, 48.0], [2.1, 48.1], [2.0, 48.0]]]);
        assert!(polygonal_geojson(&json!({"type": "Polygon", "coordinates": square})).is_ok());
        assert!(
            polygonal_geojson(&json!({"type": "MultiPolygon", "coordinates": [square]})).is_ok()
        );
    }

    #[test]
    fn refuses_with_a_reason() {
        let cases = [
            (
                json!({"type": "Point", "coordinates": [2.0, 48.0]}),
                "must be a Polygon or a MultiPolygon, not a Point",
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[2.0, 48.0], [2.1, 48.0], [2.0, 48.0]]]}),
                "ring 0 has 3 positions; a ring needs at least 4",
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[2.0, 48.0], [2.1, 48.0], [2.1, 48.1], [2.0, 48.2]]]}),
                "ring 0 is not closed (its first and last positions differ)",
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[200.0, 48.0], [2.1, 48.0], [2.1, 48.1], [200.0, 48.0]]]}),
                "ring 0 has a position [200, 48] outside longitude/latitude range (coordinates must be WGS 84, EPSG:4326)",
            ),
            (
                // Found by the property test in districts: this used to panic.
                json!({"type": "Polygon", "coordinates": [[[2.0, 48.0], [], [2.1], [2.0, 48.0]]]}),
                "ring 0 has a position with 0 number(s); a position is [longitude, latitude]",
            ),
        ];
        for (value, reason) in cases {
            assert_eq!(polygonal_geojson(&value), Err(reason.to_owned()));
        }
        assert!(
            polygonal_geojson(&json!({"type": "Polygon"}))
                .unwrap_err()
                .starts_with("is not a GeoJSON geometry")
        );
    }
}
