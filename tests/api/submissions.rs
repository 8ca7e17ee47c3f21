//! Submissions: the happy path, every validation error, idempotent retries and erasure.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, exact, point, problem, problem_fields};

#[tokio::test]
async fn a_citizen_submits_a_point_and_sees_it_counted_in_their_district() {
    let app = TestApp::spawn().await;
    app.open_campaign("fibre", exact()).await;
    let before = app.counts("fibre").await;
    assert_eq!(
        before["east"], None,
        "an empty district is withheld, not shown as 0"
    );

    let response = app
        .submit(
            "fibre",
            2.25,
            48.05,
            json!({"households": 3, "connection": "none", "comment": "  vite ! ", "tenant": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(receipt["status"], "published");
    assert_eq!(receipt["district"], json!({"code": "east", "name": "East"}));
    let id = receipt["id"].as_str().unwrap();
    assert_eq!(
        location,
        format!("/api/v1/campaigns/fibre/submissions/{id}")
    );
    assert!(receipt["edit_token"].as_str().unwrap().len() >= 40);
    assert!(
        receipt["edit_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("/embed/fibre/edit#id={id}&token="))
    );

    let after = app.counts("fibre").await;
    assert_eq!((after["east"], after["total"]), (Some(1), Some(1)));

    // Stored as given, text trimmed; the edit token only as a hash.
    let (answers, lon, lat, hash): (Value, f64, f64, Vec<u8>) = sqlx::query_as(
        "SELECT answers, ST_X(geom), ST_Y(geom), edit_token_hash FROM submissions WHERE id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        answers,
        json!({"households": 3, "connection": "none", "comment": "vite !", "tenant": true})
    );
    assert_eq!((lon, lat), (2.25, 48.05));
    assert_eq!(
        hash,
        civicmap::auth::hash_secret(receipt["edit_token"].as_str().unwrap())
    );
}

#[tokio::test]
async fn counts_below_the_threshold_are_withheld_not_zero() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "small",
        json!({"privacy": {"public_precision_m": 50, "min_count": 3}}),
    )
    .await;
    for (lon, times) in [(2.05, 4), (2.15, 3), (2.25, 1)] {
        for _ in 0..times {
            assert_eq!(
                app.submit("small", lon, 48.05, answers()).await.status(),
                StatusCode::CREATED
            );
        }
    }
    let body: Value = app
        .get("/api/v1/campaigns/small/districts.geojson")
        .await
        .json()
        .await
        .unwrap();
    let props: Vec<&Value> = body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["properties"])
        .collect();
    // West (4) is shown. East (1) is below k. Middle (3) would be shown, but then the total
    // minus west and middle would reveal east: it is withheld too.
    assert_eq!(
        (&props[0]["count"], &props[0]["withheld"]),
        (&json!(4), &json!(false))
    );
    for p in &props[1..] {
        assert_eq!(
            (&p["count"], &p["withheld"]),
            (&Value::Null, &json!(true)),
            "{p}"
        );
    }
    assert_eq!(body["total"], json!({"count": 8, "withheld": false}));
    assert_eq!(
        body["outside_districts"],
        json!({"count": null, "withheld": true})
    );
    assert_eq!(body["min_count"], 3);
    assert_eq!(body["attribution"], "© OpenStreetMap contributors");
}

#[tokio::test]
async fn each_invalid_submission_is_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    app.open_campaign("checks", exact()).await;
    let url = app.url("/api/v1/campaigns/checks/submissions");
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            point(2.05, 48.05, json!({"households": 2})),
            "properties.connection",
            "is required",
        ),
        (
            point(
                2.05,
                48.05,
                json!({"households": "2", "connection": "adsl"}),
            ),
            "properties.households",
            "must be a number",
        ),
        (
            point(
                2.05,
                48.05,
                json!({"households": 501, "connection": "adsl"}),
            ),
            "properties.households",
            "must be at most 500",
        ),
        (
            point(2.05, 48.05, json!({"households": 0, "connection": "adsl"})),
            "properties.households",
            "must be at least 1",
        ),
        (
            point(
                2.05,
                48.05,
                json!({"households": 1.5, "connection": "adsl"}),
            ),
            "properties.households",
            "must be a whole number",
        ),
        (
            point(2.05, 48.05, json!({"households": 1, "connection": "fibre"})),
            "properties.connection",
            "must be one of: adsl, none",
        ),
        (
            point(
                2.05,
                48.05,
                json!({"households": 1, "connection": "adsl", "comment": "x".repeat(21)}),
            ),
            "properties.comment",
            "must be at most 20 characters (got 21)",
        ),
        (
            point(
                2.05,
                48.05,
                json!({"households": 1, "connection": "adsl", "tenant": "oui"}),
            ),
            "properties.tenant",
            "must be true or false",
        ),
        (
            point(
                2.05,
                48.05,
                json!({"households": 1, "connection": "adsl", "age": 40}),
            ),
            "properties.age",
            "unknown field; this campaign asks for: households, connection, comment, tenant",
        ),
        (
            point(200.0, 48.05, answers()),
            "geometry.coordinates",
            "longitude must be a finite number between -180 and 180, got 200",
        ),
        (
            point(2.05, -91.0, answers()),
            "geometry.coordinates",
            "latitude must be a finite number between -90 and 90, got -91",
        ),
        (
            point(3.0, 48.05, answers()),
            "geometry",
            "is outside the campaign's area",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.05]}, "properties": answers()}),
            "geometry.coordinates",
            "must be [longitude, latitude] in degrees (WGS 84)",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": ["2.05", 48.05]}, "properties": answers()}),
            "geometry.coordinates",
            "must be [longitude, latitude] in degrees (WGS 84)",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[2.05, 48.05], [2.06, 48.06]]}, "properties": answers()}),
            "geometry.type",
            "must be \"Point\"",
        ),
        (
            json!({"type": "Feature", "properties": answers()}),
            "geometry",
            "is required: a GeoJSON Point",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.05, 48.05]}, "properties": [1]}),
            "properties",
            "must be an object of answers",
        ),
        (
            json!({"type": "Point", "coordinates": [2.05, 48.05]}),
            "type",
            "must be \"Feature\"",
        ),
        (json!([1, 2]), "body", "must be a GeoJSON Feature object"),
    ];
    for (body, field, detail) in cases {
        let response = app.client.post(&url).json(&body).send().await.unwrap();
        let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(refused["field"], field, "{body}: {refused}");
        let first = &refused["errors"][0];
        assert_eq!(
            (
                first["field"].as_str().unwrap(),
                first["detail"].as_str().unwrap()
            ),
            (field, detail),
            "{body}"
        );
    }
    // Several problems at once are all reported.
    let refused = problem(
        app.client
            .post(&url)
            .json(&point(200.0, 48.0, json!({"households": 0})))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        problem_fields(&refused),
        [
            "geometry.coordinates",
            "properties.households",
            "properties.connection"
        ]
    );
    // None of them was stored.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_first_result() {
    let app = TestApp::spawn().await;
    app.open_campaign("retry", exact()).await;
    let url = app.url("/api/v1/campaigns/retry/submissions");
    let body = point(2.05, 48.05, answers());
    let send = |key: &'static str, body: Value| {
        app.client
            .post(&url)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };

    let first = send("key-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = send("key-1", body.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first, again);
    assert_eq!(app.counts("retry").await["total"], Some(1));

    // The same key for another request is refused; a new key makes a new submission.
    let other = point(2.06, 48.05, answers());
    let refused = problem(
        send("key-1", other.clone()).await.unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("already used for a different request")
    );
    assert_eq!(
        send("key-2", other).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(app.counts("retry").await["total"], Some(2));

    // Ten simultaneous retries (a double click, a flaky network) make one submission.
    let key = "burst";
    let responses = futures::future::join_all((0..10).map(|_| {
        app.client
            .post(&url)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    }))
    .await;
    let ids: std::collections::BTreeSet<String> =
        futures::future::join_all(responses.into_iter().map(|r| async move {
            let r = r.unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }))
        .await
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.counts("retry").await["total"], Some(3));
}

