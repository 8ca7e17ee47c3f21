//! District totals: exact and live, read from the maintained per-district counters
//! (O(districts), never O(points)), and protected by the campaign's k threshold with
//! complementary suppression ([`suppress`]). Also the data version every cache is keyed by,
//! and the rebuild of the counters after districts change.

use super::counting;
use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;

/// A count as the public sees it: the number, or withheld when publishing it could single
/// out a household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct PublishedCount {
    /// The count, or `null` when withheld.
    pub count: Option<i64>,
    /// True when the count is withheld (below the campaign's minimum, or needed to protect
    /// another withheld count).
    pub withheld: bool,
}

impl PublishedCount {
    /// `count`, or withheld.
    pub fn new(count: i64, withheld: bool) -> Self {
        if withheld {
            Self::WITHHELD
        } else {
            Self::shown(count)
        }
    }

    fn shown(count: i64) -> Self {
        Self {
            count: Some(count),
            withheld: false,
        }
    }

    /// A withheld count.
    pub const WITHHELD: Self = Self {
        count: None,
        withheld: true,
    };
}

/// A count of published submissions and how many of them are distinct contributors' first
/// submissions in the campaign. The count is what is published; the contributors decide
/// whether it may be: one client posting k - 1 probes into a cell adds one contributor, so it
/// cannot make the cell, hence the others in it, public (see
/// `migrations/20261201000011_contributors.sql`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Published submissions.
    pub count: i64,
    /// Those of them that are their contributor's first (at most `count`).
    pub contributors: i64,
}

impl Tally {
    /// `count` submissions from as many contributors (staff imports, tests of the rules).
    pub fn distinct(count: i64) -> Self {
        Self {
            count,
            contributors: count,
        }
    }

    /// Takes out one submission, a first contribution or not.
    pub fn take_out(&mut self, first_contribution: bool) {
        self.count -= 1;
        self.contributors -= i64::from(first_contribution);
    }

    /// Whether the figure may be published under threshold `k`: it has k distinct
    /// contributors (hence at least k submissions).
    pub fn reaches(self, k: i64) -> bool {
        self.contributors >= k && self.count >= k
    }
}

impl std::ops::Add for Tally {
    type Output = Tally;
    fn add(self, other: Tally) -> Tally {
        Tally {
            count: self.count + other.count,
            contributors: self.contributors + other.contributors,
        }
    }
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        *self = *self + other;
    }
}

impl std::iter::Sum for Tally {
    fn sum<I: Iterator<Item = Tally>>(iter: I) -> Tally {
        iter.fold(Tally::default(), |a, b| a + b)
    }
}

/// Cells that partition a total, as published, and the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// One entry per input cell, in the same order.
    pub cells: Vec<PublishedCount>,
    /// The sum of all cells.
    pub total: PublishedCount,
}

/// Applies k-suppression to `tallies`, cells that add up to a published total.
///
/// A cell with fewer than `k` distinct contributors is withheld. Since the total is published,
/// the withheld cells' sum could be recovered by subtraction; so while those cells hold between
/// 1 and k - 1 contributors, or only one of them is non-zero, the smallest published cell is
/// withheld too (complementary suppression). A total with fewer than `k` contributors is
/// withheld as well.
pub fn suppress(tallies: &[Tally], k: i64) -> Suppressed {
    let total: Tally = tallies.iter().copied().sum();
    let mut withheld: Vec<bool> = tallies.iter().map(|t| !t.reaches(k)).collect();
    loop {
        let hidden: Vec<Tally> = tallies
            .iter()
            .zip(&withheld)
            .filter(|(_, w)| **w)
            .map(|(t, _)| *t)
            .collect();
        let hidden_sum: Tally = hidden.iter().copied().sum();
        let nonzero_hidden = hidden.iter().filter(|t| t.count != 0).count();
        let recoverable = (hidden_sum.count > 0 && !hidden_sum.reaches(k)) || nonzero_hidden == 1;
        if !recoverable {
            break;
        }
        let next = tallies
            .iter()
            .enumerate()
            .filter(|(i, _)| !withheld[*i])
            .min_by_key(|(i, t)| (t.count, *i))
            .map(|(i, _)| i);
        match next {
            Some(i) => withheld[i] = true,
            None => break,
        }
    }
    let cells = tallies
        .iter()
        .zip(&withheld)
        .map(|(t, &w)| PublishedCount::new(t.count, w))
        .collect();
    let total = PublishedCount::new(total.count, !total.reaches(k));
    Suppressed { cells, total }
}

