//! The figures of a download (`aggregates.{geojson,csv}`, `civicmap export`, the report): by
//! district or by H3 hexagon, optionally split by an answer or summed, either as the public
//! reads them ([`public`]: live district totals, withheld below k, and estimates released
//! with differential privacy for everything finer) or as staff do ([`exact`]: every figure as
//! it is, for internal work).

use std::collections::{BTreeMap, HashMap};

use h3o::{CellIndex, Resolution};
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::estimates::{self, Released};
use super::{PublishedCount, Tally};
use crate::campaigns::Campaign;
use crate::campaigns::form::FieldKind;

/// What can go wrong computing figures.
#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A bug or an impossible state.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

type Result<T, E = FiguresError> = std::result::Result<T, E>;

/// What the figures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum By {
    /// The campaign's districts (and "outside every district").
    District,
    /// H3 cells of a resolution from 6 to 10.
    H3(Resolution),
}

impl By {
    /// As written in a query string.
    pub fn as_query(self) -> String {
        match self {
            By::District => "district".to_owned(),
            By::H3(r) => format!("h3:{}", u8::from(r)),
        }
    }
}

/// A request for aggregates, checked against the campaign (`crate::exports::AggregateQuery`).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub by: By,
    /// A choice or boolean field whose answers split each count.
    pub breakdown: Option<String>,
    /// A number field summed in each area.
    pub sum: Option<String>,
    /// Only submissions created at or after this instant (staff).
    pub from: Option<OffsetDateTime>,
    /// Only submissions created before this instant (staff).
    pub to: Option<OffsetDateTime>,
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
    /// For H3 cells: the codes of the districts it meets, with (staff) their part of the count.
    pub parts: Vec<(String, Option<i64>)>,
    pub count: PublishedCount,
    /// One count per breakdown value, in the order of [`Aggregate::values`].
    pub breakdown: Vec<PublishedCount>,
    /// The sum of the `sum` field (`None` withheld).
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

/// Where an aggregate's figures come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Basis {
    /// Every figure exact, without k: staff's, not for publication.
    Exact,
    /// The public's: district totals exact and live (withheld below k), everything finer
    /// estimated from the releases (none yet: `None`).
    Public(Option<ReleaseInfo>),
}

/// The release that the estimates of a public aggregate come from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseInfo {
    pub released_at: OffsetDateTime,
    /// It counts the contributions published before this instant.
    pub period_end: OffsetDateTime,
    /// The most any contribution counted spent (ε).
    pub epsilon: f64,
    pub releases: usize,
    pub next_release: OffsetDateTime,
}

impl ReleaseInfo {
    /// What `released` says of itself, for `campaign`.
    pub fn of(released: &Released, campaign: &Campaign) -> Self {
        Self {
            released_at: released.released_at,
            period_end: released.period_end,
            epsilon: released.epsilon,
            releases: released.releases,
            next_release: super::release::next_release(
                campaign.privacy.release_every,
                released.period_end,
            ),
        }
    }
}

/// Aggregates, as computed for a download.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub request: Request,
    pub k: i64,
    pub basis: Basis,
    pub areas: Vec<Area>,
    /// Breakdown values (answers), in the form's order, then `""` for "no answer".
    pub values: Vec<String>,
    pub total: PublishedCount,
    /// The total per breakdown value.
    pub value_totals: Vec<PublishedCount>,
    pub sum_total: Option<f64>,
}

