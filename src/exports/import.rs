//! Bulk import of paper forms and legacy data (`civicmap import`): CSV or GeoJSON, checked row
//! by row exactly like the API, stored all or nothing.
//!
//! 1. Every row is read and turned into the GeoJSON Feature the API would receive, then
//!    checked with [`submissions::parse_feature`](crate::submissions::parse_feature). Every
//!    refused row is reported with its line (CSV) or feature number (GeoJSON) and reason, and
//!    then nothing is stored.
//! 2. The rows go to a temporary table with `COPY`, inside one transaction that also places
//!    them (area, district), inserts them and adds them to the counters. Rows outside the area
//!    are reported by line and the transaction is rolled back. Interrupted at any moment, the
//!    transaction never commits: nothing is half-imported.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::campaigns::Campaign;
use crate::campaigns::form::FieldKind;
use crate::location::WgsPoint;

/// How the file's columns map to a submission.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Column of the longitude (default: `lon`, `longitude`, `lng` or `x`).
    pub lon: Option<String>,
    /// Column of the latitude (default: `lat`, `latitude` or `y`).
    pub lat: Option<String>,
    /// Form field → column or property, for names that differ (default: the field's key).
    pub fields: HashMap<String, String>,
    /// Column or property holding when the form was filled in (RFC 3339 or `YYYY-MM-DD`);
    /// without it, imported rows are dated now.
    pub created_at: Option<String>,
}

/// A refused row.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Line in a CSV file (the header is line 1), feature number (from 1) in GeoJSON.
    pub line: u64,
    pub reason: String,
}

/// Progress of an import, shown by the command line.
pub trait Progress {
    /// Called as rows are read and checked (`done` of `total` when known).
    fn checked(&mut self, done: u64);
    /// Called once storing starts, with the number of rows.
    fn storing(&mut self, rows: u64);
    /// Called as rows are sent to the database.
    fn stored(&mut self, done: u64);
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every row was stored.
    Imported { rows: u64 },
    /// Nothing was stored because of these rows.
    Refused { rows: u64, rejected: Vec<Rejected> },
}

struct Row {
    line: u64,
    point: WgsPoint,
    answers: Map<String, Value>,
    created_at: Option<OffsetDateTime>,
}

/// A text cell as the JSON answer the API would receive for `kind`, or why not.
fn answer(kind: &FieldKind, text: &str) -> Result<Value, String> {
    let text = text.trim();
    match kind {
        FieldKind::Number { .. } => {
            let normalised = text.replace(',', ".");
            normalised
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(|x| json!(x))
                .ok_or_else(|| format!("`{text}` is not a number"))
        }
        FieldKind::Boolean => match text.to_lowercase().as_str() {
            "true" | "1" | "yes" | "oui" | "y" | "o" | "x" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "non" | "n" => Ok(Value::Bool(false)),
            _ => Err(format!("`{text}` is not yes/no (true/false, oui/non, 1/0)")),
        },
        FieldKind::Text { .. } | FieldKind::Choice { .. } => Ok(Value::String(text.to_owned())),
    }
}

/// Checks one row given as the API's Feature; on success the point, answers and date.
fn check(
    campaign: &Campaign,
    line: u64,
    feature: &Value,
    created_at: Option<&str>,
) -> Result<Row, Rejected> {
    let reject = |reason: String| Rejected { line, reason };
    let submission = crate::submissions::parse_feature(campaign, feature).map_err(|errors| {
        reject(
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.detail))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let created_at = match created_at.map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => {
            let t = super::parse_instant("created_at", text)
                .map_err(|e| reject(format!("{}: {}", e.field, e.detail)))?;
            if t > OffsetDateTime::now_utc() {
                return Err(reject(format!("created_at: `{text}` is in the future")));
            }
            Some(t)
        }
    };
    Ok(Row {
        line,
        point: submission.point,
        answers: submission.answers,
        created_at,
    })
}

const LON_NAMES: [&str; 4] = ["lon", "longitude", "lng", "x"];
const LAT_NAMES: [&str; 3] = ["lat", "latitude", "y"];

