//! Staff API tokens: created by `civicmap token create` or the admin API, stored as SHA-256
//! hashes, checked in constant time, each with one role; listed, expired and revoked with every
//! change in the audit log ([`tokens`]).

pub mod http;
pub mod sessions;
pub mod tokens;

pub use http::{
    Admin, Authorized, Moderator, Planner, RequiredRole, authenticate, forbidden, optional_staff,
};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Why a bearer token is refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown, malformed, or its secret does not match.
    #[error("the bearer token is not valid")]
    Invalid,
    /// Revoked.
    #[error("this token has been revoked")]
    Revoked,
    /// Past its expiry.
    #[error("this token has expired")]
    Expired,
    /// A session cookie that names no session (signed out, or never one).
    #[error("this console session does not exist (signed out, or ended); sign in again")]
    NoSession,
    /// A session past its lifetime or unused for too long.
    #[error("this console session has expired; sign in again")]
    SessionExpired,
    /// A write with a session cookie but without its CSRF token, or from another origin.
    #[error("{0}")]
    Csrf(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: campaigns, districts, tokens, and what the other roles do.
    Admin,
    /// Reviews and hides submissions.
    Moderator,
    /// Reads exact positions and raw exports.
    Planner,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::Planner => "planner",
        }
    }

    /// The role named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        [Role::Admin, Role::Moderator, Role::Planner]
            .into_iter()
            .find(|r| r.as_str() == text)
    }

    /// Whether a token of this role may use a route that requires `required`.
    pub fn allows(self, required: Role) -> bool {
        self == Role::Admin || self == required
    }
}

const PREFIX: &str = "cmk";

/// SHA-256 of `bytes`; how secrets (staff tokens, edit tokens) are stored.
pub fn hash_secret(secret: impl AsRef<[u8]>) -> Vec<u8> {
    Sha256::digest(secret.as_ref()).to_vec()
}

/// A new random secret: 32 bytes from the OS generator, base64url without padding.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Creates a token from the server itself (the command line, tests, the demo) and returns it.
/// The secret is shown only this once; the creation is in the audit log.
pub async fn create_token(
    pool: &PgPool,
    name: &str,
    role: Role,
    expires_at: Option<OffsetDateTime>,
) -> anyhow::Result<String> {
    let issued = tokens::issue(
        pool,
        crate::audit::Actor::Cli,
        tokens::NewToken {
            name: name.to_owned(),
            role,
            expires_at: expires_at.map(crate::campaigns::Rfc3339),
        },
    )
    .await?;
    Ok(issued.token)
}

/// The full token text for token `id` with `secret`.
fn token_text(id: i64, secret: &str) -> String {
    format!("{PREFIX}_{id}_{secret}")
}

/// The id and secret of a token's text, `cmk_{id}_{secret}`, if it has that shape.
fn parse_token(token: &str) -> Option<(i64, &str)> {
    let mut parts = token.splitn(3, '_');
    let (Some(PREFIX), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    Some((id.parse().ok()?, secret))
}

#[derive(Default)]
struct TokenRow {
    name: String,
    role: String,
    secret_hash: Vec<u8>,
    expires_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
}

/// The holder of a valid token.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The token's id.
    pub token_id: i64,
    /// The token's name (who holds it).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// How long a token's `last_used_at` may lag: it is written at most this often per token.
const LAST_USED_PRECISION: time::Duration = time::Duration::minutes(1);

/// Checks a bearer token: known, secret matching (constant time), not revoked, not expired.
pub async fn verify(pool: &PgPool, token: &str) -> Result<Staff, AuthError> {
    let (id, secret) = parse_token(token).ok_or(AuthError::Invalid)?;
    let row: Option<TokenRow> = sqlx::query_as!(
        TokenRow,
        "SELECT name, role, secret_hash, expires_at, revoked_at, last_used_at
         FROM api_tokens WHERE id = $1",
        id,
    )
    .fetch_optional(pool)
    .await?;
    // Compare against a dummy hash when the id is unknown so both paths cost the same.
    let row = row.unwrap_or_else(|| TokenRow {
        secret_hash: vec![0; 32],
        ..TokenRow::default()
    });
    let matches: bool = hash_secret(secret).ct_eq(&row.secret_hash).into();
    let role = Role::parse(&row.role)
        .filter(|_| matches)
        .ok_or(AuthError::Invalid)?;
    let TokenRow {
        name,
        expires_at,
        revoked_at,
        last_used_at,
        ..
    } = row;
    let now = OffsetDateTime::now_utc();
    if revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    if expires_at.is_some_and(|t| t <= now) {
        return Err(AuthError::Expired);
    }
    if last_used_at.is_none_or(|t| now - t > LAST_USED_PRECISION) {
        sqlx::query!(
            "UPDATE api_tokens SET last_used_at = now() WHERE id = $1",
            id
        )
        .execute(pool)
        .await?;
    }
    Ok(Staff {
        token_id: id,
        name,
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_and_others_only_themselves() {
        assert!(Role::Admin.allows(Role::Planner));
        assert!(Role::Planner.allows(Role::Planner));
        assert!(!Role::Planner.allows(Role::Admin));
        assert!(!Role::Moderator.allows(Role::Planner));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// A token's text gives back its id and secret, whatever the id and whatever the secret
        /// (secrets are URL-safe base64, which has `_` and `-`).
        #[test]
        fn a_token_text_gives_back_its_id_and_secret(id: i64, secret in "[A-Za-z0-9_-]{0,60}") {
            let text = token_text(id, &secret);
            proptest::prop_assert_eq!(parse_token(&text), Some((id, secret.as_str())));
        }

        /// Anything else is refused without panicking; what is read is what the text holds.
        #[test]
        fn any_bearer_text_is_read_or_refused(text in proptest::prop_oneof!["cmk_.{0,12}", "cmk_[0-9-]{0,20}_.{0,8}", ".{0,24}"]) {
            if let Some((id, secret)) = parse_token(&text) {
                proptest::prop_assert!(text.starts_with("cmk_"));
                proptest::prop_assert!(text.ends_with(secret));
                proptest::prop_assert_eq!(
                    text.strip_prefix("cmk_").unwrap().split('_').next().unwrap().parse::<i64>(),
                    Ok(id)
                );
            }
        }
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 32);
    }
}
