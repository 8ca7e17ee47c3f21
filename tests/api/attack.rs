//! Under attack, citizens still get through: a short version of `benches/under-attack.sh`.
//!
//! For a few seconds, 250 attacker addresses (IPv4 spread over many /24s, and IPv6 over a few
//! /48s) flood every citizens' door of one campaign: empty challenges, invalid submissions,
//! valid submissions without a proof of work, subscriptions aimed at one victim's mailbox
//! spelled many ways, address searches and download variants. Meanwhile honest citizens, each
//! from its own address, submit as the widget does (a proof of work when asked, a short wait
//! when told to retry). Every honest submission gets in, the attackers are refused, what was
//! acknowledged is stored, the campaign says it is under pressure, and each mailbox gets one
//! confirmation at most.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{TestApp, answers, assert_stored, exact, point, problem, test_config};
use crate::notify::Sink;

const SLUG: &str = "siege";

/// The attackers' addresses: 200 IPv4 in 50 /24s, 50 IPv6 in 5 /48s (2 /56 each).
fn attackers() -> Vec<String> {
    let mut out: Vec<String> = (0..200)
        .map(|i| format!("172.16.{}.{}", i / 4, 10 + i % 4))
        .collect();
    out.extend((0..50).map(|i| format!("2001:db8:{}:{}::{}", i % 5, (i / 5) * 0x100, i + 1)));
    out
}

/// One attacker request of kind `n % 7`, from `from`; its kind and status.
async fn attack(app: &TestApp, from: &str, n: usize) -> (&'static str, u16) {
    let url = |path: &str| app.url(&format!("/api/v1/campaigns/{SLUG}/{path}"));
    let c = &app.client;
    let (kind, request) = match n % 7 {
        0 => ("challenge", c.post(url("challenges"))),
        1 => (
            "invalid",
            c.post(url("submissions"))
                .json(&point(5.0, 40.0, json!({"households": "many"}))),
        ),
        2 | 3 => (
            "valid",
            c.post(url("submissions"))
                .json(&point(2.05, 48.05, answers())),
        ),
        4 => {
            let email = if n.is_multiple_of(2) {
                let dotted: String = "victim"
                    .chars()
                    .enumerate()
                    .map(|(i, ch)| {
                        if (n >> i) & 1 == 1 {
                            format!("{ch}.")
                        } else {
                            ch.to_string()
                        }
                    })
                    .collect();
                format!("{}+{n}@googlemail.com", dotted.trim_end_matches('.'))
            } else {
                format!("Victim+{n}@Outlook.fr")
            };
            let district = ["west", "middle", "east"][n % 3];
            (
                "subscribe",
                c.post(url("subscriptions"))
                    .json(&json!({"email": email, "district": district})),
            )
        }
        5 => ("search", c.get(url(&format!("addresses?q=rue%20{n}")))),
        _ => {
            // Variants of every public download; unknown parameters are refused (400) or, on
            // a route that reads none, ignored: never a new copy to build.
            let path = match n % 5 {
                0 => format!("aggregates.csv?excel={}", n % 2),
                1 => "aggregates.geojson".to_owned(),
                2 => "timeseries.csv".to_owned(),
                3 => format!("districts.geojson?junk={n}"),
                _ => format!("aggregates.csv?junk={n}"),
            };
            ("download", c.get(url(&path)))
        }
    };
    let status = request
        .header("X-Forwarded-For", from)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (kind, status)
}

