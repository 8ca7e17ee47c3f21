//! Submissions: a citizen's point and answers, stored with its district and counted in the
//! same statement, erasable with the secret edit token the citizen was given.

pub mod http;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{hash_secret, new_secret};
use crate::campaigns::{Campaign, Moderation};
use crate::http::error::{ApiError, ApiResult, FieldError};
use crate::location::WgsPoint;

/// A checked submission, ready to store.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    /// Where.
    pub point: WgsPoint,
    /// The answers, checked against the campaign's form and normalised.
    pub answers: Map<String, Value>,
}

/// Reads a GeoJSON Point Feature whose properties are the answers, and checks it against the
/// campaign's form. Every problem is reported with its field.
pub fn parse_feature(campaign: &Campaign, body: &Value) -> Result<NewSubmission, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(feature) = body.as_object() else {
        return Err(vec![FieldError::new(
            "body",
            "must be a GeoJSON Feature object",
        )]);
    };
    if feature.get("type").and_then(Value::as_str) != Some("Feature") {
        errors.push(FieldError::new("type", "must be \"Feature\""));
    }
    let point = match feature.get("geometry") {
        None | Some(Value::Null) => {
            Err(FieldError::new("geometry", "is required: a GeoJSON Point"))
        }
        Some(geometry) => parse_point(geometry),
    };
    let point = point.map_err(|e| errors.push(e)).ok();
    let empty = Map::new();
    let answers = match feature.get("properties") {
        None | Some(Value::Null) => Some(&empty),
        Some(Value::Object(answers)) => Some(answers),
        Some(_) => {
            errors.push(FieldError::new(
                "properties",
                "must be an object of answers",
            ));
            None
        }
    };
    let answers = answers.and_then(|a| {
        campaign
            .form
            .validate_answers(a)
            .map_err(|e| errors.extend(e))
            .ok()
    });
    match (point, answers) {
        (Some(point), Some(answers)) if errors.is_empty() => Ok(NewSubmission { point, answers }),
        _ => Err(errors),
    }
}

fn parse_point(geometry: &Value) -> Result<WgsPoint, FieldError> {
    if geometry.get("type").and_then(Value::as_str) != Some("Point") {
        return Err(FieldError::new("geometry.type", "must be \"Point\""));
    }
    let coordinates = geometry.get("coordinates").and_then(Value::as_array);
    let numbers: Option<Vec<f64>> = coordinates
        .map(|c| c.iter().map(Value::as_f64).collect())
        .unwrap_or(None);
    match numbers.as_deref() {
        Some([lon, lat]) | Some([lon, lat, _]) => WgsPoint::new(*lon, *lat)
            .map_err(|e| FieldError::new("geometry.coordinates", e.to_string())),
        _ => Err(FieldError::new(
            "geometry.coordinates",
            "must be [longitude, latitude] in degrees (WGS 84)",
        )),
    }
}

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Counted and shown (in aggregated form).
    Published,
    /// Waiting for a moderator (pre-moderated campaigns).
    Pending,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::Pending => "pending",
        }
    }
}

/// A district as named to the citizen.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct DistrictRef {
    pub code: String,
    pub name: String,
}

/// What a citizen gets back once the submission is committed.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Receipt {
    /// The submission's id.
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String)]
    pub status: String,
    /// The district the point fell in; `null` when inside the area but in no district.
    pub district: Option<DistrictRef>,
    /// Secret that lets the citizen erase the submission. Shown only here.
    pub edit_token: String,
    /// Page where the citizen can erase it, relative to the server.
    pub edit_url: String,
}

/// An idempotency key as sent by a client, checked.
pub struct IdempotencyKey<'a> {
    /// The key.
    pub key: &'a str,
    /// SHA-256 of the request it came with; a reuse with another request is refused.
    pub request_hash: Vec<u8>,
}

/// How storing went.
pub enum Stored {
    /// A new submission.
    Created(Receipt),
    /// A retry of an earlier request with the same idempotency key: its first result.
    Replayed(Receipt),
}

/// Most attempts when a concurrent district re-import removes the district being assigned.
const ATTEMPTS: usize = 3;

/// Stores a submission: checks it is inside the campaign's area, assigns its district (the
/// first in import order, for points on a shared border), bumps the district's counter and
/// records the idempotency key, in one statement and hence one transaction. Returns once
/// committed.
pub async fn store(
    pool: &PgPool,
    campaign: &Campaign,
    submission: &NewSubmission,
    key: Option<&IdempotencyKey<'_>>,
) -> ApiResult<Stored> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_store(pool, campaign, submission, key).await {
            // 23503: a district vanished under us (re-imported); the statement is safe to retry.
            Err(ApiError::Internal(e))
                if attempt < ATTEMPTS
                    && e.downcast_ref::<sqlx::Error>()
                        .and_then(|e| e.as_database_error())
                        .and_then(|e| e.code())
                        .as_deref()
                        == Some("23503") => {}
            other => return other,
        }
    }
}

