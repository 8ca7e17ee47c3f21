//! Campaign lifecycle through the admin API, and who may use it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, problem_fields, test_districts, test_form};

#[tokio::test]
async fn a_campaign_goes_from_draft_to_open_to_closed() {
    let app = TestApp::spawn().await;
    let created = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "fibre", "title": {"fr": "Fibre", "en": "Fibre"}, "form": test_form()}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["status"], "draft");
    assert_eq!(
        created["privacy"],
        json!({"public_precision_m": 50, "min_count": 5, "budget": 2.0, "release_every": "week", "map_resolution": 8})
    );
    assert_eq!(created["moderation"], "post");

    // A draft is not public.
    problem(
        app.get("/api/v1/campaigns/fibre").await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // It cannot open before it has an area.
    let refused = problem(
        app.admin_patch("/api/v1/admin/campaigns/fibre", &json!({"status": "open"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&refused), ["status"]);

    let imported = app
        .admin_put("/api/v1/admin/campaigns/fibre/districts", &test_districts())
        .await;
    assert_eq!(imported.status(), StatusCode::OK);
    let opened = app
        .admin_patch(
            "/api/v1/admin/campaigns/fibre",
            &json!({"status": "open", "description": {"fr": "Dites-le", "en": "Say it"}}),
        )
        .await;
    assert_eq!(opened.status(), StatusCode::OK);

    let public: Value = app
        .get("/api/v1/campaigns/fibre")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public["status"], "open");
    assert_eq!(public["description"]["en"], "Say it");
    assert_eq!(public["bounds"], json!([2.0, 48.0, 2.3, 48.1]));
    assert_eq!(public["form"]["fields"].as_array().unwrap().len(), 4);
    assert!(public.get("id").is_none());

    let listed: Value = app
        .client
        .get(app.url("/api/v1/admin/campaigns"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let closed = app
        .admin_patch(
            "/api/v1/admin/campaigns/fibre",
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(closed.status(), StatusCode::OK);
    let refused = app
        .submit("fibre", 2.05, 48.05, crate::helpers::answers())
        .await;
    let refused = problem(refused, StatusCode::CONFLICT).await;
    assert_eq!(
        refused["detail"],
        "this campaign is closed to contributions"
    );
}

#[tokio::test]
async fn a_campaign_outside_its_dates_refuses_contributions() {
    let app = TestApp::spawn().await;
    app.open_campaign("later", json!({"opens_at": "2999-01-01T00:00:00Z"}))
        .await;
    let refused = problem(
        app.submit("later", 2.05, 48.05, crate::helpers::answers())
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .starts_with("this campaign opens at 2999")
    );

    app.open_campaign("past", json!({"closes_at": "2000-01-01T00:00:00Z"}))
        .await;
    let refused = problem(
        app.submit("past", 2.05, 48.05, crate::helpers::answers())
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .starts_with("this campaign closed at 2000")
    );

    // Clearing the date with null reopens it.
    let response = app
        .admin_patch("/api/v1/admin/campaigns/past", &json!({"closes_at": null}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.submit("past", 2.05, 48.05, crate::helpers::answers())
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn invalid_campaign_settings_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let body = json!({
        "slug": "Bad Slug",
        "title": {"fr": "x", "en": "x"},
    });
    let refused = problem(
        app.admin_post("/api/v1/admin/campaigns", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&refused), ["slug"]);

    let body = json!({
        "slug": "ok",
        "title": {"fr": "", "en": "x"},
        "privacy": {"public_precision_m": 0, "min_count": 5},
        "form": {"fields": [{"key": "n", "type": "number", "label": {"fr": "n", "en": "n"}, "min": 3, "max": 1}]},
        "opens_at": "2027-01-01T00:00:00Z",
        "closes_at": "2026-01-01T00:00:00Z",
        "area": {"type": "Point", "coordinates": [2.0, 48.0]}
    });
    let refused = problem(
        app.admin_post("/api/v1/admin/campaigns", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        problem_fields(&refused),
        [
            "title",
            "form.fields[0].min",
            "privacy.public_precision_m",
            "closes_at",
            "area"
        ]
    );
    // Nothing was half-created.
    problem(
        app.admin_patch("/api/v1/admin/campaigns/ok", &json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let unknown = problem(
        app.admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "x", "colour": "red"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        unknown["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{unknown}"
    );

    app.open_campaign("taken", json!({})).await;
    let taken = problem(
        app.admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "taken", "title": {"fr": "a", "en": "a"}}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(taken["detail"], "a campaign named `taken` already exists");
}

#[tokio::test]
async fn an_explicit_area_takes_points_outside_every_district() {
    let app = TestApp::spawn().await;
    let area = json!({"type": "Polygon", "coordinates": crate::helpers::square(1.9, 47.9, 0.5)});
    app.open_campaign(
        "wide",
        json!({"area": area, "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let response = app
        .submit("wide", 1.95, 47.95, crate::helpers::answers())
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(receipt["district"], Value::Null);
    let counts = app.counts("wide").await;
    assert_eq!(counts["outside"], Some(1));
    assert_eq!(counts["total"], Some(1));
}

#[tokio::test]
async fn admin_routes_refuse_missing_wrong_and_under_privileged_tokens() {
    let app = TestApp::spawn().await;
    let planner =
        civicmap::auth::create_token(&app.db, "planner", civicmap::auth::Role::Planner, None)
            .await
            .unwrap();
    let expired = civicmap::auth::create_token(
        &app.db,
        "old",
        civicmap::auth::Role::Admin,
        Some(time::OffsetDateTime::now_utc() - time::Duration::days(1)),
    )
    .await
    .unwrap();
    let forged = format!("{}x", &app.admin_token[..app.admin_token.len() - 1]);
    let url = app.url("/api/v1/admin/campaigns");

    let none = problem(
        app.client.get(&url).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        none["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    for token in [forged.as_str(), "cmk_1_nope", "garbage", &expired] {
        problem(
            app.client
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let low = problem(
        app.client
            .get(&url)
            .bearer_auth(&planner)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        low["detail"],
        "this route needs the admin role; this token has the planner role"
    );
    assert_eq!(
        app.client
            .get(&url)
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_settings_change_on_one_instance_applies_at_once_to_submissions_on_another() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.db.clone()).await;
    first.open_campaign("shared", json!({})).await;
    // The second instance reads (and caches) the campaign.
    assert_eq!(
        second.get("/api/v1/campaigns/shared").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        second
            .submit("shared", 2.05, 48.05, crate::helpers::answers())
            .await
            .status(),
        StatusCode::CREATED
    );

    // The first instance adds a required question.
    let mut form = test_form();
    form["fields"].as_array_mut().unwrap().push(json!({"key": "floor", "type": "number", "label": {"fr": "Étage", "en": "Floor"}, "required": true}));
    let changed = first
        .admin_patch("/api/v1/admin/campaigns/shared", &json!({"form": form}))
        .await;
    assert_eq!(changed.status(), StatusCode::OK);

    // The second instance enforces it on the very next submission.
    let refused = problem(
        second
            .submit("shared", 2.05, 48.05, crate::helpers::answers())
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&refused), ["properties.floor"]);
    let mut answers = crate::helpers::answers();
    answers["floor"] = json!(3);
    assert_eq!(
        second
            .submit("shared", 2.05, 48.05, answers.clone())
            .await
            .status(),
        StatusCode::CREATED
    );

    // Closing on the first instance stops submissions on the second at once.
    first
        .admin_patch(
            "/api/v1/admin/campaigns/shared",
            &json!({"status": "closed"}),
        )
        .await;
    problem(
        second.submit("shared", 2.05, 48.05, answers).await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn the_admin_api_gives_the_ready_to_paste_snippet() {
    let app = TestApp::spawn().await;
    app.open_campaign("snippet", json!({})).await;
    let url = app.url("/api/v1/admin/campaigns/snippet/embed");
    problem(
        app.client.get(&url).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let snippet: Value = app
        .client
        .get(&url)
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = app.url("");
    assert_eq!(
        snippet["script"],
        format!(r#"<script src="{base}/embed.js" data-campaign="snippet" async></script>"#)
    );
    assert_eq!(snippet["iframe_url"], format!("{base}/embed/snippet"));
    assert!(
        snippet["element"]
            .as_str()
            .unwrap()
            .starts_with(r#"<civicmap-map campaign="snippet"></civicmap-map>"#)
    );
}

#[tokio::test]
async fn a_campaign_may_use_a_basemap_and_a_geocoder_which_the_iframe_page_then_allows() {
    let app = TestApp::spawn().await;
    app.open_campaign("services", json!({})).await;
    let refused = problem(
        app.admin_patch(
            "/api/v1/admin/campaigns/services",
            &json!({
                "basemap": {"type": "raster", "tiles": ["http://tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org/{z}/{x}.png"]},
                "geocoder": {"url": "https://search.example.org/?text=hello"}
            }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        problem_fields(&refused),
        ["basemap.tiles[0]", "basemap.tiles[1]", "geocoder.url"]
    );

    let settings = json!({
        "basemap": {"type": "raster", "tiles": ["https://tiles.example.org/{z}/{x}/{y}.png"], "attribution": "© Example", "maxzoom": 19},
        "geocoder": {"url": "https://search.example.org/search/?q={q}&limit=5"}
    });
    assert_eq!(
        app.admin_patch("/api/v1/admin/campaigns/services", &settings)
            .await
            .status(),
        StatusCode::OK
    );
    let public: Value = app
        .get("/api/v1/campaigns/services")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public["basemap"], settings["basemap"]);
    assert_eq!(public["geocoder"], settings["geocoder"]);
    let page = app.get("/embed/services").await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(
            "img-src 'self' data: blob: https://search.example.org https://tiles.example.org;"
        ),
        "{csp}"
    );
    assert!(
        csp.contains("connect-src 'self' https://search.example.org https://tiles.example.org;"),
        "{csp}"
    );

    // null removes them, and the page allows nothing else again.
    let cleared = app
        .admin_patch(
            "/api/v1/admin/campaigns/services",
            &json!({"basemap": null, "geocoder": null}),
        )
        .await;
    assert_eq!(cleared.status(), StatusCode::OK);
    let public: Value = cleared.json().await.unwrap();
    assert_eq!(
        (&public["basemap"], &public["geocoder"]),
        (&Value::Null, &Value::Null)
    );
}
