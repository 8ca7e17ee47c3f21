//! Exports: staff's exact aggregates checked against an independent brute-force count, the
//! public's (exact district totals, estimates for everything finer) checked against it too,
//! the files read back by GDAL, k-suppression of district totals audited by linear algebra,
//! targets, ETags, the raw export.

use std::collections::BTreeMap;

use futures::StreamExt;
use geo::{Contains, Intersects};
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, problem_fields};

/// A form whose choice and yes/no answers may be published.
fn public_form() -> Value {
    let mut form = crate::helpers::test_form();
    for field in form["fields"].as_array_mut().unwrap() {
        if field["key"] == "connection" || field["key"] == "tenant" {
            field["public"] = json!(true);
        }
    }
    form
}

/// The test districts as geo polygons, in import order.
fn districts() -> Vec<(String, geo::MultiPolygon<f64>)> {
    let collection = crate::helpers::test_districts();
    collection["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let geometry: geojson::Geometry =
                serde_json::from_value(f["geometry"].clone()).unwrap();
            let geometry: geo::Geometry<f64> = geometry.try_into().unwrap();
            let multi = match geometry {
                geo::Geometry::Polygon(p) => geo::MultiPolygon(vec![p]),
                geo::Geometry::MultiPolygon(m) => m,
                other => panic!("{other:?}"),
            };
            (f["properties"]["code"].as_str().unwrap().to_owned(), multi)
        })
        .collect()
}

/// The district a point belongs to, by the documented rule: the first district (in import
/// order) whose polygon contains it or has it on its border. Computed with the geo crate.
fn district_of(
    districts: &[(String, geo::MultiPolygon<f64>)],
    lon: f64,
    lat: f64,
) -> Option<String> {
    let point = geo::Point::new(lon, lat);
    districts
        .iter()
        .find(|(_, shape)| shape.contains(&point) || shape.intersects(&point))
        .map(|(code, _)| code.clone())
}

/// A campaign whose area reaches beyond the districts, so that some points are in no district.
async fn campaign(app: &TestApp, slug: &str, k: i64) {
    app.open_campaign(
        slug,
        json!({
            "form": public_form(),
            "privacy": {"public_precision_m": 50, "min_count": k},
            "area": {"type": "Polygon", "coordinates": crate::helpers::square(1.95, 47.95, 0.4)},
        }),
    )
    .await;
}

#[derive(Debug, Clone)]
struct Sent {
    lon: f64,
    lat: f64,
    households: i64,
    connection: &'static str,
    tenant: Option<bool>,
}

/// `n` random points: most anywhere in the area, many exactly on district borders.
fn random_points(seed: u64, n: usize) -> Vec<Sent> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (lon, lat) = match rng.random_range(0..10) {
                // On a border between districts or on the outer edge.
                0 => (
                    [2.0, 2.1, 2.2, 2.3][rng.random_range(0..4)],
                    rng.random_range(48.0..48.1),
                ),
                1 => (
                    rng.random_range(2.0..2.3),
                    [48.0, 48.05, 48.1][rng.random_range(0..3)],
                ),
                // A corner shared by districts.
                2 if rng.random_bool(0.2) => (
                    [2.1, 2.2][rng.random_range(0..2)],
                    [48.0, 48.1][rng.random_range(0..2)],
                ),
                _ => (rng.random_range(1.95..2.35), rng.random_range(47.95..48.15)),
            };
            Sent {
                lon,
                lat,
                households: rng.random_range(1..6),
                connection: ["adsl", "none"][rng.random_range(0..2)],
                tenant: [Some(true), Some(false), None][rng.random_range(0..3)],
            }
        })
        .collect()
}

async fn submit_all(app: &TestApp, slug: &str, points: &[Sent]) {
    let statuses: Vec<StatusCode> = futures::stream::iter(points)
        .map(|p| {
            let mut answers = json!({"households": p.households, "connection": p.connection});
            if let Some(t) = p.tenant {
                answers["tenant"] = json!(t);
            }
            async move { app.submit(slug, p.lon, p.lat, answers).await.status() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
}

async fn geojson(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(response.headers()["content-type"], "application/geo+json");
    response.json().await.unwrap()
}

/// The H3 cells listed in a staff `aggregates.geojson?by=h3:…` document, with their counts.
pub(crate) fn hexagon_counts(body: &Value) -> BTreeMap<String, i64> {
    hexagons_by(body, "count")
}

/// The H3 cells listed in a public `aggregates.geojson?by=h3:…` document, with their
/// estimates.
pub(crate) fn hexagon_estimates(body: &Value) -> BTreeMap<String, i64> {
    hexagons_by(body, "estimate_count")
}

fn hexagons_by(body: &Value, property: &str) -> BTreeMap<String, i64> {
    body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["properties"]["h3"].as_str().unwrap().to_owned(),
                f["properties"][property].as_i64().unwrap(),
            )
        })
        .collect()
}

