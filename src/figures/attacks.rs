//! The attacks the public figures must resist, played against the real mechanism (plan,
//! OpenDP's sampler, post-processing) on synthetic campaigns ([`super::simulation`]), each
//! with the bound the budget implies written down, and each run once more against a broken
//! mechanism (no noise) to show that the test would catch a leak.
//!
//! - Differencing: an attacker compares consecutive releases, in which each household is the
//!   only arrival of its district, and guesses its public answer and its public number; and
//!   compares the figures before and after a household erases itself.
//! - Membership: an attacker pads a building with k − 1 or 50 probes from as many addresses,
//!   and tells whether a household is at that building or elsewhere in its district.
//!
//! The bounds are those of [`super::budget::guess_bound`]: under ε-differential privacy no
//! guess about one household is right more often than `e^ε p / (e^ε p + 1 − p)`, where `p` is
//! how often the best guess without the figures is right. Each empirical rate is compared
//! with its bound plus three standard errors of the rate (so a correct mechanism fails about
//! once in a thousand runs, while the broken one fails always).

use h3o::{LatLng, Resolution};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::budget::{DEFAULT_BUDGET, guess_bound, membership_bound};
use super::simulation::{self, Household, Noise, Run, Town};

/// Three standard errors of a rate `p` measured over `n` trials.
fn slack(p: f64, n: usize) -> f64 {
    3.0 * (p * (1.0 - p) / n as f64).sqrt()
}

fn answer(h: &Household, field: &str) -> String {
    match h.answers.get(field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        Some(n) => n.to_string(),
        None => String::new(),
    }
}

/// What the differencing attacker achieved, and what it may.
#[derive(Debug)]
#[allow(dead_code)] // The priors are read in the report the tests print.
struct Differencing {
    /// Households guessed (answer and number both right), of `n`.
    success: f64,
    n: usize,
    /// Right without the figures (the most likely answer and number, by district).
    prior: f64,
    /// The most the budget allows.
    bound: f64,
    /// After an erasure: households whose answer was guessed from the difference, of
    /// `erased`, and the prior and bound of that guess.
    erased_success: f64,
    erased: usize,
    erased_prior: f64,
    erased_bound: f64,
}

/// How households leave in the differencing game.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Erasure {
    /// As civicmap does: the live total moves, the releases stay.
    AsReleased,
    /// Their exact answers taken out of the running sums (the control).
    Exactly,
}

