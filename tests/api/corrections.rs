//! A submitter reads and corrects their own submission with the edit token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, point, problem, problem_fields};

fn exact() -> Value {
    json!({"privacy": {"public_precision_m": 50, "min_count": 1}})
}

async fn submit(app: &TestApp, slug: &str, lon: f64, lat: f64) -> (String, String) {
    let receipt: Value = app
        .submit(slug, lon, lat, answers())
        .await
        .json()
        .await
        .unwrap();
    (
        receipt["id"].as_str().unwrap().to_owned(),
        receipt["edit_token"].as_str().unwrap().to_owned(),
    )
}

fn path(slug: &str, id: &str) -> String {
    format!("/api/v1/campaigns/{slug}/submissions/{id}")
}

async fn data_version(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(sum(changes), 0)::bigint FROM district_counts")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn cells(app: &TestApp) -> Vec<(i64, i64, i64)> {
    sqlx::query_as("SELECT cx, cy, published FROM demand_cells WHERE published <> 0 ORDER BY 1, 2")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_submitter_reads_their_exact_submission_with_the_edit_token() {
    let app = TestApp::spawn().await;
    app.open_campaign("own", exact()).await;
    let (id, token) = submit(&app, "own", 2.2512345, 48.0512345).await;
    let response = app
        .client
        .get(app.url(&path("own", &id)))
        .header("X-Edit-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/geo+json");
    let feature: Value = response.json().await.unwrap();
    assert_eq!(feature["type"], "Feature");
    assert_eq!(feature["id"], id);
    assert_eq!(
        feature["geometry"],
        json!({"type": "Point", "coordinates": [2.2512345, 48.0512345]})
    );
    assert_eq!(feature["properties"], answers());
    assert_eq!(feature["civicmap"]["status"], "published");
    assert_eq!(
        feature["civicmap"]["district"],
        json!({"code": "east", "name": "East"})
    );
    assert!(
        feature["civicmap"]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(feature["civicmap"]["updated_at"].is_string());

    // No token, a wrong token, another campaign, an unknown id.
    let response = app.get(&path("own", &id)).await;
    problem(response, StatusCode::UNAUTHORIZED).await;
    let response = app
        .client
        .get(app.url(&path("own", &id)))
        .header("X-Edit-Token", "not-the-token")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::FORBIDDEN).await;
    app.open_campaign("else", exact()).await;
    let response = app
        .client
        .get(app.url(&path("else", &id)))
        .header("X-Edit-Token", &token)
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::NOT_FOUND).await;
    let response = app
        .client
        .get(app.url(&path("own", "nope")))
        .header("X-Edit-Token", &token)
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_correction_moves_the_point_and_its_count_in_one_go() {
    let app = TestApp::spawn().await;
    app.open_campaign("fix", exact()).await;
    let (id, token) = submit(&app, "fix", 2.05, 48.05).await;
    let (_, _) = submit(&app, "fix", 2.06, 48.06).await;
    assert_eq!(app.counts("fix").await["west"], Some(2));
    let cells_before = cells(&app).await;
    let version_before = data_version(&app).await;

    let corrected = json!({"households": 7, "connection": "none", "comment": " rue X "});
    let response = app
        .client
        .patch(app.url(&path("fix", &id)))
        .header("X-Edit-Token", &token)
        .json(&point(2.25, 48.02, corrected))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let feature: Value = response.json().await.unwrap();
    assert_eq!(feature["geometry"]["coordinates"], json!([2.25, 48.02]));
    assert_eq!(
        feature["properties"],
        json!({"households": 7, "connection": "none", "comment": "rue X"})
    );
    assert_eq!(feature["civicmap"]["district"]["code"], "east");
    assert_ne!(
        feature["civicmap"]["updated_at"],
        feature["civicmap"]["created_at"]
    );

    let counts = app.counts("fix").await;
    assert_eq!(
        (counts["west"], counts["east"], counts["total"]),
        (Some(1), Some(1), Some(2))
    );
    assert!(
        data_version(&app).await > version_before,
        "tiles must see the change"
    );
    let cells_after = cells(&app).await;
    assert_ne!(cells_after, cells_before);
    assert_eq!(cells_after.iter().map(|c| c.2).sum::<i64>(), 2);

    // GET shows the correction.
    let again: Value = app
        .client
        .get(app.url(&path("fix", &id)))
        .header("X-Edit-Token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, feature);
}

#[tokio::test]
async fn a_correction_is_checked_like_a_submission_and_needs_the_token() {
    let app = TestApp::spawn().await;
    app.open_campaign("check", exact()).await;
    let (id, token) = submit(&app, "check", 2.05, 48.05).await;
    let patch = |body: Value, token: Option<&str>| {
        let mut request = app.client.patch(app.url(&path("check", &id))).json(&body);
        if let Some(token) = token {
            request = request.header("X-Edit-Token", token);
        }
        request.send()
    };
    let body = problem(
        patch(point(2.05, 48.05, json!({"households": 0})), Some(&token))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        problem_fields(&body),
        ["properties.households", "properties.connection"]
    );
    let body = problem(
        patch(point(3.0, 48.05, answers()), Some(&token))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["field"], "geometry");
    problem(
        patch(point(2.15, 48.05, answers()), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        patch(point(2.15, 48.05, answers()), Some("wrong"))
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    // Nothing moved.
    let counts = app.counts("check").await;
    assert_eq!((counts["west"], counts["middle"]), (Some(1), None));

    // A pending submission (pre-moderation) is corrected without being counted.
    app.open_campaign(
        "pre",
        json!({"moderation": "pre", "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let (id, token) = submit(&app, "pre", 2.05, 48.05).await;
    let response = app
        .client
        .patch(app.url(&path("pre", &id)))
        .header("X-Edit-Token", &token)
        .json(&point(2.15, 48.05, answers()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let feature: Value = response.json().await.unwrap();
    assert_eq!(feature["civicmap"]["status"], "pending");
    assert_eq!(app.counts("pre").await["total"], None);
    let total: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(published), 0)::bigint FROM district_counts")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        total, 1,
        "only the published submission of `check` is counted"
    );
}
