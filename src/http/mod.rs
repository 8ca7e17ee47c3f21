//! The HTTP server: shared state, the routers, middleware (access per route: [`routes`]) and
//! graceful shutdown.

pub mod cache;
pub mod caching;
pub mod client_ip;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod ops;
pub mod routes;
pub mod widget;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use error::{ApiError, ApiResult};
use routes::Routes;

/// Everything a handler needs, shared: a clone is one reference count (it is cloned several
/// times per request, by each layer and extractor that takes the state).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    /// The database pool.
    pub db: PgPool,
    /// Server settings.
    pub config: Arc<ServerConfig>,
    /// Public campaigns recently read.
    pub campaigns: crate::campaigns::cache::CampaignCache,
    /// The queue that stores submissions in batches.
    pub submissions: crate::submissions::writer::BatchWriter,
    /// Vector tiles built since their campaign last changed.
    pub tiles: crate::tiles::TileCache,
    /// Public reads (aggregates, districts, time series, TileJSON) as built for their versions.
    pub responses: cache::ResponseCache,
    /// Each campaign's settings and data versions, kept in memory and learned by notification.
    pub versions: crate::figures::watch::VersionWatch,
    /// Each campaign's releases (figures finer than a district), read once per data version.
    pub released: crate::figures::release::ReleasedCache,
    /// Rate limits of the citizens' doors and reads, and the campaigns' allowance (shared by
    /// every instance over the database where it matters).
    pub limits: crate::safety::limits::RateLimits,
    /// The server secret (challenges, client hashes), read from the database on first use.
    pub secret: crate::safety::secret::SecretStore,
    /// Whether the database is known to be away (see [`crate::database::Health`]).
    pub health: crate::database::Health,
    /// The fonts of the basemap's labels, and the glyph ranges made from them.
    pub fonts: crate::basemap::glyphs::Fonts,
    /// Each campaign's addresses in memory, for the address search.
    pub addresses: crate::addresses::index::AddressIndexes,
    /// Where read-only work on published data goes: a replica that holds the versions asked
    /// for, else the primary ([`crate::database::replicas`]).
    pub reads: crate::database::replicas::Replicas,
}

impl AppState {
    /// State over `db` with `config` and empty caches.
    pub fn new(db: PgPool, config: ServerConfig) -> Self {
        Self(Arc::new(Shared {
            submissions: crate::submissions::writer::BatchWriter::start(
                crate::database::writer_pool(&db, config.submission_writers as u32),
                config.submission_writers,
            ),
            tiles: crate::tiles::TileCache::new(config.tile_cache_mb),
            responses: cache::ResponseCache::new(64),
            versions: crate::figures::watch::VersionWatch::start(db.clone()),
            released: Default::default(),
            limits: crate::safety::limits::RateLimits::new(config.rate_limits, db.clone()),
            secret: Default::default(),
            health: Default::default(),
            fonts: crate::basemap::glyphs::Fonts::new(&config.fonts_dir),
            addresses: crate::addresses::index::AddressIndexes::new(config.address_index_max),
            reads: crate::database::replicas::Replicas::start(
                db.clone(),
                &config.replicas,
                config.replica_max_lag,
            ),
            db,
            config: Arc::new(config),
            campaigns: Default::default(),
        }))
    }
}

impl Shared {
    /// The releases of `campaign` at `data_version` (`None` before its first), read once per
    /// data version from a server that holds it.
    pub async fn released(
        &self,
        campaign: &crate::campaigns::Campaign,
        data_version: i64,
    ) -> ApiResult<Arc<Option<crate::figures::estimates::Released>>> {
        let reads = self
            .reads
            .at(campaign.id, campaign.config_version, data_version)
            .await;
        Ok(self.released.get(&reads, campaign.id, data_version).await?)
    }

