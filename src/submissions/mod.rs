//! Submissions: a citizen's point and answers, stored with its district and counted in the
//! same statement, erasable with the secret edit token the citizen was given.

pub mod http;
pub mod writer;

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{hash_secret, new_secret};
use crate::campaigns::{Campaign, CampaignError, Moderation};
use crate::location::WgsPoint;
use crate::validation::{FieldError, Invalid};

/// What can go wrong with a submission.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    /// Its campaign is unknown, or does not take contributions now.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// The point or some answers are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such submission in this campaign.
    #[error("no submission {0} in this campaign")]
    NotFound(Uuid),
    /// The edit token is not this submission's.
    #[error("this edit token does not match the submission")]
    WrongToken,
    /// An idempotency key reused for another request.
    #[error(
        "this Idempotency-Key was already used for a different request; use a new key for a new submission"
    )]
    KeyReused,
    /// The submission made with this idempotency key was erased.
    #[error("the submission made with this Idempotency-Key has since been erased")]
    Erased,
    /// The submission was corrected as often as allowed.
    #[error(
        "this contribution was already corrected {MAX_CORRECTIONS} times, the most allowed; erase it and contribute again if it is still wrong"
    )]
    TooManyCorrections,
    /// It cannot be stored now (the database or the writer is away); a retry with the same
    /// `Idempotency-Key` is safe.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed.
    #[error(transparent)]
    Database(sqlx::Error),
    /// A bug or an impossible state.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