/// Reads and checks a CSV file (`,` or `;` separated, UTF-8 with or without BOM).
fn read_csv(
    campaign: &Campaign,
    bytes: &[u8],
    mapping: &Mapping,
    progress: &mut dyn Progress,
) -> Result<(Vec<Row>, Vec<Rejected>), anyhow::Error> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let delimiter = if first_line.iter().filter(|&&b| b == b';').count()
        > first_line.iter().filter(|&&b| b == b',').count()
    {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let find = |name: &str| headers.iter().position(|h| h == name);
    let pick = |given: &Option<String>, defaults: &[&str], what: &str| -> anyhow::Result<usize> {
        match given {
            Some(name) => find(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "no column `{name}` for the {what} (columns: {})",
                    headers.join(", ")
                )
            }),
            None => defaults.iter().find_map(|n| find(n)).ok_or_else(|| {
                anyhow::anyhow!(
                    "no {what} column: name it {} or pass --{}",
                    defaults.join(", "),
                    &what[..3]
                )
            }),
        }
    };
    let lon = pick(&mapping.lon, &LON_NAMES, "longitude")?;
    let lat = pick(&mapping.lat, &LAT_NAMES, "latitude")?;
    let created_at = match &mapping.created_at {
        Some(name) => Some(find(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no column `{name}` for the date (columns: {})",
                headers.join(", ")
            )
        })?),
        None => None,
    };
    for (field, column) in &mapping.fields {
        if !campaign.form.fields.iter().any(|f| &f.key == field) {
            anyhow::bail!("--map {field}={column}: the campaign has no field `{field}`");
        }
        if find(column).is_none() {
            anyhow::bail!(
                "--map {field}={column}: no column `{column}` (columns: {})",
                headers.join(", ")
            );
        }
    }
    let columns: Vec<(usize, &crate::campaigns::form::Field)> = campaign
        .form
        .fields
        .iter()
        .filter_map(|f| {
            let column = mapping
                .fields
                .get(&f.key)
                .map_or(f.key.as_str(), String::as_str);
            find(column).map(|i| (i, f))
        })
        .collect();
    let (mut rows, mut rejected) = (Vec::new(), Vec::new());
    let mut record = csv::StringRecord::new();
    let mut count = 0u64;
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                rejected.push(Rejected {
                    line,
                    reason: format!("unreadable CSV: {e}"),
                });
                continue;
            }
        }
        count += 1;
        if count.is_multiple_of(10_000) {
            progress.checked(count);
        }
        let number = |i: usize| -> Value {
            let text = record.get(i).unwrap_or_default().trim().replace(',', ".");
            text.parse::<f64>().map_or(
                Value::String(record.get(i).unwrap_or_default().to_owned()),
                |x| json!(x),
            )
        };
        let mut answers = Map::new();
        let mut problems = Vec::new();
        for (i, field) in &columns {
            let text = record.get(*i).unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            match answer(&field.kind, text) {
                Ok(value) => {
                    answers.insert(field.key.clone(), value);
                }
                Err(reason) => problems.push(format!("properties.{}: {reason}", field.key)),
            }
        }
        if !problems.is_empty() {
            rejected.push(Rejected {
                line,
                reason: problems.join("; "),
            });
            continue;
        }
        let feature = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [number(lon), number(lat)]}, "properties": answers});
        match check(
            campaign,
            line,
            &feature,
            created_at.and_then(|i| record.get(i)),
        ) {
            Ok(row) => rows.push(row),
            Err(r) => rejected.push(r),
        }
    }
    progress.checked(count);
    Ok((rows, rejected))
}

