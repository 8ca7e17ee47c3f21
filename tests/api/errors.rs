//! Bad input of every kind gets a clear 4xx problem+json, never a 5xx.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, point, problem, problem_fields};

#[tokio::test]
async fn malformed_requests_get_clear_client_errors() {
    let app = TestApp::spawn().await;
    app.open_campaign("robust", json!({})).await;
    let url = app.url("/api/v1/campaigns/robust/submissions");
    let post = |body: String, content_type: &'static str| {
        app.client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let cases: Vec<(String, &str, StatusCode, &str)> = vec![
        (
            "{".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "the body is not valid JSON: it ends too early",
        ),
        (
            "{\"type\": NaN}".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "the body is not valid JSON",
        ),
        (
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1e999, 48]}}"#.into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "number out of range",
        ),
        (
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            "application/json",
            StatusCode::BAD_REQUEST,
            "recursion limit exceeded",
        ),
        (
            serde_json::to_string(&point(2.05, 48.05, answers())).unwrap(),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: application/json",
        ),
        (
            format!(
                "{{\"type\": \"Feature\", \"pad\": \"{}\"}}",
                "x".repeat(17 * 1024)
            ),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than this route accepts",
        ),
        (
            "\u{0}\u{1}binary".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "the body is not valid JSON",
        ),
    ];
    for (body, content_type, status, detail) in cases {
        let refused = problem(post(body, content_type).await.unwrap(), status).await;
        assert!(
            refused["detail"].as_str().unwrap().contains(detail),
            "{refused}"
        );
    }
    // A geo+json content type is JSON too.
    let ok = post(
        serde_json::to_string(&point(2.05, 48.05, answers())).unwrap(),
        "application/geo+json",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_things_are_named_in_404s() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/api/v1/campaigns/nope", "no campaign named `nope`"),
        (
            "/api/v1/campaigns/nope/districts.geojson",
            "no campaign named `nope`",
        ),
        (
            "/api/v1/nothing/here",
            "no route for GET /api/v1/nothing/here",
        ),
    ];
    for (path, detail) in cases {
        let refused = problem(app.get(path).await, StatusCode::NOT_FOUND).await;
        assert_eq!(refused["detail"], detail);
    }
    let refused = problem(
        app.submit("nope", 2.0, 48.0, answers()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(refused["detail"], "no campaign named `nope`");
    let refused = problem(
        app.client
            .put(app.url("/api/v1/campaigns/nope"))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    assert_eq!(
        refused["detail"],
        "PUT is not allowed on /api/v1/campaigns/nope"
    );
}

#[tokio::test]
async fn odd_but_valid_inputs_never_cause_a_server_error() {
    let app = TestApp::spawn().await;
    app.open_campaign("odd", json!({})).await;
    let url = app.url("/api/v1/campaigns/odd/submissions");
    let bodies = [
        json!(null),
        json!("Feature"),
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.05, 48.05, 35.0]}, "properties": answers()}),
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [-0.0, 48.05]}, "properties": answers()}),
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.05, 48.05]}, "properties": {"households": 1e300, "connection": "adsl"}}),
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.05, 48.05]}, "properties": {"households": 2, "connection": "adsl", "comment": "\u{0}"}}),
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.05, 48.05]}, "properties": {"households": 2, "connection": "adsl", "comment": "日本語🙂"}}),
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.05, 48.05]}, "properties": {"households": 18446744073709551615u64, "connection": "adsl"}}),
    ];
    for body in bodies {
        let response = app.client.post(&url).json(&body).send().await.unwrap();
        assert!(
            response.status().is_success() || response.status().is_client_error(),
            "{body} -> {}",
            response.status()
        );
    }
    for header in ["", " ", &"k".repeat(300)] {
        let response = app
            .client
            .post(&url)
            .header("Idempotency-Key", header)
            .json(&point(2.05, 48.05, answers()))
            .send()
            .await
            .unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;
    }
    // NUL characters cannot be stored in PostgreSQL text: a clear 400, not a 500.
    let nul_title = json!({"slug": "nul", "title": {"fr": "a\u{0}b", "en": "x"}});
    let refused = problem(
        app.admin_post("/api/v1/admin/campaigns", &nul_title).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("NUL"));
    let weird_paths = [
        "/api/v1/campaigns/%FF%FE",
        "/api/v1/campaigns/a%00b/districts.geojson",
        "/api/v1/campaigns/odd/submissions/..%2F..%2Fetc",
    ];
    for path in weird_paths {
        let response = app.get(path).await;
        assert!(
            response.status().is_client_error(),
            "{path} -> {}",
            response.status()
        );
    }
}