#[tokio::test]
async fn a_submitter_erases_their_point_with_the_edit_token_and_only_with_it() {
    let app = TestApp::spawn().await;
    app.open_campaign("erase", exact()).await;
    let url = app.url("/api/v1/campaigns/erase/submissions");
    let response = app
        .client
        .post(&url)
        .header("Idempotency-Key", "k")
        .json(&point(2.05, 48.05, answers()))
        .send()
        .await
        .unwrap();
    let receipt: Value = response.json().await.unwrap();
    let (id, token) = (
        receipt["id"].as_str().unwrap(),
        receipt["edit_token"].as_str().unwrap(),
    );
    let item = format!("{url}/{id}");
    assert_eq!(app.counts("erase").await["west"], Some(1));

    problem(
        app.client.delete(&item).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        app.client
            .delete(&item)
            .header("X-Edit-Token", "not-the-token")
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.client
            .delete(format!("{url}/not-a-uuid"))
            .header("X-Edit-Token", token)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(app.counts("erase").await["west"], Some(1));

    let erased = app
        .client
        .delete(&item)
        .header("X-Edit-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.counts("erase").await["west"], None);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let kept: Option<Value> = sqlx::query_scalar("SELECT response FROM idempotency_keys")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(kept, None, "no copy of the erased receipt is kept");

    problem(
        app.client
            .delete(&item)
            .header("X-Edit-Token", token)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    // A late retry of the original request does not bring the point back.
    let late = app
        .client
        .post(&url)
        .header("Idempotency-Key", "k")
        .json(&point(2.05, 48.05, answers()))
        .send()
        .await
        .unwrap();
    problem(late, StatusCode::GONE).await;
    assert_eq!(app.counts("erase").await["total"], None);
}

#[tokio::test]
async fn a_pre_moderated_campaign_keeps_submissions_pending_and_uncounted() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "premod",
        json!({"moderation": "pre", "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let receipt: Value = app
        .submit("premod", 2.05, 48.05, answers())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(receipt["status"], "pending");
    assert_eq!(app.counts("premod").await["total"], None);
    let erased = app
        .client
        .delete(app.url(&format!(
            "/api/v1/campaigns/premod/submissions/{}",
            receipt["id"].as_str().unwrap()
        )))
        .header("X-Edit-Token", receipt["edit_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.counts("premod").await["total"], None);
}

#[tokio::test]
async fn the_demo_campaign_loads_its_points_inside_nanterre() {
    let app = TestApp::spawn().await;
    let (campaign, created) = civicmap::demo::load(&app.db).await.unwrap();
    assert!(created);
    assert_eq!(campaign.slug, "fibre-pour-tous");
    let (_, again) = civicmap::demo::load(&app.db).await.unwrap();
    assert!(!again, "loading twice does not duplicate");
    let body: Value = app
        .get("/api/v1/campaigns/fibre-pour-tous/districts.geojson")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["features"].as_array().unwrap().len(), 11);
    assert_eq!(body["total"]["count"], civicmap::demo::POINTS as i64);
    let outside: i64 =
        sqlx::query_scalar("SELECT count(*) FROM submissions WHERE district_id IS NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(outside, 0);
}
