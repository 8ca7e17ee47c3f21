//! Trust and safety: the honeypot and fill time, proof of work, duplicates and rate limits.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, answers, exact, point, problem, test_config};

/// `settings` merged into the exact-count settings.
fn with(settings: Value) -> Value {
    let mut all = exact();
    all.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    all
}

/// A server that takes the client's address from `X-Forwarded-For`.
fn behind_proxy() -> civicmap::http::ServerConfig {
    let mut config = test_config();
    config.client_ip.trusted_header = Some("x-forwarded-for".parse().unwrap());
    config.client_ip.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    config
}

/// Posts a submission at (lon, lat) with extra headers.
async fn post(
    app: &TestApp,
    slug: &str,
    lon: f64,
    lat: f64,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{slug}/submissions")))
        .json(&point(lon, lat, answers()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in bytes {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

/// Solves a challenge as the widget does: the first decimal nonce whose hash is good enough.
pub(crate) fn solve(challenge: &str, difficulty: u32) -> u64 {
    (0..)
        .find(|n| leading_zero_bits(&Sha256::digest(format!("{challenge}:{n}"))) >= difficulty)
        .unwrap()
}

/// A solved proof for campaign `slug`, as client `from` gets one: `<challenge>:<nonce>`, the
/// value of `Civicmap-Proof` (solved off the runtime's thread, as a phone does beside the page).
pub(crate) async fn proof_for(app: &TestApp, slug: &str, from: &str) -> String {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{slug}/challenges")))
        .header("X-Forwarded-For", from)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let text = body["challenge"].as_str().unwrap().to_owned();
    let difficulty = body["difficulty"].as_u64().unwrap() as u32;
    let nonce = tokio::task::spawn_blocking({
        let text = text.clone();
        move || solve(&text, difficulty)
    })
    .await
    .unwrap();
    format!("{text}:{nonce}")
}

async fn challenge(app: &TestApp, slug: &str) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{slug}/challenges")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_filled_honeypot_or_a_form_filled_too_fast_is_refused_and_api_clients_are_not_checked() {
    let app = TestApp::spawn().await;
    let campaign = app
        .open_campaign("trap", with(json!({"min_fill_seconds": 5})))
        .await;
    assert_eq!(campaign["min_fill_seconds"], 5);
    let public: Value = app
        .get("/api/v1/campaigns/trap")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public["min_fill_seconds"], 5);

    let refused = post(
        &app,
        "trap",
        2.05,
        48.05,
        &[
            ("Civicmap-Honeypot", "https://cheap-pills.example"),
            ("Civicmap-Fill-Ms", "9000"),
        ],
    )
    .await;
    let body = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "website");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("must be left empty")
    );

    let refused = post(
        &app,
        "trap",
        2.05,
        48.05,
        &[("Civicmap-Honeypot", ""), ("Civicmap-Fill-Ms", "800")],
    )
    .await;
    let body = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "form");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("0.8 s") && detail.contains("at least 5 s"),
        "{detail}"
    );

    let bad = post(
        &app,
        "trap",
        2.05,
        48.05,
        &[("Civicmap-Fill-Ms", "a while")],
    )
    .await;
    let body = problem(bad, StatusCode::BAD_REQUEST).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Civicmap-Fill-Ms")
    );

    // A person (empty trap, took long enough) and an API client (no headers) are stored.
    let person = post(
        &app,
        "trap",
        2.05,
        48.05,
        &[("Civicmap-Honeypot", ""), ("Civicmap-Fill-Ms", "5000")],
    )
    .await;
    assert_eq!(person.status(), StatusCode::CREATED);
    let program = post(&app, "trap", 2.05, 48.05, &[]).await;
    assert_eq!(program.status(), StatusCode::CREATED);
    assert_eq!(app.counts("trap").await["west"], Some(2));

    // The setting is bounded.
    let response = app
        .admin_patch(
            "/api/v1/admin/campaigns/trap",
            &json!({"min_fill_seconds": 61}),
        )
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "min_fill_seconds");
}

