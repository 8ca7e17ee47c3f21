//! Console sessions: a staff token exchanged, once, for a session the browser keeps in an
//! `HttpOnly` cookie, so that the token never sits in the page's storage or in a URL.
//!
//! - **Stored hashed.** The cookie holds a random 256-bit secret; `staff_sessions` holds its
//!   SHA-256 and the token it was made from (a copy of the table lets nobody sign in).
//! - **Bound to the token.** A session is valid only while its token is: every check joins the
//!   token, so a revoked or expired token ends its sessions at once (revoking also deletes
//!   them, [`super::tokens::revoke`]). A session has its token's role, nothing more.
//! - **Expiry.** [`IDLE`] without a request, or [`LIFETIME`] after sign-in, whichever comes
//!   first. Signing out deletes the row; expired rows are deleted at each sign-in.
//! - **CSRF.** The cookie is `SameSite=Strict`; on top of that, every write made with it must
//!   carry the session's CSRF token ([`csrf_of`], given at sign-in and by `GET /api/v1/session`)
//!   in [`CSRF_HEADER`], and must not come from another origin (`Origin`, `Sec-Fetch-Site`; see
//!   [`same_origin`]). Reads need the cookie alone.
//!
//! Another way in (OpenID Connect through the city's identity provider) only has to end with
//! [`create`] for the staff member it found: see docs/ARCHITECTURE.md.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::{AuthError, Role, Staff, hash_secret, new_secret};
use crate::audit::{self, Actor, Entry};

/// The cookie that holds a session's secret.
pub const COOKIE: &str = "civicmap_session";
/// The header that carries the session's CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long is over.
pub const IDLE: Duration = Duration::minutes(30);
/// A session is over this long after sign-in, however much it is used.
pub const LIFETIME: Duration = Duration::hours(12);
/// How often a session's `last_seen_at` is written, at most.
const SEEN_PRECISION: Duration = Duration::minutes(1);

/// A valid session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who holds it: its token's holder and role.
    pub staff: Staff,
    /// When it ends at the latest (sign-in + [`LIFETIME`], or the token's expiry if sooner).
    pub expires_at: OffsetDateTime,
    /// The token to send in [`CSRF_HEADER`] with every write.
    pub csrf_token: String,
}

/// The CSRF token of the session whose secret is `secret`: derived from it, so that it needs
/// no storage and is worthless without the cookie.
pub fn csrf_of(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"civicmap-csrf\0");
    hasher.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// The session secret in the request's cookies, if any.
pub fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Whether a request whose headers are `headers` comes from this server's own pages: its
/// `Sec-Fetch-Site`, when the browser sends one, is `same-origin`, and its `Origin`, when
/// there is one, names the host the request was sent to. `Err` says what is wrong.
pub fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if site != "same-origin" {
            return Err(format!(
                "this request comes from another site (Sec-Fetch-Site: {site}); the console's \
                 session only works from the console's own pages"
            ));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(authority)
        .unwrap_or_default();
    let origin_authority = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        });
    match origin_authority {
        Some(o) if !host.is_empty() && o == host => Ok(()),
        _ => Err(format!(
            "this request comes from another origin ({}); the console's session only works \
             from the console's own pages",
            origin.to_str().unwrap_or("unreadable")
        )),
    }
}

/// A `Host` header as an origin's authority: lowercase, without a default port.
fn authority(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    for default in [":80", ":443"] {
        if let Some(bare) = host.strip_suffix(default) {
            return bare.to_owned();
        }
    }
    host
}

/// Checks the CSRF token a write carries against the session's secret.
pub fn check_csrf(headers: &HeaderMap, secret: &str) -> Result<(), String> {
    let given = headers.get(CSRF_HEADER).ok_or_else(|| {
        "a write made with the console's session needs the `X-CSRF-Token` header it was given \
         at sign-in"
            .to_owned()
    })?;
    let matches: bool = given.as_bytes().ct_eq(csrf_of(secret).as_bytes()).into();
    if matches {
        Ok(())
    } else {
        Err("the `X-CSRF-Token` header does not match this session's".to_owned())
    }
}

/// Opens a session for `staff` (who proved a token) and records it; returns the secret for
/// the cookie, shown only this once, and the session.
pub async fn create(
    pool: &PgPool,
    staff: &Staff,
    how: &str,
) -> Result<(String, Session), AuthError> {
    let secret = new_secret();
    let mut tx = pool.begin().await?;
    // Every sign-in sweeps the sessions that are over.
    sqlx::query!(
        "DELETE FROM staff_sessions WHERE expires_at <= now() OR last_seen_at <= now() - $1::interval",
        pg_interval(IDLE),
    )
    .execute(&mut *tx)
    .await?;
    let expires_at = sqlx::query_scalar!(
        r#"INSERT INTO staff_sessions (secret_hash, token_id, expires_at)
        VALUES ($1, $2, now() + $3::interval)
        RETURNING least(expires_at, (SELECT t.expires_at FROM api_tokens t WHERE t.id = $2))
            AS "expires_at!""#,
        &hash_secret(&secret),
        staff.token_id,
        pg_interval(LIFETIME),
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Entry {
            actor: Actor::Staff(staff),
            action: "session.create",
            campaign_id: None,
            subject: Some(staff.token_id.to_string()),
            reason: None,
            details: serde_json::json!({"how": how}),
        },
    )
    .await?;
    tx.commit().await?;
    let csrf_token = csrf_of(&secret);
    Ok((
        secret,
        Session {
            staff: staff.clone(),
            expires_at,
            csrf_token,
        },
    ))
}