/// GET `path` with a planner's token: the exact figures.
async fn as_planner(app: &TestApp, path: &str) -> Value {
    let token = app.staff_token(civicmap::auth::Role::Planner).await;
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// The H3 cell a point is counted in at `resolution` by staff's exact figures: the parent of
/// its resolution-10 cell (so that cells add up exactly to their children, as documented).
pub(crate) fn h3_of(lon: f64, lat: f64, resolution: u8) -> String {
    let r = h3o::Resolution::try_from(resolution).unwrap();
    let fine = h3o::LatLng::new(lat, lon)
        .unwrap()
        .to_cell(h3o::Resolution::Ten);
    fine.parent(r).unwrap().to_string()
}

#[tokio::test]
async fn aggregates_equal_an_independent_brute_force_count() {
    let app = TestApp::spawn().await;
    campaign(&app, "brute", 1).await;
    let points = random_points(42, 3000);
    submit_all(&app, "brute", &points).await;
    let shapes = districts();

    // By district, with a breakdown and a sum.
    let mut expected: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    for p in &points {
        let code = district_of(&shapes, p.lon, p.lat).unwrap_or_default();
        let e = expected.entry(code).or_default();
        e.0 += 1;
        e.1 += p.households;
        e.2 += i64::from(p.connection == "adsl");
        e.3 += i64::from(p.connection == "none");
    }
    assert!(expected.contains_key(""), "some points are in no district");
    let body = as_planner(
        &app,
        "/api/v1/campaigns/brute/aggregates.geojson?breakdown=connection&sum=households",
    )
    .await;
    assert_eq!(body["figures"]["exact"], true);
    let features = body["features"].as_array().unwrap();
    assert_eq!(features.len(), expected.len());
    for f in features {
        let p = &f["properties"];
        let e = expected[p["code"].as_str().unwrap()];
        assert_eq!(p["count"], e.0, "{p}");
        assert_eq!(p["sum_households"], e.1 as f64, "{p}");
        assert_eq!(p["connection=adsl"], e.2, "{p}");
        assert_eq!(p["connection=none"], e.3, "{p}");
    }
    assert_eq!(body["total"]["count"], points.len());

    // The public's: the same exact district totals; the splits, estimates released with
    // noise, adding up to them and near the truth (one release; the noise's scale here is
    // about 3, so 40 is more than 13 scales away: fails about once in a million).
    app.release("brute").await;
    let public = geojson(
        &app,
        "/api/v1/campaigns/brute/aggregates.geojson?breakdown=connection",
    )
    .await;
    assert_eq!(public["estimates"]["exact"], false);
    assert!(public["estimates"]["epsilon"].as_f64().unwrap() <= 2.0);
    for f in public["features"].as_array().unwrap() {
        let p = &f["properties"];
        let e = expected[p["code"].as_str().unwrap()];
        assert_eq!(p["count"], e.0, "{p}");
        assert!(
            p.get("connection=adsl").is_none(),
            "no exact split for the public: {p}"
        );
        let estimate = |column: &str| p[column].as_i64().unwrap_or(0);
        let (adsl, none, unanswered) = (
            estimate("estimate_connection=adsl"),
            estimate("estimate_connection=none"),
            estimate("estimate_connection=(no answer)"),
        );
        assert!(adsl + none + unanswered <= e.0, "{p}");
        assert!(
            (adsl - e.2).abs() <= 40 && (none - e.3).abs() <= 40,
            "{p} against {e:?}"
        );
    }
    // A planner's H3 figures at resolutions 6 to 10, exact.
    for resolution in 6..=10u8 {
        let mut expected: BTreeMap<String, i64> = BTreeMap::new();
        for p in &points {
            *expected.entry(h3_of(p.lon, p.lat, resolution)).or_default() += 1;
        }
        let body = as_planner(
            &app,
            &format!("/api/v1/campaigns/brute/aggregates.geojson?by=h3:{resolution}"),
        )
        .await;
        assert_eq!(hexagon_counts(&body), expected, "resolution {resolution}");
        // The hexagons hold the points counted in them (all but those near a coarse cell's
        // edge, whose resolution-10 cell descends from the neighbour).
        let mut inside = 0;
        for f in body["features"].as_array().unwrap() {
            let ring: Vec<(f64, f64)> = f["geometry"]["coordinates"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
                .collect();
            assert_eq!(ring.first(), ring.last(), "closed ring");
            let hexagon = geo::Polygon::new(geo::LineString::from(ring), vec![]);
            inside += points
                .iter()
                .filter(|p| {
                    h3_of(p.lon, p.lat, resolution) == f["properties"]["h3"].as_str().unwrap()
                })
                .filter(|p| hexagon.intersects(&geo::Point::new(p.lon, p.lat)))
                .count();
        }
        assert!(
            inside * 10 >= points.len() * 9,
            "resolution {resolution}: {inside} of {} inside",
            points.len()
        );
    }

    // The public's hexagons of the map (resolution 8) are estimates near the truth (the
    // noise's scale is about 5 here; 60 is more than 11 scales away).
    for resolution in [8u8] {
        let body = geojson(
            &app,
            &format!("/api/v1/campaigns/brute/aggregates.geojson?by=h3:{resolution}"),
        )
        .await;
        let exact = hexagon_counts(
            &as_planner(
                &app,
                &format!("/api/v1/campaigns/brute/aggregates.geojson?by=h3:{resolution}"),
            )
            .await,
        );
        let estimates = hexagon_estimates(&body);
        assert!(!estimates.is_empty());
        let total: i64 = exact.values().sum();
        let near = estimates
            .iter()
            .filter(|(cell, e)| (**e - exact.get(*cell).copied().unwrap_or(0)).abs() <= 60)
            .count();
        assert_eq!(
            near,
            estimates.len(),
            "resolution {resolution}: {estimates:?} against {exact:?}"
        );
        assert!(
            (estimates.values().sum::<i64>() - total).abs() <= total / 5,
            "resolution {resolution}"
        );
    }

    // CSV says the same as GeoJSON, and the CLI writes the same file as the API.
    let csv = app
        .get("/api/v1/campaigns/brute/aggregates.csv?breakdown=connection")
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "code",
            "name",
            "count",
            "withheld",
            "target",
            "progress",
            "households",
            "per_1000_households",
            "lon",
            "lat",
            "estimate_connection=adsl",
            "estimate_connection=none"
        ],
        "no \"no answer\" column: the question is required"
    );
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(record[2].parse::<i64>().unwrap(), expected[&record[0]].0);
    }
}

