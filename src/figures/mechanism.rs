//! The mechanism, without a database: what one release measures of the contributions it
//! counts ([`measure`]), and how the sums of releases become the figures people see
//! ([`project`], [`round_to_total`]).
//!
//! A release counts each contribution once, in every family of its [`Plan`]: its map part
//! (district × H3 cell of the plan's resolution), its answer to each public choice or yes/no
//! field (district × answer), its public numbers (district), and one for the time series.
//! Every cell of every family gets discrete Laplace noise, cells that count nobody included
//! (the domain of the map is every cell meeting each district, known before any contribution),
//! so that the presence of a figure says nothing either. What is stored is the running sum of
//! the releases' noisy cells; what is published is computed from it by post-processing only,
//! which adds no privacy loss.

use h3o::CellIndex;

use super::budget::Plan;
use super::noise::NoiseError;

/// A contribution as a release measures it.
#[derive(Debug, Clone, PartialEq)]
pub struct Household {
    /// Its district: an index into the release's districts, `districts` for "outside every
    /// district".
    pub district: usize,
    /// Its map cell at the plan's resolution (the cell holding its point).
    pub cell: Option<CellIndex>,
    /// Per split of the plan, the index of its answer in the split's values
    /// ([`super::budget::Split::position`]); `None`: left out of that split.
    pub answers: Vec<Option<usize>>,
    /// Per sum of the plan, its answer clamped into the sum's range; 0 without one.
    pub numbers: Vec<i64>,
}

/// The cells of the map a release measures: every (district, cell) pair where the cell meets
/// the district, sorted. It depends on the districts' outlines only, never on contributions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Domain {
    pub parts: Vec<(usize, CellIndex)>,
}

impl Domain {
    /// A domain of these parts (deduplicated and sorted).
    pub fn new(mut parts: Vec<(usize, CellIndex)>) -> Self {
        parts.sort_unstable();
        parts.dedup();
        Self { parts }
    }

    fn index(&self, part: (usize, CellIndex)) -> Option<usize> {
        self.parts.binary_search(&part).ok()
    }
}

/// One release's noisy measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// One per part of the domain, in its order.
    pub map: Vec<i64>,
    /// Per split of the plan, per district (then "outside"), per value.
    pub splits: Vec<Vec<Vec<i64>>>,
    /// Per sum of the plan, per district (then "outside").
    pub sums: Vec<Vec<i64>>,
    /// The contributions counted, for the time series.
    pub series: i64,
    /// Contributions whose map cell fell outside the domain (a point on a district's very
    /// edge that the tiling missed): counted in every family but the map.
    pub off_map: usize,
}

/// The true, noiseless cells of a release counting `households` (every family), for the
/// measurement below and for tests and benchmarks that compare with it.
pub fn tally(plan: &Plan, domain: &Domain, districts: usize, households: &[Household]) -> Leaf {
    let mut counter = Counter::new(plan, domain, districts);
    for h in households {
        counter.add(h);
    }
    counter.leaf
}

/// A release's true cells, counted one household at a time (a release of a million
/// contributions reads them as a stream, never all at once).
#[derive(Debug, Clone)]
pub struct Counter<'a> {
    plan: &'a Plan,
    domain: &'a Domain,
    districts: usize,
    leaf: Leaf,
}

impl<'a> Counter<'a> {
    /// Nothing counted yet.
    pub fn new(plan: &'a Plan, domain: &'a Domain, districts: usize) -> Self {
        let places = districts + 1;
        Self {
            plan,
            domain,
            districts,
            leaf: Leaf {
                map: vec![0; domain.parts.len()],
                splits: plan
                    .splits
                    .iter()
                    .map(|s| vec![vec![0; s.values.len()]; places])
                    .collect(),
                sums: vec![vec![0; places]; plan.sums.len()],
                series: 0,
                off_map: 0,
            },
        }
    }

    /// Counts `h` once in every family.
    pub fn add(&mut self, h: &Household) {
        let leaf = &mut self.leaf;
        let d = h.district.min(self.districts);
        leaf.series += 1;
        match h.cell.and_then(|c| self.domain.index((d, c))) {
            Some(i) => leaf.map[i] += 1,
            None => leaf.off_map += 1,
        }
        for (s, split) in self.plan.splits.iter().enumerate() {
            if let Some(v) = h.answers.get(s).copied().flatten()
                && v < split.values.len()
            {
                leaf.splits[s][d][v] += 1;
            }
        }
        for (s, sum) in self.plan.sums.iter().enumerate() {
            let n = h.numbers.get(s).copied().unwrap_or(0).clamp(sum.lo, sum.hi);
            leaf.sums[s][d] += n;
        }
    }

    /// The cells counted, without noise (see [`add_noise`]).
    pub fn finish(self) -> Leaf {
        self.leaf
    }
}

/// Measures `households` under `plan`: their [`tally`], every cell with its own noise.
pub fn measure(
    plan: &Plan,
    domain: &Domain,
    districts: usize,
    households: &[Household],
) -> Result<Leaf, NoiseError> {
    add_noise(plan, tally(plan, domain, districts, households))
}