#[tokio::test]
async fn health_readiness_and_the_openapi_document() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/campaigns/{slug}/submissions",
        "/api/v1/campaigns/{slug}/districts.geojson",
        "/api/v1/admin/campaigns",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn readiness_fails_until_migrations_are_applied() {
    let (pool, _) = crate::helpers::fresh_database().await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&pool)
        .await
        .unwrap();
    let app = TestApp::spawn_on(pool).await;
    let refused = problem(app.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .starts_with("not ready: migrations not applied"),
        "{refused}"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

/// During a rolling upgrade an instance of the previous release starts on a database that a
/// newer one already migrated: it migrates nothing, starts, and is ready.
#[tokio::test]
async fn an_older_release_starts_on_a_database_a_newer_one_migrated() {
    let (pool, _) = crate::helpers::fresh_database().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (29991231000000, 'from a newer release', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    civicmap::database::migrate(&pool).await.unwrap();
    let app = TestApp::spawn_on(pool).await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_iframe_page_is_framable_by_any_site_but_loads_only_civicmap_files() {
    let app = TestApp::spawn().await;
    let page = app.get("/embed/fibre-pour-tous").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.headers().get("x-frame-options").is_none());
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.text().await.unwrap().contains("/widget/civicmap.js"));
    let demo = app.get("/").await;
    assert_eq!(demo.status(), StatusCode::OK);
    assert!(
        demo.text()
            .await
            .unwrap()
            .contains("data-campaign=\"fibre-pour-tous\"")
    );
}

#[tokio::test]
async fn a_huge_number_cannot_overflow_a_sum() {
    let app = TestApp::spawn().await;
    let form = json!({"fields": [
        {"key": "households", "type": "number", "label": {"fr": "Foyers", "en": "Households"}, "required": true}
    ]});
    app.open_campaign(
        "huge",
        json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    // The attack: two answers near f64's limit, so that their sum overflows the database.
    let body = problem(
        app.submit("huge", 2.05, 48.05, json!({"households": 1.7e308}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&body), ["properties.households"]);
    for _ in 0..2 {
        let ok = app
            .submit("huge", 2.05, 48.05, json!({"households": 1e12}))
            .await;
        assert_eq!(ok.status(), StatusCode::CREATED);
    }
    // A planner's exact sum: unbounded numbers are never public (their sums would need noise
    // as large as their range), so only staff add them up.
    let planner = app.staff_token(civicmap::auth::Role::Planner).await;
    let sums = app
        .client
        .get(app.url("/api/v1/campaigns/huge/aggregates.csv?sum=households"))
        .bearer_auth(planner)
        .send()
        .await
        .unwrap();
    assert_eq!(sums.status(), StatusCode::OK);
    assert!(sums.text().await.unwrap().contains("2000000000000"));
}

#[tokio::test]
async fn the_widget_files_go_gzipped_to_clients_that_accept_it_and_plain_to_others() {
    let app = TestApp::spawn().await;
    for file in ["civicmap.js", "civicmap-map.js", "maplibre-gl-worker.js"] {
        let url = app.url(&format!("/widget/{file}"));
        let plain = app.client.get(&url).send().await.unwrap();
        assert_eq!(plain.status(), StatusCode::OK, "{file}");
        assert!(plain.headers().get("content-encoding").is_none(), "{file}");
        let plain = plain.bytes().await.unwrap();
        let gzipped = app
            .client
            .get(&url)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.headers()["content-encoding"], "gzip", "{file}");
        assert!(
            gzipped.headers()["vary"]
                .to_str()
                .unwrap()
                .to_ascii_lowercase()
                .contains("accept-encoding"),
            "{file}"
        );
        assert!(
            gzipped.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains("javascript"),
            "{file}"
        );
        let wire = gzipped.bytes().await.unwrap();
        assert!(
            wire.len() * 2 < plain.len(),
            "{file}: {} of {}",
            wire.len(),
            plain.len()
        );
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&wire[..]), &mut unzipped)
            .unwrap();
        assert!(
            unzipped == plain,
            "{file}: the gzipped copy is of another build"
        );
    }
}
