//! Padding: someone who can submit many times posts probes where they think a household is,
//! then reads every public figure of that place.
//!
//! - District totals are exact: there only distinct contributors count toward k, so k − 1
//!   probes from one address do not make a withheld total public.
//! - Everything finer is released with differential privacy, which padding cannot undo: the
//!   hexagons around a padded building are estimates, the same on every door, moving only with
//!   a release. How well an attacker who pads with k − 1 or 50 addresses can tell whether a
//!   household is there is measured against the budget's bound in `src/figures/attacks.rs`
//!   (`padding_a_building_does_not_tell_whether_a_household_is_there`).

use serde_json::{Value, json};

use crate::exports::{h3_of, hexagon_estimates};
use crate::helpers::{TestApp, answers, household};
use crate::tiles::{decode, tile_of, to_lon_lat};

const K: i64 = 5;
/// The household the attacker is after, alone in the "east" district.
const VICTIM: (f64, f64) = (2.25, 48.03);

/// Ground distance in metres between two nearby positions.
fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dx = (a.0 - b.0).to_radians() * a.1.to_radians().cos() * 6_371_000.0;
    let dy = (a.1 - b.1).to_radians() * 6_371_000.0;
    dx.hypot(dy)
}

/// A campaign with 12 households in the west and middle districts, and the victim alone in
/// the east.
async fn campaign(app: &TestApp, slug: &str) {
    app.open_campaign(
        slug,
        json!({"privacy": {"public_precision_m": 50, "min_count": K}}),
    )
    .await;
    for i in 0..12 {
        for west in [2.0, 2.1] {
            let lon = west + 0.02 + 0.005 * f64::from(i);
            app.contribute(slug, lon, 48.09, answers()).await;
        }
    }
    app.contribute(slug, VICTIM.0, VICTIM.1, answers()).await;
}

#[tokio::test]
async fn k_minus_one_probes_from_one_client_do_not_publish_a_withheld_district_total() {
    let app = TestApp::spawn().await;
    campaign(&app, "padded").await;
    assert_eq!(app.counts("padded").await["east"], None, "1 < k: withheld");
    // The attack: k - 1 probes in the victim's district, all from the attacker's address.
    let attacker = "198.51.100.7";
    for _ in 0..K - 1 {
        let response = app
            .submit_from(attacker, "padded", VICTIM.0 + 0.01, VICTIM.1, answers())
            .await;
        assert_eq!(
            response.status(),
            201,
            "probes are accepted like any submission"
        );
    }
    // Five submissions, two contributors: still withheld, so the total less the probes says
    // nothing.
    let counts = app.counts("padded").await;
    assert_eq!(counts["east"], None, "{counts:?}");
    // The same with k distinct households is published: the door above does show a total, so
    // the test can fail.
    for _ in 0..K - 1 {
        let response = app
            .submit_from(&household(), "padded", VICTIM.0 + 0.02, VICTIM.1, answers())
            .await;
        assert_eq!(response.status(), 201);
    }
    assert_eq!(app.counts("padded").await["east"], Some(1 + 2 * (K - 1)));
}

/// Every published figure whose place holds the victim's position, from every public door
/// that places figures finer than a district: `(door, estimate)`.
async fn figures_at_victim(app: &TestApp, slug: &str) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for resolution in 6..=8u8 {
        let door = format!("/api/v1/campaigns/{slug}/aggregates.geojson?by=h3:{resolution}");
        let body: Value = app.get(&door).await.json().await.unwrap();
        let cell = h3_of(VICTIM.0, VICTIM.1, resolution);
        if let Some(&count) = hexagon_estimates(&body).get(&cell) {
            found.push((door, count));
        }
    }
    // The map's demand layer: nobody but the victim and the probes is within a kilometre, so
    // a demand point within 500 m of the victim is the hexagon that holds them.
    for z in 13..=15 {
        let (x, y) = tile_of(VICTIM.0, VICTIM.1, z);
        let response = app.tile(slug, z, x, y).await;
        if response.status() == 204 {
            continue;
        }
        assert_eq!(response.status(), 200);
        let tile = decode(response.bytes().await.unwrap().to_vec());
        for (px, py, count) in tile.demand {
            if metres(to_lon_lat(z, x, y, px, py), VICTIM) < 500.0 {
                found.push((format!("/tiles/{slug}/{z}/{x}/{y}.mvt"), count));
            }
        }
    }
    found
}

#[tokio::test]
async fn padding_a_building_from_fifty_addresses_leaves_its_hexagon_an_estimate() {
    let app = TestApp::spawn().await;
    campaign(&app, "building").await;
    app.release("building").await;
    // The attack: 50 probes at the victim's building, from 50 addresses, then the next
    // release, and every door read.
    for _ in 0..50 {
        let response = app
            .submit_from(&household(), "building", VICTIM.0, VICTIM.1, answers())
            .await;
        assert_eq!(response.status(), 201);
    }
    let before = figures_at_victim(&app, "building").await;
    let released = app.release("building").await;
    assert_eq!(released["counted"], 50);
    let after = figures_at_victim(&app, "building").await;
    assert_ne!(
        before, after,
        "the release published the hexagon around the building"
    );
    // The map and the downloads say the same of it (one family of estimates): the resolution-8
    // hexagon's estimate is the demand point's at zooms 13 to 15.
    let h3 = after
        .iter()
        .find(|(door, _)| door.contains("h3:8"))
        .map(|f| f.1)
        .expect("51 contributions make a listed hexagon");
    for (door, count) in after.iter().filter(|(door, _)| door.starts_with("/tiles/")) {
        assert_eq!(*count, h3, "{door}");
    }
    // Read again: the same; an empty release moves the estimates (the noise of another
    // release), never by reading.
    assert_eq!(figures_at_victim(&app, "building").await, after);
    let mut moved = false;
    for _ in 0..6 {
        app.release("building").await;
        moved |= figures_at_victim(&app, "building").await != after;
    }
    assert!(
        moved,
        "six empty releases, each with its noise, left every estimate as it was"
    );
}
