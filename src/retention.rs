//! Retention: `retention_days` after a campaign closes, its exact data is coarsened. Each
//! submission's position is replaced by the centre of its cell of the campaign's public grid
//! (squares of `public_precision_m`) and keeps its district and its H3 cell, and every answer
//! is deleted but those to the form's current fields that are not free text (so the text of a
//! field since removed from the form goes too). District counts and H3 counts stay exactly as
//! they were; only what staff could read (exact points, free text) is lost.
//!
//! Run by `civicmap retention run` and every hour inside `civicmap serve`. A campaign closes at
//! its `closes_at` or when its status became `closed`, whichever is first. It is coarsened once;
//! again only if a submission was stored or changed after that (it was reopened and corrected),
//! and the run is idempotent.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::audit::{self, Actor, Entry};
use crate::campaigns::CampaignError;

/// What coarsening one campaign did (or would do, in a dry run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The campaign's slug.
    pub campaign: String,
    /// Submissions whose position was snapped to the public grid.
    pub submissions: u64,
    /// Keys of the answers deleted: the free-text fields, and fields no longer in the form.
    pub text_fields: Vec<String>,
    /// Submissions that had such an answer.
    pub with_text: u64,
    /// Size of a grid cell in Web Mercator units (`None`: the campaign has no area).
    pub grid_size: Option<f64>,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// SQL condition on `campaigns`: a retention period, closed long enough, and not coarsened
/// since a submission was last stored or changed (coarsening sets `updated_at` to the same
/// instant as `retention_applied_at`, hence the strict comparison).
macro_rules! due {
    () => {
        "retention_days IS NOT NULL
    AND LEAST(closes_at, closed_at) + make_interval(days => retention_days) <= now()
    AND (retention_applied_at IS NULL
         OR EXISTS (SELECT 1 FROM submissions s
                    WHERE s.campaign_id = campaigns.id AND s.updated_at > campaigns.retention_applied_at))"
    };
}

/// Coarsens every due campaign (or only `only`, by slug), and returns what was done.
pub async fn run(
    pool: &PgPool,
    actor: Actor<'_>,
    only: Option<&str>,
    dry_run: bool,
) -> sqlx::Result<Vec<Outcome>> {
    // Runtime SQL: composes `due!` (shared with `apply`), and sqlx's macros take only literals.
    let due: Vec<i64> = sqlx::query_scalar(concat!(
        "SELECT id FROM campaigns WHERE ($1::text IS NULL OR slug = $1) AND ",
        due!(),
        " ORDER BY id"
    ))
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut outcomes = Vec::new();
    for id in due {
        if let Some(outcome) = apply(pool, actor.clone(), id, dry_run).await? {
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

/// Why campaign `slug` is not due, in plain words (for the command line).
pub async fn not_due_reason(pool: &PgPool, slug: &str) -> Result<String, CampaignError> {
    let campaign = crate::campaigns::get(pool, slug).await?;
    let closed_at: Option<OffsetDateTime> = sqlx::query_scalar!(
        "SELECT LEAST(closes_at, closed_at) FROM campaigns WHERE id = $1",
        campaign.id,
    )
    .fetch_one(pool)
    .await?;
    Ok(match (campaign.retention_days, closed_at) {
        (None, _) => "has no retention period (retention_days is null)".to_owned(),
        (Some(_), None) => "is not closed".to_owned(),
        (Some(days), Some(closed)) => {
            let due = closed + time::Duration::days(days.into());
            match campaign.retention_applied_at {
                Some(at) if due <= OffsetDateTime::now_utc() => {
                    format!("was already coarsened at {at}")
                }
                _ => format!("is due at {due}"),
            }
        }
    })
}

/// Coarsens campaign `id` if it is still due once locked (another instance may have done it).
async fn apply(
    pool: &PgPool,
    actor: Actor<'_>,
    id: i64,
    dry_run: bool,
) -> sqlx::Result<Option<Outcome>> {
    let mut tx = pool.begin().await?;
    // Locking the campaign serialises this with setting changes (which may change the grid)
    // and with the same run on other instances.
    // Runtime SQL: composes `due!` (shared with `run`), and sqlx's macros take only literals.
    let row: Option<(
        String,
        sqlx::types::Json<crate::campaigns::Form>,
        Option<f64>,
    )> = sqlx::query_as(concat!(
        "SELECT slug, form, grid_size FROM campaigns WHERE id = $1 AND ",
        due!(),
        " FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((slug, form, grid_size)) = row else {
        return Ok(None);
    };
    // What stays: the answers to the form's current fields that are not free text.
    let kept: Vec<String> = form
        .0
        .fields
        .iter()
        .filter(|f| !f.kind.is_free_text())
        .map(|f| f.key.clone())
        .collect();
    let text_fields: Vec<String> = sqlx::query_scalar!(
        r#"SELECT DISTINCT k AS "k!" FROM submissions, jsonb_object_keys(answers) k
         WHERE campaign_id = $1 AND NOT k = ANY($2) ORDER BY k"#,
        id,
        &kept,
    )
    .fetch_all(&mut *tx)
    .await?;
    let counts = sqlx::query!(
        r#"SELECT count(*) AS "submissions!", count(*) FILTER (WHERE answers ?| $2::text[]) AS "with_text!"
         FROM submissions WHERE campaign_id = $1"#,
        id,
        &text_fields,
    )
    .fetch_one(&mut *tx)
    .await?;
    let (submissions, with_text) = (counts.submissions, counts.with_text);
    let outcome = Outcome {
        campaign: slug,
        submissions: if grid_size.is_some() {
            submissions as u64
        } else {
            0
        },
        text_fields,
        with_text: with_text as u64,
        grid_size,
        dry_run,
    };
    if dry_run {
        return Ok(Some(outcome));
    }
    // The centre of the point's own cell (floor(x / size), floor(y / size)) of the public grid;
    // the district is kept as it was, and so is the H3 cell (resolution 10, about 0.015 km²),
    // so that no public figure changes.
    sqlx::query!(
        "UPDATE submissions SET
            geom = CASE WHEN $2::float8 IS NULL THEN geom ELSE ST_Transform(ST_SetSRID(ST_MakePoint(
                       (floor(ST_X(ST_Transform(geom, 3857)) / $2) + 0.5) * $2,
                       (floor(ST_Y(ST_Transform(geom, 3857)) / $2) + 0.5) * $2), 3857), 4326) END,
            answers = answers - $3::text[],
            updated_at = now()
         WHERE campaign_id = $1",
        id,
        grid_size,
        &outcome.text_fields,
    )
    .execute(&mut *tx)
    .await?;
    // The contributors (keyed hashes of addresses) serve only while the campaign collects.
    sqlx::query!("DELETE FROM contributors WHERE campaign_id = $1", id,)
        .execute(&mut *tx)
        .await?;
    // Exact positions queued for (or lately sent to) internal webhook endpoints go too.
    sqlx::query!(
        "UPDATE outbox SET payload = payload - 'submission'
         WHERE campaign_id = $1 AND payload ? 'submission'",
        id,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE campaigns SET retention_applied_at = now() WHERE id = $1",
        id,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: "retention.apply",
            campaign_id: Some(id),
            subject: None,
            reason: Some("retention period after the campaign closed".to_owned()),
            details: serde_json::json!({
                "submissions_snapped": outcome.submissions,
                "text_fields_deleted": outcome.text_fields,
                "submissions_with_text": outcome.with_text,
                "grid_size": outcome.grid_size,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(campaign = %outcome.campaign, submissions = outcome.submissions, "retention applied: positions snapped, free text deleted");
    Ok(Some(outcome))
}
