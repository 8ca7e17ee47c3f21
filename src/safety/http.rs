//! The HTTP side of trust and safety: the challenge route of campaigns that ask for a proof of
//! work, the CORS and origin check of writes, and the rate-limit middleware.

use axum::Json;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_axum::routes;

use super::limits::{Admission, Door, Limited};
use super::pow::{self, Challenge, ProofError, Verified};
use super::{FILL_MS_HEADER, HONEYPOT_HEADER, ResolvedCampaign};
use crate::campaigns::Campaign;
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::client_ip::ClientKey;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::PathParams;
use crate::http::routes::{Access::Public, Routes};

impl From<ProofError> for ApiError {
    fn from(error: ProofError) -> Self {
        Self::ProofOfWork(error.to_string())
    }
}

impl From<Limited> for ApiError {
    fn from(
        Limited {
            detail,
            retry_after,
        }: Limited,
    ) -> Self {
        Self::RateLimited {
            detail,
            retry_after,
        }
    }
}

/// `POST /api/v1/campaigns/{slug}/challenges`.
pub fn routes() -> Routes {
    Routes::new().add(Public, Private, routes!(create_challenge))
}

/// A proof-of-work challenge for one submission or subscription, at the difficulty the
/// campaign asks now: its own setting, or more while it is under pressure (see
/// [`crate::safety::limits`]), or [`crate::safety::limits::PRESSURE_BASE`] when it asks none
/// (a client may prepare a proof before it is asked).
#[utoipa::path(post, path = "/api/v1/campaigns/{slug}/challenges", tag = "public",
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 201, description = "Find a decimal nonce such that SHA-256(challenge + \":\" + nonce) starts with `difficulty` zero bits, then send `Civicmap-Proof: <challenge>:<nonce>` with the submission (or subscription), before `expires_at`; each challenge is usable once", body = Challenge),
        (status = 403, description = "Sent by a page of a site the campaign does not allow", body = Problem),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 409, description = "The campaign is not open", body = Problem),
        (status = 429, description = "Too many challenges from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "Database unavailable; retry after Retry-After seconds", body = Problem),
    ))]
pub async fn create_challenge(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> ApiResult<Response> {
    let campaign = state.campaigns.get_public(&state.db, &slug).await?;
    let now = OffsetDateTime::now_utc();
    campaign.accepts_contributions(now)?;
    let own = campaign.proof_of_work.map(|p| p.difficulty);
    let pressed = state.limits.asked(campaign.id, own).await?;
    let difficulty = pressed.or(own).unwrap_or(super::limits::PRESSURE_BASE);
    let secret = state.secret.get(&state.db).await?;
    let challenge = pow::issue(secret, campaign.id, difficulty, now);
    Ok((StatusCode::CREATED, Json(challenge)).into_response())
}

// ---------------------------------------------------------------- proofs and admission

/// Checks and spends the request's proof of work against campaign `campaign`, at `difficulty`
/// bits or more.
pub async fn check_proof(
    state: &AppState,
    headers: &HeaderMap,
    campaign: &Campaign,
    difficulty: u8,
    now: OffsetDateTime,
) -> ApiResult<Verified> {
    let header = headers
        .get(pow::PROOF_HEADER)
        .map(|v| v.to_str().map_err(|_| ProofError::Malformed))
        .transpose()?
        .ok_or_else(|| ProofError::Missing(campaign.slug.clone()))?;
    let secret = state.secret.get(&state.db).await?;
    let verified = pow::verify(secret, header, campaign.id, difficulty, now)?;
    pow::spend(&state.db, &verified).await??;
    Ok(verified)
}

/// Admits a new submission that passed the origin guard, validation and its client's limits
/// (and the campaign's own proof of work, `proven`) into the campaign's allowance. When that is
/// spent the campaign is under pressure: the submission gets in with a proof of work of the
/// difficulty asked now (one bit less is still taken: it may have risen while the citizen's
/// device was solving), or, for a client's first contribution, from the reserve; else it is
/// refused with 422 `proof_of_work` and nothing is stored. "First" is the client's first in
/// ten minutes (its own bucket, not the campaign's contributors: whether someone else at the same
/// address contributed, ever, changes nothing in the answer).
pub async fn admit(
    state: &AppState,
    campaign: &Campaign,
    client: ClientKey,
    headers: &HeaderMap,
    proven: Option<&Verified>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let own = campaign.proof_of_work.map(|p| p.difficulty);
    let Admission::Pressed { difficulty } = state.limits.admit(campaign.id, own, false).await?
    else {
        return Ok(());
    };
    let enough = difficulty.saturating_sub(1).max(own.unwrap_or(0));
    let proof = match proven {
        Some(verified) => Some(verified.difficulty >= enough),
        None if headers.contains_key(pow::PROOF_HEADER) => {
            match check_proof(state, headers, campaign, enough, now).await {
                Ok(_) => Some(true),
                Err(ApiError::ProofOfWork(_)) => Some(false),
                // The database's absence is a 503, not a request for more work.
                Err(other) => return Err(other),
            }
        }
        None => None,
    };
    if proof == Some(true) {
        // On credit: the backlog it adds raises the difficulty for whoever comes next.
        state.limits.admit(campaign.id, own, true).await?;
        metrics::counter!("civicmap_pressure_admitted_total", "by" => "proof").increment(1);
        return Ok(());
    }
    if proof.is_none() {
        let secret = state.secret.get(&state.db).await?;
        if state
            .limits
            .take_reserve(secret, campaign.id, client)
            .await?
        {
            metrics::counter!("civicmap_pressure_admitted_total", "by" => "reserve").increment(1);
            return Ok(());
        }
    }
    metrics::counter!("civicmap_pressure_refused_total").increment(1);
    Err(ProofError::UnderPressure {
        slug: campaign.slug.clone(),
        difficulty,
    }
    .into())
}

// ---------------------------------------------------------------- allowed origins

/// Whether `origin` is this server as the client reached it (same host and port; the scheme
/// is not compared, since a TLS-terminating proxy may not say it was https).
fn is_own_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PATCH | Method::DELETE | Method::PUT
    )
}

