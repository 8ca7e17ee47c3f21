//! `/api/v1/admin/tokens`: admins issue, list, expire and revoke staff tokens; `/api/v1/session`:
//! the console's sign-in (a token exchanged for a session cookie), who-am-I and sign-out; and
//! how a request is authenticated ([`authenticate`]: a bearer token, or a console session).

use std::marker::PhantomData;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{self, AUTHORIZATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::sessions;
use super::tokens::{self, IssuedToken, NewToken, TokenInfo};
use super::{AuthError, Role, Staff, verify};
use crate::audit::Actor;
use crate::campaigns::Rfc3339;
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::client_ip::{ClientAddr, ClientKey, Https};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams};
use crate::http::routes::{ADMIN, ANY_STAFF, Access::Public, Routes};
use crate::safety::limits::{Allowance, take_one};

/// The token routes, and the console's session.
pub fn routes() -> Routes {
    Routes::new()
        .add(ADMIN, Private, routes!(list_tokens, create_token))
        .add(ADMIN, Private, routes!(expire_token))
        .add(ADMIN, Private, routes!(revoke_token))
        // Sign-in proves a token itself (in its body), rate-limited.
        .add(Public, Private, routes!(sign_in))
        .add(ANY_STAFF, Private, routes!(whoami, sign_out))
}

/// A sign-in: the staff token, in the body (never in a URL).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// A staff token (`cmk_…`), as `civicmap token create` or an admin gave it.
    pub token: String,
}

/// Who is signed in, and what the console needs to act for them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The token's id.
    pub token_id: i64,
    /// The token's name (who holds it).
    pub name: String,
    /// What it may do; the console shows only what this role allows (the server enforces).
    pub role: Role,
    /// Whether this request was made with a console session (`false`: with a bearer token).
    pub session: bool,
    /// The session's CSRF token, to send in `X-CSRF-Token` with every write (`null` without
    /// a session).
    pub csrf_token: Option<String>,
    /// When the session ends at the latest (`null` without a session); it also ends after
    /// `idle_timeout_seconds` without a request, and when its token is revoked or expires.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<time::OffsetDateTime>,
    /// How long a session may go unused.
    pub idle_timeout_seconds: i64,
}

impl SessionInfo {
    fn of(staff: &Staff, session: Option<&sessions::Session>) -> Self {
        Self {
            token_id: staff.token_id,
            name: staff.name.clone(),
            role: staff.role,
            session: session.is_some(),
            csrf_token: session.map(|s| s.csrf_token.clone()),
            expires_at: session.map(|s| s.expires_at),
            idle_timeout_seconds: sessions::IDLE.whole_seconds(),
        }
    }
}

/// Signs in to the console: exchanges a staff token for a session, kept by the browser in an
/// `HttpOnly`, `SameSite=Strict` cookie (`Secure` over HTTPS). The answer holds the CSRF token
/// every write with the session must carry in `X-CSRF-Token`; never the token or the cookie's
/// secret. Attempts are rate-limited per client.
#[utoipa::path(post, path = "/api/v1/session", tag = "admin",
    request_body = SignIn,
    responses(
        (status = 201, description = "Signed in; the session is in the `civicmap_session` cookie", body = SessionInfo),
        (status = 401, description = "The token is not valid, revoked or expired", body = Problem),
        (status = 403, description = "The request comes from another origin", body = Problem),
        (status = 429, description = "Too many sign-in attempts from this client", body = Problem),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Https(https): Https,
    headers: HeaderMap,
    JsonBody(input): JsonBody<SignIn>,
) -> ApiResult<Response> {
    sessions::same_origin(&headers).map_err(ApiError::Forbidden)?;
    if let Some(allowance) = Allowance::new(
        state.config.sign_ins_per_minute,
        state.config.sign_ins_per_minute.div_ceil(2),
    ) {
        let secret = state.secret.get(&state.db).await?;
        let key = secret.rate_limit_key(&ClientKey::from(ip).to_string());
        if let Some(lead_us) = take_one(&state.db, "signin", &key, allowance).await? {
            let retry_after = allowance.retry_after(lead_us);
            metrics::counter!("civicmap_rate_limited_total", "scope" => "signin").increment(1);
            return Err(ApiError::RateLimited {
                detail: format!(
                    "too many sign-in attempts from this connection: at most {} per minute; retry in {retry_after} s",
                    state.config.sign_ins_per_minute
                ),
                retry_after,
            });
        }
    }
    let staff = verify(&state.db, input.token.trim())
        .await
        .map_err(|error| match error {
            AuthError::Invalid => ApiError::Unauthorized(
                "this token is not valid: check that it was copied whole".into(),
            ),
            other => other.into(),
        })?;
    if let Some(old) = sessions::cookie_secret(&headers) {
        sessions::end(&state.db, old).await?;
    }
    let (secret, session) = sessions::create(&state.db, &staff, "token").await?;
    let mut response = (
        StatusCode::CREATED,
        Json(SessionInfo::of(&staff, Some(&session))),
    )
        .into_response();
    if let Ok(cookie) = HeaderValue::from_str(&sessions::set_cookie(&secret, https)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Who is asking: the token's holder and role, and, with a console session, its CSRF token
/// and expiry (the console reads this after a reload).
#[utoipa::path(get, path = "/api/v1/session", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The staff member behind this request", body = SessionInfo)))]
pub async fn whoami(
    staff: Staff,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<SessionInfo>> {
    let session = match (
        headers.contains_key(AUTHORIZATION),
        sessions::cookie_secret(&headers),
    ) {
        (false, Some(secret)) => Some(sessions::verify(&state.db, secret).await?),
        _ => None,
    };
    Ok(Json(SessionInfo::of(&staff, session.as_ref())))
}

/// Signs out: ends the console session of this request and clears its cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 400, description = "This request carries no session (a bearer token is ended by revoking it)", body = Problem),
    ))]
