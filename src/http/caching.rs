//! How long a browser, a reverse proxy's cache (nginx `proxy_cache`) or a CDN may keep each
//! kind of response: the one place that writes `Cache-Control`, the surrogate keys a CDN purges
//! by (`Surrogate-Key`, `Cache-Tag`) and the single `Vary` line.
//!
//! Each route declares its [`Caching`] next to its access (`super::routes::Routes::add`); the
//! route table carries it to every response of the route ([`Declared`], set by
//! `super::routes::enforce`), and [`apply`], the outermost middleware, writes the headers from
//! it, overriding whatever a handler wrote. Whatever the declaration, an answer is
//! `private, no-store` (kept by nobody) when it is not a `GET`/`HEAD`, when it is an error (or
//! any status other than 200, 204, 206 and 304), when the request carried a credential
//! (`Authorization`, `X-Edit-Token`: staff see more than the public on some public paths, and a
//! submitter reads their own submission), and when no route declared anything (fallbacks,
//! errors of the layers).
//!
//! Public figures are fresh in a shared cache for [`SHARED_FRESH`] and may be served
//! [`STALE`] longer while the cache asks again: a counted submission reaches every reader
//! through a cache within [`BOUND`] (docs/DEPLOY.md, tested with nginx by `tests/api/cdn.rs`).
//! Browsers keep nothing fresh (`max-age=0`) and revalidate with the ETag.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// How long a shared cache (a CDN, nginx) may serve a public figure without asking again.
pub const SHARED_FRESH: Duration = Duration::from_secs(2);
/// How much longer a shared cache may serve it while it asks again (`stale-while-revalidate`).
pub const STALE: Duration = Duration::from_secs(2);
/// The published bound: a write counted at the origin is what every cache serves within this.
pub const BOUND: Duration = Duration::from_secs(SHARED_FRESH.as_secs() + STALE.as_secs());

/// `Cache-Control` of every answer that nobody may keep.
pub const PRIVATE: &str = "private, no-store";
/// `Cache-Control` of public figures and what describes them (see [`BOUND`]).
const LIVE: &str = "public, max-age=0, s-maxage=2, stale-while-revalidate=2";
/// The widget's code and pages, the same for every campaign: they change with an upgrade.
const CODE: &str = "public, max-age=300";
/// Basemap tiles and glyphs: fixed while the server runs (a new file means a restart, and a
/// purge of `civicmap-basemap`).
const BASEMAP: &str = "public, max-age=86400";
/// The basemap's style and TileJSON, which name this server's address.
const BASEMAP_DOCUMENT: &str = "public, max-age=300";

/// How the answers of a route may be kept. Staff routes and the submitter's own routes are
/// always [`Caching::Private`] (`super::routes::Routes` refuses anything else for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Kept by nobody (`private, no-store`): anything about one submission, staff answers,
    /// tokens, challenges, address suggestions (what a citizen typed), health probes, writes.
    Private,
    /// A campaign's settings and what is derived from them alone (the public campaign, its
    /// TileJSON, its iframe page with the allowed origins in its CSP): `LIVE`.
    Settings,
    /// A campaign's published figures (districts layer, aggregates, time series): `LIVE`.
    Figures,
    /// A campaign's vector tiles: `LIVE`.
    Tiles,
    /// The widget's files and pages, the demo page and the OpenAPI document: `CODE`.
    Code,
    /// The basemap's tiles and glyph ranges: `BASEMAP`.
    Basemap,
    /// The basemap's style and TileJSON: `BASEMAP_DOCUMENT`.
    BasemapDocument,
}

impl Caching {
    /// The `Cache-Control` of a successful `GET` answered to a request without credentials.
    pub fn cache_control(self) -> &'static str {
        match self {
            Caching::Private => PRIVATE,
            Caching::Settings | Caching::Figures | Caching::Tiles => LIVE,
            Caching::Code => CODE,
            Caching::Basemap => BASEMAP,
            Caching::BasemapDocument => BASEMAP_DOCUMENT,
        }
    }

    /// What a purge by surrogate key names in this kind of answer, after the campaign's key:
    /// `civicmap-campaign-{slug}-{kind}`; `None` for answers that belong to no campaign.
    fn campaign_kind(self) -> Option<&'static str> {
        match self {
            Caching::Settings => Some("settings"),
            Caching::Figures => Some("figures"),
            Caching::Tiles => Some("tiles"),
            Caching::Private | Caching::Code | Caching::Basemap | Caching::BasemapDocument => None,
        }
    }

    /// The surrogate keys of an answer of this kind about `campaign` (a valid slug), most
    /// general first: `civicmap` on everything a cache keeps, then the campaign and the kind.
    pub fn surrogate_keys(self, campaign: Option<&str>) -> Vec<String> {
        let mut keys = vec!["civicmap".to_owned()];
        if let (Some(kind), Some(slug)) = (self.campaign_kind(), campaign) {
            keys.push(format!("civicmap-campaign-{slug}"));
            keys.push(format!("civicmap-campaign-{slug}-{kind}"));
        }
        match self {
            Caching::Code => keys.push("civicmap-code".to_owned()),
            Caching::Basemap | Caching::BasemapDocument => {
                keys.push("civicmap-basemap".to_owned());
            }
            _ => {}
        }
        keys
    }
}

/// What the route table says of the answer of a matched route, put in the response's
/// extensions by `super::routes::enforce` for [`apply`].
#[derive(Debug, Clone)]
pub struct Declared {
    /// The route's policy.
    pub caching: Caching,
    /// The campaign the path names (`{slug}`, `{campaign}`, `{tilejson}` without `.json`),
    /// when it is a valid slug.
    pub campaign: Option<String>,
}