/// Whether the campaign resolved for this request (see [`resolve_campaign`]) lets
/// `origin` write; a request with no resolved campaign is refused.
fn campaign_allows(extensions: &axum::http::Extensions, origin: &str) -> bool {
    extensions
        .get::<ResolvedCampaign>()
        .is_some_and(|ResolvedCampaign(campaign)| {
            super::origins::allows(&campaign.allowed_origins, origin)
        })
}

/// CORS of the submission and challenge routes: reads from any site; writes (and their
/// preflights) only from the campaign's allowed origins, or from any site when it lists none.
pub fn write_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, parts: &Parts| {
                let method = if parts.method == Method::OPTIONS {
                    parts
                        .headers
                        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                        .unwrap_or(Method::OPTIONS)
                } else {
                    parts.method.clone()
                };
                if !is_write(&method) {
                    return true;
                }
                origin.to_str().is_ok_and(|origin| {
                    is_own_origin(origin, &parts.headers)
                        || campaign_allows(&parts.extensions, origin)
                })
            },
        ))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            "idempotency-key".parse().unwrap(),
            "x-edit-token".parse().unwrap(),
            super::HONEYPOT_HEADER.parse().unwrap(),
            super::FILL_MS_HEADER.parse().unwrap(),
            super::pow::PROOF_HEADER.parse().unwrap(),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::LOCATION,
            "idempotent-replayed".parse().unwrap(),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// Refuses (403) a write whose `Origin` is neither this server nor one the campaign allows.
/// Browsers always send `Origin` with these requests; programs that send none are not
/// concerned (they are not a site embedding the map).
pub async fn guard_writes(request: Request, next: Next) -> Response {
    if is_write(request.method())
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        if !is_own_origin(&origin, request.headers())
            && !campaign_allows(request.extensions(), &origin)
        {
            let slug = request
                .extensions()
                .get::<ResolvedCampaign>()
                .map(|c| c.0.slug.clone())
                .unwrap_or_default();
            return ApiError::Forbidden(format!(
                "the site `{origin}` is not allowed to contribute to campaign `{slug}`: only the sites in its allowed_origins may"
            ))
            .into_response();
        }
    }
    next.run(request).await
}

// ---------------------------------------------------------------- rate limits

/// Which door of the citizens' writes a matched route is (each has its own buckets).
fn door_of(route: &str) -> Door {
    if route.ends_with("/challenges") {
        Door::Challenge
    } else if route.ends_with("/subscriptions") {
        Door::Subscribe
    } else if route.contains("/subscriptions/") {
        Door::Confirm
    } else {
        Door::Submit
    }
}

/// Whether a confirmation or unsubscription request carries a token made by this server.
fn genuine_token(secret: &crate::safety::secret::ServerSecret, parts: &Parts) -> bool {
    use crate::notify::{Purpose, check_token};
    let purpose = if parts.uri.path().ends_with("/unsubscribe") {
        Purpose::Unsubscribe
    } else {
        Purpose::Confirm
    };
    parts.uri.query().is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(name, value)| name == "token" && check_token(secret, purpose, &value).is_some())
    })
}

