//! Read replicas: PostgreSQL streaming standbys (`--replica-url`, repeatable) that take the
//! read-only work on published data off the primary: aggregates, time series, the districts
//! layer, tiles' data loads and raw exports. Writes, the submitter's own reads, staff and
//! token checks, releases and the versions that decide freshness stay on the primary.
//!
//! Two guards keep a replica from serving old data:
//!
//! - **Lag bound.** Every [`PROBE`], the primary's WAL position is sampled, and each replica's
//!   replay position read. A replica's lag is the age of the newest primary sample it has
//!   replayed: it holds every transaction committed before that instant. A replica whose lag
//!   exceeds `--replica-max-lag`, that does not answer, or that answers too slowly is skipped
//!   until a probe finds it back within the bound.
//! - **Versions.** Public reads are built for the versions the primary announced
//!   ([`crate::figures::watch`]) and kept under them. Before a replica builds one, it must
//!   hold at least those versions of the campaign (one query, remembered per replica: a
//!   replica never goes back), else the primary builds it. So a figure kept under a version is
//!   never older than that version, however far behind a replica is, and a write is visible
//!   through a replica-served read as soon as it is through the primary.
//!
//! A replica that fails during a read costs that read a 503 with `Retry-After`; the next reads
//! go elsewhere within one probe. Without replicas, every read uses the primary's pool.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

/// How often the primary's WAL position and each replica's replay position are read.
pub const PROBE: Duration = Duration::from_millis(250);

/// The default `--replica-max-lag`.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(2);

/// Longest a probe or a version check waits for a replica before counting it away.
const PATIENCE: Duration = Duration::from_secs(1);

/// Connections per replica pool.
const REPLICA_CONNECTIONS: u32 = 10;

/// The replicas of this instance and the primary it falls back to (cheap to clone).
#[derive(Clone)]
pub struct Replicas(Arc<Inner>);

struct Inner {
    primary: PgPool,
    members: Vec<Member>,
    next: AtomicUsize,
    max_lag: Duration,
}

struct Member {
    /// `replica 1`, `replica 2`…: in logs and metrics (never the URL, which may hold a
    /// password).
    name: String,
    pool: PgPool,
    usable: AtomicBool,
    /// Milliseconds, `u64::MAX` while unknown.
    lag_ms: AtomicU64,
    reads: AtomicU64,
    /// The versions (settings, data) each campaign was last found at on this replica.
    holds: Mutex<HashMap<i64, (i64, i64)>>,
}

/// What a replica looks like to this instance now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `replica 1`, `replica 2`… in the order of `--replica-url`.
    pub name: String,
    /// Within the lag bound and answering: reads may go to it.
    pub usable: bool,
    /// Its lag at the last probe, if known.
    pub lag: Option<Duration>,
    /// Reads it was given since this instance started.
    pub reads: u64,
}

impl Replicas {
    /// Pools over `replicas` (none: every read goes to `primary`), probed every [`PROBE`] by a
    /// task on the current Tokio runtime that ends when the last clone is dropped.
    pub fn start(primary: PgPool, replicas: &[PgConnectOptions], max_lag: Duration) -> Self {
        let members = replicas
            .iter()
            .enumerate()
            .map(|(i, options)| Member {
                name: format!("replica {}", i + 1),
                pool: super::replica_pool(options.clone(), REPLICA_CONNECTIONS),
                usable: AtomicBool::new(false),
                lag_ms: AtomicU64::new(u64::MAX),
                reads: AtomicU64::new(0),
                holds: Mutex::default(),
            })
            .collect::<Vec<_>>();
        let replicas = Self(Arc::new(Inner {
            primary,
            members,
            next: AtomicUsize::new(0),
            max_lag,
        }));
        if !replicas.0.members.is_empty() {
            tokio::spawn(probe(Arc::downgrade(&replicas.0)));
        }
        replicas
    }

