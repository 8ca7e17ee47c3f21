//! The widget's static files: the embed loader, the iframe page, the bundles, the demo page and
//! the staff console's page (`/admin`).
//!
//! The files are built from `widget/` by `npm run build` (the Makefile does it); the server
//! only maps routes to them.

use std::path::Path;

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;
use super::caching::Caching::{Code, Private, Settings};
use super::error::ApiError;
use super::extract::PathParams;
use super::routes::{Access::Public, Routes};

/// `/`, `/embed.js`, `/embed/{campaign}`, `/embed/{campaign}/edit` and `/widget/*`: public, and
/// not in the OpenAPI document (pages and files, not the API).
pub fn routes(widget_dir: &Path) -> Routes {
    Routes::new()
        .undocumented(Public, Code, Method::GET, "/", |state: State<AppState>| {
            file(state, "demo.html")
        })
        .undocumented(
            Public,
            Code,
            Method::GET,
            "/embed.js",
            |state: State<AppState>| file(state, "dist/embed.js"),
        )
        .undocumented(
            Public,
            Settings,
            Method::GET,
            "/embed/{campaign}",
            embed_page,
        )
        .undocumented(
            Public,
            Settings,
            Method::GET,
            "/embed/{campaign}/edit",
            embed_page,
        )
        // The staff console: a public page (it signs in by itself), kept by nobody.
        .undocumented(Public, Private, Method::GET, "/admin", console_page)
        .undocumented_service(
            Public,
            Code,
            Method::GET,
            "/widget",
            // The build writes a gzipped copy of each file (`widget/build.mjs`): sent as is to
            // clients that accept gzip (1.7 MB of map code is 0.5 MB on the wire), with the
            // `Vary` that tells caches so.
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::appending(
                    header::VARY,
                    HeaderValue::from_static("accept-encoding"),
                ))
                .service(ServeDir::new(widget_dir.join("dist")).precompressed_gzip()),
        )
}

/// Content-Security-Policy of the iframe page: nothing but civicmap's own files and the map
/// services the campaign chose, framable by the sites the campaign allows (any site when it
/// lists none).
fn embed_csp(services: &[String], allowed_origins: &[String]) -> String {
    let extra: String = services.iter().map(|origin| format!(" {origin}")).collect();
    let ancestors = crate::safety::origins::frame_ancestors(allowed_origins);
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; worker-src 'self' blob:; \
         img-src 'self' data: blob:{extra}; connect-src 'self'{extra}; \
         base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    )
}

/// Content-Security-Policy of the staff console: civicmap's own files and API only (no
/// third-party request), framing only civicmap's own widget (the embed preview), framed by
/// nobody. The console's maps are the widget's own MapLibre chunk under /widget/ (`'self'`);
/// MapLibre may make blob: URLs for its workers and the images it decodes (`worker-src blob:`,
/// `img-src blob:`, as in the iframe page's policy), nothing more. A campaign's basemap on
/// another site is left out of the console's maps (widget/src/admin/maps.ts) rather than
/// allowed here.
const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     worker-src 'self' blob:; img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn console_page(state: State<AppState>) -> Result<Response, ApiError> {
    let mut response = file(state, "admin.html").await?;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}

async fn embed_page(
    state: State<AppState>,
    PathParams(slug): PathParams<String>,
) -> Result<Response, ApiError> {
    // An unknown or unreachable campaign still gets its page, which then says what is wrong.
    let (services, allowed_origins) = match state.campaigns.get_public(&state.db, &slug).await {
        Ok(campaign) => {
            let mut origins = campaign
                .basemap
                .as_ref()
                .map(|b| b.origins())
                .unwrap_or_default();
            origins.extend(campaign.geocoder.as_ref().and_then(|g| g.origin()));
            origins.sort();
            origins.dedup();
            (origins, campaign.allowed_origins.clone())
        }
        Err(_) => (Vec::new(), Vec::new()),
    };
    let mut response = file(state, "embed.html").await?;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&embed_csp(&services, &allowed_origins)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

async fn file(State(state): State<AppState>, relative: &'static str) -> Result<Response, ApiError> {
    let path = state.config.widget_dir.join(relative);
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        ApiError::NotFound(format!(
            "{relative} is not built; run `make widget` (looked in {})",
            state.config.widget_dir.display()
        ))
    })?;
    let mut response = bytes.into_response();
    let content_type = content_type(Path::new(relative));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    }
}
