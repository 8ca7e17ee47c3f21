//! The privacy scan: a full campaign (free text, a choice, k = 5, districts holding 1 to 4
//! points, a hidden, a pending and an erased submission), then every public response we can
//! get (metadata, districts, TileJSON, tiles at many zooms decoded, widget pages, the OpenAPI
//! document, every error we can provoke) is searched for exact coordinates, free text,
//! submission ids, edit tokens and counts below k. `the_scan_catches_each_kind_of_leak` proves
//! the scan fails when something leaks.
//!
//! Add a public route's URL to [`PUBLIC_PATHS`] (`{slug}` is replaced by each campaign).

use geo::CoordsIter;
use mvt_reader::Reader;
use mvt_reader::feature::Value as Prop;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, test_form};
use civicmap::auth::Role;

/// Every public GET worth scanning, with `{slug}` for the campaign. Extend it with each new
/// public route.
pub const PUBLIC_PATHS: &[&str] = &[
    "/api/v1/campaigns/{slug}",
    "/api/v1/campaigns/{slug}/districts.geojson",
    "/api/v1/campaigns/{slug}/aggregates.geojson",
    "/api/v1/campaigns/{slug}/aggregates.csv",
    "/api/v1/campaigns/{slug}/aggregates.csv?excel=1",
    "/api/v1/campaigns/{slug}/aggregates.geojson?breakdown=connection",
    "/api/v1/campaigns/{slug}/aggregates.csv?breakdown=connection&excel=1",
    "/api/v1/campaigns/{slug}/aggregates.geojson?by=h3:6",
    "/api/v1/campaigns/{slug}/aggregates.geojson?by=h3:8",
    "/api/v1/campaigns/{slug}/aggregates.csv?by=h3:7",
    "/api/v1/campaigns/{slug}/timeseries.csv",
    "/api/v1/campaigns/{slug}/timeseries.csv?interval=week",
    "/api/v1/campaigns/{slug}/story",
    "/api/v1/campaigns/{slug}/story.atom",
    "/api/v1/campaigns/{slug}/story.atom?lang=en",
    "/api/v1/campaigns/{slug}/addresses?q=rue",
    "/tiles/{slug}.json",
    "/embed/{slug}",
    "/embed/{slug}/edit",
    "/",
    "/embed.js",
    "/widget/civicmap.js",
    "/api/v1/openapi.json",
    "/healthz",
    "/readyz",
];

const HALF_WORLD: f64 = 20_037_508.342_789_244;
const K: i64 = 5;

/// What must never be public.
#[derive(Debug, Default)]
struct Secrets {
    /// (lon, lat) of every submission ever made, erased and hidden ones included.
    points: Vec<(f64, f64)>,
    texts: Vec<String>,
    ids: Vec<String>,
    tokens: Vec<String>,
}

fn mercator(lon: f64, lat: f64) -> (f64, f64) {
    let x = lon / 180.0 * HALF_WORLD;
    let y = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
        .tan()
        .ln()
        * 6_378_137.0;
    (x, y)
}

fn lon_lat(x: f64, y: f64) -> (f64, f64) {
    let lon = x / HALF_WORLD * 180.0;
    let lat = (2.0 * (y / 6_378_137.0).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    (lon, lat)
}

/// Ground distance in metres between two nearby positions.
fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).to_radians() * a.1.to_radians().cos()).hypot((a.1 - b.1).to_radians())
        * 6_371_000.0
}

