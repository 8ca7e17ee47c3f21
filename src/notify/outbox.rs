//! The outbox's workers, run by every instance of `civicmap serve`: one finds what is to be
//! announced ([`super::detect`]) every `interval`; two send what is due, one row at a time, each
//! from a lane of its own: confirmations of subscriptions at most `confirmations_per_second` a
//! second, everything else (notices, webhooks) at most `per_second`, so that a flood of
//! subscriptions never delays a notice or a webhook.
//!
//! Sending a row: a transaction claims it (`FOR UPDATE SKIP LOCKED`: no two instances send the
//! same row at once), hands the message to the SMTP server or POSTs it to the webhook, and
//! marks it sent (an e-mail's row is deleted), or schedules its retry, before committing. A crash before the commit leaves
//! the row unsent and unlocked: it is sent again, with the same Message-ID or event id. So a
//! message is delivered at least once, and twice only if the crash falls between the
//! receiver's acceptance and the commit (milliseconds; RFC 1047's window, which no SMTP
//! client can close), and then the copy has the same id for the receiver to drop it.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::mail::{MailConfig, Mailer, Notice, SendError};
use super::webhooks;
use crate::campaigns::{Lang, Localized};
use crate::safety::secret::SecretStore;

/// Attempts before a message is given up (about a day and a half at the default backoff).
pub const MAX_ATTEMPTS: i32 = 12;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// Pause of the sender when nothing is due.
const IDLE: Duration = Duration::from_millis(500);
/// Longest a webhook's POST may take.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the notices' workers.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The SMTP server and links of e-mail notices; `None`: no e-mail is sent (and nobody may
    /// subscribe), webhooks still are.
    pub mail: Option<MailConfig>,
    /// Most notices and webhook POSTs this instance sends a second.
    pub per_second: u32,
    /// Most confirmations of subscriptions this instance sends a second (their own lane).
    pub confirmations_per_second: u32,
    /// How often thresholds and closings are looked for.
    pub interval: Duration,
    /// Wait before the first retry; each further retry waits twice as long, up to
    /// [`MAX_BACKOFF`].
    pub retry_base: Duration,
    /// A certificate authority (PEM) trusted for https endpoints besides the machine's
    /// (`--ca-file`).
    pub extra_root: Option<Vec<u8>>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            mail: None,
            per_second: 5,
            confirmations_per_second: 2,
            interval: Duration::from_secs(10),
            retry_base: Duration::from_secs(30),
            extra_root: None,
        }
    }
}

/// Wait before attempt `attempts + 1`, after `attempts` failed ones.
pub fn backoff(attempts: i32, base: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    base.saturating_mul(1u32 << doublings.min(20))
        .min(MAX_BACKOFF)
}

/// Which rows a sender claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Confirmations of subscriptions.
    Confirmations,
    /// Notices and webhooks.
    Notices,
}

/// The workers, stopped when dropped.
pub struct Workers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the finder and the two senders over `pool`.
pub fn start(pool: PgPool, config: NotifyConfig) -> Workers {
    let finder = {
        let pool = pool.clone();
        let interval = config.interval;
        tokio::spawn(async move {
            loop {
                match super::detect(&pool).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(announcements = n, "notices queued"),
                    Err(e) => tracing::warn!(error = %e, "cannot look for notices to send"),
                }
                tokio::time::sleep(interval).await;
            }
        })
    };
    let confirmations = tokio::spawn(send_forever(
        pool.clone(),
        config.clone(),
        Lane::Confirmations,
    ));
    let notices = tokio::spawn(send_forever(pool, config, Lane::Notices));
    Workers {
        tasks: vec![finder, confirmations, notices],
    }
}

