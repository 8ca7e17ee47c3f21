//! Each campaign's `(config_version, data_version)` ([`super::versions`]), kept in memory and
//! learned by notification, so that a tile or a published figure costs no database round trip
//! to know whether anything changed.
//!
//! - Every statement that changes the counters or a campaign's settings notifies channel
//!   [`CHANNEL`] with the campaign's id at commit (triggers of
//!   `migrations/20261201000013_version_notifications.sql`). One task per instance LISTENs on
//!   it on a connection of its own and, for each notification, reads that campaign's versions
//!   again (one query): another instance's commit is seen within a few milliseconds.
//! - A write through this instance marks what it touched ([`VersionWatch::touched`],
//!   [`VersionWatch::touched_all`]) before its response is sent: the next read of those
//!   versions goes to the database, so the writer's next tile already holds the write, without
//!   waiting for the notification.
//! - When the listening connection drops, the task logs it and reads the versions of every
//!   campaign it keeps every [`POLL`] until it listens again; then it reads them all once
//!   more, since notifications sent meanwhile were lost.
//!
//! - The address file's version (`address_set.version`) rides on the same channel with the
//!   payload [`ADDRESSES`] (sent by each address import): [`VersionWatch::addresses`] keeps it,
//!   so that an address index built in memory ([`crate::addresses::index`]) is known stale
//!   without a query. It only grows; it is polled and read again with the campaigns'.
//!
//! A campaign not yet kept is read once, then kept. Every read takes a tick of a clock before
//! its query; an entry is replaced only by a read that started later, and trusted only when
//! its read started after the last local write that touched it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

/// The channel the triggers notify, with the campaign's id as payload.
pub const CHANNEL: &str = "civicmap_versions";
/// The payload of a notification on [`CHANNEL`] saying the address file changed.
pub const ADDRESSES: &str = "addresses";
/// How often the versions are read while the listening connection is down.
pub const POLL: Duration = Duration::from_millis(250);
/// How long after losing it the listener first tries to listen again (polling meanwhile), and
/// then between attempts.
const RECONNECT: Duration = Duration::from_secs(1);

/// Versions of a campaign: `(config_version, data_version)`.
pub type Versions = (i64, i64);

#[derive(Debug, Clone, Copy)]
struct Entry {
    versions: Versions,
    /// Clock tick taken before the query that read `versions`.
    read_at: u64,
    /// Clock tick of the last local write that touched the campaign.
    touched_at: u64,
}

struct Inner {
    db: PgPool,
    clock: AtomicU64,
    /// Clock tick of the last local write whose campaign is not known (staff routes).
    all_touched_at: AtomicU64,
    entries: RwLock<HashMap<i64, Entry>>,
    listening: AtomicBool,
    /// The address file's version, -1 until first read (or after a failed read on notice).
    addresses: AtomicI64,
}

/// The versions of the campaigns this instance serves (cheap to clone).
#[derive(Clone)]
pub struct VersionWatch {
    inner: Arc<Inner>,
}

impl VersionWatch {
    /// Versions read from `db`, kept fresh by a listener task on a connection of its own (on
    /// the current Tokio runtime; it ends when the last clone of this watch is dropped).
    pub fn start(db: PgPool) -> Self {
        let listener_db = crate::database::listener_pool(&db);
        let watch = Self {
            inner: Arc::new(Inner {
                db,
                clock: AtomicU64::new(1),
                all_touched_at: AtomicU64::new(0),
                entries: RwLock::default(),
                listening: AtomicBool::new(false),
                addresses: AtomicI64::new(-1),
            }),
        };
        tokio::spawn(listen(Arc::downgrade(&watch.inner), listener_db));
        watch
    }

    /// The versions of `campaign_id`: from memory when kept and not touched by a local write
    /// since, else read (one query) and kept.
    pub async fn get(&self, campaign_id: i64) -> sqlx::Result<Versions> {
        if let Some(versions) = self.inner.fresh(campaign_id) {
            return Ok(versions);
        }
        self.inner.read(campaign_id).await
    }

    /// The address file's version: from memory once read, kept fresh by notification (one
    /// query the first time).
    pub async fn addresses(&self) -> sqlx::Result<i64> {
        match self.inner.addresses.load(Ordering::Acquire) {
            -1 => self.inner.read_addresses().await,
            known => Ok(known),
        }
    }

    /// A local write changed `campaign_id`'s data or settings (committed): its next read goes
    /// to the database.
    pub fn touched(&self, campaign_id: i64) {
        let tick = self.inner.tick();
        if let Some(entry) = self
            .inner
            .entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&campaign_id)
        {
            entry.touched_at = tick;
        }
    }

    /// A local write may have changed any campaign: every next read goes to the database once.
    pub fn touched_all(&self) {
        let tick = self.inner.tick();
        self.inner.all_touched_at.fetch_max(tick, Ordering::AcqRel);
    }

    /// Whether the listener is listening now (false while it polls).
    pub fn listening(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire)
    }
}

