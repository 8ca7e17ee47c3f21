//! The time series download (`timeseries.csv`): its query string, checked against the
//! campaign, and its CSV. The figures are [`crate::figures::series`]'s: estimates per release
//! for the public, exact per day or week of arrival for staff.

use serde::Deserialize;

use super::ExportError;
use super::format::Csv;
use crate::campaigns::{Campaign, ReleaseEvery};
pub use crate::figures::series::{Request, Row, Series};
use crate::validation::{FieldError, Invalid};

type Result<T, E = ExportError> = std::result::Result<T, E>;

/// The query string of `timeseries.csv`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TimeseriesQuery {
    /// `day` or `week` (weeks start on Monday). The public's series is per release: `day`
    /// only for a campaign released daily; the default is the campaign's release period.
    #[param(pattern = "^(day|week)$")]
    pub interval: Option<String>,
    /// `district` for one row per period and district (staff only).
    #[param(pattern = "^district$")]
    pub by: Option<String>,
    /// Time zone of the periods: `UTC` (the default) is the only one, since days cut in two
    /// time zones could be subtracted from each other.
    pub tz: Option<String>,
    /// `1` for the French-Excel flavour of CSV.
    #[param(pattern = "^(0|1|true|false)$")]
    pub excel: Option<String>,
}

impl TimeseriesQuery {
    /// Checks the parameters against `campaign`: `staff` (a planner token or the command line)
    /// may ask any interval, by district; the public, the campaign's releases.
    pub fn check(&self, campaign: &Campaign, staff: bool) -> Result<Request> {
        let mut errors = Vec::new();
        let released = match campaign.privacy.release_every {
            ReleaseEvery::Day => "day",
            ReleaseEvery::Week => "week",
        };
        let default = if staff { "day" } else { released };
        let week = match self.interval.as_deref().unwrap_or(default) {
            "day" => false,
            "week" => true,
            other => {
                errors.push(FieldError::new(
                    "interval",
                    format!("must be `day` or `week`, got `{other}`"),
                ));
                false
            }
        };
        let by_district = match self.by.as_deref() {
            None => false,
            Some("district") => true,
            Some(other) => {
                errors.push(FieldError::new(
                    "by",
                    format!("must be `district` or absent, got `{other}`"),
                ));
                false
            }
        };
        if let Some(tz) = self.tz.as_deref()
            && !tz.eq_ignore_ascii_case("utc")
        {
            errors.push(FieldError::new(
                "tz",
                format!("periods are in UTC only, got `{tz}`: days cut in two time zones could be subtracted from each other to recover a withheld day"),
            ));
        }
        if !staff && !week && released == "week" {
            errors.push(FieldError::new(
                "interval",
                "this campaign releases its figures once a week: its public series is weekly (`interval=week`)",
            ));
        }
        if let Some(excel) = self.excel.as_deref()
            && !matches!(excel, "0" | "1" | "true" | "false")
        {
            errors.push(FieldError::new("excel", "must be 1 or 0"));
        }
        if !errors.is_empty() {
            return Err(Invalid(errors).into());
        }
        if by_district && !staff {
            return Err(ExportError::NeedsPlanner(
                "a series per district needs a planner token: the public series is the campaign's, one estimate per release".into(),
            ));
        }
        Ok(Request { week, by_district })
    }

    /// Whether the French-Excel CSV flavour was asked for.
    pub fn excel(&self) -> bool {
        matches!(self.excel.as_deref(), Some("1" | "true"))
    }
}

/// The series as CSV: `period` (its first day), then `code` and `name` with `by=district`;
/// for the public's, `period_end` (when the release's period ended), `estimate` (empty when
/// withheld) and `withheld`; for staff's, `count`.
pub fn csv(series: &Series, flavour: Csv) -> std::io::Result<Vec<u8>> {
    use time::format_description::well_known::Rfc3339;
    let estimated = matches!(series.basis, crate::figures::aggregate::Basis::Public(_));
    let mut out = flavour.writer(Vec::new())?;
    let mut header = vec!["period"];
    if series.request.by_district {
        header.extend(["code", "name"]);
    }
    if estimated {
        header.extend(["period_end", "estimate", "withheld"]);
    } else {
        header.push("count");
    }
    out.write_record(&header)?;
    for row in &series.rows {
        let mut record = vec![row.period.to_string()];
        if let Some((code, name)) = &row.district {
            record.extend([code.clone(), name.clone()]);
        }
        if estimated {
            record.push(row.end.format(&Rfc3339).unwrap_or_default());
        }
        record.push(row.count.count.map(|n| n.to_string()).unwrap_or_default());
        if estimated {
            record.push(row.count.withheld.to_string());
        }
        out.write_record(&record)?;
    }
    out.into_inner()
}
