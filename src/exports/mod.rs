//! Planner exports and analytics: aggregates by district or H3 cell, the time series, and the
//! raw export for staff.
//!
//! Every aggregate is protected by the campaign's k threshold across everything published:
//! see [`crate::aggregates::protect`] for how linked figures are withheld together, and
//! [`compute`] for the families of figures each request belongs to.

pub mod format;
pub mod http;
pub mod raw;
pub mod timeseries;

use std::collections::{BTreeMap, HashMap};

use h3o::{CellIndex, Resolution};
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::aggregates::protect::{FREE, Network};
use crate::aggregates::{PublishedCount, Tally};
use crate::campaigns::Campaign;
use crate::campaigns::form::FieldKind;
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

type Result<T, E = ExportError> = std::result::Result<T, E>;

/// What the figures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum By {
    /// The campaign's districts (and "outside every district").
    District,
    /// H3 cells of a resolution from 6 to 10.
    H3(Resolution),
}

impl By {
    fn parse(text: &str) -> Result<Self, FieldError> {
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

    /// As written in a query string.
    pub fn as_query(self) -> String {
        match self {
            By::District => "district".to_owned(),
            By::H3(r) => format!("h3:{}", u8::from(r)),
        }
    }
}

/// A request for aggregates, checked against the campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub by: By,
    /// A choice or boolean field whose answers split each count.
    pub breakdown: Option<String>,
    /// A number field summed in each area.
    pub sum: Option<String>,
    /// Only submissions created at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Only submissions created before this instant.
    pub to: Option<OffsetDateTime>,
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
        let by = By::parse(self.by.as_deref().unwrap_or("district"))
            .map_err(|e| errors.push(e))
            .ok();
        // The public sees no hexagon smaller than the campaign's public precision (a square of
        // `public_precision_m`), as on the map (`tiles::demand::resolution_for`).
        if let Some(By::H3(resolution)) = by
            && !staff
        {
            let precision = f64::from(campaign.privacy.public_precision_m);
            if resolution.area_m2() < precision * precision {
                let finest = (6..=10u8)
                    .rev()
                    .filter_map(|r| Resolution::try_from(r).ok())
                    .find(|r| r.area_m2() >= precision * precision);
                errors.push(FieldError::new(
                    "by",
                    match finest {
                        Some(r) => format!(
                            "h3:{resolution} is finer than this campaign's public precision \
                             ({precision} m); the finest public resolution is h3:{r}"
                        ),
                        None => format!(
                            "this campaign's public precision ({precision} m) is coarser \
                             than every H3 resolution offered (6 to 10)"
                        ),
                    },
                ));
            }
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

impl Request {
    /// Whether the request asks for nothing finer than district totals, which are live.
    pub fn is_district_totals(&self) -> bool {
        self.by == By::District && self.breakdown.is_none() && self.sum.is_none()
    }

    /// Whether the answer is a publication snapshot (see [`crate::aggregates::publication`]):
    /// for the public, everything but district totals (live). Staff get live figures: they may
    /// read the submissions themselves.
    pub fn is_published_as_snapshot(&self, staff: bool) -> bool {
        !staff && !self.is_district_totals()
    }
}

/// A district as exported.
#[derive(Debug, Clone)]
pub struct District {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub geometry: sqlx::types::Json<Value>,
    /// A point inside the district (for CSV coordinate columns).
    pub lon: f64,
    pub lat: f64,
}

/// One area of an aggregate: a district, "outside every district", or an H3 cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// District code, empty for "outside every district", or the H3 index in hexadecimal.
    pub key: String,
    /// District name (empty for H3 cells).
    pub name: String,
    /// GeoJSON geometry (`null` for "outside every district").
    pub geometry: Value,
    /// A point inside the area, `[lon, lat]`.
    pub center: Option<[f64; 2]>,
    /// For H3 cells: the districts its points fall in, by code, with their part of the count.
    pub parts: Vec<(String, PublishedCount)>,
    pub count: PublishedCount,
    /// One count per breakdown value, in the order of [`Aggregate::values`].
    pub breakdown: Vec<PublishedCount>,
    /// The sum of the `sum` field, withheld with the count.
    pub sum: Option<f64>,
    /// The district's target, if the campaign set one.
    pub target: Option<i64>,
    /// The district's households, when the campaign has them on file.
    pub households: Option<i64>,
}

impl Area {
    /// `count / target`, when both are known.
    pub fn progress(&self) -> Option<f64> {
        match (self.count.count, self.target) {
            (Some(count), Some(target)) if target > 0 => Some(count as f64 / target as f64),
            _ => None,
        }
    }