#[tokio::test]
async fn excel_csv_has_a_bom_semicolons_and_decimal_commas() {
    let app = TestApp::spawn().await;
    campaign(&app, "excel", 1).await;
    submit_all(&app, "excel", &random_points(3, 20)).await;
    let bytes = app
        .get("/api/v1/campaigns/excel/aggregates.csv?excel=1")
        .await
        .bytes()
        .await
        .unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.starts_with('\u{feff}'));
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "code;name;count;withheld;target;progress;households;per_1000_households;lon;lat"
    );
    let west: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("west;"))
        .unwrap()
        .split(';')
        .collect();
    assert!(west[8].contains(',') && !west[8].contains('.'), "{west:?}");
    let problem = problem(
        app.get("/api/v1/campaigns/excel/aggregates.csv?excel=yes")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&problem), ["excel"]);
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let app = TestApp::spawn().await;
    campaign(&app, "params", 5).await;
    for (query, field) in [
        ("by=h3:5", "by"),
        ("by=h3:11", "by"),
        // Finer than the map (resolution 8): not published.
        ("by=h3:9", "by"),
        ("by=county", "by"),
        ("breakdown=comment", "breakdown"),
        ("breakdown=households", "breakdown"),
        ("breakdown=nothing", "breakdown"),
        ("sum=connection", "sum"),
        // Not a public field: its sums are for staff.
        ("sum=households", "sum"),
        ("from=yesterday", "from"),
        ("from=2026-02-01&to=2026-01-01", "to"),
    ] {
        let response = app
            .get(&format!(
                "/api/v1/campaigns/params/aggregates.geojson?{query}"
            ))
            .await;
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&problem), [field], "{query}");
    }
    let unknown = app
        .get("/api/v1/campaigns/params/aggregates.geojson?color=red")
        .await;
    problem(unknown, StatusCode::BAD_REQUEST).await;
    // A time window or an H3 breakdown needs a planner token.
    for query in ["from=2026-01-01", "by=h3:8&breakdown=connection"] {
        let response = app
            .get(&format!(
                "/api/v1/campaigns/params/aggregates.geojson?{query}"
            ))
            .await;
        let problem = problem(response, StatusCode::FORBIDDEN).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("planner token"),
            "{problem}"
        );
    }
    let missing = app.get("/api/v1/campaigns/nope/aggregates.geojson").await;
    problem(missing, StatusCode::NOT_FOUND).await;
    for query in [
        "interval=month",
        "by=h3:8",
        "tz=Mars/Olympus",
        "tz=Europe/Paris",
        // A weekly campaign's public series is weekly.
        "interval=day",
        "interval=day&by=district",
    ] {
        let response = app
            .get(&format!("/api/v1/campaigns/params/timeseries.csv?{query}"))
            .await;
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    // A series per district is for planners.
    let response = app
        .get("/api/v1/campaigns/params/timeseries.csv?interval=week&by=district")
        .await;
    let problem = problem(response, StatusCode::FORBIDDEN).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("planner token"),
        "{problem}"
    );
}

#[tokio::test]
async fn aggregates_have_strong_etags_that_move_with_the_data() {
    let app = TestApp::spawn().await;
    campaign(&app, "etags", 1).await;
    submit_all(&app, "etags", &random_points(5, 10)).await;
    for path in [
        "/api/v1/campaigns/etags/aggregates.geojson",
        "/api/v1/campaigns/etags/aggregates.csv?by=h3:8",
        "/api/v1/campaigns/etags/timeseries.csv",
    ] {
        let first = app.get(path).await;
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()["etag"], etag.as_str());
        // Another representation has another tag (the Excel flavour of a CSV; a GeoJSON
        // body is the same whatever `excel` says, and so is its tag).
        if !path.contains(".csv") {
            continue;
        }
        let other = app
            .get(&format!(
                "{path}{}excel=1",
                if path.contains('?') { "&" } else { "?" }
            ))
            .await;
        assert_ne!(other.headers()["etag"].to_str().unwrap(), etag);
    }
    let path = "/api/v1/campaigns/etags/aggregates.geojson";
    let etag = app.get(path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    app.submit("etags", 2.05, 48.05, crate::helpers::answers())
        .await;
    let after = app
        .client
        .get(app.url(path))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::OK);
}

