//! Operations: liveness, readiness and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Method;
use axum::{Extension, Json};
use serde_json::{Value, json};
use utoipa::{Modify, OpenApi};
use utoipa_axum::routes;

use super::AppState;
use super::caching::Caching::{Code, Private};
use super::error::{ApiError, ApiResult};
use super::routes::{Access::Public, Routes};

/// What the OpenAPI document says besides its operations: the title, the schemas every error
/// uses and the bearer scheme. The operations are those of the declared routes, added by
/// [`document`].
#[derive(OpenApi)]
#[openapi(
    info(title = "civicmap API", description = "Collaborative maps for cities: campaigns, districts, citizen submissions and their published counts."),
    components(schemas(super::error::Problem, crate::validation::FieldError)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// The OpenAPI document of the public and admin API: [`ApiDoc`] with `routes`, the operations
/// (and the schemas they use) of the documented routes, as [`Routes`] derives them, and the
/// responses they share.
pub fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.merge(routes);
    SharedResponses.modify(&mut document);
    document
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The responses every handler can give through the parts they share, added to each operation
/// that does not describe them itself, and the media type of every error body:
///
/// - every error body is `application/problem+json` ([`ApiError`]'s `IntoResponse`), whatever
///   the annotation says (utoipa writes `application/json` for `body = Problem`);
/// - an operation with a bearer token (`security`) can answer 401 and 403 (the route table's
///   check, `super::routes::enforce`, runs before the handler);
/// - an operation with a JSON body (`JsonBody`) can answer 400 (not JSON), 422 (JSON of another
///   shape), 413 (too large) and 415 (not a JSON media type);
/// - an operation with a query string (`QueryParams`) can answer 400 (a parameter of the wrong
///   type, or one it does not know);
/// - every operation but `/healthz` reads the database, so it can answer 503 (database away,
///   with `Retry-After`).
struct SharedResponses;

impl utoipa::Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

        const PROBLEM: &str = "application/problem+json";
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        PROBLEM,
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                // Error bodies: problem+json.
                for (status, response) in responses.iter_mut() {
                    if let RefOr::T(response) = response
                        && !status.starts_with(['1', '2', '3'])
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        response.content.insert(PROBLEM.to_owned(), content);
                    }
                }
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description));
                };
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add(
                        "401",
                        "No bearer token, or one that is unknown, expired or revoked",
                    );
                    add("403", "The token's role does not allow this route");
                }
                let has_query = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                if operation.request_body.is_some() {
                    add("400", "The body is not valid JSON");
                    add(
                        "422",
                        "The body is JSON of another shape; `errors` names each field",
                    );
                    add("413", "The body is larger than this route accepts");
                    add(
                        "415",
                        "The body is not JSON (`Content-Type: application/json`)",
                    );
                } else if has_query {
                    add("400", "A query parameter cannot be read");
                }
                if path != "/healthz" {
                    add(
                        "503",
                        "The database is unavailable; retry after `Retry-After` seconds",
                    );
                }
            }
        }
    }
}

/// `/healthz`, `/readyz` and `/api/v1/openapi.json` (not one of the document's operations).
pub fn routes() -> Routes {
    Routes::new()
        .add(Public, Private, routes!(healthz))
        .add(Public, Private, routes!(readyz))
        .undocumented(Public, Code, Method::GET, "/api/v1/openapi.json", openapi)
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Ready to serve"),
    (status = 503, description = "Database unreachable or not migrated", body = super::error::Problem),
))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    crate::database::readiness(&state.db)
        .await
        .map_err(|e| match e {
            crate::database::NotReady::Unreachable(e) => ApiError::from(e),
            migrations => ApiError::NotReady(migrations.to_string()),
        })?;
    Ok(Json(json!({"status": "ready"})))
}

/// The document [`super::app`] derived from its routes.
async fn openapi(
    Extension(document): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(utoipa::openapi::OpenApi::clone(&document))
}