/// Reads and checks a GeoJSON FeatureCollection of Points.
fn read_geojson(
    campaign: &Campaign,
    bytes: &[u8],
    mapping: &Mapping,
    progress: &mut dyn Progress,
) -> Result<(Vec<Row>, Vec<Rejected>), anyhow::Error> {
    let collection: Value =
        serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("not valid JSON: {e}"))?;
    let features = collection
        .get("features")
        .and_then(Value::as_array)
        .filter(|_| collection.get("type").and_then(Value::as_str) == Some("FeatureCollection"))
        .ok_or_else(|| anyhow::anyhow!("not a GeoJSON FeatureCollection"))?;
    let (mut rows, mut rejected) = (Vec::new(), Vec::new());
    for (i, feature) in features.iter().enumerate() {
        let line = i as u64 + 1;
        if line.is_multiple_of(10_000) {
            progress.checked(line);
        }
        let properties = feature
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut answers = Map::new();
        for field in &campaign.form.fields {
            let name = mapping.fields.get(&field.key).unwrap_or(&field.key);
            if let Some(value) = properties.get(name).filter(|v| !v.is_null()) {
                answers.insert(field.key.clone(), value.clone());
            }
        }
        let created_at = mapping
            .created_at
            .as_ref()
            .and_then(|c| properties.get(c))
            .and_then(Value::as_str);
        let api_feature = json!({"type": feature.get("type"), "geometry": feature.get("geometry"), "properties": answers});
        match check(campaign, line, &api_feature, created_at) {
            Ok(row) => rows.push(row),
            Err(r) => rejected.push(r),
        }
    }
    progress.checked(features.len() as u64);
    Ok((rows, rejected))
}

