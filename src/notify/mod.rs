//! Notices: citizens who follow their district by e-mail (double opt-in), and the city's own
//! systems told by signed webhooks. Both are sent from one durable outbox ([`outbox`]).
//!
//! What causes a notice writes its outbox rows in its own transaction:
//! - a new published submission: `submission.created` webhooks, in `submissions::store_batch`'s
//!   statement itself (its `hooked` step);
//! - a district passing 25, 50, 75 or 100 % of its target, and a campaign closing: [`detect`],
//!   run every few seconds by every instance, records each announcement under a unique key
//!   (`notice_announcements`) and writes its rows in that transaction, so each crossing is
//!   announced once whichever instance sees it first, whatever crashes;
//! - a staff update (the campaign's story): [`enqueue_update`], to be called in the
//!   transaction that stores the update;
//! - a subscription: its confirmation message ([`subscribe`]).

pub mod http;
pub mod mail;
pub mod outbox;
pub mod webhooks;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::campaigns::Lang;
use crate::safety::secret::ServerSecret;

/// The shares of a district's target that are announced, in percent.
pub const THRESHOLDS: [i16; 4] = [25, 50, 75, 100];

/// Days an unconfirmed subscription is kept before it is deleted.
pub const UNCONFIRMED_DAYS: i32 = 7;

/// What a link in a message does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms a subscription (double opt-in).
    Confirm,
    /// Deletes a subscription.
    Unsubscribe,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Confirm => "notify-confirm",
            Purpose::Unsubscribe => "notify-unsubscribe",
        }
    }
}

/// The token of a link: the subscription's id and an HMAC of it under the server secret, for
/// one purpose. Nothing is stored: the token is checked by computing it again, and dies with
/// its subscription (a new subscription has a new id).
pub fn token(secret: &ServerSecret, purpose: Purpose, subscription: Uuid) -> String {
    let tag = secret.mac(purpose.label(), &[subscription.as_bytes()]);
    format!("{}.{}", subscription.simple(), URL_SAFE_NO_PAD.encode(tag))
}

/// The subscription a token was made for, if it is genuine.
pub fn check_token(secret: &ServerSecret, purpose: Purpose, token: &str) -> Option<Uuid> {
    let (id, tag) = token.split_once('.')?;
    if id.len() != 32 {
        return None;
    }
    let id = Uuid::try_parse(id).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    secret
        .verify(purpose.label(), &[id.as_bytes()], &tag)
        .then_some(id)
}

/// An e-mail address as it is stored: trimmed, lower-case, and one `lettre` can send to.
pub fn parse_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.len() > 254 || email.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    // No quoted local part, and the domain in its one ASCII form (IDNA: `ｇｍａｉｌ.com` is
    // `gmail.com`, `mairie-é.fr` is `xn--mairie--9ya.fr`), so that one mailbox has one spelling
    // of its domain; no address literal.
    let (local, domain) = email.rsplit_once('@')?;
    if local.contains('"') {
        return None;
    }
    let url::Host::Domain(domain) = url::Host::parse(domain).ok()? else {
        return None;
    };
    let email = format!("{local}@{domain}");
    email.parse::<lettre::Address>().ok()?;
    Some(email)
}

/// Domains whose mail service delivers `name+anything@` to `name@` (subaddressing).
const SUBADDRESSING: [&str; 12] = [
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "outlook.fr",
    "hotmail.com",
    "hotmail.fr",
    "live.com",
    "live.fr",
    "icloud.com",
    "me.com",
    "proton.me",
    "protonmail.com",
];

/// The mailbox an address reaches, for the limits on confirmations: lower case; for the
/// providers that deliver `name+anything@` to `name@`, without the `+tag`; for Gmail, also
/// without dots (`g.mail` and `gmail` are one inbox there) and with `googlemail.com` as
/// `gmail.com`. Elsewhere `+` and dots may name another person and are kept. Messages go to the
/// address as typed (the first typed for the mailbox and district).
pub fn mailbox(email: &str) -> String {
    let email = email.trim().to_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return email;
    };
    if !SUBADDRESSING.contains(&domain) {
        return email;
    }
    let local = local.split('+').next().unwrap_or(local);
    match domain {
        "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
        _ => format!("{local}@{domain}"),
    }
}

