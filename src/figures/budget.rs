//! The privacy-loss budget: how much one contribution's figures finer than a district may ever
//! tell, how it is shared among the families of figures, and what it means in words.
//!
//! A campaign's budget ε is spent once per contribution, at the one release that counts it
//! ([`super::release`]): every family (the map, the splits by answer, the sums, the time
//! series) measures that contribution in that release and never again. The families take
//! fixed shares of ε ([`WEIGHTS`]); a share is split evenly among the fields of its family.
//! So whatever happens later (corrections, erasure, hiding, any number of releases and
//! downloads), the finer figures depend on one contribution through noisy measurements whose
//! privacy losses add up to at most ε.
//!
//! The losses are for a contribution *replaced* by any other in the same district (another
//! place in it, other answers, another day): district totals are exact and live, so what the
//! guarantee protects is everything finer than them. In ε-differential privacy, that means:
//! whatever else an attacker knows (every other household, the exact district totals), the
//! published figures make any statement about a contribution's place, answers or day at most
//! e^ε times more likely than before ([`guess_bound`]).

use serde::Serialize;

use super::noise::Scale;
use crate::campaigns::Campaign;
use crate::campaigns::form::FieldKind;

/// The shares of the budget, by family (of those the campaign publishes; absent families'
/// shares go to the others in proportion). The splits by answer take the most: they are what
/// planners take to the operator, district by district; the map, the sums and the time series
/// (which the live district totals already show in outline) share the rest. The map's share
/// keeps a household's place within its district at ε ≤ 0.41 under the default budget (an
/// attacker right at most 60 % of the time, against 50 % for a coin) while its hexagons still
/// rank as the truth does (rank correlation about 0.9). Measured in
/// `benches/privacy-utility.sh`; see docs/PRIVACY.md.
pub const WEIGHTS: Weights = Weights {
    map: 0.15,
    splits: 0.55,
    sums: 0.15,
    series: 0.10,
};

/// Shares of the budget by family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub map: f64,
    pub splits: f64,
    pub sums: f64,
    pub series: f64,
}

/// The budget a new campaign gets: chosen from `benches/privacy-utility.sh` (docs/PRIVACY.md).
pub const DEFAULT_BUDGET: f64 = 2.0;
/// The smallest budget a city may choose.
pub const MIN_BUDGET: f64 = 0.1;
/// The largest budget a city may choose: beyond it, the guarantee says little.
pub const MAX_BUDGET: f64 = 10.0;

/// How many a count's one contribution can move it, replaced by another (−1 here, +1 there).
const COUNT_SENSITIVITY: f64 = 2.0;

/// One noisy measurement of a family: its share of the budget, the most one contribution
/// changes it (L1), and the scale of its noise (`sensitivity / epsilon`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    /// Privacy loss of one contribution through this measurement.
    pub epsilon: f64,
    /// L1 sensitivity: most the measurement moves when one contribution is replaced.
    pub sensitivity: f64,
    /// Scale of the discrete Laplace noise.
    #[serde(rename = "scale", serialize_with = "scale_value")]
    pub noise: Scale,
}

fn scale_value<S: serde::Serializer>(scale: &Scale, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(scale.value())
}

impl Measure {
    fn new(sensitivity: f64, epsilon: f64) -> Self {
        let noise = Scale::for_budget(sensitivity, epsilon)
            .expect("budgets and sensitivities are positive and finite");
        Self {
            epsilon: noise.epsilon(sensitivity),
            sensitivity,
            noise,
        }
    }

    /// Standard deviation of the sum of `leaves` draws.
    pub fn sd(&self, leaves: usize) -> f64 {
        (self.noise.variance() * leaves as f64).sqrt()
    }
}

/// A split by the answers of a public choice or yes/no field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Split {
    pub field: String,
    /// The answers, in the form's order ([`split_values`]).
    pub values: Vec<String>,
    pub measure: Measure,
}

impl Split {
    /// Where an answer, as stored, counts among the split's values: its own; "no answer" (the
    /// last value) for a field that may be left empty, when there is none or one the form no
    /// longer offers; `None` for a required field answered with nothing the form offers now
    /// (an answer given before the field became required, or an option since removed): that
    /// contribution is left out of this split.
    pub fn position(&self, answer: Option<&serde_json::Value>) -> Option<usize> {
        let text = match answer {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        };
        text.and_then(|t| self.values.iter().position(|v| !v.is_empty() && *v == t))
            .or_else(|| {
                self.values
                    .last()
                    .filter(|v| v.is_empty())
                    .map(|_| self.values.len() - 1)
            })
    }
}

/// The values a public split of `field` publishes: its options (`true` and `false` for a
/// yes/no question), then `""` for "no answer" unless the field is required (a question that
/// must be answered has no such column: it would only hold noise).
pub fn split_values(field: &crate::campaigns::form::Field) -> Vec<String> {
    let mut values: Vec<String> = match &field.kind {
        FieldKind::Choice { options } => options.iter().map(|o| o.value.clone()).collect(),
        FieldKind::Boolean => vec!["true".into(), "false".into()],
        _ => Vec::new(),
    };
    if !field.required {
        values.push(String::new());
    }
    values
}

/// The sum of a public number field's answers per district.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sum {
    pub field: String,
    /// The answers' range: each answer is clamped into it, a missing one counts 0.
    pub lo: i64,
    pub hi: i64,
    pub measure: Measure,
}

