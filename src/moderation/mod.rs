//! Moderation: the queue of submissions waiting for a decision or reported, decisions that
//! move the published counts, grid cells and data version in the same transaction as the
//! status change (so counts, tiles and exports reflect them at once), and reports.
//!
//! Who reports: staff (moderators, planners, admins) through the API, and any server-side
//! check through [`report`] with its own [`Actor`]. The public never sees a single submission
//! (only aggregates), so it has nothing to point at; a submitter erases their own entry with
//! its edit token. A decision on a submission resolves every open report on it.

pub mod http;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::campaigns::Campaign;
use crate::submissions::{DistrictRef, Status};
use crate::validation::Invalid;

/// What can go wrong with a moderation action.
#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    /// The reason is missing or too long.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such submission in this campaign.
    #[error("no submission {0} in this campaign")]
    NotFound(Uuid),
    /// The action does not apply to the submission as it is; why.
    #[error("{0}")]
    NotApplicable(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

type Result<T, E = ModerationError> = std::result::Result<T, E>;

/// What a moderator decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A pending submission is published and counted.
    Approve,
    /// A pending submission is refused (reason required).
    Reject,
    /// A published submission is taken out of the counts (reason required).
    Hide,
    /// A hidden or rejected submission is published and counted again.
    Restore,
    /// The open reports on a submission are closed; its status does not change.
    Dismiss,
}

impl Action {
    /// The action's name, as in requests and in the audit log (`submission.<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Hide => "hide",
            Action::Restore => "restore",
            Action::Dismiss => "dismiss",
        }
    }

    /// Whether the moderator must say why.
    pub fn needs_reason(self) -> bool {
        matches!(self, Action::Reject | Action::Hide)
    }

    /// The status after this action on a submission in status `from`, or why it is not
    /// allowed.
    pub fn apply(self, from: Status) -> Result<Status, String> {
        let to = match (self, from) {
            (Action::Approve, Status::Pending) => Status::Published,
            (Action::Reject, Status::Pending) => Status::Rejected,
            (Action::Hide, Status::Published) => Status::Hidden,
            (Action::Restore, Status::Hidden | Status::Rejected) => Status::Published,
            (Action::Dismiss, status) => status,
            (action, from) => {
                let applies_to = match action {
                    Action::Approve | Action::Reject => "pending",
                    Action::Hide => "published",
                    Action::Restore => "hidden or rejected",
                    Action::Dismiss => unreachable!("dismiss applies to every status"),
                };
                return Err(format!(
                    "cannot {} a submission that is {}: {} applies to {applies_to} submissions",
                    action.as_str(),
                    from.as_str(),
                    action.as_str()
                ));
            }
        };
        Ok(to)
    }
}

/// A checked reason: trimmed, 1 to 1000 characters.
pub fn check_reason(reason: Option<&str>, required: bool) -> Result<Option<String>> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match reason {
        None if required => Err(Invalid::field(
            "reason",
            "is required for this action: say why, for the audit log",
        )
        .into()),
        Some(r) if r.chars().count() > 1000 => {
            Err(Invalid::field("reason", "must be at most 1000 characters").into())
        }
        other => Ok(other.map(str::to_owned)),
    }
}

/// Which submissions a queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    /// Waiting for approval (pre-moderated campaigns).
    #[default]
    Pending,
    /// With open reports, whatever their status.
    Reported,
    /// Hidden by a moderator (to restore one).
    Hidden,
    /// Rejected by a moderator (to restore one).
    Rejected,
}

impl Queue {
    fn as_str(self) -> &'static str {
        match self {
            Queue::Pending => "pending",
            Queue::Reported => "reported",
            Queue::Hidden => "hidden",
            Queue::Rejected => "rejected",
        }
    }
}

/// An open report, as moderators see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportInfo {
    pub reason: String,
    /// Who reported (token name and role).
    pub reporter: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

/// A submission in a moderation queue: everything a moderator needs to decide.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueItem {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String)]
    pub status: String,
    /// The exact position, as a GeoJSON Point (reading it is in the audit log).
    #[schema(value_type = Object)]
    pub location: Value,
    /// The answers, free text included.
    #[schema(value_type = Object)]
    pub answers: Value,
    /// The district it fell in, if any.
    pub district: Option<DistrictRef>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Number of open reports.
    pub report_count: i64,
    /// The open reports, oldest first.
    pub reports: Vec<ReportInfo>,
}

/// A page of a queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueuePage {
    /// Oldest first.
    pub items: Vec<QueueItem>,
    /// Pass as `after` to read the next page; `null` on the last page.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub next_after: Option<Uuid>,
}

struct QueueRow {
    id: Uuid,
    status: String,
    location: sqlx::types::Json<Value>,
    answers: sqlx::types::Json<Value>,
    code: Option<String>,
    name: Option<String>,
    created_at: OffsetDateTime,
    report_count: i64,
    reports: sqlx::types::Json<Vec<ReportInfo>>,
}

