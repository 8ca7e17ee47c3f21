//! The command line: `civicmap serve | migrate | demo | token | districts | import | export |
//! retention | db | backup | restore`.

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
    /// Import paper forms or legacy data (CSV or GeoJSON) into a campaign: every row is
    /// checked like the API checks a submission, and nothing is stored unless all are accepted.
    Import(ImportArgs),
    /// Write a campaign's aggregates (or, with --raw, every published submission) as the API
    /// serves them.
    Export(ExportArgs),
    /// Coarsen the exact data of campaigns past their retention period.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The embedded PostgreSQL cluster (used when DATABASE_URL is not set).
    #[command(subcommand)]
    Db(DbCommand),
    /// Write the whole database to FILE with pg_dump (custom format). The file holds exact
    /// points: keep it as safely as the database, and rotate it within the campaigns'
    /// retention.
    Backup {
        /// Where to write the backup; it appears only once complete.
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Replace the database's content with a backup made by `civicmap backup`, in one
    /// transaction, then apply this version's migrations. Stop the civicmap servers first.
    Restore {
        /// The backup to restore.
        file: PathBuf,
        /// Restore even while civicmap servers are connected (restart them afterwards: their
        /// caches still hold what the restore replaced).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        db: DbArgs,
    },
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
    /// Submission writes (POST, PATCH, DELETE) and challenges a client (IPv4 address or IPv6
    /// /64) may make per minute; 0 turns the limit off (load tests).
    #[arg(long, env = "CIVICMAP_SUBMISSIONS_PER_IP", default_value_t = 30)]
    submissions_per_ip: u32,
    /// Writes a client may make at once before --submissions-per-ip applies.
    #[arg(long, env = "CIVICMAP_SUBMISSIONS_PER_IP_BURST", default_value_t = 10)]
    submissions_per_ip_burst: u32,
    /// Submission writes per campaign per minute from all clients together (bursts of ten
    /// seconds' worth); 0 turns the limit off.
    #[arg(
        long,
        env = "CIVICMAP_SUBMISSIONS_PER_CAMPAIGN",
        default_value_t = 6000
    )]
    submissions_per_campaign: u32,
    /// Header holding the client's address, set by a reverse proxy in front of civicmap
    /// (`X-Forwarded-For`: its right-most entry; `X-Real-IP`). Without it, the TCP peer is
    /// the client. Needs --trusted-proxies: the header is believed only from those peers.
    #[arg(
        long,
        env = "CIVICMAP_TRUSTED_PROXY_HEADER",
        requires = "trusted_proxies"
    )]
    trusted_proxy_header: Option<axum::http::HeaderName>,
    /// Networks of the proxies whose --trusted-proxy-header is believed (comma-separated
    /// CIDRs, e.g. `10.0.0.0/8,::1/128`); any other peer is the client itself.
    #[arg(
        long,
        env = "CIVICMAP_TRUSTED_PROXIES",
        value_delimiter = ',',
        requires = "trusted_proxy_header"
    )]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Seconds a connection may take to send a request's headers, and may stay idle between
    /// requests, before it is closed.
    #[arg(long, env = "CIVICMAP_HEADER_READ_TIMEOUT", default_value_t = 10)]
    header_read_timeout: u64,
    /// Address of a separate listener for Prometheus metrics (`GET /metrics`), e.g.
    /// `127.0.0.1:9187`; keep it off the public network. Without it, no metrics are served.
    #[arg(long, env = "CIVICMAP_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Campaign name (slug).
    campaign: String,
    /// A .csv file (`,` or `;` separated, header row) or a .geojson FeatureCollection of Points.
    file: PathBuf,
    /// CSV column of the longitude (default: lon, longitude, lng or x).
    #[arg(long)]
    lon: Option<String>,
    /// CSV column of the latitude (default: lat, latitude or y).
    #[arg(long)]
    lat: Option<String>,
    /// FIELD=COLUMN: read the form's FIELD from COLUMN (or GeoJSON property); repeatable.
    /// Fields without a mapping are read from the column named like them.
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    map: Vec<String>,
    /// Column (or property) with the date the form was filled in (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    created_at: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    Geojson,
    Csv,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Campaign name (slug).
    campaign: String,
    /// `district` or `h3:6` to `h3:10`.
    #[arg(long, default_value = "district")]
    by: String,
    /// File format (default: from --output's extension, else GeoJSON).
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
    /// French-Excel CSV: BOM, `;` separator, decimal comma.
    #[arg(long)]
    excel: bool,
    /// A choice or yes/no field: one count per answer.
    #[arg(long)]
    breakdown: Option<String>,
    /// A number field to add up per area.
    #[arg(long)]
    sum: Option<String>,
    /// Only submissions created at or after this instant (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Only submissions created before this instant (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    /// Every published submission with its exact position and answers (written to the audit
    /// log) instead of aggregates.
    #[arg(long)]
    raw: bool,
    /// With --raw: only this district (its code).
    #[arg(long, requires = "raw")]
    district: Option<String>,
    /// File to write (standard output by default).
    #[arg(long, short)]
    output: Option<PathBuf>,
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

