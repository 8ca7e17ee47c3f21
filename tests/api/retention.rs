//! Retention: after a campaign closes and its retention period passes, exact positions are
//! snapped to the centre of their public grid cell and free text is deleted, while district
//! counts and grid cells stay exactly the same; the run happens once and is audited.

use std::collections::BTreeMap;

use civicmap::audit::Actor;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, answers, fresh_database, problem};
use crate::helpers::{civicmap, url_of};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct Stored {
    id: Uuid,
    x: f64,
    y: f64,
    district_id: Option<i64>,
    answers: sqlx::types::Json<Value>,
    grid: f64,
}

async fn stored(app: &TestApp, slug: &str) -> Vec<Stored> {
    sqlx::query_as(
        "SELECT s.id, ST_X(ST_Transform(s.geom, 3857)) AS x, ST_Y(ST_Transform(s.geom, 3857)) AS y,
                s.district_id, s.answers, c.grid_size AS grid
         FROM submissions s JOIN campaigns c ON c.id = s.campaign_id
         WHERE c.slug = $1 ORDER BY s.id",
    )
    .bind(slug)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn cells(app: &TestApp, slug: &str) -> Vec<(i64, i64, i64)> {
    sqlx::query_as(
        "SELECT h3, COALESCE(district_id, 0), count(*) FROM submissions
         WHERE campaign_id = (SELECT id FROM campaigns WHERE slug = $1) AND status = 'published'
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(slug)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

fn cell(x: f64, grid: f64) -> i64 {
    (x / grid).floor() as i64
}

#[tokio::test]
async fn retention_snaps_positions_and_deletes_free_text_once_keeping_every_count() {
    let (pool, options) = fresh_database().await;
    let url = url_of(&options);
    let app = TestApp::spawn_on(pool).await;
    app.open_campaign(
        "keep",
        json!({"retention_days": 0, "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let points = [
        (2.012_345, 48.012_345, Some("ring twice")),
        (2.012_6, 48.012_4, None),
        (2.055_555, 48.077_777, Some("top floor")),
        (2.133_333, 48.066_666, Some("no fibre")),
        (2.251_111, 48.021_111, None),
    ];
    for (lon, lat, comment) in points {
        let mut a = answers();
        if let Some(comment) = comment {
            a["comment"] = json!(comment);
        }
        assert_eq!(
            app.submit("keep", lon, lat, a).await.status(),
            StatusCode::CREATED
        );
    }
    // An untouched neighbour: no retention period.
    app.open_campaign("forever", json!({})).await;
    let mut a = answers();
    a["comment"] = json!("kept");
    app.submit("forever", 2.05, 48.05, a).await;

    let before = stored(&app, "keep").await;
    let counts_before = app.counts("keep").await;
    let cells_before = cells(&app, "keep").await;
    let forever_before = stored(&app, "forever").await;

    // Open: not due, whatever the period.
    let early = civicmap(&url, &["retention", "run", "--campaign", "keep"]);
    assert!(
        String::from_utf8_lossy(&early.stdout).contains("nothing to do: it is not closed"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    assert_eq!(stored(&app, "keep").await, before);

    let closed = app
        .admin_patch("/api/v1/admin/campaigns/keep", &json!({"status": "closed"}))
        .await;
    assert_eq!(closed.status(), StatusCode::OK);

    let dry = civicmap(&url, &["retention", "run", "--dry-run"]);
    let dry = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(
        dry.contains("`keep`: 5 positions would be snapped")
            && dry.contains("(comment) would be deleted from 3 submissions"),
        "{dry}"
    );
    assert!(!dry.contains("forever"), "{dry}");
    assert_eq!(
        stored(&app, "keep").await,
        before,
        "a dry run changes nothing"
    );

    let run = civicmap(&url, &["retention", "run"]);
    let out = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(out.contains("`keep`: 5 positions were snapped"), "{out}");

    let after = stored(&app, "keep").await;
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        let g = old.grid;
        assert_eq!(old.id, new.id);
        assert_eq!(new.district_id, old.district_id, "the district is kept");
        assert_eq!(
            (cell(new.x, g), cell(new.y, g)),
            (cell(old.x, g), cell(old.y, g)),
            "the same cell"
        );
        let centre = |v: f64| (cell(v, g) as f64 + 0.5) * g;
        assert!(
            (new.x - centre(old.x)).abs() < 1e-6 && (new.y - centre(old.y)).abs() < 1e-6,
            "at its cell's centre: {new:?}"
        );
        assert!(
            (new.x - old.x).hypot(new.y - old.y) > 0.01,
            "no longer at the exact position"
        );
        let mut kept = old.answers.0.clone();
        kept.as_object_mut().unwrap().remove("comment");
        assert_eq!(new.answers.0, kept, "free text deleted, other answers kept");
    }
    assert_eq!(app.counts("keep").await, counts_before, "counts unchanged");
    assert_eq!(
        cells(&app, "keep").await,
        cells_before,
        "H3 cells unchanged"
    );
    assert_eq!(stored(&app, "forever").await, forever_before);
    // The contributors' keyed hashes go with the retention, the other campaign's stay.
    let contributors = |slug: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM contributors t JOIN campaigns c ON c.id = t.campaign_id
             WHERE c.slug = $1",
        )
        .bind(slug)
        .fetch_one(&app.db)
    };
    assert_eq!(contributors("keep").await.unwrap(), 0);
    assert!(contributors("forever").await.unwrap() > 0);

    let campaign: Value = app
        .get("/api/v1/campaigns/keep")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(campaign["retention_days"], 0);
    assert!(campaign["retention_applied_at"].is_string());

    // Once: a second run does nothing.
    let again = civicmap(&url, &["retention", "run", "--campaign", "keep"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("was already coarsened"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let none = civicmap(&url, &["retention", "run"]);
    assert_eq!(
        String::from_utf8_lossy(&none.stdout).trim(),
        "no campaign is due"
    );
    assert_eq!(stored(&app, "keep").await, after);

    let log: Value = serde_json::from_str(
        &app.get_as_admin("/api/v1/admin/audit?campaign=keep&action=retention.apply")
            .await,
    )
    .unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["actor"], "command line");
    assert_eq!(entries[0]["details"]["submissions_snapped"], 5);
    assert_eq!(
        entries[0]["details"]["text_fields_deleted"],
        json!(["comment"])
    );
}

#[tokio::test]
async fn retention_counts_its_days_from_closes_at_or_the_closing() {
    let app = TestApp::spawn().await;
    app.open_campaign("dated", json!({"retention_days": 3}))
        .await;
    let mut a = answers();
    a["comment"] = json!("soon gone");
    app.submit("dated", 2.05, 48.05, a).await;
    let two_days_ago = (time::OffsetDateTime::now_utc() - time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let patched = app
        .admin_patch(
            "/api/v1/admin/campaigns/dated",
            &json!({"closes_at": two_days_ago}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let run = |dry_run| civicmap::retention::run(&app.db, Actor::Cli, Some("dated"), dry_run);
    assert!(
        run(false).await.unwrap().is_empty(),
        "closed 2 days ago, kept 3"
    );
    app.admin_patch(
        "/api/v1/admin/campaigns/dated",
        &json!({"retention_days": 1}),
    )
    .await;
    let done = run(false).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].with_text, 1);
    assert!(run(false).await.unwrap().is_empty(), "once");
    let answers: Value = sqlx::query_scalar("SELECT answers FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(answers.get("comment").is_none(), "{answers}");

    // Reopened and closed again with new submissions: those are coarsened too.
    app.admin_patch(
        "/api/v1/admin/campaigns/dated",
        &json!({"closes_at": null, "retention_days": 0}),
    )
    .await;
    let mut a = crate::helpers::answers();
    a["comment"] = json!("late");
    assert_eq!(
        app.submit("dated", 2.06, 48.06, a).await.status(),
        StatusCode::CREATED
    );
    assert!(run(false).await.unwrap().is_empty(), "open again: not due");
    app.admin_patch(
        "/api/v1/admin/campaigns/dated",
        &json!({"status": "closed"}),
    )
    .await;
    let done = run(false).await.unwrap();
    assert_eq!(done.len(), 1, "new submissions since the last run");
    let texts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM submissions WHERE answers ? 'comment'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(texts, 0);

    let mut refused = BTreeMap::new();
    for days in [json!(-1), json!(36_501), json!("ten")] {
        let response = app
            .admin_patch(
                "/api/v1/admin/campaigns/dated",
                &json!({"retention_days": days}),
            )
            .await;
        refused.insert(
            days.to_string(),
            problem(response, StatusCode::UNPROCESSABLE_ENTITY).await["field"].clone(),
        );
    }
    assert!(
        refused.values().all(|f| f == "retention_days"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn retention_deletes_the_text_of_removed_fields_and_coarsens_a_later_correction() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "gone",
        json!({"retention_days": 0, "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let mut a = answers();
    a["comment"] = json!("behind the bakery");
    let receipt: Value = app
        .submit("gone", 2.012_345, 48.012_345, a)
        .await
        .json()
        .await
        .unwrap();
    // The city drops the free-text field from the form: the text already given stays stored.
    let mut form = crate::helpers::test_form();
    form["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["key"] != "comment");
    let changed = app
        .admin_patch("/api/v1/admin/campaigns/gone", &json!({"form": form}))
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        stored(&app, "gone").await[0].answers.0["comment"],
        "behind the bakery"
    );
    let close = async |status: &str| {
        app.admin_patch("/api/v1/admin/campaigns/gone", &json!({ "status": status }))
            .await
    };
    assert_eq!(close("closed").await.status(), StatusCode::OK);
    let done = civicmap::retention::run(&app.db, Actor::Cli, Some("gone"), false)
        .await
        .unwrap();
    assert_eq!(done[0].text_fields, ["comment"]);
    let after = &stored(&app, "gone").await[0];
    assert!(
        after.answers.0.get("comment").is_none(),
        "{:?}",
        after.answers
    );

    // Reopened, the submitter corrects their point to an exact position; once closed again,
    // the retention run is due again and coarsens it.
    assert_eq!(close("open").await.status(), StatusCode::OK);
    let exact = (2.033_333, 48.044_444);
    let corrected = app
        .client
        .patch(app.url(&format!(
            "/api/v1/campaigns/gone/submissions/{}",
            receipt["id"].as_str().unwrap()
        )))
        .header("X-Edit-Token", receipt["edit_token"].as_str().unwrap())
        .json(&crate::helpers::point(exact.0, exact.1, answers()))
        .send()
        .await
        .unwrap();
    assert_eq!(corrected.status(), StatusCode::OK);
    assert_eq!(close("closed").await.status(), StatusCode::OK);
    let again = civicmap::retention::run(&app.db, Actor::Cli, Some("gone"), false)
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        1,
        "a correction after coarsening makes it due again"
    );
    let s = &stored(&app, "gone").await[0];
    let centre = |v: f64| (cell(v, s.grid) as f64 + 0.5) * s.grid;
    assert!(
        (s.x - centre(s.x)).abs() < 1e-6 && (s.y - centre(s.y)).abs() < 1e-6,
        "the corrected point is at its cell's centre: {s:?}"
    );
    // And nothing more to do after that.
    let none = civicmap::retention::run(&app.db, Actor::Cli, Some("gone"), false)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}
