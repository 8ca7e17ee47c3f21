//! Submissions: a citizen's point and answers, stored with its district and counted in the
//! same statement, erasable with the secret edit token the citizen was given.

pub mod http;
pub mod writer;

use std::sync::Arc;

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
    /// Taken out of the counts by a moderator after it was published.
    Hidden,
    /// Refused by a moderator before it was published.
    Rejected,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 4] = [
        Status::Published,
        Status::Pending,
        Status::Hidden,
        Status::Rejected,
    ];

    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::Pending => "pending",
            Status::Hidden => "hidden",
            Status::Rejected => "rejected",
        }
    }

    /// The status stored as `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
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
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The key.
    pub key: String,
    /// SHA-256 of the request it came with; a reuse with another request is refused.
    pub request_hash: Vec<u8>,
}

/// How storing went.
#[derive(Debug)]
pub enum Stored {
    /// A new submission.
    Created(Receipt),
    /// A retry of an earlier request with the same idempotency key: its first result.
    Replayed(Receipt),
    /// Nothing stored: the campaign's settings changed since `campaign` was read.
    Stale,
}

/// A submission to store, checked against its campaign as the caller read it.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The campaign as read (its `config_version` is checked when storing).
    pub campaign: Arc<Campaign>,
    /// The checked point and answers.
    pub submission: NewSubmission,
    /// The client's idempotency key, if any.
    pub key: Option<IdempotencyKey>,
}

