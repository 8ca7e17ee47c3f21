//! What the staff console shows every staff role about campaigns, and what only planners see.
//!
//! - [`list`]: every campaign with what waits for a moderator (pending and reported
//!   submissions), for any staff role: a moderator or a planner picks a campaign from it
//!   instead of typing its name. Counts of submissions waiting, never a submission.
//! - [`exact_figures`]: a campaign's counts without the k threshold (by status, by district,
//!   by answer), for planners and admins, who may already read every exact position (the raw
//!   export); each read is written to the audit log, like a raw export.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::form::FieldKind;
use super::{Campaign, Localized, Moderation, Result, Status};
use crate::audit::{self, Actor, Entry};

/// A campaign in the staff's list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListedCampaign {
    pub slug: String,
    pub title: Localized,
    pub status: Status,
    pub moderation: Moderation,
    /// Submissions waiting for a moderator's approval (pre-moderation).
    pub pending: i64,
    /// Submissions with an open report.
    pub reported: i64,
    /// Set while the campaign's allowance is spent and each submission needs a proof of work.
    pub pressure: Option<crate::safety::limits::Pressure>,
}

/// Every campaign, newest first, with its moderation queues' sizes.
pub async fn list(db: &PgPool) -> Result<Vec<ListedCampaign>> {
    let campaigns = super::list(db).await?;
    // One pass over the (partial, small) unpublished index and the open reports.
    let rows = sqlx::query!(
        r#"SELECT c.id AS "id!",
                  (SELECT count(*) FROM submissions s
                    WHERE s.campaign_id = c.id AND s.status = 'pending') AS "pending!",
                  (SELECT count(DISTINCT r.submission_id) FROM submission_reports r
                    WHERE r.campaign_id = c.id AND r.resolved_at IS NULL) AS "reported!"
           FROM campaigns c"#
    )
    .fetch_all(db)
    .await?;
    let queues: BTreeMap<i64, (i64, i64)> = rows
        .into_iter()
        .map(|r| (r.id, (r.pending, r.reported)))
        .collect();
    let pressure = crate::safety::limits::pressure(db).await?;
    Ok(campaigns
        .into_iter()
        .map(|c| {
            let (pending, reported) = queues.get(&c.id).copied().unwrap_or_default();
            ListedCampaign {
                slug: c.slug,
                title: c.title,
                status: c.status,
                moderation: c.moderation,
                pending,
                reported,
                pressure: pressure.get(&c.id).cloned(),
            }
        })
        .collect())
}

/// A campaign's exact counts, live, without the k threshold.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExactFigures {
    /// When they were counted.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: OffsetDateTime,
    /// Submissions by status.
    pub total: ByStatus,
    /// Published submissions inside the campaign's area but in no district.
    pub outside_districts: i64,
    /// Every district, in the order of the imported file.
    pub districts: Vec<DistrictFigures>,
    /// For each choice or boolean field (in the form's order), published submissions by answer.
    pub answers: Vec<FieldFigures>,
}

/// Submissions by status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ByStatus {
    pub published: i64,
    pub pending: i64,
    pub hidden: i64,
    pub rejected: i64,
}

/// One district's exact counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DistrictFigures {
    pub code: String,
    pub name: String,
    pub published: i64,
    /// Waiting for a moderator's approval.
    pub pending: i64,
}

/// One field's published answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldFigures {
    /// The field's key.
    pub field: String,
    /// Each value: the form's options (or `true`, `false`) first, in order, even when nobody
    /// chose them; then any other value found (an option removed since), in value order.
    pub values: Vec<ValueFigures>,
}

/// How many published submissions gave one answer, in all and per district code (a
/// district where nobody gave it is absent).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValueFigures {
    pub value: String,
    pub count: i64,
    pub districts: BTreeMap<String, i64>,
}