    /// Contributions per 1,000 households, from the published count alone (withheld with it).
    pub fn per_thousand(&self) -> Option<f64> {
        crate::districts::households::per_thousand(self.count, self.households)
    }
}

/// Aggregates as published.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub request: Request,
    pub k: i64,
    pub areas: Vec<Area>,
    /// Breakdown values (answers), in the form's order, then `""` for "no answer".
    pub values: Vec<String>,
    pub total: PublishedCount,
    /// The total per breakdown value.
    pub value_totals: Vec<PublishedCount>,
    pub sum_total: Option<f64>,
}

/// A district's part of an H3 cell.
#[derive(Debug, Clone)]
struct Part {
    district: usize,
    count: Tally,
    sum: f64,
    withheld: bool,
    /// Its sum is withheld (its count is, or a contribution dominates, or to protect another).
    sum_withheld: bool,
    /// Counts per breakdown value.
    by_value: Vec<Tally>,
}

/// Counted submissions sharing a district, an H3 cell and an answer.
#[derive(Debug, Clone)]
struct Atom {
    /// Index into the districts, `districts.len()` for "outside every district".
    district: usize,
    cell: Option<CellIndex>,
    value: Option<usize>,
    count: Tally,
    sum: f64,
    /// The sum of the absolute values and the largest of them, for the dominance rule.
    magnitude: f64,
    largest: f64,
}

/// A sum is withheld when one contribution makes up more than this share of it (the sum of
/// absolute values): published, it would tell that contribution's answer within a factor of
/// two.
pub const DOMINANCE: f64 = 0.5;

/// Whether one contribution dominates a sum (see [`DOMINANCE`]).
fn dominated(magnitude: f64, largest: f64) -> bool {
    magnitude > 0.0 && largest > DOMINANCE * magnitude
}

/// The breakdown values of a field: the form's options (or true/false), then "no answer".
fn breakdown_values(campaign: &Campaign, key: &str) -> Vec<String> {
    let field = campaign.form.fields.iter().find(|f| f.key == key);
    let mut values: Vec<String> = match field.map(|f| &f.kind) {
        Some(FieldKind::Choice { options }) => options.iter().map(|o| o.value.clone()).collect(),
        Some(FieldKind::Boolean) => vec!["true".into(), "false".into()],
        _ => Vec::new(),
    };
    values.push(String::new());
    values
}

/// Reads the campaign's districts with their outlines and a point inside each.
pub async fn districts(db: &PgPool, campaign_id: i64) -> Result<Vec<District>> {
    Ok(sqlx::query_as!(
        District,
        r#"SELECT id, code, name, ST_AsGeoJSON(geom, 6)::json AS "geometry!: _",
                ST_X(p) AS "lon!", ST_Y(p) AS "lat!"
         FROM districts, ST_PointOnSurface(geom) p WHERE campaign_id = $1 ORDER BY position"#,
        campaign_id,
    )
    .fetch_all(db)
    .await?)
}

/// A maintained counter: of a district (`cell` NULL) or of an H3 cell in a district.
struct CounterRow {
    district_id: Option<i64>,
    cell: Option<i64>,
    count: i64,
    contributors: i64,
}

/// A group of scanned submissions.
struct ScanRow {
    district_id: Option<i64>,
    cell: Option<i64>,
    /// The breakdown's answer ('' for none), when the request has a breakdown.
    value: Option<String>,
    count: i64,
    /// First contributions: the distinct contributors among them.
    contributors: i64,
    /// Of the summed field's answers: their sum, the sum of their absolute values, the largest
    /// absolute value.
    sum: Option<f64>,
    magnitude: Option<f64>,
    largest: Option<f64>,
}