    /// The pool to read `campaign_id`'s published data from, at least at the settings and
    /// data versions given: a usable replica that holds them (in turn), else the primary.
    pub async fn at(&self, campaign_id: i64, config_version: i64, data_version: i64) -> PgPool {
        let inner = &*self.0;
        let count = inner.members.len();
        let first = if count == 0 {
            0
        } else {
            inner.next.fetch_add(1, Ordering::Relaxed)
        };
        for i in 0..count {
            let member = &inner.members[(first + i) % count];
            if !member.usable.load(Ordering::Relaxed) {
                continue;
            }
            if member
                .holds(campaign_id, config_version, data_version)
                .await
            {
                member.reads.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("civicmap_database_reads_total", "on" => "replica").increment(1);
                return member.pool.clone();
            }
        }
        metrics::counter!("civicmap_database_reads_total", "on" => "primary").increment(1);
        inner.primary.clone()
    }

    /// Each replica's state, in the order of `--replica-url`.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        self.0
            .members
            .iter()
            .map(|member| {
                let lag_ms = member.lag_ms.load(Ordering::Relaxed);
                ReplicaStatus {
                    name: member.name.clone(),
                    usable: member.usable.load(Ordering::Relaxed),
                    lag: (lag_ms != u64::MAX).then(|| Duration::from_millis(lag_ms)),
                    reads: member.reads.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

impl Member {
    /// Whether this replica holds `campaign_id` at least at the versions given: from memory
    /// when it already did, else one query. A replica that fails to answer is set aside until
    /// the next probe finds it back.
    async fn holds(&self, campaign_id: i64, config_version: i64, data_version: i64) -> bool {
        let covers = |(c, d): (i64, i64)| c >= config_version && d >= data_version;
        let known = self.holds.lock().unwrap().get(&campaign_id).copied();
        if known.is_some_and(covers) {
            return true;
        }
        match tokio::time::timeout(PATIENCE, crate::figures::versions(&self.pool, campaign_id))
            .await
        {
            Ok(Ok(versions)) => {
                self.holds.lock().unwrap().insert(campaign_id, versions);
                covers(versions)
            }
            Ok(Err(sqlx::Error::RowNotFound)) => false,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {PATIENCE:?}"),
                };
                tracing::warn!(replica = %self.name, %error, "a replica failed a version check: reading from the primary");
                self.set_aside();
                false
            }
        }
    }

    fn set_aside(&self) {
        self.usable.store(false, Ordering::Relaxed);
        self.lag_ms.store(u64::MAX, Ordering::Relaxed);
        metrics::gauge!("civicmap_replica_usable", "replica" => self.name.clone()).set(0.0);
    }
}

/// The primary's WAL positions of the last moments, oldest first.
#[derive(Default)]
struct Samples(VecDeque<(Instant, u64)>);

impl Samples {
    fn push(&mut self, at: Instant, lsn: u64, keep: Duration) {
        self.0.push_back((at, lsn));
        while self
            .0
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > keep)
        {
            self.0.pop_front();
        }
    }

    /// How far behind a server that replayed up to `replayed` is at `now`: the age of the
    /// newest sample it has reached. `None` when it has reached none of those kept (it is
    /// further behind than they go back, or nothing was sampled yet).
    fn lag(&self, replayed: u64, now: Instant) -> Option<Duration> {
        self.0
            .iter()
            .rev()
            .find(|(_, lsn)| *lsn <= replayed)
            .map(|(t, _)| now.saturating_duration_since(*t))
    }
}

async fn probe(inner: Weak<Inner>) {
    let mut samples = Samples::default();
    let mut interval = tokio::time::interval(PROBE);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let keep = inner.max_lag + 4 * PROBE;
        // Sampled before the replicas are read: a replica that reached it holds every
        // transaction committed before this instant.
        let sampled_at = Instant::now();
        match tokio::time::timeout(
            PATIENCE,
            // The WAL position as a number of bytes.
            sqlx::query_scalar!(r#"SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8 AS "lsn!""#)
                .fetch_one(&inner.primary),
        )
        .await
        {
            Ok(Ok(lsn)) => samples.push(sampled_at, lsn as u64, keep),
            // The primary away: no new sample, so each replica's lag grows from the last one
            // it replayed, and past the bound it is skipped too (while the primary is away,
            // what needs it answers 503 anyway; a replica serves again once both answer).
            Ok(Err(error)) => tracing::debug!(%error, "cannot read the primary's WAL position"),
            Err(_) => tracing::debug!("the primary's WAL position took too long"),
        }
        let positions = futures_util::future::join_all(inner.members.iter().map(|member| {
            tokio::time::timeout(
                PATIENCE,
                // Whether it replays a primary's WAL, and how far it has.
                sqlx::query!(
                    r#"SELECT pg_is_in_recovery() AS "recovering!",
                        (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8 AS replayed"#
                )
                .fetch_one(&member.pool),
            )
        }))
        .await;
        let now = Instant::now();
        for (member, position) in inner.members.iter().zip(positions) {
            let position = position.map(|row| row.map(|row| (row.recovering, row.replayed)));
            let lag = match position {
                Ok(Ok((true, Some(replayed)))) => samples.lag(replayed as u64, now),
                // Promoted (no longer a standby): nothing left to replay. Reads stay
                // version-checked, so a server that is not a copy of the primary serves none.
                Ok(Ok((false, _))) => Some(Duration::ZERO),
                Ok(Ok((true, None))) => None,
                Ok(Err(error)) => {
                    if member.usable.load(Ordering::Relaxed) {
                        tracing::warn!(replica = %member.name, %error, "a replica stopped answering: reading from the primary");
                    }
                    None
                }
                Err(_) => None,
            };
            let usable = lag.is_some_and(|lag| lag <= inner.max_lag);
            let was = member.usable.swap(usable, Ordering::Relaxed);
            if was != usable {
                match lag {
                    Some(lag) if usable => {
                        tracing::info!(replica = %member.name, ?lag, "a replica is within the lag bound: reading from it")
                    }
                    Some(lag) => {
                        tracing::warn!(replica = %member.name, ?lag, bound = ?inner.max_lag, "a replica lags beyond the bound: reading from the primary")
                    }
                    None => {}
                }
            }
            member.lag_ms.store(
                lag.map_or(u64::MAX, |lag| lag.as_millis() as u64),
                Ordering::Relaxed,
            );
            let labels = [("replica", member.name.clone())];
            metrics::gauge!("civicmap_replica_usable", &labels).set(f64::from(u8::from(usable)));
            if let Some(lag) = lag {
                metrics::gauge!("civicmap_replica_lag_seconds", &labels).set(lag.as_secs_f64());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_the_age_of_the_newest_position_replayed() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut samples = Samples::default();
        let keep = Duration::from_secs(3);
        for (ms, lsn) in [(0, 100), (250, 100), (500, 180), (750, 300)] {
            samples.push(at(ms), lsn, keep);
        }
        let now = at(800);
        // Caught up with the last sample.
        assert_eq!(samples.lag(300, now), Some(Duration::from_millis(50)));
        assert_eq!(samples.lag(1_000, now), Some(Duration::from_millis(50)));
        // Between two samples: only the earlier one is held.
        assert_eq!(samples.lag(200, now), Some(Duration::from_millis(300)));
        // An idle primary: the same position sampled twice, the newest counts.
        assert_eq!(samples.lag(150, now), Some(Duration::from_millis(550)));
        // Behind every sample kept: further behind than they go back.
        assert_eq!(samples.lag(99, now), None);
    }

    #[test]
    fn samples_older_than_kept_are_dropped() {
        let start = Instant::now();
        let mut samples = Samples::default();
        let keep = Duration::from_secs(1);
        for i in 0..20u64 {
            samples.push(start + Duration::from_millis(250 * i), i, keep);
        }
        // 4.75 s sampled, 1 s kept: the samples of 3.75 s to 4.75 s.
        assert_eq!(samples.0.len(), 5);
        assert_eq!(samples.lag(14, start + Duration::from_millis(4_750)), None);
        assert_eq!(
            samples.lag(15, start + Duration::from_millis(4_750)),
            Some(Duration::from_secs(1))
        );
    }
}