/// Every decimal number written in `text`, with its number of decimals.
fn numbers(text: &str) -> Vec<(f64, usize)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = if i > 0 && bytes[i - 1] == b'-' {
                i - 1
            } else {
                i
            };
            let mut end = i;
            while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
                end += 1;
            }
            let token = &text[start..end];
            if let Some(dot) = token.find('.')
                && let Ok(value) = token.trim_end_matches('.').parse::<f64>()
            {
                found.push((value, token.len() - dot - 1));
            }
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// Leaks in a textual response.
fn scan_text(name: &str, text: &str, secrets: &Secrets) -> Vec<String> {
    let mut leaks = Vec::new();
    let lower = text.to_lowercase();
    let precise: Vec<f64> = numbers(text)
        .into_iter()
        .filter(|(_, decimals)| *decimals >= 4)
        .map(|(v, _)| v)
        .collect();
    let all: Vec<f64> = numbers(text).into_iter().map(|(v, _)| v).collect();
    for &(lon, lat) in &secrets.points {
        let near = |values: &[f64], v: f64, tolerance: f64| {
            values.iter().any(|n| (n - v).abs() < tolerance)
        };
        if near(&precise, lon, 5e-5) && near(&precise, lat, 5e-5) {
            leaks.push(format!("{name}: the position {lon}, {lat} (to 4 decimals)"));
        }
        let (x, y) = mercator(lon, lat);
        if near(&all, x, 1.0) && near(&all, y, 1.0) {
            leaks.push(format!("{name}: the position {lon}, {lat} in Web Mercator"));
        }
    }
    for text in &secrets.texts {
        if lower.contains(&text.to_lowercase()) {
            leaks.push(format!("{name}: the free-text answer {text:?}"));
        }
    }
    for id in &secrets.ids {
        if lower.contains(id) || lower.contains(&id.replace('-', "")) {
            leaks.push(format!("{name}: the submission id {id}"));
        }
    }
    for token in &secrets.tokens {
        if text.contains(token.as_str()) {
            leaks.push(format!("{name}: an edit token"));
        }
    }
    leaks
}

/// The outline of H3 cell `h3` as the API writes it: its vertices to 6 decimals.
fn h3_outline(h3: &str) -> Option<Vec<(f64, f64)>> {
    let cell: h3o::CellIndex = h3.parse().ok()?;
    Some(
        cell.boundary()
            .iter()
            .map(|ll| {
                (
                    (ll.lng() * 1e6).round() / 1e6,
                    (ll.lat() * 1e6).round() / 1e6,
                )
            })
            .collect(),
    )
}

/// Takes out of a GeoJSON document the geometries that are exactly the outline of their
/// feature's H3 cell (computed here, independently): a fixed world grid whose vertices say
/// nothing about submissions, but may fall within the text scan's 4 decimals of one by chance.
/// Returns whether anything was taken out.
fn without_h3_outlines(value: &mut Value) -> bool {
    let mut changed = false;
    // `get_mut`: a document may be an array (the address suggestions), which `[...]` would
    // refuse with a panic.
    for feature in value
        .get_mut("features")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(outline) = feature["properties"]["h3"].as_str().and_then(h3_outline) else {
            continue;
        };
        let ring: Vec<(f64, f64)> = feature["geometry"]["coordinates"][0]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c[0].as_f64()?, c[1].as_f64()?)))
            .collect();
        if !ring.is_empty() && ring.iter().all(|v| outline.contains(v)) {
            feature["geometry"] = Value::Null;
            changed = true;
        }
    }
    changed
}

/// A reader of one of our CSV exports, either flavour (the French-Excel one starts with a BOM
/// and separates with `;`).
fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    let text = text.trim_start_matches('\u{feff}');
    let delimiter = if text.lines().next().is_some_and(|h| h.contains(';')) {
        b';'
    } else {
        b','
    };
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
}

