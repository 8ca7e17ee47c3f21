//! The self-hosted basemap: tiles read from a PMTiles file written here (with the `pmtiles`
//! crate's writer, from bytes the test knows), the demo archive built from the repository's
//! data (decoded with `mvt-reader`), the style, and glyph ranges (decoded as protobuf) made
//! from the machine's Noto fonts.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use civicmap::basemap::Archive;
use pbf_font_tools::prost::Message;
use pmtiles::{Compression, PmTilesWriter, TileCoord, TileType};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, test_config};

/// Two tiles, at 1/1/0 and 2/2/1, of zooms 0 to 2; stored gzip-compressed (the writer's
/// default for vector tiles) unless `compression` says otherwise.
pub(crate) fn write_archive(path: &Path, compression: Compression) -> [Vec<u8>; 2] {
    let tiles = [
        b"first tile: not parsed by the server, passed on".to_vec(),
        vec![7u8; 3000],
    ];
    let file = std::fs::File::create(path).unwrap();
    let mut writer = PmTilesWriter::new(TileType::Mvt)
        .tile_compression(compression)
        .min_zoom(0)
        .max_zoom(2)
        .bounds(0.0, 0.0, 90.0, 66.5)
        .create(file)
        .unwrap();
    writer
        .add_tile(TileCoord::new(1, 1, 0).unwrap(), &tiles[0])
        .unwrap();
    writer
        .add_tile(TileCoord::new(2, 2, 1).unwrap(), &tiles[1])
        .unwrap();
    writer.finalize().unwrap();
    tiles
}