/// What one release measures, and at what cost: derived from the campaign's settings
/// (budget, map resolution, public fields) when the release is made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The budget each contribution counted by the release spends: the sum of the measures'.
    pub epsilon: f64,
    /// The H3 resolution of the map's hexagons (coarser ones are sums of them).
    pub resolution: u8,
    pub map: Measure,
    pub splits: Vec<Split>,
    pub sums: Vec<Sum>,
    pub series: Measure,
}

impl Plan {
    /// The plan of `campaign` under its privacy settings.
    pub fn of(campaign: &Campaign) -> Self {
        Self::with_budget(campaign, campaign.privacy.budget)
    }

    /// The plan of `campaign` were its budget `epsilon` (the console's preview).
    pub fn with_budget(campaign: &Campaign, epsilon: f64) -> Self {
        let epsilon = epsilon.clamp(MIN_BUDGET, MAX_BUDGET);
        let splits: Vec<(String, Vec<String>)> = campaign
            .form
            .fields
            .iter()
            .filter(|f| f.public && f.kind.can_break_down())
            .map(|f| (f.key.clone(), split_values(f)))
            .collect();
        let sums: Vec<(String, i64, i64)> = campaign
            .form
            .fields
            .iter()
            .filter(|f| f.public)
            .filter_map(|f| {
                f.kind
                    .public_range()
                    .map(|(lo, hi)| (f.key.clone(), lo, hi))
            })
            .collect();
        let w = WEIGHTS;
        let (w_splits, w_sums) = (
            if splits.is_empty() { 0.0 } else { w.splits },
            if sums.is_empty() { 0.0 } else { w.sums },
        );
        let whole = w.map + w.series + w_splits + w_sums;
        let share = |weight: f64| epsilon * weight / whole;
        let map = Measure::new(COUNT_SENSITIVITY, share(w.map));
        let series = Measure::new(COUNT_SENSITIVITY, share(w.series));
        let splits: Vec<Split> = splits
            .iter()
            .map(|(field, values)| Split {
                field: field.clone(),
                values: values.clone(),
                measure: Measure::new(COUNT_SENSITIVITY, share(w_splits) / splits.len() as f64),
            })
            .collect();
        let sums: Vec<Sum> = sums
            .iter()
            .map(|(field, lo, hi)| Sum {
                field: field.clone(),
                lo: *lo,
                hi: *hi,
                // A missing answer counts 0, so 0 is in the range of what one answer adds.
                measure: Measure::new(
                    (hi.max(&0) - lo.min(&0)) as f64,
                    share(w_sums) / sums.len() as f64,
                ),
            })
            .collect();
        let spent = map.epsilon
            + series.epsilon
            + splits.iter().map(|s| s.measure.epsilon).sum::<f64>()
            + sums.iter().map(|s| s.measure.epsilon).sum::<f64>();
        Self {
            epsilon: spent,
            resolution: campaign.privacy.map_resolution,
            map,
            splits,
            sums,
            series,
        }
    }

    /// The privacy loss about a contribution's answer to `field` (its split, or its sum).
    pub fn epsilon_of_field(&self, field: &str) -> f64 {
        self.splits
            .iter()
            .filter(|s| s.field == field)
            .map(|s| s.measure.epsilon)
            .chain(
                self.sums
                    .iter()
                    .filter(|s| s.field == field)
                    .map(|s| s.measure.epsilon),
            )
            .sum()
    }

    /// The privacy loss about a contribution's place within its district (the map alone).
    pub fn epsilon_of_place(&self) -> f64 {
        self.map.epsilon
    }
}

/// The most often an attacker can guess something about one contribution right, when the
/// published figures spend `epsilon` on it and the best guess without them is right with
/// probability `prior` (the most likely value's share): by ε-differential privacy, every
/// posterior odds are at most e^ε times the prior odds, so
/// `P(right) ≤ e^ε p / (e^ε p + 1 − p)`. For a yes/no question answered half and half,
/// `e^ε / (1 + e^ε)`: 73 % at ε = 1, against 50 % for a coin.
pub fn guess_bound(epsilon: f64, prior: f64) -> f64 {
    let odds = epsilon.exp() * prior;
    odds / (odds + 1.0 - prior)
}

/// The most often an attacker can tell which of two equally likely worlds is the true one
/// (the household at this address, or elsewhere in its district): `e^ε / (1 + e^ε)`.
pub fn membership_bound(epsilon: f64) -> f64 {
    guess_bound(epsilon, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_spends_the_budget_and_no_more() {
        let mut campaign = crate::testing::campaign();
        for budget in [0.1, 0.5, 2.0, 10.0] {
            campaign.privacy.budget = budget;
            let plan = Plan::of(&campaign);
            assert!(plan.epsilon <= budget, "{} > {budget}", plan.epsilon);
            assert!(plan.epsilon > budget * 0.999_999);
            assert!(!plan.splits.is_empty() && plan.sums.is_empty());
        }
    }

    #[test]
    fn the_guessing_bound_is_the_prior_at_zero_and_grows_with_epsilon() {
        assert!((guess_bound(0.0, 0.3) - 0.3).abs() < 1e-12);
        assert!((membership_bound(1.0) - 0.731_058_578_630_004_9).abs() < 1e-12);
        let mut last = 0.0;
        for e in [0.1, 0.5, 1.0, 2.0, 5.0] {
            let b = guess_bound(e, 0.25);
            assert!(b > last && b < 1.0);
            last = b;
        }
    }
}