/// Reads the atoms the request needs: from the maintained counters when it asks for plain
/// counts of all time, else by scanning the published submissions. With a `snapshot`, only
/// the submissions published before it (see [`crate::aggregates::publication`]).
async fn atoms(
    db: &PgPool,
    campaign: &Campaign,
    request: &Request,
    snapshot: Option<OffsetDateTime>,
    district_index: &HashMap<i64, usize>,
    outside: usize,
    values: &[String],
) -> Result<Vec<Atom>> {
    let place = |id: Option<i64>| {
        id.and_then(|id| district_index.get(&id).copied())
            .unwrap_or(outside)
    };
    let cell = |h3: Option<i64>| h3.and_then(|h| CellIndex::try_from(h as u64).ok());
    let scan = request.breakdown.is_some()
        || request.sum.is_some()
        || request.from.is_some()
        || request.to.is_some();
    if !scan {
        let rows: Vec<CounterRow> = match request.by {
            By::District => {
                sqlx::query_as!(
                    CounterRow,
                    r#"SELECT district_id, NULL::bigint AS cell, sum(published)::bigint AS "count!",
                            sum(contributors)::bigint AS "contributors!"
                     FROM district_counts WHERE campaign_id = $1 GROUP BY district_id"#,
                    campaign.id,
                )
                .fetch_all(db)
                .await?
            }
            By::H3(_) => {
                sqlx::query_as!(
                    CounterRow,
                    r#"SELECT district_id, cell AS "cell?", published AS count, contributors FROM h3_counts
                     WHERE campaign_id = $1 AND published <> 0"#,
                    campaign.id,
                )
                .fetch_all(db)
                .await?
            }
        };
        // The counters hold every submission: take out those published since the snapshot.
        let mut netted: HashMap<(Option<i64>, Option<i64>), Tally> = HashMap::new();
        for row in rows {
            *netted.entry((row.district_id, row.cell)).or_default() += Tally {
                count: row.count,
                contributors: row.contributors,
            };
        }
        if let Some(since) = snapshot {
            for recent in crate::aggregates::publication::recent(db, campaign.id, since).await? {
                let h3 = recent.h3.filter(|_| matches!(request.by, By::H3(_)));
                netted
                    .entry((recent.district_id, h3))
                    .or_default()
                    .take_out(recent.first_contribution);
            }
        }
        return Ok(netted
            .into_iter()
            .filter(|(_, count)| count.count > 0)
            .map(|((district, h3), count)| Atom {
                district: place(district),
                cell: cell(h3),
                value: None,
                count,
                sum: 0.0,
                magnitude: 0.0,
                largest: 0.0,
            })
            .collect());
    }
    let rows: Vec<ScanRow> = sqlx::query_as!(
        ScanRow,
        r#"SELECT district_id, CASE WHEN $2 THEN h3 END AS cell,
                CASE WHEN $3::text IS NOT NULL THEN COALESCE(answers ->> $3, '') END AS value,
                count(*) AS "count!", count(*) FILTER (WHERE first_contribution) AS "contributors!",
                sum((answers ->> $4)::float8) AS sum,
                sum(abs((answers ->> $4)::float8)) AS magnitude,
                max(abs((answers ->> $4)::float8)) AS largest
         FROM submissions
         WHERE campaign_id = $1 AND status = 'published'
           AND ($5::timestamptz IS NULL OR created_at >= $5)
           AND ($6::timestamptz IS NULL OR created_at < $6)
           AND ($7::timestamptz IS NULL OR published_at < $7)
         GROUP BY 1, 2, 3"#,
        campaign.id,
        matches!(request.by, By::H3(_)),
        request.breakdown.as_deref(),
        request.sum.as_deref(),
        request.from,
        request.to,
        snapshot,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Atom {
            district: place(row.district_id),
            cell: cell(row.cell),
            // An answer that is no longer an option of the form counts as "no answer".
            value: row.value.map(|v| {
                values
                    .iter()
                    .position(|o| *o == v)
                    .unwrap_or(values.len() - 1)
            }),
            count: Tally {
                count: row.count,
                contributors: row.contributors,
            },
            sum: row.sum.unwrap_or(0.0),
            magnitude: row.magnitude.unwrap_or(0.0),
            largest: row.largest.unwrap_or(0.0),
        })
        .collect())
}

