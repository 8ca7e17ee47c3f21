//! civicmap behind a real nginx `proxy_cache` on loopback (Debian's nginx, which
//! `scripts/setup.sh --browser` installs), configured with the block of docs/DEPLOY.md: public
//! figures and tiles come from the cache, a write made through nginx is visible through it
//! within the published bound (`caching::BOUND`), and a submitter's reads, staff answers and
//! errors never come from it, also on a second server with the two bypass lines taken out
//! (civicmap's own headers then keep them out alone).

use std::time::{Duration, Instant};

use civicmap::http::caching::BOUND;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, exact, point};
use crate::nginx::{Nginx, nginx_binary};
use crate::tiles::tile_of;

/// One answer through nginx: status, `X-Cache-Status`, `Cache-Control`, ETag and body.
#[derive(Debug)]
struct Seen {
    status: StatusCode,
    cache: String,
    cache_control: String,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Served from nginx's copy rather than asked of civicmap for this request.
    fn served_by_cache(&self) -> bool {
        matches!(self.cache.as_str(), "HIT" | "STALE" | "UPDATING")
    }
}

async fn fetch(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Seen {
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Seen {
        status: response.status(),
        cache: header("x-cache-status").unwrap_or_default(),
        cache_control: header("cache-control").unwrap_or_default(),
        etag: header("etag"),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

#[tokio::test]
async fn behind_nginx_public_reads_are_cached_a_write_shows_within_the_bound_and_private_answers_never()
 {
    let Some(binary) = nginx_binary() else {
        eprintln!(
            "\n\n**********************************************************************\n\
             SKIPPED tests/api/cdn.rs: nginx is not installed. `make test` installs\n\
             Debian's nginx (scripts/setup.sh --browser); or set NGINX=/path/to/nginx.\n\
             **********************************************************************\n"
        );
        return;
    };
    let app = TestApp::spawn().await;
    app.open_campaign("cdn", exact()).await;
    // One household already there, so that the tile has a district count to move.
    app.contribute("cdn", 2.05, 48.05, answers()).await;
    let nginx = Nginx::start(&binary, &[app.addr]).await;
    let client = reqwest::Client::new();
    let via = |path: &str| format!("http://127.0.0.1:{}{path}", nginx.port);
    let bare = |path: &str| format!("http://127.0.0.1:{}{path}", nginx.bare_port);
    let get = async |url: String, headers: &[(&str, &str)]| {
        fetch(&client, Method::GET, &url, headers, None).await
    };

    // 1. A public figure and a tile: asked of civicmap once, then served from the cache.
    let (x, y) = tile_of(2.05, 48.05, 10);
    let tile = format!("/tiles/cdn/10/{x}/{y}.mvt");
    let figures = "/api/v1/campaigns/cdn/districts.geojson";
    let csv = "/api/v1/campaigns/cdn/aggregates.csv";
    for path in [figures, csv, tile.as_str()] {
        let first = get(via(path), &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{path}");
        assert_eq!(first.cache, "MISS", "{path}");
        let second = get(via(path), &[]).await;
        assert_eq!(second.cache, "HIT", "{path}: {second:?}");
        assert_eq!(second.body, first.body, "{path}");
    }
    let total = |seen: &Seen| seen.json()["total"]["count"].as_i64();
    let before = get(via(figures), &[]).await;
    assert_eq!(total(&before), Some(1));
    let tile_before = get(via(&tile), &[]).await.etag.unwrap();

    // 2. A submission through nginx: visible through the cache within the bound.
    let created = fetch(
        &client,
        Method::POST,
        &via("/api/v1/campaigns/cdn/submissions"),
        &[],
        Some(&point(2.06, 48.06, answers())),
    )
    .await;
    let acknowledged = Instant::now();
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.cache_control, "private, no-store");
    let receipt = created.json();
    // The widget, after a write, asks with a fresh `?v=`: no cache holds it.
    let busted = get(via(&format!("{figures}?v={}", uuid::Uuid::new_v4())), &[]).await;
    assert_eq!(busted.cache, "MISS");
    assert_eq!(total(&busted), Some(2));
    let (mut figure_seen, mut tile_seen) = (None, None);
    let mut served_from_cache = Vec::new();
    while figure_seen.is_none() || tile_seen.is_none() {
        let elapsed = acknowledged.elapsed();
        assert!(
            elapsed <= BOUND,
            "after {elapsed:?} (bound {BOUND:?}) nginx still serves the old copy: figure seen \
             after {figure_seen:?}, tile after {tile_seen:?}; from the cache meanwhile: \
             {served_from_cache:?}"
        );
        let figure = get(via(figures), &[]).await;
        if figure.served_by_cache() {
            served_from_cache.push(format!("figure {}", figure.cache));
        }
        if figure_seen.is_none() && total(&figure) == Some(2) {
            figure_seen = Some(acknowledged.elapsed());
        }
        let now = get(via(&tile), &[]).await;
        if now.served_by_cache() {
            served_from_cache.push(format!("tile {}", now.cache));
        }
        if tile_seen.is_none() && now.etag.as_deref() != Some(&tile_before) {
            tile_seen = Some(acknowledged.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "through nginx: the new figure after {figure_seen:?}, the new tile after {tile_seen:?} \
         (bound {BOUND:?}); served from the cache meanwhile: {served_from_cache:?}"
    );

    // 3. The submitter's own submission: never from the cache, never stale, on both servers.
    let id = receipt["id"].as_str().unwrap();
    let token = receipt["edit_token"].as_str().unwrap();
    let own = format!("/api/v1/campaigns/cdn/submissions/{id}");
    for (server, url) in [("documented", via(&own)), ("bare", bare(&own))] {
        for households in [4, 5] {
            for _ in 0..2 {
                let seen = get(url.clone(), &[("x-edit-token", token)]).await;
                assert_eq!(seen.status, StatusCode::OK, "{server}");
                assert!(!seen.served_by_cache(), "{server}: {seen:?}");
                assert_eq!(seen.cache_control, "private, no-store", "{server}");
            }
            let corrected = fetch(
                &client,
                Method::PATCH,
                &url,
                &[("x-edit-token", token)],
                Some(&point(
                    2.06,
                    48.06,
                    json!({"households": households, "connection": "adsl"}),
                )),
            )
            .await;
            assert_eq!(corrected.status, StatusCode::OK, "{server}: {corrected:?}");
            let read = get(url.clone(), &[("x-edit-token", token)]).await;
            assert!(!read.served_by_cache(), "{server}: {read:?}");
            assert_eq!(
                read.json()["properties"]["households"],
                households,
                "{server}: the submitter reads back what they just wrote"
            );
        }
    }

    // 4. Staff: never from the cache, and a staff answer on a public path never reaches the
    // public, even without the bypass lines.
    let planner = app.staff_token(civicmap::auth::Role::Planner).await;
    let planner_auth = format!("Bearer {planner}");
    let admin_auth = format!("Bearer {}", app.admin_token);
    let finer = "/api/v1/campaigns/cdn/aggregates.csv?by=h3:8&breakdown=connection";
    for url in [via(finer), bare(finer)] {
        for _ in 0..2 {
            let seen = get(url.clone(), &[("authorization", &planner_auth)]).await;
            assert_eq!(seen.status, StatusCode::OK, "{url}");
            assert!(!seen.served_by_cache(), "{url}: {seen:?}");
            assert_eq!(seen.cache_control, "private, no-store");
            let seen = get(
                url.replace(finer, "/api/v1/admin/campaigns/cdn"),
                &[("authorization", &admin_auth)],
            )
            .await;
            assert_eq!(seen.status, StatusCode::OK, "{url}");
            assert!(!seen.served_by_cache(), "{url}: {seen:?}");
            assert_eq!(seen.cache_control, "private, no-store");
        }
        // Refused to the public (answers not public here, an H3 breakdown): never the
        // planner's figures from the cache.
        let public = get(url.clone(), &[]).await;
        assert!(
            public.status.is_client_error() && !public.served_by_cache(),
            "{url}: the public must get its own answer, not the planner's: {public:?}"
        );
    }

    // 5. Errors are not kept: a campaign opened after a 404 is there at once.
    let later = "/api/v1/campaigns/later/districts.geojson";
    for url in [via(later), bare(later)] {
        for _ in 0..2 {
            let seen = get(url.clone(), &[]).await;
            assert_eq!(seen.status, StatusCode::NOT_FOUND);
            assert!(!seen.served_by_cache(), "{url}: {seen:?}");
            assert_eq!(seen.cache_control, "private, no-store");
        }
    }
    app.open_campaign("later", exact()).await;
    for url in [via(later), bare(later)] {
        assert_eq!(get(url, &[]).await.status, StatusCode::OK);
    }
    let log = nginx.error_log();
    assert!(!log.contains("[emerg]") && !log.contains("[crit]"), "{log}");
}
