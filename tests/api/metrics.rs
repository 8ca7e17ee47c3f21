//! Prometheus metrics on their own listener: requests by route and status with latencies,
//! submissions stored, batch sizes, queue depth, tile requests and builds, rate-limit refusals,
//! the pool. Counters are process-wide and other tests run beside this one, so it checks that
//! each moves by at least what it did itself.

use reqwest::StatusCode;

use crate::helpers::{TestApp, answers, exact, household, test_config};

/// The metrics listener of `app`'s database, on a port of its own.
async fn metrics_listener(app: &TestApp) -> String {
    let state = civicmap::http::AppState::new(app.db.clone(), test_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, civicmap::http::metrics::router(state))
            .await
            .unwrap();
    });
    format!("http://{addr}/metrics")
}

/// The sum of the samples of `name` whose labels contain every one of `labels`.
async fn sample(url: &str, name: &str, labels: &[&str]) -> f64 {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let metric = series.split('{').next().unwrap_or_default();
            metric == name && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_count_requests_submissions_tiles_and_refusals() {
    let app = TestApp::spawn().await;
    app.open_campaign("metered", exact()).await;
    let url = metrics_listener(&app).await;
    let route = r#"route="/api/v1/campaigns/{slug}/submissions""#;
    let created = |url: &str| {
        let url = url.to_owned();
        async move {
            sample(
                &url,
                "civicmap_http_requests_total",
                &[route, r#"status="201""#, r#"method="POST""#],
            )
            .await
        }
    };
    let (requests, stored, batches, tiles, builds) = (
        created(&url).await,
        sample(&url, "civicmap_submissions_stored_total", &[]).await,
        sample(&url, "civicmap_submission_batch_size_count", &[]).await,
        sample(&url, "civicmap_tile_requests_total", &[]).await,
        sample(&url, "civicmap_tile_builds_total", &[]).await,
    );
    for _ in 0..3 {
        let response = app.submit("metered", 2.05, 48.05, answers()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    for _ in 0..2 {
        app.get("/tiles/metered/12/2071/1418.mvt").await;
    }
    assert!(created(&url).await >= requests + 3.0);
    assert!(sample(&url, "civicmap_submissions_stored_total", &[]).await >= stored + 3.0);
    assert!(sample(&url, "civicmap_submission_batch_size_count", &[]).await >= batches + 1.0);
    assert!(sample(&url, "civicmap_tile_requests_total", &[]).await >= tiles + 2.0);
    assert!(sample(&url, "civicmap_tile_builds_total", &[]).await >= builds + 1.0);
    // Latencies by route, as a histogram.
    assert!(
        sample(
            &url,
            "civicmap_http_request_duration_seconds_count",
            &[route]
        )
        .await
            >= 3.0
    );
    assert!(sample(&url, "civicmap_db_pool_connections", &[]).await >= 1.0);

    // A refusal by the rate limit is counted.
    let mut config = test_config();
    config.rate_limits.per_ip_per_minute = 1;
    config.rate_limits.per_ip_burst = 1;
    let limited = TestApp::spawn_with(config).await;
    limited.open_campaign("limited", exact()).await;
    let refusals = sample(
        &url,
        "civicmap_rate_limited_total",
        &[r#"scope="submit/client""#],
    )
    .await;
    let from = household();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = limited
            .submit_from(&from, "limited", 2.05, 48.05, answers())
            .await;
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::TOO_MANY_REQUESTS]
    );
    assert!(
        sample(
            &url,
            "civicmap_rate_limited_total",
            &[r#"scope="submit/client""#]
        )
        .await
            >= refusals + 1.0
    );
}