/// An honest citizen's submission as the widget sends it: a proof of work when the campaign
/// asks (3 at most), a wait when told to retry soon (3 at most). Its id, or its last status.
async fn honest_submission(app: &TestApp, from: &str) -> Result<uuid::Uuid, u16> {
    let key = uuid::Uuid::new_v4().to_string();
    let (mut proofs, mut waits) = (0, 0);
    let mut proof: Option<String> = None;
    loop {
        let mut request = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{SLUG}/submissions")))
            .header("X-Forwarded-For", from)
            .header("Idempotency-Key", &key)
            .json(&point(2.15, 48.02, answers()));
        if let Some(proof) = &proof {
            request = request.header("Civicmap-Proof", proof);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        if status == StatusCode::CREATED {
            let body: Value = response.json().await.unwrap();
            return Ok(body["id"].as_str().unwrap().parse().unwrap());
        }
        let retry_after: Option<u64> = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let body: Value = response.json().await.unwrap_or_default();
        if status == StatusCode::UNPROCESSABLE_ENTITY
            && body["field"] == "proof_of_work"
            && proofs < 3
        {
            proofs += 1;
            proof = Some(crate::abuse::proof_for(app, SLUG, from).await);
            continue;
        }
        match retry_after {
            Some(wait) if matches!(status.as_u16(), 429 | 503) && wait <= 10 && waits < 3 => {
                waits += 1;
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            _ => return Err(status.as_u16()),
        }
    }
}

#[tokio::test]
async fn under_attack_citizens_get_through_and_no_mailbox_gets_more_than_one_confirmation() {
    let sink = Sink::start(None).await;
    let mut config = test_config();
    config.email_notices = true;
    // The defaults per client and network; a campaign allowance small enough for a test's
    // flood to spend it (60 a minute, bursts of 10).
    config.rate_limits = civicmap::safety::limits::RateLimitConfig {
        per_campaign_per_minute: 60,
        ..Default::default()
    };
    config.unconfirmed_per_hour = 200;
    let app = Arc::new(TestApp::spawn_with(config).await);
    let mut settings = exact();
    settings["min_fill_seconds"] = json!(0);
    app.open_campaign(SLUG, settings).await;
    crate::notify::away_from_the_hour(&app.db).await;
    // The default rates: 5 notices and 2 confirmations a second.
    let _workers = crate::notify::mail_workers(&app, &sink, 5, 2);

    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<BTreeMap<(&'static str, u16), usize>>> = Arc::default();
    let mut flood = Vec::new();
    let addresses = Arc::new(attackers());
    for worker in 0..48 {
        let (app, stop, seen, addresses) =
            (app.clone(), stop.clone(), seen.clone(), addresses.clone());
        flood.push(tokio::spawn(async move {
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                let from = &addresses[n % addresses.len()];
                let outcome = attack(&app, from, n / addresses.len() * 7 + n % 7).await;
                *seen.lock().await.entry(outcome).or_default() += 1;
                n += 48;
            }
        }));
    }
    // The flood first, then the citizens: 20 households, each its own /24, two submissions
    // each a few seconds apart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    let mut citizens = Vec::new();
    for i in 0..20 {
        let app = app.clone();
        citizens.push(tokio::spawn(async move {
            let from = format!("198.18.{i}.7");
            tokio::time::sleep(Duration::from_millis(150 * i)).await;
            let mut outcomes = Vec::new();
            for _ in 0..2 {
                let sent = Instant::now();
                outcomes.push((honest_submission(&app, &from).await, sent.elapsed()));
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            outcomes
        }));
    }
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    let mut slowest = Duration::ZERO;
    for citizen in citizens {
        for (outcome, took) in citizen.await.unwrap() {
            slowest = slowest.max(took);
            match outcome {
                Ok(id) => acknowledged.push(id),
                Err(status) => refused.push(status),
            }
        }
    }
    // While the flood goes on: the console says the campaign is under pressure.
    let listed: Value = app
        .admin(
            reqwest::Method::GET,
            "/api/v1/admin/campaigns",
            &Value::Null,
        )
        .await
        .json()
        .await
        .unwrap();
    let siege = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slug"] == SLUG)
        .unwrap()
        .clone();
    stop.store(true, Ordering::Relaxed);
    for worker in flood {
        worker.await.unwrap();
    }
    let seen = seen.lock().await.clone();
    let count = |kind: &str, status: Option<u16>| -> usize {
        seen.iter()
            .filter(|((k, s), _)| *k == kind && status.is_none_or(|st| st == *s))
            .map(|(_, n)| n)
            .sum()
    };
    let summary = format!(
        "honest: {} acknowledged, refused {refused:?}, slowest {slowest:?} over {:?}; attack: {seen:?}",
        acknowledged.len(),
        started.elapsed()
    );
    println!("{summary}");

    // Every honest citizen got in, and nothing acknowledged is lost.
    assert!(refused.is_empty(), "{summary}");
    assert_eq!(acknowledged.len(), 40, "{summary}");
    assert_stored(&app.db, &acknowledged, "honest submissions").await;
    // The attackers were refused: nothing bad is stored, and of the valid submissions without
    // a proof of work only the campaign's allowance and its reserve got in.
    assert_eq!(count("invalid", Some(201)), 0, "{summary}");
    let valid = count("valid", None);
    let stored_by_attackers = count("valid", Some(201));
    assert!(
        valid > 500,
        "the flood was too small to test anything: {summary}"
    );
    assert!(
        stored_by_attackers * 5 < valid,
        "attackers got {stored_by_attackers} of {valid} in: {summary}"
    );
    assert!(
        count("valid", Some(422)) + count("valid", Some(429)) + stored_by_attackers == valid,
        "{summary}"
    );
    // Downloads were served or refused, never a failure.
    assert_eq!(
        count("download", None),
        count("download", Some(200)) + count("download", Some(400)) + count("download", Some(429)),
        "{summary}"
    );
    assert!(count("download", Some(400)) > 0, "{summary}");
    // The campaign switched to proofs of work, and says so.
    assert!(
        siege["pressure"]["difficulty"].as_u64().unwrap() >= 16,
        "{siege}"
    );
    // The rows match the acknowledgements.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM submissions s JOIN campaigns c ON c.id = s.campaign_id WHERE c.slug = $1",
    )
    .bind(SLUG)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        stored as usize,
        acknowledged.len() + stored_by_attackers,
        "{summary}"
    );

    // Mail: every spelling of the victim's two mailboxes was asked for many times; each
    // mailbox got one confirmation this hour, listing its other requests, and the rest waits
    // for the next hour.
    assert!(count("subscribe", Some(202)) > 10, "{summary}");
    crate::notify::wait_for(Duration::from_secs(20), "the confirmations", || {
        sink.of_kind("confirm").len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_mailbox: BTreeMap<String, usize> = BTreeMap::new();
    for message in sink.of_kind("confirm") {
        let to = message["to"][0].as_str().unwrap();
        *per_mailbox
            .entry(civicmap::notify::mailbox(to))
            .or_default() += 1;
    }
    assert_eq!(
        per_mailbox,
        BTreeMap::from([
            ("victim@gmail.com".to_owned(), 1),
            ("victim@outlook.fr".to_owned(), 1)
        ]),
        "{summary}"
    );
    let later: Vec<(String, bool)> =
        sqlx::query_as("SELECT key, next_attempt_at > now() FROM outbox WHERE kind = 'confirm'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(later.len() <= 2, "{later:?}");
    assert!(later.iter().all(|(_, later)| *later), "{later:?}");
}

/// Owning many addresses of one network buys no more than the network's allowance: a /24's
/// 40 addresses, or 40 /64s of one /48, asking for challenges in a burst.
#[tokio::test]
async fn many_addresses_of_one_network_share_its_allowance() {
    let mut config = test_config();
    // One a minute and 10 at once per client: 80 at once for a /24 or a /56, 160 for a /48,
    // and a cell back only every 7.5 s (3.75 s for a /48) while the test runs.
    config.rate_limits.per_ip_per_minute = 1;
    config.rate_limits.per_ip_burst = 10;
    let app = TestApp::spawn_with(config).await;
    app.open_campaign(SLUG, exact()).await;
    for (network, addresses, allowed, every) in [
        (
            "the network 172.20.1.0/24",
            (1..=40)
                .map(|i| format!("172.20.1.{i}"))
                .collect::<Vec<_>>(),
            80,
            7.5,
        ),
        // 40 /64s, each in a /56 of its own, all in one /48.
        (
            "the network 2001:db8:5::/48",
            (0..40).map(|i| format!("2001:db8:5:{i:x}00::1")).collect(),
            160,
            3.75,
        ),
    ] {
        let started = Instant::now();
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        let mut detail = String::new();
        for _ in 0..6 {
            for from in &addresses {
                let response = app
                    .client
                    .post(app.url(&format!("/api/v1/campaigns/{SLUG}/challenges")))
                    .header("X-Forwarded-For", from)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                *statuses.entry(status).or_default() += 1;
                if status == 429 {
                    let body: Value = response.json().await.unwrap();
                    detail = body["detail"].as_str().unwrap().to_owned();
                }
            }
        }
        // The burst, and the cells that came back while the test ran.
        let back = (started.elapsed().as_secs_f64() / every).ceil() as usize;
        let created = statuses.get(&201).copied().unwrap_or(0);
        assert!(
            (allowed..=allowed + back).contains(&created),
            "{network}: {statuses:?}"
        );
        assert_eq!(created + statuses.get(&429).copied().unwrap_or(0), 240);
        assert!(
            detail.starts_with(&format!("too many proof-of-work challenges from {network}")),
            "{network}: {detail}"
        );
        // The network's allowance is per door: its addresses may still submit.
        let response = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{SLUG}/submissions")))
            .header("X-Forwarded-For", addresses[0].as_str())
            .json(&point(2.05, 48.05, answers()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{network}");
    }
}

/// The reads that cost work, played by a prober: address searches, and downloads that must be
/// built, are limited per client; a copy already built is free to everyone; another client is
/// not concerned; parameters a route does not read, or refuses, never make a new copy to build.
#[tokio::test]
async fn searches_and_downloads_built_on_demand_are_limited_per_client() {
    let mut config = test_config();
    config.rate_limits.searches_per_ip_per_minute = 4; // 1 at once
    config.rate_limits.builds_per_ip_per_minute = 4; // 2 at once
    let app = TestApp::spawn_with(config).await;
    app.open_campaign(SLUG, exact()).await;
    let get = |path: String, from: &'static str| {
        app.client
            .get(app.url(&format!("/api/v1/campaigns/{SLUG}/{path}")))
            .header("X-Forwarded-For", from)
            .send()
    };
    let (a, b, c) = ("198.51.100.1", "198.51.100.2", "198.51.100.3");
    // Searches: one at once per client; the next is refused, naming the limit.
    assert_eq!(
        get("addresses?q=rue".into(), a).await.unwrap().status(),
        200
    );
    let refused = get("addresses?q=rue%20de".into(), a).await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    let body = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("too many address searches from this connection"),
        "{body}"
    );
    assert_eq!(
        get("addresses?q=rue".into(), b).await.unwrap().status(),
        200
    );
    // Downloads: two variants built for `a`, the third refused; a built one is free again.
    for path in ["aggregates.csv?excel=0", "aggregates.csv?excel=1"] {
        assert_eq!(get(path.into(), a).await.unwrap().status(), 200, "{path}");
    }
    let body = problem(
        get("aggregates.geojson".into(), a).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("too many downloads built on demand from this connection"),
        "{body}"
    );
    assert_eq!(
        get("aggregates.csv?excel=0".into(), a)
            .await
            .unwrap()
            .status(),
        200
    );
    // Another client builds it; then it is free to `a` too.
    assert_eq!(
        get("aggregates.geojson".into(), b).await.unwrap().status(),
        200
    );
    assert_eq!(
        get("aggregates.geojson".into(), a).await.unwrap().status(),
        200
    );
    // Junk parameters: ignored where the route reads none (one copy, one build), refused
    // where it reads some; neither is a build.
    for n in 0..10 {
        let status = get(format!("districts.geojson?junk={n}"), c)
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "junk={n}");
        let status = get(format!("aggregates.csv?junk={n}"), c)
            .await
            .unwrap()
            .status();
        assert_eq!(status, 400, "junk={n}");
    }
    // `c` built one copy only: it may still build one more.
    assert_eq!(get("timeseries.csv".into(), c).await.unwrap().status(), 200);
}