/// An open database, and the embedded cluster when it is the one.
struct Database {
    pool: PgPool,
    /// The embedded cluster, if no `DATABASE_URL` was given.
    embedded: Option<EmbeddedCluster>,
    /// Whether this process started the embedded cluster (and so stops it when done).
    started: bool,
}

impl DbArgs {
    async fn open(&self) -> anyhow::Result<Database> {
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
    async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(cluster) = self.embedded.filter(|_| self.started) {
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
        Command::Import(args) => {
            with_database(&args.db.clone(), |pool| async move {
                crate::database::migrate(&pool).await?;
                import(&pool, args).await
            })
            .await
        }
        Command::Export(args) => {
            with_database(&args.db.clone(), |pool| async move {
                crate::database::migrate(&pool).await?;
                export(&pool, args).await
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
        Command::Backup { file, db } => {
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
        Command::Restore { file, force, db } => {
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
        let header_read_timeout = Duration::from_secs(args.header_read_timeout.max(1));
        let state = AppState::new(
            pool.clone(),
            ServerConfig {
                widget_dir: args.widget_dir.clone(),
                submission_writers: args.submission_writers,
                tile_cache_mb: args.tile_cache_mb,
                publication: crate::aggregates::publication::Schedule::Campaign,
                client_ip: crate::http::client_ip::ClientIpConfig {
                    trusted_header: args.trusted_proxy_header.clone(),
                    trusted_proxies: args.trusted_proxies.clone(),
                },
                rate_limits: crate::safety::limits::RateLimitConfig {
                    per_ip_per_minute: args.submissions_per_ip,
                    per_ip_burst: args.submissions_per_ip_burst,
                    per_campaign_per_minute: args.submissions_per_campaign,
                },
                header_read_timeout,
            },
        );
        // The embedded cluster is restarted whenever it dies, whoever started it (a server
        // restarted after a crash finds it running).
        let supervisor = database
            .embedded
            .clone()
            .map(|cluster| cluster.supervise(state.health.clone()));
        let metrics = match args.metrics_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for metrics"))?;
                tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
                let router = crate::http::metrics::router(state.clone());
                Some(tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router).await {
                        tracing::error!(error = %e, "the metrics listener stopped");
                    }
                }))
            }
            None => None,
        };
        let housekeeping = tokio::spawn(housekeeping(pool.clone()));
        let served = crate::http::serve_with(
            listener,
            crate::http::app(state),
            header_read_timeout,
            crate::http::shutdown_signal(),
        )
        .await;
        housekeeping.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(supervisor) = supervisor {
            // Before the cluster is stopped on purpose below.
            supervisor.abort();
            let _ = supervisor.await;
        }
        served.context("server error")
    }
    .await;
    database.close().await?;
    result
}

/// Periodic clean-up, every hour: expired idempotency records, spent challenges, client
/// hashes past their window, and the retention of exact data of campaigns closed long enough.
async fn housekeeping(pool: PgPool) {
    let mut interval = tokio::time::interval(Duration::from_secs(3600));
    loop {
        interval.tick().await;
        match crate::submissions::purge_idempotency_keys(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "cannot purge idempotency keys"),
        }
        match crate::safety::pow::purge_spent(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired proof-of-work challenges purged"),
            Err(e) => tracing::warn!(error = %e, "cannot purge spent challenges"),
        }
        match crate::submissions::purge_client_hashes(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                cleared = n,
                "client hashes past their duplicate window cleared"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot clear client hashes"),
        }
        let actor = crate::audit::Actor::System("scheduled retention");
        if let Err(e) = crate::retention::run(&pool, actor, None, false).await {
            tracing::warn!(error = %e, "cannot apply retention");
        }
    }
}

/// Shows an import's progress: a bar on a terminal, a plain line now and then otherwise.
struct ImportProgress {
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
    last_line: std::time::Instant,
    total: u64,
}

impl ImportProgress {
    fn new() -> Self {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message("checking rows");
            bar
        });
        Self {
            bar,
            terminal,
            last_line: std::time::Instant::now(),
            total: 0,
        }
    }

    fn line(&mut self, text: String, force: bool) {
        if force || self.last_line.elapsed() >= Duration::from_secs(1) {
            eprintln!("{text}");
            self.last_line = std::time::Instant::now();
        }
    }
}

