//! Releases: when and how a campaign's figures finer than a district move.
//!
//! A campaign is released once per period of its `release_every` (a UTC day, or a week from
//! Monday), [`GRACE`] after the period ends, so that moderators have time to hide spam before
//! anything of it is counted. A release ([`release`]) counts every published submission
//! published before the period's end and not counted yet, measures them once under the
//! campaign's [`Plan`] with noise ([`super::mechanism::measure`]), adds the noisy figures to
//! the campaign's running sums (`release_figures`), marks the submissions counted
//! (`submissions.release_id`, never reset), and moves the data version so that every
//! instance serves it. All in one transaction: a release is whole or not at all, and its noise
//! is never drawn twice for the same submissions (a failed release rolls back unseen).
//!
//! Periods are released whether or not anything arrived while the campaign is open (an empty
//! release still has its noise, so that its existence says nothing), and stop once it has
//! closed; after that a release is made only for submissions published late (a pre-moderated
//! campaign's last approvals). Staff may release before the period ends ([`release_now`]):
//! that spends nothing more (each submission is still counted once), and adds one more
//! release's noise to the sums.

use std::collections::HashMap;

use h3o::{LatLng, Resolution};
use serde_json::Value;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

use super::budget::Plan;
use super::estimates::{self, Cumulative, Period, Released, Row};
use super::mechanism::{self, Domain, Household};
use super::noise::NoiseError;
use super::{Tally, district_counts};
use crate::campaigns::{Campaign, ReleaseEvery};

/// How long after its period ends a release is made: moderators' time to hide spam.
pub const GRACE: Duration = Duration::hours(6);

/// Most periods made up at once for one campaign (after a long stop of every instance).
const MOST_AT_ONCE: usize = 400;

/// What can go wrong with a release.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The noise could not be drawn; nothing was released.
    #[error(transparent)]
    Noise(#[from] NoiseError),
    /// A district's outline could not be tiled into hexagons.
    #[error("the outline of district `{0}` cannot be tiled into hexagons: {1}")]
    Outline(String, String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A bug.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

type Result<T, E = ReleaseError> = std::result::Result<T, E>;

/// The end of the period of `every` holding `t`'s previous instant: the last boundary at or
/// before `t` (midnight UTC; for weeks, Monday's).
pub fn boundary_at_or_before(every: ReleaseEvery, t: OffsetDateTime) -> OffsetDateTime {
    let midnight = t.date().midnight().assume_utc();
    match every {
        ReleaseEvery::Day => midnight,
        ReleaseEvery::Week => {
            let back = i64::from(t.date().weekday().number_days_from_monday());
            midnight - Duration::days(back)
        }
    }
}

/// The first boundary after `t`.
pub fn boundary_after(every: ReleaseEvery, t: OffsetDateTime) -> OffsetDateTime {
    boundary_at_or_before(every, t)
        + match every {
            ReleaseEvery::Day => Duration::days(1),
            ReleaseEvery::Week => Duration::weeks(1),
        }
}

/// When the next release of a campaign whose last period ended at `last_end` (or, before its
/// first release, which was created then) is due: the end of the next period, plus [`GRACE`].
pub fn next_release(every: ReleaseEvery, last_end: OffsetDateTime) -> OffsetDateTime {
    boundary_after(every, last_end) + GRACE
}

/// A release made.
#[derive(Debug, Clone, PartialEq)]
pub struct Made {
    pub id: i64,
    pub campaign_id: i64,
    pub period_end: OffsetDateTime,
    /// Submissions it counted.
    pub counted: usize,
    pub epsilon: f64,
}

/// Makes every release due at `now` (every instance of `serve` calls it every minute; two
/// instances never release the same period: the campaign's row is locked while releasing).
pub async fn run_due(db: &PgPool, now: OffsetDateTime) -> Result<Vec<Made>> {
    let campaigns = sqlx::query!(
        r#"SELECT c.id, c.release_every, c.created_at, c.opens_at,
                LEAST(c.closed_at, c.closes_at) AS closed,
                (SELECT max(period_end) FROM releases r WHERE r.campaign_id = c.id) AS last_end
         FROM campaigns c WHERE c.status <> 'draft'"#,
    )
    .fetch_all(db)
    .await?;
    let mut made = Vec::new();
    for c in campaigns {
        let every: ReleaseEvery =
            serde_json::from_value(Value::String(c.release_every)).map_err(anyhow::Error::from)?;
        let due = boundary_at_or_before(every, now - GRACE);
        let mut start = c.last_end.unwrap_or(c.created_at);
        let mut end = boundary_after(every, start);
        // Closed before its last release's end: nothing to release unless a submission was
        // published late (one query, not one per period of a campaign closed long ago).
        if end <= due
            && c.closed.is_some_and(|closed| closed < start)
            && !uncounted_before(db, c.id, due).await?
        {
            continue;
        }
        for _ in 0..MOST_AT_ONCE {
            if end > due {
                break;
            }
            // Open during [start, end): released, empty or not. Closed before it: only for
            // submissions published late.
            let opened = c.opens_at.is_none_or(|o| o < end);
            let open = opened && c.closed.is_none_or(|closed| closed >= start);
            if (open || uncounted_before(db, c.id, end).await?)
                && let Some(m) = release(db, c.id, end).await?
            {
                made.push(m);
            }
            start = end;
            end = boundary_after(every, end);
        }
    }
    Ok(made)
}

/// Whether some published submission of the campaign, published before `end`, is not counted.
async fn uncounted_before(db: &PgPool, campaign_id: i64, end: OffsetDateTime) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM submissions WHERE campaign_id = $1 AND status = 'published'
                 AND release_id IS NULL AND published_at < $2) AS "uncounted!""#,
        campaign_id,
        end,
    )
    .fetch_one(db)
    .await?)
}

