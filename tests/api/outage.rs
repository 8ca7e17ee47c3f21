//! The database goes away and comes back: 503 with Retry-After meanwhile, then service
//! resumes by itself, without restarting civicmap.

use std::time::{Duration, Instant};

use civicmap::database::embedded::EmbeddedCluster;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, answers, exact, problem};

/// An embedded cluster of the test's own (these tests stop or kill it), started, with a pool
/// of `connections`; the directory lives as long as the returned guard.
async fn own_cluster(connections: u32) -> (tempfile::TempDir, EmbeddedCluster, sqlx::PgPool) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = EmbeddedCluster::new(dir.path()).unwrap();
    cluster.start().await.unwrap();
    let pool = civicmap::database::pool(cluster.connect_options(), connections);
    (dir, cluster, pool)
}

#[tokio::test]
async fn a_database_outage_gives_503s_then_heals_without_a_restart() {
    // This test stops its database, so it runs its own embedded cluster.
    let (_dir, cluster, pool) = own_cluster(4).await;
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

#[tokio::test]
async fn a_killed_embedded_cluster_is_restarted_and_nothing_acknowledged_is_lost() {
    // The kernel's OOM killer takes the embedded postmaster (SIGKILL) while citizens submit.
    let (_dir, cluster, pool) = own_cluster(4).await;
    civicmap::database::migrate(&pool).await.unwrap();
    let app = std::sync::Arc::new(TestApp::spawn_on(pool.clone()).await);
    app.open_campaign("crash", exact()).await;
    let supervisor = cluster.clone().supervise(app.health.clone());

    // Four clients submit without pause, keeping the id of every 201.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut acknowledged, mut statuses) = (Vec::new(), Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let lon = 2.01 + 0.02 * f64::from(c);
                    let response = app.submit("crash", lon, 48.05, answers()).await;
                    let status = response.status();
                    statuses.push(status);
                    if status == StatusCode::CREATED {
                        let body: serde_json::Value = response.json().await.unwrap();
                        acknowledged.push(body["id"].as_str().unwrap().to_owned());
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                (acknowledged, statuses)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;

    let postmaster = cluster.postmaster().expect("the cluster runs");
    nix::sys::signal::kill(postmaster, nix::sys::signal::Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    // Readiness says so at once (no wait for a pool timeout) once the supervisor noticed.
    while !app.health.is_away() {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the supervisor noticed the crash within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let noticed = killed.elapsed();
    let asked = Instant::now();
    let readiness = app.get("/readyz").await.status();
    let fast_503 = asked.elapsed();
    if app.health.is_away() {
        assert_eq!(readiness, StatusCode::SERVICE_UNAVAILABLE);
        assert!(fast_503 < Duration::from_millis(500), "{fast_503:?}");
    }
    let down = app.submit("crash", 2.05, 48.05, answers()).await;
    if app.health.is_away() {
        assert_eq!(down.headers()["retry-after"], "2");
        problem(down, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    // Back by itself, without a human.
    let back = loop {
        if app.get("/readyz").await.status() == StatusCode::OK {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "not back after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for client in clients {
        let (ids, statuses) = client.await.unwrap();
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::CREATED || *s == StatusCode::SERVICE_UNAVAILABLE),
            "only 201 and 503: {statuses:?}"
        );
        acknowledged.extend(ids);
    }
    assert!(!acknowledged.is_empty());
    // Every acknowledged submission is stored, and the counters equal the rows.
    let ids: Vec<uuid::Uuid> = acknowledged.iter().map(|i| i.parse().unwrap()).collect();
    crate::helpers::assert_stored(&pool, &ids, "acknowledged").await;
    crate::helpers::assert_counters_match_rows(&pool).await;
    eprintln!(
        "killed: noticed after {noticed:?}, 503 from /readyz in {fast_503:?}; back after {back:?}; {} acknowledged, all stored",
        ids.len()
    );
    supervisor.abort();
    let _ = supervisor.await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn the_embedded_cluster_starts_right_after_a_crash() {
    // `civicmap db start` (EmbeddedCluster::start) just after the postmaster was killed: the
    // old backends may still hold the shared memory; start waits for them instead of failing.
    let (_dir, cluster, pool) = own_cluster(2).await;
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
    let postmaster = cluster.postmaster().expect("the cluster runs");
    nix::sys::signal::kill(postmaster, nix::sys::signal::Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    while cluster.postmaster().is_some() {
        assert!(killed.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!cluster.is_running().await.unwrap());
    cluster.start().await.unwrap();
    assert!(cluster.is_running().await.unwrap());
    let fresh = civicmap::database::pool(cluster.connect_options(), 2);
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&fresh)
        .await
        .unwrap();
    assert_eq!(one, 1);
    eprintln!("started again {:?} after the kill", killed.elapsed());
    cluster.stop().await.unwrap();
}

/// The writers' connections are killed (a failover, an administrator's
/// `pg_terminate_backend`, a proxy's idle timeout): the next submissions are stored on new
/// connections, with no 5xx and no restart.
#[tokio::test]
async fn writers_whose_connections_are_killed_keep_storing() {
    let app = TestApp::spawn().await;
    app.open_campaign("cut", json!({})).await;
    for _ in 0..5 {
        let response = app.submit("cut", 2.05, 48.05, answers()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'civicmap-writer') k",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(killed >= 1, "the writers had connections to kill");
    for _ in 0..20 {
        let response = app.submit("cut", 2.05, 48.05, answers()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_eq!(app.counts("cut").await["total"], Some(25));
}