/// Most items one page may hold.
pub const MAX_PAGE: i64 = 200;

/// A page of `queue` in `campaign`, oldest first, after submission `after`. Reading exact
/// positions is recorded in the audit log.
pub async fn queue(
    pool: &PgPool,
    actor: Actor<'_>,
    campaign: &Campaign,
    queue: Queue,
    after: Option<Uuid>,
    limit: i64,
) -> Result<QueuePage> {
    // `'published'` is `Status::Published` (a literal: the queue's partial index has it).
    let rows: Vec<QueueRow> = sqlx::query_as!(
        QueueRow,
        r#"SELECT s.id, s.status, ST_AsGeoJSON(s.geom)::jsonb AS "location!: _", s.answers AS "answers: _",
                d.code AS "code?", d.name AS "name?", s.created_at,
                COALESCE(r.count, 0) AS "report_count!", COALESCE(r.reports, '[]') AS "reports!: _"
         FROM submissions s
         LEFT JOIN districts d ON d.id = s.district_id
         LEFT JOIN LATERAL (
            SELECT count(*) AS count, jsonb_agg(jsonb_build_object(
                       'reason', reason, 'reporter', reporter,
                       'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                       ORDER BY id) AS reports
            FROM submission_reports WHERE submission_id = s.id AND resolved_at IS NULL) r ON true
         WHERE s.campaign_id = $1
           AND CASE WHEN $2 = 'reported'
                    THEN s.id IN (SELECT submission_id FROM submission_reports
                                  WHERE campaign_id = $1 AND resolved_at IS NULL)
                    ELSE s.status = $2 AND s.status <> 'published' END
           AND ($3::uuid IS NULL
                OR (s.created_at, s.id) > (SELECT created_at, id FROM submissions WHERE id = $3))
         ORDER BY s.created_at, s.id
         LIMIT $4"#,
        campaign.id,
        queue.as_str(),
        after,
        limit,
    )
    .fetch_all(pool)
    .await?;
    let items: Vec<QueueItem> = rows
        .into_iter()
        .map(|row| QueueItem {
            id: row.id,
            status: row.status,
            location: row.location.0,
            answers: row.answers.0,
            district: row
                .code
                .zip(row.name)
                .map(|(code, name)| DistrictRef { code, name }),
            created_at: row.created_at,
            report_count: row.report_count,
            reports: row.reports.0,
        })
        .collect();
    let next_after = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i.id))
        .flatten();
    audit::record(
        pool,
        Entry {
            actor,
            action: "moderation.queue",
            campaign_id: Some(campaign.id),
            subject: None,
            reason: None,
            details: serde_json::json!({
                "queue": queue.as_str(), "after": after, "submissions": items.len(),
            }),
        },
    )
    .await?;
    Ok(QueuePage { items, next_after })
}

/// What a decision did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decision {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub action: Action,
    /// Status before.
    #[schema(value_type = String)]
    pub previous_status: String,
    /// Status now.
    #[schema(value_type = String)]
    pub status: String,
    /// Open reports this decision closed.
    pub reports_resolved: u64,
}

fn no_submission(id: Uuid) -> ModerationError {
    ModerationError::NotFound(id)
}