    /// The public campaign `slug` and its data version, as fresh as the versions kept in
    /// memory ([`crate::figures::watch`]): a cached campaign whose settings have changed
    /// since is read again. No database round trip when nothing changed.
    pub async fn public_campaign(
        &self,
        slug: &str,
    ) -> ApiResult<(Arc<crate::campaigns::Campaign>, i64)> {
        let campaign = self.campaigns.get_public(&self.db, slug).await?;
        let (config_version, data_version) = self.versions.get(campaign.id).await?;
        if config_version == campaign.config_version {
            return Ok((campaign, data_version));
        }
        self.campaigns.invalidate(slug).await;
        Ok((
            self.campaigns.get_public(&self.db, slug).await?,
            data_version,
        ))
    }
}

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Folder holding the widget (`embed.html`, `demo.html`, and the built bundles in `dist/`).
    pub widget_dir: PathBuf,
    /// Connections that store submissions in batches (see [`crate::submissions::writer`]).
    pub submission_writers: usize,
    /// Memory for built vector tiles, in MiB (0: no tile cache).
    pub tile_cache_mb: u64,
    /// Where the client's address comes from (the TCP peer, or a trusted proxy's header).
    pub client_ip: client_ip::ClientIpConfig,
    /// Rate limits of the citizens' doors and reads, and the campaigns' allowance.
    pub rate_limits: crate::safety::limits::RateLimitConfig,
    /// Unconfirmed subscriptions a campaign accepts per hour, a tenth of them per recipient
    /// domain (`--unconfirmed-per-hour`).
    pub unconfirmed_per_hour: u32,
    /// Longest wait for a request's headers, from the connection's first byte or, on a
    /// kept-alive connection, from the end of the previous response (the idle timeout).
    pub header_read_timeout: Duration,
    /// The self-hosted basemap, if the city supplied one (`--basemap`).
    pub basemap: Option<Arc<crate::basemap::Archive>>,
    /// Folder of the fonts the basemap's labels are drawn with (`--fonts`).
    pub fonts_dir: PathBuf,
    /// Most addresses a campaign's address index holds in memory; a larger area is searched
    /// in the database (`--address-index-max`; 0: always in the database).
    pub address_index_max: usize,
    /// Streaming replicas for read-only work on published data (`--replica-url`).
    pub replicas: Vec<sqlx::postgres::PgConnectOptions>,
    /// A replica further behind the primary than this is not read from (`--replica-max-lag`).
    pub replica_max_lag: Duration,
    /// Whether e-mail notices are sent (`--smtp-url`): without them, nobody may subscribe.
    pub email_notices: bool,
    /// Console sign-in attempts a client (IPv4 address or IPv6 /64) may make per minute,
    /// shared by every instance; bursts of half as many (`--sign-ins-per-ip`; 0: no limit).
    pub sign_ins_per_minute: u32,
}

impl ServerConfig {
    /// Default settings, serving the widget from `widget_dir`.
    pub fn new(widget_dir: impl Into<PathBuf>) -> Self {
        Self {
            widget_dir: widget_dir.into(),
            submission_writers: 2,
            tile_cache_mb: 256,
            client_ip: Default::default(),
            rate_limits: Default::default(),
            header_read_timeout: HEADER_READ_TIMEOUT,
            basemap: None,
            fonts_dir: crate::basemap::glyphs::DEFAULT_FONTS_DIR.into(),
            address_index_max: crate::addresses::index::DEFAULT_MAX_ADDRESSES,
            replicas: Vec::new(),
            replica_max_lag: crate::database::replicas::DEFAULT_MAX_LAG,
            email_notices: false,
            sign_ins_per_minute: DEFAULT_SIGN_INS_PER_MINUTE,
            unconfirmed_per_hour: 2000,
        }
    }
}

/// Default console sign-in attempts per client per minute.
pub const DEFAULT_SIGN_INS_PER_MINUTE: u32 = 10;

/// Longest a request may take before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Default longest wait for a request's headers, and for the next request on an idle
/// kept-alive connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a request may change something (anything but GET, HEAD and OPTIONS).
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// While the database is known to be away, readiness and every write answer 503 with
/// Retry-After at once, instead of each waiting out the pool's timeout. Reads go on: those
/// served from memory (tiles, releases) still answer.
async fn fail_fast_while_database_away(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let write = is_write(request.method());
    if state.health.is_away() && (write || request.uri().path() == "/readyz") {
        return ApiError::Unavailable("the embedded database is restarting".into()).into_response();
    }
    next.run(request).await
}

