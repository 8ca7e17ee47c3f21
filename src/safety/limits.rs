//! Rate limits of the citizens' doors, per client and per network prefix, and the campaign's
//! own allowance, shared by every instance over one database.
//!
//! Each door (submitting or changing a submission, asking for a proof-of-work challenge,
//! subscribing, confirming or unsubscribing) has buckets of its own, so that a flood at one door
//! takes nothing from another. A request takes one cell from its client's bucket (IPv4 address
//! or IPv6 /64), then from its networks' (IPv4 /24; IPv6 /56 and /48), which allow several
//! times a client's rate so that a household, a school or a town hall behind one prefix is not
//! refused, while the owner of a rented block cannot multiply its allowance by its addresses.
//! A refused request gets a 429 naming the limit, with `Retry-After` in whole seconds.
//!
//! The campaign's allowance is charged only by submissions that passed the origin guard,
//! validation and their client's limits ([`RateLimits::admit`]): a flood of empty challenges,
//! junk subscriptions or invalid submissions costs it nothing. When it runs out, the campaign
//! does not refuse citizens: it asks each submission for a proof of work
//! ([`crate::safety::pow`]), whose difficulty rises with the load, and lets a first contribution
//! from a new client through from a reserve. The console and `/metrics` say so ([`pressure`]).
//!
//! Each limit is a GCRA (the generic cell rate algorithm, a token bucket kept as one instant):
//! with an emission interval T = 60 s / rate and a tolerance τ = (burst − 1) × T, a bucket is
//! its theoretical arrival time `tat`; a request at `now` is allowed when `tat − now ≤ τ`, and
//! then `tat` becomes `max(tat, now) + T`; a refused one waits `tat − τ − now`.
//!
//! Two steps, so that N instances allow the allowance once and a flood costs no round trip:
//! 1. **This instance's memory** (`governor`, the same GCRA): it sees only the requests that
//!    came through this instance, so it refuses only a client (or a network) whose requests *to
//!    this instance alone* exceeded the allowance. It can only refuse earlier, never allow more.
//! 2. **The database** ([`take`]): the table `rate_limits` (UNLOGGED) holds the `tat` of every
//!    bucket that is not full; the function `take_cells` takes the buckets' cells in order,
//!    stopping at the first refusal, one `INSERT … ON CONFLICT DO UPDATE` each deciding under
//!    the row's lock, in one round trip. Instances agree because they share the rows and the
//!    database's clock.
//!
//! Reads (address search, and exports built on a cache miss) are limited per client and
//! network in memory only ([`RateLimits::check_read`]): they change nothing, and each instance
//! bounds its own work.
//!
//! A client or network is stored as the HMAC of its text under the server secret, never its
//! address. A row whose bucket is full again (`tat` passed) means the same as no row, and every
//! instance deletes those every [`PURGE_EVERY`] (see docs/PRIVACY.md).
//!
//! When the database cannot be reached, a write that passes step 1 is answered 503 with
//! `Retry-After` (it fails closed: the write could not be stored anyway).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::postgres::types::PgInterval;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use super::secret::ServerSecret;
use crate::http::client_ip::{ClientKey, Network};

/// Allowances of `civicmap serve` (`0` turns a limit off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Submission writes (and, each in its own bucket, challenges and confirmations) per
    /// client (IPv4 address or IPv6 /64) per minute; 0: no limit, and no network limit.
    pub per_ip_per_minute: u32,
    /// Writes a client may make at once before the per-minute rate applies.
    pub per_ip_burst: u32,
    /// Admitted submissions per campaign per minute, all clients together, before the campaign
    /// asks for proofs of work; 0: never. Bursts of ten seconds' worth.
    pub per_campaign_per_minute: u32,
    /// Subscription requests per client per minute (bursts of half that); 0: no limit.
    pub subscriptions_per_ip_per_minute: u32,
    /// Address searches per client per minute (bursts of a quarter of that); 0: no limit.
    pub searches_per_ip_per_minute: u32,
    /// Public reads that must be built (a cache miss) per client per minute (bursts of half
    /// that); 0: no limit.
    pub builds_per_ip_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 30,
            per_ip_burst: 10,
            per_campaign_per_minute: 6000,
            subscriptions_per_ip_per_minute: 6,
            searches_per_ip_per_minute: 120,
            builds_per_ip_per_minute: 60,
        }
    }
}