/// Applies `action` to submission `id` of `campaign`: checks the transition under a row lock,
/// changes the status, moves the counters, resolves the open reports and records who, what
/// and why, all in one transaction.
pub async fn decide(
    pool: &PgPool,
    actor: Actor<'_>,
    campaign: &Campaign,
    id: Uuid,
    action: Action,
    reason: Option<&str>,
) -> Result<Decision> {
    let reason = check_reason(reason, action.needs_reason())?;
    let mut tx = pool.begin().await?;
    let from: Status = sqlx::query_scalar!(
        r#"SELECT status AS "status: Status" FROM submissions WHERE id = $1 AND campaign_id = $2 FOR UPDATE"#,
        id,
        campaign.id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| no_submission(id))?;
    let to = action.apply(from).map_err(ModerationError::NotApplicable)?;
    let open: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM submission_reports WHERE submission_id = $1 AND resolved_at IS NULL"#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    if action == Action::Dismiss && open == 0 {
        return Err(ModerationError::NotApplicable(format!(
            "submission {id} has no open report to dismiss (it is {})",
            from.as_str()
        )));
    }
    if to != from {
        // Published (again): its district total moves now; the finer figures count it at the
        // next release if none has yet (`figures::release`: once ever).
        sqlx::query!(
            "UPDATE submissions SET status = $2, updated_at = now(),
                    published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END
             WHERE id = $1",
            id,
            to as _,
        )
        .execute(&mut *tx)
        .await?;
        let delta = i64::from(to == Status::Published) - i64::from(from == Status::Published);
        if delta != 0 {
            crate::figures::add_published(&mut tx, id, delta).await?;
        }
        // Published for the first time (approved, or a rejection undone): the campaign's
        // webhooks hear of it now, as they do of a submission published on arrival. A hidden
        // one restored was announced when it first appeared.
        if to == Status::Published && matches!(from, Status::Pending | Status::Rejected) {
            crate::notify::webhooks::enqueue_published(&mut tx, id).await?;
        }
        // Hidden or rejected: out of every public figure, and of the webhooks not sent yet.
        if from == Status::Published {
            crate::notify::webhooks::forget(&mut tx, campaign.id, id).await?;
        }
    }
    let resolved = sqlx::query!(
        "UPDATE submission_reports SET resolved_at = now()
         WHERE submission_id = $1 AND resolved_at IS NULL",
        id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let action_name = format!("submission.{}", action.as_str());
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: &action_name,
            campaign_id: Some(campaign.id),
            subject: Some(id.to_string()),
            reason,
            details: serde_json::json!({
                "from": from.as_str(), "to": to.as_str(), "reports_resolved": resolved,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(campaign = %campaign.slug, %id, action = action.as_str(), from = from.as_str(), to = to.as_str(), "moderation decision");
    Ok(Decision {
        id,
        action,
        previous_status: from.as_str().to_owned(),
        status: to.as_str().to_owned(),
        reports_resolved: resolved,
    })
}

/// A report, once filed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Filed {
    /// The report's id.
    pub report_id: i64,
    #[schema(value_type = String, format = Uuid)]
    pub submission_id: Uuid,
    /// Open reports on the submission, this one included.
    pub open_reports: i64,
}

/// Flags submission `id` of `campaign` for moderators with `reason`; it is in the `reported`
/// queue until a moderator decides on it.
pub async fn report(
    pool: &PgPool,
    actor: Actor<'_>,
    campaign: &Campaign,
    id: Uuid,
    reason: Option<&str>,
) -> Result<Filed> {
    let reason = check_reason(reason, true)?;
    let mut tx = pool.begin().await?;
    // Locked like a decision, so a report never lands half-way through one.
    let found: Option<String> = sqlx::query_scalar!(
        "SELECT status FROM submissions WHERE id = $1 AND campaign_id = $2 FOR UPDATE",
        id,
        campaign.id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    found.ok_or_else(|| no_submission(id))?;
    let report_id: i64 = sqlx::query_scalar!(
        "INSERT INTO submission_reports (campaign_id, submission_id, reason, token_id, reporter)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        campaign.id,
        id,
        reason,
        actor.token_id(),
        actor.name(),
    )
    .fetch_one(&mut *tx)
    .await?;
    let open_reports: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM submission_reports WHERE submission_id = $1 AND resolved_at IS NULL"#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: "submission.report",
            campaign_id: Some(campaign.id),
            subject: Some(id.to_string()),
            reason,
            details: serde_json::json!({"report_id": report_id, "open_reports": open_reports}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Filed {
        report_id,
        submission_id: id,
        open_reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_transitions_are_allowed() {
        use Status::*;
        let allowed = [
            (Action::Approve, Pending, Published),
            (Action::Reject, Pending, Rejected),
            (Action::Hide, Published, Hidden),
            (Action::Restore, Hidden, Published),
            (Action::Restore, Rejected, Published),
        ];
        for action in [
            Action::Approve,
            Action::Reject,
            Action::Hide,
            Action::Restore,
        ] {
            for from in Status::ALL {
                let expected = allowed
                    .iter()
                    .find(|(a, f, _)| *a == action && *f == from)
                    .map(|(_, _, to)| *to);
                match (action.apply(from), expected) {
                    (Ok(to), Some(expected)) => assert_eq!(to, expected),
                    (Err(why), None) => {
                        assert!(why.contains(from.as_str()), "{why}");
                        assert!(why.starts_with(&format!("cannot {}", action.as_str())));
                    }
                    (got, expected) => panic!("{action:?} from {from:?}: {got:?} vs {expected:?}"),
                }
            }
        }
        for from in Status::ALL {
            assert_eq!(Action::Dismiss.apply(from), Ok(from));
        }
    }

    #[test]
    fn reasons_are_required_where_it_matters_and_bounded() {
        assert!(check_reason(None, true).is_err());
        assert!(check_reason(Some("   "), true).is_err());
        assert_eq!(check_reason(Some(" spam "), true).unwrap().unwrap(), "spam");
        assert_eq!(check_reason(None, false).unwrap(), None);
        assert!(check_reason(Some(&"x".repeat(1001)), false).is_err());
        assert!(Action::Hide.needs_reason() && Action::Reject.needs_reason());
        assert!(!Action::Approve.needs_reason() && !Action::Restore.needs_reason());
    }
}