pub async fn sign_out(
    _: Staff,
    State(state): State<AppState>,
    Https(https): Https,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(secret) = sessions::cookie_secret(&headers) else {
        return Err(ApiError::BadRequest(
            "this request carries no console session to end; a bearer token stops working when it is revoked".into(),
        ));
    };
    sessions::end(&state.db, secret).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(cookie) = HeaderValue::from_str(&sessions::clear_cookie(https)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

fn token_id(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::NotFound(format!("no token with id `{text}` (ids are numbers)")))
}

/// Every staff token, without its secret.
#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Tokens, oldest first", body = [TokenInfo])))]
pub async fn list_tokens(State(state): State<AppState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(tokens::list(&state.db).await?))
}

/// Issues a token. The response holds the token itself, shown only this once.
#[utoipa::path(post, path = "/api/v1/admin/tokens", tag = "admin", security(("bearer" = [])),
    request_body = NewToken,
    responses(
        (status = 201, description = "Issued; `token` is shown only here", body = IssuedToken),
        (status = 422, description = "Invalid name, role or expiry", body = Problem),
    ))]
pub async fn create_token(
    staff: Staff,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    if new
        .expires_at
        .is_some_and(|t| t.0 <= time::OffsetDateTime::now_utc())
    {
        return Err(ApiError::field("expires_at", "must be in the future"));
    }
    let issued = tokens::issue(&state.db, Actor::Staff(&staff), new).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// A token's new expiry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiryInput {
    /// When the token stops working (RFC 3339; a past time expires it at once), or `null`
    /// for never.
    #[serde(default, deserialize_with = "crate::campaigns::double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<Rfc3339>>,
}

/// Sets or clears when a token stops working.
#[utoipa::path(patch, path = "/api/v1/admin/tokens/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Token id")),
    request_body = ExpiryInput,
    responses(
        (status = 200, description = "Changed", body = TokenInfo),
        (status = 404, description = "No such token", body = Problem),
        (status = 409, description = "The token is revoked", body = Problem),
        (status = 422, description = "`expires_at` missing or not RFC 3339", body = Problem),
    ))]
pub async fn expire_token(
    staff: Staff,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(input): JsonBody<ExpiryInput>,
) -> ApiResult<Json<TokenInfo>> {
    let id = token_id(&id)?;
    let expires_at = input
        .expires_at
        .ok_or_else(|| ApiError::field("expires_at", "is required: a time, or null for never"))?;
    let info =
        tokens::set_expiry(&state.db, Actor::Staff(&staff), id, expires_at.map(|t| t.0)).await?;
    Ok(Json(info))
}

/// Why a token is revoked.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    /// Kept in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Revokes a token for good (it stays listed, as revoked).
#[utoipa::path(post, path = "/api/v1/admin/tokens/{id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Token id")),
    request_body = RevokeInput,
    responses(
        (status = 200, description = "Revoked", body = TokenInfo),
        (status = 404, description = "No such token", body = Problem),
        (status = 409, description = "Already revoked", body = Problem),
    ))]
pub async fn revoke_token(
    staff: Staff,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(input): JsonBody<RevokeInput>,
) -> ApiResult<Json<TokenInfo>> {
    let id = token_id(&id)?;
    Ok(Json(
        tokens::revoke(&state.db, Actor::Staff(&staff), id, input.reason).await?,
    ))
}

