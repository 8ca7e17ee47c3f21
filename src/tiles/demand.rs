//! The counts of the `demand` layer: the public grid's cells, merged by powers of two for lower
//! zooms, protected under the campaign's k as one tree.
//!
//! A merged cell is the sum of its four children, so publishing every level as it is would let
//! anyone subtract the published children from their parent and recover a small cell. The
//! whole pyramid, from the grid's cells up to one cell holding everything under the published
//! total, is protected at once with [`protect_tree`]: no cell below k is ever published, and no
//! withheld cell can be recovered from the cells of other zooms. Withheld cells are left out of
//! the tiles. The pyramid is built once per campaign data version and shared by every tile.

use std::collections::HashMap;

use sqlx::PgPool;

use crate::aggregates::Tally;
use crate::aggregates::protect::protect_tree;
use crate::http::error::ApiResult;

/// Levels of the pyramid: level `l` merges 2^l × 2^l grid cells (`Aggregation::factor`).
pub const LEVELS: u32 = 41;

/// Published counts of the merged cells, by level and cell.
#[derive(Debug, Default)]
pub struct Pyramid {
    published: HashMap<(u32, i64, i64), i64>,
}

impl Pyramid {
    /// Protects the counts of `cells` (grid cell → published submissions and their distinct
    /// contributors); `total_withheld` says whether the campaign's total is withheld.
    pub fn protect(cells: &[(i64, i64, Tally)], total_withheld: bool, k: i64) -> Self {
        let mut values: Vec<Tally> = vec![cells.iter().map(|c| c.2).sum()];
        let mut parents: Vec<Option<usize>> = vec![None];
        let mut keys: Vec<(u32, i64, i64)> = vec![(LEVELS, 0, 0)];
        // Level by level from the top, so that parents come first.
        let mut levels: Vec<HashMap<(i64, i64), Tally>> = Vec::with_capacity(LEVELS as usize);
        let mut level: HashMap<(i64, i64), Tally> = HashMap::new();
        for &(x, y, count) in cells {
            *level.entry((x, y)).or_default() += count;
        }
        for _ in 0..LEVELS {
            let mut up: HashMap<(i64, i64), Tally> = HashMap::new();
            for (&(x, y), &count) in &level {
                // `>> 1` is floor division by two, negative coordinates included.
                *up.entry((x >> 1, y >> 1)).or_default() += count;
            }
            levels.push(level);
            level = up;
        }
        let mut index: HashMap<(u32, i64, i64), usize> = HashMap::new();
        for l in (0..LEVELS).rev() {
            let mut cells: Vec<(&(i64, i64), &Tally)> = levels[l as usize].iter().collect();
            cells.sort_unstable_by_key(|(key, _)| **key);
            for (&(x, y), &count) in cells {
                let parent = if l + 1 == LEVELS {
                    0
                } else {
                    index[&(l + 1, x >> 1, y >> 1)]
                };
                index.insert((l, x, y), values.len());
                values.push(count);
                parents.push(Some(parent));
                keys.push((l, x, y));
            }
        }
        let withheld = protect_tree(&values, &parents, total_withheld, k);
        let published = keys
            .into_iter()
            .zip(values)
            .zip(withheld)
            .skip(1)
            .filter(|(_, w)| !w)
            .map(|((key, count), _)| (key, count.count))
            .collect();
        Self { published }
    }

    /// Reads the campaign's grid cells, less one submission in each cell of `taken_out` (those
    /// published since the snapshot, with whether each is a first contribution), and protects
    /// them.
    pub async fn load(
        db: &PgPool,
        campaign_id: i64,
        taken_out: &[(i64, i64, bool)],
        total_withheld: bool,
        k: i64,
    ) -> ApiResult<Self> {
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT cx, cy, published, contributors FROM demand_cells
             WHERE campaign_id = $1 AND published > 0",
        )
        .bind(campaign_id)
        .fetch_all(db)
        .await?;
        let mut cells: HashMap<(i64, i64), Tally> = rows
            .into_iter()
            .map(|(x, y, count, contributors)| {
                (
                    (x, y),
                    Tally {
                        count,
                        contributors,
                    },
                )
            })
            .collect();
        for &(x, y, first) in taken_out {
            if let Some(n) = cells.get_mut(&(x, y)) {
                n.take_out(first);
            }
        }
        let cells: Vec<(i64, i64, Tally)> = cells
            .into_iter()
            .filter(|(_, n)| n.count > 0)
            .map(|((x, y), n)| (x, y, n))
            .collect();
        Ok(Self::protect(&cells, total_withheld, k))
    }

    /// The published cells of the level merging `factor` × `factor` grid cells, within the
    /// given ranges of merged columns and rows: `(column, row, count)`.
    pub fn cells(&self, factor: i64, ax: (i64, i64), ay: (i64, i64)) -> Vec<(i64, i64, i64)> {
        let level = factor.max(1).trailing_zeros();
        let mut found: Vec<(i64, i64, i64)> = self
            .published
            .iter()
            .filter(|((l, x, y), _)| {
                *l == level && (ax.0..=ax.1).contains(x) && (ay.0..=ay.1).contains(y)
            })
            .map(|(&(_, x, y), &count)| (x, y, count))
            .collect();
        found.sort_unstable();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cells_are_never_published_nor_recoverable_from_their_parent() {
        // Four grid cells under one parent: 6, 7, 2 and 9. The 2 is withheld, so another one
        // goes with it; the parent (24) is published.
        let cells = [(0, 0, 6), (1, 0, 7), (0, 1, 2), (1, 1, 9)]
            .map(|(x, y, n)| (x, y, Tally::distinct(n)));
        let pyramid = Pyramid::protect(&cells, false, 5);
        let base = pyramid.cells(1, (0, 1), (0, 1));
        assert_eq!(base.len(), 2, "{base:?}");
        assert!(base.iter().all(|c| c.2 >= 5));
        assert!(
            !base.iter().any(|c| c.2 == 6),
            "the smallest other cell is withheld"
        );
        assert_eq!(pyramid.cells(2, (0, 0), (0, 0)), [(0, 0, 24)]);
    }

    #[test]
    fn a_cell_padded_by_one_contributor_is_not_published() {
        // Cell (0, 0) holds 1 household and 4 probes from one client: 2 contributors. It is
        // withheld, and so is its smallest sibling, so that the parent does not give it away.
        let padded = Tally {
            count: 5,
            contributors: 2,
        };
        let cells = [
            (0, 0, padded),
            (1, 0, Tally::distinct(7)),
            (0, 1, Tally::distinct(6)),
            (1, 1, Tally::distinct(9)),
        ];
        let pyramid = Pyramid::protect(&cells, false, 5);
        let base = pyramid.cells(1, (0, 1), (0, 1));
        assert_eq!(base, [(1, 0, 7), (1, 1, 9)]);
        assert_eq!(pyramid.cells(2, (0, 0), (0, 0)), [(0, 0, 27)]);
    }

    #[test]
    fn a_withheld_total_keeps_the_whole_pyramid_out() {
        let pyramid = Pyramid::protect(&[(0, 0, Tally::distinct(3))], true, 5);
        for level in 0..LEVELS {
            assert!(
                pyramid
                    .cells(
                        1 << level,
                        (i64::MIN / 4, i64::MAX / 4),
                        (i64::MIN / 4, i64::MAX / 4)
                    )
                    .is_empty()
            );
        }
    }
}
