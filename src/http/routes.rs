//! Who may call what: every route of the server is declared once, with the access it needs and
//! how its answers may be kept ([`super::caching::Caching`]), and the router, the OpenAPI
//! document and the access table are all derived from that declaration; the middleware
//! [`enforce`] consults the table before any handler runs, and hands the route's caching policy
//! on to `caching::apply` with the response.
//!
//! Each module with routes has a `routes()` that declares them with [`Routes`], e.g.
//! `Routes::new().add(ADMIN, Private, routes!(list_tokens, create_token))`:
//! `utoipa_axum::routes!` reads the method and path of each handler from its `#[utoipa::path]`,
//! so a documented route is written once, in that attribute. The few routes that are routed elsewhere than documented, or
//! not documented at all, say so with [`Routes::add_routed_at`], [`Routes::undocumented`] and
//! [`Routes::undocumented_service`], with their access and caching in the same place.
//!
//! A route added to a router any other way has no declared access: [`enforce`] refuses it (403)
//! whatever its path, and logs it. The API tests walk the table (`crate::http::route_table`) and
//! the served OpenAPI document to check that every documented route is declared and every
//! protected one refuses every kind of bad token.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;
use utoipa::openapi::path::{PathItem, Paths};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use super::AppState;
use super::caching::{Caching, Declared};
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

/// One declared route: its method, its path pattern, what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, ... (a `HEAD` request is looked up as `GET`).
    pub method: Method,
    /// The pattern as given to the router (what [`MatchedPath`] says), e.g.
    /// `/api/v1/admin/campaigns/{slug}`, `/tiles/{tilejson}`; a nested service's ends in `{*file}`.
    pub path: String,
    /// The path in the OpenAPI document (`/tiles/{campaign}.json`), `None` when undocumented.
    pub documented: Option<String>,
    /// Who may call it.
    pub access: Access,
    /// How its answers may be kept by browsers, proxies and CDNs (see [`super::caching`]).
    pub caching: Caching,
}

/// The access of every route of a router, as derived by [`Routes`] from its declarations.
#[derive(Debug, Clone, Default)]
pub struct AccessTable(Vec<Route>);

impl AccessTable {
    /// Every declared route, in the order declared.
    pub fn routes(&self) -> &[Route] {
        &self.0
    }

    /// The entry for `method` on the route whose pattern is `path`.
    pub fn lookup(&self, method: &Method, path: &str) -> Option<&Route> {
        let method = as_get(method);
        self.0.iter().find(|r| r.method == method && r.path == path)
    }

    /// The entry of a nested service (a `{*rest}` pattern) that serves `path`.
    fn lookup_nested(&self, method: &Method, path: &str) -> Option<&Route> {
        let method = as_get(method);
        self.0.iter().find(|r| {
            r.method == method
                && r.path
                    .rsplit('/')
                    .next()
                    .is_some_and(|s| s.starts_with("{*"))
                && pattern_matches(&r.path, path)
        })
    }
}

impl<'a> IntoIterator for &'a AccessTable {
    type Item = &'a Route;
    type IntoIter = std::slice::Iter<'a, Route>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// `HEAD` is served by the `GET` route.
fn as_get(method: &Method) -> &Method {
    if method == Method::HEAD {
        &Method::GET
    } else {
        method
    }
}

/// Routes declared with their access: builds the router, the OpenAPI paths (and the schemas
/// they use) and the access table at once, so that none can list a route the others miss.
pub struct Routes {
    router: OpenApiRouter<AppState>,
    table: Vec<Route>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    /// No route.
    pub fn new() -> Self {
        Self {
            router: OpenApiRouter::default(),
            table: Vec::new(),
        }
    }

    /// Documented routes, for `access`, whose answers may be kept as `caching` says: the
    /// handlers of one `routes!(...)` (sharing one path, each with its methods), routed and
    /// documented at the path of their `#[utoipa::path]`.
    #[track_caller]
    pub fn add(
        mut self,
        access: Access,
        caching: Caching,
        routes: UtoipaMethodRouter<AppState>,
    ) -> Self {
        let path = single_path(&routes.1);
        self.declare(access, caching, &path, Some(&path), &routes.1);
        self.router = self.router.routes(routes);
        self
    }