async fn app_with(path: &Path) -> TestApp {
    let mut config = test_config();
    config.basemap = Some(Arc::new(Archive::open(path).await.unwrap()));
    TestApp::spawn_with(config).await
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn a_tile_is_passed_on_gzipped_or_decompressed_with_its_etag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("basemap.pmtiles");
    let tiles = write_archive(&path, Compression::Gzip);
    let app = app_with(&path).await;

    // A browser: the stored gzip as is.
    let response = get_with(&app, "/basemap/1/1/0.mvt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-type"],
        "application/vnd.mapbox-vector-tile"
    );
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["vary"], "accept-encoding");
    assert_eq!(headers["cache-control"], "public, max-age=86400");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with("-1-1-0\""),
        "{etag}"
    );
    // reqwest is built without gzip support here: the body is the bytes on the wire.
    let body = response.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");
    assert_eq!(gunzip(&body), tiles[0]);

    // A client without gzip: the tile decompressed, without Content-Encoding.
    let response = get_with(&app, "/basemap/2/2/1.pbf", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-encoding").is_none());
    assert_eq!(response.bytes().await.unwrap().to_vec(), tiles[1]);

    // Revalidation: 304 with the same ETag, without a body.
    let response = get_with(
        &app,
        "/basemap/1/1/0.mvt",
        &[("if-none-match", &etag), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
    assert!(response.bytes().await.unwrap().is_empty());
    // Another tile has another validator.
    let other = get_with(&app, "/basemap/2/2/1.mvt", &[("if-none-match", &etag)]).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_ne!(other.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn an_uncompressed_archive_is_served_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.pmtiles");
    let tiles = write_archive(&path, Compression::None);
    let app = app_with(&path).await;
    let response = get_with(&app, "/basemap/1/1/0.mvt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-encoding").is_none());
    assert_eq!(response.bytes().await.unwrap().to_vec(), tiles[0]);
}

#[tokio::test]
async fn absent_tiles_are_204_and_zooms_outside_the_file_404_and_bad_paths_400() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("basemap.pmtiles");
    write_archive(&path, Compression::Gzip);
    let app = app_with(&path).await;

    // Inside the zooms, no tile there: nothing to draw.
    for empty in ["/basemap/0/0/0.mvt", "/basemap/2/0/3.mvt"] {
        let response = app.get(empty).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{empty}");
        assert!(response.headers().get("etag").is_some());
    }
    // Beyond the file's zooms.
    let p = problem(app.get("/basemap/3/0/0.mvt").await, StatusCode::NOT_FOUND).await;
    assert_eq!(p["detail"], "the basemap has zooms 0 to 2, not 3");
    // Out of range, not numbers, huge: 400 naming what was wrong, never a 5xx.
    let p = problem(app.get("/basemap/2/4/0.mvt").await, StatusCode::BAD_REQUEST).await;
    assert!(p["detail"].as_str().unwrap().contains("x=4"), "{p}");
    let p = problem(
        app.get("/basemap/99/0/0.mvt").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().starts_with("zoom must be"),
        "{p}"
    );
    let p = problem(
        app.get("/basemap/1/-1/0.mvt").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(p["detail"], "x must be a whole number, got `-1`");
    let huge = format!("/basemap/1/0/{}.mvt", u64::MAX);
    let p = problem(app.get(&huge).await, StatusCode::BAD_REQUEST).await;
    assert!(
        p["detail"].as_str().unwrap().starts_with("y must be"),
        "{p}"
    );
    // Without the extension, or another one.
    let p = problem(app.get("/basemap/1/1/0.png").await, StatusCode::NOT_FOUND).await;
    assert!(
        p["detail"].as_str().unwrap().contains("tiles end in .mvt"),
        "{p}"
    );
    problem(app.get("/basemap/1/1").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn without_a_basemap_its_routes_say_how_to_serve_one() {
    let app = TestApp::spawn().await;
    for path in ["/basemap/0/0/0.mvt", "/basemap.json", "/basemap/style.json"] {
        let p = problem(app.get(path).await, StatusCode::NOT_FOUND).await;
        assert!(
            p["detail"].as_str().unwrap().contains("--basemap"),
            "{path}: {p}"
        );
    }
    // The public campaign then names no basemap: the widget draws a plain background.
    app.open_campaign("plain", json!({})).await;
    let campaign: Value = app
        .get("/api/v1/campaigns/plain")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(campaign["basemap"], Value::Null);
}

#[tokio::test]
async fn the_demo_basemap_has_synthetic_streets_and_the_district_names_in_protomaps_layers() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.pmtiles");
    civicmap::demo::basemap(&app.db, &path).await.unwrap();
    let app = app_with(&path).await;

    // Nanterre's centre at zoom 15 (tile computed by hand from 2.2066, 48.8924).
    let response = app.get("/basemap/15/16584/11267.mvt").await;
    assert_eq!(response.status(), StatusCode::OK);
    let tile = response.bytes().await.unwrap().to_vec();
    let reader = mvt_reader::Reader::new(tile).expect("a valid MVT");
    let layers = reader.get_layer_names().unwrap();
    for layer in ["earth", "roads", "buildings"] {
        assert!(layers.iter().any(|l| l == layer), "{layers:?}");
    }
    let roads = layers.iter().position(|l| l == "roads").unwrap();
    let names: Vec<String> = reader
        .get_features(roads)
        .unwrap()
        .iter()
        .filter_map(|f| match f.properties.as_ref()?.get("name")? {
            mvt_reader::feature::Value::String(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert!(!names.is_empty());
    for name in &names {
        assert!(
            name.starts_with("Rue Synthétique n°") || name.starts_with("Avenue Synthétique n°"),
            "{name}"
        );
    }
    // The district names, further out.
    let (x, y) = crate::tiles::tile_of(2.2066, 48.8924, 12);
    let tile = app
        .get(&format!("/basemap/12/{x}/{y}.mvt"))
        .await
        .bytes()
        .await
        .unwrap();
    let reader = mvt_reader::Reader::new(tile.to_vec()).unwrap();
    let layers = reader.get_layer_names().unwrap();
    let places = layers.iter().position(|l| l == "places").unwrap();
    let places: Vec<String> = reader
        .get_features(places)
        .unwrap()
        .iter()
        .filter_map(|f| match f.properties.as_ref()?.get("name")? {
            mvt_reader::feature::Value::String(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert!(places.iter().any(|p| p == "Nanterre"), "{places:?}");
    assert!(places.iter().any(|p| p == "Université"), "{places:?}");

    // The TileJSON lists the layers.
    let tilejson: Value = app.get("/basemap.json").await.json().await.unwrap();
    assert_eq!(tilejson["maxzoom"], 15);
    assert_eq!(
        tilejson["tiles"][0],
        app.url("/basemap/{z}/{x}/{y}.mvt").as_str()
    );
    assert_eq!(
        tilejson["attribution"],
        "© OpenStreetMap contributors, ODbL"
    );
    let ids: Vec<&str> = tilejson["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["earth", "landuse", "roads", "buildings", "places"]);
}

#[tokio::test]
async fn the_style_loads_everything_from_this_server_in_fonts_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("basemap.pmtiles");
    write_archive(&path, Compression::Gzip);
    let app = app_with(&path).await;
    let response = app.get("/basemap/style.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let style: Value = response.json().await.unwrap();
    assert_eq!(style["version"], 8);
    let source = &style["sources"]["basemap"];
    assert_eq!(source["type"], "vector");
    assert_eq!(
        source["tiles"][0],
        app.url("/basemap/{z}/{x}/{y}.mvt").as_str()
    );
    assert_eq!(source["maxzoom"], 2);
    assert_eq!(source["attribution"], "© OpenStreetMap contributors, ODbL");
    assert_eq!(
        style["glyphs"],
        app.url("/basemap/fonts/{fontstack}/{range}.pbf").as_str()
    );
    assert_eq!(style["sources"].as_object().unwrap().len(), 1);
    assert!(style.get("sprite").is_none(), "no icons, no sprite");
    let protomaps = [
        "earth",
        "landcover",
        "landuse",
        "water",
        "roads",
        "buildings",
        "boundaries",
        "places",
        "pois",
        "transit",
    ];
    let fonts = civicmap::basemap::glyphs::Fonts::new(civicmap::basemap::glyphs::DEFAULT_FONTS_DIR)
        .names()
        .await;
    for layer in style["layers"].as_array().unwrap() {
        if layer["type"] == "background" {
            continue;
        }
        assert_eq!(layer["source"], "basemap", "{layer}");
        let source_layer = layer["source-layer"].as_str().unwrap();
        assert!(protomaps.contains(&source_layer), "{source_layer}");
        for font in layer["layout"]["text-font"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(
                fonts.iter().any(|f| f == font.as_str().unwrap()),
                "{font} is not in {} (apt-get install fonts-noto-core)",
                civicmap::basemap::glyphs::DEFAULT_FONTS_DIR
            );
        }
    }

    // A campaign without a basemap of its own shows this one; one with its own keeps it.
    app.open_campaign("streets", json!({})).await;
    let campaign: Value = app
        .get("/api/v1/campaigns/streets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        campaign["basemap"],
        json!({"type": "style", "url": app.url("/basemap/style.json")})
    );
    let own = json!({"type": "style", "url": "https://tiles.example.org/style.json"});
    app.open_campaign("own", json!({ "basemap": own })).await;
    let campaign: Value = app.get("/api/v1/campaigns/own").await.json().await.unwrap();
    assert_eq!(campaign["basemap"], own);
    // Staff see the campaign's own setting, not the server's.
    let staff: Value = app
        .admin(
            reqwest::Method::GET,
            "/api/v1/admin/campaigns/streets",
            &Value::Null,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(staff["basemap"], Value::Null);
}

#[tokio::test]
async fn glyph_ranges_are_made_from_the_machines_fonts_and_decode() {
    let app = TestApp::spawn().await;
    let path = "/basemap/fonts/Noto%20Sans%20Regular/0-255.pbf";
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let glyphs = pbf_font_tools::Glyphs::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(glyphs.stacks.len(), 1);
    let stack = &glyphs.stacks[0];
    assert_eq!(stack.name, "Noto Sans Regular");
    for c in "Nanterre".chars() {
        let glyph = stack
            .glyphs
            .iter()
            .find(|g| g.id == u32::from(c))
            .unwrap_or_else(|| panic!("no glyph for {c}"));
        assert!(glyph.advance > 0, "{c}");
        assert!(glyph.bitmap.as_ref().is_some_and(|b| !b.is_empty()), "{c}");
    }
    assert!(stack.glyphs.iter().all(|g| g.id <= 255));
    // The same again: 304 on its ETag.
    let response = get_with(&app, path, &[("if-none-match", &etag)]).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);

    // Accented letters of street names (é, è, ç) are in the first range; "œ" in the next.
    let latin = app
        .get("/basemap/fonts/Noto%20Sans%20Bold,Noto%20Sans%20Regular/256-511.pbf")
        .await;
    assert_eq!(latin.status(), StatusCode::OK);
    let glyphs = pbf_font_tools::Glyphs::decode(latin.bytes().await.unwrap()).unwrap();
    assert!(
        glyphs.stacks[0]
            .glyphs
            .iter()
            .any(|g| g.id == u32::from('œ'))
    );
    // A stack with a font the machine does not have: the ones it has.
    let mixed = app
        .get("/basemap/fonts/Open%20Sans%20Regular,Noto%20Sans%20Italic/0-255.pbf")
        .await;
    assert_eq!(mixed.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_glyph_requests_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let p = problem(
        app.get("/basemap/fonts/Comic%20Sans%20MS/0-255.pbf").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("no font of `Comic Sans MS` is in"),
        "{detail}"
    );
    for (range, status) in [
        ("1-256.pbf", StatusCode::BAD_REQUEST),
        ("0-511.pbf", StatusCode::BAD_REQUEST),
        ("65536-65791.pbf", StatusCode::BAD_REQUEST),
        ("0-255.png", StatusCode::NOT_FOUND),
        ("a-b.pbf", StatusCode::BAD_REQUEST),
    ] {
        let path = format!("/basemap/fonts/Noto%20Sans%20Regular/{range}");
        let p = problem(app.get(&path).await, status).await;
        assert!(
            p["detail"].as_str().unwrap().contains("range") || status == StatusCode::NOT_FOUND,
            "{range}: {p}"
        );
    }
    let long = format!("/basemap/fonts/{}/0-255.pbf", "A".repeat(300));
    let p = problem(app.get(&long).await, StatusCode::BAD_REQUEST).await;
    assert!(p["detail"].as_str().unwrap().contains("font stack"), "{p}");
    problem(
        app.get("/basemap/fonts/%20,%20/0-255.pbf").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn the_basemap_is_served_without_the_database() {
    // Nothing of the basemap reads the database: with it gone, tiles, style and glyphs are
    // still served (so a basemap request cannot reveal anything about households).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("basemap.pmtiles");
    write_archive(&path, Compression::Gzip);
    let app = app_with(&path).await;
    app.db.close().await;
    for path in [
        "/basemap/1/1/0.mvt",
        "/basemap.json",
        "/basemap/style.json",
        "/basemap/fonts/Noto%20Sans%20Regular/0-255.pbf",
    ] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn files_that_are_not_vector_pmtiles_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.pmtiles");
    std::fs::write(&text, "not an archive").unwrap();
    let error = Archive::open(&text).await.unwrap_err().to_string();
    assert!(error.contains("as a PMTiles v3 archive"), "{error}");
    let missing = Archive::open(&dir.path().join("missing.pmtiles"))
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("missing.pmtiles"), "{missing}");
    let raster = dir.path().join("raster.pmtiles");
    let mut writer = PmTilesWriter::new(TileType::Png)
        .create(std::fs::File::create(&raster).unwrap())
        .unwrap();
    writer
        .add_tile(TileCoord::new(0, 0, 0).unwrap(), b"png")
        .unwrap();
    writer.finalize().unwrap();
    let error = Archive::open(&raster).await.unwrap_err().to_string();
    assert!(error.contains("Png tiles"), "{error}");
}