#[tokio::test]
async fn targets_report_progress_in_aggregates_and_the_districts_layer() {
    let app = TestApp::spawn().await;
    campaign(&app, "targets", 1).await;
    let wrong = app
        .admin_patch(
            "/api/v1/admin/campaigns/targets",
            &json!({"targets": {"west": 0, "north": 10}}),
        )
        .await;
    let wrong = problem(wrong, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&wrong), ["targets.north", "targets.west"]);
    let set = app
        .admin_patch(
            "/api/v1/admin/campaigns/targets",
            &json!({"targets": {"west": 8}}),
        )
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    for _ in 0..2 {
        app.submit("targets", 2.05, 48.05, crate::helpers::answers())
            .await;
    }
    let body = geojson(&app, "/api/v1/campaigns/targets/aggregates.geojson").await;
    let west = body["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "west")
        .unwrap();
    assert_eq!(west["properties"]["target"], 8);
    assert_eq!(west["properties"]["progress"], 0.25);
    let layer = geojson(&app, "/api/v1/campaigns/targets/districts.geojson").await;
    let west = layer["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "west")
        .unwrap();
    assert_eq!(west["properties"]["target"], 8);
    assert_eq!(west["properties"]["progress"], 0.25);
    let middle = layer["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "middle")
        .unwrap();
    assert_eq!(middle["properties"]["target"], Value::Null);
    let campaign: Value = app
        .get("/api/v1/campaigns/targets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(campaign["targets"], json!({"west": 8}));
}

/// Figures published about a set of atoms: each is the sum of the atoms it covers.
struct Audit {
    atoms: usize,
    /// (atoms covered, published value or None when withheld, true value, where from)
    figures: Vec<(Vec<usize>, Option<i64>, i64, String)>,
}

impl Audit {
    fn add(&mut self, covered: Vec<usize>, published: Option<i64>, truth: i64, from: String) {
        if let Some(p) = published {
            assert_eq!(p, truth, "{from}: published figure differs from the truth");
        }
        self.figures.push((covered, published, truth, from));
    }

    /// Asserts that no withheld, non-zero figure is a linear combination of published ones.
    ///
    /// Written apart from the engine's own check (`aggregates::protect`'s tests use floating
    /// point Gaussian elimination): exact integers, fraction-free elimination (Bareiss), every
    /// division checked to be exact and every product checked for overflow, so that it cannot
    /// share a rounding bug or a tolerance with the code under test.
    fn check(&self, k: i64) {
        let n = self.atoms;
        let vector = |covered: &[usize]| {
            let mut v = vec![0i128; n];
            for &a in covered {
                v[a] = 1;
            }
            v
        };
        let published: Vec<Vec<i128>> = self
            .figures
            .iter()
            .filter(|f| f.1.is_some())
            .map(|f| vector(&f.0))
            .collect();
        for (_, shown, _, _) in &self.figures {
            if let Some(shown) = shown {
                assert!(*shown >= k, "a count below k was published");
            }
        }
        // Rank by Bareiss elimination: each entry stays an integer minor of the matrix.
        let rank = |rows: &[Vec<i128>]| -> usize {
            let mut m = rows.to_vec();
            let (mut rank, mut previous) = (0, 1i128);
            for col in 0..n {
                let Some(p) = (rank..m.len()).find(|&r| m[r][col] != 0) else {
                    continue;
                };
                m.swap(rank, p);
                let pivot = m[rank].clone();
                for row in m.iter_mut().skip(rank + 1) {
                    let lead = row[col];
                    for j in col..n {
                        let cross = row[j]
                            .checked_mul(pivot[col])
                            .and_then(|a| lead.checked_mul(pivot[j]).and_then(|b| a.checked_sub(b)))
                            .expect("no overflow in exact elimination");
                        assert_eq!(cross % previous, 0, "Bareiss divisions are exact");
                        row[j] = cross / previous;
                    }
                }
                previous = pivot[col];
                rank += 1;
            }
            rank
        };
        let base = rank(&published);
        let mut withheld_checked = 0;
        for (covered, shown, truth, from) in &self.figures {
            if shown.is_none() && *truth > 0 {
                let mut with = published.clone();
                with.push(vector(covered));
                assert_eq!(
                    rank(&with),
                    base + 1,
                    "withheld figure {from} ({truth}) can be recovered from the published ones"
                );
                withheld_checked += 1;
            }
        }
        assert!(withheld_checked > 0, "the scenario withholds something");
    }
}

#[test]
fn the_audit_catches_a_withheld_figure_that_the_published_ones_give_away() {
    // Atoms a = 2, b = 5, c = 6: the total 13 and b + c = 11 published give a = 2 away; with
    // only the total and c published, a and b stay hidden (a + b = 7 only).
    let audit = |published_bc: bool| {
        let mut audit = Audit {
            atoms: 3,
            figures: Vec::new(),
        };
        audit.add(vec![0, 1, 2], Some(13), 13, "total".into());
        audit.add(vec![0], None, 2, "a".into());
        audit.add(vec![2], Some(6), 6, "c".into());
        audit.add(vec![1], None, 5, "b".into());
        audit.add(vec![1, 2], published_bc.then_some(11), 11, "b + c".into());
        std::panic::catch_unwind(move || audit.check(5)).is_ok()
    };
    assert!(audit(false), "nothing can be recovered");
    assert!(!audit(true), "a = total - (b + c) is caught");
}

#[tokio::test]
async fn no_combination_of_published_figures_reveals_a_withheld_count() {
    let app = TestApp::spawn().await;
    let k = 5;
    campaign(&app, "private", k).await;
    // Few points, so that many figures fall below k: districts with 14, 3, 8 and outside 2.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let mut points = Vec::new();
    for (n, lon0, lat0) in [
        (14, 2.0, 48.0),
        (3, 2.1, 48.0),
        (8, 2.2, 48.0),
        (2, 2.31, 48.11),
    ] {
        for _ in 0..n {
            points.push(Sent {
                lon: lon0 + rng.random_range(0.001..0.03),
                lat: lat0 + rng.random_range(0.001..0.03),
                households: rng.random_range(1..4),
                connection: ["adsl", "none"][rng.random_range(0..2)],
                tenant: [Some(true), Some(false), None][rng.random_range(0..3)],
            });
        }
    }
    submit_all(&app, "private", &points).await;
    let shapes = districts();
    let atoms: Vec<(String, &Sent)> = points
        .iter()
        .map(|p| (district_of(&shapes, p.lon, p.lat).unwrap_or_default(), p))
        .collect();
    let mut audit = Audit {
        atoms: atoms.len(),
        figures: Vec::new(),
    };
    let cover = |pred: &dyn Fn(&(String, &Sent)) -> bool| -> Vec<usize> {
        atoms
            .iter()
            .enumerate()
            .filter(|(_, a)| pred(a))
            .map(|(i, _)| i)
            .collect()
    };
    let count_of = |v: &Value| v.as_i64();

    // The exact, live figures: the districts layer and the district totals of every flavour
    // of the downloads (plain, split by each public answer, as CSV and GeoJSON). Finer figures
    // are estimates with noise (differential privacy), whose guarantee is tested in
    // `src/figures/attacks.rs`; here, that a withheld total withholds its splits.
    let layer = geojson(&app, "/api/v1/campaigns/private/districts.geojson").await;
    for f in layer["features"].as_array().unwrap() {
        let code = f["properties"]["code"].as_str().unwrap().to_owned();
        let covered = cover(&|a| a.0 == code);
        audit.add(
            covered.clone(),
            count_of(&f["properties"]["count"]),
            covered.len() as i64,
            format!("layer {code}"),
        );
    }
    let all = cover(&|_| true);
    audit.add(
        all.clone(),
        count_of(&layer["total"]["count"]),
        all.len() as i64,
        "layer total".into(),
    );
    let outside = cover(&|a| a.0.is_empty());
    audit.add(
        outside.clone(),
        count_of(&layer["outside_districts"]["count"]),
        outside.len() as i64,
        "layer outside".into(),
    );
    app.release("private").await;
    for field in ["connection", "tenant"] {
        let body = geojson(
            &app,
            &format!("/api/v1/campaigns/private/aggregates.geojson?breakdown={field}"),
        )
        .await;
        for f in body["features"].as_array().unwrap() {
            let p = &f["properties"];
            let code = p["code"].as_str().unwrap().to_owned();
            let covered = cover(&|a| a.0 == code);
            audit.add(
                covered.clone(),
                count_of(&p["count"]),
                covered.len() as i64,
                format!("{field}: {code}"),
            );
            if p["withheld"] == true {
                let splits: Vec<&Value> = p
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| k.starts_with("estimate_"))
                    .map(|(_, v)| v)
                    .collect();
                assert!(
                    !splits.is_empty() && splits.iter().all(|v| v.is_null()),
                    "{p}"
                );
            }
        }
        let csv = app
            .get(&format!(
                "/api/v1/campaigns/private/aggregates.csv?breakdown={field}"
            ))
            .await
            .text()
            .await
            .unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        for record in reader.records() {
            let record = record.unwrap();
            let code = record[0].to_owned();
            let covered = cover(&|a| a.0 == code);
            audit.add(
                covered.clone(),
                record[2].parse().ok(),
                covered.len() as i64,
                format!("{field} csv: {code}"),
            );
        }
    }
    audit.check(k);
}

#[tokio::test]
async fn the_raw_export_is_for_planners_complete_exact_and_audited() {
    let app = TestApp::spawn().await;
    campaign(&app, "raw", 5).await;
    let points = random_points(11, 300);
    submit_all(&app, "raw", &points).await;
    let path = "/api/v1/admin/campaigns/raw/submissions.csv";
    problem(app.get(path).await, StatusCode::UNAUTHORIZED).await;
    let moderator =
        civicmap::auth::create_token(&app.db, "mod", civicmap::auth::Role::Moderator, None)
            .await
            .unwrap();
    let refused = app
        .client
        .get(app.url(path))
        .bearer_auth(&moderator)
        .send()
        .await
        .unwrap();
    problem(refused, StatusCode::FORBIDDEN).await;

    let planner = civicmap::auth::create_token(
        &app.db,
        "planning office",
        civicmap::auth::Role::Planner,
        None,
    )
    .await
    .unwrap();
    let csv = app
        .client
        .get(app.url(path))
        .bearer_auth(&planner)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["cache-control"], "private, no-store");
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "id",
            "created_at",
            "district_code",
            "district_name",
            "lon",
            "lat",
            "households",
            "connection",
            "comment",
            "tenant"
        ]
    );
    let mut got: Vec<(f64, f64, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[4].parse().unwrap(),
                r[5].parse().unwrap(),
                r[7].to_owned(),
            )
        })
        .collect();
    let mut sent: Vec<(f64, f64, String)> = points
        .iter()
        .map(|p| (p.lon, p.lat, p.connection.to_owned()))
        .collect();
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    sent.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(got, sent, "every submission, at its exact position");

    let geojson = app
        .client
        .get(app.url("/api/v1/admin/campaigns/raw/submissions.geojson?district=west"))
        .bearer_auth(&planner)
        .send()
        .await
        .unwrap();
    let body: Value = geojson.json().await.unwrap();
    let west = points
        .iter()
        .filter(|p| district_of(&districts(), p.lon, p.lat).as_deref() == Some("west"))
        .count();
    assert_eq!(body["features"].as_array().unwrap().len(), west);
    assert_eq!(body["features"][0]["properties"]["district"], "west");

    let bad = app
        .client
        .get(app.url("/api/v1/admin/campaigns/raw/submissions.csv?district=north"))
        .bearer_auth(&planner)
        .send()
        .await
        .unwrap();
    problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;

    // Each export is in the audit log with who, what filter and how many rows.
    let mut entries: Vec<(String, String, Value)> = Vec::new();
    for _ in 0..50 {
        entries = sqlx::query_as(
            "SELECT actor, action, details FROM audit_log WHERE action = 'export.raw' ORDER BY id",
        )
        .fetch_all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|(a, b, d): (String, String, sqlx::types::Json<Value>)| (a, b, d.0))
        .collect();
        if entries.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].0, "planning office (planner)");
    assert_eq!(entries[0].2["rows"], 300);
    assert_eq!(entries[0].2["completed"], true);
    assert_eq!(entries[1].2["filter"]["district"], "west");
    assert_eq!(entries[1].2["rows"], west);
}