/// Each district id's position among `ids` (a campaign's districts, in their order): where a
/// submission's `district_id` goes in the figures (absent: outside every district, the position
/// after the last).
pub fn positions(ids: impl Iterator<Item = i64>) -> std::collections::HashMap<i64, usize> {
    ids.enumerate().map(|(i, id)| (id, i)).collect()
}

/// Published submissions per district of a campaign, in district order, and the number
/// inside the area but outside every district.
#[derive(Debug, Clone)]
pub struct DistrictCounts {
    /// `(district id, published count)`, in the districts' import order.
    pub districts: Vec<(i64, Tally)>,
    /// Published submissions that fell in no district.
    pub outside: Tally,
}

impl DistrictCounts {
    /// The counts as published under threshold `k`: one per district, then the outside cell.
    pub fn published(&self, k: i64) -> Suppressed {
        let mut tallies: Vec<Tally> = self.districts.iter().map(|(_, c)| *c).collect();
        tallies.push(self.outside);
        suppress(&tallies, k)
    }

    /// Takes out one submission of district `district` (`None`: outside every district).
    pub fn take_out(&mut self, district: Option<i64>, first_contribution: bool) {
        match self
            .districts
            .iter_mut()
            .find(|(id, _)| Some(*id) == district)
        {
            Some((_, tally)) => tally.take_out(first_contribution),
            None => self.outside.take_out(first_contribution),
        }
    }
}

/// Reads the maintained counters of campaign `campaign_id`.
pub async fn district_counts(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
) -> sqlx::Result<DistrictCounts> {
    let rows = sqlx::query!(
        r#"SELECT d.id AS "district?", COALESCE(c.published, 0)::bigint AS "count!",
                COALESCE(c.contributors, 0)::bigint AS "contributors!"
         FROM districts d
         LEFT JOIN (SELECT district_id, sum(published) AS published, sum(contributors) AS contributors
                    FROM district_counts WHERE campaign_id = $1 GROUP BY district_id) c
                ON c.district_id = d.id
         WHERE d.campaign_id = $1
         UNION ALL
         SELECT NULL, COALESCE(sum(published), 0)::bigint, COALESCE(sum(contributors), 0)::bigint
         FROM district_counts WHERE campaign_id = $1 AND district_id IS NULL
         ORDER BY 1 NULLS LAST"#,
        campaign_id,
    )
    .fetch_all(db)
    .await?;
    let mut counts = DistrictCounts {
        districts: Vec::new(),
        outside: Tally::default(),
    };
    for row in rows {
        let count = Tally {
            count: row.count,
            contributors: row.contributors,
        };
        match row.district {
            Some(id) => counts.districts.push((id, count)),
            None => counts.outside = count,
        }
    }
    Ok(counts)
}

/// Adds `delta` published submissions at `submission_id`'s place: to its district's counter
/// (or "outside every district") and to its H3 cell, and moves the campaign's data version.
/// Call it with -1 before a published submission's position, district or status changes, and
/// with +1 after. Spread over a few shard rows so that concurrent writers rarely wait on one
/// row lock.
pub async fn add_published(
    db: &mut sqlx::PgConnection,
    submission_id: uuid::Uuid,
    delta: i64,
) -> sqlx::Result<()> {
    // Runtime SQL: composes the shared fragment `count!`, and sqlx's macros take only literals.
    sqlx::query(concat!(
        "WITH to_count AS (
            SELECT campaign_id, district_id, h3, first_contribution, $3::int AS n
            FROM submissions WHERE id = $1), ",
        counting::count!("to_count", "$2"),
        " SELECT 1"
    ))
    .bind(submission_id)
    .bind(random_shard())
    .bind(delta)
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// The campaign's settings version and the version of its published data, read together.
pub async fn versions(db: impl PgExecutor<'_>, campaign_id: i64) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query!(
        r#"SELECT config_version,
                (SELECT COALESCE(sum(changes), 0)::bigint FROM district_counts WHERE campaign_id = $1)
                AS "data_version!"
         FROM campaigns WHERE id = $1"#,
        campaign_id,
    )
    .fetch_one(db)
    .await?;
    Ok((row.config_version, row.data_version))
}

