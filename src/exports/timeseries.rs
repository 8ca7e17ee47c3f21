//! Contributions per day or week, overall or per district: the campaign's momentum.
//!
//! Protected like the aggregates: the periods partition the campaign's total (fixed as the
//! districts layer publishes it), and periods × districts is a table whose margins are the
//! periods (fixed as the overall series publishes them) and the districts (fixed as the
//! districts layer publishes them).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use sqlx::PgPool;
use time::Date;

use super::format::Csv;
use crate::aggregates::PublishedCount;
use crate::aggregates::protect::{FREE, Network};
use crate::campaigns::Campaign;
use crate::http::error::{ApiError, ApiResult, FieldError};

/// The query string of `timeseries.csv`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TimeseriesQuery {
    /// `day` (default) or `week` (weeks start on Monday).
    pub interval: Option<String>,
    /// `district` for one row per period and district.
    pub by: Option<String>,
    /// Time zone of the periods, e.g. `Europe/Paris` (default `UTC`).
    pub tz: Option<String>,
    /// `1` for the French-Excel flavour of CSV.
    pub excel: Option<String>,
}

/// A checked time series request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub week: bool,
    pub by_district: bool,
    pub tz: String,
}

impl TimeseriesQuery {
    /// Checks the parameters (the time zone is checked by the database).
    pub fn check(&self) -> Result<Request, ApiError> {
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
        let tz = self.tz.clone().unwrap_or_else(|| "UTC".to_owned());
        if tz.is_empty()
            || tz.len() > 64
            || !tz
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c))
        {
            errors.push(FieldError::new(
                "tz",
                "must be a time zone name such as `Europe/Paris`",
            ));
        }
        if let Some(excel) = self.excel.as_deref()
            && !matches!(excel, "0" | "1" | "true" | "false")
        {
            errors.push(FieldError::new("excel", "must be 1 or 0"));
        }
        if errors.is_empty() {
            Ok(Request {
                week,
                by_district,
                tz,
            })
        } else {
            Err(ApiError::Validation(errors))
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

/// Computes the series from the published submissions.
pub async fn compute(db: &PgPool, campaign: &Campaign, request: &Request) -> ApiResult<Series> {
    let known: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .bind(&request.tz)
            .fetch_one(db)
            .await?;
    if !known {
        return Err(ApiError::field(
            "tz",
            format!("`{}` is not a time zone the database knows", request.tz),
        ));
    }
    let k = i64::from(campaign.privacy.min_count);
    let rows: Vec<(Date, Option<i64>, i64)> = sqlx::query_as(
        "SELECT date_trunc(CASE WHEN $2 THEN 'week' ELSE 'day' END, created_at AT TIME ZONE $3)::date,
                district_id, count(*)
         FROM submissions WHERE campaign_id = $1 AND status = 'published'
         GROUP BY 1, 2",
    )
    .bind(campaign.id)
    .bind(request.week)
    .bind(&request.tz)
    .fetch_all(db)
    .await?;
    let districts: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, code, name FROM districts WHERE campaign_id = $1 ORDER BY position",
    )
    .bind(campaign.id)
    .fetch_all(db)
    .await?;
    let outside = districts.len();
    let index: HashMap<i64, usize> = districts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.0, i))
        .collect();
    // Every period from the first to the last, so that quiet days show as rows too.
    let step = if request.week { 7 } else { 1 };
    let mut table: BTreeMap<Date, Vec<i64>> = BTreeMap::new();
    if let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.0).min(),
        rows.iter().map(|r| r.0).max(),
    ) {
        let mut day = first;
        while day <= last {
            table.insert(day, vec![0; outside + 1]);
            day = day.saturating_add(time::Duration::days(step));
        }
    }
    for (period, district, count) in rows {
        let column = district
            .and_then(|d| index.get(&d).copied())
            .unwrap_or(outside);
        table.entry(period).or_insert_with(|| vec![0; outside + 1])[column] += count;
    }
    let periods: Vec<Date> = table.keys().copied().collect();
    let cells: Vec<Vec<i64>> = table.into_values().collect();
    let district_totals: Vec<i64> = (0..=outside)
        .map(|d| cells.iter().map(|r| r[d]).sum())
        .collect();
    let districts_published = crate::aggregates::suppress(&district_totals, k);
    let total_withheld = districts_published.total.withheld;

    // The overall series: periods partition the total.
    let period_totals: Vec<i64> = cells.iter().map(|r| r.iter().sum()).collect();
    let mut net = Network::new();
    let sum = net.sum();
    let total = net.figure(period_totals.iter().sum(), sum, FREE, k);
    net.fix(total, total_withheld);
    let figures: Vec<usize> = period_totals
        .iter()
        .map(|&v| net.figure(v, FREE, sum, k))
        .collect();
    let withheld = net.protect();
    let period_withheld: Vec<bool> = figures.iter().map(|&f| withheld[f]).collect();

    let mut out = Vec::new();
    if request.by_district {
        let column_withheld: Vec<bool> = districts_published
            .cells
            .iter()
            .map(|c| c.withheld)
            .collect();
        let (protected, _) = super::protect_table(
            &cells,
            &period_totals,
            &period_withheld,
            total_withheld,
            Some(&column_withheld),
            k,
        );
        for (period, row) in periods.iter().zip(protected) {
            for (d, count) in row.into_iter().enumerate() {
                // The outside column only when it has ever had points.
                if d == outside && district_totals[outside] == 0 {
                    continue;
                }
                let district = districts
                    .get(d)
                    .map_or((String::new(), "outside every district".to_owned()), |x| {
                        (x.1.clone(), x.2.clone())
                    });
                out.push(Row {
                    period: *period,
                    district: Some(district),
                    count,
                });
            }
        }
    } else {
        for ((period, &v), &w) in periods.iter().zip(&period_totals).zip(&period_withheld) {
            out.push(Row {
                period: *period,
                district: None,
                count: PublishedCount::new(v, w),
            });
        }
    }
    Ok(Series {
        request: request.clone(),
        rows: out,
    })
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