impl RateLimitConfig {
    /// Every limit off (tests, benchmarks of raw throughput).
    pub fn off() -> Self {
        Self {
            per_ip_per_minute: 0,
            per_ip_burst: 0,
            per_campaign_per_minute: 0,
            subscriptions_per_ip_per_minute: 0,
            searches_per_ip_per_minute: 0,
            builds_per_ip_per_minute: 0,
        }
    }
}

/// How often each instance deletes the rows of full buckets.
pub const PURGE_EVERY: Duration = Duration::from_secs(10);

/// A door of the citizens' writes, with buckets of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Door {
    /// Submitting, correcting or erasing a submission.
    Submit,
    /// Asking for a proof-of-work challenge.
    Challenge,
    /// Asking for e-mail notices.
    Subscribe,
    /// Confirming a subscription or unsubscribing.
    Confirm,
}

impl Door {
    /// The name of its buckets' scope (`submit/client`, `submit/24`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Challenge => "challenge",
            Self::Subscribe => "subscribe",
            Self::Confirm => "confirm",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Submit => "submissions",
            Self::Challenge => "proof-of-work challenges",
            Self::Subscribe => "subscription requests",
            Self::Confirm => "confirmations",
        }
    }
}

/// A public read whose work is limited per client and network (in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Read {
    /// An address search.
    Search,
    /// A public read built because no cached copy answered it (exports, feeds, figures).
    Build,
}

impl Read {
    fn as_str(self) -> &'static str {
        match self {
            Self::Search => "search",
            Self::Build => "build",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Search => "address searches",
            Self::Build => "downloads built on demand",
        }
    }
}

/// How many times a client's allowance a network gets: a /24 or a /56 is usually one
/// building, school or customer; a /48 a site.
fn network_factor(network: Network) -> u32 {
    match network {
        Network::Client => 1,
        Network::V4Slash24 | Network::V6Slash56 => 8,
        Network::V6Slash48 => 16,
    }
}

const NETWORKS: [Network; 4] = [
    Network::Client,
    Network::V4Slash24,
    Network::V6Slash56,
    Network::V6Slash48,
];

/// One limit: a rate per minute and a burst, as a GCRA's interval and tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    per_minute: u32,
    burst: u32,
    /// T, in microseconds (see [`Allowance::interval_us`]).
    interval_us: i64,
}

