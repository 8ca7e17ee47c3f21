//! Prometheus metrics (`metrics` facade, `metrics-exporter-prometheus` recorder), served by
//! `civicmap serve --metrics-listen ADDR` on a listener of their own, apart from the public one.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `civicmap_http_requests_total` | counter | `method`, `route` (the router's pattern), `status` |
//! | `civicmap_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `civicmap_submissions_stored_total` | counter | |
//! | `civicmap_submission_batch_size` | histogram | |
//! | `civicmap_submission_queue_depth` | gauge | |
//! | `civicmap_submission_worker_restarts_total` | counter | (a writer panicked and was replaced) |
//! | `civicmap_tile_requests_total`, `civicmap_tile_builds_total` | counters | (hits = requests − builds) |
//! | `civicmap_rate_limited_total` | counter | `scope`: door or read and network (`submit/client`, `challenge/24`, `subscribe/56`, `search/48`, `build/client`, …) |
//! | `civicmap_campaign_pressure_difficulty` | gauge | `campaign` (slug): the proof of work each submission needs while the campaign's allowance is spent; 0 when it is not |
//! | `civicmap_pressure_admitted_total` | counter | `by` (`proof`, `reserve`): submissions let in while under pressure |
//! | `civicmap_pressure_refused_total` | counter | submissions asked for a proof of work under pressure |
//! | `civicmap_db_pool_connections`, `civicmap_db_pool_idle` | gauges | |
//! | `civicmap_database_away` | gauge | 1 while the embedded cluster is being restarted |
//! | `civicmap_embedded_restarts_total` | counter | |

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;

/// The process's recorder, installed on first use (one per process, shared by every server
/// it runs, as the tests do).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 64.0,
            ])
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("civicmap installs the only metrics recorder")
    })
}

/// Route layer: counts each request by route pattern and status, and times it.
pub async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "civicmap_http_requests_total",
        "method" => method.clone(), "route" => route.clone(), "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "civicmap_http_request_duration_seconds",
        "method" => method, "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The metrics endpoint, for a listener of its own.
pub fn router(state: AppState) -> Router {
    handle();
    Router::new()
        .route("/metrics", get(render))
        .with_state(state)
}

/// `GET /metrics`: the Prometheus text format, with the pool's gauges sampled now.
async fn render(State(state): State<AppState>) -> Response {
    metrics::gauge!("civicmap_db_pool_connections").set(f64::from(state.db.size()));
    metrics::gauge!("civicmap_db_pool_idle").set(state.db.num_idle() as f64);
    metrics::gauge!("civicmap_database_away").set(if state.health.is_away() { 1.0 } else { 0.0 });
    // Every campaign that was under pressure within the hour: its difficulty now, or 0.
    let pressure = sqlx::query!(
        r#"SELECT c.slug, p.difficulty,
                  p.last_seen > now() - $1::interval AS "active!"
           FROM campaign_pressure p JOIN campaigns c ON c.id = p.campaign_id"#,
        sqlx::postgres::types::PgInterval::try_from(crate::safety::limits::PRESSURE_QUIET)
            .unwrap_or_default(),
    )
    .fetch_all(&state.db)
    .await;
    match pressure {
        Ok(rows) => {
            for row in rows {
                let difficulty = if row.active {
                    f64::from(row.difficulty)
                } else {
                    0.0
                };
                metrics::gauge!("civicmap_campaign_pressure_difficulty", "campaign" => row.slug)
                    .set(difficulty);
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot read the campaigns' pressure"),
    }
    let handle = handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
