//! The operator's report: its PDF, read back with poppler's `pdftotext`, shows the figures the
//! public API gives (per district: count, target, progress; the total; withheld where the API
//! withholds), the data version and the digest of the districts file; its ZIP holds the public
//! exports byte for byte. Only planners (and admins) get it.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{TestApp, answers, problem};

fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.pdf");
    std::fs::write(&file, pdf).unwrap();
    let output = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by scripts/setup.sh --browser)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn bytes(response: reqwest::Response) -> Vec<u8> {
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

/// A campaign with targets and households on file for West and Middle, k = `k`, and
/// contributions: 3 in West, 5 in Middle, 1 in East.
async fn campaign(app: &TestApp, slug: &str, k: i64) {
    app.open_campaign(
        slug,
        json!({"privacy": {"public_precision_m": 50, "min_count": k},
               "targets": {"west": 4, "middle": 10}}),
    )
    .await;
    let households = app
        .client
        .put(app.url(&format!("/api/v1/admin/campaigns/{slug}/households")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body("code,households\nwest,120\nmiddle,700\n")
        .send()
        .await
        .unwrap();
    assert_eq!(
        households.status(),
        StatusCode::OK,
        "{}",
        households.text().await.unwrap()
    );
    for (lon, n) in [(2.05, 3), (2.15, 5), (2.25, 1)] {
        for i in 0..n {
            app.contribute(slug, lon, 48.01 + 0.01 * f64::from(i), answers())
                .await;
        }
    }
}

/// The PDF's table line of district `name`: its words after the name.
fn table_line<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no table line for {name} in:\n{text}"));
    line.trim_start()[name.len()..].split_whitespace().collect()
}

#[tokio::test]
async fn the_reports_figures_are_the_apis_and_its_zip_holds_the_public_exports() {
    assert!(
        Command::new("pdftotext").arg("-v").output().is_ok(),
        "pdftotext is missing: `make test` installs poppler-utils (scripts/setup.sh --browser)"
    );
    let app = TestApp::spawn().await;
    let planner = app.staff_token(civicmap::auth::Role::Planner).await;
    for (slug, k) in [("report", 1), ("guarded", 3)] {
        campaign(&app, slug, k).await;
        let csv = bytes(
            app.get(&format!("/api/v1/campaigns/{slug}/aggregates.csv"))
                .await,
        )
        .await;
        let geojson: Value = app
            .get(&format!("/api/v1/campaigns/{slug}/aggregates.geojson"))
            .await
            .json()
            .await
            .unwrap();
        let weeks = bytes(
            app.get(&format!(
                "/api/v1/campaigns/{slug}/timeseries.csv?interval=week"
            ))
            .await,
        )
        .await;
        let id: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE slug = $1")
            .bind(slug)
            .fetch_one(&app.db)
            .await
            .unwrap();
        let (_, version) = civicmap::figures::versions(&app.db, id).await.unwrap();

        // The PDF, in English.
        let pdf = get_as(
            &app,
            &planner,
            &format!("/api/v1/admin/campaigns/{slug}/report.pdf?lang=en"),
        )
        .await;
        assert_eq!(pdf.headers()["content-type"], "application/pdf");
        assert_eq!(pdf.headers()["cache-control"], "private, no-store");
        let text = pdftotext(&bytes(pdf).await);
        assert!(
            text.contains(&format!("from version {version} of the campaign's data")),
            "{text}"
        );
        let digest = format!("{:x}", sha2::Sha256::digest(&csv));
        assert!(
            text.contains(&digest),
            "the digest of aggregates.csv: {text}"
        );
        for feature in geojson["features"].as_array().unwrap() {
            let p = &feature["properties"];
            // The API's name, "outside every district" included (the English report's too).
            let name = p["name"].as_str().unwrap();
            let words = table_line(&text, name);
            let expected_count = p["count"]
                .as_i64()
                .map_or("withheld".to_owned(), |c| c.to_string());
            let code = p["code"].as_str().unwrap();
            let mut expected: Vec<String> = Vec::new();
            if !code.is_empty() {
                expected.push(code.to_owned());
            }
            expected.push(expected_count);
            if let Some(households) = p["households"].as_i64() {
                expected.push(households.to_string());
            }
            if let Some(rate) = p["per_1000_households"].as_f64() {
                expected.push(format!("{rate:.1}"));
            }
            if let Some(target) = p["target"].as_i64() {
                expected.push(target.to_string());
            }
            if let Some(progress) = p["progress"].as_f64() {
                expected.push(format!("{:.1}", progress * 100.0));
                expected.push("%".to_owned());
            }
            assert_eq!(words, expected, "{slug}: the line of {name}");
        }
        let total = geojson["total"]["count"]
            .as_i64()
            .map_or("withheld".to_owned(), |c| c.to_string());
        assert_eq!(table_line(&text, "Campaign total"), vec![total.as_str()]);

        // In French too.
        let fr = get_as(
            &app,
            &planner,
            &format!("/api/v1/admin/campaigns/{slug}/report.pdf?lang=fr"),
        )
        .await;
        let fr = pdftotext(&bytes(fr).await);
        assert!(
            fr.contains("Contributions par quartier") && fr.contains("Méthode"),
            "{fr}"
        );
        assert_eq!(
            table_line(&fr, "Total de la campagne"),
            vec![total.replace("withheld", "masqué").as_str()]
        );

        // The ZIP: the public exports byte for byte, the PDF, a README with the digest.
        let zip = get_as(
            &app,
            &planner,
            &format!("/api/v1/admin/campaigns/{slug}/report.zip"),
        )
        .await;
        assert_eq!(zip.headers()["content-type"], "application/zip");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes(zip).await)).unwrap();
        let mut read = |name: &str| {
            let mut file = archive
                .by_name(name)
                .unwrap_or_else(|_| panic!("{name} in the ZIP"));
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut out).unwrap();
            out
        };
        assert_eq!(read(&format!("{slug}-districts.csv")), csv);
        assert_eq!(
            serde_json::from_slice::<Value>(&read(&format!("{slug}-districts.geojson"))).unwrap(),
            geojson
        );
        assert_eq!(read(&format!("{slug}-weeks.csv")), weeks);
        assert!(read(&format!("{slug}-report.pdf")).starts_with(b"%PDF-"));
        let readme = String::from_utf8(read("README.txt")).unwrap();
        assert!(
            readme.contains(&digest) && readme.contains(&version.to_string()),
            "{readme}"
        );
    }

    // With k = 3, East's single household is withheld, and nothing in the report gives it.
    let guarded = get_as(
        &app,
        &planner,
        "/api/v1/admin/campaigns/guarded/report.pdf?lang=en",
    )
    .await;
    let text = pdftotext(&bytes(guarded).await);
    assert_eq!(table_line(&text, "East"), vec!["east", "withheld"]);
}