impl Allowance {
    /// `per_minute` writes a minute, `burst` at once (at least 1); `None` when `per_minute` is
    /// 0 (no limit).
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            per_minute,
            burst: burst.max(1),
            // Rounded up, so that the shared limit never allows more than configured.
            interval_us: 60_000_000_u64.div_ceil(u64::from(per_minute)) as i64,
        })
    }

    /// One request per `period`, no burst (in the database only: no per-minute rate to show).
    pub fn every(period: Duration) -> Self {
        Self {
            per_minute: 0,
            burst: 1,
            interval_us: i64::try_from(period.as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// This allowance `factor` times over (a network's, from its clients').
    fn times(self, factor: u32) -> Self {
        let per_minute = self.per_minute.saturating_mul(factor);
        Self::new(per_minute, self.burst.saturating_mul(factor)).unwrap_or(self)
    }

    /// T: the time one write's cell takes to come back, in microseconds.
    pub fn interval_us(self) -> i64 {
        self.interval_us
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

/// How often a client may come in from a campaign's reserve without a proof of work.
pub const RESERVE_EVERY: Duration = Duration::from_secs(600);

/// The lowest difficulty a campaign under pressure asks (a fraction of a second on a phone).
pub const PRESSURE_BASE: u8 = 16;
/// The highest it rises to by itself (a few seconds on a phone).
pub const PRESSURE_MAX: u8 = 22;
/// How long after its last refusal a campaign is still shown as under pressure.
pub const PRESSURE_QUIET: Duration = Duration::from_secs(120);
/// Each doubling of the campaign's backlog, in units of this, adds a bit of difficulty.
const BACKLOG_STEP_US: i64 = 10_000_000;
/// Proven submissions beyond the allowance are admitted on credit up to this backlog.
const MAX_BACKLOG_US: i64 = 20 * 60 * 1_000_000;

/// The difficulty a campaign asks when its bucket's `tat` is `lead_us` ahead of now: at least
/// [`PRESSURE_BASE`] (or its own setting), one more bit at each doubling of the backlog beyond
/// the burst, up to [`PRESSURE_MAX`].
pub fn pressure_difficulty(own: Option<u8>, lead_us: i64, allowance: Allowance) -> u8 {
    let backlog = (lead_us - allowance.tolerance_us()).max(0);
    let steps = (1.0 + backlog as f64 / BACKLOG_STEP_US as f64)
        .log2()
        .floor() as u8;
    let base = own.unwrap_or(0).max(PRESSURE_BASE);
    (base + steps).min(PRESSURE_MAX.max(base))
}

/// What a submission that passed every other check meets at its campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the campaign's allowance.
    Open,
    /// The allowance is spent: a proof of work of `difficulty` bits (or a first contribution
    /// from the reserve) gets in.
    Pressed { difficulty: u8 },
}

/// The rate limits of an instance: its memory, and the shared table.
#[derive(Clone)]
pub struct RateLimits {
    inner: Arc<Limiters>,
}

struct Limiters {
    doors: HashMap<(Door, Network), Limit<String>>,
    reads: HashMap<(Read, Network), Limit<String>>,
    campaign: Option<Allowance>,
    reserve: Option<Allowance>,
    /// The difficulty each campaign asked a moment ago (challenges are issued at it).
    asked: Mutex<HashMap<i64, (Instant, Option<u8>)>>,
    /// When this instance last recorded each campaign's pressure.
    noted: Mutex<HashMap<i64, Instant>>,
    db: PgPool,
}

impl RateLimits {
    /// Limits for `config`, shared through `db`. While they are in use, forgets idle clients
    /// from memory every minute and deletes full buckets from the table every [`PURGE_EVERY`].
    pub fn new(config: RateLimitConfig, db: PgPool) -> Self {
        let client = Allowance::new(config.per_ip_per_minute, config.per_ip_burst);
        let subscribe = Allowance::new(
            config.subscriptions_per_ip_per_minute,
            config.subscriptions_per_ip_per_minute.div_ceil(2),
        );
        let mut doors = HashMap::new();
        for (door, allowance) in [
            (Door::Submit, client),
            (Door::Challenge, client),
            (Door::Confirm, client),
            (Door::Subscribe, subscribe),
        ] {
            for network in NETWORKS {
                if let Some(limit) = Limit::new(allowance.map(|a| a.times(network_factor(network))))
                {
                    doors.insert((door, network), limit);
                }
            }
        }
        let mut reads = HashMap::new();
        for (read, per_minute, burst) in [
            (
                Read::Search,
                config.searches_per_ip_per_minute,
                config.searches_per_ip_per_minute.div_ceil(4),
            ),
            (
                Read::Build,
                config.builds_per_ip_per_minute,
                config.builds_per_ip_per_minute.div_ceil(2),
            ),
        ] {
            for network in NETWORKS {
                let allowance =
                    Allowance::new(per_minute, burst).map(|a| a.times(network_factor(network)));
                if let Some(limit) = Limit::new(allowance) {
                    reads.insert((read, network), limit);
                }
            }
        }
        let per_campaign = config.per_campaign_per_minute;
        let inner = Arc::new(Limiters {
            doors,
            reads,
            campaign: Allowance::new(per_campaign, per_campaign.div_ceil(6)),
            // A tenth of the campaign's rate, for first contributions once it is spent.
            reserve: Allowance::new(per_campaign.div_ceil(10), per_campaign.div_ceil(60)),
            asked: Mutex::default(),
            noted: Mutex::default(),
            db,
        });
        let any = !inner.doors.is_empty() || !inner.reads.is_empty() || inner.campaign.is_some();
        if any && tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(forget_idle(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    /// Takes one cell for `door` from `client`'s bucket and then from each of its networks':
    /// first in this instance's memory, then in the database. `Ok(Err(_))` names the limit
    /// that refused; `Err` is the database's (the request is then refused as unavailable).
    pub async fn check(
        &self,
        secret: &ServerSecret,
        door: Door,
        client: ClientKey,
    ) -> sqlx::Result<Result<(), Limited>> {
        let limits = &self.inner;
        let mut buckets = Vec::new();
        for (network, name) in client.networks() {
            let Some(limit) = limits.doors.get(&(door, network)) else {
                continue;
            };
            if let Err(retry_after) = limit.check(&name) {
                return Ok(Err(Limited::door(
                    door,
                    network,
                    &name,
                    limit.allowance,
                    retry_after,
                )));
            }
            buckets.push((network, name, limit.allowance));
        }
        if buckets.is_empty() {
            return Ok(Ok(()));
        }
        let scopes: Vec<String> = buckets
            .iter()
            .map(|(network, _, _)| format!("{}/{}", door.as_str(), network.as_str()))
            .collect();
        let keys: Vec<Vec<u8>> = buckets
            .iter()
            .map(|(_, name, _)| secret.rate_limit_key(name))
            .collect();
        let asked: Vec<Bucket> = buckets
            .iter()
            .zip(&scopes)
            .zip(&keys)
            .map(|(((_, _, allowance), scope), key)| Bucket {
                scope,
                key,
                allowance: *allowance,
            })
            .collect();
        Ok(match take(&limits.db, None, &asked).await? {
            None => Ok(()),
            Some(Refused { bucket, lead_us }) => {
                let (network, name, allowance) = &buckets[bucket];
                Err(Limited::door(
                    door,
                    *network,
                    name,
                    *allowance,
                    allowance.retry_after(lead_us),
                ))
            }
        })
    }

    /// Takes one cell for `read` from `client`'s and its networks' buckets in this instance's
    /// memory.
    pub fn check_read(&self, read: Read, client: ClientKey) -> Result<(), Limited> {
        for (network, name) in client.networks() {
            if let Some(limit) = self.inner.reads.get(&(read, network))
                && let Err(retry_after) = limit.check(&name)
            {
                return Err(Limited::read(
                    read,
                    network,
                    &name,
                    limit.allowance,
                    retry_after,
                ));
            }
        }
        Ok(())
    }

    /// Takes one cell from campaign `campaign_id`'s allowance for a submission that passed
    /// every other check. When it is spent, says how much work is asked instead; with
    /// `proven`, the submission brought that work and is admitted on credit (the backlog that
    /// raises the difficulty), up to 20 minutes of backlog.
    pub async fn admit(
        &self,
        campaign_id: i64,
        own: Option<u8>,
        proven: bool,
    ) -> sqlx::Result<Admission> {
        let Some(allowance) = self.inner.campaign else {
            return Ok(Admission::Open);
        };
        let key = campaign_id.to_be_bytes();
        let row = sqlx::query!(
            r#"INSERT INTO rate_limits AS b (scope, key, tat, refused)
            VALUES ('campaign', $1, now() + $2::interval, false)
            ON CONFLICT (scope, key) DO UPDATE SET
                refused = b.tat > EXCLUDED.tat - $2::interval + $3::interval,
                tat = CASE
                    WHEN b.tat <= EXCLUDED.tat - $2::interval + $3::interval
                        THEN greatest(b.tat + $2::interval, EXCLUDED.tat)
                    WHEN $4 THEN least(b.tat + $2::interval,
                                       EXCLUDED.tat - $2::interval + $3::interval + $5::interval)
                    ELSE b.tat END
            RETURNING refused, (extract(epoch FROM tat - now()) * 1000000)::bigint AS "lead_us!""#,
            key.as_slice(),
            micros(allowance.interval_us()),
            micros(allowance.tolerance_us()),
            proven,
            micros(MAX_BACKLOG_US),
        )
        .fetch_one(&self.inner.db)
        .await?;
        if !row.refused {
            return Ok(Admission::Open);
        }
        let difficulty = pressure_difficulty(own, row.lead_us, allowance);
        self.remember(campaign_id, Some(difficulty));
        self.note_pressure(campaign_id, difficulty).await;
        Ok(Admission::Pressed { difficulty })
    }

    /// Whether a submission from `client` without a proof of work may come in from campaign
    /// `campaign_id`'s reserve (and takes its cells): the client's first in [`RESERVE_EVERY`]
    /// (its own bucket, so that the answer depends on nobody else's contributions, whenever
    /// made), within the reserve's rate (a tenth of the campaign's).
    pub async fn take_reserve(
        &self,
        secret: &ServerSecret,
        campaign_id: i64,
        client: ClientKey,
    ) -> sqlx::Result<bool> {
        let Some(reserve) = self.inner.reserve else {
            return Ok(true);
        };
        let client_key = secret.rate_limit_key(&format!("{campaign_id} {client}"));
        let campaign_key = campaign_id.to_be_bytes();
        let buckets = [
            Bucket {
                scope: "reserve/client",
                key: &client_key,
                allowance: Allowance::every(RESERVE_EVERY),
            },
            Bucket {
                scope: "reserve",
                key: &campaign_key,
                allowance: reserve,
            },
        ];
        Ok(take(&self.inner.db, None, &buckets).await?.is_none())
    }

    /// The difficulty campaign `campaign_id` asks right now because of pressure (`None` when
    /// it is not under pressure), as this instance saw it at most a second ago.
    pub async fn asked(&self, campaign_id: i64, own: Option<u8>) -> sqlx::Result<Option<u8>> {
        let Some(allowance) = self.inner.campaign else {
            return Ok(None);
        };
        if let Some((at, asked)) = self.lock_asked().get(&campaign_id).copied()
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(asked);
        }
        let key = campaign_id.to_be_bytes();
        let lead_us = sqlx::query_scalar!(
            r#"SELECT (extract(epoch FROM tat - now()) * 1000000)::bigint AS "lead_us!"
               FROM rate_limits WHERE scope = 'campaign' AND key = $1"#,
            key.as_slice(),
        )
        .fetch_optional(&self.inner.db)
        .await?;
        let asked = lead_us
            .filter(|lead| *lead > allowance.tolerance_us())
            .map(|lead| pressure_difficulty(own, lead, allowance));
        self.remember(campaign_id, asked);
        Ok(asked)
    }

    fn lock_asked(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (Instant, Option<u8>)>> {
        self.inner.asked.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, campaign_id: i64, asked: Option<u8>) {
        self.lock_asked()
            .insert(campaign_id, (Instant::now(), asked));
    }

    /// Records that campaign `campaign_id` is under pressure, at most once a second per
    /// instance (the row is the same for every refused submission).
    async fn note_pressure(&self, campaign_id: i64, difficulty: u8) {
        {
            let mut noted = self.inner.noted.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match noted.get(&campaign_id) {
                Some(at) if now.duration_since(*at) < Duration::from_secs(1) => return,
                _ => noted.insert(campaign_id, now),
            };
        }
        let recorded = sqlx::query!(
            "INSERT INTO campaign_pressure AS p (campaign_id, since, last_seen, difficulty)
             VALUES ($1, now(), now(), $2)
             ON CONFLICT (campaign_id) DO UPDATE SET
                since = CASE WHEN p.last_seen < now() - $3::interval THEN now() ELSE p.since END,
                last_seen = now(), difficulty = $2",
            campaign_id,
            i16::from(difficulty),
            micros(PRESSURE_QUIET.as_micros() as i64),
        )
        .execute(&self.inner.db)
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, campaign_id, "cannot record a campaign's pressure");
        }
        tracing::info!(
            campaign_id,
            difficulty,
            "campaign under pressure: asking for proofs of work"
        );
    }
}

/// A campaign under pressure, as the console and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Pressure {
    /// Leading zero bits each submission's proof of work needs now.
    pub difficulty: u8,
    /// Since when (the pressure ends two minutes after its last refusal).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub since: OffsetDateTime,
}

/// The campaigns under pressure now (their last refusal within [`PRESSURE_QUIET`]), by id.
pub async fn pressure(db: impl PgExecutor<'_>) -> sqlx::Result<HashMap<i64, Pressure>> {
    let rows = sqlx::query!(
        "SELECT campaign_id, since, difficulty FROM campaign_pressure
         WHERE last_seen > now() - $1::interval",
        micros(PRESSURE_QUIET.as_micros() as i64),
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.campaign_id,
                Pressure {
                    difficulty: u8::try_from(r.difficulty).unwrap_or(PRESSURE_MAX),
                    since: r.since,
                },
            )
        })
        .collect())
}