impl Aggregate {
    /// Whether figures finer than district totals are estimates (public) rather than exact.
    pub fn estimated(&self) -> bool {
        matches!(self.basis, Basis::Public(_))
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

/// Reads the campaign's districts with their outlines and a point inside each.
pub async fn districts(db: &PgPool, campaign_id: i64) -> sqlx::Result<Vec<District>> {
    sqlx::query_as!(
        District,
        r#"SELECT id, code, name, ST_AsGeoJSON(geom, 6)::json AS "geometry!: _",
                ST_X(p) AS "lon!", ST_Y(p) AS "lat!"
         FROM districts, ST_PointOnSurface(geom) p WHERE campaign_id = $1 ORDER BY position"#,
        campaign_id,
    )
    .fetch_all(db)
    .await
}

/// The breakdown values of a field: the form's options (or true/false), then "no answer".
pub fn breakdown_values(campaign: &Campaign, key: &str) -> Vec<String> {
    let field = campaign.form.fields.iter().find(|f| f.key == key);
    let mut values: Vec<String> = match field.map(|f| &f.kind) {
        Some(FieldKind::Choice { options }) => options.iter().map(|o| o.value.clone()).collect(),
        Some(FieldKind::Boolean) => vec!["true".into(), "false".into()],
        _ => Vec::new(),
    };
    values.push(String::new());
    values
}

/// The live tallies of the districts in the order of `districts`, then "outside".
async fn live_tallies(db: &PgPool, campaign_id: i64, districts: &[District]) -> Result<Vec<Tally>> {
    let counts = super::district_counts(db, campaign_id).await?;
    let by_id: HashMap<i64, Tally> = counts.districts.iter().copied().collect();
    let mut tallies: Vec<Tally> = districts
        .iter()
        .map(|d| by_id.get(&d.id).copied().unwrap_or_default())
        .collect();
    tallies.push(counts.outside);
    Ok(tallies)
}

/// The public's aggregate: district totals live and exact, withheld below k as the districts
/// layer withholds them; splits, sums and hexagons estimated from `released` (the campaign's
/// releases; `None` before the first, when they are all withheld).
pub async fn public(
    db: &PgPool,
    campaign: &Campaign,
    request: &Request,
    released: Option<&Released>,
) -> Result<Aggregate> {
    let k = i64::from(campaign.privacy.min_count);
    let basis = Basis::Public(released.map(|r| ReleaseInfo::of(r, campaign)));
    match request.by {
        By::H3(resolution) => {
            let hexagons = released.map_or_else(Vec::new, |r| {
                estimates::hexagons(r, campaign.privacy.map_resolution, resolution, k)
            });
            let total: i64 = hexagons.iter().map(|h| h.count).sum();
            Ok(Aggregate {
                request: request.clone(),
                k,
                basis,
                areas: hexagons
                    .into_iter()
                    .map(|h| {
                        hexagon_area(
                            h.cell,
                            h.districts.into_iter().map(|d| (d, None)).collect(),
                            PublishedCount::new(h.count, false),
                        )
                    })
                    .collect(),
                values: Vec::new(),
                total: PublishedCount::new(total, total < k),
                value_totals: Vec::new(),
                sum_total: None,
            })
        }
        By::District => {
            let districts = districts(db, campaign.id).await?;
            let live = live_tallies(db, campaign.id, &districts).await?;
            let published = super::suppress(&live, k);
            let mut codes: Vec<String> = districts.iter().map(|d| d.code.clone()).collect();
            codes.push(String::new());
            // The values the releases measure (no "no answer" column for a required question).
            let values = request
                .breakdown
                .as_ref()
                .and_then(|key| campaign.form.fields.iter().find(|f| &f.key == key))
                .map(super::budget::split_values)
                .unwrap_or_default();
            let (breakdowns, value_totals) = match (&request.breakdown, released) {
                (Some(field), Some(r)) => {
                    estimates::splits(&r.sums, field, &values, &codes, &live, &published, k)
                }
                (Some(_), None) => (
                    vec![vec![PublishedCount::WITHHELD; values.len()]; codes.len()],
                    vec![PublishedCount::WITHHELD; values.len()],
                ),
                (None, _) => (vec![Vec::new(); codes.len()], Vec::new()),
            };
            let (sums, sum_total) = match &request.sum {
                Some(field) => {
                    let range = campaign
                        .form
                        .fields
                        .iter()
                        .find(|f| &f.key == field)
                        .and_then(|f| f.kind.public_range());
                    match (released, range) {
                        (Some(r), Some(range)) => {
                            estimates::sums_of(&r.sums, field, range, &codes, &live, &published)
                        }
                        _ => (vec![None; codes.len()], None),
                    }
                }
                None => (vec![None; codes.len()], None),
            };
            let households = crate::districts::households::of(db, campaign.id).await?;
            let mut areas = district_areas(campaign, &districts, &households, |i| {
                (
                    published.cells[i],
                    breakdowns[i].clone(),
                    sums[i].map(|s| s as f64),
                )
            });
            areas.shrink_to_fit();
            Ok(Aggregate {
                request: request.clone(),
                k,
                basis,
                areas,
                values,
                total: published.total,
                value_totals,
                sum_total: sum_total.map(|s| s as f64),
            })
        }
    }
}

/// The areas of `districts` then "outside every district" (always listed, so that its
/// presence says nothing), with the figures `figures(i)` gives the i-th.
fn district_areas(
    campaign: &Campaign,
    districts: &[District],
    households: &BTreeMap<String, i64>,
    figures: impl Fn(usize) -> (PublishedCount, Vec<PublishedCount>, Option<f64>),
) -> Vec<Area> {
    let mut areas: Vec<Area> = districts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (count, breakdown, sum) = figures(i);
            Area {
                key: d.code.clone(),
                name: d.name.clone(),
                geometry: d.geometry.0.clone(),
                center: Some([d.lon, d.lat]),
                parts: Vec::new(),
                count,
                breakdown,
                sum,
                target: campaign.targets.get(&d.code).copied(),
                households: households.get(&d.code).copied(),
            }
        })
        .collect();
    let (count, breakdown, sum) = figures(districts.len());
    areas.push(Area {
        key: String::new(),
        name: "outside every district".into(),
        geometry: Value::Null,
        center: None,
        parts: Vec::new(),
        count,
        breakdown,
        sum,
        target: None,
        households: None,
    });
    areas
}

fn hexagon_area(cell: CellIndex, parts: Vec<(String, Option<i64>)>, count: PublishedCount) -> Area {
    let center = h3o::LatLng::from(cell);
    Area {
        key: cell.to_string(),
        name: String::new(),
        geometry: hexagon(cell),
        center: Some([center.lng(), center.lat()]),
        parts,
        count,
        breakdown: Vec::new(),
        sum: None,
        target: None,
        households: None,
    }
}

