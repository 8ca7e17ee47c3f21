//! District import: valid, repairable, invalid, MultiPolygon, and re-import.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, exact, problem, problem_fields, square, test_districts};

async fn draft(app: &TestApp, slug: &str) {
    let body = json!({"slug": slug, "title": {"fr": "a", "en": "a"}, "form": crate::helpers::test_form(), "privacy": {"public_precision_m": 50, "min_count": 1}});
    assert_eq!(
        app.admin_post("/api/v1/admin/campaigns", &body)
            .await
            .status(),
        StatusCode::CREATED
    );
}

fn feature(code: &str, geometry: Value) -> Value {
    json!({"type": "Feature", "properties": {"name": code.to_uppercase(), "code": code}, "geometry": geometry})
}

#[tokio::test]
async fn the_nanterre_districts_import_with_their_names() {
    let app = TestApp::spawn().await;
    draft(&app, "nanterre").await;
    let collection: Value = serde_json::from_str(civicmap::demo::NANTERRE_DISTRICTS).unwrap();
    let response = app
        .admin_put("/api/v1/admin/campaigns/nanterre/districts", &collection)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["imported"], 11);
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM districts ORDER BY position")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(names[4], "Chemin de l'Île");
    let srids: Vec<i32> = sqlx::query_scalar("SELECT DISTINCT ST_SRID(geom) FROM districts")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(srids, [4326]);
}

#[tokio::test]
async fn a_self_intersecting_ring_is_repaired_and_reported() {
    let app = TestApp::spawn().await;
    draft(&app, "bowtie").await;
    // A bow tie: the ring crosses itself at (2.05, 48.05).
    let bowtie = json!({"type": "Polygon", "coordinates": [[[2.0, 48.0], [2.1, 48.1], [2.1, 48.0], [2.0, 48.1], [2.0, 48.0]]]});
    let collection = json!({"type": "FeatureCollection", "features": [feature("ok", json!({"type": "Polygon", "coordinates": square(3.0, 48.0, 0.1)})), feature("bowtie", bowtie)]});
    let response = app
        .admin_put("/api/v1/admin/campaigns/bowtie/districts", &collection)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["repaired"][0]["index"], 1);
    assert!(
        report["repaired"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Self-intersection"),
        "{report}"
    );
    let (valid, kind): (bool, String) = sqlx::query_as(
        "SELECT ST_IsValid(geom), GeometryType(geom) FROM districts WHERE code = 'bowtie'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(valid);
    assert_eq!(kind, "MULTIPOLYGON");
}

#[tokio::test]
async fn unusable_features_are_refused_with_their_index_and_nothing_changes() {
    let app = TestApp::spawn().await;
    app.open_campaign("strict", json!({})).await;
    // A "polygon" whose points are all on one line: repair leaves no area.
    let flat = json!({"type": "Polygon", "coordinates": [[[2.0, 48.0], [2.1, 48.0], [2.2, 48.0], [2.0, 48.0]]]});
    let collection = json!({"type": "FeatureCollection", "features": [
        feature("fine", json!({"type": "Polygon", "coordinates": square(2.0, 48.0, 0.1)})),
        feature("flat", flat),
    ]});
    let refused = problem(
        app.admin_put("/api/v1/admin/campaigns/strict/districts", &collection)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&refused), ["features[1].geometry"]);
    assert!(
        refused["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("is invalid and cannot be repaired into a polygon")
    );

    let collection = json!({"type": "FeatureCollection", "features": [
        feature("line", json!({"type": "LineString", "coordinates": [[2.0, 48.0], [2.1, 48.1]]})),
        {"type": "Feature", "properties": {"code": "nameless"}, "geometry": {"type": "Polygon", "coordinates": square(2.0, 48.0, 0.1)}},
        feature("far", json!({"type": "Polygon", "coordinates": square(179.95, 48.0, 0.1)})),
    ]});
    let refused = problem(
        app.admin_put("/api/v1/admin/campaigns/strict/districts", &collection)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        problem_fields(&refused),
        [
            "features[0].geometry",
            "features[1].properties.name",
            "features[2].geometry"
        ]
    );
    assert_eq!(
        refused["errors"][0]["detail"],
        "must be a Polygon or a MultiPolygon, not a LineString"
    );

    let refused = problem(
        app.admin_put(
            "/api/v1/admin/campaigns/strict/districts",
            &json!({"type": "Feature"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&refused), ["type"]);

    // The three districts of the first import are still there.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM districts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 3);
}

#[tokio::test]
async fn custom_property_names_are_used() {
    let app = TestApp::spawn().await;
    draft(&app, "props").await;
    let collection = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"nom": "Nord", "insee": 92050}, "geometry": {"type": "Polygon", "coordinates": square(2.0, 48.0, 0.1)}}
    ]});
    let url = app.url("/api/v1/admin/campaigns/props/districts?name_prop=nom&code_prop=insee");
    let response = app
        .client
        .put(url)
        .bearer_auth(&app.admin_token)
        .json(&collection)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (code, name): (String, String) = sqlx::query_as("SELECT code, name FROM districts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((code.as_str(), name.as_str()), ("92050", "Nord"));
}

