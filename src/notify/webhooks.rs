//! Webhooks: endpoints of the city's own systems, registered per campaign by admins, that
//! receive a signed POST for each event they asked for, from the outbox.
//!
//! Signature (like Stripe's): `Civicmap-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
//! HMAC-SHA-256 under the endpoint's secret of `<t>.<body>`. A receiver recomputes it, compares
//! in constant time, and refuses a `t` too far from its clock (replays). `Civicmap-Event-Id`
//! is the same for every retry of one event: receivers drop an id they already processed.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::validation::FieldError;

/// Header holding the timestamp and signature of a webhook's body.
pub const SIGNATURE_HEADER: &str = "civicmap-signature";
/// Header holding the event's id, the same for every retry.
pub const EVENT_ID_HEADER: &str = "civicmap-event-id";

/// What a webhook can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Event {
    /// A submission was stored and published (its district and time; its exact position and
    /// id only to an `internal` endpoint).
    #[serde(rename = "submission.created")]
    SubmissionCreated,
    /// A district passed 25, 50, 75 or 100 % of its target.
    #[serde(rename = "district.threshold")]
    DistrictThreshold,
    /// The campaign closed.
    #[serde(rename = "campaign.closed")]
    CampaignClosed,
}

impl Event {
    /// Its name on the wire and in the database.
    pub fn name(self) -> &'static str {
        match self {
            Event::SubmissionCreated => "submission.created",
            Event::DistrictThreshold => "district.threshold",
            Event::CampaignClosed => "campaign.closed",
        }
    }
}

/// An RFC 3339 timestamp.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("a timestamp formats")
}

/// Queues `event` (with `data`) to every webhook of campaign `campaign_id` that asked for
/// it, under `key` (one row per endpoint: `key:webhook id`).
pub async fn enqueue(
    tx: &mut PgConnection,
    campaign_id: i64,
    event: Event,
    key: &str,
    data: &Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO outbox (campaign_id, webhook_id, kind, payload, key)
         SELECT $1, id, $2, $3, 'webhook:' || $4 || ':' || id
         FROM webhooks WHERE campaign_id = $1 AND $2 = ANY (events)
         ON CONFLICT (key) DO NOTHING",
        campaign_id,
        event.name(),
        data,
        key,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The `submission.created` events of the submissions in relation `$rows` (an SQL name whose
/// rows have `id`, `campaign_id`, `district_id` and `geom`), one `outbox` row per webhook of
/// their campaign that asked for it: `INSERT INTO outbox … FROM $rows s JOIN webhooks w …`, to be
/// followed by a `WHERE` on `s`. The payload is the district; the exact position and the id too
/// for an endpoint marked internal. The key (`webhook:submission.created:{id}:{webhook}`) makes
/// it once per endpoint. The two places that publish a submission (on arrival,
/// `submissions::store_batch`; on approval, [`enqueue_published`]) say it with this one text.
macro_rules! insert_submission_created {
    ($rows:literal) => {
        concat!(
            "INSERT INTO outbox (campaign_id, webhook_id, kind, payload, key)
             SELECT s.campaign_id, w.id, 'submission.created',
                    jsonb_build_object('district', (SELECT jsonb_build_object('code', d.code, 'name', d.name)
                                                    FROM districts d WHERE d.id = s.district_id))
                    || CASE WHEN w.internal
                            THEN jsonb_build_object('submission', jsonb_build_object(
                                     'id', s.id, 'lon', ST_X(s.geom), 'lat', ST_Y(s.geom)))
                            ELSE '{}'::jsonb END,
                    'webhook:submission.created:' || s.id || ':' || w.id
             FROM ",
            $rows,
            " s
             JOIN webhooks w ON w.campaign_id = s.campaign_id AND 'submission.created' = ANY (w.events)"
        )
    };
}
pub(crate) use insert_submission_created;

/// Queues `submission.created` for submission `id`, published by a moderator's approval
/// (pre-moderation), as `submissions::store_batch` does for one published on arrival: the
/// same payload, the same key (so at most once per endpoint). Call it in the transaction that
/// publishes it.
pub async fn enqueue_published(tx: &mut PgConnection, id: uuid::Uuid) -> sqlx::Result<()> {
    // Runtime SQL: composes the shared fragment `insert_submission_created!`, and sqlx's
    // macros take only literals.
    sqlx::query(concat!(
        insert_submission_created!("submissions"),
        " WHERE s.id = $1 AND s.status = ",
        crate::status!(Published),
        " ON CONFLICT (key) DO NOTHING"
    ))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Forgets submission `id` of campaign `campaign_id` in the outbox, in the transaction that
/// erases it or takes it out of the public figures (hidden, rejected): its `submission.created`
/// events not delivered yet are deleted, and those delivered (kept a day, marked sent) lose
/// the submission's id and position. What an endpoint already received is the city's system's
/// to delete (docs/PRIVACY.md). Returns how many events were deleted.
pub async fn forget(tx: &mut PgConnection, campaign_id: i64, id: uuid::Uuid) -> sqlx::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM outbox WHERE sent_at IS NULL AND key = ANY (
            SELECT 'webhook:submission.created:' || $2::uuid || ':' || w.id
            FROM webhooks w WHERE w.campaign_id = $1)",
        campaign_id,
        id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query!(
        "UPDATE outbox SET payload = payload - 'submission' WHERE key = ANY (
            SELECT 'webhook:submission.created:' || $2::uuid || ':' || w.id
            FROM webhooks w WHERE w.campaign_id = $1)",
        campaign_id,
        id,
    )
    .execute(&mut *tx)
    .await?;
    Ok(deleted)
}

/// `t=<t>,v1=<hex HMAC-SHA-256 of "<t>.<body>">` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Whether `header` is a valid signature of `body` under `secret`, made within `tolerance`
/// seconds of `now` (what a receiver does; the tests use it).
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now - t).abs() > tolerance {
        return false;
    }
    let expected = signature(secret, t, body);
    let expected = expected.rsplit_once("v1=").map_or("", |(_, hex)| hex);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), v1.as_bytes()).into()
}