/// `leaf` with every cell's noise drawn under `plan`: a release's measurement.
pub fn add_noise(plan: &Plan, mut leaf: Leaf) -> Result<Leaf, NoiseError> {
    for x in &mut leaf.map {
        *x = plan.map.noise.noisy(*x)?;
    }
    for (cells, split) in leaf.splits.iter_mut().zip(&plan.splits) {
        for x in cells.iter_mut().flatten() {
            *x = split.measure.noise.noisy(*x)?;
        }
    }
    for (cells, sum) in leaf.sums.iter_mut().zip(&plan.sums) {
        for x in cells.iter_mut() {
            *x = sum.measure.noise.noisy(*x)?;
        }
    }
    leaf.series = plan.series.noise.noisy(leaf.series)?;
    Ok(leaf)
}

/// The nearest point to `noisy` (in the Euclidean sense) whose values are all at least 0 and
/// add up to `total`: the least-squares estimate of parts known to add up to a published
/// total (a district's splits, its map parts). A negative or zero `total` gives zeros.
pub fn project(noisy: &[f64], total: f64) -> Vec<f64> {
    if noisy.is_empty() || total <= 0.0 {
        return vec![0.0; noisy.len()];
    }
    // The projection onto the simplex {x ≥ 0, Σx = total} is max(x − θ, 0) for the θ that
    // makes the sum right (Held, Wolfe and Crowder 1974).
    let mut sorted: Vec<f64> = noisy.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut running = 0.0;
    let mut theta = 0.0;
    for (i, &x) in sorted.iter().enumerate() {
        running += x;
        let t = (running - total) / (i + 1) as f64;
        if x - t > 0.0 {
            theta = t;
        }
    }
    noisy.iter().map(|&x| (x - theta).max(0.0)).collect()
}

/// Whole numbers adding up to `total`, each the floor or the ceiling of its value in `values`
/// (which add up to `total`): the largest remainders get the ceilings.
pub fn round_to_total(values: &[f64], total: i64) -> Vec<i64> {
    let mut out: Vec<i64> = values.iter().map(|v| v.floor().max(0.0) as i64).collect();
    let mut missing = total - out.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (values[a] - values[a].floor(), values[b] - values[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(values.len() * 2) {
        if missing <= 0 {
            break;
        }
        out[i] += 1;
        missing -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The projection is on the simplex, and no point of the simplex is nearer to the input
        /// (checked against points moved by small steps along its edges, and its vertices).
        #[test]
        fn the_projection_is_the_nearest_point_with_that_total(
            noisy in proptest::collection::vec(-50.0f64..200.0, 1..12),
            total in 0.0f64..500.0,
        ) {
            let p = project(&noisy, total);
            prop_assert!(p.iter().all(|&x| x >= 0.0));
            prop_assert!((p.iter().sum::<f64>() - total).abs() < 1e-6 * total.max(1.0));
            let distance = |q: &[f64]| q.iter().zip(&noisy).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
            let d = distance(&p);
            // Moving mass from one part to another never brings it nearer.
            for i in 0..p.len() {
                for j in 0..p.len() {
                    if i == j || p[i] <= 0.0 { continue; }
                    let step = p[i].min(1e-3 * total.max(1.0));
                    let mut q = p.clone();
                    q[i] -= step;
                    q[j] += step;
                    prop_assert!(distance(&q) >= d - 1e-7, "{q:?} nearer than {p:?}");
                }
            }
            for i in 0..p.len() {
                let mut vertex = vec![0.0; p.len()];
                vertex[i] = total;
                prop_assert!(distance(&vertex) >= d - 1e-7);
            }
        }

        /// Rounding keeps the total and moves no value by a whole unit.
        #[test]
        fn rounding_keeps_the_total(values in proptest::collection::vec(0.0f64..100.0, 1..12)) {
            let total = values.iter().sum::<f64>().round();
            let scaled: Vec<f64> = {
                let s: f64 = values.iter().sum();
                values.iter().map(|v| if s > 0.0 { v * total / s } else { 0.0 }).collect()
            };
            let rounded = round_to_total(&scaled, total as i64);
            prop_assert_eq!(rounded.iter().sum::<i64>(), total as i64);
            for (r, v) in rounded.iter().zip(&scaled) {
                prop_assert!((*r as f64 - v).abs() < 1.0 + 1e-9, "{r} from {v}");
            }
        }
    }

    #[test]
    fn a_tally_counts_each_household_once_in_every_family() {
        let mut campaign = crate::testing::campaign();
        campaign.privacy.budget = 2.0;
        let plan = Plan::of(&campaign);
        let cell = h3o::LatLng::new(48.89, 2.2)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        let domain = Domain::new(vec![(0, cell), (1, cell)]);
        let households = vec![
            Household {
                district: 0,
                cell: Some(cell),
                answers: vec![Some(0)],
                numbers: vec![],
            },
            Household {
                district: 1,
                cell: Some(cell),
                answers: vec![None],
                numbers: vec![],
            },
            Household {
                district: 7, // beyond the districts: outside every district
                cell: Some(cell),
                answers: vec![Some(1)],
                numbers: vec![],
            },
        ];
        let leaf = tally(&plan, &domain, 2, &households);
        assert_eq!(leaf.map, [1, 1]);
        assert_eq!(leaf.off_map, 1);
        assert_eq!(leaf.series, 3);
        assert_eq!(leaf.splits[0][0][0], 1);
        assert_eq!(
            leaf.splits[0][1].iter().sum::<i64>(),
            0,
            "left out of the split"
        );
        assert_eq!(leaf.splits[0][2][1], 1);
        let measured = measure(&plan, &domain, 2, &households).unwrap();
        assert_eq!(measured.splits[0].len(), 3);
        assert_eq!(measured.map.len(), 2);
    }
}
