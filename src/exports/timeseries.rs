//! Contributions per day or week (UTC), overall or per district and week: the campaign's
//! momentum, published as a snapshot like every figure finer than a district.
//!
//! Days, weeks and weeks × districts are protected as one family (see [`compute`]); requests
//! that would overlap it without belonging to it (days by district, other time zones) are
//! refused.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use sqlx::PgPool;
use time::Date;

use super::ExportError;
use super::format::Csv;
use crate::aggregates::protect::{FREE, Network};
use crate::aggregates::{PublishedCount, Tally};
use crate::campaigns::Campaign;
use crate::validation::{FieldError, Invalid};

type Result<T, E = ExportError> = std::result::Result<T, E>;

/// The query string of `timeseries.csv`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TimeseriesQuery {
    /// `day` (default) or `week` (weeks start on Monday).
    #[param(pattern = "^(day|week)$")]
    pub interval: Option<String>,
    /// `district` for one row per period and district.
    #[param(pattern = "^district$")]
    pub by: Option<String>,
    /// Time zone of the periods: `UTC` (the default) is the only one, since days cut in two
    /// time zones could be subtracted from each other.
    pub tz: Option<String>,
    /// `1` for the French-Excel flavour of CSV.
    #[param(pattern = "^(0|1|true|false)$")]
    pub excel: Option<String>,
}

/// A checked time series request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub week: bool,
    pub by_district: bool,
}

impl TimeseriesQuery {
    /// Checks the parameters.
    pub fn check(&self) -> Result<Request> {
        let mut errors = Vec::new();
        let week = match self.interval.as_deref().unwrap_or("day") {
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
        if by_district && !week {
            errors.push(FieldError::new(
                "interval",
                "by district, the series is weekly (`interval=week`): days by district could be subtracted from their week to recover a withheld day",
            ));
        }
        if let Some(excel) = self.excel.as_deref()
            && !matches!(excel, "0" | "1" | "true" | "false")
        {
            errors.push(FieldError::new("excel", "must be 1 or 0"));
        }
        if errors.is_empty() {
            Ok(Request { week, by_district })
        } else {
            Err(Invalid(errors).into())
        }
    }

    /// Whether the French-Excel CSV flavour was asked for.
    pub fn excel(&self) -> bool {
        matches!(self.excel.as_deref(), Some("1" | "true"))
    }
}

/// One row of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// First day of the period.
    pub period: Date,
    /// District code and name, with `by=district` (empty code: outside every district).
    pub district: Option<(String, String)>,
    pub count: PublishedCount,
}

/// A computed series.
#[derive(Debug, Clone)]
pub struct Series {
    pub request: Request,
    pub rows: Vec<Row>,
}