type Result<T, E = SubmissionError> = std::result::Result<T, E>;

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
pub fn parse_feature(
    campaign: &Campaign,
    body: &Value,
) -> std::result::Result<NewSubmission, Vec<FieldError>> {
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

fn parse_point(geometry: &Value) -> std::result::Result<WgsPoint, FieldError> {
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

/// Where a submission stands; stored as `text` (`submissions.status`). In SQL written with
/// `concat!`, [`status!`](crate::status) spells a status as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
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

/// A submission status as an SQL literal, for statements written with `concat!`:
/// `status!(Published)` is `'published'`. Tied to [`Status::as_str`] by a test.
#[macro_export]
macro_rules! status {
    (Published) => {
        "'published'"
    };
    (Pending) => {
        "'pending'"
    };
    (Hidden) => {
        "'hidden'"
    };
    (Rejected) => {
        "'rejected'"
    };
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
    /// Keyed hash of the client's address, set only when the campaign has a duplicate rule
    /// (see [`store_one_checked`]).
    pub client_hash: Option<Vec<u8>>,
    /// The contributor: a keyed hash of the client's address for this campaign
    /// ([`crate::safety::secret::ServerSecret::contributor`]). Only a contributor's first
    /// submission counts toward the campaign's k; `None` (staff imports, the demo) always does.
    pub contributor: Option<Vec<u8>>,
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
///
/// A submission with a `client_hash` is checked against the campaign's duplicate rule: when an
/// earlier one from the same client is within the rule's distance and window, it is stored and
/// counted all the same, and reported to the moderators (see [`crate::safety::DuplicateAction`]).
/// Such submissions go through [`store_one_checked`], which serialises each client's
/// submissions.
pub async fn store_batch(
    pool: &PgPool,
    batch: &[Pending],
    shard: i16,
) -> Result<Vec<Result<Stored>>, BatchError> {
    store_batch_on(&mut *pool.acquire().await?, batch, shard).await
}

/// Why a whole batch was not stored.
#[derive(Debug)]
pub struct BatchError {
    /// What every submission of the batch is answered, if nothing else is tried.
    pub error: SubmissionError,
    /// The database refused the statement (an error it raised, not a lost connection): nothing
    /// of the batch was committed, so each submission may be tried again on its own.
    pub refused: bool,
}

impl From<sqlx::Error> for BatchError {
    fn from(error: sqlx::Error) -> Self {
        let refused =
            matches!(error, sqlx::Error::Database(_)) && !crate::database::is_unavailable(&error);
        Self {
            error: error.into(),
            refused,
        }
    }
}

impl From<sqlx::Error> for SubmissionError {
    fn from(error: sqlx::Error) -> Self {
        if crate::database::is_unavailable(&error) {
            Self::Unavailable(format!("the database is unavailable: {error}"))
        } else {
            Self::Database(error)
        }
    }
}

impl From<BatchError> for SubmissionError {
    fn from(error: BatchError) -> Self {
        error.error
    }
}

/// [`store_batch`] on a given connection (or in a transaction).
pub async fn store_batch_on(
    db: &mut PgConnection,
    batch: &[Pending],
    shard: i16,
) -> Result<Vec<Result<Stored>>, BatchError> {
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
    let rules: Vec<Option<crate::safety::Duplicates>> = batch
        .iter()
        .map(|p| p.client_hash.as_ref().and(p.campaign.duplicates))
        .collect();
    // Runtime SQL: composes the shared fragments `district_of!` and `count!`, and sqlx's
    // macros take only literals.
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "WITH input AS (
            SELECT * FROM unnest($1::uuid[], $2::int8[], $3::float8[], $4::float8[], $5::jsonb[],
                                 $6::text[], $7::bytea[], $8::text[], $9::bytea[], $10::text[],
                                 $11::text[], $12::int8[], $13::bool[],
                                 $15::bytea[], $16::float8[], $17::int4[], $18::int8[],
                                 $19::bytea[])
            WITH ORDINALITY AS i(id, campaign_id, lon, lat, answers, status, token_hash, key,
                                 request_hash, token, edit_url, version, by_districts,
                                 client_hash, dup_distance, dup_window, h3, contributor, ord)),
         -- The campaign's duplicate rule: the first earlier submission from the same client
         -- nearby (none for a retry whose idempotency key is already taken: it is replayed).
         -- It changes nothing for the submission, only flags it for the moderators.
         checked AS (
            SELECT i.*, e.id AS earlier_id
            FROM input i
            LEFT JOIN LATERAL (
                SELECT e.id FROM submissions e
                WHERE i.client_hash IS NOT NULL
                  AND e.campaign_id = i.campaign_id AND e.client_hash = i.client_hash
                  AND e.created_at > now() - make_interval(mins => i.dup_window)
                  AND ST_DWithin(e.geom::geography,
                                 ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)::geography, i.dup_distance)
                  AND (i.key IS NULL OR NOT EXISTS (
                        SELECT 1 FROM idempotency_keys k WHERE k.campaign_id = i.campaign_id AND k.key = i.key))
                ORDER BY e.created_at, e.id LIMIT 1) e ON true),
         placed AS (
            SELECT i.*, pt.g, d.id AS district_id, d.code, d.name, c.id IS NOT NULL AS fresh,
                i.h3 AS cell,
                -- The contributor's rank among its submissions in this batch.
                row_number() OVER (PARTITION BY i.campaign_id, i.contributor ORDER BY i.ord) AS nth,
                c.id IS NOT NULL AND CASE
                    -- When the area is the union of the districts, being in a district is
                    -- being inside, and the union's (possibly large) polygon is not read.
                    WHEN i.by_districts THEN d.id IS NOT NULL
                    ELSE EXISTS (SELECT 1 FROM campaigns a
                                 WHERE a.id = i.campaign_id AND ST_Intersects(a.effective_area, pt.g))
                END AS inside
            FROM checked i
            CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS g) pt
            LEFT JOIN campaigns c ON c.id = i.campaign_id AND c.config_version = i.version
            LEFT JOIN districts d ON d.id = ",
        crate::districts::district_of!("i.campaign_id", "pt.g"),
        "),
         idem AS (
            INSERT INTO idempotency_keys (campaign_id, key, request_hash, submission_id, response)
            SELECT campaign_id, key, request_hash, id, jsonb_build_object(
                'id', id, 'status', status, 'edit_token', token, 'edit_url', edit_url,
                'district', CASE WHEN district_id IS NOT NULL
                                 THEN jsonb_build_object('code', code, 'name', name) END)
            FROM placed WHERE inside AND key IS NOT NULL
            -- In key order: two batches holding the same keys (retries in flight) wait for
            -- each other in one order, never in a cycle.
            ORDER BY campaign_id, key
            ON CONFLICT (campaign_id, key) DO NOTHING
            RETURNING submission_id),
         -- Contributors seen for the first time in their campaign. A concurrent statement
         -- inserting the same one waits for this one, then skips it: counted once (in key
         -- order, so that two such statements never wait for each other in a cycle).
         newcomers AS (
            INSERT INTO contributors (campaign_id, hash)
            SELECT DISTINCT campaign_id, contributor FROM placed
            WHERE inside AND contributor IS NOT NULL
              AND (key IS NULL OR id IN (SELECT submission_id FROM idem))
            ORDER BY campaign_id, contributor
            ON CONFLICT DO NOTHING
            RETURNING campaign_id, hash),
         created AS (
            INSERT INTO submissions (id, campaign_id, district_id, geom, answers, status,
                                     edit_token_hash, client_hash, h3, first_contribution)
            SELECT id, campaign_id, district_id, g, answers, status, token_hash, client_hash, cell,
                   contributor IS NULL OR (nth = 1 AND EXISTS (
                       SELECT 1 FROM newcomers n
                       WHERE n.campaign_id = placed.campaign_id AND n.hash = placed.contributor))
            FROM placed
            WHERE inside AND (key IS NULL OR id IN (SELECT submission_id FROM idem))
            RETURNING id, campaign_id, district_id, status, geom, h3, first_contribution),
         flagged AS (
            INSERT INTO submission_reports (campaign_id, submission_id, reason, reporter)
            SELECT p.campaign_id, p.id,
                   'possible duplicate of ' || p.earlier_id || ' (same connection, within '
                   || p.dup_distance || ' m and ' || p.dup_window || ' minutes)',
                   'duplicate rule'
            FROM placed p JOIN created USING (id) WHERE p.earlier_id IS NOT NULL),
         -- `submission.created` for the campaign's webhooks (src/notify), in this same
         -- transaction: the event exists if and only if the submission does. Its exact
         -- position and id only for endpoints marked internal.
         hooked AS (",
        crate::notify::webhooks::insert_submission_created!("created"),
        " WHERE s.status = ",
        crate::status!(Published),
        "),
         to_count AS (
            SELECT campaign_id, district_id, h3, first_contribution, 1 AS n FROM created
            WHERE status = ",
        crate::status!(Published),
        "), ",
        crate::figures::counting::count!("to_count", "$14"),
        "
         SELECT fresh, inside, id IN (SELECT id FROM created) AS created, code, name
         FROM placed ORDER BY ord"
    ))
    .bind(prepared.iter().map(|p| p.id).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.campaign.id).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.submission.point.lon()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.submission.point.lat()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| sqlx::types::Json(&p.submission.answers)).collect::<Vec<_>>())
    .bind(prepared.iter().map(|p| p.status).collect::<Vec<_>>())
    .bind(prepared.iter().map(|p| hash_secret(&p.token)).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.key.as_ref().map(|k| k.key.as_str())).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.key.as_ref().map(|k| k.request_hash.as_slice())).collect::<Vec<_>>())
    .bind(prepared.iter().map(|p| p.token.as_str()).collect::<Vec<_>>())
    .bind(prepared.iter().map(|p| p.edit_url.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.campaign.config_version).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.campaign.by_districts).collect::<Vec<_>>())
    .bind(shard)
    .bind(batch.iter().map(|p| p.client_hash.as_deref()).collect::<Vec<_>>())
    .bind(rules.iter().map(|r| r.map_or(0.0, |r| r.distance_m)).collect::<Vec<_>>())
    .bind(rules.iter().map(|r| r.map_or(0, |r| r.window_minutes)).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.submission.point.h3_cell()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.contributor.as_deref()).collect::<Vec<_>>())
    .fetch_all(&mut *db)
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
            Err(Invalid::field("geometry", "is outside the campaign's area").into())
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
            replay(&mut *db, &pending.campaign, key).await
        };
        results.push(result);
    }
    Ok(results)
}