fn micros(microseconds: i64) -> PgInterval {
    PgInterval {
        months: 0,
        days: 0,
        microseconds,
    }
}

/// One bucket to take a cell from: its scope (`submit/client`, …), key and allowance.
#[derive(Debug, Clone, Copy)]
pub struct Bucket<'a> {
    pub scope: &'a str,
    pub key: &'a [u8],
    pub allowance: Allowance,
}

/// What the database refused: which bucket (its position in the list), and how far ahead of
/// now its `tat` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Position of the refusing bucket in the list given to [`take`].
    pub bucket: usize,
    /// `tat − now` of the refusing bucket, in microseconds.
    pub lead_us: i64,
}

/// Takes one cell from each of `buckets` in order, stopping at the first that refuses (the
/// cells taken before it stay taken), in one round trip; `None` when every bucket allowed.
/// `at` is the instant of the request (tests); `None` is the database's `now()`, which every
/// instance shares.
pub async fn take(
    db: impl PgExecutor<'_>,
    at: Option<OffsetDateTime>,
    buckets: &[Bucket<'_>],
) -> sqlx::Result<Option<Refused>> {
    let scopes: Vec<String> = buckets.iter().map(|b| b.scope.to_owned()).collect();
    let keys: Vec<Vec<u8>> = buckets.iter().map(|b| b.key.to_vec()).collect();
    let intervals: Vec<i64> = buckets.iter().map(|b| b.allowance.interval_us()).collect();
    let tolerances: Vec<i64> = buckets.iter().map(|b| b.allowance.tolerance_us()).collect();
    let refused = sqlx::query!(
        r#"SELECT bucket AS "bucket!", lead_us AS "lead_us!"
           FROM take_cells($1, $2, $3, $4, $5)"#,
        at,
        &scopes,
        &keys,
        &intervals,
        &tolerances,
    )
    .fetch_optional(db)
    .await?;
    Ok(refused.map(|row| Refused {
        bucket: usize::try_from(row.bucket - 1).unwrap_or(0),
        lead_us: row.lead_us,
    }))
}

/// Takes one cell from the bucket `key` of `scope` (a scope of its own, e.g. `signin`, whose
/// keys never meet the doors' buckets'), at the database's `now()`: `None` when allowed,
/// else how far ahead of now the bucket's `tat` is, in microseconds (see
/// [`Allowance::retry_after`]).
pub async fn take_one(
    db: impl PgExecutor<'_>,
    scope: &str,
    key: &[u8],
    allowance: Allowance,
) -> sqlx::Result<Option<i64>> {
    let bucket = Bucket {
        scope,
        key,
        allowance,
    };
    Ok(take(db, None, &[bucket]).await?.map(|r| r.lead_us))
}

/// Deletes the rows of buckets that are full again (their `tat` has passed): such a row means
/// the same as none; and the pressure of campaigns that have been quiet for an hour.
pub async fn purge_full(db: impl PgExecutor<'_> + Copy) -> sqlx::Result<u64> {
    let buckets = sqlx::query!("DELETE FROM rate_limits WHERE tat < now()")
        .execute(db)
        .await?
        .rows_affected();
    sqlx::query!("DELETE FROM campaign_pressure WHERE last_seen < now() - interval '1 hour'")
        .execute(db)
        .await?;
    Ok(buckets)
}

/// A request refused by a rate limit: which limit, and when a retry can succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Limited {
    /// Which limit, and how long to wait.
    pub detail: String,
    /// Seconds before a retry can succeed.
    pub retry_after: u64,
}

