//! What the public reads finer than a district: estimates made from the running sums of a
//! campaign's releases by post-processing alone (which adds no privacy loss):
//!
//! - **splits by answer**: each district's noisy counts per answer, made to add up to the
//!   district's live published total (the nearest non-negative point, [`project`]), rounded
//!   keeping that total; withheld with the total;
//! - **sums**: each district's noisy sum, kept within what its count allows, rounded;
//! - **the map**: each district's noisy parts of the hexagons, made to add up to its total at
//!   the release, then added up per hexagon, at the map's resolution or coarser;
//! - **the time series**: each release's noisy count of the contributions it counted.
//!
//! An estimate below the campaign's k is not shown (at that size the noise is as large as the
//! figure); a hexagon below it is not listed at all.

use std::collections::BTreeMap;

use h3o::{CellIndex, Resolution};
use time::OffsetDateTime;

use super::budget::Plan;
use super::mechanism::{Domain, Leaf, project, round_to_total};
use super::{PublishedCount, Suppressed, Tally, suppress};

/// The family of the map's figures.
pub const MAP: &str = "map";

/// The family of the splits by `field`'s answers.
pub fn split_family(field: &str) -> String {
    format!("split:{field}")
}

/// The family of the sums of `field`'s answers.
pub fn sum_family(field: &str) -> String {
    format!("sum:{field}")
}

/// One figure of a release, as stored (`release_figures`): its family, district code (`""`
/// outside every district), key (an H3 cell in hexadecimal, an answer, or `""`) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub family: String,
    pub district: String,
    pub key: String,
    pub value: i64,
}

/// The rows a release adds to the running sums: `leaf` measured under `plan` over `domain`,
/// whose district indexes are those of `codes` (the districts' codes, then `""`).
pub fn leaf_rows(plan: &Plan, domain: &Domain, codes: &[String], leaf: &Leaf) -> Vec<Row> {
    let code = |d: usize| codes.get(d).cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for (&(d, cell), &value) in domain.parts.iter().zip(&leaf.map) {
        rows.push(Row {
            family: MAP.to_owned(),
            district: code(d),
            key: cell.to_string(),
            value,
        });
    }
    for (split, cells) in plan.splits.iter().zip(&leaf.splits) {
        for (d, values) in cells.iter().enumerate() {
            for (answer, &value) in split.values.iter().zip(values) {
                rows.push(Row {
                    family: split_family(&split.field),
                    district: code(d),
                    key: answer.clone(),
                    value,
                });
            }
        }
    }
    for (sum, cells) in plan.sums.iter().zip(&leaf.sums) {
        for (d, &value) in cells.iter().enumerate() {
            rows.push(Row {
                family: sum_family(&sum.field),
                district: code(d),
                key: String::new(),
                value,
            });
        }
    }
    rows
}

/// The running sums of a campaign's releases: (family, district, key) → value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cumulative {
    pub values: BTreeMap<(String, String, String), i64>,
}

impl Cumulative {
    /// Adds a release's rows.
    pub fn add(&mut self, rows: &[Row]) {
        for row in rows {
            *self
                .values
                .entry((row.family.clone(), row.district.clone(), row.key.clone()))
                .or_default() += row.value;
        }
    }

    fn get(&self, family: &str, district: &str, key: &str) -> i64 {
        self.values
            .get(&(family.to_owned(), district.to_owned(), key.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// The entries of `family`: (district, key, value).
    fn family<'a>(&'a self, family: &'a str) -> impl Iterator<Item = (&'a str, &'a str, i64)> {
        self.values
            .range((family.to_owned(), String::new(), String::new())..)
            .take_while(move |((f, _, _), _)| f == family)
            .map(|((_, d, k), v)| (d.as_str(), k.as_str(), *v))
    }
}

/// One release's time-series figure: the contributions it counted, with noise.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub noisy: i64,
}

/// A campaign's releases, as the public doors read them.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    /// The latest release.
    pub id: i64,
    pub period_end: OffsetDateTime,
    pub released_at: OffsetDateTime,
    /// The most any contribution counted so far spent (the campaign's guarantee so far).
    pub epsilon: f64,
    /// The number of releases made.
    pub releases: usize,
    /// The exact district totals at the latest release, by code, in the districts' order
    /// (`""`, outside every district, last): what the map's parts are made to add up to.
    pub totals: Vec<(String, Tally)>,
    pub sums: Cumulative,
    /// Every release's figure, oldest first.
    pub series: Vec<Period>,
}

