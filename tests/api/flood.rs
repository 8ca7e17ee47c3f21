//! Flood: one client hammers the submission route for ten seconds while another submits at a
//! person's pace. The first gets its allowance and 429s; the second is never refused; counts
//! match what was acknowledged. Loopback only; stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{TestApp, answers, exact, point, test_config};

const RATE_PER_MINUTE: u32 = 60;
const BURST: u32 = 10;
const HAMMERING: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_gets_only_its_allowance_and_others_are_served() {
    let mut config = test_config();
    config.client_ip.trusted_header = Some("x-forwarded-for".parse().unwrap());
    config.client_ip.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    config.rate_limits.per_ip_per_minute = RATE_PER_MINUTE;
    config.rate_limits.per_ip_burst = BURST;
    let app = Arc::new(TestApp::spawn_with(config).await);
    app.open_campaign("flood", exact()).await;
    let url = app.url("/api/v1/campaigns/flood/submissions");
    let body = point(2.05, 48.05, answers());

    let created = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let hammer = (0..8).map(|_| {
        let (client, url, body) = (app.client.clone(), url.clone(), body.clone());
        let (created, limited) = (created.clone(), limited.clone());
        tokio::spawn(async move {
            while started.elapsed() < HAMMERING {
                let response = client
                    .post(&url)
                    .header("X-Forwarded-For", "198.51.100.66")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                match response.status() {
                    StatusCode::CREATED => created.fetch_add(1, Ordering::Relaxed),
                    StatusCode::TOO_MANY_REQUESTS => {
                        let retry: u64 = response.headers()["retry-after"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        assert!((1..=60).contains(&retry), "Retry-After: {retry}");
                        let problem: serde_json::Value = response.json().await.unwrap();
                        assert_eq!(problem["type"], "urn:civicmap:problem:rate-limited");
                        limited.fetch_add(1, Ordering::Relaxed)
                    }
                    other => panic!("the flooding client got {other}"),
                };
            }
        })
    });
    let hammer: Vec<_> = hammer.collect();

    // The other client: one submission a second, under its own allowance.
    let mut neighbour = Vec::new();
    while started.elapsed() < HAMMERING {
        let response = app
            .client
            .post(&url)
            .header("X-Forwarded-For", "203.0.113.77")
            .json(&body)
            .send()
            .await
            .unwrap();
        neighbour.push(response.status());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for task in hammer {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();

    let (created, limited) = (
        created.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
    );
    let allowance = f64::from(BURST) + f64::from(RATE_PER_MINUTE) / 60.0 * elapsed;
    assert!(
        created as f64 <= allowance.floor(),
        "{created} accepted from the flooding client in {elapsed:.1} s, allowance {allowance:.1}"
    );
    assert!(created >= BURST as usize, "the burst is granted: {created}");
    assert!(
        limited > 10 * created,
        "the flood was refused: {limited} × 429"
    );
    assert!(neighbour.len() >= 8, "{neighbour:?}");
    assert!(
        neighbour.iter().all(|s| *s == StatusCode::CREATED),
        "the other client was refused: {neighbour:?}"
    );
    let counts = app.counts("flood").await;
    assert_eq!(counts["west"], Some((created + neighbour.len()) as i64));
}