/// Computes the aggregates of `request`, protected under the campaign's k.
///
/// The families of linked figures, each protected as a whole (see
/// [`crate::aggregates::protect`]):
/// - districts: the total and the districts, as the districts layer and the tiles show them;
/// - districts × answers: a table whose margins are the districts (fixed as above), the
///   totals per answer and the total;
/// - H3: under each district (fixed as above), its part of each cell of resolution 6, under
///   which the parts of the cell's children at resolution 7, and so on to 10. A cell is the
///   sum of its parts in the districts; it is listed when every part is shown, and not at
///   all otherwise (its presence alone would place 1 to k-1 households);
/// - H3 × answers (staff only): the parts at the requested resolution crossed with the
///   answers, with both margins fixed as above.
///
/// Sums follow the counts: a sum is withheld wherever its count is.
///
/// With a `snapshot`, the figures are those of the submissions published before it (the
/// public's figures finer than a district, see [`crate::aggregates::publication`]); without,
/// of every published submission (district totals, staff).
pub async fn compute(
    db: &PgPool,
    campaign: &Campaign,
    request: &Request,
    snapshot: Option<OffsetDateTime>,
) -> Result<Aggregate> {
    let k = i64::from(campaign.privacy.min_count);
    let districts = districts(db, campaign.id).await?;
    let outside = districts.len();
    let district_index: HashMap<i64, usize> = districts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id, i))
        .collect();
    let values = match &request.breakdown {
        Some(key) => breakdown_values(campaign, key),
        None => Vec::new(),
    };
    let atoms = atoms(
        db,
        campaign,
        request,
        snapshot,
        &district_index,
        outside,
        &values,
    )
    .await?;
    let targets = &campaign.targets;
    let households = match request.by {
        By::District => crate::districts::households::of(db, campaign.id).await?,
        By::H3(_) => Default::default(),
    };

    // Districts: the same rule as the districts layer.
    let mut district_counts = vec![Tally::default(); outside + 1];
    let mut district_sums = vec![0f64; outside + 1];
    let mut district_magnitudes = vec![(0f64, 0f64); outside + 1];
    for atom in &atoms {
        district_counts[atom.district] += atom.count;
        district_sums[atom.district] += atom.sum;
        let m = &mut district_magnitudes[atom.district];
        *m = (m.0 + atom.magnitude, m.1.max(atom.largest));
    }
    let published = crate::aggregates::suppress(&district_counts, k);
    let district_withheld: Vec<bool> = published.cells.iter().map(|c| c.withheld).collect();
    let total = published.total;
    let total_sum: f64 = district_sums.iter().sum();
    // Sums: withheld where their count is, where one contribution dominates, and wherever
    // else that takes for no withheld sum to be recovered from the others.
    let (district_sum_withheld, total_sum_withheld) = protect_district_sums(
        &district_counts,
        &district_withheld,
        total.withheld,
        &district_magnitudes,
    );

    // Districts × answers.
    let (district_breakdown, value_totals) = if values.is_empty() {
        (vec![Vec::new(); outside + 1], Vec::new())
    } else {
        let mut table = vec![vec![Tally::default(); values.len()]; outside + 1];
        for atom in &atoms {
            if let Some(v) = atom.value {
                table[atom.district][v] += atom.count;
            }
        }
        protect_table(
            &table,
            &district_counts,
            &district_withheld,
            total.withheld,
            None,
            k,
        )
    };

    let sum_of = |count: PublishedCount, sum: f64, withheld: bool| {
        request
            .sum
            .as_ref()
            .and_then(|_| count.count.filter(|_| !withheld).map(|_| sum))
    };
    let mut areas = Vec::new();
    match request.by {
        By::District => {
            for (i, d) in districts.iter().enumerate() {
                let count = published.cells[i];
                areas.push(Area {
                    key: d.code.clone(),
                    name: d.name.clone(),
                    geometry: d.geometry.0.clone(),
                    center: Some([d.lon, d.lat]),
                    parts: Vec::new(),
                    count,
                    breakdown: district_breakdown[i].clone(),
                    sum: sum_of(count, district_sums[i], district_sum_withheld[i]),
                    target: targets.get(&d.code).copied(),
                    households: households.get(&d.code).copied(),
                });
            }
            // Points inside the campaign's area but in no district: always listed (withheld
            // below k), so that the row's presence says nothing either.
            {
                let count = published.cells[outside];
                areas.push(Area {
                    key: String::new(),
                    name: "outside every district".into(),
                    geometry: Value::Null,
                    center: None,
                    parts: Vec::new(),
                    count,
                    breakdown: district_breakdown[outside].clone(),
                    sum: sum_of(
                        count,
                        district_sums[outside],
                        district_sum_withheld[outside],
                    ),
                    target: None,
                    households: None,
                });
            }
        }
        By::H3(resolution) => {
            // The whole resolution 6-10 tree, for the counts and (when asked) for the sums:
            // CPU work, kept off the runtime's workers.
            let (parts, sum_parts) = {
                let (atoms, counts, withheld, sum_withheld) = (
                    atoms.clone(),
                    district_counts.clone(),
                    district_withheld.clone(),
                    district_sum_withheld.clone(),
                );
                let total_withheld = total.withheld;
                let sums = request.sum.is_some();
                tokio::task::spawn_blocking(move || {
                    let parts = protect_h3(
                        &atoms,
                        &counts,
                        &withheld,
                        total_withheld,
                        resolution,
                        k,
                        false,
                    );
                    let sum_parts = sums.then(|| {
                        protect_h3(
                            &atoms,
                            &counts,
                            &sum_withheld,
                            total_sum_withheld,
                            resolution,
                            k,
                            true,
                        )
                    });
                    (parts, sum_parts)
                })
                .await
                .map_err(|e| anyhow::anyhow!("protecting H3 cells: {e}"))?
            };
            // Parts at the requested resolution, grouped by cell.
            let mut cells: BTreeMap<CellIndex, Vec<Part>> = BTreeMap::new();
            let mut part_table: Vec<(CellIndex, usize)> = Vec::new();
            for (&(cell, district), &(count, withheld)) in &parts {
                if cell.resolution() != resolution {
                    continue;
                }
                let mut by_value = vec![Tally::default(); values.len()];
                let mut sum = 0.0;
                for atom in &atoms {
                    if atom.district == district
                        && atom.cell.and_then(|c| c.parent(resolution)) == Some(cell)
                    {
                        sum += atom.sum;
                        if let Some(v) = atom.value {
                            by_value[v] += atom.count;
                        }
                    }
                }
                let sum_withheld = withheld
                    || sum_parts
                        .as_ref()
                        .is_some_and(|s| s.get(&(cell, district)).is_none_or(|p| p.1));
                cells.entry(cell).or_default().push(Part {
                    district,
                    count,
                    sum,
                    withheld,
                    sum_withheld,
                    by_value,
                });
                part_table.push((cell, district));
            }
            // H3 × answers (staff only): the parts crossed with the answers.
            let part_breakdown: HashMap<(CellIndex, usize), Vec<PublishedCount>> =
                if values.is_empty() {
                    HashMap::new()
                } else {
                    let rows: Vec<&Part> = part_table
                        .iter()
                        .map(|(c, d)| {
                            cells[c]
                                .iter()
                                .find(|p| p.district == *d)
                                .expect("every part is listed under its cell")
                        })
                        .collect();
                    let table: Vec<Vec<Tally>> = rows.iter().map(|p| p.by_value.clone()).collect();
                    let margins: Vec<Tally> = rows.iter().map(|p| p.count).collect();
                    let withheld: Vec<bool> = rows.iter().map(|p| p.withheld).collect();
                    let fixed_totals: Vec<bool> = value_totals.iter().map(|c| c.withheld).collect();
                    let (cells_out, _) = protect_table(
                        &table,
                        &margins,
                        &withheld,
                        total.withheld,
                        Some(&fixed_totals),
                        k,
                    );
                    part_table.iter().copied().zip(cells_out).collect()
                };
            for (cell, cell_parts) in cells {
                // A cell is the sum of its parts: shown when every part is. A withheld cell is
                // not listed at all: its presence would place between 1 and k-1 households.
                if cell_parts.iter().any(|p| p.withheld) {
                    continue;
                }
                let count =
                    PublishedCount::new(cell_parts.iter().map(|p| p.count.count).sum(), false);
                let breakdown = (0..values.len())
                    .map(|v| {
                        let shown: Option<i64> = cell_parts
                            .iter()
                            .map(|p| part_breakdown[&(cell, p.district)][v].count)
                            .sum();
                        PublishedCount::new(shown.unwrap_or_default(), shown.is_none())
                    })
                    .collect();
                let center = h3o::LatLng::from(cell);
                areas.push(Area {
                    key: cell.to_string(),
                    name: String::new(),
                    geometry: hexagon(cell),
                    center: Some([center.lng(), center.lat()]),
                    parts: cell_parts
                        .iter()
                        .map(|p| {
                            let code = districts
                                .get(p.district)
                                .map(|d| d.code.clone())
                                .unwrap_or_default();
                            (code, PublishedCount::new(p.count.count, p.withheld))
                        })
                        .collect(),
                    count,
                    breakdown,
                    sum: sum_of(
                        count,
                        cell_parts.iter().map(|p| p.sum).sum(),
                        cell_parts.iter().any(|p| p.sum_withheld),
                    ),
                    target: None,
                    households: None,
                });
            }
        }
    }
    Ok(Aggregate {
        request: request.clone(),
        k,
        areas,
        values,
        total,
        value_totals,
        sum_total: sum_of(total, total_sum, total_sum_withheld),
    })
}

