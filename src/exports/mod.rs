//! Downloads: the aggregates' and time series' query strings, checked against the campaign
//! ([`AggregateQuery`], [`timeseries::TimeseriesQuery`]), the files they are written as
//! ([`mod@format`]), their routes ([`http`]), and the raw export for staff ([`raw`]).
//!
//! The figures themselves are computed by [`crate::figures`]: this module formats them.

pub mod format;
pub mod http;
pub mod raw;
pub mod timeseries;

use h3o::Resolution;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::campaigns::Campaign;
use crate::figures::aggregate::FiguresError;
pub use crate::figures::aggregate::{Aggregate, Area, Basis, By, Request};
use crate::validation::{FieldError, Invalid};

/// What can go wrong with an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Some parameters are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// What was asked needs a planner's token; why.
    #[error("{0}")]
    NeedsPlanner(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A bug or an impossible state.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<FiguresError> for ExportError {
    fn from(error: FiguresError) -> Self {
        match error {
            FiguresError::Database(e) => ExportError::Database(e),
            FiguresError::Internal(e) => ExportError::Internal(e),
        }
    }
}

type Result<T, E = ExportError> = std::result::Result<T, E>;

/// Reads `by`: `district` or `h3:6` to `h3:10`.
fn parse_by(text: &str) -> Result<By, FieldError> {
    if text == "district" {
        return Ok(By::District);
    }
    let resolution = text
        .strip_prefix("h3:")
        .and_then(|r| r.parse::<u8>().ok())
        .filter(|r| (6..=10).contains(r))
        .and_then(|r| Resolution::try_from(r).ok());
    resolution.map(By::H3).ok_or_else(|| {
        FieldError::new(
            "by",
            format!("must be `district` or `h3:6` to `h3:10`, got `{text}`"),
        )
    })
}

/// The query string of the aggregate routes and of `civicmap export`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AggregateQuery {
    /// `district` (default) or `h3:{6..10}`.
    #[param(pattern = "^(district|h3:([6-9]|10))$")]
    pub by: Option<String>,
    /// A choice or boolean field: one count per answer.
    pub breakdown: Option<String>,
    /// A number field to add up per area (e.g. households).
    pub sum: Option<String>,
    /// Start of a time window, RFC 3339 or `YYYY-MM-DD` (UTC), inclusive. Staff only.
    pub from: Option<String>,
    /// End of a time window, RFC 3339 or `YYYY-MM-DD` (UTC), exclusive. Staff only.
    pub to: Option<String>,
    /// `1` for the French-Excel flavour of CSV: BOM, `;` separator, decimal comma.
    #[param(pattern = "^(0|1|true|false)$")]
    pub excel: Option<String>,
}

/// Reads an instant given as RFC 3339 or as a date (midnight UTC).
pub fn parse_instant(field: &str, text: &str) -> Result<OffsetDateTime, FieldError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &date_format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            FieldError::new(
                field,
                format!("must be an RFC 3339 instant or a YYYY-MM-DD date, got `{text}`"),
            )
        })
}

