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

#[tokio::test]
async fn retries_in_flight_in_two_batches_are_stored_once_and_never_deadlock() {
    // Two batches holding the same idempotency keys in opposite orders (clients retrying while
    // their first attempt is still in another batch): each key must be stored once, every
    // request answered, and the two statements must not wait for each other in a cycle.
    let app = TestApp::spawn().await;
    app.open_campaign(
        "retries",
        json!({"privacy": {"public_precision_m": 50, "min_count": 1}}),
    )
    .await;
    let campaign = std::sync::Arc::new(civicmap::campaigns::get(&app.db, "retries").await.unwrap());
    let pending = |key: &str| civicmap::submissions::Pending {
        campaign: campaign.clone(),
        submission: civicmap::submissions::NewSubmission {
            point: civicmap::location::WgsPoint::new(2.05, 48.05).unwrap(),
            answers: answers().as_object().unwrap().clone(),
        },
        key: Some(civicmap::submissions::IdempotencyKey {
            key: key.to_owned(),
            request_hash: vec![7; 32],
        }),
        client_hash: None,
        contributor: None,
    };
    // Batches large enough for the two statements to overlap in time.
    let (rounds, size) = (5, 2_000);
    for round in 0..rounds {
        let keys: Vec<String> = (0..size).map(|i| format!("retry-{round}-{i}")).collect();
        let forward: Vec<_> = keys.iter().map(|k| pending(k)).collect();
        let backward: Vec<_> = keys.iter().rev().map(|k| pending(k)).collect();
        let (a, b) = tokio::join!(
            civicmap::submissions::store_batch(&app.db, &forward, 0),
            civicmap::submissions::store_batch(&app.db, &backward, 1)
        );
        for result in a.unwrap().into_iter().chain(b.unwrap()) {
            assert!(result.is_ok(), "round {round}: {result:?}");
        }
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, rounds * size);
    assert_eq!(app.counts("retries").await["total"], Some(rounds * size));
}
