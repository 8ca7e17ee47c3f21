//! `civicmap backup` and `civicmap restore`: a round trip gives back every campaign's counts,
//! exports and tiles exactly, and a restore never half-happens.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, civicmap, empty_database, fresh_database, url_of};
use crate::tiles::tile_of;

/// Everything the public and the staff can read of `slug`: status and body of each.
async fn snapshot(app: &TestApp, token: &str, slug: &str) -> Vec<(String, u16, Vec<u8>)> {
    let mut paths: Vec<String> = [
        "",
        "/districts.geojson",
        "/aggregates.geojson",
        "/aggregates.csv",
        "/aggregates.csv?by=h3:8",
        "/aggregates.geojson?by=h3:9&breakdown=connection",
        "/timeseries.csv",
    ]
    .iter()
    .map(|p| format!("/api/v1/campaigns/{slug}{p}"))
    .collect();
    paths.extend([
        format!("/api/v1/admin/campaigns/{slug}"),
        format!("/api/v1/admin/campaigns/{slug}/submissions.csv"),
        format!("/api/v1/admin/campaigns/{slug}/submissions.geojson"),
        format!("/api/v1/moderation/campaigns/{slug}/queue"),
    ]);
    for z in [9, 11, 13, 15] {
        let (x, y) = tile_of(2.1, 48.05, z);
        paths.push(format!("/tiles/{slug}/{z}/{x}/{y}.mvt"));
    }
    let mut seen = Vec::new();
    for path in paths {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap().to_vec();
        seen.push((path, status, body));
    }
    seen
}

async fn campaigns_worth_saving(app: &TestApp) {
    app.open_campaign(
        "saved",
        json!({"privacy": {"public_precision_m": 50, "min_count": 3}}),
    )
    .await;
    for i in 0..40 {
        let lon = 2.01 + f64::from(i % 27) * 0.01;
        let lat = 48.01 + f64::from(i % 7) * 0.01;
        let answers = json!({"households": 1 + i % 4, "connection": if i % 3 == 0 { "none" } else { "adsl" }});
        let response = app.submit("saved", lon, lat, answers).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    app.open_campaign(
        "queued",
        json!({"moderation": "pre", "privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    for i in 0..5 {
        let answers = json!({"households": 2, "connection": "adsl", "comment": format!("n{i}")});
        let response = app.submit("queued", 2.05, 48.05, answers).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

#[tokio::test]
async fn a_backup_restores_every_count_export_and_tile_exactly() {
    let (pool, options) = fresh_database().await;
    let url = url_of(&options);
    let app = TestApp::spawn_on(pool).await;
    campaigns_worth_saving(&app).await;
    let mut before = Vec::new();
    for slug in ["saved", "queued"] {
        before.extend(snapshot(&app, &app.admin_token, slug).await);
    }
    assert!(
        before
            .iter()
            .all(|(path, status, _)| *status == 200
                || (path.starts_with("/tiles/") && *status == 204)),
        "{:?}",
        before.iter().map(|(p, s, _)| (p, s)).collect::<Vec<_>>()
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("city.dump");
    let file = file.to_str().unwrap();
    let backup = civicmap(&url, &["backup", file]);
    let said = String::from_utf8_lossy(&backup.stdout);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(said.contains("2 campaigns, 45 submissions"), "{said}");
    assert!(!std::path::Path::new(&format!("{file}.partial")).exists());

    // 1. Into an empty database, without even PostGIS (a new server after losing the old one).
    let empty = empty_database().await;
    let empty_url = url_of(&empty);
    let restored = civicmap(&empty_url, &["restore", file]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(String::from_utf8_lossy(&restored.stdout).contains("2 campaigns, 45 submissions"));
    let elsewhere = TestApp::spawn_on(civicmap::database::pool(empty, 4)).await;
    let mut after = Vec::new();
    for slug in ["saved", "queued"] {
        after.extend(snapshot(&elsewhere, &app.admin_token, slug).await);
    }
    assert_same(&before, &after);

    // 2. Over the same database after a mistake: what came after the backup is gone.
    for _ in 0..6 {
        app.submit(
            "saved",
            2.1,
            48.05,
            json!({"households": 1, "connection": "adsl"}),
        )
        .await;
    }
    let response = app
        .admin_patch(
            "/api/v1/admin/campaigns/saved",
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The server is still connected: refused, nothing changed.
    let refused = civicmap(&url, &["restore", file]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("civicmap servers are connected") || why.contains("running civicmap servers"),
        "{why}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 51);
    let forced = civicmap(&url, &["restore", "--force", file]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    // A restarted server (fresh caches) on the restored database.
    let restarted = TestApp::spawn_on(civicmap::database::pool(options, 4)).await;
    let mut again = Vec::new();
    for slug in ["saved", "queued"] {
        again.extend(snapshot(&restarted, &app.admin_token, slug).await);
    }
    assert_same(&before, &again);
}

fn assert_same(before: &[(String, u16, Vec<u8>)], after: &[(String, u16, Vec<u8>)]) {
    assert_eq!(before.len(), after.len());
    for ((path, status, body), (path_after, status_after, body_after)) in before.iter().zip(after) {
        assert_eq!((path, status), (path_after, status_after));
        assert!(
            body == body_after,
            "{path} differs after the restore:\n{}\n---\n{}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(body_after)
        );
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_civicmap_backup_is_refused_and_changes_nothing() {
    let (pool, options) = fresh_database().await;
    let url = url_of(&options);
    let app = TestApp::spawn_on(pool).await;
    app.open_campaign("kept", json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a backup").unwrap();
    let missing = dir.path().join("missing.dump");
    for (file, expected) in [
        (&text, "is not a backup made by `civicmap backup`"),
        (&missing, "no such file"),
    ] {
        let refused = civicmap(&url, &["restore", "--force", file.to_str().unwrap()]);
        assert!(!refused.status.success());
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(why.contains(expected), "{why}");
    }
    // A backup into a directory that does not exist fails, and leaves no file behind.
    let nowhere = dir.path().join("no/such/dir/city.dump");
    let failed = civicmap(&url, &["backup", nowhere.to_str().unwrap()]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("pg_dump failed"));
    let response = app.get("/api/v1/campaigns/kept").await;
    assert_eq!(response.status(), StatusCode::OK);
}
