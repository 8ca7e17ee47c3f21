//! Managing staff tokens: issue, list, set or clear an expiry, revoke. Each change is written
//! to the audit log in the same transaction. A secret is shown once, when issued, and never
//! again: listings show everything else. Revoking a token ends its console sessions.

use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{Role, hash_secret, new_secret, token_text};
use crate::audit::{self, Actor, Entry};
use crate::campaigns::Rfc3339;
use crate::validation::Invalid;

/// What can go wrong managing tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Some fields are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such token.
    #[error("no token with id {0}")]
    NotFound(i64),
    /// The token is revoked, which cannot be undone or changed; what was refused.
    #[error("token {id} is already revoked (since {at}); {refused}")]
    Revoked {
        /// The token.
        id: i64,
        /// When it was revoked.
        at: String,
        /// Why the change is refused.
        refused: &'static str,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

type Result<T, E = TokenError> = std::result::Result<T, E>;

/// A token as staff see it: everything but its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    /// The token's id (the number after `cmk_` in the token).
    pub id: i64,
    /// Who or what holds it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it stops working, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    /// Last accepted request, to the minute (`null`: never used).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
}

impl TokenInfo {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn state(&self, now: OffsetDateTime) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|t| t <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

struct InfoRow {
    id: i64,
    name: String,
    role: String,
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
}

impl From<InfoRow> for TokenInfo {
    fn from(row: InfoRow) -> Self {
        TokenInfo {
            id: row.id,
            name: row.name,
            role: Role::parse(&row.role).expect("the CHECK constraint only allows known roles"),
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// A token to issue.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who or what will hold it (1 to 200 characters).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it stops working (RFC 3339, in the future); never by default.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Rfc3339>,
}

/// A token just issued: its details and, this once, the token itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The bearer token. Shown only here: only its hash is stored.
    pub token: String,
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Invalid::field("name", "must be 1 to 200 characters").into());
    }
    Ok(name.to_owned())
}

/// Issues a token and records who did.
pub async fn issue(pool: &PgPool, actor: Actor<'_>, new: NewToken) -> Result<IssuedToken> {
    let name = check_name(&new.name)?;
    let expires_at = new.expires_at.map(|t| t.0);
    let secret = new_secret();
    let mut tx = pool.begin().await?;
    let row: InfoRow = sqlx::query_as!(
        InfoRow,
        "INSERT INTO api_tokens (name, role, secret_hash, expires_at) VALUES ($1, $2, $3, $4)
         RETURNING id, name, role, created_at, expires_at, revoked_at, last_used_at",
        name,
        new.role.as_str(),
        &hash_secret(&secret),
        expires_at,
    )
    .fetch_one(&mut *tx)
    .await?;
    let info = TokenInfo::from(row);
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: "token.create",
            campaign_id: None,
            subject: Some(info.id.to_string()),
            reason: None,
            details: serde_json::json!({
                "name": info.name, "role": info.role, "expires_at": rfc3339(info.expires_at),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    let token = token_text(info.id, &secret);
    Ok(IssuedToken { info, token })
}

fn rfc3339(at: Option<OffsetDateTime>) -> Option<String> {
    at.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

/// Every token, oldest first, without secrets.
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<TokenInfo>> {
    let rows: Vec<InfoRow> = sqlx::query_as!(
        InfoRow,
        "SELECT id, name, role, created_at, expires_at, revoked_at, last_used_at
         FROM api_tokens ORDER BY id",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(TokenInfo::from).collect())
}

async fn lock(tx: &mut sqlx::PgConnection, id: i64) -> Result<TokenInfo> {
    let row: Option<InfoRow> = sqlx::query_as!(
        InfoRow,
        "SELECT id, name, role, created_at, expires_at, revoked_at, last_used_at
         FROM api_tokens WHERE id = $1 FOR UPDATE",
        id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    row.map(TokenInfo::from).ok_or(TokenError::NotFound(id))
}

/// Locks token `id` for a change, refused when it is revoked (a revoked token stays as it is);
/// `refused` says why the change is refused.
async fn lock_unrevoked(
    tx: &mut sqlx::PgConnection,
    id: i64,
    refused: &'static str,
) -> Result<TokenInfo> {
    let current = lock(tx, id).await?;
    match current.revoked_at {
        Some(at) => Err(TokenError::Revoked {
            id,
            at: rfc3339(Some(at)).unwrap_or_default(),
            refused,
        }),
        None => Ok(current),
    }
}

/// Sets (or with `None` clears) when token `id` stops working. A revoked token stays revoked:
/// changing its expiry is refused.
pub async fn set_expiry(
    pool: &PgPool,
    actor: Actor<'_>,
    id: i64,
    expires_at: Option<OffsetDateTime>,
) -> Result<TokenInfo> {
    let mut tx = pool.begin().await?;
    let current = lock_unrevoked(&mut tx, id, "a revoked token cannot be given an expiry").await?;
    let row: InfoRow = sqlx::query_as!(
        InfoRow,
        "UPDATE api_tokens SET expires_at = $2 WHERE id = $1
         RETURNING id, name, role, created_at, expires_at, revoked_at, last_used_at",
        id,
        expires_at,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: "token.expire",
            campaign_id: None,
            subject: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({
                "name": current.name,
                "previous": rfc3339(current.expires_at),
                "expires_at": rfc3339(expires_at),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Revokes token `id` for good; `reason` goes to the audit log.
pub async fn revoke(
    pool: &PgPool,
    actor: Actor<'_>,
    id: i64,
    reason: Option<String>,
) -> Result<TokenInfo> {
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(Invalid::field("reason", "must be at most 1000 characters").into());
    }
    let mut tx = pool.begin().await?;
    let current = lock_unrevoked(&mut tx, id, "there is nothing more to revoke").await?;
    let sessions = super::sessions::end_all_of(&mut *tx, id).await?;
    let row: InfoRow = sqlx::query_as!(
        InfoRow,
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1
         RETURNING id, name, role, created_at, expires_at, revoked_at, last_used_at",
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: "token.revoke",
            campaign_id: None,
            subject: Some(id.to_string()),
            reason,
            details: serde_json::json!({
                "name": current.name, "role": current.role, "sessions_ended": sessions,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  web team ").unwrap(), "web team");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn a_token_is_revoked_before_it_is_expired() {
        let now = OffsetDateTime::now_utc();
        let mut info = TokenInfo {
            id: 1,
            name: "a".into(),
            role: Role::Planner,
            created_at: now,
            expires_at: Some(now - time::Duration::hours(1)),
            revoked_at: None,
            last_used_at: None,
        };
        assert_eq!(info.state(now), "expired");
        info.revoked_at = Some(now);
        assert_eq!(info.state(now), "revoked");
        info.revoked_at = None;
        info.expires_at = None;
        assert_eq!(info.state(now), "active");
    }
}