/// Stores submissions in one statement, hence one transaction: for each, checks that its
/// campaign has not changed and that it is inside the area, assigns its district (the first in
/// import order, for points on a shared border), records its idempotency key, and adds the
/// published ones to the district counters. Returns once committed, one result per
/// submission in order; an error of the whole statement (database down) is the outer error.
///
/// Storing many at once is what lets civicmap sustain more submissions per second than
/// PostgreSQL sustains single-row inserts: see [`writer`].
///
/// Published submissions are added to counter shard `shard`: concurrent callers that use
/// different shards never wait on each other's counter rows.
pub async fn store_batch(
    pool: &PgPool,
    batch: &[Pending],
    shard: i16,
) -> ApiResult<Vec<ApiResult<Stored>>> {
    struct Prepared {
        id: Uuid,
        token: String,
        status: Status,
        edit_url: String,
    }
    let prepared: Vec<Prepared> = batch
        .iter()
        .map(|p| {
            // Time-ordered ids keep the primary key index append-only.
            let id = Uuid::now_v7();
            let token = new_secret();
            let status = match p.campaign.moderation {
                Moderation::Post => Status::Published,
                Moderation::Pre => Status::Pending,
            };
            let edit_url = format!("/embed/{}/edit#id={id}&token={token}", p.campaign.slug);
            Prepared {
                id,
                token,
                status,
                edit_url,
            }
        })
        .collect();
    #[derive(sqlx::FromRow)]
    struct Row {
        fresh: bool,
        inside: bool,
        created: bool,
        code: Option<String>,
        name: Option<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "WITH input AS (
            SELECT * FROM unnest($1::uuid[], $2::int8[], $3::float8[], $4::float8[], $5::jsonb[],
                                 $6::text[], $7::bytea[], $8::text[], $9::bytea[], $10::text[],
                                 $11::text[], $12::int8[], $13::bool[], $15::float8[])
            WITH ORDINALITY AS i(id, campaign_id, lon, lat, answers, status, token_hash, key,
                                 request_hash, token, edit_url, version, by_districts, grid, ord)),
         placed AS (
            SELECT i.*, pt.g, d.id AS district_id, d.code, d.name, c.id IS NOT NULL AS fresh,
                c.id IS NOT NULL AND CASE
                    -- When the area is the union of the districts, being in a district is
                    -- being inside, and the union's (possibly large) polygon is not read.
                    WHEN i.by_districts THEN d.id IS NOT NULL
                    ELSE EXISTS (SELECT 1 FROM campaigns a
                                 WHERE a.id = i.campaign_id AND ST_Intersects(a.effective_area, pt.g))
                END AS inside
            FROM input i
            CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS g) pt
            LEFT JOIN campaigns c ON c.id = i.campaign_id AND c.config_version = i.version
            LEFT JOIN LATERAL (
                SELECT d.id, d.code, d.name FROM districts d
                WHERE d.campaign_id = i.campaign_id AND ST_Intersects(d.geom, pt.g)
                ORDER BY d.position LIMIT 1) d ON true),
         idem AS (
            INSERT INTO idempotency_keys (campaign_id, key, request_hash, submission_id, response)
            SELECT campaign_id, key, request_hash, id, jsonb_build_object(
                'id', id, 'status', status, 'edit_token', token, 'edit_url', edit_url,
                'district', CASE WHEN district_id IS NOT NULL
                                 THEN jsonb_build_object('code', code, 'name', name) END)
            FROM placed WHERE inside AND key IS NOT NULL
            ON CONFLICT (campaign_id, key) DO NOTHING
            RETURNING submission_id),
         created AS (
            INSERT INTO submissions (id, campaign_id, district_id, geom, answers, status, edit_token_hash)
            SELECT id, campaign_id, district_id, g, answers, status, token_hash FROM placed
            WHERE inside AND (key IS NULL OR id IN (SELECT submission_id FROM idem))
            RETURNING id, campaign_id, district_id, status, geom),
         counted AS (
            INSERT INTO district_counts (campaign_id, district_id, shard, published, changes)
            SELECT campaign_id, district_id, $14, count(*), count(*) FROM created
            WHERE status = 'published' GROUP BY campaign_id, district_id
            ON CONFLICT ON CONSTRAINT district_counts_key
            DO UPDATE SET published = district_counts.published + EXCLUDED.published,
                          changes = district_counts.changes + EXCLUDED.changes),
         cells AS (
            INSERT INTO demand_cells (campaign_id, cx, cy, published)
            SELECT c.campaign_id, floor(ST_X(c.g) / c.grid)::bigint, floor(ST_Y(c.g) / c.grid)::bigint, count(*)
            FROM (SELECT created.campaign_id, ST_Transform(created.geom, 3857) AS g, p.grid
                  FROM created JOIN placed p ON p.id = created.id
                  WHERE created.status = 'published' AND p.grid IS NOT NULL) c
            GROUP BY 1, 2, 3
            ON CONFLICT (campaign_id, cx, cy)
            DO UPDATE SET published = demand_cells.published + EXCLUDED.published)
         SELECT fresh, inside, id IN (SELECT id FROM created) AS created, code, name
         FROM placed ORDER BY ord",
    )
    .bind(prepared.iter().map(|p| p.id).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.campaign.id).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.submission.point.lon()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.submission.point.lat()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| sqlx::types::Json(&p.submission.answers)).collect::<Vec<_>>())
    .bind(prepared.iter().map(|p| p.status.as_str()).collect::<Vec<_>>())
    .bind(prepared.iter().map(|p| hash_secret(&p.token)).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.key.as_ref().map(|k| k.key.as_str())).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.key.as_ref().map(|k| k.request_hash.as_slice())).collect::<Vec<_>>())
    .bind(prepared.iter().map(|p| p.token.as_str()).collect::<Vec<_>>())
    .bind(prepared.iter().map(|p| p.edit_url.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.campaign.config_version).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.campaign.by_districts).collect::<Vec<_>>())
    .bind(shard)
    .bind(batch.iter().map(|p| p.campaign.grid_size).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let mut results = Vec::with_capacity(batch.len());
    for ((pending, prepared), row) in batch.iter().zip(prepared).zip(rows) {
        let Row {
            fresh,
            inside,
            created,
            code,
            name,
        } = row;
        let result = if !fresh {
            Ok(Stored::Stale)
        } else if !inside {
            Err(ApiError::field(
                "geometry",
                "is outside the campaign's area",
            ))
        } else if created {
            let district = code
                .zip(name)
                .map(|(code, name)| DistrictRef { code, name });
            Ok(Stored::Created(Receipt {
                id: prepared.id,
                status: prepared.status.as_str().to_owned(),
                district,
                edit_token: prepared.token,
                edit_url: prepared.edit_url,
            }))
        } else {
            let key = pending
                .key
                .as_ref()
                .expect("without a key, an inside point is always created");
            replay(pool, &pending.campaign, key).await
        };
        results.push(result);
    }
    Ok(results)
}

/// The first result of a request whose idempotency key is being reused.
async fn replay(pool: &PgPool, campaign: &Campaign, key: &IdempotencyKey) -> ApiResult<Stored> {
    let row: Option<(Vec<u8>, Option<sqlx::types::Json<Receipt>>)> = sqlx::query_as(
        "SELECT request_hash, response FROM idempotency_keys WHERE campaign_id = $1 AND key = $2",
    )
    .bind(campaign.id)
    .bind(&key.key)
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
    let row: Option<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT edit_token_hash, status FROM submissions
         WHERE id = $1 AND campaign_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(campaign.id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((stored, status)) = row else {
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
    sqlx::query("UPDATE idempotency_keys SET response = NULL, submission_id = NULL WHERE submission_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if status == "published" {
        crate::aggregates::add_published(&mut tx, id, -1).await?;
    }
    sqlx::query("DELETE FROM submissions WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
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