impl AggregateQuery {
    /// Checks the query against `campaign`. `staff` is true for a planner (or admin) token
    /// or the command line: only staff may set a time window or break H3 cells down, and
    /// only staff may use fields the campaign did not mark public.
    pub fn check(&self, campaign: &Campaign, staff: bool) -> Result<Request> {
        let mut errors = Vec::new();
        let by = parse_by(self.by.as_deref().unwrap_or("district"))
            .map_err(|e| errors.push(e))
            .ok();
        // The public's hexagons are the map's (`figures::estimates::hexagons`): of its
        // resolution or coarser.
        if let Some(By::H3(resolution)) = by
            && !staff
            && u8::from(resolution) > campaign.privacy.map_resolution
        {
            errors.push(FieldError::new(
                "by",
                format!(
                    "h3:{resolution} is finer than this campaign's map (h3:{}): finer hexagons are not published",
                    campaign.privacy.map_resolution
                ),
            ));
        }
        let field = |key: &str, name: &str, errors: &mut Vec<FieldError>| {
            let found = campaign.form.fields.iter().find(|f| f.key == key);
            if found.is_none() {
                let known: Vec<&str> = campaign
                    .form
                    .fields
                    .iter()
                    .map(|f| f.key.as_str())
                    .collect();
                errors.push(FieldError::new(
                    name,
                    format!(
                        "no field `{key}` in this campaign's form (fields: {})",
                        known.join(", ")
                    ),
                ));
            }
            found
        };
        let breakdown = self.breakdown.as_deref().and_then(|key| {
            let f = field(key, "breakdown", &mut errors)?;
            if !f.kind.can_break_down() {
                errors.push(FieldError::new(
                    "breakdown",
                    format!("`{key}` is not a choice or yes/no field; only those can split counts"),
                ));
                return None;
            }
            if !f.public && !staff {
                errors.push(FieldError::new(
                    "breakdown",
                    format!("the answers to `{key}` are not public in this campaign; a planner token can break down by it"),
                ));
                return None;
            }
            Some(key.to_owned())
        });
        let sum = self.sum.as_deref().and_then(|key| {
            let f = field(key, "sum", &mut errors)?;
            if !f.kind.can_sum() {
                errors.push(FieldError::new(
                    "sum",
                    format!("`{key}` is not a number field; only numbers can be added up"),
                ));
                return None;
            }
            if !(staff || f.public && f.kind.public_range().is_some()) {
                errors.push(FieldError::new(
                    "sum",
                    format!("the answers to `{key}` are not public in this campaign; a planner token can add them up"),
                ));
                return None;
            }
            Some(key.to_owned())
        });
        let from = self
            .from
            .as_deref()
            .and_then(|t| parse_instant("from", t).map_err(|e| errors.push(e)).ok());
        let to = self
            .to
            .as_deref()
            .and_then(|t| parse_instant("to", t).map_err(|e| errors.push(e)).ok());
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            errors.push(FieldError::new("to", "must be after `from`"));
        }
        if let Some(excel) = self.excel.as_deref()
            && !matches!(excel, "0" | "1" | "true" | "false")
        {
            errors.push(FieldError::new("excel", "must be 1 or 0"));
        }
        if !errors.is_empty() {
            return Err(Invalid(errors).into());
        }
        let by = by.expect("no errors, so `by` parsed");
        if !staff && (from.is_some() || to.is_some()) {
            return Err(ExportError::NeedsPlanner(
                "a time window (`from`, `to`) needs a planner token: two overlapping windows would let anyone subtract one from the other and recover a small, withheld count. The public time series is at timeseries.csv".into(),
            ));
        }
        if !staff && breakdown.is_some() && matches!(by, By::H3(_)) {
            return Err(ExportError::NeedsPlanner(
                "a breakdown by H3 cell needs a planner token; the public breakdown is by district (`by=district`)".into(),
            ));
        }
        if !staff && sum.is_some() && matches!(by, By::H3(_)) {
            return Err(ExportError::NeedsPlanner(
                "a sum by H3 cell needs a planner token; the public sums are by district (`by=district`)".into(),
            ));
        }
        Ok(Request {
            by,
            breakdown,
            sum,
            from,
            to,
        })
    }

    /// Whether the French-Excel CSV flavour was asked for.
    pub fn excel(&self) -> bool {
        matches!(self.excel.as_deref(), Some("1" | "true"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::format_description::well_known::Rfc3339;
    use time::{Date, OffsetDateTime, UtcOffset};

    use super::{AggregateQuery, By, parse_instant};
    use crate::testing::{campaign, clear_error};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Any text is an instant or a refusal that names the parameter and quotes the text.
        #[test]
        fn any_text_is_an_instant_or_refused_by_name(text in prop_oneof![
            ".{0,30}",
            "[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
        ]) {
            if let Err(error) = parse_instant("from", &text) {
                prop_assert_eq!(error.field.as_str(), "from");
                prop_assert!(error.detail.contains(&format!("`{text}`")), "{}", error.detail);
            }
        }

        /// Every date reads as its midnight UTC, and every RFC 3339 instant as itself.
        #[test]
        fn dates_and_instants_read_back(
            day in 1i32..=3_652_059, // 0001-01-01 to 9999-12-31
            seconds in 0i64..86_400,
            nanos in 0u32..1_000_000_000,
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59),
        ) {
            let date = Date::from_julian_day(day + 1_721_425).unwrap();
            prop_assert_eq!(parse_instant("to", &date.to_string()), Ok(date.midnight().assume_utc()));
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let instant = date.midnight().assume_utc() + time::Duration::new(seconds, nanos as i32);
            if let Ok(text) = instant.to_offset(offset).format(&Rfc3339) {
                let read: OffsetDateTime = parse_instant("to", &text).unwrap();
                prop_assert_eq!(read, instant);
            }
        }

        /// Well-formed aggregate queries for the campaign's fields are accepted as asked.
        #[test]
        fn valid_aggregate_queries_are_accepted(
            by in prop_oneof![Just("district".to_owned()), (6u8..=10).prop_map(|r| format!("h3:{r}"))],
            breakdown in proptest::option::of(prop_oneof![Just("connection"), Just("tenant")]),
            sum in proptest::option::of(Just("households")),
            window in proptest::option::of((0i64..1_000_000_000, 1i64..1_000_000)),
            excel in proptest::option::of(prop_oneof![Just("0"), Just("1"), Just("true"), Just("false")]),
        ) {
            let instant = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap().format(&Rfc3339).unwrap();
            let query = AggregateQuery {
                by: Some(by.clone()),
                breakdown: breakdown.map(str::to_owned),
                sum: sum.map(str::to_owned),
                from: window.map(|(from, _)| instant(from)),
                to: window.map(|(from, length)| instant(from + length)),
                excel: excel.map(str::to_owned),
            };
            let request = query.check(&campaign(), true).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(request.by.as_query(), by);
            prop_assert_eq!(request.breakdown.as_deref(), breakdown);
            prop_assert_eq!(request.sum.as_deref(), sum);
            prop_assert_eq!(request.from.is_some(), window.is_some());
            // The public may ask the same by district, without a window, breaking down only by
            // a public field (`connection`) and summing none.
            // `households` is not public: its sums are for staff.
            let public = AggregateQuery {
                by: None,
                from: None,
                to: None,
                breakdown: query.breakdown.filter(|b| b == "connection"),
                sum: None,
                ..query
            };
            let request = public.check(&campaign(), false).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(request.by, By::District);
        }

        /// Any aggregate query is accepted or refused clearly, for the public and for staff.
        #[test]
        fn any_aggregate_query_is_checked_clearly(
            fields in proptest::collection::vec(proptest::option::of(prop_oneof![
                Just("district".to_owned()), Just("h3:7".to_owned()), Just("h3:11".to_owned()),
                Just("connection".to_owned()), Just("households".to_owned()), Just("comment".to_owned()),
                Just("2026-01-01".to_owned()), Just("1".to_owned()), ".{0,10}",
            ]), 6),
            staff: bool,
        ) {
            let query = AggregateQuery {
                by: fields[0].clone(),
                breakdown: fields[1].clone(),
                sum: fields[2].clone(),
                from: fields[3].clone(),
                to: fields[4].clone(),
                excel: fields[5].clone(),
            };
            if let Err(error) = query.check(&campaign(), staff) {
                clear_error(error)?;
            }
        }
    }
}
