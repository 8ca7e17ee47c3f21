//! Figures finer than a district are published as snapshots: someone who polls them, or
//! compares their ETags, never sees one arrival with its place, time and answers. District
//! totals stay live. These tests play the poller against a server on the campaign's schedule.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{TestApp, exact, test_config};

/// The doors finer than a district, and what a poller reads from each.
const FINER: &[&str] = &[
    "/api/v1/campaigns/watch/aggregates.csv?by=h3:10&sum=households",
    "/api/v1/campaigns/watch/aggregates.geojson?by=h3:8",
    "/api/v1/campaigns/watch/aggregates.csv?breakdown=connection",
    "/api/v1/campaigns/watch/aggregates.csv?sum=households",
    "/api/v1/campaigns/watch/timeseries.csv",
    "/api/v1/campaigns/watch/timeseries.csv?interval=week&by=district",
    "/tiles/watch/14/8285/5691.mvt",
    "/tiles/watch/10/517/355.mvt",
];

/// What a tile publishes finer than a district: its `demand` layer, as (x, y, count). The
/// `districts` layer holds the live district totals.
fn demand_of(tile: &[u8]) -> Vec<String> {
    use geo::CoordsIter;
    let reader = mvt_reader::Reader::new(tile.to_vec()).expect("a valid MVT");
    let mut found = Vec::new();
    for (index, layer) in reader.get_layer_metadata().unwrap().into_iter().enumerate() {
        if layer.name != "demand" {
            continue;
        }
        for feature in reader.get_features_as::<f64>(index).unwrap() {
            let coords: Vec<_> = feature.geometry.coords_iter().collect();
            found.push(format!("{coords:?} {:?}", feature.properties));
        }
    }
    found.sort();
    found
}

/// A server on the campaign's publication schedule (not the tests' live one).
async fn server() -> TestApp {
    let mut config = test_config();
    config.publication = civicmap::aggregates::publication::Schedule::Campaign;
    TestApp::spawn_with(config).await
}

/// (status, ETag, what is finer than a district) of every finer door: the whole body and its
/// ETag for aggregates and time series, the demand layer for tiles.
async fn read_all(app: &TestApp) -> Vec<(StatusCode, String, Vec<String>)> {
    let mut out = Vec::new();
    for path in FINER {
        let response = app.get(path).await;
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .map(|e| e.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.bytes().await.unwrap();
        out.push(if path.starts_with("/tiles/") {
            (status, String::new(), demand_of(&body))
        } else {
            (
                status,
                etag,
                vec![String::from_utf8_lossy(&body).into_owned()],
            )
        });
    }
    out
}

/// Waits until the clock is just past a whole minute, so that a test has most of a minute
/// before the next publication.
async fn start_of_a_minute() {
    loop {
        let second = time::OffsetDateTime::now_utc().second();
        if (1..=3).contains(&second) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The households published in the hexagons of resolution 10: the sum of their sums.
async fn published_households(app: &TestApp) -> f64 {
    let cells: Value = app
        .get("/api/v1/campaigns/watch/aggregates.geojson?by=h3:10&sum=households")
        .await
        .json()
        .await
        .unwrap();
    cells["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["properties"]["sum_households"].as_f64())
        .sum()
}

/// Submits at (lon, lat) with `households`.
async fn submit(app: &TestApp, lon: f64, lat: f64, households: i64) {
    let response = app
        .submit(
            "watch",
            lon,
            lat,
            json!({"households": households, "connection": "adsl"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_poller_of_finer_figures_sees_no_single_arrival_and_publications_move_by_k_arrivals() {
    let app = server().await;
    let mut form = crate::helpers::test_form();
    form["fields"][1]["public"] = json!(true);
    app.open_campaign(
        "watch",
        json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": 3, "publish_interval_minutes": 1}}),
    )
    .await;
    // Twelve households published long ago around one spot of the west district.
    for i in 0..12 {
        submit(&app, 2.05 + f64::from(i) * 1e-5, 48.05, 2).await;
    }
    sqlx::query(
        "UPDATE submissions SET created_at = created_at - interval '3 days',
                                published_at = published_at - interval '3 days'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    start_of_a_minute().await;
    let before = read_all(&app).await;
    for (path, (status, _, _)) in FINER.iter().zip(&before) {
        assert_eq!(*status, StatusCode::OK, "{path}");
    }
    assert_eq!(app.counts("watch").await["west"], Some(12));

    // The arrival: one household next to them, with a private number of 7.
    submit(&app, 2.05003, 48.05, 7).await;
    // District totals are live: the citizen sees their contribution counted at once.
    assert_eq!(app.counts("watch").await["west"], Some(13));
    // The poller reads every finer door again, several times: nothing moved, not a byte of
    // a body, not an ETag.
    for _ in 0..3 {
        assert_eq!(read_all(&app).await, before);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        published_households(&app).await,
        24.0,
        "the private 7 is nowhere yet"
    );

    // The next interval begins with one arrival only, fewer than k: no publication, so the
    // poller who compares two snapshots cannot isolate it either.
    let minute = time::OffsetDateTime::now_utc().minute();
    while time::OffsetDateTime::now_utc().minute() == minute {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(read_all(&app).await, before);

    // Two more arrivals in the interval that just ended: k = 3 together, so the next
    // publication holds all three at once.
    submit(&app, 2.05004, 48.05, 7).await;
    submit(&app, 2.05005, 48.05, 7).await;
    sqlx::query(
        "UPDATE submissions SET created_at = date_trunc('minute', now()) - interval '5 seconds',
                                published_at = date_trunc('minute', now()) - interval '5 seconds'
         WHERE published_at >= date_trunc('minute', now())",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let after = read_all(&app).await;
    for ((path, old), new) in FINER.iter().zip(&before).zip(&after) {
        assert_ne!(old.2, new.2, "{path} did not publish the arrivals");
    }
    assert_eq!(
        published_households(&app).await,
        45.0,
        "the three arrivals, together"
    );
}

#[tokio::test]
async fn etags_are_derived_from_the_body_and_say_nothing_else() {
    let app = server().await;
    app.open_campaign("watch", exact()).await;
    for i in 0..4 {
        submit(&app, 2.05 + f64::from(i) * 1e-4, 48.05, 2).await;
    }
    let mut paths: Vec<&str> = FINER.to_vec();
    paths.extend([
        "/api/v1/campaigns/watch/aggregates.csv",
        "/api/v1/campaigns/watch/aggregates.geojson",
    ]);
    for path in paths {
        if path.contains("breakdown") {
            continue; // `connection` is not public in this campaign
        }
        let response = app
            .client
            .get(app.url(path))
            .header("accept-encoding", "identity")
            .send()
            .await
            .unwrap();
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let body = response.bytes().await.unwrap();
        let hex = format!("{:x}", sha2::Sha256::digest(&body));
        assert_eq!(etag, format!("\"{}\"", &hex[..32]), "{path}");
    }
}
