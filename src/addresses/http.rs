//! The address search route: `GET /api/v1/campaigns/{slug}/addresses?q=…` (public).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::routes;

use super::{AddressError, Suggestion};
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::client_ip::{ClientAddr, ClientKey};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{PathParams, QueryParams};
use crate::http::routes::{Access::Public, Routes};

impl From<AddressError> for ApiError {
    fn from(error: AddressError) -> Self {
        match error {
            AddressError::Invalid(invalid) => invalid.into(),
            AddressError::Database(error) => error.into(),
            AddressError::Index(error) if crate::database::is_unavailable(&error) => {
                ApiError::Unavailable(error.to_string())
            }
            AddressError::Index(error) => {
                ApiError::Internal(anyhow::anyhow!("building an address index: {error}"))
            }
            // The import's errors, which the command line reports; never met by a request.
            other @ (AddressError::Read { .. }
            | AddressError::Format(_)
            | AddressError::Refused { .. }) => ApiError::Internal(other.into()),
        }
    }
}

/// `/api/v1/campaigns/{slug}/addresses`.
pub fn routes() -> Routes {
    Routes::new().add(Public, Private, routes!(suggest_addresses))
}

/// The parameters of an address search, read as text and checked by [`super::check`] so
/// that each bad one is named.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AddressQuery {
    /// What the citizen typed so far, 1 to 200 characters: `12 bis r de la paix`. Case,
    /// accents and common abbreviations (`av`, `bd`, `r`, `st`, `pl`…) do not matter.
    #[param(min_length = 1, max_length = 200)]
    q: Option<String>,
    /// How many suggestions at most, 1 to 20 (default 8).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 20)]
    limit: Option<String>,
}

/// Suggestions of addresses inside the campaign's area for what a citizen is typing, from the
/// national address file (public open data) loaded by the city: the exact number on the
/// closest street first. An empty list when nothing matches or the city loaded no addresses
/// for the area (`address_search` in the campaign says which). The query is neither stored
/// nor logged, and the answer depends on the address file alone, never on submissions.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/addresses", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), AddressQuery),
    responses(
        (status = 200, description = "Suggestions, best first", body = [Suggestion]),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 422, description = "`q` is missing, empty or too long, or `limit` is not 1 to 20 (each named in `errors`)", body = Problem),
        (status = 429, description = "Too many address searches from this client or its network; see Retry-After", body = Problem),
    ))]
pub async fn suggest_addresses(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    QueryParams(query): QueryParams<AddressQuery>,
    ClientAddr(client): ClientAddr,
) -> ApiResult<Response> {
    // Each search is work for this instance: limited per client and network, in memory.
    state
        .limits
        .check_read(crate::safety::limits::Read::Search, ClientKey::from(client))?;
    // Fresh as the versions in memory: an area whose districts just changed is searched as it
    // is now (`AppState::public_campaign`).
    let (campaign, _) = state.public_campaign(&slug).await?;
    let search = super::check(query.q.as_deref(), query.limit.as_deref())?;
    let suggestions = state
        .addresses
        .suggest(&state.db, &state.versions, &campaign, &search)
        .await?;
    // Nothing on the way (proxy, CDN, browser cache) keeps what was typed or its answer: the
    // route is `Caching::Private`.
    Ok(Json(suggestions).into_response())
}