/// A first release of 1,000 households (so that every answer of every district is well above
/// k), then `periods` releases of 11 arrivals, one per district (each alone in its district's
/// difference: the attacker's best case); then ten erasures per district. The attacker guesses
/// each arrival's `connection` and `people` from the published splits and sums before and
/// after its release (maximum a posteriori with the noise's law and the answers' prior, which
/// it knows), and each departed household's `connection` from the splits before and after its
/// erasure.
fn differencing(noise: Noise, erasure: Erasure, periods: usize, seed: u64) -> Differencing {
    let town = Town::nanterre();
    let districts = town.shapes.len();
    let campaign = simulation::campaign(1, true, DEFAULT_BUDGET);
    let mut run = Run::new(campaign, town.clone());
    let plan = run.plan.clone();
    let values = plan.splits[0].values.clone();
    let split_scale = plan.splits[0].measure.noise.clone();
    let sum_scale = plan.sums[0].measure.noise.clone();
    let epsilon = plan.epsilon_of_field("connection") + plan.epsilon_of_field("people");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let background = simulation::households(&town, &simulation::sizes(&town, 1000), 1, seed);
    run.release(&background.iter().collect::<Vec<_>>(), noise)
        .expect("noise");
    let mut households = Vec::new();
    for p in 0..periods {
        for d in 0..districts {
            let one = simulation::households(
                &town,
                &one_in(districts, d),
                1,
                seed + (p * districts + d) as u64,
            );
            let mut h = one.into_iter().next().expect("one household");
            h.period = p;
            h.answers = simulation::answers(&mut rng, d);
            households.push(h);
        }
    }
    let (mut right, mut prior, mut bound) = (0.0, 0.0, 0.0);
    for p in 0..periods {
        let arrivals: Vec<&Household> = households.iter().filter(|h| h.period == p).collect();
        let (splits_before, sums_before) = (run.splits("connection"), run.sums("people"));
        run.release(&arrivals, noise).expect("noise");
        let (splits_after, sums_after) = (run.splits("connection"), run.sums("people"));
        for h in &arrivals {
            let d = h.district;
            let (connection_prior, people_prior) = simulation::priors(d);
            // The answer: the largest posterior, each value's difference read as one count of
            // the leaf plus discrete Laplace noise.
            let delta = |a: usize| {
                let after = splits_after[d][a].count.unwrap_or(0);
                let before = splits_before[d][a].count.unwrap_or(0);
                after - before
            };
            // Without noise, the difference is the answer itself.
            let exact = noise == Noise::Off;
            let guess_answer = (0..values.len())
                .filter(|&v| !values[v].is_empty())
                .max_by(|&a, &b| {
                    if exact {
                        return delta(a).cmp(&delta(b));
                    }
                    let score = |v: usize| {
                        let mut log = connection_prior[v].ln();
                        for x in 0..values.len() {
                            let expected = i64::from(x == v);
                            log += split_scale.probability(delta(x) - expected).ln();
                        }
                        log
                    };
                    score(a).total_cmp(&score(b))
                })
                .expect("values");
            let difference = sums_after[d].unwrap_or(0) - sums_before[d].unwrap_or(0);
            let guess_people = (1..=6i64)
                .max_by(|&a, &b| {
                    if exact {
                        return (a == difference).cmp(&(b == difference));
                    }
                    let score = |n: i64| {
                        people_prior[(n - 1) as usize].ln()
                            + sum_scale.probability(difference - n).ln()
                    };
                    score(a).total_cmp(&score(b))
                })
                .expect("numbers");
            let truth = (answer(h, "connection"), answer(h, "people"));
            if (values[guess_answer].clone(), guess_people.to_string()) == truth {
                right += 1.0;
            }
            let p_max = connection_prior.iter().copied().fold(0.0, f64::max)
                * people_prior.iter().copied().fold(0.0, f64::max);
            prior += p_max;
            bound += guess_bound(epsilon, p_max);
        }
    }
    // Departures: in each district, the first ten arrivals erase themselves, one at a time.
    let (mut erased_right, mut erased_prior, mut erased_bound) = (0.0, 0.0, 0.0);
    let leaving: Vec<&Household> = (0..districts)
        .flat_map(|d| households.iter().filter(move |h| h.district == d).take(10))
        .collect();
    for h in &leaving {
        let d = h.district;
        let before = run.splits("connection");
        match erasure {
            Erasure::AsReleased => run.leave(h),
            Erasure::Exactly => run.leave_exactly(h),
        }
        let after = run.splits("connection");
        // The value whose published count fell the most (the largest posterior, as above).
        let guess = (0..values.len())
            .filter(|&v| !values[v].is_empty())
            .max_by(|&a, &b| {
                let fall =
                    |v: usize| before[d][v].count.unwrap_or(0) - after[d][v].count.unwrap_or(0);
                let prior = simulation::priors(d).0;
                (fall(a) as f64 + prior[a].ln() * 1e-3)
                    .total_cmp(&(fall(b) as f64 + prior[b].ln() * 1e-3))
            })
            .expect("values");
        if values[guess] == answer(h, "connection") {
            erased_right += 1.0;
        }
        let p_max = simulation::priors(d).0.iter().copied().fold(0.0, f64::max);
        erased_prior += p_max;
        erased_bound += guess_bound(plan.epsilon_of_field("connection"), p_max);
    }
    let n = households.len();
    let m = leaving.len();
    Differencing {
        success: right / n as f64,
        n,
        prior: prior / n as f64,
        bound: bound / n as f64,
        erased_success: erased_right / m as f64,
        erased: m,
        erased_prior: erased_prior / m as f64,
        erased_bound: erased_bound / m as f64,
    }
}

