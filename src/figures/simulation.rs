//! Synthetic campaigns run through the mechanism without a database, for the attack games
//! (the tests below) and `benches/privacy-utility.sh` (`civicmap bench-privacy`): the real
//! plan, measurement, noise and post-processing of [`super`], on households whose truth is
//! known. Shaped like Nanterre's campaign: its 11 districts (© OpenStreetMap contributors,
//! ODbL), households per district in proportion to the demo's, clustered around a few places
//! in each (blocks of flats), arriving over weeks with the most at the start.

use std::collections::BTreeMap;

use geo::{BoundingRect, Contains, MultiPolygon, Point};
use h3o::{LatLng, Resolution};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::budget::Plan;
use super::estimates::{self, Cumulative, Hexagon, Period, Released};
use super::mechanism::{self, Domain};
use super::noise::NoiseError;
use super::{PublishedCount, Tally, suppress};
use crate::campaigns::Campaign;

/// The districts of a town: codes (then `""`, outside every district) and outlines.
#[derive(Debug, Clone)]
pub struct Town {
    pub codes: Vec<String>,
    pub shapes: Vec<MultiPolygon<f64>>,
}

impl Town {
    /// Nanterre's 11 districts.
    pub fn nanterre() -> Self {
        let collection: serde_json::Value = serde_json::from_str(crate::demo::NANTERRE_DISTRICTS)
            .expect("the districts file is GeoJSON");
        let (mut codes, shapes): (Vec<String>, Vec<MultiPolygon<f64>>) =
            crate::synthetic::polygons_of(&collection, "code")
                .into_iter()
                .unzip();
        codes.push(String::new());
        Self { codes, shapes }
    }

    /// The district holding `(lon, lat)`, if any.
    pub fn district_of(&self, lon: f64, lat: f64) -> Option<usize> {
        self.shapes
            .iter()
            .position(|s| s.contains(&Point::new(lon, lat)))
    }

    /// The map's domain at `resolution`.
    pub fn domain(&self, resolution: Resolution) -> Domain {
        let shapes: Vec<Vec<geo::Polygon<f64>>> = self.shapes.iter().map(|m| m.0.clone()).collect();
        super::release::tile(&shapes, resolution).expect("Nanterre's outlines tile")
    }
}

/// A synthetic household: where, when (the release that counts it), and its answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Household {
    pub district: usize,
    pub lon: f64,
    pub lat: f64,
    pub period: usize,
    /// Per field of the form, the answer (as stored: a choice's value, `true`/`false`, a
    /// number).
    pub answers: serde_json::Map<String, serde_json::Value>,
}

/// The demo's form, with `questions` public choice or yes/no questions (1 to 3: `connection`,
/// `building`, `works_from_home`) and, with `public_number`, `people` (whole, 1 to 6) public
/// too; `households` (1 to 500) is never public. Budget `budget`, map resolution 8.
pub fn campaign(questions: usize, public_number: bool, budget: f64) -> Campaign {
    let mut form = crate::demo::campaign_input()
        .form
        .expect("the demo has a form");
    for (i, key) in ["connection", "building", "works_from_home"]
        .iter()
        .enumerate()
    {
        if let Some(f) = form.fields.iter_mut().find(|f| f.key == *key) {
            f.public = i < questions;
        }
    }
    form.fields.push(
        serde_json::from_value(
            json!({"key": "people", "type": "number", "min": 1, "max": 6,
            "integer": true, "public": public_number,
            "label": {"fr": "Personnes", "en": "People"}}),
        )
        .expect("a well-made field"),
    );
    let mut campaign = Campaign::unsaved("synthetic", form);
    campaign.privacy.budget = budget;
    campaign.privacy.map_resolution = 8;
    campaign
}

/// The share of each answer of `connection` (adsl, cable, 4g-5g, none) in district `d`: the
/// same base everywhere, moved by the district so that splits differ between districts.
fn connection_shares(d: usize) -> [f64; 4] {
    let tilt = (d as f64 * 0.7).sin() * 0.15;
    let raw = [0.45 + tilt, 0.2 - tilt / 2.0, 0.2, 0.15 - tilt / 2.0];
    let total: f64 = raw.iter().sum();
    raw.map(|x| x / total)
}

/// The answers' prior the attacker knows: `connection` of district `d`, `people` everywhere.
pub fn priors(d: usize) -> ([f64; 4], [f64; 6]) {
    (connection_shares(d), [0.3, 0.3, 0.15, 0.15, 0.05, 0.05])
}

fn pick<const N: usize>(rng: &mut impl Rng, shares: &[f64; N]) -> usize {
    let mut x = rng.random_range(0.0..1.0);
    for (i, s) in shares.iter().enumerate() {
        if x < *s {
            return i;
        }
        x -= s;
    }
    N - 1
}