async fn try_store(
    pool: &PgPool,
    campaign: &Campaign,
    submission: &NewSubmission,
    key: Option<&IdempotencyKey<'_>>,
) -> ApiResult<Stored> {
    let id = Uuid::new_v4();
    let token = new_secret();
    let status = match campaign.moderation {
        Moderation::Post => Status::Published,
        Moderation::Pre => Status::Pending,
    };
    let edit_url = format!("/embed/{}/edit#id={id}&token={token}", campaign.slug);
    let row: (bool, bool, Option<String>, Option<String>) = sqlx::query_as(
        "WITH pt AS (SELECT ST_SetSRID(ST_MakePoint($2, $3), 4326) AS g),
         inside AS (
            SELECT 1 FROM campaigns c, pt WHERE c.id = $1 AND ST_Intersects(c.effective_area, pt.g)),
         district AS (
            SELECT d.id, d.code, d.name FROM districts d, pt
            WHERE d.campaign_id = $1 AND ST_Intersects(d.geom, pt.g)
            ORDER BY d.position LIMIT 1),
         idem AS (
            INSERT INTO idempotency_keys (campaign_id, key, request_hash, submission_id, response)
            SELECT $1, $8, $9, $4, jsonb_build_object(
                'id', $4::uuid, 'status', $6::text, 'edit_token', $10::text, 'edit_url', $11::text,
                'district', (SELECT jsonb_build_object('code', code, 'name', name) FROM district))
            WHERE $8::text IS NOT NULL AND EXISTS (SELECT 1 FROM inside)
            ON CONFLICT (campaign_id, key) DO NOTHING
            RETURNING 1),
         created AS (
            INSERT INTO submissions (id, campaign_id, district_id, geom, answers, status, edit_token_hash)
            SELECT $4, $1, (SELECT id FROM district), pt.g, $5, $6, $7 FROM pt
            WHERE EXISTS (SELECT 1 FROM inside) AND ($8::text IS NULL OR EXISTS (SELECT 1 FROM idem))
            RETURNING district_id),
         counted AS (
            INSERT INTO district_counts (campaign_id, district_id, shard, published)
            SELECT $1, district_id, $12, 1 FROM created WHERE $6 = 'published'
            ON CONFLICT ON CONSTRAINT district_counts_key
            DO UPDATE SET published = district_counts.published + 1)
         SELECT EXISTS (SELECT 1 FROM inside), EXISTS (SELECT 1 FROM created),
                (SELECT code FROM district), (SELECT name FROM district)",
    )
    .bind(campaign.id)
    .bind(submission.point.lon())
    .bind(submission.point.lat())
    .bind(id)
    .bind(sqlx::types::Json(&submission.answers))
    .bind(status.as_str())
    .bind(hash_secret(&token))
    .bind(key.map(|k| k.key))
    .bind(key.map(|k| k.request_hash.as_slice()))
    .bind(&token)
    .bind(&edit_url)
    .bind(crate::aggregates::random_shard())
    .fetch_one(pool)
    .await?;
    let (inside, created, code, name) = row;
    if !inside {
        return Err(ApiError::field(
            "geometry",
            "is outside the campaign's area",
        ));
    }
    if created {
        let district = code
            .zip(name)
            .map(|(code, name)| DistrictRef { code, name });
        return Ok(Stored::Created(Receipt {
            id,
            status: status.as_str().to_owned(),
            district,
            edit_token: token,
            edit_url,
        }));
    }
    let key = key.expect("without a key, an inside point is always created");
    replay(pool, campaign, key).await
}

/// The first result of a request whose idempotency key is being reused.
async fn replay(pool: &PgPool, campaign: &Campaign, key: &IdempotencyKey<'_>) -> ApiResult<Stored> {
    let row: Option<(Vec<u8>, Option<sqlx::types::Json<Receipt>>)> = sqlx::query_as(
        "SELECT request_hash, response FROM idempotency_keys WHERE campaign_id = $1 AND key = $2",
    )
    .bind(campaign.id)
    .bind(key.key)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Err(ApiError::Internal(anyhow::anyhow!("idempotency key conflicted but is gone"))),
        Some((hash, _)) if hash != key.request_hash => Err(ApiError::Conflict(
            "this Idempotency-Key was already used for a different request; use a new key for a new submission".into(),
        )),
        Some((_, None)) => Err(ApiError::Gone(
            "the submission made with this Idempotency-Key has since been erased".into(),
        )),
        Some((_, Some(receipt))) => Ok(Stored::Replayed(receipt.0)),
    }
}

/// Erases a submission (right to erasure) when `token` is its edit token, and takes it out of
/// the counts, in one transaction.
pub async fn erase(pool: &PgPool, campaign: &Campaign, id: Uuid, token: &str) -> ApiResult<()> {
    let mut tx = pool.begin().await?;
    let row: Option<(Vec<u8>, Option<i64>, String)> = sqlx::query_as(
        "SELECT edit_token_hash, district_id, status FROM submissions
         WHERE id = $1 AND campaign_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(campaign.id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((stored, district_id, status)) = row else {
        return Err(ApiError::NotFound(format!(
            "no submission {id} in this campaign"
        )));
    };
    let matches: bool =
        subtle::ConstantTimeEq::ct_eq(hash_secret(token).as_slice(), stored.as_slice()).into();
    if !matches {
        return Err(ApiError::Forbidden(
            "this edit token does not match the submission".into(),
        ));
    }
    // Keep the key (so that a late retry does not re-create the point) but drop its receipt.
    sqlx::query("UPDATE idempotency_keys SET response = NULL WHERE submission_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM submissions WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if status == "published" {
        crate::aggregates::add_published(&mut *tx, campaign.id, district_id, -1).await?;
    }
    tx.commit().await?;
    tracing::info!(campaign = %campaign.slug, %id, "submission erased by its submitter");
    Ok(())
}

/// Deletes idempotency records older than a day.
pub async fn purge_idempotency_keys(pool: &PgPool) -> ApiResult<u64> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '1 day'")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
