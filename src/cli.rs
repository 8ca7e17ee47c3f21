//! The command line: `civicmap serve | migrate | demo | token | districts | retention | db`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::auth::Role;
use crate::database::embedded::EmbeddedCluster;
use crate::http::{AppState, ServerConfig};

/// civicmap: an embeddable collaborative map for cities.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "CIVICMAP_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API, the tiles and the widget.
    Serve(ServeArgs),
    /// Apply pending database migrations.
    Migrate(DbArgs),
    /// Load the demo campaign "fibre-pour-tous" (Nanterre) if it is not there yet.
    Demo(DemoArgs),
    /// Staff API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// A campaign's districts.
    #[command(subcommand)]
    Districts(DistrictsCommand),
    /// Coarsen the exact data of campaigns past their retention period.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The embedded PostgreSQL cluster (used when DATABASE_URL is not set).
    #[command(subcommand)]
    Db(DbCommand),
}

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

#[derive(Debug, Args)]
struct DemoArgs {
    /// Also add this many synthetic households inside the districts (for load tests).
    #[arg(long, default_value_t = 0)]
    more_points: usize,
    /// Seed of the synthetic points: the same seed gives the same points.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CIVICMAP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Load the demo campaign before serving.
    #[arg(long)]
    demo: bool,
    /// Folder of the widget (its built bundles are in dist/).
    #[arg(long, env = "CIVICMAP_WIDGET_DIR", default_value = "widget")]
    widget_dir: PathBuf,
    /// Database connections, beside --max-connections, that store submissions, each in
    /// batches of whatever requests are waiting (group commit).
    #[arg(long, env = "CIVICMAP_SUBMISSION_WRITERS", default_value_t = 2)]
    submission_writers: usize,
    /// Memory for built vector tiles, in MiB; 0 turns the tile cache off.
    #[arg(long, env = "CIVICMAP_TILE_CACHE_MB", default_value_t = 256)]
    tile_cache_mb: u64,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (the secret is shown only once).
    Create {
        /// Who or what holds the token.
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum, default_value = "admin")]
        role: Role,
        /// Days until it expires (never by default).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tokens (never their secrets): id, name, role, state, created, expires, last used.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set or clear when a token stops working.
    Expire {
        /// The token's id (the number after `cmk_`).
        id: i64,
        /// When it stops working (RFC 3339, e.g. 2027-01-31T00:00:00Z); a past time expires it now.
        #[arg(long, conflicts_with_all = ["in_days", "never", "now"])]
        at: Option<String>,
        /// Stops working in this many days.
        #[arg(long, conflicts_with_all = ["never", "now"])]
        in_days: Option<u32>,
        /// Expires it at once.
        #[arg(long, conflicts_with = "never")]
        now: bool,
        /// Never expires.
        #[arg(long)]
        never: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token for good.
    Revoke {
        /// The token's id (the number after `cmk_`).
        id: i64,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
enum DistrictsCommand {
    /// Replace a campaign's districts with those of a GeoJSON FeatureCollection.
    Import {
        /// Campaign name (slug).
        campaign: String,
        /// GeoJSON file of Polygon/MultiPolygon features.
        file: PathBuf,
        /// Property holding each district's name.
        #[arg(long, default_value = "name")]
        name_prop: String,
        /// Property holding each district's code.
        #[arg(long, default_value = "code")]
        code_prop: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Snap exact positions to the public grid and delete free-text answers in every campaign
    /// whose retention period has passed (serve also does it every hour).
    Run {
        /// Only this campaign (slug).
        #[arg(long)]
        campaign: Option<String>,
        /// Say what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create (if needed) and start the embedded cluster, then print its DATABASE_URL.
    Start {
        /// Directory of the embedded PostgreSQL cluster.
        #[arg(long, env = "CIVICMAP_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Stop the embedded cluster.
    Stop {
        /// Directory of the embedded PostgreSQL cluster.
        #[arg(long, env = "CIVICMAP_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

/// An open database, and the embedded cluster if this process started it.
struct Database {
    pool: PgPool,
    started: Option<EmbeddedCluster>,
}

impl DbArgs {
    async fn open(&self) -> anyhow::Result<Database> {
        let (options, started) = match &self.database_url {
            Some(url) => (
                url.parse::<PgConnectOptions>()
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?,
                None,
            ),
            None => {
                let cluster = EmbeddedCluster::new(&self.data_dir)?;
                let was_running = cluster.is_running().await?;
                cluster.start().await?;
                let options = cluster.connect_options();
                (options, (!was_running).then_some(cluster))
            }
        };
        let pool = crate::database::pool(options, self.max_connections);
        Ok(Database { pool, started })
    }
}

impl Database {
    async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(cluster) = self.started {
            cluster.stop().await?;
        }
        Ok(())
    }
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("civicmap=info,tower_http=info,sqlx=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(db) => {
            with_database(&db, |pool| async move {
                crate::database::migrate(&pool).await?;
                println!("migrations applied");
                Ok(())
            })
            .await
        }
        Command::Demo(DemoArgs {
            more_points,
            seed,
            db,
        }) => {
            with_database(&db, |pool| async move {
                crate::database::migrate(&pool).await?;
                let (campaign, created) = crate::demo::load(&pool).await?;
                println!(
                    "demo campaign `{}` {}",
                    campaign.slug,
                    if created { "loaded" } else { "already there" }
                );
                if more_points > 0 {
                    let started = std::time::Instant::now();
                    crate::demo::add_points(&pool, more_points, seed).await?;
                    println!(
                        "{more_points} synthetic points added in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
                Ok(())
            })
            .await
        }
        Command::Token(TokenCommand::Create {
            name,
            role,
            expires_in_days,
            db,
        }) => {
            with_database(&db, |pool| async move {
                crate::database::migrate(&pool).await?;
                let expires_at = expires_in_days
                    .map(|d| time::OffsetDateTime::now_utc() + time::Duration::days(d.into()));
                let token = crate::auth::create_token(&pool, &name, role, expires_at).await?;
                println!("{token}");
                Ok(())
            })
            .await
        }
        Command::Token(TokenCommand::List { db }) => {
            with_database(&db, |pool| async move {
                crate::database::migrate(&pool).await?;
                let tokens = crate::auth::tokens::list(&pool).await.map_err(problem)?;
                print!("{}", token_table(&tokens, time::OffsetDateTime::now_utc()));
                Ok(())
            })
            .await
        }
        Command::Token(TokenCommand::Expire {
            id,
            at,
            in_days,
            now,
            never,
            db,
        }) => {
            let expires_at = match (at, in_days, now, never) {
                (Some(at), ..) => Some(
                    time::OffsetDateTime::parse(
                        &at,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .with_context(|| format!("--at {at} is not an RFC 3339 time"))?,
                ),
                (None, Some(days), ..) => {
                    Some(time::OffsetDateTime::now_utc() + time::Duration::days(days.into()))
                }
                (None, None, true, _) => Some(time::OffsetDateTime::now_utc()),
                (None, None, false, true) => None,
                (None, None, false, false) => {
                    anyhow::bail!("say when: --at TIME, --in-days N, --now or --never")
                }
            };
            with_database(&db, |pool| async move {
                crate::database::migrate(&pool).await?;
                let info = crate::auth::tokens::set_expiry(
                    &pool,
                    crate::audit::Actor::Cli,
                    id,
                    expires_at,
                )
                .await
                .map_err(problem)?;
                print!("{}", token_table(&[info], time::OffsetDateTime::now_utc()));
                Ok(())
            })
            .await
        }
        Command::Token(TokenCommand::Revoke { id, reason, db }) => {
            with_database(&db, |pool| async move {
                crate::database::migrate(&pool).await?;
                let info = crate::auth::tokens::revoke(&pool, crate::audit::Actor::Cli, id, reason)
                    .await
                    .map_err(problem)?;
                print!("{}", token_table(&[info], time::OffsetDateTime::now_utc()));
                Ok(())
            })
            .await
        }
        Command::Districts(DistrictsCommand::Import {
            campaign,
            file,
            name_prop,
            code_prop,
            db,
        }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            with_database(&db, |pool| async move {
                crate::database::migrate(&pool).await?;
                let collection = crate::http::extract::parse_json(&bytes).map_err(|e| anyhow::anyhow!("{}", e.to_problem().detail))?;
                let names = crate::districts::PropertyNames { name: name_prop, code: code_prop };
                match crate::districts::import(&pool, &campaign, &collection, &names).await {
                    Ok(report) => {
                        println!("{} districts imported into `{campaign}`, {} repaired, {} submissions re-assigned", report.imported, report.repaired.len(), report.reassigned);
                        for repaired in report.repaired {
                            println!("  feature {} repaired: {}", repaired.index, repaired.reason);
                        }
                        Ok(())
                    }
                    Err(error) => {
                        let problem = error.to_problem();
                        for field in &problem.errors {
                            eprintln!("  {}: {}", field.field, field.detail);
                        }
                        anyhow::bail!("{}", problem.detail)
                    }
                }
            })
            .await
        }
        Command::Retention(RetentionCommand::Run {
            campaign,
            dry_run,
            db,
        }) => {
            with_database(&db, |pool| async move {
                crate::database::migrate(&pool).await?;
                let outcomes = crate::retention::run(
                    &pool,
                    crate::audit::Actor::Cli,
                    campaign.as_deref(),
                    dry_run,
                )
                .await
                .map_err(problem)?;
                let verb = if dry_run { "would be" } else { "were" };
                for o in &outcomes {
                    println!(
                        "`{}`: {} positions {verb} snapped to the public grid; free-text answers ({}) {verb} deleted from {} submissions",
                        o.campaign,
                        o.submissions,
                        if o.text_fields.is_empty() { "no text field".to_owned() } else { o.text_fields.join(", ") },
                        o.with_text
                    );
                }
                match (&campaign, outcomes.is_empty()) {
                    (Some(slug), true) => println!(
                        "`{slug}`: nothing to do: it {}",
                        crate::retention::not_due_reason(&pool, slug).await.map_err(problem)?
                    ),
                    (None, true) => println!("no campaign is due"),
                    _ => {}
                }
                Ok(())
            })
            .await
        }
        Command::Db(DbCommand::Start { data_dir }) => {
            let cluster = EmbeddedCluster::new(&data_dir)?;
            cluster.start().await?;
            println!("{}", cluster.url());
            Ok(())
        }
        Command::Db(DbCommand::Stop { data_dir }) => EmbeddedCluster::new(&data_dir)?.stop().await,
    }
}

/// An API error as a command-line error: its problem's detail.
fn problem(error: crate::http::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", error.to_problem().detail)
}

/// Tokens as a plain-text table, one per line.
fn token_table(tokens: &[crate::auth::tokens::TokenInfo], now: time::OffsetDateTime) -> String {
    let when = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.replace_nanosecond(0)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
    };
    let mut out = format!(
        "{:<6} {:<9} {:<8} {:<20} {:<20} {:<20} {}\n",
        "ID", "ROLE", "STATE", "CREATED", "EXPIRES", "LAST USED", "NAME"
    );
    for t in tokens {
        out.push_str(&format!(
            "{:<6} {:<9} {:<8} {:<20} {:<20} {:<20} {}\n",
            t.id,
            t.role.as_str(),
            t.state(now),
            when(Some(t.created_at)),
            when(t.expires_at),
            when(t.last_used_at),
            t.name
        ));
    }
    out
}

async fn with_database<F, Fut>(args: &DbArgs, f: F) -> anyhow::Result<()>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let database = args.open().await?;
    let result = f(database.pool.clone()).await;
    database.close().await?;
    result
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let database = args.db.open().await?;
    let pool = database.pool.clone();
    let result = async {
        crate::database::migrate(&pool)
            .await
            .context("cannot apply database migrations")?;
        if args.demo {
            let (campaign, created) = crate::demo::load(&pool).await?;
            tracing::info!(campaign = %campaign.slug, created, "demo campaign ready");
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!("civicmap listening on http://{}", listener.local_addr()?);
        let state = AppState::new(
            pool.clone(),
            ServerConfig {
                widget_dir: args.widget_dir.clone(),
                submission_writers: args.submission_writers,
                tile_cache_mb: args.tile_cache_mb,
            },
        );
        let housekeeping = tokio::spawn(housekeeping(pool.clone()));
        let served = crate::http::serve(
            listener,
            crate::http::app(state),
            crate::http::shutdown_signal(),
        )
        .await;
        housekeeping.abort();
        served.context("server error")
    }
    .await;
    database.close().await?;
    result
}

/// Periodic clean-up, every hour: expired idempotency records, and the retention of exact data
/// of campaigns closed long enough.
async fn housekeeping(pool: PgPool) {
    let mut interval = tokio::time::interval(Duration::from_secs(3600));
    loop {
        interval.tick().await;
        match crate::submissions::purge_idempotency_keys(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "cannot purge idempotency keys"),
        }
        let actor = crate::audit::Actor::System("scheduled retention");
        if let Err(e) = crate::retention::run(&pool, actor, None, false).await {
            tracing::warn!(error = %e, "cannot apply retention");
        }
    }
}
