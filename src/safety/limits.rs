//! Rate limits on submission writes, per client and per campaign (GCRA, from `governor`).
//!
//! Every POST, PATCH or DELETE on a campaign's submissions, and every challenge request, takes
//! one cell from its client's bucket and then from its campaign's. A refused request gets a 429
//! naming the limit, with `Retry-After` in seconds. Limits are per instance: with N instances
//! behind a balancer a client gets up to N times its allowance.

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

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

struct Limit<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    per_minute: u32,
    burst: u32,
}

impl<K: std::hash::Hash + Eq + Clone> Limit<K> {
    fn new(per_minute: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_minute)?;
        let burst = burst.max(1);
        let quota = Quota::per_minute(rate).allow_burst(NonZeroU32::new(burst)?);
        Some(Self {
            limiter: RateLimiter::keyed(quota),
            per_minute,
            burst,
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

/// The limiters of one instance.
#[derive(Clone)]
pub struct RateLimits {
    inner: Arc<Limiters>,
}

struct Limiters {
    per_ip: Option<Limit<ClientKey>>,
    per_campaign: Option<Limit<i64>>,
}

impl RateLimits {
    /// Limiters for `config`. Forgets idle clients every minute, while the limiters are in use.
    pub fn new(config: RateLimitConfig) -> Self {
        let inner = Arc::new(Limiters {
            per_ip: Limit::new(config.per_ip_per_minute, config.per_ip_burst),
            per_campaign: Limit::new(
                config.per_campaign_per_minute,
                config.per_campaign_per_minute.div_ceil(6),
            ),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(forget_idle(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    /// Takes one write from `client`'s allowance, then from campaign `campaign_id`'s.
    pub fn check(&self, client: ClientKey, campaign_id: i64) -> Result<(), Limited> {
        if let Some(limit) = &self.inner.per_ip {
            limit.check(&client).map_err(|retry_after| {
                metrics::counter!("civicmap_rate_limited_total", "scope" => "client").increment(1);
                Limited {
                detail: format!(
                    "too many submissions from this connection: at most {} per minute, {} at once; retry in {retry_after} s",
                    limit.per_minute, limit.burst
                ),
                retry_after,
            }})?;
        }
        if let Some(limit) = &self.inner.per_campaign {
            limit
                .check(&campaign_id)
                .map_err(|retry_after| {
                    metrics::counter!("civicmap_rate_limited_total", "scope" => "campaign").increment(1);
                    Limited {
                    detail: format!(
                        "too many submissions to this campaign right now: at most {} per minute from everyone together; retry in {retry_after} s",
                        limit.per_minute
                    ),
                    retry_after,
                }})?;
        }
        Ok(())
    }
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

/// Drops the state of clients and campaigns whose buckets are full again, so that memory
/// follows the number of recent writers, not of all writers ever.
async fn forget_idle(limiters: Weak<Limiters>) {
    let mut interval = tokio::time::interval(Duration::from_secs(60));
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(limiters) = limiters.upgrade() else {
            return;
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_gets_its_burst_then_waits() {
        let limits = RateLimits::new(RateLimitConfig {
            per_ip_per_minute: 6,
            per_ip_burst: 3,
            per_campaign_per_minute: 0,
        });
        let a = ClientKey::from("192.0.2.1".parse::<std::net::IpAddr>().unwrap());
        let b = ClientKey::from("192.0.2.2".parse::<std::net::IpAddr>().unwrap());
        for _ in 0..3 {
            limits.check(a, 1).unwrap();
        }
        match limits.check(a, 1) {
            Err(Limited {
                detail,
                retry_after,
            }) => {
                assert!((1..=10).contains(&retry_after), "{retry_after}");
                assert!(detail.contains("6 per minute"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        limits.check(b, 1).unwrap();
    }

    #[tokio::test]
    async fn a_campaign_limit_applies_to_everyone_together_and_zero_is_off() {
        let limits = RateLimits::new(RateLimitConfig {
            per_ip_per_minute: 0,
            per_ip_burst: 0,
            per_campaign_per_minute: 12,
        });
        let client = |i: u8| ClientKey::from(std::net::IpAddr::from([192, 0, 2, i]));
        limits.check(client(1), 1).unwrap();
        limits.check(client(2), 1).unwrap();
        assert!(matches!(limits.check(client(3), 1), Err(Limited { .. })));
        limits.check(client(3), 2).unwrap();
    }
}
