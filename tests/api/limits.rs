//! Rate limits and proof-of-work spending hold across instances: two civicmap servers over one
//! database allow a client's (and a campaign's) allowance once, not once each; a solved
//! challenge is spent once whichever instance sees it. The shared GCRA is checked against a
//! token bucket written differently, and an attacker cannot learn from their own 429s whether
//! another client is writing.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use civicmap::safety::limits::{self, Allowance, Refused};

use crate::helpers::{TestApp, answers, exact, fresh_database, point, problem, test_config};

/// One bucket of a client's, as the submission door keeps them.
fn alone(key: &[u8], allowance: Allowance) -> [limits::Bucket<'_>; 1] {
    [limits::Bucket {
        scope: "submit/client",
        key,
        allowance,
    }]
}

/// Test settings with a per-client limit of `per_minute`, `burst` at once.
fn per_client(per_minute: u32, burst: u32) -> civicmap::http::ServerConfig {
    let mut config = test_config();
    config.rate_limits.per_ip_per_minute = per_minute;
    config.rate_limits.per_ip_burst = burst;
    config
}

/// Two instances with `config` over one fresh database, campaign `slug` open on it.
async fn two_instances(config: civicmap::http::ServerConfig, slug: &str) -> [TestApp; 2] {
    let first = TestApp::spawn_with(config.clone()).await;
    let second = TestApp::spawn_on_with(first.db.clone(), config).await;
    first.open_campaign(slug, exact()).await;
    [first, second]
}

/// Posts a submission to `slug` on `app` as client `from`, with extra headers.
async fn post_as(
    app: &TestApp,
    from: &str,
    slug: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{slug}/submissions")))
        .header("X-Forwarded-For", from)
        .json(&point(2.05, 48.05, answers()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// What a client sees of a refusal: status, `Retry-After`, and the problem's type and detail.
async fn seen(response: reqwest::Response) -> (StatusCode, Option<u64>, Value) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body: Value = response.json().await.unwrap();
    let problem = if status.is_success() {
        Value::Null
    } else {
        json!({"type": body["type"], "detail": body["detail"]})
    };
    (status, retry_after, problem)
}

#[tokio::test]
async fn a_clients_allowance_holds_across_two_instances_once_not_once_each() {
    // One a minute, three at once: nothing comes back during the test.
    let instances = two_instances(per_client(1, 3), "shared").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let response = post_as(&instances[i % 2], "198.51.100.10", "shared", &[]).await;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                (50..=60).contains(&retry_after),
                "Retry-After {retry_after}"
            );
            let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
            assert_eq!(body["type"], "urn:civicmap:problem:rate-limited");
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains("from this connection: at most 1 per minute, 3 at once"),
                "{detail}"
            );
            assert!(
                detail.contains(&format!("retry in {retry_after} s")),
                "{detail}"
            );
        }
        statuses.push(status);
    }
    // Per instance, each would have allowed 3: 6 in all.
    assert_eq!(statuses[..3], [StatusCode::CREATED; 3], "{statuses:?}");
    assert_eq!(
        statuses[3..],
        [StatusCode::TOO_MANY_REQUESTS; 5],
        "{statuses:?}"
    );
    // Erasing through the other instance is a write too, and refused as well.
    let response = instances[1]
        .client
        .delete(
            instances[1]
                .url("/api/v1/campaigns/shared/submissions/00000000-0000-0000-0000-000000000000"),
        )
        .header("X-Forwarded-For", "198.51.100.10")
        .header("X-Edit-Token", "x")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    // Another client has its own allowance, on both.
    for app in &instances {
        assert_eq!(
            post_as(app, "198.51.100.11", "shared", &[]).await.status(),
            StatusCode::CREATED
        );
    }
    assert_eq!(instances[0].counts("shared").await["west"], Some(5));
}