#[tokio::test]
async fn a_citizens_formula_never_runs_in_a_planners_spreadsheet() {
    let (pool, options) = crate::helpers::fresh_database().await;
    let app = TestApp::spawn_on(pool).await;
    campaign(&app, "formula", 1).await;
    // What an attacker types in the free-text field, hoping a planner opens it in Excel.
    let attacks = [
        "=HYPERLINK(\"e.vil\")",
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
        "=1+1",
    ];
    for comment in attacks {
        let response = app
            .submit(
                "formula",
                2.05,
                48.05,
                json!({"households": 2, "connection": "adsl", "comment": comment}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let planner = civicmap::auth::create_token(&app.db, "p", civicmap::auth::Role::Planner, None)
        .await
        .unwrap();
    let mut files = Vec::new();
    for (query, delimiter) in [("", b','), ("?excel=1", b';')] {
        let text = app
            .client
            .get(app.url(&format!(
                "/api/v1/admin/campaigns/formula/submissions.csv{query}"
            )))
            .bearer_auth(&planner)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        files.push((text, delimiter));
    }
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("raw.csv");
    let url = crate::helpers::url_of(&options);
    let out = crate::helpers::civicmap(
        &url,
        &[
            "export",
            "formula",
            "--raw",
            "--output",
            output.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    files.push((std::fs::read_to_string(&output).unwrap(), b','));

    for (text, delimiter) in files {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let comment = reader
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "comment")
            .unwrap();
        let mut got: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[comment].to_owned())
            .collect();
        got.sort();
        let mut expected: Vec<String> = attacks.iter().map(|a| format!("'{a}")).collect();
        expected.sort();
        // Every formula reads as text, whole: nothing lost, nothing run.
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn a_raw_export_is_in_the_audit_log_before_its_first_row_leaves() {
    let app = TestApp::spawn().await;
    campaign(&app, "slow", 5).await;
    sqlx::query(
        "INSERT INTO submissions (id, campaign_id, geom, answers, status, edit_token_hash)
         SELECT gen_random_uuid(), c.id, ST_SetSRID(ST_MakePoint(2.05, 48.05), 4326),
                '{\"households\": 2, \"connection\": \"adsl\"}', 'published', '\\x00'
         FROM campaigns c, generate_series(1, 6000) WHERE c.slug = 'slow'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let planner = civicmap::auth::create_token(&app.db, "p", civicmap::auth::Role::Planner, None)
        .await
        .unwrap();
    let entry = async || -> Option<Value> {
        sqlx::query_scalar::<_, sqlx::types::Json<Value>>(
            "SELECT details FROM audit_log WHERE action = 'export.raw'",
        )
        .fetch_optional(&app.db)
        .await
        .unwrap()
        .map(|d| d.0)
    };
    // The headers are in, the body not read: the export waits for this reader, mid-way.
    let response = app
        .client
        .get(app.url("/api/v1/admin/campaigns/slow/submissions.csv"))
        .bearer_auth(&planner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let started = entry().await.expect("the entry is written before the rows");
    assert_eq!(started["completed"], false);
    let text = response.text().await.unwrap();
    assert_eq!(text.lines().count(), 6001);
    let mut done = Value::Null;
    for _ in 0..50 {
        done = entry().await.unwrap();
        if done["completed"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(done["completed"], true, "{done}");
    assert_eq!(done["rows"], 6000);
}

#[tokio::test]
async fn only_public_numbers_are_summed_for_the_public_and_then_as_estimates_within_their_range() {
    let app = TestApp::spawn().await;
    // `households` (1 to 500) is not public; `people` (1 to 6, whole) is.
    let mut form = public_form();
    form["fields"].as_array_mut().unwrap().push(json!({
        "key": "people", "type": "number", "label": {"fr": "Personnes", "en": "People"},
        "min": 1, "max": 6, "integer": true, "public": true}));
    app.open_campaign(
        "sums",
        json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": 3}}),
    )
    .await;
    // West: a building of 200 households and three houses; middle: five, of 2 people each.
    let mut sent = Vec::new();
    for (i, households) in [200, 1, 1, 1].into_iter().enumerate() {
        sent.push((2.05 + i as f64 * 1e-5, 48.05, households, 4));
    }
    for i in 0..5 {
        sent.push((2.15 + i as f64 * 1e-5, 48.02, 2, 2));
    }
    for (lon, lat, households, people) in sent {
        app.contribute(
            "sums",
            lon,
            lat,
            json!({"households": households, "connection": "adsl", "people": people}),
        )
        .await;
    }
    app.release("sums").await;
    // The private field is never summed for the public, whatever the flavour.
    for path in [
        "/api/v1/campaigns/sums/aggregates.geojson?sum=households",
        "/api/v1/campaigns/sums/aggregates.csv?sum=households",
    ] {
        let refused = problem(app.get(path).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&refused), ["sum"], "{path}");
    }
    let refused = problem(
        app.get("/api/v1/campaigns/sums/aggregates.geojson?by=h3:8&sum=people")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("planner token")
    );
    // The public one is an estimate, within what its count allows (1 to 6 people each).
    let body = geojson(&app, "/api/v1/campaigns/sums/aggregates.geojson?sum=people").await;
    for f in body["features"].as_array().unwrap() {
        let p = &f["properties"];
        assert!(p.get("sum_people").is_none(), "{p}");
        match (p["count"].as_i64(), p["estimate_sum_people"].as_f64()) {
            (Some(n), Some(sum)) => assert!(sum >= 0.0 && sum <= 6.0 * n as f64, "{p}"),
            (None, sum) => assert_eq!(sum, None, "withheld with its count: {p}"),
            (Some(_), None) => panic!("a shown count's public sum is shown: {p}"),
        }
    }
    // Planners read both, exact.
    let exact = as_planner(
        &app,
        "/api/v1/campaigns/sums/aggregates.geojson?sum=households",
    )
    .await;
    let west = exact["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "west")
        .unwrap();
    assert_eq!(west["properties"]["sum_households"], 203.0);
}

#[tokio::test]
async fn outside_every_district_is_listed_whether_or_not_anyone_is_there() {
    let app = TestApp::spawn().await;
    campaign(&app, "outside", 1).await;
    let paths = [
        "/api/v1/campaigns/outside/aggregates.csv",
        "/api/v1/campaigns/outside/aggregates.csv?breakdown=connection",
    ];
    let rows = async |path: &str| -> Vec<String> {
        let text = app.get(path).await.text().await.unwrap();
        text.lines()
            .filter(|l| l.contains("outside every district"))
            .map(str::to_owned)
            .collect()
    };
    app.submit("outside", 2.05, 48.05, crate::helpers::answers())
        .await;
    let before: Vec<usize> = futures::future::join_all(paths.map(&rows))
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(before, [1, 1], "listed while nobody is outside");
    // Someone outside every district: the same rows, so their presence told nothing before.
    app.submit("outside", 2.32, 48.12, crate::helpers::answers())
        .await;
    for path in paths {
        assert_eq!(rows(path).await.len(), 1, "{path}");
    }
}

#[tokio::test]
async fn the_public_gets_no_hexagon_finer_than_the_campaigns_map() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "coarse",
        json!({"privacy": {"public_precision_m": 200, "min_count": 1, "map_resolution": 7}}),
    )
    .await;
    let refused = crate::helpers::problem(
        app.get("/api/v1/campaigns/coarse/aggregates.csv?by=h3:8")
            .await,
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(crate::helpers::problem_fields(&refused), ["by"]);
    assert!(
        refused
            .to_string()
            .contains("finer than this campaign's map (h3:7)"),
        "{refused}"
    );
    let allowed = app
        .get("/api/v1/campaigns/coarse/aggregates.csv?by=h3:7")
        .await;
    assert_eq!(allowed.status(), reqwest::StatusCode::OK);
    // A map finer than the public precision cannot be set.
    let wrong = app
        .admin_patch(
            "/api/v1/admin/campaigns/coarse",
            &json!({"privacy": {"public_precision_m": 200, "min_count": 1, "map_resolution": 10}}),
        )
        .await;
    let wrong = crate::helpers::problem(wrong, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        crate::helpers::problem_fields(&wrong),
        ["privacy.map_resolution"]
    );
    // Staff (a planner) may look finer: their figures are not public.
    let token = app.staff_token(civicmap::auth::Role::Planner).await;
    let staff = app
        .client
        .get(app.url("/api/v1/campaigns/coarse/aggregates.csv?by=h3:10"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(staff.status(), reqwest::StatusCode::OK);
}

/// GET `path` with `Accept-Encoding: gzip`; the body decompressed when it came gzipped, with the
/// response's ETag and Content-Encoding.
async fn get_gzip(app: &TestApp, path: &str) -> (Vec<u8>, String, Option<String>) {
    let response = app
        .client
        .get(app.url(path))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert!(
        response.headers()["vary"]
            .to_str()
            .unwrap()
            .contains("accept-encoding"),
        "{path}"
    );
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.bytes().await.unwrap().to_vec();
    let body = if encoding.as_deref() == Some("gzip") {
        use std::io::Read;
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut plain)
            .unwrap();
        plain
    } else {
        bytes
    };
    (body, etag, encoding)
}

#[tokio::test]
async fn public_reads_are_gzipped_for_who_asks_and_revalidated_by_either_etag() {
    let app = TestApp::spawn().await;
    campaign(&app, "zipped", 1).await;
    submit_all(&app, "zipped", &random_points(40, 11)).await;
    for path in [
        "/api/v1/campaigns/zipped/districts.geojson",
        "/api/v1/campaigns/zipped/aggregates.geojson",
        "/api/v1/campaigns/zipped/aggregates.csv?by=h3:8",
        "/api/v1/campaigns/zipped/timeseries.csv",
        "/tiles/zipped.json",
    ] {
        let plain = app.get(path).await;
        assert_eq!(plain.status(), StatusCode::OK, "{path}");
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let plain_etag = plain.headers()["etag"].to_str().unwrap().to_owned();
        let plain = plain.bytes().await.unwrap().to_vec();
        let (body, etag, encoding) = get_gzip(&app, path).await;
        // The same representation, whatever the coding; gzip only where it pays (≥ 1 KiB).
        assert_eq!(body, plain, "{path}");
        assert_eq!(
            encoding.is_some(),
            plain.len() >= 1024,
            "{path}: {}",
            plain.len()
        );
        assert_eq!(etag == plain_etag, encoding.is_none(), "{path}");
        for held in [&etag, &plain_etag] {
            let again = app
                .client
                .get(app.url(path))
                .header("accept-encoding", "gzip")
                .header("if-none-match", held)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
            assert_eq!(again.headers()["etag"], etag.as_str(), "{path}");
        }
        // A client that refuses gzip gets the plain bytes.
        let refused = app
            .client
            .get(app.url(path))
            .header("accept-encoding", "gzip;q=0, identity")
            .send()
            .await
            .unwrap();
        assert!(
            refused.headers().get("content-encoding").is_none(),
            "{path}"
        );
    }
}

/// The live district totals of `slug` as the districts layer and the district CSV give them.
async fn live_totals(app: &TestApp, slug: &str) -> (Value, String) {
    let (layer, ..) = get_gzip(app, &format!("/api/v1/campaigns/{slug}/districts.geojson")).await;
    let (csv, ..) = get_gzip(app, &format!("/api/v1/campaigns/{slug}/aggregates.csv")).await;
    (
        serde_json::from_slice(&layer).unwrap(),
        String::from_utf8(csv).unwrap(),
    )
}

/// Live district totals are kept in memory as sent, keyed by the campaign's versions: every
/// change that moves them (a submission, a correction to another district, an erasure, a
/// moderator hiding one, k, a target, new districts) is in the next read on this instance, and
/// within a second on another one, never a stale copy.
#[tokio::test]
async fn live_district_totals_move_with_every_change_here_and_on_another_instance() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn_on(app.db.clone()).await;
    campaign(&app, "live", 1).await;
    let receipts = [
        app.contribute("live", 2.05, 48.05, crate::helpers::answers())
            .await,
        app.contribute("live", 2.05, 48.06, crate::helpers::answers())
            .await,
        app.contribute("live", 2.15, 48.05, crate::helpers::answers())
            .await,
    ];
    let moderator = app.staff_token(civicmap::auth::Role::Moderator).await;
    let mut seen = vec![live_totals(&app, "live").await];
    for change in [
        "submission",
        "correction",
        "erasure",
        "hidden",
        "min_count",
        "target",
        "districts",
    ] {
        match change {
            "submission" => {
                app.contribute("live", 2.25, 48.05, crate::helpers::answers())
                    .await;
            }
            "correction" => {
                let receipt = &receipts[0];
                let response = app
                    .client
                    .patch(app.url(&format!(
                        "/api/v1/campaigns/live/submissions/{}",
                        receipt.id
                    )))
                    .header("X-Edit-Token", &receipt.edit_token)
                    .json(&crate::helpers::point(
                        2.15,
                        48.06,
                        crate::helpers::answers(),
                    ))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{change}");
            }
            "erasure" => {
                let receipt = &receipts[1];
                let response = app
                    .client
                    .delete(app.url(&format!(
                        "/api/v1/campaigns/live/submissions/{}",
                        receipt.id
                    )))
                    .header("X-Edit-Token", &receipt.edit_token)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    response.status().is_success(),
                    "{change}: {}",
                    response.status()
                );
            }
            "hidden" => {
                let response = app
                    .decide(
                        &moderator,
                        "live",
                        &receipts[2].id.to_string(),
                        json!({"action": "hide", "reason": "duplicate"}),
                    )
                    .await;
                assert!(
                    response.status().is_success(),
                    "{change}: {}",
                    response.status()
                );
            }
            "min_count" | "target" => {
                let settings = if change == "target" {
                    json!({"targets": {"east": 4}})
                } else {
                    json!({"privacy": {"public_precision_m": 50, "min_count": 2}})
                };
                let response = app
                    .admin_patch("/api/v1/admin/campaigns/live", &settings)
                    .await;
                assert_eq!(response.status(), StatusCode::OK, "{change}");
            }
            _ => {
                let mut districts = crate::helpers::test_districts();
                districts["features"][0]["properties"]["name"] = json!("West, renamed");
                let response = app
                    .admin_put("/api/v1/admin/campaigns/live/districts", &districts)
                    .await;
                assert_eq!(response.status(), StatusCode::OK, "{change}");
            }
        }
        let totals = live_totals(&app, "live").await;
        assert!(
            !seen.contains(&totals),
            "after the {change}, the live totals are a copy from before: {totals:?}"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while live_totals(&other, "live").await != totals {
            assert!(
                std::time::Instant::now() < deadline,
                "after the {change}, the other instance is still stale after 1 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        seen.push(totals);
    }
}

/// The cache is keyed by the data version, but nothing of that key reaches a reader: an arrival
/// in a withheld district (and a withheld total) moves the version, and the districts layer,
/// the district CSV and both their ETags stay byte for byte what they were.
#[tokio::test]
async fn a_poller_of_live_totals_learns_nothing_from_an_arrival_below_k() {
    let app = TestApp::spawn().await;
    campaign(&app, "below", 3).await;
    app.contribute("below", 2.05, 48.05, crate::helpers::answers())
        .await;
    let doors = [
        "/api/v1/campaigns/below/districts.geojson",
        "/api/v1/campaigns/below/aggregates.csv",
        "/api/v1/campaigns/below/aggregates.geojson",
    ];
    let mut before = Vec::new();
    for door in doors {
        let plain = app.get(door).await;
        let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
        before.push((
            plain.bytes().await.unwrap(),
            etag,
            get_gzip(&app, door).await.1,
        ));
    }
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(changes), 0)::bigint FROM district_counts")
            .fetch_one(&app.db)
            .await
            .unwrap();
    app.contribute("below", 2.06, 48.06, crate::helpers::answers())
        .await;
    let moved: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(changes), 0)::bigint FROM district_counts")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(moved > version, "the arrival moves the data version");
    for (door, (body, etag, etag_gzip)) in doors.into_iter().zip(before) {
        let plain = app.get(door).await;
        assert_eq!(plain.headers()["etag"].to_str().unwrap(), etag, "{door}");
        assert_eq!(plain.bytes().await.unwrap(), body, "{door}");
        assert_eq!(get_gzip(&app, door).await.1, etag_gzip, "{door}");
    }
}