/// The H3 cells the public sees at `snapshot`, at every resolution from 6 to 10, with their
/// counts: exactly the cells `compute` lists for `by=h3:{6..10}` (each one listed when every
/// part of it is shown). The map's demand layer draws these very cells
/// ([`crate::tiles::demand`]), so that the map and the downloads are one family, protected once,
/// and comparing them gives nothing the downloads alone do not.
pub async fn published_hexagons(
    db: &PgPool,
    campaign: &Campaign,
    snapshot: Option<OffsetDateTime>,
) -> Result<Vec<(CellIndex, i64)>> {
    let k = i64::from(campaign.privacy.min_count);
    let ids: Vec<i64> = sqlx::query_scalar!(
        "SELECT id FROM districts WHERE campaign_id = $1 ORDER BY position",
        campaign.id,
    )
    .fetch_all(db)
    .await?;
    let outside = ids.len();
    let district_index: HashMap<i64, usize> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let request = Request {
        by: By::H3(Resolution::Ten),
        breakdown: None,
        sum: None,
        from: None,
        to: None,
    };
    let atoms = atoms(
        db,
        campaign,
        &request,
        snapshot,
        &district_index,
        outside,
        &[],
    )
    .await?;
    let mut district_counts = vec![Tally::default(); outside + 1];
    for atom in &atoms {
        district_counts[atom.district] += atom.count;
    }
    let published = crate::aggregates::suppress(&district_counts, k);
    let withheld: Vec<bool> = published.cells.iter().map(|c| c.withheld).collect();
    let parts = tokio::task::spawn_blocking(move || {
        protect_h3(
            &atoms,
            &district_counts,
            &withheld,
            published.total.withheld,
            Resolution::Ten,
            k,
            false,
        )
    })
    .await
    .map_err(|e| anyhow::anyhow!("protecting H3 cells: {e}"))?;
    let mut cells: BTreeMap<CellIndex, Option<i64>> = BTreeMap::new();
    for ((cell, _), (count, withheld)) in parts {
        let entry = cells.entry(cell).or_insert(Some(0));
        *entry = entry.filter(|_| !withheld).map(|n| n + count.count);
    }
    Ok(cells
        .into_iter()
        .filter_map(|(cell, count)| Some((cell, count?)))
        .collect())
}