/// After a write on a route that names no public campaign (staff: settings, districts,
/// moderation, erasure), every campaign's versions are read again on their next use, so that
/// this instance's next tile holds the write (see [`crate::figures::watch`]).
async fn mark_staff_writes(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let write = is_write(request.method());
    let response = next.run(request).await;
    if write {
        state.versions.touched_all();
    }
    response
}

/// The two groups of routes of [`app`], each route declared once with its access (see
/// [`routes`]): reads, open to every site, and citizens' writes.
fn declared(widget_dir: &Path) -> (Routes, Routes) {
    let open = Routes::new()
        .merge(crate::campaigns::http::routes())
        .merge(crate::districts::http::routes())
        .merge(crate::story::http::routes())
        .merge(crate::addresses::http::routes())
        .merge(crate::tiles::http::routes())
        .merge(crate::basemap::http::routes())
        .merge(crate::exports::http::routes())
        .merge(crate::report::http::routes())
        .merge(crate::figures::http::routes())
        .merge(crate::auth::http::routes())
        .merge(crate::audit::http::routes())
        .merge(crate::moderation::http::routes())
        .merge(crate::notify::http::admin_routes())
        .merge(ops::routes())
        .merge(widget::routes(widget_dir));
    let writes = Routes::new()
        .merge(crate::submissions::http::routes())
        .merge(crate::safety::http::routes())
        .merge(crate::notify::http::routes());
    (open, writes)
}

/// Every route [`app`] serves with the access it needs, as derived from its declarations.
pub fn route_table(widget_dir: &Path) -> routes::AccessTable {
    let (open, writes) = declared(widget_dir);
    open.merge(writes).table()
}

/// The whole application: every route and its middleware.
pub fn app(state: AppState) -> Router {
    let (open, writes) = declared(&state.config.widget_dir);
    let (open, mut document, open_table) = open.split();
    let (writes, writes_document, writes_table) = writes.split();
    document.merge(writes_document);
    let document = Arc::new(ops::document(document));
    // Reads: open to every site.
    let open = open
        // After every route: access is checked once a route matched (see `routes`), inside
        // the CORS layer so that preflights are answered by it.
        .route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), Arc::new(open_table)),
            routes::enforce,
        ))
        // Set before the CORS layer, so that preflights of any path reach that layer.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            mark_staff_writes,
        ))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
                .expose_headers([header::ETAG, header::RETRY_AFTER, header::LOCATION])
                // Every site gets the same answers (`*`, fixed lists): a `Vary: Origin` would
                // only split a CDN's copy of a public read into one per embedding site.
                .vary(Vec::<header::HeaderName>::new()),
        );
    // Citizens' writes: rate-limited, and only from the sites each campaign allows (CORS
    // outermost, so that a 429 or 403 is readable by an allowed page).
    let writes = writes
        .route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), Arc::new(writes_table)),
            routes::enforce,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        // The origin guard before any limit: a hostile page's visitors take nothing from
        // anyone's allowance.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::safety::http::limit_writes,
        ))
        .layer(axum::middleware::from_fn(crate::safety::http::guard_writes))
        .layer(crate::safety::http::write_cors())
        // Outermost: the campaign, resolved once from the decoded path for every guard above.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::safety::http::resolve_campaign,
        ));
    metrics::handle();
    let routed = Router::new()
        .merge(open)
        .merge(writes)
        .route_layer(axum::middleware::from_fn(metrics::record))
        .fallback(fallback)
        .with_state(state.clone());
    // The layers every request goes through wrap the routed application once, as its one
    // service, rather than each route (which is what `Router::layer` does): a middleware of
    // `from_fn` clones the whole chain of services beneath it for every request, and a chain
    // built per route is as deep as the layers above it.
    Router::new()
        .fallback_service(routed)
        // The OpenAPI document, for `/api/v1/openapi.json`.
        .layer(axum::Extension(document))
        .layer(axum::middleware::from_fn_with_state(
            state,
            fail_fast_while_database_away,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Outside the timeout, so that its bare 408 gets a problem body too.
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        // How each answer may be kept by browsers, proxies and CDNs, once every other layer
        // has had its say (errors, timeouts included).
        .layer(axum::middleware::from_fn(caching::apply))
        // Method and path, never the query string: the address search's `q` is what a
        // citizen typed, and must not reach any log (the default span records the whole URI).
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
}

/// The span of a request: its method and path, without the query string.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        version = ?request.version(),
    )
}