/// The same for a CSV export: blanks `lon`/`lat` where they are exactly the centre of the
/// row's H3 cell.
fn without_h3_centres(text: &str) -> String {
    let mut reader = csv_reader(text);
    let headers = reader.headers().expect("a CSV header").clone();
    let at = |name: &str| headers.iter().position(|c| c == name);
    let columns = at("h3").zip(at("lon")).zip(at("lat"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers).unwrap();
    for record in reader.records() {
        let mut cells: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
        if let Some(((h, x), y)) = columns
            && let Ok(cell) = cells[h].parse::<h3o::CellIndex>()
        {
            let centre = h3o::LatLng::from(cell);
            let near = |text: &str, v: f64| {
                text.replace(',', ".")
                    .parse::<f64>()
                    .is_ok_and(|t| (t - v).abs() < 1e-6)
            };
            if near(&cells[x], centre.lng()) && near(&cells[y], centre.lat()) {
                cells[x].clear();
                cells[y].clear();
            }
        }
        out.write_record(&cells).unwrap();
    }
    String::from_utf8(out.into_inner().unwrap()).unwrap()
}

/// Counts below k in a CSV export: the `count` column and the `{field}={answer}` columns.
fn scan_csv_counts(name: &str, text: &str, leaks: &mut Vec<String>) {
    let mut reader = csv_reader(text);
    let headers = reader.headers().expect("a CSV header").clone();
    for record in reader.records() {
        let record = record.expect("a CSV row");
        for (header, cell) in headers.iter().zip(record.iter()) {
            if (header == "count" || header.contains('='))
                && let Ok(n) = cell.parse::<i64>()
                && n < K
            {
                leaks.push(format!("{name}: {header} = {n}, below k = {K}"));
            }
        }
        // A rate (with the public households) is its count: shown only beside a shown count.
        let cell = |h: &str| {
            headers
                .iter()
                .position(|c| c == h)
                .map(|i| record[i].to_owned())
        };
        if let Some(rate) = cell("per_1000_households").filter(|r| !r.is_empty()) {
            let count = cell("count").and_then(|c| c.parse::<i64>().ok());
            if count.is_none_or(|c| c < K) || cell("withheld").as_deref() == Some("true") {
                leaks.push(format!("{name}: a rate {rate} beside a withheld count"));
            }
        }
    }
}

/// Withheld figures placed finer than a district: presence is a disclosure too. In a CSV, a
/// row with `withheld` true and an H3 cell; in GeoJSON, a withheld feature with an `h3`
/// property or any place that is not a district (a district carries its `code`).
fn scan_presence(name: &str, text: &str, leaks: &mut Vec<String>) {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        for feature in value["features"].as_array().into_iter().flatten() {
            let p = &feature["properties"];
            let is_district = p.get("code").is_some() && p.get("h3").is_none();
            if p["withheld"] == json!(true) && !is_district {
                leaks.push(format!("{name}: a withheld place is listed: {p}"));
            }
        }
        return;
    }
    let mut reader = csv_reader(text);
    let Ok(headers) = reader.headers().cloned() else {
        return;
    };
    let at = |name: &str| headers.iter().position(|c| c == name);
    if let (Some(h3), Some(withheld)) = (at("h3"), at("withheld")) {
        for record in reader.records().flatten() {
            if &record[withheld] == "true" {
                leaks.push(format!(
                    "{name}: withheld H3 cell {} is listed",
                    &record[h3]
                ));
            }
        }
    }
}

/// Counts below k anywhere in a JSON document (any `count` that is a number).
fn scan_counts(name: &str, value: &Value, leaks: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            // A rate (with the public households) is its count: shown only beside a shown count.
            if let Some(rate) = map.get("per_1000_households").filter(|r| !r.is_null())
                && (map
                    .get("count")
                    .and_then(Value::as_i64)
                    .is_none_or(|c| c < K)
                    || map.get("withheld") == Some(&json!(true)))
            {
                leaks.push(format!("{name}: a rate {rate} beside a withheld count"));
            }
            for (key, v) in map {
                // `count`, and the `{field}={answer}` counts of a breakdown.
                if (key == "count" || key.contains('='))
                    && let Some(n) = v.as_i64()
                    && n < K
                {
                    leaks.push(format!("{name}: a count of {n}, below k = {K}"));
                }
                scan_counts(name, v, leaks);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| scan_counts(name, v, leaks)),
        _ => {}
    }
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