#[tokio::test]
async fn a_point_in_a_multipolygon_district_is_counted_there() {
    let app = TestApp::spawn().await;
    app.open_campaign("multi", exact()).await;
    for lat in [48.02, 48.07] {
        let receipt = app.contribute("multi", 2.12, lat, answers()).await;
        assert_eq!(receipt.district.unwrap().code, "middle");
    }
    assert_eq!(app.counts("multi").await["middle"], Some(2));
}

#[tokio::test]
async fn a_point_on_a_shared_border_counts_once_in_the_first_district() {
    let app = TestApp::spawn().await;
    app.open_campaign("border", exact()).await;
    let receipt = app.contribute("border", 2.1, 48.03, answers()).await;
    assert_eq!(receipt.district.unwrap().code, "west");
    let counts = app.counts("border").await;
    assert_eq!(
        (counts["west"], counts["middle"], counts["total"]),
        (Some(1), None, Some(1))
    );
}

#[tokio::test]
async fn re_importing_reassigns_submissions_and_rebuilds_counts() {
    let app = TestApp::spawn().await;
    app.open_campaign("again", exact()).await;
    for lon in [2.05, 2.15, 2.25, 2.26] {
        assert_eq!(
            app.submit("again", lon, 48.05, answers()).await.status(),
            StatusCode::CREATED
        );
    }
    let before = app.counts("again").await;
    assert_eq!(
        (before["west"], before["middle"], before["east"]),
        (Some(1), Some(1), Some(2))
    );

    // New districts: one south half, one north half of the same area.
    let collection = json!({"type": "FeatureCollection", "features": [
        feature("south", json!({"type": "Polygon", "coordinates": [[[2.0, 48.0], [2.3, 48.0], [2.3, 48.06], [2.0, 48.06], [2.0, 48.0]]]})),
        feature("north", json!({"type": "Polygon", "coordinates": [[[2.0, 48.06], [2.3, 48.06], [2.3, 48.1], [2.0, 48.1], [2.0, 48.06]]]})),
    ]});
    let response = app
        .admin_put("/api/v1/admin/campaigns/again/districts", &collection)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["reassigned"], 4);
    let after = app.counts("again").await;
    assert_eq!(
        (after["south"], after["north"], after["total"]),
        (Some(4), None, Some(4))
    );
    assert!(!after.contains_key("west"));

    // New submissions go to the new districts.
    assert_eq!(
        app.submit("again", 2.25, 48.08, answers()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.counts("again").await["north"], Some(1));
}

#[tokio::test]
async fn district_import_needs_an_admin_token() {
    let app = TestApp::spawn().await;
    draft(&app, "guarded").await;
    let response = app
        .client
        .put(app.url("/api/v1/admin/campaigns/guarded/districts"))
        .json(&test_districts())
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED).await;
}