#[tokio::test]
async fn a_campaign_with_proof_of_work_takes_a_solved_challenge_once() {
    let app = TestApp::spawn().await;
    let campaign = app
        .open_campaign("pow", with(json!({"proof_of_work": {"difficulty": 10}})))
        .await;
    assert_eq!(campaign["proof_of_work"], json!({"difficulty": 10}));
    let public: Value = app.get("/api/v1/campaigns/pow").await.json().await.unwrap();
    assert_eq!(public["proof_of_work"], json!({"difficulty": 10}));

    // Without a proof: 422 telling how to get one, with its own problem type.
    let body = problem(
        post(&app, "pow", 2.05, 48.05, &[]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["type"], "urn:civicmap:problem:proof-of-work-needed");
    assert_eq!(body["field"], "proof_of_work");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/api/v1/campaigns/pow/challenges")
    );

    let issued = challenge(&app, "pow").await;
    assert_eq!(issued["difficulty"], 10);
    let text = issued["challenge"].as_str().unwrap();
    assert!(text.is_ascii() && !text.contains(':'));
    let expires = time::OffsetDateTime::parse(
        issued["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ttl = expires - time::OffsetDateTime::now_utc();
    assert!(
        ttl > time::Duration::minutes(9) && ttl <= time::Duration::minutes(10),
        "{ttl}"
    );

    // Not enough work.
    let weak = (0..)
        .find(|n| leading_zero_bits(&Sha256::digest(format!("{text}:{n}"))) < 10)
        .unwrap();
    let body = problem(
        post(
            &app,
            "pow",
            2.05,
            48.05,
            &[("Civicmap-Proof", &format!("{text}:{weak}"))],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["type"], "urn:civicmap:problem:proof-of-work-needed");
    assert!(
        body["detail"].as_str().unwrap().contains("needs 10"),
        "{body}"
    );

    // Solved: stored, once.
    let proof = format!("{text}:{}", solve(text, 10));
    let stored = post(&app, "pow", 2.05, 48.05, &[("Civicmap-Proof", &proof)]).await;
    assert_eq!(stored.status(), StatusCode::CREATED);
    let body = problem(
        post(&app, "pow", 2.05, 48.05, &[("Civicmap-Proof", &proof)]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("already used"),
        "{body}"
    );

    // A challenge of another campaign, and a forged one.
    app.open_campaign("other", with(json!({"proof_of_work": {"difficulty": 1}})))
        .await;
    let foreign = challenge(&app, "other").await;
    let foreign = foreign["challenge"].as_str().unwrap();
    let body = problem(
        post(
            &app,
            "pow",
            2.05,
            48.05,
            &[(
                "Civicmap-Proof",
                &format!("{foreign}:{}", solve(foreign, 10)),
            )],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("another campaign"),
        "{body}"
    );
    let forged = text.replacen("v2.", "v2.9", 1);
    let body = problem(
        post(
            &app,
            "pow",
            2.05,
            48.05,
            &[(
                "Civicmap-Proof",
                &format!("{forged}:{}", solve(&forged, 10)),
            )],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not issued by this server"),
        "{body}"
    );

    // A retry of a stored request (same Idempotency-Key) gets its receipt, not a refusal.
    let issued = challenge(&app, "pow").await;
    let text = issued["challenge"].as_str().unwrap();
    let proof = format!("{text}:{}", solve(text, 10));
    let first = post(
        &app,
        "pow",
        2.15,
        48.05,
        &[("Civicmap-Proof", &proof), ("Idempotency-Key", "k1")],
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retry = post(
        &app,
        "pow",
        2.15,
        48.05,
        &[("Civicmap-Proof", &proof), ("Idempotency-Key", "k1")],
    )
    .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], first["id"]);

    assert_eq!(app.counts("pow").await["total"], Some(2));
    // A campaign without proof of work still issues challenges, at the difficulty it would
    // ask under pressure (a client may prepare one); the setting is bounded.
    app.open_campaign("plain", exact()).await;
    let issued = challenge(&app, "plain").await;
    assert_eq!(issued["difficulty"], 16);
    let response = app
        .admin_patch(
            "/api/v1/admin/campaigns/pow",
            &json!({"proof_of_work": {"difficulty": 27}}),
        )
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "proof_of_work.difficulty");
    let cleared = app
        .admin_patch(
            "/api/v1/admin/campaigns/pow",
            &json!({"proof_of_work": null}),
        )
        .await;
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(cleared["proof_of_work"], Value::Null);
}

/// The open reports of campaign `slug`: (reported submission, reason).
async fn reports(app: &TestApp, slug: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT r.submission_id::text, r.reason FROM submission_reports r
         JOIN campaigns c ON c.id = r.campaign_id
         WHERE c.slug = $1 AND r.resolved_at IS NULL ORDER BY r.id",
    )
    .bind(slug)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_duplicate_is_stored_and_counted_like_any_submission_and_flagged_for_moderators() {
    let app = TestApp::spawn_with(behind_proxy()).await;
    app.open_campaign(
        "dup",
        with(json!({"duplicates": {"distance_m": 30, "window_minutes": 60}})),
    )
    .await;
    let a = [("X-Forwarded-For", "198.51.100.7")];
    let first: Value = post(&app, "dup", 2.05, 48.05, &a)
        .await
        .json()
        .await
        .unwrap();
    // 11 m away, same client: stored at its own place, and reported with the earlier one.
    let second = post(&app, "dup", 2.05, 48.0501, &a).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second: Value = second.json().await.unwrap();
    let (lon, lat): (f64, f64) =
        sqlx::query_as("SELECT ST_X(geom), ST_Y(geom) FROM submissions WHERE id = $1::uuid")
            .bind(second["id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((lon, lat), (2.05, 48.0501));
    // 150 m away, or another client at the same spot: not flagged.
    assert_eq!(
        post(&app, "dup", 2.05, 48.0515, &a).await.status(),
        StatusCode::CREATED
    );
    let b = [("X-Forwarded-For", "203.0.113.40")];
    assert_eq!(
        post(&app, "dup", 2.05, 48.05, &b).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.counts("dup").await["west"], Some(4));
    let flagged = reports(&app, "dup").await;
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0].0, second["id"].as_str().unwrap());
    assert!(
        flagged[0].1.contains(first["id"].as_str().unwrap()) && flagged[0].1.contains("30 m"),
        "{}",
        flagged[0].1
    );
    // The moderators see it in their queue.
    let moderator = app.staff_token(civicmap::auth::Role::Moderator).await;
    let queue = app.queue(&moderator, "dup", "status=reported").await;
    assert!(
        queue.to_string().contains(second["id"].as_str().unwrap()),
        "{queue}"
    );

    // Only a keyed hash of the address is stored, never the address.
    let hashes: Vec<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT client_hash FROM submissions ORDER BY created_at")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(hashes.len(), 4);
    assert!(
        hashes
            .iter()
            .all(|h| h.as_ref().is_some_and(|h| h.len() == 32))
    );
    assert_eq!(hashes[0], hashes[1]);
    assert_ne!(hashes[0], hashes[3]);
    let dump: String = sqlx::query_scalar("SELECT string_agg(s::text, ' ') FROM submissions s")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!dump.contains("198.51.100.7") && !dump.contains("203.0.113.40"));
}

#[tokio::test]
async fn concurrent_duplicates_from_one_connection_are_all_stored_and_all_but_one_flagged() {
    let app = TestApp::spawn_with(behind_proxy()).await;
    app.open_campaign(
        "race",
        with(json!({"duplicates": {"distance_m": 50, "window_minutes": 10}})),
    )
    .await;
    let statuses = futures::future::join_all((0..8).map(|_| {
        post(
            &app,
            "race",
            2.25,
            48.05,
            &[("X-Forwarded-For", "198.51.100.8")],
        )
    }))
    .await
    .into_iter()
    .map(|r| r.status())
    .collect::<Vec<_>>();
    assert_eq!(statuses, [StatusCode::CREATED; 8]);
    assert_eq!(app.counts("race").await["east"], Some(8));
    assert_eq!(reports(&app, "race").await.len(), 7);
}

#[tokio::test]
async fn a_prober_on_the_same_connection_learns_nothing_from_the_duplicate_rule() {
    let app = TestApp::spawn_with(behind_proxy()).await;
    // `refuse` and `merge`, the former actions, are still read (as `flag`).
    for (slug, action) in [("refuse", "refuse"), ("merge", "merge")] {
        let campaign = app
            .open_campaign(
                slug,
                with(json!({"duplicates": {"distance_m": 100, "window_minutes": 30, "action": action}})),
            )
            .await;
        assert_eq!(campaign["duplicates"]["action"], "flag");
        // A household behind a shared address (a CGNAT) contributes.
        let nat = [("X-Forwarded-For", "198.51.100.9")];
        let victim = post(&app, slug, 2.09999, 48.05, &nat).await;
        assert_eq!(victim.status(), StatusCode::CREATED);
        // The attacker, behind the same address, probes next to it and far from it.
        let mut answers_seen = Vec::new();
        for (lon, lat) in [(2.1003, 48.05), (2.25, 48.02)] {
            let probe = post(&app, slug, lon, lat, &nat).await;
            let status = probe.status();
            let receipt: Value = probe.json().await.unwrap();
            let mut keys: Vec<String> = receipt.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            // What the probe reads back of itself: its own point, its own district.
            let own = app
                .own_submission(
                    slug,
                    receipt["id"].as_str().unwrap(),
                    receipt["edit_token"].as_str().unwrap(),
                )
                .await;
            assert_eq!(own["geometry"]["coordinates"], json!([lon, lat]));
            answers_seen.push((
                status,
                keys,
                receipt["status"].clone(),
                own["civicmap"]["status"].clone(),
            ));
        }
        // Near the victim or far from it, the answers are the same: nothing was learned.
        assert_eq!(answers_seen[0], answers_seen[1], "{slug}");
        assert_eq!(answers_seen[0].0, StatusCode::CREATED);
    }
}

#[tokio::test]
async fn a_client_over_its_allowance_gets_429_with_retry_after_and_others_are_not_affected() {
    let mut config = behind_proxy();
    config.rate_limits.per_ip_per_minute = 2;
    config.rate_limits.per_ip_burst = 3;
    let app = TestApp::spawn_with(config).await;
    app.open_campaign("busy", exact()).await;
    let a = [("X-Forwarded-For", "198.51.100.10")];
    for _ in 0..3 {
        assert_eq!(
            post(&app, "busy", 2.05, 48.05, &a).await.status(),
            StatusCode::CREATED
        );
    }
    let refused = post(&app, "busy", 2.05, 48.05, &a).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "urn:civicmap:problem:rate-limited");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 2 per minute"),
        "{body}"
    );
    // Erasing is a write too; reading is not limited.
    let response = app
        .client
        .delete(app.url("/api/v1/campaigns/busy/submissions/00000000-0000-0000-0000-000000000000"))
        .header("X-Forwarded-For", "198.51.100.10")
        .header("X-Edit-Token", "x")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    for _ in 0..5 {
        assert_eq!(
            app.get("/api/v1/campaigns/busy").await.status(),
            StatusCode::OK
        );
    }
    // Another client, and a spoofed left-hand X-Forwarded-For entry, do not share A's bucket.
    let b = [("X-Forwarded-For", "198.51.100.10, 203.0.113.50")];
    assert_eq!(
        post(&app, "busy", 2.05, 48.05, &b).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.counts("busy").await["west"], Some(4));
}

#[tokio::test]
async fn without_a_trusted_header_the_peer_address_is_the_client() {
    let mut config = test_config();
    config.rate_limits.per_ip_per_minute = 1;
    config.rate_limits.per_ip_burst = 1;
    // No proxy header configured (test servers believe one from loopback by default).
    config.client_ip.trusted_header = None;
    config.client_ip.trusted_proxies = Vec::new();
    let app = TestApp::spawn_with(config).await;
    app.open_campaign("peer", exact()).await;
    assert_eq!(
        post(
            &app,
            "peer",
            2.05,
            48.05,
            &[("X-Forwarded-For", "203.0.113.1")]
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    // A forged header does not make 127.0.0.1 someone else.
    problem(
        post(
            &app,
            "peer",
            2.05,
            48.05,
            &[("X-Forwarded-For", "203.0.113.2")],
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;

    // Behind a proxy list that does not include 127.0.0.1, the header is not believed either.
    let mut config = test_config();
    config.rate_limits.per_ip_per_minute = 1;
    config.rate_limits.per_ip_burst = 1;
    config.client_ip.trusted_header = Some("x-real-ip".parse().unwrap());
    config.client_ip.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    let app = TestApp::spawn_with(config).await;
    app.open_campaign("peer", exact()).await;
    assert_eq!(
        post(&app, "peer", 2.05, 48.05, &[("X-Real-IP", "203.0.113.1")])
            .await
            .status(),
        StatusCode::CREATED
    );
    problem(
        post(&app, "peer", 2.05, 48.05, &[("X-Real-IP", "203.0.113.2")]).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;

    // The attack: a header configured with no proxy listed. Forging one address per request
    // must not buy a fresh allowance each time.
    let mut config = test_config();
    config.rate_limits.per_ip_per_minute = 1;
    config.rate_limits.per_ip_burst = 1;
    config.client_ip.trusted_header = Some("x-forwarded-for".parse().unwrap());
    config.client_ip.trusted_proxies = Vec::new();
    let app = TestApp::spawn_with(config).await;
    app.open_campaign("peer", exact()).await;
    let mut statuses = Vec::new();
    for i in 1..=3 {
        let forged = format!("203.0.113.{i}");
        statuses.push(
            post(&app, "peer", 2.05, 48.05, &[("X-Forwarded-For", &forged)])
                .await
                .status(),
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}
