//! The HTTP server: shared state, the routers, middleware (access per route: [`routes`]) and
//! graceful shutdown.

pub mod error;
pub mod extract;
pub mod ops;
pub mod routes;
pub mod widget;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use error::ApiError;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
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
}

impl AppState {
    /// State over `db` with `config` and empty caches.
    pub fn new(db: PgPool, config: ServerConfig) -> Self {
        Self {
            submissions: crate::submissions::writer::BatchWriter::start(
                crate::database::writer_pool(&db, config.submission_writers as u32),
                config.submission_writers,
            ),
            tiles: crate::tiles::TileCache::new(config.tile_cache_mb),
            db,
            config: Arc::new(config),
            campaigns: Default::default(),
        }
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
}

impl ServerConfig {
    /// Default settings, serving the widget from `widget_dir`.
    pub fn new(widget_dir: impl Into<PathBuf>) -> Self {
        Self {
            widget_dir: widget_dir.into(),
            submission_writers: 2,
            tile_cache_mb: 256,
        }
    }
}

/// Longest a request may take before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole application: every route and its middleware.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(crate::campaigns::http::router())
        .merge(crate::districts::http::router())
        .merge(crate::submissions::http::router())
        .merge(crate::tiles::http::router())
        .merge(crate::auth::http::router())
        .merge(crate::audit::http::router())
        .merge(crate::moderation::http::router())
        .merge(ops::api_router());
    Router::new()
        .merge(api)
        .merge(ops::router())
        .merge(widget::router(&state.config.widget_dir))
        // After every route: access is checked once a route matched (see `routes`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::enforce,
        ))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    "idempotency-key".parse().unwrap(),
                    "x-edit-token".parse().unwrap(),
                ])
                .expose_headers([header::ETAG, header::RETRY_AFTER, header::LOCATION]),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
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
        StatusCode::REQUEST_TIMEOUT => ApiError::BadRequest("the request took too long".into()),
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

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
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
    tracing::info!("shutting down: finishing in-flight requests");
}
