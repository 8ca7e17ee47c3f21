//! When figures finer than a district are published.
//!
//! District totals are live: a citizen sees their contribution counted in their district at
//! once. Everything finer (the map's demand cells, H3 cells, breakdowns by answer, sums, time
//! series) is published as a snapshot taken at the last multiple of the campaign's
//! `publish_interval_minutes`: a submission enters those figures only once a publication
//! instant has passed since it was published at its place ([`snapshot_at`]). Someone polling
//! them sees at most one change per interval, holding every arrival of that interval at once,
//! never one arrival with its place, time and answers.
//!
//! A publication moves to the last multiple of the interval only when at least k distinct
//! contributors (the campaign's `min_count`; see [`crate::aggregates::Tally`]) published a
//! submission since the previous one ([`current`]): two successive publications never differ
//! by fewer than k contributors' arrivals, so a quiet interval with one arrival does not show
//! where that one arrival is, even to someone who posted k - 1 probes to move it. The instant in force is kept in
//! `campaigns.published_until`, so every instance serves the same snapshot. Submissions
//! published since the instant are the few rows [`recent`] reads; figures kept as counters
//! subtract them, and scans leave them out with `published_at < snapshot`.

use sqlx::PgExecutor;
use time::OffsetDateTime;

/// Longest a computed publication is kept in memory: an erased or hidden submission leaves the
/// finer figures within this time even while no publication moves.
pub const LONGEST_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// How a server dates its publications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Schedule {
    /// At each campaign's `publish_interval_minutes`: what `civicmap serve` always does.
    #[default]
    Campaign,
    /// At every instant, as live as district totals: for the tests of everything but the
    /// publication itself. Not reachable from the command line.
    Live,
}

/// The publications in force, as this instance last found them: asked again of the database
/// only when the candidate instant or the campaign's data version moved (a publication can
/// only move with k arrivals, which are writes), so a tile or a download in steady state costs
/// no query for it.
#[derive(Clone)]
pub struct Publications {
    schedule: Schedule,
    /// (campaign, candidate instant in Unix seconds, data version) → instant in force.
    memo: moka::future::Cache<(i64, i64, i64), OffsetDateTime>,
}

impl Publications {
    /// Publications on `schedule`.
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            memo: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
        }
    }

    /// The publication in force for `campaign` at `now`, its data being at `data_version`
    /// (see [`crate::aggregates::versions`]): on the live schedule, `now`; else [`current`].
    pub async fn in_force(
        &self,
        db: &sqlx::PgPool,
        campaign: &crate::campaigns::Campaign,
        data_version: i64,
        now: OffsetDateTime,
    ) -> sqlx::Result<OffsetDateTime> {
        if self.schedule == Schedule::Live {
            return Ok(now);
        }
        let candidate = snapshot_at(campaign.privacy.publish_interval_minutes, now);
        let key = (campaign.id, candidate.unix_timestamp(), data_version);
        if let Some(instant) = self.memo.get(&key).await {
            return Ok(instant);
        }
        let instant = current(db, campaign, candidate).await?;
        self.memo.insert(key, instant).await;
        Ok(instant)
    }
}

/// The publication in force for `campaign` when the last interval boundary is `candidate`:
/// the stored instant, first moved to `candidate` when at least k first contributions were
/// published between the two.
pub async fn current(
    db: &sqlx::PgPool,
    campaign: &crate::campaigns::Campaign,
    candidate: OffsetDateTime,
) -> sqlx::Result<OffsetDateTime> {
    let stored: Option<OffsetDateTime> = sqlx::query_scalar!(
        "SELECT published_until FROM campaigns WHERE id = $1",
        campaign.id,
    )
    .fetch_one(db)
    .await?;
    if let Some(stored) = stored
        && stored >= candidate
    {
        return Ok(stored);
    }
    // Moves only with k arrivals since the stored instant (from the start when there is none);
    // a concurrent instance may move it first, to the same instant.
    let moved: Option<OffsetDateTime> = sqlx::query_scalar!(
        r#"UPDATE campaigns SET published_until = $2
         WHERE id = $1 AND (published_until IS NULL OR published_until < $2)
           AND (SELECT count(*) FROM (
                  SELECT 1 FROM submissions s
                  WHERE s.campaign_id = $1 AND s.status = 'published' AND s.published_at < $2
                    AND s.first_contribution
                    AND ($3::timestamptz IS NULL OR s.created_at >= $3
                         OR (s.published_at > s.created_at AND s.published_at >= $3))
                  LIMIT $4) arrivals) >= $4
         RETURNING published_until AS "published_until!""#,
        campaign.id,
        candidate,
        stored,
        i64::from(campaign.privacy.min_count),
    )
    .fetch_optional(db)
    .await?;
    Ok(match (moved, stored) {
        (Some(moved), _) => moved,
        (None, Some(stored)) => stored,
        // Fewer than k submissions ever: nothing finer than a district can be published.
        (None, None) => OffsetDateTime::UNIX_EPOCH,
    })
}

/// The publication instant in force at `now` for an interval of `minutes`: the last multiple
/// of the interval since the Unix epoch (at or before `now`).
pub fn snapshot_at(minutes: i32, now: OffsetDateTime) -> OffsetDateTime {
    let step = i64::from(minutes.max(1)) * 60;
    let seconds = now.unix_timestamp().div_euclid(step) * step;
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(now)
}

/// A published submission that arrived at its place at or after a publication instant.
#[derive(Debug, Clone)]
pub struct Recent {
    pub district_id: Option<i64>,
    /// Its resolution-10 H3 cell.
    pub h3: Option<i64>,
    /// Whether it is its contributor's first submission (see [`crate::aggregates::Tally`]).
    pub first_contribution: bool,
}

/// The published submissions of `campaign_id` published at `since` or later: those a snapshot
/// taken at `since` leaves out. Few rows (one interval's worth), read through two indexes.
pub async fn recent(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
    since: OffsetDateTime,
) -> sqlx::Result<Vec<Recent>> {
    // `published_at >= $2`, spelt so that both indexes serve it: new rows have
    // published_at = created_at, rows published again are in submissions_republished_idx.
    sqlx::query_as!(
        Recent,
        "SELECT s.district_id, s.h3, s.first_contribution
         FROM submissions s
         WHERE s.campaign_id = $1 AND s.status = 'published'
           AND (s.created_at >= $2 OR (s.published_at > s.created_at AND s.published_at >= $2))",
        campaign_id,
        since,
    )
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instant_is_the_last_multiple_of_the_interval() {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        assert_eq!(snapshot_at(5, at(1_000_000)), at(999_900));
        assert_eq!(snapshot_at(5, at(999_900)), at(999_900));
        assert_eq!(snapshot_at(5, at(999_899)), at(999_600));
        assert_eq!(snapshot_at(1, at(61)), at(60));
        // Every instance agrees: the instant depends on the clock and the interval only.
        assert_eq!(snapshot_at(60, at(7_250)), at(7_200));
    }
}