// ---------------------------------------------------------------- extractors

/// Who makes a staff request: the holder of the `Authorization: Bearer <token>` header, or
/// else of the console session in the request's cookie. A session's write (any method but
/// `GET`, `HEAD`, `OPTIONS`) must also carry its CSRF token and come from this server's own
/// pages (see [`sessions`]); API clients with a bearer token are unaffected.
pub async fn authenticate(
    pool: &PgPool,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Staff, ApiError> {
    if let Some(header) = headers.get(AUTHORIZATION) {
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        return Ok(verify(pool, token.trim()).await?);
    }
    let secret = sessions::cookie_secret(headers).ok_or_else(|| {
        ApiError::Unauthorized(
            "this route needs an `Authorization: Bearer <token>` header or a console session"
                .into(),
        )
    })?;
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        sessions::same_origin(headers).map_err(AuthError::Csrf)?;
        sessions::check_csrf(headers, secret).map_err(AuthError::Csrf)?;
    }
    Ok(sessions::verify(pool, secret).await?.staff)
}

/// The staff member behind a request to a public route that shows staff more (exact figures):
/// `None` for the public. A bearer token that is given must be valid; a console session
/// counts only when the console asks for it, with the session's `X-CSRF-Token` (the cookie
/// alone, sent by the browser to every page of this server, does not change what a public
/// page shows).
pub async fn optional_staff(
    pool: &PgPool,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Staff>, ApiError> {
    if headers.contains_key(AUTHORIZATION) {
        return authenticate(pool, method, headers).await.map(Some);
    }
    match sessions::cookie_secret(headers) {
        Some(secret) if headers.contains_key(sessions::CSRF_HEADER) => {
            sessions::check_csrf(headers, secret).map_err(AuthError::Csrf)?;
            Ok(Some(sessions::verify(pool, secret).await?.staff))
        }
        _ => Ok(None),
    }
}

/// Extractor: the staff member the route table's check let through (see
/// [`crate::http::routes`]). On a route the table declares public it answers 401: a handler
/// that needs a staff member must be declared as a staff route.
impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Staff>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a handler needs a staff token on a route declared public");
            ApiError::Unauthorized("this route needs a staff token".into())
        })
    }
}

/// A role required by a route, as a type: `Authorized<Admin>` in a handler's arguments
/// checks again, inside the handler, what the route table ([`crate::http::routes`]) already
/// enforced. The table is the source of truth; this is a second lock on the same door.
pub trait RequiredRole: Send + Sync {
    /// The role.
    const ROLE: Role;
}

/// Marker for routes that need an admin token.
pub struct Admin;
impl RequiredRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// Marker for routes that need a moderator token.
pub struct Moderator;
impl RequiredRole for Moderator {
    const ROLE: Role = Role::Moderator;
}

/// Marker for routes that need a planner token.
pub struct Planner;
impl RequiredRole for Planner {
    const ROLE: Role = Role::Planner;
}

/// Extractor: the request carries a valid token of role `R` (or admin). Uses the staff member
/// the route table's check stashed in the request; verifies the header itself when there is
/// none (a route declared public), so that a mismatch fails closed.
pub struct Authorized<R: RequiredRole>(pub Staff, PhantomData<R>);

impl<R: RequiredRole> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let staff = match parts.extensions.get::<Staff>() {
            Some(staff) => staff.clone(),
            None => authenticate(&state.db, &parts.method, &parts.headers).await?,
        };
        if !staff.role.allows(R::ROLE) {
            return Err(forbidden(&staff, &[R::ROLE]));
        }
        Ok(Self(staff, PhantomData))
    }
}
/// The 403 for a token whose role is not among `allowed`.
pub fn forbidden(staff: &Staff, allowed: &[Role]) -> ApiError {
    let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
    ApiError::Forbidden(format!(
        "this route needs the {} role; this token has the {} role",
        names.join(" or "),
        staff.role.as_str()
    ))
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Database(error) => error.into(),
            AuthError::Csrf(detail) => ApiError::Forbidden(detail),
            refused => ApiError::Unauthorized(refused.to_string()),
        }
    }
}

impl From<super::tokens::TokenError> for ApiError {
    fn from(error: super::tokens::TokenError) -> Self {
        use super::tokens::TokenError as E;
        match error {
            E::Invalid(invalid) => invalid.into(),
            E::NotFound(_) => ApiError::NotFound(error.to_string()),
            E::Revoked { .. } => ApiError::Conflict(error.to_string()),
            E::Database(error) => error.into(),
        }
    }
}