/// A district × answers table (or H3 parts × answers) with its margins, protected: the row
/// totals are fixed as `row_withheld` says, the grand total as `total_withheld`, and the
/// column totals too when `fixed_columns` is given. Returns the published cells per row and
/// the column totals.
fn protect_table(
    table: &[Vec<Tally>],
    row_totals: &[Tally],
    row_withheld: &[bool],
    total_withheld: bool,
    fixed_columns: Option<&[bool]>,
    k: i64,
) -> (Vec<Vec<PublishedCount>>, Vec<PublishedCount>) {
    let columns = table.first().map_or(0, Vec::len);
    let mut net = Network::new();
    let row_sums: Vec<usize> = table.iter().map(|_| net.sum()).collect();
    let col_sums: Vec<usize> = (0..columns).map(|_| net.sum()).collect();
    let (margin_rows, margin_cols) = (net.sum(), net.sum());
    let mut cells = Vec::new();
    for (r, row) in table.iter().enumerate() {
        cells.push(
            row.iter()
                .enumerate()
                .map(|(c, &v)| net.figure(v, col_sums[c], row_sums[r], k))
                .collect::<Vec<_>>(),
        );
        let total = net.figure(row_totals[r], row_sums[r], margin_rows, k);
        net.fix(total, row_withheld[r]);
    }
    let column_totals: Vec<Tally> = (0..columns)
        .map(|c| table.iter().map(|r| r[c]).sum())
        .collect();
    let column_figures: Vec<usize> = (0..columns)
        .map(|c| {
            let f = net.figure(column_totals[c], margin_cols, col_sums[c], k);
            if let Some(fixed) = fixed_columns {
                net.fix(f, fixed[c]);
            }
            f
        })
        .collect();
    let grand: Tally = row_totals.iter().copied().sum();
    let total = net.figure(grand, margin_rows, margin_cols, k);
    net.fix(total, total_withheld);
    let withheld = net.protect();
    let shown = |i: usize, v: Tally| PublishedCount::new(v.count, withheld[i]);
    let cells = cells
        .iter()
        .zip(table)
        .map(|(ids, row)| ids.iter().zip(row).map(|(&i, &v)| shown(i, v)).collect())
        .collect();
    let totals = column_figures
        .iter()
        .zip(&column_totals)
        .map(|(&i, &v)| shown(i, v))
        .collect();
    (cells, totals)
}