/// Middleware of the citizens' write routes, inside the origin guard: takes a cell of the
/// route's door from the client's and its networks' buckets for every write (not for reads or
/// CORS preflights), shared by every instance through the database; 503 when the database
/// cannot be reached. The campaign's own allowance is not charged here but by the submissions
/// that pass every check ([`crate::safety::limits::RateLimits::admit`]).
pub async fn limit_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::DELETE
    ) {
        let (parts, body) = request.into_parts();
        let client = ClientKey::from(state.config.client_ip.of_request(&parts));
        let door = parts
            .extensions
            .get::<MatchedPath>()
            .map_or(Door::Submit, |path| door_of(path.as_str()));
        let checked = match state.secret.get(&state.db).await {
            // A confirmation or an unsubscription with a genuine token is never refused: a
            // mailbox provider's one-click unsubscriptions come in bursts from few addresses.
            // Only guesses take from the door's buckets.
            Ok(secret) if door == Door::Confirm && genuine_token(secret, &parts) => Ok(Ok(())),
            Ok(secret) => state.limits.check(secret, door, client).await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return ApiError::from(refused).into_response(),
            // Fails closed: the write could not be stored without the database anyway.
            Err(e) => return ApiError::from(e).into_response(),
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    next.run(request).await
}

/// Outermost middleware of the citizens' write routes: resolves the route's `{slug}` to its
/// public campaign and stores it in the request for CORS, the rate limits and the origin
/// guard. What cannot be resolved is refused here (404 for no such campaign, 503 when the
/// database is away), before any guard could be walked around.
pub async fn resolve_campaign(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let slug = match RawPathParams::from_request_parts(&mut parts, &state).await {
        Ok(params) => params
            .iter()
            .find(|(name, _)| *name == "slug")
            .map(|(_, value)| value.to_owned()),
        Err(_) => None,
    };
    let Some(slug) = slug else {
        return ApiError::NotFound("this path names no campaign".into()).into_response();
    };
    match state.campaigns.get_public(&state.db, &slug).await {
        Ok(campaign) => {
            let id = campaign.id;
            parts.extensions.insert(ResolvedCampaign(campaign));
            let response = next.run(Request::from_parts(parts, body)).await;
            // Committed (a write answers after its commit): this instance's next tile and
            // figures of the campaign read its versions again (`figures::watch`).
            state.versions.touched(id);
            response
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// Refuses a form that a program filled: a non-empty honeypot, or filled faster than the
/// campaign's `min_fill_seconds`. Clients that send neither header (API clients, imports) are
/// not checked.
pub fn check_form_signals(min_fill_seconds: i16, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(value) = headers.get(HONEYPOT_HEADER)
        && !value.is_empty()
    {
        return Err(ApiError::field(
            "website",
            "must be left empty: this field is a trap for automated programs",
        ));
    }
    let Some(value) = headers.get(FILL_MS_HEADER) else {
        return Ok(());
    };
    let fill_ms: u64 = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "the Civicmap-Fill-Ms header must be a whole number of milliseconds".into(),
            )
        })?;
    let min_ms = u64::try_from(min_fill_seconds).unwrap_or(0) * 1000;
    if fill_ms < min_ms {
        return Err(ApiError::field(
            "form",
            format!(
                "was filled in {:.1} s, faster than a person can: this campaign expects at least {} s; please check your answers and send again",
                fill_ms as f64 / 1000.0,
                min_fill_seconds
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    fn refused_field(result: Result<(), ApiError>) -> Option<String> {
        match result {
            Ok(()) => None,
            Err(e) => e.to_problem().field,
        }
    }

    #[test]
    fn programs_are_told_apart_by_the_honeypot_and_the_fill_time() {
        assert_eq!(refused_field(check_form_signals(3, &headers(&[]))), None);
        assert_eq!(
            refused_field(check_form_signals(
                3,
                &headers(&[(HONEYPOT_HEADER, ""), (FILL_MS_HEADER, "3000")])
            )),
            None
        );
        assert_eq!(
            refused_field(check_form_signals(
                3,
                &headers(&[(HONEYPOT_HEADER, "http://spam")])
            )),
            Some("website".into())
        );
        let too_fast = check_form_signals(3, &headers(&[(FILL_MS_HEADER, "1200")])).unwrap_err();
        let problem = too_fast.to_problem();
        assert_eq!(problem.field.as_deref(), Some("form"));
        assert!(problem.detail.contains("1.2 s"), "{}", problem.detail);
        assert!(
            problem.detail.contains("at least 3 s"),
            "{}",
            problem.detail
        );
        assert_eq!(
            refused_field(check_form_signals(0, &headers(&[(FILL_MS_HEADER, "0")]))),
            None
        );
        assert!(matches!(
            check_form_signals(3, &headers(&[(FILL_MS_HEADER, "soon")])),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn own_origin_is_the_host_whatever_the_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "map.ville.fr".parse().unwrap());
        assert!(is_own_origin("https://map.ville.fr", &headers));
        assert!(is_own_origin("http://map.ville.fr", &headers));
        assert!(!is_own_origin("https://map.ville.fr.evil.com", &headers));
        assert!(!is_own_origin("null", &headers));
    }
}
