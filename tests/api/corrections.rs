//! A submitter reads and corrects their own submission with the edit token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, exact, point, problem, problem_fields};

async fn submit(app: &TestApp, slug: &str, lon: f64, lat: f64) -> (String, String) {
    let receipt = app.contribute(slug, lon, lat, answers()).await;
    (receipt.id.to_string(), receipt.edit_token)
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
    sqlx::query_as(
        "SELECT h3, COALESCE(district_id, 0), count(*) FROM submissions
         WHERE status = 'published' GROUP BY 1, 2 ORDER BY 1, 2",
    )
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
    assert_eq!(response.headers()["cache-control"], "private, no-store");
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
    assert_eq!(response.headers()["cache-control"], "private, no-store");
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
    let again = app.own_submission("fix", &id, &token).await;
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

/// PATCHes submission `id` of `slug` to (lon, lat) with `answers`.
async fn patch(
    app: &TestApp,
    slug: &str,
    id: &str,
    token: &str,
    lon: f64,
    lat: f64,
    answers: Value,
) -> reqwest::Response {
    app.client
        .patch(app.url(&path(slug, id)))
        .header("X-Edit-Token", token)
        .json(&point(lon, lat, answers))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_correction_in_a_pre_moderated_campaign_goes_back_to_the_moderators() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "pre",
        json!({"moderation": "pre", "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let (id, token) = submit(&app, "pre", 2.05, 48.05).await;
    let moderator = app.staff_token(civicmap::auth::Role::Moderator).await;
    let decide = async |action: &str| {
        let body = json!({"action": action, "reason": "checked"});
        let response = app.decide(&moderator, "pre", &id, body).await;
        assert_eq!(response.status(), StatusCode::OK);
    };
    decide("approve").await;
    assert_eq!(app.counts("pre").await["west"], Some(1));

    // The attack: once approved, swap in new text and a new place, hoping to stay published.
    let response = patch(
        &app,
        "pre",
        &id,
        &token,
        2.25,
        48.05,
        json!({"households": 2, "connection": "adsl", "comment": "spam spam"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let feature: Value = response.json().await.unwrap();
    assert_eq!(feature["civicmap"]["status"], "pending");
    let counts = app.counts("pre").await;
    assert_eq!((counts["west"], counts["east"]), (None, None), "{counts:?}");
    let queue = app.queue(&moderator, "pre", "status=pending").await;
    assert!(queue.to_string().contains(&id), "{queue}");
    decide("approve").await;
    let counts = app.counts("pre").await;
    assert_eq!((counts["west"], counts["east"]), (None, Some(1)));
}

#[tokio::test]
async fn corrections_are_limited_so_an_edit_link_cannot_walk_a_probe_across_the_map() {
    let app = TestApp::spawn().await;
    app.open_campaign("walk", exact()).await;
    let (id, token) = submit(&app, "walk", 2.01, 48.01).await;
    for step in 1..=civicmap::submissions::MAX_CORRECTIONS {
        let lon = 2.01 + f64::from(step) * 0.05;
        let response = patch(&app, "walk", &id, &token, lon, 48.01, answers()).await;
        assert_eq!(response.status(), StatusCode::OK, "correction {step}");
    }
    let counts = app.counts("walk").await;
    let response = patch(&app, "walk", &id, &token, 2.01, 48.01, answers()).await;
    let body = problem(response, StatusCode::CONFLICT).await;
    assert!(body["detail"].as_str().unwrap().contains("erase"), "{body}");
    assert_eq!(
        app.counts("walk").await,
        counts,
        "a refused correction moves nothing"
    );
}

#[tokio::test]
async fn a_correction_racing_a_district_import_never_keeps_a_deleted_district() {
    let app = TestApp::spawn().await;
    app.open_campaign("race", exact()).await;
    let (id, token) = submit(&app, "race", 2.05, 48.05).await;
    // An import in progress, as `districts::import` does it: the writers' lock, then the
    // districts replaced under new ids and the campaign's settings version moved.
    let mut import = app.db.begin().await.unwrap();
    civicmap::figures::lock_writes(&mut import).await.unwrap();
    for statement in [
        "UPDATE districts SET position = position + 1000, code = code || '-old'
         WHERE campaign_id = (SELECT id FROM campaigns WHERE slug = 'race')",
        "INSERT INTO districts (campaign_id, position, code, name, geom)
         SELECT campaign_id, position - 1000, left(code, -4), name, geom FROM districts
         WHERE campaign_id = (SELECT id FROM campaigns WHERE slug = 'race')",
        "DELETE FROM districts WHERE code LIKE '%-old'",
    ] {
        sqlx::query(statement).execute(&mut *import).await.unwrap();
    }
    sqlx::query("UPDATE campaigns SET config_version = config_version + 1 WHERE slug = 'race'")
        .execute(&mut *import)
        .await
        .unwrap();
    let correction = {
        let (app_url, client, id, token) = (
            app.url(&path("race", &id)),
            app.client.clone(),
            id.clone(),
            token.clone(),
        );
        tokio::spawn(async move {
            let _ = id;
            client
                .patch(app_url)
                .header("X-Edit-Token", token)
                .json(&point(2.25, 48.05, answers()))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The import re-assigns every submission, then commits.
    sqlx::query(
        "UPDATE submissions s SET district_id = d.id FROM districts d
         WHERE d.campaign_id = s.campaign_id AND ST_Intersects(d.geom, s.geom)",
    )
    .execute(&mut *import)
    .await
    .unwrap();
    import.commit().await.unwrap();
    assert_eq!(correction.await.unwrap(), StatusCode::OK);
    let dangling: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM submissions s WHERE s.district_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM districts d WHERE d.id = s.district_id)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(dangling, 0, "a submission points at a deleted district");
}