/// The exact figures of `campaign`, read on the primary (live), the read written to the audit
/// log in the same transaction.
pub async fn exact_figures(
    db: &PgPool,
    actor: Actor<'_>,
    campaign: &Campaign,
) -> Result<ExactFigures> {
    let mut tx = db.begin().await?;
    let statuses = sqlx::query!(
        r#"SELECT status AS "status!", count(*) AS "count!",
                  count(*) FILTER (WHERE district_id IS NULL) AS "outside!"
           FROM submissions WHERE campaign_id = $1 GROUP BY status"#,
        campaign.id
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut total = ByStatus::default();
    let mut outside_districts = 0;
    for row in statuses {
        match row.status.as_str() {
            "published" => {
                total.published = row.count;
                outside_districts = row.outside;
            }
            "pending" => total.pending = row.count,
            "hidden" => total.hidden = row.count,
            "rejected" => total.rejected = row.count,
            other => tracing::warn!(
                status = other,
                "a submission status the figures do not know"
            ),
        }
    }
    let districts = sqlx::query_as!(
        DistrictFigures,
        r#"SELECT d.code, d.name,
                  count(s.id) FILTER (WHERE s.status = 'published') AS "published!",
                  count(s.id) FILTER (WHERE s.status = 'pending') AS "pending!"
           FROM districts d
           LEFT JOIN submissions s ON s.district_id = d.id AND s.campaign_id = d.campaign_id
           WHERE d.campaign_id = $1
           GROUP BY d.id ORDER BY d.position"#,
        campaign.id
    )
    .fetch_all(&mut *tx)
    .await?;
    let fields: Vec<&super::form::Field> = campaign
        .form
        .fields
        .iter()
        .filter(|f| f.kind.can_break_down())
        .collect();
    let keys: Vec<String> = fields.iter().map(|f| f.key.clone()).collect();
    let counted = sqlx::query!(
        r#"SELECT a.key AS "field!", a.value #>> '{}' AS "value!", d.code AS "code?",
                  count(*) AS "count!"
           FROM submissions s
           CROSS JOIN LATERAL jsonb_each(s.answers) a
           LEFT JOIN districts d ON d.id = s.district_id
           WHERE s.campaign_id = $1 AND s.status = 'published' AND a.key = ANY($2)
             AND jsonb_typeof(a.value) IN ('string', 'boolean')
           GROUP BY 1, 2, 3"#,
        campaign.id,
        &keys,
    )
    .fetch_all(&mut *tx)
    .await?;
    let answers = fields
        .iter()
        .map(|field| {
            let mut values: Vec<ValueFigures> = match &field.kind {
                FieldKind::Choice { options } => options.iter().map(|o| o.value.clone()).collect(),
                _ => vec!["true".to_owned(), "false".to_owned()],
            }
            .into_iter()
            .map(|value| ValueFigures {
                value,
                count: 0,
                districts: BTreeMap::new(),
            })
            .collect();
            let mut others: BTreeMap<String, ValueFigures> = BTreeMap::new();
            for row in counted.iter().filter(|r| r.field == field.key) {
                let slot = match values.iter_mut().find(|v| v.value == row.value) {
                    Some(slot) => slot,
                    None => others
                        .entry(row.value.clone())
                        .or_insert_with(|| ValueFigures {
                            value: row.value.clone(),
                            count: 0,
                            districts: BTreeMap::new(),
                        }),
                };
                slot.count += row.count;
                if let Some(code) = &row.code {
                    *slot.districts.entry(code.clone()).or_default() += row.count;
                }
            }
            values.extend(others.into_values());
            FieldFigures {
                field: field.key.clone(),
                values,
            }
        })
        .collect();
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: "figures.read",
            campaign_id: Some(campaign.id),
            subject: None,
            reason: None,
            details: serde_json::json!({ "published": total.published }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(ExactFigures {
        generated_at: OffsetDateTime::now_utc(),
        total,
        outside_districts,
        districts,
        answers,
    })
}
