//! Address search from the national address file (Base Adresse Nationale): the import
//! (`civicmap addresses import`), and the suggestions a citizen gets while typing their
//! address, inside the campaign's area.
//!
//! Addresses are public open data shared by every campaign (a campaign's area decides which
//! it searches). A query is read, answered and forgotten: it is never stored, and never logged
//! (the trace layer logs paths without query strings; see `http::app`).

pub mod ban;
pub mod http;
pub mod index;
pub mod normalise;
pub mod synthetic;

use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use crate::import::{Progress, copy_text};
use crate::validation::{FieldError, Invalid};
use ban::{Address, BadLine};
use normalise::Query;

/// What can go wrong with addresses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// A search's parameters are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not in the BAN's format at all (no header, columns missing, empty).
    #[error("{0}")]
    Format(String),
    /// Some lines are refused: nothing was imported.
    #[error(
        "{count} of {rows} lines refused; nothing was imported. Fix them and run the import again"
    )]
    Refused {
        /// Lines read.
        rows: u64,
        /// Lines refused in all.
        count: u64,
        /// The first of them (at most [`ban::MAX_REPORTED`]), each with its line and field.
        lines: Vec<BadLine>,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The database failed while building an address index (shared by the searches that
    /// waited for that build).
    #[error(transparent)]
    Index(std::sync::Arc<sqlx::Error>),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    /// Addresses stored.
    pub rows: u64,
    /// Communes (INSEE codes) in the file, whose addresses were all replaced.
    pub communes: u64,
    /// Addresses of those communes (or with those ids) there were before.
    pub replaced: u64,
}

/// Opens `path` for [`import`]: a CSV file, or a gzip-compressed one (`.csv.gz`, told by its
/// first bytes rather than its name), decompressed as it is read.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, AddressError> {
    let read_error = |source| AddressError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file =
        std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path).map_err(read_error)?);
    let magic = std::io::BufRead::fill_buf(&mut file).map_err(read_error)?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        // Multi-member: concatenated gzip files are one file to `gunzip` too.
        Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(file),
        )))
    } else {
        Ok(Box::new(file))
    }
}

/// What the reading thread tells the storing side.
enum Message {
    /// This many lines read so far.
    Progress(u64),
    /// Good addresses, in file order.
    Rows(Vec<Address>),
}