/// The version of a campaign's published data: it moves with every committed change.
pub async fn data_version(db: impl PgExecutor<'_>, campaign_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT COALESCE(sum(changes), 0)::bigint AS "version!" FROM district_counts WHERE campaign_id = $1"#,
        campaign_id,
    )
    .fetch_one(db)
    .await
}

/// Computes the H3 cell of submissions stored before civicmap kept one (the migration that
/// added `submissions.h3`; staff's exact figures by hexagon read it). A no-op once done.
pub async fn fill_missing_h3(pool: &sqlx::PgPool) -> sqlx::Result<u64> {
    let mut filled = 0;
    loop {
        let rows = sqlx::query!(
            r#"SELECT id, ST_X(geom) AS "lon!", ST_Y(geom) AS "lat!"
             FROM submissions WHERE h3 IS NULL LIMIT 10000"#,
        )
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        let cells: Vec<i64> = rows
            .iter()
            .map(|row| crate::location::WgsPoint::new(row.lon, row.lat).map_or(0, |p| p.h3_cell()))
            .collect();
        sqlx::query!(
            "UPDATE submissions s SET h3 = u.h3
             FROM unnest($1::uuid[], $2::int8[]) AS u(id, h3) WHERE s.id = u.id",
            &rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            &cells,
        )
        .execute(pool)
        .await?;
        filled += rows.len() as u64;
    }
    if filled > 0 {
        tracing::info!(filled, "H3 cells computed for earlier submissions");
    }
    Ok(filled)
}

/// Number of counter rows per district.
pub const SHARDS: i16 = 8;

/// A shard to write a counter change to.
pub fn random_shard() -> i16 {
    rand::random_range(0..SHARDS)
}

