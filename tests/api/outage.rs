//! The database goes away and comes back: 503 with Retry-After meanwhile, then service
//! resumes by itself, without restarting civicmap.

use std::time::{Duration, Instant};

use civicmap::database::embedded::EmbeddedCluster;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, answers, problem};

#[tokio::test]
async fn a_database_outage_gives_503s_then_heals_without_a_restart() {
    // This test stops its database, so it runs its own embedded cluster.
    let dir = tempfile::tempdir().unwrap();
    let cluster = EmbeddedCluster::new(dir.path()).unwrap();
    cluster.start().await.unwrap();
    let pool = civicmap::database::pool(cluster.connect_options(), 4);
    civicmap::database::migrate(&pool).await.unwrap();
    let app = TestApp::spawn_on(pool).await;
    app.open_campaign("outage", json!({})).await;
    assert_eq!(
        app.submit("outage", 2.05, 48.05, answers()).await.status(),
        StatusCode::CREATED
    );

    cluster.stop().await.unwrap();
    let down = app.submit("outage", 2.05, 48.05, answers()).await;
    assert_eq!(down.headers()["retry-after"], "2");
    let refused = problem(down, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        refused["detail"],
        "the database is unavailable; please retry in a few seconds"
    );
    problem(app.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE).await;
    problem(
        app.get("/api/v1/campaigns/outage/districts.geojson").await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    cluster.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.submit("outage", 2.05, 48.05, answers()).await.status();
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Instant::now() < deadline,
            "civicmap did not recover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        stored, 2,
        "the acknowledged submissions survived the outage, the refused one was not stored"
    );
    app.db.close().await;
    cluster.stop().await.unwrap();
}
