//! What the staff console reads beyond the public routes: the campaign list every staff role
//! picks from (with the moderation queues' sizes, never a submission), and the exact figures
//! (no k threshold) that only planners and admins get, each read audited.

use civicmap::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem};

async fn json_as(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.request_as(Some(token), Method::GET, path, None).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn connection(value: &str, tenant: bool) -> Value {
    json!({"households": 1, "connection": value, "tenant": tenant})
}

#[tokio::test]
async fn every_staff_role_lists_campaigns_with_their_queues_and_no_submission() {
    let app = TestApp::spawn().await;
    app.open_campaign("listed-pre", json!({"moderation": "pre"}))
        .await;
    for i in 0..3 {
        app.contribute(
            "listed-pre",
            2.05,
            48.01 + 0.01 * f64::from(i),
            connection("adsl", true),
        )
        .await;
    }
    app.open_campaign("listed-post", json!({})).await;
    let reported = app
        .contribute("listed-post", 2.15, 48.02, connection("none", false))
        .await;
    app.contribute("listed-post", 2.15, 48.03, connection("adsl", false))
        .await;
    let moderator = app.staff_token(Role::Moderator).await;
    let planner = app.staff_token(Role::Planner).await;
    // Two reports on one submission: one submission waits in the reported queue.
    for reason in ["spam", "again"] {
        let response = app
            .request_as(
                Some(&planner),
                Method::POST,
                &format!(
                    "/api/v1/moderation/campaigns/listed-post/submissions/{}/report",
                    reported.id
                ),
                Some(&json!({"reason": reason})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{reason}");
    }
    let draft = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "listed-draft", "title": {"fr": "Brouillon", "en": "Draft"},
                    "form": crate::helpers::test_form()}),
        )
        .await;
    assert_eq!(draft.status(), StatusCode::CREATED);

    for token in [&moderator, &planner, &app.admin_token] {
        let list = json_as(&app, token, "/api/v1/staff/campaigns").await;
        let list = list.as_array().unwrap();
        let find = |slug: &str| {
            list.iter()
                .find(|c| c["slug"] == slug)
                .unwrap_or_else(|| panic!("{slug} not listed: {list:?}"))
                .clone()
        };
        let pre = find("listed-pre");
        assert_eq!((&pre["pending"], &pre["reported"]), (&json!(3), &json!(0)));
        assert_eq!(pre["moderation"], "pre");
        assert_eq!(pre["status"], "open");
        let post = find("listed-post");
        assert_eq!(
            (&post["pending"], &post["reported"]),
            (&json!(0), &json!(1))
        );
        let draft = find("listed-draft");
        assert_eq!(draft["status"], "draft");
        assert_eq!(draft["title"]["en"], "Draft");
        // Names, states and queue sizes only: nothing of a submission, nor the settings.
        for campaign in list {
            let mut keys: Vec<&str> = campaign
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "moderation",
                    "pending",
                    "pressure",
                    "reported",
                    "slug",
                    "status",
                    "title"
                ]
            );
        }
    }
    // Not a public door: without a staff token, or with a citizen's edit token, nothing.
    let anonymous = app.get("/api/v1/staff/campaigns").await;
    problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let citizen = app
        .request_as(
            Some(&reported.edit_token),
            Method::GET,
            "/api/v1/staff/campaigns",
            None,
        )
        .await;
    problem(citizen, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn planners_read_exact_figures_that_the_public_never_sees_and_each_read_is_audited() {
    let app = TestApp::spawn().await;
    // k = 5: every public figure of this campaign is withheld.
    app.open_campaign(
        "exact",
        json!({"privacy": {"public_precision_m": 50, "min_count": 5}}),
    )
    .await;
    let west = [
        connection("adsl", true),
        connection("adsl", false),
        connection("adsl", true),
    ];
    let mut ids = Vec::new();
    for (i, answers) in west.into_iter().enumerate() {
        ids.push(
            app.contribute("exact", 2.05, 48.01 + 0.01 * i as f64, answers)
                .await
                .id,
        );
    }
    app.contribute("exact", 2.15, 48.02, connection("adsl", true))
        .await;
    // A moderator hides one of West's: it leaves the published figures.
    let moderator = app.staff_token(Role::Moderator).await;
    let hide = app
        .request_as(
            Some(&moderator),
            Method::POST,
            &format!(
                "/api/v1/moderation/campaigns/exact/submissions/{}/decision",
                ids[1]
            ),
            Some(&json!({"action": "hide", "reason": "duplicate"})),
        )
        .await;
    assert_eq!(hide.status(), StatusCode::OK);

    let public = json_as(
        &app,
        &app.admin_token,
        "/api/v1/campaigns/exact/districts.geojson",
    )
    .await;
    assert_eq!(
        public["total"]["count"],
        Value::Null,
        "k = 5 withholds the total"
    );

    let planner = app.staff_token(Role::Planner).await;
    let response = app
        .request_as(
            Some(&planner),
            Method::GET,
            "/api/v1/admin/campaigns/exact/figures",
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cache.contains("no-store"),
        "exact figures must not be kept: {cache}"
    );
    let figures: Value = response.json().await.unwrap();
    assert_eq!(
        figures["total"],
        json!({"published": 3, "pending": 0, "hidden": 1, "rejected": 0})
    );
    assert_eq!(figures["outside_districts"], 0);
    assert_eq!(
        figures["districts"],
        json!([
            {"code": "west", "name": "West", "published": 2, "pending": 0},
            {"code": "middle", "name": "Middle", "published": 1, "pending": 0},
            {"code": "east", "name": "East", "published": 0, "pending": 0},
        ])
    );
    // Choice and boolean fields only, in the form's order; every option, chosen or not.
    assert_eq!(
        figures["answers"],
        json!([
            {"field": "connection", "values": [
                {"value": "adsl", "count": 3, "districts": {"middle": 1, "west": 2}},
                {"value": "none", "count": 0, "districts": {}},
            ]},
            {"field": "tenant", "values": [
                {"value": "true", "count": 3, "districts": {"middle": 1, "west": 2}},
                {"value": "false", "count": 0, "districts": {}},
            ]},
        ])
    );
    // Admins too; moderators, citizens and the public not.
    json_as(
        &app,
        &app.admin_token,
        "/api/v1/admin/campaigns/exact/figures",
    )
    .await;
    let refused = app
        .request_as(
            Some(&moderator),
            Method::GET,
            "/api/v1/admin/campaigns/exact/figures",
            None,
        )
        .await;
    let refused = problem(refused, StatusCode::FORBIDDEN).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("planner"),
        "{refused}"
    );
    let anonymous = app.get("/api/v1/admin/campaigns/exact/figures").await;
    problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let missing = app
        .request_as(
            Some(&planner),
            Method::GET,
            "/api/v1/admin/campaigns/nowhere/figures",
            None,
        )
        .await;
    let missing = problem(missing, StatusCode::NOT_FOUND).await;
    assert!(missing["detail"].as_str().unwrap().contains("nowhere"));

    // Each read is in the audit log, with who read it.
    let audit = json_as(
        &app,
        &app.admin_token,
        "/api/v1/admin/audit?action=figures.read&campaign=exact",
    )
    .await;
    let entries = audit["entries"].as_array().unwrap();
    let actors: Vec<&str> = entries
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{audit}");
    assert!(actors.iter().any(|a| a.contains("planner")), "{actors:?}");
}