/// Sizes with one household in district `d` only.
fn one_in(districts: usize, d: usize) -> Vec<usize> {
    (0..districts).map(|i| usize::from(i == d)).collect()
}

#[test]
fn an_attacker_comparing_releases_guesses_answers_no_better_than_the_budget_allows() {
    // 20 releases × 11 districts: 220 households, each the only arrival of its district in
    // its release.
    let result = differencing(Noise::On, Erasure::AsReleased, 20, 27);
    eprintln!("differencing, ε = {DEFAULT_BUDGET}: {result:#?}");
    assert!(result.n >= 200);
    assert!(
        result.success <= result.bound + slack(result.bound, result.n),
        "guessed {:.3} of the households' answers and numbers, beyond the bound {:.3}: {result:?}",
        result.success,
        result.bound
    );
    assert!(
        result.erased_success <= result.erased_bound + slack(result.erased_bound, result.erased),
        "guessed {:.3} of the erased households' answers, beyond {:.3}: {result:?}",
        result.erased_success,
        result.erased_bound
    );
}

#[test]
fn the_differencing_test_catches_a_mechanism_without_noise() {
    let result = differencing(Noise::Off, Erasure::Exactly, 20, 27);
    eprintln!("differencing without noise: {result:#?}");
    assert!(result.success > 0.95, "{result:?}");
    assert!(result.success > result.bound + slack(result.bound, result.n));
    // An erasure taking the exact answer out is read too (not only the arrivals).
    assert_eq!(result.erased_success, 1.0, "{result:?}");
    assert!(
        result.erased_success > result.erased_bound + slack(result.erased_bound, result.erased)
    );
}

/// What the membership attacker achieved, and what it may.
#[derive(Debug)]
struct Membership {
    trials: usize,
    /// Right on the published hexagons (the difference of the two cells, against the
    /// threshold between the two worlds).
    published: f64,
    /// Right on the release's raw noisy measurements of the two cells (a likelihood-ratio
    /// test: the most any attacker of the map can do).
    optimal: f64,
    bound: f64,
}

