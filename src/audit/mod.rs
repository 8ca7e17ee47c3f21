//! The audit log: who did what, when and why. Moderation decisions, raw exports and token
//! changes each add one row; nothing ever updates or deletes one. Admins read it through
//! `GET /api/v1/admin/audit` ([`http`]).

pub mod http;

use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Staff;

/// Who acted.
#[derive(Debug, Clone)]
pub enum Actor<'a> {
    /// A holder of a staff token, through the API.
    Staff(&'a Staff),
    /// Someone with access to the server, through the `civicmap` command.
    Cli,
    /// The server itself, on a schedule (e.g. `"scheduled retention"`).
    System(&'a str),
}

impl Actor<'_> {
    /// The staff token that acted, if any.
    pub fn token_id(&self) -> Option<i64> {
        match self {
            Actor::Staff(staff) => Some(staff.token_id),
            Actor::Cli | Actor::System(_) => None,
        }
    }

    /// How the actor is named in the log.
    pub fn name(&self) -> String {
        match self {
            Actor::Staff(staff) => format!("{} ({})", staff.name, staff.role.as_str()),
            Actor::Cli => "command line".to_owned(),
            Actor::System(what) => format!("civicmap ({what})"),
        }
    }
}

/// One action to record.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Who.
    pub actor: Actor<'a>,
    /// What, as a dotted verb: `submission.approve`, `export.raw`, `token.revoke`.
    pub action: &'a str,
    /// In which campaign, if any.
    pub campaign_id: Option<i64>,
    /// On what, if one thing.
    pub subject: Option<String>,
    /// Why, as the actor gave it.
    pub reason: Option<String>,
    /// Anything else: filters, row counts, previous state.
    pub details: Value,
}

/// Adds `entry` to the log (inside the caller's transaction when given one).
pub async fn record(db: impl PgExecutor<'_>, entry: Entry<'_>) -> sqlx::Result<()> {
    record_returning_id(db, entry).await.map(|_| ())
}

/// [`record`], returning the entry's id (for [`complete`]).
pub async fn record_returning_id(db: impl PgExecutor<'_>, entry: Entry<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO audit_log (token_id, actor, action, campaign_id, subject, reason, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        entry.actor.token_id(),
        entry.actor.name(),
        entry.action,
        entry.campaign_id,
        entry.subject,
        entry.reason,
        sqlx::types::Json(&entry.details) as _,
    )
    .fetch_one(db)
    .await
}

/// Adds the outcome of a long action to its entry, written before the action began (so that
/// a crash midway still leaves the entry): the keys of `outcome` are set in `details`.
pub async fn complete(
    db: impl PgExecutor<'_>,
    id: i64,
    outcome: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE audit_log SET details = details || $2 WHERE id = $1",
        id,
        sqlx::types::Json(outcome) as _,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// One row of the log, as admins read it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub token_id: Option<i64>,
    pub actor: String,
    pub action: String,
    /// The campaign's slug, if the action was about one.
    pub campaign: Option<String>,
    pub subject: Option<String>,
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub details: sqlx::types::Json<Value>,
}

/// The newest entries first, optionally of one campaign and one kind of action, older than
/// `before` (an id, for paging).
pub async fn list(
    db: impl PgExecutor<'_>,
    campaign: Option<&str>,
    action: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<LogEntry>> {
    sqlx::query_as!(
        LogEntry,
        r#"SELECT l.id, l.at, l.token_id, l.actor, l.action, c.slug AS "campaign?", l.subject,
                l.reason, l.details AS "details: _"
         FROM audit_log l LEFT JOIN campaigns c ON c.id = l.campaign_id
         WHERE ($1::text IS NULL OR c.slug = $1)
           AND ($2::text IS NULL OR l.action = $2)
           AND ($3::bigint IS NULL OR l.id < $3)
         ORDER BY l.id DESC LIMIT $4"#,
        campaign,
        action,
        before,
        limit,
    )
    .fetch_all(db)
    .await
}