#[tokio::test]
async fn concurrent_writes_of_one_client_to_two_instances_get_its_burst_once() {
    let instances = two_instances(per_client(1, 10), "rush").await;
    let requests = (0..30).map(|i| post_as(&instances[i % 2], "198.51.100.20", "rush", &[]));
    let statuses: Vec<StatusCode> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, limited), (10, 20), "{statuses:?}");
    assert_eq!(instances[0].counts("rush").await["west"], Some(10));
}

#[tokio::test]
async fn a_campaign_allowance_holds_across_two_instances_then_it_asks_for_proofs_of_work() {
    let mut config = test_config();
    config.rate_limits.per_campaign_per_minute = 12; // bursts of 2; a reserve of 1 at once
    let instances = two_instances(config, "crowd").await;
    instances[1].open_campaign("calm", exact()).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let from = format!("203.0.113.{}", i + 1);
        statuses.push(
            post_as(&instances[i % 2], &from, "crowd", &[])
                .await
                .status(),
        );
    }
    // The allowance (2), then one first contribution from the reserve, then proofs of work:
    // nobody is told to go away.
    assert_eq!(statuses[..3], [StatusCode::CREATED; 3], "{statuses:?}");
    assert_eq!(
        statuses[3..],
        [StatusCode::UNPROCESSABLE_ENTITY; 3],
        "{statuses:?}"
    );
    let body = problem(
        post_as(&instances[1], "203.0.113.50", "crowd", &[]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["field"], "proof_of_work");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("receiving more contributions than it can take")
            && detail.contains("proof of work of 16 bits"),
        "{body}"
    );
    // The challenge is issued at the difficulty asked; with its proof, the same citizen gets
    // in through either instance.
    let proof = challenge(&instances[0], "crowd").await;
    assert!(proof.starts_with("v2."), "{proof}");
    assert_eq!(
        post_as(
            &instances[1],
            "203.0.113.50",
            "crowd",
            &[("Civicmap-Proof", proof.as_str())]
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    // Another campaign has its own allowance.
    assert_eq!(
        post_as(&instances[0], "203.0.113.50", "calm", &[])
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(instances[0].counts("crowd").await["west"], Some(4));
}

#[tokio::test]
async fn a_flooding_client_cannot_use_up_the_campaigns_allowance_across_instances() {
    let mut config = per_client(1, 2);
    config.rate_limits.per_campaign_per_minute = 24; // bursts of 4
    let instances = two_instances(config, "shield").await;
    // The flood: 20 writes from one client, alternating; its own limit refuses all but 2.
    for i in 0..20 {
        post_as(&instances[i % 2], "198.51.100.66", "shield", &[]).await;
    }
    // Its refused writes took nothing from the campaign: two others still get in without
    // any proof of work.
    for (i, from) in ["198.51.100.1", "198.51.100.2"].iter().enumerate() {
        assert_eq!(
            post_as(&instances[i % 2], from, "shield", &[])
                .await
                .status(),
            StatusCode::CREATED
        );
    }
}

async fn challenge(app: &TestApp, slug: &str) -> String {
    crate::abuse::proof_for(app, slug, &crate::helpers::household()).await
}

#[tokio::test]
async fn a_proof_of_work_spent_on_one_instance_is_refused_on_the_other() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.db.clone()).await;
    let mut settings = exact();
    settings["proof_of_work"] = json!({"difficulty": 8});
    first.open_campaign("pow", settings).await;
    let instances = [first, second];

    // Issued by one, spent on the same one, refused by the other; and the other way round.
    for (issuer, spender, other) in [(0, 0, 1), (1, 0, 1), (0, 1, 0)] {
        let proof = challenge(&instances[issuer], "pow").await;
        let proof = [("Civicmap-Proof", proof.as_str())];
        let from = crate::helpers::household();
        assert_eq!(
            post_as(&instances[spender], &from, "pow", &proof)
                .await
                .status(),
            StatusCode::CREATED
        );
        let body = problem(
            post_as(&instances[other], &from, "pow", &proof).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["type"], "urn:civicmap:problem:proof-of-work-needed");
        assert!(
            body["detail"].as_str().unwrap().contains("already used"),
            "{body}"
        );
    }
    // The same proof sent to both at the same moment is spent once.
    for _ in 0..5 {
        let proof = challenge(&instances[0], "pow").await;
        let proof = [("Civicmap-Proof", proof.as_str())];
        let (one, two) = (crate::helpers::household(), crate::helpers::household());
        let (a, b) = tokio::join!(
            post_as(&instances[0], &one, "pow", &proof),
            post_as(&instances[1], &two, "pow", &proof),
        );
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY]
        );
    }
    assert_eq!(instances[1].counts("pow").await["west"], Some(8));
}

