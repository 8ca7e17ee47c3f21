//! The counting rule, written once: how submissions enter and leave the maintained counters of
//! district totals.
//!
//! Every statement that changes what is counted (storing a batch, a correction, an erasure, a
//! moderation decision, a bulk import, a rebuild after districts change) builds a relation of
//! the rows to count, with the columns
//!
//! | column | meaning |
//! |---|---|
//! | `campaign_id`, `district_id`, `h3` | where the submission is counted (`h3` unused here: the relation's shape is shared) |
//! | `first_contribution` | whether it counts toward k as a distinct contributor ([`super::Tally`]) |
//! | `n` (`int`) | +1 to count it, −1 to take it out |
//!
//! and appends the CTEs below to its `WITH`, so that the counters' columns, their upserts and
//! the data version (`district_counts.changes`, one per counted change) are written here only.
//! They are macros because SQL text must be a literal: `concat!` joins them at compile time.
//!
//! Each upsert takes its rows' locks in key order (`ORDER BY`): two statements counting into
//! the same cells concurrently then wait for each other in the same order and never deadlock
//! (`benches/submissions-load.sh` found the deadlock when the order was left to the planner).

/// CTE `counted_districts`: adds the rows of relation `$rows` (see the module) to
/// `district_counts` on shard `$shard` (an SQL expression), moving the data version by one
/// per row.
macro_rules! count_districts {
    ($rows:literal, $shard:literal) => {
        concat!(
            "counted_districts AS (
                INSERT INTO district_counts (campaign_id, district_id, shard, published, changes, contributors)
                SELECT campaign_id, district_id, ",
            $shard,
            ", sum(n), sum(abs(n)), COALESCE(sum(n) FILTER (WHERE first_contribution), 0)
                FROM ",
            $rows,
            " GROUP BY campaign_id, district_id
                ORDER BY campaign_id, district_id
                ON CONFLICT ON CONSTRAINT district_counts_key
                DO UPDATE SET published = district_counts.published + EXCLUDED.published,
                              changes = district_counts.changes + EXCLUDED.changes,
                              contributors = district_counts.contributors + EXCLUDED.contributors)"
        )
    };
}

/// The counting of relation `$rows` on shard `$shard`: the CTE `counted_districts`. (Figures
/// finer than a district are not counters: releases measure the submissions themselves, see
/// [`super::release`].)
macro_rules! count {
    ($rows:literal, $shard:literal) => {
        $crate::figures::counting::count_districts!($rows, $shard)
    };
}

pub(crate) use {count, count_districts};