/// Stores one submission to a campaign with a duplicate rule. Submissions from one client are
/// serialised by a transaction-level advisory lock on its hash (across instances), so that two
/// concurrent ones cannot both miss each other. Campaigns without the rule never come here:
/// their submissions are stored in batches by [`writer`].
pub async fn store_one_checked(pool: &PgPool, pending: Pending) -> Result<Stored> {
    let lock = pending.client_hash.as_deref().map_or(0, |hash| {
        i32::from_be_bytes(hash[..4].try_into().expect("HMACs are 32 bytes"))
    });
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock($1, $2)",
        DUPLICATE_LOCK_CLASS,
        lock
    )
    .execute(&mut *tx)
    .await?;
    let result = store_batch_on(
        &mut tx,
        std::slice::from_ref(&pending),
        crate::figures::random_shard(),
    )
    .await?
    .pop()
    .expect("one result per submission");
    tx.commit().await?;
    result
}

/// First key of the advisory locks that serialise one client's submissions (the second is
/// taken from the client's hash).
const DUPLICATE_LOCK_CLASS: i32 = 0x6475_706c; // "dupl"

/// The first result of a request whose idempotency key is being reused.
async fn replay(
    db: &mut PgConnection,
    campaign: &Campaign,
    key: &IdempotencyKey,
) -> Result<Stored> {
    let row = sqlx::query!(
        r#"SELECT request_hash, response AS "response: sqlx::types::Json<Receipt>"
         FROM idempotency_keys WHERE campaign_id = $1 AND key = $2"#,
        campaign.id,
        key.key,
    )
    .fetch_optional(&mut *db)
    .await?
    .map(|row| (row.request_hash, row.response));
    match row {
        None => Err(anyhow::anyhow!("idempotency key conflicted but is gone").into()),
        Some((hash, _)) if hash != key.request_hash => Err(SubmissionError::KeyReused),
        Some((_, None)) => Err(SubmissionError::Erased),
        Some((_, Some(receipt))) => Ok(Stored::Replayed(receipt.0)),
    }
}

