//! Bulk import of paper forms and legacy data (`civicmap import`): CSV or GeoJSON, checked row
//! by row exactly like the API, stored all or nothing.
//!
//! 1. On a thread of its own, every row is read and turned into the GeoJSON Feature the API
//!    would receive, then checked with
//!    [`submissions::parse_feature`](crate::submissions::parse_feature) on every core. Every
//!    refused row is reported with its line (CSV) or feature number (GeoJSON) and reason.
//! 2. Meanwhile, accepted rows go to a temporary table with `COPY`, inside one transaction that
//!    then places them (area, district), inserts them and adds them to the counters. If any row
//!    was refused, or lies outside the area (reported by line), the transaction is rolled back.
//!    Interrupted at any moment, the transaction never commits: nothing is half-imported.

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

/// Progress shown to nobody (the demo, tests).
pub struct Quiet;

impl Progress for Quiet {
    fn checked(&mut self, _: u64) {}
    fn storing(&mut self, _: u64) {}
    fn stored(&mut self, _: u64) {}
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
    /// Its district, when placed before the database (see [`Districts::place`]).
    district: Option<i64>,
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
            let t = crate::exports::parse_instant("created_at", text)
                .map_err(|e| reject(format!("{}: {}", e.field, e.detail)))?;
            if t > OffsetDateTime::now_utc() {
                return Err(reject(format!("created_at: `{text}` is in the future")));
            }
            Some(t)
        }
    };
    Ok(Row {
        district: None,
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
    on_rows: &mut dyn FnMut(Vec<Row>),
) -> Result<(u64, Vec<Rejected>), anyhow::Error> {
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
    let mut rejected = Vec::new();
    // Read every record first, then check them on every core, a chunk at a time, handing each
    // chunk's rows on while the next is checked.
    let mut records: Vec<(u64, csv::StringRecord)> = Vec::new();
    let mut unreadable = 0u64;
    loop {
        let line = reader.position().line();
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => records.push((line, record)),
            Err(e) => {
                unreadable += 1;
                rejected.push(Rejected {
                    line,
                    reason: format!("unreadable CSV: {e}"),
                })
            }
        }
        if records.len().is_multiple_of(100_000) {
            progress.checked(records.len() as u64);
        }
    }
    let check_record = |line: u64, record: &csv::StringRecord| -> Result<Row, Rejected> {
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
            return Err(Rejected {
                line,
                reason: problems.join("; "),
            });
        }
        let feature = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [number(lon), number(lat)]}, "properties": answers});
        check(
            campaign,
            line,
            &feature,
            created_at.and_then(|i| record.get(i)),
        )
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut done = 0;
    for part in records.chunks(CHECK_CHUNK) {
        let size = part.len().div_ceil(threads).max(1);
        let checked: Vec<Vec<Result<Row, Rejected>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = part
                .chunks(size)
                .map(|piece| {
                    scope.spawn(move || {
                        piece
                            .iter()
                            .map(|(line, record)| check_record(*line, record))
                            .collect()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("checking a row never panics"))
                .collect()
        });
        let mut rows = Vec::with_capacity(part.len());
        for result in checked.into_iter().flatten() {
            match result {
                Ok(row) => rows.push(row),
                Err(r) => rejected.push(r),
            }
        }
        on_rows(rows);
        done += part.len() as u64;
        progress.checked(done);
    }
    rejected.sort_by_key(|r| r.line);
    Ok((records.len() as u64 + unreadable, rejected))
}

/// Reads and checks a GeoJSON FeatureCollection of Points.
fn read_geojson(
    campaign: &Campaign,
    bytes: &[u8],
    mapping: &Mapping,
    progress: &mut dyn Progress,
    on_rows: &mut dyn FnMut(Vec<Row>),
) -> Result<(u64, Vec<Rejected>), anyhow::Error> {
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
    on_rows(rows);
    Ok((features.len() as u64, rejected))
}

