//! The time series: contributions per period, the campaign's momentum. The public's is one
//! estimate per release (each release's noisy count of the contributions it counted, so a
//! contribution is in one period's figure only), per day or per week; staff's is exact, per
//! UTC day or week of arrival, overall or per district.

use std::collections::BTreeMap;

use sqlx::PgPool;
use time::{Date, OffsetDateTime};

use super::PublishedCount;
use super::aggregate::{Basis, FiguresError, ReleaseInfo};
use super::estimates::{self, Released};
use crate::campaigns::Campaign;

/// A checked time series request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub week: bool,
    pub by_district: bool,
}

/// One row of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// First day of the period (UTC).
    pub period: Date,
    /// The instant the period ends (exclusive): for the public's, the release's end.
    pub end: OffsetDateTime,
    /// District code and name, with `by_district` (empty code: outside every district).
    pub district: Option<(String, String)>,
    pub count: PublishedCount,
}

/// A computed series.
#[derive(Debug, Clone)]
pub struct Series {
    pub request: Request,
    pub basis: Basis,
    pub k: i64,
    pub rows: Vec<Row>,
}

/// The Monday of `day`'s week.
pub fn monday_of(day: Date) -> Date {
    day.saturating_sub(time::Duration::days(i64::from(
        day.weekday().number_days_from_monday(),
    )))
}

/// The public's series from the campaign's releases: one row per release, or per week (the
/// releases whose periods start in it, added up) when `request.week` and the campaign releases
/// daily. Estimates below k are withheld; none before the first release.
pub fn public(campaign: &Campaign, request: &Request, released: Option<&Released>) -> Series {
    let k = i64::from(campaign.privacy.min_count);
    let basis = Basis::Public(released.map(|r| ReleaseInfo::of(r, campaign)));
    let periods = released.map_or_else(Vec::new, |r| r.series.clone());
    let daily = campaign.privacy.release_every == crate::campaigns::ReleaseEvery::Day;
    let rows = if request.week && daily {
        let mut weeks: BTreeMap<Date, (i64, OffsetDateTime)> = BTreeMap::new();
        for p in &periods {
            let week = weeks.entry(monday_of(p.start.date())).or_insert((0, p.end));
            week.0 += p.noisy;
            week.1 = week.1.max(p.end);
        }
        weeks
            .into_iter()
            .map(|(period, (noisy, end))| {
                let n = noisy.max(0);
                Row {
                    period,
                    end,
                    district: None,
                    count: PublishedCount::new(n, n < k),
                }
            })
            .collect()
    } else {
        let released = Released {
            series: periods,
            ..empty()
        };
        estimates::series(&released, k)
            .into_iter()
            .map(|(start, end, count)| Row {
                period: start.date(),
                end,
                district: None,
                count,
            })
            .collect()
    };
    Series {
        request: request.clone(),
        basis,
        k,
        rows,
    }
}

fn empty() -> Released {
    Released {
        id: 0,
        period_end: OffsetDateTime::UNIX_EPOCH,
        released_at: OffsetDateTime::UNIX_EPOCH,
        epsilon: 0.0,
        releases: 0,
        totals: Vec::new(),
        sums: Default::default(),
        series: Vec::new(),
    }
}

/// Staff's series: exact contributions (published now) per UTC day or week of arrival, overall
/// or per district and period; every day (or week) from the first to the last, quiet ones too.
pub async fn exact(
    db: &PgPool,
    campaign: &Campaign,
    request: &Request,
) -> Result<Series, FiguresError> {
    let rows = sqlx::query!(
        r#"SELECT (created_at AT TIME ZONE 'UTC')::date AS "day!", district_id, count(*) AS "count!"
         FROM submissions WHERE campaign_id = $1 AND status = 'published'
         GROUP BY 1, 2"#,
        campaign.id,
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
    let index = super::districts::positions(districts.iter().map(|d| d.id));
    let key = |day: Date| if request.week { monday_of(day) } else { day };
    let step = time::Duration::days(if request.week { 7 } else { 1 });
    let mut periods: BTreeMap<Date, Vec<i64>> = BTreeMap::new();
    if let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.day).min(),
        rows.iter().map(|r| r.day).max(),
    ) {
        let mut day = key(first);
        while day <= key(last) {
            periods.insert(day, vec![0; outside + 1]);
            day = day.saturating_add(step);
        }
    }
    for row in &rows {
        let d = row
            .district_id
            .and_then(|d| index.get(&d).copied())
            .unwrap_or(outside);
        periods
            .entry(key(row.day))
            .or_insert_with(|| vec![0; outside + 1])[d] += row.count;
    }
    let end_of = |day: Date| day.saturating_add(step).midnight().assume_utc();
    let mut out = Vec::new();
    for (period, counts) in periods {
        if request.by_district {
            for (d, &count) in counts.iter().enumerate() {
                let district = districts
                    .get(d)
                    .map_or((String::new(), "outside every district".to_owned()), |x| {
                        (x.code.clone(), x.name.clone())
                    });
                out.push(Row {
                    period,
                    end: end_of(period),
                    district: Some(district),
                    count: PublishedCount::new(count, false),
                });
            }
        } else {
            out.push(Row {
                period,
                end: end_of(period),
                district: None,
                count: PublishedCount::new(counts.iter().sum(), false),
            });
        }
    }
    Ok(Series {
        request: request.clone(),
        basis: Basis::Exact,
        k: i64::from(campaign.privacy.min_count),
        rows: out,
    })
}