#[tokio::test]
async fn the_report_is_for_planners_and_its_parameters_are_checked() {
    let app = TestApp::spawn().await;
    app.open_campaign("asked", json!({})).await;
    let path = "/api/v1/admin/campaigns/asked/report.pdf";
    let anonymous = app.get(path).await;
    problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let moderator = app.staff_token(civicmap::auth::Role::Moderator).await;
    problem(get_as(&app, &moderator, path).await, StatusCode::FORBIDDEN).await;
    let planner = app.staff_token(civicmap::auth::Role::Planner).await;
    let missing = get_as(&app, &planner, "/api/v1/admin/campaigns/nowhere/report.zip").await;
    problem(missing, StatusCode::NOT_FOUND).await;
    let bad = problem(
        get_as(&app, &planner, &format!("{path}?lang=de")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(bad.to_string().contains("lang"), "{bad}");
    let unknown = problem(
        get_as(&app, &planner, &format!("{path}?format=a3")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(unknown.to_string().contains("format"), "{unknown}");
    // An admin may; an empty campaign gives a report all the same.
    let empty = get_as(&app, &app.admin_token, path).await;
    assert_eq!(empty.status(), StatusCode::OK);
    let text = pdftotext(&empty.bytes().await.unwrap());
    assert!(text.contains("Total"), "{text}");
}