/// A group of scanned submissions.
struct ScanRow {
    district_id: Option<i64>,
    cell: Option<i64>,
    /// The breakdown's answer ('' for none), when the request has a breakdown.
    value: Option<String>,
    count: i64,
    /// The sum of the summed field's answers.
    sum: Option<f64>,
}

/// Staff's aggregate: every figure exact, from the published submissions as they are now
/// (within the request's time window), without k. Not for publication.
pub async fn exact(db: &PgPool, campaign: &Campaign, request: &Request) -> Result<Aggregate> {
    let k = i64::from(campaign.privacy.min_count);
    let districts = districts(db, campaign.id).await?;
    let outside = districts.len();
    let index = super::districts::positions(districts.iter().map(|d| d.id));
    let values = match &request.breakdown {
        Some(key) => breakdown_values(campaign, key),
        None => Vec::new(),
    };
    let rows: Vec<ScanRow> = sqlx::query_as!(
        ScanRow,
        r#"SELECT district_id, CASE WHEN $2 THEN h3 END AS cell,
                CASE WHEN $3::text IS NOT NULL THEN COALESCE(answers ->> $3, '') END AS value,
                count(*) AS "count!", sum((answers ->> $4)::float8) AS sum
         FROM submissions
         WHERE campaign_id = $1 AND status = 'published'
           AND ($5::timestamptz IS NULL OR created_at >= $5)
           AND ($6::timestamptz IS NULL OR created_at < $6)
         GROUP BY 1, 2, 3"#,
        campaign.id,
        matches!(request.by, By::H3(_)),
        request.breakdown.as_deref(),
        request.sum.as_deref(),
        request.from,
        request.to,
    )
    .fetch_all(db)
    .await?;
    let place = |id: Option<i64>| id.and_then(|id| index.get(&id).copied()).unwrap_or(outside);
    // An answer that is no longer an option of the form counts as "no answer".
    let value_of = |v: &Option<String>| {
        v.as_ref().map(|v| {
            values
                .iter()
                .position(|o| o == v)
                .unwrap_or(values.len() - 1)
        })
    };
    let shown = |n: i64| PublishedCount::new(n, false);
    let mut value_totals = vec![0i64; values.len()];
    let mut total = 0i64;
    let mut sum_total = 0f64;
    for row in &rows {
        total += row.count;
        sum_total += row.sum.unwrap_or(0.0);
        if let Some(v) = value_of(&row.value) {
            value_totals[v] += row.count;
        }
    }
    let areas = match request.by {
        By::District => {
            let mut counts = vec![0i64; outside + 1];
            let mut sums = vec![0f64; outside + 1];
            let mut splits = vec![vec![0i64; values.len()]; outside + 1];
            for row in &rows {
                let d = place(row.district_id);
                counts[d] += row.count;
                sums[d] += row.sum.unwrap_or(0.0);
                if let Some(v) = value_of(&row.value) {
                    splits[d][v] += row.count;
                }
            }
            let households = crate::districts::households::of(db, campaign.id).await?;
            district_areas(campaign, &districts, &households, |i| {
                (
                    shown(counts[i]),
                    splits[i].iter().map(|&n| shown(n)).collect(),
                    request.sum.as_ref().map(|_| sums[i]),
                )
            })
        }
        By::H3(resolution) => {
            // Per cell of the resolution: its count, per district and per answer, and its sum.
            type Cell = (BTreeMap<usize, i64>, Vec<i64>, f64);
            let mut cells: BTreeMap<CellIndex, Cell> = BTreeMap::new();
            for row in &rows {
                let Some(cell) = row
                    .cell
                    .and_then(|h| CellIndex::try_from(h as u64).ok())
                    .and_then(|c| c.parent(resolution))
                else {
                    continue;
                };
                let entry = cells
                    .entry(cell)
                    .or_insert_with(|| (BTreeMap::new(), vec![0; values.len()], 0.0));
                *entry.0.entry(place(row.district_id)).or_default() += row.count;
                if let Some(v) = value_of(&row.value) {
                    entry.1[v] += row.count;
                }
                entry.2 += row.sum.unwrap_or(0.0);
            }
            cells
                .into_iter()
                .map(|(cell, (parts, splits, sum))| {
                    let count = parts.values().sum();
                    let parts = parts
                        .into_iter()
                        .map(|(d, n)| {
                            let code = districts.get(d).map(|d| d.code.clone()).unwrap_or_default();
                            (code, Some(n))
                        })
                        .collect();
                    let mut area = hexagon_area(cell, parts, shown(count));
                    area.breakdown = splits.into_iter().map(shown).collect();
                    area.sum = request.sum.as_ref().map(|_| sum);
                    area
                })
                .collect()
        }
    };
    Ok(Aggregate {
        request: request.clone(),
        k,
        basis: Basis::Exact,
        areas,
        values,
        total: shown(total),
        value_totals: value_totals.into_iter().map(shown).collect(),
        sum_total: request.sum.as_ref().map(|_| sum_total),
    })
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
