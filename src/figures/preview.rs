//! What a budget means for a campaign, before the city chooses it (the console's privacy
//! settings): what an attacker can learn at that setting, in the words of
//! [`super::budget`]'s bounds, and how noisy the splits and the map become, on the campaign's
//! own data, after the releases it will have had by its end. Staff only: it shows exact
//! counts, and an example of the estimates drawn with the real sampler (never published,
//! spending nothing: the example is a simulation of what the public would see).

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::budget::{self, Plan};
use super::mechanism::{project, round_to_total};
use super::noise::NoiseError;
use super::release;
use crate::campaigns::Campaign;

/// Releases assumed for a campaign without a closing date: three months of weekly releases.
pub const RELEASES_WITHOUT_END: usize = 12;

/// A budget's consequences for one campaign.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Preview {
    /// The budget previewed (ε per contribution).
    pub budget: f64,
    /// How it is shared: each family's ε and noise scale.
    #[schema(value_type = Object)]
    pub plan: Plan,
    /// The number of releases the errors below assume (made so far and still to come by the
    /// campaign's closing date, or [`RELEASES_WITHOUT_END`] without one).
    pub releases: usize,
    /// What an attacker who knows everything else can learn.
    pub attacker: Attacker,
    /// How far a hexagon's estimate may be from the truth (95 % of the time, before it is
    /// made to add up to its district's total, which narrows it), in contributions.
    pub map_margin: f64,
    /// Per district (then "outside every district"), its exact count and, per public field,
    /// the margin of its splits and an example of the estimates the public would see.
    pub districts: Vec<DistrictPreview>,
}

/// The bounds of [`budget::guess_bound`] at a budget.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attacker {
    /// Most often right when telling whether a household is at a given address or elsewhere
    /// in its district (50 %: a coin).
    pub place: f64,
    /// Most often right when guessing the week (or day) a contribution was counted, against
    /// guessing the busiest one.
    pub period: f64,
    /// Per public field: most often right when guessing a household's answer.
    pub answers: Vec<AnswerBound>,
}

/// How well an attacker can guess a household's answer to one public field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnswerBound {
    pub field: String,
    /// Right without the figures: the most common answer's share among the campaign's
    /// contributions (or one over the number of answers, before any).
    pub prior: f64,
    /// Right at most, with every published figure.
    pub bound: f64,
}

/// One district in a preview.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DistrictPreview {
    pub code: String,
    pub name: String,
    /// Its exact count now.
    pub count: i64,
    pub splits: Vec<SplitPreview>,
}

/// A district's split by one public field in a preview.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SplitPreview {
    pub field: String,
    /// 95 % of the estimates are within this many contributions of the truth.
    pub margin: f64,
    /// Each answer: its exact count, and one example of its estimate (`None`: below k, not
    /// shown).
    pub values: Vec<ValuePreview>,
}

/// One answer of a split in a preview.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValuePreview {
    pub value: String,
    pub exact: i64,
    pub example: Option<i64>,
}

