//! Demand relative to the base: households per district imported from a CSV (every bad line
//! named), and contributions per 1,000 households beside the counts in the districts layer and
//! the exports, withheld with the count, so that rates and the public households never tell a
//! withheld count.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, problem, problem_fields};
use civicmap::auth::Role;

const K: i64 = 5;

async fn put_households(
    app: &TestApp,
    slug: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/admin/campaigns/{slug}/households")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn households_are_imported_and_every_bad_line_is_named() {
    let app = TestApp::spawn().await;
    app.open_campaign("homes", json!({})).await;

    let response = put_households(
        &app,
        "homes",
        "code;households\nwest;12,5\nnowhere;100\nmiddle;beaucoup\neast;-1\nwest;\"3 000\"\n",
    )
    .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        problem_fields(&body),
        ["line 2", "line 3", "line 4", "line 5"],
        "{body}"
    );
    let details: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert!(details[0].contains("two cells"), "{details:?}");
    assert!(
        details[1].contains("no district with code `nowhere`"),
        "{details:?}"
    );
    assert!(
        details[2].contains("`beaucoup` is not a whole number"),
        "{details:?}"
    );
    assert!(details[3].contains("between 0 and"), "{details:?}");
    // All or nothing: nothing was stored.
    let layer: Value = app
        .get("/api/v1/campaigns/homes/districts.geojson")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        layer["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["properties"]["households"].is_null())
    );

    let response = put_households(&app, "homes", vec![b'w', b';', 0xff, 0xfe]).await;
    assert_eq!(
        problem_fields(&problem(response, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["body"]
    );
    problem(
        put_households(&app, "nowhere", "west;1\n").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let response = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "homeless", "title": {"fr": "S", "en": "N"}, "form": crate::helpers::test_form()}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        problem_fields(
            &problem(
                put_households(&app, "homeless", "west;1\n").await,
                StatusCode::UNPROCESSABLE_ENTITY
            )
            .await
        ),
        ["districts"]
    );

    // A good file (French thousands, a header, `;`): stored, reported, audited.
    let response = put_households(
        &app,
        "homes",
        "\u{feff}code;households\nwest;1 000\nmiddle;250\n",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        report,
        json!({"districts": 2, "households": 1250, "missing": ["east"]})
    );
    let layer: Value = app
        .get("/api/v1/campaigns/homes/districts.geojson")
        .await
        .json()
        .await
        .unwrap();
    let homes: Vec<Value> = layer["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["households"].clone())
        .collect();
    assert_eq!(homes, [json!(1000), json!(250), Value::Null]);
    let audit = app
        .get_as_admin("/api/v1/admin/audit?campaign=homes&action=districts.households")
        .await;
    assert!(audit.contains("\"households\":1250"), "{audit}");

    // Admins only.
    for role in [Role::Planner, Role::Moderator] {
        let token = app.staff_token(role).await;
        let response = app
            .client
            .put(app.url("/api/v1/admin/campaigns/homes/households"))
            .bearer_auth(token)
            .body("west;1\n")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}

/// Every district's (count, withheld, households, rate) in every public door that shows rates.
async fn every_rate(
    app: &TestApp,
    slug: &str,
) -> Vec<(String, Option<i64>, bool, Option<i64>, Option<f64>)> {
    let mut out = Vec::new();
    for path in [
        "districts.geojson",
        "aggregates.geojson",
        "aggregates.geojson?breakdown=connection",
    ] {
        let body: Value = app
            .get(&format!("/api/v1/campaigns/{slug}/{path}"))
            .await
            .json()
            .await
            .unwrap();
        for f in body["features"].as_array().unwrap() {
            let p = &f["properties"];
            if p["code"].as_str().is_none_or(str::is_empty) {
                continue;
            }
            out.push((
                format!("{path} {}", p["code"].as_str().unwrap()),
                p["count"].as_i64(),
                p["withheld"] == json!(true),
                p["households"].as_i64(),
                p["per_1000_households"].as_f64(),
            ));
        }
    }
    for path in ["aggregates.csv", "aggregates.csv?excel=1"] {
        let text = app
            .get(&format!("/api/v1/campaigns/{slug}/{path}"))
            .await
            .text()
            .await
            .unwrap();
        let excel = path.contains("excel");
        let text = text.trim_start_matches('\u{feff}');
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(if excel { b';' } else { b',' })
            .from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
        for record in reader.records() {
            let record = record.unwrap();
            if record[at("code")].is_empty() {
                continue;
            }
            out.push((
                format!("{path} {}", &record[at("code")]),
                record[at("count")].parse().ok(),
                &record[at("withheld")] == "true",
                record[at("households")].parse().ok(),
                record[at("per_1000_households")]
                    .replace(',', ".")
                    .parse()
                    .ok(),
            ));
        }
    }
    out
}

/// The attacker knows the households (they are public) and reads every rate, polling as one
/// withheld district fills up one contribution at a time: no rate appears before its count
/// does (nor beside a count withheld to protect it), and a shown rate tells exactly the shown
/// count, nothing else.
#[tokio::test]
async fn rates_and_households_never_reveal_a_withheld_count() {
    let app = TestApp::spawn().await;
    let mut form = crate::helpers::test_form();
    form["fields"][1]["public"] = json!(true);
    app.open_campaign(
        "homes-k",
        json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": K}}),
    )
    .await;
    // East has one household: a rate of its count would be the count × 1,000.
    let response = put_households(&app, "homes-k", "west;1000\nmiddle;7\neast;1\n").await;
    assert_eq!(response.status(), StatusCode::OK);
    for i in 0..6 {
        app.contribute("homes-k", 2.05, 48.01 + f64::from(i) * 0.01, answers())
            .await;
    }
    for i in 0..7 {
        app.contribute("homes-k", 2.15, 48.01 + f64::from(i) * 0.01, answers())
            .await;
    }
    let mut seen_east = false;
    for step in 0..=K {
        if step > 0 {
            app.contribute(
                "homes-k",
                2.25,
                48.0 + f64::from(step as i32) * 0.015,
                answers(),
            )
            .await;
        }
        let rates = every_rate(&app, "homes-k").await;
        assert!(rates.len() >= 15, "{rates:?}");
        for (place, count, withheld, households, rate) in &rates {
            match count {
                Some(count) if !withheld => {
                    assert!(*count >= K, "{place}: count {count} below k shown");
                    let households = households.expect("west, middle and east have households");
                    let rate =
                        rate.unwrap_or_else(|| panic!("{place}: no rate beside a shown count"));
                    // The rate tells the shown count, to its rounding, and nothing else.
                    assert_eq!(
                        (rate * households as f64 / 1000.0).round() as i64,
                        *count,
                        "{place}"
                    );
                }
                _ => assert_eq!(*rate, None, "{place}: a rate beside a withheld count"),
            }
            if place.ends_with(" east") && !withheld {
                seen_east = true;
            }
        }
        // East's rate appears with its count, at k, never before (while east holds 1 to k - 1,
        // west is withheld too, complementary suppression, and so is west's rate).
        assert_eq!(
            rates
                .iter()
                .any(|r| r.0.ends_with(" east") && r.4.is_some()),
            step >= K,
            "east's rate at {step} contributions"
        );
        if step == K {
            assert!(rates.iter().all(|r| r.4.is_some()), "{rates:?}");
            assert!(
                rates
                    .iter()
                    .any(|r| r.0.ends_with(" east") && r.4 == Some(5000.0))
            );
            assert!(
                rates
                    .iter()
                    .any(|r| r.0.ends_with(" middle") && r.4 == Some(1000.0))
            );
        }
    }
    assert!(seen_east, "east is shown once it reaches k");
}