/// The body of an event's POST.
pub fn body(
    key: &str,
    event: &str,
    campaign: &str,
    created_at: OffsetDateTime,
    data: &Value,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": key,
        "type": event,
        "campaign": campaign,
        "created_at": rfc3339(created_at),
        "data": data,
    }))
    .expect("an event serialises")
}

/// An endpoint as admins register it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where to POST: an `http` or `https` URL of the city's systems.
    pub url: String,
    /// The events to send, at least one.
    pub events: Vec<Event>,
    /// Whether the endpoint is on the city's own network and may receive a new submission's
    /// exact position and id (false by default).
    #[serde(default)]
    pub internal: bool,
    /// The signing secret (16 to 200 characters); without one, a random secret is made and
    /// shown once in the answer.
    pub secret: Option<String>,
}

/// An endpoint as the API shows it (its secret only in the answer that created it).
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub internal: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The signing secret: in the answer to its creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Checks `input`: an http(s) URL with a host (no credentials in it), known events, a secret
/// long enough. Endpoints are set by admins, not citizens; only the scheme is restricted (no
/// `file:`, `gopher:`...), and a private address is allowed since the city's systems live
/// there (see docs/ARCHITECTURE.md on SSRF).
pub fn check(input: &WebhookInput) -> Result<url::Url, Vec<FieldError>> {
    let mut errors = Vec::new();
    let url = match url::Url::parse(input.url.trim()) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            errors.push(FieldError::new("url", "must be an http:// or https:// URL"));
            None
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            errors.push(FieldError::new("url", "must name a host"));
            None
        }
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            errors.push(FieldError::new(
                "url",
                "must not hold credentials: receivers check the signature instead",
            ));
            None
        }
        Ok(url) if url.as_str().len() > 2000 => {
            errors.push(FieldError::new("url", "must be at most 2000 characters"));
            None
        }
        Ok(url) => Some(url),
        Err(e) => {
            errors.push(FieldError::new("url", format!("is not a URL: {e}")));
            None
        }
    };
    if input.events.is_empty() {
        errors.push(FieldError::new(
            "events",
            "must name at least one of submission.created, district.threshold, campaign.closed",
        ));
    }
    if let Some(secret) = &input.secret {
        let n = secret.chars().count();
        if !(16..=200).contains(&n) || secret.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "secret",
                "must be 16 to 200 characters, without control characters",
            ));
        }
    }
    match url {
        Some(url) if errors.is_empty() => Ok(url),
        _ => Err(errors),
    }
}