impl Limited {
    /// The refusal of `door`'s limit for `network` (named `name`), counted in the metrics. The
    /// same words whichever step refused.
    fn door(
        door: Door,
        network: Network,
        name: &str,
        allowance: Allowance,
        retry_after: u64,
    ) -> Self {
        let scope = format!("{}/{}", door.as_str(), network.as_str());
        Self::new(scope, door.what(), network, name, allowance, retry_after)
    }

    fn read(
        read: Read,
        network: Network,
        name: &str,
        allowance: Allowance,
        retry_after: u64,
    ) -> Self {
        let scope = format!("{}/{}", read.as_str(), network.as_str());
        Self::new(scope, read.what(), network, name, allowance, retry_after)
    }

    fn new(
        scope: String,
        what: &str,
        network: Network,
        name: &str,
        allowance: Allowance,
        retry_after: u64,
    ) -> Self {
        metrics::counter!("civicmap_rate_limited_total", "scope" => scope).increment(1);
        let from = match network {
            Network::Client => "this connection".to_owned(),
            _ => format!("the network {name}"),
        };
        let detail = format!(
            "too many {what} from {from}: at most {} per minute, {} at once; retry in {retry_after} s",
            allowance.per_minute, allowance.burst
        );
        Self {
            detail,
            retry_after,
        }
    }
}

