//! Many citizens at once: counts stay exact.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, exact, household, point};

#[tokio::test]
async fn two_hundred_concurrent_submissions_are_all_counted_exactly_once() {
    let app = TestApp::spawn().await;
    app.open_campaign("rush", exact()).await;
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
    app.open_campaign("retries", exact()).await;
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

/// A row the database refuses, for a reason nobody foresaw, fails only its own submission:
/// the others queued in the same batch are stored and counted, and their citizens get 201.
#[tokio::test]
async fn a_row_the_database_refuses_fails_alone_not_its_batch() {
    let app = TestApp::spawn().await;
    app.open_campaign("poison", exact()).await;
    // The unforeseen: the database refuses one answer. (A trigger stands in for whatever a
    // future constraint, extension or bug might refuse.)
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.answers->>'comment' = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON submissions
           FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
    )
    .execute(&app.db)
    .await
    .unwrap();
    // Hold the writers while everything is queued, so that batches are large and mixed.
    let mut hold = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE submissions IN SHARE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let url = app.url("/api/v1/campaigns/poison/submissions");
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (client, url) = (app.client.clone(), url.clone());
            let comment = if i % 15 == 7 { "poison" } else { "fine" };
            let answers = json!({"households": 1, "connection": "adsl", "comment": comment});
            let lon = 2.01 + (i % 29) as f64 * 0.01;
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("x-forwarded-for", household())
                    .json(&point(lon, 48.05, answers))
                    .send()
                    .await
                    .unwrap();
                (comment, response.status())
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    hold.commit().await.unwrap();
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        let (comment, status) = task.await.unwrap();
        *statuses.entry((comment, status.as_u16())).or_insert(0) += 1;
    }
    // The poisoned ones fail as the server's own fault (nothing the citizen could fix), alone.
    assert_eq!(
        statuses,
        [(("fine", 201), 56), (("poison", 500), 4)]
            .into_iter()
            .collect()
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 56);
    assert_eq!(app.counts("poison").await["total"], Some(56));
}