/// Erases a submission (right to erasure) when `token` is its edit token, and takes it out of
/// the counts, in one transaction.
pub async fn erase(pool: &PgPool, campaign: &Campaign, id: Uuid, token: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query!(
        "SELECT edit_token_hash, status FROM submissions
         WHERE id = $1 AND campaign_id = $2 FOR UPDATE",
        id,
        campaign.id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|row| (row.edit_token_hash, row.status));
    let Some((stored, status)) = row else {
        return Err(no_such_submission(id));
    };
    check_token(&stored, token)?;
    // Keep the key (so that a late retry does not re-create the point) but drop its receipt.
    sqlx::query!("UPDATE idempotency_keys SET response = NULL, submission_id = NULL WHERE submission_id = $1", id)
        .execute(&mut *tx)
        .await?;
    if status == "published" {
        crate::figures::add_published(&mut tx, id, -1).await?;
    }
    // Its webhook events not sent yet go with it; those sent lose its position.
    crate::notify::webhooks::forget(&mut tx, campaign.id, id).await?;
    sqlx::query!("DELETE FROM submissions WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(campaign = %campaign.slug, %id, "submission erased by its submitter");
    Ok(())
}

fn no_such_submission(id: Uuid) -> SubmissionError {
    SubmissionError::NotFound(id)
}

/// Refuses (403) an edit token that is not the submission's, comparing hashes in constant time.
fn check_token(stored_hash: &[u8], token: &str) -> Result<()> {
    let matches: bool =
        subtle::ConstantTimeEq::ct_eq(hash_secret(token).as_slice(), stored_hash).into();
    if matches {
        Ok(())
    } else {
        Err(SubmissionError::WrongToken)
    }
}

/// A submission as its submitter sees it (with the edit token): the exact point and answers.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnSubmission {
    /// Its id.
    pub id: Uuid,
    /// The exact point.
    pub point: WgsPoint,
    /// The answers.
    pub answers: Map<String, Value>,
    /// Where it stands.
    pub status: Status,
    /// The district it was counted in, if any.
    pub district: Option<DistrictRef>,
    /// When it was stored.
    pub created_at: time::OffsetDateTime,
    /// When it was last changed.
    pub updated_at: time::OffsetDateTime,
}

