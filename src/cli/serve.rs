//! `civicmap serve`: the API, the tiles and the widget, with housekeeping every hour.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sqlx::PgPool;

use super::database::DbArgs;
use crate::http::{AppState, ServerConfig};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
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
    /// Submission writes (POST, PATCH, DELETE) a client (IPv4 address or IPv6 /64) may make per
    /// minute, and, each in its own bucket, challenges and confirmations; its IPv4 /24 and IPv6
    /// /56 get 8 times as many, its IPv6 /48 16 times; 0 turns these limits off (load tests).
    #[arg(long, env = "CIVICMAP_SUBMISSIONS_PER_IP", default_value_t = 30)]
    submissions_per_ip: u32,
    /// Writes a client may make at once before --submissions-per-ip applies.
    #[arg(long, env = "CIVICMAP_SUBMISSIONS_PER_IP_BURST", default_value_t = 10)]
    submissions_per_ip_burst: u32,
    /// Admitted submissions per campaign per minute from all clients together (bursts of ten
    /// seconds' worth); beyond it the campaign asks each submission for a proof of work, its
    /// difficulty rising with the load, and lets first contributions through from a reserve of
    /// a tenth of this rate. 0: never.
    #[arg(
        long,
        env = "CIVICMAP_SUBMISSIONS_PER_CAMPAIGN",
        default_value_t = 6000
    )]
    submissions_per_campaign: u32,
    /// Console sign-in attempts a client (IPv4 address or IPv6 /64) may make per minute,
    /// bursts of half as many, counted by every instance together; 0 turns the limit off.
    #[arg(
        long,
        env = "CIVICMAP_SIGN_INS_PER_IP",
        default_value_t = crate::http::DEFAULT_SIGN_INS_PER_MINUTE
    )]
    sign_ins_per_ip: u32,
    /// Subscription requests (e-mail notices) a client may make per minute, bursts of half as
    /// many (its networks: as for --submissions-per-ip); 0 turns the limit off.
    #[arg(long, env = "CIVICMAP_SUBSCRIPTIONS_PER_IP", default_value_t = 6)]
    subscriptions_per_ip: u32,
    /// Address searches a client may make per minute on this instance, bursts of a quarter as
    /// many (its networks: as for --submissions-per-ip); 0 turns the limit off.
    #[arg(long, env = "CIVICMAP_SEARCHES_PER_IP", default_value_t = 120)]
    searches_per_ip: u32,
    /// Public downloads a client may have built on this instance per minute (the cached ones
    /// are free), bursts of half as many; 0 turns the limit off.
    #[arg(long, env = "CIVICMAP_BUILDS_PER_IP", default_value_t = 60)]
    builds_per_ip: u32,
    /// Unconfirmed subscriptions a campaign takes per hour without a proof of work (a tenth of
    /// them per recipient domain); beyond, until the hour turns, every subscription needs one.
    #[arg(long, env = "CIVICMAP_UNCONFIRMED_PER_HOUR", default_value_t = 2000)]
    unconfirmed_per_hour: u32,
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
    /// The basemap to serve: a PMTiles file of vector tiles in the Protomaps schema (an
    /// OpenStreetMap extract, see README). Without it, `--demo` serves a demo basemap built from
    /// the repository's data, and otherwise the map has no basemap. Replace the file by renaming
    /// a new one over it and restarting, never by writing into it.
    #[arg(long, env = "CIVICMAP_BASEMAP")]
    basemap: Option<PathBuf>,
    /// Folder of the TrueType/OpenType fonts the basemap's labels are drawn with (Debian's
    /// fonts-noto-core; the style uses Noto Sans Regular, Bold and Italic).
    #[arg(long, env = "CIVICMAP_FONTS", default_value = crate::basemap::glyphs::DEFAULT_FONTS_DIR)]
    fonts: PathBuf,
    /// Most addresses of a campaign's area the address search keeps in memory (about 100
    /// bytes each); a larger area is searched in the database, more slowly. 0: always in the
    /// database.
    #[arg(long, env = "CIVICMAP_ADDRESS_INDEX_MAX", default_value_t = crate::addresses::index::DEFAULT_MAX_ADDRESSES)]
    address_index_max: usize,
    /// Address of a separate listener for Prometheus metrics (`GET /metrics`), e.g.
    /// `127.0.0.1:9187`; keep it off the public network. Without it, no metrics are served.
    #[arg(long, env = "CIVICMAP_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// PostgreSQL URL of a streaming replica of the database, for read-only work on published
    /// figures (aggregates, time series, the districts layer, tiles, raw exports); repeat for
    /// several, or separate them with commas in the variable. Writes, staff and a submitter's
    /// own reads stay on the primary (docs/DEPLOY.md).
    #[arg(
        long = "replica-url",
        env = "CIVICMAP_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    replica_urls: Vec<sqlx::postgres::PgConnectOptions>,
    /// Seconds a replica may lag behind the primary and still be read from; a replica further
    /// behind (or not answering) is skipped until it catches up.
    #[arg(long, env = "CIVICMAP_REPLICA_MAX_LAG", default_value_t = 2.0)]
    replica_max_lag: f64,
    /// SMTP server that e-mail notices are handed to: `smtp://[user:password@]host[:port]`
    /// (plain SMTP, to a relay such as the city's MTA; port 25), `smtp://…?tls=required`
    /// (STARTTLS, required; port 587) or `smtps://…` (TLS; port 465). Without it, no e-mail
    /// is sent and citizens cannot follow a campaign; webhooks are sent either way.
    #[arg(long, env = "CIVICMAP_SMTP_URL", requires_all = ["mail_from", "public_url"])]
    smtp_url: Option<String>,
    /// A certificate authority (PEM file) trusted besides the machine's for the SMTP server
    /// and https webhook endpoints: the city's own, for servers whose certificates it issued.
    #[arg(long, env = "CIVICMAP_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Sender of e-mail notices, e.g. `Ville de Nanterre <carte@nanterre.fr>`.
    #[arg(long, env = "CIVICMAP_MAIL_FROM")]
    mail_from: Option<String>,
    /// This service's address as citizens reach it (`https://carte.nanterre.fr`), for the
    /// links in e-mail notices.
    #[arg(long, env = "CIVICMAP_PUBLIC_URL")]
    public_url: Option<String>,
    /// Most notices (e-mails and webhook POSTs) this instance sends a second, confirmations
    /// apart.
    #[arg(long, env = "CIVICMAP_NOTICES_PER_SECOND", default_value_t = 5)]
    notices_per_second: u32,
    /// Most subscription confirmations this instance sends a second, in a lane of their own
    /// (a flood of subscriptions never delays notices and webhooks).
    #[arg(long, env = "CIVICMAP_CONFIRMATIONS_PER_SECOND", default_value_t = 2)]
    confirmations_per_second: u32,
    /// Milliseconds between two looks for districts passing a share of their target and
    /// campaigns closing.
    #[arg(long, env = "CIVICMAP_NOTICE_INTERVAL_MS", default_value_t = 10_000)]
    notice_interval_ms: u64,
    /// Seconds before a failed notice is tried again; each further retry waits twice as long
    /// (up to 6 hours, 12 attempts in all).
    #[arg(long, env = "CIVICMAP_NOTICE_RETRY_SECONDS", default_value_t = 30)]
    notice_retry_seconds: u64,
    #[command(flatten)]
    db: DbArgs,
}