/// The attack: client A writes past its allowance and reads its own refusals, to learn whether
/// client B (a neighbour, a household behind another address) is writing at the same time. A's
/// answers are the same, B writing or not: the same statuses and words, and a `Retry-After`
/// that follows from A's own first write alone.
#[tokio::test]
async fn a_clients_refusals_do_not_depend_on_another_clients_writes() {
    let mut worlds = Vec::new();
    for b_writes in [false, true] {
        let instances = two_instances(per_client(1, 2), "quiet").await;
        let mut a_saw = Vec::new();
        let mut first: Option<(std::time::Instant, std::time::Instant)> = None;
        for i in 0..5 {
            if b_writes {
                // B floods both instances, past its own allowance.
                for j in 0..4 {
                    post_as(&instances[j % 2], "203.0.113.200", "quiet", &[]).await;
                }
            }
            let sent = std::time::Instant::now();
            let (status, retry_after, problem) =
                seen(post_as(&instances[i % 2], "198.51.100.99", "quiet", &[]).await).await;
            let received = std::time::Instant::now();
            let (first_sent, first_received) = *first.get_or_insert((sent, received));
            if let Some(retry_after) = retry_after {
                // One a minute, two at once: allowed again 60 s after A's first write was
                // stored, which happened between `first_sent` and `first_received`.
                let latest = 60.0 - sent.saturating_duration_since(first_received).as_secs_f64();
                let earliest = 60.0 - received.duration_since(first_sent).as_secs_f64();
                assert!(
                    (earliest.ceil() as u64..=latest.ceil() as u64).contains(&retry_after),
                    "Retry-After {retry_after}, not within {earliest:.2}..{latest:.2} s of A's own first write"
                );
                let detail = problem["detail"].as_str().unwrap().to_owned();
                let words = detail.replace(&format!("retry in {retry_after} s"), "retry in N s");
                a_saw.push((status, words));
            } else {
                a_saw.push((status, problem.to_string()));
            }
        }
        worlds.push(a_saw);
    }
    assert_eq!(
        worlds[0].iter().map(|s| s.0).collect::<Vec<_>>(),
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(worlds[0], worlds[1]);
}

/// The same attack, exactly, against the shared table: at the same instants, A's decisions and
/// waits to the microsecond are the same whether B takes cells between them or not.
#[tokio::test]
async fn in_the_shared_table_a_clients_decisions_are_the_same_whatever_another_client_does() {
    let allowance = Allowance::new(6, 3).unwrap(); // T = 10 s
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let mut worlds = Vec::new();
    for b_writes in [false, true] {
        let (db, _) = fresh_database().await;
        let mut a_got = Vec::new();
        for i in 0..12_i64 {
            let at = start + time::Duration::milliseconds(1_700 * i);
            if b_writes {
                for j in 0..3 {
                    let b_at = at - time::Duration::milliseconds(300 * j);
                    limits::take(&db, Some(b_at), &alone(b"client B", allowance))
                        .await
                        .unwrap();
                }
            }
            a_got.push(
                limits::take(&db, Some(at), &alone(b"client A", allowance))
                    .await
                    .unwrap(),
            );
        }
        worlds.push(a_got);
    }
    assert_eq!(worlds[0], worlds[1]);
    // And the test can fail: A was refused, and then let in again.
    assert!(worlds[0].iter().any(Option::is_some), "{:?}", worlds[0]);
    assert!(
        worlds[0][3..].iter().any(Option::is_none),
        "{:?}",
        worlds[0]
    );
}

/// A token bucket: `level` microseconds of credit, at most burst × T; a write costs T. Written
/// as a bucket that fills, not as the arrival time the code keeps.
struct Bucket {
    level: i64,
    last: i64,
    interval: i64,
    capacity: i64,
}

impl Bucket {
    fn new(allowance: Allowance, burst: i64) -> Self {
        let interval = allowance.interval_us();
        Self {
            level: interval * burst,
            last: 0,
            interval,
            capacity: interval * burst,
        }
    }

    /// At `now` (microseconds): `None` if allowed, else the microseconds until it would be.
    fn take(&mut self, now: i64) -> Option<i64> {
        self.level = (self.level + (now - self.last)).min(self.capacity);
        self.last = now;
        if self.level >= self.interval {
            self.level -= self.interval;
            None
        } else {
            Some(self.interval - self.level)
        }
    }
}

#[tokio::test]
async fn the_shared_limit_decides_as_a_token_bucket_would() {
    let (db, _) = fresh_database().await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let mut checked = [0_usize; 3]; // allowed, refused by a client, refused by its network
    for round in 0..6_i64 {
        let (per_minute, burst) =
            [(1, 1), (7, 3), (30, 10), (600, 2), (13, 1), (60, 5)][round as usize];
        let client = Allowance::new(per_minute, burst).unwrap();
        let network_burst = burst * 2 + 1;
        let network = Allowance::new(per_minute * 2, network_burst).unwrap();
        let network_key = format!("round {round} network").into_bytes();
        let keys: Vec<Vec<u8>> = (0..3)
            .map(|k| format!("round {round} client {k}").into_bytes())
            .collect();
        let mut clients: Vec<Bucket> = (0..3)
            .map(|_| Bucket::new(client, i64::from(burst)))
            .collect();
        // Asked only when the client's bucket allowed the write: a client over its allowance
        // takes nothing from its network.
        let mut shared = Bucket::new(network, i64::from(network_burst));
        let mut now = 0_i64;
        for _ in 0..120 {
            // Gaps around a tenth of T, sometimes several T, sometimes none.
            now += match rng.random_range(0..10) {
                0 => 0,
                1 => rng.random_range(0..client.interval_us() * 3),
                _ => rng.random_range(0..client.interval_us() / 5 + 1),
            };
            let k = rng.random_range(0..3);
            let expected = match clients[k].take(now) {
                Some(wait) => Some((0, wait)),
                None => shared.take(now).map(|wait| (1, wait)),
            };
            let at = start + time::Duration::microseconds(now);
            let buckets = [
                limits::Bucket {
                    scope: "submit/client",
                    key: &keys[k],
                    allowance: client,
                },
                limits::Bucket {
                    scope: "submit/24",
                    key: &network_key,
                    allowance: network,
                },
            ];
            let got = limits::take(&db, Some(at), &buckets).await.unwrap();
            match (expected, got) {
                (None, None) => checked[0] += 1,
                (
                    Some((bucket, wait)),
                    Some(Refused {
                        bucket: got,
                        lead_us,
                    }),
                ) => {
                    assert_eq!(bucket, got, "round {round} at {now} µs");
                    let allowance = buckets[bucket].allowance;
                    assert_eq!(
                        lead_us - allowance.tolerance_us(),
                        wait,
                        "round {round} at {now} µs: the wait"
                    );
                    assert_eq!(
                        allowance.retry_after(lead_us),
                        (wait as u64).div_ceil(1_000_000).max(1)
                    );
                    checked[bucket + 1] += 1;
                }
                (expected, got) => {
                    panic!("round {round} at {now} µs: expected {expected:?}, got {got:?}")
                }
            }
        }
    }
    assert!(checked.iter().all(|n| *n > 20), "{checked:?}");
}

#[tokio::test]
async fn concurrent_takes_of_one_bucket_never_allow_more_than_its_burst() {
    let (db, _) = fresh_database().await;
    let allowance = Allowance::new(1, 10).unwrap();
    let at = OffsetDateTime::now_utc();
    let takes =
        (0..60).map(|_| async { limits::take(&db, Some(at), &alone(b"one", allowance)).await });
    let refused = futures::future::join_all(takes)
        .await
        .into_iter()
        .map(Result::unwrap)
        .filter(Option::is_some)
        .count();
    assert_eq!(refused, 50);
}

/// Keys of the submission door's buckets (clients' and networks').
async fn client_rows(db: &PgPool) -> Vec<Vec<u8>> {
    sqlx::query_scalar("SELECT key FROM rate_limits WHERE scope LIKE 'submit/%'")
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_table_holds_keyed_hashes_never_addresses_and_forgets_full_buckets() {
    let instances = two_instances(per_client(30, 10), "privacy").await;
    let addresses = ["198.51.100.77", "2001:db8:7:7::1"];
    for (i, from) in addresses.iter().enumerate() {
        assert_eq!(
            post_as(&instances[i % 2], from, "privacy", &[])
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let db = &instances[0].db;
    let keys = client_rows(db).await;
    // The IPv4 client and its /24; the IPv6 /64, its /56 and its /48.
    assert_eq!(keys.len(), 5);
    let mut forms: Vec<Vec<u8>> = Vec::new();
    for from in addresses {
        let ip: std::net::IpAddr = from.parse().unwrap();
        forms.push(from.as_bytes().to_vec());
        for (_, name) in civicmap::http::client_ip::ClientKey::from(ip).networks() {
            forms.push(name.into_bytes());
        }
        match ip {
            std::net::IpAddr::V4(v4) => forms.push(v4.octets().to_vec()),
            std::net::IpAddr::V6(v6) => forms.push(v6.octets()[..8].to_vec()),
        }
    }
    for key in &keys {
        assert_eq!(key.len(), 32);
        for form in &forms {
            assert!(
                !key.windows(form.len()).any(|w| w == form.as_slice()),
                "a key holds an address"
            );
        }
    }
    // Nor is any stored hash of the same client the same bytes (the duplicates' client hash,
    // the contributors' hash).
    let other_hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM contributors")
        .fetch_all(db)
        .await
        .unwrap();
    assert!(!other_hashes.is_empty());
    assert!(keys.iter().all(|k| !other_hashes.contains(k)));

    // A bucket full again is deleted; one still filling is kept.
    let gone = Allowance::new(60, 1).unwrap();
    let an_hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
    limits::take(db, Some(an_hour_ago), &alone(b"long gone", gone))
        .await
        .unwrap();
    assert_eq!(client_rows(db).await.len(), 6);
    assert_eq!(limits::purge_full(db).await.unwrap(), 1);
    assert_eq!(client_rows(db).await.len(), 5);

    // Each instance purges by itself: one a second, a single write, full again in 1 s.
    let instances = two_instances(per_client(60, 1), "forget").await;
    post_as(&instances[0], "198.51.100.78", "forget", &[]).await;
    // The client's bucket and its /24's.
    assert_eq!(client_rows(&instances[0].db).await.len(), 2);
    // Full 1 s after the write (the /24's: 1/8 s); a purge runs within 10 s of that (5 s of
    // margin, for a busy machine).
    tokio::time::sleep(limits::PURGE_EVERY + Duration::from_secs(6)).await;
    assert!(client_rows(&instances[0].db).await.is_empty());
}

#[tokio::test]
async fn without_the_database_a_limited_write_fails_closed_with_503() {
    let mut config = per_client(30, 10);
    config.rate_limits.per_campaign_per_minute = 600;
    let app = TestApp::spawn_with(config).await;
    let mut settings = exact();
    settings["proof_of_work"] = json!({"difficulty": 1});
    app.open_campaign("away", settings).await;
    // Campaign and secret now in memory: issuing a challenge needs nothing else from the
    // database but the shared limit.
    challenge(&app, "away").await;
    app.db.close().await;
    let response = app
        .client
        .post(app.url("/api/v1/campaigns/away/challenges"))
        .header("X-Forwarded-For", "198.51.100.5")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    let body = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["type"], "urn:civicmap:problem:unavailable");
}