/// Most unconfirmed subscriptions one mailbox may have in a campaign (one per district and one
/// for the whole campaign, up to this): beyond, further ones are not stored (and the answer is
/// the same, so nobody learns it).
pub const PENDING_PER_MAILBOX: i64 = 20;

/// What [`subscribe`] did; the HTTP answer is the same whatever it is, so that nobody learns
/// whether an address follows a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// A new subscription; its confirmation is queued (this hour, or the next one when its
    /// mailbox had one this hour).
    New,
    /// Already waiting: its confirmation was queued again (at most once an hour a mailbox).
    Reminded,
    /// Already waiting, and a confirmation was sent within the hour: nothing sent.
    Throttled,
    /// Already confirmed: nothing sent.
    Already,
    /// The mailbox has [`PENDING_PER_MAILBOX`] unconfirmed subscriptions: nothing stored.
    Crowded,
    /// Other requests of the same mailbox kept it busy for [`MAILBOX_TRIES`] tries (someone is
    /// flooding it): nothing done.
    Contended,
}

/// How many times a request tries to take its mailbox's lock, a little longer apart each time,
/// without holding a database connection in between: a flood of requests for one mailbox cannot
/// take every connection of the pool.
pub const MAILBOX_TRIES: u32 = 8;

/// Why a subscription needs a proof of work: the campaign, or the recipient's domain, has as
/// many unconfirmed subscriptions this hour as it takes without one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Capped(pub String);