/// A household's answers, drawn with `rng` for district `d`.
pub fn answers(rng: &mut impl Rng, d: usize) -> serde_json::Map<String, serde_json::Value> {
    let (connection, people) = priors(d);
    let c = ["adsl", "cable", "4g-5g", "none"][pick(rng, &connection)];
    let building = if rng.random_bool(0.6) {
        "apartment"
    } else {
        "house"
    };
    let value = json!({
        "connection": c,
        "building": building,
        "works_from_home": rng.random_bool(0.4),
        "households": if building == "house" { 1 } else { rng.random_range(2..=40) },
        "people": 1 + pick(rng, &people) as i64,
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// Households per district of Nanterre for a campaign of `total` (in proportion to the demo's
/// households per district).
pub fn sizes(town: &Town, total: usize) -> Vec<usize> {
    let by_code: BTreeMap<&str, f64> = crate::demo::DEMO_HOUSEHOLDS
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(';'))
        .filter_map(|(c, n)| Some((c, n.trim().parse::<f64>().ok()?)))
        .collect();
    let all: f64 = by_code.values().sum();
    town.codes[..town.shapes.len()]
        .iter()
        .map(|c| {
            (by_code.get(c.as_str()).copied().unwrap_or(0.0) / all * total as f64).round() as usize
        })
        .collect()
}

/// A campaign's households: `sizes[d]` in district `d`, 60 % of them around three places of
/// the district (within about 150 m), the rest anywhere in it; arriving over `weeks` periods,
/// more at the start; always the same for the same `seed`.
pub fn households(town: &Town, sizes: &[usize], weeks: usize, seed: u64) -> Vec<Household> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights: Vec<f64> = (0..weeks).map(|w| 1.0 / (1.0 + w as f64 * 0.35)).collect();
    let total_weight: f64 = weights.iter().sum();
    let mut out = Vec::new();
    for (d, (&n, shape)) in sizes.iter().zip(&town.shapes).enumerate() {
        let Some(rect) = shape.bounding_rect() else {
            continue;
        };
        let mut anywhere = || loop {
            let x = rng.random_range(rect.min().x..=rect.max().x);
            let y = rng.random_range(rect.min().y..=rect.max().y);
            if shape.contains(&Point::new(x, y)) {
                return (x, y);
            }
        };
        let hotspots: Vec<(f64, f64)> = (0..3).map(|_| anywhere()).collect();
        let mut placed = 0;
        while placed < n {
            let (lon, lat) = if rng.random_bool(0.6) {
                let (hx, hy) = hotspots[rng.random_range(0..3)];
                // About 150 m: 0.0013° of latitude, 0.002° of longitude at 48.9°N.
                let (x, y) = (
                    hx + rng.random_range(-0.002..0.002),
                    hy + rng.random_range(-0.0013..0.0013),
                );
                if !shape.contains(&Point::new(x, y)) {
                    continue;
                }
                (x, y)
            } else {
                let mut x = rng.random_range(rect.min().x..=rect.max().x);
                let mut y = rng.random_range(rect.min().y..=rect.max().y);
                while !shape.contains(&Point::new(x, y)) {
                    x = rng.random_range(rect.min().x..=rect.max().x);
                    y = rng.random_range(rect.min().y..=rect.max().y);
                }
                (x, y)
            };
            let mut at = rng.random_range(0.0..total_weight);
            let period = weights
                .iter()
                .position(|w| {
                    at -= w;
                    at < 0.0
                })
                .unwrap_or(weeks - 1);
            out.push(Household {
                district: d,
                lon,
                lat,
                period,
                answers: answers(&mut rng, d),
            });
            placed += 1;
        }
    }
    out
}

/// A campaign's releases, simulated: what the public doors would publish after each.
#[derive(Debug, Clone)]
pub struct Run {
    pub campaign: Campaign,
    pub plan: Plan,
    pub town: Town,
    pub domain: Domain,
    /// Exact live totals per district (then outside).
    pub live: Vec<Tally>,
    pub released: Released,
}

/// Whether a simulated release draws its noise (the mechanism) or not (a broken mechanism,
/// the control that shows an attack test can fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    On,
    /// No noise at all: what the attack tests must catch.
    Off,
}

impl Run {
    /// A campaign before its first release.
    pub fn new(campaign: Campaign, town: Town) -> Self {
        let plan = Plan::of(&campaign);
        let resolution = Resolution::try_from(plan.resolution).expect("6 to 10");
        let domain = town.domain(resolution);
        let places = town.codes.len();
        Self {
            campaign,
            plan,
            domain,
            live: vec![Tally::default(); places],
            released: Released {
                id: 0,
                period_end: time::OffsetDateTime::UNIX_EPOCH,
                released_at: time::OffsetDateTime::UNIX_EPOCH,
                epsilon: 0.0,
                releases: 0,
                totals: town
                    .codes
                    .iter()
                    .map(|c| (c.clone(), Tally::default()))
                    .collect(),
                sums: Cumulative::default(),
                series: Vec::new(),
            },
            town,
        }
    }

