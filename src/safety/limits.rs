//! Rate limits on submission writes, per client and per campaign, shared by every instance
//! over one database.
//!
//! Every POST, PATCH or DELETE on a campaign's submissions, and every challenge request, takes
//! one cell from its client's bucket and then, if that was allowed, from its campaign's. A
//! refused request gets a 429 naming the limit, with `Retry-After` in whole seconds.
//!
//! Each limit is a GCRA (the generic cell rate algorithm, a token bucket kept as one instant):
//! with an emission interval T = 60 s / rate and a tolerance τ = (burst − 1) × T, a bucket is
//! its theoretical arrival time `tat`; a write at `now` is allowed when `tat − now ≤ τ`, and then
//! `tat` becomes `max(tat, now) + T`; a refused one waits `tat − τ − now`.
//!
//! Two steps, so that N instances allow the allowance once and a flood costs no round trip:
//! 1. **This instance's memory** (`governor`, the same GCRA): it sees only the writes that came
//!    through this instance, so it refuses only a client (or a campaign) whose writes *to this
//!    instance alone* exceeded the allowance; a client within its allowance summed over all
//!    instances is never refused here. It can only refuse earlier, never allow more. (A write
//!    it lets through has taken its cells here even if the database then refuses it, so a
//!    client over its allowance may be refused here a little longer than by the table alone.)
//! 2. **The database** ([`take`]): the table `rate_limits` (UNLOGGED) holds the `tat` of every
//!    bucket that is not full; one statement takes the client's cell and, only if it was
//!    allowed, the campaign's, each with an `INSERT … ON CONFLICT DO UPDATE` that decides under
//!    the row's lock. Instances agree because they share the rows and the database's clock.
//!
//! A client is stored as the HMAC of its key (IPv4 address or IPv6 /64) under the server
//! secret, never its address. A row whose bucket is full again (`tat` passed) means the same as
//! no row, and every instance deletes those every [`PURGE_EVERY`] (see docs/PRIVACY.md).
//!
//! When the database cannot be reached, a write that passes step 1 is answered 503 with
//! `Retry-After` (it fails closed: the write could not be stored anyway).

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::postgres::types::PgInterval;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use super::secret::ServerSecret;
use crate::http::client_ip::ClientKey;

/// Allowances of `civicmap serve` (`0` turns a limit off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Submission writes per client (IPv4 address or IPv6 /64) per minute; 0: no limit.
    pub per_ip_per_minute: u32,
    /// Writes a client may make at once before the per-minute rate applies.
    pub per_ip_burst: u32,
    /// Submission writes per campaign per minute, all clients together; 0: no limit. Bursts of
    /// ten seconds' worth.
    pub per_campaign_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 30,
            per_ip_burst: 10,
            per_campaign_per_minute: 6000,
        }
    }
}

/// How often each instance deletes the rows of full buckets.
pub const PURGE_EVERY: Duration = Duration::from_secs(10);

/// Which bucket refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client's own (its IPv4 address or IPv6 /64).
    Client,
    /// The campaign's, shared by every client.
    Campaign,
}

impl Scope {
    /// The name stored in `rate_limits.scope` and used as the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Campaign => "campaign",
        }
    }
}

/// One limit: a rate per minute and a burst, as a GCRA's interval and tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    per_minute: u32,
    burst: u32,
}

