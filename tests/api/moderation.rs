//! Moderation: the queue, decisions that change counts and tiles at once, reports, invalid
//! transitions, and the audit trail of every action.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, exact, problem};
use civicmap::auth::Role;

impl TestApp {
    async fn submit_id(&self, slug: &str, lon: f64, lat: f64, answers: Value) -> String {
        let receipt = self.contribute(slug, lon, lat, answers).await;
        receipt.id.to_string()
    }

    /// A moderator's decision on submission `id` of `slug`.
    pub(crate) async fn decide(
        &self,
        token: &str,
        slug: &str,
        id: &str,
        body: Value,
    ) -> reqwest::Response {
        self.request_as(
            Some(token),
            Method::POST,
            &format!("/api/v1/moderation/campaigns/{slug}/submissions/{id}/decision"),
            Some(&body),
        )
        .await
    }

    /// A page of the moderation queue of `slug` (`query`: `status=…`, cursor, limit).
    pub(crate) async fn queue(&self, token: &str, slug: &str, query: &str) -> Value {
        let response = self
            .request_as(
                Some(token),
                Method::GET,
                &format!("/api/v1/moderation/campaigns/{slug}/queue?{query}"),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The west district's live count in the `districts` layer of the zoom-12 tile over
    /// (2.05, 48.05), where the test points are (0 when withheld).
    async fn west_in_tile(&self, slug: &str) -> i64 {
        let (lon, lat, z) = (2.05f64, 48.05f64, 12);
        let n = f64::from(1u32 << z);
        let x = ((lon + 180.0) / 360.0 * n).floor();
        let r = lat.to_radians();
        let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
        let response = self.get(&format!("/tiles/{slug}/{z}/{x}/{y}.mvt")).await;
        let status = response.status();
        let bytes = response.bytes().await.unwrap().to_vec();
        if status == StatusCode::NO_CONTENT {
            return 0;
        }
        assert_eq!(status, StatusCode::OK);
        let reader = mvt_reader::Reader::new(bytes).unwrap();
        let Some(layer) = reader
            .get_layer_metadata()
            .unwrap()
            .into_iter()
            .position(|l| l.name == "districts")
        else {
            return 0;
        };
        reader
            .get_features(layer)
            .unwrap()
            .iter()
            .filter(|f| {
                matches!(
                    f.properties.as_ref().unwrap().get("code"),
                    Some(mvt_reader::feature::Value::String(code)) if code == "west"
                )
            })
            .map(|f| match f.properties.as_ref().unwrap().get("count") {
                Some(mvt_reader::feature::Value::Int(c) | mvt_reader::feature::Value::SInt(c)) => {
                    *c
                }
                Some(mvt_reader::feature::Value::UInt(c)) => *c as i64,
                _ => 0,
            })
            .sum()
    }
}

#[tokio::test]
async fn pre_moderated_submissions_count_only_once_approved_and_at_once() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "premod",
        json!({"moderation": "pre", "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let moderator = app.staff_token(Role::Moderator).await;
    let mut with_text = answers();
    with_text["comment"] = json!("call me");
    let first = app.submit_id("premod", 2.05, 48.05, with_text).await;
    let second = app.submit_id("premod", 2.051, 48.051, answers()).await;
    assert_eq!(app.counts("premod").await["west"], None);
    assert_eq!(app.west_in_tile("premod").await, 0);

    let queue = app.queue(&moderator, "premod", "status=pending").await;
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], first.as_str(), "oldest first");
    assert_eq!(
        items[0]["location"],
        json!({"type": "Point", "coordinates": [2.05, 48.05]})
    );
    assert_eq!(items[0]["answers"]["comment"], "call me");
    assert_eq!(items[0]["district"]["code"], "west");
    assert_eq!(items[0]["report_count"], 0);
    assert!(items[0]["created_at"].is_string());

    let approved = app
        .decide(&moderator, "premod", &first, json!({"action": "approve"}))
        .await;
    assert_eq!(approved.status(), StatusCode::OK);
    let approved: Value = approved.json().await.unwrap();
    assert_eq!(approved["previous_status"], "pending");
    assert_eq!(approved["status"], "published");
    assert_eq!(
        app.counts("premod").await["west"],
        Some(1),
        "counted at once"
    );
    assert_eq!(app.west_in_tile("premod").await, 1, "in the next tile");

    // Reject needs a reason; then the submission stays out of the counts.
    let refused = app
        .decide(&moderator, "premod", &second, json!({"action": "reject"}))
        .await;
    assert_eq!(
        problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "reason"
    );
    let rejected = app
        .decide(
            &moderator,
            "premod",
            &second,
            json!({"action": "reject", "reason": "advertising"}),
        )
        .await;
    assert_eq!(rejected.status(), StatusCode::OK);
    assert_eq!(app.counts("premod").await["west"], Some(1));
    assert_eq!(
        app.queue(&moderator, "premod", "status=pending").await["items"],
        json!([])
    );
    assert_eq!(
        app.queue(&moderator, "premod", "status=rejected").await["items"][0]["id"],
        second.as_str()
    );

    // Invalid transitions are refused with the current status named.
    for (id, action, status) in [
        (&second, "approve", "rejected"),
        (&first, "approve", "published"),
        (&first, "reject", "published"),
        (&first, "restore", "published"),
        (&second, "hide", "rejected"),
    ] {
        let refused = app
            .decide(
                &moderator,
                "premod",
                id,
                json!({"action": action, "reason": "x"}),
            )
            .await;
        let detail = problem(refused, StatusCode::CONFLICT).await["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            detail.starts_with(&format!("cannot {action} a submission that is {status}")),
            "{detail}"
        );
    }
    assert_eq!(app.counts("premod").await["west"], Some(1), "nothing moved");

    // Restoring a rejected submission publishes it.
    let restored = app
        .decide(&moderator, "premod", &second, json!({"action": "restore"}))
        .await;
    assert_eq!(restored.status(), StatusCode::OK);
    assert_eq!(app.counts("premod").await["west"], Some(2));
    assert_eq!(app.west_in_tile("premod").await, 2);

    // Every action is in the audit log, with who and why.
    let log: Value = serde_json::from_str(
        &app.get_as_admin("/api/v1/admin/audit?campaign=premod&action=submission.reject")
            .await,
    )
    .unwrap();
    let entry = &log["entries"][0];
    assert_eq!(entry["subject"], second.as_str());
    assert_eq!(entry["reason"], "advertising");
    assert_eq!(entry["actor"], "test moderator (moderator)");
    assert_eq!(entry["campaign"], "premod");
    assert_eq!(entry["details"]["from"], "pending");
    assert_eq!(entry["details"]["to"], "rejected");
    assert!(entry["token_id"].is_i64());
    let all: Value = serde_json::from_str(
        &app.get_as_admin("/api/v1/admin/audit?campaign=premod")
            .await,
    )
    .unwrap();
    let actions: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "submission.restore",
            "moderation.queue",
            "moderation.queue",
            "submission.reject",
            "submission.approve",
            "moderation.queue",
        ],
        "refused attempts leave no entry; every queue read (exact positions) does"
    );
}

