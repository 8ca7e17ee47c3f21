//! What browsers, proxies and CDNs may keep, route by route: every route of the route table is
//! called and its headers checked against what this file expects of it (written here, not read
//! from the declarations: a new public route fails until it is added below). Anything about one
//! submission, every staff answer, every answer to a request with a credential, every write and
//! every error is `private, no-store`; public reads are kept within the published bound, vary by
//! `Accept-Encoding` where they are gzipped, and never by a cookie or a token.

use std::sync::Arc;

use civicmap::http::caching::BOUND;
use civicmap::http::routes::{Access, Route};
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, answers, exact, test_config};
use crate::tiles::tile_of;

/// How the answers of a route may be kept, as this test expects it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// `private, no-store`, no surrogate key.
    Private,
    /// Public, within the bound; surrogate keys of the campaign and this kind.
    Live(&'static str),
    /// `public, max-age={0}`, with this surrogate key.
    Long(u32, &'static str),
}

/// What a successful GET without credentials of a public route may be.
fn expected(route: &Route) -> Expect {
    if route.method != reqwest::Method::GET || !matches!(route.access, Access::Public) {
        return Expect::Private;
    }
    match route.path.as_str() {
        "/api/v1/campaigns/{slug}"
        | "/api/v1/campaigns/{slug}/story"
        | "/api/v1/campaigns/{slug}/story.atom"
        | "/tiles/{tilejson}"
        | "/embed/{campaign}"
        | "/embed/{campaign}/edit" => Expect::Live("settings"),
        "/api/v1/campaigns/{slug}/districts.geojson"
        | "/api/v1/campaigns/{slug}/aggregates.geojson"
        | "/api/v1/campaigns/{slug}/aggregates.csv"
        | "/api/v1/campaigns/{slug}/timeseries.csv" => Expect::Live("figures"),
        "/tiles/{campaign}/{z}/{x}/{y}" => Expect::Live("tiles"),
        "/basemap/{z}/{x}/{y}" | "/basemap/fonts/{fontstack}/{range}" => {
            Expect::Long(86_400, "civicmap-basemap")
        }
        "/basemap.json" | "/basemap/style.json" => Expect::Long(300, "civicmap-basemap"),
        "/" | "/embed.js" | "/widget/{*file}" | "/api/v1/openapi.json" => {
            Expect::Long(300, "civicmap-code")
        }
        // What a citizen typed; health probes.
        "/api/v1/campaigns/{slug}/addresses" | "/healthz" | "/readyz" => Expect::Private,
        // A follower's link (its token in the query).
        "/api/v1/campaigns/{slug}/subscriptions/confirm"
        | "/api/v1/campaigns/{slug}/subscriptions/unsubscribe" => Expect::Private,
        // The staff console's page.
        "/admin" => Expect::Private,
        other => panic!(
            "GET {other} is a new public route: say here how its answers may be kept \
             (docs/DEPLOY.md, src/http/caching.rs)"
        ),
    }
}

/// A concrete path for `pattern`, naming things that exist (so that reads answer 200).
fn concrete(pattern: &str, slug: &str, tile: (u32, u32), submission: &str, token: i64) -> String {
    let path = pattern
        .split('/')
        .map(|segment| match segment {
            "{slug}" | "{campaign}" => slug.to_owned(),
            "{tilejson}" => format!("{slug}.json"),
            "{z}" if pattern.starts_with("/basemap") => "1".to_owned(),
            "{x}" if pattern.starts_with("/basemap") => "1".to_owned(),
            "{y}" if pattern.starts_with("/basemap") => "0.mvt".to_owned(),
            "{z}" => "10".to_owned(),
            "{x}" => tile.0.to_string(),
            "{y}" => format!("{}.mvt", tile.1),
            "{fontstack}" => "Noto Sans Regular".to_owned(),
            "{range}" => "0-255.pbf".to_owned(),
            "{id}" if pattern.contains("/tokens/") => token.to_string(),
            "{id}" => submission.to_owned(),
            s if s.starts_with("{*") => "civicmap.js".to_owned(),
            s if s.starts_with('{') => panic!("no sample value for {s} in {pattern}: add one here"),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/");
    if pattern.ends_with("/addresses") {
        format!("{path}?q=rue")
    } else {
        path
    }
}

fn header(response: &Response, name: &str) -> Option<String> {
    let mut values = response.headers().get_all(name).iter();
    let first = values.next().map(|v| v.to_str().unwrap().to_owned());
    assert!(values.next().is_none(), "one {name} line at most");
    first
}

/// The names in the response's Vary line.
fn vary(response: &Response) -> Vec<String> {
    header(response, "vary")
        .unwrap_or_default()
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Checks the caching headers of `response` against `expect`; `what` names the request.
fn check(response: &Response, expect: Expect, slug: &str, what: &str) {
    let cache_control = header(response, "cache-control").unwrap_or_default();
    let keys = header(response, "surrogate-key");
    let tags = header(response, "cache-tag");
    match expect {
        Expect::Private => {
            assert_eq!(cache_control, "private, no-store", "{what}");
            assert_eq!((keys, tags), (None, None), "{what}: no surrogate key");
            return;
        }
        Expect::Live(kind) => {
            let directives: Vec<&str> = cache_control.split(", ").collect();
            let seconds = |name: &str| {
                directives
                    .iter()
                    .find_map(|d| d.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("{what}: no {name} in `{cache_control}`"))
            };
            assert!(directives.contains(&"public"), "{what}: {cache_control}");
            assert_eq!(seconds("max-age"), 0, "{what}: browsers revalidate");
            let (fresh, stale) = (seconds("s-maxage"), seconds("stale-while-revalidate"));
            assert!(fresh > 0, "{what}: a CDN may keep it");
            assert_eq!(
                fresh + stale,
                BOUND.as_secs(),
                "{what}: the published bound"
            );
            let keys = keys.unwrap_or_else(|| panic!("{what}: no Surrogate-Key"));
            let keys: Vec<&str> = keys.split(' ').collect();
            for key in [
                "civicmap".to_owned(),
                format!("civicmap-campaign-{slug}"),
                format!("civicmap-campaign-{slug}-{kind}"),
            ] {
                assert!(
                    keys.contains(&key.as_str()),
                    "{what}: {key} not in {keys:?}"
                );
            }
            assert_eq!(tags, Some(keys.join(",")), "{what}: Cache-Tag");
        }
        Expect::Long(seconds, key) => {
            assert_eq!(
                cache_control,
                format!("public, max-age={seconds}"),
                "{what}"
            );
            let keys = keys.unwrap_or_else(|| panic!("{what}: no Surrogate-Key"));
            assert!(
                keys.split(' ').any(|k| k == key),
                "{what}: {key} not in {keys}"
            );
            assert_eq!(tags, Some(keys.replace(' ', ",")), "{what}: Cache-Tag");
        }
    }
    let vary = vary(response);
    for never in ["authorization", "cookie", "*"] {
        assert!(!vary.iter().any(|n| n == never), "{what}: Vary {vary:?}");
    }
}

#[tokio::test]
async fn every_route_answers_with_the_caching_policy_of_its_kind() {
    let archive = tempfile::NamedTempFile::new().unwrap();
    crate::basemap::write_archive(archive.path(), pmtiles::Compression::Gzip);
    let mut config = test_config();
    config.basemap = Some(Arc::new(
        civicmap::basemap::Archive::open(archive.path())
            .await
            .unwrap(),
    ));
    let app = TestApp::spawn_with(config).await;
    let slug = "cache";
    app.open_campaign(slug, exact()).await;
    let receipt = app.contribute(slug, 2.05, 48.05, answers()).await;
    let tile = tile_of(2.05, 48.05, 10);
    let spare = app.staff_token(civicmap::auth::Role::Planner).await;
    let spare_id: i64 = spare.split('_').nth(1).unwrap().parse().unwrap();
    let submission = receipt.id.to_string();
    let edit_token = receipt.edit_token.clone();
    let admin = format!("Bearer {}", app.admin_token);

    let table = civicmap::http::route_table(std::path::Path::new("widget"));
    let mut kept = 0;
    for route in &table {
        let expect = expected(route);
        let path = concrete(&route.path, slug, tile, &submission, spare_id);
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let what = format!("{method} {path}");
        let send = |headers: &[(&str, &str)]| {
            let mut request = app.client.request(method.clone(), app.url(&path));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.send()
        };
        // As its caller would: staff with a token, the submitter with the edit token (for
        // reading only: a DELETE would erase it), the public with nothing.
        let credentials: Vec<(&str, &str)> = match route.access {
            Access::Staff(_) => vec![("authorization", &admin)],
            Access::EditToken if method == Method::GET => vec![("x-edit-token", &edit_token)],
            _ => vec![],
        };
        let response = send(&credentials).await.unwrap();
        if method == Method::GET && route.access != Access::Public {
            assert_eq!(response.status(), StatusCode::OK, "{what}: a real read");
        }
        if expect != Expect::Private {
            kept += 1;
            assert!(
                matches!(response.status().as_u16(), 200 | 204),
                "{what}: {}",
                response.status()
            );
        }
        check(&response, expect, slug, &what);
        if method != Method::GET || matches!(expect, Expect::Private) {
            continue;
        }

        // The same read with a staff token: for them alone, kept by nobody.
        let staff = send(&[("authorization", &admin)]).await.unwrap();
        check(&staff, Expect::Private, slug, &format!("{what} as staff"));

        // Gzip for who takes it, plain for others: a cache must tell the two apart.
        let gzipped = send(&[("accept-encoding", "gzip")]).await.unwrap();
        check(&gzipped, expect, slug, &format!("{what} gzip"));
        let encoding = |r: &Response| header(r, "content-encoding");
        if encoding(&gzipped) != encoding(&response) {
            for r in [&response, &gzipped] {
                assert!(
                    vary(r).contains(&"accept-encoding".to_owned()),
                    "{what}: gzipped for some clients but no Vary: accept-encoding"
                );
            }
        }

        // Every site gets the same answer, or a cache must tell them apart.
        let from_a = send(&[("origin", "https://a.example")]).await.unwrap();
        let from_b = send(&[("origin", "https://b.example")]).await.unwrap();
        let allowed = |r: &Response| header(r, "access-control-allow-origin");
        if allowed(&from_a) != allowed(&from_b) {
            assert!(
                vary(&from_a).contains(&"origin".to_owned()),
                "{what}: CORS answers differ by origin but no Vary: origin"
            );
        }
        check(&from_a, expect, slug, &format!("{what} from a site"));

        // Revalidation: a 304 says the same as the 200 it stands for.
        if let Some(etag) = header(&response, "etag") {
            let again = send(&[("if-none-match", &etag)]).await.unwrap();
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{what}");
            check(&again, expect, slug, &format!("{what} 304"));
            assert_eq!(vary(&again), vary(&response), "{what} 304");
            assert_eq!(header(&again, "etag"), Some(etag), "{what} 304");
        }

        // An error on the same route is kept by nobody.
        if route.path.contains("{slug}") || route.path.contains("{campaign}") {
            let missing = path.replacen(slug, "no-such-campaign", 1);
            let response = app.get(&missing).await;
            if !route.path.starts_with("/embed/") {
                assert!(response.status().is_client_error(), "GET {missing}");
            }
            if response.status().is_client_error() {
                check(&response, Expect::Private, slug, &format!("GET {missing}"));
            }
        }
    }
    assert!(kept >= 15, "the table lost its public reads: {kept}");
}

#[tokio::test]
async fn a_submitter_staff_and_errors_are_never_publicly_cacheable() {
    let app = TestApp::spawn().await;
    app.open_campaign("own", exact()).await;
    let receipt = app.contribute("own", 2.05, 48.05, answers()).await;
    let own = format!("/api/v1/campaigns/own/submissions/{}", receipt.id);
    let private = |response: &Response, what: &str| {
        check(response, Expect::Private, "own", what);
    };

    // The submitter's own reads, right and wrong token, and the answers to their writes.
    let read = async |token: &str| {
        app.client
            .get(app.url(&own))
            .header("x-edit-token", token)
            .header("origin", "https://ville.example")
            .send()
            .await
            .unwrap()
    };
    let mine = read(&receipt.edit_token).await;
    assert_eq!(mine.status(), StatusCode::OK);
    private(&mine, "own read");
    private(&read("not-the-token").await, "own read, wrong token");
    let corrected = app
        .client
        .patch(app.url(&own))
        .header("x-edit-token", &receipt.edit_token)
        .json(&crate::helpers::point(2.06, 48.06, answers()))
        .send()
        .await
        .unwrap();
    assert_eq!(corrected.status(), StatusCode::OK);
    private(&corrected, "correction");
    let created = app.submit("own", 2.07, 48.07, answers()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    private(&created, "submission");

    // A credential on a public read: kept by nobody, whatever it is.
    for (name, value) in [
        ("authorization", format!("Bearer {}", app.admin_token)),
        ("authorization", "Bearer not-a-token".to_owned()),
        ("x-edit-token", receipt.edit_token.clone()),
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/campaigns/own/districts.geojson"))
            .header(name, &value)
            .send()
            .await
            .unwrap();
        private(&response, &format!("districts with {name}"));
    }

    // Errors, from handlers, from the router and from the layers.
    let errors = [
        app.get("/api/v1/campaigns/none/aggregates.csv").await,
        app.get("/api/v1/campaigns/own/aggregates.csv?by=nothing")
            .await,
        app.get("/api/v1/campaigns/own/aggregates.csv?from=2026-01-01T00:00:00Z")
            .await,
        app.get("/tiles/own/99/0/0.mvt").await,
        app.get("/no/such/route").await,
        app.client
            .put(app.url("/api/v1/campaigns/own"))
            .send()
            .await
            .unwrap(),
        app.get("/api/v1/admin/campaigns").await,
        app.client
            .post(app.url("/api/v1/campaigns/own/submissions"))
            .body("x".repeat(20_000))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    ];
    for response in &errors {
        assert!(response.status().is_client_error(), "{}", response.url());
        private(response, response.url().as_str());
    }

    // While the database is away: a 503 is kept by nobody either.
    app.health.set_away(true);
    let away = app
        .client
        .post(app.url("/api/v1/campaigns/own/submissions"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(away.status(), StatusCode::SERVICE_UNAVAILABLE);
    private(&away, "503");
}
