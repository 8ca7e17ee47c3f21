//! Published counts: read from the maintained per-district counters (O(districts), never
//! O(points)) and protected by the campaign's k threshold.

use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;

use crate::http::error::ApiResult;

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
    fn shown(count: i64) -> Self {
        Self {
            count: Some(count),
            withheld: false,
        }
    }

    const WITHHELD: Self = Self {
        count: None,
        withheld: true,
    };
}

/// Cells that partition a total, as published, and the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// One entry per input cell, in the same order.
    pub cells: Vec<PublishedCount>,
    /// The sum of all cells.
    pub total: PublishedCount,
}

/// Applies k-suppression to `counts`, cells that add up to a published total.
///
/// A cell below `k` is withheld. Since the total is published, the withheld cells' sum could
/// be recovered by subtraction; so while that sum is between 1 and k - 1, or only one non-zero
/// cell is withheld, the smallest published cell is withheld too (complementary suppression).
/// A total below `k` is withheld as well.
pub fn suppress(counts: &[i64], k: i64) -> Suppressed {
    let total: i64 = counts.iter().sum();
    let mut withheld: Vec<bool> = counts.iter().map(|&c| c < k).collect();
    loop {
        let hidden: Vec<i64> = counts
            .iter()
            .zip(&withheld)
            .filter(|(_, w)| **w)
            .map(|(c, _)| *c)
            .collect();
        let hidden_sum: i64 = hidden.iter().sum();
        let nonzero_hidden = hidden.iter().filter(|&&c| c != 0).count();
        let recoverable = (hidden_sum > 0 && hidden_sum < k) || nonzero_hidden == 1;
        if !recoverable {
            break;
        }
        let next = counts
            .iter()
            .enumerate()
            .filter(|(i, _)| !withheld[*i])
            .min_by_key(|(i, c)| (**c, *i))
            .map(|(i, _)| i);
        match next {
            Some(i) => withheld[i] = true,
            None => break,
        }
    }
    let cells = counts
        .iter()
        .zip(&withheld)
        .map(|(&c, &w)| {
            if w {
                PublishedCount::WITHHELD
            } else {
                PublishedCount::shown(c)
            }
        })
        .collect();
    let total = if total < k {
        PublishedCount::WITHHELD
    } else {
        PublishedCount::shown(total)
    };
    Suppressed { cells, total }
}

/// Published submissions per district of a campaign, in district order, and the number
/// inside the area but outside every district.
#[derive(Debug, Clone)]
pub struct DistrictCounts {
    /// `(district id, published count)`, in the districts' import order.
    pub districts: Vec<(i64, i64)>,
    /// Published submissions that fell in no district.
    pub outside: i64,
}

impl DistrictCounts {
    /// The counts as published under threshold `k`: one per district, then the outside cell.
    pub fn published(&self, k: i64) -> Suppressed {
        let mut counts: Vec<i64> = self.districts.iter().map(|(_, c)| *c).collect();
        counts.push(self.outside);
        suppress(&counts, k)
    }
}

/// Reads the maintained counters of campaign `campaign_id`.
pub async fn district_counts(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
) -> ApiResult<DistrictCounts> {
    let rows: Vec<(Option<i64>, i64)> = sqlx::query_as(
        "SELECT d.id, COALESCE(c.published, 0)::bigint
         FROM districts d
         LEFT JOIN (SELECT district_id, sum(published) AS published FROM district_counts
                    WHERE campaign_id = $1 GROUP BY district_id) c ON c.district_id = d.id
         WHERE d.campaign_id = $1
         UNION ALL
         SELECT NULL, COALESCE(sum(published), 0)::bigint FROM district_counts
         WHERE campaign_id = $1 AND district_id IS NULL
         ORDER BY 1 NULLS LAST",
    )
    .bind(campaign_id)
    .fetch_all(db)
    .await?;
    let mut counts = DistrictCounts {
        districts: Vec::new(),
        outside: 0,
    };
    for (district, count) in rows {
        match district {
            Some(id) => counts.districts.push((id, count)),
            None => counts.outside = count,
        }
    }
    Ok(counts)
}

/// Adds `delta` published submissions to `district_id` (or to "outside every district").
/// Spread over a few shard rows so that concurrent writers rarely wait on one row lock.
pub async fn add_published(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
    district_id: Option<i64>,
    delta: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO district_counts (campaign_id, district_id, shard, published)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT ON CONSTRAINT district_counts_key
         DO UPDATE SET published = district_counts.published + EXCLUDED.published",
    )
    .bind(campaign_id)
    .bind(district_id)
    .bind(random_shard())
    .bind(delta)
    .execute(db)
    .await?;
    Ok(())
}

/// Number of counter rows per district.
pub const SHARDS: i16 = 8;

/// A shard to write a counter change to.
pub fn random_shard() -> i16 {
    rand::random_range(0..SHARDS)
}

/// Rebuilds the counters of a campaign from its submissions (after districts change).
pub async fn rebuild(db: &mut sqlx::PgConnection, campaign_id: i64) -> ApiResult<()> {
    sqlx::query("DELETE FROM district_counts WHERE campaign_id = $1")
        .bind(campaign_id)
        .execute(&mut *db)
        .await?;
    sqlx::query(
        "INSERT INTO district_counts (campaign_id, district_id, shard, published)
         SELECT campaign_id, district_id, 0, count(*) FROM submissions
         WHERE campaign_id = $1 AND status = 'published'
         GROUP BY campaign_id, district_id",
    )
    .bind(campaign_id)
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

    #[test]
    fn counts_at_or_above_k_are_shown() {
        let s = suppress(&[5, 10, 7], 5);
        assert_eq!(shown(&s), [Some(5), Some(10), Some(7)]);
        assert_eq!(s.total, PublishedCount::shown(22));
    }

    #[test]
    fn a_single_small_cell_takes_the_next_smallest_with_it() {
        // Showing 10, 7 and the total 19 would reveal the 2.
        let s = suppress(&[2, 10, 7], 5);
        assert_eq!(shown(&s), [None, Some(10), None]);
        assert!(s.cells[0].withheld && s.cells[2].withheld);
        assert_eq!(s.total.count, Some(19));
    }

    #[test]
    fn small_cells_whose_sum_is_below_k_take_more_cells() {
        let s = suppress(&[1, 2, 10, 8, 30], 5);
        assert_eq!(shown(&s), [None, None, Some(10), None, Some(30)]);
    }

    #[test]
    fn zeros_need_no_protection_but_are_never_shown_as_zero() {
        let s = suppress(&[0, 0, 12, 9], 5);
        assert_eq!(shown(&s), [None, None, Some(12), Some(9)]);
    }

    #[test]
    fn a_small_total_is_withheld() {
        let s = suppress(&[1, 2], 5);
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
                    let s = suppress(&counts, k);
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