impl Allowance {
    /// `per_minute` writes a minute, `burst` at once (at least 1); `None` when `per_minute` is
    /// 0 (no limit).
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        (per_minute > 0).then_some(Self {
            per_minute,
            burst: burst.max(1),
        })
    }

    /// T: the time one write's cell takes to come back, in microseconds (rounded up, so that
    /// the shared limit never allows more than configured).
    pub fn interval_us(self) -> i64 {
        60_000_000_u64.div_ceil(u64::from(self.per_minute)) as i64
    }

    /// τ: how far ahead of now a bucket's `tat` may be for a write to be allowed, in
    /// microseconds: the cells of the burst beyond the first.
    pub fn tolerance_us(self) -> i64 {
        self.interval_us() * i64::from(self.burst - 1)
    }

    /// Whole seconds (at least 1) before a write refused while `tat` is `lead_us` ahead of now
    /// can be allowed: until `tat − τ`.
    pub fn retry_after(self, lead_us: i64) -> u64 {
        let wait_us = (lead_us - self.tolerance_us()).max(0) as u64;
        wait_us.div_ceil(1_000_000).max(1)
    }

    fn quota(self) -> Quota {
        let rate = NonZeroU32::new(self.per_minute).expect("a limit has a rate");
        let burst = NonZeroU32::new(self.burst).expect("a burst is at least 1");
        Quota::per_minute(rate).allow_burst(burst)
    }
}

/// One limit in this instance's memory: the first filter.
struct Limit<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    allowance: Allowance,
}

impl<K: std::hash::Hash + Eq + Clone> Limit<K> {
    fn new(allowance: Option<Allowance>) -> Option<Self> {
        let allowance = allowance?;
        Some(Self {
            limiter: RateLimiter::keyed(allowance.quota()),
            allowance,
        })
    }

    /// `Ok`, or the whole seconds to wait before the next cell.
    fn check(&self, key: &K) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs_f64().ceil() as u64).max(1)
        })
    }
}

/// The rate limits of an instance: its memory, and the shared table.
#[derive(Clone)]
pub struct RateLimits {
    inner: Arc<Limiters>,
}

struct Limiters {
    per_ip: Option<Limit<ClientKey>>,
    per_campaign: Option<Limit<i64>>,
    db: PgPool,
}