    /// `household` leaves (erased or hidden): its district's live total moves at once; the
    /// releases, which counted it, stay as they are.
    pub fn leave(&mut self, household: &Household) {
        let d = household.district.min(self.town.shapes.len());
        self.live[d].take_out(true);
    }

    /// What a naive mechanism would do when `household` leaves: take its exact answer out of
    /// the running sums. Never done by civicmap; the control of the erasure attack test.
    pub fn leave_exactly(&mut self, household: &Household) {
        self.leave(household);
        for split in &self.plan.splits {
            let value = match household.answers.get(&split.field) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Bool(b)) => b.to_string(),
                _ => String::new(),
            };
            self.released.sums.add(&[estimates::Row {
                family: estimates::split_family(&split.field),
                district: self.town.codes[household.district].clone(),
                key: value,
                value: -1,
            }]);
        }
    }

    /// `arrivals` arrive (live district totals move at once) and a release counts them.
    /// Returns the release's noisy measurements (what the public never sees: the attack tests'
    /// strongest attacker reads them).
    pub fn release(
        &mut self,
        arrivals: &[&Household],
        noise: Noise,
    ) -> Result<mechanism::Leaf, NoiseError> {
        let resolution = Resolution::try_from(self.plan.resolution).expect("6 to 10");
        let measured: Vec<mechanism::Household> = arrivals
            .iter()
            .map(|h| mechanism::Household {
                district: h.district,
                cell: LatLng::new(h.lat, h.lon)
                    .ok()
                    .map(|p| p.to_cell(resolution)),
                answers: self
                    .plan
                    .splits
                    .iter()
                    .map(|s| s.position(h.answers.get(&s.field)))
                    .collect(),
                numbers: self
                    .plan
                    .sums
                    .iter()
                    .map(|s| {
                        h.answers
                            .get(&s.field)
                            .and_then(serde_json::Value::as_i64)
                            .map_or(0, |n| n.clamp(s.lo, s.hi))
                    })
                    .collect(),
            })
            .collect();
        let districts = self.town.shapes.len();
        let leaf = match noise {
            Noise::On => mechanism::measure(&self.plan, &self.domain, districts, &measured)?,
            Noise::Off => mechanism::tally(&self.plan, &self.domain, districts, &measured),
        };
        for h in arrivals {
            self.live[h.district.min(districts)] += Tally::distinct(1);
        }
        let rows = estimates::leaf_rows(&self.plan, &self.domain, &self.town.codes, &leaf);
        self.released.sums.add(&rows);
        let n = self.released.releases as i64;
        let at = |i: i64| time::OffsetDateTime::UNIX_EPOCH + time::Duration::weeks(i);
        self.released.series.push(Period {
            start: at(n),
            end: at(n + 1),
            noisy: leaf.series,
        });
        self.released.releases += 1;
        self.released.id += 1;
        self.released.period_end = at(n + 1);
        self.released.epsilon = self.plan.epsilon;
        self.released.totals = self
            .town
            .codes
            .iter()
            .cloned()
            .zip(self.live.iter().copied())
            .collect();
        Ok(leaf)
    }

    fn k(&self) -> i64 {
        i64::from(self.campaign.privacy.min_count)
    }

    /// The public splits of each district by `field` (its values in the plan's order).
    pub fn splits(&self, field: &str) -> Vec<Vec<PublishedCount>> {
        let values = self
            .plan
            .splits
            .iter()
            .find(|s| s.field == field)
            .map(|s| s.values.clone())
            .unwrap_or_default();
        let published = suppress(&self.live, self.k());
        estimates::splits(
            &self.released.sums,
            field,
            &values,
            &self.town.codes,
            &self.live,
            &published,
            self.k(),
        )
        .0
    }

    /// The public sums of `field` per district.
    pub fn sums(&self, field: &str) -> Vec<Option<i64>> {
        let range = self
            .plan
            .sums
            .iter()
            .find(|s| s.field == field)
            .map_or((0, 0), |s| (s.lo, s.hi));
        let published = suppress(&self.live, self.k());
        estimates::sums_of(
            &self.released.sums,
            field,
            range,
            &self.town.codes,
            &self.live,
            &published,
        )
        .0
    }

    /// The public hexagons at `resolution`.
    pub fn hexagons(&self, resolution: Resolution) -> Vec<Hexagon> {
        estimates::hexagons(&self.released, self.plan.resolution, resolution, self.k())
    }
}

/// Spearman's rank correlation of two series (average ranks for ties).
pub fn rank_correlation(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(x: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
        let mut r = vec![0.0; x.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
                j += 1;
            }
            let average = (i + j) as f64 / 2.0 + 1.0;
            for &o in &order[i..=j] {
                r[o] = average;
            }
            i = j + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma) * (x - ma)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb) * (y - mb)).sum();
    if va == 0.0 || vb == 0.0 {
        return 0.0;
    }
    cov / (va * vb).sqrt()
}