/// Serves until SIGTERM or Ctrl-C, then answers the requests in flight.
pub(super) async fn run(args: ServeArgs) -> anyhow::Result<()> {
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
        let basemap = match (&args.basemap, args.demo) {
            (Some(path), _) => Some(path.clone()),
            (None, true) => Some(crate::demo::basemap(&pool, &args.db.data_dir().join("demo-basemap.pmtiles")).await?),
            (None, false) => None,
        };
        let basemap = match basemap {
            Some(path) => {
                let archive = crate::basemap::Archive::open(&path).await?;
                let (min, max) = archive.zooms();
                tracing::info!(file = %path.display(), zooms = %format!("{min}-{max}"), "basemap served at /basemap");
                Some(std::sync::Arc::new(archive))
            }
            None => None,
        };
        let extra_root = match &args.ca_file {
            Some(file) => {
                let pem = std::fs::read(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                    .with_context(|| format!("--ca-file {} is not PEM", file.display()))?;
                anyhow::ensure!(
                    !certificates.is_empty(),
                    "--ca-file {} holds no certificate",
                    file.display()
                );
                Some(pem)
            }
            None => None,
        };
        let mail = match &args.smtp_url {
            Some(smtp) => {
                let mut mail = crate::notify::mail::MailConfig::new(
                    smtp,
                    args.mail_from.as_deref().unwrap_or_default(),
                    args.public_url.as_deref().unwrap_or_default(),
                )?;
                if let Some(pem) = &extra_root {
                    mail = mail.trusting(pem.clone())?;
                }
                // Its TLS settings checked now, so that the sender cannot fail to make it.
                crate::notify::mail::Mailer::new(mail.clone())?;
                Some(mail)
            }
            None => None,
        };
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
                client_ip: crate::http::client_ip::ClientIpConfig {
                    trusted_header: args.trusted_proxy_header.clone(),
                    trusted_proxies: args.trusted_proxies.clone(),
                },
                rate_limits: crate::safety::limits::RateLimitConfig {
                    per_ip_per_minute: args.submissions_per_ip,
                    per_ip_burst: args.submissions_per_ip_burst,
                    per_campaign_per_minute: args.submissions_per_campaign,
                    subscriptions_per_ip_per_minute: args.subscriptions_per_ip,
                    searches_per_ip_per_minute: args.searches_per_ip,
                    builds_per_ip_per_minute: args.builds_per_ip,
                },
                unconfirmed_per_hour: args.unconfirmed_per_hour,
                header_read_timeout,
                basemap,
                fonts_dir: args.fonts.clone(),
                address_index_max: args.address_index_max,
                replicas: args.replica_urls.clone(),
                replica_max_lag: Duration::try_from_secs_f64(args.replica_max_lag)
                    .context("--replica-max-lag must be a number of seconds, 0 or more")?,
                email_notices: mail.is_some(),
                sign_ins_per_minute: args.sign_ins_per_ip,
            },
        );
        if state.config.basemap.is_some() {
            // Catalogues the fonts now rather than at the first label, and says at once if the
            // style's fonts are missing (its labels would not show).
            let state = state.clone();
            tokio::spawn(async move {
                let names = state.fonts.names().await;
                for font in crate::basemap::style::FONTS {
                    if !names.iter().any(|n| n == font) {
                        tracing::warn!(
                            font,
                            dir = %state.fonts.dir().display(),
                            "a font of the basemap's style is missing: its labels will not show \
                             (apt-get install fonts-noto-core, or --fonts DIR)"
                        );
                    }
                }
            });
        }
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
        let releases = tokio::spawn(releases(pool.clone()));
        if let Some(mail) = &mail {
            tracing::info!(smtp = %mail.smtp_url.host_str().unwrap_or_default(), "e-mail notices on");
        }
        // Stopped when dropped, at the end of this block.
        let _notices = crate::notify::outbox::start(
            pool.clone(),
            crate::notify::outbox::NotifyConfig {
                mail,
                per_second: args.notices_per_second,
                confirmations_per_second: args.confirmations_per_second,
                interval: Duration::from_millis(args.notice_interval_ms.max(100)),
                retry_base: Duration::from_secs(args.notice_retry_seconds.max(1)),
                extra_root,
            },
        );
        let served = crate::http::serve_with(
            listener,
            crate::http::app(state),
            header_read_timeout,
            crate::http::shutdown_signal(),
        )
        .await;
        housekeeping.abort();
        releases.abort();
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

/// The releases of figures finer than a district, as they fall due: looked for every minute
/// (`crate::figures::release::run_due`; several instances make each release once).
async fn releases(pool: PgPool) {
    let mut interval = tokio::time::interval(Duration::from_secs(60));
    loop {
        interval.tick().await;
        let now = time::OffsetDateTime::now_utc();
        if let Err(e) = crate::figures::release::run_due(&pool, now).await {
            tracing::warn!(error = %e, "cannot release the figures due");
        }
    }
}

/// Periodic clean-up, every hour: expired idempotency records, spent challenges, client
/// hashes past their window, the retention of exact data of campaigns closed long enough, and
/// the e-mail addresses of their followers (and of followers who never confirmed).
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
        match crate::notify::purge(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                "subscriptions past retention or unconfirmed deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot delete expired subscriptions"),
        }
        let actor = crate::audit::Actor::System("scheduled retention");
        if let Err(e) = crate::retention::run(&pool, actor, None, false).await {
            tracing::warn!(error = %e, "cannot apply retention");
        }
    }
}