impl RateLimits {
    /// Limits for `config`, shared through `db`. While they are in use, forgets idle clients
    /// from memory every minute and deletes full buckets from the table every [`PURGE_EVERY`].
    pub fn new(config: RateLimitConfig, db: PgPool) -> Self {
        let inner = Arc::new(Limiters {
            per_ip: Limit::new(Allowance::new(
                config.per_ip_per_minute,
                config.per_ip_burst,
            )),
            per_campaign: Limit::new(Allowance::new(
                config.per_campaign_per_minute,
                config.per_campaign_per_minute.div_ceil(6),
            )),
            db,
        });
        let any = inner.per_ip.is_some() || inner.per_campaign.is_some();
        if any && tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(forget_idle(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    /// Takes one write from `client`'s allowance, then from campaign `campaign_id`'s: first in
    /// this instance's memory, then in the database. `Ok(Err(_))` names the limit that refused;
    /// `Err` is the database's (the write is then refused as unavailable).
    pub async fn check(
        &self,
        secret: &ServerSecret,
        client: ClientKey,
        campaign_id: i64,
    ) -> sqlx::Result<Result<(), Limited>> {
        let limits = &self.inner;
        if let Some(limit) = &limits.per_ip
            && let Err(retry_after) = limit.check(&client)
        {
            return Ok(Err(Limited::new(
                Scope::Client,
                limit.allowance,
                retry_after,
            )));
        }
        if let Some(limit) = &limits.per_campaign
            && let Err(retry_after) = limit.check(&campaign_id)
        {
            return Ok(Err(Limited::new(
                Scope::Campaign,
                limit.allowance,
                retry_after,
            )));
        }
        let client_bucket = limits
            .per_ip
            .as_ref()
            .map(|l| (secret.rate_limit_key(&client), l.allowance));
        let campaign_bucket = limits
            .per_campaign
            .as_ref()
            .map(|l| (campaign_id, l.allowance));
        if client_bucket.is_none() && campaign_bucket.is_none() {
            return Ok(Ok(()));
        }
        let refused = take(
            &limits.db,
            None,
            client_bucket.as_ref().map(|(key, a)| (key.as_slice(), *a)),
            campaign_bucket,
        )
        .await?;
        Ok(match refused {
            None => Ok(()),
            Some(Refused { scope, lead_us }) => {
                let allowance = match scope {
                    Scope::Client => client_bucket.map(|(_, a)| a),
                    Scope::Campaign => campaign_bucket.map(|(_, a)| a),
                }
                .expect("only a bucket that was asked for refuses");
                Err(Limited::new(
                    scope,
                    allowance,
                    allowance.retry_after(lead_us),
                ))
            }
        })
    }
}

/// What the database refused: the bucket, and how far ahead of now its `tat` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The client's bucket or the campaign's.
    pub scope: Scope,
    /// `tat − now` of the refusing bucket, in microseconds.
    pub lead_us: i64,
}

/// Takes one cell from the client bucket `client` (its keyed hash) and, if that was allowed,
/// from campaign `campaign`'s bucket, in one statement; `None` when every bucket asked for
/// allowed it. `at` is the instant of the write (tests); `None` is the database's `now()`,
/// which every instance shares.
pub async fn take(
    db: impl PgExecutor<'_>,
    at: Option<OffsetDateTime>,
    client: Option<(&[u8], Allowance)>,
    campaign: Option<(i64, Allowance)>,
) -> sqlx::Result<Option<Refused>> {
    let micros = |microseconds: i64| PgInterval {
        months: 0,
        days: 0,
        microseconds,
    };
    let (client_key, client_t, client_tau) = match client {
        Some((key, a)) => (Some(key), a.interval_us(), a.tolerance_us()),
        None => (None, 0, 0),
    };
    let (campaign_key, campaign_t, campaign_tau) = match campaign {
        Some((id, a)) => (
            Some(id.to_be_bytes().to_vec()),
            a.interval_us(),
            a.tolerance_us(),
        ),
        None => (None, 0, 0),
    };
    // In `DO UPDATE`, EXCLUDED.tat is now + T (the row a first write inserts), so
    // `EXCLUDED.tat − T + τ` is now + τ; every expression of SET reads the row as it was.
    let refused = sqlx::query!(
        r#"WITH instant AS (SELECT coalesce($1::timestamptz, now()) AS now),
        client AS (
            INSERT INTO rate_limits AS b (scope, key, tat, refused)
            SELECT 'client', $2::bytea, now + $3::interval, false FROM instant
            WHERE $2::bytea IS NOT NULL
            ON CONFLICT (scope, key) DO UPDATE SET
                refused = b.tat > EXCLUDED.tat - $3::interval + $4::interval,
                tat = CASE WHEN b.tat > EXCLUDED.tat - $3::interval + $4::interval THEN b.tat
                           ELSE greatest(b.tat + $3::interval, EXCLUDED.tat) END
            RETURNING refused, tat
        ),
        campaign AS (
            INSERT INTO rate_limits AS b (scope, key, tat, refused)
            SELECT 'campaign', $5::bytea, now + $6::interval, false FROM instant
            WHERE $5::bytea IS NOT NULL AND NOT EXISTS (SELECT FROM client WHERE refused)
            ON CONFLICT (scope, key) DO UPDATE SET
                refused = b.tat > EXCLUDED.tat - $6::interval + $7::interval,
                tat = CASE WHEN b.tat > EXCLUDED.tat - $6::interval + $7::interval THEN b.tat
                           ELSE greatest(b.tat + $6::interval, EXCLUDED.tat) END
            RETURNING refused, tat
        )
        SELECT 'client' AS "scope!", (extract(epoch FROM tat - now) * 1000000)::bigint AS "lead_us!"
        FROM client, instant WHERE refused
        UNION ALL
        SELECT 'campaign', (extract(epoch FROM tat - now) * 1000000)::bigint
        FROM campaign, instant WHERE refused"#,
        at,
        client_key,
        micros(client_t),
        micros(client_tau),
        campaign_key,
        micros(campaign_t),
        micros(campaign_tau),
    )
    .fetch_optional(db)
    .await?;
    Ok(refused.map(|row| Refused {
        scope: if row.scope == "client" {
            Scope::Client
        } else {
            Scope::Campaign
        },
        lead_us: row.lead_us,
    }))
}

/// Takes one cell from the bucket `key` of `scope` (a scope of its own, e.g. `signin`, whose
/// keys never meet the submission buckets'), at the database's `now()`: `None` when allowed,
/// else how far ahead of now the bucket's `tat` is, in microseconds (see
/// [`Allowance::retry_after`]). The same GCRA as [`take`], for limits with one bucket.
pub async fn take_one(
    db: impl PgExecutor<'_>,
    scope: &str,
    key: &[u8],
    allowance: Allowance,
) -> sqlx::Result<Option<i64>> {
    let micros = |microseconds: i64| PgInterval {
        months: 0,
        days: 0,
        microseconds,
    };
    let row = sqlx::query!(
        r#"INSERT INTO rate_limits AS b (scope, key, tat, refused)
        VALUES ($1, $2, now() + $3::interval, false)
        ON CONFLICT (scope, key) DO UPDATE SET
            refused = b.tat > EXCLUDED.tat - $3::interval + $4::interval,
            tat = CASE WHEN b.tat > EXCLUDED.tat - $3::interval + $4::interval THEN b.tat
                       ELSE greatest(b.tat + $3::interval, EXCLUDED.tat) END
        RETURNING refused, (extract(epoch FROM tat - now()) * 1000000)::bigint AS "lead_us!""#,
        scope,
        key,
        micros(allowance.interval_us()),
        micros(allowance.tolerance_us()),
    )
    .fetch_one(db)
    .await?;
    Ok(row.refused.then_some(row.lead_us))
}

/// Deletes the rows of buckets that are full again (their `tat` has passed): such a row means
/// the same as none.
pub async fn purge_full(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM rate_limits WHERE tat < now()")
        .execute(db)
        .await?
        .rows_affected())
}

/// A write refused by a rate limit: which limit, and when a retry can succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Limited {
    /// Which limit, and how long to wait.
    pub detail: String,
    /// Seconds before a retry can succeed.
    pub retry_after: u64,
}