/// Releases the campaign's figures now (a staff decision: before a council meeting, say).
pub async fn release_now(db: &PgPool, campaign_id: i64) -> Result<Option<Made>> {
    let now: OffsetDateTime = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(db)
        .await?;
    release(db, campaign_id, now).await
}

/// Releases campaign `campaign_id`'s figures now on `actor`'s decision (the console's "publish
/// the figures now", `civicmap release`), written to the audit log (`figures.release`).
pub async fn release_now_audited(
    db: &PgPool,
    actor: crate::audit::Actor<'_>,
    campaign_id: i64,
) -> Result<Option<Made>> {
    let Some(made) = release_now(db, campaign_id).await? else {
        return Ok(None);
    };
    crate::audit::record(
        db,
        crate::audit::Entry {
            actor,
            action: "figures.release",
            campaign_id: Some(campaign_id),
            subject: Some(made.id.to_string()),
            reason: None,
            details: serde_json::json!({"counted": made.counted, "epsilon": made.epsilon}),
        },
    )
    .await?;
    Ok(Some(made))
}

/// Releases campaign `campaign_id`'s period ending at `period_end`: `None` when a release
/// already covers it.
pub async fn release(
    db: &PgPool,
    campaign_id: i64,
    period_end: OffsetDateTime,
) -> Result<Option<Made>> {
    let mut tx = db.begin().await?;
    // One release of a campaign at a time, across instances; settings stay as read meanwhile.
    let created = sqlx::query_scalar!(
        "SELECT created_at FROM campaigns WHERE id = $1 FOR NO KEY UPDATE",
        campaign_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let last: Option<OffsetDateTime> = sqlx::query_scalar!(
        "SELECT max(period_end) FROM releases WHERE campaign_id = $1",
        campaign_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if last.is_some_and(|l| l >= period_end) {
        return Ok(None);
    }
    let period_start = last
        .unwrap_or(created)
        .min(period_end - Duration::nanoseconds(1000));
    let campaign = crate::campaigns::get_by_id(&mut *tx, campaign_id)
        .await
        .map_err(|e| anyhow::anyhow!("reading campaign {campaign_id}: {e}"))?;
    let plan = Plan::of(&campaign);
    let resolution = Resolution::try_from(plan.resolution).map_err(anyhow::Error::from)?;

    // The districts, their outlines, and the area (for "outside every district").
    let districts = sqlx::query!(
        r#"SELECT id, code, ST_AsGeoJSON(geom)::text AS "outline!" FROM districts
         WHERE campaign_id = $1 ORDER BY position"#,
        campaign_id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let area: Option<String> = sqlx::query_scalar!(
        "SELECT ST_AsGeoJSON(effective_area)::text FROM campaigns WHERE id = $1",
        campaign_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut codes: Vec<String> = districts.iter().map(|d| d.code.clone()).collect();
    codes.push(String::new());
    let index = super::districts::positions(districts.iter().map(|d| d.id));
    let outlines: Vec<(String, String)> = districts
        .iter()
        .map(|d| (d.code.clone(), d.outline.clone()))
        .chain(area.map(|a| (String::new(), a)))
        .collect();
    let domain = tokio::task::spawn_blocking(move || domain(&outlines, resolution))
        .await
        .map_err(|e| anyhow::anyhow!("tiling the districts: {e}"))??;

    // Streamed: each row is counted as it comes, only its id kept (a week of a national
    // campaign is millions of rows).
    let mut counter = mechanism::Counter::new(&plan, &domain, districts.len());
    let mut ids: Vec<uuid::Uuid> = Vec::new();
    {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query!(
            r#"SELECT id, district_id, ST_X(geom) AS "lon!", ST_Y(geom) AS "lat!",
                    answers AS "answers: sqlx::types::Json<serde_json::Map<String, Value>>"
             FROM submissions
             WHERE campaign_id = $1 AND status = 'published' AND release_id IS NULL
               AND published_at < $2"#,
            campaign_id,
            period_end,
        )
        .fetch(&mut *tx);
        while let Some(r) = rows.try_next().await? {
            counter.add(&Household {
                district: r
                    .district_id
                    .and_then(|d| index.get(&d).copied())
                    .unwrap_or(districts.len()),
                cell: LatLng::new(r.lat, r.lon)
                    .ok()
                    .map(|p| p.to_cell(resolution)),
                answers: plan
                    .splits
                    .iter()
                    .map(|s| s.position(r.answers.0.get(&s.field)))
                    .collect(),
                numbers: plan
                    .sums
                    .iter()
                    .map(|s| {
                        r.answers
                            .0
                            .get(&s.field)
                            .and_then(Value::as_f64)
                            .map_or(0, |x| (x.round() as i64).clamp(s.lo, s.hi))
                    })
                    .collect(),
            });
            ids.push(r.id);
        }
    }
    // Every cell's noise; a big map takes a while, off the runtime's workers.
    let (cells, noise_plan) = (counter.finish(), plan.clone());
    let leaf = tokio::task::spawn_blocking(move || mechanism::add_noise(&noise_plan, cells))
        .await
        .map_err(|e| anyhow::anyhow!("measuring a release: {e}"))??;

    // The exact totals now, in the districts' order (as the districts layer suppresses them),
    // outside every district last.
    let counts = district_counts(&mut *tx, campaign_id).await?;
    let by_id: HashMap<i64, Tally> = counts.districts.iter().copied().collect();
    let totals: Vec<Value> = districts
        .iter()
        .map(|d| {
            (
                d.code.clone(),
                by_id.get(&d.id).copied().unwrap_or_default(),
            )
        })
        .chain([(String::new(), counts.outside)])
        .map(|(code, t)| serde_json::json!([code, t.count, t.contributors]))
        .collect();
    let id: i64 = sqlx::query_scalar!(
        "INSERT INTO releases (campaign_id, period_start, period_end, epsilon, plan, series, totals, counted)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        campaign_id,
        period_start,
        period_end,
        plan.epsilon,
        serde_json::to_value(&plan).map_err(anyhow::Error::from)?,
        leaf.series,
        Value::Array(totals),
        i32::try_from(ids.len()).unwrap_or(i32::MAX),
    )
    .fetch_one(&mut *tx)
    .await?;
    let rows = estimates::leaf_rows(&plan, &domain, &codes, &leaf);
    for chunk in rows.chunks(10_000) {
        sqlx::query!(
            "INSERT INTO release_figures (campaign_id, family, district, key, value)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[])
             ON CONFLICT (campaign_id, family, district, key)
             DO UPDATE SET value = release_figures.value + EXCLUDED.value",
            campaign_id,
            &chunk.iter().map(|r| r.family.clone()).collect::<Vec<_>>(),
            &chunk.iter().map(|r| r.district.clone()).collect::<Vec<_>>(),
            &chunk.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
            &chunk.iter().map(|r| r.value).collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "UPDATE submissions SET release_id = $2 WHERE id = ANY($1)",
        &ids,
        id,
    )
    .execute(&mut *tx)
    .await?;
    super::districts::move_data_version(&mut tx, campaign_id).await?;
    tx.commit().await?;
    if leaf.off_map > 0 {
        tracing::warn!(
            campaign_id,
            off_map = leaf.off_map,
            "submissions on a district's edge fell outside the map's hexagons: counted in every figure but the map"
        );
    }
    tracing::info!(campaign_id, release = id, counted = ids.len(), %period_end, "figures released");
    Ok(Some(Made {
        id,
        campaign_id,
        period_end,
        counted: ids.len(),
        epsilon: plan.epsilon,
    }))
}

/// The map's domain: for each district (by its index in `outlines`, the area last) every cell
/// of `resolution` meeting its outline, given as GeoJSON ([`tile`]).
pub fn domain(outlines: &[(String, String)], resolution: Resolution) -> Result<Domain> {
    let mut shapes = Vec::with_capacity(outlines.len());
    for (code, geojson) in outlines {
        let geometry: geojson::Geometry = geojson
            .parse()
            .map_err(|e| ReleaseError::Outline(code.clone(), format!("{e}")))?;
        let shape: geo::Geometry<f64> = geometry
            .try_into()
            .map_err(|e| ReleaseError::Outline(code.clone(), format!("{e}")))?;
        shapes.push(match shape {
            geo::Geometry::Polygon(p) => vec![p],
            geo::Geometry::MultiPolygon(m) => m.0,
            _ => Vec::new(),
        });
    }
    tile(&shapes, resolution).map_err(|(i, e)| {
        let code = outlines.get(i).map(|o| o.0.clone()).unwrap_or_default();
        ReleaseError::Outline(code, e)
    })
}

/// Every cell of `resolution` meeting each shape (longitude/latitude polygons), as parts of
/// the district of the shape's index: H3's "covers" tiling, by h3o. The error names the shape.
pub fn tile(
    shapes: &[Vec<geo::Polygon<f64>>],
    resolution: Resolution,
) -> Result<Domain, (usize, String)> {
    let mut parts = Vec::new();
    for (i, polygons) in shapes.iter().enumerate() {
        let mut tiler = h3o::geom::TilerBuilder::new(resolution)
            .containment_mode(h3o::geom::ContainmentMode::Covers)
            .build();
        for polygon in polygons {
            tiler.add(polygon.clone()).map_err(|e| (i, e.to_string()))?;
        }
        parts.extend(tiler.into_coverage().map(|cell| (i, cell)));
    }
    Ok(Domain::new(parts))
}

/// The releases of `campaign` as the public doors read them: the latest one, the running
/// sums, every period of the series. `None` before the first release.
pub async fn read(
    db: impl sqlx::PgExecutor<'_> + Copy,
    campaign_id: i64,
) -> sqlx::Result<Option<Released>> {
    let periods = sqlx::query!(
        r#"SELECT id, period_start, period_end, released_at, epsilon, series,
                totals AS "totals: sqlx::types::Json<Vec<(String, i64, i64)>>"
         FROM releases WHERE campaign_id = $1 ORDER BY period_end"#,
        campaign_id,
    )
    .fetch_all(db)
    .await?;
    let Some(last) = periods.last() else {
        return Ok(None);
    };
    let figures = sqlx::query!(
        "SELECT family, district, key, value FROM release_figures WHERE campaign_id = $1",
        campaign_id,
    )
    .fetch_all(db)
    .await?;
    let mut sums = Cumulative::default();
    sums.add(
        &figures
            .into_iter()
            .map(|f| Row {
                family: f.family,
                district: f.district,
                key: f.key,
                value: f.value,
            })
            .collect::<Vec<_>>(),
    );
    Ok(Some(Released {
        id: last.id,
        period_end: last.period_end,
        released_at: last.released_at,
        epsilon: periods.iter().map(|p| p.epsilon).fold(0.0, f64::max),
        releases: periods.len(),
        totals: last
            .totals
            .0
            .iter()
            .map(|(code, count, contributors)| {
                (
                    code.clone(),
                    Tally {
                        count: *count,
                        contributors: *contributors,
                    },
                )
            })
            .collect(),
        sums,
        series: periods
            .iter()
            .map(|p| Period {
                start: p.period_start,
                end: p.period_end,
                noisy: p.series,
            })
            .collect(),
    }))
}

/// The id of the latest release of `campaign_id` (`None` before the first).
pub async fn latest(db: impl sqlx::PgExecutor<'_>, campaign_id: i64) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT max(id) FROM releases WHERE campaign_id = $1",
        campaign_id
    )
    .fetch_one(db)
    .await
}

/// Each campaign's releases as last read, shared by every door of this instance: read once
/// per data version (a release moves it), so that a download, a tile and the report built
/// after the same change read the releases once.
#[derive(Clone)]
pub struct ReleasedCache {
    /// (campaign, data version) → its releases (`None` before the first).
    cache: moka::future::Cache<(i64, i64), std::sync::Arc<Option<Released>>>,
}

impl Default for ReleasedCache {
    fn default() -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(256)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
        }
    }
}

impl ReleasedCache {
    /// The releases of `campaign_id` at `data_version`, read from `db` once.
    pub async fn get(
        &self,
        db: &PgPool,
        campaign_id: i64,
        data_version: i64,
    ) -> sqlx::Result<std::sync::Arc<Option<Released>>> {
        let key = (campaign_id, data_version);
        if let Some(released) = self.cache.get(&key).await {
            return Ok(released);
        }
        let released = std::sync::Arc::new(read(db, campaign_id).await?);
        self.cache.insert(key, released.clone()).await;
        Ok(released)
    }
}

/// The campaign's releases for staff: each with what it counted and spent.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Ledger {
    /// The budget in force for the next release.
    pub budget: f64,
    /// The most any contribution counted so far spent (0 before the first release).
    pub spent: f64,
    /// Submissions published and not counted yet (counted by the next release).
    pub uncounted: i64,
    /// When the next scheduled release is made.
    #[serde(with = "time::serde::rfc3339")]
    pub next_release: OffsetDateTime,
    pub releases: Vec<LedgerEntry>,
}

/// One release, for staff.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub period_end: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub released_at: OffsetDateTime,
    /// What each contribution it counted spent.
    pub epsilon: f64,
    /// Contributions it counted (exact; staff only).
    pub counted: i32,
    /// Its measures: each family's share of ε, sensitivity and noise scale.
    #[schema(value_type = Object)]
    pub plan: Value,
}