/// Computes the series from the submissions published before `snapshot` (see
/// [`crate::aggregates::publication`]).
///
/// Days, weeks and weeks × districts are one family, protected as a whole: a week is the sum
/// of its days and the sum of its districts' weeks, a district (fixed as the districts layer
/// publishes it) the sum of its weeks. So no withheld day can be recovered from its week and
/// the published days, nor a withheld district week from its week and the other districts.
/// Days × districts and other time zones would overlap this family without being part of it,
/// so they are not published ([`TimeseriesQuery::check`] refuses them).
pub async fn compute(
    db: &PgPool,
    campaign: &Campaign,
    request: &Request,
    snapshot: time::OffsetDateTime,
) -> Result<Series> {
    let k = i64::from(campaign.privacy.min_count);
    let rows = sqlx::query!(
        r#"SELECT (created_at AT TIME ZONE 'UTC')::date AS "day!", district_id, count(*) AS "count!",
                count(*) FILTER (WHERE first_contribution) AS "contributors!"
         FROM submissions
         WHERE campaign_id = $1 AND status = 'published' AND published_at < $2
         GROUP BY 1, 2"#,
        campaign.id,
        snapshot,
    )
    .fetch_all(db)
    .await?;
    let districts = sqlx::query!(
        "SELECT id, code, name FROM districts WHERE campaign_id = $1 ORDER BY position",
        campaign.id,
    )
    .fetch_all(db)
    .await?;
    let outside = districts.len();
    let index: HashMap<i64, usize> = districts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id, i))
        .collect();
    // Every day from the Monday of the first week to the Sunday of the last, so that quiet
    // days show as rows too and every week holds its seven days.
    let mut days: BTreeMap<Date, Vec<Tally>> = BTreeMap::new();
    if let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.day).min(),
        rows.iter().map(|r| r.day).max(),
    ) {
        let mut day = monday_of(first);
        let end = monday_of(last).saturating_add(time::Duration::days(6));
        while day <= end {
            days.insert(day, vec![Tally::default(); outside + 1]);
            day = day.saturating_add(time::Duration::days(1));
        }
    }
    for row in rows {
        let column = row
            .district_id
            .and_then(|d| index.get(&d).copied())
            .unwrap_or(outside);
        days.entry(row.day)
            .or_insert_with(|| vec![Tally::default(); outside + 1])[column] += Tally {
            count: row.count,
            contributors: row.contributors,
        };
    }
    let mut weeks: BTreeMap<Date, Vec<Tally>> = BTreeMap::new();
    for (day, counts) in &days {
        let week = weeks
            .entry(monday_of(*day))
            .or_insert_with(|| vec![Tally::default(); outside + 1]);
        for (w, c) in week.iter_mut().zip(counts) {
            *w += *c;
        }
    }
    let district_totals: Vec<Tally> = (0..=outside)
        .map(|d| weeks.values().map(|r| r[d]).sum())
        .collect();
    let districts_published = crate::aggregates::suppress(&district_totals, k);

    // The family: node `by_days[w]` (week w = its days), node `by_districts[w]` (week w = its
    // districts' weeks), node `district[d]` (district d = its weeks), node `all` (the total =
    // its districts).
    let mut net = Network::new();
    let all = net.sum();
    let district_nodes: Vec<usize> = (0..=outside).map(|_| net.sum()).collect();
    for (d, &node) in district_nodes.iter().enumerate() {
        let f = net.figure(district_totals[d], node, all, k);
        net.fix(f, districts_published.cells[d].withheld);
    }
    let total = net.figure(district_totals.iter().copied().sum(), all, FREE, k);
    net.fix(total, districts_published.total.withheld);
    let mut week_figures = Vec::new();
    let mut day_figures = Vec::new();
    let mut cell_figures = Vec::new();
    for (week, counts) in &weeks {
        let (by_days, by_districts) = (net.sum(), net.sum());
        week_figures.push(net.figure(counts.iter().copied().sum(), by_days, by_districts, k));
        for day in days.range(*week..week.saturating_add(time::Duration::days(7))) {
            day_figures.push(net.figure(day.1.iter().copied().sum(), FREE, by_days, k));
        }
        cell_figures.push(
            (0..=outside)
                .map(|d| net.figure(counts[d], district_nodes[d], by_districts, k))
                .collect::<Vec<_>>(),
        );
    }
    let withheld = net.protect();

    let mut out = Vec::new();
    if request.by_district {
        for ((week, counts), figures) in weeks.iter().zip(&cell_figures) {
            // Every district and "outside every district", always: a row's presence says
            // nothing.
            for (d, (&count, &f)) in counts.iter().zip(figures).enumerate() {
                let district = districts
                    .get(d)
                    .map_or((String::new(), "outside every district".to_owned()), |x| {
                        (x.code.clone(), x.name.clone())
                    });
                out.push(Row {
                    period: *week,
                    district: Some(district),
                    count: PublishedCount::new(count.count, withheld[f]),
                });
            }
        }
    } else if request.week {
        for ((week, counts), &f) in weeks.iter().zip(&week_figures) {
            out.push(Row {
                period: *week,
                district: None,
                count: PublishedCount::new(counts.iter().map(|c| c.count).sum(), withheld[f]),
            });
        }
    } else {
        for ((day, counts), &f) in days.iter().zip(&day_figures) {
            out.push(Row {
                period: *day,
                district: None,
                count: PublishedCount::new(counts.iter().map(|c| c.count).sum(), withheld[f]),
            });
        }
    }
    Ok(Series {
        request: request.clone(),
        rows: out,
    })
}

/// The Monday of `day`'s week.
fn monday_of(day: Date) -> Date {
    day.saturating_sub(time::Duration::days(i64::from(
        day.weekday().number_days_from_monday(),
    )))
}

/// The series as CSV: `period`, then `code` and `name` with `by=district`, `count` (empty when
/// withheld) and `withheld`.
pub fn csv(series: &Series, flavour: Csv) -> std::io::Result<Vec<u8>> {
    let mut out = flavour.writer(Vec::new())?;
    let mut header = vec!["period"];
    if series.request.by_district {
        header.extend(["code", "name"]);
    }
    header.extend(["count", "withheld"]);
    out.write_record(&header)?;
    for row in &series.rows {
        let mut record = vec![row.period.to_string()];
        if let Some((code, name)) = &row.district {
            record.extend([code.clone(), name.clone()]);
        }
        record.push(row.count.count.map(|n| n.to_string()).unwrap_or_default());
        record.push(row.count.withheld.to_string());
        out.write_record(&record)?;
    }
    out.into_inner()
}