/// The H3 family: under each district its parts of the cells of resolution 6, under those the
/// parts of their children, down to resolution 10. Returns every part of resolution 6 to
/// `finest` with its count and whether it is withheld.
///
/// With `sums`, the family of the sums instead: the districts and the total fixed as given
/// (their sums' status), and a part also withheld from the start when one contribution
/// dominates its sum.
#[allow(clippy::too_many_arguments)]
fn protect_h3(
    atoms: &[Atom],
    district_counts: &[Tally],
    district_withheld: &[bool],
    total_withheld: bool,
    finest: Resolution,
    k: i64,
    sums: bool,
) -> BTreeMap<(CellIndex, usize), (Tally, bool)> {
    // The whole tree to resolution 10 is protected whatever the request, so that every
    // request sees the same withheld parts.
    let mut counts: BTreeMap<(CellIndex, usize), Tally> = BTreeMap::new();
    let mut magnitudes: HashMap<(CellIndex, usize), (f64, f64)> = HashMap::new();
    for atom in atoms {
        let Some(cell) = atom.cell else { continue };
        for r in 6..=10u8 {
            let r = Resolution::try_from(r).expect("6 to 10 are resolutions");
            if let Some(parent) = cell.parent(r) {
                *counts.entry((parent, atom.district)).or_default() += atom.count;
                if sums {
                    let m = magnitudes.entry((parent, atom.district)).or_default();
                    *m = (m.0 + atom.magnitude, m.1.max(atom.largest));
                }
            }
        }
    }
    let mut net = Network::new();
    let top = net.sum();
    let total = net.figure(district_counts.iter().copied().sum(), top, FREE, k);
    net.fix(total, total_withheld);
    let district_sums: Vec<usize> = district_counts
        .iter()
        .zip(district_withheld)
        .map(|(&count, &withheld)| {
            let sum = net.sum();
            let f = net.figure(count, sum, top, k);
            net.fix(f, withheld);
            sum
        })
        .collect();
    // Parents before children: BTreeMap order is by index, so go resolution by resolution.
    let mut nodes: HashMap<(CellIndex, usize), usize> = HashMap::new();
    let mut figures: Vec<((CellIndex, usize), usize)> = Vec::new();
    for r in 6..=10u8 {
        for (&(cell, district), &count) in &counts {
            if u8::from(cell.resolution()) != r {
                continue;
            }
            let part_of = match cell.resolution().pred().filter(|p| u8::from(*p) >= 6) {
                Some(parent) => nodes[&(cell.parent(parent).expect("coarser"), district)],
                None => district_sums[district],
            };
            let total_of = if r < 10 { net.sum() } else { FREE };
            let f = net.figure(count, total_of, part_of, k);
            if let Some(&(magnitude, largest)) = magnitudes.get(&(cell, district))
                && dominated(magnitude, largest)
            {
                net.withhold(f);
            }
            nodes.insert((cell, district), total_of);
            figures.push(((cell, district), f));
        }
    }
    let withheld = net.protect();
    figures
        .into_iter()
        .filter(|((cell, _), _)| cell.resolution() <= finest)
        .map(|(key, f)| (key, (counts[&key], withheld[f])))
        .collect()
}