/// Records that `email` wants notices of campaign `campaign_id` (and of district `district`),
/// and queues its confirmation message, in one transaction.
///
/// One confirmation at most per mailbox ([`mailbox`]) per campaign per hour, whatever the
/// district or spelling: a request while one went out this hour is queued for the next hour,
/// whose message carries a link for every subscription of the mailbox still waiting. A mailbox
/// has one subscription per district (a new spelling reminds it). Once `per_hour` unconfirmed
/// subscriptions were created in the campaign this hour (a tenth of them for one recipient
/// domain), every request, new or not, needs a proof of work (`proven`): the same answer for
/// all, so that it tells nobody whether an address follows, and a flood cannot close the form
/// to everyone.
pub async fn subscribe(
    pool: &PgPool,
    campaign_id: i64,
    email: &str,
    lang: Lang,
    district: Option<&str>,
    per_hour: u32,
    proven: bool,
) -> sqlx::Result<Result<Subscribed, Capped>> {
    let lang = lang_code(lang);
    let mailbox = mailbox(email);
    let domain = mailbox.rsplit_once('@').map_or("", |(_, d)| d).to_owned();
    // One request per mailbox and campaign at a time, here and in the sender
    // (`pending_of_mailbox`): what it reads stays true until it commits. Taken without
    // waiting: a busy mailbox's requests let go of their connection and try again later.
    let mut tries = 0;
    let mut tx = loop {
        let mut tx = pool.begin().await?;
        if try_lock_mailbox(&mut tx, campaign_id, &mailbox).await? {
            break tx;
        }
        tx.rollback().await?;
        tries += 1;
        if tries == MAILBOX_TRIES {
            return Ok(Ok(Subscribed::Contended));
        }
        tokio::time::sleep(std::time::Duration::from_millis(
            20 * u64::from(tries) + rand::random::<u64>() % 20,
        ))
        .await;
    };
    if !proven {
        let hour = sqlx::query!(
            r#"SELECT count(*) AS "campaign!",
                      count(*) FILTER (WHERE split_part(mailbox, '@', 2) = $2) AS "domain!"
               FROM subscriptions
               WHERE campaign_id = $1 AND NOT confirmed
                 AND created_hour = date_trunc('hour', now())"#,
            campaign_id,
            domain,
        )
        .fetch_one(&mut *tx)
        .await?;
        let per_domain = i64::from(per_hour.div_ceil(10));
        if hour.campaign >= i64::from(per_hour) {
            return Ok(Err(Capped(format!(
                "this campaign received {per_hour} subscriptions or more this hour that wait for their confirmation"
            ))));
        }
        if hour.domain >= per_domain {
            return Ok(Err(Capped(format!(
                "this campaign received {per_domain} subscriptions or more to addresses at {domain} this hour that wait for their confirmation"
            ))));
        }
    }
    let existing = sqlx::query!(
        r#"SELECT id, confirmed,
                  confirmation_hour IS DISTINCT FROM date_trunc('hour', now()) AS "may_remind!"
           FROM subscriptions
           WHERE campaign_id = $1 AND mailbox = $2 AND district_code IS NOT DISTINCT FROM $3
           ORDER BY confirmed DESC
           LIMIT 1"#,
        campaign_id,
        mailbox,
        district,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (id, outcome) = match existing {
        Some(row) if row.confirmed => (row.id, Subscribed::Already),
        Some(row) if row.may_remind => (row.id, Subscribed::Reminded),
        Some(row) => (row.id, Subscribed::Throttled),
        None => {
            let pending = sqlx::query_scalar!(
                r#"SELECT count(*) AS "pending!" FROM subscriptions
                   WHERE campaign_id = $1 AND mailbox = $2 AND NOT confirmed"#,
                campaign_id,
                mailbox,
            )
            .fetch_one(&mut *tx)
            .await?;
            if pending >= PENDING_PER_MAILBOX {
                return Ok(Ok(Subscribed::Crowded));
            }
            let id = Uuid::new_v4();
            sqlx::query!(
                "INSERT INTO subscriptions (id, campaign_id, email, mailbox, lang, district_code)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                id,
                campaign_id,
                email,
                mailbox,
                lang,
                district,
            )
            .execute(&mut *tx)
            .await?;
            (id, Subscribed::New)
        }
    };
    if matches!(outcome, Subscribed::New | Subscribed::Reminded) {
        // The mailbox's confirmation of this hour, or, when it had one, of the next hour; the
        // key makes every request of that hour one message.
        let digest = crate::auth::hash_secret(mailbox.as_bytes());
        let sent_this_hour = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT FROM subscriptions
                              WHERE campaign_id = $1 AND mailbox = $2
                                AND confirmation_hour = date_trunc('hour', now())) AS "sent!""#,
            campaign_id,
            mailbox,
        )
        .fetch_one(&mut *tx)
        .await?;
        let hours_ahead: i32 = if sent_this_hour { 1 } else { 0 };
        sqlx::query!(
            "INSERT INTO outbox (campaign_id, subscription_id, kind, key, next_attempt_at)
             SELECT $1, $2::uuid, 'confirm',
                    'confirm:' || $1::bigint || ':' || encode($3::bytea, 'hex') || ':'
                        || extract(epoch FROM hour)::bigint,
                    greatest(hour, now())
             FROM (SELECT date_trunc('hour', now()) + make_interval(hours => $4) AS hour) h
             ON CONFLICT (key) DO NOTHING",
            campaign_id,
            id,
            digest.as_slice(),
            hours_ahead,
        )
        .execute(&mut *tx)
        .await?;
        if !sent_this_hour {
            sqlx::query!(
                "UPDATE subscriptions SET confirmation_hour = date_trunc('hour', now()) WHERE id = $1",
                id,
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Ok(outcome))
}

/// Takes the transaction-level lock of `mailbox` in campaign `campaign_id` if it is free:
/// subscribing and sending its confirmation happen one after the other.
async fn try_lock_mailbox(
    db: &mut PgConnection,
    campaign_id: i64,
    mailbox: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended('subscribe:' || $1::bigint || ':' || $2, 0)) AS "locked!""#,
        campaign_id,
        mailbox,
    )
    .fetch_one(db)
    .await
}

/// Takes the transaction-level lock of `mailbox` in campaign `campaign_id`, waiting for it (the
/// sender, one task per instance).
pub(crate) async fn lock_mailbox(
    db: &mut PgConnection,
    campaign_id: i64,
    mailbox: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('subscribe:' || $1::bigint || ':' || $2, 0))",
        campaign_id,
        mailbox,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The subscriptions of the mailbox of subscription `id` in its campaign that still wait for