/// Rebuilds the district counters of a campaign from its submissions (after districts change).
/// The caller must hold the lock taken by [`lock_writes`]. The data version keeps growing.
pub async fn rebuild(db: &mut sqlx::PgConnection, campaign_id: i64) -> sqlx::Result<()> {
    let version = data_version(&mut *db, campaign_id).await?;
    sqlx::query!(
        "DELETE FROM district_counts WHERE campaign_id = $1",
        campaign_id,
    )
    .execute(&mut *db)
    .await?;
    // Runtime SQL: composes the shared fragment `count_districts!`, and sqlx's macros take only
    // literals.
    sqlx::query(concat!(
        "WITH to_count AS (
            SELECT campaign_id, district_id, h3, first_contribution, 1 AS n FROM submissions
            WHERE campaign_id = $1 AND status = ",
        crate::status!(Published),
        "), ",
        counting::count_districts!("to_count", "0"),
        " SELECT 1"
    ))
    .bind(campaign_id)
    .execute(&mut *db)
    .await?;
    // The version continues from where it was, one step on, whatever the new counts.
    sqlx::query!(
        "UPDATE district_counts SET changes = 0 WHERE campaign_id = $1",
        campaign_id,
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!(
        "INSERT INTO district_counts (campaign_id, district_id, shard, published, changes)
         VALUES ($1, NULL, 0, 0, $2::int8 + 1)
         ON CONFLICT ON CONSTRAINT district_counts_key
         DO UPDATE SET changes = district_counts.changes + EXCLUDED.changes",
        campaign_id,
        version,
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Moves the campaign's data version by one without changing any count (a release: what
/// every cache keyed by the data version must be built again for).
pub async fn move_data_version(db: &mut sqlx::PgConnection, campaign_id: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO district_counts (campaign_id, district_id, shard, published, changes)
         VALUES ($1, NULL, 0, 0, 1)
         ON CONFLICT ON CONSTRAINT district_counts_key
         DO UPDATE SET changes = district_counts.changes + 1",
        campaign_id,
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Waits for the submissions being stored to commit and holds new ones until the caller's
/// transaction ends, so that rebuilt counters and cells miss nothing and no submission is
/// stored against settings being replaced (writers that waited see the new `config_version`
/// once they run, and check again).
pub async fn lock_writes(db: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    sqlx::query!("LOCK TABLE submissions, district_counts IN SHARE ROW EXCLUSIVE MODE",)
        .execute(&mut *db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(cells: &Suppressed) -> Vec<Option<i64>> {
        cells.cells.iter().map(|c| c.count).collect()
    }

    fn distinct(counts: &[i64]) -> Vec<Tally> {
        counts.iter().map(|&c| Tally::distinct(c)).collect()
    }

    #[test]
    fn a_cell_padded_by_one_contributor_is_withheld() {
        // 7 submissions, but the 4 probes of one client are one contributor: 4 in all.
        let padded = Tally {
            count: 7,
            contributors: 4,
        };
        let s = suppress(&[padded, Tally::distinct(10), Tally::distinct(9)], 5);
        assert_eq!(shown(&s), [None, Some(10), None]);
        assert_eq!(s.total.count, Some(26));
    }

    #[test]
    fn withheld_cells_together_hold_k_contributors_or_none() {
        // Exhaustive over small partitions with repeated contributors: whenever cells are
        // withheld under a published total, they hold no submission, or at least k
        // contributors in two or more non-zero cells.
        let k = 3;
        let tallies: Vec<Tally> = (0..5)
            .flat_map(|count| {
                (0..=count).map(move |contributors| Tally {
                    count,
                    contributors,
                })
            })
            .collect();
        for &a in &tallies {
            for &b in &tallies {
                for &c in &tallies {
                    let s = suppress(&[a, b, c], k);
                    if s.total.withheld {
                        continue;
                    }
                    let hidden: Vec<Tally> = [a, b, c]
                        .into_iter()
                        .zip(&s.cells)
                        .filter(|(_, p)| p.withheld)
                        .map(|(t, _)| t)
                        .collect();
                    let sum: Tally = hidden.iter().copied().sum();
                    let nonzero = hidden.iter().filter(|t| t.count > 0).count();
                    assert!(
                        sum.count == 0 || (sum.reaches(k) && nonzero >= 2),
                        "{:?} -> {s:?}",
                        [a, b, c]
                    );
                    for (t, p) in [a, b, c].iter().zip(&s.cells) {
                        assert!(p.withheld || t.reaches(k), "{t:?} shown");
                    }
                }
            }
        }
    }

    #[test]
    fn counts_at_or_above_k_are_shown() {
        let s = suppress(&distinct(&[5, 10, 7]), 5);
        assert_eq!(shown(&s), [Some(5), Some(10), Some(7)]);
        assert_eq!(s.total, PublishedCount::shown(22));
    }

    #[test]
    fn a_single_small_cell_takes_the_next_smallest_with_it() {
        // Showing 10, 7 and the total 19 would reveal the 2.
        let s = suppress(&distinct(&[2, 10, 7]), 5);
        assert_eq!(shown(&s), [None, Some(10), None]);
        assert!(s.cells[0].withheld && s.cells[2].withheld);
        assert_eq!(s.total.count, Some(19));
    }

    #[test]
    fn small_cells_whose_sum_is_below_k_take_more_cells() {
        let s = suppress(&distinct(&[1, 2, 10, 8, 30]), 5);
        assert_eq!(shown(&s), [None, None, Some(10), None, Some(30)]);
    }

    #[test]
    fn zeros_need_no_protection_but_are_never_shown_as_zero() {
        let s = suppress(&distinct(&[0, 0, 12, 9]), 5);
        assert_eq!(shown(&s), [None, None, Some(12), Some(9)]);
    }

    #[test]
    fn a_small_total_is_withheld() {
        let s = suppress(&distinct(&[1, 2]), 5);
        assert_eq!(shown(&s), [None, None]);
        assert_eq!(s.total, PublishedCount::WITHHELD);
    }

    #[test]
    fn no_withheld_cell_can_be_recovered_by_subtraction() {
        // Exhaustive over small partitions: whenever cells are withheld, either the total is
        // withheld or the withheld cells sum to 0 or to at least k with two or more non-zero.
        let k = 3;
        for a in 0..6 {
            for b in 0..6 {
                for c in 0..6 {
                    let counts = [a, b, c];
                    let s = suppress(&distinct(&counts), k);
                    if s.total.withheld {
                        continue;
                    }
                    let hidden: Vec<i64> = counts
                        .iter()
                        .zip(&s.cells)
                        .filter(|(_, p)| p.withheld)
                        .map(|(c, _)| *c)
                        .collect();
                    let sum: i64 = hidden.iter().sum();
                    let nonzero = hidden.iter().filter(|&&c| c > 0).count();
                    assert!(
                        sum == 0 || (sum >= k && nonzero >= 2),
                        "{counts:?} -> {s:?}"
                    );
                }
            }
        }
    }
}