/// Registers an endpoint for campaign `campaign_id`; the answer holds its secret.
pub async fn create(
    pool: &PgPool,
    campaign_id: i64,
    url: &url::Url,
    input: &WebhookInput,
) -> sqlx::Result<Webhook> {
    let secret = input.secret.clone().unwrap_or_else(|| {
        let bytes: [u8; 24] = rand::random();
        format!(
            "whsec_{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
        )
    });
    let mut events: Vec<&str> = input.events.iter().map(|e| e.name()).collect();
    events.sort_unstable();
    events.dedup();
    let row = sqlx::query!(
        "INSERT INTO webhooks (campaign_id, url, secret, internal, events)
         VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at",
        campaign_id,
        url.as_str(),
        secret,
        input.internal,
        &events as &[&str],
    )
    .fetch_one(pool)
    .await?;
    let (id, created_at) = (row.id, row.created_at);
    Ok(Webhook {
        id,
        url: url.to_string(),
        events: events.into_iter().map(str::to_owned).collect(),
        internal: input.internal,
        created_at,
        secret: Some(secret),
    })
}

/// The endpoints of campaign `campaign_id`, without their secrets.
pub async fn list(pool: &PgPool, campaign_id: i64) -> sqlx::Result<Vec<Webhook>> {
    let rows = sqlx::query!(
        "SELECT id, url, events, internal, created_at FROM webhooks
         WHERE campaign_id = $1 ORDER BY id",
        campaign_id,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Webhook {
            id: r.id,
            url: r.url,
            events: r.events,
            internal: r.internal,
            created_at: r.created_at,
            secret: None,
        })
        .collect())
}

/// Deletes endpoint `id` of campaign `campaign_id` and its undelivered events; false when
/// there is none.
pub async fn delete(pool: &PgPool, campaign_id: i64, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM webhooks WHERE campaign_id = $1 AND id = $2",
        campaign_id,
        id
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_for_its_body_secret_and_time_only() {
        let header = signature("s3cret-s3cret-s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(verify(
            "s3cret-s3cret-s3cret",
            &header,
            b"{\"a\":1}",
            1_700_000_100,
            300
        ));
        assert!(!verify(
            "s3cret-s3cret-s3cret",
            &header,
            b"{\"a\":2}",
            1_700_000_100,
            300
        ));
        assert!(!verify(
            "other-other-other",
            &header,
            b"{\"a\":1}",
            1_700_000_100,
            300
        ));
        assert!(!verify(
            "s3cret-s3cret-s3cret",
            &header,
            b"{\"a\":1}",
            1_700_001_000,
            300
        ));
        assert!(!verify("s3cret-s3cret-s3cret", "t=1,v1=00", b"", 1, 300));
        assert!(!verify("s3cret-s3cret-s3cret", "", b"", 1, 300));
    }

    fn input(url: &str) -> WebhookInput {
        WebhookInput {
            url: url.into(),
            events: vec![Event::CampaignClosed],
            internal: false,
            secret: None,
        }
    }

    #[test]
    fn only_http_urls_with_a_host_are_endpoints() {
        assert!(check(&input("https://hooks.ville.fr/civicmap")).is_ok());
        assert!(check(&input("http://10.0.0.5:8080/in")).is_ok());
        for bad in [
            "file:///etc/passwd",
            "gopher://x",
            "ftp://x/y",
            "javascript:alert(1)",
            "http://user:pw@x/",
            "not a url",
            "",
        ] {
            let errors = check(&input(bad)).unwrap_err();
            assert_eq!(errors[0].field, "url", "{bad}");
        }
        let mut none = input("https://x/");
        none.events.clear();
        none.secret = Some("short".into());
        let fields: Vec<String> = check(&none)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["events", "secret"]);
    }
}