/// their confirmation, marked as asked this hour, with their district's name (`None`: the whole
/// campaign), `id`'s first: what one confirmation message lists.
pub async fn pending_of_mailbox(
    db: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Vec<(Uuid, Option<String>)>> {
    let Some(mine) = sqlx::query!(
        "SELECT campaign_id, mailbox FROM subscriptions WHERE id = $1",
        id
    )
    .fetch_optional(&mut *db)
    .await?
    else {
        return Ok(Vec::new());
    };
    // A request of this mailbox made while this message is being sent waits for it, then sees
    // that this hour's confirmation went out (`subscribe`).
    lock_mailbox(db, mine.campaign_id, &mine.mailbox).await?;
    let rows = sqlx::query!(
        r#"WITH mine AS (SELECT campaign_id, mailbox FROM subscriptions WHERE id = $1),
           asked AS (
               UPDATE subscriptions s SET confirmation_hour = date_trunc('hour', now())
               FROM mine
               WHERE s.campaign_id = mine.campaign_id AND s.mailbox = mine.mailbox
                 AND NOT s.confirmed
               RETURNING s.id, s.campaign_id, s.district_code
           )
           SELECT a.id, d.name AS "district?"
           FROM asked a
           LEFT JOIN districts d ON d.campaign_id = a.campaign_id AND d.code = a.district_code
           ORDER BY a.id = $1 DESC, d.name NULLS FIRST
           LIMIT $2"#,
        id,
        PENDING_PER_MAILBOX,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.district)).collect())
}

