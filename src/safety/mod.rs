//! Trust and safety: what keeps automated programs and floods out of a campaign without
//! asking citizens for anything (no account, no third-party captcha).
//!
//! - [`limits`]: rate limits per client and per campaign on submission writes;
//! - [`check_form_signals`]: the widget's honeypot field and the time taken to fill the form;
//! - [`pow`]: an optional proof of work per campaign, with stateless signed challenges;
//! - [`Duplicates`]: an optional rule against repeated submissions from one connection,
//!   applied by [`crate::submissions::store_batch`];
//! - [`origins`]: the sites allowed to embed a campaign and to write to it.

pub mod http;
pub mod limits;
pub mod origins;
pub mod pow;
pub mod secret;

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::campaigns::Campaign;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::validation::FieldError;

/// The campaign a write route is about, resolved once by [`resolve_campaign`] from the
/// router's own (percent-decoded) `{slug}`, so that every guard after it sees the same
/// campaign whichever way the path spells it.
#[derive(Debug, Clone)]
pub struct ResolvedCampaign(pub Arc<Campaign>);

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
            parts.extensions.insert(ResolvedCampaign(campaign));
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => error.into_response(),
    }
}

/// Header with the value of the widget's hidden `website` field (empty for people).
pub const HONEYPOT_HEADER: &str = "civicmap-honeypot";
/// Header with the milliseconds between showing the form and submitting it.
pub const FILL_MS_HEADER: &str = "civicmap-fill-ms";

/// Most seconds a campaign may require for filling its form.
pub const MAX_MIN_FILL_SECONDS: i16 = 60;

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

/// A campaign's rule against repeated submissions from one connection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Duplicates {
    /// A submission this close (metres) to an earlier one from the same connection...
    pub distance_m: f64,
    /// ...within this many minutes is a duplicate.
    pub window_minutes: i32,
    /// What happens to a duplicate: always `flag` (`refuse` and `merge`, the former actions,
    /// are read as `flag`).
    #[serde(default)]
    pub action: DuplicateAction,
}

/// What happens to a duplicate.
///
/// A duplicate is stored at its own position and counted like any submission, and the
/// submitter gets the same answer as anyone: any difference (a 409, another position, a
/// `merged_with`) would tell a prober on the same connection that someone is within the
/// distance. The pair is flagged for the moderators instead (a report on the newcomer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateAction {
    /// Stored, counted, and reported to the moderators with the earlier submission's id.
    #[default]
    #[serde(alias = "refuse", alias = "merge")]
    Flag,
}

/// Longest duplicate window: a week (client hashes are kept that long at most).
pub const MAX_DUPLICATE_WINDOW_MINUTES: i32 = 7 * 24 * 60;

impl Duplicates {
    /// Problems with the rule, each naming its field.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !(self.distance_m.is_finite() && (1.0..=1000.0).contains(&self.distance_m)) {
            errors.push(FieldError::new(
                "duplicates.distance_m",
                "must be between 1 and 1000 metres",
            ));
        }
        if !(1..=MAX_DUPLICATE_WINDOW_MINUTES).contains(&self.window_minutes) {
            errors.push(FieldError::new(
                "duplicates.window_minutes",
                format!("must be between 1 and {MAX_DUPLICATE_WINDOW_MINUTES} minutes (a week)"),
            ));
        }
        errors
    }
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
    fn duplicate_rules_are_bounded() {
        let rule = Duplicates {
            distance_m: 0.5,
            window_minutes: 0,
            action: DuplicateAction::Flag,
        };
        let fields: Vec<_> = rule.check().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["duplicates.distance_m", "duplicates.window_minutes"]
        );
    }
}