/// Imports a BAN file read from `input` (`name` is recorded in the audit log), all or nothing,
/// in one transaction. The file's communes are replaced: every address stored before with one
/// of their INSEE codes (or one of the file's ids) is deleted, then the file's are inserted;
/// addresses of other communes stay. Readers see the old set until the commit, then the new.
pub async fn import(
    pool: &PgPool,
    input: Box<dyn Read + Send>,
    name: &str,
    progress: &mut dyn Progress,
) -> Result<ImportReport, AddressError> {
    let mut tx = pool.begin().await?;
    // One import at a time (readers are not blocked): two imports of overlapping communes
    // would otherwise each delete what the other had not committed yet.
    sqlx::query!("LOCK TABLE addresses IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    // For this transaction only: room for the groupings of a département's rows (by street;
    // by id when an id repeats) in memory: with the default 4 MB they spilled to disk (4.1 s
    // for the streets of 600,000 rows, against 2.0 s).
    sqlx::query!("SELECT set_config('work_mem', '256MB', true) AS work_mem")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query!(
        "CREATE TEMPORARY TABLE address_rows (line bigint, id text, code_insee text, numero integer,
            rep text, nom_voie text, code_postal text, nom_commune text, lon float8, lat float8,
            search text) ON COMMIT DROP"
    )
    .execute(&mut *tx)
    .await?;

    // The file is read on a thread of its own, and its rows sent to COPY as they come.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Message>(4);
    let reading = tokio::task::spawn_blocking(move || {
        let progress_sender = sender.clone();
        ban::read(
            input,
            &mut |done| {
                let _ = progress_sender.blocking_send(Message::Progress(done));
            },
            &mut |rows| {
                let _ = sender.blocking_send(Message::Rows(rows));
            },
        )
    });
    let mut copy = tx
        .copy_in_raw("COPY address_rows FROM STDIN (FORMAT text)")
        .await?;
    while let Some(message) = receiver.recv().await {
        let rows = match message {
            Message::Progress(done) => {
                progress.checked(done);
                continue;
            }
            Message::Rows(rows) => rows,
        };
        let mut buffer = Vec::with_capacity(rows.len() * 200);
        for a in &rows {
            // Writing into a Vec cannot fail.
            let _ = write!(buffer, "{}\t", a.line);
            for text in [&a.id, &a.code_insee] {
                copy_text(&mut buffer, text);
                buffer.push(b'\t');
            }
            let _ = write!(buffer, "{}\t", a.numero);
            for text in [&a.rep, &a.nom_voie, &a.code_postal, &a.nom_commune] {
                copy_text(&mut buffer, text);
                buffer.push(b'\t');
            }
            let _ = write!(buffer, "{:?}\t{:?}\t", a.point.lon(), a.point.lat());
            copy_text(&mut buffer, &a.search);
            buffer.push(b'\n');
        }
        copy.send(buffer).await?;
    }
    let scan = match reading.await {
        Ok(Ok(scan)) => scan,
        Ok(Err(format)) => {
            copy.abort("the file is not in the expected format").await?;
            return Err(AddressError::Format(format));
        }
        Err(join) => {
            copy.abort("the file could not be read").await?;
            return Err(AddressError::Format(format!(
                "reading the file failed: {join}"
            )));
        }
    };
    if scan.bad_count > 0 {
        copy.abort("lines were refused").await?;
        return Err(AddressError::Refused {
            rows: scan.rows,
            count: scan.bad_count,
            lines: scan.bad,
        });
    }
    if scan.rows == 0 {
        copy.abort("the file has no addresses").await?;
        return Err(AddressError::Format(
            "the file has a header but no addresses: nothing to import".into(),
        ));
    }
    copy.finish().await?;
    progress.storing(scan.rows);

    // Runtime SQL (every statement below that reads `address_rows`): the temporary table
    // created above in this transaction, which the database sqlx's macros describe against
    // does not have.
    let communes: i64 = sqlx::query_scalar("SELECT count(DISTINCT code_insee) FROM address_rows")
        .fetch_one(&mut *tx)
        .await?;
    // The communes' addresses through their streets (the index on `street_id`), then any
    // other address with one of the file's ids.
    let replaced = sqlx::query(
        "DELETE FROM addresses a USING address_streets s
         WHERE a.street_id = s.id
           AND s.code_insee IN (SELECT DISTINCT code_insee FROM address_rows)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        + sqlx::query("DELETE FROM addresses a USING address_rows r WHERE a.id = r.id")
            .execute(&mut *tx)
            .await?
            .rows_affected();
    // Streets belong to one commune: those of the file's communes have no address left.
    sqlx::query(
        "DELETE FROM address_streets WHERE code_insee IN (SELECT DISTINCT code_insee FROM address_rows)",
    )
    .execute(&mut *tx)
    .await?;
    // `search` depends on the street, postcode and commune alone: min() is any of them.
    sqlx::query(
        "INSERT INTO address_streets (code_insee, code_postal, nom_voie, nom_commune, search, box)
         SELECT code_insee, code_postal, nom_voie, nom_commune, min(search),
                ST_Envelope(ST_Collect(ST_SetSRID(ST_MakePoint(lon, lat), 4326)))
         FROM address_rows GROUP BY code_insee, code_postal, nom_voie, nom_commune",
    )
    .execute(&mut *tx)
    .await?;
    // The addresses of the file's ids are gone, so the primary key can only be broken by an
    // id twice in the file: then (in a savepoint, so that the transaction can still read) the
    // lines are found and named. Not looked for beforehand: that grouping of every row cost a
    // tenth of an import.
    let mut attempt = sqlx::Acquire::begin(&mut *tx).await?;
    let inserted = match sqlx::query(
        "INSERT INTO addresses (id, street_id, code_insee, numero, rep, geom)
         SELECT r.id, s.id, r.code_insee, r.numero, r.rep, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)
         FROM address_rows r
         JOIN address_streets s USING (code_insee, code_postal, nom_voie, nom_commune)",
    )
    .execute(&mut *attempt)
    .await
    {
        Ok(done) => {
            attempt.commit().await?;
            done.rows_affected()
        }
        Err(error)
            if error.as_database_error().and_then(|e| e.code()).as_deref() == Some("23505") =>
        {
            attempt.rollback().await?;
            return Err(duplicate_ids(&mut tx, scan.rows).await?.unwrap_or(error.into()));
        }
        Err(error) => return Err(error.into()),
    };
    progress.stored(inserted);
    // Fresh statistics, so that searches are planned on what is there now.
    sqlx::query!("ANALYZE address_streets")
        .execute(&mut *tx)
        .await?;
    sqlx::query!("ANALYZE addresses").execute(&mut *tx).await?;
    // Every instance's indexes of the previous file are stale from the commit on.
    sqlx::query!("UPDATE address_set SET version = version + 1")
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "SELECT pg_notify($1, $2)::text AS sent",
        crate::figures::watch::CHANNEL,
        crate::figures::watch::ADDRESSES,
    )
    .fetch_one(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        crate::audit::Entry {
            actor: crate::audit::Actor::Cli,
            action: "addresses.import",
            campaign_id: None,
            subject: None,
            reason: None,
            details: json!({"file": name, "rows": inserted, "communes": communes, "replaced": replaced}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(ImportReport {
        rows: inserted,
        communes: communes as u64,
        replaced,
    })
}

/// The lines of the file (in `address_rows`) whose id an earlier line has, as a refusal; `None`
/// if there are none.
async fn duplicate_ids(
    tx: &mut sqlx::PgConnection,
    rows: u64,
) -> Result<Option<AddressError>, sqlx::Error> {
    // Runtime SQL: it reads the import's temporary table, which the database sqlx's macros
    // describe against does not have.
    let duplicates: Vec<(String, Vec<i64>)> = sqlx::query_as(
        "SELECT id, array_agg(line ORDER BY line) FROM address_rows
         GROUP BY id HAVING count(*) > 1 ORDER BY min(line) LIMIT $1",
    )
    .bind(ban::MAX_REPORTED as i64)
    .fetch_all(&mut *tx)
    .await?;
    if duplicates.is_empty() {
        return Ok(None);
    }
    let lines: Vec<BadLine> = duplicates
        .into_iter()
        .flat_map(|(id, lines)| {
            let first = lines[0];
            lines.into_iter().skip(1).map(move |line| BadLine {
                line: line as u64,
                field: "id".into(),
                detail: format!("`{id}` is already on line {first}"),
            })
        })
        .collect();
    Ok(Some(AddressError::Refused {
        rows,
        count: lines.len() as u64,
        lines,
    }))
}

/// Longest query accepted, in characters (an address is shorter).
pub const MAX_QUERY_CHARS: usize = 200;
/// Suggestions given when the request does not say.
pub const DEFAULT_LIMIT: i64 = 8;
/// Most suggestions given.
pub const MAX_LIMIT: i64 = 20;

/// A checked search: the query read, and how many suggestions to give.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub query: Query,
    pub limit: i64,
}

/// Checks a search's `q` and `limit` as they came in the query string, naming each bad field
/// (the text of `q` is never repeated in an error, which may be logged).
pub fn check(q: Option<&str>, limit: Option<&str>) -> Result<Search, Invalid> {
    let mut errors = Vec::new();
    let q = q.unwrap_or_default().trim();
    if q.is_empty() {
        errors.push(FieldError::new(
            "q",
            "is required: the beginning of an address",
        ));
    } else if q.chars().count() > MAX_QUERY_CHARS {
        errors.push(FieldError::new(
            "q",
            format!("is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    Invalid::check(errors)?;
    Ok(Search {
        query: normalise::parse_query(q),
        limit,
    })
}

/// An address suggested for a query.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    /// The address's identifier in the national address file.
    pub id: String,
    /// The address as it is written: `12 bis Rue de la Paix, 92000 Nanterre`.
    pub label: String,
    /// Where it is, in WGS 84.
    pub lon: f64,
    pub lat: f64,
}

/// The label of an address: `12 bis Rue de la Paix, 92000 Nanterre`.
pub fn label(numero: i32, rep: &str, street: &str, postcode: &str, commune: &str) -> String {
    let number = if rep.is_empty() {
        numero.to_string()
    } else {
        format!("{numero} {rep}")
    };
    let place = if postcode.is_empty() {
        commune.to_owned()
    } else {
        format!("{postcode} {commune}")
    };
    format!("{number} {street}, {place}")
}

/// How close the typed street must be to an address's (pg_trgm's word similarity, 0 to 1): a
/// typo or a word typed halfway stays above it ("rue de la paiz": 0.87), while streets that only
/// share their first words ("rue de la fontaine" for "rue de la paix": 0.67) fall below, and so
/// never reach the ranking (they would make each search read thousands of rows).
pub const MIN_WORD_SIMILARITY: &str = "0.75";
/// [`MIN_WORD_SIMILARITY`] in hundredths, for [`index`].
const MIN_SHARE_PERCENT: usize = 75;

/// Streets whose numbers are considered for one search, the closest matches: enough for the
/// exact number on a few homonymous streets and the other numbers of the closest one.
const STREETS: i64 = 10;

/// Addresses inside the campaign's area (where a pin can be placed: its `effective_area`,
/// the union of its districts unless it has an area of its own) whose street, postcode and
/// commune match the query's text, ranked: the closest street first (trigram word
/// similarity, which tolerates a typo and a word typed halfway), on it the exact number and
/// suffix first, then the other numbers of the same street from the nearest, then fuzzier
/// matches. A query with no text (a number alone, punctuation) finds nothing, and so does a
/// campaign without an area.
///
/// Used for an area too large for an index in memory ([`index`], which answers the same).
pub async fn search_in_database(
    db: &PgPool,
    campaign: &crate::campaigns::Campaign,
    search: &Search,
) -> Result<Vec<Suggestion>, sqlx::Error> {
    let query = &search.query;
    let Some([west, south, east, north]) = campaign.bounds else {
        return Ok(Vec::new());
    };
    if query.text.is_empty() {
        return Ok(Vec::new());
    }
    // The bounds are rounded to 7 decimals (about 1 cm): a margin keeps the edge inside.
    let margin = 1e-6;
    let (west, south, east, north) = (west - margin, south - margin, east + margin, north + margin);
    let mut tx = db.begin().await?;
    // For this transaction only: the threshold of `<%` (and of the index scan behind it), and
    // no JIT compilation, which costs more than such a query.
    sqlx::query!(
        "SELECT set_config('pg_trgm.word_similarity_threshold', $1, true) AS threshold,
                set_config('jit', 'off', true) AS jit",
        MIN_WORD_SIMILARITY,
    )
    .fetch_one(&mut *tx)
    .await?;
    // The streets first: the 4 × [`STREETS`] whose names are nearest the text by word
    // similarity (a nearest-neighbour scan of the trigram GiST index, within the area's
    // bounding box: constants the planner can weigh), of those the ones whose numbers' box
    // meets the area, the closest [`STREETS`] of them; then their numbers (by street), those
    // inside the area, ranked. Each step is materialised so that the area's outline, a value the planner
    // cannot weigh, never drives an index scan over every address of the area.
    let rows = sqlx::query!(
        r#"WITH matched AS MATERIALIZED (
               SELECT s.id, s.nom_voie, s.code_postal, s.nom_commune, s.search, s.box,
                      round(word_similarity($2, s.search)::numeric, 2) AS score,
                      round(similarity($2, s.search)::numeric, 2) AS closeness
               FROM address_streets s
               WHERE $2 <% s.search AND s.box && ST_MakeEnvelope($6, $7, $8, $9, 4326)
               ORDER BY $2 <<-> s.search
               LIMIT 4 * $10::int8),
           streets AS MATERIALIZED (
               SELECT m.id, m.nom_voie, m.code_postal, m.nom_commune, m.search, m.score, m.closeness
               FROM matched m
               JOIN campaigns c ON c.id = $1 AND ST_Intersects(c.effective_area, m.box)
               ORDER BY m.score DESC, m.closeness DESC, m.search, m.id
               LIMIT $10),
           numbers AS MATERIALIZED (
               SELECT a.id, a.numero, a.rep, a.geom, st.id AS street, st.nom_voie, st.code_postal,
                      st.nom_commune, st.search, st.score, st.closeness
               FROM streets st
               JOIN addresses a ON a.street_id = st.id)
           SELECT n.id, n.numero, n.rep, n.nom_voie, n.code_postal, n.nom_commune,
                  ST_X(n.geom) AS "lon!", ST_Y(n.geom) AS "lat!"
           FROM numbers n
           JOIN campaigns c ON c.id = $1 AND ST_Intersects(c.effective_area, n.geom)
           ORDER BY n.score DESC,
                    COALESCE(n.numero = $3 AND n.rep = $4, false) DESC,
                    COALESCE(n.numero = $3, false) DESC,
                    n.closeness DESC,
                    abs(n.numero - $3) NULLS LAST,
                    n.search, n.street, n.numero, n.rep, n.id
           LIMIT $5"#,
        campaign.id,
        query.text,
        query.number,
        query.repetition.as_deref().unwrap_or_default(),
        search.limit,
        west,
        south,
        east,
        north,
        STREETS,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| Suggestion {
            label: label(
                r.numero,
                &r.rep,
                &r.nom_voie,
                &r.code_postal,
                &r.nom_commune,
            ),
            id: r.id,
            lon: r.lon,
            lat: r.lat,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_french_addresses() {
        assert_eq!(
            label(12, "bis", "Rue de la Paix", "92000", "Nanterre"),
            "12 bis Rue de la Paix, 92000 Nanterre"
        );
        assert_eq!(label(3, "", "Allée X", "", "Y"), "3 Allée X, Y");
    }

    #[test]
    fn both_searches_share_one_threshold() {
        let threshold: f64 = MIN_WORD_SIMILARITY.parse().unwrap();
        assert_eq!((threshold * 100.0).round() as usize, MIN_SHARE_PERCENT);
    }

    #[test]
    fn a_search_names_each_bad_parameter() {
        let fields = |e: Invalid| e.0.into_iter().map(|f| f.field).collect::<Vec<_>>();
        assert_eq!(fields(check(None, None).unwrap_err()), ["q"]);
        assert_eq!(
            fields(check(Some("  "), Some("0")).unwrap_err()),
            ["q", "limit"]
        );
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        let error = check(Some(&long), Some("x")).unwrap_err();
        assert_eq!(fields(error.clone()), ["q", "limit"]);
        assert!(
            !error.to_string().contains(&long),
            "the query is never repeated"
        );
        let ok = check(Some("12 bis r de la paix"), Some("5")).unwrap();
        assert_eq!((ok.limit, ok.query.number), (5, Some(12)));
        assert_eq!(check(Some("rue"), None).unwrap().limit, DEFAULT_LIMIT);
    }
}
