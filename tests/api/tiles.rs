//! Vector tiles, decoded with an MVT reader that is not their encoder (PostGIS writes them,
//! the `mvt-reader` crate reads them): layers, placement, counts, privacy, freshness, HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mvt_reader::Reader;
use mvt_reader::feature::Value as Prop;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, exact, problem};

const HALF_WORLD: f64 = 20_037_508.342_789_244;

/// The XYZ tile containing (lon, lat) at zoom z.
pub(crate) fn tile_of(lon: f64, lat: f64, z: u32) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let r = lat.to_radians();
    let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    (x as u32, y as u32)
}

/// Tile-local coordinates (0..4096, y down) to longitude/latitude.
pub(crate) fn to_lon_lat(z: u32, x: u32, y: u32, px: f64, py: f64) -> (f64, f64) {
    let size = 2.0 * HALF_WORLD / f64::from(1u32 << z);
    let mx = -HALF_WORLD + (f64::from(x) + px / 4096.0) * size;
    let my = HALF_WORLD - (f64::from(y) + py / 4096.0) * size;
    let lon = mx / HALF_WORLD * 180.0;
    let lat = (2.0 * (my / 6_378_137.0).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    (lon, lat)
}

pub(crate) struct Decoded {
    /// code -> (count, withheld, share)
    pub(crate) districts: BTreeMap<String, (Option<i64>, bool, Option<f64>)>,
    /// (tile-local x, y, count) of the demand points inside the tile proper (not the buffer).
    pub(crate) demand: Vec<(f64, f64, i64)>,
    layers: Vec<String>,
}

fn number(p: Option<&Prop>) -> Option<f64> {
    match p? {
        Prop::Int(v) | Prop::SInt(v) => Some(*v as f64),
        Prop::UInt(v) => Some(*v as f64),
        Prop::Double(v) => Some(*v),
        Prop::Float(v) => Some(f64::from(*v)),
        _ => None,
    }
}

pub(crate) fn decode(bytes: Vec<u8>) -> Decoded {
    let reader = Reader::new(bytes).expect("a valid MVT");
    let layers = reader.get_layer_names().unwrap();
    let mut decoded = Decoded {
        districts: BTreeMap::new(),
        demand: Vec::new(),
        layers: layers.clone(),
    };
    for (index, meta) in reader.get_layer_metadata().unwrap().into_iter().enumerate() {
        assert_eq!(meta.extent, 4096);
        for feature in reader.get_features_as::<f64>(index).unwrap() {
            let props = feature.properties.clone().unwrap_or_default();
            match meta.name.as_str() {
                "districts" => {
                    let code = match props.get("code") {
                        Some(Prop::String(s)) => s.clone(),
                        other => panic!("district without code: {other:?}"),
                    };
                    let withheld = matches!(props.get("withheld"), Some(Prop::Bool(true)));
                    let count = number(props.get("count")).map(|c| c as i64);
                    decoded
                        .districts
                        .insert(code, (count, withheld, number(props.get("share"))));
                }
                "demand" => {
                    assert_eq!(
                        props.keys().collect::<Vec<_>>(),
                        ["count"],
                        "demand features carry a count and nothing else"
                    );
                    let count = number(props.get("count")).unwrap() as i64;
                    let points: Vec<geo::Point<f64>> = match feature.geometry {
                        geo::Geometry::Point(p) => vec![p],
                        geo::Geometry::MultiPoint(m) => m.0,
                        other => panic!("demand features are points, not {other:?}"),
                    };
                    assert_eq!(points.len(), 1, "one point per cell");
                    let p = points[0];
                    if (0.0..4096.0).contains(&p.x()) && (0.0..4096.0).contains(&p.y()) {
                        decoded.demand.push((p.x(), p.y(), count));
                    }
                }
                other => panic!("unexpected layer {other}"),
            }
        }
    }
    decoded
}

impl TestApp {
    pub(crate) async fn tile(&self, slug: &str, z: u32, x: u32, y: u32) -> reqwest::Response {
        self.get(&format!("/tiles/{slug}/{z}/{x}/{y}.mvt")).await
    }

    /// Every tile at zoom z covering lon 2.0..2.3, lat 48.0..48.1, decoded.
    async fn tiles_over_test_area(&self, slug: &str, z: u32) -> Vec<Decoded> {
        let (x0, y0) = tile_of(2.0, 48.1, z);
        let (x1, y1) = tile_of(2.3, 48.0, z);
        let mut tiles = Vec::new();
        for x in x0..=x1 {
            for y in y0..=y1 {
                let response = self.tile(slug, z, x, y).await;
                match response.status() {
                    StatusCode::OK => tiles.push(decode(response.bytes().await.unwrap().to_vec())),
                    StatusCode::NO_CONTENT => {}
                    other => panic!("tile {z}/{x}/{y}: {other}"),
                }
            }
        }
        tiles
    }
}

#[tokio::test]
async fn tiles_carry_district_counts_and_demand_of_at_least_k() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "tiles",
        json!({"privacy": {"public_precision_m": 50, "min_count": 3}}),
    )
    .await;
    // West 5, middle 3, east 1 (withheld, and middle with it: see aggregates::suppress).
    let points = [
        (2.01, 48.01),
        (2.02, 48.02),
        (2.03, 48.03),
        (2.04, 48.04),
        (2.05, 48.05),
        (2.11, 48.01),
        (2.12, 48.06),
        (2.13, 48.09),
        (2.25, 48.05),
    ];
    for (lon, lat) in points {
        assert_eq!(
            app.submit("tiles", lon, lat, answers()).await.status(),
            StatusCode::CREATED
        );
    }
    app.release("tiles").await;
    for z in [7, 8, 10, 12, 14] {
        let tiles = app.tiles_over_test_area("tiles", z).await;
        // Demand points are the map's released hexagons (tiles::demand): each an estimate of
        // at least k.
        let demand: Vec<i64> = tiles.iter().flat_map(|t| &t.demand).map(|d| d.2).collect();
        assert!(demand.iter().all(|&c| c >= 3), "zoom {z}: {demand:?}");
        // (That demand is drawn at all is checked against the downloads by
        // the_maps_demand_is_the_published_hexagons_so_the_two_doors_cannot_be_compared.)
        let mut districts = BTreeMap::new();
        for tile in &tiles {
            assert!(
                tile.layers
                    .iter()
                    .all(|l| l == "districts" || l == "demand"),
                "{:?}",
                tile.layers
            );
            districts.extend(tile.districts.clone());
        }
        assert_eq!(
            districts["west"],
            (Some(5), false, Some(0.5556)),
            "zoom {z}"
        );
        assert_eq!(districts["middle"], (None, true, None), "zoom {z}");
        assert_eq!(districts["east"], (None, true, None), "zoom {z}");
    }
}

