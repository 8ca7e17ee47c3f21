//! Trust and safety: what keeps automated programs and floods out of a campaign without
//! asking citizens for anything (no account, no third-party captcha).
//!
//! - [`limits`]: rate limits per client and per campaign on submission writes, shared by every
//!   instance over the database;
//! - [`http::check_form_signals`]: the widget's honeypot field and the time taken to fill the form;
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

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::campaigns::Campaign;
use crate::validation::FieldError;

/// The campaign a write route is about, resolved once by [`http::resolve_campaign`] from the
/// router's own (percent-decoded) `{slug}`, so that every guard after it sees the same
/// campaign whichever way the path spells it.
#[derive(Debug, Clone)]
pub struct ResolvedCampaign(pub Arc<Campaign>);

/// Header with the value of the widget's hidden `website` field (empty for people).
pub const HONEYPOT_HEADER: &str = "civicmap-honeypot";
/// Header with the milliseconds between showing the form and submitting it.
pub const FILL_MS_HEADER: &str = "civicmap-fill-ms";

/// Most seconds a campaign may require for filling its form.
pub const MAX_MIN_FILL_SECONDS: i16 = 60;

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
