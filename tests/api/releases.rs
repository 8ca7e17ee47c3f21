//! Figures finer than a district are released with differential privacy, once per period:
//! someone who polls them between releases sees nothing move but what the live district totals
//! say; each contribution is counted by one release only; releases fall due at the end of each
//! period (plus the grace), once whatever the number of instances, and stop with the campaign.
//! The mechanism's guarantees themselves are tested without HTTP in `src/figures/attacks.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::helpers::{TestApp, exact};

/// The doors finer than a district that only a release moves, and what a poller reads.
const FINER: &[&str] = &[
    "/api/v1/campaigns/watch/aggregates.csv?by=h3:8",
    "/api/v1/campaigns/watch/aggregates.geojson?by=h3:6",
    "/api/v1/campaigns/watch/timeseries.csv",
    "/tiles/watch/14/8285/5691.mvt",
    "/tiles/watch/10/517/355.mvt",
];

/// What a tile publishes finer than a district: its `demand` layer, as (x, y, count). The
/// `districts` layer holds the live district totals.
fn demand_of(tile: &[u8]) -> Vec<String> {
    use geo::CoordsIter;
    if tile.is_empty() {
        return Vec::new();
    }
    let reader = mvt_reader::Reader::new(tile.to_vec()).expect("a valid MVT");
    let mut found = Vec::new();
    for (index, layer) in reader.get_layer_metadata().unwrap().into_iter().enumerate() {
        if layer.name != "demand" {
            continue;
        }
        for feature in reader.get_features_as::<f64>(index).unwrap() {
            let coords: Vec<_> = feature.geometry.coords_iter().collect();
            found.push(format!("{coords:?} {:?}", feature.properties));
        }
    }
    found.sort();
    found
}