impl Inner {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn fresh(&self, campaign_id: i64) -> Option<Versions> {
        let all = self.all_touched_at.load(Ordering::Acquire);
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&campaign_id)?;
        (entry.read_at > entry.touched_at && entry.read_at > all).then_some(entry.versions)
    }

    /// Reads the versions of `campaign_id` and keeps them unless a later read was kept first.
    async fn read(&self, campaign_id: i64) -> sqlx::Result<Versions> {
        let tick = self.tick();
        let versions = match super::versions(&self.db, campaign_id).await {
            Ok(versions) => versions,
            Err(sqlx::Error::RowNotFound) => {
                self.forget(campaign_id);
                return Err(sqlx::Error::RowNotFound);
            }
            Err(error) => return Err(error),
        };
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(campaign_id).or_insert(Entry {
            versions,
            read_at: 0,
            touched_at: 0,
        });
        if tick > entry.read_at {
            entry.versions = versions;
            entry.read_at = tick;
        }
        Ok(versions)
    }

    fn forget(&self, campaign_id: i64) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&campaign_id);
    }

    fn kept(&self) -> Vec<i64> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.keys().copied().collect()
    }

    /// Reads the address file's version and keeps the greatest seen (it only grows, so a
    /// read that started earlier cannot undo a later one).
    async fn read_addresses(&self) -> sqlx::Result<i64> {
        let version = sqlx::query_scalar!("SELECT version FROM address_set")
            .fetch_one(&self.db)
            .await?;
        let before = self.addresses.fetch_max(version, Ordering::AcqRel);
        Ok(before.max(version))
    }

    /// Reads again the versions of every campaign kept, and the address file's if known.
    async fn read_all(&self) -> sqlx::Result<()> {
        if self.addresses.load(Ordering::Acquire) >= 0 {
            self.read_addresses().await?;
        }
        for campaign_id in self.kept() {
            match self.read(campaign_id).await {
                Ok(_) | Err(sqlx::Error::RowNotFound) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// The listener task: listens while it can, polls while it cannot. Ends when the watch is
/// dropped.
async fn listen(watch: Weak<Inner>, db: PgPool) {
    let mut lost_since: Option<std::time::Instant> = None;
    let mut next_attempt = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_attempt {
            match subscribe(&db).await {
                Ok(mut listener) => {
                    let Some(inner) = watch.upgrade() else { return };
                    inner.listening.store(true, Ordering::Release);
                    if let Some(since) = lost_since.take() {
                        tracing::info!(
                            after = ?since.elapsed(),
                            "listening for version changes again; reading every campaign's versions"
                        );
                    }
                    // Notifications sent while not listening are lost: read everything once.
                    if let Err(error) = inner.read_all().await {
                        tracing::warn!(%error, "cannot read the campaigns' versions");
                    }
                    drop(inner);
                    let cause = receive(&watch, &mut listener).await;
                    let Some(inner) = watch.upgrade() else { return };
                    inner.listening.store(false, Ordering::Release);
                    tracing::warn!(
                        cause,
                        poll = ?POLL,
                        "lost the connection listening for version changes: polling the versions until it is back"
                    );
                    lost_since = Some(std::time::Instant::now());
                    next_attempt = tokio::time::Instant::now() + RECONNECT;
                }
                Err(error) => {
                    if lost_since.is_none() {
                        tracing::warn!(%error, poll = ?POLL, "cannot listen for version changes: polling the versions");
                        lost_since = Some(std::time::Instant::now());
                    } else {
                        tracing::debug!(%error, "cannot listen for version changes yet");
                    }
                    next_attempt = tokio::time::Instant::now() + RECONNECT;
                }
            }
        }
        // Polling, until the next attempt to listen.
        let Some(inner) = watch.upgrade() else { return };
        if let Err(error) = inner.read_all().await {
            tracing::debug!(%error, "cannot poll the campaigns' versions");
        }
        drop(inner);
        tokio::time::sleep(POLL).await;
    }
}

async fn subscribe(db: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Handles notifications until the connection is lost (the cause returned) or the watch is
/// dropped.
async fn receive(watch: &Weak<Inner>, listener: &mut PgListener) -> String {
    loop {
        let notification = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            Ok(None) => return "connection closed".to_owned(),
            Err(error) => return error.to_string(),
        };
        let Some(inner) = watch.upgrade() else {
            return "stopping".to_owned();
        };
        if notification.payload() == ADDRESSES {
            if let Err(error) = inner.read_addresses().await {
                // Unknown again: the next search reads it itself.
                tracing::debug!(%error, "cannot read the address file's version after a notification");
                inner.addresses.store(-1, Ordering::Release);
            }
            continue;
        }
        let Ok(campaign_id) = notification.payload().parse::<i64>() else {
            continue;
        };
        // Only campaigns kept here: the others are read when first asked for.
        if inner.kept_one(campaign_id)
            && let Err(error) = inner.read(campaign_id).await
            && !matches!(error, sqlx::Error::RowNotFound)
        {
            // The entry stays as it was; mark it so that the next request reads it itself.
            tracing::debug!(%error, campaign_id, "cannot read the versions after a notification");
            let tick = inner.tick();
            if let Some(entry) = inner
                .entries
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&campaign_id)
            {
                entry.touched_at = tick;
            }
        }
    }
}

impl Inner {
    fn kept_one(&self, campaign_id: i64) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&campaign_id)
    }
}
