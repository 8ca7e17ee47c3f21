//! The PostgreSQL + PostGIS store: connecting, migrating, readiness, and the embedded cluster.

pub mod backup;
pub mod embedded;
pub mod replicas;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The schema migrations, embedded in the binary from `migrations/`. A database migrated by a
/// newer release (migrations this binary does not know) is accepted: during a rolling upgrade
/// an instance of the previous release may start after the first new one migrated, and the
/// migrations are written so that it can (docs/DEPLOY.md, "Upgrades without downtime").
pub static MIGRATOR: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations")
};

/// How long a request waits for a database connection before it gets a 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A pool that connects lazily and tests connections before handing them out, so that the
/// service starts while the database is down and heals by itself when it comes back.
pub fn pool(options: PgConnectOptions, max_connections: u32) -> PgPool {
    lazy_pool(options.application_name("civicmap"), max_connections)
}

/// A pool of `size` connections beside `pool`, for the submission writers. Its statements
/// always use generic plans: the batch insert's plan does not depend on its parameters, and
/// planning it again for every batch costs more than the batch itself at small sizes.
pub fn writer_pool(pool: &PgPool, size: u32) -> PgPool {
    let options = PgConnectOptions::clone(&pool.connect_options())
        .application_name("civicmap-writer")
        .options([("plan_cache_mode", "force_generic_plan")]);
    lazy_pool(options, size.max(1))
}

/// A pool over a read replica ([`replicas`]): lazy like [`pool`], and read-only even if the
/// URL is a primary's by mistake.
pub fn replica_pool(options: PgConnectOptions, max_connections: u32) -> PgPool {
    let options = options
        .application_name("civicmap-replica")
        .options([("default_transaction_read_only", "on")]);
    lazy_pool(options, max_connections)
}

/// A pool of one connection beside `pool`, for the task that listens for version changes
/// ([`crate::figures::watch`]): it holds its connection for as long as it listens.
pub fn listener_pool(pool: &PgPool) -> PgPool {
    let options =
        PgConnectOptions::clone(&pool.connect_options()).application_name("civicmap-listener");
    lazy_pool(options, 1)
}

fn lazy_pool(options: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Duration::from_secs(300))
        .test_before_acquire(true)
        .connect_lazy_with(options)
}

/// Applies the pending migrations. Safe to run from several instances at once (sqlx takes an
/// advisory lock).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    crate::figures::fill_missing_h3(pool).await?;
    Ok(())
}

/// Why the service is not ready to serve.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unreachable: {0}")]
    Unreachable(#[from] sqlx::Error),
    #[error("migrations not applied: database at version {applied:?}, binary expects {expected}")]
    Migrations { applied: Option<i64>, expected: i64 },
}

/// Checks that the database answers and that every migration of this binary is applied.
pub async fn readiness(pool: &PgPool) -> Result<(), NotReady> {
    let expected = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> =
        sqlx::query_scalar!("SELECT max(version) FROM _sqlx_migrations WHERE success",)
            .fetch_one(pool)
            .await
            .or_else(|e| match &e {
                // No migrations table yet: reachable, but not migrated.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(None),
                _ => Err(e),
            })?;
    if applied.is_some_and(|v| v >= expected) {
        Ok(())
    } else {
        Err(NotReady::Migrations { applied, expected })
    }
}

/// True when `error` means "the database cannot be reached right now" rather than a bug:
/// such errors become 503 responses with Retry-After.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P0x: server shutting down or starting up;
            // 53300: too many connections.
            code.starts_with("08") || code.starts_with("57P0") || code == "53300"
        }),
        _ => false,
    }
}

/// Whether the database is known to be away (the embedded cluster crashed and is being
/// restarted by [`embedded::EmbeddedCluster::supervise`]). While it is, readiness and writes
/// answer 503 at once instead of waiting for a connection that cannot come.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    /// Marks the database away (`true`) or back (`false`).
    pub fn set_away(&self, away: bool) {
        self.0.store(away, Ordering::Relaxed);
    }

    /// Whether the database is known to be away.
    pub fn is_away(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