/// Escapes a value for PostgreSQL's COPY text format (also used by the address import).
pub(crate) fn copy_text(out: &mut Vec<u8>, text: &str) {
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

/// Rows checked together (on every core) before they are handed to `COPY`.
const CHECK_CHUNK: usize = 50_000;

/// What the checking thread tells the storing side.
enum Checked {
    /// This many rows are checked so far.
    Progress(u64),
    /// Accepted rows, in file order.
    Rows(Vec<Row>),
}

/// Progress of the checking thread, sent to the storing side.
struct SendProgress(tokio::sync::mpsc::Sender<Checked>);

impl Progress for SendProgress {
    fn checked(&mut self, done: u64) {
        let _ = self.0.blocking_send(Checked::Progress(done));
    }
    fn storing(&mut self, _: u64) {}
    fn stored(&mut self, _: u64) {}
}

/// The campaign's districts as geo polygons, in import order, to place rows before they reach
/// the database.
struct Districts(Vec<(i64, geo::Rect<f64>, geo::MultiPolygon<f64>)>);

impl Districts {
    async fn load(db: &mut sqlx::PgConnection, campaign_id: i64) -> anyhow::Result<Self> {
        use geo::BoundingRect;
        let rows = sqlx::query!(
            r#"SELECT id, ST_AsGeoJSON(geom) AS "geojson!" FROM districts WHERE campaign_id = $1 ORDER BY position"#,
            campaign_id,
        )
        .fetch_all(&mut *db)
        .await?;
        let mut districts = Vec::new();
        for row in rows {
            let id = row.id;
            let geometry: geojson::Geometry = row.geojson.parse()?;
            let shape = match geo::Geometry::<f64>::try_from(geometry)? {
                geo::Geometry::MultiPolygon(m) => m,
                geo::Geometry::Polygon(p) => geo::MultiPolygon(vec![p]),
                other => anyhow::bail!("district {id} is not polygonal: {other:?}"),
            };
            if let Some(bounds) = shape.bounding_rect() {
                districts.push((id, bounds, shape));
            }
        }
        Ok(Self(districts))
    }

    /// The first district (in import order) whose outline contains `point` or has it on its
    /// border: the rule `store_batch` applies with PostGIS, here with the geo crate's robust
    /// predicates. `None` for a point in no district, which the database then places.
    fn place(&self, point: WgsPoint) -> Option<i64> {
        use geo::Intersects;
        let p = geo::Point::new(point.lon(), point.lat());
        self.0
            .iter()
            .find(|(_, bounds, shape)| bounds.intersects(&p) && shape.intersects(&p))
            .map(|(id, _, _)| *id)
    }
}

/// Bytes sent to `COPY` per message.
const COPY_BYTES: usize = 1 << 20;

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
    if !matches!(extension.as_str(), "csv" | "txt" | "geojson" | "json") {
        anyhow::bail!("cannot tell the format of `.{extension}` files: use .csv or .geojson");
    }
    // A connection of its own, so that the rows stay in memory rather than in temporary files
    // (`temp_buffers` can only be set before a session's first temporary table).
    let mut conn: sqlx::PgConnection =
        <sqlx::PgConnection as sqlx::Connection>::connect_with(&pool.connect_options()).await?;
    sqlx::query!("SET temp_buffers = '512MB'",)
        .execute(&mut conn)
        .await?;
    sqlx::query!("SET work_mem = '256MB'",)
        .execute(&mut conn)
        .await?;
    let mut tx = sqlx::Connection::begin(&mut conn).await?;
    // Settings cannot change under the import (an update locks the campaign row).
    let version: i64 = sqlx::query_scalar!(
        "SELECT config_version FROM campaigns WHERE id = $1 FOR SHARE",
        campaign.id,
    )
    .fetch_one(&mut *tx)
    .await?;
    if version != campaign.config_version {
        anyhow::bail!(
            "campaign `{slug}` changed while the file was being read; run the import again"
        );
    }
    let districts = Districts::load(&mut tx, campaign.id).await?;
    // Rows are checked on a thread of their own and sent to `COPY` as they are accepted, so
    // that the database takes them in while the next ones are checked. Nothing is committed
    // unless every row is accepted.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Checked>(4);
    let checking = {
        let campaign = campaign.clone();
        let mapping = mapping.clone();
        tokio::task::spawn_blocking(move || {
            let mut progress = SendProgress(sender.clone());
            let mut on_rows = |mut rows: Vec<Row>| {
                for row in &mut rows {
                    row.district = districts.place(row.point);
                }
                let _ = sender.blocking_send(Checked::Rows(rows));
            };
            match extension.as_str() {
                "csv" | "txt" => read_csv(&campaign, &bytes, &mapping, &mut progress, &mut on_rows),
                _ => read_geojson(&campaign, &bytes, &mapping, &mut progress, &mut on_rows),
            }
        })
    };

    sqlx::query!(
        "CREATE TEMPORARY TABLE import_rows (line bigint, id uuid, lon float8, lat float8,
             answers jsonb, created_at timestamptz, h3 bigint, district_id bigint) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw("COPY import_rows FROM STDIN (FORMAT text)")
        .await?;
    let mut sent = 0u64;
    while let Some(message) = receiver.recv().await {
        let rows = match message {
            Checked::Progress(done) => {
                progress.checked(done);
                continue;
            }
            Checked::Rows(rows) => rows,
        };
        let mut buffer = Vec::with_capacity(rows.len() * 160);
        for row in &rows {
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
            let district = row
                .district
                .map_or_else(|| "\\N".to_owned(), |id| id.to_string());
            buffer.extend(format!("\t{created_at}\t{}\t{district}\n", row.point.h3_cell()).bytes());
            if buffer.len() >= COPY_BYTES {
                copy.send(std::mem::take(&mut buffer)).await?;
            }
        }
        copy.send(buffer).await?;
        sent += rows.len() as u64;
    }
    let (total, rejected) = match checking.await? {
        Ok(outcome) => outcome,
        Err(e) => {
            copy.abort("the file could not be read").await?;
            return Err(e);
        }
    };
    if !rejected.is_empty() {
        copy.abort("rows were refused").await?;
        tx.rollback().await?;
        return Ok(Outcome::Refused {
            rows: total,
            rejected,
        });
    }
    progress.storing(total);
    copy.finish().await?;
    progress.stored(sent);

    // Place the rows that [`Districts::place`] could not (in no district), and refuse those
    // outside the area. The districts are cut into small pieces first (ST_Subdivide, indexed),
    // so that each point is tested against a few dozen vertices rather than whole outlines; a
    // point in no piece is tested against the whole districts, so that the rule stays the
    // API's: the first district (in import order) whose outline contains the point or has it
    // on its border.
    sqlx::query!(
        "CREATE TEMPORARY TABLE import_pieces ON COMMIT DROP AS
         SELECT id, position, ST_Subdivide(geom, 32) AS g FROM districts WHERE campaign_id = $1",
        campaign.id,
    )
    .execute(&mut *tx)
    .await?;
    // Runtime SQL (this and the next four): they use the temporary tables created above in
    // this transaction, which the database sqlx's macros describe against does not have.
    sqlx::query("CREATE INDEX ON import_pieces USING gist (g)")
        .execute(&mut *tx)
        .await?;
    sqlx::query("ANALYZE import_pieces")
        .execute(&mut *tx)
        .await?;
    // The same rule as `districts::district_of!`, first on the subdivided pieces (fast), then
    // on the districts themselves for what the pieces did not place. (Runtime SQL: also
    // composes `district_of!`.)
    sqlx::query(concat!(
        "CREATE TEMPORARY TABLE import_placed ON COMMIT DROP AS
         SELECT line, id, answers, created_at, h3,
                ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS g, district_id
         FROM import_rows WHERE district_id IS NOT NULL
         UNION ALL
         SELECT i.line, i.id, i.answers, i.created_at, i.h3, pt.g,
                COALESCE(p.id, ",
        crate::districts::district_of!("$1", "pt.g"),
        ")
         FROM import_rows i
         CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS g) pt
         LEFT JOIN LATERAL (
            SELECT p.id FROM import_pieces p WHERE ST_Intersects(p.g, pt.g)
            ORDER BY p.position LIMIT 1) p ON true
         WHERE i.district_id IS NULL"
    ))
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
    sqlx::query(concat!(
        "INSERT INTO submissions (id, campaign_id, district_id, geom, answers, status, edit_token_hash, h3, created_at, updated_at, published_at)
         SELECT id, $1, district_id, g, answers, ",
        crate::status!(Published),
        ", '\\x00'::bytea, h3,
                COALESCE(created_at, now()), now(), least(COALESCE(created_at, now()), now())
         FROM import_placed",
    ))
    .bind(campaign.id)
    .execute(&mut *tx)
    .await?;
    // The counters, from the same rows (in memory) rather than from what the insert returns.
    // Staff enter each paper form once: every row is a distinct contributor. (Runtime SQL:
    // also composes `count!`.)
    sqlx::query(concat!(
        "WITH to_count AS (
            SELECT $1::bigint AS campaign_id, district_id, h3, true AS first_contribution, 1 AS n
            FROM import_placed), ",
        crate::figures::counting::count!("to_count", "0"),
        " SELECT 1"
    ))
    .bind(campaign.id)
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
    use crate::testing::{answers, campaign, json, lon_lat};
    use proptest::prelude::*;

    /// What reading a file gives: the number of rows and the refused ones, or why it cannot
    /// be read at all.
    type Read = Result<(u64, Vec<Rejected>), anyhow::Error>;

    /// Reads a file as `civicmap import` does: the accepted rows and the outcome.
    fn read(bytes: &[u8], geojson: bool, mapping: &Mapping) -> (Vec<Row>, Read) {
        let mut rows = Vec::new();
        let mut on_rows = |mut chunk: Vec<Row>| rows.append(&mut chunk);
        let read = if geojson { read_geojson } else { read_csv };
        let outcome = read(&campaign(), bytes, mapping, &mut Quiet, &mut on_rows);
        (rows, outcome)
    }

    /// Every row is accepted or refused with its line and a reason, and a file that cannot be
    /// read at all says why.
    fn clear(rows: &[Row], outcome: &Read) -> Result<(), TestCaseError> {
        match outcome {
            Ok((total, rejected)) => {
                prop_assert_eq!(rows.len() as u64 + rejected.len() as u64, *total);
                for r in rejected {
                    prop_assert!(r.line >= 1 && !r.reason.trim().is_empty(), "{r:?}");
                }
            }
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
        Ok(())
    }

    /// A CSV cell: a number (with a decimal point or comma), yes/no words, quotes, separators,
    /// line breaks, or anything.
    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            (-200.0f64..200.0).prop_map(|x| x.to_string()),
            (-200.0f64..200.0).prop_map(|x| x.to_string().replace('.', ",")),
            proptest::sample::select(
                &[
                    "oui",
                    "non",
                    "x",
                    "adsl",
                    "none",
                    "",
                    " ",
                    "\"",
                    ";",
                    ",",
                    "\n",
                    "2026-01-01",
                    "NaN",
                    "inf",
                    "1e999"
                ][..]
            )
            .prop_map(str::to_owned),
            ".{0,8}",
        ]
    }

    fn csv_like() -> impl Strategy<Value = Vec<u8>> {
        let header = proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(
                    &[
                        "lon",
                        "lat",
                        "longitude",
                        "y",
                        "households",
                        "connection",
                        "comment",
                        "tenant",
                        "date",
                        "lon"
                    ][..]
                )
                .prop_map(str::to_owned),
                ".{0,5}",
            ],
            0..7,
        );
        let rows = proptest::collection::vec(proptest::collection::vec(cell(), 0..8), 0..6);
        (
            header,
            rows,
            prop_oneof![Just(","), Just(";"), Just("\t")],
            any::<bool>(),
        )
            .prop_map(|(header, rows, separator, bom)| {
                let mut text = if bom {
                    "\u{feff}".to_owned()
                } else {
                    String::new()
                };
                for line in std::iter::once(header).chain(rows) {
                    text.push_str(&line.join(separator));
                    text.push('\n');
                }
                text.into_bytes()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any CSV file (or any bytes) is read without panicking: each row accepted or refused
        /// with its line and reason, or the whole file refused with a reason.
        #[test]
        fn any_csv_is_read_or_refused_clearly(
            bytes in prop_oneof![csv_like(), proptest::collection::vec(any::<u8>(), 0..200)],
            created_at in any::<bool>(),
        ) {
            let mapping = Mapping { created_at: created_at.then(|| "date".to_owned()), ..Mapping::default() };
            let (rows, outcome) = read(&bytes, false, &mapping);
            clear(&rows, &outcome)?;
        }

        /// Any GeoJSON file (or any bytes) likewise.
        #[test]
        fn any_geojson_is_read_or_refused_clearly(
            bytes in prop_oneof![
                json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
                proptest::collection::vec(json(), 0..5)
                    .prop_map(|f| serde_json::to_vec(&json!({"type": "FeatureCollection", "features": f})).unwrap()),
                proptest::collection::vec(any::<u8>(), 0..100),
            ],
        ) {
            let (rows, outcome) = read(&bytes, true, &Mapping::default());
            clear(&rows, &outcome)?;
        }

        /// Valid rows, written as a spreadsheet would (any order of columns, `;` and decimal
        /// commas or `,` and points, renamed columns), are all accepted with their points
        /// and answers.
        #[test]
        fn valid_csv_rows_are_all_accepted(
            rows in proptest::collection::vec((lon_lat(), answers()), 1..20),
            excel in any::<bool>(),
            reversed in any::<bool>(),
        ) {
            let mut columns = vec!["x", "y", "foyers", "connection", "comment", "tenant"];
            if reversed {
                columns.reverse();
            }
            let mut writer = csv::WriterBuilder::new()
                .delimiter(if excel { b';' } else { b',' })
                .from_writer(Vec::new());
            writer.write_record(&columns).unwrap();
            let number = |x: f64| if excel { x.to_string().replace('.', ",") } else { x.to_string() };
            for ((lon, lat), answers) in &rows {
                let record: Vec<String> = columns.iter().map(|c| match *c {
                    "x" => number(*lon),
                    "y" => number(*lat),
                    "foyers" => answers["households"].to_string(),
                    "tenant" => match answers.get("tenant") {
                        Some(Value::Bool(true)) => "oui".to_owned(),
                        Some(Value::Bool(false)) => "non".to_owned(),
                        _ => String::new(),
                    },
                    key => answers.get(key).and_then(Value::as_str).unwrap_or_default().to_owned(),
                }).collect();
                writer.write_record(&record).unwrap();
            }
            let bytes = writer.into_inner().unwrap();
            let mapping = Mapping {
                fields: HashMap::from([("households".to_owned(), "foyers".to_owned())]),
                ..Mapping::default()
            };
            let (accepted, outcome) = read(&bytes, false, &mapping);
            let (total, rejected) = outcome.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(rejected.is_empty(), "{rejected:?}");
            prop_assert_eq!(total as usize, rows.len());
            for (row, ((lon, lat), answers)) in accepted.iter().zip(&rows) {
                prop_assert_eq!(row.point.lon().to_bits(), lon.to_bits());
                prop_assert_eq!(row.point.lat().to_bits(), lat.to_bits());
                prop_assert_eq!(row.answers["households"].as_f64(), answers["households"].as_f64());
                for key in ["connection", "comment", "tenant"] {
                    prop_assert_eq!(row.answers.get(key), answers.get(key));
                }
            }
        }
    }

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