/// Leaks in a tile: every vertex of every layer is checked against the submitted positions
/// (at zooms fine enough to tell, closer than two pixels is a leak); district counts below k;
/// strings scanned as text; every demand point must be the centre of an H3 cell of a public
/// resolution (6 to 10), as the H3 downloads publish it.
///
/// Every layer's counts are held to k: districts, and the demand layer's hexagons.
fn scan_tile(name: &str, z: u32, x: u32, y: u32, bytes: &[u8], secrets: &Secrets) -> Vec<String> {
    let mut leaks = Vec::new();
    let raw = String::from_utf8_lossy(bytes);
    for secret in secrets
        .ids
        .iter()
        .chain(&secrets.tokens)
        .chain(&secrets.texts)
    {
        if raw.contains(secret.as_str()) {
            leaks.push(format!("{name}: {secret:?} in the tile bytes"));
        }
    }
    let reader = Reader::new(bytes.to_vec()).expect("a valid MVT");
    let size = 2.0 * HALF_WORLD / f64::from(1u32 << z);
    let pixel = size / 4096.0;
    let to_mercator = |px: f64, py: f64| {
        (
            -HALF_WORLD + (f64::from(x) + px / 4096.0) * size,
            HALF_WORLD - (f64::from(y) + py / 4096.0) * size,
        )
    };
    for (index, layer) in reader.get_layer_metadata().unwrap().into_iter().enumerate() {
        for feature in reader.get_features_as::<f64>(index).unwrap() {
            let props = feature.properties.clone().unwrap_or_default();
            for (key, value) in &props {
                if let Prop::String(s) = value {
                    leaks.extend(scan_text(
                        &format!("{name} {}.{key}", layer.name),
                        s,
                        secrets,
                    ));
                }
            }
            let count = number(props.get("count"));
            if count.is_some_and(|c| (c as i64) < K) {
                leaks.push(format!("{name}: {} count {count:?} below k", layer.name));
            }
            for coord in feature.geometry.coords_iter() {
                let (mx, my) = to_mercator(coord.x, coord.y);
                let position = lon_lat(mx, my);
                let ground_pixel = pixel * position.1.to_radians().cos();
                if ground_pixel < 2.0 {
                    for &point in &secrets.points {
                        if metres(position, point) < (2.0 * ground_pixel).max(0.5) {
                            leaks.push(format!(
                                "{name}: a {} vertex at the exact position {point:?}",
                                layer.name
                            ));
                        }
                    }
                }
                let inside = (0.0..4096.0).contains(&coord.x) && (0.0..4096.0).contains(&coord.y);
                if layer.name == "demand" && inside && !is_h3_centre(position, 1.5 * pixel) {
                    leaks.push(format!(
                        "{name}: a demand point off the H3 cells' centres ({position:?})"
                    ));
                }
            }
        }
    }
    leaks
}

/// Whether `position` is, within `tolerance` Web Mercator metres, the centre of the H3 cell
/// of resolution 6 to 10 that holds it.
fn is_h3_centre(position: (f64, f64), tolerance: f64) -> bool {
    let Ok(at) = h3o::LatLng::new(position.1, position.0) else {
        return false;
    };
    (6..=10u8).any(|r| {
        let cell = at.to_cell(h3o::Resolution::try_from(r).unwrap());
        let centre = h3o::LatLng::from(cell);
        let (cx, cy) = mercator(centre.lng(), centre.lat());
        let (px, py) = mercator(position.0, position.1);
        (cx - px).abs() <= tolerance && (cy - py).abs() <= tolerance
    })
}

/// A small deterministic generator (no dependency on a seed format).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` positions inside the district spanning longitudes `west..west + 0.1`, away from its
/// borders and at least 10 m from the centre of their H3 cell of resolution 10 (so that a
/// hexagon's centre on the map is never mistaken for an exact position).
fn positions(rng: &mut Lcg, west: f64, n: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let lon = west + 0.001 + rng.next() * 0.098;
        let lat = 48.001 + rng.next() * 0.098;
        let lon = (lon * 1e6).round() / 1e6;
        let lat = (lat * 1e6).round() / 1e6;
        if (lat - 48.05).abs() < 0.001 {
            continue;
        }
        let cell = h3o::LatLng::new(lat, lon)
            .unwrap()
            .to_cell(h3o::Resolution::Ten);
        let centre = h3o::LatLng::from(cell);
        if metres((lon, lat), (centre.lng(), centre.lat())) >= 10.0 {
            out.push((lon, lat));
        }
    }
    out
}

fn tile_of(lon: f64, lat: f64, z: u32) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let r = lat.to_radians();
    let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    (x as u32, y as u32)
}