/// The splits of each district (in the order of `codes`, `""` last) by the answers `values`
/// of `field`, and per answer over the whole campaign. `live` are the districts' exact live
/// tallies in the same order, `published` the same as the districts layer publishes them.
pub fn splits(
    sums: &Cumulative,
    field: &str,
    values: &[String],
    codes: &[String],
    live: &[Tally],
    published: &Suppressed,
    k: i64,
) -> (Vec<Vec<PublishedCount>>, Vec<PublishedCount>) {
    let family = split_family(field);
    // Stored answers the form no longer offers count as "no answer" when the question may be
    // left empty (the last value is then `""`), and are left out otherwise.
    let no_answer = values
        .last()
        .filter(|v| v.is_empty())
        .map(|_| values.len() - 1);
    let noisy_of = |district: Option<&str>| -> Vec<f64> {
        let mut out = vec![0.0; values.len()];
        for (d, key, value) in sums.family(&family) {
            if district.is_some_and(|c| c != d) {
                continue;
            }
            if let Some(i) = values.iter().position(|v| v == key).or(no_answer) {
                out[i] += value as f64;
            }
        }
        out
    };
    let shown = |noisy: &[f64], total: i64| -> Vec<PublishedCount> {
        let rounded = round_to_total(&project(noisy, total as f64), total);
        rounded
            .into_iter()
            .map(|n| PublishedCount::new(n, n < k))
            .collect()
    };
    let per_district = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            if published.cells.get(i).is_none_or(|c| c.withheld) {
                return vec![PublishedCount::WITHHELD; values.len()];
            }
            shown(&noisy_of(Some(code)), live[i].count)
        })
        .collect();
    let totals = if published.total.withheld {
        vec![PublishedCount::WITHHELD; values.len()]
    } else {
        let all: i64 = live.iter().map(|t| t.count).sum();
        shown(&noisy_of(None), all)
    };
    (per_district, totals)
}

/// The sum of `field`'s answers (each in `lo..=hi`, none counting 0) per district (order of
/// `codes`) and over the campaign: withheld with the count; kept within what the count
/// allows; rounded.
pub fn sums_of(
    sums: &Cumulative,
    field: &str,
    (lo, hi): (i64, i64),
    codes: &[String],
    live: &[Tally],
    published: &Suppressed,
) -> (Vec<Option<i64>>, Option<i64>) {
    let family = sum_family(field);
    let bounded = |noisy: i64, count: i64| noisy.clamp(lo.min(0) * count, hi.max(0) * count);
    let per_district = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let shown = published.cells.get(i).is_some_and(|c| !c.withheld);
            shown.then(|| bounded(sums.get(&family, code, ""), live[i].count))
        })
        .collect();
    let total = (!published.total.withheld).then(|| {
        let noisy: i64 = sums.family(&family).map(|(_, _, v)| v).sum();
        bounded(noisy, live.iter().map(|t| t.count).sum())
    });
    (per_district, total)
}

/// A hexagon of the map as published: its cell, its estimate, the districts it meets.
#[derive(Debug, Clone, PartialEq)]
pub struct Hexagon {
    pub cell: CellIndex,
    pub count: i64,
    pub districts: Vec<String>,
}