/// The preview of `campaign` were its budget `epsilon`.
pub async fn preview(
    db: &PgPool,
    campaign: &Campaign,
    epsilon: f64,
    now: OffsetDateTime,
) -> Result<Preview, PreviewError> {
    let plan = Plan::with_budget(campaign, epsilon);
    let made: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM releases WHERE campaign_id = $1"#,
        campaign.id
    )
    .fetch_one(db)
    .await?;
    let releases = planned_releases(campaign, made as usize, now);
    let districts = sqlx::query!(
        "SELECT id, code, name FROM districts WHERE campaign_id = $1 ORDER BY position",
        campaign.id
    )
    .fetch_all(db)
    .await?;
    let index = super::districts::positions(districts.iter().map(|d| d.id));
    let places = districts.len() + 1;
    let mut counts = vec![0i64; places];
    // Per split, per district, per value.
    let mut exact: Vec<Vec<Vec<i64>>> = plan
        .splits
        .iter()
        .map(|s| vec![vec![0; s.values.len()]; places])
        .collect();
    for (s, split) in plan.splits.iter().enumerate() {
        let rows = sqlx::query!(
            r#"SELECT district_id, COALESCE(answers ->> $2, '') AS "value!", count(*) AS "n!"
             FROM submissions WHERE campaign_id = $1 AND status = 'published' GROUP BY 1, 2"#,
            campaign.id,
            split.field,
        )
        .fetch_all(db)
        .await?;
        for row in rows {
            let d = row
                .district_id
                .and_then(|d| index.get(&d).copied())
                .unwrap_or(places - 1);
            let answer =
                (!row.value.is_empty()).then(|| serde_json::Value::from(row.value.clone()));
            if let Some(v) = split.position(answer.as_ref()) {
                exact[s][d][v] += row.n;
            }
            if s == 0 {
                counts[d] += row.n;
            }
        }
    }
    if plan.splits.is_empty() {
        for row in sqlx::query!(
            r#"SELECT district_id, count(*) AS "n!" FROM submissions
             WHERE campaign_id = $1 AND status = 'published' GROUP BY 1"#,
            campaign.id
        )
        .fetch_all(db)
        .await?
        {
            let d = row
                .district_id
                .and_then(|d| index.get(&d).copied())
                .unwrap_or(places - 1);
            counts[d] += row.n;
        }
    }
    let k = i64::from(campaign.privacy.min_count);
    let attacker = Attacker {
        place: budget::membership_bound(plan.epsilon_of_place()),
        period: budget::guess_bound(plan.epsilon, 1.0 / releases.max(1) as f64),
        answers: plan
            .splits
            .iter()
            .enumerate()
            .map(|(s, split)| {
                let mut totals = vec![0i64; split.values.len()];
                for by_value in &exact[s] {
                    for (t, n) in totals.iter_mut().zip(by_value) {
                        *t += n;
                    }
                }
                let all: i64 = totals.iter().sum();
                let prior = if all > 0 {
                    *totals.iter().max().unwrap_or(&0) as f64 / all as f64
                } else {
                    1.0 / split.values.iter().filter(|v| !v.is_empty()).count().max(1) as f64
                };
                AnswerBound {
                    field: split.field.clone(),
                    prior,
                    bound: budget::guess_bound(plan.epsilon_of_field(&split.field), prior),
                }
            })
            .collect(),
    };
    let mut previews = Vec::with_capacity(places);
    for d in 0..places {
        let mut splits = Vec::new();
        for (s, split) in plan.splits.iter().enumerate() {
            let m = split.values.len() as f64;
            let margin = 1.96 * split.measure.sd(releases) * ((m - 1.0) / m).sqrt();
            let noisy: Vec<f64> = exact[s][d]
                .iter()
                .map(|&n| {
                    let mut x = n;
                    for _ in 0..releases {
                        x = split.measure.noise.noisy(x)?;
                    }
                    Ok(x as f64)
                })
                .collect::<Result<_, NoiseError>>()?;
            let example = round_to_total(&project(&noisy, counts[d] as f64), counts[d]);
            splits.push(SplitPreview {
                field: split.field.clone(),
                margin,
                values: split
                    .values
                    .iter()
                    .zip(&exact[s][d])
                    .zip(example)
                    .map(|((value, &exact), example)| ValuePreview {
                        value: value.clone(),
                        exact,
                        example: (example >= k).then_some(example),
                    })
                    .collect(),
            });
        }
        let (code, name) = districts
            .get(d)
            .map_or((String::new(), "outside every district".to_owned()), |x| {
                (x.code.clone(), x.name.clone())
            });
        previews.push(DistrictPreview {
            code,
            name,
            count: counts[d],
            splits,
        });
    }
    Ok(Preview {
        budget: epsilon.clamp(budget::MIN_BUDGET, budget::MAX_BUDGET),
        map_margin: 1.96 * plan.map.sd(releases),
        plan,
        releases,
        attacker,
        districts: previews,
    })
}

/// The number of releases a campaign will have had: those made, and the periods left until
/// its closing date (or [`RELEASES_WITHOUT_END`] in all without one); at least one more.
pub fn planned_releases(campaign: &Campaign, made: usize, now: OffsetDateTime) -> usize {
    let every = campaign.privacy.release_every;
    let left = match campaign.closes_at {
        Some(end) if end > now => {
            let mut n = 0;
            let mut at = release::boundary_after(every, now);
            while at <= release::boundary_after(every, end) && n < 10_000 {
                n += 1;
                at = release::boundary_after(every, at);
            }
            n
        }
        Some(_) => 0,
        None => RELEASES_WITHOUT_END.saturating_sub(made),
    };
    (made + left).max(made + 1)
}

/// What can go wrong with a preview.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Noise(#[from] NoiseError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