#[tokio::test]
async fn hiding_a_published_submission_takes_it_out_of_counts_and_tiles_at_once() {
    let app = TestApp::spawn().await;
    app.open_campaign("postmod", exact()).await;
    let moderator = app.staff_token(Role::Moderator).await;
    let ids = [
        app.submit_id("postmod", 2.05, 48.05, answers()).await,
        app.submit_id("postmod", 2.051, 48.05, answers()).await,
        app.submit_id("postmod", 2.15, 48.05, answers()).await,
    ];
    assert_eq!(app.counts("postmod").await["west"], Some(2));
    assert_eq!(app.west_in_tile("postmod").await, 2);

    let hidden = app
        .decide(
            &moderator,
            "postmod",
            &ids[0],
            json!({"action": "hide", "reason": "duplicate of a neighbour's"}),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    let counts = app.counts("postmod").await;
    assert_eq!(counts["west"], Some(1), "out of the counts at once");
    assert_eq!(counts["total"], Some(2));
    assert_eq!(
        app.west_in_tile("postmod").await,
        1,
        "and out of the next tile"
    );

    let again = app
        .decide(
            &moderator,
            "postmod",
            &ids[0],
            json!({"action": "hide", "reason": "x"}),
        )
        .await;
    assert!(
        problem(again, StatusCode::CONFLICT).await["detail"]
            .as_str()
            .unwrap()
            .contains("that is hidden")
    );
    let hidden_queue = app.queue(&moderator, "postmod", "status=hidden").await;
    assert_eq!(hidden_queue["items"][0]["id"], ids[0].as_str());

    let restored = app
        .decide(&moderator, "postmod", &ids[0], json!({"action": "restore"}))
        .await;
    assert_eq!(restored.status(), StatusCode::OK);
    assert_eq!(app.counts("postmod").await["west"], Some(2));

    // Hiding the only submission of a district: its count is withheld, the total moves.
    let hidden = app
        .decide(
            &moderator,
            "postmod",
            &ids[2],
            json!({"action": "hide", "reason": "spam"}),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    let counts = app.counts("postmod").await;
    assert_eq!(counts["middle"], None);
    assert_eq!(counts["total"], Some(2));

    // Bad requests are problems that name what is wrong.
    for (id, body, status) in [
        (
            ids[0].as_str(),
            json!({"action": "delete"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            ids[0].as_str(),
            json!({"reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            ids[0].as_str(),
            json!({"action": "hide", "reason": "x".repeat(1001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "not-an-id",
            json!({"action": "hide", "reason": "x"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "0192f0c4-7d3e-7a51-9c1d-3b0e6f6a8d21",
            json!({"action": "hide", "reason": "x"}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        problem(app.decide(&moderator, "postmod", id, body).await, status).await;
    }
    problem(
        app.decide(&moderator, "nope", &ids[0], json!({"action": "restore"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // A submission of another campaign is not found through this one.
    app.open_campaign("other", json!({})).await;
    problem(
        app.decide(&moderator, "other", &ids[0], json!({"action": "restore"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn staff_reports_put_a_submission_in_the_reported_queue_until_a_decision() {
    let app = TestApp::spawn().await;
    app.open_campaign("reports", exact()).await;
    let moderator = app.staff_token(Role::Moderator).await;
    let planner = app.staff_token(Role::Planner).await;
    let first = app.submit_id("reports", 2.05, 48.05, answers()).await;
    let second = app.submit_id("reports", 2.06, 48.05, answers()).await;
    let report = |token: String, id: String, body: Value| {
        let app = &app;
        async move {
            app.request_as(
                Some(&token),
                Method::POST,
                &format!("/api/v1/moderation/campaigns/reports/submissions/{id}/report"),
                Some(&body),
            )
            .await
        }
    };
    let filed = report(
        planner.clone(),
        first.clone(),
        json!({"reason": "looks like a test entry"}),
    )
    .await;
    assert_eq!(filed.status(), StatusCode::CREATED);
    let filed = report(
        moderator.clone(),
        first.clone(),
        json!({"reason": "same address twice"}),
    )
    .await;
    let filed: Value = filed.json().await.unwrap();
    assert_eq!(filed["open_reports"], 2);
    problem(
        report(planner.clone(), second.clone(), json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let reported = app.queue(&moderator, "reports", "status=reported").await;
    let items = reported["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], first.as_str());
    assert_eq!(items[0]["status"], "published");
    assert_eq!(items[0]["report_count"], 2);
    let reasons: Vec<&str> = items[0]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["looks like a test entry", "same address twice"]);
    assert_eq!(items[0]["reports"][0]["reporter"], "test planner (planner)");

    // Dismissing closes the reports and changes nothing else.
    let dismissed = app
        .decide(&moderator, "reports", &first, json!({"action": "dismiss"}))
        .await;
    let dismissed: Value = dismissed.json().await.unwrap();
    assert_eq!(dismissed["reports_resolved"], 2);
    assert_eq!(dismissed["status"], "published");
    assert_eq!(
        app.queue(&moderator, "reports", "status=reported").await["items"],
        json!([])
    );
    assert_eq!(app.counts("reports").await["west"], Some(2));
    problem(
        app.decide(&moderator, "reports", &first, json!({"action": "dismiss"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;

    // A report followed by a hide: the hide resolves it.
    report(
        planner.clone(),
        second.clone(),
        json!({"reason": "offensive comment"}),
    )
    .await;
    let hidden: Value = app
        .decide(
            &moderator,
            "reports",
            &second,
            json!({"action": "hide", "reason": "offensive"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hidden["reports_resolved"], 1);
    assert_eq!(app.counts("reports").await["west"], Some(1));
    let log: Value = serde_json::from_str(
        &app.get_as_admin("/api/v1/admin/audit?campaign=reports&action=submission.report")
            .await,
    )
    .unwrap();
    assert_eq!(log["entries"].as_array().unwrap().len(), 3);
    assert_eq!(log["entries"][0]["reason"], "offensive comment");
}

#[tokio::test]
async fn the_queue_is_paged_oldest_first_and_checks_its_parameters() {
    let app = TestApp::spawn().await;
    app.open_campaign("paged", json!({"moderation": "pre"}))
        .await;
    let moderator = app.staff_token(Role::Moderator).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.submit_id("paged", 2.01 + f64::from(i) * 0.01, 48.05, answers())
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = app.queue(&moderator, "paged", &query).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(after) => query = format!("limit=2&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    for query in [
        "status=spam",
        "limit=0",
        "limit=201",
        "after=yesterday",
        "colour=red",
    ] {
        let response = app
            .request_as(
                Some(&moderator),
                Method::GET,
                &format!("/api/v1/moderation/campaigns/paged/queue?{query}"),
                None,
            )
            .await;
        problem(response, StatusCode::BAD_REQUEST).await;
    }
}