/// The map's hexagons at `resolution` (no finer than the campaign's map resolution `finest`):
/// each district's parts made to add up to its total at the release, then added up per
/// hexagon; those whose rounded estimate reaches `k` are listed. A district whose total was
/// withheld at the release (as the districts layer withheld it) adds nothing: its parts are
/// made to add up to 0, as a withheld total is shown as nothing; so the map never shows
/// noise where the districts layer shows no count.
pub fn hexagons(released: &Released, finest: u8, resolution: Resolution, k: i64) -> Vec<Hexagon> {
    let Ok(finest) = Resolution::try_from(finest) else {
        return Vec::new();
    };
    if resolution > finest {
        return Vec::new();
    }
    // The parts at the map's resolution, by district; a part measured at a finer resolution
    // (the setting was coarsened) counts in its parent; a coarser one is left out.
    let mut parts: BTreeMap<&str, BTreeMap<CellIndex, f64>> = BTreeMap::new();
    for (district, key, value) in released.sums.family(MAP) {
        let Some(cell) = key.parse::<CellIndex>().ok().and_then(|c| c.parent(finest)) else {
            continue;
        };
        *parts.entry(district).or_default().entry(cell).or_default() += value as f64;
    }
    let codes: Vec<&String> = released.totals.iter().map(|(c, _)| c).collect();
    let tallies: Vec<Tally> = released.totals.iter().map(|(_, t)| *t).collect();
    let withheld = suppress(&tallies, k);
    let mut cells: BTreeMap<CellIndex, (f64, Vec<String>)> = BTreeMap::new();
    for (district, by_cell) in &parts {
        let at = codes.iter().position(|c| c.as_str() == *district);
        let noisy: Vec<f64> = by_cell.values().copied().collect();
        let estimates = match at {
            Some(i) if !withheld.cells[i].withheld => project(&noisy, tallies[i].count as f64),
            // Withheld, or a district gone since.
            _ => vec![0.0; noisy.len()],
        };
        for (&cell, estimate) in by_cell.keys().zip(estimates) {
            let Some(parent) = cell.parent(resolution) else {
                continue;
            };
            let entry = cells.entry(parent).or_default();
            entry.0 += estimate;
            if !entry.1.iter().any(|d| d == district) {
                entry.1.push((*district).to_owned());
            }
        }
    }
    cells
        .into_iter()
        .filter_map(|(cell, (estimate, mut districts))| {
            let count = estimate.round() as i64;
            districts.sort();
            (count >= k).then_some(Hexagon {
                cell,
                count,
                districts,
            })
        })
        .collect()
}

/// The time series: each release's period and its estimate (at least 0; withheld below `k`).
pub fn series(
    released: &Released,
    k: i64,
) -> Vec<(OffsetDateTime, OffsetDateTime, PublishedCount)> {
    released
        .series
        .iter()
        .map(|p| {
            let n = p.noisy.max(0);
            (p.start, p.end, PublishedCount::new(n, n < k))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(n: usize) -> Vec<String> {
        let mut c: Vec<String> = (0..n).map(|i| format!("D{i}")).collect();
        c.push(String::new());
        c
    }

    #[test]
    fn splits_add_up_to_the_live_total_and_hide_what_it_hides() {
        let values: Vec<String> = ["a", "b", ""].map(String::from).to_vec();
        let mut sums = Cumulative::default();
        let row = |d: &str, k: &str, v: i64| Row {
            family: split_family("f"),
            district: d.into(),
            key: k.into(),
            value: v,
        };
        sums.add(&[
            row("D0", "a", 30),
            row("D0", "b", 14),
            row("D0", "", -3),
            row("D0", "gone", 2),
            row("D1", "a", 2),
        ]);
        let live = [Tally::distinct(40), Tally::distinct(9), Tally::default()];
        let published = suppress(&live, 5);
        let (per, totals) = splits(&sums, "f", &values, &codes(2), &live, &published, 5);
        // D0: (30, 14, -3 + 2) made to add up to 40 is (28, 12, 0); 0 is below k.
        let d0: Vec<Option<i64>> = per[0].iter().map(|c| c.count).collect();
        assert_eq!(d0, [Some(28), Some(12), None], "{per:?}");
        // D1: (2, 0, 0) made to add up to 9 is (4.3, 2.3, 2.3), rounded (5, 2, 2): the small
        // ones are below k.
        let d1: Vec<Option<i64>> = per[1].iter().map(|c| c.count).collect();
        assert_eq!(d1, [Some(5), None, None], "{per:?}");
        assert!(
            per[2].iter().all(|c| c.withheld),
            "outside: withheld with its total"
        );
        assert!(totals.iter().filter_map(|c| c.count).sum::<i64>() <= 49);
        assert!(!totals[0].withheld);
        // A withheld district total withholds its splits.
        let live = [Tally::distinct(40), Tally::distinct(2), Tally::default()];
        let published = suppress(&live, 5);
        let (per, _) = splits(&sums, "f", &values, &codes(2), &live, &published, 5);
        assert!(per[1].iter().all(|c| c.withheld));
    }

    #[test]
    fn sums_stay_within_what_the_count_allows() {
        let mut sums = Cumulative::default();
        sums.add(&[Row {
            family: sum_family("n"),
            district: "D0".into(),
            key: String::new(),
            value: -7,
        }]);
        let live = [Tally::distinct(9), Tally::default()];
        let published = suppress(&live, 5);
        let codes = vec!["D0".to_owned(), String::new()];
        let (per, _) = sums_of(&sums, "n", (1, 4), &codes, &live, &published);
        assert_eq!(per[0], Some(0));
    }
}