impl OwnSubmission {
    /// The GeoJSON Feature: `properties` are the answers (as a PATCH takes them back); status,
    /// district and dates are in the foreign member `civicmap`.
    pub fn to_feature(&self) -> Value {
        let rfc3339 = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        serde_json::json!({
            "type": "Feature",
            "id": self.id,
            "geometry": {"type": "Point", "coordinates": [self.point.lon(), self.point.lat()]},
            "properties": self.answers,
            "civicmap": {
                "status": self.status,
                "district": self.district,
                "created_at": rfc3339(self.created_at),
                "updated_at": rfc3339(self.updated_at),
            },
        })
    }
}

/// A row of [`select_own!`].
struct OwnRow {
    edit_token_hash: Vec<u8>,
    lon: f64,
    lat: f64,
    answers: sqlx::types::Json<Map<String, Value>>,
    status: Status,
    code: Option<String>,
    name: Option<String>,
    created_at: time::OffsetDateTime,
    updated_at: time::OffsetDateTime,
}

/// `sqlx::query_as!(OwnRow, ...)` of submission `$id` of campaign `$campaign` as its
/// submitter sees it, followed by the given clause (a literal).
macro_rules! select_own {
    ($tail:literal, $id:expr, $campaign:expr) => {
        sqlx::query_as!(
            OwnRow,
            r#"SELECT s.edit_token_hash, ST_X(s.geom) AS "lon!", ST_Y(s.geom) AS "lat!",
                    s.answers AS "answers: _", s.status AS "status: Status",
                    d.code AS "code?", d.name AS "name?", s.created_at, s.updated_at
             FROM submissions s LEFT JOIN districts d ON d.id = s.district_id
             WHERE s.id = $1 AND s.campaign_id = $2 "#
                + $tail,
            $id,
            $campaign
        )
    };
}