/// The ledger of `campaign`'s releases.
pub async fn ledger(db: &PgPool, campaign: &Campaign) -> sqlx::Result<Ledger> {
    let releases: Vec<LedgerEntry> = sqlx::query_as!(
        LedgerEntry,
        "SELECT id, period_start, period_end, released_at, epsilon, counted, plan
         FROM releases WHERE campaign_id = $1 ORDER BY period_end",
        campaign.id,
    )
    .fetch_all(db)
    .await?;
    let uncounted: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM submissions
         WHERE campaign_id = $1 AND status = 'published' AND release_id IS NULL"#,
        campaign.id,
    )
    .fetch_one(db)
    .await?;
    let created = sqlx::query_scalar!(
        "SELECT created_at FROM campaigns WHERE id = $1",
        campaign.id
    )
    .fetch_one(db)
    .await?;
    let last_end = releases.last().map_or(created, |r| r.period_end);
    Ok(Ledger {
        budget: campaign.privacy.budget,
        spent: releases.iter().map(|r| r.epsilon).fold(0.0, f64::max),
        uncounted,
        next_release: next_release(campaign.privacy.release_every, last_end),
        releases,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn periods_end_at_midnight_utc_and_weeks_on_monday() {
        let t = datetime!(2026-12-09 15:30 UTC); // a Wednesday
        assert_eq!(
            boundary_at_or_before(ReleaseEvery::Day, t),
            datetime!(2026-12-09 0:00 UTC)
        );
        assert_eq!(
            boundary_at_or_before(ReleaseEvery::Week, t),
            datetime!(2026-12-07 0:00 UTC)
        );
        assert_eq!(
            boundary_after(ReleaseEvery::Week, datetime!(2026-12-07 0:00 UTC)),
            datetime!(2026-12-14 0:00 UTC)
        );
        assert_eq!(
            next_release(ReleaseEvery::Day, datetime!(2026-12-09 0:00 UTC)),
            datetime!(2026-12-10 6:00 UTC)
        );
    }

    #[test]
    fn answers_are_found_among_the_values_or_count_as_none_or_are_left_out() {
        use crate::figures::budget::{Measure, Split};
        let _ = Measure::clone;
        let mut campaign = crate::testing::campaign();
        let plan = crate::figures::budget::Plan::of(&campaign);
        // `connection` is required: adsl, none; no "no answer" column.
        let split: &Split = &plan.splits[0];
        assert_eq!(split.values, ["adsl", "none"]);
        assert_eq!(split.position(Some(&Value::from("none"))), Some(1));
        assert_eq!(split.position(Some(&Value::from("gone"))), None);
        assert_eq!(split.position(None), None);
        // Optional: the last column takes what the form does not offer.
        campaign.form.fields[1].required = false;
        let plan = crate::figures::budget::Plan::of(&campaign);
        let split = &plan.splits[0];
        assert_eq!(split.values, ["adsl", "none", ""]);
        assert_eq!(split.position(Some(&Value::from("gone"))), Some(2));
        assert_eq!(split.position(Some(&Value::from(""))), Some(2));
        assert_eq!(split.position(Some(&Value::Bool(true))), Some(2));
    }

    #[test]
    fn the_domain_covers_every_point_of_a_district() {
        // A square district around Nanterre: every point inside it has its cell in the domain.
        let square = r#"{"type":"Polygon","coordinates":[[[2.19,48.88],[2.22,48.88],[2.22,48.90],[2.19,48.90],[2.19,48.88]]]}"#;
        let domain = domain(&[("A".into(), square.into())], Resolution::Eight).unwrap();
        for i in 0..=20 {
            for j in 0..=20 {
                let (lon, lat) = (
                    2.19 + 0.03 * f64::from(i) / 20.0,
                    48.88 + 0.02 * f64::from(j) / 20.0,
                );
                let cell = LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eight);
                assert!(domain.parts.contains(&(0, cell)), "{lon} {lat}");
            }
        }
    }
}
