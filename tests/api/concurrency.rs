//! Many citizens at once: counts stay exact.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, point};

#[tokio::test]
async fn two_hundred_concurrent_submissions_are_all_counted_exactly_once() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "rush",
        json!({"privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let url = app.url("/api/v1/campaigns/rush/submissions");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (client, url) = (app.client.clone(), url.clone());
            // Spread over the three districts, a third of them in the same one.
            let lon = 2.01 + f64::from(i % 29) * 0.01;
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&point(lon, 48.05, answers()))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    let counts = app.counts("rush").await;
    assert_eq!(counts["total"], Some(200));
    assert_eq!(
        counts["west"].unwrap() + counts["middle"].unwrap() + counts["east"].unwrap(),
        200
    );
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT d.code, count(*) FROM submissions s JOIN districts d ON d.id = s.district_id GROUP BY d.code",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    for (code, count) in stored {
        assert_eq!(counts[&code], Some(count), "{code}");
    }
    let body: Value = app
        .get("/api/v1/campaigns/rush/districts.geojson")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["total"]["count"], 200);
}