/// `scheme://host` as the client reached this server: the Host header, and the scheme a
/// reverse proxy reports in X-Forwarded-Proto (http or https only).
pub fn public_base_url(headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|s| *s == "https" || *s == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// Whether the request's Accept-Encoding takes gzip (and does not refuse it with `q=0`).
pub fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|coding| {
                let mut parts = coding.split(';');
                parts.next().is_some_and(|name| name.trim() == "gzip")
                    && !parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"))
            })
        })
}

/// Whether the request's If-None-Match holds `etag` (or `*`).
pub fn etag_matches(headers: &axum::http::HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
}

async fn fallback(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// Gives a problem+json body to error responses produced outside the handlers (timeouts,
/// body limits in layers), so that no client ever gets an empty or plain-text error.
async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let error = match status {
        StatusCode::REQUEST_TIMEOUT => ApiError::BadRequest(format!(
            "the request was not answered within {} s: its body came too slowly, or the server \
             was too busy; send it again",
            REQUEST_TIMEOUT.as_secs()
        )),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("the body is larger than this route accepts".into())
        }
        StatusCode::NOT_FOUND => ApiError::NotFound("not found".into()),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed("method not allowed".into()),
        s if s.is_server_error() => ApiError::Internal(anyhow::anyhow!("bare {s} response")),
        s => ApiError::BadRequest(s.canonical_reason().unwrap_or("bad request").to_owned()),
    };
    let mut problem = error.into_response();
    *problem.status_mut() = status;
    let (mut parts, body) = problem.into_parts();
    parts.headers.extend(
        response
            .headers()
            .iter()
            .filter(|(name, _)| *name != header::CONTENT_TYPE && *name != header::CONTENT_LENGTH)
            .map(|(n, v)| (n.clone(), v.clone())),
    );
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    Response::from_parts(parts, Body::new(body))
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish,
/// with the default [`HEADER_READ_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, HEADER_READ_TIMEOUT, shutdown).await
}

/// Serves `app` on `listener` (HTTP/1.1, and HTTP/2 with prior knowledge) until `shutdown`
/// resolves, then lets in-flight requests finish. A connection that sends no complete request
/// head within `header_read_timeout` of opening, or of its previous response, is closed.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;

    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(header_read_timeout)
        .keep_alive_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request.map(Body::new)
            },
        ));
        let (http1, http2, watcher) = (http1.clone(), http2.clone(), graceful.watcher());
        tokio::spawn(async move {
            let Some(is_http2) = sniff_http2(&stream, header_read_timeout).await else {
                return; // Silent, or closed, before its first request.
            };
            let io = TokioIo::new(stream);
            // Errors are the client's (reset, timeout, malformed HTTP): nothing to log.
            let _ = if is_http2 {
                watcher.watch(http2.serve_connection(io, service)).await
            } else {
                watcher.watch(http1.serve_connection(io, service)).await
            };
        });
    }
    drop(listener);
    // Requests in flight are answered (a submission waits for its commit); connections then
    // close. A client that holds its connection open longer is not waited for.
    tracing::info!(
        connections = graceful.count(),
        "stopping: answering the requests in flight"
    );
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(limit = ?DRAIN_LIMIT, "connections still open after the drain limit; stopping anyway");
    }
    Ok(())
}

/// How long a stopping server waits for the requests in flight: under the usual 30 s between
/// a supervisor's SIGTERM and its SIGKILL (systemd, Kubernetes).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(25);

/// Waits (at most `limit`) for a connection's first bytes and tells HTTP/2 (its preface) from
/// HTTP/1; `None` when the client sent nothing in time or closed.
async fn sniff_http2(stream: &tokio::net::TcpStream, limit: Duration) -> Option<bool> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buffer = [0u8; PREFACE.len()];
    let sniff = async {
        loop {
            let read = stream.peek(&mut buffer).await.ok()?;
            if read == 0 {
                return None;
            }
            if buffer[..read] != PREFACE[..read] {
                return Some(false);
            }
            if read == PREFACE.len() {
                return Some(true);
            }
            // A partial preface: peeking again returns at once, so wait for more.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(limit, sniff).await.ok()?
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