/// Drops the memory of clients whose buckets are full again every minute, so that memory
/// follows the number of recent requesters, not of all requesters ever; and deletes the rows of
/// full buckets from the shared table every [`PURGE_EVERY`].
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
            for l in limiters.doors.values().chain(limiters.reads.values()) {
                l.limiter.retain_recent();
                l.limiter.shrink_to_fit();
            }
            let mut asked = limiters.asked.lock().unwrap_or_else(|e| e.into_inner());
            asked.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(60));
            let mut noted = limiters.noted.lock().unwrap_or_else(|e| e.into_inner());
            noted.retain(|_, at| at.elapsed() < Duration::from_secs(60));
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

    fn client(ip: &str) -> ClientKey {
        ClientKey::from(ip.parse::<std::net::IpAddr>().unwrap())
    }

    #[tokio::test]
    async fn a_client_gets_its_burst_in_memory_then_waits() {
        let limits = memory(RateLimitConfig {
            per_ip_per_minute: 6,
            per_ip_burst: 3,
            ..RateLimitConfig::off()
        });
        let limit = &limits.inner.doors[&(Door::Submit, Network::Client)];
        let (a, b) = ("192.0.2.1".to_owned(), "192.0.2.2".to_owned());
        for _ in 0..3 {
            limit.check(&a).unwrap();
        }
        let retry_after = limit.check(&a).unwrap_err();
        assert!((1..=10).contains(&retry_after), "{retry_after}");
        limit.check(&b).unwrap();
        let detail = Limited::door(
            Door::Submit,
            Network::Client,
            &a,
            limit.allowance,
            retry_after,
        )
        .detail;
        assert!(
            detail.starts_with(
                "too many submissions from this connection: at most 6 per minute, 3 at once"
            ),
            "{detail}"
        );
    }

    #[tokio::test]
    async fn a_network_gets_several_clients_worth_and_each_door_its_own() {
        let limits = memory(RateLimitConfig {
            per_ip_per_minute: 6,
            per_ip_burst: 3,
            searches_per_ip_per_minute: 4,
            ..RateLimitConfig::off()
        });
        let doors = &limits.inner.doors;
        assert_eq!(
            doors[&(Door::Submit, Network::V4Slash24)].allowance,
            Allowance::new(48, 24).unwrap()
        );
        assert_eq!(
            doors[&(Door::Challenge, Network::V6Slash48)].allowance,
            Allowance::new(96, 48).unwrap()
        );
        // Subscriptions are off here: no bucket at all.
        assert!(!doors.contains_key(&(Door::Subscribe, Network::Client)));
        // Address searches, in memory: 4 a minute, 1 at once per client; 8 at once per /24.
        for i in 1..=8 {
            limits
                .check_read(Read::Search, client(&format!("198.51.100.{i}")))
                .unwrap();
        }
        let refused = limits
            .check_read(Read::Search, client("198.51.100.9"))
            .unwrap_err();
        assert!(
            refused
                .detail
                .starts_with("too many address searches from the network 198.51.100.0/24"),
            "{}",
            refused.detail
        );
        limits
            .check_read(Read::Search, client("198.51.101.1"))
            .unwrap();
        // Another kind of read has its own buckets.
        limits
            .check_read(Read::Build, client("198.51.100.9"))
            .unwrap();
    }

    #[test]
    fn the_difficulty_under_pressure_rises_with_the_backlog() {
        let a = Allowance::new(6000, 1000).unwrap(); // τ = 9.99 s
        let tau = a.tolerance_us();
        assert_eq!(pressure_difficulty(None, tau + 1, a), PRESSURE_BASE);
        assert_eq!(pressure_difficulty(None, tau + 10_000_000, a), 17);
        assert_eq!(pressure_difficulty(None, tau + 30_000_000, a), 18);
        assert_eq!(pressure_difficulty(None, tau + 70_000_000, a), 19);
        assert_eq!(
            pressure_difficulty(None, tau + MAX_BACKLOG_US, a),
            PRESSURE_MAX
        );
        // A campaign's own higher setting is the floor, and may exceed the usual ceiling.
        assert_eq!(pressure_difficulty(Some(20), tau + 1, a), 20);
        assert_eq!(pressure_difficulty(Some(24), tau + MAX_BACKLOG_US, a), 24);
        assert_eq!(pressure_difficulty(Some(8), tau + 1, a), PRESSURE_BASE);
    }

    #[tokio::test]
    async fn with_every_limit_off_nothing_is_asked_of_the_database() {
        let limits = memory(RateLimitConfig::off());
        let secret = ServerSecret::from_bytes([1; 32]);
        let client = ClientKey::from(std::net::IpAddr::from([192, 0, 2, 1]));
        // The pool points nowhere: any query would fail.
        for _ in 0..100 {
            for door in [
                Door::Submit,
                Door::Challenge,
                Door::Subscribe,
                Door::Confirm,
            ] {
                assert_eq!(limits.check(&secret, door, client).await.unwrap(), Ok(()));
            }
            assert_eq!(limits.admit(1, None, false).await.unwrap(), Admission::Open);
            assert!(limits.take_reserve(&secret, 1, client).await.unwrap());
            assert_eq!(limits.asked(1, None).await.unwrap(), None);
            assert_eq!(limits.check_read(Read::Build, client), Ok(()));
        }
    }
}
