//! Where the database is (`--database-url` or the embedded cluster under `--data-dir`), and
//! the commands about the database itself: `migrate`, `db start|stop`, `backup`, `restore`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::database::embedded::EmbeddedCluster;

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL of an external server (PostGIS 3 required). Without it, civicmap runs
    /// its own cluster under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Directory of the embedded PostgreSQL cluster.
    #[arg(long, env = "CIVICMAP_DATA_DIR", default_value = "var")]
    data_dir: PathBuf,
    /// Most database connections this process opens.
    #[arg(long, env = "CIVICMAP_MAX_CONNECTIONS", default_value_t = 16)]
    max_connections: u32,
}

impl DbArgs {
    /// The data directory (the embedded cluster's, and the demo basemap's).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum DbCommand {
    /// Create (if needed) and start the embedded cluster, then print its DATABASE_URL.
    Start {
        /// Directory of the embedded PostgreSQL cluster.
        #[arg(long, env = "CIVICMAP_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
        /// Make the cluster, if it does not exist yet, a streaming replica of the embedded
        /// cluster under this directory (which must be running): for `--replica-url` on one
        /// machine.
        #[arg(long)]
        standby_of: Option<PathBuf>,
    },
    /// Stop the embedded cluster.
    Stop {
        /// Directory of the embedded PostgreSQL cluster.
        #[arg(long, env = "CIVICMAP_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

/// `civicmap backup FILE`.
#[derive(Debug, Args)]
pub(super) struct BackupArgs {
    /// Where to write the backup; it appears only once complete.
    file: PathBuf,
    #[command(flatten)]
    db: DbArgs,
}

/// `civicmap restore FILE`.
#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    /// The backup to restore.
    file: PathBuf,
    /// Restore even while civicmap servers are connected (restart them afterwards: their
    /// caches still hold what the restore replaced).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    db: DbArgs,
}

/// An open database, and the embedded cluster when it is the one.
pub(super) struct Database {
    pub(super) pool: PgPool,
    /// The embedded cluster, if no `DATABASE_URL` was given.
    pub(super) embedded: Option<EmbeddedCluster>,
    /// Whether this process started the embedded cluster (and so stops it when done).
    started: bool,
}

impl DbArgs {
    pub(super) async fn open(&self) -> anyhow::Result<Database> {
        let (options, embedded, started) = match &self.database_url {
            Some(url) => (
                url.parse::<PgConnectOptions>()
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?,
                None,
                false,
            ),
            None => {
                let cluster = EmbeddedCluster::new(&self.data_dir)?;
                let was_running = cluster.is_running().await?;
                cluster.start().await?;
                let options = cluster.connect_options();
                (options, Some(cluster), !was_running)
            }
        };
        let pool = crate::database::pool(options, self.max_connections);
        Ok(Database {
            pool,
            embedded,
            started,
        })
    }
}

impl DbArgs {
    /// The database as `pg_dump` and `pg_restore` reach it (with the embedded cluster's own
    /// tools when it is the one).
    fn backup_target(&self) -> anyhow::Result<crate::database::backup::Target> {
        match &self.database_url {
            Some(url) => crate::database::backup::Target::new(url, None),
            None => {
                let cluster = EmbeddedCluster::new(&self.data_dir)?;
                crate::database::backup::Target::new(
                    &cluster.url(),
                    Some(cluster.bin_dir().to_owned()),
                )
            }
        }
    }
}

impl Database {
    pub(super) async fn close(self) -> anyhow::Result<()> {
        // Connections still held by requests past the drain limit are not waited for long.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), self.pool.close()).await;
        if let Some(cluster) = self.embedded.filter(|_| self.started) {
            cluster.stop().await?;
        }
        Ok(())
    }
}

/// Opens the database, runs `f` on it, and closes it (stopping the embedded cluster if this
/// process started it).
pub(super) async fn with_database<F, Fut>(args: &DbArgs, f: F) -> anyhow::Result<()>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let database = args.open().await?;
    let result = f(database.pool.clone()).await;
    database.close().await?;
    result
}

/// [`with_database`], with this version's migrations applied first.
pub(super) async fn with_migrated_database<F, Fut>(args: &DbArgs, f: F) -> anyhow::Result<()>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    with_database(args, |pool| async move {
        crate::database::migrate(&pool).await?;
        f(pool).await
    })
    .await
}

/// `civicmap migrate`.
pub(super) async fn migrate(db: DbArgs) -> anyhow::Result<()> {
    with_migrated_database(&db, |_pool| async move {
        println!("migrations applied");
        Ok(())
    })
    .await
}

/// `civicmap db start|stop`.
pub(super) async fn run(command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Start {
            data_dir,
            standby_of,
        } => {
            let cluster = EmbeddedCluster::new(&data_dir)?;
            match standby_of {
                Some(primary) => {
                    cluster
                        .start_standby(&EmbeddedCluster::new(&primary)?)
                        .await?
                }
                None => cluster.start().await?,
            }
            println!("{}", cluster.url());
            Ok(())
        }
        DbCommand::Stop { data_dir } => EmbeddedCluster::new(&data_dir)?.stop().await,
    }
}

/// `civicmap backup FILE`.
pub(super) async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let BackupArgs { file, db } = args;
    let target = db.backup_target()?;
    with_database(&db, |pool| async move {
        let summary = crate::database::backup::summary(&pool).await?;
        crate::database::backup::backup(&target, &file).await?;
        let size = std::fs::metadata(&file)?.len();
        println!("{}: {summary}, {size} bytes", file.display());
        Ok(())
    })
    .await
}

/// `civicmap restore FILE`.
pub(super) async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let RestoreArgs { file, force, db } = args;
    let target = db.backup_target()?;
    let database = db.open().await?;
    let result = async {
        crate::database::backup::restore(&target, &database.pool, &file, force).await?;
        // A fresh pool: restore closed the one it was given.
        let options = PgConnectOptions::clone(&database.pool.connect_options());
        let pool = crate::database::pool(options, 2);
        crate::database::migrate(&pool).await?;
        let summary = crate::database::backup::summary(&pool).await?;
        pool.close().await;
        println!("restored {}: {summary}", file.display());
        anyhow::Ok(())
    }
    .await;
    database.close().await?;
    result
}
