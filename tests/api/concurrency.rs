//! Many citizens at once: counts stay exact.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, household, point};

#[tokio::test]
async fn two_hundred_concurrent_submissions_are_all_counted_exactly_once() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "rush",
        json!({"privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let url = app.url("/api/v1/campaigns/rush/submissions");
    // 100 households, each posting twice at once: their first contribution must be counted
    // once, whichever of the two commits first.
    let households: Vec<String> = (0..100).map(|_| household()).collect();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (client, url) = (app.client.clone(), url.clone());
            let from = households[i / 2].clone();
            // Spread over the three districts, a third of them in the same one.
            let lon = 2.01 + ((i / 2) % 29) as f64 * 0.01;
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("x-forwarded-for", from)
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
    let (firsts, contributors): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM submissions WHERE first_contribution),
                (SELECT sum(contributors)::bigint FROM district_counts)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((firsts, contributors), (100, 100));
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
