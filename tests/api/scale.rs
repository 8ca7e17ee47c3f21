//! The scale-out deployment of docs/DEPLOY.md, in small, on loopback: a PostgreSQL primary and
//! a streaming replica, two `civicmap serve` processes reading from the replica
//! (`--replica-url`), and nginx with the documented cache in front of both. Submissions go
//! through one instance; each acknowledged one is seen through the other instance at once and
//! through nginx within the published bound (`caching::BOUND`); the other instance builds
//! public reads on the replica; and one client's allowance holds across both instances, asked
//! directly or through nginx.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use civicmap::http::caching::BOUND;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{answers, exact, point};
use crate::nginx::{Nginx, free_port, nginx_binary};
use crate::replicas::ReplicaPair;

/// The per-client allowance of both instances: 6 a minute, 3 at once.
const PER_MINUTE: &str = "6";
const BURST: usize = 3;

/// A `civicmap serve` process over the pair, killed when dropped.
struct Instance {
    addr: SocketAddr,
    metrics: SocketAddr,
    child: Child,
    log: std::path::PathBuf,
}

impl Instance {
    fn start(pair: &ReplicaPair, dir: &Path, name: &str) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_civicmap"))
            .arg("serve")
            .args(["--database-url", &pair.primary.url()])
            .args(["--replica-url", &pair.replica.url()])
            .args(["--listen", &addr.to_string()])
            .args(["--metrics-listen", &metrics.to_string()])
            .args([
                "--widget-dir",
                concat!(env!("CARGO_MANIFEST_DIR"), "/widget"),
            ])
            .args(["--trusted-proxy-header", "x-forwarded-for"])
            .args(["--trusted-proxies", "127.0.0.1/32"])
            .args(["--submissions-per-ip", PER_MINUTE])
            .args(["--submissions-per-ip-burst", &BURST.to_string()])
            .args(["--submissions-per-campaign", "0"])
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "civicmap=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            addr,
            metrics,
            child,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn ready(&mut self, http: &reqwest::Client) {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("civicmap exited ({status}):\n{}", self.log_tail());
            }
            if http
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("civicmap not ready within 60 s:\n{}", self.log_tail());
    }

    /// The value of the Prometheus series `series` (name and labels as written), 0 if absent.
    async fn metric(&self, http: &reqwest::Client, series: &str) -> f64 {
        let text = http
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The campaign's total as the public reads it at `url`.
async fn total(http: &reqwest::Client, url: &str) -> Option<i64> {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    let body: Value = response.json().await.unwrap();
    body["total"]["count"].as_i64()
}

/// Posts a submission to `url` as client `from`; returns the status.
async fn post(http: &reqwest::Client, url: &str, from: &str, lon: f64) -> StatusCode {
    http.post(url)
        .header("x-forwarded-for", from)
        .json(&point(lon, 48.05, answers()))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn two_instances_a_replica_and_nginx_show_every_acknowledged_submission_and_share_limits() {
    let Some(nginx_bin) = nginx_binary() else {
        eprintln!(
            "\n\n**********************************************************************\n\
             SKIPPED tests/api/scale.rs: nginx is not installed. `make test` installs\n\
             Debian's nginx (scripts/setup.sh --browser); or set NGINX=/path/to/nginx.\n\
             **********************************************************************\n"
        );
        return;
    };
    let pair = ReplicaPair::start().await;
    let primary = pair.primary_pool();
    let token =
        civicmap::auth::create_token(&primary, "scale test", civicmap::auth::Role::Admin, None)
            .await
            .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut writer = Instance::start(&pair, logs.path(), "writer");
    let mut reader = Instance::start(&pair, logs.path(), "reader");
    writer.ready(&http).await;
    reader.ready(&http).await;
    let nginx = Nginx::start(&nginx_bin, &[writer.addr, reader.addr]).await;
    let via_nginx = |path: &str| format!("http://127.0.0.1:{}{path}", nginx.port);

    // The campaign, set up through the writer.
    crate::helpers::TestApp::remote(writer.addr, primary.clone(), token)
        .open_campaign("national", exact())
        .await;
    let figures = "/api/v1/campaigns/national/districts.geojson";
    let submissions = "/api/v1/campaigns/national/submissions";

    // 1. Writes through one instance, seen through the other at once and through nginx
    // within the bound; in rounds, each read while the next writes are not yet made.
    let mut acknowledged = 0;
    let mut worst_nginx = Duration::ZERO;
    let mut worst_reader = Duration::ZERO;
    for round in 0..4 {
        for i in 0..3 {
            let from = format!("203.0.113.{}", round * 3 + i + 1);
            let lon = 2.02 + 0.01 * f64::from(round * 3 + i);
            let status = post(&http, &writer.url(submissions), &from, lon).await;
            assert_eq!(status, StatusCode::CREATED);
            acknowledged += 1;
        }
        let since = Instant::now();
        let (mut on_reader, mut on_nginx) = (None, None);
        while on_reader.is_none() || on_nginx.is_none() {
            if on_reader.is_none() && total(&http, &reader.url(figures)).await == Some(acknowledged)
            {
                on_reader = Some(since.elapsed());
            }
            if on_nginx.is_none() && total(&http, &via_nginx(figures)).await == Some(acknowledged) {
                on_nginx = Some(since.elapsed());
            }
            assert!(
                since.elapsed() <= BOUND,
                "round {round}: {acknowledged} acknowledged, not all seen within {BOUND:?}: \
                 through the other instance after {on_reader:?}, through nginx after {on_nginx:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        worst_reader = worst_reader.max(on_reader.unwrap());
        worst_nginx = worst_nginx.max(on_nginx.unwrap());
        // The other instance never shows less than was acknowledged, on any read after.
        assert_eq!(total(&http, &reader.url(figures)).await, Some(acknowledged));
    }
    eprintln!(
        "{acknowledged} submissions through one instance: seen through the other within \
         {worst_reader:?}, through nginx within {worst_nginx:?} (bound {BOUND:?})"
    );
    // Once the replica holds the last version, the other instance builds there.
    let replica_reads = "civicmap_database_reads_total{on=\"replica\"}";
    let since = Instant::now();
    loop {
        let csv = http
            .get(reader.url(&format!(
                "/api/v1/campaigns/national/aggregates.csv?excel={}",
                since.elapsed().as_millis()
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), StatusCode::OK);
        if reader.metric(&http, replica_reads).await > 0.0 {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the other instance built nothing on the replica:\n{}",
            reader.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 2. One client's allowance, once across both instances: asked of each in turn...
    let client = "198.51.100.9";
    let started = Instant::now();
    let mut stored = 0;
    for i in 0..8 {
        let instance = if i % 2 == 0 { &writer } else { &reader };
        match post(&http, &instance.url(submissions), client, 2.15).await {
            StatusCode::CREATED => stored += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    if started.elapsed() < Duration::from_secs(10) {
        assert_eq!(
            stored, BURST,
            "a burst of {BURST}, once across both instances"
        );
    }
    acknowledged += stored as i64;
    // ...and through nginx, which sends to both (its address is the client's, for both).
    let started = Instant::now();
    let mut stored = 0;
    for _ in 0..8 {
        match post(&http, &via_nginx(submissions), "192.0.2.1", 2.16).await {
            StatusCode::CREATED => stored += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    if started.elapsed() < Duration::from_secs(10) {
        assert_eq!(stored, BURST, "through nginx: a burst of {BURST}, once");
    }
    acknowledged += stored as i64;
    let refused = "civicmap_rate_limited_total{scope=\"submit/client\"}";
    assert!(
        writer.metric(&http, refused).await > 0.0 && reader.metric(&http, refused).await > 0.0,
        "both instances refused the client's excess"
    );

    // 3. Everything acknowledged is everywhere: both instances, nginx, both databases.
    let since = Instant::now();
    loop {
        let seen = [
            total(&http, &writer.url(figures)).await,
            total(&http, &reader.url(figures)).await,
            total(&http, &via_nginx(figures)).await,
        ];
        if seen.iter().all(|t| *t == Some(acknowledged)) {
            break;
        }
        assert!(
            since.elapsed() <= BOUND,
            "{acknowledged} acknowledged; writer, reader, nginx: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&primary)
        .await
        .unwrap();
    assert_eq!(rows, acknowledged);
    let mut replica = pair.replica_connection().await;
    let since = Instant::now();
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
            .fetch_one(&mut replica)
            .await
            .unwrap();
        if rows == acknowledged {
            break;
        }
        assert!(since.elapsed() < BOUND, "the replica holds {rows}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = nginx.error_log();
    assert!(!log.contains("[emerg]") && !log.contains("[crit]"), "{log}");
}