async fn send_forever(pool: PgPool, config: NotifyConfig, lane: Lane) {
    // HTTPS endpoints are checked against the machine's certificate authorities (Debian's
    // ca-certificates, where a city adds its own internal CA) and `--ca-file`'s.
    let extra = config
        .extra_root
        .as_deref()
        .map(reqwest::Certificate::from_pem_bundle)
        .transpose()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "--ca-file cannot be read: https webhooks trust the machine's authorities only");
            None
        })
        .unwrap_or_default();
    let client = |native_roots: bool| {
        let mut builder = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            // A redirect could lead the POST anywhere: an endpoint answers itself.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("civicmap/", env!("CARGO_PKG_VERSION")))
            .tls_built_in_native_certs(native_roots);
        for certificate in &extra {
            builder = builder.add_root_certificate(certificate.clone());
        }
        builder.build()
    };
    let http = client(true).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read the machine's certificate authorities: https webhooks will fail");
        client(false).expect("an HTTP client without root certificates builds")
    });
    // `serve` made one from the same settings before starting: this cannot fail.
    let mailer = match config.mail.clone().map(Mailer::new).transpose() {
        Ok(mailer) => mailer,
        Err(e) => {
            tracing::error!(error = %e, "cannot make the SMTP client: no e-mail is sent");
            None
        }
    };
    let sender = Sender {
        mailer,
        http,
        secrets: SecretStore::default(),
        retry_base: config.retry_base,
    };
    let per_second = match lane {
        Lane::Confirmations => config.confirmations_per_second,
        Lane::Notices => config.per_second,
    };
    let per_second = NonZeroU32::new(per_second.max(1)).expect("at least one");
    let limiter = RateLimiter::direct(Quota::per_second(per_second));
    loop {
        limiter.until_ready().await;
        match sender.send_one(&pool, lane).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(IDLE).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot send notices");
                tokio::time::sleep(IDLE).await;
            }
        }
    }
}

/// What sends one outbox row.
pub struct Sender {
    mailer: Option<Mailer>,
    http: reqwest::Client,
    secrets: SecretStore,
    retry_base: Duration,
}

struct Due {
    id: i64,
    kind: String,
    key: String,
    payload: Value,
    attempts: i32,
    created_at: OffsetDateTime,
    subscription_id: Option<uuid::Uuid>,
    email: Option<String>,
    lang: Option<String>,
    url: Option<String>,
    secret: Option<String>,
    slug: String,
    title_fr: String,
    title_en: String,
}

