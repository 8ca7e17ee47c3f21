//! Padding: someone who can submit many times posts k - 1 probes where they think a household
//! is, then reads every public figure of that place. Were each probe counted toward k, the
//! place would be published and its count less the probes would say who else is there. Only
//! distinct contributors count toward k, so the place stays withheld.

use serde_json::{Value, json};

use crate::exports::{h3_of, hexagon_counts};
use crate::helpers::{TestApp, answers, household};
use crate::tiles::{decode, tile_of, to_lon_lat};

const K: i64 = 5;
/// The household the attacker is after, alone in its part of the "west" district.
const VICTIM: (f64, f64) = (2.05, 48.03);

/// Ground distance in metres between two nearby positions.
fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dx = (a.0 - b.0).to_radians() * a.1.to_radians().cos() * 6_371_000.0;
    let dy = (a.1 - b.1).to_radians() * 6_371_000.0;
    dx.hypot(dy)
}

/// A campaign with 12 households in each district far from the victim (so that the districts
/// are published), and the victim.
async fn campaign(app: &TestApp, slug: &str) {
    app.open_campaign(
        slug,
        json!({"privacy": {"public_precision_m": 50, "min_count": K}}),
    )
    .await;
    for i in 0..12 {
        for west in [2.0, 2.1, 2.2] {
            let lon = west + 0.02 + 0.005 * f64::from(i);
            let response = app.submit(slug, lon, 48.09, answers()).await;
            assert_eq!(response.status(), 201);
        }
    }
    let response = app.submit(slug, VICTIM.0, VICTIM.1, answers()).await;
    assert_eq!(response.status(), 201);
}

/// Every published figure whose place holds the victim's position, from every public door
/// that places figures finer than a district: `(door, count)`.
async fn figures_at_victim(app: &TestApp, slug: &str) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for resolution in 8..=10u8 {
        let door = format!("/api/v1/campaigns/{slug}/aggregates.geojson?by=h3:{resolution}");
        let body: Value = app.get(&door).await.json().await.unwrap();
        let cell = h3_of(VICTIM.0, VICTIM.1, resolution);
        if let Some(&count) = hexagon_counts(&body).get(&cell) {
            found.push((door, count));
        }
    }
    // The map's demand layer: nobody but the victim and the probes is within a kilometre, so
    // any demand point within 300 m of the victim is a cell that holds them.
    for z in 13..=16 {
        let (x, y) = tile_of(VICTIM.0, VICTIM.1, z);
        let response = app.tile(slug, z, x, y).await;
        if response.status() == 204 {
            continue;
        }
        assert_eq!(response.status(), 200);
        let tile = decode(response.bytes().await.unwrap().to_vec());
        for (px, py, count) in tile.demand {
            if metres(to_lon_lat(z, x, y, px, py), VICTIM) < 300.0 {
                found.push((format!("/tiles/{slug}/{z}/{x}/{y}.mvt"), count));
            }
        }
    }
    found
}

#[tokio::test]
async fn k_minus_one_probes_from_one_client_do_not_publish_a_household() {
    let app = TestApp::spawn().await;
    campaign(&app, "padded").await;
    // The attack: k - 1 probes at the victim's position, all from the attacker's address.
    let attacker = "198.51.100.7";
    for _ in 0..K - 1 {
        let response = app
            .submit_from(attacker, "padded", VICTIM.0, VICTIM.1, answers())
            .await;
        assert_eq!(
            response.status(),
            201,
            "probes are accepted like any submission"
        );
    }
    // What the attacker learns: each figure holding the victim, less the probes, is how many
    // others are there. It must never be fewer than k - 1 (the attacker counts as one).
    let learned: Vec<(String, i64)> = figures_at_victim(&app, "padded")
        .await
        .into_iter()
        .filter(|(_, count)| count - (K - 1) < K - 1)
        .collect();
    assert!(
        learned.is_empty(),
        "the probes published the victim's place: {learned:?}"
    );
    // The district totals stay live and exact: the probes are counted there.
    let counts = app.counts("padded").await;
    assert_eq!(counts["west"], Some(12 + 1 + (K - 1)));

    // The same place with k distinct households (the victim and four neighbours) is
    // published: the doors read above do show such a place, so the attack test can fail.
    campaign(&app, "neighbours").await;
    for _ in 0..K - 1 {
        let response = app
            .submit_from(&household(), "neighbours", VICTIM.0, VICTIM.1, answers())
            .await;
        assert_eq!(response.status(), 201);
    }
    let shown = figures_at_victim(&app, "neighbours").await;
    assert!(
        shown
            .iter()
            .any(|(door, count)| door.contains("h3:10") && *count == K),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|(door, count)| door.contains("/16/") && *count == K),
        "{shown:?}"
    );
}
