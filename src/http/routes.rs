//! Who may call what: every route of the server with the access it needs, in one table, and
//! the middleware that enforces it before any handler runs.
//!
//! Adding a route is one line in [`ROUTES`]. A route missing from the table is refused (403)
//! whatever its path, and the API tests walk the table and the OpenAPI document to check that
//! every documented route is declared and every protected one refuses every kind of bad token.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::auth::{self, Role};

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Anyone; the handler checks the submission's edit token (`X-Edit-Token`).
    EditToken,
    /// A valid staff token whose role is one of these.
    Staff(&'static [Role]),
}

/// Admins only.
pub const ADMIN: Access = Access::Staff(&[Role::Admin]);
/// Moderators and admins.
pub const MODERATOR: Access = Access::Staff(&[Role::Moderator, Role::Admin]);
/// Planners and admins.
pub const PLANNER: Access = Access::Staff(&[Role::Planner, Role::Admin]);
/// Any staff token.
pub const ANY_STAFF: Access = Access::Staff(&[Role::Moderator, Role::Planner, Role::Admin]);
use Access::{EditToken, Public};

/// One route: its method, its path pattern exactly as given to the router, what it needs.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `GET`, `POST`, ... (`HEAD` is `GET`).
    pub method: &'static str,
    /// The pattern as given to `Router::route`, e.g. `/api/v1/admin/campaigns/{slug}`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> Route {
    Route {
        method,
        path,
        access,
    }
}

/// Every route of the server. The single source of truth for access.
pub const ROUTES: &[Route] = &[
    // Operations.
    route("GET", "/healthz", Public),
    route("GET", "/readyz", Public),
    route("GET", "/api/v1/openapi.json", Public),
    // Public campaign data: aggregated and k-protected, never a single submission.
    route("GET", "/api/v1/campaigns/{slug}", Public),
    route("GET", "/api/v1/campaigns/{slug}/districts.geojson", Public),
    route("POST", "/api/v1/campaigns/{slug}/submissions", Public),
    route("POST", "/api/v1/campaigns/{slug}/challenges", Public),
    route(
        "GET",
        "/api/v1/campaigns/{slug}/submissions/{id}",
        EditToken,
    ),
    route(
        "PATCH",
        "/api/v1/campaigns/{slug}/submissions/{id}",
        EditToken,
    ),
    route(
        "DELETE",
        "/api/v1/campaigns/{slug}/submissions/{id}",
        EditToken,
    ),
    // Public aggregates; a time window or an H3 breakdown also needs a planner token,
    // checked by the handler (`exports::http`).
    route("GET", "/api/v1/campaigns/{slug}/aggregates.geojson", Public),
    route("GET", "/api/v1/campaigns/{slug}/aggregates.csv", Public),
    route("GET", "/api/v1/campaigns/{slug}/timeseries.csv", Public),
    route("GET", "/tiles/{tilejson}", Public),
    route("GET", "/tiles/{campaign}/{z}/{x}/{y}", Public),
    // The widget.
    route("GET", "/", Public),
    route("GET", "/embed.js", Public),
    route("GET", "/embed/{campaign}", Public),
    route("GET", "/embed/{campaign}/edit", Public),
    route("GET", "/widget/{*file}", Public),
    // Administration.
    route("GET", "/api/v1/admin/campaigns", ADMIN),
    route("POST", "/api/v1/admin/campaigns", ADMIN),
    route("GET", "/api/v1/admin/campaigns/{slug}", ADMIN),
    route("PATCH", "/api/v1/admin/campaigns/{slug}", ADMIN),
    route("GET", "/api/v1/admin/campaigns/{slug}/embed", ADMIN),
    route("PUT", "/api/v1/admin/campaigns/{slug}/districts", ADMIN),
    route("GET", "/api/v1/admin/tokens", ADMIN),
    route("POST", "/api/v1/admin/tokens", ADMIN),
    route("PATCH", "/api/v1/admin/tokens/{id}", ADMIN),
    route("POST", "/api/v1/admin/tokens/{id}/revoke", ADMIN),
    route("GET", "/api/v1/admin/audit", ADMIN),
    // Planners: exact positions, audited.
    route(
        "GET",
        "/api/v1/admin/campaigns/{slug}/submissions.geojson",
        PLANNER,
    ),
    route(
        "GET",
        "/api/v1/admin/campaigns/{slug}/submissions.csv",
        PLANNER,
    ),
    // Moderation.
    route(
        "GET",
        "/api/v1/moderation/campaigns/{slug}/queue",
        MODERATOR,
    ),
    route(
        "POST",
        "/api/v1/moderation/campaigns/{slug}/submissions/{id}/decision",
        MODERATOR,
    ),
    route(
        "POST",
        "/api/v1/moderation/campaigns/{slug}/submissions/{id}/report",
        ANY_STAFF,
    ),
];

