//! Published figures, with one owner: which submissions count and where
//! ([`counting`]), the district totals and their protection ([`districts`]: exact, live,
//! withheld below k with complementary suppression), and everything finer than a district
//! (the map's hexagons, splits by answer, sums, the time series), released with differential
//! privacy ([`release`], [`estimates`]) under a budget per contribution ([`budget`]). Staff
//! read exact figures ([`aggregate::exact`], [`series::exact`]).
//!
//! Every public door asks here: the districts layer and the tiles, the downloads, the report,
//! the notices. `crate::exports` formats what this module computes.
//!
//! How a contribution reaches the finer figures: it is counted by exactly one release (the
//! first one after it is published), which measures it once in every family with noise drawn
//! by OpenDP's exact sampler ([`noise`], [`mechanism`]) and adds the noisy figures to the
//! campaign's running sums. Nothing about it is measured again: neither a correction, nor
//! its erasure, nor any later release or download can spend more of its budget. What people
//! read is post-processed from those sums ([`estimates`]).

pub mod aggregate;
pub mod budget;
pub mod counting;
pub mod districts;
pub mod estimates;
pub mod http;
pub mod mechanism;
pub mod noise;
pub mod preview;
pub mod release;
pub mod series;
pub mod simulation;
pub mod watch;

#[cfg(test)]
mod attacks;

pub use districts::{
    DistrictCounts, PublishedCount, SHARDS, Suppressed, Tally, add_published, data_version,
    district_counts, fill_missing_h3, lock_writes, move_data_version, random_shard, rebuild,
    suppress, versions,
};