#[tokio::test]
async fn street_tiles_show_hexagon_centres_never_exact_positions_or_answers() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "private",
        json!({"privacy": {"public_precision_m": 50, "min_count": 1, "budget": 10}}),
    )
    .await;
    let (lon, lat) = (2.123_456_7, 48.054_321_9);
    let mut with_text = answers();
    with_text["comment"] = json!("secret-text");
    let receipt: Value = app
        .submit("private", lon, lat, with_text)
        .await
        .json()
        .await
        .unwrap();
    for i in 1..20 {
        app.submit("private", lon + 0.0001 * f64::from(i), lat, answers())
            .await;
    }
    app.release("private").await;
    // Every tile from the hexagon's to the street's: points at the centres of the map's
    // hexagons (resolution 8 at most), never at a position, never an answer, an id or a token.
    let hexagon = h3o::LatLng::new(lat, lon)
        .unwrap()
        .to_cell(h3o::Resolution::Eight);
    let mut drawn = 0;
    for z in 12..=18 {
        let (x, y) = tile_of(lon, lat, z);
        let response = app.tile("private", z, x, y).await;
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.bytes().await.unwrap().to_vec();
        for secret in [
            "secret-text",
            receipt["id"].as_str().unwrap(),
            receipt["edit_token"].as_str().unwrap(),
        ] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} leaked into a tile"
            );
        }
        let pixel = 40_075_016.7 / f64::from(1u32 << z) / 4096.0;
        for (px, py, _) in decode(bytes).demand {
            let (clon, clat) = to_lon_lat(z, x, y, px, py);
            let at = h3o::LatLng::new(clat, clon).unwrap();
            let centre = h3o::LatLng::from(at.to_cell(h3o::Resolution::Eight));
            let off = |a: f64, b: f64| (a - b).abs() / 360.0 * 40_075_016.7;
            assert!(
                off(centre.lng(), clon) <= 2.0 * pixel
                    && off(centre.lat(), clat) / lat.to_radians().cos() <= 2.0 * pixel,
                "z{z}: a demand point is not at a resolution-8 hexagon's centre"
            );
            if at.to_cell(h3o::Resolution::Eight) == hexagon {
                drawn += 1;
            }
        }
    }
    assert!(drawn > 0, "the hexagon of the twenty households is drawn");
}