/// The entry for `method` on the route whose pattern is `path`.
pub fn lookup(method: &Method, path: &str) -> Option<&'static Route> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// Whether the pattern `pattern` (with `{param}` segments) matches `path`, where a `{...}`
/// segment of either side matches any segment (so a documented `/tiles/{campaign}.json`
/// matches the routed `/tiles/{tilejson}`).
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let is_param = |s: &str| s.starts_with('{');
    let (mut a, mut b) = (pattern.split('/'), path.split('/'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), _) if x.starts_with("{*") => return true,
            (Some(x), Some(y)) if x == y || is_param(x) || is_param(y) => {}
            _ => return false,
        }
    }
}

/// Middleware (a route layer, so it runs once a route matched): looks the route up in
/// [`ROUTES`], refuses it if it is not there, and for staff routes verifies the bearer token
/// and its role, then stashes the [`auth::Staff`] in the request for the handler.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => lookup(&method, path.as_str()).ok_or_else(|| path.as_str().to_owned()),
        // Axum gives no matched path to a nested service (`nest_service`): it is declared
        // with a `{*rest}` pattern and matched by prefix.
        None => lookup_nested(&method, request.uri().path())
            .ok_or_else(|| request.uri().path().to_owned()),
    };
    let route = match route {
        Ok(route) => route,
        Err(path) => return undeclared(&method, &path),
    };
    match route.access {
        Access::Public | Access::EditToken => next.run(request).await,
        Access::Staff(roles) => {
            let staff = match auth::authenticate(&state.db, request.headers()).await {
                Ok(staff) => staff,
                Err(error) => return error.into_response(),
            };
            if !roles.contains(&staff.role) {
                return auth::forbidden(&staff, roles).into_response();
            }
            request.extensions_mut().insert(staff);
            next.run(request).await
        }
    }
}

/// The entry of a nested service (a `{*rest}` pattern) that serves `path`.
fn lookup_nested(method: &Method, path: &str) -> Option<&'static Route> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES.iter().find(|r| {
        r.method == method
            && r.path
                .rsplit('/')
                .next()
                .is_some_and(|s| s.starts_with("{*"))
            && pattern_matches(r.path, path)
    })
}

fn undeclared(method: &Method, path: &str) -> Response {
    tracing::error!(%method, path, "route missing from the access table (src/http/routes.rs): refused");
    ApiError::Forbidden(format!(
        "{method} {path} has no declared access; it is refused until it is added to the route table"
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_declared_once() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|o| o.method == r.method && o.path == r.path),
                "{} {} is declared twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn admin_and_moderation_routes_are_never_public() {
        for r in ROUTES {
            if r.path.starts_with("/api/v1/admin/") || r.path.starts_with("/api/v1/moderation/") {
                assert!(
                    matches!(r.access, Access::Staff(_)),
                    "{} {}",
                    r.method,
                    r.path
                );
            }
            if let Access::Staff(roles) = r.access {
                assert!(roles.contains(&Role::Admin), "admins may do everything");
            }
        }
    }

    #[test]
    fn lookup_treats_head_as_get_and_knows_nothing_else() {
        assert!(lookup(&Method::HEAD, "/healthz").is_some());
        assert!(lookup(&Method::DELETE, "/api/v1/admin/campaigns").is_none());
        assert!(lookup_nested(&Method::GET, "/widget/civicmap.js").is_some());
        assert!(lookup_nested(&Method::GET, "/api/v1/admin/audit").is_none());
        assert_eq!(
            lookup(&Method::GET, "/api/v1/admin/audit").unwrap().access,
            ADMIN
        );
    }

    #[test]
    fn documented_paths_match_routed_patterns() {
        assert!(pattern_matches(
            "/tiles/{tilejson}",
            "/tiles/{campaign}.json"
        ));
        assert!(pattern_matches(
            "/tiles/{campaign}/{z}/{x}/{y}",
            "/tiles/{campaign}/{z}/{x}/{y}.mvt"
        ));
        assert!(pattern_matches("/widget/{*rest}", "/widget/civicmap.js"));
        assert!(!pattern_matches(
            "/api/v1/admin/tokens",
            "/api/v1/admin/audit"
        ));
        assert!(!pattern_matches(
            "/api/v1/campaigns/{slug}",
            "/api/v1/campaigns/{slug}/districts.geojson"
        ));
    }
}