impl Limited {
    /// The refusal of `scope`'s limit `allowance`, counted in the metrics. The same words
    /// whichever step refused.
    fn new(scope: Scope, allowance: Allowance, retry_after: u64) -> Self {
        metrics::counter!("civicmap_rate_limited_total", "scope" => scope.as_str()).increment(1);
        let detail = match scope {
            Scope::Client => format!(
                "too many submissions from this connection: at most {} per minute, {} at once; retry in {retry_after} s",
                allowance.per_minute, allowance.burst
            ),
            Scope::Campaign => format!(
                "too many submissions to this campaign right now: at most {} per minute from everyone together; retry in {retry_after} s",
                allowance.per_minute
            ),
        };
        Self {
            detail,
            retry_after,
        }
    }
}

/// Drops the memory of clients and campaigns whose buckets are full again every minute, so
/// that memory follows the number of recent writers, not of all writers ever; and deletes the
/// rows of full buckets from the shared table every [`PURGE_EVERY`].
async fn forget_idle(limiters: Weak<Limiters>) {
    let mut interval = tokio::time::interval(PURGE_EVERY);
    interval.tick().await;
    for round in 1_u64.. {
        interval.tick().await;
        let Some(limiters) = limiters.upgrade() else {
            return;
        };
        if let Err(e) = purge_full(&limiters.db).await {
            // The database's absence is reported where it matters (readiness, writes).
            tracing::debug!(error = %e, "cannot purge full rate-limit buckets");
        }
        if round % 6 == 0 {
            if let Some(l) = &limiters.per_ip {
                l.limiter.retain_recent();
                l.limiter.shrink_to_fit();
            }
            if let Some(l) = &limiters.per_campaign {
                l.limiter.retain_recent();
                l.limiter.shrink_to_fit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(config: RateLimitConfig) -> RateLimits {
        let db = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nowhere.invalid/none")
            .unwrap();
        RateLimits::new(config, db)
    }

    #[test]
    fn the_gcra_parameters_follow_the_rate_and_the_burst() {
        // 30 a minute, 10 at once: a cell every 2 s, the burst 9 cells ahead.
        let a = Allowance::new(30, 10).unwrap();
        assert_eq!(a.interval_us(), 2_000_000);
        assert_eq!(a.tolerance_us(), 18_000_000);
        // A rate that does not divide a minute is rounded toward fewer writes, never more.
        let b = Allowance::new(7, 1).unwrap();
        assert_eq!(b.interval_us(), 8_571_429);
        assert!(b.interval_us() * 7 >= 60_000_000);
        assert_eq!(b.tolerance_us(), 0);
        // A burst of 0 is a burst of 1; a rate of 0 is no limit.
        assert_eq!(Allowance::new(6, 0), Allowance::new(6, 1));
        assert_eq!(Allowance::new(0, 10), None);
    }

    #[test]
    fn a_refused_write_waits_until_its_bucket_lets_one_more_in() {
        let a = Allowance::new(30, 10).unwrap(); // T = 2 s, τ = 18 s
        // tat 20 s ahead: allowed again when it is 18 s ahead, in 2 s.
        assert_eq!(a.retry_after(20_000_000), 2);
        // Partial seconds are rounded up: retrying earlier would be refused again.
        assert_eq!(a.retry_after(18_000_001), 1);
        assert_eq!(a.retry_after(19_500_000), 2);
        // Never "retry in 0 s", even when the bucket has just come back.
        assert_eq!(a.retry_after(18_000_000), 1);
        assert_eq!(a.retry_after(0), 1);
        // One a minute, no burst: a write just made waits the whole minute.
        assert_eq!(Allowance::new(1, 1).unwrap().retry_after(60_000_000), 60);
    }

    #[tokio::test]
    async fn a_client_gets_its_burst_in_memory_then_waits() {
        let limits = memory(RateLimitConfig {
            per_ip_per_minute: 6,
            per_ip_burst: 3,
            per_campaign_per_minute: 0,
        });
        let limit = limits.inner.per_ip.as_ref().unwrap();
        let a = ClientKey::from("192.0.2.1".parse::<std::net::IpAddr>().unwrap());
        let b = ClientKey::from("192.0.2.2".parse::<std::net::IpAddr>().unwrap());
        for _ in 0..3 {
            limit.check(&a).unwrap();
        }
        let retry_after = limit.check(&a).unwrap_err();
        assert!((1..=10).contains(&retry_after), "{retry_after}");
        limit.check(&b).unwrap();
        let detail = Limited::new(Scope::Client, limit.allowance, retry_after).detail;
        assert!(detail.contains("6 per minute, 3 at once"), "{detail}");
    }

    #[tokio::test]
    async fn a_campaign_limit_in_memory_applies_to_everyone_together_and_zero_is_off() {
        let limits = memory(RateLimitConfig {
            per_ip_per_minute: 0,
            per_ip_burst: 0,
            per_campaign_per_minute: 12,
        });
        assert!(limits.inner.per_ip.is_none());
        let limit = limits.inner.per_campaign.as_ref().unwrap();
        assert_eq!(limit.allowance, Allowance::new(12, 2).unwrap());
        limit.check(&1).unwrap();
        limit.check(&1).unwrap();
        assert!(limit.check(&1).is_err());
        limit.check(&2).unwrap();
    }

    #[tokio::test]
    async fn with_every_limit_off_nothing_is_asked_of_the_database() {
        let limits = memory(RateLimitConfig {
            per_ip_per_minute: 0,
            per_ip_burst: 10,
            per_campaign_per_minute: 0,
        });
        let secret = ServerSecret::from_bytes([1; 32]);
        let client = ClientKey::from(std::net::IpAddr::from([192, 0, 2, 1]));
        // The pool points nowhere: any query would fail.
        for _ in 0..100 {
            assert_eq!(limits.check(&secret, client, 1).await.unwrap(), Ok(()));
        }
    }
}