fn own_from_row(id: Uuid, row: OwnRow) -> Result<OwnSubmission> {
    Ok(OwnSubmission {
        id,
        point: WgsPoint::new(row.lon, row.lat).map_err(|e| anyhow::anyhow!("stored point: {e}"))?,
        answers: row.answers.0,
        status: row.status,
        district: row
            .code
            .zip(row.name)
            .map(|(code, name)| DistrictRef { code, name }),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The submission `id` of `campaign`, when `token` is its edit token.
pub async fn view(
    pool: &PgPool,
    campaign: &Campaign,
    id: Uuid,
    token: &str,
) -> Result<OwnSubmission> {
    let row: Option<OwnRow> = select_own!("", id, campaign.id)
        .fetch_optional(pool)
        .await?;
    let row = row.ok_or_else(|| no_such_submission(id))?;
    check_token(&row.edit_token_hash, token)?;
    own_from_row(id, row)
}

/// How a correction went.
#[derive(Debug)]
pub enum Corrected {
    /// Changed; the submission as it is now.
    Done(OwnSubmission),
    /// Nothing changed: the campaign's settings changed since `campaign` was read.
    Stale,
}

/// Most corrections one submission takes: enough for a citizen who misplaced their pin, too
/// few for an edit link to walk a probe across the map.
pub const MAX_CORRECTIONS: i16 = 5;

/// Replaces the point and answers of submission `id` when `token` is its edit token: the
/// district is assigned again, and a published submission moves in the counters and the public
/// grid (out of its old place, into its new one) in the same transaction. In a pre-moderated
/// campaign a correction goes back to the moderators: a published submission becomes pending
/// (out of every count) until approved again.
pub async fn correct(
    pool: &PgPool,
    campaign: &Campaign,
    id: Uuid,
    token: &str,
    submission: &NewSubmission,
) -> Result<Corrected> {
    let mut tx = pool.begin().await?;
    // The lock every writer of submissions holds: a district import waits for this
    // correction, or this correction waits for the import and then sees its districts (and
    // its new `config_version`, hence `Stale`), never writing a district id just deleted.
    sqlx::query!("LOCK TABLE submissions IN ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let row: Option<OwnRow> = select_own!("FOR UPDATE OF s", id, campaign.id)
        .fetch_optional(&mut *tx)
        .await?;
    let row = row.ok_or_else(|| no_such_submission(id))?;
    check_token(&row.edit_token_hash, token)?;
    let corrections: i16 =
        sqlx::query_scalar!("SELECT corrections FROM submissions WHERE id = $1", id)
            .fetch_one(&mut *tx)
            .await?;
    if corrections >= MAX_CORRECTIONS {
        return Err(SubmissionError::TooManyCorrections);
    }
    let published = row.status == Status::Published;
    let status = if published && campaign.moderation == Moderation::Pre {
        Status::Pending
    } else {
        row.status
    };
    #[derive(sqlx::FromRow)]
    struct Place {
        fresh: bool,
        inside: bool,
        district_id: Option<i64>,
    }
    // Runtime SQL: composes the shared fragment `district_of!`, and sqlx's macros take only
    // literals.
    let place: Place = sqlx::query_as(concat!(
        "WITH pt AS (SELECT ST_SetSRID(ST_MakePoint($3, $4), 4326) AS g)
         SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND config_version = $2) AS fresh,
                EXISTS (SELECT 1 FROM campaigns c, pt WHERE c.id = $1 AND ST_Intersects(c.effective_area, pt.g)) AS inside,
                ",
        crate::districts::district_of!("$1", "pt.g"),
        " AS district_id FROM pt"
    ))
    .bind(campaign.id)
    .bind(campaign.config_version)
    .bind(submission.point.lon())
    .bind(submission.point.lat())
    .fetch_one(&mut *tx)
    .await?;
    if !place.fresh {
        return Ok(Corrected::Stale);
    }
    if !place.inside {
        return Err(Invalid::field("geometry", "is outside the campaign's area").into());
    }
    if published {
        crate::figures::add_published(&mut tx, id, -1).await?;
    }
    sqlx::query!(
        "UPDATE submissions SET geom = ST_SetSRID(ST_MakePoint($2, $3), 4326), answers = $4,
                district_id = $5, h3 = $6, status = $7, updated_at = now(),
                published_at = now(), corrections = corrections + 1
         WHERE id = $1",
        id,
        submission.point.lon(),
        submission.point.lat(),
        sqlx::types::Json(&submission.answers) as _,
        place.district_id,
        submission.point.h3_cell(),
        status as _,
    )
    .execute(&mut *tx)
    .await?;
    if status == Status::Published {
        crate::figures::add_published(&mut tx, id, 1).await?;
    }
    let row: OwnRow = select_own!("", id, campaign.id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(campaign = %campaign.slug, %id, "submission corrected by its submitter");
    Ok(Corrected::Done(own_from_row(id, row)?))
}

/// Forgets the client hashes of submissions older than their campaign's duplicate window
/// (or of campaigns that dropped the rule): they are kept only as long as they can be used.
pub async fn purge_client_hashes(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!(
        "UPDATE submissions s SET client_hash = NULL FROM campaigns c
         WHERE s.client_hash IS NOT NULL AND c.id = s.campaign_id
           AND s.created_at < now() - make_interval(mins => COALESCE((c.duplicates->>'window_minutes')::int, 0))",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// Deletes idempotency records older than a day.
pub async fn purge_idempotency_keys(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < now() - interval '1 day'")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::{Status, parse_feature};
    use crate::testing::{answers, campaign, clear_fields, json, lon_lat};

    /// A Feature whose every part may be anything, or nearly right.
    fn feature_like() -> impl Strategy<Value = Value> {
        let geometry = prop_oneof![
            json(),
            (json(), json()).prop_map(|(t, c)| json!({"type": t, "coordinates": c})),
            proptest::collection::vec(json(), 0..4)
                .prop_map(|c| json!({"type": "Point", "coordinates": c})),
            (any::<f64>(), any::<f64>())
                .prop_map(|(x, y)| json!({"type": "Point", "coordinates": [x, y]})),
        ];
        let properties = prop_oneof![
            json(),
            answers().prop_map(Value::Object),
            (answers(), "[a-z_]{1,12}", json()).prop_map(|(mut a, k, v)| {
                a.insert(k, v);
                Value::Object(a)
            }),
        ];
        (
            prop_oneof![Just(json!("Feature")), json()],
            geometry,
            properties,
        )
            .prop_map(|(t, g, p)| json!({"type": t, "geometry": g, "properties": p}))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the body, `parse_feature` answers without panicking, and a refusal names
        /// each field that is wrong and says why.
        #[test]
        fn any_body_is_accepted_or_refused_clearly(body in prop_oneof![json(), feature_like()]) {
            match parse_feature(&campaign(), &body) {
                Ok(s) => {
                    prop_assert!(body["type"] == "Feature");
                    prop_assert!((-180.0..=180.0).contains(&s.point.lon()));
                    prop_assert!((-90.0..=90.0).contains(&s.point.lat()));
                }
                Err(errors) => clear_fields(&errors)?,
            }
        }

        /// A valid Feature is accepted as it is: the same point, to the last bit, and the same
        /// answers (a third coordinate, the altitude, is ignored).
        #[test]
        fn a_valid_feature_is_accepted_with_its_point(
            (lon, lat) in lon_lat(),
            altitude in proptest::option::of(-100.0f64..9000.0),
            answers in answers(),
        ) {
            let coordinates = match altitude {
                Some(z) => json!([lon, lat, z]),
                None => json!([lon, lat]),
            };
            let body = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": coordinates},
                              "properties": answers});
            let parsed = parse_feature(&campaign(), &body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(parsed.point.lon().to_bits(), lon.to_bits());
            prop_assert_eq!(parsed.point.lat().to_bits(), lat.to_bits());
            prop_assert_eq!(parsed.answers, answers);
        }

        /// A point out of range is refused at `geometry.coordinates`, whatever the answers.
        #[test]
        fn a_point_out_of_range_is_refused_at_its_coordinates(
            lon in prop_oneof![-1e300f64..-180.000001, 180.000001f64..1e300, -180.0f64..=180.0],
            lat in prop_oneof![-1e300f64..-90.000001, 90.000001f64..1e300],
            answers in answers(),
        ) {
            let body = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                              "properties": answers});
            let errors = parse_feature(&campaign(), &body).err().unwrap_or_default();
            clear_fields(&errors)?;
            prop_assert!(errors.iter().any(|e| e.field == "geometry.coordinates"), "{errors:?}");
        }
    }

    #[test]
    fn every_status_literal_in_sql_is_the_status_as_stored() {
        let literals = [
            (Status::Published, crate::status!(Published)),
            (Status::Pending, crate::status!(Pending)),
            (Status::Hidden, crate::status!(Hidden)),
            (Status::Rejected, crate::status!(Rejected)),
        ];
        assert_eq!(literals.len(), Status::ALL.len());
        for (status, literal) in literals {
            assert_eq!(literal, format!("'{}'", status.as_str()));
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
    }

    /// Checked SQL (`sqlx::query!`) spells a status as a literal, which sqlx cannot check:
    /// every quoted word that `status` is compared with (`=`, `<>`) in the sources is a
    /// submission status (or a campaign's: draft, open, closed).
    #[test]
    fn status_literals_in_sql_are_statuses() {
        fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut seen = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices("status ") {
                let rest = text[at + "status ".len()..].trim_start();
                let Some(rest) = rest.strip_prefix("<>").or_else(|| rest.strip_prefix('=')) else {
                    continue;
                };
                let Some(quoted) = rest.trim_start().strip_prefix('\'') else {
                    continue;
                };
                let word = &quoted[..quoted.find('\'').unwrap_or(0)];
                seen += 1;
                assert!(
                    Status::parse(word).is_some() || ["draft", "open", "closed"].contains(&word),
                    "{}: `status ... '{word}'` is not a status",
                    file.display()
                );
            }
        }
        assert!(seen > 0, "no status literal found: the scan is broken");
    }
}