/// The live total of the west district in tile z/x/y of `slug` from `app` (its `districts`
/// layer; 0 when withheld or absent).
async fn west_in(app: &TestApp, slug: &str, z: u32, x: u32, y: u32) -> i64 {
    let response = app.tile(slug, z, x, y).await;
    match response.status() {
        StatusCode::OK => decode(response.bytes().await.unwrap().to_vec())
            .districts
            .get("west")
            .and_then(|d| d.0)
            .unwrap_or(0),
        StatusCode::NO_CONTENT => 0,
        other => panic!("tile {z}/{x}/{y}: {other}"),
    }
}

/// Asks `app` for the tile until its west total is `want`, for at most 1 s: how long it took.
async fn within_a_second(
    app: &TestApp,
    slug: &str,
    (z, x, y): (u32, u32, u32),
    want: i64,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = west_in(app, slug, z, x, y).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "after 1 s the tile from the other instance still shows {got}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_write_is_in_the_next_tile_here_and_within_a_second_from_another_instance() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.db.clone()).await;
    first.open_campaign("fresh", exact()).await;
    first.submit("fresh", 2.05, 48.05, answers()).await;
    let z = 12;
    let (x, y) = tile_of(2.05, 48.05, z);

    // Both instances keep the campaign's versions (and the tile) in memory.
    assert_eq!(west_in(&first, "fresh", z, x, y).await, 1);
    let before = second.tile("fresh", z, x, y).await;
    let etag = before.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        decode(before.bytes().await.unwrap().to_vec()).districts["west"].0,
        Some(1)
    );
    // Cached on the second instance: asking again with its ETag gives 304.
    let again = second
        .client
        .get(second.url(&format!("/tiles/fresh/{z}/{x}/{y}.mvt")))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let mut delays = Vec::new();
    let mut receipts = Vec::new();
    for n in 2..=6 {
        let receipt: Value = first
            .submit("fresh", 2.05 + 0.0001 * n as f64, 48.051, answers())
            .await
            .json()
            .await
            .unwrap();
        receipts.push(receipt);
        // The writer's instance: the very next tile.
        assert_eq!(
            west_in(&first, "fresh", z, x, y).await,
            n,
            "a submission is in the next tile of the instance that stored it"
        );
        delays.push(within_a_second(&second, "fresh", (z, x, y), n).await);
    }
    println!("a submission through one instance reached the other's tiles in {delays:?}");

    let receipt = &receipts[0];
    let erased = first
        .client
        .delete(first.url(&format!(
            "/api/v1/campaigns/fresh/submissions/{}",
            receipt["id"].as_str().unwrap()
        )))
        .header("X-Edit-Token", receipt["edit_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        west_in(&first, "fresh", z, x, y).await,
        5,
        "an erasure is in the next tile too"
    );
    let delay = within_a_second(&second, "fresh", (z, x, y), 5).await;
    println!("an erasure through one instance reached the other's tiles in {delay:?}");
    // And back: a write through the second reaches the first.
    second.submit("fresh", 2.0502, 48.0502, answers()).await;
    assert_eq!(west_in(&second, "fresh", z, x, y).await, 6);
    within_a_second(&first, "fresh", (z, x, y), 6).await;
}

