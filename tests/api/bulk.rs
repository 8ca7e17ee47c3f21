//! `civicmap import` and `civicmap export` run as the binary, and GDAL reading our files.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, civicmap, fresh_database, url_of};

async fn setup(slug: &str) -> (TestApp, String) {
    let (pool, options) = fresh_database().await;
    let url = url_of(&options);
    let app = TestApp::spawn_on(pool).await;
    let mut form = crate::helpers::test_form();
    form["fields"][1]["public"] = json!(true);
    app.open_campaign(
        slug,
        json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    (app, url)
}

async fn submissions(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn an_import_with_bad_rows_reports_each_and_imports_nothing() {
    let (app, url) = setup("paper").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("forms.csv");
    std::fs::write(
        &file,
        "longitude;latitude;foyers;connection;comment\n\
         2,05;48,05;2;adsl;\n\
         2.15;48.02;trois;adsl;\n\
         2.25;48.07;1;fibre;\n\
         abc;48.05;1;none;\n\
         2.06;48.06;;none;far too long a comment for the form\n\
         2.07;48.07;4;none;ok\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = civicmap(
        &url,
        &["import", "paper", path, "--map", "households=foyers"],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for expected in [
        "line 3: properties.households: `trois` is not a number",
        "line 4: properties.connection:",
        "line 5: geometry.coordinates: must be [longitude, latitude]",
        "line 6: properties.households: is required; properties.comment: must be at most 20 characters",
        "4 of 6 rows refused; nothing was imported",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
    assert!(
        !stderr.contains("line 2:") && !stderr.contains("line 7:"),
        "{stderr}"
    );
    assert_eq!(submissions(&app).await, 0);

    // A row inside the form's rules but outside the campaign's area is refused at storing,
    // with its line, and nothing stays either.
    std::fs::write(
        &file,
        "lon,lat,households,connection\n2.05,48.05,2,adsl\n2.5,48.5,1,none\n",
    )
    .unwrap();
    let out = civicmap(&url, &["import", "paper", path]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("line 3: geometry: is outside the campaign's area"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(submissions(&app).await, 0);

    // Unknown columns and mappings are refused before anything is read.
    let out = civicmap(
        &url,
        &["import", "paper", path, "--map", "households=foyers"],
    );
    assert!(
        text(&out.stderr).contains("--map households=foyers: no column `foyers`"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_good_import_stores_and_counts_everything_and_the_cli_export_matches_the_api() {
    let (app, url) = setup("legacy").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("legacy.csv");
    let mut csv = String::from("lon,lat,households,connection,tenant,filled\n");
    // West 3 on 2026-01-05, middle 2 on 2026-01-06, east 1 on 2026-01-13.
    for (lon, lat, day) in [
        (2.01, 48.01, "2026-01-05"),
        (2.02, 48.02, "2026-01-05"),
        (2.03, 48.03, "2026-01-05"),
        (2.11, 48.01, "2026-01-06"),
        (2.12, 48.06, "2026-01-06"),
        (2.25, 48.05, "2026-01-13"),
    ] {
        csv.push_str(&format!("{lon},{lat},2,adsl,oui,{day}\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let out = civicmap(
        &url,
        &[
            "import",
            "legacy",
            file.to_str().unwrap(),
            "--created-at",
            "filled",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("6 rows imported into `legacy`"),
        "{}",
        text(&out.stdout)
    );
    // Not a terminal: a plain progress line, no bar.
    assert!(
        text(&out.stderr).contains("all 6 rows accepted; storing"),
        "{}",
        text(&out.stderr)
    );
    let counts = app.counts("legacy").await;
    assert_eq!(counts["west"], Some(3));
    assert_eq!(counts["middle"], Some(2));
    assert_eq!(counts["east"], Some(1));
    let tenant: Value = sqlx::query_scalar("SELECT answers FROM submissions LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tenant["tenant"], true);
    let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'import'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(audit, 1);

    // The time series follows the forms' dates: a planner's, exact, per day of arrival.
    let planner =
        civicmap::auth::create_token(&app.db, "planner", civicmap::auth::Role::Planner, None)
            .await
            .unwrap();
    let as_planner = |path: &'static str| {
        let (client, url, planner) = (app.client.clone(), app.url(path), planner.clone());
        async move {
            client
                .get(url)
                .bearer_auth(planner)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let series = as_planner("/api/v1/campaigns/legacy/timeseries.csv?interval=day").await;
    let rows: Vec<&str> = series.lines().collect();
    assert_eq!(rows[0], "period,count");
    assert!(
        rows.contains(&"2026-01-05,3") && rows.contains(&"2026-01-06,2"),
        "{series}"
    );
    assert!(
        rows.contains(&"2026-01-07,0"),
        "quiet days are rows too: {series}"
    );
    let weekly =
        as_planner("/api/v1/campaigns/legacy/timeseries.csv?interval=week&by=district").await;
    assert!(
        weekly.lines().any(|l| l == "2026-01-05,west,West,3"),
        "{weekly}"
    );
    assert!(
        weekly.lines().any(|l| l == "2026-01-12,east,East,1"),
        "{weekly}"
    );
    // The public's: one estimate per release, none before the first.
    let public = app
        .get("/api/v1/campaigns/legacy/timeseries.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        public.lines().collect::<Vec<_>>(),
        ["period,period_end,estimate,withheld"]
    );

    // A time window needs a planner token, and then counts only that window.
    let window = app
        .client
        .get(app.url("/api/v1/campaigns/legacy/aggregates.geojson?from=2026-01-06&to=2026-01-07"))
        .bearer_auth(&planner)
        .send()
        .await
        .unwrap();
    assert_eq!(window.status(), StatusCode::OK);
    let window: Value = window.json().await.unwrap();
    assert_eq!(window["total"]["count"], 2);

    // `civicmap export` writes the very file the API serves.
    for (query, args, name) in [
        (
            "by=district&breakdown=connection",
            vec!["--by", "district", "--breakdown", "connection"],
            "d.csv",
        ),
        ("by=h3:8&excel=1", vec!["--by", "h3:8", "--excel"], "h.csv"),
        (
            "by=h3:9&sum=households",
            vec!["--by", "h3:9", "--sum", "households"],
            "h.geojson",
        ),
    ] {
        let output = dir.path().join(name);
        let mut full = vec!["export", "legacy", "--output", output.to_str().unwrap()];
        full.extend(args);
        let out = civicmap(&url, &full);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let ext = if name.ends_with(".csv") {
            "csv"
        } else {
            "geojson"
        };
        // The command line is staff: the same exact figures as a planner's token gets.
        let api = app
            .client
            .get(app.url(&format!(
                "/api/v1/campaigns/legacy/aggregates.{ext}?{query}"
            )))
            .bearer_auth(&planner)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(std::fs::read(&output).unwrap(), api.to_vec(), "{query}");
    }
    // And the raw export, audited as the command line.
    let raw = dir.path().join("raw.csv");
    let out = civicmap(
        &url,
        &[
            "export",
            "legacy",
            "--raw",
            "--output",
            raw.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&raw).unwrap().lines().count(), 7);
    let actor: String =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'export.raw'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(actor, "command line");
    // Bad options: every one is named, as the API names them.
    let refused = civicmap(
        &url,
        &["export", "legacy", "--by", "h3:99", "--sum", "nope"],
    );
    assert!(!refused.status.success());
    let said = text(&refused.stderr);
    assert!(said.contains("2 fields are invalid"), "{said}");
    assert!(said.contains("by: ") && said.contains("sum: "), "{said}");
}

#[tokio::test]
async fn an_interrupted_import_leaves_nothing_behind() {
    let (app, url) = setup("killed").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    writeln!(out, "lon,lat,households,connection").unwrap();
    for i in 0..300_000u32 {
        let lon = 2.0 + f64::from(i % 3000) * 0.0001;
        let lat = 48.0 + f64::from(i / 3000) * 0.0009;
        writeln!(out, "{lon},{lat},1,adsl").unwrap();
    }
    drop(out);
    let mut child = Command::new(env!("CARGO_BIN_EXE_civicmap"))
        .args(["import", "killed", file.to_str().unwrap()])
        .env("DATABASE_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it once it has started storing (rows are on their way to the database).
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let storing = line.contains("accepted; storing");
            seen.push(line);
            if storing {
                break;
            }
        }
        seen
    });
    let seen = tokio::task::spawn_blocking(move || lines.join().unwrap())
        .await
        .unwrap();
    assert!(
        seen.iter().any(|l| l.contains("accepted; storing")),
        "{seen:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The server notices the closed connection and rolls the transaction back.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(submissions(&app).await, 0);
    assert_eq!(app.counts("killed").await["total"], None);
    let counted: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(published), 0)::bigint FROM district_counts")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(counted, 0);
}

/// Runs a GDAL tool; the tests need Debian's gdal-bin (installed by `make test`).
fn gdal(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool} is needed (Debian's gdal-bin, installed by `make test`): {e}")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn feature_count(info: &str) -> usize {
    info.lines()
        .find_map(|l| l.strip_prefix("Feature Count: "))
        .unwrap_or_else(|| panic!("no feature count in {info}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn gdal_reads_the_geojson_and_csv_exports() {
    let (app, _) = setup("gdal").await;
    let points = [
        (2.01, 48.01),
        (2.02, 48.09),
        (2.11, 48.01),
        (2.15, 48.07),
        (2.25, 48.05),
        (2.26, 48.02),
        (2.27, 48.03),
    ];
    for (lon, lat) in points {
        assert_eq!(
            app.submit("gdal", lon, lat, crate::helpers::answers())
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let planner = civicmap::auth::create_token(&app.db, "gis", civicmap::auth::Role::Planner, None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fetch = async |path: &str, name: &str| {
        let bytes = app
            .client
            .get(app.url(path))
            .bearer_auth(&planner)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        file.to_str().unwrap().to_owned()
    };

    // Districts as GeoJSON: 3 polygons with their fields, and "outside every district"
    // (always listed, with no geometry).
    let districts = fetch(
        "/api/v1/campaigns/gdal/aggregates.geojson?breakdown=connection",
        "districts.geojson",
    )
    .await;
    let info = gdal("ogrinfo", &["-ro", "-al", "-so", &districts]);
    assert_eq!(feature_count(&info), 4, "{info}");
    assert!(
        info.contains("Geometry: Polygon") || info.contains("Geometry: Multi Polygon"),
        "{info}"
    );
    for field in [
        "code: String",
        "count: Integer",
        "withheld: Integer(Boolean)",
        "connection=adsl: Integer",
    ] {
        assert!(info.contains(field), "{field} not in {info}");
    }
    // H3 cells as GeoJSON, converted to a GeoPackage and read back.
    let cells = fetch(
        "/api/v1/campaigns/gdal/aggregates.geojson?by=h3:9",
        "cells.geojson",
    )
    .await;
    let expected_cells = serde_json::from_str::<Value>(&std::fs::read_to_string(&cells).unwrap())
        .unwrap()["features"]
        .as_array()
        .unwrap()
        .len();
    let gpkg = dir.path().join("cells.gpkg");
    gdal("ogr2ogr", &["-f", "GPKG", gpkg.to_str().unwrap(), &cells]);
    let info = gdal("ogrinfo", &["-ro", "-al", "-so", gpkg.to_str().unwrap()]);
    assert_eq!(feature_count(&info), expected_cells, "{info}");
    assert!(info.contains("h3: String"), "{info}");

    // CSV with its coordinate columns, as points.
    let csv = fetch("/api/v1/campaigns/gdal/aggregates.csv", "districts.csv").await;
    let open = [
        "-oo",
        "X_POSSIBLE_NAMES=lon",
        "-oo",
        "Y_POSSIBLE_NAMES=lat",
        "-oo",
        "AUTODETECT_TYPE=YES",
    ];
    let mut args = vec!["-ro", "-al", "-so"];
    args.extend(open);
    args.push(&csv);
    let info = gdal("ogrinfo", &args);
    assert_eq!(feature_count(&info), 4, "{info}");
    assert!(info.contains("Geometry: Point"), "{info}");
    assert!(info.contains("count: Integer"), "{info}");
    // The French-Excel flavour, with its separator.
    let excel = fetch(
        "/api/v1/campaigns/gdal/aggregates.csv?excel=1&by=h3:8",
        "excel.csv",
    )
    .await;
    let info = gdal(
        "ogrinfo",
        &[
            "-ro",
            "-al",
            "-so",
            "-oo",
            "SEPARATOR=SEMICOLON",
            "-oo",
            "X_POSSIBLE_NAMES=lon",
            "-oo",
            "Y_POSSIBLE_NAMES=lat",
            &excel,
        ],
    );
    assert!(
        info.contains("h3: String") && info.contains("Geometry: Point"),
        "{info}"
    );

    // The raw export: every point at its place.
    let raw = fetch("/api/v1/admin/campaigns/gdal/submissions.csv", "raw.csv").await;
    let mut args = vec!["-ro", "-al", "-so"];
    args.extend(open);
    args.push(&raw);
    let info = gdal("ogrinfo", &args);
    assert_eq!(feature_count(&info), points.len(), "{info}");
    let raw_geojson = fetch(
        "/api/v1/admin/campaigns/gdal/submissions.geojson",
        "raw.geojson",
    )
    .await;
    let gpkg = dir.path().join("raw.gpkg");
    gdal(
        "ogr2ogr",
        &["-f", "GPKG", gpkg.to_str().unwrap(), &raw_geojson],
    );
    let info = gdal("ogrinfo", &["-ro", "-al", "-so", gpkg.to_str().unwrap()]);
    assert_eq!(feature_count(&info), points.len(), "{info}");
    assert!(
        info.contains("Geometry: Point") && info.contains("households: Integer"),
        "{info}"
    );
}

#[tokio::test]
async fn imported_points_are_placed_as_the_api_places_them_even_on_borders() {
    let (app, url) = setup("placed").await;
    let mut form = crate::helpers::test_form();
    form["fields"][1]["public"] = json!(true);
    app.open_campaign(
        "placed-api",
        json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    // On shared borders, on corners, on the outer edge, on the middle district's inner seam.
    let points = [
        (2.1, 48.03),
        (2.2, 48.07),
        (2.1, 48.0),
        (2.2, 48.1),
        (2.0, 48.05),
        (2.3, 48.02),
        (2.15, 48.05),
        (2.12345, 48.1),
        (2.05, 48.05),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("borders.csv");
    let mut csv = String::from("lon,lat,households,connection\n");
    for (lon, lat) in points {
        csv.push_str(&format!("{lon},{lat},1,adsl\n"));
        let status = app
            .submit("placed-api", lon, lat, crate::helpers::answers())
            .await
            .status();
        assert_eq!(status, StatusCode::CREATED);
    }
    std::fs::write(&file, csv).unwrap();
    let out = civicmap(&url, &["import", "placed", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let imported = app.counts("placed").await;
    let submitted = app.counts("placed-api").await;
    assert_eq!(imported, submitted);
    assert_eq!(imported["west"], Some(4), "{imported:?}");
}