/// `trials` games: 2,000 background households released first (known to the attacker); then,
/// in one release, `padding` probes at a building B and the victim either at B or at a point
/// P elsewhere in the same district (another hexagon; both hexagons hold at least 2k households
/// already, so that both are listed), a coin deciding. The attacker knows everything but the
/// coin and the noise.
fn membership(noise: Noise, padding: usize, trials: usize, seed: u64) -> Membership {
    let town = Town::nanterre();
    let campaign = simulation::campaign(1, false, DEFAULT_BUDGET);
    let mut base = Run::new(campaign, town.clone());
    let sizes = simulation::sizes(&town, 2000);
    let background = simulation::households(&town, &sizes, 4, seed);
    for p in 0..4 {
        let arrivals: Vec<&Household> = background.iter().filter(|h| h.period == p).collect();
        base.release(&arrivals, noise).expect("noise");
    }
    let k = i64::from(base.campaign.privacy.min_count);
    let resolution = Resolution::Eight;
    let d = town
        .codes
        .iter()
        .position(|c| c == "centre")
        .expect("Nanterre has a centre");
    // B and P: two points of the district in different hexagons.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let spot = |rng: &mut ChaCha8Rng| {
        simulation::households(&town, &one_in(town.shapes.len(), d), 1, rng.random()).remove(0)
    };
    let cell = |h: &Household| LatLng::new(h.lat, h.lon).unwrap().to_cell(resolution);
    let truth_in = |c| {
        background
            .iter()
            .filter(|h| h.district == d && cell(h) == c)
            .count() as i64
    };
    let crowded = |rng: &mut ChaCha8Rng| loop {
        let p = spot(rng);
        if truth_in(cell(&p)) >= 2 * k {
            break p;
        }
    };
    let building = crowded(&mut rng);
    let elsewhere = loop {
        let p = crowded(&mut rng);
        if cell(&p) != cell(&building) {
            break p;
        }
    };
    let (cell_b, cell_p) = (cell(&building), cell(&elsewhere));
    let part = |c| {
        base.domain
            .parts
            .iter()
            .position(|x| *x == (d, c))
            .expect("both cells are in the district's domain")
    };
    let (part_b, part_p) = (part(cell_b), part(cell_p));
    let scale = base.plan.map.noise.clone();
    let before = base.hexagons(resolution);
    let shown_before = |c| before.iter().find(|h| h.cell == c).map_or(0, |h| h.count);
    let (mut published_right, mut optimal_right) = (0usize, 0usize);
    for t in 0..trials {
        let at_building = rng.random_bool(0.5);
        let mut arrivals: Vec<Household> = (0..padding)
            .map(|i| {
                let mut probe = building.clone();
                probe.answers = simulation::answers(&mut rng, d);
                probe.period = 4 + i;
                probe
            })
            .collect();
        let mut victim = if at_building {
            building.clone()
        } else {
            elsewhere.clone()
        };
        victim.answers = simulation::answers(&mut rng, d);
        arrivals.push(victim);
        let mut run = base.clone();
        let leaf = run
            .release(&arrivals.iter().collect::<Vec<_>>(), noise)
            .expect("noise");
        // On the published map, before and after the release: B's hexagon grew by the padding
        // and one (the victim there) or by the padding (the victim at P, which grew by one):
        // the threshold is halfway.
        let published = run.hexagons(resolution);
        let shown = |c| {
            published
                .iter()
                .find(|h| h.cell == c)
                .map_or(0, |h| h.count)
        };
        let difference =
            (shown(cell_b) - shown_before(cell_b)) - (shown(cell_p) - shown_before(cell_p));
        let threshold = padding as i64;
        let says_building = match difference.cmp(&threshold) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => t % 2 == 0,
        };
        published_right += usize::from(says_building == at_building);
        // On the raw measurement of the release (never published): the likelihood ratio.
        let (y_b, y_p) = (leaf.map[part_b], leaf.map[part_p]);
        let base_b = padding as i64;
        let llr = (scale.probability(y_b - base_b - 1) * scale.probability(y_p)).ln()
            - (scale.probability(y_b - base_b) * scale.probability(y_p - 1)).ln();
        let says_building = if llr == 0.0 { t % 2 == 1 } else { llr > 0.0 };
        optimal_right += usize::from(says_building == at_building);
    }
    Membership {
        trials,
        published: published_right as f64 / trials as f64,
        optimal: optimal_right as f64 / trials as f64,
        bound: membership_bound(base.plan.epsilon_of_place()),
    }
}

#[test]
fn padding_a_building_does_not_tell_whether_a_household_is_there() {
    let k = i64::from(
        simulation::campaign(1, false, DEFAULT_BUDGET)
            .privacy
            .min_count,
    ) as usize;
    for padding in [k - 1, 50] {
        let result = membership(Noise::On, padding, 400, 2026 + padding as u64);
        eprintln!("membership, {padding} probes, ε = {DEFAULT_BUDGET}: {result:?}");
        let allowed = result.bound + slack(result.bound, result.trials);
        assert!(result.published <= allowed, "{padding} probes: {result:?}");
        assert!(result.optimal <= allowed, "{padding} probes: {result:?}");
        // The goal at the default budget: an attacker right at most 60 % of the time.
        assert!(result.bound <= 0.60, "{result:?}");
    }
}

#[test]
fn the_membership_test_catches_a_mechanism_without_noise() {
    let result = membership(Noise::Off, 4, 100, 7);
    assert_eq!(result.published, 1.0, "{result:?}");
    assert!(result.published > result.bound + slack(result.bound, result.trials));
}