/// A request that must fail: method, path, JSON body, one header.
type ProvokedError = (
    Method,
    String,
    Option<Value>,
    Option<(&'static str, String)>,
);

struct Scan<'a> {
    app: &'a TestApp,
    secrets: Secrets,
    leaks: Vec<String>,
    scanned: usize,
}

impl Scan<'_> {
    async fn response(&mut self, name: &str, response: reqwest::Response) {
        let csv = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"text/csv"));
        let mut text = response.text().await.unwrap();
        scan_presence(name, &text, &mut self.leaks);
        if csv {
            scan_csv_counts(name, &text, &mut self.leaks);
            text = without_h3_centres(&text);
        } else if let Ok(mut value) = serde_json::from_str::<Value>(&text)
            && without_h3_outlines(&mut value)
        {
            text = value.to_string();
        }
        self.leaks.extend(scan_text(name, &text, &self.secrets));
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            scan_counts(name, &value, &mut self.leaks);
        }
        self.scanned += 1;
    }

    async fn get(&mut self, path: &str) {
        let response = self.app.get(path).await;
        self.response(&format!("GET {path}"), response).await;
    }

    async fn tile(&mut self, slug: &str, z: u32, x: u32, y: u32) {
        let path = format!("/tiles/{slug}/{z}/{x}/{y}.mvt");
        let response = self.app.get(&path).await;
        match response.status() {
            StatusCode::NO_CONTENT => {}
            StatusCode::OK => {
                let bytes = response.bytes().await.unwrap();
                self.leaks
                    .extend(scan_tile(&path, z, x, y, &bytes, &self.secrets));
                self.scanned += 1;
            }
            other => panic!("{path}: {other}"),
        }
    }
}