/// (status, ETag, what is finer than a district) of every finer door: the whole body and its
/// ETag for aggregates and time series, the demand layer for tiles.
async fn read_all(app: &TestApp) -> Vec<(StatusCode, String, Vec<String>)> {
    let mut out = Vec::new();
    for path in FINER {
        let response = app.get(path).await;
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .map(|e| e.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.bytes().await.unwrap();
        out.push(if path.starts_with("/tiles/") {
            (status, String::new(), demand_of(&body))
        } else {
            (
                status,
                etag,
                vec![String::from_utf8_lossy(&body).into_owned()],
            )
        });
    }
    out
}

/// A campaign `watch` whose `connection` answers are public, with k = 3.
async fn watched(app: &TestApp) {
    let mut form = crate::helpers::test_form();
    form["fields"][1]["public"] = json!(true);
    app.open_campaign(
        "watch",
        json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": 3}}),
    )
    .await;
}

async fn submit(
    app: &TestApp,
    lon: f64,
    lat: f64,
    connection: &str,
) -> civicmap::submissions::Receipt {
    app.contribute(
        "watch",
        lon,
        lat,
        json!({"households": 2, "connection": connection}),
    )
    .await
}

/// The public splits of a district by `connection`: (adsl, none), each `None` when not shown.
async fn splits(app: &TestApp, code: &str) -> (Option<i64>, Option<i64>, i64) {
    let body: Value = app
        .get("/api/v1/campaigns/watch/aggregates.geojson?breakdown=connection")
        .await
        .json()
        .await
        .unwrap();
    let f = body["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["code"] == code)
        .unwrap();
    let p = &f["properties"];
    (
        p["estimate_connection=adsl"].as_i64(),
        p["estimate_connection=none"].as_i64(),
        p["count"].as_i64().unwrap_or(0),
    )
}

#[tokio::test]
async fn between_releases_a_poller_sees_only_what_the_live_totals_say() {
    let app = TestApp::spawn().await;
    watched(&app).await;
    // Forty households around one spot of the west district, released.
    for i in 0..40 {
        submit(
            &app,
            2.05 + f64::from(i) * 1e-5,
            48.05,
            ["adsl", "none"][i as usize % 2],
        )
        .await;
    }
    let release = app.release("watch").await;
    assert_eq!(release["counted"], 40);
    let before = read_all(&app).await;
    for (path, (status, _, body)) in FINER.iter().zip(&before) {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::NO_CONTENT,
            "{path}: {status}"
        );
        if path.contains("h3:8") {
            assert!(
                body[0].lines().count() > 1,
                "the released hexagon is listed: {body:?}"
            );
        }
    }
    let (adsl, none, total) = splits(&app, "west").await;
    assert_eq!(total, 40);
    // Estimates made to add up to the total (a third, "no answer", may take a little, and
    // is not shown below k).
    let shown = adsl.unwrap_or(0) + none.unwrap_or(0);
    assert!((38..=40).contains(&shown), "{adsl:?} {none:?}");

    // An arrival: its district total moves at once; every other finer door, not a byte, not
    // an ETag, however often it is read.
    submit(&app, 2.05003, 48.05, "none").await;
    assert_eq!(app.counts("watch").await["west"], Some(41));
    for _ in 0..3 {
        assert_eq!(read_all(&app).await, before);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The splits follow the live total they add up to, whatever the arrival answered: made to
    // add up to 41 from the same released estimates.
    let (adsl_after, none_after, total) = splits(&app, "west").await;
    assert_eq!(total, 41);
    let shown = adsl_after.unwrap_or(0) + none_after.unwrap_or(0);
    assert!((39..=41).contains(&shown), "{adsl_after:?} {none_after:?}");

    // The next release counts it.
    let release = app.release("watch").await;
    assert_eq!(release["counted"], 1);
    let after = read_all(&app).await;
    assert_ne!(after[0], before[0], "the resolution-8 hexagons moved");
}

#[tokio::test]
async fn a_release_counts_each_contribution_once_whatever_happens_to_it_after() {
    let app = TestApp::spawn().await;
    watched(&app).await;
    let mut receipts = Vec::new();
    for i in 0..6 {
        receipts.push(submit(&app, 2.05 + f64::from(i) * 1e-3, 48.05, "adsl").await);
    }
    assert_eq!(app.release("watch").await["counted"], 6);
    let figures = || async {
        sqlx::query_as::<_, (String, String, String, i64)>(
            "SELECT family, district, key, value FROM release_figures ORDER BY 1, 2, 3",
        )
        .fetch_all(&app.db)
        .await
        .unwrap()
    };
    let released = figures().await;
    assert!(!released.is_empty());
    // Nothing new: an empty release, counting nobody (its noise is drawn all the same).
    assert_eq!(app.release("watch").await["counted"], 0);
    // A correction, a hide and a restore, an erasure: none is counted again.
    let r = &receipts[0];
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/campaigns/watch/submissions/{}", r.id)))
        .header("X-Edit-Token", &r.edit_token)
        .json(&crate::helpers::point(
            2.25,
            48.05,
            json!({"households": 3, "connection": "none"}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    for action in ["hide", "restore"] {
        let response = app
            .admin_post(
                &format!(
                    "/api/v1/moderation/campaigns/watch/submissions/{}/decision",
                    receipts[1].id
                ),
                &json!({"action": action, "reason": "test"}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{action}: {}",
            response.text().await.unwrap()
        );
    }
    let response = app
        .client
        .delete(app.url(&format!(
            "/api/v1/campaigns/watch/submissions/{}",
            receipts[2].id
        )))
        .header("X-Edit-Token", &receipts[2].edit_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.release("watch").await["counted"], 0);
    let counted: Vec<(uuid::Uuid, Option<i64>)> =
        sqlx::query_as("SELECT id, release_id FROM submissions ORDER BY created_at")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(counted.len(), 5);
    assert!(counted.iter().all(|(_, r)| r.is_some()), "{counted:?}");
    // The running sums changed only by the noise of the two empty releases: every family and
    // cell is the same set of keys, and the correction moved nothing by hand.
    let now = figures().await;
    let keys = |f: &[(String, String, String, i64)]| {
        f.iter()
            .map(|(a, b, c, _)| (a.clone(), b.clone(), c.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&now), keys(&released));
    // The district totals moved with everything at once.
    let counts = app.counts("watch").await;
    assert_eq!(counts["total"], Some(5));
}

/// Campaign `slug`'s releases: (period end, counted).
async fn releases(app: &TestApp, slug: &str) -> Vec<(OffsetDateTime, i32)> {
    sqlx::query_as(
        "SELECT r.period_end, r.counted FROM releases r JOIN campaigns c ON c.id = r.campaign_id
         WHERE c.slug = $1 ORDER BY r.period_end",
    )
    .bind(slug)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn releases_fall_due_at_each_period_end_after_the_grace_and_stop_once_closed() {
    let app = TestApp::spawn().await;
    app.open_campaign("weekly", exact()).await;
    app.open_campaign(
        "daily",
        json!({"privacy": {"public_precision_m": 50, "min_count": 1, "release_every": "day"}}),
    )
    .await;
    // A draft releases nothing.
    let response = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "draft", "title": {"fr": "B", "en": "D"}, "form": crate::helpers::test_form()}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Created on Wednesday 2 December 2026 at noon, with a contribution that day.
    let created = datetime!(2026-12-02 12:00 UTC);
    sqlx::query("UPDATE campaigns SET created_at = $1")
        .bind(created)
        .execute(&app.db)
        .await
        .unwrap();
    for slug in ["weekly", "daily"] {
        app.contribute(slug, 2.05, 48.05, crate::helpers::answers())
            .await;
    }
    sqlx::query("UPDATE submissions SET created_at = $1, published_at = $1")
        .bind(datetime!(2026-12-02 15:00 UTC))
        .execute(&app.db)
        .await
        .unwrap();
    let run = |now: OffsetDateTime| {
        let db = app.db.clone();
        async move { civicmap::figures::release::run_due(&db, now).await.unwrap() }
    };
    // Thursday 06:00: the daily campaign's Wednesday ended six hours ago; the week has not.
    assert_eq!(run(datetime!(2026-12-03 05:59 UTC)).await.len(), 0);
    let made = run(datetime!(2026-12-03 06:00 UTC)).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(
        releases(&app, "daily").await,
        [(datetime!(2026-12-03 0:00 UTC), 1)]
    );
    // Monday 7 December at 06:00: the week ends for the weekly campaign; four more days for
    // the daily one, empty, but released all the same (a missing period would say something).
    run(datetime!(2026-12-07 06:00 UTC)).await;
    assert_eq!(
        releases(&app, "weekly").await,
        [(datetime!(2026-12-07 0:00 UTC), 1)]
    );
    let daily = releases(&app, "daily").await;
    assert_eq!(daily.len(), 5);
    assert_eq!(daily.last().unwrap(), &(datetime!(2026-12-07 0:00 UTC), 0));
    assert!(releases(&app, "draft").await.is_empty());
    // Made once, however often (or however many instances) it runs.
    let (a, b) = tokio::join!(
        run(datetime!(2026-12-07 07:00 UTC)),
        run(datetime!(2026-12-07 07:00 UTC))
    );
    assert!(a.is_empty() && b.is_empty());
    assert_eq!(releases(&app, "daily").await.len(), 5);

    // The daily campaign closes on Tuesday 8 December at 10:00: Tuesday is released, and
    // nothing after it while nothing is left to count.
    sqlx::query("UPDATE campaigns SET status = 'closed' WHERE slug = 'daily'")
        .execute(&app.db)
        .await
        .unwrap();
    // (The trigger that keeps `closed_at` wrote now; the scenario's instant instead.)
    sqlx::query("UPDATE campaigns SET closed_at = $1 WHERE slug = 'daily'")
        .bind(datetime!(2026-12-08 10:00 UTC))
        .execute(&app.db)
        .await
        .unwrap();
    run(datetime!(2026-12-20 12:00 UTC)).await;
    let daily = releases(&app, "daily").await;
    assert_eq!(
        daily.last().unwrap().0,
        datetime!(2026-12-09 0:00 UTC),
        "{daily:?}"
    );
    // A contribution approved late is released in the next period.
    sqlx::query(
        "INSERT INTO submissions (id, campaign_id, geom, answers, status, edit_token_hash, h3, published_at)
         SELECT gen_random_uuid(), id, ST_SetSRID(ST_MakePoint(2.05, 48.05), 4326), '{}', 'published', '\\x00', 0, $1
         FROM campaigns WHERE slug = 'daily'",
    )
    .bind(datetime!(2026-12-21 09:00 UTC))
    .execute(&app.db)
    .await
    .unwrap();
    run(datetime!(2026-12-22 07:00 UTC)).await;
    let daily = releases(&app, "daily").await;
    assert_eq!(
        daily.last().unwrap(),
        &(datetime!(2026-12-22 0:00 UTC), 1),
        "{daily:?}"
    );
}

#[tokio::test]
async fn concurrent_releases_of_one_campaign_make_one() {
    let app = TestApp::spawn().await;
    watched(&app).await;
    for i in 0..10 {
        submit(&app, 2.05 + f64::from(i) * 1e-3, 48.05, "adsl").await;
    }
    let requests = (0..4).map(|_| {
        app.client
            .post(app.url("/api/v1/admin/campaigns/watch/releases"))
            .bearer_auth(&app.admin_token)
            .send()
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT)
    );
    let counted: i64 = sqlx::query_scalar("SELECT sum(counted)::bigint FROM releases")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        counted, 10,
        "each contribution counted by one release: {statuses:?}"
    );
}

#[tokio::test]
async fn two_campaigns_with_the_same_contributions_publish_different_estimates() {
    // The noise is real on every public door: two identical campaigns, released once each,
    // have the same exact district totals and different estimates (the chance that every
    // estimate of the two agrees by accident is far below one in a million).
    let app = TestApp::spawn().await;
    for slug in ["one", "two"] {
        let mut form = crate::helpers::test_form();
        form["fields"][1]["public"] = json!(true);
        app.open_campaign(
            slug,
            json!({"form": form, "privacy": {"public_precision_m": 50, "min_count": 1}}),
        )
        .await;
        for i in 0..60 {
            let connection = ["adsl", "none"][i as usize % 2];
            app.contribute(
                slug,
                2.0 + f64::from(i) * 0.005,
                48.01 + f64::from(i % 9) * 0.01,
                json!({"households": 1, "connection": connection}),
            )
            .await;
        }
        app.release(slug).await;
    }
    let app = &app;
    let read = |slug: &'static str, query: &'static str| async move {
        app.get(&format!("/api/v1/campaigns/{slug}/aggregates.csv?{query}"))
            .await
            .text()
            .await
            .unwrap()
    };
    assert_eq!(
        read("one", "").await,
        read("two", "").await,
        "exact totals agree"
    );
    assert_ne!(
        read("one", "breakdown=connection").await,
        read("two", "breakdown=connection").await
    );
    assert_ne!(read("one", "by=h3:8").await, read("two", "by=h3:8").await);
}

#[tokio::test]
async fn after_an_erasure_a_flavour_never_asked_shows_what_the_others_show() {
    let app = TestApp::spawn().await;
    watched(&app).await;
    let mut receipts = Vec::new();
    for i in 0..30u32 {
        let connection = ["adsl", "none"][i as usize % 2];
        receipts.push(submit(&app, 2.05 + f64::from(i) * 1e-3, 48.05, connection).await);
    }
    app.release("watch").await;
    let csv = app
        .get("/api/v1/campaigns/watch/aggregates.csv?breakdown=connection")
        .await
        .text()
        .await
        .unwrap();
    let gone = receipts.pop().unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/campaigns/watch/submissions/{}", gone.id)))
        .header("X-Edit-Token", &gone.edit_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // The Excel flavour, asked for the first time after the erasure, and the plain one again:
    // the same figures (the released estimates made to add up to the new total, 29), so that
    // comparing them says nothing the total does not.
    let row = |text: &str, separator: char| -> Vec<String> {
        text.trim_start_matches('\u{feff}')
            .lines()
            .find(|l| l.starts_with("west"))
            .unwrap()
            .split(separator)
            .map(str::to_owned)
            .collect()
    };
    let plain = app
        .get("/api/v1/campaigns/watch/aggregates.csv?breakdown=connection")
        .await
        .text()
        .await
        .unwrap();
    let excel = app
        .get("/api/v1/campaigns/watch/aggregates.csv?breakdown=connection&excel=1")
        .await
        .text()
        .await
        .unwrap();
    let (before, plain, excel) = (row(&csv, ','), row(&plain, ','), row(&excel, ';'));
    assert_eq!(plain[2], "29");
    assert_eq!(
        plain[2..],
        excel[2..]
            .iter()
            .map(|c| c.replace(',', "."))
            .collect::<Vec<_>>()[..]
    );
    assert_eq!(before[2], "30");
    let adds_up =
        |r: &[String]| r[10].parse::<i64>().unwrap_or(0) + r[11].parse::<i64>().unwrap_or(0);
    assert!((27..=29).contains(&adds_up(&plain)), "{plain:?}");
}

#[tokio::test]
async fn etags_are_derived_from_the_body_and_say_nothing_else() {
    let app = TestApp::spawn().await;
    watched(&app).await;
    for i in 0..4 {
        submit(&app, 2.05 + f64::from(i) * 1e-4, 48.05, "adsl").await;
    }
    app.release("watch").await;
    let mut paths: Vec<&str> = FINER
        .iter()
        .copied()
        .filter(|p| !p.starts_with("/tiles/"))
        .collect();
    paths.extend([
        "/api/v1/campaigns/watch/aggregates.csv",
        "/api/v1/campaigns/watch/aggregates.geojson",
        "/api/v1/campaigns/watch/aggregates.csv?breakdown=connection",
    ]);
    for path in paths {
        let response = app
            .client
            .get(app.url(path))
            .header("accept-encoding", "identity")
            .send()
            .await
            .unwrap();
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let body = response.bytes().await.unwrap();
        let hex = format!("{:x}", sha2::Sha256::digest(&body));
        assert_eq!(etag, format!("\"{}\"", &hex[..32]), "{path}");
    }
}