/// Confirms subscription `id`; false when there is none (unsubscribed, expired).
pub async fn confirm(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE subscriptions SET confirmed = true WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes subscription `id` and whatever it had waiting in the outbox; false when there is
/// none.
pub async fn unsubscribe(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!("DELETE FROM subscriptions WHERE id = $1", id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The language and campaign of subscription `id`, if it exists.
pub async fn subscription(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<(i64, Lang, bool)>> {
    let row = sqlx::query!(
        "SELECT campaign_id, lang, confirmed FROM subscriptions WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.campaign_id, parse_lang(&r.lang), r.confirmed)))
}

/// `error` and its causes, `: `-separated, each once (a cause repeated in its parent's text
/// is left out).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "fr",
        Lang::En => "en",
    }
}

fn parse_lang(code: &str) -> Lang {
    if code == "en" { Lang::En } else { Lang::Fr }
}

/// A staff update, as [`enqueue_update`] sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Update {
    /// The update's id in its own table (one notice per update and subscriber).
    pub id: String,
    /// Its title, in French and English.
    pub title: crate::campaigns::Localized,
    /// Its text, in French and English.
    pub text: crate::campaigns::Localized,
    /// An optional link, shown under the text.
    pub link: Option<String>,
}

/// Queues the notice of a staff update to every confirmed subscriber of campaign
/// `campaign_id` (once per address, whatever districts it follows). Call it once, in the
/// transaction that stores the update: the notice exists if and only if the update does.
/// A second call with the same update id queues nothing for notices still waiting, but an
/// e-mail's row is deleted once sent, so a call after that would send it again.
pub async fn enqueue_update(
    tx: &mut PgConnection,
    campaign_id: i64,
    update: &Update,
) -> sqlx::Result<u64> {
    let payload = serde_json::to_value(update).expect("an update serialises");
    let done = sqlx::query!(
        "INSERT INTO outbox (campaign_id, subscription_id, kind, payload, key)
         SELECT DISTINCT ON (email) $1::bigint, id, 'update', $2, 'update:' || $1::bigint || ':' || $3 || ':' || id
         FROM subscriptions WHERE campaign_id = $1::bigint AND confirmed
         ORDER BY email, id
         ON CONFLICT (key) DO NOTHING",
        campaign_id,
        payload,
        update.id,
    )
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// One district's newly passed share of its target.
#[derive(Debug, Clone, PartialEq)]
struct Crossing {
    campaign_id: i64,
    code: String,
    name: String,
    threshold: i16,
    count: i64,
    target: i64,
}

/// Finds what is to be announced (districts passing a share of their target, campaigns
/// closing), records each announcement once, and queues its e-mails and webhooks, all in one
/// transaction. Returns how many announcements were made.
///
/// A district's count is its published count, exactly as the districts layer shows it
/// ([`crate::figures::DistrictCounts::published`]: withheld below k distinct contributors, and
/// with complementary suppression): a district whose count is withheld is never announced, so
/// a notice never says more than the public figures, whatever probes were posted. Several
/// shares passed at once (targets set late) make one notice, of the highest; each share is
/// announced once ever, even if the count falls back and rises again.
pub async fn detect(pool: &PgPool) -> sqlx::Result<usize> {
    let mut tx = pool.begin().await?;
    let campaigns = sqlx::query!(
        r#"SELECT id, min_count, targets AS "targets: sqlx::types::Json<BTreeMap<String, i64>>"
         FROM campaigns WHERE status <> 'draft' AND targets <> '{}'::jsonb"#,
    )
    .fetch_all(&mut *tx)
    .await?;
    // Every share of a target passed by a published count.
    let mut passed: Vec<Crossing> = Vec::new();
    for campaign in campaigns {
        let counts = crate::figures::district_counts(&mut *tx, campaign.id).await?;
        let published = counts.published(i64::from(campaign.min_count));
        let names: BTreeMap<i64, (String, String)> = sqlx::query!(
            "SELECT id, code, name FROM districts WHERE campaign_id = $1",
            campaign.id
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|d| (d.id, (d.code, d.name)))
        .collect();
        for ((id, _), shown) in counts.districts.iter().zip(&published.cells) {
            let (Some((code, name)), Some(count)) = (names.get(id), shown.count) else {
                continue;
            };
            let Some(&target) = campaign.targets.0.get(code).filter(|t| **t > 0) else {
                continue;
            };
            for &threshold in &THRESHOLDS {
                if count * 100 >= target * i64::from(threshold) {
                    passed.push(Crossing {
                        campaign_id: campaign.id,
                        code: code.clone(),
                        name: name.clone(),
                        threshold,
                        count,
                        target,
                    });
                }
            }
        }
    }
    let announced = sqlx::query!(
        r#"INSERT INTO notice_announcements (campaign_id, kind, district_code, threshold)
         SELECT campaign_id, 'threshold', code, threshold
         FROM unnest($1::int8[], $2::text[], $3::int2[]) AS p(campaign_id, code, threshold)
         ORDER BY campaign_id, code, threshold
         ON CONFLICT DO NOTHING
         RETURNING campaign_id, district_code AS "code!", threshold AS "threshold!""#,
        &passed.iter().map(|c| c.campaign_id).collect::<Vec<_>>(),
        &passed.iter().map(|c| c.code.clone()).collect::<Vec<_>>(),
        &passed.iter().map(|c| c.threshold).collect::<Vec<_>>(),
    )
    .fetch_all(&mut *tx)
    .await?;
    let rows: Vec<&Crossing> = announced
        .iter()
        .filter_map(|a| {
            passed.iter().find(|c| {
                c.campaign_id == a.campaign_id && c.code == a.code && c.threshold == a.threshold
            })
        })
        .collect();
    // The highest share newly passed, per district.
    let mut highest: BTreeMap<(i64, String), Crossing> = BTreeMap::new();
    for crossing in rows {
        let threshold = crossing.threshold;
        let crossing = crossing.clone();
        highest
            .entry((crossing.campaign_id, crossing.code.clone()))
            .and_modify(|c| {
                if threshold > c.threshold {
                    *c = crossing.clone();
                }
            })
            .or_insert(crossing);
    }
    let mut made = highest.len();
    for crossing in highest.values() {
        enqueue_threshold(&mut tx, crossing).await?;
    }
    let closed = sqlx::query_scalar!(
        "INSERT INTO notice_announcements (campaign_id, kind)
         SELECT id, 'closed' FROM campaigns
         WHERE status = 'closed' OR (status = 'open' AND closes_at <= now())
         ORDER BY id
         ON CONFLICT DO NOTHING
         RETURNING campaign_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    made += closed.len();
    for campaign_id in closed {
        enqueue_closed(&mut tx, campaign_id).await?;
    }
    tx.commit().await?;
    Ok(made)
}

async fn enqueue_threshold(tx: &mut PgConnection, c: &Crossing) -> sqlx::Result<()> {
    let district = json!({"code": c.code, "name": c.name});
    let payload = json!({"district": district, "threshold": c.threshold,
                         "count": c.count, "target": c.target});
    let key = format!("threshold:{}:{}:{}", c.campaign_id, c.code, c.threshold);
    sqlx::query!(
        "INSERT INTO outbox (campaign_id, subscription_id, kind, payload, key)
         SELECT $1, id, 'threshold', $3, $4 || ':' || id
         FROM subscriptions WHERE campaign_id = $1 AND district_code = $2 AND confirmed
         ON CONFLICT (key) DO NOTHING",
        c.campaign_id,
        c.code,
        payload,
        key,
    )
    .execute(&mut *tx)
    .await?;
    webhooks::enqueue(
        tx,
        c.campaign_id,
        webhooks::Event::DistrictThreshold,
        &key,
        &payload,
    )
    .await
}

async fn enqueue_closed(tx: &mut PgConnection, campaign_id: i64) -> sqlx::Result<()> {
    let key = format!("closed:{campaign_id}");
    sqlx::query!(
        "INSERT INTO outbox (campaign_id, subscription_id, kind, key)
         SELECT DISTINCT ON (email) $1, id, 'closed', $2 || ':' || id
         FROM subscriptions WHERE campaign_id = $1 AND confirmed
         ORDER BY email, id
         ON CONFLICT (key) DO NOTHING",
        campaign_id,
        key,
    )
    .execute(&mut *tx)
    .await?;
    let closed_at = sqlx::query_scalar!(
        "SELECT LEAST(closes_at, closed_at) FROM campaigns WHERE id = $1",
        campaign_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let payload = json!({"closed_at": closed_at.map(crate::notify::webhooks::rfc3339)});
    webhooks::enqueue(
        tx,
        campaign_id,
        webhooks::Event::CampaignClosed,
        &key,
        &payload,
    )
    .await
}

/// Deletes the subscriptions of campaigns whose retention is due (`retention_days` after
/// closing), and those never confirmed within [`UNCONFIRMED_DAYS`]; then the outbox rows sent
/// or given up more than a day ago. Returns how many subscriptions were deleted.
pub async fn purge(pool: &PgPool) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "DELETE FROM subscriptions s USING campaigns c
         WHERE c.id = s.campaign_id
           AND ((c.retention_days IS NOT NULL
                 AND LEAST(c.closes_at, c.closed_at) + make_interval(days => c.retention_days) <= now())
                OR (NOT s.confirmed
                    AND s.created_hour < now() - make_interval(days => $1)))",
        UNCONFIRMED_DAYS,
    )
    .execute(pool)
    .await?;
    sqlx::query!(
        "DELETE FROM outbox WHERE COALESCE(sent_at, failed_at) < now() - interval '1 day'"
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_subscription_and_purpose_only() {
        let secret = ServerSecret::from_bytes([7; 32]);
        let id = Uuid::new_v4();
        let confirm = token(&secret, Purpose::Confirm, id);
        assert_eq!(check_token(&secret, Purpose::Confirm, &confirm), Some(id));
        assert_eq!(check_token(&secret, Purpose::Unsubscribe, &confirm), None);
        let other = ServerSecret::from_bytes([8; 32]);
        assert_eq!(check_token(&other, Purpose::Confirm, &confirm), None);
        let forged = format!(
            "{}.{}",
            Uuid::new_v4().simple(),
            confirm.split_once('.').unwrap().1
        );
        assert_eq!(check_token(&secret, Purpose::Confirm, &forged), None);
        for junk in ["", ".", "x.y", "é.é", &confirm[..confirm.len() - 1]] {
            assert_eq!(check_token(&secret, Purpose::Confirm, junk), None, "{junk}");
        }
    }

    #[test]
    fn addresses_are_stored_lower_case_and_checked() {
        assert_eq!(
            parse_email("  Alice@Example.ORG "),
            Some("alice@example.org".into())
        );
        assert_eq!(
            parse_email("victim@ｇｍａｉｌ.com"),
            Some("victim@gmail.com".into())
        );
        for bad in [
            "",
            "alice",
            "a@",
            "@b",
            "a b@c.d",
            "a@b\r\nBcc: x@y.z",
            "\"victim\"@gmail.com",
            "a@[192.0.2.1]",
        ] {
            assert_eq!(parse_email(bad), None, "{bad:?}");
        }
        assert_eq!(parse_email(&format!("{}@b.c", "a".repeat(260))), None);
    }

    #[test]
    fn every_spelling_of_a_mailbox_is_one_mailbox() {
        for spelling in [
            "victim@gmail.com",
            "Victim@Gmail.com",
            "v.i.c.t.i.m@gmail.com",
            "vic.tim+news@googlemail.com",
            "victim+1+2@gmail.com",
        ] {
            assert_eq!(mailbox(spelling), "victim@gmail.com", "{spelling}");
        }
        assert_eq!(mailbox("Jo+Club@Outlook.fr"), "jo@outlook.fr");
        // Elsewhere `+` and dots may name someone else: kept.
        assert_eq!(mailbox("jean.dupont+x@ville.fr"), "jean.dupont+x@ville.fr");
        assert_ne!(
            mailbox("jean.dupont@ville.fr"),
            mailbox("jeandupont@ville.fr")
        );
        assert_ne!(mailbox("victim@example.org"), mailbox("victim@example.net"));
    }
}
