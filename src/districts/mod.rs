//! Districts: the polygons a campaign counts by, imported from GeoJSON.

pub mod geometry;
pub mod households;
pub mod http;

use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::campaigns::CampaignError;
use crate::validation::{FieldError, Invalid};

/// What can go wrong with a campaign's districts.
#[derive(Debug, thiserror::Error)]
pub enum DistrictError {
    /// No such campaign.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// Some features are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The district a point is counted in, as an SQL scalar subquery: the first of campaign
/// `$campaign`'s districts, in import order, that contains or touches `$geom` (a point on a
/// shared border goes to the earlier district), or NULL when none does. Both arguments are
/// SQL expressions. Every statement that places a submission uses this rule.
macro_rules! district_of {
    ($campaign:literal, $geom:literal) => {
        concat!(
            "(SELECT d.id FROM districts d WHERE d.campaign_id = ",
            $campaign,
            " AND ST_Intersects(d.geom, ",
            $geom,
            ") ORDER BY d.position LIMIT 1)"
        )
    };
}
pub(crate) use district_of;

/// Which feature properties hold a district's name and code.
#[derive(Debug, Clone)]
pub struct PropertyNames {
    /// Property holding the human-readable name.
    pub name: String,
    /// Property holding the stable code (unique within the file).
    pub code: String,
}

impl Default for PropertyNames {
    fn default() -> Self {
        Self {
            name: "name".to_owned(),
            code: "code".to_owned(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    /// Districts now in the campaign.
    pub imported: usize,
    /// Features whose geometry was invalid and has been repaired, with PostGIS's reason.
    pub repaired: Vec<RepairedFeature>,
    /// Existing submissions whose district was assigned again.
    pub reassigned: u64,
}

/// A feature that was repaired on import.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RepairedFeature {
    /// Index of the feature in the file's `features` array.
    pub index: usize,
    /// Why PostGIS found it invalid.
    pub reason: String,
}

struct ParsedDistrict {
    code: String,
    name: String,
    geojson: String,
}

fn property_text(properties: Option<&Value>, key: &str) -> Option<String> {
    match properties?.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads the districts out of a GeoJSON FeatureCollection, reporting every bad feature by its
/// index.
fn parse_collection(
    collection: &Value,
    names: &PropertyNames,
) -> Result<Vec<ParsedDistrict>, Vec<FieldError>> {
    if collection.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(vec![FieldError::new(
            "type",
            "must be \"FeatureCollection\"",
        )]);
    }
    let Some(features) = collection.get("features").and_then(Value::as_array) else {
        return Err(vec![FieldError::new(
            "features",
            "must be an array of Features",
        )]);
    };
    if features.is_empty() {
        return Err(vec![FieldError::new(
            "features",
            "must contain at least one district",
        )]);
    }
    let mut errors = Vec::new();
    let mut districts: Vec<ParsedDistrict> = Vec::new();
    for (i, feature) in features.iter().enumerate() {
        let at = |what: &str| format!("features[{i}]{what}");
        if feature.get("type").and_then(Value::as_str) != Some("Feature") {
            errors.push(FieldError::new(at(".type"), "must be \"Feature\""));
            continue;
        }
        let properties = feature.get("properties");
        let name = property_text(properties, &names.name);
        let code = property_text(properties, &names.code);
        if name.is_none() {
            errors.push(FieldError::new(
                at(&format!(".properties.{}", names.name)),
                "is missing or empty (district name)",
            ));
        }
        if code.is_none() {
            errors.push(FieldError::new(
                at(&format!(".properties.{}", names.code)),
                "is missing or empty (district code)",
            ));
        }
        let geojson = match feature.get("geometry") {
            None | Some(Value::Null) => {
                errors.push(FieldError::new(at(".geometry"), "is missing"));
                None
            }
            Some(g) => geometry::polygonal_geojson(g)
                .map_err(|reason| errors.push(FieldError::new(at(".geometry"), reason)))
                .ok(),
        };
        if let (Some(code), Some(name), Some(geojson)) = (code, name, geojson) {
            if districts.iter().any(|d| d.code == code) {
                errors.push(FieldError::new(
                    at(&format!(".properties.{}", names.code)),
                    format!("duplicate district code `{code}`"),
                ));
            } else {
                districts.push(ParsedDistrict {
                    code,
                    name,
                    geojson,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(districts)
    } else {
        Err(errors)
    }
}

/// Replaces the districts of campaign `slug` with those of `collection`, assigns every
/// existing submission to its new district and rebuilds the counts, all in one transaction.
/// Invalid rings are repaired with `ST_MakeValid`; a feature that cannot be repaired into a
/// polygon is refused with its index and PostGIS's reason.
pub async fn import(
    pool: &PgPool,
    slug: &str,
    collection: &Value,
    names: &PropertyNames,
) -> Result<ImportReport, DistrictError> {
    let districts = parse_collection(collection, names).map_err(Invalid)?;
    let geojsons: Vec<&str> = districts.iter().map(|d| d.geojson.as_str()).collect();
    let codes: Vec<&str> = districts.iter().map(|d| d.code.as_str()).collect();
    let names: Vec<&str> = districts.iter().map(|d| d.name.as_str()).collect();

    let mut tx = pool.begin().await?;
    let campaign_id: i64 =
        sqlx::query_scalar!("SELECT id FROM campaigns WHERE slug = $1 FOR UPDATE", slug)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| crate::campaigns::not_found(slug))?;

    // What PostGIS thinks of each geometry, and whether repair leaves a polygon.
    #[derive(sqlx::FromRow)]
    struct Check {
        i: i64,
        valid: bool,
        reason: String,
        empty: bool,
    }
    // Runtime SQL: composes the shared fragment `repaired_polygonal!`, and sqlx's macros take
    // only literals.
    let checks: Vec<Check> = sqlx::query_as(concat!(
        "SELECT i, ST_IsValid(g) AS valid, ST_IsValidReason(g) AS reason, ST_IsEmpty(r) AS empty
         FROM (SELECT i, ST_SetSRID(ST_GeomFromGeoJSON(t), 4326) AS g, ",
        crate::repaired_polygonal!("t"),
        " AS r FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i)) AS parsed ORDER BY i"
    ))
    .bind(&geojsons)
    .fetch_all(&mut *tx)
    .await?;
    let mut errors = Vec::new();
    let mut repaired = Vec::new();
    for Check {
        i,
        valid,
        reason,
        empty,
    } in checks
    {
        let index = (i - 1) as usize;
        if empty {
            errors.push(FieldError::new(
                format!("features[{index}].geometry"),
                format!("is invalid and cannot be repaired into a polygon: {reason}"),
            ));
        } else if !valid {
            repaired.push(RepairedFeature { index, reason });
        }
    }
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }

    // Wait for in-flight submissions and hold new ones until this import commits, so that no
    // submission is assigned to a district that no longer exists and the counts rebuilt here
    // miss none (the statements that wait see the new districts once they run).
    crate::figures::lock_writes(&mut tx).await?;
    sqlx::query!("DELETE FROM districts WHERE campaign_id = $1", campaign_id,)
        .execute(&mut *tx)
        .await?;
    // Runtime SQL: composes the shared fragment `repaired_polygonal!`, and sqlx's macros take
    // only literals.
    sqlx::query(concat!(
        "INSERT INTO districts (campaign_id, position, code, name, geom) SELECT $2, i, code, name, ",
        crate::repaired_polygonal!("t"),
        " FROM unnest($1::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(t, code, name, i)"
    ))
    .bind(&geojsons)
    .bind(campaign_id)
    .bind(&codes)
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    // Runtime SQL: composes the shared fragment `district_of!`, and sqlx's macros take only
    // literals.
    let reassigned = sqlx::query(concat!(
        "UPDATE submissions s SET district_id = ",
        district_of!("s.campaign_id", "s.geom"),
        " WHERE s.campaign_id = $1"
    ))
    .bind(campaign_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    crate::figures::rebuild(&mut tx, campaign_id).await?;
    crate::campaigns::refresh_effective_area(&mut tx, campaign_id).await?;
    tx.commit().await?;
    tracing::info!(
        campaign = slug,
        districts = districts.len(),
        reassigned,
        "districts imported"
    );
    Ok(ImportReport {
        imported: districts.len(),
        repaired,
        reassigned,
    })
}

/// A district with its outline as GeoJSON.
#[derive(Debug, Clone)]
pub struct DistrictShape {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub geometry: sqlx::types::Json<Value>,
}

/// The districts of a campaign in import order, outlines with 6 decimals (about 10 cm).
pub async fn shapes(
    db: impl sqlx::PgExecutor<'_>,
    campaign_id: i64,
) -> sqlx::Result<Vec<DistrictShape>> {
    sqlx::query_as!(
        DistrictShape,
        r#"SELECT id, code, name, ST_AsGeoJSON(geom, 6)::json AS "geometry!: _"
         FROM districts WHERE campaign_id = $1 ORDER BY position"#,
        campaign_id,
    )
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{clear_fields, json};
    use proptest::prelude::*;
    use serde_json::json;

    fn square(x: f64) -> Value {
        json!({"type": "Polygon", "coordinates": [[[x, 48.0], [x + 0.1, 48.0], [x + 0.1, 48.1], [x, 48.0]]]})
    }

    #[test]
    fn every_bad_feature_is_reported_with_its_index() {
        let collection = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"nom": "A", "id": "a"}, "geometry": square(2.0)},
            {"type": "Feature", "properties": {"nom": "B"}, "geometry": square(2.1)},
            {"type": "Feature", "properties": {"nom": "C", "id": "c"}, "geometry": {"type": "LineString", "coordinates": [[2.0, 48.0], [2.1, 48.1]]}},
            {"type": "Feature", "properties": {"nom": "D", "id": "a"}, "geometry": square(2.2)}
        ]});
        let names = PropertyNames {
            name: "nom".into(),
            code: "id".into(),
        };
        let errors = parse_collection(&collection, &names).err().unwrap();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "features[1].properties.id",
                "features[2].geometry",
                "features[3].properties.id"
            ]
        );
        assert_eq!(
            errors[1].detail,
            "must be a Polygon or a MultiPolygon, not a LineString"
        );
        assert_eq!(errors[2].detail, "duplicate district code `a`");
    }