#[tokio::test]
async fn no_public_response_holds_a_position_free_text_id_token_or_small_count() {
    let app = TestApp::spawn().await;
    let mut form = test_form();
    form["fields"][1]["public"] = json!(true);
    assert_eq!(form["fields"][1]["key"], "connection");
    let settings = json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": K}});
    app.open_campaign("scan", settings.clone()).await;
    let mut pre = settings.clone();
    pre["moderation"] = json!("pre");
    app.open_campaign("scan-pre", pre).await;

    let mut rng = Lcg(20_261_126);
    // West 23 (one of them hidden later), middle 3, east 3 (one erased later): 1 to 4 points
    // in two districts, and one pending in the pre-moderated campaign.
    let mut plan: Vec<(&str, (f64, f64))> = Vec::new();
    for (west, n) in [(2.0, 23), (2.1, 3), (2.2, 3)] {
        plan.extend(
            positions(&mut rng, west, n)
                .into_iter()
                .map(|p| ("scan", p)),
        );
    }
    plan.extend(
        positions(&mut rng, 2.0, 1)
            .into_iter()
            .map(|p| ("scan-pre", p)),
    );
    let mut secrets = Secrets::default();
    let mut receipts = Vec::new();
    for (i, (slug, (lon, lat))) in plan.iter().enumerate() {
        let mut a = answers();
        a["comment"] = json!(format!("privnote-{i:03}"));
        a["connection"] = json!(if i % 3 == 0 { "none" } else { "adsl" });
        let response = app.submit(slug, *lon, *lat, a.clone()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let receipt: Value = response.json().await.unwrap();
        secrets.points.push((*lon, *lat));
        secrets
            .texts
            .push(a["comment"].as_str().unwrap().to_owned());
        secrets.ids.push(receipt["id"].as_str().unwrap().to_owned());
        secrets
            .tokens
            .push(receipt["edit_token"].as_str().unwrap().to_owned());
        receipts.push(receipt);
    }
    assert_eq!(receipts.last().unwrap()["status"], "pending");
    let moderator = app.staff_token(Role::Moderator).await;
    let hidden = app
        .request_as(
            Some(&moderator),
            Method::POST,
            &format!(
                "/api/v1/moderation/campaigns/scan/submissions/{}/decision",
                secrets.ids[0]
            ),
            Some(&json!({"action": "hide", "reason": "test"})),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    let erased = &receipts[28];
    let response = app
        .client
        .delete(app.url(&format!(
            "/api/v1/campaigns/scan/submissions/{}",
            erased["id"].as_str().unwrap()
        )))
        .header("X-Edit-Token", erased["edit_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let counts = app.counts("scan").await;
    assert_eq!(counts["west"], Some(22));
    assert_eq!(
        (counts["middle"], counts["east"]),
        (None, None),
        "3 and 2: withheld"
    );
    // Households on file, so that every rate is scanned: a rate of a withheld count would be
    // the count itself (east has one household: its rate would be its count × 1,000).
    let households = app
        .request_as(
            Some(&app.admin_token),
            Method::PUT,
            "/api/v1/admin/campaigns/scan/households",
            None,
        )
        .await;
    assert_eq!(
        households.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "an empty file is refused"
    );
    let households = app
        .client
        .put(app.url("/api/v1/admin/campaigns/scan/households"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body("code;households\nwest;1000\nmiddle;3\neast;1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(households.status(), StatusCode::OK);
    // Released twice (the second, empty), so that every estimate is scanned as published.
    for slug in ["scan", "scan-pre"] {
        app.release(slug).await;
        app.release(slug).await;
    }

    let mut scan = Scan {
        app: &app,
        secrets,
        leaks: Vec::new(),
        scanned: 0,
    };
    for slug in ["scan", "scan-pre"] {
        for path in PUBLIC_PATHS {
            let path = path.replace("{slug}", slug);
            // The API must answer (a 422 would leave a route unscanned); the widget's files
            // exist once it is built, which `make test` does before these tests.
            if path.starts_with("/api/") || path.starts_with("/tiles/") {
                let status = scan.app.get(&path).await.status();
                assert_eq!(status, StatusCode::OK, "{path}");
            }
            scan.get(&path).await;
        }
    }
    // Tiles: every tile over the area up to zoom 14, and the tiles holding each point beyond.
    for z in [0, 3, 6, 8, 10, 11, 12, 13, 14] {
        let (x0, y0) = tile_of(2.0, 48.1, z);
        let (x1, y1) = tile_of(2.3, 48.0, z);
        for x in x0..=x1 {
            for y in y0..=y1 {
                scan.tile("scan", z, x, y).await;
                if z == 14 {
                    scan.tile("scan-pre", z, x, y).await;
                }
            }
        }
    }
    let points = scan.secrets.points.clone();
    for z in [15, 16, 17, 18, 20, 22] {
        let mut seen = std::collections::BTreeSet::new();
        for &(lon, lat) in &points {
            let (x, y) = tile_of(lon, lat, z);
            if seen.insert((x, y)) {
                scan.tile("scan", z, x, y).await;
            }
        }
    }
    // Every error a member of the public can provoke.
    let real_id = scan.secrets.ids[5].clone();
    let errors: Vec<ProvokedError> = vec![
        (Method::GET, "/api/v1/campaigns/nope".into(), None, None),
        (
            Method::GET,
            "/api/v1/campaigns/scan/nothing".into(),
            None,
            None,
        ),
        (Method::GET, "/tiles/scan/23/0/0.mvt".into(), None, None),
        (Method::GET, "/tiles/scan/1/0/0.png".into(), None, None),
        (Method::GET, "/tiles/scan.xml".into(), None, None),
        (Method::PUT, "/api/v1/campaigns/scan".into(), None, None),
        (
            Method::GET,
            "/api/v1/admin/campaigns/scan".into(),
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v1/moderation/campaigns/scan/queue".into(),
            None,
            None,
        ),
        (
            Method::POST,
            "/api/v1/campaigns/scan/submissions".into(),
            Some(
                json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [9.0, 9.0]}, "properties": answers()}),
            ),
            None,
        ),
        (
            Method::POST,
            "/api/v1/campaigns/scan/submissions".into(),
            Some(
                json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.05, 48.05]}, "properties": {"comment": "x".repeat(50)}}),
            ),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/campaigns/scan/submissions/{real_id}"),
            None,
            Some(("X-Edit-Token", "wrong".to_owned())),
        ),
        (
            Method::DELETE,
            format!("/api/v1/campaigns/scan/submissions/{real_id}"),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/campaigns/scan/submissions/0192f0c4-7d3e-7a51-9c1d-3b0e6f6a8d21".into(),
            None,
            Some(("X-Edit-Token", "wrong".to_owned())),
        ),
    ];
    for (method, path, body, header) in errors {
        let mut request = app.client.request(method.clone(), app.url(&path));
        if let Some(body) = &body {
            request = request.json(body);
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_client_error(),
            "{method} {path}: {}",
            response.status()
        );
        scan.response(&format!("{method} {path}"), response).await;
    }
    // A reused idempotency key and a malformed body.
    for body in [
        json!({"type": "Feature"}),
        json!({"type": "Feature", "x": 1}),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/campaigns/scan/submissions"))
            .header("Idempotency-Key", "scan-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        scan.response("POST with Idempotency-Key", response).await;
    }
    let response = app
        .client
        .post(app.url("/api/v1/campaigns/scan/submissions"))
        .header("content-type", "application/json")
        .body("{\"type\": ")
        .send()
        .await
        .unwrap();
    scan.response("POST malformed JSON", response).await;

    assert!(scan.scanned > 60, "only {} responses scanned", scan.scanned);
    assert!(
        scan.leaks.is_empty(),
        "{} leaks:\n{}",
        scan.leaks.len(),
        scan.leaks.join("\n")
    );
}

#[test]
fn the_scan_catches_each_kind_of_leak() {
    let secrets = Secrets {
        points: vec![(2.012_345_6, 48.076_543_2)],
        texts: vec!["privnote-007".into()],
        ids: vec!["0192f0c4-7d3e-7a51-9c1d-3b0e6f6a8d21".into()],
        tokens: vec!["tOkEn_secret_43_chars".into()],
    };
    let clean = r#"{"bounds": [2.0, 48.0, 2.3, 48.1], "share": 0.5556, "count": 22, "center": [2.15, 48.05, 12]}"#;
    assert!(scan_text("clean", clean, &secrets).is_empty());
    let mut counts = Vec::new();
    scan_counts("clean", &serde_json::from_str(clean).unwrap(), &mut counts);
    assert!(counts.is_empty());

    let (x, y) = mercator(2.012_345_6, 48.076_543_2);
    for leaky in [
        r#"{"coordinates": [2.0123456, 48.0765432]}"#.to_owned(),
        r#"{"lat": 48.0765, "lon": 2.0123}"#.to_owned(),
        "near -> 48.07654,2.01235 <-".to_owned(),
        format!("{{\"x\": {x:.2}, \"y\": {y:.2}}}"),
        r#"{"detail": "comment PRIVNOTE-007 is too long"}"#.to_owned(),
        "id 0192f0c4-7d3e-7a51-9c1d-3b0e6f6a8d21".to_owned(),
        "id 0192f0c47d3e7a519c1d3b0e6f6a8d21".to_owned(),
        "edit tOkEn_secret_43_chars".to_owned(),
    ] {
        assert!(
            !scan_text("leaky", &leaky, &secrets).is_empty(),
            "not caught: {leaky}"
        );
    }
    let mut small = Vec::new();
    scan_counts(
        "small",
        &json!({"features": [{"properties": {"count": 3, "connection=adsl": 2}}]}),
        &mut small,
    );
    assert_eq!(small.len(), 2);
    let mut small_csv = Vec::new();
    scan_csv_counts(
        "csv",
        "code,count,connection=adsl\r\nwest,12,3\r\n",
        &mut small_csv,
    );
    scan_csv_counts("excel", "\u{feff}code;count\r\nwest;4\r\n", &mut small_csv);
    assert_eq!(small_csv.len(), 2, "{small_csv:?}");

    // A rate beside a withheld count (it would tell the count, with the public households).
    let mut rates = Vec::new();
    scan_counts(
        "rate",
        &json!({"features": [{"properties": {"count": null, "withheld": true, "households": 1, "per_1000_households": 3000.0}}]}),
        &mut rates,
    );
    scan_csv_counts(
        "rate-csv",
        "code,count,withheld,households,per_1000_households\r\neast,,true,1,3000.0\r\n",
        &mut rates,
    );
    assert_eq!(rates.len(), 2, "{rates:?}");
    let mut fine = Vec::new();
    scan_counts(
        "rate",
        &json!({"features": [{"properties": {"count": 22, "withheld": false, "households": 1000, "per_1000_households": 22.0}},
                             {"properties": {"count": null, "withheld": true, "households": 1, "per_1000_households": null}}]}),
        &mut fine,
    );
    scan_csv_counts(
        "rate-csv",
        "code,count,withheld,households,per_1000_households\r\nwest,22,false,1000,22.0\r\neast,,true,1,\r\n",
        &mut fine,
    );
    assert!(fine.is_empty(), "{fine:?}");

    // A withheld place listed at all, in CSV or GeoJSON; a withheld district is no leak.
    let mut presence = Vec::new();
    scan_presence(
        "csv",
        "h3,resolution,districts,count,withheld,lon,lat\r\n8a1fb46622dffff,10,west,,true,2.01,48.07\r\n",
        &mut presence,
    );
    scan_presence(
        "geojson",
        r#"{"features": [{"properties": {"h3": "8a1fb46622dffff", "count": null, "withheld": true}}]}"#,
        &mut presence,
    );
    assert_eq!(presence.len(), 2, "{presence:?}");
    let mut none = Vec::new();
    scan_presence(
        "districts",
        r#"{"features": [{"properties": {"code": "west", "count": null, "withheld": true}}]}"#,
        &mut none,
    );
    scan_presence(
        "csv",
        "code,name,count,withheld\r\nwest,West,,true\r\n",
        &mut none,
    );
    assert!(none.is_empty(), "{none:?}");

    // A tile with a demand point at the exact position, and a district count of 2.
    let (lon, lat) = secrets.points[0];
    let z = 20;
    let (tx, ty) = tile_of(lon, lat, z);
    let size = 2.0 * HALF_WORLD / f64::from(1u32 << z);
    let px = ((x + HALF_WORLD) / size - f64::from(tx)) * 4096.0;
    let py = ((HALF_WORLD - y) / size - f64::from(ty)) * 4096.0;
    let tile = exact_point_tile(px.round() as u32, py.round() as u32);
    let leaks = scan_tile("tile", z, tx, ty, &tile, &secrets);
    assert!(
        leaks.iter().any(|l| l.contains("exact position")),
        "{leaks:?}"
    );
    assert!(leaks.iter().any(|l| l.contains("below k")), "{leaks:?}");
}

/// A hand-encoded MVT (protobuf) with a `districts` layer of one point feature whose `count`
/// is 2, at tile pixel (px, py): the smallest tile that the scan must refuse.
fn exact_point_tile(px: u32, py: u32) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(tag: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(tag, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
    // Feature: tags [0, 0], type POINT, geometry MoveTo(1) px, py.
    let mut tags = Vec::new();
    varint(0, &mut tags);
    varint(0, &mut tags);
    let mut geometry = Vec::new();
    varint(9, &mut geometry);
    varint(zigzag(i64::from(px)), &mut geometry);
    varint(zigzag(i64::from(py)), &mut geometry);
    let mut feature = Vec::new();
    field(0x12, &tags, &mut feature);
    feature.extend_from_slice(&[0x18, 1]);
    field(0x22, &geometry, &mut feature);
    let mut value = Vec::new();
    value.extend_from_slice(&[0x20, 2]); // int_value = 2
    let mut layer = Vec::new();
    layer.extend_from_slice(&[0x78, 2]); // version 2
    field(0x0a, b"districts", &mut layer);
    field(0x12, &feature, &mut layer);
    field(0x1a, b"count", &mut layer);
    field(0x22, &value, &mut layer);
    layer.extend_from_slice(&[0x28]);
    varint(4096, &mut layer);
    let mut tile = Vec::new();
    field(0x1a, &layer, &mut tile);
    tile
}
