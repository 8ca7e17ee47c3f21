//! The raw export for staff: every published submission with its exact position and all its
//! answers, streamed in constant memory, and written to the audit log.
//!
//! A task reads the rows from one database connection and sends them, a few hundred at a time,
//! through a small bounded channel to the response body: when the client reads slowly, the
//! task waits, so memory stays at a few chunks whatever the number of rows. When the stream
//! ends (complete, failed or abandoned by the client), one audit entry records who exported
//! what, with which filter and how many rows.

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use super::ExportError;
use super::format::{Format, RawRow, RawWriter};
use crate::audit::{self, Actor};
use crate::campaigns::Campaign;
use crate::validation::{FieldError, Invalid};

type Result<T, E = ExportError> = std::result::Result<T, E>;

/// Filters of a raw export.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    /// Only submissions created at or after this instant (RFC 3339 or `YYYY-MM-DD`).
    pub from: Option<String>,
    /// Only submissions created before this instant (RFC 3339 or `YYYY-MM-DD`).
    pub to: Option<String>,
    /// Only this district (its code).
    pub district: Option<String>,
    /// `1` for the French-Excel flavour of CSV.
    #[param(pattern = "^(0|1|true|false)$")]
    pub excel: Option<String>,
}

/// A checked raw export filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub district: Option<String>,
}

impl RawQuery {
    /// Whether the French-Excel CSV flavour was asked for.
    pub fn excel(&self) -> bool {
        matches!(self.excel.as_deref(), Some("1" | "true"))
    }

    /// Checks the filters.
    pub fn check(&self) -> Result<Filter> {
        let mut errors = Vec::new();
        let from = self.from.as_deref().and_then(|t| {
            super::parse_instant("from", t)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let to = self.to.as_deref().and_then(|t| {
            super::parse_instant("to", t)
                .map_err(|e| errors.push(e))
                .ok()
        });
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
        if errors.is_empty() {
            Ok(Filter {
                from,
                to,
                district: self.district.clone(),
            })
        } else {
            Err(Invalid(errors).into())
        }
    }
}

impl Filter {
    fn describe(&self) -> Value {
        let instant = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
        json!({"from": instant(self.from), "to": instant(self.to), "district": self.district})
    }
}

/// Rows per chunk sent to the client, and chunks buffered between database and client.
const CHUNK_ROWS: usize = 512;
pub(super) const CHUNKS_IN_FLIGHT: usize = 4;

/// Where the export's chunks go: a bounded channel, so a slow reader holds the export back.
pub type Sink = mpsc::Sender<std::io::Result<Vec<u8>>>;

/// Streams the export of `campaign` to `sink`, one chunk of bytes at a time, counting rows in
/// `written`. Stops early (with an error) when the receiving end is gone.
pub async fn stream(
    db: &PgPool,
    campaign: &Campaign,
    filter: &Filter,
    format: Format,
    sink: &Sink,
    written: &mut u64,
) -> anyhow::Result<()> {
    let send = async |chunk: Vec<u8>| {
        sink.send(Ok(chunk)).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    };
    let fields = campaign.form.fields.iter().map(|f| f.key.clone()).collect();
    let mut writer = RawWriter::new(format, fields);
    send(writer.header(&campaign.slug)?).await?;
    let mut conn = db.acquire().await?;
    let mut rows = sqlx::query_as!(
        RawRow,
        r#"SELECT s.id, s.created_at, d.code AS "code?", d.name AS "name?",
                ST_X(s.geom) AS "lon!", ST_Y(s.geom) AS "lat!", s.answers AS "answers: _"
         FROM submissions s LEFT JOIN districts d ON d.id = s.district_id
         WHERE s.campaign_id = $1 AND s.status = 'published'
           AND ($2::timestamptz IS NULL OR s.created_at >= $2)
           AND ($3::timestamptz IS NULL OR s.created_at < $3)
           AND ($4::text IS NULL OR d.code = $4)
         ORDER BY s.created_at, s.id"#,
        campaign.id,
        filter.from,
        filter.to,
        filter.district.as_deref(),
    )
    .fetch(&mut *conn);
    let mut chunk = Vec::with_capacity(64 * 1024);
    let mut in_chunk = 0;
    while let Some(row) = rows.next().await {
        writer.row(&mut chunk, row?)?;
        *written += 1;
        in_chunk += 1;
        if in_chunk == CHUNK_ROWS {
            send(std::mem::replace(&mut chunk, Vec::with_capacity(64 * 1024))).await?;
            in_chunk = 0;
        }
    }
    chunk.extend(writer.footer());
    send(chunk).await?;
    Ok(())
}

/// Writes the export's audit entry (who, what filter; `completed: false` until the end), before
/// a single row is read: an export that crashes midway still leaves its entry. Returns the
/// entry's id for [`export_audited`].
pub async fn begin_audit(
    db: &PgPool,
    actor: Actor<'_>,
    campaign: &Campaign,
    filter: &Filter,
    format: Format,
) -> sqlx::Result<i64> {
    audit::record_returning_id(
        db,
        audit::Entry {
            actor,
            action: "export.raw",
            campaign_id: Some(campaign.id),
            subject: None,
            reason: None,
            details: json!({
                "format": format.name(),
                "filter": filter.describe(),
                "rows": 0,
                "completed": false,
            }),
        },
    )
    .await
}

/// [`begin_audit`], then the export streamed into `sink`, then its outcome in the entry: how
/// many rows, whether it completed.
pub async fn export_and_audit(
    db: PgPool,
    actor: Actor<'_>,
    campaign: Campaign,
    filter: Filter,
    format: Format,
    sink: Sink,
) -> anyhow::Result<u64> {
    let entry = begin_audit(&db, actor, &campaign, &filter, format).await?;
    export_audited(db.clone(), db, entry, campaign, filter, format, sink).await
}

/// Streams the export into `sink`, reading from `reads` (the primary or a replica), and adds
/// its outcome to audit entry `entry` on `db` (the primary).
pub async fn export_audited(
    db: PgPool,
    reads: PgPool,
    entry: i64,
    campaign: Campaign,
    filter: Filter,
    format: Format,
    sink: Sink,
) -> anyhow::Result<u64> {
    let mut rows = 0;
    let result = stream(&reads, &campaign, &filter, format, &sink, &mut rows).await;
    let error = result.as_ref().err().map(|e| e.to_string());
    if let Some(error) = &error {
        tracing::warn!(campaign = %campaign.slug, %error, "raw export stopped");
        let _ = sink
            .send(Err(std::io::Error::other("the export stopped")))
            .await;
    }
    audit::complete(
        &db,
        entry,
        json!({"rows": rows, "completed": error.is_none(), "error": error}),
    )
    .await?;
    result.map(|()| rows)
}

/// Checks that `filter`'s district, if any, is one of `campaign`'s.
pub async fn check_district(db: &PgPool, campaign: &Campaign, filter: &Filter) -> Result<()> {
    let Some(code) = &filter.district else {
        return Ok(());
    };
    let known: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM districts WHERE campaign_id = $1 AND code = $2) AS "known!""#,
        campaign.id,
        code,
    )
    .fetch_one(db)
    .await?;
    if known {
        Ok(())
    } else {
        Err(Invalid::field(
            "district",
            format!("no district with code `{code}` in this campaign"),
        )
        .into())
    }
}