impl Declared {
    /// The declaration of a route with `caching` whose decoded path parameters are `params`.
    pub fn new<'a>(caching: Caching, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let campaign = params.into_iter().find_map(|(name, value)| match name {
            "slug" | "campaign" => Some(value),
            "tilejson" => value.strip_suffix(".json"),
            _ => None,
        });
        Self {
            caching,
            campaign: campaign
                .filter(|slug| crate::campaigns::is_valid_slug(slug))
                .map(str::to_owned),
        }
    }
}

/// Whether the request carries a credential: a staff token, or a submitter's edit token.
fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("x-edit-token")
        || crate::auth::sessions::cookie_secret(headers).is_some()
}

/// The policy that holds for one answer: the route's, unless the answer may not be shared.
pub fn effective(
    declared: Option<Caching>,
    method: &Method,
    status: StatusCode,
    credential: bool,
) -> Caching {
    let kept = matches!(*method, Method::GET | Method::HEAD)
        && matches!(status.as_u16(), 200 | 204 | 206 | 304)
        && !credential;
    match declared {
        Some(caching) if kept => caching,
        _ => Caching::Private,
    }
}

/// Middleware around the whole application: writes `Cache-Control`, the surrogate keys and one
/// `Vary` line on every answer (see the module's documentation).
pub async fn apply(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let credential = has_credential(request.headers());
    let mut response = next.run(request).await;
    let declared = response.extensions_mut().remove::<Declared>();
    let caching = effective(
        declared.as_ref().map(|d| d.caching),
        &method,
        response.status(),
        credential,
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(caching.cache_control()),
    );
    headers.remove("surrogate-key");
    headers.remove("cache-tag");
    if caching != Caching::Private {
        let keys = caching.surrogate_keys(declared.as_ref().and_then(|d| d.campaign.as_deref()));
        if let (Ok(spaced), Ok(commas)) = (
            HeaderValue::from_str(&keys.join(" ")),
            HeaderValue::from_str(&keys.join(",")),
        ) {
            // Fastly and others read `Surrogate-Key`; Cloudflare and Akamai read `Cache-Tag`.
            headers.insert("surrogate-key", spaced);
            headers.insert("cache-tag", commas);
        }
    }
    one_vary_line(headers);
    response
}

/// Folds every `Vary` header into one line of distinct lowercase names: nginx before 1.23
/// reads only one of several `Vary` lines, and a cache must see them all.
fn one_vary_line(headers: &mut HeaderMap) {
    let mut names: Vec<String> = Vec::new();
    for value in headers.get_all(header::VARY) {
        for name in value.to_str().unwrap_or("*").split(',') {
            let name = name.trim().to_ascii_lowercase();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    headers.remove(header::VARY);
    if !names.is_empty()
        && let Ok(value) = HeaderValue::from_str(&names.join(", "))
    {
        headers.insert(header::VARY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successful_reads_without_credentials_follow_the_route() {
        let ok = StatusCode::OK;
        assert_eq!(
            effective(Some(Caching::Tiles), &Method::GET, ok, false),
            Caching::Tiles
        );
        assert_eq!(
            effective(
                Some(Caching::Tiles),
                &Method::HEAD,
                StatusCode::NOT_MODIFIED,
                false
            ),
            Caching::Tiles
        );
        assert_eq!(
            effective(Some(Caching::Figures), &Method::GET, ok, true),
            Caching::Private
        );
        assert_eq!(
            effective(Some(Caching::Figures), &Method::POST, ok, false),
            Caching::Private
        );
        for status in [
            StatusCode::NOT_FOUND,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::CREATED,
            StatusCode::MOVED_PERMANENTLY,
        ] {
            assert_eq!(
                effective(Some(Caching::Settings), &Method::GET, status, false),
                Caching::Private,
                "{status}"
            );
        }
        assert_eq!(effective(None, &Method::GET, ok, false), Caching::Private);
    }

    #[test]
    fn the_bound_is_what_the_live_header_says() {
        let directive = |name: &str| {
            LIVE.split(", ")
                .find_map(|d| d.strip_prefix(name)?.strip_prefix('='))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap()
        };
        assert_eq!(directive("s-maxage"), SHARED_FRESH.as_secs());
        assert_eq!(directive("stale-while-revalidate"), STALE.as_secs());
        assert_eq!(directive("max-age"), 0);
        assert_eq!(BOUND, SHARED_FRESH + STALE);
    }

    #[test]
    fn surrogate_keys_name_the_campaign_and_the_kind() {
        let declared = Declared::new(Caching::Tiles, [("campaign", "fibre"), ("z", "3")]);
        assert_eq!(
            Caching::Tiles.surrogate_keys(declared.campaign.as_deref()),
            [
                "civicmap",
                "civicmap-campaign-fibre",
                "civicmap-campaign-fibre-tiles"
            ]
        );
        let tilejson = Declared::new(Caching::Settings, [("tilejson", "fibre.json")]);
        assert_eq!(tilejson.campaign.as_deref(), Some("fibre"));
        // Not a slug: no key a header could not carry, and none a purge would name.
        let odd = Declared::new(Caching::Figures, [("slug", "Fibre pour\ttous")]);
        assert_eq!(odd.campaign, None);
        assert_eq!(
            Caching::Basemap.surrogate_keys(None),
            ["civicmap", "civicmap-basemap"]
        );
    }

    #[test]
    fn vary_lines_are_folded_into_one() {
        let mut headers = HeaderMap::new();
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        headers.append(
            header::VARY,
            HeaderValue::from_static("origin, accept-encoding"),
        );
        one_vary_line(&mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
        assert_eq!(headers[header::VARY], "accept-encoding, origin");
        let mut none = HeaderMap::new();
        one_vary_line(&mut none);
        assert!(none.get(header::VARY).is_none());
    }
}