    /// Documented routes routed at another pattern: the router cannot capture part of a
    /// segment, so `/tiles/{campaign}.json` (the document's) is routed as `/tiles/{tilejson}`
    /// and the handler takes the `.json` off itself. Both patterns must match each other.
    #[track_caller]
    pub fn add_routed_at(
        mut self,
        access: Access,
        caching: Caching,
        routed: &str,
        (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
    ) -> Self {
        let documented = single_path(&paths);
        assert!(
            pattern_matches(routed, &documented),
            "{documented} is routed at {routed}, which does not match it"
        );
        self.declare(access, caching, routed, Some(&documented), &paths);
        let openapi = self.router.get_openapi_mut();
        openapi.paths.merge(paths);
        openapi
            .components
            .get_or_insert_with(Default::default)
            .schemas
            .extend(schemas);
        self.router = self.router.route(routed, method_router);
        self
    }

    /// A route left out of the OpenAPI document (the widget's pages, the document itself).
    #[track_caller]
    pub fn undocumented<H, T>(
        mut self,
        access: Access,
        caching: Caching,
        method: Method,
        path: &str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("no method filter for {method}"));
        self.record(Route {
            method,
            path: path.to_owned(),
            documented: None,
            access,
            caching,
        });
        self.router = self.router.route(path, axum::routing::on(filter, handler));
        self
    }

    /// A service nested under `prefix` (static files), answering `method` on every path below
    /// it, left out of the OpenAPI document. Declared as `{prefix}/{*file}`: the router gives
    /// no matched path to a nested service, so [`enforce`] matches it by prefix.
    #[track_caller]
    pub fn undocumented_service<S>(
        mut self,
        access: Access,
        caching: Caching,
        method: Method,
        prefix: &str,
        service: S,
    ) -> Self
    where
        S: tower::Service<Request, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        self.record(Route {
            method,
            path: format!("{prefix}/{{*file}}"),
            documented: None,
            access,
            caching,
        });
        self.router = self.router.nest_service(prefix, service);
        self
    }

    /// These routes and `other`'s.
    #[track_caller]
    pub fn merge(mut self, other: Routes) -> Self {
        for route in other.table {
            self.record(route);
        }
        self.router = self.router.merge(other.router);
        self
    }

    /// The access table these declarations derive.
    pub fn table(&self) -> AccessTable {
        AccessTable(self.table.clone())
    }

    /// The router (to be put behind [`enforce`] with the table), the OpenAPI document of the
    /// documented routes (paths and the schemas they use; `ops::document` completes it), and
    /// the access table.
    pub fn split(self) -> (Router<AppState>, utoipa::openapi::OpenApi, AccessTable) {
        let (router, openapi) = self.router.split_for_parts();
        (router, openapi, AccessTable(self.table))
    }

    #[track_caller]
    fn declare(
        &mut self,
        access: Access,
        caching: Caching,
        routed: &str,
        documented: Option<&str>,
        paths: &Paths,
    ) {
        for item in paths.paths.values() {
            for method in methods(item) {
                self.record(Route {
                    method,
                    path: routed.to_owned(),
                    documented: documented.map(str::to_owned),
                    access,
                    caching,
                });
            }
        }
    }

    #[track_caller]
    fn record(&mut self, route: Route) {
        // Only public reads may be kept: a staff answer, a submitter's own, or the answer to
        // a write, never.
        assert!(
            route.caching == Caching::Private
                || (route.access == Access::Public && route.method == Method::GET),
            "{} {} is {:?} but declared {:?}: only public GET routes may be cached",
            route.method,
            route.path,
            route.access,
            route.caching
        );
        assert!(
            self.table
                .iter()
                .all(|r| r.method != route.method || r.path != route.path),
            "{} {} is declared twice",
            route.method,
            route.path
        );
        self.table.push(route);
    }
}

/// The one path of a `routes!(...)`: its handlers share one method router, which
/// `OpenApiRouter::routes` would route at each of their paths.
#[track_caller]
fn single_path(paths: &Paths) -> String {
    let mut keys = paths.paths.keys();
    match (keys.next(), keys.next()) {
        (Some(path), None) => path.clone(),
        _ => panic!(
            "one routes!(...) per path: {:?}",
            paths.paths.keys().collect::<Vec<_>>()
        ),
    }
}

/// The methods a path item documents.
fn methods(item: &PathItem) -> impl Iterator<Item = Method> + '_ {
    [
        (Method::GET, &item.get),
        (Method::PUT, &item.put),
        (Method::POST, &item.post),
        (Method::DELETE, &item.delete),
        (Method::OPTIONS, &item.options),
        (Method::HEAD, &item.head),
        (Method::PATCH, &item.patch),
        (Method::TRACE, &item.trace),
    ]
    .into_iter()
    .filter(|(_, operation)| operation.is_some())
    .map(|(method, _)| method)
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

