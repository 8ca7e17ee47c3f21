//! `GET /api/v1/admin/audit`: admins read the audit log, newest first, page by page.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::LogEntry;
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::QueryParams;
use crate::http::routes::{ADMIN, Routes};

/// Most entries one page may hold.
pub const MAX_LIMIT: i64 = 1000;

/// The audit route.
pub fn routes() -> Routes {
    Routes::new().add(ADMIN, Private, routes!(read_log))
}

/// Filters and paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this campaign (slug).
    campaign: Option<String>,
    /// Only this action, e.g. `submission.hide`, `token.revoke`.
    action: Option<String>,
    /// Only entries older than this id (the previous page's `next_before`).
    before: Option<i64>,
    /// Entries per page, 1 to 1000 (100 by default).
    limit: Option<i64>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<LogEntry>,
    /// Pass as `before` to read the next (older) page; `null` on the last page.
    pub next_before: Option<i64>,
}

/// The audit log: who did what, when and why (moderation, raw exports, tokens, retention).
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries, newest first", body = AuditPage),
        (status = 400, description = "Invalid filter or limit", body = Problem),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn read_log(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    if let Some(slug) = &query.campaign {
        crate::campaigns::get(&state.db, slug).await?;
    }
    let entries = super::list(
        &state.db,
        query.campaign.as_deref(),
        query.action.as_deref(),
        query.before,
        limit,
    )
    .await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}