fn pg_interval(d: Duration) -> sqlx::postgres::types::PgInterval {
    sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: (d.whole_microseconds()) as i64,
    }
}

/// Checks the session whose secret is `secret`: known, its token neither revoked nor expired,
/// not past its lifetime, used within [`IDLE`]. A session found over is deleted.
pub async fn verify(pool: &PgPool, secret: &str) -> Result<Session, AuthError> {
    let hash = hash_secret(secret);
    let row = sqlx::query!(
        "SELECT s.token_id, s.last_seen_at, s.expires_at, t.name, t.role,
                t.expires_at AS token_expires_at, t.revoked_at
         FROM staff_sessions s JOIN api_tokens t ON t.id = s.token_id
         WHERE s.secret_hash = $1",
        &hash,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(AuthError::NoSession)?;
    let now = OffsetDateTime::now_utc();
    let over = if row.revoked_at.is_some() {
        Some(AuthError::Revoked)
    } else if row.token_expires_at.is_some_and(|t| t <= now) {
        Some(AuthError::Expired)
    } else if row.expires_at <= now || now - row.last_seen_at >= IDLE {
        Some(AuthError::SessionExpired)
    } else {
        None
    };
    if let Some(error) = over {
        end(pool, secret).await?;
        return Err(error);
    }
    let role = Role::parse(&row.role).ok_or(AuthError::Invalid)?;
    if now - row.last_seen_at > SEEN_PRECISION {
        sqlx::query!(
            "UPDATE staff_sessions SET last_seen_at = now() WHERE secret_hash = $1",
            &hash
        )
        .execute(pool)
        .await?;
    }
    Ok(Session {
        staff: Staff {
            token_id: row.token_id,
            name: row.name,
            role,
        },
        expires_at: row
            .token_expires_at
            .map_or(row.expires_at, |t| t.min(row.expires_at)),
        csrf_token: csrf_of(secret),
    })
}

/// Ends the session whose secret is `secret`; whether there was one.
pub async fn end(pool: &PgPool, secret: &str) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM staff_sessions WHERE secret_hash = $1",
        &hash_secret(secret)
    )
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

/// Ends every session of token `token_id` (when it is revoked); how many there were.
pub async fn end_all_of(db: impl PgExecutor<'_>, token_id: i64) -> sqlx::Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM staff_sessions WHERE token_id = $1", token_id)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// The `Set-Cookie` value that gives the browser session `secret`: `Secure` when the request
/// came over HTTPS (as a trusted proxy says), kept for the session's lifetime at most.
pub fn set_cookie(secret: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.whole_seconds(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; civicmap_session=abc; b=2")]);
        assert_eq!(cookie_secret(&h), Some("abc"));
        assert_eq!(
            cookie_secret(&headers(&[("cookie", "civicmap_session=")])),
            None
        );
        assert_eq!(
            cookie_secret(&headers(&[("cookie", "xcivicmap_session=a")])),
            None
        );
        assert_eq!(cookie_secret(&HeaderMap::new()), None);
    }

    #[test]
    fn only_the_same_origin_passes() {
        assert!(same_origin(&headers(&[("host", "localhost:8080")])).is_ok());
        assert!(
            same_origin(&headers(&[
                ("host", "localhost:8080"),
                ("origin", "http://localhost:8080"),
                ("sec-fetch-site", "same-origin"),
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&headers(&[
                ("host", "ville.fr:443"),
                ("origin", "https://Ville.fr")
            ]))
            .is_ok()
        );
        for bad in [
            [
                ("host", "localhost:8080"),
                ("origin", "http://evil.example"),
            ],
            [("host", "localhost:8080"), ("origin", "null")],
            [
                ("host", "localhost:8080"),
                ("origin", "http://localhost:8081"),
            ],
            [("host", "localhost:8080"), ("sec-fetch-site", "cross-site")],
            [("host", "localhost:8080"), ("sec-fetch-site", "same-site")],
        ] {
            assert!(same_origin(&headers(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_csrf_token_is_the_sessions_own() {
        let secret = new_secret();
        let csrf = csrf_of(&secret);
        assert_ne!(csrf, secret);
        let mut h = HeaderMap::new();
        assert!(check_csrf(&h, &secret).is_err());
        h.insert(CSRF_HEADER, HeaderValue::from_str(&csrf).unwrap());
        assert!(check_csrf(&h, &secret).is_ok());
        assert!(check_csrf(&h, &new_secret()).is_err());
    }

    #[test]
    fn cookies_have_every_flag() {
        let c = set_cookie("s", true);
        for flag in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Secure",
            "Max-Age=43200",
        ] {
            assert!(c.contains(flag), "{c}");
        }
        assert!(!set_cookie("s", false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