/// Middleware (a route layer, so it runs once a route matched), with the state and the access
/// table of the router it guards: looks the route up in the table, refuses it if it is not
/// there, and for staff routes verifies the bearer token or console session (with its CSRF
/// token on writes, see [`auth::authenticate`]) and its role, then stashes the
/// [`auth::Staff`] in the request for the handler.
pub async fn enforce(
    State((state, table)): State<(AppState, Arc<AccessTable>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => table
            .lookup(&method, path.as_str())
            .ok_or_else(|| path.as_str().to_owned()),
        // Axum gives no matched path to a nested service (`nest_service`): it is declared
        // with a `{*rest}` pattern and matched by prefix.
        None => table
            .lookup_nested(&method, request.uri().path())
            .ok_or_else(|| request.uri().path().to_owned()),
    };
    let (access, caching) = match route {
        Ok(route) => (route.access, route.caching),
        Err(path) => return undeclared(&method, &path),
    };
    // How the answer may be kept, for `caching::apply`, with the campaign its path names.
    let declared = if caching == Caching::Private {
        Declared::new(caching, std::iter::empty())
    } else {
        let (mut parts, body) = request.into_parts();
        let params = RawPathParams::from_request_parts(&mut parts, &state).await;
        let declared = Declared::new(caching, params.iter().flat_map(|p| p.iter()));
        request = Request::from_parts(parts, body);
        declared
    };
    let mut response = match access {
        Access::Public | Access::EditToken => next.run(request).await,
        Access::Staff(roles) => {
            let staff = match auth::authenticate(&state.db, &method, request.headers()).await {
                Ok(staff) => staff,
                Err(error) => return error.into_response(),
            };
            if !roles.contains(&staff.role) {
                return auth::forbidden(&staff, roles).into_response();
            }
            request.extensions_mut().insert(staff);
            next.run(request).await
        }
    };
    response.extensions_mut().insert(declared);
    response
}

fn undeclared(method: &Method, path: &str) -> Response {
    tracing::error!(%method, path, "route without declared access (src/http/routes.rs): refused");
    ApiError::Forbidden(format!(
        "{method} {path} has no declared access; it is refused until it is declared with its access"
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AccessTable {
        crate::http::route_table(std::path::Path::new("widget"))
    }

    #[test]
    fn every_route_is_declared_once() {
        let table = table();
        let routes = table.routes();
        assert!(routes.len() >= 36, "the table lost routes: {routes:#?}");
        for (i, r) in routes.iter().enumerate() {
            assert!(
                !routes[..i]
                    .iter()
                    .any(|o| o.method == r.method && o.path == r.path),
                "{} {} is declared twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    #[should_panic(expected = "is declared twice")]
    fn declaring_a_route_twice_is_refused() {
        let _ = crate::tiles::http::routes().merge(crate::tiles::http::routes());
    }

    #[test]
    #[should_panic(expected = "only public GET routes may be cached")]
    fn a_staff_route_declared_cacheable_is_refused() {
        let _ = Routes::new().add(
            ADMIN,
            Caching::Figures,
            utoipa_axum::routes!(crate::audit::http::read_log),
        );
    }

    #[test]
    fn only_public_reads_are_declared_cacheable() {
        for r in &table() {
            if r.caching != Caching::Private {
                assert_eq!(
                    (r.method.clone(), r.access),
                    (Method::GET, Access::Public),
                    "{}",
                    r.path
                );
            }
        }
    }

    #[test]
    fn admin_and_moderation_routes_are_never_public() {
        for r in &table() {
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
        let table = table();
        assert!(table.lookup(&Method::HEAD, "/healthz").is_some());
        assert!(
            table
                .lookup(&Method::DELETE, "/api/v1/admin/campaigns")
                .is_none()
        );
        assert!(
            table
                .lookup_nested(&Method::GET, "/widget/civicmap.js")
                .is_some()
        );
        assert!(
            table
                .lookup_nested(&Method::GET, "/api/v1/admin/audit")
                .is_none()
        );
        assert_eq!(
            table
                .lookup(&Method::GET, "/api/v1/admin/audit")
                .unwrap()
                .access,
            ADMIN
        );
    }

    #[test]
    fn routes_routed_elsewhere_than_documented_keep_both_patterns() {
        let table = table();
        let tilejson = table.lookup(&Method::GET, "/tiles/{tilejson}").unwrap();
        assert_eq!(
            tilejson.documented.as_deref(),
            Some("/tiles/{campaign}.json")
        );
        let tile = table
            .lookup(&Method::GET, "/tiles/{campaign}/{z}/{x}/{y}")
            .unwrap();
        assert_eq!(
            tile.documented.as_deref(),
            Some("/tiles/{campaign}/{z}/{x}/{y}.mvt")
        );
        for undocumented in ["/", "/embed.js", "/api/v1/openapi.json", "/widget/{*file}"] {
            let route = table.routes().iter().find(|r| r.path == undocumented);
            assert_eq!(route.unwrap().documented, None, "{undocumented}");
        }
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