/// The sums of the districts family (the districts and their total): withheld where the count
/// is, where one contribution dominates (see [`DOMINANCE`]), and then wherever else it takes
/// for no withheld sum to be the total less the published ones. Returns, per district (then
/// "outside"), whether its sum is withheld, and whether the total's is.
fn protect_district_sums(
    counts: &[Tally],
    count_withheld: &[bool],
    total_withheld: bool,
    magnitudes: &[(f64, f64)],
) -> (Vec<bool>, bool) {
    let mut net = Network::new();
    let top = net.sum();
    let total = net.figure(counts.iter().copied().sum(), top, FREE, 0);
    let all = magnitudes
        .iter()
        .fold((0.0, 0.0), |a, m| (a.0 + m.0, f64::max(a.1, m.1)));
    if total_withheld || dominated(all.0, all.1) {
        net.withhold(total);
    }
    let figures: Vec<usize> = counts
        .iter()
        .zip(count_withheld)
        .zip(magnitudes)
        .map(|((&count, &withheld), &(magnitude, largest))| {
            let f = net.figure(count, FREE, top, 0);
            if withheld || dominated(magnitude, largest) {
                net.withhold(f);
            }
            f
        })
        .collect();
    let withheld = net.protect();
    (
        figures.iter().map(|&f| withheld[f]).collect(),
        withheld[total],
    )
}

/// An H3 cell as a GeoJSON Polygon, its ring counter-clockwise and closed (RFC 7946).
pub fn hexagon(cell: CellIndex) -> Value {
    let boundary = cell.boundary();
    let mut ring: Vec<[f64; 2]> = boundary
        .iter()
        .map(|ll| [round6(ll.lng()), round6(ll.lat())])
        .collect();
    let area: f64 = ring
        .iter()
        .zip(ring.iter().cycle().skip(1))
        .map(|(a, b)| a[0] * b[1] - b[0] * a[1])
        .sum();
    if area < 0.0 {
        ring.reverse();
    }
    if let Some(&first) = ring.first() {
        ring.push(first);
    }
    serde_json::json!({"type": "Polygon", "coordinates": [ring]})
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
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
            // a public field (`connection`).
            let public = AggregateQuery {
                by: None,
                from: None,
                to: None,
                breakdown: query.breakdown.filter(|b| b == "connection"),
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