impl Sender {
    /// Claims the next due row of `lane`, sends it and records the outcome; false when none is
    /// due.
    pub async fn send_one(&self, pool: &PgPool, lane: Lane) -> anyhow::Result<bool> {
        let mut tx = pool.begin().await?;
        let due = sqlx::query_as!(
            Due,
            r#"SELECT o.id, o.kind, o.key, o.payload, o.attempts, o.created_at, o.subscription_id,
                    s.email AS "email?", s.lang AS "lang?", w.url AS "url?", w.secret AS "secret?",
                    c.slug, c.title_fr, c.title_en
             FROM outbox o
             JOIN campaigns c ON c.id = o.campaign_id
             LEFT JOIN subscriptions s ON s.id = o.subscription_id
             LEFT JOIN webhooks w ON w.id = o.webhook_id
             WHERE o.sent_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= now()
               AND (o.kind = 'confirm') = $2
               AND (o.webhook_id IS NOT NULL OR $1)
             ORDER BY (o.kind = 'confirm'), o.next_attempt_at, o.id
             LIMIT 1
             FOR UPDATE OF o SKIP LOCKED"#,
            self.mailer.is_some(),
            lane == Lane::Confirmations,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(due) = due else {
            return Ok(false);
        };
        // A confirmation lists every subscription of its mailbox still waiting (and marks them
        // asked this hour); when none is left, there is nothing to send.
        let pending = match (due.kind.as_str(), due.subscription_id) {
            ("confirm", Some(id)) => super::pending_of_mailbox(&mut tx, id).await?,
            _ => Vec::new(),
        };
        let outcome = match (&due.url, &due.email) {
            (Some(url), _) => self.post(&due, url).await,
            (None, Some(_)) if due.kind == "confirm" && pending.is_empty() => Ok(()),
            (None, Some(email)) => self.mail(pool, &due, email, &pending).await,
            (None, None) => Err(SendError {
                message: "neither an address nor an endpoint".into(),
                permanent: true,
            }),
        };
        match outcome {
            // An e-mail's row goes once sent: its exact times would tie its subscription to
            // an instant (subscriptions keep the hour only). A webhook's row stays a day.
            Ok(()) if due.subscription_id.is_some() => {
                sqlx::query!("DELETE FROM outbox WHERE id = $1", due.id)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(()) => {
                sqlx::query!(
                    "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL
                     WHERE id = $1",
                    due.id,
                )
                .execute(&mut *tx)
                .await?;
            }
            Err(error) => {
                let attempts = due.attempts + 1;
                let give_up = error.permanent || attempts >= MAX_ATTEMPTS;
                let wait = backoff(attempts, self.retry_base);
                tracing::warn!(
                    outbox = due.id,
                    kind = %due.kind,
                    attempts,
                    give_up,
                    error = %error.message,
                    "a notice was not delivered"
                );
                sqlx::query!(
                    "UPDATE outbox SET attempts = $2, last_error = $3,
                        next_attempt_at = now() + make_interval(secs => $4),
                        failed_at = CASE WHEN $5 THEN now() END
                     WHERE id = $1",
                    due.id,
                    attempts,
                    error.message.chars().take(500).collect::<String>(),
                    wait.as_secs_f64(),
                    give_up,
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn mail(
        &self,
        pool: &PgPool,
        due: &Due,
        email: &str,
        pending: &[(uuid::Uuid, Option<String>)],
    ) -> Result<(), SendError> {
        let mailer = self
            .mailer
            .as_ref()
            .expect("e-mail rows are claimed with a mailer");
        let fail = |message: String, permanent| SendError { message, permanent };
        let secret = self
            .secrets
            .get(pool)
            .await
            .map_err(|e| fail(format!("no server secret: {e}"), false))?;
        let id = due
            .subscription_id
            .expect("an e-mail row has a subscription");
        let base = format!("/api/v1/campaigns/{}/subscriptions", due.slug);
        let unsubscribe = mailer.config.link(&format!(
            "{base}/unsubscribe?token={}",
            super::token(secret, super::Purpose::Unsubscribe, id)
        ));
        let confirm_link = |id| {
            mailer.config.link(&format!(
                "{base}/confirm?token={}",
                super::token(secret, super::Purpose::Confirm, id)
            ))
        };
        // The first pending subscription is the message's button; the others, each a line
        // with its own link.
        let (action, payload) = match pending.split_first() {
            Some(((first, _), others)) if due.kind == "confirm" => (
                confirm_link(*first),
                serde_json::json!({
                    "others": others
                        .iter()
                        .map(|(id, district)| serde_json::json!({
                            "district": district,
                            "link": confirm_link(*id),
                        }))
                        .collect::<Vec<_>>(),
                }),
            ),
            _ => (
                mailer.config.link(&format!("/embed/{}", due.slug)),
                due.payload.clone(),
            ),
        };
        let title = Localized {
            fr: due.title_fr.clone(),
            en: due.title_en.clone(),
        };
        let lang = if due.lang.as_deref() == Some("en") {
            Lang::En
        } else {
            Lang::Fr
        };
        let rendered = super::mail::render(&Notice {
            kind: &due.kind,
            payload: &payload,
            title: &title,
            lang,
            action: &action,
            unsubscribe: &unsubscribe,
        })
        .ok_or_else(|| fail(format!("cannot write a `{}` notice", due.kind), true))?;
        let message = mailer
            .message(&rendered, email, &due.key, &unsubscribe)
            .map_err(|e| fail(e, true))?;
        // An SMTP server's refusal often repeats the address: it is kept out of the log and
        // of `last_error`.
        mailer.send(message).await.map_err(|e| SendError {
            message: e.message.replace(email, "<address>"),
            permanent: e.permanent,
        })
    }

    async fn post(&self, due: &Due, url: &str) -> Result<(), SendError> {
        let event_id = event_id(&due.key);
        let body = webhooks::body(
            &event_id,
            &due.kind,
            &due.slug,
            due.created_at,
            &due.payload,
        );
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let signature = webhooks::signature(due.secret.as_deref().unwrap_or_default(), now, &body);
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhooks::SIGNATURE_HEADER, signature)
            .header(webhooks::EVENT_ID_HEADER, &event_id)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError {
                // With its causes: "error sending request" alone does not say that the
                // endpoint's certificate is not trusted, or that nothing listens.
                message: format!("POST failed: {}", crate::notify::error_chain(&e)),
                permanent: false,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(SendError {
            message: format!("the endpoint answered {status}"),
            // 410 Gone: the endpoint says it will never take events again.
            permanent: status == reqwest::StatusCode::GONE,
        })
    }
}

/// The id a webhook receives for outbox row `key`: stable across retries, and holding none of
/// the key's ids (a submission's id is sent to internal endpoints only).
pub fn event_id(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("evt_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_a_bound() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(1, base), Duration::from_secs(30));
        assert_eq!(backoff(2, base), Duration::from_secs(60));
        assert_eq!(backoff(5, base), Duration::from_secs(480));
        assert_eq!(backoff(11, base), MAX_BACKOFF);
        assert_eq!(backoff(i32::MAX, base), MAX_BACKOFF);
        assert_eq!(backoff(0, base), base);
    }

    #[test]
    fn event_ids_are_stable_and_opaque() {
        let key = "webhook:submission.created:0190a0b4-1111-7000-8000-000000000000:3";
        assert_eq!(event_id(key), event_id(key));
        assert!(!event_id(key).contains("0190a0b4"));
        assert_ne!(
            event_id(key),
            event_id("webhook:campaign.closed:closed:1:3")
        );
    }
}