/// Escapes a value for PostgreSQL's COPY text format.
fn copy_text(out: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Rows sent to `COPY` per message.
const COPY_BATCH: usize = 10_000;

/// Imports `path` into the campaign `slug`. Nothing is stored unless every row is accepted.
pub async fn import(
    pool: &PgPool,
    slug: &str,
    path: &Path,
    mapping: &Mapping,
    progress: &mut dyn Progress,
) -> anyhow::Result<Outcome> {
    let campaign = crate::campaigns::get(pool, slug).await?;
    if campaign.bounds.is_none() {
        anyhow::bail!("campaign `{slug}` has no area and no districts yet: nothing can be placed");
    }
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_lowercase();
    let (rows, rejected) = match extension.as_str() {
        "csv" | "txt" => read_csv(&campaign, &bytes, mapping, progress)?,
        "geojson" | "json" => read_geojson(&campaign, &bytes, mapping, progress)?,
        other => anyhow::bail!("cannot tell the format of `.{other}` files: use .csv or .geojson"),
    };
    let total = (rows.len() + rejected.len()) as u64;
    if !rejected.is_empty() {
        return Ok(Outcome::Refused {
            rows: total,
            rejected,
        });
    }
    progress.storing(total);

    let mut tx = pool.begin().await?;
    // Settings cannot change under the import (an update locks the campaign row).
    let version: i64 =
        sqlx::query_scalar("SELECT config_version FROM campaigns WHERE id = $1 FOR SHARE")
            .bind(campaign.id)
            .fetch_one(&mut *tx)
            .await?;
    if version != campaign.config_version {
        anyhow::bail!(
            "campaign `{slug}` changed while the file was being checked; run the import again"
        );
    }
    sqlx::query(
        "CREATE TEMPORARY TABLE import_rows (line bigint, id uuid, lon float8, lat float8,
             answers jsonb, created_at timestamptz, h3 bigint) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw("COPY import_rows FROM STDIN (FORMAT text)")
        .await?;
    let mut buffer = Vec::with_capacity(2 << 20);
    for (i, row) in rows.iter().enumerate() {
        let created_at = row
            .created_at
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| "\\N".to_owned());
        buffer.extend(
            format!(
                "{}\t{}\t{:?}\t{:?}\t",
                row.line,
                uuid::Uuid::now_v7(),
                row.point.lon(),
                row.point.lat()
            )
            .bytes(),
        );
        copy_text(&mut buffer, &serde_json::to_string(&row.answers)?);
        buffer.extend(format!("\t{created_at}\t{}\n", row.point.h3_cell()).bytes());
        if (i + 1) % COPY_BATCH == 0 {
            copy.send(std::mem::take(&mut buffer)).await?;
            progress.stored(i as u64 + 1);
        }
    }
    copy.send(buffer).await?;
    copy.finish().await?;
    progress.stored(total);

    // Place every row, refuse those outside the area.
    sqlx::query(
        "CREATE TEMPORARY TABLE import_placed ON COMMIT DROP AS
         SELECT i.*, pt.g, d.id AS district_id FROM import_rows i
         CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS g) pt
         LEFT JOIN LATERAL (
            SELECT d.id FROM districts d
            WHERE d.campaign_id = $1 AND ST_Intersects(d.geom, pt.g)
            ORDER BY d.position LIMIT 1) d ON true",
    )
    .bind(campaign.id)
    .execute(&mut *tx)
    .await?;
    let outside: Vec<i64> = sqlx::query_scalar(
        "SELECT line FROM import_placed p
         WHERE CASE WHEN $2 THEN district_id IS NULL
                    ELSE NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = $1 AND ST_Intersects(c.effective_area, p.g))
               END
         ORDER BY line",
    )
    .bind(campaign.id)
    .bind(campaign.by_districts)
    .fetch_all(&mut *tx)
    .await?;
    if !outside.is_empty() {
        tx.rollback().await?;
        let rejected = outside
            .into_iter()
            .map(|line| Rejected {
                line: line as u64,
                reason: "geometry: is outside the campaign's area".into(),
            })
            .collect();
        return Ok(Outcome::Refused {
            rows: total,
            rejected,
        });
    }
    // Paper forms are entered by staff: published at once, with no edit token (nobody holds
    // one; the stored hash matches no token).
    sqlx::query(
        "WITH created AS (
            INSERT INTO submissions (id, campaign_id, district_id, geom, answers, status, edit_token_hash, h3, created_at, updated_at)
            SELECT id, $1, district_id, g, answers, 'published', '\\x00'::bytea, h3,
                   COALESCE(created_at, now()), now()
            FROM import_placed
            RETURNING district_id, geom, h3),
         counted AS (
            INSERT INTO district_counts (campaign_id, district_id, shard, published, changes)
            SELECT $1, district_id, 0, count(*), count(*) FROM created GROUP BY district_id
            ON CONFLICT ON CONSTRAINT district_counts_key
            DO UPDATE SET published = district_counts.published + EXCLUDED.published,
                          changes = district_counts.changes + EXCLUDED.changes),
         h3 AS (
            INSERT INTO h3_counts (campaign_id, district_id, cell, published)
            SELECT $1, district_id, h3, count(*) FROM created GROUP BY district_id, h3
            ON CONFLICT ON CONSTRAINT h3_counts_key
            DO UPDATE SET published = h3_counts.published + EXCLUDED.published)
         INSERT INTO demand_cells (campaign_id, cx, cy, published)
         SELECT $1, floor(ST_X(g) / $2)::bigint, floor(ST_Y(g) / $2)::bigint, count(*)
         FROM (SELECT ST_Transform(geom, 3857) AS g FROM created) c
         WHERE $2 IS NOT NULL
         GROUP BY 2, 3
         ON CONFLICT (campaign_id, cx, cy)
         DO UPDATE SET published = demand_cells.published + EXCLUDED.published",
    )
    .bind(campaign.id)
    .bind(campaign.grid_size)
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        crate::audit::Entry {
            actor: crate::audit::Actor::Cli,
            action: "import",
            campaign_id: Some(campaign.id),
            subject: None,
            reason: None,
            details: json!({"file": path.file_name().map(|n| n.to_string_lossy()), "rows": total}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Outcome::Imported { rows: total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let mut out = Vec::new();
        copy_text(&mut out, "a\\b\tc\nd");
        assert_eq!(out, b"a\\\\b\\tc\\nd");
    }

    #[test]
    fn csv_cells_become_the_answers_the_api_would_get() {
        let number = FieldKind::Number {
            min: None,
            max: None,
            integer: true,
        };
        assert_eq!(answer(&number, " 3 "), Ok(json!(3.0)));
        assert_eq!(answer(&number, "2,5"), Ok(json!(2.5)));
        assert!(
            answer(&number, "trois")
                .unwrap_err()
                .contains("not a number")
        );
        assert_eq!(answer(&FieldKind::Boolean, "Oui"), Ok(json!(true)));
        assert!(answer(&FieldKind::Boolean, "peut-être").is_err());
    }
}