impl crate::exports::import::Progress for ImportProgress {
    fn checked(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => self.line(format!("checked {done} rows"), false),
        }
    }

    fn storing(&mut self, rows: u64) {
        self.total = rows;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.terminal {
            let bar = indicatif::ProgressBar::new(rows);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "storing {bar:40} {pos}/{len} rows ({per_sec}, {eta} left)",
            ) {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        } else {
            self.line(format!("all {rows} rows accepted; storing"), true);
        }
    }

    fn stored(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let total = self.total;
                self.line(format!("stored {done}/{total} rows"), done == total);
            }
        }
    }
}

async fn import(pool: &PgPool, args: ImportArgs) -> anyhow::Result<()> {
    use crate::exports::import::{Mapping, Outcome};
    let mut fields = std::collections::HashMap::new();
    for pair in &args.map {
        let (field, column) = pair
            .split_once('=')
            .filter(|(f, c)| !f.is_empty() && !c.is_empty())
            .ok_or_else(|| anyhow::anyhow!("--map {pair}: expected FIELD=COLUMN"))?;
        fields.insert(field.to_owned(), column.to_owned());
    }
    let mapping = Mapping {
        lon: args.lon,
        lat: args.lat,
        fields,
        created_at: args.created_at,
    };
    let started = std::time::Instant::now();
    let mut progress = ImportProgress::new();
    let outcome =
        crate::exports::import::import(pool, &args.campaign, &args.file, &mapping, &mut progress)
            .await;
    if let Some(bar) = progress.bar.take() {
        bar.finish_and_clear();
    }
    match outcome? {
        Outcome::Imported { rows } => {
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{rows} rows imported into `{}` in {seconds:.1} s ({:.0} rows/s)",
                args.campaign,
                rows as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
        Outcome::Refused { rows, rejected } => {
            for r in &rejected {
                eprintln!("line {}: {}", r.line, r.reason);
            }
            anyhow::bail!(
                "{} of {rows} rows refused; nothing was imported. Fix them and run the import again",
                rejected.len()
            )
        }
    }
}

async fn export(pool: &PgPool, args: ExportArgs) -> anyhow::Result<()> {
    use crate::exports::format::{self, Csv};
    let extension = args
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str());
    let format = args.format.unwrap_or(match extension {
        Some("csv") => ExportFormat::Csv,
        _ => ExportFormat::Geojson,
    });
    let campaign = crate::campaigns::get(pool, &args.campaign).await?;
    let problem = |e: crate::http::error::ApiError| {
        let problem = e.to_problem();
        let fields: Vec<String> = problem
            .errors
            .iter()
            .map(|f| format!("{}: {}", f.field, f.detail))
            .collect();
        anyhow::anyhow!("{} {}", problem.detail, fields.join("; "))
    };
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if args.raw {
        use crate::exports::raw::{Format, RawQuery};
        let query = RawQuery {
            from: args.from,
            to: args.to,
            district: args.district,
            excel: None,
        };
        let filter = query.check().map_err(problem)?;
        let format = match (format, args.excel) {
            (ExportFormat::Geojson, _) => Format::GeoJson,
            (ExportFormat::Csv, false) => Format::Csv,
            (ExportFormat::Csv, true) => Format::ExcelCsv,
        };
        let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
        let exporting = crate::exports::raw::export_and_audit(
            pool.clone(),
            crate::audit::Actor::Cli,
            campaign,
            filter,
            format,
            sender,
        );
        let writing = async {
            while let Some(chunk) = receiver.recv().await {
                out.write_all(&chunk?)?;
            }
            out.flush()?;
            Ok::<_, anyhow::Error>(())
        };
        let (rows, written) = tokio::join!(exporting, writing);
        written?;
        eprintln!("{} submissions exported", rows?);
        return Ok(());
    }
    let query = crate::exports::AggregateQuery {
        by: Some(args.by),
        breakdown: args.breakdown,
        sum: args.sum,
        from: args.from,
        to: args.to,
        excel: None,
    };
    let request = query.check(&campaign, true).map_err(problem)?;
    let aggregate = crate::exports::compute(pool, &campaign, &request, None)
        .await
        .map_err(problem)?;
    match format {
        ExportFormat::Geojson => {
            serde_json::to_writer(&mut out, &format::geojson(&aggregate, &campaign.slug))?
        }
        ExportFormat::Csv => {
            out.write_all(&format::csv(&aggregate, Csv::from_excel(args.excel))?)?
        }
    }
    out.flush()?;
    Ok(())
}