/// The backends LISTENing for version changes.
async fn listeners(db: &sqlx::PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'civicmap-listener'
           AND query LIKE 'LISTEN%'",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn tiles_stay_fresh_while_the_listening_connection_is_down_and_it_comes_back() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.db.clone()).await;
    first.open_campaign("fresh", exact()).await;
    first.submit("fresh", 2.05, 48.05, answers()).await;
    let (z, (x, y)) = (12, tile_of(2.05, 48.05, 12));
    assert_eq!(west_in(&second, "fresh", z, x, y).await, 1);
    let start = Instant::now();
    let before = loop {
        let pids = listeners(&first.db).await;
        if pids.len() == 2 {
            break pids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "both instances listen: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // Cut both: each instance polls until it listens again.
    for pid in &before {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&first.db)
            .await
            .unwrap();
    }
    for n in 2..=3 {
        first
            .submit("fresh", 2.05 + 0.0001 * n as f64, 48.051, answers())
            .await;
        assert_eq!(west_in(&first, "fresh", z, x, y).await, n);
        let delay = within_a_second(&second, "fresh", (z, x, y), n).await;
        println!(
            "while not listening (polling), a submission reached the other instance in {delay:?}"
        );
    }

    // Both listen again, on new connections...
    let start = Instant::now();
    loop {
        let pids = listeners(&first.db).await;
        if pids.len() == 2 && pids.iter().all(|p| !before.contains(p)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the listeners came back: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and notifications work again.
    second.submit("fresh", 2.0504, 48.0504, answers()).await;
    let delay = within_a_second(&first, "fresh", (z, x, y), 4).await;
    println!("listening again, a submission reached the other instance in {delay:?}");
}

#[tokio::test]
async fn tile_requests_get_the_right_status_headers_and_encoding() {
    let app = TestApp::spawn().await;
    app.open_campaign("http", json!({})).await;
    app.submit("http", 2.05, 48.05, answers()).await;
    let (x, y) = tile_of(2.05, 48.05, 10);

    let plain = app.tile("http", 10, x, y).await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.headers()["content-type"],
        "application/vnd.mapbox-vector-tile"
    );
    assert_eq!(
        plain.headers()["cache-control"],
        "public, max-age=0, s-maxage=2, stale-while-revalidate=2"
    );
    let plain_tag = plain.headers()["etag"].to_str().unwrap().to_owned();
    assert!(plain_tag.starts_with('"'));
    let raw = plain.bytes().await.unwrap();

    let gzipped = app
        .client
        .get(app.url(&format!("/tiles/http/10/{x}/{y}.mvt")))
        .header("Accept-Encoding", "gzip")
        .header("Origin", "https://www.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["access-control-allow-origin"], "*");
    // Another representation, another strong validator (RFC 9110 §8.8.3); either revalidates.
    let gzip_tag = gzipped.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(gzip_tag, plain_tag);
    for (held, accept) in [(&plain_tag, "gzip"), (&gzip_tag, "identity")] {
        let again = app
            .client
            .get(app.url(&format!("/tiles/http/10/{x}/{y}.mvt")))
            .header("Accept-Encoding", accept)
            .header("If-None-Match", held.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{held} {accept}");
    }
    let compressed = gzipped.bytes().await.unwrap();
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated, raw);

    // Far from the campaign: nothing to draw.
    let (fx, fy) = tile_of(-70.0, -30.0, 10);
    assert_eq!(
        app.tile("http", 10, fx, fy).await.status(),
        StatusCode::NO_CONTENT
    );

    for (path, detail) in [
        (
            "/tiles/http/23/0/0.mvt",
            "zoom must be between 0 and 22, got 23",
        ),
        (
            "/tiles/http/2/4/0.mvt",
            "at zoom 2, x and y must be between 0 and 3, got x=4, y=0",
        ),
        (
            "/tiles/http/2/0/-1.mvt",
            "y must be a whole number, got `-1`",
        ),
        ("/tiles/http/z/0/0.mvt", "z must be a whole number, got `z`"),
    ] {
        let refused = problem(app.get(path).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(refused["detail"], detail);
    }
    problem(
        app.get("/tiles/nope/0/0/0.mvt").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(app.get("/tiles/nope.json").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn tilejson_describes_the_layers_and_credits_openstreetmap() {
    let app = TestApp::spawn().await;
    app.open_campaign("meta", json!({})).await;
    let tilejson: Value = app.get("/tiles/meta.json").await.json().await.unwrap();
    assert_eq!(tilejson["tilejson"], "3.0.0");
    assert_eq!(tilejson["tiles"][0], app.url("/tiles/meta/{z}/{x}/{y}.mvt"));
    assert_eq!(tilejson["bounds"], json!([2.0, 48.0, 2.3, 48.1]));
    assert!(
        tilejson["attribution"]
            .as_str()
            .unwrap()
            .contains("© OpenStreetMap contributors")
    );
    let layers: Vec<&str> = tilejson["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(layers, ["districts", "demand"]);
    assert!(tilejson["vector_layers"][0]["fields"]["withheld"].is_string());
}

#[tokio::test]
async fn no_tile_grows_with_the_number_of_points() {
    let app = TestApp::spawn().await;
    app.open_campaign("dense", exact()).await;
    let campaign = std::sync::Arc::new(civicmap::campaigns::get(&app.db, "dense").await.unwrap());
    let areas = vec![geo::MultiPolygon(vec![geo::Polygon::new(
        geo::LineString::from(vec![
            (2.0, 48.0),
            (2.3, 48.0),
            (2.3, 48.1),
            (2.0, 48.1),
            (2.0, 48.0),
        ]),
        vec![],
    )])];
    let points = civicmap::synthetic::points_in(&areas, 20_000, 1);
    for chunk in points.chunks(2_000) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&point| civicmap::submissions::Pending {
                campaign: campaign.clone(),
                submission: civicmap::submissions::NewSubmission {
                    point,
                    answers: answers().as_object().unwrap().clone(),
                },
                key: None,
                client_hash: None,
                contributor: None,
            })
            .collect();
        civicmap::submissions::store_batch(&app.db, &batch, 0)
            .await
            .unwrap();
    }
    app.release("dense").await;
    for z in 0..=18 {
        let (x, y) = tile_of(2.15, 48.05, z);
        let response = app
            .client
            .get(app.url(&format!("/tiles/dense/{z}/{x}/{y}.mvt")))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "zoom {z}");
        let gzipped = response.bytes().await.unwrap().len();
        assert!(gzipped < 64 * 1024, "zoom {z}: {gzipped} bytes gzipped");
        let raw = app
            .tile("dense", z, x, y)
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let reader = Reader::new(raw).unwrap();
        let demand_layer = reader
            .get_layer_metadata()
            .unwrap()
            .into_iter()
            .position(|l| l.name == "demand");
        // Below zoom 7 even resolution 6 is too fine for a tile: districts only. From zoom 15
        // the map's resolution-8 hexagons are larger than a tile: a tile may hold no centre.
        if z <= 14 {
            assert_eq!(demand_layer.is_some(), z >= 7, "zoom {z}");
        }
        let features = demand_layer.map_or(0, |l| reader.get_features(l).unwrap().len());
        assert!(features <= 72 * 72, "zoom {z}: {features} demand features");
    }
}

#[tokio::test]
async fn submissions_waiting_for_moderation_are_not_in_tiles() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "premod-tiles",
        json!({"moderation": "pre", "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let receipt: Value = app
        .submit("premod-tiles", 2.05, 48.05, answers())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(receipt["status"], "pending");
    app.release("premod-tiles").await;
    let (x, y) = tile_of(2.05, 48.05, 14);
    let response = app.tile("premod-tiles", 14, x, y).await;
    assert_eq!(response.status(), StatusCode::OK, "the districts are drawn");
    let tile = decode(response.bytes().await.unwrap().to_vec());
    assert!(tile.demand.is_empty(), "{:?}", tile.demand);
    assert_eq!(tile.districts["west"], (None, true, None));
}

#[tokio::test]
async fn the_maps_demand_is_the_published_hexagons_so_the_two_doors_cannot_be_compared() {
    // Two families of places that do not nest, squares on the map and hexagons in the
    // downloads, could be subtracted from each other: a hexagon less the squares inside it
    // leaves the few households on its rim. The attacker's move here is to read both doors
    // and look for any figure the map gives that the downloads do not: there must be none.
    let app = TestApp::spawn().await;
    app.open_campaign(
        "family",
        json!({"privacy": {"public_precision_m": 50, "min_count": 3}}),
    )
    .await;
    let mut seed = 7u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    // Dense around two spots, sparse elsewhere: some hexagons published, some withheld.
    for i in 0..240 {
        let (lon, lat) = match i % 3 {
            0 => (2.05 + next() * 0.004, 48.05 + next() * 0.003),
            1 => (2.15 + next() * 0.02, 48.02 + next() * 0.02),
            _ => (2.001 + next() * 0.298, 48.001 + next() * 0.098),
        };
        assert_eq!(
            app.submit("family", lon, lat, answers()).await.status(),
            StatusCode::CREATED
        );
    }
    app.release("family").await;
    for z in [7, 9, 11, 13, 15] {
        // The map: each demand point is the centre of the H3 cell holding it, at one resolution.
        let mut drawn: BTreeMap<String, i64> = BTreeMap::new();
        let mut resolutions = std::collections::BTreeSet::new();
        // The area and the width of a hexagon around it: the hexagons on its edge have their
        // centres outside it.
        let (x0, y0) = tile_of(1.97, 48.13, z);
        let (x1, y1) = tile_of(2.33, 47.97, z);
        for x in x0..=x1 {
            for y in y0..=y1 {
                let response = app.tile("family", z, x, y).await;
                if response.status() == StatusCode::NO_CONTENT {
                    continue;
                }
                let tile = decode(response.bytes().await.unwrap().to_vec());
                for (px, py, count) in tile.demand {
                    let (lon, lat) = to_lon_lat(z, x, y, px, py);
                    let at = h3o::LatLng::new(lat, lon).unwrap();
                    let pixel = 40_075_016.7 / f64::from(1u32 << z) / 4096.0;
                    let tile = civicmap::tiles::TileCoord::new(z, x, y).unwrap();
                    // The zoom's resolution, never finer than the map's (8).
                    let resolution = civicmap::tiles::demand::resolution_for(tile, 50.0)
                        .map(|r| r.min(h3o::Resolution::Eight))
                        .unwrap_or_else(|| panic!("z{z}: demand drawn on too coarse a tile"));
                    let cell = at.to_cell(resolution);
                    let centre = h3o::LatLng::from(cell);
                    let dx = (centre.lng() - lon).abs() / 360.0 * 40_075_016.7;
                    let dy =
                        (centre.lat() - lat).abs() / 360.0 * 40_075_016.7 / lat.to_radians().cos();
                    assert!(
                        dx <= 2.0 * pixel && dy <= 2.0 * pixel,
                        "z{z}: a demand point off its H3 cell's centre"
                    );
                    resolutions.insert(u8::from(cell.resolution()));
                    assert!(drawn.insert(cell.to_string(), count).is_none());
                }
            }
        }
        assert!(resolutions.len() <= 1, "z{z}: {resolutions:?}");
        let Some(&resolution) = resolutions.first() else {
            panic!("z{z}: nothing drawn");
        };
        // The downloads at that resolution.
        let body: Value = app
            .get(&format!(
                "/api/v1/campaigns/family/aggregates.geojson?by=h3:{resolution}"
            ))
            .await
            .json()
            .await
            .unwrap();
        let published = crate::exports::hexagon_estimates(&body);
        assert_eq!(
            drawn, published,
            "z{z}: the map shows exactly the hexagons published"
        );
    }
}
