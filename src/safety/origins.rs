//! The sites allowed to embed a campaign and to write to it: a campaign's `allowed_origins`
//! (empty: any site, "open").
//!
//! They become the iframe page's `frame-ancestors`, the origins answered by CORS for writes
//! (submissions and challenges), and a 403 for a browser write from any other site. Reads stay
//! open to every site.

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::ResolvedCampaign;
use crate::http::error::ApiError;
use crate::validation::FieldError;

/// Most origins a campaign may list.
pub const MAX_ALLOWED_ORIGINS: usize = 50;

/// Checks and normalises a campaign's `allowed_origins`: each `scheme://host[:port]` (http or
/// https, no path, query or credentials), lower-cased, default port dropped, without repeats.
pub fn normalize(origins: &[String]) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut normalized = Vec::new();
    if origins.len() > MAX_ALLOWED_ORIGINS {
        errors.push(FieldError::new(
            "allowed_origins",
            format!("may list at most {MAX_ALLOWED_ORIGINS} origins"),
        ));
    }
    for (i, origin) in origins.iter().enumerate() {
        match normalize_one(origin) {
            Ok(o) if !normalized.contains(&o) => normalized.push(o),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::new(format!("allowed_origins[{i}]"), e)),
        }
    }
    if errors.is_empty() {
        Ok(normalized)
    } else {
        Err(errors)
    }
}

fn normalize_one(origin: &str) -> Result<String, String> {
    let shape = "must be an origin such as https://www.ville.fr (scheme, host and optional port, nothing else)";
    let url = url::Url::parse(origin).map_err(|_| shape.to_owned())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(shape.to_owned());
    }
    Ok(url.origin().ascii_serialization())
}

/// `frame-ancestors` of a campaign's iframe page: this server and the allowed origins, or
/// any site when the campaign is open to all.
pub fn frame_ancestors(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "*".to_owned()
    } else {
        let mut sources = String::from("'self'");
        for origin in allowed {
            sources.push(' ');
            sources.push_str(origin);
        }
        sources
    }
}

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

/// Whether the campaign resolved for this request (see [`super::resolve_campaign`]) lets
/// `origin` write; a request with no resolved campaign is refused.
fn campaign_allows(extensions: &axum::http::Extensions, origin: &str) -> bool {
    extensions
        .get::<ResolvedCampaign>()
        .is_some_and(|ResolvedCampaign(campaign)| {
            campaign.allowed_origins.is_empty()
                || campaign.allowed_origins.iter().any(|o| o == origin)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_anything_else_refused() {
        let ok = normalize(&[
            "https://www.ville.fr".into(),
            "HTTPS://WWW.Ville.FR/".into(),
            "http://localhost:8080".into(),
            "https://ville.fr:443".into(),
        ])
        .unwrap();
        assert_eq!(
            ok,
            [
                "https://www.ville.fr",
                "http://localhost:8080",
                "https://ville.fr"
            ]
        );
        for bad in [
            "ville.fr",
            "https://ville.fr/page",
            "https://ville.fr?x=1",
            "https://user@ville.fr",
            "ftp://ville.fr",
            "*",
            "null",
            "https://ville.fr//",
        ] {
            let errors = normalize(&[bad.into()]).unwrap_err();
            assert_eq!(errors[0].field, "allowed_origins[0]", "{bad}");
        }
    }

    #[test]
    fn frame_ancestors_are_any_site_or_the_list() {
        assert_eq!(frame_ancestors(&[]), "*");
        assert_eq!(
            frame_ancestors(&["https://a.fr".into(), "https://b.fr".into()]),
            "'self' https://a.fr https://b.fr"
        );
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