    fn ring(x: f64, y: f64, size: f64) -> Value {
        json!([
            [x, y],
            [x + size, y],
            [x + size, y + size],
            [x, y + size],
            [x, y]
        ])
    }

    /// A geometry that is nearly a polygon: rings of any length, positions of any length,
    /// numbers of any size.
    fn polygon_like() -> impl Strategy<Value = Value> {
        let position = prop_oneof![
            proptest::collection::vec(any::<f64>(), 0..4),
            proptest::collection::vec(-200.0f64..200.0, 0..4),
        ]
        .prop_map(|p| json!(p));
        let ring = proptest::collection::vec(position, 0..6);
        let rings = proptest::collection::vec(ring, 0..3);
        prop_oneof![
            (word_type(), rings.clone()).prop_map(|(t, r)| json!({"type": t, "coordinates": r})),
            proptest::collection::vec(rings, 0..3)
                .prop_map(|m| json!({"type": "MultiPolygon", "coordinates": m})),
            json(),
        ]
    }

    fn word_type() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(&["Polygon", "MultiPolygon", "Point", "LineString"][..])
    }

    fn feature_like() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just(json!("Feature")), json()],
            prop_oneof![json(), ".{0,6}".prop_map(|n| json!({"name": n, "code": n}))],
            polygon_like(),
        )
            .prop_map(|(t, p, g)| json!({"type": t, "properties": p, "geometry": g}))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the body, the districts are read or refused without panicking; a refusal
        /// names each bad part (by feature index) and says why.
        #[test]
        fn any_collection_is_read_or_refused_clearly(
            collection in prop_oneof![
                json(),
                proptest::collection::vec(feature_like(), 0..5)
                    .prop_map(|f| json!({"type": "FeatureCollection", "features": f})),
            ]
        ) {
            match parse_collection(&collection, &PropertyNames::default()) {
                Ok(districts) => {
                    prop_assert!(!districts.is_empty());
                    for d in &districts {
                        let geometry: Value = serde_json::from_str(&d.geojson).unwrap();
                        prop_assert!(geometry["type"] == "Polygon" || geometry["type"] == "MultiPolygon");
                    }
                }
                Err(errors) => clear_fields(&errors)?,
            }
        }

        /// Any geometry is checked without panicking, and a refusal says why.
        #[test]
        fn any_geometry_is_checked_clearly(geometry in polygon_like()) {
            if let Err(reason) = geometry::polygonal_geojson(&geometry) {
                prop_assert!(!reason.trim().is_empty());
            }
        }

        /// A collection of well-made districts with distinct codes is read whole: every
        /// district, in order, with its name and code.
        #[test]
        fn valid_districts_are_read_in_order(
            squares in proptest::collection::vec((-179.0f64..179.0, -89.0f64..89.0, 0.0001f64..1.0, any::<bool>()), 1..8),
            code_as_number in any::<bool>(),
        ) {
            let features: Vec<Value> = squares.iter().enumerate().map(|(i, &(x, y, size, multi))| {
                let geometry = if multi {
                    json!({"type": "MultiPolygon", "coordinates": [[ring(x, y, size)]]})
                } else {
                    json!({"type": "Polygon", "coordinates": [ring(x, y, size)]})
                };
                let code = if code_as_number { json!(i) } else { json!(format!("d{i}")) };
                json!({"type": "Feature", "properties": {"nom": format!(" District {i} "), "id": code}, "geometry": geometry})
            }).collect();
            let names = PropertyNames { name: "nom".into(), code: "id".into() };
            let districts = parse_collection(&json!({"type": "FeatureCollection", "features": features}), &names)
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(districts.len(), squares.len());
            for (i, d) in districts.iter().enumerate() {
                prop_assert_eq!(&d.name, &format!("District {i}"));
                prop_assert_eq!(&d.code, &if code_as_number { i.to_string() } else { format!("d{i}") });
            }
        }
    }

    #[test]
    fn the_demo_districts_parse() {
        let collection: Value = serde_json::from_str(crate::demo::NANTERRE_DISTRICTS).unwrap();
        assert_eq!(
            parse_collection(&collection, &PropertyNames::default())
                .ok()
                .unwrap()
                .len(),
            11
        );
    }
}
